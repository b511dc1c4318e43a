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
from collections.abc import Callable
from typing import Any

__all__ = ["EXTRAS", "info", "register"]

# extra -> the top-level modules it brings (all must be importable for the extra to count).
EXTRAS: dict[str, tuple[str, ...]] = {
    "text": ("onnxruntime", "tokenizers"),
    "llm": ("gguf", "tokenizers"),
    "umap": ("umap",),
    "parquet": ("pyarrow",),
    "dask": ("dask", "distributed"),
}

SIMD_ENV = "LATENTATLAS_SIMD"
UNKNOWN = "unknown"


def _importable(module: str) -> bool:
    """True when ``module`` (a top-level name) can be imported; it is located, not imported."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-installed package
        return False


def _from_core(core: Any, name: str) -> tuple[str, str | None]:
    """``(value, note)`` of the zero-argument ``_core.<name>()``; ``unknown`` with a note if absent."""
    fn: Callable[[], Any] | None = getattr(core, name, None)
    if fn is None:
        return UNKNOWN, f"this build of latentatlas._core has no {name}()"
    try:
        return str(fn()), None
    except Exception as exc:  # report it, never fail `info` because of it
        return UNKNOWN, f"_core.{name}() failed: {exc}"


def _simd_warning(core: Any) -> str | None:
    """Why $LATENTATLAS_SIMD was not honoured (``_core.simd_warning()``), else None."""
    fn = getattr(core, "simd_warning", None)
    if fn is None:
        return None
    try:
        msg = fn()
    except Exception as exc:  # report it, never fail `info` because of it
        return f"_core.simd_warning() failed: {exc}"
    return None if msg is None else str(msg)


def _rayon_threads(core: Any) -> tuple[int, str]:
    """Worker threads of rayon's global pool, and where the figure comes from."""
    fn = getattr(core, "rayon_threads", None) or getattr(core, "num_threads", None)
    if fn is not None:
        try:
            return int(fn()), "reported by latentatlas._core"
        except Exception:  # fall back to rayon's own rule below
            pass
    env = os.environ.get("RAYON_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env), "RAYON_NUM_THREADS"
    try:
        n = len(os.sched_getaffinity(0))  # what std::thread::available_parallelism sees (no cgroup quota)
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return n, "rayon default: available CPUs; RAYON_NUM_THREADS overrides"


def info() -> dict[str, Any]:
    """This installation: version, SIMD path, rayon threads, build profile, importable extras.

    Returns
    -------
    dict with ``version``, ``python``, ``platform``, ``numpy``, ``core`` (the extension file),
    ``simd`` (``path`` in use, ``requested`` = $LATENTATLAS_SIMD or None, ``warning`` when that
    value was not honoured, ``note`` when the extension cannot say),
    ``rayon_threads`` and ``rayon_threads_source``, ``build_profile`` (and ``build_profile_note``
    when unknown), ``extras`` (extra -> bool) and ``extras_modules`` (module -> bool).
    """
    import numpy as np

    from . import __version__, _core

    simd, simd_note = _from_core(_core, "simd_path")
    profile, profile_note = _from_core(_core, "build_profile")
    threads, threads_source = _rayon_threads(_core)
    modules = sorted({m for mods in EXTRAS.values() for m in mods})
    found = {m: _importable(m) for m in modules}
    out: dict[str, Any] = {
        "version": __version__,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{platform.system()} {platform.machine()}",
        "numpy": np.__version__,
        "core": os.path.basename(getattr(_core, "__file__", "") or "") or UNKNOWN,
        "simd": {
            "path": simd,
            "requested": os.environ.get(SIMD_ENV),
            "warning": _simd_warning(_core),
            "note": simd_note,
        },
        "rayon_threads": threads,
        "rayon_threads_source": threads_source,
        "build_profile": profile,
        "build_profile_note": profile_note,
        "extras": {extra: all(found[m] for m in mods) for extra, mods in EXTRAS.items()},
        "extras_modules": found,
    }
    return out


def format_info(d: dict[str, Any]) -> str:
    """The readable report ``latentatlas info`` prints."""
    simd = d["simd"]
    simd_line = simd["path"]
    if simd["requested"]:
        simd_line += f"  ({SIMD_ENV}={simd['requested']})"
    if simd["note"]:
        simd_line += f"  [{simd['note']}]"
    if simd.get("warning"):
        simd_line += f"\n                 warning: {simd['warning']}"
    profile = d["build_profile"] + (f"  [{d['build_profile_note']}]" if d.get("build_profile_note") else "")
    lines = [
        f"latentatlas {d['version']}",
        f"  python         {d['python']} on {d['platform']}, numpy {d['numpy']}",
        f"  extension      {d['core']}",
        f"  simd path      {simd_line}",
        f"  rayon threads  {d['rayon_threads']}  ({d['rayon_threads_source']})",
        f"  build profile  {profile}",
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
            f"(${SIMD_ENV}=auto|scalar|avx2|avx512 forces one), rayon threads, build profile and "
            "which optional extras (text, llm, umap, parquet, dask) are importable."
        ),
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_run)


if __name__ == "__main__":  # pragma: no cover - python -m latentatlas.info
    _parser = argparse.ArgumentParser(prog="latentatlas info")
    _parser.add_argument("--json", action="store_true")
    sys.exit(_run(_parser.parse_args()))
