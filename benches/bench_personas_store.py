"""Persona store writes: the crash-consistent journaled save vs the original's plain writes, same run.

- plain (what persona-vectors does): ``safetensors.save_file`` of the tensor, then ``manifest.json``
  rewritten in place — no temporary files, no fsync, so a crash can leave either half-written.
- latentatlas: tensor and manifest staged and fsynced, a journal renamed into place (the commit
  point, fsynced), then both renamed — the variant is the complete old or new version after SIGKILL
  or power loss, and a lock keeps concurrent writers' entries. Loading is timed too.

Run::

    .venv/bin/python -m pytest benches/bench_personas_store.py --benchmark-only -q
    .venv/bin/python benches/bench_personas_store.py          # the README line

Sizes: PERSONAS_STORE_N / _L / _H (default 100 / 42 / 3584: Gemma-2-9B-sized vectors).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from latentatlas.personas.analysis import load_persona_vectors
from latentatlas.personas.store import PersonaVectorStore

N = int(os.environ.get("PERSONAS_STORE_N", 100))
L = int(os.environ.get("PERSONAS_STORE_L", 42))
H = int(os.environ.get("PERSONAS_STORE_H", 3584))


def vectors() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((N, L, H)).astype(np.float32)


def save_journaled(root: Path, v: np.ndarray) -> PersonaVectorStore:
    store = PersonaVectorStore("org/model", root, array_type="numpy")
    for i, x in enumerate(v):
        store.save("biography", f"p{i:04d}", f"P{i}", x, ["q"])
    return store


def save_plain(root: Path, v: np.ndarray) -> None:
    vdir = root / "org__model" / "answer_mean" / "biography"
    vdir.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"num_layers": L, "hidden_size": H, "personas": {}}
    for i, x in enumerate(v):
        save_file({"activations": x}, str(vdir / f"p{i:04d}.safetensors"))
        manifest["personas"][f"p{i:04d}"] = {"name": f"P{i}", "sample_ids": ["q"]}
        (vdir / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return vectors()


def test_bench_plain_writes(benchmark, data, tmp_path):
    benchmark.pedantic(lambda: save_plain(Path(tempfile.mkdtemp(dir=tmp_path)), data), rounds=2)


def test_bench_journaled_saves(benchmark, data, tmp_path):
    benchmark.pedantic(lambda: save_journaled(Path(tempfile.mkdtemp(dir=tmp_path)), data), rounds=2)


def main() -> None:
    v = vectors()
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/tmp")) as d:
        t = time.perf_counter()
        save_plain(Path(d) / "plain", v)
        plain = time.perf_counter() - t
        t = time.perf_counter()
        store = save_journaled(Path(d) / "la", v)
        journaled = time.perf_counter() - t
        t = time.perf_counter()
        samples = load_persona_vectors(store, "biography")
        load = time.perf_counter() - t
        np.testing.assert_array_equal(samples.vectors, v)
    print(
        f"{N} saves of ({L}, {H}) float32: plain {plain / N * 1e3:.1f} ms each, "
        f"journaled {journaled / N * 1e3:.1f} ms each ({journaled / plain:.1f}x); load all {load:.2f} s"
    )


if __name__ == "__main__":
    main()
