"""Basin-hopping on the negative log KDE of a 2-D view (the seed notebook's third baseline).

From ``n_seeds`` starting points ``mean + spread * N(0, I)`` drawn from ``rng``, run
``scipy.optimize.basinhopping`` on ``f(p) = -log(kde(p) + 1e-20)`` (Nelder-Mead local steps),
merge the end points closer than ``distance_threshold`` by single-linkage agglomerative clustering
(scikit-learn), and take the cluster means as the minima. An item's score is the min-max distance
to its nearest minimum.

For up to :data:`BASIN_EXACT_MAX_N` points the objective is scipy's exact KDE (as the notebook); above,
it is the binned KDE (:class:`latentatlas.minima.kde.BinnedKDE`), so each evaluation costs a
cubic-spline lookup instead of an O(N) sum.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from .._progress import progress_bar
from .._validate import as_rng, check_choice, check_int
from ..linalg import blas_threads
from ..spectral import minmax
from .kde import BinnedKDE, as_view, silverman_covariance

__all__ = ["BASIN_EXACT_MAX_N", "basin_hopping_minima", "basin_hopping_score", "as_generator", "as_rng"]

#: Above this many points ``kde="auto"`` evaluates the objective on the binned KDE grid.
BASIN_EXACT_MAX_N = 2_000


as_generator = as_rng  # the old name of the shared helper, kept for existing imports


def _objective(X: np.ndarray, kde: str) -> Callable[[Any], float]:
    if kde == "exact" or (kde == "auto" and X.shape[0] <= BASIN_EXACT_MAX_N):
        from scipy.stats import gaussian_kde

        silverman_covariance(X)
        k = gaussian_kde(X.T, bw_method="silverman")

        def f(pt: Any) -> float:  # the notebook's neg_log_kde, verbatim
            kde_value = k(np.array(pt).reshape(2, 1)).item()
            return -np.log(float(kde_value) + 1e-20)

        return f
    b = BinnedKDE(X)

    def g(pt: Any) -> float:
        return -np.log(b.at(pt) + 1e-20)

    return g


def basin_hopping_minima(
    X2d: Any,
    *,
    n_seeds: int = 14,
    rng: Any = None,
    spread: float = 0.6,
    niter: int = 60,
    T: float = 1.2,
    stepsize: float = 0.6,
    seed: int = 42,
    distance_threshold: float = 0.5,
    kde: Literal["auto", "exact", "binned"] = "auto",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Run basin-hopping from ``n_seeds`` seeds; return ``(minima (m, 2), end_points (n_seeds, 2))``.

    Parameters
    ----------
    X2d : array-like (n, 2)
    n_seeds : int, default 14
    rng : numpy Generator, int or None
        Draws the seeds. Pass the generator that made the data to continue its stream, as the
        notebook does; None means ``default_rng(42)``.
    spread, niter, T, stepsize, seed : notebook defaults
        Seed spread around the mean; ``basinhopping``'s iterations, temperature, step size and
        its own ``seed`` (the same for every start, as in the notebook).
    distance_threshold : float, default 0.5
        Single-linkage merge distance for the end points.
    kde : {"auto", "exact", "binned"}
    progress : bool
        A bar over the seeds (:func:`latentatlas._progress.progress_bar`).
    """
    from scipy.optimize import basinhopping
    from sklearn.cluster import AgglomerativeClustering

    X = as_view(X2d)
    check_choice(kde, "kde", ("auto", "exact", "binned"))
    n_seeds = check_int(n_seeds, "n_seeds")
    if not distance_threshold > 0:
        raise ValueError(f"distance_threshold must be > 0, got {distance_threshold!r}")
    gen = as_rng(rng)
    f = _objective(X, kde)
    seeds = [X.mean(0) + spread * gen.standard_normal(2) for _ in range(int(n_seeds))]
    opts = {"method": "Nelder-Mead", "options": {"xatol": 1e-3, "fatol": 1e-3, "maxiter": 300}}
    # Thousands of tiny BLAS calls: a multi-threaded BLAS only spins (20x slower on a busy machine).
    with blas_threads(1):
        ends = np.array(
            [
                basinhopping(f, s, minimizer_kwargs=opts, niter=niter, T=T, stepsize=stepsize, seed=seed).x
                for s in progress_bar(seeds, "basin-hopping", progress)
            ]
        )
    if len(ends) == 1:
        return ends.copy(), ends
    cl = AgglomerativeClustering(n_clusters=None, distance_threshold=distance_threshold, linkage="single").fit(ends)
    minima = np.array([ends[cl.labels_ == c].mean(axis=0) for c in np.unique(cl.labels_)])
    return minima, ends


def basin_hopping_score(X2d: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Vanilla basin-hopping minimum score: ``(score (n,), minima (m, 2))``.

    ``score`` = min-max distance of each item to its nearest minimum in the 2-D view (low = near a
    minimum). Keyword arguments are those of :func:`basin_hopping_minima`.
    """
    from scipy.spatial import cKDTree

    X = as_view(X2d)
    minima, _ = basin_hopping_minima(X, **kwargs)
    dist, _ = cKDTree(minima).query(X, k=1)
    return minmax(dist), minima
