"""Persona store: the reference on-disk layout both ways, Parquet layout, loaders, bad input."""

from __future__ import annotations

import json
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as st_save
from safetensors.numpy import save_file

from latentatlas import _io
from latentatlas.personas import (
    ParquetPersonaStore,
    PersonaVectorStore,
    export_parquet,
    load_analysis_dataset,
    load_persona_vectors,
    load_variant_vectors,
)

MODEL = "google/gemma-2-9b-it"
L, H = 5, 12


def write_reference_store(root: Path, variants: dict[str, dict[str, np.ndarray]], names: dict[str, str]) -> None:
    """The persona-vectors layout written by hand (safetensors + json), not through the class."""
    for variant, vecs in variants.items():
        vdir = root / MODEL.replace("/", "__") / "answer_mean" / variant
        vdir.mkdir(parents=True)
        personas = {}
        for pid, v in vecs.items():
            save_file({"activations": v}, str(vdir / f"{pid}.safetensors"))
            personas[pid] = {"name": names[pid], "sample_ids": [f"{pid}-q1", f"{pid}-q2"]}
        manifest = {"num_layers": L, "hidden_size": H, "personas": personas}
        (vdir / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.fixture()
def ref_store(tmp_path: Path) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(0)
    bio = {f"p{i}": rng.standard_normal((L, H)).astype(np.float32) for i in (3, 1, 2, 0)}
    tmpl = {f"p{i}": rng.standard_normal((L, H)).astype(np.float32) for i in (0, 1, 2, 9)}
    names = {f"p{i}": f"Name {i}" for i in range(10)}
    write_reference_store(tmp_path, {"biography": bio, "templated": tmpl}, names)
    return tmp_path, {"biography": bio, "templated": tmpl}


def test_reads_reference_layout(ref_store):
    root, data = ref_store
    s = PersonaVectorStore(MODEL, root=root)
    assert s.available_variants() == ["templated", "biography"]  # the original's default variants, in order
    assert PersonaVectorStore(MODEL, root, variants=None).available_variants() == ["biography", "templated"]
    assert s.list_personas(["biography"]) == ["p0", "p1", "p2", "p3"]
    with pytest.warns(UserWarning, match="Skipping 2 persona"):
        assert s.list_personas(["biography", "templated"]) == ["p0", "p1", "p2"]
    assert s.persona_names(["p2", "p0"]) == {"p2": "Name 2", "p0": "Name 0"}
    assert s.list_layers(["biography"]) == list(range(L))
    assert s.sample_ids("biography", "p1") == ["p1-q1", "p1-q2"]
    for pid, v in data["biography"].items():
        np.testing.assert_array_equal(s.load("biography", pid), v)


def test_save_is_byte_compatible(tmp_path):
    rng = np.random.default_rng(1)
    s = PersonaVectorStore(MODEL, root=tmp_path)
    v0 = rng.standard_normal((L, H)).astype(np.float32)
    v1 = rng.standard_normal((L, H)).astype(np.float32)
    p = s.save("biography", "a", "Ada", v0, ["q1"])
    s.save("biography", "b", None, v1)
    vdir = tmp_path / "google__gemma-2-9b-it" / "answer_mean" / "biography"
    assert p == vdir  # the original returns the variant directory
    p = vdir / "a.safetensors"
    # what safetensors (numpy or torch: same Rust serializer) writes for {"activations": v}
    assert p.read_bytes() == st_save({"activations": v0})
    expect = {
        "num_layers": L,
        "hidden_size": H,
        "personas": {"a": {"name": "Ada", "sample_ids": ["q1"]}, "b": {"name": "b", "sample_ids": []}},
    }
    assert (vdir / "manifest.json").read_text() == json.dumps(expect, indent=2)
    assert sorted(q.name for q in vdir.iterdir()) == [
        ".manifest.lock",
        "a.safetensors",
        "b.safetensors",
        "manifest.json",
    ]
    # float64 input is stored as float32
    s.save("biography", "c", "C", v0.astype(np.float64))
    assert s.load("biography", "c").dtype == np.float32


def test_save_shape_mismatch_and_bad_ids(tmp_path):
    s = PersonaVectorStore(MODEL, root=tmp_path)
    s.save("v", "a", None, np.zeros((L, H), np.float32))
    with pytest.raises(ValueError, match=r"tensor shape \(4, 12\) for 'b' does not match the manifest .*manifest.json"):
        s.save("v", "b", None, np.zeros((4, H), np.float32))
    with pytest.raises(ValueError, match=r"must have shape \(num_layers, hidden_size\)"):
        s.save("v", "b", None, np.zeros(H, np.float32))
    with pytest.raises(ValueError, match="persona_id '../x' is not a safe file name"):
        s.save("v", "../x", None, np.zeros((L, H), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        s.save("v", "n", None, np.full((L, H), np.nan, np.float32))
    assert s.list_personas(["v"]) == ["a"]


def test_read_errors_name_the_file_or_value(ref_store, tmp_path):
    root, _ = ref_store
    missing = tmp_path / "nope"
    assert PersonaVectorStore(MODEL, root=missing).list_personas(["biography"]) == []  # as the original
    with pytest.raises(FileNotFoundError, match="unknown variant 'biography'"):
        PersonaVectorStore(MODEL, root=missing).load("biography", "p0")
    s = PersonaVectorStore(MODEL, root=root)
    with pytest.raises(FileNotFoundError, match=r"unknown variant 'neutral'.*available: \['templated', 'biography'\]"):
        s.load("neutral", "p0")
    with pytest.raises(FileNotFoundError, match="no vector for persona 'zz'"):
        s.load("biography", "zz")
    vdir = root / "google__gemma-2-9b-it" / "answer_mean" / "biography"
    # manifest disagrees with the file's shape
    save_file({"activations": np.zeros((L + 1, H), np.float32)}, str(vdir / "p1.safetensors"))
    with pytest.raises(ValueError, match=r"p1.safetensors holds a tensor of shape \(6, 12\) but its manifest says"):
        s.load("biography", "p1")
    # corrupt files
    (vdir / "p2.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ValueError, match=r"corrupt safetensors file .*p2.safetensors"):
        s.load("biography", "p2")
    good = (vdir / "p3.safetensors").read_bytes()
    (vdir / "p3.safetensors").write_bytes(good[:-10])
    with pytest.raises(ValueError, match=r"corrupt safetensors file .*p3.safetensors"):
        s.load("biography", "p3")
    (vdir / "p0.safetensors").write_bytes(b"abc")
    with pytest.raises(ValueError, match=r"corrupt safetensors file .*p0.safetensors"):
        s.load("biography", "p0")
    (vdir / "manifest.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"corrupt manifest .*manifest.json"):
        s.load("biography", "p0")


def test_wrong_key_and_bf16(tmp_path):
    s = PersonaVectorStore(MODEL, root=tmp_path)
    s.save("v", "a", None, np.ones((L, H), np.float32))
    vdir = s.variant_dir("v")
    save_file({"hidden": np.ones((L, H), np.float32)}, str(vdir / "a.safetensors"))
    with pytest.raises(ValueError, match=r"a.safetensors has no 'activations' tensor \(keys: \['hidden'\]\)"):
        s.load("v", "a")
    # a bfloat16 file as torch writes it: numpy has no bf16, so the store widens it by hand
    x = np.random.default_rng(2).standard_normal((L, H)).astype(np.float32)
    bf = (x.view(np.uint32) >> 16).astype("<u2")
    header = json.dumps({"activations": {"dtype": "BF16", "shape": [L, H], "data_offsets": [0, bf.nbytes]}}).encode()
    header += b" " * (-len(header) % 8)
    (vdir / "a.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bf.tobytes())
    expect = (bf.astype(np.uint32) << 16).view(np.float32).reshape(L, H)
    np.testing.assert_array_equal(s.load("v", "a"), expect)
    np.testing.assert_allclose(s.load("v", "a"), x, rtol=1e-2, atol=1e-2)


def test_failed_save_leaves_no_partial_files(tmp_path, monkeypatch):
    s = PersonaVectorStore(MODEL, root=tmp_path)
    s.save("v", "a", None, np.ones((L, H), np.float32))
    mpath = s.variant_dir("v") / "manifest.json"
    before = mpath.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    real_stage = _io.write_staged
    calls = []

    def fail_second(path, data):  # the tensor is staged, then staging the manifest fails
        calls.append(Path(path).name)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_stage(path, data)

    monkeypatch.setattr(_io, "write_staged", fail_second)
    with pytest.raises(OSError, match="disk full"):
        s.save("v", "b", None, np.ones((L, H), np.float32))
    assert calls == ["b.safetensors", "manifest.json"]
    assert mpath.read_text() == before  # manifest untouched
    assert not (s.variant_dir("v") / "b.safetensors").exists()
    assert s.list_personas(["v"]) == ["a"]
    monkeypatch.undo()
    # a failure inside a staged write (after the temp file exists) leaves neither temp nor target
    real_fsync = _io.os.fsync
    monkeypatch.setattr(_io.os, "fsync", boom)
    with pytest.raises(OSError):
        s.save("v", "c", None, np.ones((L, H), np.float32))
    monkeypatch.setattr(_io.os, "fsync", real_fsync)
    assert not (s.variant_dir("v") / "c.safetensors").exists()
    assert not [p for p in s.variant_dir("v").iterdir() if p.name.endswith(".tmp")]
    assert mpath.read_text() == before


def test_concurrent_saves_keep_every_entry(tmp_path):
    s = PersonaVectorStore(MODEL, root=tmp_path)
    errors = []

    def work(i: int) -> None:
        try:
            PersonaVectorStore(MODEL, root=tmp_path).save("v", f"p{i:02d}", None, np.full((L, H), i, np.float32))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert s.list_personas(["v"]) == [f"p{i:02d}" for i in range(12)]
    assert float(s.load("v", "p07")[0, 0]) == 7.0


def test_default_root_from_env(tmp_path, monkeypatch):
    monkeypatch.delenv("ARTIFACTS_DIR", raising=False)
    monkeypatch.setenv("LATENTATLAS_PERSONA_ROOT", str(tmp_path / "env_root"))
    assert PersonaVectorStore(MODEL).root == tmp_path / "env_root"
    monkeypatch.delenv("LATENTATLAS_PERSONA_ROOT")
    assert PersonaVectorStore(MODEL).root == Path.home() / ".cache" / "latentatlas" / "personas"
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "art"))  # the original's default: $ARTIFACTS_DIR/activations
    assert PersonaVectorStore(MODEL).root_dir == tmp_path / "art" / "activations"


def test_loaders(ref_store):
    root, data = ref_store
    s = PersonaVectorStore(MODEL, root=root)
    samples = load_persona_vectors(s, "biography")
    assert samples.vectors.shape == (4, L, H) and samples.vectors.dtype == np.float32
    assert samples.persona_ids == ["p0", "p1", "p2", "p3"]
    assert samples.labels == ["Name 0", "Name 1", "Name 2", "Name 3"]
    np.testing.assert_array_equal(samples.vectors[2], data["biography"]["p2"])
    sub = load_persona_vectors(s, "biography", persona_ids=["p3", "p1"])
    np.testing.assert_array_equal(sub.vectors[0], data["biography"]["p3"])
    with pytest.warns(UserWarning):
        by = load_variant_vectors(s, ["biography", "templated"])
    assert by["biography"].persona_ids == by["templated"].persona_ids == ["p0", "p1", "p2"]
    np.testing.assert_array_equal(by["templated"].vectors[1], data["templated"]["p1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_analysis_dataset(s, ["biography", "templated"])
    assert ds.persona_ids == ("p0", "p1", "p2")
    assert ds.persona_names == {"p0": "Name 0", "p1": "Name 1", "p2": "Name 2"}
    assert ds.layers == tuple(range(L)) and ds.variants == ("biography", "templated")
    np.testing.assert_array_equal(ds.samples("biography").vectors[0], data["biography"]["p0"])
    with pytest.raises(KeyError, match="Variant 'x' is not loaded"):
        ds.samples("x")
    with pytest.raises(ValueError, match="At least one variant is required"):
        load_variant_vectors(s, [])


def test_parquet_roundtrip(ref_store, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    root, data = ref_store
    s = PersonaVectorStore(MODEL, root=root)
    files = export_parquet(s, tmp_path / "hub", ["biography"])
    assert files == [tmp_path / "hub" / "google__gemma-2-9b-it__answer_mean" / "biography-00000-of-00001.parquet"]
    t = pq.read_table(files[0])
    assert t.column_names == ["persona_id", "name", "sample_ids", "vector"]
    assert t.column("persona_id").to_pylist() == ["p0", "p1", "p2", "p3"]
    assert t.schema.field("vector").type == pa.list_(pa.list_(pa.float32()))
    np.testing.assert_array_equal(np.array(t.column("vector")[1].as_py(), np.float32), data["biography"]["p1"])
    assert b"Array2D" in t.schema.metadata[b"huggingface"]
    q = ParquetPersonaStore(tmp_path / "hub", MODEL)
    assert q.available_variants() == ["biography"]
    assert q.persona_names(["p1"]) == {"p1": "Name 1"}
    samples = load_persona_vectors(q, "biography")
    np.testing.assert_array_equal(samples.vectors[3], data["biography"]["p3"])
    back = q.to_store(tmp_path / "copy")
    np.testing.assert_array_equal(back.load("biography", "p2"), data["biography"]["p2"])
    assert back.sample_ids("biography", "p2") == ["p2-q1", "p2-q2"]
    with pytest.raises(FileNotFoundError, match="unknown variant 'templated'"):
        q.load("templated", "p0")


def test_parquet_written_like_the_hub(tmp_path):
    """A split as `datasets` stores it (nested lists), written with pyarrow directly."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((3, L, H)).astype(np.float32)
    table = pa.table(
        {
            "persona_id": ["x", "y", "z"],
            "name": ["X", "Y", "Z"],
            "sample_ids": [["1"], [], ["2", "3"]],
            "vector": [v.tolist() for v in vecs],
        }
    )
    d = tmp_path / "google__gemma-2-9b-it__answer_mean"
    d.mkdir()
    pq.write_table(table, d / "templated-00000-of-00001.parquet")
    q = ParquetPersonaStore(d, MODEL)
    np.testing.assert_allclose(q.load("templated", "y"), vecs[1])
    assert q.list_layers(["templated"]) == list(range(L))
    assert q.sample_ids("templated", "z") == ["2", "3"]
