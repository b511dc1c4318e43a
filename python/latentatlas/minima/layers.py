"""Local minima tracked across layers: the same items seen through a stack of per-layer matrices.

A stack is L matrices ``(N, d_l)`` whose rows are the same N items in the same order (a persona
store's per-layer persona vectors, a model's hidden states of the same inputs, ...); the widths
``d_l`` may differ. Each layer is scored on its own with the single-layer machinery of
:func:`latentatlas.minima.compare`: the spectral energy ``R_norm`` (:func:`~latentatlas.minima.blend.normalised_energy`),
one vanilla score (``method``), their blend ``alpha·s + (1−alpha)·R_norm`` and the bottom ``quantile``
of the blend as that layer's minima — so layer l's result equals ``compare(stack[l])``'s
``"<Method> + Spectral"`` score and mask (tested).

Across layers, each item's **stability** is the fraction of consecutive layer pairs (l, l+1) in which
it is a minimum in *both* layers: 1 = a minimum in every layer, 0 = never a minimum in two adjacent
layers. (Keeping "non-minimum" status does not count: an item that is never a minimum is not stable
as a minimum.) ``frequency`` (fraction of layers where it is a minimum) and ``longest_run`` (most
consecutive layers as a minimum) are reported beside it. ``transitions[l]`` counts the items per
(state at layer l, state at layer l+1), states 0 = other, 1 = minimum; each pair sums to N.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._progress import progress_bar
from .._validate import as_matrix, as_rng, check_choice, check_finite, check_int, check_k
from ..metrics import quantile_mask
from .basin import basin_hopping_score
from .blend import blend, check_alpha, check_quantile, normalised_energy, pca_view
from .diffusion import diffusion_score
from .graph import knn_graph
from .kde import kde_score
from .tomato import knn_log_density, tomato, tomato_score

__all__ = ["LAYER_METHODS", "MIN_ITEMS", "LayerMinima", "minima_across_layers"]

#: Vanilla scores a layer can be blended with -> their name in :data:`latentatlas.minima.METHODS`.
LAYER_METHODS = {"kde": "KDE", "diffusion": "DiffMaps", "basin": "BasinHop", "tomato": "ToMATo"}
#: Fewest items (rows) per layer: diffusion maps need 4 points, and with fewer than 5 a bottom
#: quantile of the blended score is one or two items whatever the data.
MIN_ITEMS = 5
#: Neighbours of the kNN graph (ToMATo) when ``n_neighbors`` is None: compare's default, capped at N - 1.
DEFAULT_NEIGHBORS = 30
#: Neighbours per feature of each layer's feature graph when ``k`` is None: compare's default, capped at min(d_l) - 1.
DEFAULT_K = 8


@dataclass
class LayerMinima:
    """Result of :func:`minima_across_layers` for L layers of N items.

    Attributes
    ----------
    energy : (L, N) float64      R_norm per layer (min-max scaled feature-graph Rayleigh energy)
    vanilla : (L, N) float64     the vanilla score of ``method`` per layer
    score : (L, N) float64       the blended score ``alpha·vanilla + (1−alpha)·energy`` (low = minimum)
    is_minimum : (L, N) bool     the blend's bottom ``quantile`` per layer
    stability : (N,) float64     fraction of the L−1 consecutive layer pairs where the item is a minimum in both
    frequency : (N,) float64     fraction of the L layers where the item is a minimum
    longest_run : (N,) int64     most consecutive layers in which the item is a minimum
    transitions : (L−1, 2, 2) int64   ``[l, a, b]`` = items in state a at layer l and b at layer l+1
                                      (0 = other, 1 = minimum); every ``transitions[l].sum()`` is N
    layers : list of str (L,)    layer labels;  items : list of str (N,) or None   item labels
    method, alpha, quantile, k : the settings;  info : dict   widths per layer, n_neighbors
    """

    energy: np.ndarray
    vanilla: np.ndarray
    score: np.ndarray
    is_minimum: np.ndarray
    stability: np.ndarray
    frequency: np.ndarray
    longest_run: np.ndarray
    transitions: np.ndarray
    layers: list[str]
    items: list[str] | None
    method: str
    alpha: float
    quantile: float
    k: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return int(self.score.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.score.shape[1])

    def order(self) -> np.ndarray:
        """Item indices (N,) from most to least stable (ties: higher frequency, then lower mean score)."""
        return np.lexsort((self.score.mean(axis=0), -self.frequency, -self.stability))

    def table(self, top: int = 10) -> str:
        """The ``top`` most stable items as a Markdown table (item: index and label)."""
        top = check_int(top, "top")
        lines = ["| item | stability | frequency | longest run | mean score |", "|---|---|---|---|---|"]
        for i in self.order()[:top]:
            name = f"{i} ({self.items[i]})" if self.items is not None else str(i)
            lines.append(
                f"| {name} | {self.stability[i]:.2f} | {self.frequency[i]:.2f} | {self.longest_run[i]} "
                f"| {self.score[:, i].mean():.3f} |"
            )
        return "\n".join(lines)


def _as_stack(stack: Any) -> list[np.ndarray]:
    """The stack as a list of L validated (N, d_l) matrices with the same N, finite, L >= 2."""
    if isinstance(stack, (str, bytes, Mapping)):
        raise TypeError(f"stack must be an array (n_layers, n_items, dim) or a sequence of (n_items, dim_l) matrices, "
                        f"got {type(stack).__name__}")  # fmt: skip
    if isinstance(stack, np.ndarray) or hasattr(stack, "__array__") and not isinstance(stack, Sequence):
        arr = np.asarray(stack)
        if arr.ndim != 3:
            raise ValueError(
                f"stack must be 3-D (n_layers, n_items, dim) or a sequence of 2-D matrices, got shape {arr.shape}"
            )
        mats = [arr[i] for i in range(arr.shape[0])]
    elif isinstance(stack, Sequence):
        mats = list(stack)
    else:
        raise TypeError(f"stack must be an array (n_layers, n_items, dim) or a sequence of (n_items, dim_l) matrices, "
                        f"got {type(stack).__name__}")  # fmt: skip
    if len(mats) < 2:
        raise ValueError(f"stack needs at least 2 layers to track minima across layers, got {len(mats)}")
    out: list[np.ndarray] = []
    for i, m in enumerate(mats):
        name = f"stack[{i}]"
        X = as_matrix(m, name)
        if X.shape[0] != (out[0].shape[0] if out else X.shape[0]):
            raise ValueError(
                f"{name} has {X.shape[0]} rows but stack[0] has {out[0].shape[0]}: every layer must hold the same "
                "items (rows) in the same order"
            )
        if X.shape[0] < MIN_ITEMS:
            raise ValueError(f"stack needs at least {MIN_ITEMS} items (rows) per layer, got {X.shape[0]}")
        if X.shape[1] < 2:
            raise ValueError(f"{name} needs at least 2 feature columns, got shape {X.shape}")
        check_finite(X, name)
        out.append(X)
    return out


def _labels(values: Any, n: int, name: str) -> list[str]:
    out = [str(v) for v in values]
    if len(out) != n:
        raise ValueError(f"{name} must have {n} entries (one per {name[:-1]}), got {len(out)}")
    return out


def transition_counts(is_minimum: Any) -> np.ndarray:
    """``(L−1, 2, 2)`` counts of items per (state at layer l, state at layer l+1); 0 = other, 1 = minimum."""
    m = np.asarray(is_minimum, dtype=bool)
    if m.ndim != 2 or m.shape[0] < 2:
        raise ValueError(f"is_minimum must be 2-D (n_layers >= 2, n_items), got shape {m.shape}")
    a, b = m[:-1].astype(np.int64), m[1:].astype(np.int64)
    out = np.zeros((m.shape[0] - 1, 2, 2), dtype=np.int64)
    for s in (0, 1):
        for t in (0, 1):
            out[:, s, t] = ((a == s) & (b == t)).sum(axis=1)
    return out


def _longest_run(m: np.ndarray) -> np.ndarray:
    """Per column of a (L, N) bool array, the longest run of consecutive True."""
    run = np.zeros(m.shape[1], dtype=np.int64)
    best = np.zeros(m.shape[1], dtype=np.int64)
    for row in m:
        run = np.where(row, run + 1, 0)
        best = np.maximum(best, run)
    return best


def _layer_scores(
    X: np.ndarray,
    method: str,
    k: int,
    n_neighbors: int,
    n_clusters: int | None,
    gen: np.random.Generator,
    threads: int | None,
    basin_kwargs: Mapping[str, Any] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """One layer's ``(R_norm (N,), vanilla score (N,))``, each computed as :func:`compare` computes it."""
    energy = normalised_energy(X, k, threads=threads)
    if method == "kde":
        return energy, kde_score(pca_view(X))
    if method == "basin":
        return energy, basin_hopping_score(pca_view(X), rng=gen, **dict(basin_kwargs or {}))[0]
    if method == "diffusion":
        return energy, diffusion_score(X, n_neighbors=n_neighbors, threads=threads)
    graph = knn_graph(X, n_neighbors, threads=threads)
    indptr, indices = graph.symmetric_csr()
    return energy, tomato_score(tomato(knn_log_density(graph.d2), indptr, indices, n_clusters=n_clusters))


def minima_across_layers(
    stack: Any,
    *,
    method: str = "kde",
    alpha: float = 0.5,
    k: int | None = None,
    quantile: float = 0.10,
    layers: Sequence[Any] | None = None,
    items: Sequence[Any] | None = None,
    n_neighbors: int | None = None,
    n_clusters: int | None = None,
    rng: Any = None,
    threads: int | None = None,
    progress: bool = False,
    basin_kwargs: Mapping[str, Any] | None = None,
) -> LayerMinima:
    """Spectral energy, blended minima and their stability for each layer of a stack of matrices.

    Parameters
    ----------
    stack : array (L, N, d) or a sequence of L arrays (N, d_l)
        Layer l's matrix holds the N items in rows (the same items, same order, in every layer); the
        widths d_l may differ. L >= 2, N >= :data:`MIN_ITEMS`, d_l >= 2, all values finite. A persona
        store: ``np.stack([store.load_numpy(variant, p) for p in ids], axis=1)`` is (L, P, H).
    method : {"kde", "diffusion", "basin", "tomato"}, default "kde"
        The vanilla score blended with the energy (as in :func:`latentatlas.minima.compare`): KDE on the
        PCA-2D view, diffusion maps, basin-hopping on the view, ToMATo on the kNN graph.
    alpha : float in [0, 1], default 0.5
        Blend weight of the vanilla score (0 = the spectral energy alone).
    k : int, optional
        Neighbours per feature of each layer's feature graph; ``1 <= k < min(d_l)``. Default
        ``min(8, min(d_l) - 1)``.
    quantile : float in (0, 1), default 0.10
        Each layer's minima are the items whose blended score is at most this quantile.
    layers, items : sequences of labels, optional
        L layer labels (default ``"0" ... "L-1"``) and N item labels (default None: indices).
    n_neighbors : int, optional
        kNN graph size (``method="tomato"``; the sparse diffusion path above 2,000 items); default
        min(30, N − 1).
    n_clusters : int, optional
        ToMATo's clusters per layer (None: the widest gap of each layer's persistence diagram).
    rng : numpy Generator, int or None
        Basin-hopping seeds: one generator whose stream continues from layer to layer (None = seed 42).
    threads : int, optional
        Threads for the Rust kernels; the result does not depend on it.
    progress : bool, default False
        A bar over the layers (:func:`latentatlas._progress.progress_bar`).
    basin_kwargs : mapping, optional
        Extra keywords for :func:`latentatlas.minima.basin_hopping_score`.

    Returns
    -------
    LayerMinima
    """
    mats = _as_stack(stack)
    n_layers, n = len(mats), mats[0].shape[0]
    check_choice(method, "method", tuple(LAYER_METHODS))
    a = check_alpha(alpha)
    q = check_quantile(quantile)
    narrowest = min(X.shape[1] for X in mats)
    if k is None:
        k = min(DEFAULT_K, narrowest - 1)  # defaults adapt to small inputs: every documented-valid stack runs
    k = check_k(k, narrowest, what="the narrowest layer's width")
    if n_neighbors is None:
        n_neighbors = min(DEFAULT_NEIGHBORS, n - 1)
    n_neighbors = check_int(n_neighbors, "n_neighbors", high=n, high_inclusive=False, what="n_items")
    if n_clusters is not None:
        n_clusters = check_int(n_clusters, "n_clusters", low=1)
    layer_names = _labels(range(n_layers) if layers is None else layers, n_layers, "layers")
    item_names = None if items is None else _labels(items, n, "items")
    gen = as_rng(rng)

    energy = np.empty((n_layers, n))
    vanilla = np.empty((n_layers, n))
    for i, X in enumerate(progress_bar(mats, "minima across layers", progress)):
        try:
            energy[i], vanilla[i] = _layer_scores(X, method, k, n_neighbors, n_clusters, gen, threads, basin_kwargs)
        except ValueError as e:  # e.g. a layer whose rows all coincide: say which layer
            raise ValueError(f"stack[{i}] (layer {layer_names[i]!r}): {e}") from e
    score = blend(vanilla.ravel(), energy.ravel(), a).reshape(n_layers, n)
    is_min = np.stack([quantile_mask(s, q) for s in score])
    both = is_min[:-1] & is_min[1:]
    return LayerMinima(
        energy=energy,
        vanilla=vanilla,
        score=score,
        is_minimum=is_min,
        stability=both.mean(axis=0),
        frequency=is_min.mean(axis=0),
        longest_run=_longest_run(is_min),
        transitions=transition_counts(is_min),
        layers=layer_names,
        items=item_names,
        method=method,
        alpha=a,
        quantile=q,
        k=k,
        info={"widths": [int(X.shape[1]) for X in mats], "n_neighbors": n_neighbors},
    )
