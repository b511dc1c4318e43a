"""SAE file formats: read what SAE users hold, write latentatlas's own layout or SAELens's.

This module knows files, not classes: :func:`read` detects the format from what the path holds and
returns an :class:`SAEFile` (the arrays and settings), which :func:`latentatlas.sae.io.load` turns
into a model; :func:`write` takes any model with the SAE attributes. Formats:

=======================  ===============================  ==============================================
format                   files                            tensors (shapes) → model
=======================  ===============================  ==============================================
latentatlas              ``cfg.json`` + the file its      W_enc [n,d], b_enc [n], W_dec [n,d], b_dec [d];
                         ``weights`` names                ``format = "latentatlas.topk-sae"`` → TopKSAE
                         (``sae-<sha256>.safetensors``)
SAELens (v6 and older)   ``cfg.json`` +                   W_enc [d,n] (transposed on load), W_dec [n,d],
                         ``sae_weights.safetensors``      b_enc [n], b_dec [d], threshold [n] (jumprelu);
                         (optional ``sparsity.safetensors``)  ``architecture`` topk → TopKSAE (``k``);
                                                          standard / jumprelu / batchtopk → ThresholdSAE
Gemma Scope              ``params.npz`` (file or dir)     w_enc [d,n], w_dec [n,d], b_enc, b_dec,
                                                          threshold → ThresholdSAE (JumpReLU)
Sentence-Transformers v5 ``config.json`` +                encoder.weight [n,d], latent_bias [n],
``SparseAutoEncoder``    ``model.safetensors`` (or the    pre_bias [d]; decoder tied (W_dec = encoder
                         model folder's ``modules.json``)  weight) → TopKSAE (``k``)
EleutherAI sparsify      ``cfg.json`` + ``sae.safetensors``  encoder.weight [n,d], encoder.bias [n],
                         (``hookpoint=`` picks a layer)   W_dec [n,d], b_dec [d] → TopKSAE (``k``)
embedding-scope          ``cfg.json`` + ``sae.safetensors``  encoder.weight [n,d], encoder.bias, decoder.weight
                                                          [d,n], decoder.bias → TopKSAE (``k``)
=======================  ===============================  ==============================================

:func:`write` writes ``format="latentatlas"`` (TopK only, with a sha256 tying cfg.json to the weights)
or ``format="saelens"``: ``cfg.json`` with SAELens v6's keys (architecture, d_in, d_sae, dtype,
device, apply_b_dec_to_input, normalize_activations, reshape_activations, metadata{model_name,
hook_name, ...}, k for TopK) and ``sae_weights.safetensors`` with SAELens's tensor names and shapes,
so SAELens, SAEBench and Neuronpedia tooling read it. Weights are read with
:func:`latentatlas._io.read_safetensors` (bfloat16 widened to float32; a corrupt file is a
ValueError naming the file).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import (
    atomic_write_bytes,
    atomic_write_text,
    fsync_dir,
    inside,
    locked,
    read_safetensors,
    remove_temp_files,
    safe_name,
)
from .._validate import check_choice

__all__ = ["FORMAT", "SAELENS_ARCHITECTURES", "SAEFile", "read", "write", "safetensors_bytes"]


FORMAT = "latentatlas.topk-sae"


@dataclass
class SAEFile:
    """What an SAE file holds, in latentatlas's orientation: ``W_enc``/``W_dec`` ``(n_latents, d_in)``,
    ``b_enc``/``threshold`` ``(n_latents,)``, ``b_dec`` ``(d_in,)``. ``architecture`` is "topk" (with
    ``k``) or a threshold architecture ("standard", "jumprelu", "batchtopk"). ``metadata``, ``history``
    and ``log_sparsity`` are None when the format has none."""

    architecture: str
    W_enc: np.ndarray
    b_enc: np.ndarray
    W_dec: np.ndarray
    b_dec: np.ndarray
    k: int | None = None
    threshold: np.ndarray | None = None
    subtract_decoder_bias: bool = True
    metadata: dict[str, Any] | None = None
    history: list[Any] | None = None
    log_sparsity: np.ndarray | None = field(default=None, repr=False)


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """Serialise float/int arrays to safetensors bytes (the format of the `safetensors` package)."""
    from safetensors.numpy import save as st_save

    return st_save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata)


def write(
    sae: Any,
    path: str | os.PathLike[str],
    *,
    format: str = "latentatlas",  # noqa: A002
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``sae`` into directory ``path`` in ``format`` "latentatlas", "saelens" or "sparsify".

    Files are serialised in memory first and written through temp files + fsync + rename (+ fsync of
    the folder), ``cfg.json`` last, under a per-folder writer lock (``path/.lock``), so concurrent
    writers run one after the other. ``metadata`` (SAELens's ``model_name``, ``hook_name``, ...) is
    merged over ``sae.metadata``.

    ``format="latentatlas"`` is crash-consistent as a whole: the weights go to a new file named by
    their hash, then ``cfg.json`` (which names it) is replaced: that one rename switches from the old
    model to the new, and only then are the old weights deleted. A process killed at any point
    leaves ``path`` loading as the complete old or the complete new model; its leftovers (temp
    files, unreferenced weights) are removed by the next save or load. (``"saelens"`` and
    ``"sparsify"`` have fixed file names, so a kill between their two files can pair new weights with
    the old config.)

    ``format="sparsify"`` writes EleutherAI sparsify's ``SparseCoder.save_to_disk`` layout (``cfg.json``
    + ``sae.safetensors``; TopK only): save it under ``root/<hookpoint>`` to build a multi-hookpoint
    checkpoint that ``SparseCoder.load_many`` reads.
    """
    check_choice(format, "format", ("latentatlas", "saelens", "sparsify"))
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    path = Path(path)
    topk = sae.architecture == "topk"
    names = ("W_enc", "b_enc", "W_dec", "b_dec") + (() if topk else ("threshold",))
    for name in names:
        if not np.isfinite(getattr(sae, name)).all():
            raise ValueError(f"cannot save: {name} contains NaN or infinity")
    if format == "saelens":
        data, cfg = _saelens_files(sae, {**getattr(sae, "metadata", {}), **(metadata or {})})
        weights = "sae_weights.safetensors"
    elif not topk:
        raise ValueError(f"format={format!r} holds TopK SAEs; save a ThresholdSAE with format='saelens'")
    elif format == "sparsify":
        data, cfg = _sparsify_files(sae)
        weights = "sae.safetensors"
    else:
        data = safetensors_bytes({n: getattr(sae, n) for n in names})
        sha = hashlib.sha256(data).hexdigest()
        weights = f"sae-{sha[:16]}.safetensors"
        cfg = {
            "format": FORMAT,
            "version": 1,
            "d_in": sae.d_in,
            "n_latents": sae.n_latents,
            "k": sae.k,
            "subtract_decoder_bias": sae.subtract_decoder_bias,
            "dtype": sae.dtype.name,
            "weights": weights,  # the one weights file that belongs to this config
            "sha256": sha,
            "history": [{k: v for k, v in h.items()} for h in sae.history_],
        }
    text = json.dumps(cfg, indent=2)
    path.mkdir(parents=True, exist_ok=True)
    with locked(path):
        atomic_write_bytes(path / weights, data)
        atomic_write_text(path / "cfg.json", text)  # the switch
        _remove_leftovers(path, weights if format == "latentatlas" else None)
    return path


def _remove_leftovers(path: Path, keep: str | None) -> None:
    """Under the lock: temp files of killed writers and (``keep`` given) the latentatlas weights files
    that ``cfg.json`` no longer names."""
    remove_temp_files(path)
    if keep is not None:
        for p in [*path.glob("sae-*.safetensors"), path / "sae.safetensors"]:
            if p.name != keep and p.is_file():
                p.unlink(missing_ok=True)
    fsync_dir(path)


def _weights_name(cfg: dict[str, Any], cfg_file: Path) -> str:
    """The weights file a latentatlas ``cfg.json`` names (a plain file name in the same folder)."""
    return safe_name(cfg.get("weights", "sae.safetensors"), f"{cfg_file}: weights")


def _load_own(path: Path, cfg_file: Path, cfg: dict[str, Any]) -> SAEFile:
    """latentatlas's format. A save may switch ``cfg.json`` and delete the weights it named while we
    read: the weights then vanish under us, and reading ``cfg.json`` again finds the new ones."""
    for attempt in range(8):
        file = path / _weights_name(cfg, cfg_file)
        try:
            raw = file.read_bytes()
            if cfg.get("sha256") not in (None, hashlib.sha256(raw).hexdigest()):
                raise ValueError(f"{file}: weights do not match {cfg_file} (sha256 differs)")
            t = read_safetensors(file)
            break
        except FileNotFoundError:
            fresh = _read_json(cfg_file)
            if attempt == 7 or fresh == cfg:
                raise FileNotFoundError(f"{file}: missing weights named by {cfg_file}") from None
            cfg = fresh
    history = cfg.get("history", [])
    sae = SAEFile(
        "topk",
        _need(t, "W_enc", file),
        _need(t, "b_enc", file),
        _need(t, "W_dec", file),
        _need(t, "b_dec", file),
        k=_cfg_k(cfg, cfg_file),
        subtract_decoder_bias=bool(cfg.get("subtract_decoder_bias", True)),
        history=list(history) if isinstance(history, list) else [],
    )
    with locked(path, wait=False) as held:  # tidy up after killed saves, unless a writer is busy
        if held:
            _remove_leftovers(path, _weights_name(_read_json(cfg_file), cfg_file))
    return sae


def _saelens_files(sae: Any, metadata: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """sae_weights.safetensors bytes and the v6 cfg.json of ``sae``."""
    tensors = {"W_enc": np.ascontiguousarray(sae.W_enc.T), "W_dec": sae.W_dec, "b_enc": sae.b_enc, "b_dec": sae.b_dec}
    cfg: dict[str, Any] = {
        "architecture": sae.architecture,
        "d_in": sae.d_in,
        "d_sae": sae.n_latents,
        "dtype": sae.dtype.name,
        "device": "cpu",
        "apply_b_dec_to_input": sae.subtract_decoder_bias,
        "normalize_activations": "none",
        "reshape_activations": "none",
    }
    if sae.architecture == "topk":
        cfg["k"] = sae.k
        cfg["rescale_acts_by_decoder_norm"] = False
    else:
        if sae.architecture == "batchtopk":  # SAELens runs saved BatchTopK SAEs as JumpReLU
            cfg["architecture"] = "jumprelu"
        if cfg["architecture"] == "jumprelu":
            tensors["threshold"] = sae.threshold
    meta: dict[str, Any] = {"model_name": None, "hook_name": None, "hook_head_index": None, "prepend_bos": True}
    meta.update({k: v for k, v in metadata.items() if isinstance(k, str)})
    meta["written_by"] = "latentatlas"
    # SAELens reads a cfg without sae_lens_version as pre-6.0 and rebuilds the metadata from top-level
    # keys only (losing model_name / hook_name): say which cfg layout this is, SAELens v6's
    meta["sae_lens_version"] = SAELENS_CFG_VERSION
    cfg["metadata"] = meta
    return safetensors_bytes(tensors), cfg


def _sparsify_files(sae: Any) -> tuple[bytes, dict[str, Any]]:
    """sae.safetensors bytes and cfg.json of sparsify's ``SparseCoder`` for a TopK ``sae``.

    sparsify always encodes ``x - b_dec``; a model that does not subtract b_dec is written with the
    equivalent bias ``b_enc + W_enc b_dec`` (the same pre-activations, up to rounding)."""
    bias = sae.b_enc
    if not sae.subtract_decoder_bias:
        bias = (sae.b_enc.astype(np.float64) + sae.W_enc.astype(np.float64) @ sae.b_dec).astype(sae.dtype)
    tensors = {"encoder.weight": sae.W_enc, "encoder.bias": bias, "W_dec": sae.W_dec, "b_dec": sae.b_dec}
    cfg = {
        "activation": "topk", "expansion_factor": max(1, sae.n_latents // sae.d_in), "normalize_decoder": True,
        "num_latents": sae.n_latents, "k": sae.k, "multi_topk": False, "skip_connection": False,
        "transcode": False, "d_in": sae.d_in,
    }  # fmt: skip
    return safetensors_bytes(tensors), cfg


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
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"{file}: key 'k' must be an integer, got {k!r}")
    return k


def _read_json(file: Path, kind: type = dict) -> Any:
    """A JSON file holding an object (or a list, ``kind=list``); ValueError naming the file otherwise."""
    try:
        value = json.loads(file.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(value, kind):
        raise ValueError(f"{file}: expected a JSON {'object' if kind is dict else 'list'}")
    return value


def _cfg_int(cfg: dict[str, Any], key: str, file: Path) -> int:
    v = cfg.get(key)
    if v is None:
        raise KeyError(f"{file}: missing key {key!r}")
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{file}: key {key!r} must be an integer, got {v!r}")
    return v


def _check_dims(cfg: dict[str, Any], file: Path, d: int, n: int, keys: tuple[str, str]) -> None:
    """The config's sizes (when present) agree with the weights' shapes."""
    for key, have in zip(keys, (d, n)):
        if key in cfg and _cfg_int(cfg, key, file) != have:
            raise ValueError(f"{file}: {key} = {cfg[key]} but the weights have {have}")


def _load_gemma_scope(file: Path) -> SAEFile:
    import zipfile

    try:
        with np.load(file, allow_pickle=False) as z:
            t = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{file}: not a readable .npz archive ({exc})") from None
    We = _need(t, "w_enc", file)
    if We.ndim != 2:
        raise ValueError(f"{file}: w_enc must be 2-D [d_in, d_sae], got shape {We.shape}")
    return SAEFile(
        "jumprelu", We.T, _need(t, "b_enc", file), _need(t, "w_dec", file), _need(t, "b_dec", file),
        threshold=_need(t, "threshold", file), metadata={"source": "gemma-scope"},
    )  # fmt: skip


def _load_sentence_transformers(path: Path) -> SAEFile:
    cfg_file = path / "config.json"
    cfg = _read_json(cfg_file)
    if cfg.get("normalize"):
        raise ValueError(f"{cfg_file}: normalize=true (layer-normalised inputs) is not supported")
    file = path / "model.safetensors"
    t = read_safetensors(file)
    W = _need(t, "encoder.weight", file)
    if W.ndim != 2:
        raise ValueError(f"{file}: encoder.weight must be 2-D [hidden_dim, input_dim], got shape {W.shape}")
    _check_dims(cfg, cfg_file, W.shape[1], W.shape[0], ("input_dim", "hidden_dim"))
    # the decoder is the encoder's tied transpose: W_dec rows are the encoder rows
    return SAEFile(
        "topk", W, _need(t, "latent_bias", file), W, _need(t, "pre_bias", file), k=_cfg_int(cfg, "k", cfg_file)
    )


def _sentence_transformers_module(path: Path) -> Path | None:
    """The SparseAutoEncoder module folder of a Sentence-Transformers model folder, if any."""
    mods = _read_json(path / "modules.json", list)
    for m in mods:
        if isinstance(m, dict) and str(m.get("type", "")).endswith("SparseAutoEncoder"):
            from .._io import inside

            return inside(path, str(m.get("path", "")))
    return None


#: The SAELens cfg layout :func:`write` follows (``metadata.sae_lens_version``): v6, whose metadata
#: block carries model_name / hook_name.
SAELENS_CFG_VERSION = "6.0.0"

#: SAELens architectures and what they load as.
SAELENS_ARCHITECTURES = ("topk", "standard", "jumprelu", "batchtopk")


def _load_saelens(path: Path, cfg: dict[str, Any], cfg_file: Path) -> SAEFile:
    file = path / "sae_weights.safetensors"
    t = read_safetensors(file)
    arch = cfg.get("architecture")
    if arch is None:  # SAELens < 6: the activation function names TopK
        act = str(cfg.get("activation_fn", cfg.get("activation_fn_str", "relu")))
        arch = "topk" if "topk" in act.lower() or "k" in (cfg.get("activation_fn_kwargs") or {}) else "standard"
    if not isinstance(arch, str):
        raise ValueError(f"{cfg_file}: key 'architecture' must be a string, got {arch!r}")
    arch = arch.lower()
    if arch not in SAELENS_ARCHITECTURES:
        raise ValueError(
            f"{cfg_file}: SAELens architecture {arch!r} is not supported (supported: {', '.join(SAELENS_ARCHITECTURES)})"
        )
    norm = cfg.get("normalize_activations", "none")
    if norm not in (None, "none"):
        raise ValueError(f"{cfg_file}: normalize_activations={norm!r} is not supported (only 'none')")
    We, Wd = _need(t, "W_enc", file), _need(t, "W_dec", file)
    if We.ndim != 2:
        raise ValueError(f"{file}: W_enc must be 2-D [d_in, d_sae], got shape {We.shape}")
    _check_dims(cfg, cfg_file, We.shape[0], We.shape[1], ("d_in", "d_sae"))
    sub = cfg.get("apply_b_dec_to_input", True)
    if not isinstance(sub, bool):
        raise ValueError(f"{cfg_file}: key 'apply_b_dec_to_input' must be true or false, got {sub!r}")
    meta = cfg.get("metadata") or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{cfg_file}: key 'metadata' must be an object, got {meta!r}")
    meta = {**{k: cfg[k] for k in ("model_name", "hook_name", "hook_layer") if k in cfg}, **meta}
    We, be = We.T, _need(t, "b_enc", file)
    if cfg.get("rescale_acts_by_decoder_norm"):
        We, be, Wd = _fold_decoder_norm(We, be, Wd)
    k, th = None, None
    if arch == "topk":
        k = _cfg_k(cfg, cfg_file)
    elif arch == "batchtopk" and "threshold" not in t:
        th = _batchtopk_threshold(t, file, We.shape[0])
    elif arch in ("jumprelu", "batchtopk"):
        th = _need(t, "threshold", file)
    sae = SAEFile(
        arch, We, be, Wd, _need(t, "b_dec", file), k=k, threshold=th, subtract_decoder_bias=sub, metadata=meta
    )
    if (path / "sparsity.safetensors").is_file():
        sp_t = read_safetensors(path / "sparsity.safetensors")
        sae.log_sparsity = _need(sp_t, "sparsity", path / "sparsity.safetensors")  # log10 latent density
    return sae


def _fold_decoder_norm(We: np.ndarray, be: np.ndarray, Wd: np.ndarray) -> tuple[np.ndarray, ...]:
    """SAELens's ``rescale_acts_by_decoder_norm``, folded as its ``fold_W_dec_norm`` does: a latent's
    pre-activation times its decoder row's norm, decoded by the unit row, is the same SAE with encoder
    row and bias times the norm and the decoder row divided by it (equal codes and reconstructions up to
    rounding; TopK's choice is unchanged because it is made on the rescaled pre-activations)."""
    norm = np.maximum(np.linalg.norm(Wd.astype(np.float64), axis=1), 1e-8)  # SAELens clamps at 1e-8
    dt = np.result_type(We.dtype, Wd.dtype)
    return (
        (We * norm[:, None]).astype(dt),
        (be * norm).astype(be.dtype),
        (Wd / norm[:, None]).astype(dt),
    )


def _batchtopk_threshold(t: dict[str, np.ndarray], file: Path, n: int) -> np.ndarray:
    """A SAELens BatchTopK *training* checkpoint keeps one scalar ``topk_threshold``; its inference
    model (``save_inference_model``) is the JumpReLU whose every latent has that threshold."""
    if "topk_threshold" not in t:
        raise KeyError(
            f"{file}: a BatchTopK SAE needs a 'threshold' (inference file) or 'topk_threshold' (training "
            f"checkpoint) tensor; has {sorted(t)}. Export it with SAELens's save_inference_model"
        )
    thr = np.asarray(t["topk_threshold"], dtype=np.float64)
    if thr.size != 1:
        raise ValueError(f"{file}: topk_threshold must be one number, got shape {thr.shape}")
    return np.full(n, float(thr.reshape(-1)[0]))


def read(path: str | os.PathLike[str], *, hookpoint: str | None = None) -> SAEFile:
    """Read an SAE in any of the formats of the module docstring, detected from what ``path`` holds.

    Parameters
    ----------
    path : a directory (SAELens, latentatlas, sparsify, embedding-scope, Sentence-Transformers
        module or model folder, or one holding ``params.npz``) or a Gemma Scope ``params.npz`` file
    hookpoint : for sparsify checkpoints of several hookpoints, the sub-directory to read

    Returns
    -------
    :class:`SAEFile` ("topk" for the TopK formats, else ReLU / JumpReLU / BatchTopK)
    """
    path = Path(path)
    if hookpoint is not None:
        path = inside(path, hookpoint)  # a sub-directory, never a way out of ``path``
    if path.is_file():
        if path.suffix == ".npz":
            return _load_gemma_scope(path)
        raise ValueError(f"{path}: not an SAE file (a Gemma Scope params.npz, or give the SAE's directory)")
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: not a directory holding an SAE, nor a params.npz file")
    if (path / "params.npz").is_file():
        return _load_gemma_scope(path / "params.npz")
    if (path / "modules.json").is_file():
        mod = _sentence_transformers_module(path)
        if mod is None:
            raise ValueError(f"{path}: a Sentence-Transformers model without a SparseAutoEncoder module")
        return _load_sentence_transformers(mod)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return _load_sentence_transformers(path)
    cfg_file = path / "cfg.json"
    if not cfg_file.is_file():
        subs = sorted(p.parent.name for p in path.glob("*/cfg.json"))
        hint = f"; sub-directories with one: {subs} (pass hookpoint=)" if subs else ""
        raise FileNotFoundError(f"{cfg_file}: missing SAE config{hint}")
    cfg = _read_json(cfg_file)
    if cfg.get("format") == FORMAT:
        return _load_own(path, cfg_file, cfg)
    if (path / "sae_weights.safetensors").is_file():
        return _load_saelens(path, cfg, cfg_file)
    return _load_sae_safetensors(path, cfg, cfg_file)


def _load_sae_safetensors(path: Path, cfg: dict[str, Any], cfg_file: Path) -> SAEFile:
    """``cfg.json`` + ``sae.safetensors``: embedding-scope (torch Linear layouts) or EleutherAI sparsify."""
    file = path / "sae.safetensors"
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing weights (expected sae.safetensors or sae_weights.safetensors)")
    t = read_safetensors(file)
    if "decoder.weight" in t:  # embedding-scope state dict (torch nn.Linear layouts)
        Wd = _need(t, "decoder.weight", file)
        if Wd.ndim != 2:
            raise ValueError(f"{file}: decoder.weight must be 2-D [d, n], got shape {Wd.shape}")
        return SAEFile(
            "topk",
            _need(t, "encoder.weight", file),
            _need(t, "encoder.bias", file),
            Wd.T,
            _need(t, "decoder.bias", file),
            k=_cfg_k(cfg, cfg_file),
        )
    # EleutherAI sparsify
    for key in ("skip_connection", "transcode"):
        if cfg.get(key):
            raise ValueError(f"{cfg_file}: sparsify {key}=true is not supported")
    act = cfg.get("activation", "topk")
    if act != "topk":
        # groupmax keeps the largest latent of each of k groups: another code than TopK's
        raise ValueError(
            f"{cfg_file}: sparsify activation={act!r} is not supported (only 'topk'); "
            "a groupmax coder's codes differ from TopK's, so it cannot load as one"
        )
    return SAEFile(
        "topk",
        _need(t, "encoder.weight", file),
        _need(t, "encoder.bias", file),
        _need(t, "W_dec", file),
        _need(t, "b_dec", file),
        k=_cfg_k(cfg, cfg_file),
    )
