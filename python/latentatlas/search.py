"""Exact λ-aware search: arrowspace's score, batched, on the blocked GEMM + top-k primitive.

:class:`SpectralIndex` gives every item a spectral value λ (arrowspace's taumode λ or the Rayleigh
energy, min-max scaled over the index) on the feature graph of the corpus, and ranks items for a
query by the score of ``arrowspace`` 0.30 (REFERENCE.md §2)::

    score(q, x) = τ·cos(q, x) + (1 − τ)·(1 − min(|λ_q − λ_x|, 1))

The query's λ is computed on the index's Laplacian and scaled with the index's min and range,
clamped to [0, 1], as arrowspace does. ``τ = 1`` is exact cosine search.

How it runs: the Rust kernel ``kernels.lambda_topk`` multiplies query blocks by item blocks with a
GEMM and adds the λ term per candidate inside the top-k loop (no N-long score vector per query, no
normalised copy of the items: the cosine is the dot product times both inverse norms). The corpus
goes through :mod:`latentatlas.chunked`: an array or ``np.memmap`` is scanned in row blocks and a
Dask array block by block as Dask tasks, the per-block top-k merged under (value desc, index asc), so a
corpus larger than memory streams from disk or a cluster and the result does not depend on the
blocks or the thread count.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from . import chunked, kernels
from ._estimator import Estimator
from ._io import atomic_write_text, read_safetensors, safetensors_metadata, write_safetensors
from ._validate import as_matrix, check_choice, check_finite, check_float, check_int, check_threads
from .linalg import row_norms
from .spectral import Weights, _csr_parts, feature_laplacian

__all__ = ["SpectralIndex"]

#: Queries per call of the kernel (a multiple of its 256-row block).
QUERY_BLOCK = 1 << 12

_FORMAT = "latentatlas.SpectralIndex"
_VERSION = 1
_TENSORS = "index.safetensors"
_META = "index.json"


def _inv_norms(X: np.ndarray, start: int = 0) -> np.ndarray:
    """``1/|x|`` per row in float64 (0 for a zero row), over row blocks of 32 MB.

    Scale-free (:func:`latentatlas.linalg.row_norms`): a row whose sum of squares overflows or
    underflows float64 keeps its true norm, so its cosine is not silently 0. A norm whose inverse
    is not a float64 (above ~1.8e308) is refused."""
    out = np.empty(X.shape[0])
    step = max(1, (32 << 20) // max(1, X.shape[1] * 8))
    for s in range(0, X.shape[0], step):
        nrm = row_norms(np.asarray(X[s : s + step], dtype=np.float64))
        if np.isinf(nrm).any():
            raise ValueError(f"row {start + s + int(np.argmax(np.isinf(nrm)))}: its norm exceeds float64's range")
        with np.errstate(over="ignore"):
            out[s : s + step] = np.divide(1.0, nrm, out=np.zeros_like(nrm), where=nrm > 0)
    if np.isinf(out).any():  # 1/|x| overflows for |x| below ~5.6e-309 (a subnormal row)
        raise ValueError(f"row {start + int(np.argmax(np.isinf(out)))}: its norm is below float64's range")
    return out


def _computed(v: Any, lazy: bool) -> np.ndarray:
    """A per-item vector in memory (a ``lazy`` Dask result is computed: N floats)."""
    return np.asarray(chunked.compute(v)[0] if lazy else v, dtype=np.float64)


def _as_laplacian(laplacian: Any, n_features: int) -> sp.csr_matrix:
    """A user's L as float64 CSR: scipy sparse, dense, or arrowspace's ``gl.to_csr()`` tuple
    ``(data, indices, indptr, shape)``."""
    if isinstance(laplacian, tuple) and len(laplacian) == 4:
        data, indices, indptr, shape = laplacian
        try:
            laplacian = sp.csr_matrix(
                (np.asarray(data, np.float64), np.asarray(indices, np.int64), np.asarray(indptr, np.int64)),
                shape=tuple(int(s) for s in shape),
            )
        except (ValueError, TypeError) as exc:
            raise ValueError(f"laplacian: not a valid (data, indices, indptr, shape) CSR tuple ({exc})") from None
    indptr, indices, data = _csr_parts(laplacian, n_features, name="laplacian")
    if not np.isfinite(data).all():
        raise ValueError("laplacian contains NaN or infinity")
    return sp.csr_matrix((data, indices, indptr), shape=(n_features, n_features))


class SpectralIndex(Estimator):
    """Exact, batched search by arrowspace's λ-aware score.

    Parameters
    ----------
    k : int, default 8
        Neighbours per feature in the feature graph (ignored when ``fit`` gets a ``laplacian``).
    weights : {"cosine", "positive", "binary"}, default "cosine"
        Edge weights of the feature graph (see :func:`latentatlas.feature_graph`).
    lam : {"taumode", "energy"}, default "taumode"
        The λ of an item: arrowspace's taumode λ or the Rayleigh energy ``xᵀLx / xᵀx``.
    tau_mode : "median" or float, default "median"
        taumode's τ: each row's median (clamped to ≥ 1e-10, as arrowspace) or a fixed positive number.
    threads : int, optional
        Worker threads of the Rust kernels (results do not depend on it).

    Attributes
    ----------
    items_ : ndarray (n_items, n_features)
        The corpus as given (a reference: a memmap stays on disk).
    laplacian_ : scipy.sparse.csr_matrix (n_features, n_features)
    lambda_min_, lambda_span_ : float
        Min and range of the unscaled λ over the index (the query λ is scaled with them).
    n_items_, n_features_in_ : int

    Zero rows: a zero item or query has cosine 0 with everything (its score is the λ term alone);
    its taumode λ is 0 before scaling.

    Examples
    --------
    >>> idx = SpectralIndex(k=8).fit(X)                     # doctest: +SKIP
    >>> scores, ids = idx.search(Q, k=10, tau=0.7)          # (n_queries, 10) each   # doctest: +SKIP
    >>> idx.save("index/"); idx = SpectralIndex.load("index/")   # doctest: +SKIP
    """

    def __init__(
        self,
        k: int = 8,
        weights: Weights = "cosine",
        lam: Literal["taumode", "energy"] = "taumode",
        tau_mode: Literal["median"] | float = "median",
        threads: int | None = None,
    ) -> None:
        self.k = k
        self.weights = weights
        self.lam = lam
        self.tau_mode = tau_mode
        self.threads = threads

    # --- building ------------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_choice(self.lam, "lam", ("taumode", "energy"))
        if self.tau_mode != "median":
            check_float(self.tau_mode, "tau_mode", low=0.0, low_open=True)
        check_threads(self.threads)

    def _raw_lambdas(self, X: np.ndarray, start: int = 0) -> np.ndarray:
        L = self.laplacian_
        parts = (np.asarray(L.indptr, np.int64), np.asarray(L.indices, np.int64), np.asarray(L.data, np.float64))
        if self.lam == "energy":
            return kernels.rayleigh_energy(X, *parts, threads=check_threads(self.threads))
        tau = None if self.tau_mode == "median" else float(self.tau_mode)
        return kernels.taumode_raw(X, *parts, tau=tau, threads=check_threads(self.threads))

    def fit(self, X: Any, laplacian: Any = None) -> SpectralIndex:
        """Index the rows of X (n_items, n_features), float32 or float64: an array in any layout, an
        ``np.memmap`` or a Dask array (kept by reference; every search scans it in row blocks).

        ``laplacian`` (n_features, n_features): use this L instead of building the feature graph,
        e.g. arrowspace's ``gl.to_csr()`` tuple, a scipy sparse or a dense matrix.
        """
        self._check_params()
        X = chunked.rows(X, "X", min_cols=1 if laplacian is not None else 2)
        if not X.rows_known:
            raise TypeError("X must be an array, np.memmap or Dask array: a search scans the items again")
        if laplacian is None:
            self.laplacian_ = feature_laplacian(X, self.k, weights=self.weights, threads=self.threads)
        else:
            self.laplacian_ = _as_laplacian(laplacian, X.n_cols)
        raw = _computed(X.map(self._raw_lambdas, [((), np.float64)]), X.lazy)  # rejects NaN/inf, naming the row
        self.lambda_min_ = float(raw.min())
        self.lambda_span_ = float(raw.max() - raw.min())
        inv = _computed(X.map(_inv_norms, [((), np.float64)]), X.lazy)
        self._set_state(X, self._scale(raw, clamp=False), inv)
        return self

    def _set_state(self, X: chunked.Rows, lambdas: np.ndarray, inv_norms: np.ndarray, order: Any = None) -> None:
        self._items = X
        self.items_ = X.data
        self.n_items_, self.n_features_in_ = X.shape
        self._lambdas = lambdas
        self._inv_norms = inv_norms
        self._order = order  # ids sorted by (λ, id), computed when first needed

    def _scale(self, raw: np.ndarray, *, clamp: bool) -> np.ndarray:
        if self.lambda_span_ > 0:
            out = (raw - self.lambda_min_) / self.lambda_span_
        else:
            out = np.zeros_like(raw)
        return np.clip(out, 0.0, 1.0) if clamp else out

    def _check_fitted(self) -> None:
        if not hasattr(self, "items_"):
            raise RuntimeError("this SpectralIndex is not fitted yet; call fit(X) or SpectralIndex.load(path)")

    def _fitted_facts(self) -> dict[str, Any]:
        if not hasattr(self, "items_"):
            return {}
        lam = self._lambdas
        return {
            "items": self.n_items_,
            "features": self.n_features_in_,
            "storage": self._items.kind,
            "λ min": float(lam.min()) if len(lam) else None,
            "λ median": float(np.median(lam)) if len(lam) else None,
            "λ max": float(lam.max()) if len(lam) else None,
        }

    # --- λ ---------------------------------------------------------------------------------------
    def lambdas(self) -> np.ndarray:
        """λ of every item (n_items,), min-max scaled over the index to [0, 1]."""
        self._check_fitted()
        return self._lambdas.copy()

    def _sorted_ids(self) -> np.ndarray:
        if self._order is None:
            self._order = np.argsort(self._lambdas, kind="stable").astype(np.int64)
        return np.asarray(self._order)

    def lambdas_sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """``(λ ascending, ids)``, ties by id, as arrowspace's ``lambdas_sorted()``."""
        self._check_fitted()
        ids = self._sorted_ids()
        return self._lambdas[ids], ids.copy()

    def in_band(self, lo: float, hi: float) -> np.ndarray:
        """Ids of the items with ``lo <= λ <= hi``, ordered by (λ, id)."""
        self._check_fitted()
        lo, hi = self._check_band((lo, hi))
        ids = self._sorted_ids()
        lam = self._lambdas[ids]
        a, b = np.searchsorted(lam, lo, side="left"), np.searchsorted(lam, hi, side="right")
        return ids[a:b].copy()

    def query_lambdas(self, Q: Any) -> np.ndarray:
        """λ of queries (n_queries,): computed on the index's L, scaled with the index's min and
        range and clamped to [0, 1], as arrowspace scales a query."""
        self._check_fitted()
        Q = self._check_queries(Q)
        return self._scale(self._raw_lambdas(Q), clamp=True)

    # --- search ----------------------------------------------------------------------------------
    @staticmethod
    def _check_band(band: Any) -> tuple[float, float]:
        try:
            lo, hi = band
        except (TypeError, ValueError):
            raise ValueError(f"band must be a pair (lo, hi), got {band!r}") from None
        lo, hi = check_float(lo, "band[0]"), check_float(hi, "band[1]")
        if lo > hi:
            raise ValueError(f"band must satisfy lo <= hi, got ({lo}, {hi})")
        return lo, hi

    def _check_queries(self, Q: Any) -> np.ndarray:
        Q = as_matrix(Q, "Q", min_rows=0)
        if Q.shape[1] != self.n_features_in_:
            raise ValueError(f"Q has {Q.shape[1]} features, but the index has {self.n_features_in_}")
        check_finite(Q, "Q")  # queries are small: check here, so the message names Q
        return np.asarray(Q, dtype=self._items.dtype)

    def search(
        self, Q: Any, k: int = 10, tau: float = 0.7, *, band: tuple[float, float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best items for every query row of Q (n_queries, n_features).

        Parameters
        ----------
        Q : array-like (n_queries, n_features); a 1-D vector is one query.
        k : int, default 10
            ``1 <= k <=`` the number of candidates (items, or items in the band).
        tau : float in [0, 1], default 0.7
            Weight of the cosine; ``1.0`` is exact cosine search.
        band : (lo, hi), optional
            Only items with ``lo <= λ <= hi`` are candidates.

        Returns
        -------
        scores : ndarray (n_queries, k), float64, best first
        ids : ndarray (n_queries, k), int64; ties go to the lower id.
        """
        self._check_fitted()
        if isinstance(Q, np.ndarray) and Q.ndim == 1:
            Q = Q[None, :]
        Q = self._check_queries(Q)
        tau = check_float(tau, "tau", low=0.0, high=1.0)
        lam = self._lambdas
        if band is not None:
            band = self._check_band(band)
            inside = (band[0] <= lam) & (lam <= band[1])
            available, what = int(inside.sum()), f"the {int(inside.sum())} items in the band {band}"
        else:
            inside, available, what = None, self.n_items_, "n_items"
        k = check_int(k, "k", low=1, high=available, what=what)
        ql = self._scale(self._raw_lambdas(Q), clamp=True) if tau < 1.0 else np.zeros(Q.shape[0])
        qin = _inv_norms(Q)
        threads = check_threads(self.threads)

        def block_topk(q: slice, block: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
            cols = slice(start, start + block.shape[0])
            kb = min(k, block.shape[0] if inside is None else int(inside[cols].sum()))
            if kb == 0:  # no candidate in this block
                return np.zeros((q.stop - q.start, 0)), np.zeros((q.stop - q.start, 0), np.int64)
            return kernels.lambda_topk(
                Q[q], block, qin[q], ql[q], self._inv_norms[cols], lam[cols], kb, tau=tau, band=band, threads=threads
            )

        parts = [
            self._items.topk(functools.partial(block_topk, slice(r0, min(r0 + QUERY_BLOCK, len(Q)))), k)
            for r0 in range(0, len(Q), QUERY_BLOCK)
        ]  # fmt: skip
        if not parts:
            return np.zeros((0, k)), np.zeros((0, k), np.int64)
        scores = np.concatenate([p[0] for p in parts])
        bad = np.isnan(scores) | np.isposinf(scores)  # a query and an item whose dot product overflows
        if bad.any():
            q = int(np.argmax(bad.any(axis=1)))
            raise ValueError(f"Q row {q}: its dot products with the items overflow float64 (rescale Q)")
        return scores, np.concatenate([p[1] for p in parts])

    # --- persistence -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index into directory ``path``: ``index.safetensors`` (items, λ, inverse norms,
        λ order, L) and ``index.json`` (parameters, scaling), each written atomically; the JSON is
        written last and names the tensors file's id, so a half-updated pair is detected on load."""
        self._check_fitted()
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise ValueError(f"path {root} exists and is not a directory")
        root.mkdir(parents=True, exist_ok=True)
        L = self.laplacian_
        token = uuid.uuid4().hex
        write_safetensors(
            root / _TENSORS,
            {  # 8-byte tensors first and the items last, so every mapped tensor is aligned
                "lambdas": self._lambdas,
                "inv_norms": self._inv_norms,
                "order": self._sorted_ids(),
                "L_indptr": np.asarray(L.indptr, np.int64),
                "L_indices": np.asarray(L.indices, np.int64),
                "L_data": np.asarray(L.data, np.float64),
                "items": self.items_,
            },
            metadata={"format": _FORMAT, "id": token},
        )
        meta = {
            "format": _FORMAT,
            "version": _VERSION,
            "id": token,
            "params": self.get_params(),
            "lambda_min": self.lambda_min_,
            "lambda_span": self.lambda_span_,
            "n_items": self.n_items_,
            "n_features": self.n_features_in_,
            "dtype": str(self.items_.dtype),
        }
        atomic_write_text(root / _META, json.dumps(meta, indent=1))
        return root

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> SpectralIndex:
        """Open an index written by :meth:`save`. ``mmap=True`` maps the items from the file (opening
        reads the header only; searches stream from the page cache); ``False`` reads them into memory."""
        root = Path(path)
        meta_path, st_path = root / _META, root / _TENSORS
        for p in (meta_path, st_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: not found (is {root} an index written by SpectralIndex.save?)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != _FORMAT or meta.get("version") != _VERSION:
                raise ValueError(f"format {meta.get('format')!r} version {meta.get('version')!r}")
            params, n, f = meta["params"], int(meta["n_items"]), int(meta["n_features"])
            lmin, lspan = float(meta["lambda_min"]), float(meta["lambda_span"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{meta_path}: not a SpectralIndex description ({exc})") from None
        names = ("items", "lambdas", "inv_norms", "order", "L_indptr", "L_indices", "L_data")
        try:
            t = read_safetensors(st_path, names, mmap=mmap)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None
        problems = []
        if safetensors_metadata(st_path).get("id") != meta.get("id"):
            problems.append(f"it does not belong with {meta_path.name} (written by another save)")
        if t["items"].ndim != 2 or t["items"].shape != (n, f) or t["items"].dtype not in (np.float32, np.float64):
            problems.append(f"items has shape {t['items'].shape} / dtype {t['items'].dtype}, expected ({n}, {f}) float")
        for name in ("lambdas", "inv_norms", "order"):
            if t[name].shape != (n,):
                problems.append(f"{name} has shape {t[name].shape}, expected ({n},)")
        if not problems:
            lam, inv = np.asarray(t["lambdas"], np.float64), np.asarray(t["inv_norms"], np.float64)
            if not (np.isfinite(lam).all() and np.isfinite(inv).all()):
                problems.append("lambdas or inv_norms hold NaN or infinity")
        if problems:
            raise ValueError(f"{st_path}: corrupt SpectralIndex tensors: {'; '.join(problems)}")
        try:
            self = cls(**params)
            self._check_params()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{meta_path}: bad SpectralIndex parameters ({exc})") from None
        try:
            self.laplacian_ = _as_laplacian((t["L_data"], t["L_indices"], t["L_indptr"], (f, f)), f)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{st_path}: corrupt SpectralIndex Laplacian ({exc})") from None
        self.lambda_min_, self.lambda_span_ = lmin, lspan
        order = np.asarray(t["order"], np.int64)
        if order.size and (order.min() < 0 or order.max() >= n):
            raise ValueError(f"{st_path}: corrupt SpectralIndex tensors: order holds ids outside [0, {n})")
        self._set_state(chunked.rows(t["items"], "items"), lam, inv, order)
        return self
