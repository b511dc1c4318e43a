"""Load and save SAEs: the formats of :mod:`latentatlas.sae.formats`, as models.

:func:`load` reads any format the field writes and returns the model class its architecture needs;
:func:`save` writes a model in latentatlas's own layout or SAELens's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .formats import SAEFile, read, write
from .model import TopKSAE
from .threshold import ThresholdSAE

__all__ = ["load", "model_from_file", "save"]


def model_from_file(f: SAEFile) -> TopKSAE | ThresholdSAE:
    """The model an :class:`~latentatlas.sae.formats.SAEFile` describes (TopK or threshold)."""
    return TopKSAE.from_file(f) if f.architecture == "topk" else ThresholdSAE.from_file(f)


def load(path: str | os.PathLike[str], *, hookpoint: str | None = None) -> TopKSAE | ThresholdSAE:
    """Load an SAE in any format :mod:`latentatlas.sae.formats` reads, detected from what ``path`` holds.

    Parameters
    ----------
    path : a directory (SAELens, latentatlas, sparsify, embedding-scope, Sentence-Transformers
        module or model folder, or one holding ``params.npz``) or a Gemma Scope ``params.npz`` file
    hookpoint : for sparsify checkpoints of several hookpoints, the sub-directory to read

    Returns
    -------
    :class:`TopKSAE` (TopK formats) or :class:`ThresholdSAE` (ReLU / JumpReLU / BatchTopK)
    """
    return model_from_file(read(path, hookpoint=hookpoint))


def save(
    sae: TopKSAE | ThresholdSAE,
    path: str | os.PathLike[str],
    *,
    format: str = "latentatlas",  # noqa: A002
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``sae`` into directory ``path`` in ``format`` "latentatlas" or "saelens"
    (see :func:`latentatlas.sae.formats.write`, which documents the crash-consistency)."""
    if not isinstance(sae, (TopKSAE, ThresholdSAE)):
        raise TypeError(f"sae must be a TopKSAE or ThresholdSAE, got {type(sae).__name__}")
    return write(sae, path, format=format, metadata=metadata)
