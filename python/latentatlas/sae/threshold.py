"""Threshold SAEs — standard ReLU, JumpReLU, and BatchTopK saved as JumpReLU — for encoding and
decoding SAEs trained elsewhere (SAELens, Gemma Scope, ...).

``pre = W_enc (x - b_dec·apply_b_dec_to_input) + b_enc``; latent j is active where
``pre_j > max(threshold_j, 0)`` and keeps ``pre_j`` (JumpReLU as Gemma Scope and SAELens compute it;
``threshold = 0`` is the standard ReLU SAE). ``x̂ = hᵀ W_dec + b_dec``. Both weight matrices are
stored ``(n_latents, d_in)`` as in :class:`~latentatlas.sae.model.TopKSAE`.

Encode runs the Rust kernel ``kernels.sae_encode_threshold`` (the GEMM + top-k primitive's blocking
with a threshold epilogue): it returns ``scipy.sparse.csr_matrix (N, n_latents)`` and never holds
the dense pre-activations. Decode works from CSR in O(nnz · d).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import kernels
from .._validate import as_matrix, check_choice, check_finite, check_threads
from . import formats
from .model import Health, TopKSAE, csr_decode

__all__ = ["ARCHITECTURES", "ThresholdSAE"]

#: Architectures this class holds; "batchtopk" is stored and run as JumpReLU (its threshold).
ARCHITECTURES = ("standard", "jumprelu", "batchtopk")


class ThresholdSAE:
    """A ReLU / JumpReLU sparse autoencoder (weights as NumPy arrays, encode/decode in Rust).

    Build one with :meth:`from_arrays` or :func:`latentatlas.sae.load`.

    Attributes
    ----------
    W_enc, W_dec : ndarray (n_latents, d_in)
    b_enc, threshold : ndarray (n_latents,)
    b_dec : ndarray (d_in,)
    architecture : "standard", "jumprelu" or "batchtopk"
    subtract_decoder_bias : bool (SAELens ``apply_b_dec_to_input``)
    metadata : dict (model/hook names and other keys read from the file, written back on save)
    """

    W_enc: np.ndarray
    b_enc: np.ndarray
    W_dec: np.ndarray
    b_dec: np.ndarray
    threshold: np.ndarray
    architecture: str
    subtract_decoder_bias: bool
    metadata: dict[str, Any]
    #: log10 latent density from a SAELens ``sparsity.safetensors``, when one was read
    log_sparsity: np.ndarray | None = None

    @classmethod
    def from_arrays(
        cls,
        W_enc: Any,
        b_enc: Any,
        W_dec: Any,
        b_dec: Any,
        threshold: Any = None,
        *,
        architecture: str = "jumprelu",
        subtract_decoder_bias: bool = True,
        metadata: dict[str, Any] | None = None,
        dtype: Any = None,
    ) -> ThresholdSAE:
        """W_enc and W_dec ``(n_latents, d_in)``, b_enc and threshold ``(n_latents,)`` (threshold
        None: zeros, the standard ReLU SAE), b_dec ``(d_in,)``; ``dtype`` float32/float64 (default:
        float32 unless all weights are float64)."""
        check_choice(architecture, "architecture", ARCHITECTURES)
        We, Wd = np.asarray(W_enc), np.asarray(W_dec)
        if We.ndim != 2:
            raise ValueError(f"W_enc must be 2-D (n_latents, d_in), got shape {We.shape}")
        n, d = We.shape
        th = np.zeros(n) if threshold is None else np.asarray(threshold)
        arrs = {"W_enc": We, "b_enc": np.asarray(b_enc), "W_dec": Wd, "b_dec": np.asarray(b_dec), "threshold": th}
        shapes = {"W_enc": (n, d), "b_enc": (n,), "W_dec": (n, d), "b_dec": (d,), "threshold": (n,)}
        for name, a in arrs.items():
            if a.dtype.kind not in "fiu":
                raise TypeError(f"{name} must be a real float array, got dtype {a.dtype}")
            if a.shape != shapes[name]:
                raise ValueError(f"{name} must have shape {shapes[name]}, got {a.shape}")
            check_finite(a, name)
        if dtype is None:
            dtype = np.float64 if all(a.dtype == np.float64 for a in arrs.values()) else np.float32
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        self = cls.__new__(cls)
        for name, a in arrs.items():
            setattr(self, name, np.array(a, dtype=dt, order="C", copy=True))
        self.architecture = architecture
        self.subtract_decoder_bias = bool(subtract_decoder_bias)
        self.metadata = dict(metadata or {})
        return self

    @classmethod
    def from_batch_topk(cls, sae: TopKSAE, threshold: float | None = None) -> ThresholdSAE:
        """The inference form of a BatchTopK SAE: JumpReLU with one threshold for every latent
        (default: ``sae.batch_topk_threshold_`` from ``fit(batch_topk=True)``), as SAELens saves it."""
        th = sae.batch_topk_threshold_ if threshold is None else threshold
        if th is None:
            raise ValueError("threshold: give one, or train the SAE with fit(batch_topk=True)")
        return cls.from_arrays(
            sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec, np.full(sae.n_latents, float(th)),
            architecture="batchtopk", subtract_decoder_bias=sae.subtract_decoder_bias,
            metadata=dict(sae.metadata), dtype=sae.dtype,
        )  # fmt: skip

    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[1])

    @property
    def n_latents(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def dtype(self) -> np.dtype:
        return self.W_enc.dtype

    def __repr__(self) -> str:
        return (
            f"ThresholdSAE(architecture={self.architecture!r}, d_in={self.d_in}, n_latents={self.n_latents}, "
            f"dtype={self.dtype.name})"
        )

    def check_input(self, X: Any, name: str = "X") -> np.ndarray:
        """``X`` as ``(N, d_in)`` of the model's dtype (ValueError/TypeError naming ``name``)."""
        X = as_matrix(X, name, min_rows=0)
        if X.shape[1] != self.d_in:
            raise ValueError(f"{name} must have d_in = {self.d_in} columns, got shape {X.shape}")
        return X.astype(self.dtype, copy=False)

    def encode(self, X: Any, *, threads: int | None = None) -> sp.csr_matrix:
        """Active latents of the rows of X: ``scipy.sparse.csr_matrix (N, n_latents)``, columns sorted."""
        X = self.check_input(X)
        indptr, indices, data = kernels.sae_encode_threshold(
            X,
            self.W_enc,
            self.b_enc,
            self.threshold,
            b_dec=self.b_dec if self.subtract_decoder_bias else None,
            threads=check_threads(threads),
        )
        return sp.csr_matrix((data, indices, indptr), shape=(X.shape[0], self.n_latents))

    def decode(self, codes: Any, *, threads: int | None = None) -> np.ndarray:
        """x̂ = codes · W_dec + b_dec for sparse codes ``(N, n_latents)``, ``(N, d_in)``; O(nnz · d)."""
        return csr_decode(codes, self.W_dec, self.b_dec, threads=threads)

    def reconstruct(self, X: Any, *, threads: int | None = None) -> np.ndarray:
        """decode(encode(X)), ``(N, d_in)``."""
        return self.decode(self.encode(X, threads=threads), threads=threads)

    def health(self, X: Any, *, threads: int | None = None) -> Health:
        """``mse``, ``fve``, ``l0``, ``dead_fraction``, ``frequencies`` on X (as :meth:`TopKSAE.health`)."""
        X = self.check_input(X)
        H = self.encode(X, threads=threads)
        Xh = self.decode(H, threads=threads)
        err = (Xh.astype(np.float64) - X).ravel()
        sse = float(err @ err)
        Xc = X.astype(np.float64) - X.mean(axis=0, dtype=np.float64)
        var = float(np.einsum("ij,ij->", Xc, Xc))
        freq = np.bincount(H.indices, minlength=self.n_latents) / max(X.shape[0], 1)
        return Health(
            mse=sse / max(X.size, 1),
            fve=1.0 - sse / var if var > 0 else float("nan"),
            l0=H.nnz / max(X.shape[0], 1),
            dead_fraction=float((freq == 0).mean()),
            frequencies=freq,
        )

    @classmethod
    def from_file(cls, f: formats.SAEFile) -> ThresholdSAE:
        """The threshold model a file holds (:func:`latentatlas.sae.formats.read`)."""
        sae = cls.from_arrays(
            f.W_enc, f.b_enc, f.W_dec, f.b_dec, f.threshold,
            architecture=f.architecture, subtract_decoder_bias=f.subtract_decoder_bias, metadata=f.metadata,
        )  # fmt: skip
        sae.log_sparsity = f.log_sparsity
        return sae

    def save(self, path: str | os.PathLike[str], *, format: str = "saelens") -> str:  # noqa: A002
        """Write the SAELens layout (cfg.json + sae_weights.safetensors) into directory ``path``."""
        return str(formats.write(self, path, format=format))
