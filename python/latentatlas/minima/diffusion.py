"""Diffusion maps: a dense exact path (small N), a sparse kNN path and a Nyström landmark path (large N).

The Markov operator is ``P = D⁻¹K`` with the Gaussian kernel ``K = exp(-|x_i - x_j|² / (2σ²))`` and
the seed's bandwidth ``σ² = median(|x - mean|²)`` over the first 300 rows. The diffusion
coordinates are the 2nd and 3rd right eigenvectors of P scaled by their eigenvalues; the score is
the min-max distance of each item's coordinates to their mean (near the centre of the dominant
basin = low score).

Paths:

- ``"dense"``: the full N×N kernel; P's right eigenvectors come from the symmetric
  ``M = D^-1/2 K D^-1/2`` (same eigenvalues; ``ψ = D^-1/2 u``) via ``scipy.linalg.eigh``.
- ``"sparse"``: the k-nearest-neighbour graph (:mod:`latentatlas.minima.graph`, exact or
  approximate; ``compare`` reuses the one ToMATo needs), the same Gaussian weights on its edges
  (max-symmetrised, self loops kept as K_ii = 1), and the same symmetric normalisation, solved per
  connected component (``eigh`` up to 2,000 points, else ``scipy.sparse.linalg.eigsh``). A
  disconnected graph is scored component by component (each component min-max scaled on its own;
  components of fewer than 4 points score 0) and ``diffusion_map`` returns each point's component:
  never a NaN or an eigensolver failure. Memory O(N·k).
- ``"nystrom"``: the dense path on ``n_landmarks`` random rows, extended to every row by the
  Nyström formula ``λψ(x) = Σ_l P(x, l) ψ_L(l)`` (blocks of 8,192 rows against the landmarks).
  Memory O(N + block·landmarks); time O(N·landmarks·F).
- ``"notebook"``: exactly the seed's ``eigh(P, subset_by_index=[N-6, N-1])`` on the
  *non-symmetric* P. ``scipy.linalg.eigh`` reads only P's lower triangle, so these are the
  eigenvectors of a different symmetric matrix, not P's; on the seed corpus its score has a
  Spearman correlation of only 0.14 with the dense diffusion-map score. Used by
  ``compare(..., notebook_compat=True)`` to reproduce the published table.

Agreement with the dense score (Spearman; docs/benchmarks/archive.md, "Diffusion maps at scale"): on digits the 30-NN
graph gives 0.31 (the seed's bandwidth makes the dense kernel nearly global, the graph is local),
a 150-NN graph 0.77, Nyström with 1,000 landmarks 0.995; on the three-cluster corpus (4,500 × 128)
the 30-NN graph gives 0.88 and Nyström 0.64 (1,000 landmarks) / 0.69 (2,000): there the dense
score's order inside each cluster is a 0.1 %-scale effect (λ₂ = 0.999) that landmark averaging
smooths away. No construction measured agrees on both. ``"auto"`` takes the dense path up to
:data:`DENSE_MAX_N` points, the sparse one up to :data:`SPARSE_MAX_N` (it reuses the exact kNN
graph) and Nyström above: the sparse eigenproblem's leading eigenvalues crowd towards 1 as N grows
(Lanczos took 100 s at N = 100,000 on the loaded machine and grows faster than N), while Nyström's
cost is linear in N. ``method="nystrom"`` is also the choice for digits-like data at any size.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .._validate import as_matrix, check_choice, check_int, check_threads
from ..linalg import blas_threads
from ..spectral import minmax
from .graph import KNNGraph, knn_graph

__all__ = [
    "DENSE_MAX_N",
    "SPARSE_MAX_N",
    "diffusion_coords",
    "diffusion_map",
    "diffusion_score",
    "score_from_coords",
    "seed_bandwidth",
]

#: Above this many points ``method="auto"`` uses the sparse kNN path.
DENSE_MAX_N = 2_000
#: Above this many points ``method="auto"`` uses the Nyström path: the sparse eigenproblem's top
#: eigenvalues crowd towards 1 as N grows, so Lanczos needs ever more iterations (100 s at 100,000).
SPARSE_MAX_N = 20_000

DiffusionMethod = Literal["auto", "dense", "nystrom", "sparse", "notebook"]


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
    A Dask X gives the same graph as lazy Dask arrays (:meth:`latentatlas.chunked.Rows.knn_sqdist`).
    """
    from .. import chunked

    return chunked.rows(X, "X").knn_sqdist(k, threads=threads)


def _sym_eigs(M: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Top 3 eigenpairs (descending) of a symmetric matrix: dense ``eigh`` when small, else ``eigsh``."""
    from scipy.sparse.linalg import eigsh

    if n <= DENSE_MAX_N:
        from scipy.linalg import eigh

        A = M.toarray() if hasattr(M, "toarray") else M
        vals, vecs = eigh(A, subset_by_index=[n - 3, n - 1])
    else:
        v0 = np.random.default_rng(0).standard_normal(n)  # fixed start: same input, same result
        vals, vecs = eigsh(M, k=3, which="LA", v0=v0, tol=1e-8)
    order = np.argsort(-vals)
    return vals[order], vecs[:, order]


def _sparse(d2: np.ndarray, idx: np.ndarray, s2: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (n, 2) and connected component (n,) on the kNN graph, each component on its own."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n, k = idx.shape
    K = sp.csr_matrix((np.exp(-d2.ravel() / (2.0 * s2)), idx.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
    K = (K.maximum(K.T) + sp.identity(n, format="csr")).tocsr()
    n_comp, comp = connected_components(K, directed=False)
    coords = np.zeros((n, 2))
    for c in range(n_comp):
        members = np.flatnonzero(comp == c)
        if members.size < 4:  # too small for two non-trivial eigenvectors: at its own centre
            continue
        Kc = K[members][:, members] if n_comp > 1 else K
        r = 1.0 / np.sqrt(np.asarray(Kc.sum(axis=1)).ravel())
        M = (sp.diags(r) @ Kc @ sp.diags(r)).tocsr()
        vals, vecs = _sym_eigs(M, members.size)
        coords[members] = (vecs * r[:, None])[:, 1:3] * vals[np.newaxis, 1:3]
    return coords, comp.astype(np.int64)


def _nystrom(X: Any, s2: float, n_landmarks: int, seed: int, block: int = 8192) -> np.ndarray:
    """Coordinates (n, 2) from the dense diffusion map of a random landmark subset, extended to every
    point by the Nyström formula ``ψ(x) = Σ_l P(x, l) ψ_L(l) / λ`` (so ``λψ(x) = P(x, L) ψ_L``)."""
    from scipy.linalg import eigh

    n = X.shape[0]
    m = min(n_landmarks, n)
    L = np.asarray(X[np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))], dtype=np.float64)
    ll = np.einsum("ij,ij->i", L, L)

    def kernel(rows: np.ndarray) -> np.ndarray:
        rr = np.einsum("ij,ij->i", rows, rows)
        D2 = np.maximum(rr[:, None] + ll[None, :] - 2.0 * (rows @ L.T), 0.0)
        return np.exp(-D2 / (2.0 * s2))

    K = kernel(L)
    r = 1.0 / np.sqrt(K.sum(axis=1))
    vals, vecs = eigh(K * r[:, None] * r[None, :], subset_by_index=[m - 3, m - 1])
    psi = (vecs[:, ::-1] * r[:, None])[:, 1:3]  # right eigenvectors 2-3 of P_LL
    out = np.empty((n, 2))
    for s in range(0, n, block):
        Kx = kernel(np.asarray(X[s : s + block], dtype=np.float64))
        tot = Kx.sum(axis=1, keepdims=True)
        # A point too far from every landmark for the kernel (underflow) sits at the centre, never NaN.
        out[s : s + block] = np.where(tot > 0, (Kx / np.where(tot > 0, tot, 1.0)) @ psi, 0.0)
    return out


def diffusion_map(
    X: Any,
    *,
    method: DiffusionMethod = "auto",
    n_neighbors: int = 30,
    n_landmarks: int = 1000,
    graph: KNNGraph | None = None,
    seed: int = 0,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(coords (n, 2), component (n,) int64, path)``: diffusion coordinates, the connected component
    of each point (all 0 except on the sparse path of a disconnected graph) and the path taken.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
    method : {"auto", "dense", "nystrom", "sparse", "notebook"}
        See the module docstring. ``"auto"``: dense up to :data:`DENSE_MAX_N` points, sparse up to
        :data:`SPARSE_MAX_N`, Nyström above.
    n_neighbors : int, default 30
        Neighbours per item of the sparse path's kNN kernel (ignored when ``graph`` is given).
    n_landmarks : int, default 1000
        Landmarks of the Nyström path.
    graph : KNNGraph, optional
        A kNN graph of X to reuse on the sparse path (:func:`latentatlas.minima.graph.knn_graph`).
    seed : int
        Draws the Nyström landmarks.
    threads : int, optional
        Threads for the kNN search (the result does not depend on it).
    """
    check_choice(method, "method", ("auto", "dense", "nystrom", "sparse", "notebook"))
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
        method = "dense" if n <= DENSE_MAX_N else "sparse" if n <= SPARSE_MAX_N else "nystrom"
    comp = np.zeros(n, dtype=np.int64)
    if method == "sparse":
        if graph is None:
            n_neighbors = check_int(n_neighbors, "n_neighbors", high=n - 1, high_inclusive=False, what="n_samples - 1")
            graph = knn_graph(X, n_neighbors, method="exact", threads=threads)
        elif graph.idx.shape[0] != n:
            raise ValueError(f"graph has {graph.idx.shape[0]} points but X has {n} rows")
        coords, comp = _sparse(graph.d2, graph.idx, s2)
        return coords, comp, method
    if method == "nystrom":
        n_landmarks = check_int(n_landmarks, "n_landmarks", low=4)
        with blas_threads(1 if n <= 4000 else None):
            return _nystrom(X, s2, n_landmarks, seed), comp, method
    Xd = np.asarray(X, dtype=np.float64)
    if not np.isfinite(Xd).all():
        raise ValueError("X contains NaN or infinity")
    # Small dense problems: one BLAS thread is as fast and does not spin on a busy machine.
    with blas_threads(1 if n <= 4000 else None):
        vals, vecs = _dense(Xd, s2, notebook=method == "notebook")
    return vecs[:, 1:3] * vals[np.newaxis, 1:3], comp, method


def diffusion_coords(X: Any, **kwargs: Any) -> np.ndarray:
    """Diffusion-map coordinates (n, 2): eigenvectors 2-3 of P times their eigenvalues.

    Keyword arguments are those of :func:`diffusion_map`.
    """
    return diffusion_map(X, **kwargs)[0]


def score_from_coords(coords: np.ndarray, component: np.ndarray) -> np.ndarray:
    """Min-max distance of each point's coordinates to its component's mean, per component (n,)."""
    out = np.zeros(coords.shape[0])
    for c in np.unique(component):
        m = component == c
        out[m] = minmax(np.linalg.norm(coords[m] - coords[m].mean(axis=0), axis=1))
    return out


def diffusion_score(X: Any, **kwargs: Any) -> np.ndarray:
    """Vanilla diffusion-maps minimum score (n,): min-max distance of the coordinates to their mean.

    Keyword arguments are those of :func:`diffusion_map`. Low score = near the diffusion centroid;
    on a disconnected kNN graph (sparse path) each component is scored on its own.
    """
    coords, comp, _ = diffusion_map(X, **kwargs)
    return score_from_coords(coords, comp)
