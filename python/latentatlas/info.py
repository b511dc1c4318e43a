"""``latentatlas info``: what this installation is and what it can do.

:func:`info` returns a plain dict (version, the SIMD path the Rust kernels use, rayon threads, the
build profile, which optional extras are importable) and :func:`register` adds the ``info``
sub-command. Optional packages are found with :func:`importlib.util.find_spec`, never imported, so
``latentatlas info`` is fast and has no side effects.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
from typing import Any

import numpy as np

from . import __version__, _core

__all__ = ["EXTRAS", "info", "register"]

# extra -> the top-level modules it brings (all must be importable for the extra to count).
EXTRAS: dict[str, tuple[str, ...]] = {
    "text": ("onnxruntime", "tokenizers"),
    "llm": ("gguf", "tokenizers"),
    "umap": ("umap",),
    "minima": ("faiss",),
    "parquet": ("pyarrow",),
    "dask": ("dask", "distributed"),
}


def _importable(module: str) -> bool:
    """True when ``module`` (a top-level name) can be imported; it is located, not imported."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-installed package
        return False


def info() -> dict[str, Any]:
    """This installation: version, SIMD path, rayon threads, build profile, importable extras.

    Returns
    -------
    dict with ``version``, ``python``, ``platform``, ``numpy``, ``core`` (the extension file),
    ``simd`` (``path`` in use, ``requested`` = $LATENTATLAS_SIMD or None, ``warning`` when that
    value was not honoured), ``rayon_threads`` (the global pool, what ``threads=None`` uses),
    ``build_profile`` ("release" or "debug"), ``extras`` (extra -> bool) and ``extras_modules``
    (module -> bool).
    """
    modules = sorted({m for mods in EXTRAS.values() for m in mods})
    found = {m: _importable(m) for m in modules}
    return {
        "version": __version__,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{platform.system()} {platform.machine()}",
        "numpy": np.__version__,
        "core": os.path.basename(_core.__file__ or ""),
        "simd": {
            "path": _core.simd_path(),
            "requested": os.environ.get(_core.SIMD_ENV),
            "warning": _core.simd_warning(),
        },
        "rayon_threads": _core.rayon_threads(),
        "build_profile": _core.build_profile(),
        "extras": {extra: all(found[m] for m in mods) for extra, mods in EXTRAS.items()},
        "extras_modules": found,
    }


def format_info(d: dict[str, Any]) -> str:
    """The readable report ``latentatlas info`` prints."""
    simd = d["simd"]
    simd_line = simd["path"]
    if simd["requested"]:
        simd_line += f"  ({_core.SIMD_ENV}={simd['requested']})"
    if simd.get("warning"):
        simd_line += f"\n                 warning: {simd['warning']}"
    lines = [
        f"latentatlas {d['version']}",
        f"  python         {d['python']} on {d['platform']}, numpy {d['numpy']}",
        f"  extension      {d['core']}",
        f"  simd path      {simd_line}",
        f"  rayon threads  {d['rayon_threads']}  (threads=None; RAYON_NUM_THREADS sets it)",
        f"  build profile  {d['build_profile']}",
        "  extras:",
    ]
    for extra, ok in d["extras"].items():
        mods = ", ".join(f"{m}{'' if d['extras_modules'][m] else ' (missing)'}" for m in EXTRAS[extra])
        hint = "" if ok else f"   -> pip install 'latentatlas[{extra}]'"
        lines.append(f"    {extra:<8} {'yes' if ok else 'no ':<4} {mods}{hint}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    d = info()
    if args.json:
        print(json.dumps(d, indent=2, sort_keys=False))
    else:
        print(format_info(d))
    return 0


def register(sub: Any) -> None:
    """Add ``latentatlas info`` to an argparse sub-parsers object."""
    p = sub.add_parser(
        "info",
        help="version, SIMD path, threads, build profile and installed extras",
        description=(
            "Show this installation: version, the SIMD path of the Rust kernels "
            f"(${_core.SIMD_ENV}=auto|scalar|avx2|avx512 forces one), rayon threads, build profile and "
            "which optional extras (text, llm, umap, parquet, dask) are importable."
        ),
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_run)


if __name__ == "__main__":  # pragma: no cover - python -m latentatlas.info
    _parser = argparse.ArgumentParser(prog="latentatlas info")
    _parser.add_argument("--json", action="store_true")
    sys.exit(_run(_parser.parse_args()))
