"""SAEs on a language model's residual stream: the CE-recovered splice, activations, SAELens files.

A tiny random LLaMA (4 blocks, hidden 16) stands in for SmolLM2 so that every test runs in
seconds; the metrics are recomputed independently (scipy's log_softmax, a hand-written hook).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import log_softmax

from latentatlas.lm.llama import LayerWeights, LlamaConfig, LlamaModel, LlamaWeights
from latentatlas.sae import TopKSAE, lm_eval, load
from latentatlas.sae.lm_eval import (
    ce_recovered,
    collect_activations,
    hook_name,
    massive_positions,
    splice_hook,
    token_windows,
    train_lm_sae,
)

HIDDEN, LAYERS, VOCAB = 16, 4, 40


def _model(seed: int = 0) -> LlamaModel:
    cfg = LlamaConfig(
        num_layers=LAYERS, hidden_size=HIDDEN, intermediate_size=32, num_heads=4, num_kv_heads=2,
        head_dim=4, vocab_size=VOCAB, context_length=256,
    )  # fmt: skip
    rng = np.random.default_rng(seed)

    def w(*shape: int, s: float = 0.3) -> np.ndarray:
        return (s * rng.standard_normal(shape)).astype(np.float32)

    layers = [
        LayerWeights(
            attn_norm=np.ones(HIDDEN, np.float32),
            wqkv=w(HIDDEN, 32),
            wo=w(16, HIDDEN),
            ffn_norm=np.ones(HIDDEN, np.float32),
            w_gate_up=w(HIDDEN, 64),
            w_down=w(32, HIDDEN),
        )  # fmt: skip
        for _ in range(LAYERS)
    ]
    embed = w(VOCAB, HIDDEN, s=1.0)
    return LlamaModel(cfg, LlamaWeights(embed, layers, np.ones(HIDDEN, np.float32), w(VOCAB, HIDDEN, s=1.0)))


class _Tokenizer:
    def token_to_id(self, token: str) -> int | None:
        return 0 if token == lm_eval.END_OF_TEXT else None


class _Backend:
    """What the module needs of a GGUFBackend: ``model``, ``tokenizer``, ``encode``, ``model_name``."""

    model_name = "tiny-llama"

    def __init__(self) -> None:
        self.model = _model()
        self.tokenizer = _Tokenizer()

    def encode(self, text: str) -> list[int]:
        return [1 + ord(c) % (VOCAB - 1) for c in text]


class _Identity:
    d_in = HIDDEN

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        return np.array(X, copy=True)


class _Zero(_Identity):
    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        return np.zeros_like(X)


@pytest.fixture(scope="module")
def model() -> LlamaModel:
    return _model()


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return np.random.default_rng(1).integers(0, VOCAB, size=(5, 12))


def _independent(model: LlamaModel, windows: np.ndarray, layer: int, replace) -> tuple[float, float]:
    """CE and KL(clean || spliced) of every next-token prediction, with scipy's log_softmax."""
    B, T = windows.shape
    clean, _ = model.forward(windows, model.new_cache(B, T), return_hidden=False, all_logits=True)

    def hook(li: int, h: np.ndarray) -> np.ndarray:
        return replace(h) if li == layer else h

    spliced, _ = model.forward(windows, model.new_cache(B, T), return_hidden=False, all_logits=True, hook=hook)
    lc = log_softmax(clean[:, :-1].astype(np.float64), axis=-1)
    ls = log_softmax(spliced[:, :-1].astype(np.float64), axis=-1)
    tgt = windows[:, 1:]
    ce = -np.take_along_axis(ls, tgt[..., None], axis=-1).mean()
    kl = (np.exp(lc) * (lc - ls)).sum(axis=-1).mean()
    return float(ce), float(kl)


def test_ce_recovered_matches_independent_recomputation(model, windows) -> None:
    layer = 1
    sae = TopKSAE(HIDDEN, 24, 3, seed=2)
    mean = np.random.default_rng(3).standard_normal(HIDDEN).astype(np.float32)
    res = ce_recovered(model, sae, windows, layer, mean=mean, batch_size=2, progress=False)
    ce_clean, _ = _independent(model, windows, layer, lambda h: h)
    ce_sae, kl_sae = _independent(model, windows, layer, sae.reconstruct)
    ce_zero, kl_zero = _independent(model, windows, layer, np.zeros_like)
    ce_mean, kl_mean = _independent(model, windows, layer, lambda h: np.broadcast_to(mean, h.shape).copy())
    for key, want in [("ce_clean", ce_clean), ("ce_sae", ce_sae), ("ce_zero", ce_zero), ("ce_mean", ce_mean),
                      ("kl_sae", kl_sae), ("kl_zero", kl_zero), ("kl_mean", kl_mean)]:  # fmt: skip
        assert res[key] == pytest.approx(want, rel=1e-4, abs=1e-5), key
    assert res["recovered"] == pytest.approx(1 - (ce_sae - ce_clean) / (ce_zero - ce_clean), rel=1e-4)
    assert res["recovered_vs_mean"] == pytest.approx(1 - (ce_sae - ce_clean) / (ce_mean - ce_clean), rel=1e-4)
    assert res["n_tokens"] == windows.shape[0] * (windows.shape[1] - 1)
    assert res["spliced_fraction"] == 1.0
    assert abs(ce_zero - ce_clean) > 0.01  # the ablation is not a no-op on this (random) model


def test_identity_recovers_everything_and_zero_nothing(model, windows) -> None:
    ident = ce_recovered(model, _Identity(), windows, 2, progress=False)
    assert ident["recovered"] == pytest.approx(1.0, abs=1e-6)
    assert ident["kl_sae"] == pytest.approx(0.0, abs=1e-6)
    assert ident["ce_sae"] == pytest.approx(ident["ce_clean"], abs=1e-6)
    zero = ce_recovered(model, _Zero(), windows, 2, progress=False)
    assert zero["recovered"] == pytest.approx(0.0, abs=1e-6)
    assert zero["kl_sae"] == pytest.approx(zero["kl_zero"], rel=1e-6)
    assert zero["ce_clean"] == pytest.approx(ident["ce_clean"], rel=1e-6)


def test_splice_changes_only_the_hooked_layer_and_after(model, windows) -> None:
    B, T = windows.shape
    _, clean = model.forward(windows, model.new_cache(B, T))
    layer = 1
    norms = np.linalg.norm(clean[layer].reshape(B * T, -1), axis=1)
    max_norm = float(np.median(norms))  # half of the rows stay as they are
    hook, state = splice_hook(layer, lambda h: -h, max_norm=max_norm)
    _, hid = model.forward(windows, model.new_cache(B, T), hook=hook)
    assert clean is not None and hid is not None
    np.testing.assert_array_equal(hid[:layer], clean[:layer])
    flat_c, flat_h = clean[layer].reshape(B * T, -1), hid[layer].reshape(B * T, -1)
    keep = norms <= max_norm
    np.testing.assert_array_equal(state["spliced"], keep)
    np.testing.assert_array_equal(flat_h[keep], -flat_c[keep])
    np.testing.assert_array_equal(flat_h[~keep], flat_c[~keep])
    assert 0 < keep.sum() < B * T
    assert not np.allclose(hid[layer + 1], clean[layer + 1])


def test_excluded_positions_are_not_scored(model, windows) -> None:
    B, T = windows.shape
    _, clean = model.forward(windows, model.new_cache(B, T))
    assert clean is not None
    norms = np.linalg.norm(clean[1], axis=-1)
    max_norm = float(np.quantile(norms, 0.7))
    res = ce_recovered(model, _Zero(), windows, 1, max_norm=max_norm, progress=False)
    keep = norms <= max_norm
    assert res["spliced_fraction"] == pytest.approx(keep.mean())
    assert res["n_tokens"] == keep[:, :-1].sum()


def test_collect_activations_equal_the_hidden_states(model, windows) -> None:
    B, T = windows.shape
    _, clean = model.forward(windows, model.new_cache(B, T))
    assert clean is not None
    acts = collect_activations(model, windows, 2, batch_size=2, progress=False)
    assert acts.shape == (B, T, HIDDEN) and acts.dtype == np.float32
    np.testing.assert_allclose(acts, clean[2], rtol=1e-5, atol=1e-5)


def test_massive_positions() -> None:
    rng = np.random.default_rng(0)
    acts = rng.standard_normal((3, 10, 8)).astype(np.float32)
    acts[:, 0] *= 500  # the BOS of every window
    acts[1, 4] *= 500
    mask, max_norm = massive_positions(acts, 10.0)
    want = np.zeros((3, 10), bool)
    want[:, 0] = True
    want[1, 4] = True
    np.testing.assert_array_equal(mask, want)
    assert max_norm == pytest.approx(10 * np.median(np.linalg.norm(acts, axis=-1)), rel=1e-6)
    with pytest.raises(ValueError, match="factor"):
        massive_positions(acts, 0.5)


def test_token_windows_pack_texts_with_bos() -> None:
    be = _Backend()
    texts = ["hello world", "a second text", "third"]
    w = token_windows(be, texts, 6)
    stream = [t for x in texts for t in [0, *be.encode(x)]]
    n = len(stream) // 5
    assert w.shape == (n, 6) and w.dtype == np.int64
    assert (w[:, 0] == 0).all()
    assert w[:, 1:].ravel().tolist() == stream[: n * 5]
    assert token_windows(be, texts, 6, max_windows=2).shape == (2, 6)
    with pytest.raises(ValueError, match="fewer than one window"):
        token_windows(be, ["ab"], 64)
    with pytest.raises(TypeError, match="texts"):
        token_windows(be, "not a list", 6)


def test_bad_input_names_both_sides(model, windows) -> None:
    with pytest.raises(ValueError, match=r"layer.*num_layers=4.*got 4"):
        ce_recovered(model, _Identity(), windows, 4, progress=False)
    with pytest.raises(ValueError, match=r"layer.*got -1"):
        collect_activations(model, windows, -1, progress=False)

    class Wrong(_Identity):
        d_in = 576

    with pytest.raises(ValueError, match=r"sae.d_in = 576 .* hidden size 16"):
        ce_recovered(model, Wrong(), windows, 1, progress=False)
    with pytest.raises(ValueError, match="vocab_size=40"):
        ce_recovered(model, _Identity(), windows + VOCAB, 1, progress=False)
    with pytest.raises(ValueError, match="mean"):
        ce_recovered(model, _Identity(), windows, 1, mean=np.zeros(3), progress=False)
    with pytest.raises(TypeError, match="backend"):
        collect_activations(object(), windows, 1, progress=False)


def test_fold_input_scale_reads_raw_activations() -> None:
    rng = np.random.default_rng(4)
    X = 50 * rng.standard_normal((64, HIDDEN)).astype(np.float32)
    sae = TopKSAE(HIDDEN, 32, 4, seed=0)
    sae.params = {**sae.params, "b_enc": rng.standard_normal(32), "b_dec": rng.standard_normal(HIDDEN)}
    scale = 37.5
    raw = lm_eval.fold_input_scale(sae, scale)
    np.testing.assert_allclose(raw.reconstruct(X), scale * sae.reconstruct(X / scale), rtol=1e-4, atol=1e-3)


def test_train_lm_sae_writes_saelens_and_reuses_activations(tmp_path, monkeypatch) -> None:
    be = _Backend()
    texts = [f"text number {i} about {'abcdefgh'[i % 8] * (i % 5 + 1)}" for i in range(200)]
    kw = dict(layer=2, train_tokens=600, eval_tokens=60, context_size=16, n_latents=32, k=4, epochs=2,
              batch_size=64, auxk=8, dataset="tiny", progress=False)  # fmt: skip
    sae, m = train_lm_sae(be, texts, tmp_path, **kw)
    back = load(tmp_path)
    assert isinstance(back, TopKSAE) and (back.d_in, back.n_latents, back.k) == (HIDDEN, 32, 4)
    np.testing.assert_array_equal(back.W_dec, sae.W_dec)
    md = back.metadata
    assert md["model_name"] == "tiny-llama" and md["hook_name"] == hook_name(2) == "blocks.2.hook_resid_post"
    assert md["hook_layer"] == 2 and md["context_size"] == 16 and md["dataset_path"] == "tiny"
    assert md["prepend_bos"] is True and md["max_norm"] == pytest.approx(m["max_norm"])
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["architecture"] == "topk" and cfg["d_sae"] == 32
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("fve", "l0", "dead_fraction", "ce_clean", "ce_sae", "ce_zero", "recovered", "kl_sae"):
        assert saved[key] == pytest.approx(m[key])
    assert m["train_tokens"] >= 500 and 0 < m["l0"] <= 4
    # a second run with the same data reads the cached activations instead of running the model
    monkeypatch.setattr(lm_eval, "collect_activations", lambda *a, **k: pytest.fail("activations recomputed"))
    _, m2 = train_lm_sae(be, texts, tmp_path, **kw)
    assert m2["fve"] == pytest.approx(m["fve"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--latents", "0"], "argument --latents"),
        (["--k", "0"], "argument --k"),
        (["--layer", "-1"], "argument --layer"),
    ],
)
def test_train_lm_cli_usage_errors(tmp_path, capsys, argv, message) -> None:
    from latentatlas.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["sae", "train-lm", "--out", str(tmp_path / "o"), *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"), [(["--outlier-factor", "0.5"], "--outlier-factor"), (["--k", "64", "--latents", "32"], "--k")]
)
def test_train_lm_cli_input_errors_before_loading_the_model(tmp_path, capsys, argv, message) -> None:
    from latentatlas.cli import main

    assert main(["sae", "train-lm", "--out", str(tmp_path / "o"), "--quiet", *argv]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
