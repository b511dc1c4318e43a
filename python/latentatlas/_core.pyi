"""Type stubs of the Rust extension ``latentatlas._core`` (see rust/py/src/lib.rs).

Arrays are positional-only, options keyword-only. Every function releases the GIL; ``threads=None``
runs on the global pool (one worker per core, the fast path), ``threads=n`` on a pool of ``n``
workers that is built once per size and reused. Results never depend on the thread count.
Errors: bad shape, argument or NaN/inf → ValueError naming the argument; mixed dtypes → TypeError;
an integer argument outside the unsigned 64-bit range → OverflowError (from the binding, naming no argument: the
public API validates integers first); a thread pool that cannot be built → RuntimeError. No panic reaches Python (an internal bug would be
a RuntimeError). After ``fork`` the child gets fresh pools. Arrays that another Python thread mutates
during a call give a result computed from some mix of old and new values, never an out-of-bounds
access (index arrays are copied before they are checked).
"""

from typing import TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "GRAM_CHUNK_ROWS",
    "SIMD_ENV",
    "MAX_THREADS",
    "gram",
    "feature_topk",
    "rayleigh_energy",
    "gemm_topk",
    "knn_sqdist",
    "sae_encode",
    "sae_encode_threshold",
    "sparse_decode",
    "sparse_gather_dot",
    "sparse_scatter_rows",
    "latent_search",
    "lambda_topk",
    "taumode_raw",
    "adam_step",
    "tomato_forest",
    "simd_path",
    "simd_warning",
    "build_profile",
    "rayon_threads",
]

__version__: str
GRAM_CHUNK_ROWS: int
SIMD_ENV: str
# Largest ``threads`` a kernel accepts (8 per core of this machine); more is a ValueError.
MAX_THREADS: int

_Float = np.float32 | np.float64
# Dtype-preserving kernels: every float input and the float outputs share one precision.
_F = TypeVar("_F", np.float32, np.float64)

# --- feature graph (rust/py/src/spectral.rs) ------------------------------------------------------

def gram(x: npt.NDArray[_Float], /, *, chunk_rows: int = ..., threads: int | None = None) -> npt.NDArray[np.float64]:
    """XᵀX (F×F, float64) streamed over row chunks of x (N×F)."""

def feature_topk(
    x: npt.NDArray[_Float], /, k: int, *, chunk_rows: int = ..., threads: int | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """(cosine values F×k, indices F×k) of each feature column's top-k neighbours, self excluded."""

def rayleigh_energy(
    x: npt.NDArray[_Float],
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    data: npt.NDArray[np.float64],
    /,
    *,
    threads: int | None = None,
) -> npt.NDArray[np.float64]:
    """xᵀLx/xᵀx per row of x (N×F) for L in CSR form; 0 where xᵀx <= 1e-9."""

# --- the GEMM + top-k primitive and kNN (rust/py/src/topk.rs) ------------------------------------

def gemm_topk(
    a: npt.NDArray[_F],
    b: npt.NDArray[_F],
    /,
    k: int,
    *,
    bias: npt.NDArray[_F] | None = None,
    exclude_self: bool = False,
    threads: int | None = None,
) -> tuple[npt.NDArray[_F], npt.NDArray[np.int64]]:
    """(values M×k, indices M×k) of the k largest a·bⱼ + biasⱼ per row of a (M×d), b is (N×d)."""

def knn_sqdist(
    x: npt.NDArray[_Float], /, *, k: int, threads: int | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """(d2 N×k float64, indices N×k) of each row's k nearest other rows by squared L2.

    Candidates from the GEMM + top-k in x's dtype; distances recomputed in float64 from the rows;
    each row ascending by distance, ties to the lower index. Requires 1 <= k < N.
    """

# --- λ-aware search and taumode λ (rust/py/src/lambda.rs) ---------------------------------------

def lambda_topk(
    q: npt.NDArray[_F],
    items: npt.NDArray[_F],
    query_inv_norm: npt.NDArray[np.float64],
    query_lambda: npt.NDArray[np.float64],
    item_inv_norm: npt.NDArray[np.float64],
    item_lambda: npt.NDArray[np.float64],
    /,
    k: int,
    *,
    tau: float,
    band: tuple[float, float] | None = None,
    threads: int | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """(scores M×k float64, item ids M×k) of τ·cos(q, x) + (1−τ)·(1 − min(|λq − λx|, 1)) per query.

    cos = q·x · query_inv_norm · item_inv_norm (the λ term fused into the GEMM + top-k epilogue);
    ``band=(lo, hi)`` keeps only items with lo <= λx <= hi. Best first, ties to the lower id.
    """

def taumode_raw(
    x: npt.NDArray[_Float],
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    data: npt.NDArray[np.float64],
    /,
    *,
    tau: float | None = None,
    threads: int | None = None,
) -> npt.NDArray[np.float64]:
    """arrowspace's taumode λ per row of x (N×F) on L (CSR) before the min-max over items.

    ``tau=None``: each row's τ = max(median(x), 1e-10); else a fixed positive τ.
    """

# --- persistence-based clustering (rust/py/src/tomato.rs) ---------------------------------------

def tomato_forest(
    density: npt.NDArray[_Float],
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    /,
    *,
    threads: int | None = None,
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]:
    """ToMATo's merge forest of density (n) on a CSR graph: (raw_cluster n, peaks r, merges m×2, birth m, death m).

    Vertices by decreasing density (ties: lower index first); gudhi's Tomato bookkeeping.
    """

# --- sparse autoencoders (rust/py/src/sae.rs, sparse.rs, search.rs, adam.rs) ---------------------

def sae_encode(
    x: npt.NDArray[_F],
    w_enc: npt.NDArray[_F],
    b_enc: npt.NDArray[_F],
    /,
    k: int,
    *,
    b_dec: npt.NDArray[_F] | None = None,
    threads: int | None = None,
) -> tuple[npt.NDArray[_F], npt.NDArray[np.int64]]:
    """(values N×k ≥ 0 descending, indices N×k) of TopK(W_enc (x - b_dec) + b_enc), ReLU on the values."""

def sae_encode_threshold(
    x: npt.NDArray[_F],
    w_enc: npt.NDArray[_F],
    b_enc: npt.NDArray[_F],
    threshold: npt.NDArray[_F],
    /,
    *,
    b_dec: npt.NDArray[_F] | None = None,
    threads: int | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[_F]]:
    """CSR (indptr N+1, indices, data) of pre = W_enc (x - b_dec) + b_enc where pre_j > max(threshold_j, 0)."""

def sparse_decode(
    values: npt.NDArray[_F],
    indices: npt.NDArray[np.int64],
    w: npt.NDArray[_F],
    /,
    *,
    bias: npt.NDArray[_F] | None = None,
    threads: int | None = None,
) -> npt.NDArray[_F]:
    """bias + Σ_t values[i,t]·w[indices[i,t]] per row (N×d), cost O(N·k·d)."""

def sparse_gather_dot(
    g: npt.NDArray[_F], indices: npt.NDArray[np.int64], w: npt.NDArray[_F], /, *, threads: int | None = None
) -> npt.NDArray[_F]:
    """out[i,t] = g[i] · w[indices[i,t]] (N×k)."""

def sparse_scatter_rows(
    coef: npt.NDArray[_F],
    indices: npt.NDArray[np.int64],
    x: npt.NDArray[_F],
    /,
    n_latents: int,
    *,
    threads: int | None = None,
) -> tuple[npt.NDArray[_F], npt.NDArray[_F]]:
    """(out n_latents×d with out[j] = Σ_{indices[i,t]=j} coef[i,t]·x[i], sums[j] = Σ coef[i,t])."""

def latent_search(
    query_values: npt.NDArray[_F],
    query_indices: npt.NDArray[np.int64],
    doc_values: npt.NDArray[_F],
    doc_indices: npt.NDArray[np.int64],
    /,
    n_latents: int,
    k: int,
    *,
    threads: int | None = None,
) -> tuple[npt.NDArray[_F], npt.NDArray[np.int64]]:
    """(scores M×k, doc ids M×k) of the sparse dot product of codes, through an inverted index."""

def adam_step(
    param: npt.NDArray[_F],
    grad: npt.NDArray[_F],
    m: npt.NDArray[_F],
    v: npt.NDArray[_F],
    /,
    *,
    lr: float,
    step: int,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    threads: int | None = None,
) -> None:
    """In-place bias-corrected Adam update of param (and its moments m, v); all C-contiguous, one dtype."""

# --- SIMD dispatch (rust/py/src/simd.rs) ---------------------------------------------------------

def simd_path() -> str:
    """The vector path of the dispatched kernels: "scalar", "avx2" or "avx512".

    Chosen once per process: LATENTATLAS_SIMD=auto|scalar|avx2|avx512 if set and supported by
    this CPU, else the widest path the CPU supports. All paths compute the same bits.
    """

def simd_warning() -> str | None:
    """Why LATENTATLAS_SIMD was not honoured (unknown value, or a path this CPU lacks), else None.

    The same message is issued as a RuntimeWarning when the extension is imported.
    """

def build_profile() -> str:
    """ "release" or "debug": how this extension was compiled."""

def rayon_threads() -> int:
    """Worker threads of the global pool that ``threads=None`` runs on."""
