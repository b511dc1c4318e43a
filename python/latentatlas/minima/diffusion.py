"""Diffusion maps: a dense exact path (small N) and a sparse kNN path (large N).

The Markov operator is ``P = D⁻¹K`` with the Gaussian kernel ``K = exp(-|x_i - x_j|² / (2σ²))`` and
the seed's bandwidth ``σ² = median(|x - mean|²)`` over the first 300 rows. The diffusion
coordinates are the 2nd and 3rd right eigenvectors of P scaled by their eigenvalues; the score is
the min-max distance of each item's coordinates to their mean (near the centre of the dominant
basin = low score).

Paths:

- ``"dense"``: the full N×N kernel; P's right eigenvectors come from the symmetric
  ``M = D^-1/2 K D^-1/2`` (same eigenvalues; ``ψ = D^-1/2 u``) via ``scipy.linalg.eigh``.
- ``"sparse"``: the exact k-nearest-neighbour graph from the Rust core (``_core.knn_sqdist`` on
  blocked GEMM + per-row top-k, never an N×N matrix), the same Gaussian weights on its edges
  (max-symmetrised, self loops kept as K_ii = 1), and ``scipy.sparse.linalg.eigsh`` on the same
  symmetric normalisation. Memory O(N·k); time dominated by the kNN search.
- ``"notebook"``: exactly the seed's ``eigh(P, subset_by_index=[N-6, N-1])`` on the
  *non-symmetric* P. ``scipy.linalg.eigh`` reads only P's lower triangle, so these are the
  eigenvectors of a different symmetric matrix, not P's; on the seed corpus its score has a
  Spearman correlation of only 0.14 with the dense diffusion-map score. Used by
  ``compare(..., notebook_compat=True)`` to reproduce the published table.

``"auto"`` takes the dense path up to :data:`DENSE_MAX_N` points and the sparse one above. The
truncation to k neighbours makes the sparse operator more local than the dense wide kernel: the
two scores agree well where the data has cluster structure (Spearman ≈ 0.97 on the three-cluster
corpus at N = 5,000) and less on digits (≈ 0.3, see README).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .._validate import as_matrix, check_choice, check_int, check_threads
from ..spectral import minmax

__all__ = ["DENSE_MAX_N", "diffusion_coords", "diffusion_score", "seed_bandwidth"]

#: Above this many points ``method="auto"`` uses the sparse kNN path.
DENSE_MAX_N = 2_000

DiffusionMethod = Literal["auto", "dense", "sparse", "notebook"]


def seed_bandwidth(X: np.ndarray) -> float:
    """The seed's σ²: median squared distance to the mean over the first 300 rows."""
    sub = np.asarray(X[:300], dtype=np.float64)
    s2 = float(np.median(np.sum((sub - sub.mean(0)) ** 2, axis=1)))
    if not s2 > 0:
        raise ValueError("X's first 300 rows are all identical; the diffusion bandwidth would be 0")
    return s2


def _dense(X: np.ndarray, s2: float, notebook: bool) -> tuple[np.ndarray, np.ndarray]:
    from scipy.linalg import eigh
    from sklearn.metrics.pairwise import rbf_kernel

    n = X.shape[0]
    K = rbf_kernel(X, gamma=1.0 / (2.0 * s2))
    d = K.sum(axis=1)
    if notebook:
        P = np.diag(1.0 / d) @ K
        vals, vecs = eigh(P, subset_by_index=[n - 6, n - 1])
        return vals[::-1], vecs[:, ::-1]
    r = 1.0 / np.sqrt(d)
    K *= r[:, None]
    K *= r[None, :]
    vals, vecs = eigh(K, subset_by_index=[n - 3, n - 1])
    return vals[::-1], vecs[:, ::-1] * r[:, None]


def knn_sqdist(X: np.ndarray, k: int, *, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN (self excluded) by squared L2: ``(d2 (n, k) float64, idx (n, k) int64)``.

    Candidates come from the Rust GEMM + top-k in float32; the distances of the chosen pairs are
    then recomputed in float64 (no cancellation error in the kernel weights), each row ascending.
    A Dask X gives the same graph as lazy Dask arrays (:func:`latentatlas.chunked.knn_sqdist`).
    """
    from .. import _core, chunked

    if chunked.is_dask_array(X):
        return chunked.knn_sqdist(X, k, threads=threads)

    return _core.knn_sqdist(np.ascontiguousarray(X, dtype=np.float32), k=k, threads=threads)


def _sparse(X: np.ndarray, s2: float, k: int, threads: int | None) -> tuple[np.ndarray, np.ndarray]:
    import scipy.sparse as sp
    from scipy.sparse.linalg import eigsh

    n = X.shape[0]
    d2, idx = knn_sqdist(X, k, threads=threads)
    rows = np.repeat(np.arange(n), k)
    K = sp.csr_matrix((np.exp(-d2.ravel() / (2.0 * s2)), (rows, idx.ravel())), shape=(n, n))
    K = (K.maximum(K.T) + sp.identity(n, format="csr")).tocsr()
    d = np.asarray(K.sum(axis=1)).ravel()
    r = 1.0 / np.sqrt(d)
    M = (sp.diags(r) @ K @ sp.diags(r)).tocsr()
    v0 = np.random.default_rng(0).standard_normal(n)  # fixed start: same input, same result
    vals, vecs = eigsh(M, k=3, which="LA", v0=v0, tol=1e-8)
    order = np.argsort(-vals)
    return vals[order], vecs[:, order] * r[:, None]


def diffusion_coords(
    X: Any,
    *,
    method: DiffusionMethod = "auto",
    n_neighbors: int = 30,
    threads: int | None = None,
) -> np.ndarray:
    """Diffusion-map coordinates (n, 2): eigenvectors 2-3 of P times their eigenvalues.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
    method : {"auto", "dense", "sparse", "notebook"}
        See the module docstring. ``"auto"``: dense up to :data:`DENSE_MAX_N` points.
    n_neighbors : int, default 30
        Neighbours per item in the sparse kNN kernel (ignored by the dense paths).
    threads : int, optional
        Threads for the kNN search (the result does not depend on it).
    """
    check_choice(method, "method", ("auto", "dense", "sparse", "notebook"))
    X = as_matrix(X, "X")
    n = X.shape[0]
    need = 6 if method == "notebook" else 4
    if n < need:
        raise ValueError(f"X needs at least {need} points for diffusion maps ({method!r} path), got {n}")
    if not np.isfinite(np.asarray(X[: min(n, 300)])).all():
        raise ValueError("X contains NaN or infinity")
    s2 = seed_bandwidth(X)
    threads = check_threads(threads)
    if method == "auto":
        method = "dense" if n <= DENSE_MAX_N else "sparse"
    if method == "sparse":
        n_neighbors = check_int(n_neighbors, "n_neighbors", high=n - 1, high_inclusive=False, what="n_samples - 1")
        vals, vecs = _sparse(X, s2, n_neighbors, threads)
    else:
        Xd = np.asarray(X, dtype=np.float64)
        if not np.isfinite(Xd).all():
            raise ValueError("X contains NaN or infinity")
        from threadpoolctl import threadpool_limits

        # Small dense problems: one BLAS thread is as fast and does not spin on a busy machine.
        with threadpool_limits(1 if n <= 4000 else None):
            vals, vecs = _dense(Xd, s2, notebook=method == "notebook")
    return vecs[:, 1:3] * vals[np.newaxis, 1:3]


def diffusion_score(
    X: Any,
    *,
    method: DiffusionMethod = "auto",
    n_neighbors: int = 30,
    threads: int | None = None,
) -> np.ndarray:
    """Vanilla diffusion-maps minimum score (n,): min-max distance of the coordinates to their mean.

    Same parameters as :func:`diffusion_coords`. Low score = near the diffusion centroid.
    """

    c = diffusion_coords(X, method=method, n_neighbors=n_neighbors, threads=threads)
    return minmax(np.linalg.norm(c - c.mean(axis=0), axis=1))
