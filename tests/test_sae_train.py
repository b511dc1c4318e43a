"""Training: analytic gradients vs finite differences and vs a dense NumPy backward; Adam loop."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas import _core
from latentatlas.sae import TopKSAE, loss_and_grads
from latentatlas.sae.model import PARAMS
from latentatlas.sae.train import Batch, nearest_documents


def _setup(seed=0, d=6, n=40, k=5):
    rng = np.random.default_rng(seed)
    sae = TopKSAE(d, n, k, seed=seed, dtype=np.float64)
    P = {p: getattr(sae, p).copy() for p in PARAMS}
    P["W_enc"] += 0.3 * rng.standard_normal((n, d))
    P["b_enc"] += 0.1 * rng.standard_normal(n)
    P["b_dec"] += 0.1 * rng.standard_normal(d)
    A = rng.standard_normal((7, d))
    D = rng.standard_normal((9, d))
    nbr = np.stack([rng.choice(9, 4, replace=False) for _ in range(7)]).astype(np.int64)
    return P, Batch(A, D, nbr), k, rng


def _fd_check(P, batch, k, kw, rng, n_checks=12, eps=1e-6):
    losses, G = loss_and_grads(P, batch, k, **kw)
    worst = 0.0
    for p in PARAMS:
        for _ in range(n_checks):
            ix = tuple(int(rng.integers(0, s)) for s in P[p].shape)
            up = {q: P[q].copy() for q in PARAMS}
            dn = {q: P[q].copy() for q in PARAMS}
            up[p][ix] += eps
            dn[p][ix] -= eps
            fd = (loss_and_grads(up, batch, k, **kw)[0]["loss"] - loss_and_grads(dn, batch, k, **kw)[0]["loss"]) / (
                2 * eps
            )
            worst = max(worst, abs(fd - G[p][ix]) / max(abs(fd), 1e-4))
    return worst


@pytest.mark.parametrize("kl", ["softmax", "embedding-scope"])
@pytest.mark.parametrize("sub", [True, False])
def test_gradients_finite_differences(kl, sub):
    P, batch, k, rng = _setup()
    kw = dict(kl=kl, kl_weight=2.0, temperature=0.7, subtract_decoder_bias=sub)
    assert _fd_check(P, batch, k, kw, rng) < 1e-4


def test_auxk_gradient_with_frozen_residual():
    P, batch, k, rng = _setup(seed=1)
    dead = np.zeros(40, bool)
    dead[::3] = True
    R = np.concatenate([batch.anchors, batch.docs])
    v, i = _core.sae_encode(R, P["W_enc"], P["b_enc"], k, b_dec=P["b_dec"])
    res = R - _core.sparse_decode(v, i, P["W_dec"], bias=P["b_dec"])
    kw = dict(dead=dead, auxk=3, auxk_coef=0.5, residual=res)
    assert loss_and_grads(P, batch, k, **kw)[0]["auxk"] > 0
    assert _fd_check(P, batch, k, kw, rng) < 1e-4


@pytest.mark.parametrize("kl", ["softmax", "embedding-scope"])
def test_sparse_backward_equals_dense_numpy(kl):
    P, batch, k, _ = _setup(seed=2, d=10, n=80, k=6)
    dead = np.zeros(80, bool)
    dead[5:30] = True
    kw = dict(kl=kl, dead=dead, auxk=4)
    ls, gs = loss_and_grads(P, batch, k, **kw)
    ld, gd = loss_and_grads(P, batch, k, backend="dense", **kw)
    assert ls["loss"] == pytest.approx(ld["loss"], rel=1e-12)
    for p in PARAMS:
        np.testing.assert_allclose(gs[p], gd[p], atol=1e-12)


def test_kl_matches_formulas():
    """KL terms recomputed from REFERENCE §3 in plain NumPy."""
    P, batch, k, _ = _setup(seed=3)
    tau = 0.9
    R = np.concatenate([batch.anchors, batch.docs])
    v, i = _core.sae_encode(R, P["W_enc"], P["b_enc"], k, b_dec=P["b_dec"])
    Rh = _core.sparse_decode(v, i, P["W_dec"], bias=P["b_dec"])
    A, D, Ah, Dh = batch.anchors, batch.docs, Rh[:7], Rh[7:]
    s = np.array([[A[b] @ D[j] for j in batch.nbr[b]] for b in range(7)]) / tau
    sh = np.array([[Ah[b] @ Dh[j] for j in batch.nbr[b]] for b in range(7)]) / tau
    P1 = np.exp(s) / np.exp(s).sum(1, keepdims=True)
    P2 = np.exp(sh) / np.exp(sh).sum(1, keepdims=True)
    soft = (P1 * np.log(P1 / P2)).sum() / 7
    tar = np.exp(s) / (np.exp(s) + np.exp(s).sum(1, keepdims=True))
    ins = np.log(np.exp(sh) / (np.exp(sh) + np.exp(sh).sum(1, keepdims=True)))
    es = (tar * (np.log(tar) - ins)).sum() / 7
    assert loss_and_grads(P, batch, k, temperature=tau)[0]["kl"] == pytest.approx(soft, rel=1e-10)
    assert loss_and_grads(P, batch, k, temperature=tau, kl="embedding-scope")[0]["kl"] == pytest.approx(es, rel=1e-10)
    mse = ((Ah - A) ** 2).mean() + ((Dh - D) ** 2).mean()
    assert loss_and_grads(P, batch, k, temperature=tau)[0]["mse"] == pytest.approx(mse, rel=1e-10)


def _data(n=600, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((12, d))
    X = centers[rng.integers(0, 12, n)] + 0.3 * rng.standard_normal((n, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_fit_learns_deterministic_and_normalised():
    X = _data()
    a = TopKSAE(16, 64, 4, seed=1).fit(X, epochs=4, batch_size=64, lr=3e-3, progress=False, seed=5)
    b = TopKSAE(16, 64, 4, seed=1).fit(X, epochs=4, batch_size=64, lr=3e-3, progress=False, seed=5)
    for p in PARAMS:
        assert np.array_equal(getattr(a, p), getattr(b, p))
    hist = [h["loss"] for h in a.history_]
    assert hist[-1] < hist[0]
    assert a.history_[-1]["lr"] < a.history_[0]["lr"]  # cosine annealing
    np.testing.assert_allclose(np.linalg.norm(a.W_dec, axis=1), 1, rtol=1e-5)
    assert a.health(X)["fve"] > 0.5
    c = TopKSAE(16, 64, 4, seed=1).fit(X, epochs=1, batch_size=64, progress=False, seed=6)
    assert not np.array_equal(
        c.W_enc, TopKSAE(16, 64, 4, seed=1).fit(X, epochs=1, batch_size=64, progress=False, seed=5).W_enc
    )


def test_fit_dense_backend_agrees():
    X = _data(n=200).astype(np.float64)
    kw = dict(epochs=2, batch_size=50, progress=False, auxk=8, dead_after=50, kl_weight=1.0)
    a = TopKSAE(16, 48, 4, seed=0, dtype=np.float64).fit(X, **kw)
    b = TopKSAE(16, 48, 4, seed=0, dtype=np.float64).fit(X, backend="dense", **kw)
    for p in PARAMS:
        np.testing.assert_allclose(getattr(a, p), getattr(b, p), atol=1e-8)


def test_fit_with_queries_and_neighbours():
    X = _data(n=300)
    Q = _data(n=40, seed=9)
    nb = nearest_documents(Q, X, 5)
    ref = np.argsort(-(Q @ X.T), axis=1, kind="stable")[:, :5]
    assert (nb == ref).mean() > 0.99
    sae = TopKSAE(16, 64, 4).fit(
        X, Q, epochs=2, batch_size=16, neighbors=5, kl="embedding-scope", kl_weight=1.0, progress=False
    )
    assert len(sae.history_) == 2 and sae.history_[0]["kl"] > 0
    mse_only = TopKSAE(16, 64, 4).fit(X, epochs=1, kl_weight=0.0, progress=False)
    assert mse_only.history_[0]["kl"] == 0.0


def test_fit_bad_input():
    X = _data(n=50)
    sae = TopKSAE(16, 32, 4)
    with pytest.raises(ValueError, match="neighbors must be <= 49"):
        sae.fit(X, neighbors=60, progress=False)
    with pytest.raises(ValueError, match="kl must be one of"):
        sae.fit(X, kl="cosine", progress=False)
    with pytest.raises(ValueError, match="schedule"):
        sae.fit(X, schedule="step", progress=False)
    with pytest.raises(ValueError, match="epochs"):
        sae.fit(X, epochs=0, progress=False)
    with pytest.raises(ValueError, match="d_in = 16"):
        sae.fit(np.zeros((10, 5)), progress=False)
    bad = X.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="docs contains NaN"):
        sae.fit(bad, progress=False)
    with pytest.raises(ValueError, match="lr"):
        sae.fit(X, lr=-1.0, progress=False)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        sae.fit(X, batch_size=2.5, progress=False)
    with pytest.raises(ValueError, match="auxk must be"):
        sae.fit(X, auxk=0, progress=False)
    with pytest.raises(ValueError, match="kl_weight"):
        sae.fit(X, kl_weight=-1.0, progress=False)
    with pytest.raises(ValueError, match="backend"):
        sae.fit(X, backend="torch", progress=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_path_is_one_body_over_the_kernels(dtype, monkeypatch):
    """backend="dense" runs the same body on reference.core: every kernel call goes to the twins."""
    from latentatlas import reference

    P, batch, k, _ = _setup(seed=4, d=10, n=80, k=6)
    P = {p: a.astype(dtype) for p, a in P.items()}
    batch = Batch(batch.anchors.astype(dtype), batch.docs.astype(dtype), batch.nbr)
    dead = np.zeros(80, bool)
    dead[::4] = True
    calls = []
    for name in ("sae_encode", "sparse_decode", "sparse_gather_dot", "sparse_scatter_rows"):
        fn = getattr(reference.core, name)
        monkeypatch.setattr(
            reference.core, name, staticmethod(lambda *a, _f=fn, _n=name, **kw: calls.append(_n) or _f(*a, **kw))
        )
    ls, gs = loss_and_grads(P, batch, k, dead=dead, auxk=4)
    assert not calls
    ld, gd = loss_and_grads(P, batch, k, dead=dead, auxk=4, backend="dense")
    assert sorted(set(calls)) == ["sae_encode", "sparse_decode", "sparse_gather_dot", "sparse_scatter_rows"]
    tol = 2e-4 if dtype == np.float32 else 1e-10
    assert ls["loss"] == pytest.approx(ld["loss"], rel=tol)
    for p in PARAMS:
        assert gs[p].dtype == gd[p].dtype == dtype
        np.testing.assert_allclose(gs[p], gd[p], atol=tol * max(1.0, float(np.abs(gd[p]).max())))
