"""Peer libraries that need another Python: arrowspace 0.30.0 (CPython >= 3.12 wheels only).

``python tests/peers.py`` (run by ``make peers``) creates ``.peers/arrowspace`` — a CPython 3.12 venv
with ``arrowspace==0.30.0`` — from pyenv's or the PATH's 3.12; the comparison test and the search
benchmark run :file:`arrowspace_job.py` in it as a subprocess. Without a 3.12 interpreter there is
nothing to create; callers skip with the reason :func:`arrowspace_python` gives.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".peers" / "arrowspace"
PIN = "arrowspace==0.30.0"
JOB = Path(__file__).resolve().with_name("arrowspace_job.py")


def python312() -> str | None:
    """A CPython 3.12 interpreter: pyenv's, else ``python3.12`` on PATH."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(os.path.join(root, "versions", "3.12*", "bin", "python")))
    return found[-1] if found else shutil.which("python3.12")


def _has_arrowspace(py: Path) -> bool:
    return py.is_file() and subprocess.run([str(py), "-c", "import arrowspace"], capture_output=True).returncode == 0


def arrowspace_python(create: bool = True) -> tuple[str | None, str]:
    """(the venv's python, "") or (None, why not). Creates the venv when missing and ``create``."""
    py = VENV / "bin" / "python"
    if _has_arrowspace(py):
        return str(py), ""
    base = python312()
    if base is None:
        return None, "no CPython 3.12 interpreter (pyenv or python3.12 on PATH): arrowspace 0.30.0 needs >= 3.12"
    if not create:
        return None, f"{VENV} has no arrowspace; run `make peers`"
    subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", PIN], check=True)
    return str(py), ""


def run_job(py: str, inputs: Path, output: Path, timeout: float = 1800) -> None:
    """Run :file:`arrowspace_job.py` in the peer venv (inputs/outputs are .npz files)."""
    proc = subprocess.run([py, str(JOB), str(inputs), str(output)], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"arrowspace job failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


if __name__ == "__main__":
    path, why = arrowspace_python()
    print(f"arrowspace peer: {path}" if path else f"arrowspace peer skipped: {why}")
    sys.exit(0)
