"""The k-nearest-neighbour graph of the minima methods (diffusion maps' sparse path, ToMATo).

Two ways to build it, one result type (:class:`KNNGraph`):

- ``"exact"``: the Rust core's blocked GEMM + per-row top-k (``kernels.knn_sqdist``): candidates in
  float32, the kept pairs' distances recomputed in float64, ties to the lower index. O(N²·F) time,
  O(N·k) memory: 1.5 s at N = 20,000 × 128, 37 s at 100,000, about an hour at 1,000,000.
- ``"approx"``: an HNSW graph from faiss (``faiss.IndexHNSWFlat``, M = 16, efConstruction = 32,
  efSearch = max(:data:`EF_SEARCH`, 2k)), queried with every point; the kept pairs' distances are then
  recomputed in float64 and sorted like the exact path's. Install with
  ``pip install 'latentatlas[minima]'``. Chosen after measuring the candidates side by side on
  N = 100,000 × 128 (k = 30, recall@30 on 1,000 rows; docs/benchmarks/archive.md, "kNN graph candidates"): faiss HNSW (M = 16)
  recall 0.997, faiss HNSW (M = 32) 1.000, faiss IVF-Flat 1.000, usearch 0.9997, pynndescent
  0.9999; IVF-Flat was the fastest at this N, but with nlist ∝ √N its per-query scan grows as √N
  while HNSW's grows as log N, which decides at 1,000,000; pynndescent (numba) was 4× slower than
  faiss HNSW and usearch slower too. faiss is widely used, maintained by Meta, and ships manylinux
  wheels. HNSW insertion runs in parallel, so unlike the exact graph the approximate one may
  differ slightly between runs with more than one thread.

efSearch 96 (was 48): on three Gaussian clusters at N = 300,000 × 128 (k = 30, 1,000 sampled rows) recall@30
rose from 0.985 to 0.997 for 1.3× the query CPU time (0.992 at 64, 0.998 at 128 for 1.55×); at 1,000,000
efSearch 48 gave 0.943 and 96 gives 0.981 (docs/benchmarks/archive.md, "At scale"). efConstruction 64 instead of 32 reached about the same (0.996 at efSearch 64) for a
slower build, so the build stays cheap and the search wider. Reproduce with ``benches/hnsw_ef_sweep.py``.

``"auto"`` is exact up to :data:`EXACT_MAX_N` points and approximate above (exact, with a warning,
when faiss is missing). Every approximate graph's recall@k against the exact neighbours is measured
on a random sample of rows (``n_recall``, default 200: exact search of those rows against all, by
the same core primitive) and stored in ``KNNGraph.recall``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._optional import import_optional
from .._validate import as_matrix, check_choice, check_int, check_threads

__all__ = ["EF_SEARCH", "EXACT_MAX_N", "KNNGraph", "knn_graph", "sampled_recall"]

#: Above this many points ``method="auto"`` builds the approximate graph.
EXACT_MAX_N = 20_000

#: The HNSW search breadth (faiss ``efSearch``) of the approximate graph, at least 2k.
EF_SEARCH = 96

KNNMethod = Literal["auto", "exact", "approx"]


@dataclass
class KNNGraph:
    """k nearest neighbours of every point, self excluded.

    Attributes
    ----------
    d2 : (n, k) float64   squared distances, each row ascending
    idx : (n, k) int64    neighbour indices
    method : "exact" or "approx"
    recall : float or None   sampled recall@k of an approximate graph (1.0 for the exact one)
    n_recall : int           rows the recall was measured on
    """

    d2: np.ndarray
    idx: np.ndarray
    method: str
    recall: float | None
    n_recall: int

    @property
    def k(self) -> int:
        return int(self.idx.shape[1])

    def symmetric_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """The undirected graph (an edge where either end chose the other) as CSR ``(indptr, indices)``,
        int64, each row's neighbours in ascending index order."""
        import scipy.sparse as sp

        n, k = self.idx.shape
        A = sp.csr_matrix((np.ones(n * k, dtype=np.int8), self.idx.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
        S = (A + A.T).tocsr()
        S.sort_indices()
        return S.indptr.astype(np.int64), S.indices.astype(np.int64)


def _f32(X: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(X, dtype=np.float32)


def _rerank(X: np.ndarray, idx: np.ndarray, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """float64 squared distances of the kept pairs, each row sorted ascending (ties: lower index)."""
    n, k = idx.shape
    d2 = np.empty((n, k))
    out = np.empty_like(idx)
    for s in range(0, n, block):
        rows = np.asarray(X[s : s + block], dtype=np.float64)
        nb = idx[s : s + block]
        diff = np.asarray(X[nb.ravel()], dtype=np.float64).reshape(nb.shape[0], k, -1) - rows[:, None, :]
        dd = np.einsum("ijk,ijk->ij", diff, diff)
        o = np.lexsort((nb, dd))  # per row: distance, then index
        d2[s : s + block] = np.take_along_axis(dd, o, axis=1)
        out[s : s + block] = np.take_along_axis(nb, o, axis=1)
    return d2, out


def _approx(X: np.ndarray, k: int, threads: int | None, seed: int) -> np.ndarray:
    faiss = import_optional("faiss", feature='knn_graph(method="approx")')
    Xf = _f32(X)
    n, f = Xf.shape
    if threads is not None:
        faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(f, 16)
    index.hnsw.efConstruction = 32
    index.hnsw.efSearch = max(EF_SEARCH, 2 * k)
    index.add(Xf)
    _, found = index.search(Xf, k + 1)
    # Drop each point itself (usually first; with duplicates possibly elsewhere or missing).
    own = found == np.arange(n)[:, None]
    keep = ~own
    keep[own.sum(axis=1) == 0, k] = False  # self not returned: drop the farthest instead
    idx = found[keep].reshape(n, k).astype(np.int64)
    if (idx < 0).any():  # HNSW found fewer than k: fill from the exact search of those rows
        bad = np.flatnonzero((idx < 0).any(axis=1))
        idx[bad] = _exact_rows(Xf, bad, k, threads)
    return idx


def _exact_rows(Xf: np.ndarray, rows: np.ndarray, k: int, threads: int | None) -> np.ndarray:
    """Exact k nearest other rows of ``Xf[rows]`` among all rows (the core's GEMM + top-k)."""
    from .. import kernels

    bias = (-0.5 * np.einsum("ij,ij->i", Xf, Xf, dtype=np.float64)).astype(np.float32)
    _, cand = kernels.gemm_topk(Xf[rows], Xf, k + 1, bias=bias, threads=threads)
    own = cand == rows[:, None]
    keep = ~own
    keep[own.sum(axis=1) == 0, k] = False
    return cand[keep].reshape(len(rows), k)


def sampled_recall(X: Any, idx: np.ndarray, *, n_recall: int = 200, seed: int = 0, threads: int | None = None) -> float:
    """Mean recall@k of the neighbour lists ``idx`` (n, k) against the exact ones, on ``n_recall`` random rows."""
    Xf = _f32(X)
    n, k = idx.shape
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n_recall, n), replace=False))
    exact = _exact_rows(Xf, rows, k, threads)
    hits = [np.intersect1d(a, b).size for a, b in zip(idx[rows], exact)]
    return float(np.mean(hits) / k)


def knn_graph(
    X: Any,
    k: int = 30,
    *,
    method: KNNMethod = "auto",
    threads: int | None = None,
    seed: int = 0,
    n_recall: int = 200,
) -> KNNGraph:
    """The k-nearest-neighbour graph of the rows of X (self excluded), exact or approximate.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features), finite
    k : int, 1 <= k < n_samples
    method : {"auto", "exact", "approx"}
        See the module docstring; ``"auto"``: exact up to :data:`EXACT_MAX_N` points.
    threads : int, optional
        Threads for the search (the exact graph does not depend on it).
    seed : int
        Seeds the HNSW level draws and the recall sample.
    n_recall : int, default 200
        Rows on which an approximate graph's recall@k is measured (0: not measured).

    Returns
    -------
    KNNGraph
    """
    check_choice(method, "method", ("auto", "exact", "approx"))
    X = as_matrix(X, "X")
    n = X.shape[0]
    k = check_int(k, "k", high=n, high_inclusive=False, what="n_samples")
    threads = check_threads(threads)
    n_recall = check_int(n_recall, "n_recall", low=0)
    if method == "auto":
        method = "exact" if n <= EXACT_MAX_N else "approx"
        if method == "approx":
            try:
                import_optional("faiss", feature='knn_graph(method="approx")')
            except ModuleNotFoundError as exc:
                warnings.warn(f"{exc}; using the exact kNN search (O(N²)) for {n} points", stacklevel=2)
                method = "exact"
    if method == "exact":
        from .. import kernels

        d2, idx = kernels.knn_sqdist(_f32(X), k=k, threads=threads)
        return KNNGraph(d2=d2, idx=idx, method="exact", recall=1.0, n_recall=0)
    Xf = _f32(X)
    if not np.isfinite(Xf).all():
        raise ValueError("X contains NaN or infinity (or values beyond float32)")
    idx = _approx(Xf, k, threads, seed)
    d2, idx = _rerank(X, idx)
    recall = sampled_recall(Xf, idx, n_recall=n_recall, seed=seed, threads=threads) if n_recall else None
    return KNNGraph(d2=d2, idx=idx, method="approx", recall=recall, n_recall=min(n_recall, n))
