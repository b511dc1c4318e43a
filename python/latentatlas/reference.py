"""Plain NumPy ground truth for tests and benches: the seed's formulas and twins of every kernel.

* The seed notebook's formulas, kept as printed (``build_feature_laplacian``, ``rayleigh_energy``,
  ``minmax``), from "ArrowSpace for Local Minima in Latent Space" (notebook 01, cell 2). Dense F×F
  matrices and an O(N·F²) einsum: correct, simple and slow. Use :mod:`latentatlas.spectral` for
  real work.
* :class:`core`: a NumPy twin of every function of the Rust extension :mod:`latentatlas._core`,
  with the same name and signature (``reference.core.sae_encode`` ~ ``_core.sae_encode``). They are
  the oracle of ``tests/test_core.py`` and the ``backend="dense"`` path of SAE training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.metrics.pairwise import cosine_similarity


def build_feature_laplacian(X: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(L, W)``: the dense feature Laplacian ``diag(W.sum(1)) - W`` and its graph."""
    X_feat = X.T  # (F, N): each row = one feature signal
    S = cosine_similarity(X_feat)  # (F, F) cosine similarities
    W = np.zeros_like(S)
    for i in range(S.shape[0]):
        nbrs = np.argsort(-S[i])[1 : k + 1]  # top-k, excluding self
        W[i, nbrs] = S[i, nbrs]
    W = np.maximum(W, W.T)  # symmetrise
    return np.diag(W.sum(axis=1)) - W, W


def rayleigh_energy(X: np.ndarray, L: np.ndarray) -> np.ndarray:
    """``x L xᵀ / x xᵀ`` per row, 0 where ``x xᵀ <= 1e-9``."""
    num = np.einsum("ij,jk,ik->i", X, L, X)  # x^T L x per row
    den = np.einsum("ij,ij->i", X, X)  # x^T x
    return np.where(den > 1e-9, num / np.where(den > 1e-9, den, 1.0), 0.0)


def minmax(v: np.ndarray) -> np.ndarray:
    """The notebook's min-max scaling, with ``+1e-9`` in the denominator."""
    return (v - v.min()) / (v.max() - v.min() + 1e-9)


# =============================================================================================
# NumPy twins of the Rust kernels: ``reference.core.<name>`` mirrors ``latentatlas._core.<name>``
# =============================================================================================
#
# Same positional arrays, keyword options, return types and output dtypes as the extension, so a
# caller can pick either (``K = _core if fast else reference.core``). Each twin is the plain dense
# formula in float64 (full score matrices, dense code matrices), cast back to the input dtype;
# it ignores ``threads=`` and ``chunk_rows=``. Errors follow the kernels': ValueError naming the
# argument for bad shapes, NaN/inf and out-of-range indices or k, TypeError for a dtype mix.
# Top-k ties go to the lower index (value descending, index ascending), as in the kernels.

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _dtype_of(what: str, *arrays: Any) -> np.dtype:
    """The one float dtype shared by ``arrays`` (None entries skipped), else TypeError."""
    dts = {np.asarray(a).dtype for a in arrays if a is not None}
    if len(dts) != 1 or next(iter(dts)) not in _FLOATS:
        raise TypeError(f"{what} must share one dtype (float32 or float64)")
    return next(iter(dts))


def _matrix(a: Any, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {a.shape}")
    return a


def _finite(a: np.ndarray, name: str) -> None:
    if a.size and not np.isfinite(a).all():
        bad = (
            np.flatnonzero(~np.isfinite(a).reshape(a.shape[0], -1).all(axis=1))
            if a.ndim == 2
            else np.flatnonzero(~np.isfinite(a))
        )
        raise ValueError(f"{name} contains NaN or infinity (first at row {int(bad[0])})")


def _indices(idx: Any, shape: tuple[int, ...], n: int, idx_name: str, vals_name: str) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.dtype != np.int64:
        raise TypeError(f"{idx_name} must be an int64 array, got dtype {idx.dtype}")
    if idx.shape != shape:
        raise ValueError(f"{idx_name}: expected the shape of {vals_name} {shape}, got {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"{idx_name}: holds a latent index outside [0, {n})")
    return idx


def _k_in(k: Any, high: int, what: str, low: int = 1) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer, got {type(k).__name__}")
    if not low <= k <= high:
        raise ValueError(f"k: expected {low} <= k <= {high} ({what}), got k = {k}")
    return int(k)


def _dense_codes(values: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Sparse codes as a dense float64 ``(rows, n)`` matrix (repeated indices add up)."""
    H = np.zeros((values.shape[0], n))
    np.add.at(H, (np.arange(values.shape[0])[:, None], idx), values.astype(np.float64))
    return H


def topk_rows(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest entries of each row of ``S``: ``(values, indices int64)``, value descending,
    ties to the lower index. Exact for any ties (a partition finds the k-th value; the ties at it
    are kept lowest index first), O(rows · n) plus a sort of k per row."""
    m, n = S.shape
    if k == n:
        keep = np.ones(S.shape, bool)
    else:
        kth = np.partition(S, n - k, axis=1)[:, n - k : n - k + 1]
        above = S > kth
        ties = S == kth
        need = k - above.sum(axis=1, keepdims=True)
        keep = above | (ties & (np.cumsum(ties, axis=1) <= need))
    cols = np.nonzero(keep)[1].reshape(m, k)  # row-major: ascending columns per row
    vals = np.take_along_axis(S, cols, axis=1)
    order = np.lexsort((cols, -vals), axis=1)
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(cols, order, axis=1).astype(np.int64)


def _gram(x: Any, /, *, chunk_rows: int = 2048, threads: int | None = None) -> np.ndarray:
    x = _matrix(x, "X")
    _dtype_of("X", x)
    if chunk_rows < 1:
        raise ValueError("chunk_rows: expected a positive number of rows")
    _finite(x, "X")
    x64 = x.astype(np.float64)
    return x64.T @ x64


def _feature_topk(
    x: Any, /, k: int, *, chunk_rows: int = 2048, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    x = _matrix(x, "X")
    n, f = x.shape
    if n == 0:
        raise ValueError("X: expected at least one row (item), got 0")
    if f < 2:
        raise ValueError(f"X: expected at least 2 feature columns, got {f}")
    k = _k_in(k, f - 1, f"n_features - 1 = {f - 1}")
    G = _gram(x, chunk_rows=chunk_rows)
    norms = np.sqrt(np.diag(G))
    d = norms[:, None] * norms[None, :]
    S = np.where(d > 0, G / np.where(d > 0, d, 1.0), 0.0)
    np.fill_diagonal(S, -np.inf)  # self excluded; k <= F - 1 keeps it out
    return topk_rows(S, k)


def _rayleigh_energy(x: Any, indptr: Any, indices: Any, data: Any, /, *, threads: int | None = None) -> np.ndarray:
    x = _matrix(x, "X")
    _dtype_of("X", x)
    for name, a, dt in (("indptr", indptr, np.int64), ("indices", indices, np.int64), ("data", data, np.float64)):
        if np.asarray(a).dtype != dt:
            raise TypeError(f"{name} must be a {np.dtype(dt).name} array, got dtype {np.asarray(a).dtype}")
    f = x.shape[1]
    indptr, indices, data = np.asarray(indptr), np.asarray(indices), np.asarray(data)
    if indptr.shape != (f + 1,) or indices.shape != data.shape:
        raise ValueError(f"L: indptr must have length {f + 1} and indices/data one length")
    if f == 0:
        raise ValueError("X: expected at least one feature column")
    if indices.size and (indices.min() < 0 or indices.max() >= f):
        raise ValueError(f"L: column index outside 0..{f}")
    _finite(data, "L")
    _finite(x, "X")
    L = sp.csr_matrix((data, indices, indptr), shape=(f, f))
    x64 = x.astype(np.float64)
    # the quotient is scale-free: each row scaled by a power of two near 1/max|x| (exact), so rows near
    # the float64 range neither overflow nor underflow; the 1e-9 cut applies to the unscaled xᵀx
    peak = np.abs(x64).max(axis=1)
    scale = np.where(peak > 0, np.exp2(-np.floor(np.log2(np.where(peak > 0, peak, 1.0)))), 1.0)
    xs = x64 * scale[:, None]
    num = np.einsum("ij,ij->i", xs, (L @ xs.T).T)
    den = np.einsum("ij,ij->i", xs, xs)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):  # inf > 1e-9 is the right answer
        keep = den / scale**2 > 1e-9
    return np.where(keep, num / np.where(keep, den, 1.0), 0.0)


def _gemm_topk(
    a: Any, b: Any, /, k: int, *, bias: Any = None, exclude_self: bool = False, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    a, b = _matrix(a, "A"), _matrix(b, "B")
    dt = _dtype_of("A, B and bias", a, b, bias)
    (m, d), (n, d2) = a.shape, b.shape
    if d != d2:
        raise ValueError(f"B: expected {d} columns to match A, got {d2}")
    avail = n - 1 if exclude_self else n
    k = _k_in(k, avail, "candidates per row")
    if bias is not None:
        bias = np.asarray(bias)
        if bias.shape != (n,):
            raise ValueError(f"bias: expected length {n}, got {bias.shape}")
        _finite(bias, "bias")
    _finite(b, "B")
    _finite(a, "A")
    S = a.astype(np.float64) @ b.astype(np.float64).T
    if bias is not None:
        S += bias
    if exclude_self:
        r = np.arange(min(m, n))
        S[r, r] = -np.inf
    v, i = topk_rows(S, k)
    return v.astype(dt), i


def _lambda_topk(
    q: Any,
    items: Any,
    query_inv_norm: Any,
    query_lambda: Any,
    item_inv_norm: Any,
    item_lambda: Any,
    /,
    k: int,
    *,
    tau: float,
    band: tuple[float, float] | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    q, items = _matrix(q, "Q"), _matrix(items, "items")
    _dtype_of("Q and items", q, items)
    (m, d), (n, d2) = q.shape, items.shape
    if d != d2:
        raise ValueError(f"items: expected {d} columns to match the queries, got {d2}")
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau: expected 0 <= tau <= 1, got {tau}")
    vecs = {}
    for name, v, length in (
        ("query_inv_norm", query_inv_norm, m), ("query_lambda", query_lambda, m),
        ("item_inv_norm", item_inv_norm, n), ("item_lambda", item_lambda, n),
    ):  # fmt: skip
        v = np.asarray(v)
        if v.dtype != np.float64:
            raise TypeError(f"{name} must be a float64 array, got dtype {v.dtype}")
        if v.shape != (length,):
            raise ValueError(f"{name}: expected length {length}, got {v.shape}")
        _finite(v, name)
        vecs[name] = v
    xl = vecs["item_lambda"]
    keep = np.ones(n, bool) if band is None else (band[0] <= xl) & (xl <= band[1])
    if band is not None and not band[0] <= band[1]:
        raise ValueError(f"band: expected lo <= hi, got {band}")
    k = _k_in(k, int(keep.sum()), "items" if band is None else "items in the band")
    _finite(items, "items")
    _finite(q, "Q")
    cos = (q.astype(np.float64) @ items.astype(np.float64).T) * vecs["query_inv_norm"][:, None] * vecs["item_inv_norm"]
    near = 1.0 - np.minimum(np.abs(vecs["query_lambda"][:, None] - xl[None, :]), 1.0)
    S = tau * cos + (1.0 - tau) * near
    S[:, ~keep] = -np.inf
    return topk_rows(S, k)


def _unit_scale(m: Any) -> np.ndarray:
    """Powers of two ``s`` with ``m·s`` in [0.5, 1) (1 where ``m`` is 0): multiplying by them is exact."""
    m = np.asarray(m, dtype=np.float64)
    _, e = np.frexp(m)
    return np.where(m > 0, np.ldexp(1.0, np.minimum(-e, 1023)), 1.0)


def _taumode_raw(
    x: Any, indptr: Any, indices: Any, data: Any, /, *, tau: float | None = None, threads: int | None = None
) -> np.ndarray:
    with np.errstate(all="ignore"):
        _rayleigh_energy(x, indptr, indices, data)  # validates every argument
    if tau is not None and not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"tau: expected a positive number, got {tau}")
    x64 = np.asarray(x, dtype=np.float64)
    f = x64.shape[1]
    # Every row is taken times a power of two a (largest |x| in [0.5, 1)) and L times another, b, and each
    # row's t times two more (c on the differences, s on the weights) that bring its largest t near 1:
    # exact scalings under which E is invariant (a) and linear (b) and G invariant, so no sum leaves
    # float64's range. The kernel does this only for the rows whose plain sums overflow or underflow: the
    # same bits where both can be formed.
    b = float(_unit_scale(np.abs(np.asarray(data, dtype=np.float64)).max(initial=0.0)))
    L = sp.csr_matrix((np.asarray(data) * b, np.asarray(indices), np.asarray(indptr)), shape=(f, f))
    off = (sp.triu(L, k=1) + sp.tril(L, k=-1).T).tocoo()  # (L_ab + L_ba)·b on each undirected edge
    with np.errstate(all="ignore"):
        den = np.einsum("ij,ij->i", x64, x64)  # unscaled (inf if it overflows): E = 0 where xᵀx <= 1e-9
        a = _unit_scale(np.abs(x64).max(axis=1, initial=0.0))
        y = x64 * a[:, None]
        num_s, den_s = np.einsum("ij,ij->i", y, (L @ y.T).T), np.einsum("ij,ij->i", y, y)
        E = np.where(den > 1e-9, np.maximum(num_s / np.where(den > 1e-9, den_s, 1.0) / b, 0.0), 0.0)
        w = -off.data / 2.0
        D = y[:, off.row] - y[:, off.col]
        # each row's largest t, as log2|t| = log2|w| + 2 log2|D| (-inf where t = 0; a last column of
        # -inf for rows without one), and the log2|D| of its edge
        lt = np.hstack([np.log2(np.abs(w)) + 2.0 * np.log2(np.abs(D)), np.full((len(y), 1), -np.inf)])
        peak = np.argmax(lt, axis=1)[:, None]
        lt_max = np.take_along_axis(lt, peak, axis=1)[:, 0]
        ld = np.log2(np.abs(np.take_along_axis(np.hstack([D, np.ones((len(y), 1))]), peak, axis=1)[:, 0]))
        some = np.isfinite(lt_max)
        j, k = np.where(some, np.floor(ld), 0.0), np.where(some, np.floor(lt_max), 0.0)
        c = np.ldexp(1.0, np.clip(-j, -1074, 1023).astype(np.int64))  # the peak's difference into [1, 2)
        sw = np.ldexp(1.0, np.clip(2.0 * j - k, -1074, 1023).astype(np.int64))  # its t near 1
        Dc = D * c[:, None]
        t = np.where(w != 0, (w[None, :] * sw[:, None]) * (Dc * Dc), 0.0)
        s1, s2 = t.sum(axis=1), (t * t).sum(axis=1)
        q = 2.0 * s1 * s1  # Σ over ordered pairs of (t / Σ_ordered t)² = 2 Σ t² / (2 Σ t)², edges once
        tiny = np.finfo(np.float64).tiny
        bad = ~np.isfinite(s1) | ~np.isfinite(s2) | ((s1 != 0) & ~((q >= tiny) & np.isfinite(q) & (s2 >= tiny)))
        if bad.any():
            raise ValueError(
                f"X: row {int(np.flatnonzero(bad)[0])}: taumode λ cannot be computed in float64 (its terms "
                "w (x_a − x_b)² on the edges of L span more than its range)"
            )
        G = np.where(s1 != 0, s2 / np.where(s1 != 0, q, 1.0), 0.0)
        if tau is None:
            med = np.median(x64, axis=1)
            med = np.where(np.isfinite(med), med, 2.0 * np.median(x64 / 2.0, axis=1))  # (a + b)/2 overflowed
            t_item = np.maximum(med, 1e-10)
        else:
            t_item = np.full(len(x64), float(tau))
        tw = np.minimum(t_item, 1.0)
        total = E + t_item
        ratio = np.where(np.isfinite(total), E / np.where(total > 0, total, 1.0), 1.0 / (1.0 + t_item / E))
        return tw * ratio + (1.0 - tw) * G


def _knn_sqdist(x: Any, /, *, k: int, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    x = _matrix(x, "X")
    _dtype_of("X", x)
    k = _k_in(k, x.shape[0] - 1, "other rows")
    _finite(x, "X")
    x64 = x.astype(np.float64)
    sq = np.einsum("ij,ij->i", x64, x64)
    D2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x64 @ x64.T), 0.0)
    np.fill_diagonal(D2, np.inf)  # self excluded
    v, i = topk_rows(-D2, k)
    return -v, i


def _folded_bias(w: np.ndarray, b_enc: Any, b_dec: Any) -> np.ndarray:
    """``b_enc - W_enc b_dec`` in float64 (``b_enc`` without b_dec), after checking both biases."""
    n, d = w.shape
    b_enc = np.asarray(b_enc)
    if b_enc.shape != (n,):
        raise ValueError(f"b_enc: expected length {n}, got {b_enc.shape}")
    _finite(b_enc, "b_enc")
    bias = b_enc.astype(np.float64)
    if b_dec is not None:
        b_dec = np.asarray(b_dec)
        if b_dec.shape != (d,):
            raise ValueError(f"b_dec: expected length {d}, got {b_dec.shape}")
        _finite(b_dec, "b_dec")
        bias = bias - w.astype(np.float64) @ b_dec.astype(np.float64)
    return bias


def _sae_encode(
    x: Any, w_enc: Any, b_enc: Any, /, k: int, *, b_dec: Any = None, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    x, w = _matrix(x, "X"), _matrix(w_enc, "W_enc")
    dt = _dtype_of("X, W_enc, b_enc and b_dec", x, w, b_enc, b_dec)
    n, d = w.shape
    if x.shape[1] != d:
        raise ValueError(f"X: expected {d} columns (d_in of the model), got {x.shape[1]}")
    k = _k_in(k, n, "n_latents")
    bias = _folded_bias(w, b_enc, b_dec)
    _finite(w, "W_enc")
    _finite(x, "X")
    v, i = topk_rows(x.astype(np.float64) @ w.astype(np.float64).T + bias, k)
    return np.maximum(v, 0.0).astype(dt), i


def _sae_encode_threshold(
    x: Any, w_enc: Any, b_enc: Any, threshold: Any, /, *, b_dec: Any = None, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, w = _matrix(x, "X"), _matrix(w_enc, "W_enc")
    dt = _dtype_of("X, W_enc, b_enc, threshold and b_dec", x, w, b_enc, threshold, b_dec)
    n, d = w.shape
    if x.shape[1] != d:
        raise ValueError(f"X: expected {d} columns (d_in of the model), got {x.shape[1]}")
    threshold = np.asarray(threshold)
    if threshold.shape != (n,):
        raise ValueError(f"threshold: expected length {n}, got {threshold.shape}")
    _finite(threshold, "threshold")
    _finite(w, "W_enc")
    bias = _folded_bias(w, b_enc, b_dec)
    _finite(x, "X")
    # dense pre-activations (the twin may hold them; the kernel never does), JumpReLU ∘ ReLU mask
    pre = x.astype(np.float64) @ w.astype(np.float64).T + bias
    H = sp.csr_matrix(np.where(pre > np.maximum(threshold.astype(np.float64), 0.0), pre, 0.0))
    H.sort_indices()
    return H.indptr.astype(np.int64), H.indices.astype(np.int64), H.data.astype(dt)


def _codes(values: Any, indices: Any, n: int, vals_name: str, idx_name: str) -> tuple[np.ndarray, np.ndarray]:
    values = _matrix(values, vals_name)
    idx = _indices(indices, values.shape, n, idx_name, vals_name)
    _finite(values, vals_name)
    return values, idx


def _sparse_decode(values: Any, indices: Any, w: Any, /, *, bias: Any = None, threads: int | None = None) -> np.ndarray:
    w = _matrix(w, "W")
    dt = _dtype_of("values, W and bias", values, w, bias)
    n, d = w.shape
    v, idx = _codes(values, indices, n, "values", "indices")
    out = _dense_codes(v, idx, n) @ w.astype(np.float64)
    if bias is not None:
        bias = np.asarray(bias)
        if bias.shape != (d,):
            raise ValueError(f"bias: expected length {d}, got {bias.shape}")
        out += bias
    return out.astype(dt)


def _sparse_gather_dot(g: Any, indices: Any, w: Any, /, *, threads: int | None = None) -> np.ndarray:
    g, w = _matrix(g, "G"), _matrix(w, "W")
    dt = _dtype_of("G and W", g, w)
    n, d = w.shape
    if g.shape[1] != d:
        raise ValueError(f"G: expected {d} columns, got {g.shape[1]}")
    idx = np.asarray(indices)
    if idx.ndim != 2 or idx.shape[0] != g.shape[0]:
        raise ValueError(f"indices: expected {g.shape[0]} rows to match G, got shape {idx.shape}")
    idx = _indices(idx, idx.shape, n, "indices", "values")
    return np.take_along_axis(g.astype(np.float64) @ w.astype(np.float64).T, idx, axis=1).astype(dt)


def _sparse_scatter_rows(
    coef: Any, indices: Any, x: Any, /, n_latents: int, *, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    coef, x = _matrix(coef, "coef"), _matrix(x, "X")
    dt = _dtype_of("coef and X", coef, x)
    c, idx = _codes(coef, indices, n_latents, "coef", "indices")
    if x.shape[0] != c.shape[0]:
        raise ValueError(f"X: expected {c.shape[0]} rows to match coef, got {x.shape[0]}")
    H = _dense_codes(c, idx, n_latents)
    return (H.T @ x.astype(np.float64)).astype(dt), H.sum(axis=0).astype(dt)


def _latent_search(
    query_values: Any,
    query_indices: Any,
    doc_values: Any,
    doc_indices: Any,
    /,
    n_latents: int,
    k: int,
    *,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    dt = _dtype_of("query_values and doc_values", query_values, doc_values)
    qv, qi = _codes(query_values, query_indices, n_latents, "query_values", "query_indices")
    dv, di = _codes(doc_values, doc_indices, n_latents, "doc_values", "doc_indices")
    k = _k_in(k, dv.shape[0], "documents")
    S = _dense_codes(qv, qi, n_latents) @ _dense_codes(dv, di, n_latents).T
    v, i = topk_rows(S, k)
    return v.astype(dt), i


def _adam_step(
    param: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    /,
    *,
    lr: float,
    step: int,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    threads: int | None = None,
) -> None:
    _dtype_of("param, grad, m and v", param, grad, m, v)
    if not all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in (param, grad, m, v)):
        raise ValueError("param, grad, m and v must be C-contiguous arrays")
    if not param.size == grad.size == m.size == v.size:
        raise ValueError(
            f"grad: param, grad, m and v must have one length, got {param.size}, {grad.size}, {m.size}, {v.size}"
        )
    if step < 1:
        raise ValueError("step: expected a 1-based step number")
    _finite(grad.reshape(-1), "grad")
    # the kernel's arithmetic, element by element in float64 (no FMA), rounded once per store
    c1 = 1.0 - beta1 ** float(step)
    c2 = 1.0 - beta2 ** float(step)
    g = grad.astype(np.float64)
    mi = beta1 * m.astype(np.float64) + (1.0 - beta1) * g
    vi = beta2 * v.astype(np.float64) + (1.0 - beta2) * g * g
    m[...] = mi.reshape(m.shape)
    v[...] = vi.reshape(v.shape)
    upd = lr * (mi / c1) / (np.sqrt(vi / c2) + eps)
    param[...] = param.astype(np.float64) - upd.reshape(param.shape)


def _tomato_forest(
    density: Any, indptr: Any, indices: Any, /, *, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ToMATo's merge forest, vertex by vertex in plain Python (rust/core/src/tomato.rs)."""
    # Long: the twin of rust/core/src/tomato.rs, step for step, so the two read side by side
    density = np.asarray(density)
    _dtype_of("density", density)
    if density.ndim != 1:
        raise ValueError(f"density: expected a 1-D array, got shape {density.shape}")
    f = density.astype(np.float64)
    n = f.shape[0]
    _finite(f, "density")
    ip, ix = np.asarray(indptr), np.asarray(indices)
    for name, a in (("indptr", ip), ("indices", ix)):
        if a.dtype != np.int64 or a.ndim != 1:
            raise TypeError(f"{name} must be a 1-D int64 array, got dtype {a.dtype}")
    if ip.shape != (n + 1,) or ip[0] != 0 or ip[-1] != ix.size or np.any(np.diff(ip) < 0):
        raise ValueError(f"indptr: expected length n + 1 = {n + 1}, rising from 0 to len(indices)")
    if ix.size and (ix.min() < 0 or ix.max() >= n):
        raise ValueError(f"indices: neighbour outside [0, {n})")
    order = sorted(range(n), key=lambda v: (-f[v], v))  # density desc, index asc
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    raw: list[int] = []  # raw cluster by visit rank
    parent: list[int] = []
    height: list[int] = []  # union-by-rank rank
    top: list[int] = []  # visit rank of each set's peak

    def find(c: int) -> int:
        while parent[c] != c:
            c = parent[c]
        return c

    peaks: list[int] = []
    merges: list[list[int]] = []
    birth: list[float] = []
    death: list[float] = []
    for i, p in enumerate(order):
        seen: dict[int, int] = {}  # set root -> raw cluster of the first neighbour found in it
        j = i
        for q in ix[ip[p] : ip[p + 1]]:
            k = int(rank[q])
            if k < i:
                j = min(j, k)
                seen.setdefault(find(raw[k]), raw[k])
        if j == i:
            parent.append(len(parent))
            height.append(0)
            top.append(i)
            raw.append(len(peaks))
            peaks.append(p)
            continue
        rj = raw[j]
        raw.append(rj)
        cj = first = find(rj)
        for ck in sorted(seen):
            if ck == first:
                continue
            tj, tk = top[cj], top[ck]
            birth.append(float(f[order[max(tj, tk)]]))
            death.append(float(f[p]))
            merges.append([rj, seen[ck]])
            if height[cj] > height[ck]:  # union by rank, ties to the second set
                parent[ck] = cj
            else:
                parent[cj] = ck
                height[ck] += height[cj] == height[ck]
            cj = find(cj)
            top[cj] = min(tj, tk)
    out = np.empty(n, np.int64)
    out[order] = raw
    return (
        out,
        np.array(peaks, np.int64),
        np.array(merges, np.int64).reshape(-1, 2),
        np.array(birth, np.float64),
        np.array(death, np.float64),
    )


class core:  # noqa: N801 - a namespace that reads like the module it mirrors
    """NumPy twins of :mod:`latentatlas._core`, name for name (``reference.core.gemm_topk`` ...).

    A namespace rather than module-level names because the seed's ``rayleigh_energy(X, L)`` above
    keeps its name, and ``_core.rayleigh_energy(x, indptr, indices, data)`` differs from it.
    """

    gram = staticmethod(_gram)
    feature_topk = staticmethod(_feature_topk)
    rayleigh_energy = staticmethod(_rayleigh_energy)
    gemm_topk = staticmethod(_gemm_topk)
    knn_sqdist = staticmethod(_knn_sqdist)
    lambda_topk = staticmethod(_lambda_topk)
    taumode_raw = staticmethod(_taumode_raw)
    sae_encode = staticmethod(_sae_encode)
    sae_encode_threshold = staticmethod(_sae_encode_threshold)
    sparse_decode = staticmethod(_sparse_decode)
    sparse_gather_dot = staticmethod(_sparse_gather_dot)
    sparse_scatter_rows = staticmethod(_sparse_scatter_rows)
    latent_search = staticmethod(_latent_search)
    adam_step = staticmethod(_adam_step)
    tomato_forest = staticmethod(_tomato_forest)
