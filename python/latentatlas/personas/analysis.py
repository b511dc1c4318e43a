"""Persona-vector analysis: loaders, centred similarity, projections, clustering, spectral energy.

Names and arguments follow the persona-vectors project (``persona_vectors.analysis``) so notebooks
work by changing the import. Conventions (REFERENCE §4):

- cosine similarity is centred across personas per layer by default (removes the residual
  stream's shared DC component, which otherwise pushes every raw cosine toward 1);
- PCA, UMAP, Isomap, k-means, dendrogram and scree inputs are centred then L2-normalised per row
  by default; ``normalize=False`` keeps magnitudes (PCA, UMAP);
- PCA is exact (one Gram matrix per layer, ``n_personas x n_personas``, then its top eigenpairs) with
  scikit-learn's sign convention, so ``random_state`` (kept for compatibility, default 0) does not
  change the result; UMAP ``n_neighbors=min(15, n-1)``, ``random_state=42``; KMeans
  ``n_init="auto"``, seed 0; Isomap 8 neighbours.

The all-layer functions (:func:`layered_similarity`, :func:`layered_pca`,
:func:`layered_analysis`) do one float32 matrix product per layer and derive everything else from
it in O(n²) (row normalisation is a diagonal scaling of the Gram matrix, which *is* the centred
cosine similarity; double-centring it gives PCA's Gram), take the top components by subspace
iteration instead of a full O(n³) decomposition, and run whole layers in parallel with
single-threaded BLAS, which is what keeps 1,000 personas x 42 layers x 3,584 hidden at seconds.
The Gram-matrix PCA and the eigensolver are :mod:`latentatlas.linalg`'s (``PCA`` is re-exported
here, where persona-vectors has it).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._optional import import_optional, is_torch_tensor
from .._progress import progress_bar
from .._validate import check_int, check_threads
from ..linalg import (
    EPS,
    PCA,
    as_float_array,
    as_rows,
    blas_threads,
    center_rows,
    check_components,
    double_center,
    finite,
    gram_pca,
    gram_threads,
    pca_from_gram,
    row_norms,
    row_scale,
)
from ..spectral import feature_laplacian, rayleigh_energy
from ._arrays import as_array_type, like

__all__ = [
    "PCA",
    "AnalysisDataset",
    "LayeredAnalysis",
    "LayeredSamples",
    "as_layered_samples",
    "cluster_agglomerative",
    "cluster_kmeans",
    "cosine_similarity_matrix",
    "layer_variant_similarity",
    "layered_analysis",
    "layered_pca",
    "layered_similarity",
    "load_analysis_dataset",
    "load_persona_vectors",
    "load_variant_vectors",
    "pca_explained_variance",
    "persona_spectral_energy",
    "prepare_cluster_samples",
    "prepare_layer_mean_cluster_samples",
    "project_isomap",
    "project_pca",
    "project_umap",
    "samples_to_numpy",
    "scree_layers",
    "twonn",
    "validate_layers",
]

LINKAGES = ("ward", "average", "complete", "single")


# ------------------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class LayeredSamples:
    """Persona vectors ready for per-layer analysis.

    Attributes
    ----------
    vectors : ndarray, shape (n_personas, num_layers, hidden_size), float32
    labels : list of str, length n_personas
        Display names.
    hover_text : list of str, length n_personas
    persona_ids : list of str, length n_personas
    variant : str or None
    """

    vectors: np.ndarray
    labels: list[str]
    hover_text: list[str]
    persona_ids: list[str] = field(default_factory=list)
    variant: str | None = None

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def num_layers(self) -> int:
        return int(self.vectors.shape[1])


def _out(result: np.ndarray, samples: Any) -> Any:
    """The original returns float32 torch tensors: do so when the caller passed a tensor."""
    return like(result.astype(np.float32, copy=False), samples) if is_torch_tensor(samples) else result


def as_layered_samples(samples: Any) -> LayeredSamples:
    """Accept a :class:`LayeredSamples` (NumPy or torch vectors), anything with ``.vectors``, or an array (n, L, H).

    Returns a :class:`LayeredSamples` with NumPy vectors and complete labels, ids and hover text.
    """
    if (
        isinstance(samples, LayeredSamples)
        and isinstance(samples.vectors, np.ndarray)
        and samples.vectors.ndim == 3
        and len(samples.persona_ids) == len(samples.labels) == len(samples.vectors)
    ):
        return samples
    vectors = getattr(samples, "vectors", samples)
    arr = as_float_array(vectors)
    if arr.ndim != 3:
        raise ValueError(f"samples must have shape (n_personas, num_layers, hidden_size), got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"samples must not be empty, got shape {arr.shape}")
    n = arr.shape[0]
    labels = list(getattr(samples, "labels", None) or [f"persona {i}" for i in range(n)])
    ids = list(getattr(samples, "persona_ids", None) or [str(i) for i in range(n)])
    hover = list(getattr(samples, "hover_text", None) or [f"Persona: {a}<br>ID: {b}" for a, b in zip(labels, ids)])
    if not (len(labels) == len(ids) == len(hover) == n):
        raise ValueError(f"samples has {n} vectors but {len(labels)} labels / {len(ids)} ids")
    return LayeredSamples(arr, labels, hover, ids, getattr(samples, "variant", None))


def _vectors(samples: Any) -> np.ndarray:
    return as_layered_samples(samples).vectors


def validate_layers(vectors: Any, layers: Iterable[int] | None) -> list[int]:
    """The requested layer indices (all when None), each in ``[0, num_layers)``.

    Raises ``ValueError("Invalid layer(s) for tensor with {L} layers: [...]")`` as the reference.
    """
    v = _vectors(vectors) if not isinstance(vectors, np.ndarray) or vectors.ndim != 3 else vectors
    num_layers = int(v.shape[1])
    if layers is None:
        return list(range(num_layers))
    if isinstance(layers, (int, np.integer)):
        layers = [int(layers)]
    selected = list(layers)
    for layer in selected:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layers must be integers, got {layer!r}")
    selected = [int(x) for x in selected]
    invalid = [x for x in selected if x < 0 or x >= num_layers]
    if invalid:
        raise ValueError(f"Invalid layer(s) for tensor with {num_layers} layers: {invalid}")
    if not selected:
        raise ValueError("layers must name at least one layer")
    return selected


def scree_layers(num_layers: int, layers: Sequence[int] | None = None) -> list[int]:
    """Layers for scree plots: the requested ones, else ``{0, L//3, 2L//3, L-1}`` (all when L <= 4)."""
    if layers is not None:
        selected = [int(x) for x in layers]
    elif num_layers <= 4:
        selected = list(range(num_layers))
    else:
        selected = sorted({0, num_layers // 3, (2 * num_layers) // 3, num_layers - 1})
    invalid = [x for x in selected if x < 0 or x >= num_layers]
    if invalid:
        raise ValueError(f"Invalid layer(s) for tensor with {num_layers} layers: {invalid}")
    return selected


def progress_iter(it: Iterable[Any], progress: bool, desc: str, total: int | None = None) -> Iterable[Any]:
    """``it`` wrapped in the package's progress bar when ``progress``, else ``it`` itself."""
    if not progress:
        return it
    return progress_bar(it, desc, total=total)


# ------------------------------------------------------------------------------------- loaders


def _resolve_personas(
    store: Any, variants: list[str], mask_strategy: object | None, persona_ids: Sequence[str] | None
) -> list[str]:
    if persona_ids is None:
        persona_ids = store.list_personas(variants, mask_strategy=mask_strategy)
    if isinstance(persona_ids, str):
        raise TypeError("persona_ids must be a sequence of ids, not a single string")
    persona_ids = list(persona_ids)
    if not persona_ids:
        raise FileNotFoundError(f"No personas found for {store.model_name!r} / {variants!r} / {mask_strategy!r}")
    if len(set(persona_ids)) != len(persona_ids):
        raise ValueError("persona_ids contains duplicates")
    return persona_ids


def _load_variant(
    store: Any, variant: str, mask_strategy: object | None, persona_ids: list[str], progress: bool
) -> LayeredSamples:
    num_layers, hidden = store.shape(variant, mask_strategy)
    names = store.persona_names(persona_ids, variants=[variant], mask_strategy=mask_strategy)
    vectors = np.empty((len(persona_ids), num_layers, hidden), dtype=np.float32)  # no stacking copy
    for i, pid in enumerate(progress_iter(persona_ids, progress, f"load {variant}")):
        store.load_into(variant, pid, vectors[i], mask_strategy)
    labels = [names.get(p, p) for p in persona_ids]
    hover = [f"Persona: {n}<br>ID: {p}" for n, p in zip(labels, persona_ids)]
    out = as_array_type(vectors, getattr(store, "array_type", "numpy"))
    return LayeredSamples(out, labels, hover, list(persona_ids), variant)


def load_persona_vectors(
    store: Any,
    variant: str,
    mask_strategy: object | None = None,
    persona_ids: Sequence[str] | None = None,
    *,
    progress: bool = False,
) -> LayeredSamples:
    """Load one variant's vectors: ``.vectors`` (n_personas, num_layers, hidden_size), ``.persona_ids``.

    ``persona_ids=None`` loads every persona of the variant (sorted ids, without the baseline).
    ``.vectors`` is float32 in the store's ``array_type`` (a torch tensor when torch is imported,
    as the original, unless the store says ``array_type="numpy"``).
    """
    ids = _resolve_personas(store, [variant], mask_strategy, persona_ids)
    return _load_variant(store, variant, mask_strategy, ids, progress)


def load_variant_vectors(
    store: Any,
    variants: Sequence[str],
    mask_strategy: object | None = None,
    persona_ids: Sequence[str] | None = None,
    *,
    progress: bool = False,
) -> dict[str, LayeredSamples]:
    """Load several variants in one shared persona order (ids present in every variant)."""
    requested = [variants] if isinstance(variants, str) else list(variants)
    if not requested:
        raise ValueError("At least one variant is required")
    ids = _resolve_personas(store, requested, mask_strategy, persona_ids)
    return {v: _load_variant(store, v, mask_strategy, ids, progress) for v in requested}


@dataclass(frozen=True)
class AnalysisDataset:
    """One aligned persona selection across one or more variants (the original's fields and types)."""

    variants: tuple[str, ...]
    persona_ids: tuple[str, ...]
    persona_names: dict[str, str]
    layers: tuple[int, ...]
    samples_by_variant: dict[str, LayeredSamples] = field(repr=False)

    def samples(self, variant: str) -> LayeredSamples:
        """The :class:`LayeredSamples` of one variant."""
        try:
            return self.samples_by_variant[variant]
        except KeyError:
            raise KeyError(f"Variant {variant!r} is not loaded; available: {list(self.variants)}") from None


def load_analysis_dataset(
    store: Any,
    variants: Sequence[str],
    *,
    mask_strategy: object | None = None,
    persona_ids: Sequence[str] | None = None,
    include_baseline: bool = False,
    progress: bool = False,
) -> AnalysisDataset:
    """Bundle aligned vectors of ``variants`` with persona ids, names and the shared layer indices."""
    requested = (variants,) if isinstance(variants, str) else tuple(variants)
    if not requested:
        raise ValueError("At least one variant is required")
    if persona_ids is None:
        persona_ids = store.list_personas(
            list(requested), mask_strategy=mask_strategy, include_baseline=include_baseline
        )
    ids = _resolve_personas(store, list(requested), mask_strategy, persona_ids)
    names = store.persona_names(ids, variants=list(requested), mask_strategy=mask_strategy)
    layers = tuple(store.list_layers(list(requested), ids, mask_strategy=mask_strategy))
    by_variant = load_variant_vectors(store, requested, mask_strategy, ids, progress=progress)
    return AnalysisDataset(requested, tuple(ids), {p: names.get(p, p) for p in ids}, layers, by_variant)


# ------------------------------------------------------------------------- 2-D (one layer) math


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.maximum(row_norms(x), EPS)  # no overflow: a huge row is not made zero (below EPS: a zero row)
    if np.isfinite(norms.astype(x.dtype)).all():
        return x / norms.astype(x.dtype)[:, None]
    return (x / norms[:, None]).astype(x.dtype)  # a float32 row whose norm exceeds float32's range


def prepare_cluster_samples(samples: Any, *, center: bool = True, normalize: bool = True) -> np.ndarray:
    """Centre across rows and L2-normalise each row (n_samples, hidden_size), as the seed does."""
    return _out(_prepare(as_rows(samples), center, normalize), samples)


def _prepare(x: np.ndarray, center: bool, normalize: bool) -> np.ndarray:
    if center:
        x = center_rows(x)
    if normalize:
        x = _l2_normalize(x)
    return x


def samples_to_numpy(samples: Any, *, center: bool = True, normalize: bool = True) -> np.ndarray:
    """:func:`prepare_cluster_samples` as a NumPy array, whatever the input's array type."""
    return _prepare(as_rows(samples), center, normalize)


_samples_to_numpy = samples_to_numpy  # the original's old private name (persona-ui imports it)


def prepare_layer_mean_cluster_samples(vectors: Any, *, center: bool = True, normalize: bool = True) -> np.ndarray:
    """One clustering vector per persona: centre/normalise within each layer, then average layers.

    Parameters
    ----------
    vectors : array (n_samples, n_layers, hidden_size) or LayeredSamples

    Returns
    -------
    ndarray (n_samples, hidden_size)
    """
    v = _vectors(vectors)
    out = np.zeros((v.shape[0], v.shape[2]), dtype=np.float64)
    for layer in range(v.shape[1]):  # per layer: bounded temporaries for large inputs
        out += _prepare(v[:, layer, :], center, normalize)
    return _out((out / v.shape[1]).astype(v.dtype), getattr(vectors, "vectors", vectors))


def cosine_similarity_matrix(samples: Any, center: bool = True) -> np.ndarray:
    """Cosine similarity (n_samples, n_samples) of the rows, centred across rows by default."""
    x = samples_to_numpy(samples, center=center, normalize=True)
    return _out(x @ x.T, samples)


def _sklearn(name: str) -> Any:
    """``KMeans`` / ``Isomap`` as module attributes (monkeypatchable as in the original), loaded on first use."""
    got = globals().get(name)
    if got is None:
        module = {"KMeans": "sklearn.cluster", "Isomap": "sklearn.manifold"}[name]
        got = globals()[name] = getattr(importlib.import_module(module), name)
    return got


def __getattr__(name: str) -> Any:
    if name in ("KMeans", "Isomap"):
        return _sklearn(name)
    if name == "PersonaVectorStore":  # the original imports the store here; loaded on first use
        from .store import PersonaVectorStore

        return PersonaVectorStore
    if name == "run_saved_activation_analysis":  # the original has it here; it lives in .report (which imports us)
        from .report import run_saved_activation_analysis

        return run_saved_activation_analysis
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def project_pca(samples: Any, n_components: int = 2, *, normalize: bool = True, random_state: int | None = 0) -> Any:
    """PCA coordinates (n_samples, n_components) of centred (+ L2-normalised) rows.

    Exact (:class:`PCA`), equal to
    ``sklearn.decomposition.PCA(n_components, svd_solver="full").fit_transform(prepared)``;
    ``random_state`` is accepted for compatibility and does not change the result. float64
    NumPy for NumPy input, float32 torch for torch input (as the original).
    """
    x = as_rows(samples)
    check_components(x, n_components, method="PCA")
    prepared = _prepare(x, True, normalize)
    return _out(np.asarray(PCA(n_components=int(n_components), random_state=0).fit_transform(prepared)), samples)


def pca_explained_variance(samples: Any, n_components: int | None = None, *, normalize: bool = True) -> np.ndarray:
    """Explained-variance ratio of each principal component (length ``min(n_samples, hidden)``)."""
    x = as_rows(samples)
    m = min(x.shape)
    k = m if n_components is None else min(int(n_components), m)
    prepared = _prepare(x, True, normalize)
    return np.asarray(PCA(n_components=k, random_state=0).fit(prepared).explained_variance_ratio_)


def project_isomap(samples: Any, n_components: int = 2, *, n_neighbors: int = 8) -> Any:
    """Isomap coordinates (n_samples, n_components) of centred + unit rows (8 neighbours)."""
    x = as_rows(samples)
    check_components(x, n_components, method="Isomap", min_samples=3)
    if n_neighbors < 1:
        raise ValueError("n_neighbors must be at least 1")
    n_neighbors = min(int(n_neighbors), x.shape[0] - 1)
    prepared = _prepare(x, True, True)
    with warnings.catch_warnings():  # a disconnected kNN graph is handled by sklearn; say it once
        warnings.simplefilter("ignore", UserWarning)
        iso = _sklearn("Isomap")(n_components=n_components, n_neighbors=n_neighbors, metric="euclidean")
        return _out(np.asarray(iso.fit_transform(prepared)), samples)


def project_umap(
    samples: Any,
    n_components: int = 2,
    *,
    normalize: bool = True,
    n_neighbors: int | None = None,
    random_state: int = 42,
) -> Any:
    """UMAP coordinates (n_samples, n_components) of centred (+ L2-normalised) rows.

    Needs the optional extra ``[umap]`` (umap-learn). ``n_neighbors`` defaults to ``min(15, n-1)``.
    """
    x = as_rows(samples)
    check_components(x, n_components, method="UMAP", min_samples=3)
    umap = import_optional("umap", feature="UMAP projections (umap-learn)")
    nn = min(15, x.shape[0] - 1) if n_neighbors is None else int(n_neighbors)
    prepared = _prepare(x, True, normalize)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns that random_state disables parallelism
        model = umap.UMAP(n_components=n_components, n_neighbors=nn, init="random", random_state=random_state, n_jobs=1)
        return _out(np.asarray(model.fit_transform(prepared), dtype=np.float64), samples)


def _check_n_clusters(n_clusters: Any, n: int) -> int:
    return check_int(n_clusters, "n_clusters", high=n, what="n_samples")


def cluster_kmeans(
    samples: Any, n_clusters: int, *, seed: int = 0, center: bool = True, normalize: bool = True
) -> np.ndarray:
    """K-means labels (n_samples,) of centred + unit rows (``n_init="auto"``, ``random_state=seed``)."""
    x = samples_to_numpy(samples, center=center, normalize=normalize)
    k = _check_n_clusters(n_clusters, x.shape[0])
    return _sklearn("KMeans")(n_clusters=k, n_init="auto", random_state=seed).fit_predict(x)


def cluster_agglomerative(
    samples: Any, n_clusters: int, *, linkage: str = "ward", center: bool = True, normalize: bool = True
) -> np.ndarray:
    """Hierarchical cluster labels (n_samples,) with ``linkage`` in {ward, average, complete, single}."""
    from sklearn.cluster import AgglomerativeClustering

    if linkage not in LINKAGES:
        raise ValueError("linkage must be one of: ward, average, complete, single")
    x = samples_to_numpy(samples, center=center, normalize=normalize)
    k = _check_n_clusters(n_clusters, x.shape[0])
    return AgglomerativeClustering(n_clusters=k, linkage=linkage).fit_predict(x)


def twonn(data: Any, discard_fraction: float = 0.1) -> float:
    """Intrinsic dimension of the rows by TwoNN (Facco et al., Sci. Rep. 2017).

    For each row, mu = r2 / r1 (distances to its second and first nearest other rows) follows a
    Pareto law with exponent d on a d-dimensional manifold; d is the least-squares slope through
    the origin of ``-log(1 - F(mu))`` against ``log(mu)`` (F the empirical CDF) after dropping the
    largest ``discard_fraction`` of the mu (the noisy tail). Rows with a duplicate (r1 = 0) are left
    out. Neighbours come from the exact kNN of :func:`latentatlas.kernels.knn_sqdist`.
    """
    from .. import kernels

    x = np.ascontiguousarray(as_rows(data), dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("data contains NaN or infinity")
    if x.shape[0] < 3:
        raise ValueError("TwoNN needs at least 3 samples")
    frac = float(discard_fraction)
    if not 0.0 <= frac < 1.0:
        raise ValueError(f"discard_fraction must be in [0, 1), got {discard_fraction!r}")
    d2, _ = kernels.knn_sqdist(x, k=2)
    r1, r2 = np.sqrt(d2[:, 0]), np.sqrt(d2[:, 1])
    keep = r1 > 0
    mu = np.sort(r2[keep] / r1[keep])
    n = mu.size
    if n < 3:
        raise ValueError("TwoNN needs at least 3 samples without duplicates")
    m = max(2, int(np.floor(n * (1.0 - frac))))
    xs = np.log(mu[:m])
    ys = -np.log(1.0 - np.arange(1, m + 1) / n)
    denom = float(xs @ xs)
    if denom <= 0:
        raise ValueError("TwoNN is undefined: every point's two nearest neighbours are equidistant")
    return float(xs @ ys / denom)


# ------------------------------------------------------------------------------- all layers


@dataclass(frozen=True)
class LayeredAnalysis:
    """Per-layer results of :func:`layered_analysis` (first axis follows ``layers``).

    similarity : (n_layers, n, n) float32 or None — centred cosine similarity
    pca : (n_layers, n, n_components) float64 or None — PCA coordinates
    explained_variance_ratio : (n_layers, n_components) float64 or None — of the kept components
    spectra : {layer: (min(n, hidden),) ratios of every component} for ``spectrum_layers``
    """

    layers: list[int]
    similarity: np.ndarray | None
    pca: np.ndarray | None
    explained_variance_ratio: np.ndarray | None
    spectra: dict[int, np.ndarray] = field(default_factory=dict)


def _cpu_count() -> int:
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _analyse_layer(
    x: np.ndarray, *, similarity: bool, pca: bool, center: bool, normalize: bool, k: int, spectrum: bool
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """One layer (n, h): similarity (n, n) float32, PCA scores (n, k), ratios — all from one Gram.

    The rows are centred in their own dtype (one O(n·h) pass, far cheaper than the product and
    free of the cancellation that centring a float32 Gram of residual-stream vectors with a
    large shared component would suffer); then G = Xc Xcᵀ (BLAS syrk). Row normalisation is the
    diagonal scaling D^-½ G D^-½ and PCA's own centring is H S H (O(n²) rank-1 updates).
    """
    n, h = x.shape
    S = None
    if similarity and not center:
        raw = finite(np.asarray(x @ x.T, dtype=np.float64))
        s = row_scale(raw)
        S = (raw * s[:, None] * s[None, :]).astype(np.float32)
    if not (pca or (similarity and center)):
        return S, None, None
    xc = center_rows(x)
    G = finite(np.asarray(xc @ xc.T, dtype=np.float64))
    scale = row_scale(G) if (normalize or (similarity and center)) else None
    Gn = G * scale[:, None] * scale[None, :] if scale is not None else None
    if similarity and center:
        S = Gn.astype(np.float32)  # type: ignore[union-attr]
    if not pca:
        return S, None, None
    if n > h:  # more personas than hidden units: PCA through the (h, h) covariance instead
        P = _prepare(x, True, normalize)
        scores, ratio = gram_pca(P, k, spectrum=spectrum)
    else:
        Gp = double_center(Gn if Gn is not None and normalize else G)
        scores, ratio = pca_from_gram(Gp, xc, scale if normalize else None, k, spectrum=spectrum)
    return S, scores, ratio


def layered_analysis(
    samples: Any,
    layers: Iterable[int] | None = None,
    *,
    n_components: int = 2,
    similarity: bool = True,
    pca: bool = True,
    center: bool = True,
    normalize: bool = True,
    spectrum_layers: Iterable[int] = (),
    threads: int | None = None,
    progress: bool = False,
) -> LayeredAnalysis:
    """Centred similarity and PCA of every selected layer from one matrix product per layer.

    Per layer everything derives from one ``n x n`` Gram matrix of the centred rows (a float32
    BLAS ``syrk`` for float32 input): the centred cosine similarity is its diagonal scaling, PCA's
    Gram is that matrix double-centred (O(n²)), and the top components come from subspace
    iteration on it (dense ``syevr`` when that does not certify convergence), so the O(n³) full
    decomposition is avoided. ``spectrum_layers`` (a subset of ``layers``) also get every
    component's ratio (for scree plots).

    ``threads`` layers are processed at once, each with single-threaded BLAS (default: one per
    CPU core); on a few cores this beats multi-threaded BLAS on one layer at a time, whose small
    ``n x n`` steps spend more time synchronising than computing. Memory stays bounded: a few
    ``n x h`` and ``n x n`` temporaries per worker, never a copy of the whole stack.
    """
    v = _vectors(samples)
    sel = validate_layers(v, layers)
    n, _, h = v.shape
    if pca:
        check_components(v[:, 0, :], n_components, method="PCA")
    workers = check_threads(threads) or _cpu_count()
    workers = max(1, min(workers, len(sel)))
    sims = np.empty((len(sel), n, n), dtype=np.float32) if similarity else None
    coords = np.empty((len(sel), n, n_components)) if pca else None
    ratios = np.empty((len(sel), n_components)) if pca else None
    want_spec = set(validate_layers(v, list(spectrum_layers))) if list(spectrum_layers) else set()
    if want_spec - set(sel):
        raise ValueError(f"spectrum_layers must be among the selected layers; got {sorted(want_spec - set(sel))}")
    spectra: dict[int, np.ndarray] = {}

    def run(i: int) -> int:
        layer = sel[i]
        S, c, r = _analyse_layer(
            v[:, layer, :],
            similarity=similarity,
            pca=pca,
            center=center,
            normalize=normalize,
            k=int(n_components),
            spectrum=pca and layer in want_spec,
        )
        if sims is not None:
            sims[i] = S
        if c is not None and r is not None:
            coords[i], ratios[i] = c, r[:n_components]  # type: ignore[index]
            if layer in want_spec:
                spectra[layer] = r
        return i

    if workers == 1:
        with blas_threads(gram_threads(n, h)):
            for i in progress_iter(range(len(sel)), progress, "layers", len(sel)):
                run(i)
    else:
        from concurrent.futures import ThreadPoolExecutor

        # BLAS/LAPACK release the GIL: whole layers in parallel, one BLAS thread each
        with blas_threads(1), ThreadPoolExecutor(workers) as pool:
            for _ in progress_iter(pool.map(run, range(len(sel))), progress, "layers", len(sel)):
                pass
    return LayeredAnalysis(sel, sims, coords, ratios, {layer: spectra[layer] for layer in sel if layer in spectra})


def layered_similarity(
    samples: Any, layers: Iterable[int] | None = None, *, center: bool = True, progress: bool = False
) -> np.ndarray:
    """Centred cosine similarity of every selected layer: (n_layers, n, n) float32."""
    return layered_analysis(samples, layers, similarity=True, pca=False, center=center, progress=progress).similarity  # type: ignore[return-value]


def layered_pca(
    samples: Any,
    layers: Iterable[int] | None = None,
    n_components: int = 2,
    *,
    normalize: bool = True,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """PCA of every selected layer: coords (n_layers, n, k) and the kept components' ratios (n_layers, k)."""
    res = layered_analysis(
        samples, layers, n_components=n_components, similarity=False, pca=True, normalize=normalize, progress=progress
    )
    return res.pca, res.explained_variance_ratio  # type: ignore[return-value]


def layer_variant_similarity(samples_a: Any, samples_b: Any, *, center: bool = False) -> np.ndarray:
    """Mean cosine between each persona's vectors in two variants, per layer: (num_layers,).

    Both inputs must hold the same personas in the same order (e.g. from
    :func:`load_variant_vectors`). ``center=True`` centres each variant across personas first.
    """
    a, b = _vectors(samples_a), _vectors(samples_b)
    if a.shape != b.shape:
        raise ValueError(f"samples_a and samples_b must have the same shape, got {a.shape} and {b.shape}")
    out = np.empty(a.shape[1])
    for layer in range(a.shape[1]):
        xa = _prepare(a[:, layer, :], center, True)
        xb = _prepare(b[:, layer, :], center, True)
        out[layer] = float(np.einsum("ij,ij->i", xa, xb, dtype=np.float64).mean())
    return out


def persona_spectral_energy(
    samples: Any,
    layers: Iterable[int] | None = None,
    *,
    k: int = 8,
    center: bool = True,
    normalized: bool = False,
    threads: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Feature-graph Rayleigh energy of each persona at each selected layer: (n_layers, n_personas).

    Per layer, the hidden units are the graph's nodes (top-``k`` cosine neighbours over the
    personas, :func:`latentatlas.spectral.feature_graph`) and a persona's energy is the Rayleigh
    quotient ``xᵀLx / xᵀx`` of its (by default centred) vector: low energy means the persona moves
    the residual stream along groups of co-varying hidden units, high energy means it excites
    units that do not usually fire together.
    """
    v = _vectors(samples)
    sel = validate_layers(v, layers)
    out = np.empty((len(sel), v.shape[0]))
    for i, layer in enumerate(progress_iter(sel, progress, "spectral energy", len(sel))):
        x = v[:, layer, :]
        x = center_rows(x) if center else np.ascontiguousarray(x)
        L = feature_laplacian(x, k, normalized=normalized, threads=threads)
        out[i] = rayleigh_energy(x, L, threads=threads)
    return out
