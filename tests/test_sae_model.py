"""TopKSAE encode/decode against plain NumPy, health metrics, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas.sae import TopKSAE


def _model(d=24, n=300, k=7, dtype=np.float64, seed=0, sub=True):
    rng = np.random.default_rng(seed)
    sae = TopKSAE.from_arrays(
        rng.standard_normal((n, d)),
        0.1 * rng.standard_normal(n),
        rng.standard_normal((n, d)),
        0.1 * rng.standard_normal(d),
        k,
        subtract_decoder_bias=sub,
    )
    if dtype == np.float32:
        sae = TopKSAE.from_arrays(
            *(getattr(sae, p).astype(np.float32) for p in ("W_enc", "b_enc", "W_dec", "b_dec")),
            k,
            subtract_decoder_bias=sub,
        )
    return sae


def _ref_encode(sae, X, sub=True):
    Xc = X.astype(np.float64) - (sae.b_dec if sub else 0)
    pre = Xc @ sae.W_enc.T.astype(np.float64) + sae.b_enc
    order = np.lexsort((np.broadcast_to(np.arange(pre.shape[1]), pre.shape), -pre), axis=1)[:, : sae.k]
    return np.maximum(np.take_along_axis(pre, order, 1), 0), order


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sub", [True, False])
def test_encode_matches_numpy(dtype, sub):
    sae = _model(dtype=dtype, sub=sub)
    X = np.random.default_rng(1).standard_normal((130, 24)).astype(dtype)
    v, i = sae.encode(X)
    rv, ri = _ref_encode(sae, X, sub)
    assert v.dtype == dtype and i.dtype == np.int64 and v.shape == (130, 7)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(v, rv, atol=tol)
    # indices agree wherever the value is not a near-tie
    assert (i == ri).mean() > 0.99
    assert np.all(np.diff(v, axis=1) <= 0)
    # override of the flag
    v2, _ = sae.encode(X, subtract_decoder_bias=not sub)
    np.testing.assert_allclose(v2, _ref_encode(sae, X, not sub)[0], atol=tol)


def test_decode_reconstruct_dense():
    sae = _model()
    X = np.random.default_rng(2).standard_normal((50, 24))
    v, i = sae.encode(X)
    H = np.zeros((50, sae.n_latents))
    np.put_along_axis(H, i, v, 1)
    np.testing.assert_allclose(sae.encode_dense(X), H)
    ref = H @ sae.W_dec + sae.b_dec
    np.testing.assert_allclose(sae.decode(v, i), ref, atol=1e-10)
    np.testing.assert_allclose(sae.reconstruct(X), ref, atol=1e-10)
    # non-contiguous and integer-valued inputs are accepted
    np.testing.assert_allclose(sae.reconstruct(np.asfortranarray(X)), ref, atol=1e-10)
    np.testing.assert_allclose(sae.decode(v[:, ::1], i.astype(np.int32)), ref, atol=1e-10)


def test_threads_do_not_change_bits():
    sae = _model(dtype=np.float32, n=3000, k=16)
    X = np.random.default_rng(3).standard_normal((700, 24)).astype(np.float32)
    a = sae.encode(X, threads=1)
    b = sae.encode(X, threads=2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(sae.decode(*a, threads=1), sae.decode(*a, threads=2))


def test_health_metrics():
    sae = _model(n=400, k=5)
    X = np.random.default_rng(4).standard_normal((80, 24))
    h = sae.health(X)
    Xh = sae.reconstruct(X)
    mse = ((Xh - X) ** 2).mean()
    fve = 1 - ((Xh - X) ** 2).sum() / ((X - X.mean(0)) ** 2).sum()
    H = sae.encode_dense(X)
    freq = (H > 0).mean(0)
    assert h["mse"] == pytest.approx(mse) and h["fve"] == pytest.approx(fve)
    assert h["l0"] == pytest.approx((H > 0).sum(1).mean())
    np.testing.assert_allclose(h["frequencies"], freq)
    assert h["dead_fraction"] == pytest.approx((freq == 0).mean())
    np.testing.assert_allclose(sae.latent_frequencies(X), freq)


def test_init_and_repr():
    sae = TopKSAE(16, 64, 4, seed=3)
    assert sae.W_enc.shape == sae.W_dec.shape == (64, 16) and sae.W_enc.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(sae.W_dec, axis=1), 1, rtol=1e-6)
    assert np.array_equal(TopKSAE(16, 64, 4, seed=3).W_dec, sae.W_dec)
    assert not np.array_equal(TopKSAE(16, 64, 4, seed=4).W_dec, sae.W_dec)
    assert "n_latents=64" in repr(sae)


def test_bad_input():
    sae = _model()
    with pytest.raises(ValueError, match="k must be <= n_latents"):
        TopKSAE(8, 10, 11)
    with pytest.raises(TypeError, match="k must be an integer"):
        TopKSAE(8, 10, 2.5)
    with pytest.raises(ValueError, match="d_in = 24"):
        sae.encode(np.zeros((3, 5)))
    X = np.ones((4, 24))
    X[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sae.encode(X)
    with pytest.raises(ValueError, match="k must be <= n_latents"):
        sae.encode(np.ones((2, 24)), k=301)
    v, i = sae.encode(np.ones((2, 24)))
    with pytest.raises(ValueError, match="indices must lie"):
        sae.decode(v, i + 1000)
    with pytest.raises(ValueError, match="same shape|one shape"):
        sae.decode(v[:, :3], i)
    with pytest.raises(ValueError, match="NaN"):
        sae.decode(np.full_like(v, np.inf), i)
    with pytest.raises(ValueError, match="W_dec must have the shape"):
        TopKSAE.from_arrays(np.zeros((5, 3)), np.zeros(5), np.zeros((3, 5)), np.zeros(3), 2)
    with pytest.raises(ValueError, match="b_dec"):
        TopKSAE.from_arrays(np.zeros((5, 3)), np.zeros(5), np.zeros((5, 3)), np.zeros(4), 2)
    with pytest.raises(ValueError, match="W_enc contains NaN"):
        TopKSAE.from_arrays(np.full((5, 3), np.nan), np.zeros(5), np.zeros((5, 3)), np.zeros(3), 2)
    with pytest.raises(TypeError, match="dense array"):
        import scipy.sparse as sp

        sae.encode(sp.csr_matrix(np.ones((2, 24))))
    assert sae.encode(np.zeros((0, 24)))[0].shape == (0, 7)


def test_params_property_and_check_input():
    sae = _model(dtype=np.float32)
    P = sae.params
    assert list(P) == ["W_enc", "b_enc", "W_dec", "b_dec"] and P["W_enc"] is sae.W_enc
    new = {p: np.zeros_like(a, dtype=np.float64) for p, a in P.items()}
    sae.params = new
    assert sae.W_dec.dtype == np.float32 and not sae.W_dec.any() and sae.W_dec.flags.c_contiguous
    with pytest.raises(ValueError, match=r"params\['b_dec'\] must have shape \(24,\)"):
        sae.params = {**new, "b_dec": np.zeros(3)}
    with pytest.raises(ValueError, match="keys"):
        sae.params = {"W_enc": new["W_enc"]}
    X = sae.check_input(np.ones((3, 24)), "docs")
    assert X.dtype == np.float32 and X.shape == (3, 24)
    with pytest.raises(ValueError, match="docs must have d_in = 24"):
        sae.check_input(np.ones((3, 5)), "docs")


def test_fit_facade_keeps_the_signature_of_train_fit():
    import inspect

    from latentatlas.sae import train

    facade = list(inspect.signature(TopKSAE.fit).parameters.values())[1:]
    func = list(inspect.signature(train.fit).parameters.values())[1:]
    assert [(p.name, p.kind, p.default, p.annotation) for p in facade] == [
        (p.name, p.kind, p.default, p.annotation) for p in func
    ]
    assert not hasattr(TopKSAE, "explain")  # LatentExplainer explains (one tf-idf fit for many latents)


def test_latent_frequencies_one_implementation():
    from latentatlas.sae.model import latent_frequencies

    v = np.array([[2.0, 0.0], [1.0, 0.5]])
    i = np.array([[3, 1], [3, 0]])
    np.testing.assert_array_equal(latent_frequencies((v, i), 5), [0.5, 0, 0, 1.0, 0])
    assert latent_frequencies((v[:0], i[:0]), 2).tolist() == [0, 0]
