"""One typed wrapper per kernel of the Rust extension :mod:`latentatlas._core`.

Everything above calls these, never ``_core`` itself (``tests/test_layers.py`` checks it). Each wrapper
has the kernel's name and signature (arrays positional, options keyword-only), so it stands in for
``_core`` wherever ``reference.core`` (its NumPy twin) can too, and does the chores the kernel leaves
to its caller, once:

- **dtype**: the float arrays of one call are brought to one precision (float32 when all are float32,
  else float64; integers and half precision are widened), index arrays to int64;
- **layout**: arrays are passed as they are (the kernels take any strides); ``adam_step`` updates in
  place, so it converts nothing;
- **threads**: ``threads`` is checked (None or ``1..MAX_THREADS``) before the call;
- **errors**: the kernel's ValueError/TypeError name the argument; nothing else is caught here.

This module is on the ground floor (beside ``chunked``, which uses it), so every floor may call it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._validate import check_threads

__all__ = [
    "GRAM_CHUNK_ROWS",
    "adam_step",
    "feature_topk",
    "gemm_topk",
    "gram",
    "knn_sqdist",
    "lambda_topk",
    "latent_search",
    "rayleigh_energy",
    "sae_encode",
    "sae_encode_threshold",
    "sparse_decode",
    "sparse_gather_dot",
    "sparse_scatter_rows",
    "taumode_raw",
    "tomato_forest",
]

#: Rows per chunk of the streamed Gram (the leaf of ``chunked``'s fixed reduction tree).
GRAM_CHUNK_ROWS = int(_core.GRAM_CHUNK_ROWS)

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _precision(*arrays: Any) -> np.dtype:
    """float32 when every float array given is float32, else float64 (None entries are skipped)."""
    dts = [np.asarray(a).dtype for a in arrays if a is not None]
    return _F32 if dts and all(d == _F32 for d in dts) else _F64


def _as(a: Any, dt: np.dtype) -> Any:
    """``a`` in dtype ``dt`` without a copy when it already is (None stays None)."""
    return None if a is None else np.asarray(a).astype(dt, copy=False)


def _float(a: Any) -> np.ndarray:
    """A float32/float64 array as it is; anything else widened to float64."""
    arr = np.asarray(a)
    return arr if arr.dtype in (_F32, _F64) and arr.dtype.isnative else arr.astype(_F64)


def _index(a: Any) -> np.ndarray:
    return np.asarray(a).astype(np.int64, copy=False)


def _csr(indptr: Any, indices: Any, data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _index(indptr), _index(indices), np.asarray(data).astype(_F64, copy=False)


# -- feature graph and energies ----------------------------------------------------------------------
def gram(x: Any, /, *, chunk_rows: int = GRAM_CHUNK_ROWS, threads: int | None = None) -> np.ndarray:
    """XᵀX ``(F, F)`` float64 of x ``(N, F)``, streamed over ``chunk_rows``-row chunks."""
    return _core.gram(_float(x), chunk_rows=chunk_rows, threads=check_threads(threads))


def feature_topk(
    x: Any, /, k: int, *, chunk_rows: int = GRAM_CHUNK_ROWS, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(cosine (F, k) float64, indices (F, k) int64)``: each feature column's top-k others."""
    return _core.feature_topk(_float(x), k, chunk_rows=chunk_rows, threads=check_threads(threads))


def rayleigh_energy(x: Any, indptr: Any, indices: Any, data: Any, /, *, threads: int | None = None) -> np.ndarray:
    """xᵀLx / xᵀx per row of x ``(N, F)`` for L in CSR form ``(N,)`` float64 (0 where xᵀx <= 1e-9)."""
    return _core.rayleigh_energy(_float(x), *_csr(indptr, indices, data), threads=check_threads(threads))


def taumode_raw(
    x: Any, indptr: Any, indices: Any, data: Any, /, *, tau: float | None = None, threads: int | None = None
) -> np.ndarray:
    """arrowspace's taumode λ per row of x ``(N, F)`` on L (CSR), before the min-max over items."""
    return _core.taumode_raw(_float(x), *_csr(indptr, indices, data), tau=tau, threads=check_threads(threads))


# -- the GEMM + top-k primitive --------------------------------------------------------------------
def gemm_topk(
    a: Any, b: Any, /, k: int, *, bias: Any = None, exclude_self: bool = False, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(values (M, k), indices (M, k) int64)`` of the k largest a·bⱼ + biasⱼ per row of a ``(M, d)``."""
    dt = _precision(a, b, bias)
    return _core.gemm_topk(
        _as(a, dt), _as(b, dt), k, bias=_as(bias, dt), exclude_self=exclude_self, threads=check_threads(threads)
    )


def knn_sqdist(x: Any, /, *, k: int, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(d2 (N, k) float64, idx (N, k) int64)``: each row's k nearest other rows by squared L2.

    Candidates come from the GEMM in x's precision (pass float32 for the fast path), distances are
    recomputed in float64."""
    return _core.knn_sqdist(_float(x), k=k, threads=check_threads(threads))


def lambda_topk(
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
    """``(scores (M, k) float64, ids (M, k) int64)`` of arrowspace's λ-aware score per query."""
    dt = _precision(q, items)
    qn, ql, xn, xl = (_as(v, _F64) for v in (query_inv_norm, query_lambda, item_inv_norm, item_lambda))
    return _core.lambda_topk(
        _as(q, dt), _as(items, dt), qn, ql, xn, xl, k, tau=tau, band=band, threads=check_threads(threads)
    )


# -- ToMATo ----------------------------------------------------------------------------------------
def tomato_forest(density: Any, indptr: Any, indices: Any, /, *, threads: int | None = None) -> tuple[np.ndarray, ...]:
    """ToMATo's merge forest of ``density (n,)`` on a CSR graph: (raw_cluster, peaks, merges, birth, death)."""
    f = np.ascontiguousarray(density, dtype=np.float64)
    return _core.tomato_forest(f, _index(indptr), _index(indices), threads=check_threads(threads))


# -- sparse autoencoders ---------------------------------------------------------------------------
def sae_encode(
    x: Any, w_enc: Any, b_enc: Any, /, k: int, *, b_dec: Any = None, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(values (N, k) >= 0 descending, indices (N, k) int64)`` of TopK(W_enc (x − b_dec) + b_enc)."""
    dt = _precision(w_enc)  # the model's precision decides; x follows it
    return _core.sae_encode(
        _as(x, dt), _as(w_enc, dt), _as(b_enc, dt), k, b_dec=_as(b_dec, dt), threads=check_threads(threads)
    )


def sae_encode_threshold(
    x: Any, w_enc: Any, b_enc: Any, threshold: Any, /, *, b_dec: Any = None, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR ``(indptr (N+1,), indices, data)`` of the pre-activations above each latent's threshold."""
    dt = _precision(w_enc)
    return _core.sae_encode_threshold(
        _as(x, dt), _as(w_enc, dt), _as(b_enc, dt), _as(threshold, dt), b_dec=_as(b_dec, dt),
        threads=check_threads(threads),
    )  # fmt: skip


def sparse_decode(values: Any, indices: Any, w: Any, /, *, bias: Any = None, threads: int | None = None) -> np.ndarray:
    """``bias + Σ_t values[i, t] · w[indices[i, t]]`` per row, ``(N, d)`` in w's precision."""
    dt = _precision(w)
    return _core.sparse_decode(
        _as(values, dt), _index(indices), _as(w, dt), bias=_as(bias, dt), threads=check_threads(threads)
    )


def sparse_gather_dot(g: Any, indices: Any, w: Any, /, *, threads: int | None = None) -> np.ndarray:
    """``out[i, t] = g[i] · w[indices[i, t]]``, ``(N, k)``."""
    dt = _precision(g, w)
    return _core.sparse_gather_dot(_as(g, dt), _index(indices), _as(w, dt), threads=check_threads(threads))


def sparse_scatter_rows(
    coef: Any, indices: Any, x: Any, /, n_latents: int, *, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(out (n_latents, d), sums (n_latents,))``: out[j] = Σ_{indices[i,t]=j} coef[i,t]·x[i]."""
    dt = _precision(coef, x)
    return _core.sparse_scatter_rows(
        _as(coef, dt), _index(indices), _as(x, dt), n_latents, threads=check_threads(threads)
    )


def latent_search(
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
    """``(scores (M, k), doc ids (M, k) int64)`` of the sparse dot product of codes (inverted index)."""
    dt = _precision(query_values, doc_values)
    return _core.latent_search(
        _as(query_values, dt), _index(query_indices), _as(doc_values, dt), _index(doc_indices), n_latents, k,
        threads=check_threads(threads),
    )  # fmt: skip


def adam_step(
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
    """In-place Adam update of ``param`` and its moments (one shape, one dtype, C order: updated in
    place, so nothing is converted here; the kernel refuses other layouts)."""
    _core.adam_step(
        param, grad, m, v, lr=lr, step=step, beta1=beta1, beta2=beta2, eps=eps, threads=check_threads(threads)
    )
