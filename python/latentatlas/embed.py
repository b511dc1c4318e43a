"""Deprecated location: the MiniLM sentence embedder now lives in :mod:`latentatlas.lm.minilm`.

This module only re-exports it so ``from latentatlas.embed import embed_texts`` keeps working.
"""

from __future__ import annotations

from .lm.minilm import MAX_LENGTH, MODEL_NAME, cache_dir, embed_texts, model_files

__all__ = ["MAX_LENGTH", "MODEL_NAME", "cache_dir", "embed_texts", "model_files"]
