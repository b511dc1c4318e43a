"""Execute the example notebooks (``examples/*.ipynb``) with nbclient; the docs render the executed copies.

The notebooks are committed without outputs. ``execute`` runs one in the ``latentatlas`` kernel (the
project's ``.venv``, registered by ``make docs``; ``python3`` when that kernel is not registered), in an
empty working folder of its own (``build/docs/work/<name>/``: what a notebook writes stays out of the
checkout), and writes the executed copy to ``build/docs/examples/<name>.ipynb``. A cell that
raises fails the run (``CellExecutionError`` names the notebook and the cell).

An executed copy is reused while nothing it depends on changed: its metadata records a hash of the
notebook's cells and of the package (every ``.py``/``.pyi`` under ``python/latentatlas`` and the compiled
extension); any change re-executes it. ``LATENTATLAS_NOTEBOOKS_FRESH=1`` always re-executes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
OUT = ROOT / "build" / "docs"
PKG = ROOT / "python" / "latentatlas"
TIMEOUT_S = 600  # per cell
KEY = "latentatlas_inputs"


def notebooks() -> list[Path]:
    return sorted(EXAMPLES.glob("*.ipynb"))


def _package_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(PKG.rglob("*")):
        if p.is_file() and (p.suffix in (".py", ".pyi") or ".so" in p.name) and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(PKG)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def inputs_hash(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]
    return hashlib.sha256(json.dumps([cells, _package_hash()]).encode()).hexdigest()


def executed_path(path: Path) -> Path:
    return OUT / "examples" / path.name


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return "latentatlas" if "latentatlas" in KernelSpecManager().find_kernel_specs() else "python3"


def execute(path: Path, *, fresh: bool | None = None) -> tuple[Path, float]:
    """Execute ``path`` (or reuse its up-to-date executed copy); return the copy and the seconds spent."""
    import nbformat
    from nbclient import NotebookClient

    if fresh is None:
        fresh = os.environ.get("LATENTATLAS_NOTEBOOKS_FRESH") == "1"
    out = executed_path(path)
    key = inputs_hash(path)
    if not fresh and out.exists():
        done = nbformat.read(out, as_version=4)
        if done.metadata.get(KEY) == key:
            return out, 0.0
    nb = nbformat.read(path, as_version=4)
    work = OUT / "work" / path.stem
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name=_kernel_name(),
        resources={"metadata": {"path": str(work)}},
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # not ipykernel's notice about TCP on localhost
    )
    client.execute()
    spent = time.perf_counter() - t
    nb.metadata[KEY] = key
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".ipynb.partial")
    nbformat.write(nb, tmp)
    tmp.replace(out)
    return out, spent


def execute_all(*, fresh: bool | None = None, log=print) -> list[Path]:
    done = []
    for p in notebooks():
        out, spent = execute(p, fresh=fresh)
        log(f"notebook {p.name}: " + (f"executed in {spent:.1f} s" if spent else "up to date"))
        done.append(out)
    return done


if __name__ == "__main__":  # python docs/hooks/notebooks.py [--fresh]
    execute_all(fresh="--fresh" in sys.argv[1:])
