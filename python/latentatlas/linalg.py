"""Exact PCA through a Gram matrix, and the top eigenpairs of a symmetric PSD matrix.

For n rows of width h with n <= h (persona vectors: hundreds of personas by thousands of hidden
units) PCA is cheapest through the ``n x n`` Gram matrix of the centred rows: double-centre it
(:func:`double_center`, O(n²)) and take its top eigenpairs (:func:`top_eigh`: block subspace
iteration with a certified stopping rule, dense LAPACK ``syevr`` when that does not certify
convergence), never the O(n³) full decomposition. Row L2 normalisation is a diagonal scaling of the
same Gram (:func:`row_scale`), so one matrix product per layer gives both the centred cosine
similarity and PCA (``personas.analysis.layered_analysis``). :class:`PCA` wraps it with
scikit-learn's interface and sign convention; :func:`gram_pca` switches to the ``h x h`` covariance
when there are more rows than columns.

The ground rules of the inputs (a real numeric array, torch tensors accepted; float32 kept, other
dtypes widened to float32) are :func:`as_float_array` and :func:`as_rows`.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import numpy as np

from ._optional import to_numpy
from ._validate import check_int

__all__ = [
    "EPS",
    "PCA",
    "as_float_array",
    "as_rows",
    "blas_threads",
    "center_rows",
    "check_components",
    "double_center",
    "finite",
    "gram_pca",
    "gram_threads",
    "pca_from_gram",
    "row_norms",
    "row_scale",
    "top_eigh",
]

EPS = 1e-12  # torch.nn.functional.normalize's eps: a zero row stays zero

_DENSE_EIGH_MAX = 256  # up to this many rows a dense eigh is cheapest; above, subspace iteration
_SUBSPACE_EXTRA = 32  # block = k + 32 columns: the top k converge at rate lambda_(k+33) / lambda_k
_SUBSPACE_MAXITER = 12  # ~12 n x n x block products ≈ half a dense eigh at n = 1000
_SUBSPACE_TOL = 1e-7  # residual / eigen-gap: bounds each vector's angle error (Davis-Kahan)
_ONE_THREAD_GRAM_MAX = 1024  # PCA through a Gram/covariance up to this side runs on one BLAS thread


# ------------------------------------------------------------------------------------ threads


@functools.cache
def _blas_controller() -> Any:
    import scipy.linalg  # noqa: F401  (load LAPACK first: the controller sees the libraries loaded when made)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def blas_threads(limit: int | None) -> contextlib.AbstractContextManager[Any]:
    """A context in which NumPy's and SciPy's BLAS use at most ``limit`` threads (None: unchanged).

    Small dense problems run faster on one thread: NumPy and SciPy each bundle an OpenBLAS whose
    idle threads spin, and alternating calls between the two pools on few cores costs more than the
    parallel work saves (PCA of 400 x 576 on 2 cores: 16 ms a call with stalls of 100-200 ms on two
    threads, a steady 10 ms on one). The controller is made once (about 2.5 ms); a limit costs ~10 us.
    """
    if limit is None:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=int(limit), user_api="blas")


def gram_threads(n: int, h: int) -> int | None:
    """BLAS threads for PCA of n x h rows through their Gram/covariance: one up to a side of 1024
    (measured on 2 cores: 400 x 576 10 ms vs 16, 1000 x 1024 95 ms vs 144; 2000 x 2048 is faster
    on two), else the default."""
    return 1 if min(n, h) <= _ONE_THREAD_GRAM_MAX else None


# ------------------------------------------------------------------------------------- inputs


def as_float_array(x: Any) -> np.ndarray:
    """``x`` (an array, array-like or torch tensor) as a float32 or float64 NumPy array."""
    x = to_numpy(x)  # a torch tensor becomes a CPU float array; anything else is left as is
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"samples must be a real numeric array, got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    return arr


def as_rows(samples: Any) -> np.ndarray:
    """:func:`as_float_array`, checked to be 2-D ``(n_samples, hidden_size)``."""
    arr = as_float_array(samples)
    if arr.ndim != 2:
        raise ValueError("samples must have shape (n_samples, hidden_size)")
    return arr


def check_components(x: np.ndarray, n_components: int, *, method: str, min_samples: int = 2) -> None:
    """``n_components`` an int in ``[.., min(n_samples, hidden_size)]`` and at least ``min_samples`` rows."""
    check_int(n_components, "n_components")
    n, h = x.shape
    if n < min_samples:
        raise ValueError(f"{method} requires at least {min_samples} samples; got {n}")
    if n_components > min(n, h):
        raise ValueError(f"{method} n_components={n_components} must be <= min(n_samples, hidden_size)={min(n, h)}")


def center_rows(x: np.ndarray) -> np.ndarray:
    """``x`` minus its column means (accumulated in float64), in ``x``'s dtype."""
    return x - x.mean(axis=0, keepdims=True, dtype=np.float64).astype(x.dtype)


def row_norms(x: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row of a 2-D float array, in float64, free of overflow and underflow.

    ``sqrt(Σ x²)`` overflows to inf for a row whose values exceed ~1e154 (float64) and underflows
    to 0 below ~1e-162, which would make a huge row look infinite and a tiny one look like zero;
    those rows are computed again as ``m sqrt(Σ (x/m)²)``, m their largest |value| (scale-free).
    A row with a NaN keeps a NaN norm; an all-zero row has norm 0.
    """
    with np.errstate(over="ignore", under="ignore"):
        n = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    redo = np.flatnonzero(np.isinf(n) | (n < _NORM_UNDERFLOW))
    if redo.size:
        xs = np.asarray(x[redo], dtype=np.float64)
        m = np.abs(xs).max(axis=1) if xs.shape[1] else np.zeros(len(redo))
        live = m > 0
        xs = xs[live] / m[live, None]
        n[redo[live]] = m[live] * np.sqrt(np.einsum("ij,ij->i", xs, xs))
    return n


#: Below this a float64 sum of squares has lost bits to underflow (its terms are near the subnormals).
_NORM_UNDERFLOW = 1e-140


# ------------------------------------------------------------------------------ Gram matrices


def finite(G: np.ndarray) -> np.ndarray:
    """``G`` if finite: a Gram (or covariance) matrix carries any NaN/inf of the samples (O(n²) check)."""
    if not np.isfinite(G).all():
        raise ValueError("samples contain NaN or infinity (or values whose products overflow)")
    return G


def row_scale(G: np.ndarray) -> np.ndarray:
    """1 / max(|x_i|, eps) from the Gram diagonal: the L2 row normalisation as a diagonal scaling."""
    return 1.0 / np.maximum(np.sqrt(np.clip(np.diag(G).astype(np.float64), 0.0, None)), EPS)


def double_center(G: np.ndarray) -> np.ndarray:
    """H G H with H = I - 11ᵀ/n, by rank-1 updates (O(n²), in place on a float64 copy)."""
    G = np.array(G, dtype=np.float64)
    r = G.mean(axis=1)
    G -= r[:, None]
    G -= r[None, :]
    G += r.mean()
    return G


# ------------------------------------------------------------------------------- eigenpairs


def _dense_top(G: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.linalg import eigh

    n = G.shape[0]
    w, V = eigh(G, subset_by_index=[n - k, n - 1], driver="evr", check_finite=False)
    return w[::-1], V[:, ::-1]


def _subspace_top(G: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-k eigenpairs of symmetric PSD G by block subspace iteration + Rayleigh-Ritz, or None.

    Converged when every wanted Ritz pair meets ``|G v - θ v| <= tol * gap`` (gap: distance of θ
    to its neighbouring Ritz values), which bounds the vector's angle error by ``tol``. Returns
    None as soon as the observed convergence rate says that will not happen within the iteration
    cap (flat spectrum, near-degenerate top eigenvalues): the caller then decomposes densely.
    The start block is fixed (seed 0), so results are deterministic.
    """
    n = G.shape[0]
    b = min(n, k + _SUBSPACE_EXTRA)
    Q, _ = np.linalg.qr(G @ np.random.default_rng(0).standard_normal((n, b)))
    prev = np.inf
    for it in range(_SUBSPACE_MAXITER):
        Z = G @ Q
        T = Q.T @ Z
        theta, W = np.linalg.eigh((T + T.T) * 0.5)
        theta, W = theta[::-1], W[:, ::-1]
        GV = Z @ W  # = G (Q W): one more power step on the Ritz vectors, for free
        V = Q @ W[:, :k]
        R = GV[:, :k] - V * theta[:k]
        resid = np.sqrt(np.einsum("ij,ij->j", R, R))
        gaps = -np.diff(theta)  # theta[i] - theta[i + 1] >= 0
        gap = np.minimum(gaps[:k], np.concatenate(([np.inf], gaps[: k - 1])))
        if theta[k - 1] <= 0 or np.any(gap <= 1e-12 * theta[0]):
            return None
        q = float(np.max(resid / (_SUBSPACE_TOL * gap)))  # <= 1: converged
        if q <= 1.0:
            return theta[:k], V
        if it >= 2:  # give up early when the observed rate cannot reach q <= 1 within the cap
            rate = q / prev
            if rate >= 1.0 or it + np.log(q) / -np.log(rate) > _SUBSPACE_MAXITER:
                return None
        prev = q
        Q, _ = np.linalg.qr(GV)
    return None


def top_eigh(G: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenpairs (descending) of a symmetric PSD matrix (n, n).

    Dense LAPACK ``syevr`` on the wanted subset for small n; above that, subspace iteration with
    a block of k + 32 (a few ``n x n x (k+32)`` products, 2-3x cheaper than the dense O(n³)
    tridiagonalisation at n = 1000 when the top of the spectrum is separated), falling back to
    the dense solver when it does not certify convergence.
    """
    n = G.shape[0]
    if n > _DENSE_EIGH_MAX and k + _SUBSPACE_EXTRA < n // 2:
        got = _subspace_top(G, k)
        if got is not None:
            return got
    return _dense_top(G, k)


# -------------------------------------------------------------------------------------- PCA


def pca_from_gram(
    Gp: np.ndarray, xc: np.ndarray, scale: np.ndarray | None, k: int, *, spectrum: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Exact PCA scores (n, k) and explained-variance ratios from PCA's centred Gram matrix.

    ``Gp = H P Pᵀ H`` for the rows P = diag(scale) @ xc (scale None: P = xc). Ratios cover every
    component when ``spectrum`` (eigenvalues only, dense), else the first k (λ / trace Gp).
    Signs follow scikit-learn's ``svd_flip(u_based_decision=False)``: the largest-|.| loading of
    each component is positive; loadings ∝ (H P)ᵀ U = xcᵀ (scale * H U), an (h x n x k) product.
    """
    from scipy.linalg import eigh

    total = float(np.trace(Gp))
    w, U = top_eigh(Gp, k)
    w = np.clip(w, 0.0, None)
    HU = U - U.mean(axis=0, keepdims=True)
    if scale is not None:
        HU = HU * scale[:, None]
    comps = xc.T @ HU.astype(xc.dtype)  # (h, k), only the signs are used
    signs = np.sign(comps[np.argmax(np.abs(comps), axis=0), np.arange(k)]).astype(np.float64)
    signs[signs == 0] = 1.0
    scores = U * (np.sqrt(w) * signs)
    top = np.clip(eigh(Gp, eigvals_only=True, check_finite=False)[::-1], 0.0, None) if spectrum else w
    ratio = top / total if total > 0 else np.zeros_like(top)
    return scores, ratio


def gram_pca(x: np.ndarray, n_components: int, *, spectrum: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Exact PCA of rows x (n, h): scores (n, k) and explained-variance ratios.

    Ratios cover every component (length ``min(n, h)``) when ``spectrum``, else the first k.
    Uses the n x n Gram matrix when n <= h (the persona case), else the h x h covariance.
    Signs follow scikit-learn's ``svd_flip(u_based_decision=False)``.
    """
    n, h = x.shape
    with blas_threads(gram_threads(n, h)):
        return _gram_pca(x, n_components, spectrum)


def _gram_pca(x: np.ndarray, k: int, spectrum: bool) -> tuple[np.ndarray, np.ndarray]:
    from scipy.linalg import eigh

    n, h = x.shape
    xc = center_rows(x)
    if n <= h:
        scores, ratio = pca_from_gram(double_center(finite(xc @ xc.T)), xc, None, k, spectrum=spectrum)
        return scores, ratio[: min(n, h)]
    xc64 = xc.astype(np.float64)
    C = finite(xc64.T @ xc64)
    evals_all, V = eigh((C + C.T) * 0.5, check_finite=False)
    evals = np.clip(evals_all[::-1], 0.0, None)
    total = float(evals.sum())
    comps = V[:, ::-1][:, :k]
    signs = np.sign(comps[np.argmax(np.abs(comps), axis=0), np.arange(k)])
    signs[signs == 0] = 1.0
    top = evals[: min(n, h)] if spectrum else evals[:k]
    ratio = top / total if total > 0 else np.zeros_like(top)
    return (xc64 @ comps) * signs, ratio


class PCA:
    """Exact PCA of a row matrix, with scikit-learn's interface and sign convention.

    Uses the ``n x n`` Gram matrix when there are fewer rows than columns (the persona case);
    ``random_state`` is accepted and has no effect (the decomposition is exact).
    ``personas.analysis`` offers it as the module attribute its projections call (as the original
    calls scikit-learn's), so tests written for persona-vectors can monkeypatch ``analysis.PCA``.
    """

    def __init__(self, n_components: int | None = None, random_state: int | None = 0) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def _run(self, X: Any) -> np.ndarray:
        x = as_rows(X)
        k = min(x.shape) if self.n_components is None else int(self.n_components)
        check_components(x, k, method="PCA", min_samples=1)
        scores, ratio = gram_pca(x, k, spectrum=False)  # the first k ratios need no full spectrum
        self.explained_variance_ratio_ = ratio
        return scores

    def fit(self, X: Any, y: Any = None) -> PCA:
        self._run(X)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        return self._run(X)
