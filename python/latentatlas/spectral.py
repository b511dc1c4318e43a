"""Spectral energy of a latent space: the feature graph, its Laplacian and Rayleigh energies.

Features (columns of X) are the nodes; each feature keeps its top-k cosine neighbours; an item's
energy is the Rayleigh quotient ``xᵀLx / xᵀx`` of its row on that graph. Low energy means the
item's values vary smoothly across co-varying features (the arrowspace view of a latent space).

The heavy work runs in Rust (``latentatlas._core``) with the GIL released: one streaming pass of
the Gram matrix ``XᵀX`` over row chunks (so an ``np.memmap`` larger than memory never loads whole)
and one streaming pass for the energies, O(N·(F + edges)) from the sparse L.

X may also be an iterable of row chunks or a ``dask.array.Array`` (see :mod:`latentatlas.chunked`):
the Gram is a fixed-order tree sum over 2,048-row leaves, so the graph is the same bits for any
chunking; row-wise results (energies, λ) of a Dask array come back as lazy Dask arrays.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from . import chunked, kernels
from ._estimator import Estimator
from ._optional import is_dask_array
from ._validate import check_choice, check_k, check_threads

__all__ = [
    "SpectralEnergy",
    "feature_graph",
    "feature_laplacian",
    "graph_laplacian",
    "minmax",
    "rayleigh_energy",
    "taumode_lambda",
]

Weights = Literal["cosine", "positive", "binary"]
_WEIGHTS = ("cosine", "positive", "binary")


def feature_graph(
    X: Any,
    k: int = 8,
    *,
    weights: Weights = "cosine",
    threads: int | None = None,
) -> sp.csr_matrix:
    """Symmetric top-k cosine graph between the feature columns of X.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
        Items in rows. float32/float64 are used as they are (C or Fortran order, strided, memmap),
        or row chunks / a Dask array (:mod:`latentatlas.chunked`).
    k : int
        Neighbours kept per feature, self excluded; ``1 <= k < n_features``.
    weights : {"cosine", "positive", "binary"}
        ``"cosine"`` keeps the raw cosine exactly as the seed notebook does (a negative edge
        survives only if both ends chose it, since ``W = max(W, Wᵀ)``); ``"positive"`` drops
        negative similarities; ``"binary"`` gives every kept edge weight 1.
    threads : int, optional
        Worker threads (default: all cores). The result does not depend on it.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_features, n_features), float64
        ``W = max(W_directed, W_directedᵀ)`` with a zero diagonal.
    """
    X = chunked.rows(X, "X", min_cols=2)
    f = X.n_cols
    k = check_k(k, f, what="n_features")
    check_choice(weights, "weights", _WEIGHTS)
    threads = check_threads(threads)
    G = X.gram(threads=threads)
    if not np.isfinite(G).all():
        G = _gram_of_scaled_columns(X, threads)
    vals, idx = _cosine_topk(G, k)
    if weights == "positive":
        vals = np.maximum(vals, 0.0)
    elif weights == "binary":
        vals = np.ones_like(vals)
    rows = np.repeat(np.arange(f), k)
    directed = sp.csr_matrix((vals.ravel(), (rows, idx.ravel())), shape=(f, f))
    W = directed.maximum(directed.T).tocsr()
    W.eliminate_zeros()
    W.sort_indices()
    return W


def _gram_of_scaled_columns(R: chunked.Rows, threads: int | None) -> np.ndarray:
    """The Gram of X with each column scaled by the power of two that brings its largest |value| into
    [0.5, 1): exact, and cosines do not change under column scaling. For X whose squares overflow (f64
    values near 1e154, f32 near 1e19); this rare path makes one scaled copy of X."""
    if R.kind in ("chunks", "dask"):
        raise ValueError("X: the squares of its values overflow float64; scale its columns (cosines do not change)")
    X = R.data
    top = np.abs(X).max(axis=0).astype(np.float64)
    e = np.where(top >= 1.0, np.minimum(np.floor(np.log2(np.maximum(top, 1.0))) + 1, 1022), 0)
    Xs = (np.asarray(X, dtype=np.float64) * np.exp2(-e)).astype(X.dtype)
    G = chunked.rows(Xs).gram(threads=threads)
    if not np.isfinite(G).all():  # cannot happen for finite X (|values| < 4 after scaling); kept as a guard
        raise ValueError("X: its Gram matrix overflows even after scaling each column")
    return G


def _cosine_topk(G: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(cosine F×k, indices F×k) of each feature's top-k other features from the Gram G, best first, ties to
    the lower index; a zero column has cosine 0 with every column (as scikit-learn defines it)."""
    f = G.shape[0]
    norms = np.sqrt(np.diag(G))
    vals, idx = np.empty((f, k)), np.empty((f, k), np.int64)
    for a in range(0, f, 256):  # row blocks bound the (rows × F) temporaries
        g = G[a : a + 256]
        d = norms[a : a + 256, None] * norms[None, :]
        c = np.divide(g, d, out=np.zeros_like(g), where=d > 0)
        c[np.arange(c.shape[0]), np.arange(a, a + c.shape[0])] = -np.inf  # self excluded
        order = np.argsort(-c, axis=1, kind="stable")[:, :k]  # value desc, index asc
        vals[a : a + 256], idx[a : a + 256] = np.take_along_axis(c, order, axis=1), order
    return vals, idx


def graph_laplacian(W: Any, *, normalized: bool = False) -> sp.csr_matrix:
    """Laplacian of a symmetric weighted graph: ``D - W`` or ``I - D^-1/2 W D^-1/2``.

    For the normalised form, nodes whose degree is not positive (isolated, or only negative
    cosine edges) get a zero row and column, as ``scipy.sparse.csgraph.laplacian`` treats
    isolated nodes.
    """
    W = sp.csr_matrix(W, dtype=np.float64)
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be square, got shape {W.shape}")
    deg = np.asarray(W.sum(axis=1)).ravel()
    if not normalized:
        L = sp.diags(deg) - W
    else:
        ok = deg > 0
        inv_sqrt = np.where(ok, 1.0 / np.sqrt(np.where(ok, deg, 1.0)), 0.0)
        Dm = sp.diags(inv_sqrt)
        L = sp.diags(ok.astype(np.float64)) - Dm @ W @ Dm
    L = sp.csr_matrix(L)
    L.eliminate_zeros()
    L.sort_indices()
    return L


def feature_laplacian(
    X: Any,
    k: int = 8,
    *,
    weights: Weights = "cosine",
    normalized: bool = False,
    threads: int | None = None,
) -> sp.csr_matrix:
    """Laplacian (F×F, CSR) of :func:`feature_graph`: ``L = D - W`` or the symmetric normalised one."""
    return graph_laplacian(feature_graph(X, k, weights=weights, threads=threads), normalized=normalized)


def _csr_parts(L: Any, n_features: int, name: str = "L") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of a square (n_features × n_features) matrix, int64/int64/float64;
    errors name the argument ``name``."""
    if sp.issparse(L):
        L = sp.csr_matrix(L)
    else:
        arr = np.asarray(L)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-D (n_features, n_features) matrix, got {arr.ndim}-D")
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{name} must be a real numeric matrix, got dtype {arr.dtype}")
        L = sp.csr_matrix(arr)
    if L.shape[0] != L.shape[1]:
        raise ValueError(f"{name} must be square, got shape {L.shape}")
    if L.shape[0] != n_features:
        raise ValueError(
            f"{name} has shape {L.shape} but X has {n_features} features; expected ({n_features}, {n_features})"
        )
    if L.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be real, got dtype {L.dtype}")
    return (
        np.ascontiguousarray(L.indptr, dtype=np.int64),
        np.ascontiguousarray(L.indices, dtype=np.int64),
        np.ascontiguousarray(L.data, dtype=np.float64),
    )


def rayleigh_energy(X: Any, L: Any, *, threads: int | None = None) -> np.ndarray:
    """Rayleigh energy ``x L xᵀ / x xᵀ`` of every row of X; 0 where ``x xᵀ <= 1e-9``.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
    L : sparse or dense matrix, shape (n_features, n_features)
        Usually :func:`feature_laplacian`; any square matrix works (only its quadratic form is used).
    threads : int, optional

    Returns
    -------
    ndarray, shape (n_samples,), float64 (a lazy Dask array for a Dask X)
        Cost O(N·nnz(L)), streamed in blocks of 32 rows: no F×F product per row, no N×F temporary.
        A ``scipy.sparse`` X (e.g. SAE codes) is never densified: sparse products over blocks of
        rows, O(nnz(X)·max degree of L) (``threads`` does not apply).
    """
    if sp.issparse(X):
        return _sparse_energy(X, L)
    X = chunked.rows(X, "X")
    parts = _csr_parts(L, X.n_cols)
    return X.map(functools.partial(_energy_rows, parts, check_threads(threads)), [((), np.float64)])


#: Rows of a sparse X per block in :func:`_sparse_energy` (bounds the X·L temporary).
_SPARSE_ENERGY_ROWS = 16384


def _sparse_energy(X: Any, L: Any) -> np.ndarray:
    """Rayleigh energies of the rows of a scipy.sparse X: ``rowsum((X L) ∘ X) / rowsum(X ∘ X)``."""
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    X = sp.csr_matrix(X)
    if X.dtype.kind not in "fiub":
        raise TypeError(f"X must be a real numeric matrix, got dtype {X.dtype}")
    if X.nnz and not np.isfinite(X.data).all():
        raise ValueError("X contains NaN or infinity")
    indptr, indices, data = _csr_parts(L, X.shape[1])
    Lm = sp.csr_matrix((data, indices, indptr), shape=(X.shape[1], X.shape[1]))
    out = np.empty(X.shape[0])
    for a in range(0, X.shape[0], _SPARSE_ENERGY_ROWS):
        B = X[a : a + _SPARSE_ENERGY_ROWS].astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            num = np.asarray((B @ Lm).multiply(B).sum(axis=1)).ravel()
            den = np.asarray(B.multiply(B).sum(axis=1)).ravel()
        # a row whose sums overflow (or whose xᵀLx underflows) is computed again divided by its largest
        # |value|: E is scale-free, and the seed's "0 where xᵀx <= 1e-9" is decided on the true xᵀx
        redo = np.flatnonzero(
            (~np.isfinite(num) | ~np.isfinite(den) | ((num != 0) & (np.abs(num) < np.finfo(np.float64).tiny)))
            & ~(den <= 1e-9)
        )
        if redo.size:
            Br = B[redo]
            m = np.asarray(abs(Br).max(axis=1).todense()).ravel()
            Bs = sp.diags(1.0 / m) @ Br
            num[redo] = np.asarray((Bs @ Lm).multiply(Bs).sum(axis=1)).ravel()
            den[redo] = np.asarray(Bs.multiply(Bs).sum(axis=1)).ravel()
        out[a : a + B.shape[0]] = np.divide(num, den, out=np.zeros_like(num), where=den > 1e-9)
    return out


def _energy_rows(L: tuple[np.ndarray, ...], threads: int | None, X: np.ndarray, start: int) -> np.ndarray:
    return kernels.rayleigh_energy(X, *L, threads=threads)


def minmax(v: Any, name: str = "v") -> np.ndarray:
    """Min-max scale to [0, 1) exactly as the seed notebook does: ``(v - min) / (max - min + 1e-9)``.

    A NaN or infinity in ``v`` is refused (ValueError naming ``name``): its range is not a number,
    and the quotient would silently turn every other value into 0. A finite ``v`` whose range
    overflows float64 (values near ±1.8e308) is scaled on halved values: the same quotient.
    """
    if is_dask_array(v):  # lazy: the two extremes are computed, the scaling stays row-wise
        lo, hi = chunked.compute(v.min(), v.max())
        return _minmax_with(v.astype(np.float64), float(lo), float(hi), name)
    v = np.asarray(v, dtype=np.float64)
    if v.size == 0:
        raise ValueError(f"cannot min-max scale an empty array ({name})")
    return _minmax_with(v, float(v.min()), float(v.max()), name)


def _minmax_with(v: Any, lo: float, hi: float, name: str) -> Any:
    if not (np.isfinite(lo) and np.isfinite(hi)):  # a NaN anywhere makes min and max NaN
        raise ValueError(f"{name} contains NaN or infinity: its min-max scaling is undefined")
    if np.isinf(hi - lo):  # the range overflows: halve every term (exact), the quotient is unchanged
        return (v * 0.5 - lo * 0.5) / (hi * 0.5 - lo * 0.5 + 0.5e-9)
    return (v - lo) / (hi - lo + 1e-9)


class SpectralEnergy(Estimator):
    """Feature-graph Rayleigh energy as a scikit-learn style estimator.

    Parameters
    ----------
    k : int, default 8
        Neighbours per feature in the feature graph.
    weights : {"cosine", "positive", "binary"}, default "cosine"
    normalized : bool, default False
        Use the symmetric normalised Laplacian instead of ``D - W``.
    threads : int, optional
        Worker threads for the Rust kernels (results do not depend on it).

    Attributes
    ----------
    graph_ : scipy.sparse.csr_matrix, shape (n_features, n_features)
    laplacian_ : scipy.sparse.csr_matrix, shape (n_features, n_features)
    n_features_in_ : int

    Examples
    --------
    >>> se = SpectralEnergy(k=8).fit(X)          # doctest: +SKIP
    >>> lam = se.normalized_energy()              # (n_samples,) in [0, 1)   # doctest: +SKIP
    """

    def __init__(
        self,
        k: int = 8,
        weights: Weights = "cosine",
        normalized: bool = False,
        threads: int | None = None,
    ) -> None:
        self.k = k
        self.weights = weights
        self.normalized = normalized
        self.threads = threads

    def fit(self, X: Any, y: Any = None) -> SpectralEnergy:
        """Build the feature graph and Laplacian of X (n_samples, n_features). ``y`` is ignored."""
        X = chunked.rows(X, "X")
        self.graph_ = feature_graph(X, self.k, weights=self.weights, threads=self.threads)
        self.laplacian_ = graph_laplacian(self.graph_, normalized=self.normalized)
        self.n_features_in_ = X.n_cols
        self._X_fit = X  # a reference, not a copy (memmaps and Dask arrays stay where they are)
        self._energy_fit: np.ndarray | None = None
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "laplacian_"):
            raise RuntimeError("this SpectralEnergy is not fitted yet; call fit(X) first")

    def _fitted_facts(self) -> dict[str, Any]:
        if not hasattr(self, "laplacian_"):
            return {}
        facts: dict[str, Any] = {
            "rows": self._X_fit.shape[0] if self._X_fit.rows_known else "streamed",
            "features": self.n_features_in_,
            "graph edges": int(self.graph_.nnz // 2),
            "input": self._X_fit.kind,
        }
        e = self._energy_fit
        if e is not None and not self._X_fit.lazy and len(e):
            facts.update(
                {"energy min": float(e.min()), "energy median": float(np.median(e)), "energy max": float(e.max())}
            )
        return facts

    def energy(self, X: Any = None) -> np.ndarray:
        """Raw Rayleigh energies (n_samples,) of X, or of the fitted data when X is None."""
        self._check_fitted()
        if X is None:
            if self._energy_fit is None:
                self._energy_fit = rayleigh_energy(self._X_fit, self.laplacian_, threads=self.threads)
            return self._energy_fit if self._X_fit.lazy else self._energy_fit.copy()
        X = chunked.rows(X, "X")
        if X.n_cols != self.n_features_in_:
            raise ValueError(f"X has {X.n_cols} features, but SpectralEnergy was fitted with {self.n_features_in_}")
        return rayleigh_energy(X, self.laplacian_, threads=self.threads)

    def normalized_energy(self, X: Any = None) -> np.ndarray:
        """Energies min-max scaled over the given rows as the seed does (``+1e-9`` in the denominator)."""
        return minmax(self.energy(X))

    def fit_energy(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X).energy()`` in one call."""
        return self.fit(X).energy()


def taumode_lambda(X: Any, L: Any, *, tau: Literal["median"] | float = "median") -> np.ndarray:
    """arrowspace's taumode λ for every row of X on the feature Laplacian L (n_samples,), in [0, 1].

    As stated for ``arrowspace`` 0.30 (see the project's REFERENCE, §2)::

        E   = max(xᵀLx / xᵀx, 0)
        G   = Σ_{a≠b} (w_ab (x_a - x_b)² / Σ_{a≠b} w_ab (x_a - x_b)²)²    (edges of L, w = -L_ab)
        tau = max(median(x), 1e-10)                                    (per item; or a fixed float)
        λ   = min-max over items of  min(tau,1)·E/(E+tau) + (1 - min(tau,1))·G

    Sums run over ordered pairs (each undirected edge twice). arrowspace builds its L on item
    centroids with its own edge weighting; pass that L to compare numbers with the library.
    A Dask X gives a lazy Dask array (the extremes of the min-max are computed).
    Computed in Rust (``kernels.taumode_raw``) in the Rayleigh energies' streaming pass over the
    edges of L, plus a median per row. Any finite X and L give the finite λ of the formula (a row
    whose sums overflow float64, e.g. one ×1e100 or L ×1e300, is computed again on scaled copies:
    E and G are scale-free); a ValueError names the argument where λ cannot be formed.
    """
    X = chunked.rows(X, "X", min_cols=2)  # a feature graph needs two features
    parts = _csr_parts(L, X.n_cols)
    if not (tau == "median" or (isinstance(tau, (int, float)) and not isinstance(tau, bool) and tau > 0)):
        raise ValueError(f"tau must be 'median' or a positive number, got {tau!r}")
    raw = X.map(functools.partial(_taumode_rows, parts, tau), [((), np.float64)])
    # a NaN or inf must not reach the min-max, which would turn every row's λ into 0
    if X.lazy:
        lo, hi = chunked.compute(raw.min(), raw.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(_not_finite("some row"))
        return (raw - lo) / (hi - lo) if hi - lo > 0 else raw * 0.0
    bad = np.flatnonzero(~np.isfinite(raw))
    if bad.size:
        raise ValueError(_not_finite(f"row {int(bad[0])}"))
    span = raw.max() - raw.min() if raw.size else 0.0
    return (raw - raw.min()) / span if span > 0 else np.zeros(raw.shape[0])


def _not_finite(where: str) -> str:
    return f"taumode λ is not finite for {where} of X (on L): refusing to min-max it into the other rows"


def _taumode_rows(L: tuple[np.ndarray, ...], tau: Any, X: np.ndarray, start: int) -> np.ndarray:
    """The un-normalised λ of each row of X (row-wise: the same bits whatever the row blocks)."""
    indptr, indices, data = L
    return kernels.taumode_raw(X, indptr, indices, data, tau=None if tau == "median" else float(tau))
