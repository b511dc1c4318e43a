"""Threshold SAEs and the formats SAE users hold (issue 15).

Fixtures are built by hand from the layouts in REFERENCE.md §3 (tensor names and shapes), and every
encode is compared with the architecture's formula written out in NumPy here, independently of the
package: JumpReLU ``h = pre · [pre > θ]`` (with the ReLU), standard ``h = ReLU(pre)``,
Sentence-Transformers ``TopK(ReLU)`` with the tied decoder.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file

from latentatlas.sae import ThresholdSAE, TopKSAE, load


def _w(n=40, d=8, seed=0, dt=np.float32):
    r = np.random.default_rng(seed)
    return (
        r.standard_normal((d, n)).astype(dt),  # W_enc in SAELens's [d_in, d_sae]
        (0.1 * r.standard_normal(n)).astype(dt),
        r.standard_normal((n, d)).astype(dt),
        (0.1 * r.standard_normal(d)).astype(dt),
        np.abs(r.standard_normal(n)).astype(dt),
    )


def _jumprelu(X, We_dn, be, Wd, bd, th, apply_b_dec=True):
    pre = (X.astype(np.float64) - (bd if apply_b_dec else 0)) @ We_dn.astype(np.float64) + be
    H = np.where(pre > np.maximum(th, 0), pre, 0.0)
    return H, H @ Wd.astype(np.float64) + bd


def _X(n=300, d=8, seed=5):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _saelens_dir(path, arch, tensors, **cfg):
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "sae_weights.safetensors"))
    d_in, d_sae = tensors["W_enc"].shape
    base = {"architecture": arch, "d_in": d_in, "d_sae": d_sae, "dtype": "float32", "apply_b_dec_to_input": True}
    base.update(
        {"normalize_activations": "none", "metadata": {"model_name": "m", "hook_name": "blocks.3.hook_resid_post"}}
    )
    (path / "cfg.json").write_text(json.dumps({**base, **cfg}))
    return path


@pytest.mark.parametrize("arch", ["jumprelu", "batchtopk", "standard"])
def test_saelens_threshold_architectures(tmp_path, arch):
    We, be, Wd, bd, th = _w()
    tensors = {"W_enc": We, "W_dec": Wd, "b_enc": be, "b_dec": bd}
    if arch != "standard":
        tensors["threshold"] = th
    d = _saelens_dir(tmp_path / arch, arch, tensors)
    save_file({"sparsity": np.log10(np.full(40, 0.01, np.float32))}, str(d / "sparsity.safetensors"))
    sae = load(d)
    assert isinstance(sae, ThresholdSAE) and sae.architecture == arch
    assert sae.metadata["hook_name"] == "blocks.3.hook_resid_post"
    np.testing.assert_allclose(sae.log_sparsity, -2.0, rtol=1e-6)
    X = _X()
    H = sae.encode(X)
    assert isinstance(H, sp.csr_matrix) and H.shape == (300, 40) and H.has_sorted_indices
    Hr, Xr = _jumprelu(X, We, be, Wd, bd, th if arch != "standard" else np.zeros(40))
    assert H.nnz == np.count_nonzero(Hr)
    np.testing.assert_allclose(H.toarray(), Hr, atol=2e-5)
    np.testing.assert_allclose(sae.decode(H), Xr, atol=2e-4)
    h = sae.health(X)
    assert h["l0"] == pytest.approx(np.count_nonzero(Hr) / 300)
    # SAELens layout round trip: names, shapes and cfg keys as SAELens reads them
    out = sae.save(tmp_path / "back")
    t = load_file(f"{out}/sae_weights.safetensors")
    assert t["W_enc"].shape == (8, 40) and t["W_dec"].shape == (40, 8)
    assert ("threshold" in t) == (arch != "standard")
    cfg = json.loads((tmp_path / "back" / "cfg.json").read_text())
    assert cfg["architecture"] == ("standard" if arch == "standard" else "jumprelu")
    assert cfg["d_in"] == 8 and cfg["d_sae"] == 40 and cfg["apply_b_dec_to_input"] is True
    assert cfg["metadata"]["hook_name"] == "blocks.3.hook_resid_post"
    back = load(tmp_path / "back")
    np.testing.assert_array_equal(back.encode(X).toarray(), H.toarray())


def test_saelens_topk_round_trip_and_v5_kwargs(tmp_path):
    We, be, Wd, bd, _ = _w(seed=2)
    d = _saelens_dir(tmp_path / "topk", "topk", {"W_enc": We, "W_dec": Wd, "b_enc": be, "b_dec": bd}, k=5)
    sae = load(d)
    assert isinstance(sae, TopKSAE) and sae.k == 5
    X = _X(seed=1)
    pre = (X - bd) @ We + be
    top = np.sort(np.maximum(pre, 0), axis=1)[:, ::-1][:, :5]
    np.testing.assert_allclose(sae.encode(X)[0], top, atol=2e-5)
    sae.save(tmp_path / "out", format="saelens", metadata={"model_name": "SmolLM2-135M"})
    cfg = json.loads((tmp_path / "out" / "cfg.json").read_text())
    assert cfg["architecture"] == "topk" and cfg["k"] == 5 and cfg["metadata"]["model_name"] == "SmolLM2-135M"
    assert set(load_file(str(tmp_path / "out" / "sae_weights.safetensors"))) == {"W_enc", "W_dec", "b_enc", "b_dec"}
    np.testing.assert_array_equal(TopKSAE.load(tmp_path / "out").encode(X)[1], sae.encode(X)[1])


def test_gemma_scope_params_npz(tmp_path):
    We, be, Wd, bd, th = _w(seed=3)
    f = tmp_path / "layer_12" / "params.npz"
    f.parent.mkdir()
    np.savez(f, w_enc=We, w_dec=Wd, b_enc=be, b_dec=bd, threshold=th)
    for where in (f, f.parent):
        sae = load(where)
        assert isinstance(sae, ThresholdSAE) and sae.architecture == "jumprelu"
        X = _X(seed=4)
        np.testing.assert_allclose(sae.encode(X).toarray(), _jumprelu(X, We, be, Wd, bd, th)[0], atol=2e-5)
    f.write_bytes(f.read_bytes()[:200])  # truncated download
    with pytest.raises(ValueError, match="params.npz: not a readable .npz"):
        load(f)


def _st_module(path, W, latent_bias, pre_bias, k=4, **cfg):
    path.mkdir(parents=True)
    config = {"input_dim": W.shape[1], "hidden_dim": W.shape[0], "k": k, "k_aux": 8, "normalize": False}
    (path / "config.json").write_text(json.dumps({**config, "dead_threshold": 30, **cfg}))
    save_file(
        {
            "encoder.weight": W,
            "latent_bias": latent_bias,
            "pre_bias": pre_bias,
            "stats_last_nonzero": np.zeros(W.shape[0], np.int64),
        },
        str(path / "model.safetensors"),
    )


def test_sentence_transformers_sparse_autoencoder(tmp_path):
    r = np.random.default_rng(6)
    W = r.standard_normal((30, 8)).astype(np.float32)
    lb, pb = (0.1 * r.standard_normal(30)).astype(np.float32), (0.1 * r.standard_normal(8)).astype(np.float32)
    model = tmp_path / "csr-model"
    _st_module(model / "2_SparseAutoEncoder", W, lb, pb, k=4)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    modules.append({"idx": 2, "name": "2", "path": "2_SparseAutoEncoder", "type": "sentence_transformers.sparse_encoder.models.SparseAutoEncoder"})  # fmt: skip
    (model / "modules.json").write_text(json.dumps(modules))
    X = _X(seed=7)
    pre = (X - pb) @ W.T + lb
    H = np.zeros_like(pre)
    top = np.argsort(-pre, axis=1, kind="stable")[:, :4]
    np.put_along_axis(H, top, np.maximum(np.take_along_axis(pre, top, axis=1), 0), axis=1)
    for where in (model, model / "2_SparseAutoEncoder"):
        sae = load(where)
        assert isinstance(sae, TopKSAE) and sae.k == 4
        np.testing.assert_allclose(sae.encode_dense(X), H, atol=2e-5)
        np.testing.assert_allclose(sae.reconstruct(X), H @ W + pb, atol=2e-4)  # tied decoder
    _st_module(tmp_path / "norm", W, lb, pb, normalize=True)
    with pytest.raises(ValueError, match="normalize"):
        load(tmp_path / "norm")


def test_topk_codes_to_csr_and_csr_decode():
    We, be, Wd, bd, _ = _w(seed=8)
    sae = TopKSAE.from_arrays(We.T, be, Wd, bd, 6)
    X = _X(seed=9)
    codes = sae.encode(X)
    v, i = codes  # still unpacks as a pair
    C = codes.to_csr()
    assert isinstance(C, sp.csr_matrix) and C.shape == (300, 40) and C.has_sorted_indices
    np.testing.assert_array_equal(C.toarray(), sae.encode_dense(X))
    assert C.nnz == int((v > 0).sum())
    th = ThresholdSAE.from_arrays(We.T, be, Wd, bd, architecture="standard")
    np.testing.assert_allclose(th.decode(C), sae.decode(v, i), atol=1e-5)


def test_threshold_encode_is_the_same_for_any_threads_and_dtype():
    We, be, Wd, bd, th = _w(n=2500, d=16, seed=10, dt=np.float64)  # several column tiles
    sae = ThresholdSAE.from_arrays(We.T, be, Wd, bd, th)
    assert sae.dtype == np.float64
    X = np.random.default_rng(11).standard_normal((600, 16))
    a, b = sae.encode(X, threads=1), sae.encode(X, threads=2)
    assert (a != b).nnz == 0
    np.testing.assert_allclose(a.toarray(), _jumprelu(X, We, be, Wd, bd, th)[0], atol=1e-10)
    assert sae.encode(X[:0]).shape == (0, 2500)


def test_bad_input_names_the_file_key_or_argument(tmp_path):
    We, be, Wd, bd, th = _w(seed=12)
    with pytest.raises(ValueError, match="threshold must have shape"):
        ThresholdSAE.from_arrays(We.T, be, Wd, bd, th[:5])
    bad = Wd.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="W_dec contains NaN"):
        ThresholdSAE.from_arrays(We.T, be, bad, bd, th)
    with pytest.raises(ValueError, match="architecture must be one of"):
        ThresholdSAE.from_arrays(We.T, be, Wd, bd, th, architecture="gated")
    sae = ThresholdSAE.from_arrays(We.T, be, Wd, bd, th)
    with pytest.raises(ValueError, match="d_in = 8"):
        sae.encode(np.zeros((3, 7)))
    with pytest.raises(ValueError, match="n_latents = 40 columns"):
        sae.decode(sp.csr_matrix((3, 41)))
    with pytest.raises(TypeError, match="scipy.sparse"):
        sae.decode(np.zeros((3, 40)))
    with pytest.raises(ValueError, match="format='latentatlas' holds TopK"):
        sae.save(tmp_path / "x", format="latentatlas")
    with pytest.raises(ValueError, match="format must be one of"):
        sae.save(tmp_path / "x", format="torch")
    tensors = {"W_enc": We, "W_dec": Wd, "b_enc": be, "b_dec": bd}
    d = _saelens_dir(tmp_path / "noth", "jumprelu", tensors)
    with pytest.raises(KeyError, match="missing tensor 'threshold'"):
        load(d)
    d = _saelens_dir(tmp_path / "mistyped", "topk", tensors, k="5")
    with pytest.raises(ValueError, match="key 'k' must be an integer"):
        load(d)
    d = _saelens_dir(tmp_path / "nok", "topk", tensors)
    with pytest.raises(KeyError, match="missing key 'k'"):
        load(d)
    d = _saelens_dir(tmp_path / "dims", "standard", tensors, d_sae=41)
    with pytest.raises(ValueError, match="d_sae = 41 but the weights have 40"):
        load(d)
    d = _saelens_dir(tmp_path / "gated", "gated", tensors)
    with pytest.raises(ValueError, match="architecture 'gated' is not supported"):
        load(d)
    d = _saelens_dir(tmp_path / "ln", "standard", tensors, normalize_activations="layer_norm")
    with pytest.raises(ValueError, match="normalize_activations"):
        load(d)
    d = _saelens_dir(tmp_path / "trunc", "standard", tensors)
    raw = (d / "sae_weights.safetensors").read_bytes()
    (d / "sae_weights.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="sae_weights.safetensors: not a valid safetensors"):
        load(d)
    with pytest.raises(FileNotFoundError, match="nope"):
        load(tmp_path / "nope")
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(ValueError, match="not an SAE file"):
        load(other)
    z = tmp_path / "keys.npz"
    np.savez(z, w_enc=We)
    with pytest.raises(KeyError, match="missing tensor 'b_enc'"):
        load(z)
    assert zipfile.is_zipfile(z)
    with pytest.raises(ValueError, match="holds a jumprelu SAE, not TopK"):
        TopKSAE.load(_saelens_dir(tmp_path / "jr", "jumprelu", {**tensors, "threshold": th}))
