"""SAE files: latentatlas's own directory format, plus SAELens, EleutherAI sparsify and
embedding-scope (torch state dict keys) checkpoints, all as safetensors + ``cfg.json``.

=================  ========================  ==================================================
format             weights file              tensors (shapes), k from
=================  ========================  ==================================================
latentatlas        ``sae.safetensors``       W_enc [n,d], b_enc [n], W_dec [n,d], b_dec [d];
                                             cfg.json ``format = "latentatlas.topk-sae"``
SAELens            ``sae_weights.safetensors``  W_enc [d,n] (transposed on load), W_dec [n,d],
                                             b_enc, b_dec; cfg ``k`` or ``activation_fn_kwargs.k``
sparsify           ``sae.safetensors``       encoder.weight [n,d], encoder.bias [n], W_dec [n,d],
                                             b_dec [d]; cfg ``k``, ``num_latents``
embedding-scope    ``sae.safetensors``       encoder.weight [n,d], encoder.bias, decoder.weight
                                             [d,n], decoder.bias; cfg ``k``
=================  ========================  ==================================================

Weights are read with :func:`latentatlas._io.read_safetensors` (re-exported here as
``read_safetensors``): a few lines of NumPy that also read bfloat16, which NumPy lacks, by
widening to float32, so a corrupt file fails with a message that names the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, atomic_write_text, read_safetensors
from .model import TopKSAE

__all__ = ["load", "read_safetensors", "save", "write_safetensors"]

FORMAT = "latentatlas.topk-sae"


def write_safetensors(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """Serialise float/int arrays to safetensors bytes (the format of the `safetensors` package)."""
    from safetensors.numpy import save as st_save

    return st_save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata)


def save(sae: TopKSAE, path: str | os.PathLike[str]) -> Path:
    """Write ``sae.safetensors`` and ``cfg.json`` into directory ``path``.

    Both files are serialised in memory first and written through temp files + rename, and
    ``cfg.json`` records the weights' sha256: a save that fails leaves the previous model
    loadable, and a mismatched pair is detected on load.
    """
    path = Path(path)
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        if not np.isfinite(getattr(sae, name)).all():
            raise ValueError(f"cannot save: {name} contains NaN or infinity")
    data = write_safetensors({n: getattr(sae, n) for n in ("W_enc", "b_enc", "W_dec", "b_dec")})
    cfg = {
        "format": FORMAT,
        "version": 1,
        "d_in": sae.d_in,
        "n_latents": sae.n_latents,
        "k": sae.k,
        "subtract_decoder_bias": sae.subtract_decoder_bias,
        "dtype": sae.dtype.name,
        "weights": "sae.safetensors",
        "sha256": hashlib.sha256(data).hexdigest(),
        "history": [{k: v for k, v in h.items()} for h in sae.history_],
    }
    text = json.dumps(cfg, indent=2)
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path / "sae.safetensors", data)
    atomic_write_text(path / "cfg.json", text)
    return path


def _need(t: dict[str, np.ndarray], key: str, file: Path) -> np.ndarray:
    if key not in t:
        raise KeyError(f"{file}: missing tensor {key!r} (has {sorted(t)})")
    return t[key]


def _cfg_k(cfg: dict[str, Any], file: Path) -> int:
    k = cfg.get("k")
    if k is None:
        k = (cfg.get("activation_fn_kwargs") or {}).get("k")
    if k is None:
        raise KeyError(f"{file}: missing key 'k' (TopK size) in the config")
    return int(k)


def load(path: str | os.PathLike[str], *, hookpoint: str | None = None) -> TopKSAE:
    """Load a TopK SAE directory in any of the formats of the module docstring.

    Parameters
    ----------
    path : directory holding ``cfg.json`` and the weights file
    hookpoint : for sparsify checkpoints of several hookpoints, the sub-directory to read
    """
    path = Path(path)
    if hookpoint is not None:
        path = path / hookpoint
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: not a directory holding an SAE (cfg.json + safetensors)")
    cfg_file = path / "cfg.json"
    if not cfg_file.is_file():
        subs = sorted(p.parent.name for p in path.glob("*/cfg.json"))
        hint = f"; sub-directories with one: {subs} (pass hookpoint=)" if subs else ""
        raise FileNotFoundError(f"{cfg_file}: missing SAE config{hint}")
    try:
        cfg = json.loads(cfg_file.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{cfg_file}: not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{cfg_file}: expected a JSON object")

    if (path / "sae_weights.safetensors").is_file():  # SAELens
        file = path / "sae_weights.safetensors"
        t = read_safetensors(file)
        arch = str(cfg.get("architecture", cfg.get("activation_fn", cfg.get("activation_fn_str", "topk"))))
        if "topk" not in arch.lower() and "activation_fn_kwargs" not in cfg and "k" not in cfg:
            raise ValueError(f"{cfg_file}: SAELens architecture {arch!r} is not a TopK SAE")
        We = _need(t, "W_enc", file)
        Wd = _need(t, "W_dec", file)
        if We.ndim != 2:
            raise ValueError(f"{file}: W_enc must be 2-D [d_in, d_sae], got shape {We.shape}")
        return TopKSAE.from_arrays(
            We.T,
            _need(t, "b_enc", file),
            Wd,
            _need(t, "b_dec", file),
            _cfg_k(cfg, cfg_file),
            subtract_decoder_bias=bool(cfg.get("apply_b_dec_to_input", True)),
        )
    file = path / "sae.safetensors"
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing weights (expected sae.safetensors or sae_weights.safetensors)")
    raw = file.read_bytes()
    if cfg.get("format") == FORMAT and cfg.get("sha256") not in (None, hashlib.sha256(raw).hexdigest()):
        raise ValueError(f"{file}: weights do not match {cfg_file} (sha256 differs; interrupted save?)")
    t = read_safetensors(file)
    if cfg.get("format") == FORMAT:
        sae = TopKSAE.from_arrays(
            _need(t, "W_enc", file),
            _need(t, "b_enc", file),
            _need(t, "W_dec", file),
            _need(t, "b_dec", file),
            _cfg_k(cfg, cfg_file),
            subtract_decoder_bias=bool(cfg.get("subtract_decoder_bias", True)),
        )
        sae.history_ = list(cfg.get("history", []))
        return sae
    if "decoder.weight" in t:  # embedding-scope state dict (torch nn.Linear layouts)
        return TopKSAE.from_arrays(
            _need(t, "encoder.weight", file),
            _need(t, "encoder.bias", file),
            _need(t, "decoder.weight", file).T,
            _need(t, "decoder.bias", file),
            _cfg_k(cfg, cfg_file),
        )
    # EleutherAI sparsify
    return TopKSAE.from_arrays(
        _need(t, "encoder.weight", file),
        _need(t, "encoder.bias", file),
        _need(t, "W_dec", file),
        _need(t, "b_dec", file),
        _cfg_k(cfg, cfg_file),
    )
