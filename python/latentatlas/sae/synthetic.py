"""Ground truth for SAEs on CPU: planted sparse dictionaries (SynthSAEBench-style) and their metrics.

A :class:`SyntheticModel` holds ``n_features`` unit-norm feature directions in ``d`` dimensions
(superposition when ``n_features > d``). A sample is ``x = Σ_i a_i f_i + bias + noise`` where
feature i fires with a Zipfian probability (optionally correlated through a low-rank Gaussian
copula, optionally gated by a parent in a hierarchy of trees whose siblings may be mutually
exclusive) and fires with a magnitude drawn around a per-feature mean. This follows the generator of
SynthSAEBench (Chanin & Garriga-Alonso 2026, in SAELens ``sae_lens.synthetic``) in its ingredients;
what differs is listed in :func:`synthsaebench_16k`.

The metrics compare a trained SAE (its decoder rows and its codes) with the planted truth:

* ``mcc`` — mean |cosine| of the one-to-one (Hungarian) matching of latents to features;
* ``recovered`` — fraction of features whose best decoder row has cosine > 0.9;
* ``uniqueness`` — distinct features among the latents' best matches / live latents;
* ``f1`` — mean F1 of "latent fires" vs "its matched feature fires" over matched latents;
* ``fve``, ``l0``, ``dead_fraction``, ``shrinkage`` (‖x̂ - b‖ / ‖x - b‖ on the samples, < 1 shrinks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validate import as_rng, check_float, check_int

__all__ = ["SyntheticModel", "evaluate_synthetic", "synthsaebench_16k"]

#: Rows generated at a time: bounds the dense (rows × n_features) temporaries.
_CHUNK = 1024


@dataclass
class _Tree:
    parent: np.ndarray  # (n_features,) int64, -1 for roots and free features
    exclusive: np.ndarray  # (n_features,) bool: at most one child of this feature fires


def _zipf_probabilities(n: int, max_prob: float, min_prob: float, exponent: float) -> np.ndarray:
    """p_i ∝ (i+1)^-exponent, mapped linearly onto [min_prob, max_prob] (feature 0 most frequent)."""
    r = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    if n == 1 or r[0] == r[-1]:
        return np.full(n, max_prob)
    return min_prob + (max_prob - min_prob) * (r - r[-1]) / (r[0] - r[-1])


def _hierarchy(n: int, roots: int, branching: int, depth: int, exclusive: float, rng: Any) -> _Tree:
    """Trees of ``depth`` levels below ``roots`` root features, laid out breadth-first from feature 0."""
    parent = np.full(n, -1, np.int64)
    excl = np.zeros(n, bool)
    level = list(range(min(roots, n)))
    nxt = len(level)
    for _ in range(depth):
        children = []
        for p in level:
            if nxt + branching > n:
                break
            kids = list(range(nxt, nxt + branching))
            parent[kids] = p
            excl[p] = rng.random() < exclusive
            children += kids
            nxt += branching
        level = children
    return _Tree(parent, excl)


class SyntheticModel:
    """A planted sparse dictionary that samples activations with known features.

    Parameters
    ----------
    n_features, d : number of features and the ambient dimension
    max_prob, min_prob, exponent : Zipfian firing probabilities (see :func:`_zipf_probabilities`)
    roots, branching, depth, exclusive : hierarchy — ``roots`` trees, ``branching`` children per
        node, ``depth`` levels; a child fires only where its parent fires (its probability is
        divided by the parent's so its marginal stays near the Zipf value), and a parent's
        children are mutually exclusive with probability ``exclusive``. ``depth=0``: no hierarchy.
    correlation_rank, correlation_scale : low-rank Gaussian copula over the firing events
    mean_magnitude : (start, end) — feature i's mean magnitude, linear in i
    std_magnitude : standard deviation of each firing's magnitude (folded at 0)
    bias, noise : a constant offset of every sample (a random direction of norm ``bias``) and
        isotropic Gaussian noise of this standard deviation per coordinate
    seed : seeds the dictionary and the structure; :meth:`sample` takes its own seed
    """

    def __init__(
        self,
        n_features: int,
        d: int,
        *,
        max_prob: float = 0.4,
        min_prob: float = 5e-4,
        exponent: float = 0.5,
        roots: int = 0,
        branching: int = 4,
        depth: int = 0,
        exclusive: float = 1.0,
        correlation_rank: int = 0,
        correlation_scale: float = 0.0,
        mean_magnitude: tuple[float, float] = (1.0, 1.0),
        std_magnitude: float = 0.0,
        bias: float = 0.0,
        noise: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.n_features = check_int(n_features, "n_features")
        self.d = check_int(d, "d")
        max_prob = check_float(max_prob, "max_prob", low=0.0, high=1.0, low_open=True)
        min_prob = check_float(min_prob, "min_prob", low=0.0, high=max_prob)
        check_float(exponent, "exponent", low=0.0)
        for name, val in (("roots", roots), ("depth", depth), ("correlation_rank", correlation_rank)):
            check_int(val, name, low=0)
        check_int(branching, "branching")
        check_float(exclusive, "exclusive", low=0.0, high=1.0)
        check_float(correlation_scale, "correlation_scale", low=0.0, high=1.0)
        self.std_magnitude = check_float(std_magnitude, "std_magnitude", low=0.0)
        self.noise = check_float(noise, "noise", low=0.0)
        check_float(bias, "bias", low=0.0)
        if len(mean_magnitude) != 2:
            raise ValueError(f"mean_magnitude must be (start, end), got {mean_magnitude!r}")
        rng = np.random.default_rng(seed)
        n = self.n_features
        F = rng.standard_normal((n, self.d))
        #: (n_features, d) unit-norm feature directions
        self.features = F / np.linalg.norm(F, axis=1, keepdims=True)
        b = rng.standard_normal(self.d)
        self.bias = bias * b / np.linalg.norm(b)
        self.mean_magnitude = np.linspace(float(mean_magnitude[0]), float(mean_magnitude[1]), n)
        #: marginal firing probability of each feature (before hierarchy and correlation effects)
        self.probabilities = _zipf_probabilities(n, max_prob, min_prob, exponent)
        self.tree = _hierarchy(n, roots, branching, depth, exclusive, rng) if depth and roots else None
        self._p_fire = self.probabilities.copy()
        if self.tree is not None:
            has = self.tree.parent >= 0
            # a child fires given its parent: compensate so its marginal stays near its Zipf value
            self._p_fire[has] = np.minimum(1.0, self._p_fire[has] / self.probabilities[self.tree.parent[has]])
        self._loadings = None
        if correlation_rank and correlation_scale:
            L = rng.standard_normal((n, correlation_rank))
            L *= np.sqrt(correlation_scale) / np.linalg.norm(L, axis=1, keepdims=True)
            self._loadings = L  # each z_i = L_i·u + sqrt(1 - |L_i|²) ε_i has unit variance

    def _fires(self, rows: int, rng: np.random.Generator) -> np.ndarray:
        from scipy.special import ndtri

        n = self.n_features
        z = rng.standard_normal((rows, n))
        if self._loadings is not None:
            L = self._loadings
            z *= np.sqrt(1.0 - (L * L).sum(axis=1))
            z += rng.standard_normal((rows, L.shape[1])) @ L.T
        fire = z < ndtri(self._p_fire)
        if self.tree is not None:
            par = self.tree.parent
            # breadth-first layout: parents come before children, so one pass in order gates all levels
            for j in np.flatnonzero(par >= 0):
                fire[:, j] &= fire[:, par[j]]
            for p in np.flatnonzero(self.tree.exclusive):
                kids = np.flatnonzero(par == p)
                if kids.size < 2:
                    continue
                sub = fire[:, kids]
                many = sub.sum(axis=1) > 1
                if many.any():
                    # keep one firing child at random
                    pick = np.argmax(sub[many] * rng.random((int(many.sum()), kids.size)), axis=1)
                    keep = np.zeros((int(many.sum()), kids.size), bool)
                    keep[np.arange(keep.shape[0]), pick] = True
                    sub[many] = keep
                    fire[:, kids] = sub
            # a child whose parent was switched off by exclusivity switches off too
            for j in np.flatnonzero(par >= 0):
                fire[:, j] &= fire[:, par[j]]
        return fire

    def sample(self, n_samples: int, *, seed: Any = None, dtype: Any = np.float32) -> tuple[np.ndarray, sp.csr_matrix]:
        """Draw samples.

        Returns
        -------
        X : (n_samples, d) activations ``A @ features + bias + noise``
        A : scipy.sparse.csr_matrix (n_samples, n_features), the true feature magnitudes
        """
        n_samples = check_int(n_samples, "n_samples")
        rng = as_rng(seed, default=1)
        X = np.empty((n_samples, self.d), dtype=dtype)
        parts = []
        for r0 in range(0, n_samples, _CHUNK):
            rows = min(_CHUNK, n_samples - r0)
            fire = self._fires(rows, rng)
            r, c = np.nonzero(fire)
            mag = np.abs(self.mean_magnitude[c] + self.std_magnitude * rng.standard_normal(c.size))
            A = sp.csr_matrix((mag, (r, c)), shape=(rows, self.n_features))
            Xc = A @ self.features + self.bias
            if self.noise:
                Xc += self.noise * rng.standard_normal(Xc.shape)
            X[r0 : r0 + rows] = Xc
            parts.append(A)
        return X, sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, self.n_features))


def synthsaebench_16k(*, n_features: int = 16384, d: int = 768, seed: int = 42) -> SyntheticModel:
    """The published SynthSAEBench-16k configuration (SAELens's benchmark model), on our generator.

    16,384 features in 768 dimensions; Zipfian firing (max 0.4, min 5e-4, exponent 0.5); 128 trees,
    branching 4, depth 3, all siblings mutually exclusive, child probabilities compensated; low-rank
    correlation (rank 25, scale 0.1); mean magnitudes 5 → 4, per-firing std 0.5; bias of norm 0.5.
    Differences from SAELens: the feature directions are random, not orthogonalised by gradient
    steps; the per-feature magnitude std is one value instead of a folded-normal draw per feature;
    children are not rescaled by their parent's magnitude; our random streams differ, so it is the
    same *kind* of data, not the same samples.
    """
    return SyntheticModel(
        n_features,
        d,
        max_prob=0.4,
        min_prob=5e-4,
        exponent=0.5,
        roots=128,
        branching=4,
        depth=3,
        exclusive=1.0,
        correlation_rank=25,
        correlation_scale=0.1,
        mean_magnitude=(5.0, 4.0),
        std_magnitude=0.5,
        bias=0.5,
        seed=seed,
    )


def _unit_rows(W: np.ndarray) -> np.ndarray:
    W = np.asarray(W, dtype=np.float64)
    return W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)


def evaluate_synthetic(
    features: np.ndarray,
    decoder: np.ndarray,
    *,
    X: np.ndarray | None = None,
    A: sp.csr_matrix | None = None,
    codes: sp.csr_matrix | None = None,
    X_hat: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    threshold: float = 0.9,
) -> dict[str, float]:
    """Ground-truth metrics of an SAE against planted features.

    Parameters
    ----------
    features : (n_features, d) true directions
    decoder : (n_latents, d) the SAE's decoder rows
    X, A : the samples and their true magnitudes (from :meth:`SyntheticModel.sample`)
    codes : scipy.sparse (n_samples, n_latents) the SAE's codes of X (for F1, L0, dead)
    X_hat : (n_samples, d) reconstructions of X (for FVE and shrinkage)
    bias : (d,) the planted bias (for shrinkage; default: zero)

    Returns
    -------
    dict with ``mcc``, ``recovered``, ``uniqueness`` and, given the samples, ``f1``, ``l0``,
    ``dead_fraction``, ``fve``, ``shrinkage``.
    """
    from scipy.optimize import linear_sum_assignment

    Fn, Dn = _unit_rows(features), _unit_rows(decoder)
    if Fn.shape[1] != Dn.shape[1]:
        raise ValueError(f"decoder must have d = {Fn.shape[1]} columns, got shape {Dn.shape}")
    C = Dn @ Fn.T  # (n_latents, n_features)
    absC = np.abs(C)
    r, c = linear_sum_assignment(absC, maximize=True)
    out = {
        "mcc": float(absC[r, c].sum() / min(C.shape)),
        "recovered": float((C.max(axis=0) > threshold).mean()),
    }
    best = C.argmax(axis=1)
    live = np.ones(C.shape[0], bool)
    if codes is not None:
        codes = sp.csr_matrix(codes)
        fired = np.bincount(codes.indices[codes.data > 0], minlength=C.shape[0])
        live = fired > 0
        out["l0"] = float((codes.data > 0).sum() / max(codes.shape[0], 1))
        out["dead_fraction"] = float((~live).mean())
    out["uniqueness"] = float(np.unique(best[live]).size / max(int(live.sum()), 1))
    if codes is not None and A is not None:
        # F1 of latent j's firing against the firing of its Hungarian-matched feature
        Lb = (codes > 0).astype(np.float64).tocsc()[:, r]
        Ab = (sp.csr_matrix(A) > 0).astype(np.float64).tocsc()[:, c]
        tp = np.asarray(Lb.multiply(Ab).sum(axis=0)).ravel()
        denom = np.asarray(Lb.sum(axis=0)).ravel() + np.asarray(Ab.sum(axis=0)).ravel()
        f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
        out["f1"] = float(f1.mean()) if f1.size else 0.0
    if X is not None and X_hat is not None:
        X64, Xh = np.asarray(X, np.float64), np.asarray(X_hat, np.float64)
        sse = float(((Xh - X64) ** 2).sum())
        var = float(((X64 - X64.mean(axis=0)) ** 2).sum())
        out["fve"] = 1.0 - sse / var if var > 0 else float("nan")
        b = np.zeros(X64.shape[1]) if bias is None else np.asarray(bias, np.float64)
        out["shrinkage"] = float(np.linalg.norm(Xh - b) / max(np.linalg.norm(X64 - b), 1e-12))
    return out
