"""Deprecated location: the GGUF reader now lives in :mod:`latentatlas.lm.gguf`.

This module only re-exports it so old imports keep working.
"""

from __future__ import annotations

from ..lm.gguf import GGUFContents, default_gguf_path, load_gguf, unpermute_qk

__all__ = ["GGUFContents", "default_gguf_path", "load_gguf", "unpermute_qk"]
