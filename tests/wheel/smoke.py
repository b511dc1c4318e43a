"""Smoke suite of an installed latentatlas wheel, run inside a fresh virtual environment.

Run by tests/wheel/check_wheel.py from a temporary directory outside the checkout, with cargo and
rustc off PATH:  ``<venv>/bin/python -I smoke.py --expect-version X.Y.Z``. Every check runs; each
prints PASS / FAIL / SKIP, and any FAIL makes the exit status 1.
"""

from __future__ import annotations

import sys

# --- `import latentatlas` must import no optional dependency ------------------------------------
# Recorded before anything else is imported: which optional top-level modules are looked for, and
# from which file (a look-up made by latentatlas's own code is a failure even when the package is
# not installed in this base-only environment).
OPTIONAL = ("umap", "pyarrow", "onnxruntime", "tokenizers", "gguf", "dask", "distributed", "torch", "pandas")
_ATTEMPTS: list[tuple[str, str]] = []


class _Spy:
    @staticmethod
    def find_spec(name, path=None, target=None):  # noqa: ANN001, ANN205 - importlib protocol
        if name.partition(".")[0] in OPTIONAL:
            f = sys._getframe(1)
            while f is not None and ("importlib" in f.f_code.co_filename or f.f_code.co_filename.startswith("<frozen")):
                f = f.f_back
            _ATTEMPTS.append((name, f.f_code.co_filename if f is not None else "?"))
        return None  # never load anything: the normal finders decide


sys.meta_path.insert(0, _Spy)
import latentatlas  # noqa: E402

sys.meta_path.remove(_Spy)
_LOADED_AT_IMPORT = sorted(m for m in OPTIONAL if m in sys.modules)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

RESULTS: list[tuple[str, str, str]] = []  # (status, name, detail)


def check(name: str):
    """Decorator: run the check now, record PASS / FAIL / SKIP (a check returns a SKIP reason or None)."""

    def deco(fn):
        try:
            note = fn()
        except Exception as exc:  # a failing check is reported, the others still run
            RESULTS.append(("FAIL", name, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
            print(f"FAIL  {name}: {type(exc).__name__}: {exc}", flush=True)
            return fn
        if isinstance(note, str) and note.startswith("SKIP"):
            RESULTS.append(("SKIP", name, note))
            print(f"SKIP  {name}: {note[4:].lstrip(': ')}", flush=True)
        else:
            RESULTS.append(("PASS", name, note or ""))
            print(f"PASS  {name}" + (f": {note}" if note else ""), flush=True)
        return fn

    return deco


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)


ap = argparse.ArgumentParser()
ap.add_argument("--expect-version", required=True)
ap.add_argument("--checkout", default=None, help="the source checkout, which must not be where latentatlas comes from")
ARGS = ap.parse_args()
BIN = Path(sys.executable).parent
TMP = Path(tempfile.mkdtemp(prefix="latentatlas-smoke-"))


# --- the installation itself -----------------------------------------------------------------


@check("installed from the wheel, not the source tree")
def _():
    pkg = Path(latentatlas.__file__).resolve()
    site = Path(sys.prefix).resolve()
    assert site in pkg.parents, f"latentatlas comes from {pkg}, not from the venv {site}"
    if ARGS.checkout:
        checkout = Path(ARGS.checkout).resolve()
        assert checkout not in pkg.parents, f"latentatlas comes from the checkout: {pkg}"
        cwd = Path.cwd().resolve()
        assert cwd != checkout and checkout not in cwd.parents, f"running inside the checkout: {cwd}"
    direct = json.loads(metadata.distribution("latentatlas").read_text("direct_url.json") or "{}")
    assert not direct.get("dir_info", {}).get("editable"), f"editable install: {direct}"
    return str(pkg.parent)


@check("no Rust toolchain on PATH")
def _():
    found = {t: shutil.which(t) for t in ("cargo", "rustc")}
    assert not any(found.values()), f"found {found}"


@check("extension is the abi3 build")
def _():
    from latentatlas import _core

    name = Path(_core.__file__).name
    assert name == "_core.abi3.so", f"loaded {name}"
    return name


@check("version single-sourced (Cargo workspace -> metadata -> __version__)")
def _():
    v = metadata.version("latentatlas")
    assert v == ARGS.expect_version, f"metadata version {v} != Cargo workspace version {ARGS.expect_version}"
    assert latentatlas.__version__ == v, f"__version__ {latentatlas.__version__} != {v}"
    return v


@check("metadata: Requires-Python, classifiers, license file")
def _():
    md = metadata.metadata("latentatlas")
    assert md["Requires-Python"] == ">=3.10", md["Requires-Python"]
    classifiers = md.get_all("Classifier") or []
    for minor in (10, 11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers, f"no classifier for 3.{minor}"
    this = f"Programming Language :: Python :: {sys.version_info.major}.{sys.version_info.minor}"
    assert this in classifiers, f"this interpreter has no classifier: {this}"
    files = [str(f) for f in metadata.files("latentatlas") or []]
    lic = [f for f in files if f.endswith("LICENSE")]
    assert lic, "no LICENSE in the wheel's dist-info"
    text = metadata.distribution("latentatlas").locate_file(lic[0]).read_text()
    assert "MIT License" in text and "the latentatlas developers" in text
    urls = md.get_all("Project-URL") or []
    assert urls, "no Project-URL"


@check("import latentatlas imports no optional dependency")
def _():
    assert not _LOADED_AT_IMPORT, f"import latentatlas loaded {_LOADED_AT_IMPORT}"
    ours = [(n, f) for n, f in _ATTEMPTS if f"{os.sep}latentatlas{os.sep}" in f]
    assert not ours, f"latentatlas looks for optional modules at import time: {ours}"
    # A dependency that looks for one would load it wherever it is installed (sklearn.base does so
    # for pandas): not latentatlas's own import, but worth seeing, so it is printed.
    others = sorted({f"{n} (from {Path(f).parent.name}/{Path(f).name})" for n, f in _ATTEMPTS})
    return f"WARNING: dependencies look for optional modules at import: {', '.join(others)}" if others else None


# --- numerics --------------------------------------------------------------------------------


@check("SpectralEnergy fit + energies == latentatlas.reference (float64 and float32)")
def _():
    from latentatlas import SpectralEnergy, reference

    rng = np.random.default_rng(11)
    Z = rng.standard_normal((400, 5)) @ rng.standard_normal((5, 24)) + 0.3 * rng.standard_normal((400, 24))
    for k in (3, 8):
        L_ref, _W = reference.build_feature_laplacian(Z, k=k)
        e_ref = reference.rayleigh_energy(Z, L_ref)
        se = SpectralEnergy(k=k).fit(Z)
        assert rel_err(se.laplacian_.toarray(), L_ref) < 1e-10, "Laplacian differs"
        assert rel_err(se.energy(), e_ref) < 1e-10, "energies differ"
        assert rel_err(se.normalized_energy(), reference.minmax(e_ref)) < 1e-10, "normalised energies differ"
        # new rows through the fitted Laplacian
        Xn = rng.standard_normal((50, 24))
        assert rel_err(se.energy(Xn), reference.rayleigh_energy(Xn, L_ref)) < 1e-10
    Z32 = Z.astype(np.float32)
    L_ref, _W = reference.build_feature_laplacian(Z32.astype(np.float64), k=8)
    e32 = SpectralEnergy(k=8).fit(Z32).energy()
    e_ref = reference.rayleigh_energy(Z32.astype(np.float64), L_ref)
    assert np.max(np.abs(e32 - e_ref) / np.abs(e_ref)) < 1e-4, "float32 energies differ"


@check("TopKSAE encode/decode == NumPy (float64 and float32)")
def _():
    from latentatlas.sae import TopKSAE

    rng = np.random.default_rng(5)
    d, n, k = 24, 300, 7
    parts = (
        rng.standard_normal((n, d)),
        0.1 * rng.standard_normal(n),
        rng.standard_normal((n, d)),
        0.1 * rng.standard_normal(d),
    )
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
        sae = TopKSAE.from_arrays(*(p.astype(dtype) for p in parts), k, subtract_decoder_bias=True)
        X = rng.standard_normal((130, d)).astype(dtype)
        v, i = sae.encode(X)
        assert v.shape == (130, k) and i.dtype == np.int64 and v.dtype == dtype
        pre = (X.astype(np.float64) - sae.b_dec) @ sae.W_enc.T.astype(np.float64) + sae.b_enc
        order = np.argsort(-pre, axis=1, kind="stable")[:, :k]
        rv = np.maximum(np.take_along_axis(pre, order, 1), 0)
        np.testing.assert_allclose(v, rv, atol=tol)
        assert (i == order).mean() > 0.99, "top-k indices differ"
        H = np.zeros((130, n))
        np.put_along_axis(H, i, v.astype(np.float64), 1)
        ref = H @ sae.W_dec.astype(np.float64) + sae.b_dec
        np.testing.assert_allclose(sae.decode(v, i), ref, atol=tol * 10)
        np.testing.assert_allclose(sae.reconstruct(X), ref, atol=tol * 10)


@check("PersonaVectorStore save/load round trip")
def _():
    from latentatlas.personas import PersonaVectorStore

    root = TMP / "personas"
    model = "org/tiny-model"
    store = PersonaVectorStore(model, root=root)
    rng = np.random.default_rng(3)
    vecs = {f"p{j:03d}": rng.standard_normal((4, 16)).astype(np.float32) for j in range(3)}
    for pid, vec in vecs.items():
        store.save("biography", pid, f"name {pid}", vec, ["q1", "q2"])
    fresh = PersonaVectorStore(model, root=root)  # a new instance reads what is on disk
    assert fresh.available_variants() == ["biography"], fresh.available_variants()
    assert fresh.shape("biography") == (4, 16)
    for pid, vec in vecs.items():
        got = fresh.load("biography", pid)
        assert got.dtype == np.float32 and np.array_equal(got, vec), f"{pid} differs after the round trip"
    assert fresh.sample_ids("biography", "p001") == ["q1", "q2"]


# --- command line ----------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every sub-command path of the parser (``("sae", "train")``, ...), found by walking it."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append(prefix + (name,))
                out.extend(_subcommands(sub, prefix + (name,)))
    return out


def _commands() -> list[tuple[str, ...]]:
    from latentatlas.cli import build_parser

    return _subcommands(build_parser())


@check("latentatlas --help / --version / python -m latentatlas (console script)")
def _():
    exe = BIN / "latentatlas"
    assert exe.is_file(), f"no console script {exe}"
    r = run(str(exe), "--help")
    assert r.returncode == 0 and "usage: latentatlas" in r.stdout, f"rc={r.returncode}\n{r.stdout}\n{r.stderr}"
    r = run(str(exe), "--version")
    assert r.returncode == 0 and ARGS.expect_version in r.stdout, f"rc={r.returncode}: {r.stdout!r} {r.stderr!r}"
    r = run(sys.executable, "-m", "latentatlas", "--help")
    assert r.returncode == 0 and "usage:" in r.stdout, f"rc={r.returncode}\n{r.stderr}"
    return r.stdout.strip().splitlines()[0]


@check("every sub-command's --help")
def _():
    from latentatlas.cli import main

    cmds = _commands()
    assert cmds, "the parser has no sub-commands"
    for path in cmds:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()) as err:
            try:
                main([*path, "--help"])
                code = 0  # pragma: no cover - --help always exits
            except SystemExit as exc:
                code = exc.code
        assert code in (0, None), f"latentatlas {' '.join(path)} --help exited {code}: {err.getvalue()}"
        assert "usage: latentatlas" in buf.getvalue(), f"latentatlas {' '.join(path)} --help printed no usage"
    # and one of them through the real console script
    r = run(str(BIN / "latentatlas"), *cmds[-1], "--help")
    assert r.returncode == 0 and "usage:" in r.stdout, f"rc={r.returncode}\n{r.stderr}"
    return f"{len(cmds)}: " + ", ".join(" ".join(c) for c in cmds)


@check("latentatlas.info.info()")
def _():
    from latentatlas.info import EXTRAS, format_info, info

    d = info()
    assert d["version"] == ARGS.expect_version
    assert {"text", "llm", "umap", "parquet", "dask"} <= set(d["extras"]), d["extras"]  # the five, at least
    assert all(isinstance(x, bool) for x in d["extras"].values())
    assert isinstance(d["rayon_threads"], int) and d["rayon_threads"] >= 1
    assert d["simd"]["path"] in ("scalar", "avx2", "avx512"), d["simd"]
    assert d["build_profile"] == "release", d["build_profile"]
    assert "latentatlas" in format_info(d)
    assert set(EXTRAS) == set(d["extras"])
    # find_spec only: nothing optional got imported by info()
    assert not [m for m in OPTIONAL if m in sys.modules], [m for m in OPTIONAL if m in sys.modules]
    return f"simd={d['simd']['path']}, threads={d['rayon_threads']}, profile={d['build_profile']}"


@check("latentatlas info / info --json (console script)")
def _():
    exe = str(BIN / "latentatlas")
    r = run(exe, "info")
    assert r.returncode == 0 and f"latentatlas {ARGS.expect_version}" in r.stdout, (
        f"rc={r.returncode}\n{r.stdout}\n{r.stderr}"
    )
    r = run(exe, "info", "--json")
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stderr}"
    d = json.loads(r.stdout)
    assert d["version"] == ARGS.expect_version
    # LATENTATLAS_SIMD: a forced path is used; a bad value warns (naming the variable) and falls back.
    auto = d["simd"]["path"]
    for forced in ("scalar", "auto", "bogus"):
        r = subprocess.run(
            [exe, "info", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "LATENTATLAS_SIMD": forced},
        )
        assert r.returncode == 0, f"LATENTATLAS_SIMD={forced}: rc={r.returncode}\n{r.stderr}"
        got = json.loads(r.stdout)["simd"]
        want = {"scalar": "scalar", "auto": auto, "bogus": auto}[forced]
        assert got["path"] == want, f"LATENTATLAS_SIMD={forced}: path {got['path']}, expected {want}"
        if forced == "bogus":
            assert got.get("warning") and "LATENTATLAS_SIMD" in got["warning"], got
            assert "LATENTATLAS_SIMD" in r.stderr, f"no warning on stderr: {r.stderr!r}"
    return f"simd auto={auto}; LATENTATLAS_SIMD=scalar|auto|bogus honoured/warned"


shutil.rmtree(TMP, ignore_errors=True)
failed = [r for r in RESULTS if r[0] == "FAIL"]
n_pass = sum(r[0] == "PASS" for r in RESULTS)
n_skip = sum(r[0] == "SKIP" for r in RESULTS)
print(f"== {sys.version.split()[0]}: {n_pass} passed, {len(failed)} failed, {n_skip} skipped", flush=True)
for _status, name, detail in failed:
    print(f"\n--- FAIL {name}\n{detail}", file=sys.stderr)
sys.exit(1 if failed else 0)
