"""Command-line input helpers of the local-minima area.

The ``latentatlas atlas`` sub-command that used them moved to the top floor (:mod:`latentatlas.atlas`:
the linked atlas of minima, SAE latents and a persona store); it keeps every option it had here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._io import load_matrix

__all__ = ["load_labels", "load_matrix"]


def load_labels(path: str | Path) -> np.ndarray:
    """Labels from a ``.npy`` (1-D) or a text file (one label per line; blank lines skipped)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"labels file not found: {p}")
    if p.suffix.lower() == ".npy":
        try:
            lab = np.load(p, allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"cannot read labels {p}: {exc.__class__.__name__}: {exc}") from exc
    else:
        try:
            lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError as exc:
            raise ValueError(f"cannot read labels {p}: not UTF-8 text (use .npy for binary labels)") from exc
        lab = np.array([ln for ln in lines if ln])
    if lab.ndim != 1:
        raise ValueError(f"labels in {p} must be 1-D (one per item), got shape {lab.shape}")
    return lab
