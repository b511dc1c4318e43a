"""EleutherAI sparsify 1.3 (the real library) <-> latentatlas, both ways, numerically.

sparsify's own folders (one coder, or one sub-folder per hookpoint) load here with sparsify's codes and
reconstructions; ``save(format="sparsify")`` writes folders that ``SparseCoder.load_from_disk`` and
``load_many`` read back with ours; a groupmax coder is refused, never read as TopK.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sparsify import SparseCoder, SparseCoderConfig

from latentatlas import sae as la_sae

D, N, K = 32, 128, 8
TOL = {"rtol": 1e-4, "atol": 1e-4}  # float32 dot products of length D: a few ulps of |pre| ~ sqrt(D)


def _coder(seed: int, activation: str = "topk") -> SparseCoder:
    torch.manual_seed(seed)
    sc = SparseCoder(D, SparseCoderConfig(activation=activation, num_latents=N, k=K))
    with torch.no_grad():
        sc.encoder.bias.copy_(0.2 * torch.randn(N))
        sc.b_dec.copy_(0.2 * torch.randn(D))
    return sc


def _x(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((50, D)).astype(np.float32)


def _dense(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    out = np.zeros((values.shape[0], N), np.float32)
    np.put_along_axis(out, indices, values, axis=1)
    return out


def _agree(ours: la_sae.TopKSAE, theirs: SparseCoder, x: np.ndarray) -> None:
    with torch.no_grad():
        enc = theirs.encode(torch.from_numpy(x))
        recon = theirs.decode(enc.top_acts, enc.top_indices).numpy()
        dense = _dense(enc.top_acts.numpy(), enc.top_indices.numpy())
    v, i = ours.encode(x)
    # compare dense codes: a row with fewer than k positive pre-activations has zeros whose indices
    # are arbitrary in both libraries
    np.testing.assert_allclose(_dense(np.asarray(v), np.asarray(i)), dense, **TOL)
    np.testing.assert_allclose(ours.decode(v, i), recon, **TOL)


def test_sparsify_folder_loads_here(tmp_path):
    theirs = _coder(0)
    theirs.save_to_disk(tmp_path / "sae")
    _agree(la_sae.load(tmp_path / "sae"), theirs, _x(0))


def test_sparsify_hookpoint_folders_load_here(tmp_path):
    coders = {f"layers.{i}": _coder(10 + i) for i in range(3)}
    for hook, sc in coders.items():
        sc.save_to_disk(tmp_path / "run" / hook)
    for hook, sc in coders.items():
        _agree(la_sae.load(tmp_path / "run", hookpoint=hook), sc, _x(1))
    with pytest.raises(FileNotFoundError, match="hookpoint="):
        la_sae.load(tmp_path / "run")


def test_our_sparsify_folders_load_in_sparsify(tmp_path):
    rng = np.random.default_rng(3)
    W = rng.standard_normal((N, D)).astype(np.float32)
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    be, bd = (0.1 * rng.standard_normal(N)).astype(np.float32), (0.1 * rng.standard_normal(D)).astype(np.float32)
    models = {
        "layers.0": la_sae.TopKSAE.from_arrays(W * 1.2, be, W, bd, K),
        # sparsify always subtracts b_dec: a model that does not is written with the equivalent bias
        "layers.1": la_sae.TopKSAE.from_arrays(W * 0.8, be, W, bd, K, subtract_decoder_bias=False),
    }
    for hook, m in models.items():
        m.save(tmp_path / "run" / hook, format="sparsify")
    loaded = SparseCoder.load_many(str(tmp_path / "run"), local=True)
    assert sorted(loaded) == sorted(models)
    for hook, m in models.items():
        _agree(m, loaded[hook], _x(2))
        _agree(la_sae.load(tmp_path / "run", hookpoint=hook), loaded[hook], _x(3))


def test_groupmax_is_refused_not_read_as_topk(tmp_path):
    _coder(5, activation="groupmax").save_to_disk(tmp_path / "gm")
    with pytest.raises(ValueError, match="activation='groupmax' is not supported"):
        la_sae.load(tmp_path / "gm")


def test_threshold_sae_cannot_be_written_as_sparsify(tmp_path):
    th = la_sae.ThresholdSAE.from_arrays(np.eye(4, dtype=np.float32), np.zeros(4), np.eye(4), np.zeros(4))
    with pytest.raises(ValueError, match="holds TopK SAEs"):
        la_sae.save(th, tmp_path / "x", format="sparsify")
