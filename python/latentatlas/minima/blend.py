"""Spectral augmentation of vanilla minimum scores, the alpha sweep and the full comparison.

``s_aug = alpha * s_vanilla + (1 - alpha) * R_norm``: alpha = 1 is the vanilla method alone,
alpha = 0 the spectral energy alone. Candidate minima of every score are its bottom ``quantile``.

Two modes (``notebook_compat``), differing in exactly two documented places:

1. **Vanilla KDE mask.** The seed notebook selects ``density_norm <= q`` — the *lowest*
   densities (anti-modes) — while the KDE score it blends is ``1 - density_norm`` (high density =
   low score). ``notebook_compat=True`` keeps that mask; the default selects
   ``1 - density_norm <= q``, the density modes, the same direction as its blended score.
2. **Diffusion eigenvectors.** The notebook calls ``scipy.linalg.eigh`` on the non-symmetric
   ``P = D⁻¹K``; eigh reads only the lower triangle, so its "diffusion coordinates" are not P's
   eigenvectors. ``notebook_compat=True`` keeps that (``method="notebook"``); the default uses P's
   true right eigenvectors (dense for small N, sparse kNN for large N; see
   :mod:`latentatlas.minima.diffusion`). This changes the DiffMaps rows and the diffusion
   correlation.

Everything else — spectral energy, 2-D view, KDE score, basin-hopping, blending — is identical in
both modes (``notebook_compat=True`` also forces the exact KDE and dense diffusion).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._display import fmt, html_card
from .._optional import import_optional
from .._progress import progress_bar
from .._validate import as_matrix, as_rng, check_choice, check_float, check_int, check_k
from ..metrics import jaccard, jaccard_matrix, mean_over, pearson, purity, quantile_mask
from ..spectral import feature_laplacian, minmax, rayleigh_energy
from .basin import basin_hopping_score
from .diffusion import diffusion_map, score_from_coords
from .graph import KNNGraph, knn_graph
from .kde import EXACT_MAX_N, BinnedKDE, kde_density
from .tomato import TomatoResult, knn_log_density, tomato, tomato_score

__all__ = [
    "METHODS",
    "MinimaComparison",
    "alpha_sweep",
    "blend",
    "check_alpha",
    "check_quantile",
    "compare",
    "normalised_energy",
    "pca_view",
]

#: Methods of the comparison table, in order.
METHODS = (
    "Spectral",
    "KDE",
    "KDE + Spectral",
    "DiffMaps",
    "DiffMaps + Spectral",
    "BasinHop",
    "BasinHop + Spectral",
    "ToMATo",
    "ToMATo + Spectral",
)
VANILLA = ("KDE", "DiffMaps", "BasinHop", "ToMATo")
#: Fewest points ``compare`` accepts (diffusion maps and a 2-D KDE need a handful).
MIN_POINTS = 10
#: compare's default feature-graph neighbours and kNN-graph size (each capped to fit a small X).
DEFAULT_K = 8
DEFAULT_NEIGHBORS = 30
#: Largest N for ``notebook_compat=True`` (dense N×N float64 kernel: 3.2 GB at this size).
COMPAT_MAX_N = 20_000


def check_alpha(alpha: Any) -> float:
    """The blend weight: a finite number in [0, 1]."""
    return check_float(alpha, "alpha", low=0.0, high=1.0)


def check_quantile(quantile: Any) -> float:
    """The minima fraction: a number in the open interval (0, 1)."""
    return check_float(quantile, "quantile", low=0.0, high=1.0, low_open=True, high_open=True)


def normalised_energy(X: Any, k: int, *, threads: int | None = None) -> np.ndarray:
    """R_norm (n,): the min-max scaled feature-graph Rayleigh energy of X's rows (k neighbours per feature)."""
    return minmax(rayleigh_energy(X, feature_laplacian(X, k, threads=threads), threads=threads))


def pca_view(X: Any) -> np.ndarray:
    """The 2-D PCA view (n, 2) the KDE and basin-hopping scores are computed on (fixed random_state)."""
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=42).fit_transform(np.asarray(X, dtype=np.float64))


def blend(vanilla: Any, energy: Any, alpha: float = 0.5) -> np.ndarray:
    """``alpha * vanilla + (1 - alpha) * energy`` for two (n,) scores; alpha in [0, 1]."""
    a = check_alpha(alpha)
    v = np.asarray(vanilla, dtype=np.float64)
    e = np.asarray(energy, dtype=np.float64)
    if v.ndim != 1 or v.shape != e.shape:
        raise ValueError(f"vanilla and energy must be 1-D of the same length, got {v.shape} and {e.shape}")
    return a * v + (1.0 - a) * e


def alpha_sweep(
    vanilla: Mapping[str, Any],
    energy: Any,
    labels: Any = None,
    *,
    alphas: Sequence[float] | None = None,
    quantile: float = 0.10,
) -> list[dict[str, Any]]:
    """Purity (with labels) and mean energy of each blended minima set over a grid of alphas.

    Parameters
    ----------
    vanilla : mapping name -> (n,) score
    energy : (n,) normalised spectral energy (R_norm)
    labels : (n,), optional
    alphas : default ``np.linspace(0, 1, 21)`` (the notebook's 21 steps)
    quantile : bottom quantile that defines the minima

    Returns
    -------
    list of dicts ``{"alpha", "method", "mean_energy"[, "purity"]}``, alpha-major.
    """
    q = check_quantile(quantile)
    grid = np.linspace(0.0, 1.0, 21) if alphas is None else np.asarray(alphas, dtype=np.float64)
    e = np.asarray(energy, dtype=np.float64)
    rows: list[dict[str, Any]] = []
    for a in grid:
        for name, v in vanilla.items():
            m = quantile_mask(blend(v, e, float(a)), q)
            row: dict[str, Any] = {"alpha": round(float(a), 2), "method": name}
            if labels is not None:
                row["purity"] = purity(m, labels)
            row["mean_energy"] = mean_over(m, e)
            rows.append(row)
    return rows


@dataclass
class MinimaComparison:
    """Result of :func:`compare`.

    Attributes
    ----------
    rows : list of dict
        One per method of :data:`METHODS`: ``method``, ``purity`` (only with labels), ``jaccard``
        (with the Spectral set), ``mean_energy`` (mean R_norm over the set).
    sweep : list of dict
        :func:`alpha_sweep` over 21 alphas for "KDE", "DiffMaps", "BasinHop", "ToMATo".
    correlations : dict
        Pearson r of R_norm with each vanilla score ("KDE", "DiffMaps", "BasinHop", "ToMATo").
    masks, scores : dict name -> (n,)
        Minima masks and the scores they came from (Spectral = R_norm).
    energy : (n,) R_norm;  view : (n, 2) PCA view;  density : (n,) KDE density at the items
    minima : (m, 2) basin-hopping minima in the view
    tomato : TomatoResult   ToMATo's clusters and persistence diagram
    info : dict   sizes, the paths taken, the kNN graph's method and sampled recall, timings
    """

    rows: list[dict[str, Any]]
    sweep: list[dict[str, Any]]
    correlations: dict[str, float]
    masks: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    energy: np.ndarray
    view: np.ndarray
    density: np.ndarray
    minima: np.ndarray
    labels: np.ndarray | None
    alpha: float
    quantile: float
    k: int
    notebook_compat: bool
    info: dict[str, Any] = field(default_factory=dict)
    tomato: TomatoResult | None = None

    @property
    def jaccard_matrix(self) -> np.ndarray:
        """(9, 9) pairwise Jaccard of the masks in :data:`METHODS` order."""
        return jaccard_matrix([self.masks[m] for m in METHODS])

    def to_frame(self) -> Any:
        """``rows`` as a pandas DataFrame indexed by method (pandas is imported only here)."""
        pd = import_optional("pandas", feature="MinimaComparison.to_frame()")
        return pd.DataFrame(self.rows).set_index("method")

    def __repr__(self) -> str:
        best = max(self.rows, key=lambda r: r.get("purity", -1.0)) if self.labels is not None else None
        what = f", best purity {best['method']} {best['purity']:.3f}" if best else ""
        return (
            f"MinimaComparison({len(self.energy):,} items, {len(self.rows)} methods, alpha={self.alpha}, "
            f"quantile={self.quantile}{what})"
        )

    def _repr_html_(self) -> str:
        facts = {
            "items": len(self.energy), "alpha": self.alpha, "quantile": self.quantile,
            "kNN graph": f"{self.info.get('knn_method')} (recall {fmt(self.info.get('knn_recall'))})",
            "seconds": sum(self.info.get("timings", {}).values()),
        }  # fmt: skip
        cols = ["method", *(["purity"] if self.labels is not None else []), "jaccard", "mean_energy"]
        return html_card(repr(self), facts, self.rows, cols)

    def table(self) -> str:
        """The comparison as a Markdown table (the notebook's printed precision)."""
        has_p = self.labels is not None
        head = "| Method |" + (" purity |" if has_p else "") + " Jaccard w/ Spectral | mean λ |"
        sep = "|---|" + ("---|" if has_p else "") + "---|---|"
        lines = [head, sep]
        for r in self.rows:
            p = f" {r['purity']:.3f} |" if has_p else ""
            lines.append(f"| {r['method']} |{p} {r['jaccard']:.3f} | {r['mean_energy']:.4f} |")
        return "\n".join(lines)


def compare(
    X: Any,
    labels: Any = None,
    *,
    alpha: float = 0.5,
    k: int | None = None,
    quantile: float = 0.10,
    rng: Any = None,
    notebook_compat: bool = False,
    progress: bool = True,
    n_seeds: int = 14,
    kde_method: str = "auto",
    diffusion_method: str = "auto",
    n_neighbors: int | None = None,
    knn: str = "auto",
    n_clusters: int | None = None,
    threads: int | None = None,
    basin_kwargs: Mapping[str, Any] | None = None,
) -> MinimaComparison:
    """Local minima of a latent space by nine methods: the seed notebook's seven and ToMATo (vanilla, blended).

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
    labels : array-like (n_samples,), optional
        Ground truth; without it purity is omitted.
    alpha : float in [0, 1], default 0.5
        Blend weight of the vanilla score.
    k : int, optional
        Neighbours per feature in the feature graph (spectral energy); ``1 <= k < n_features``.
        Default ``min(8, n_features - 1)``.
    quantile : float in (0, 1), default 0.10
        Every method's minima are the items whose score is at most this quantile.
    rng : numpy Generator, int or None
        Draws the basin-hopping seeds. To reproduce the notebook, pass the ``default_rng(42)``
        generator that made the corpus (its stream continues). None = ``default_rng(42)``.
    notebook_compat : bool, default False
        Reproduce the published table (module docstring: the two places the modes differ).
    progress : bool
        A bar over the steps (:func:`latentatlas._progress.progress_bar`).
    n_seeds : int, default 14
        Basin-hopping starts.
    kde_method : {"auto", "exact", "binned"}
    diffusion_method : {"auto", "dense", "nystrom", "sparse"}
    n_neighbors : int, optional
        Neighbours per item of the kNN graph (ToMATo; the sparse diffusion path); ``1 <= n_neighbors
        < n_samples``. Default ``min(30, n_samples - 1)``.
    knn : {"auto", "exact", "approx"}
        How the kNN graph is built (:func:`latentatlas.minima.graph.knn_graph`); an approximate
        graph's sampled recall is in ``info["knn_recall"]``.
    n_clusters : int, optional
        ToMATo's clusters; None: the widest gap of its persistence diagram.
    threads : int, optional
        Threads for the Rust kernels.
    basin_kwargs : mapping, optional
        Extra keywords for :func:`latentatlas.minima.basin_hopping_score` (``niter``, ``T``,
        ``stepsize``, ``spread``, ``seed``, ``distance_threshold``); defaults are the notebook's.

    Returns
    -------
    MinimaComparison
    """
    X = as_matrix(X, "X")
    n, f = X.shape
    if n < MIN_POINTS:
        raise ValueError(f"X needs at least {MIN_POINTS} points (rows) to compare minima methods, got {n}")
    if f < 2:
        raise ValueError(f"X needs at least 2 feature columns, got shape {X.shape}")
    if k is None:
        k = min(DEFAULT_K, f - 1)  # defaults adapt to small inputs: every documented-valid X runs
    a, q, k = check_alpha(alpha), check_quantile(quantile), check_k(k, f, what="n_features")
    lab = _check_labels(labels, n)
    gen = as_rng(rng)
    kde_method, diffusion_method = _check_modes(notebook_compat, n, kde_method, diffusion_method)
    check_choice(knn, "knn", ("auto", "exact", "approx"))
    if n_neighbors is None:
        n_neighbors = min(DEFAULT_NEIGHBORS, n - 1)
    n_neighbors = check_int(n_neighbors, "n_neighbors", high=n, high_inclusive=False, what="n_samples")
    if n_clusters is not None:
        n_clusters = check_int(n_clusters, "n_clusters", low=1)
    info: dict[str, Any] = {"n": n, "n_features": f, "kde_method": kde_method, "diffusion_method": diffusion_method}

    with _Steps(info, progress) as step:
        R = step("spectral energy", normalised_energy, X, k, threads=threads)
        view = step("PCA view", pca_view, X)
        density, dn = step("KDE", _kde_density, view, kde_method, info)
        graph = step("kNN graph", _knn, X, n_neighbors, knn, threads, info)
        dif_s = step("diffusion maps", _diffusion_score, X, graph, diffusion_method, n_neighbors, threads, info)
        tom = step("ToMATo", _tomato, graph, n_clusters, info)
        del graph
        bh_s, minima = step(
            "basin-hopping", basin_hopping_score,
            view, rng=gen, n_seeds=n_seeds, progress=progress, kde=kde_method, **dict(basin_kwargs or {}),
        )  # fmt: skip
        vanilla = {"KDE": 1.0 - dn, "DiffMaps": dif_s, "BasinHop": bh_s, "ToMATo": tomato_score(tom)}
        table = step("sweep", _tabulate, vanilla, R, lab, a, q, dn if notebook_compat else None)
    return MinimaComparison(
        **table, energy=R, view=view, density=density, minima=minima, labels=lab, alpha=a, quantile=q, k=k,
        notebook_compat=bool(notebook_compat), info=info, tomato=tom,
    )  # fmt: skip


# -- compare's steps ------------------------------------------------------------------------------------
class _Steps:
    """compare's progress bar over its named steps, and the seconds of each in ``info["timings"]``."""

    def __init__(self, info: dict[str, Any], progress: bool) -> None:
        self.timings: dict[str, float] = {}
        info["timings"] = self.timings  # seconds per step, for the benchmark's growth table
        self.bar = progress_bar(len(STEPS), "minima", progress)

    def __enter__(self) -> _Steps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()

    def __call__(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self.bar.set_postfix_str(name, refresh=False)  # the next update redraws, within the bar's limits
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        self.timings[name] = time.perf_counter() - t
        self.bar.update()
        return out


#: compare's steps, in order (the progress bar's total).
STEPS = ("spectral energy", "PCA view", "KDE", "kNN graph", "diffusion maps", "ToMATo", "basin-hopping", "sweep")


def _check_labels(labels: Any, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},) to match X's {n} rows, got {lab.shape}")
    return lab


def _check_modes(notebook_compat: bool, n: int, kde_method: str, diffusion_method: str) -> tuple[str, str]:
    """The KDE and diffusion paths: the notebook's in compatibility mode (dense, so bounded in n)."""
    if notebook_compat:
        if n > COMPAT_MAX_N:
            raise ValueError(
                f"notebook_compat=True builds the notebook's dense N×N kernel; X has {n} rows "
                f"(at most {COMPAT_MAX_N}); use the default mode for large data"
            )
        return "exact", "notebook"
    check_choice(kde_method, "kde_method", ("auto", "exact", "binned"))
    check_choice(diffusion_method, "diffusion_method", ("auto", "dense", "nystrom", "sparse"))
    return kde_method, diffusion_method


def _kde_density(view: np.ndarray, kde_method: str, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(density, its min-max): the exact KDE, or the binned one past ``EXACT_MAX_N`` items."""
    binned = kde_method == "binned" or (kde_method == "auto" and view.shape[0] > EXACT_MAX_N)
    info["kde_path"] = "binned" if binned else "exact"
    if binned:
        bk = BinnedKDE(view)
        density = bk(view)
        info["kde_max_rel_error"] = bk.max_error()  # vs exact scipy KDE at 256 random items
    else:
        density = kde_density(view, method="exact")
    return density, minmax(density)


def _knn(X: np.ndarray, n_neighbors: int, knn: str, threads: int | None, info: dict[str, Any]) -> KNNGraph:
    graph = knn_graph(X, n_neighbors, method=knn, threads=threads)  # type: ignore[arg-type]
    info.update(knn_method=graph.method, knn_k=graph.k, knn_recall=graph.recall, knn_recall_rows=graph.n_recall)
    return graph


def _diffusion_score(
    X: np.ndarray, graph: KNNGraph, method: str, n_neighbors: int, threads: int | None, info: dict[str, Any]
) -> np.ndarray:
    how: Any = method  # checked by _check_modes
    coords, comp, info["diffusion_path"] = diffusion_map(
        X, method=how, n_neighbors=n_neighbors, graph=graph, threads=threads
    )
    info["diffusion_components"] = int(comp.max()) + 1
    return score_from_coords(coords, comp)


def _tomato(graph: KNNGraph, n_clusters: int | None, info: dict[str, Any]) -> TomatoResult:
    indptr, indices = graph.symmetric_csr()
    tom = tomato(knn_log_density(graph.d2), indptr, indices, n_clusters=n_clusters)
    info.update(tomato_clusters=tom.n_clusters, tomato_leaves=int(tom.peaks.size))
    return tom


def _tabulate(
    vanilla: dict[str, np.ndarray],
    R: np.ndarray,
    lab: np.ndarray | None,
    a: float,
    q: float,
    compat_density: np.ndarray | None,
) -> dict[str, Any]:
    """Every method's scores and minima, the table rows, the alpha sweep and the correlations.

    ``compat_density`` (notebook mode): the KDE minima are the notebook's anti-mode mask, the lowest
    quantile of the min-maxed density (documented in the module docstring)."""
    scores: dict[str, np.ndarray] = {"Spectral": R}
    masks: dict[str, np.ndarray] = {"Spectral": quantile_mask(R, q)}
    for name, v in vanilla.items():
        scores[name] = v
        masks[name] = quantile_mask(v, q)
        scores[f"{name} + Spectral"] = blend(v, R, a)
        masks[f"{name} + Spectral"] = quantile_mask(scores[f"{name} + Spectral"], q)
    if compat_density is not None:
        masks["KDE"] = quantile_mask(compat_density, q)
    rows = []
    for m in METHODS:
        row: dict[str, Any] = {"method": m}
        if lab is not None:
            row["purity"] = purity(masks[m], lab)
        row["jaccard"] = jaccard(masks[m], masks["Spectral"])
        row["mean_energy"] = mean_over(masks[m], R)
        rows.append(row)
    return {
        "rows": rows,
        "sweep": alpha_sweep(vanilla, R, lab, quantile=q),
        "correlations": {name: pearson(R, v) for name, v in vanilla.items()},
        "masks": masks,
        "scores": scores,
    }
