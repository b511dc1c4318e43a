"""Steering vectors from persona vectors, exported as llama.cpp control vectors.

A direction per layer is built from a persona store, then written as a llama.cpp control-vector
GGUF (:func:`write_control_vector`, re-exported from :mod:`latentatlas.lm.control_vector`) that
``llama-completion -m model.gguf --control-vector-scaled cv.gguf:2`` and the packaged NumPy backend
(``GGUFBackend.generate(..., control_vector="cv.gguf", scale=2)``) both apply:

- :func:`mean_difference_directions`: mean persona vector of one group minus that of another
  (e.g. an attribute's two values, picked with :func:`attribute_groups`);
- :func:`pca_directions`: the first principal axis of the personas' vectors at each layer of a
  range, sign-aligned across layers, in units of one standard deviation of the personas along it.

**Layers.** Store vectors follow ``transformers``' ``hidden_states[1:]``: row ``l`` is the output
of 0-based block ``l``. llama.cpp adds ``direction.l`` after that same block (see
:mod:`latentatlas.lm.control_vector`), so row ``l`` of a direction array becomes ``direction.l``
with no shift. Row 0 stays zero (llama.cpp never steers block 0). By default only a middle band
of blocks is steered (:func:`default_layers`); avoid the last row: the store records the last
block's output after the model's final RMSNorm, a different scale from the residual stream the
vector is added to.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_text, read_safetensors, write_safetensors
from .._optional import to_numpy
from ..lm.control_vector import ControlVector, read_control_vector, write_control_vector
from ._arrays import as_array_type
from .store import PersonaVectorStore

__all__ = [
    "STEER_LAYER",
    "ControlVector",
    "PersonaVectorStore",
    "attribute_groups",
    "compute_steering_vector",
    "load_steering_vector",
    "save_steering_vector",
    "default_layers",
    "mean_difference_directions",
    "pca_directions",
    "read_control_vector",
    "write_control_vector",
]

#: persona-vectors' default layer of a one-layer steering vector.
STEER_LAYER = 20


def default_layers(num_layers: int) -> list[int]:
    """The middle band of blocks ``num_layers // 5 .. num_layers // 2`` (6 .. 15 of SmolLM2's 30).

    Why a band: each steered block adds the whole direction again, so steering every block
    multiplies the push by the number of blocks. Measured on SmolLM2-135M (cheerful minus grumpy
    personas): scale +-1 on blocks 6 .. 15 gives fluent, clearly shifted answers; scale 2 on
    blocks 1 .. 28 gives one repeated token.
    """
    return list(range(max(1, num_layers // 5), max(2, num_layers // 2 + 1)))


def _layers(layers: Sequence[int] | None, num_layers: int) -> list[int]:
    if layers is None:
        chosen = default_layers(num_layers)
    else:
        chosen = sorted({int(x) for x in layers})
        bad = [x for x in chosen if not 1 <= x < num_layers]
        if bad:
            raise ValueError(f"layers must lie in [1, {num_layers - 1}] (llama.cpp never steers block 0), got {bad}")
    if not chosen:
        raise ValueError(f"no layer to steer in a model with {num_layers} layers")
    return chosen


def _ids(ids: Any, name: str) -> list[str]:
    if isinstance(ids, str):
        ids = [ids]
    out = [str(i) for i in ids]
    if not out:
        raise ValueError(f"{name} is empty: a group needs at least one persona")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} lists a persona twice")
    return out


def _load(store: Any, variant: str, ids: list[str], mask_strategy: object | None) -> np.ndarray:
    """(n, num_layers, hidden) float64 vectors of ``ids`` (a missing one is FileNotFoundError)."""
    return np.stack([np.asarray(store.load_numpy(variant, i, mask_strategy), np.float64) for i in ids])


def mean_difference_directions(
    store: Any,
    variant: str,
    positive: Sequence[str],
    negative: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    mask_strategy: object | None = None,
) -> np.ndarray:
    """Per-layer mean persona vector of ``positive`` minus that of ``negative``.

    Parameters
    ----------
    store : PersonaVectorStore (or ParquetPersonaStore)
    variant : str
    positive, negative : sequence of str
        Persona ids of the two groups (disjoint, each non-empty).
    layers : sequence of int, optional
        Rows kept (1 .. num_layers - 1); the others are zero. Default :func:`default_layers`.
    mask_strategy : str, optional
        Store mask strategy (default: the store's).

    Returns
    -------
    ndarray, shape (num_layers, hidden_size), float32
        Ready for :func:`write_control_vector`: scale 1 moves the residual stream from the
        negative group's mean towards the positive group's by their whole difference.
    """
    pos, neg = _ids(positive, "positive"), _ids(negative, "negative")
    both = sorted(set(pos) & set(neg))
    if both:
        raise ValueError(f"positive and negative share personas {both}")
    vp, vn = _load(store, variant, pos, mask_strategy), _load(store, variant, neg, mask_strategy)
    out = np.zeros(vp.shape[1:], np.float32)
    keep = _layers(layers, vp.shape[1])
    out[keep] = (vp.mean(axis=0) - vn.mean(axis=0))[keep]
    return out


def pca_directions(
    store: Any,
    variant: str,
    persona_ids: Sequence[str] | None = None,
    *,
    layers: Sequence[int] | None = None,
    mask_strategy: object | None = None,
) -> np.ndarray:
    """First principal axis of the personas' vectors at each layer, as steering directions.

    Each kept layer's axis is the top right-singular vector of the centred persona vectors, scaled
    to the personas' standard deviation along it (scale 1 = one standard deviation). A PCA axis
    has no sign of its own: the first kept layer's axis has its largest-magnitude entry positive,
    and each later axis is flipped to a non-negative dot product with the previous one.

    Parameters
    ----------
    store, variant, layers, mask_strategy
        As in :func:`mean_difference_directions`.
    persona_ids : sequence of str, optional
        Default: every persona of the variant (baseline excluded). At least two.

    Returns
    -------
    ndarray, shape (num_layers, hidden_size), float32
    """
    ids = store.list_personas([variant], mask_strategy) if persona_ids is None else _ids(persona_ids, "persona_ids")
    if len(ids) < 2:
        raise ValueError(f"a PCA axis needs at least 2 personas, variant {variant!r} gives {len(ids)}")
    v = _load(store, variant, list(ids), mask_strategy)
    out = np.zeros(v.shape[1:], np.float32)
    prev: np.ndarray | None = None
    for layer in _layers(layers, v.shape[1]):
        x = v[:, layer] - v[:, layer].mean(axis=0)
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        axis = vt[0]
        if prev is None:
            axis = axis if axis[np.argmax(np.abs(axis))] > 0 else -axis
        elif axis @ prev < 0:
            axis = -axis
        prev = axis
        out[layer] = axis * (s[0] / np.sqrt(len(ids)))
    return out


def attribute_groups(
    persona_dataset: Any, attribute: str, positive_value: Any, negative_value: Any, persona_ids: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Split ``persona_ids`` by one attribute's two values (an object with ``attribute_values``).

    ``persona_dataset`` is e.g. ``PersonaAttributeTable(datasets.persona_prompts())``. Values are
    compared as strings. Raises ValueError when a group comes out empty, listing the values seen.
    """
    values = [str(x) for x in persona_dataset.attribute_values(attribute, list(persona_ids))]
    groups = []
    for want in (positive_value, negative_value):
        g = [p for p, x in zip(persona_ids, values) if x == str(want)]
        if not g:
            raise ValueError(
                f"no persona has {attribute}={want!r}; values among the {len(values)} personas: {sorted(set(values))}"
            )
        groups.append(g)
    return groups[0], groups[1]


# -- persona-vectors' one-layer steering vectors (its ``steering`` module, name for name) ------------------
def compute_steering_vector(
    persona_id: str,
    model_name: str,
    layer_idx: int = STEER_LAYER,
    mask_strategy: object | None = None,
    activations_dir: str | os.PathLike[str] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """persona-vectors' contrastive steering vector of one persona at one layer.

    ``biography`` minus ``templated`` persona vector at ``layer_idx``, shaped ``(1, 1, hidden)``, with
    ``suggested_alpha = 20 · rms(templated) / ‖vector‖``. Returns persona-vectors' dict
    (``steering_vector``, ``suggested_alpha``, ``persona_id``, ``layer``, ``model_id``, ``hidden_size``),
    or ``{}`` when either variant is missing, as the original does. The vector is a torch tensor when
    torch is loaded (as the store's ``array_type="auto"``), else a NumPy array.
    """
    store = PersonaVectorStore(model_name, activations_dir, array_type="numpy")
    try:
        pos = store.load_numpy("biography", persona_id, mask_strategy)
        neg = store.load_numpy("templated", persona_id, mask_strategy)
    except FileNotFoundError as exc:
        if verbose:
            print(f"activations not found ({exc}); run extraction first")
        return {}
    if pos.shape != neg.shape:
        raise ValueError(f"Mismatch: {pos.shape} positive vs {neg.shape} negative")
    if not 0 <= layer_idx < pos.shape[0]:
        raise ValueError(f"layer_idx {layer_idx} is out of range for {pos.shape[0]} layers")
    raw = pos[layer_idx].astype(np.float32) - neg[layer_idx].astype(np.float32)
    # the original's arithmetic, in float32 and in its order: rms of the negatives, then the norm
    mean_rms = float(np.sqrt(np.mean(neg[layer_idx].astype(np.float32) ** 2, dtype=np.float32)))
    norm = float(np.linalg.norm(raw))
    out = {
        "steering_vector": as_array_type(raw[None, None, :], "auto"),
        "suggested_alpha": 20.0 * mean_rms / (norm + 1e-8),
        "persona_id": persona_id,
        "layer": int(layer_idx),
        "model_id": model_name,
        "hidden_size": int(pos.shape[1]),
    }
    if verbose:
        print(f"steering vector {persona_id} layer {layer_idx}: norm {norm:.6f}, alpha {out['suggested_alpha']:.4f}")
    return out


def save_steering_vector(sv_dict: dict[str, Any], out_path: str | os.PathLike[str], verbose: bool = True) -> Path:
    """Write persona-vectors' files into directory ``out_path``: ``steering_vector.safetensors`` (key
    ``steering_vector``) and ``metadata.json``; each written atomically. Returns the directory."""
    out = Path(out_path)
    out.mkdir(parents=True, exist_ok=True)
    vec = np.ascontiguousarray(to_numpy(sv_dict["steering_vector"]), dtype=np.float32)
    write_safetensors(out / "steering_vector.safetensors", {"steering_vector": vec})
    keys = ("suggested_alpha", "persona_id", "layer", "model_id", "hidden_size")
    atomic_write_text(out / "metadata.json", json.dumps({k: sv_dict[k] for k in keys}, indent=2))
    if verbose:
        print(f"Saved to {out}")
    return out


def load_steering_vector(path: str | os.PathLike[str]) -> dict[str, Any]:
    """persona-vectors' ``{"steering_vector": ..., **metadata}`` from a directory :func:`save_steering_vector`
    (ours or the original's) wrote."""
    path = Path(path)
    tensors = read_safetensors(path / "steering_vector.safetensors")
    if "steering_vector" not in tensors:
        raise KeyError(
            f"{path / 'steering_vector.safetensors'}: missing tensor 'steering_vector' (has {sorted(tensors)})"
        )
    meta = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise ValueError(f"{path / 'metadata.json'}: expected a JSON object")
    return {"steering_vector": as_array_type(tensors["steering_vector"], "auto"), **meta}
