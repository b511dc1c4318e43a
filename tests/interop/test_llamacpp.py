"""llama.cpp (its ``llama-completion``, built from the sources llama-cpp-python 0.3.36 vendors) steers the
packaged SmolLM2 with our control vectors token for token as ``GGUFBackend`` does.

Both run the same weights: an F32 export of the packaged Q4_1 file (every tensor dequantised, metadata
copied), because quantised matrix products round differently and flip greedy choices at near-ties.
Several prompts, scales and ``--control-vector-layer-range``s; files llama.cpp applies that differ from
the model (a subset of layers, directions past the last block, another layer_count) are applied the same
way by both; a file llama.cpp refuses (``direction.0``) is refused here too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from latentatlas.lm.backends import GGUFBackend
from latentatlas.lm.control_vector import write_control_vector
from latentatlas.lm.gguf import default_gguf_path

ROOT = Path(__file__).resolve().parents[2]
LLAMA = ROOT / ".peers" / "llama.cpp" / "llama-completion"
PROMPTS = ["The capital of France is", "Once upon a time, a small robot", "My favourite food is"]
N_NEW = 12


def _export_f32(src: Path, dst: Path) -> Path:
    """The same model with every tensor dequantised to F32 (metadata and tensor order unchanged)."""
    import gguf

    reader = gguf.GGUFReader(src)
    arch = str(bytes(reader.fields["general.architecture"].parts[-1]), "utf-8")
    writer = gguf.GGUFWriter(dst, arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_array(name, field.contents())
        else:
            writer.add_key_value(name, field.contents(), vtype)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for t in reader.tensors:
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        writer.add_tensor(
            t.name, data.reshape(tuple(int(d) for d in reversed(t.shape))), raw_dtype=gguf.GGMLQuantizationType.F32
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    if not LLAMA.is_file():
        pytest.fail(f"{LLAMA} is missing: run `make peers` (it builds llama-completion)")
    return _export_f32(default_gguf_path(), tmp_path_factory.mktemp("f32") / "smollm2-f32.gguf")


@pytest.fixture(scope="module")
def backend(model) -> GGUFBackend:
    return GGUFBackend(model, threads=2)


def _llama(model: Path, prompt: str, *extra: str, stderr: list[str] | None = None) -> str:
    cmd = [
        str(LLAMA), "-m", str(model), "-p", prompt, "-n", str(N_NEW), "--temp", "0", "--seed", "0",
        "-no-cnv", "--no-warmup", "-t", "2", "-c", "256", "--no-display-prompt", *extra,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"llama-completion failed ({proc.returncode}): {proc.stderr[-2000:]}")
    if stderr is not None:
        stderr.append(proc.stderr)
    # llama-completion marks an end-of-generation token in its text; GGUFBackend stops there too
    return proc.stdout.rstrip().removesuffix("[end of text]").rstrip()


def _ours(backend: GGUFBackend, prompt: str, cv=None, scale: float = 1.0) -> str:
    ids = [backend.bos_id] if backend.bos_id is not None else []
    out, _ = backend.generate_ids([ids + backend.encode(prompt)], N_NEW, control_vector=cv, scale=scale)
    return backend.decode(out[0])


def _direction(backend: GGUFBackend, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((backend.num_layers, backend.hidden_size)).astype(np.float32)
    d[0] = 0.0
    return d / np.linalg.norm(d, axis=1, keepdims=True).clip(1e-6) * 4.0


def test_unsteered_greedy_continuations_agree(model, backend):
    for p in PROMPTS:
        assert _llama(model, p).strip() == _ours(backend, p).strip(), p


@pytest.mark.parametrize("scale", [-1.0, 0.5, 1.5])
def test_steered_continuations_agree(model, backend, tmp_path, scale):
    d = _direction(backend, seed=1)
    cv = write_control_vector(d, tmp_path / "cv.gguf")
    steered = [_ours(backend, p, cv, scale) for p in PROMPTS]
    assert steered != [_ours(backend, p) for p in PROMPTS]  # the vector really steers
    for p, want in zip(PROMPTS, steered):
        assert _llama(model, p, "--control-vector-scaled", f"{cv}:{scale}").strip() == want.strip(), p


@pytest.mark.parametrize("lo, hi", [(1, 6), (10, 20)])
def test_layer_range_agrees(model, backend, tmp_path, lo, hi):
    d = _direction(backend, seed=2)
    cv = write_control_vector(d, tmp_path / "cv.gguf")
    ranged = d.copy()
    ranged[:lo] = 0.0
    ranged[hi + 1 :] = 0.0  # llama.cpp's range is inclusive
    p = PROMPTS[1]
    got = _llama(model, p, "--control-vector-scaled", f"{cv}:1", "--control-vector-layer-range", str(lo), str(hi))
    assert got.strip() == _ours(backend, p, ranged).strip()


def _raw_cv(path: Path, directions: dict[int, np.ndarray], layer_count: int) -> Path:
    """A control-vector file as other tools write them: any set of direction.N, any layer_count."""
    import gguf

    w = gguf.GGUFWriter(path, "controlvector")
    w.add_string("controlvector.model_hint", "llama")
    w.add_uint32("controlvector.layer_count", layer_count)
    for n, v in sorted(directions.items()):
        w.add_tensor(f"direction.{n}", v.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_files_llama_cpp_applies_are_applied_the_same_way(model, backend, tmp_path):
    """A subset of layers (repeng style), directions past the model's last block, another layer_count."""
    d = _direction(backend, seed=3)
    L = backend.num_layers
    files = {
        "subset": _raw_cv(tmp_path / "subset.gguf", {n: d[n] for n in (3, 4, 5, 9)}, 4),
        "past the model": _raw_cv(tmp_path / "past.gguf", {n: d[n % L] for n in range(1, L + 4)}, L + 3),
        "layer_count lies": _raw_cv(tmp_path / "count.gguf", {n: d[n] for n in range(1, 8)}, 99),
    }
    p = PROMPTS[0]
    for name, f in files.items():
        assert _llama(model, p, "--control-vector-scaled", f"{f}:1").strip() == _ours(backend, p, f).strip(), name


def test_direction_zero_is_refused_by_both(model, backend, tmp_path):
    d = _direction(backend, seed=4)
    bad = _raw_cv(tmp_path / "zero.gguf", {0: d[1], 1: d[1]}, 2)
    with pytest.raises(ValueError, match=r"direction\.0"):
        _ours(backend, PROMPTS[0], bad)
    # llama.cpp rejects the file (common_control_vector_load_one: "invalid (zero) direction tensor layer
    # index") and skips it: the continuation is the unsteered one
    log: list[str] = []
    got = _llama(model, PROMPTS[0], "--control-vector", str(bad), stderr=log)
    assert f"skipping {bad}" in log[0] and "invalid" in log[0]
    assert got == _llama(model, PROMPTS[0])
