"""all-MiniLM-L6-v2 (int8 ONNX) embeddings: invariants, determinism, cache, errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")
embed = pytest.importorskip("latentatlas.lm.minilm")
try:
    embed.model_files()
except (ModuleNotFoundError, FileNotFoundError) as exc:  # pragma: no cover - data not installed
    pytest.skip(f"model packages not installed: {exc}", allow_module_level=True)

SENTS = [
    "A man is playing a guitar on stage.",
    "Someone plays the guitar in front of an audience.",
    "The central bank raised interest rates again.",
    "Interest rates were increased by the central bank.",
    "A cat sleeps on the warm windowsill.",
]


def test_unit_norm_deterministic_and_semantic(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTATLAS_CACHE", str(tmp_path))
    E = embed.embed_texts(SENTS, progress=False, cache=False)
    assert E.shape == (5, 384) and E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1, rtol=1e-5)
    S = E @ E.T
    assert S[0, 1] > max(S[0, 2], S[0, 3], S[0, 4]) + 0.2
    assert S[2, 3] > max(S[2, 0], S[2, 1], S[2, 4]) + 0.2
    # batching and order do not change the vectors
    E2 = embed.embed_texts(SENTS[::-1], progress=False, cache=False, batch_size=2)[::-1]
    np.testing.assert_allclose(E, E2, atol=2e-5)


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTATLAS_CACHE", str(tmp_path))
    E = embed.embed_texts(SENTS[:2], progress=False)
    files = list((tmp_path / "embeddings").glob("*.npy"))
    assert len(files) == 1
    np.save(files[0], E * 0 + 7)  # a cached entry is returned as is (proves the cache is used)
    assert (embed.embed_texts(SENTS[:2], progress=False) == 7).all()
    assert not (embed.embed_texts(SENTS[:3], progress=False) == 7).any()  # other texts, other key
    files[0].write_bytes(b"garbage")  # a corrupt entry is recomputed
    np.testing.assert_allclose(embed.embed_texts(SENTS[:2], progress=False), E, atol=1e-6)


def test_errors():
    with pytest.raises(TypeError, match="sequence of str"):
        embed.embed_texts("just one string")
    with pytest.raises(TypeError, match="sequence of str"):
        embed.embed_texts(["ok", 3])
    with pytest.raises(ValueError, match="batch_size"):
        embed.embed_texts(["ok"], batch_size=0)
    assert embed.embed_texts([], progress=False).shape == (0, 384)


def _bert_fp32(texts):
    """all-MiniLM-L6-v2 in plain NumPy from the fp32 safetensors (an independent implementation):
    BERT embeddings + 6 post-LN encoder layers (12 heads, exact GELU), mean pooling, L2 norm."""
    from scipy.special import erf
    from tokenizers import Tokenizer

    from latentatlas._io import read_safetensors

    _, tok_file = embed.model_files()
    W = read_safetensors(tok_file.parent / "model.safetensors")
    tok = Tokenizer.from_file(str(tok_file))
    tok.enable_truncation(max_length=256)
    tok.no_padding()  # the packaged tokenizer.json pads to a fixed length; one text at a time here

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * W[p + ".weight"] + W[p + ".bias"]

    def lin(x, p):
        return x @ W[p + ".weight"].T + W[p + ".bias"]

    out = []
    for t in texts:
        ids = np.array(tok.encode(t).ids)
        n = len(ids)
        h = (
            W["embeddings.word_embeddings.weight"][ids]
            + W["embeddings.position_embeddings.weight"][:n]
            + W["embeddings.token_type_embeddings.weight"][0]
        )
        h = ln(h.astype(np.float64), "embeddings.LayerNorm")
        for layer in range(6):
            p = f"encoder.layer.{layer}."
            q, k, v = (
                lin(h, p + f"attention.self.{m}").reshape(n, 12, 32).transpose(1, 0, 2)
                for m in ("query", "key", "value")
            )
            a = q @ k.transpose(0, 2, 1) / np.sqrt(32)
            a = np.exp(a - a.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(1, 0, 2).reshape(n, 384)
            h = ln(h + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            f = lin(h, p + "intermediate.dense")
            f = 0.5 * f * (1 + erf(f / np.sqrt(2)))
            h = ln(h + lin(f, p + "output.dense"), p + "output.LayerNorm")
        e = h.mean(0)
        out.append(e / np.linalg.norm(e))
    return np.array(out)


def test_int8_onnx_agrees_with_fp32_model():
    """The int8 ONNX export against an fp32 NumPy forward of the packaged weights (REFERENCE: cos ≈ 0.9996)."""
    ref = _bert_fp32(SENTS)
    E = embed.embed_texts(SENTS, progress=False, cache=False)
    cos = (E * ref).sum(1)
    assert cos.min() > 0.999, cos
    # and the geometry is the fp32 model's: same nearest neighbour for every sentence
    S, R = E @ E.T - 2 * np.eye(5), ref @ ref.T - 2 * np.eye(5)
    assert np.array_equal(S.argmax(1), R.argmax(1))
