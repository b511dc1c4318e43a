"""Deprecated location: the NumPy LLaMA decoder now lives in :mod:`latentatlas.lm.llama`.

This module only re-exports it so old imports keep working.
"""

from __future__ import annotations

from ..lm.llama import KVCache, LayerWeights, LlamaConfig, LlamaModel, LlamaWeights

__all__ = ["KVCache", "LayerWeights", "LlamaConfig", "LlamaModel", "LlamaWeights"]
