"""The atlas's inputs: the report path, the SAE, the persona store and the rows' texts, each checked
before any work (a bad ``out`` fails at once and never overwrites the data)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["check_out", "open_store"]

_HTML_SUFFIXES = (".html", ".htm")


def check_out(out: Any, *inputs: Any) -> Path:
    """The report path: an ``.html``/``.htm`` file name that is not a directory nor one of ``inputs``.

    Checked before any work, so a bad ``out`` fails at once and never overwrites the data.
    """
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise TypeError(f"out must be a path to an .html file, got {out!r}")
    path = Path(out).expanduser()
    if str(out).endswith(("/", os.sep)) or path.is_dir():
        raise ValueError(f"out {str(out)!r} is a directory; give the report's file name, e.g. {path / 'atlas.html'}")
    if path.suffix.lower() not in _HTML_SUFFIXES:
        raise ValueError(f"out {str(out)!r} must end in .html or .htm (the report is one HTML file)")
    for given in inputs:
        if isinstance(given, (str, os.PathLike)) and Path(given).exists() and path.exists():
            if Path(given).resolve() == path.resolve():
                raise ValueError(f"out {str(out)!r} is an input file; choose another report path")
    return path


def _load_sae(sae: Any, d: int) -> Any:
    """An SAE object (anything with ``encode``, ``d_in`` and ``n_latents``) or a path to load."""
    if sae is None:
        return None
    if isinstance(sae, (str, os.PathLike)):
        from ..sae import load

        if not Path(sae).exists():
            raise FileNotFoundError(f"sae: no SAE at {sae}")
        sae = load(sae)
    if not all(hasattr(sae, a) for a in ("encode", "d_in", "n_latents")):
        raise TypeError(f"sae must be a TopKSAE/ThresholdSAE or a path to one, got {type(sae).__name__}")
    if sae.d_in != d:
        raise ValueError(f"sae has d_in = {sae.d_in} but X has {d} columns; the SAE must be trained on X's space")
    return sae


def open_store(
    store: Any, model: str | None = None, mask_strategy: str | None = None, variant: str | None = None
) -> Any:
    """``(store, variant)``: a persona store object or a directory store root, its variant chosen.

    With a root, the model and mask strategy are found on disk (the only ones, or those named);
    the variant is the only one present unless named. ``(None, None)`` for ``store=None``.
    """
    if store is None:
        return None, None
    from ..personas.store import PersonaVectorStore, discover_activation_models

    if isinstance(store, (str, os.PathLike)):
        root = Path(store).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"store: persona store directory not found: {root}")
        masks = (
            [mask_strategy]
            if mask_strategy
            else sorted({p.name for m in root.iterdir() if m.is_dir() for p in m.iterdir() if p.is_dir()})
        )
        found = [(m, s) for s in masks for m in discover_activation_models(root, s)]
        if model is not None:
            found = [(m, s) for m, s in found if m == model]
        if not found:
            raise ValueError(f"store: no persona vectors under {root} (layout <model>/<mask strategy>/<variant>/)")
        if len(found) > 1:
            raise ValueError(
                f"store: {root} holds several (model, mask strategy): {found}; choose with model=/mask_strategy="
            )
        store = PersonaVectorStore(found[0][0], root, found[0][1], variants=None, array_type="numpy")
    if not hasattr(store, "list_personas") or not hasattr(store, "available_variants"):
        raise TypeError(f"store must be a persona store or its directory, got {type(store).__name__}")
    variants = store.available_variants()
    if variant is None:
        if len(variants) != 1:
            raise ValueError(f"store: choose a variant (variant=) among {variants}")
        variant = variants[0]
    elif variant not in variants:
        raise ValueError(f"store: variant {variant!r} not found; available: {variants}")
    return store, variant


def _texts(texts: Any, n: int, name: str) -> list[str] | None:
    if texts is None:
        return None
    out = [str(t) for t in texts]
    if len(out) != n:
        raise ValueError(f"{name} must have one entry per row of X ({n}), got {len(out)}")
    return out


def _load_texts(path: str) -> list[str]:
    """One text per line of a UTF-8 file (every line counts, blank ones too)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--texts file not found: {p}")
    try:
        return p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"--texts {p} is not UTF-8 text") from exc
