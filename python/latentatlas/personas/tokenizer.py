"""Deprecated location: the GGUF tokenizer and chat templates now live in :mod:`latentatlas.lm.chat`.

This module only re-exports them so old imports keep working.
"""

from __future__ import annotations

from ..lm.chat import ChatTemplate, build_tokenizer, check_messages

__all__ = ["ChatTemplate", "build_tokenizer", "check_messages"]
