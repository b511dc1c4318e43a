"""SAELens 6.54 (the real library, torch on the CPU) <-> latentatlas's SAE files, both ways, numerically.

Every architecture SAELens can save loads in latentatlas with the same codes and reconstructions, and every
SAE latentatlas writes in SAELens's layout loads in SAELens with the same numbers and its metadata intact;
``HookedSAETransformer.add_sae`` attaches it to a small ``HookedTransformer`` (built from a config, no
download) and changes the forward pass exactly as our encode/decode predicts.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sae_lens import (
    SAE,
    BatchTopKTrainingSAE,
    BatchTopKTrainingSAEConfig,
    HookedSAETransformer,
    JumpReLUSAE,
    JumpReLUSAEConfig,
    StandardSAE,
    StandardSAEConfig,
    TopKSAE,
    TopKSAEConfig,
    TopKTrainingSAE,
    TopKTrainingSAEConfig,
)

from latentatlas import sae as la_sae

D, N, K = 24, 96, 6
# float32 products of length D (and our fused epilogue vs torch's matmul): a few ulps of the
# pre-activation magnitude (|pre| ~ sqrt(D) for unit inputs and N(0,1) weights)
TOL = {"rtol": 1e-4, "atol": 1e-4}


def _randomise(sae: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sae.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if "b_" in name else 1.0))


def _x(seed: int = 0, n: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, D)).astype(np.float32)


def _dense_codes(ours, x: np.ndarray) -> np.ndarray:
    """latentatlas's codes of x as a dense (n, N) matrix (TopK pairs or a threshold CSR)."""
    if isinstance(ours, la_sae.TopKSAE):
        return ours.encode_dense(x)
    return np.asarray(ours.encode(x).todense())


def _theirs(sae: SAE, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        acts = sae.encode(torch.from_numpy(x))
        return acts.numpy(), sae.decode(acts).numpy()


def _same_model(ours, theirs: SAE, x: np.ndarray) -> None:
    acts, recon = _theirs(theirs, x)
    np.testing.assert_allclose(_dense_codes(ours, x), acts, **TOL)
    np.testing.assert_allclose(
        ours.decode(*ours.encode(x)) if isinstance(ours, la_sae.TopKSAE) else ours.reconstruct(x), recon, **TOL
    )


def _saelens_models():
    yield "standard", StandardSAE(StandardSAEConfig(d_in=D, d_sae=N))
    yield "topk", TopKSAE(TopKSAEConfig(d_in=D, d_sae=N, k=K))
    yield "jumprelu", JumpReLUSAE(JumpReLUSAEConfig(d_in=D, d_sae=N))
    yield "topk-no-b_dec", TopKSAE(TopKSAEConfig(d_in=D, d_sae=N, k=K, apply_b_dec_to_input=False))


@pytest.mark.parametrize("name", ["standard", "topk", "jumprelu", "topk-no-b_dec"])
def test_saelens_save_model_loads_in_latentatlas(tmp_path, name):
    theirs = dict(_saelens_models())[name]
    _randomise(theirs, seed=len(name))
    if name == "jumprelu":
        with torch.no_grad():
            theirs.threshold.copy_(torch.rand(N) * 2.0)
    theirs.save_model(tmp_path / name)
    ours = la_sae.load(tmp_path / name)
    assert ours.architecture == name.split("-")[0]
    _same_model(ours, theirs, _x())


def test_saelens_topk_training_checkpoint_is_folded(tmp_path):
    """SAELens's default TopK training SAE rescales by the decoder norm (rows not unit): folded on load,
    exactly as its own save_inference_model does."""
    theirs = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=D, d_sae=N, k=K, rescale_acts_by_decoder_norm=True))
    _randomise(theirs, seed=3)
    assert not np.allclose(theirs.W_dec.detach().norm(dim=-1).numpy(), 1.0)
    theirs.save_model(tmp_path / "train")
    theirs.save_inference_model(tmp_path / "inference")
    x = _x(1)
    for folder in ("train", "inference"):
        ours = la_sae.load(tmp_path / folder)
        np.testing.assert_allclose(np.linalg.norm(ours.W_dec, axis=1), 1.0, rtol=1e-5)
        _same_model(ours, theirs, x)


def test_saelens_batchtopk_training_checkpoint_loads_as_its_jumprelu(tmp_path):
    theirs = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=D, d_sae=N, k=K))
    _randomise(theirs, seed=5)
    theirs.topk_threshold = torch.tensor(1.25, dtype=torch.double)
    theirs.save_model(tmp_path / "train")  # scalar topk_threshold: used to be a bare KeyError
    theirs.save_inference_model(tmp_path / "inference")
    inference = SAE.load_from_disk(tmp_path / "inference")
    x = _x(2)
    for folder in ("train", "inference"):
        ours = la_sae.load(tmp_path / folder)
        np.testing.assert_allclose(ours.threshold, 1.25, rtol=1e-6)
        _same_model(ours, inference, x)


def test_batchtopk_without_any_threshold_names_the_way_out(tmp_path):
    theirs = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=D, d_sae=N, k=K))
    theirs.save_model(tmp_path / "m")
    from safetensors.torch import load_file, save_file

    t = load_file(tmp_path / "m" / "sae_weights.safetensors")
    del t["topk_threshold"]
    save_file(t, tmp_path / "m" / "sae_weights.safetensors")
    with pytest.raises(KeyError, match="save_inference_model"):
        la_sae.load(tmp_path / "m")


def _our_models():
    rng = np.random.default_rng(7)
    W = rng.standard_normal((N, D)).astype(np.float32)
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    be, bd = (0.1 * rng.standard_normal(N)).astype(np.float32), (0.1 * rng.standard_normal(D)).astype(np.float32)
    th = rng.uniform(0.0, 1.0, N).astype(np.float32)
    yield "topk", la_sae.TopKSAE.from_arrays(W * 1.3, be, W, bd, K)
    for arch in ("standard", "jumprelu", "batchtopk"):
        yield (
            arch,
            la_sae.ThresholdSAE.from_arrays(W * 1.3, be, W, bd, None if arch == "standard" else th, architecture=arch),
        )


@pytest.mark.parametrize("arch", ["topk", "standard", "jumprelu", "batchtopk"])
def test_our_saelens_files_load_in_saelens_with_metadata(tmp_path, arch):
    ours = dict(_our_models())[arch]
    meta = {"model_name": "tiny-llama", "hook_name": "blocks.0.hook_resid_post", "hook_head_index": None}
    ours.save(tmp_path / arch, format="saelens", **({"metadata": meta} if arch == "topk" else {}))
    if arch != "topk":  # ThresholdSAE.save takes its metadata from the model
        ours.metadata.update(meta)
        ours.save(tmp_path / arch, format="saelens")
    theirs = SAE.load_from_disk(tmp_path / arch)
    assert theirs.cfg.metadata.hook_name == meta["hook_name"]
    assert theirs.cfg.metadata.model_name == meta["model_name"]
    _same_model(ours, theirs, _x(3))
    # and back: SAELens's own save of what it loaded reads as the same model here
    theirs.save_model(tmp_path / "again")
    again = la_sae.load(tmp_path / "again")
    _same_model(again, theirs, _x(4))
    cfg = json.loads((tmp_path / arch / "cfg.json").read_text())
    assert cfg["metadata"]["sae_lens_version"].startswith("6.")


def test_add_sae_changes_the_forward_pass_as_our_encode_decode_predicts(tmp_path):
    from transformer_lens import HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=2, d_model=D, n_ctx=16, d_head=6, n_heads=4, d_vocab=50, act_fn="gelu", seed=0,
        normalization_type="LN",
    )  # fmt: skip
    model = HookedSAETransformer(cfg)
    hook = "blocks.0.hook_resid_post"
    ours = dict(_our_models())["topk"]
    ours.save(tmp_path / "sae", format="saelens", metadata={"model_name": "tiny", "hook_name": hook})
    sae = SAE.load_from_disk(tmp_path / "sae")
    tokens = torch.tensor([[1, 5, 9, 2, 7, 3, 11, 4]])
    with torch.no_grad():
        clean = model(tokens).numpy()

        def ours_hook(act, hook):  # noqa: ARG001 - TransformerLens's hook signature
            x = act[0].numpy().astype(np.float32)
            return torch.from_numpy(ours.decode(*ours.encode(x)))[None]

        predicted = model.run_with_hooks(tokens, fwd_hooks=[(hook, ours_hook)]).numpy()
        model.add_sae(sae)
        assert hook in model.acts_to_saes, "add_sae attached nothing"
        spliced = model(tokens).numpy()
    assert not np.allclose(spliced, clean, atol=1e-3)  # the SAE is really in the forward pass
    np.testing.assert_allclose(spliced, predicted, rtol=1e-3, atol=1e-3)
