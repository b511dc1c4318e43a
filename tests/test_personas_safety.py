"""Persona stores under hostile input: no path escapes the root, bad data is a clean error naming the
file, and a save killed at any moment leaves the complete old or the complete new variant."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from latentatlas import cli
from latentatlas.personas import (
    HFPersonaVectorStore,
    ParquetPersonaStore,
    PersonaVectorStore,
    build_layered_figure,
    export_parquet,
    layered_pca,
    load_persona_vectors,
    pca_explained_variance,
    project_pca,
)

L, H = 3, 4
BAD_NAMES = ["..", "../x", "../../../secret", "a/b", "/abs", "?", "*", "[ab]", ".hidden", "", "a\x00b", "a\\b"]


def plant(dirpath: Path, pid: str = "p", value: float = 666.0) -> None:
    """A valid variant (manifest + one tensor) somewhere a store must never read."""
    dirpath.mkdir(parents=True, exist_ok=True)
    save_file({"activations": np.full((L, H), value, np.float32)}, str(dirpath / f"{pid}.safetensors"))
    manifest = {"num_layers": L, "hidden_size": H, "personas": {pid: {"name": "planted", "sample_ids": []}}}
    (dirpath / "manifest.json").write_text(json.dumps(manifest))


def snapshot(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.fixture()
def layout(tmp_path):
    """root/ holds a good store; planted variants sit one, two and three levels above what a name could reach."""
    root = tmp_path / "a" / "b" / "root"
    good = PersonaVectorStore("org/model", root)
    good.save("biography", "p0", "P0", np.ones((L, H), np.float32))
    for d in (tmp_path / "a" / "b" / "answer_mean" / "biography", tmp_path / "a" / "secret", tmp_path / "secret"):
        plant(d)
    return tmp_path, root


def test_model_name_dotdot_is_rejected_before_any_io(layout):
    tmp, root = layout
    before = snapshot(tmp)
    for bad in ("..", ".", "../..", ".x", "a*b", "a\\b", "a b"):
        with pytest.raises(ValueError, match="model_name .* is not a safe file name"):
            PersonaVectorStore(bad, root)
    # "org/model" is legitimate: it maps to one component, org__model
    assert (
        PersonaVectorStore("org/model", root).variant_dir("biography")
        == root / "org__model" / "answer_mean" / "biography"
    )
    assert snapshot(tmp) == before


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_every_store_entry_point_rejects_unsafe_names(layout, bad):
    tmp, root = layout
    s = PersonaVectorStore("org/model", root)
    before = snapshot(tmp)
    vec = np.zeros((L, H), np.float32)
    calls = {
        "save variant": lambda: s.save(bad, "p1", "x", vec),
        "save persona": lambda: s.save("biography", bad, "x", vec),
        "save mask": lambda: s.save("biography", "p1", "x", vec, [], bad),
        "load variant": lambda: s.load(bad, "p0"),
        "load persona": lambda: s.load("biography", bad),
        "load mask": lambda: s.load("biography", "p0", bad),
        "list_personas": lambda: s.list_personas([bad]),
        "list_personas mask": lambda: s.list_personas(["biography"], bad),
        "persona_names": lambda: s.persona_names(["p0"], [bad]),
        "list_layers": lambda: s.list_layers([bad]),
        "available_variants": lambda: s.available_variants([bad]),
        "persona_sample_ids": lambda: s.persona_sample_ids(bad, "p0"),
        "sample_ids": lambda: s.sample_ids(bad, "p0"),
        "shape": lambda: s.shape(bad),
        "manifest": lambda: s.manifest(bad),
        "tensor_path": lambda: s.tensor_path("biography", bad),
        "constructor mask": lambda: PersonaVectorStore("org/model", root, bad),
        "constructor variants": lambda: PersonaVectorStore("org/model", root, variants=[bad]),
        "loader": lambda: load_persona_vectors(s, bad),
    }
    for what, call in calls.items():
        with pytest.raises((ValueError, TypeError)):
            call()
            pytest.fail(f"{what} accepted {bad!r}")
    assert snapshot(tmp) == before


def test_symlinks_and_manifest_keys_cannot_lead_outside(layout):
    tmp, root = layout
    os.symlink(tmp / "a" / "b" / "answer_mean", root / "org__model" / "evil_mask")
    s = PersonaVectorStore("org/model", root)
    with pytest.raises(ValueError, match="outside"):
        s.load("biography", "p", "evil_mask")
    with pytest.raises(ValueError, match="outside"):
        s.save("biography", "p", "x", np.zeros((L, H), np.float32), [], "evil_mask")
    # a manifest that names a persona id with a path in it
    mpath = s.variant_dir("biography") / "manifest.json"
    m = json.loads(mpath.read_text())
    m["personas"]["../../../../secret/p"] = {"name": "x", "sample_ids": []}
    mpath.write_text(json.dumps(m))
    with pytest.raises(ValueError, match="not a safe file name"):
        s.load("biography", "../../../../secret/p")
    assert float(s.load("biography", "p0")[0, 0]) == 1.0


def test_parquet_variant_names_are_checked(tmp_path):
    pytest.importorskip("pyarrow")
    src = PersonaVectorStore("org/model", tmp_path / "src", variants=None)
    for variant, value in (("a", 1.0), ("b", 2.0)):
        src.save(variant, "p0", "P0", np.full((L, H), value, np.float32))
    hub = tmp_path / "deep" / "deeper" / "hub"
    export_parquet(src, hub)
    config = hub / "org__model__answer_mean"
    (tmp_path / "secret-00000-of-00001.parquet").write_bytes((config / "a-00000-of-00001.parquet").read_bytes())
    q = ParquetPersonaStore(hub, "org/model")
    assert q.available_variants() == ["a", "b"]
    for bad in ("../../../secret", "?", "*", "[ab]", ".."):
        with pytest.raises(ValueError, match="variant .* is not a safe file name"):
            q.load(bad, "p0")
        with pytest.raises(ValueError, match="variant .* is not a safe file name"):
            q.list_personas([bad])
        with pytest.raises(ValueError, match="variant .* is not a safe file name"):
            q.persona_names(["p0"], [bad])
    # Not an existing folder, so it is read as a Hub repo id, whose cache path must stay inside the cache.
    # (The name must not exist from any working directory: "../../etc" is /etc from a checkout two deep.)
    with pytest.raises(ValueError, match="is not a safe file name"):
        HFPersonaVectorStore(f"../../no-such-dir-{tmp_path.name}", "org/model").available_variants()
    assert float(q.load("b", "p0")[0, 0]) == 2.0 and q.list_personas(["a"]) == ["p0"]


def test_cli_variant_cannot_write_outside_out(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    src = PersonaVectorStore("org/model", tmp_path / "src", variants=None)
    for i in range(4):
        src.save("biography", f"p{i}", f"P{i}", np.random.default_rng(i).standard_normal((L, H)).astype(np.float32))
    export_parquet(src, tmp_path / "d1" / "d2" / "hub")
    out = tmp_path / "d1" / "d2" / "hub" / "out"
    before = snapshot(tmp_path)
    for variant in ("../../../secret", "?", "../biography"):
        for store_args in (["--parquet", str(tmp_path / "d1" / "d2" / "hub")], ["--root", str(tmp_path / "src")]):
            rc = cli.main(
                [
                    "personas",
                    "analyze",
                    "--model",
                    "org/model",
                    "--variant",
                    variant,
                    "--out",
                    str(out),
                    *store_args,
                    "--quiet",
                ]
            )
            assert rc != 0
            assert "variant" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_non_finite_tensor_is_reported_with_its_file(tmp_path):
    s = PersonaVectorStore("org/model", tmp_path)
    s.save("biography", "p0", "P0", np.ones((L, H), np.float32))
    s.save("biography", "p1", "P1", np.ones((L, H), np.float32))
    bad = np.ones((L, H), np.float32)
    bad[1, 2] = np.nan
    bad[0, 0] = np.inf
    save_file({"activations": bad}, str(s.tensor_path("biography", "p1")))
    with pytest.raises(ValueError, match=r"p1\.safetensors holds 2 non-finite value"):
        s.load("biography", "p1")
    with pytest.raises(ValueError, match=r"p1\.safetensors holds 2 non-finite"):
        load_persona_vectors(s, "biography")


def test_non_finite_parquet_vector_is_reported_with_its_file(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    d = tmp_path / "org__model__answer_mean"
    d.mkdir()
    vec = np.ones((L, H), np.float32)
    vec[2, 1] = np.inf
    table = pa.table({"persona_id": ["a"], "name": ["A"], "vector": [vec.tolist()]})
    pq.write_table(table, d / "biography-00000-of-00001.parquet")
    with pytest.raises(ValueError, match=r"biography-00000-of-00001\.parquet holds non-finite"):
        ParquetPersonaStore(tmp_path, "org/model").load("biography", "a")


@pytest.mark.parametrize("entry", [None, 3, "name", [1, 2]])
def test_manifest_entry_not_an_object_is_a_clean_error(tmp_path, entry):
    s = PersonaVectorStore("org/model", tmp_path)
    s.save("biography", "p0", "P0", np.ones((L, H), np.float32))
    mpath = s.variant_dir("biography") / "manifest.json"
    m = json.loads(mpath.read_text())
    m["personas"]["p1"] = entry
    mpath.write_text(json.dumps(m))
    fresh = PersonaVectorStore("org/model", tmp_path)
    for call in (
        lambda: fresh.persona_names(["p0", "p1"], ["biography"]),
        lambda: fresh.list_personas(["biography"]),
        lambda: fresh.load("biography", "p0"),
        lambda: fresh.persona_sample_ids("biography", "p1"),
        lambda: load_persona_vectors(fresh, "biography"),
    ):
        with pytest.raises(ValueError, match=r"manifest .*manifest\.json: the entry of persona 'p1' must be an object"):
            call()


def test_pca_of_non_finite_vectors_is_a_clean_error():
    x = np.random.default_rng(0).standard_normal((6, 3, 8)).astype(np.float32)
    x[2, 1, 3] = np.nan
    for call in (
        lambda: project_pca(x[:, 1, :]),
        lambda: pca_explained_variance(x[:, 1, :]),
        lambda: layered_pca(x),
        lambda: build_layered_figure(x, "pca"),
        lambda: build_layered_figure(x, "similarity"),
    ):
        with pytest.raises(ValueError, match="NaN or infinity"):
            call()
    layered_pca(x, [0, 2])  # the finite layers still work


# ------------------------------------------------------------------------ crash consistency

ROUNDS = 4  # each round: two writers racing on one variant, both killed mid-loop
WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from latentatlas.personas.store import PersonaVectorStore
    root, tag = sys.argv[1], sys.argv[2]
    s = PersonaVectorStore("org/model", root, variants=None)
    for i in range(10**6):
        # the name records the version the tensor holds: a consistent variant has them agree
        for pid in ("shared", f"own_{tag}_{i % 5}"):
            s.save("biography", pid, f"v{i}", np.full((3, 4), float(i), np.float32), [f"q{i}"])
        if i == 0:
            print("ready", flush=True)
    """
)


def check_consistent(root: Path) -> dict[str, str]:
    s = PersonaVectorStore("org/model", root, variants=None, array_type="numpy")
    names = s.persona_names(None, ["biography"])
    for pid, name in names.items():
        version = float(name[1:])
        np.testing.assert_array_equal(s.load("biography", pid), np.full((L, H), version, np.float32))
        assert s.persona_sample_ids("biography", pid) == [f"q{int(version)}"]
    assert not (s.variant_dir("biography") / ".commit.json").exists()  # the reader finished a committed save
    return names


def test_sigkill_during_saves_leaves_old_or_new(tmp_path):
    """Writers killed at random moments (many mid-save): every reload is a complete, consistent variant."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = np.random.default_rng(0)
    seen: set[str] = set()
    for round_ in range(ROUNDS):
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(tmp_path), f"{round_}{k}"],
                stdout=subprocess.PIPE,
                env=env,
            )
            for k in range(2)
        ]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.0, 0.15)))
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
        for p in procs:
            p.wait()
            assert p.stdout is not None
            p.stdout.close()
        seen |= set(check_consistent(tmp_path))
    # the next save removes what interrupted saves staged
    PersonaVectorStore("org/model", tmp_path, variants=None).save("biography", "last", "v0", np.zeros((L, H)), ["q0"])
    assert not [p.name for p in (tmp_path / "org__model" / "answer_mean" / "biography").iterdir() if p.suffix == ".tmp"]
    # concurrent writers lost no entry: every writer's first personas are there
    for round_ in range(ROUNDS):
        for k in range(2):
            assert f"own_{round_}{k}_0" in seen


def test_discovered_variants_skip_unsafe_folders(layout):
    _, root = layout
    base = root / "org__model" / "answer_mean"
    for odd in (".hidden", "a b", "x*"):
        plant(base / odd)
    assert PersonaVectorStore("org/model", root, variants=None).available_variants() == ["biography"]
