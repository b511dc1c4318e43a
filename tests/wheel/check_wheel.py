"""Install the built wheel the way users do and run the smoke suite on every supported CPython.

    python3 tests/wheel/check_wheel.py [dist/latentatlas-*-cp310-abi3-manylinux*.whl]

For each of CPython 3.10, 3.11, 3.12 and 3.13 (pyenv's interpreters, else ``python3.X`` on PATH;
a missing one is skipped with a printed reason): a fresh virtual environment in a temporary
directory outside the checkout, ``pip install <wheel>`` (base dependencies only, binary wheels
only, from PyPI through the shared pip cache), then ``tests/wheel/smoke.py`` run from that
directory with ``cargo``/``rustc`` removed from PATH. Exit status 1 when any interpreter fails,
or when none could be tested.

Environment: LATENTATLAS_WHEEL_PYTHONS="3.10 3.12" limits the versions; LATENTATLAS_WHEEL_JOBS
(default 2) venvs are set up at once; KEEP_VENVS=1 keeps them.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SMOKE = Path(__file__).resolve().with_name("smoke.py")
VERSIONS = ("3.10", "3.11", "3.12", "3.13")
WHEEL_RE = re.compile(r"^latentatlas-(?P<version>[^-]+)-cp310-abi3-manylinux[^-]*_x86_64\.whl$")


def cargo_version() -> str:
    """The Cargo workspace version: the single source of latentatlas's version."""
    text = (ROOT / "Cargo.toml").read_text()
    m = re.search(r"^\[workspace\.package\][^\[]*?^version\s*=\s*\"([^\"]+)\"", text, re.M | re.S)
    if not m:
        sys.exit("check_wheel: no [workspace.package] version in Cargo.toml")
    return m.group(1)


def find_wheel(args: list[str]) -> Path:
    cands = args or glob.glob(str(ROOT / "dist" / "latentatlas-*.whl"))
    if len(cands) != 1:
        sys.exit(f"check_wheel: expected exactly one wheel, found {cands or 'none'} (run `make wheel`)")
    wheel = Path(cands[0]).resolve()
    if not WHEEL_RE.match(wheel.name):
        sys.exit(f"check_wheel: {wheel.name} is not a latentatlas-*-cp310-abi3-manylinux*_x86_64 wheel")
    return wheel


def find_python(version: str) -> tuple[str | None, str]:
    """``(path, "")`` of a working CPython ``version``, or ``(None, reason)``."""
    cands: list[str] = []
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))

    # pyenv's installs, newest patch first (3.10.13 before 3.10.9)
    def patch(p: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", Path(p).parents[1].name))

    cands += sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"), key=patch, reverse=True)
    for name in (f"python{version}",):
        w = shutil.which(name)
        if w and "/shims/" not in w:
            cands.append(w)
    for c in cands:
        r = subprocess.run(
            [c, "-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2], sys.implementation.name)"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if r.returncode == 0 and r.stdout.split() == [version, "cpython"]:
            return c, ""
    tried = (
        ", ".join(cands)
        if cands
        else f"no {root}/versions/{version}.*/bin/python{version} and no python{version} on PATH"
    )
    return None, f"no working CPython {version} with venv+ensurepip (tried: {tried})"


def clean_env(venv: Path) -> dict[str, str]:
    """The user's environment minus the Rust toolchain and any Python redirection."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "CARGO", "RUST", "PYO3", "MATURIN"))
    }
    env.pop("VIRTUAL_ENV", None)
    env.pop("CONDA_PREFIX", None)
    keep = []
    for d in env.get("PATH", "").split(os.pathsep):
        if not d or any(os.access(os.path.join(d, t), os.X_OK) for t in ("cargo", "rustc", "rustup")):
            continue  # a directory that holds the Rust toolchain is dropped
        if "pyenv" in d:
            continue  # pyenv shims would hand out other interpreters
        keep.append(d)
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *keep])
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def step(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_one(python: str, version: str, wheel: Path, expect: str, work: Path) -> tuple[bool, str]:
    t0 = time.perf_counter()
    venv = work / f"venv-{version}"
    r = subprocess.run([python, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300, cwd=work)
    if r.returncode != 0:
        return False, f"venv creation failed:\n{r.stdout}\n{r.stderr}"
    env = clean_env(venv)
    py = str(venv / "bin" / "python")
    # Base dependencies only, binary wheels only (nothing may compile), through the shared pip cache.
    r = step(
        [py, "-m", "pip", "install", "--quiet", "--no-compile", "--only-binary", ":all:", str(wheel)],
        cwd=work,
        env=env,
        timeout=900,
    )
    if r.returncode != 0:
        return False, f"pip install failed:\n{r.stdout}\n{r.stderr}"
    t_install = time.perf_counter() - t0
    shutil.copy(SMOKE, work / "smoke.py")
    r = step(
        [py, "-I", "smoke.py", "--expect-version", expect, "--checkout", str(ROOT)], cwd=work, env=env, timeout=900
    )
    out = "\n".join("    " + line for line in (r.stdout + r.stderr).rstrip().splitlines())
    dt = time.perf_counter() - t0
    summary = f"venv + pip install {t_install:.0f} s, total {dt:.0f} s"
    if r.returncode != 0:
        return False, f"smoke suite failed (exit {r.returncode}); {summary}\n{out}"
    return True, f"{summary}\n{out}"


def main(argv: list[str]) -> int:
    wheel = find_wheel(argv)
    expect = cargo_version()
    m = WHEEL_RE.match(wheel.name)
    assert m is not None
    if m.group("version") != expect:
        print(f"check_wheel: {wheel.name} is version {m.group('version')}, the Cargo workspace says {expect}")
        return 1
    versions = os.environ.get("LATENTATLAS_WHEEL_PYTHONS", " ".join(VERSIONS)).split()
    print(
        f"check_wheel: {wheel.name} ({wheel.stat().st_size / 1e6:.2f} MB) on CPython {', '.join(versions)}", flush=True
    )
    results: dict[str, tuple[str, str]] = {}
    todo: list[tuple[str, str]] = []
    for version in versions:
        python, reason = find_python(version)
        if python is None:
            print(f"-- CPython {version}: SKIPPED: {reason}", flush=True)
            results[version] = ("SKIPPED", reason)
        else:
            todo.append((version, python))

    def one(version: str, python: str) -> tuple[str, bool, str]:
        work = Path(tempfile.mkdtemp(prefix=f"latentatlas-wheel-{version}-"))
        try:
            ok, detail = test_one(python, version, wheel, expect, work)
        except subprocess.TimeoutExpired as exc:
            ok, detail = False, f"timed out: {exc}"
        finally:
            if os.environ.get("KEEP_VENVS") != "1":
                shutil.rmtree(work, ignore_errors=True)
        return version, ok, f"{python}: {detail}"

    # Installs are mostly unpacking and I/O: two at a time roughly halves the wall time.
    jobs = max(1, int(os.environ.get("LATENTATLAS_WHEEL_JOBS", "2")))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for fut in as_completed([pool.submit(one, v, p) for v, p in todo]):
            version, ok, detail = fut.result()
            head, _, body = detail.partition("\n")
            print(f"-- CPython {version}: {'OK' if ok else 'FAILED'} ({head})", flush=True)
            if body:
                print(body, flush=True)
            results[version] = ("OK" if ok else "FAILED", head)
    print("check_wheel summary:")
    for version, (status, summary) in sorted(results.items()):
        print(f"  CPython {version}: {status}: {summary}")
    failed = [v for v, (s, _) in results.items() if s == "FAILED"]
    tested = [v for v, (s, _) in results.items() if s == "OK"]
    if failed:
        print(f"check_wheel: FAILED on CPython {', '.join(failed)}")
        return 1
    if not tested:
        print("check_wheel: FAILED: no interpreter could be tested")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
