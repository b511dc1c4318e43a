"""SAE files: round trip, SAELens / sparsify / embedding-scope directories written by hand, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from latentatlas.sae import TopKSAE, load
from latentatlas.sae import formats as sae_formats


def _weights(n=20, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, d)).astype(np.float32),
        rng.standard_normal(n).astype(np.float32),
        rng.standard_normal((n, d)).astype(np.float32),
        rng.standard_normal(d).astype(np.float32),
    )


def _same(a: TopKSAE, We, be, Wd, bd, k):
    np.testing.assert_array_equal(a.W_enc, We)
    np.testing.assert_array_equal(a.b_enc, be)
    np.testing.assert_array_equal(a.W_dec, Wd)
    np.testing.assert_array_equal(a.b_dec, bd)
    assert a.k == k


def test_round_trip(tmp_path):
    W = _weights()
    sae = TopKSAE.from_arrays(*W, 3, subtract_decoder_bias=False)
    sae.history_ = [{"epoch": 0, "loss": 1.5}]
    sae.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "cfg.json").read_text())
    assert cfg["weights"].startswith("sae-") and cfg["weights"].endswith(".safetensors")
    assert sorted(p.name for p in (tmp_path / "m").iterdir() if not p.name.startswith(".")) == [
        "cfg.json",
        cfg["weights"],
    ]
    back = TopKSAE.load(tmp_path / "m")
    _same(back, *W, 3)
    assert back.subtract_decoder_bias is False and back.history_ == sae.history_
    X = np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_array_equal(back.reconstruct(X), sae.reconstruct(X))


def test_saelens_directory(tmp_path):
    We, be, Wd, bd = _weights(seed=1)
    d = tmp_path / "saelens"
    d.mkdir()
    save_file(
        {"W_enc": np.ascontiguousarray(We.T), "b_enc": be, "W_dec": Wd, "b_dec": bd}, str(d / "sae_weights.safetensors")
    )
    (d / "cfg.json").write_text(
        json.dumps(
            {
                "architecture": "topk",
                "d_in": 6,
                "d_sae": 20,
                "activation_fn_kwargs": {"k": 4},
                "apply_b_dec_to_input": False,
            }
        )
    )
    sae = load(d)
    _same(sae, We, be, Wd, bd, 4)
    assert sae.subtract_decoder_bias is False
    (d / "cfg.json").write_text(json.dumps({"architecture": "gated", "d_in": 6, "d_sae": 20}))
    with pytest.raises(ValueError, match="architecture 'gated' is not supported"):
        load(d)


def test_sparsify_directory_with_bf16(tmp_path):
    We, be, Wd, bd = _weights(seed=2)
    hook = tmp_path / "ckpt" / "layers.3"
    hook.mkdir(parents=True)
    # bfloat16 stored by hand: the upper 16 bits of float32
    bf = lambda a: (a.view(np.uint32) >> 16).astype(np.uint16)  # noqa: E731
    tensors = {"encoder.weight": We, "encoder.bias": be, "W_dec": Wd, "b_dec": bd}
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        raw = bf(arr).tobytes()
        header[name] = {"dtype": "BF16", "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hb = json.dumps(header).encode()
    (hook / "sae.safetensors").write_bytes(len(hb).to_bytes(8, "little") + hb + b"".join(blobs))
    (hook / "cfg.json").write_text(json.dumps({"num_latents": 20, "k": 5, "d_in": 6, "expansion_factor": 32}))
    with pytest.raises(FileNotFoundError, match="hookpoint"):
        load(tmp_path / "ckpt")
    sae = load(tmp_path / "ckpt", hookpoint="layers.3")
    widen = lambda a: (bf(a).astype(np.uint32) << 16).view(np.float32)  # noqa: E731
    _same(sae, widen(We), widen(be), widen(Wd), widen(bd), 5)
    np.testing.assert_allclose(sae.W_enc, We, rtol=1e-2, atol=1e-2)


def test_embedding_scope_state_dict(tmp_path):
    We, be, Wd, bd = _weights(seed=3)
    d = tmp_path / "scope"
    d.mkdir()
    save_file(
        {"encoder.weight": We, "encoder.bias": be, "decoder.weight": np.ascontiguousarray(Wd.T), "decoder.bias": bd},
        str(d / "sae.safetensors"),
    )
    (d / "cfg.json").write_text(json.dumps({"k": 2}))
    _same(load(d), We, be, Wd, bd, 2)


def test_missing_keys_and_corrupt_files(tmp_path):
    We, be, Wd, bd = _weights()
    d = tmp_path / "bad"
    d.mkdir()
    with pytest.raises(FileNotFoundError, match="cfg.json"):
        load(d)
    (d / "cfg.json").write_text(json.dumps({"k": 3}))
    with pytest.raises(FileNotFoundError, match="sae.safetensors"):
        load(d)
    save_file({"encoder.weight": We, "encoder.bias": be, "W_dec": Wd}, str(d / "sae.safetensors"))
    with pytest.raises(KeyError, match=r"sae.safetensors: missing tensor 'b_dec'"):
        load(d)
    (d / "sae.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match=r"sae.safetensors: not a valid safetensors file"):
        load(d)
    (d / "cfg.json").write_text("{oops")
    with pytest.raises(ValueError, match="cfg.json: not valid JSON"):
        load(d)
    save_file({"encoder.weight": We, "encoder.bias": be, "W_dec": Wd, "b_dec": bd}, str(d / "sae.safetensors"))
    (d / "cfg.json").write_text(json.dumps({"num_latents": 20}))
    with pytest.raises(KeyError, match="missing key 'k'"):
        load(d)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nowhere")


def test_failed_save_keeps_previous_model(tmp_path, monkeypatch):
    W1 = _weights(seed=4)
    TopKSAE.from_arrays(*W1, 3).save(tmp_path / "m")
    W2 = _weights(seed=5)

    def boom(path, data):
        raise OSError("disk full")

    monkeypatch.setattr(sae_formats, "atomic_write_bytes", boom)
    with pytest.raises(OSError, match="disk full"):
        TopKSAE.from_arrays(*W2, 3).save(tmp_path / "m")
    monkeypatch.undo()
    _same(load(tmp_path / "m"), *W1, 3)
    bad = TopKSAE.from_arrays(*W2, 3)
    bad.W_dec[0, 0] = np.nan
    with pytest.raises(ValueError, match="W_dec contains NaN"):
        bad.save(tmp_path / "m")
    _same(load(tmp_path / "m"), *W1, 3)
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.endswith(".tmp")]
    # weights that do not match the config's hash (edited by hand, corrupted) are detected
    TopKSAE.from_arrays(*W2, 3).save(tmp_path / "other")
    mine = json.loads((tmp_path / "m" / "cfg.json").read_text())["weights"]
    theirs = json.loads((tmp_path / "other" / "cfg.json").read_text())["weights"]
    (tmp_path / "m" / mine).write_bytes((tmp_path / "other" / theirs).read_bytes())
    with pytest.raises(ValueError, match="sha256"):
        load(tmp_path / "m")
