"""SIMD dispatch of the Rust kernels: LATENTATLAS_SIMD picks the path, every path gives the same bits,
and a bad value never crashes (it falls back to auto and says so)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from latentatlas import _core

PATHS = ("scalar", "avx2", "avx512")

# Runs in a fresh interpreter (the path is read once per process): prints the path, the warning and
# a digest of rayleigh_energy + sparse_decode outputs in both precisions.
_PROBE = r"""
import hashlib, warnings
import numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from latentatlas import _core
rng = np.random.default_rng(0)
f, n, d = 97, 300, 67
rows = np.repeat(np.arange(f), 4)
cols = np.concatenate([[i, (i + 1) % f, (i * 7 + 3) % f, (i * 13 + 5) % f] for i in range(f)])
data = rng.standard_normal(rows.size)
indptr = np.arange(0, rows.size + 1, 4, dtype=np.int64)
h = hashlib.sha256()
for dt in (np.float32, np.float64):
    X = rng.standard_normal((n, f)).astype(dt)
    h.update(_core.rayleigh_energy(X, indptr, cols.astype(np.int64), data).tobytes())
    W = rng.standard_normal((2000, d)).astype(dt)
    v = rng.random((n, 8)).astype(dt)
    i = rng.integers(0, 2000, (n, 8))
    h.update(_core.sparse_decode(v, i, W, bias=rng.standard_normal(d).astype(dt)).tobytes())
print(_core.simd_path())
print(_core.simd_warning())
print(h.hexdigest())
print(" | ".join(str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)))
"""


@functools.cache
def _probe(value: str | None) -> tuple[str, str, str, str]:
    env = dict(os.environ)
    env.pop("LATENTATLAS_SIMD", None)
    if value is not None:
        env["LATENTATLAS_SIMD"] = value
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    path, warning, digest, caught = (out.stdout.splitlines() + [""])[:4]
    return path, warning, digest, caught


def test_path_and_warning_in_this_process():
    assert _core.simd_path() in PATHS
    if "LATENTATLAS_SIMD" not in os.environ:
        assert _core.simd_warning() is None


def test_every_path_gives_the_same_bits_and_unsupported_paths_fall_back():
    auto_path, warning, auto_digest, caught = _probe(None)
    assert warning == "None" and caught == ""
    assert auto_path in PATHS
    for value in PATHS:
        path, warning, digest, caught = _probe(value)
        assert digest == auto_digest, value  # no FMA contraction: identical arithmetic on every path
        if path == value:
            assert warning == "None"
        else:  # this CPU lacks the path: auto is used and the problem is visible
            assert path == auto_path
            assert "LATENTATLAS_SIMD" in warning and "does not support" in warning
            assert warning in caught


@pytest.mark.parametrize("value", ["sse9", "AVX-512"])
def test_unknown_value_falls_back_to_auto_with_a_warning(value):
    auto_path = _probe(None)[0]
    path, warning, _, caught = _probe(value)
    assert path == auto_path
    for part in ("LATENTATLAS_SIMD", value, "auto, scalar, avx2, avx512"):
        assert part in warning
    assert warning in caught


def test_value_is_case_and_space_insensitive():
    assert _probe(" Scalar ")[0] == "scalar"
    assert _probe("AUTO")[:2] == (_probe(None)[0], "None")


def test_knn_sqdist_matches_brute_force():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 7))
    d2, idx = _core.knn_sqdist(X, k=6)
    full = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(full, np.inf)
    want = np.argsort(full, axis=1, kind="stable")[:, :6]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_allclose(d2, np.take_along_axis(full, want, 1), rtol=1e-12)
    assert d2.dtype == np.float64 and idx.dtype == np.int64
    d32, i32 = _core.knn_sqdist(X.astype(np.float32), k=6, threads=1)
    assert (i32 == idx).mean() > 0.99 and np.all(np.diff(d32, axis=1) >= 0)
    assert np.array_equal(_core.knn_sqdist(X.astype(np.float32), k=6, threads=2)[1], i32)


def test_knn_sqdist_errors():
    X = np.random.default_rng(0).standard_normal((10, 3))
    for k in (0, 10, 11):
        with pytest.raises(ValueError, match="k"):
            _core.knn_sqdist(X, k=k)
    with pytest.raises(TypeError):
        _core.knn_sqdist(X, 3)  # k is keyword-only
    with pytest.raises(TypeError):
        _core.knn_sqdist(X.astype(np.int64), k=3)
    X[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at row 4\)"):
        _core.knn_sqdist(X, k=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _core.simd_path() in PATHS
