"""The TopK sparse autoencoder: weights as NumPy arrays, encode/decode on the Rust kernels.

h = TopK(W_enc (x - b_dec) + b_enc) with ReLU on the k kept values; x̂ = W_decᵀ h + b_dec, where
``W_enc`` and ``W_dec`` are both ``(n_latents, d_in)`` (row j of W_dec is latent j's direction).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import chunked, kernels
from .._display import fmt, html_card
from .._optional import import_optional, is_dask_array
from .._progress import progress_bar
from .._validate import as_matrix, check_finite, check_int, check_threads
from . import formats
from . import train as _train

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["PARAMS", "Codes", "Health", "SparseCodes", "TopKSAE", "check_codes", "csr_decode", "latent_frequencies"]

#: The model's parameters, in the order of :meth:`TopKSAE.from_arrays`.
PARAMS = ("W_enc", "b_enc", "W_dec", "b_dec")

#: A sparse code: ``(values (N, k), indices (N, k) int64)``, as :meth:`TopKSAE.encode` returns it.
Codes = tuple[np.ndarray, np.ndarray]

#: Rows decoded per call of the kernel in :func:`csr_decode` (bounds the padded code).
_CSR_DECODE_ROWS = 4096


class Health(dict[str, Any]):
    """An SAE's health on some rows (a dict: ``mse``, ``fve``, ``l0``, ``dead_fraction``, ``frequencies``)
    that prints as a short summary, and as a table in a notebook."""

    def _summary(self) -> dict[str, Any]:
        f = np.asarray(self["frequencies"])
        return {
            "fve": self["fve"], "mse": self["mse"], "l0": self["l0"], "dead fraction": self["dead_fraction"],
            "latents": f.size, "densest latent fires on": float(f.max()) if f.size else 0.0,
        }  # fmt: skip

    def __repr__(self) -> str:
        return "Health(" + ", ".join(f"{k}={fmt(v)}" for k, v in self._summary().items()) + ")"

    def _repr_html_(self) -> str:
        return html_card("SAE health", self._summary())


class SparseCodes(tuple[np.ndarray, np.ndarray]):
    """What :meth:`TopKSAE.encode` returns: the pair ``(values (N, k), indices (N, k) int64)``
    (unpack it as always), plus :meth:`to_csr`."""

    n_latents: int

    def __new__(cls, values: np.ndarray, indices: np.ndarray, n_latents: int) -> SparseCodes:
        self = super().__new__(cls, (values, indices))
        self.n_latents = int(n_latents)
        return self

    @property
    def values(self) -> np.ndarray:
        return self[0]

    @property
    def indices(self) -> np.ndarray:
        return self[1]

    def to_csr(self) -> sp.csr_matrix:
        """The codes as ``scipy.sparse.csr_matrix (N, n_latents)``: active (> 0) entries, columns sorted."""
        import scipy.sparse as sp

        v, i = self.values, self.indices
        keep = v > 0
        counts = keep.sum(axis=1)
        indptr = np.zeros(v.shape[0] + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        order = np.argsort(np.where(keep, i, self.n_latents), axis=1, kind="stable")
        iv = np.take_along_axis(i, order, axis=1)
        vv = np.take_along_axis(v, order, axis=1)
        mask = np.take_along_axis(keep, order, axis=1)
        return sp.csr_matrix((vv[mask], iv[mask], indptr), shape=(v.shape[0], self.n_latents))


def _check_k(k: Any, n_latents: int) -> int:
    k = check_int(k, "k")
    return check_int(k, "k", low=None, high=n_latents, what="n_latents")


def csr_decode(H: Any, W_dec: np.ndarray, b_dec: np.ndarray | None, *, threads: int | None = None) -> np.ndarray:
    """x̂ = H W_dec + b_dec for sparse codes H (scipy.sparse, ``(N, n_latents)``), ``(N, d)``.

    Runs the sparse decode kernel on row blocks padded to the block's most active row (padding
    has value 0, which the kernel skips): O(nnz · d), never the dense ``N × n_latents`` codes.
    """
    import scipy.sparse as sp

    n, d = W_dec.shape
    if not sp.issparse(H):
        raise TypeError(f"codes must be a scipy.sparse matrix (N, n_latents), got {type(H).__name__}")
    if H.ndim != 2 or H.shape[1] != n:
        raise ValueError(f"codes must have n_latents = {n} columns, got shape {H.shape}")
    H = sp.csr_matrix(H)
    if H.data.dtype.kind not in "fiu":
        raise TypeError(f"codes must hold real numbers, got dtype {H.data.dtype}")
    if H.nnz and not np.isfinite(H.data).all():
        raise ValueError("codes contains NaN or infinity")
    out = np.empty((H.shape[0], d), W_dec.dtype)
    for r0 in range(0, H.shape[0], _CSR_DECODE_ROWS):
        blk = H[r0 : r0 + _CSR_DECODE_ROWS]
        counts = np.diff(blk.indptr)
        width = int(counts.max(initial=0))
        rows = np.repeat(np.arange(blk.shape[0]), counts)
        slot = np.arange(blk.nnz) - np.repeat(blk.indptr[:-1], counts)
        v = np.zeros((blk.shape[0], width), W_dec.dtype)
        i = np.zeros((blk.shape[0], width), np.int64)
        v[rows, slot] = blk.data
        i[rows, slot] = blk.indices
        out[r0 : r0 + blk.shape[0]] = kernels.sparse_decode(v, i, W_dec, bias=b_dec, threads=check_threads(threads))
    return out


def latent_frequencies(codes: Codes, n_latents: int) -> np.ndarray:
    """Fraction of the code rows on which each latent is active (value > 0), ``(n_latents,)``."""
    v, i = codes
    return np.bincount(i[v > 0], minlength=n_latents) / max(v.shape[0], 1)


def check_codes(
    values: Any, indices: Any, n_latents: int, dtype: np.dtype, name: str = "codes"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a sparse code ``(values (N,k), indices (N,k))`` and return C-contiguous arrays."""
    if not isinstance(values, np.ndarray) or not isinstance(indices, np.ndarray):
        values, indices = np.asarray(values), np.asarray(indices)
    if values.ndim != 2 or indices.shape != values.shape:
        raise ValueError(
            f"{name}: values and indices must both be 2-D (N, k) of one shape, got {values.shape} and {indices.shape}"
        )
    if values.dtype.kind not in "fiu":
        raise TypeError(f"{name}: values must be a float array, got dtype {values.dtype}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{name}: indices must be an integer array, got dtype {indices.dtype}")
    if indices.size and (indices.min() < 0 or indices.max() >= n_latents):
        raise ValueError(
            f"{name}: indices must lie in [0, n_latents={n_latents}), got range [{indices.min()}, {indices.max()}]"
        )
    return (
        np.ascontiguousarray(values, dtype=dtype),
        np.ascontiguousarray(indices, dtype=np.int64),
    )


class TopKSAE:
    """A k-sparse (TopK) autoencoder over embeddings.

    Parameters
    ----------
    d_in : int
        Embedding dimension d.
    n_latents : int
        Number of latents n (dictionary size).
    k : int
        Active latents per input, ``1 <= k <= n_latents``.
    subtract_decoder_bias : bool
        Encode ``x - b_dec`` (the paper, SAELens ``apply_b_dec_to_input``) or ``x`` as is.
    seed : int
        Seed of the initialisation: decoder rows are random unit vectors, the encoder starts tied
        to the decoder (W_enc = W_dec), biases at zero.
    dtype : float32 or float64

    Attributes
    ----------
    W_enc, W_dec : ndarray (n_latents, d_in)
    b_enc : ndarray (n_latents,)
    b_dec : ndarray (d_in,)
    history_ : list of dict
        Per-epoch training losses after :meth:`fit`.
    stream_state_ : dict or None
        Adam's moments, step count and dead-latent counters of :meth:`partial_fit` (None before).
    metadata : dict
        Model/hook names and other keys read from a file (SAELens), written back on save.
    log_sparsity : ndarray (n_latents,) or None
        log10 latent density from a SAELens ``sparsity.safetensors``, when one was read.
    """

    #: The family the file formats record ("topk"; :class:`~latentatlas.sae.threshold.ThresholdSAE` has others)
    architecture: str = "topk"
    stream_state_: dict[str, Any] | None = None
    log_sparsity: np.ndarray | None = None
    #: BatchTopK training's JumpReLU threshold (set by ``fit(batch_topk=True)``)
    batch_topk_threshold_: float | None = None

    def __init__(
        self,
        d_in: int,
        n_latents: int,
        k: int,
        *,
        subtract_decoder_bias: bool = True,
        seed: int = 0,
        dtype: Any = np.float32,
    ) -> None:
        self.d_in = check_int(d_in, "d_in")
        self.n_latents = check_int(n_latents, "n_latents")
        self.k = _check_k(k, self.n_latents)
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        self.subtract_decoder_bias = bool(subtract_decoder_bias)
        self.seed: int | None = seed
        rng = np.random.default_rng(seed)
        W = rng.standard_normal((self.n_latents, self.d_in))
        W /= np.linalg.norm(W, axis=1, keepdims=True)
        self.W_dec = W.astype(dt)
        self.W_enc = W.astype(dt)
        self.b_enc = np.zeros(self.n_latents, dtype=dt)
        self.b_dec = np.zeros(self.d_in, dtype=dt)
        self.history_: list[dict[str, float]] = []
        self.metadata: dict[str, Any] = {}

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        W_enc: Any,
        b_enc: Any,
        W_dec: Any,
        b_dec: Any,
        k: int,
        *,
        subtract_decoder_bias: bool = True,
    ) -> TopKSAE:
        """Build a model from weights: W_enc and W_dec ``(n_latents, d_in)``, b_enc ``(n_latents,)``, b_dec ``(d_in,)``."""
        arrs = {n: np.asarray(a) for n, a in zip(PARAMS, (W_enc, b_enc, W_dec, b_dec))}
        for n, a in arrs.items():
            if a.dtype.kind not in "fiu":
                raise TypeError(f"{n} must be a real float array, got dtype {a.dtype}")
        We, Wd = arrs["W_enc"], arrs["W_dec"]
        if We.ndim != 2:
            raise ValueError(f"W_enc must be 2-D (n_latents, d_in), got shape {We.shape}")
        n, d = We.shape
        if Wd.shape != (n, d):
            raise ValueError(f"W_dec must have the shape of W_enc (n_latents, d_in) = {(n, d)}, got {Wd.shape}")
        if arrs["b_enc"].shape != (n,):
            raise ValueError(f"b_enc must have shape ({n},), got {arrs['b_enc'].shape}")
        if arrs["b_dec"].shape != (d,):
            raise ValueError(f"b_dec must have shape ({d},), got {arrs['b_dec'].shape}")
        dt = np.result_type(*arrs.values())
        dt = np.dtype(np.float32) if dt == np.float32 else np.dtype(np.float64)
        for name, a in arrs.items():
            check_finite(a, name)
        k = _check_k(k, n)
        self = cls.__new__(cls)
        self.d_in, self.n_latents, self.k = int(d), int(n), k
        self.subtract_decoder_bias = bool(subtract_decoder_bias)
        self.seed = None
        # copies: training updates the weights in place and must not touch the caller's arrays
        self.W_enc = np.array(We, dtype=dt, order="C", copy=True)
        self.W_dec = np.array(Wd, dtype=dt, order="C", copy=True)
        self.b_enc = np.array(arrs["b_enc"], dtype=dt, copy=True)
        self.b_dec = np.array(arrs["b_dec"], dtype=dt, copy=True)
        self.history_ = []
        self.metadata = {}
        return self

    @property
    def dtype(self) -> np.dtype:
        return self.W_enc.dtype

    def __repr__(self) -> str:
        return f"TopKSAE(d_in={self.d_in}, n_latents={self.n_latents}, k={self.k}, dtype={self.dtype.name})"

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The weights ``{"W_enc", "b_enc", "W_dec", "b_dec"}`` (the arrays themselves, not copies).

        Setting it replaces all four at once after checking their shapes against the model and
        converting them to its dtype (C-contiguous); training hands its result back this way.
        """
        return {p: getattr(self, p) for p in PARAMS}

    @params.setter
    def params(self, value: dict[str, Any]) -> None:
        if not isinstance(value, dict) or set(value) != set(PARAMS):
            got = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise ValueError(f"params must be a dict with keys {list(PARAMS)}, got {got}")
        n, d = self.n_latents, self.d_in
        shapes = {"W_enc": (n, d), "b_enc": (n,), "W_dec": (n, d), "b_dec": (d,)}
        new = {}
        for p in PARAMS:
            a = np.asarray(value[p])
            if a.shape != shapes[p]:
                raise ValueError(f"params[{p!r}] must have shape {shapes[p]}, got {a.shape}")
            if a.dtype.kind not in "fiu":
                raise TypeError(f"params[{p!r}] must be a real float array, got dtype {a.dtype}")
            new[p] = np.ascontiguousarray(a, dtype=self.dtype)
        for p in PARAMS:
            setattr(self, p, new[p])

    # -- forward -----------------------------------------------------------------------------
    def check_input(self, X: Any, name: str = "X") -> np.ndarray:
        """``X`` as an ``(N, d_in)`` array of the model's dtype (ValueError/TypeError naming ``name``).

        Zero rows are allowed; NaN/inf are left to the kernels (which name ``X``) or to the caller.
        """
        X = as_matrix(X, name, min_rows=0)
        if X.shape[1] != self.d_in:
            raise ValueError(f"{name} must have d_in = {self.d_in} columns, got shape {X.shape}")
        return X.astype(self.dtype, copy=False)

    def encode(
        self,
        X: Any,
        *,
        k: int | None = None,
        subtract_decoder_bias: bool | None = None,
        threads: int | None = None,
    ) -> SparseCodes:
        """Sparse codes of the rows of X.

        Parameters
        ----------
        X : array (N, d_in)
        k : int, optional
            Latents kept per row (default: the model's k).
        subtract_decoder_bias : bool, optional
            Override the model's flag (embedding-scope's retrieval evaluator encodes
            ``W_enc x + b_enc`` without subtracting b_dec).

        Returns
        -------
        values : ndarray (N, k), descending, >= 0 (ReLU)
        indices : ndarray (N, k) int64

            (a :class:`SparseCodes` pair; ``.to_csr()`` gives ``scipy.sparse.csr_matrix (N, n_latents)``)

        X may be row chunks or a Dask array (:mod:`latentatlas.chunked`); a Dask X gives lazy Dask
        arrays. :meth:`encode_to` writes the codes of a large X to ``.npy`` files instead.
        """
        k = self.k if k is None else _check_k(k, self.n_latents)
        sub = self.subtract_decoder_bias if subtract_decoder_bias is None else subtract_decoder_bias
        R = self._rows(X)
        if not R.whole:  # row blocks; a Dask X gives lazy (values, indices) with X's row chunks
            fn = functools.partial(_encode_rows, self._weights(sub)[:3], k, check_threads(threads))  # no decoder
            return R.map(fn, [((k,), self.dtype), ((k,), np.int64)])
        X = R.data.astype(self.dtype, copy=False)
        if X.shape[0] == 0:
            return SparseCodes(np.zeros((0, k), self.dtype), np.zeros((0, k), np.int64), self.n_latents)
        v, i = kernels.sae_encode(
            X, self.W_enc, self.b_enc, k, b_dec=self.b_dec if sub else None, threads=check_threads(threads)
        )
        return SparseCodes(v, i, self.n_latents)

    def _rows(self, X: Any, name: str = "X") -> chunked.Rows:
        """The door of every call on rows: X as :class:`~latentatlas.chunked.Rows` of ``d_in`` columns
        (zero rows allowed)."""
        R = chunked.rows(X, name, min_rows=0)
        if R.n_cols != self.d_in:
            raise ValueError(f"{name} must have d_in = {self.d_in} columns, got shape {R.shape}")
        return R

    def _weights(self, subtract_decoder_bias: bool) -> tuple[Any, ...]:
        """(W_enc, b_enc, b_dec applied to the input or None, W_dec, b_dec) for the row-block functions."""
        return (self.W_enc, self.b_enc, self.b_dec if subtract_decoder_bias else None, self.W_dec, self.b_dec)

    def encode_dense(self, X: Any, *, threads: int | None = None) -> np.ndarray:
        """The codes as a dense ``(N, n_latents)`` array (zeros outside the top k)."""
        v, i = self.encode(X, threads=threads)
        H = np.zeros((v.shape[0], self.n_latents), dtype=self.dtype)
        np.put_along_axis(H, i, v, axis=1)
        return H

    def decode(self, values: Any, indices: Any, *, threads: int | None = None) -> np.ndarray:
        """x̂ = Σ_t values[:, t] · W_dec[indices[:, t]] + b_dec, ``(N, d_in)``; cost O(N·k·d)."""
        if is_dask_array(values) or is_dask_array(indices):
            da = import_optional("dask.array", feature="Dask input")
            values, indices = da.asarray(values), da.asarray(indices)
            fn = functools.partial(_decode_rows, self._weights(True), self.n_latents, check_threads(threads))
            return da.map_blocks(
                fn,
                values,
                indices,
                dtype=self.dtype,
                chunks=(values.chunks[0], (self.d_in,)),
                meta=np.empty((0, 0), self.dtype),
            )
        v, i = check_codes(values, indices, self.n_latents, self.dtype)
        if not np.isfinite(v).all():
            raise ValueError("values contains NaN or infinity")
        if v.shape[0] == 0:
            return np.zeros((0, self.d_in), self.dtype)
        return kernels.sparse_decode(v, i, self.W_dec, bias=self.b_dec, threads=check_threads(threads))

    def reconstruct(self, X: Any, *, threads: int | None = None) -> np.ndarray:
        """decode(encode(X)), ``(N, d_in)`` (row-wise: lazy for a Dask X)."""
        R = self._rows(X)
        if not R.whole:
            fn = functools.partial(_reconstruct_rows, self._weights(self.subtract_decoder_bias), self.k, threads)
            return R.map(fn, [((self.d_in,), self.dtype)])
        return self.decode(*self.encode(R, threads=threads), threads=threads)

    # -- diagnostics -------------------------------------------------------------------------
    def latent_frequencies(self, X: Any, *, threads: int | None = None) -> np.ndarray:
        """Fraction of the rows of X on which each latent is active (value > 0), ``(n_latents,)``."""
        return latent_frequencies(self.encode(X, threads=threads), self.n_latents)

    def health(self, X: Any, *, threads: int | None = None) -> Health:
        """Usual SAE health metrics on X.

        Returns
        -------
        dict with ``mse`` (mean squared error per element), ``fve`` (fraction of variance explained,
        1 - SSE / Σ|x - mean|²), ``l0`` (mean active latents per row), ``dead_fraction`` (latents
        never active on X) and ``frequencies`` (ndarray (n_latents,)).
        """
        X = self._rows(X).replayable()  # two passes below
        # two fixed-order tree sums over the rows (Rows.tree_sum): the same numbers for an
        # array, a memmap, chunks or a Dask array, whatever the chunking
        total, count = X.tree_sum(_health_mean_rows)
        n = int(count[0])
        if n == 0:
            return Health(mse=0.0, fve=float("nan"), l0=0.0, dead_fraction=1.0, frequencies=np.zeros(self.n_latents))
        fn = functools.partial(_health_rows, self._weights(self.subtract_decoder_bias), self.k, threads, total / n)
        sse_cols, var_cols, active, counts = X.tree_sum(fn)
        sse, var = float(sse_cols.sum()), float(var_cols.sum())
        freq = counts / n
        return Health(
            mse=sse / (n * self.d_in),
            fve=1.0 - sse / var if var > 0 else float("nan"),
            l0=float(active[0]) / n,
            dead_fraction=float((freq == 0).mean()),
            frequencies=freq,
        )

    # -- training and files ------------------------------------------------------------------
    def fit(
        self,
        docs: Any,
        queries: Any = None,
        *,
        epochs: int | None = None,
        batch_size: int = 256,
        lr: float = 3e-3,
        schedule: str = "cosine",
        neighbors: int = 8,
        kl_weight: float = 0.0,
        kl: str = "softmax",
        temperature: float | None = None,
        normalize_decoder: bool = True,
        auxk: int | None = None,
        auxk_coef: float = 1.0 / 32.0,
        dead_after: int | None = None,
        init_decoder_bias: bool = True,
        init_from_data: bool = False,
        batch_topk: bool = False,
        seed: int = 0,
        progress: bool = True,
        backend: str = "sparse",
        threads: int | None = None,
        callback: Callable[[int, dict[str, float]], None] | None = None,
    ) -> TopKSAE:
        """Train in place: plain reconstruction (MSE) by default, the retrieval-oriented KL term
        with ``kl_weight > 0``; the parameters are those of :func:`latentatlas.sae.train.fit`
        (same names and defaults), which documents them. Returns ``self``."""
        return _train.fit(
            self, docs, queries, epochs=epochs, batch_size=batch_size, lr=lr, schedule=schedule,
            neighbors=neighbors, kl_weight=kl_weight, kl=kl, temperature=temperature,
            normalize_decoder=normalize_decoder, auxk=auxk, auxk_coef=auxk_coef, dead_after=dead_after,
            init_decoder_bias=init_decoder_bias, init_from_data=init_from_data, batch_topk=batch_topk, seed=seed,
            progress=progress, backend=backend, threads=threads, callback=callback,
        )  # fmt: skip

    def partial_fit(self, batch: Any, **options: Any) -> dict[str, Any]:
        """One training step on one batch ``(B, d_in)``; see :func:`latentatlas.sae.train.partial_fit`."""
        return _train.partial_fit(self, batch, **options)

    def encode_to(
        self,
        X: Any,
        directory: str | os.PathLike[str],
        *,
        block_rows: int = 65536,
        threads: int | None = None,
        progress: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode a large X (array, memmap or Dask array) into ``directory/values.npy`` and ``indices.npy``.

        Blocks of ``block_rows`` rows go into ``*.npy.partial`` memmaps; after each block the files are
        flushed and ``encode.progress.json`` records the rows done (atomically). A rerun after a crash
        resumes from the last finished block (when the model, X's shape and k are the same); the two
        ``.npy`` files appear (renamed into place) only once complete. Returns them memory-mapped,
        read-only: values ``(N, k)`` in the model's dtype, indices ``(N, k)`` int64.
        """
        from .._io import atomic_write_text

        R = self._rows(X)
        if not R.rows_known:
            raise TypeError("encode_to needs X's row count up front: pass an array, a memmap or a Dask array")
        X = R.data
        block_rows = check_int(block_rows, "block_rows")
        out = os.fspath(directory)
        os.makedirs(out, exist_ok=True)
        n, k = int(X.shape[0]), self.k
        names = {"values": os.path.join(out, "values.npy"), "indices": os.path.join(out, "indices.npy")}
        dtypes = {"values": self.dtype, "indices": np.dtype(np.int64)}
        prog = os.path.join(out, "encode.progress.json")
        h = hashlib.sha256()
        for w in (self.W_enc, self.b_enc, self.b_dec):
            h.update(np.ascontiguousarray(w).tobytes())
        job = {"n": n, "k": k, "dtype": self.dtype.name, "model": h.hexdigest(), "sub": self.subtract_decoder_bias}
        done = 0
        try:
            with open(prog) as fh:
                state = json.load(fh)
            if {key: state.get(key) for key in job} == job and all(
                os.path.exists(p + ".partial") for p in names.values()
            ):
                done = int(state["rows_done"])
        except (OSError, ValueError, KeyError, TypeError):
            done = 0
        mode = "r+" if done else "w+"
        mm = {
            key: np.lib.format.open_memmap(p + ".partial", mode=mode, dtype=dtypes[key], shape=(n, k))
            for key, p in names.items()
        }
        fn = functools.partial(_encode_rows, self._weights(self.subtract_decoder_bias)[:3], k, check_threads(threads))
        bar = progress_bar(n, "sae encode", progress, initial=done, unit="rows", unit_scale=True, leave=True)
        try:
            for a in range(done, n, block_rows):
                b = min(a + block_rows, n)
                block = X[a:b]
                block = chunked.compute(block)[0] if R.lazy else block
                try:
                    mm["values"][a:b], mm["indices"][a:b] = fn(block, a)
                except ValueError as exc:
                    raise chunked.row_error(exc, a) from None
                for m in mm.values():
                    m.flush()
                atomic_write_text(prog, json.dumps({**job, "rows_done": b}))
                bar.update(b - a)
        finally:
            bar.close()
        del mm  # closes the maps before the rename
        for p in names.values():
            os.replace(p + ".partial", p)
        os.remove(prog)
        return tuple(np.load(names[key], mmap_mode="r") for key in ("values", "indices"))

    # io imports this module to build models, so the file methods import it when called
    def save(
        self,
        path: str | os.PathLike[str],
        *,
        format: str = "latentatlas",  # noqa: A002
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Write directory ``path``: ``format="latentatlas"`` (cfg.json + the weights file it names;
        crash-consistent as a whole, see :func:`latentatlas.sae.formats.write`) or ``"saelens"`` (SAELens v6
        layout; ``metadata`` such as model_name, hook_name)."""
        return str(formats.write(self, path, format=format, metadata=metadata))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TopKSAE:
        """Load a TopK SAE in any format :func:`latentatlas.sae.load` reads (ValueError for other architectures)."""
        f = formats.read(path)
        if f.architecture != "topk":
            raise ValueError(f"{path}: holds a {f.architecture} SAE, not TopK; use latentatlas.sae.load")
        return cls.from_file(f)

    @classmethod
    def from_file(cls, f: formats.SAEFile) -> TopKSAE:
        """The TopK model a file holds (:func:`latentatlas.sae.formats.read`)."""
        if f.k is None:
            raise ValueError(f"a {f.architecture} SAE file has no k: not a TopK SAE")
        sae = cls.from_arrays(f.W_enc, f.b_enc, f.W_dec, f.b_dec, f.k, subtract_decoder_bias=f.subtract_decoder_bias)
        if f.metadata is not None:
            sae.metadata = f.metadata
        if f.history is not None:
            sae.history_ = f.history
        sae.log_sparsity = f.log_sparsity
        return sae


# -- row-block functions of the chunked paths (module level: Dask ships them to workers) -------------
def _encode_rows(w: tuple[Any, ...], k: int, threads: int | None, X: np.ndarray, start: int) -> Any:
    W_enc, b_enc, b_dec_in = w[:3]
    X = X.astype(W_enc.dtype, copy=False)
    if X.shape[0] == 0:
        return np.zeros((0, k), W_enc.dtype), np.zeros((0, k), np.int64)
    return kernels.sae_encode(X, W_enc, b_enc, k, b_dec=b_dec_in, threads=threads)


def _decode_rows(w: tuple[Any, ...], n_latents: int, threads: int | None, v: Any, i: Any) -> np.ndarray:
    W_dec, b_dec = chunked.aligned((w[3], w[4]))  # as a Dask worker may unpickle them
    v, i = chunked.aligned((v, i))
    v, i = check_codes(v, i, n_latents, W_dec.dtype)
    if not np.isfinite(v).all():
        raise ValueError("values contains NaN or infinity")
    if v.shape[0] == 0:
        return np.zeros((0, W_dec.shape[1]), W_dec.dtype)
    return kernels.sparse_decode(v, i, W_dec, bias=b_dec, threads=threads)


def _reconstruct_rows(w: tuple[Any, ...], k: int, threads: int | None, X: np.ndarray, start: int) -> np.ndarray:
    v, i = _encode_rows(w, k, threads, X, start)
    return _decode_rows(w, w[3].shape[0], threads, v, i)


def _health_mean_rows(X: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    return X.sum(axis=0, dtype=np.float64), np.array([float(X.shape[0])])


def _health_rows(
    w: tuple[Any, ...], k: int, threads: int | None, mean: np.ndarray, X: np.ndarray, start: int
) -> tuple[np.ndarray, ...]:
    X = X.astype(w[0].dtype, copy=False)
    v, i = _encode_rows(w, k, threads, X, start)
    err = _decode_rows(w, w[3].shape[0], threads, v, i).astype(np.float64) - X
    Xc = X.astype(np.float64) - mean
    counts = np.bincount(i[v > 0], minlength=w[0].shape[0]).astype(np.float64)
    # column sums over rows add row after row: unlike BLAS dot/einsum, their order never depends on
    # the block's memory alignment, so every chunking gives the same bits
    return (np.square(err).sum(axis=0), np.square(Xc).sum(axis=0), np.array([float((v > 0).sum())]), counts)
