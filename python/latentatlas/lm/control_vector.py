"""llama.cpp control vectors: per-layer steering directions in a GGUF file, written, read and applied.

The file (what llama.cpp's ``--control-vector FILE`` / ``--control-vector-scaled FILE:SCALE`` loads,
and what its ``cvector-generator`` and repeng write):

- metadata ``general.architecture = "controlvector"``, ``controlvector.model_hint`` (the model's
  architecture, e.g. ``"llama"``) and ``controlvector.layer_count`` (the number of direction
  tensors; llama.cpp itself reads neither key);
- one float32 1-D tensor ``direction.<N>`` of ``n_embd`` values per steered layer, ``N >= 1``.

**Layer numbering** (checked against llama.cpp's source, ggml-org/llama.cpp):
``common_control_vector_load_one`` (common/common.cpp) rejects ``direction.0`` (the whole file is
then skipped) and stores ``direction.N`` at offset ``(N - 1) * n_embd`` of a flat buffer;
``llama_adapter_cvec::apply`` (src/llama-adapter.cpp) fills ``tensors[il]`` from offset
``(il - 1) * n_embd`` for ``il = 1 .. n_layer - 1`` (``tensors[0]`` is always null); and every model
graph calls ``build_cvec(cur, il)`` on the output of 0-based block ``il`` (after the feed-forward
residual add, before it feeds block ``il + 1``). So ``direction.N`` is added, times the scale, to
the residual stream after block ``N`` at every token position; block 0 can never be steered and a
``direction.N`` with ``N >= n_layer`` is ignored by llama.cpp.

Here directions are arrays of shape ``(n_layers, hidden)`` indexed like the hidden states of
:mod:`latentatlas.lm.llama` and the persona store (``transformers``' ``hidden_states[1:]``): row
``l`` is added after 0-based block ``l``, i.e. row ``l`` is ``direction.l``, and row 0 must be zero.
:func:`write_control_vector` writes ``direction.1 .. direction.(n_layers - 1)`` (zero rows too, as
llama.cpp's ``cvector-generator`` does) with ``layer_count = n_layers - 1``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes
from .._optional import import_optional
from .._validate import check_float
from .gguf import open_gguf

__all__ = ["ARCHITECTURE", "ControlVector", "as_control_vector", "read_control_vector", "write_control_vector"]

ARCHITECTURE = "controlvector"
_HINT_KEY = f"{ARCHITECTURE}.model_hint"
_COUNT_KEY = f"{ARCHITECTURE}.layer_count"
_NAME = re.compile(r"direction\.(\d+)")


def _directions(directions: Any, name: str = "directions") -> np.ndarray:
    """``directions`` as a finite float32 (n_layers >= 2, hidden >= 1) array whose row 0 is zero."""
    arr = np.asarray(directions)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n_layers >= 2, hidden >= 1), got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity (or values beyond float32)")
    if np.any(arr[0]):
        raise ValueError(
            f"{name}[0] must be zero: llama.cpp never adds a control vector after block 0 "
            "(its loader rejects direction.0); zero that row or choose layers >= 1"
        )
    return arr


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: compare .directions yourself
class ControlVector:
    """Steering directions in llama.cpp's layer numbering.

    Attributes
    ----------
    directions : ndarray, shape (n_layers, hidden), float32
        Row ``l`` is added (times the scale) to the residual stream after 0-based block ``l``;
        row 0 is zero (llama.cpp cannot steer block 0).
    model_hint : str
        The model architecture the vector was made for (``controlvector.model_hint``).
    path : Path or None
        The file it was read from.
    """

    directions: np.ndarray
    model_hint: str = "llama"
    path: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "directions", _directions(self.directions))

    @property
    def n_layers(self) -> int:
        return int(self.directions.shape[0])

    @property
    def hidden_size(self) -> int:
        return int(self.directions.shape[1])

    def for_model(self, num_layers: int, hidden_size: int) -> ControlVector:
        """The vector as llama.cpp applies it to a model of ``num_layers`` blocks: only the hidden size
        must match (ValueError naming both); layers the file leaves out are zero and directions past
        the model's last block are ignored (``llama_adapter_cvec::apply`` reads ``direction.1`` ..
        ``direction.(n_layer - 1)``), whatever ``controlvector.layer_count`` says."""
        where = f" ({self.path})" if self.path is not None else ""
        if self.hidden_size != hidden_size:
            raise ValueError(
                f"control vector{where} has hidden size {self.hidden_size} but the model has hidden size {hidden_size}"
            )
        if self.n_layers == num_layers:
            return self
        rows = np.zeros((num_layers, hidden_size), np.float32)
        keep = min(num_layers, self.n_layers)
        rows[:keep] = self.directions[:keep]
        return ControlVector(rows, self.model_hint, self.path)

    def hook(self, scale: float = 1.0) -> Callable[[int, np.ndarray], np.ndarray]:
        """A residual-stream hook ``(layer, h) -> h`` adding ``scale * directions[layer]`` as llama.cpp does.

        ``h`` has shape (tokens, hidden): every position gets the same vector, prompt tokens included.
        """
        s = check_float(scale, "scale")
        rows = (np.float32(s) * self.directions).astype(np.float32)
        active = np.flatnonzero(np.any(rows != 0, axis=1))
        steered = frozenset(int(i) for i in active)

        def add(layer: int, h: np.ndarray) -> np.ndarray:
            return h + rows[layer] if layer in steered else h

        return add


def as_control_vector(control_vector: Any, *, model_hint: str = "llama") -> ControlVector:
    """A :class:`ControlVector` from itself, a ``.gguf`` path or an array of shape (n_layers, hidden)."""
    if isinstance(control_vector, ControlVector):
        return control_vector
    if isinstance(control_vector, (str, os.PathLike)):
        return read_control_vector(control_vector)
    return ControlVector(_directions(control_vector, "control_vector"), model_hint)


def write_control_vector(directions: Any, path: str | os.PathLike[str], *, model_hint: str = "llama") -> Path:
    """Write a llama.cpp control-vector GGUF file (atomically: temporary file, fsync, rename).

    Parameters
    ----------
    directions : array-like of shape (n_layers, hidden), or ControlVector
        Row ``l`` is steered after 0-based block ``l`` (written as ``direction.l``); row 0 must be
        zero. ``n_layers`` is the model's number of blocks.
    path : str or PathLike
        The ``.gguf`` file to write (its folder is created).
    model_hint : str
        ``controlvector.model_hint``: the model's ``general.architecture`` (``"llama"`` for SmolLM2).
        Ignored when ``directions`` is a ControlVector (its own hint is written).

    Returns
    -------
    Path
    """
    if isinstance(directions, ControlVector):
        cv = directions
    else:
        if not isinstance(model_hint, str) or not model_hint:
            raise ValueError(f"model_hint must be a non-empty string, got {model_hint!r}")
        cv = ControlVector(_directions(directions), model_hint)
    gguf = import_optional("gguf", feature="writing control vectors")
    path = Path(path)
    writer = gguf.GGUFWriter(None, ARCHITECTURE)  # sets general.architecture
    writer.add_string(_HINT_KEY, cv.model_hint)
    writer.add_int32(_COUNT_KEY, cv.n_layers - 1)  # int32, as llama.cpp's cvector-generator writes it
    for n in range(1, cv.n_layers):
        writer.add_tensor(f"direction.{n}", cv.directions[n])
    # GGUFWriter writes to a path of its own; stage there, then publish the bytes atomically
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "cv.gguf"
        writer.write_header_to_file(staged)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        data = staged.read_bytes()
    return atomic_write_bytes(path, data)


def read_control_vector(path: str | os.PathLike[str]) -> ControlVector:
    """Read a llama.cpp control-vector GGUF file (ours, llama.cpp's cvector-generator's or repeng's).

    Directions that the file leaves out (e.g. a file that steers only some layers) are zero.
    ``n_layers`` is ``max(layer_count, largest N) + 1``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a GGUF file, ``general.architecture`` is not ``"controlvector"``, a metadata key is
        missing or of the wrong type, or a tensor is not a float32 1-D ``direction.<N>`` (N >= 1)
        of the common size, or holds NaN/infinity. The message names the file and the key/tensor.
    """
    gguf = import_optional("gguf", feature="reading control vectors")
    path = Path(path)
    reader = open_gguf(path, "control vector file")

    def field(key: str, types: tuple[type, ...]) -> Any:
        f = reader.fields.get(key)
        if f is None:
            raise ValueError(f"{path}: metadata key {key} is missing")
        value = f.contents()
        if isinstance(value, bool) or not isinstance(value, types):
            raise ValueError(f"{path}: metadata key {key} has type {type(value).__name__}")
        return value

    arch = field("general.architecture", (str,))
    if arch != ARCHITECTURE:
        raise ValueError(f"{path}: general.architecture is {arch!r}, not {ARCHITECTURE!r}: not a control vector")
    hint = field(_HINT_KEY, (str,))
    count = int(field(_COUNT_KEY, (int, np.integer)))
    if count < 0:
        raise ValueError(f"{path}: metadata key {_COUNT_KEY} is negative ({count})")
    found: dict[int, np.ndarray] = {}
    for t in reader.tensors:
        m = _NAME.fullmatch(t.name)
        if m is None or int(m.group(1)) == 0:
            raise ValueError(f"{path}: tensor {t.name!r} is not a direction.<N> with N >= 1 (llama.cpp rejects it)")
        if t.tensor_type != gguf.GGMLQuantizationType.F32:
            raise ValueError(f"{path}: tensor {t.name} is {t.tensor_type.name}, not F32")
        if len(t.shape) != 1:
            raise ValueError(f"{path}: tensor {t.name} is not 1-D (shape {tuple(int(d) for d in t.shape)})")
        found[int(m.group(1))] = np.asarray(t.data, dtype=np.float32).reshape(-1)
    if not found:
        raise ValueError(f"{path}: no direction tensors")
    sizes = {v.size for v in found.values()}
    if len(sizes) != 1:
        raise ValueError(f"{path}: direction tensors have different sizes {sorted(sizes)}")
    hidden = sizes.pop()
    n_layers = max(count, max(found)) + 1
    directions = np.zeros((n_layers, hidden), np.float32)
    for n, v in found.items():
        if not np.isfinite(v).all():
            raise ValueError(f"{path}: tensor direction.{n} contains NaN or infinity")
        directions[n] = v
    return ControlVector(directions, hint, path)
