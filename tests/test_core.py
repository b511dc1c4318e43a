"""The ``_core`` contract table: every Rust kernel against its NumPy twin in ``reference.core``.

Anchor: tsdownsample ``tests/test_algos_python_compliance.py`` (Rust output vs a Python reference
behind the same interface). One row (:class:`Spec`) per ``_core`` function; one test per column:

============================  ==================================================================
test                          what it checks, for every kernel
============================  ==================================================================
test_surface                  every ``_core`` function has a row and a twin with its signature
test_matches_twin             float32/float64 × C / Fortran / strided inputs vs the twin
test_exact_on_integer_data    integer-valued inputs (exact sums, many ties): bit-equal outputs, so
                              the tie rule (value desc, index asc) is the same everywhere
test_edge_cases               empty rows, k = all candidates, d = 0, constant / zero columns ...
test_nan_rejected             NaN → ValueError naming the argument, in the kernel and the twin
test_dtype_mix                float32 with float64 (or an integer array) → TypeError, both
test_threads_bit_identical    threads=1, 2 and None give the same bits (inputs span many blocks)
============================  ==================================================================

Tolerances: indices are compared exactly, except for float32 random data, where a near-tie may
swap two candidates; there each returned index must score its returned value under the twin's
float64 scores. Values: float64 rtol 1e-10 (relative to the largest output), float32 3e-5.

Kernels still being added to the Rust side (``knn_sqdist``, ``feature_topk``'s (values, indices)
order) are skipped with a printed reason while ``_core`` lacks them; their twins are tested here.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from latentatlas import _core
from latentatlas.reference import core as twin

Args = tuple[list[Any], dict[str, Any]]
DTYPES = [np.float32, np.float64]


def _vals(rng: np.random.Generator, shape: tuple[int, ...], dt: Any, integer: bool) -> np.ndarray:
    if integer:
        return rng.integers(-3, 4, shape).astype(dt)
    return rng.standard_normal(shape).astype(dt)


def _idx(rng: np.random.Generator, rows: int, k: int, n: int) -> np.ndarray:
    return rng.integers(0, n, (rows, k)).astype(np.int64)


# --- the rows: how to build inputs for each kernel (scale 1: small, scale > 1: many blocks) -------
def mk_gram(rng, dt, integer, scale=1):
    return [_vals(rng, (300 * scale, 12 + 58 * (scale > 1)), dt, integer)], {}


def mk_feature_topk(rng, dt, integer, scale=1):
    return [_vals(rng, (300 * scale, 12 + 58 * (scale > 1)), dt, integer), 4], {}


def mk_rayleigh(rng, dt, integer, scale=1):
    f = 12 + 58 * (scale > 1)
    L = sp.random(f, f, density=0.3, random_state=int(rng.integers(1 << 30)), format="csr")
    if integer:
        L.data = np.round(L.data * 6 - 3)
    L = L + sp.diags(np.arange(f, dtype=np.float64))
    L = sp.csr_matrix(L)
    return [
        _vals(rng, (100 * scale, f), dt, integer),
        L.indptr.astype(np.int64),
        L.indices.astype(np.int64),
        L.data,
    ], {}


def mk_gemm_topk(rng, dt, integer, scale=1):
    m, n, d = (200, 300, 9) if scale == 1 else (600, 5000, 20)
    return [_vals(rng, (m, d), dt, integer), _vals(rng, (n, d), dt, integer), 7], {
        "bias": _vals(rng, (n,), dt, integer)
    }


def mk_lambda_topk(rng, dt, integer, scale=1):
    m, n, d = (60, 300, 9) if scale == 1 else (600, 5000, 20)
    q, x = _vals(rng, (m, d), dt, integer), _vals(rng, (n, d), dt, integer)
    inv = [1.0 / np.maximum(np.linalg.norm(a.astype(np.float64), axis=1), 1.0) for a in (q, x)]
    lam = [np.round(rng.random(r) * 8) / 8 if integer else rng.random(r) for r in (m, n)]  # eighths: exact
    return [q, x, inv[0], lam[0], inv[1], lam[1], 7], {"tau": 0.75 if integer else 0.7}


def mk_taumode(rng, dt, integer, scale=1):
    args, _ = mk_rayleigh(rng, dt, integer, scale)
    return args, {"tau": 0.5} if scale == 1 and not integer else {}


def mk_knn(rng, dt, integer, scale=1):
    return [_vals(rng, (150 * scale, 6), dt, integer)], {"k": 5}


def mk_sae_encode(rng, dt, integer, scale=1):
    rows, n, d = (200, 80, 10) if scale == 1 else (700, 3000, 24)
    return [_vals(rng, (rows, d), dt, integer), _vals(rng, (n, d), dt, integer), _vals(rng, (n,), dt, integer), 6], {
        "b_dec": _vals(rng, (d,), dt, integer)
    }


def mk_sae_threshold(rng, dt, integer, scale=1):
    rows, n, d = (200, 80, 10) if scale == 1 else (700, 3000, 24)
    x, w, be, bd = (_vals(rng, s, dt, integer) for s in ((rows, d), (n, d), (n,), (d,)))
    if integer:  # thresholds on the half-integers: no pre-activation equals one
        th = rng.integers(-2, 3, n).astype(dt) + dt(0.5)
    else:  # each threshold in the widest gap of its column's upper pre-activations: no near-tie flips in f32
        pre = np.sort(x.astype(np.float64) @ w.T.astype(np.float64) + (be - w.astype(np.float64) @ bd), axis=0)
        lo, hi = int(rows * 0.75), int(rows * 0.9)
        gap = np.argmax(np.diff(pre[lo:hi], axis=0), axis=0) + lo
        cols = np.arange(n)
        th = ((pre[gap, cols] + pre[gap + 1, cols]) / 2).astype(dt)
    return [x, w, be, th], {"b_dec": bd}


def mk_sparse_decode(rng, dt, integer, scale=1):
    rows, n, d = (200, 80, 10) if scale == 1 else (900, 3000, 24)
    return [_vals(rng, (rows, 6), dt, integer), _idx(rng, rows, 6, n), _vals(rng, (n, d), dt, integer)], {
        "bias": _vals(rng, (d,), dt, integer)
    }


def mk_gather(rng, dt, integer, scale=1):
    rows, n, d = (200, 80, 10) if scale == 1 else (900, 3000, 24)
    return [_vals(rng, (rows, d), dt, integer), _idx(rng, rows, 6, n), _vals(rng, (n, d), dt, integer)], {}


def mk_scatter(rng, dt, integer, scale=1):
    rows, n, d = (200, 80, 10) if scale == 1 else (900, 600, 24)
    return [_vals(rng, (rows, 6), dt, integer), _idx(rng, rows, 6, n), _vals(rng, (rows, d), dt, integer), n], {}


def mk_latent_search(rng, dt, integer, scale=1):
    nq, nd, n = (50, 300, 80) if scale == 1 else (300, 2000, 400)
    return [
        _vals(rng, (nq, 6), dt, integer), _idx(rng, nq, 6, n), _vals(rng, (nd, 6), dt, integer), _idx(rng, nd, 6, n), n, 10,
    ], {}  # fmt: skip


def mk_adam(rng, dt, integer, scale=1):
    shape = (40, 9) if scale == 1 else (300, 200)
    p, g = _vals(rng, shape, dt, integer), _vals(rng, shape, dt, integer)
    m, v = _vals(rng, shape, dt, integer), np.abs(_vals(rng, shape, dt, integer))
    return [p, g, m, v], {"lr": 0.01, "step": 3}


def mk_tomato(rng, dt, integer, scale=1):
    """A symmetric 6-NN-like graph in CSR form and a density (integers: many ties, the index rule)."""
    n = 120 * scale
    nbr = rng.integers(0, n, (n, 6))
    A = sp.coo_matrix((np.ones(nbr.size), (np.repeat(np.arange(n), 6), nbr.ravel())), shape=(n, n)).tocsr()
    A = (A + A.T).tocsr()
    A.sort_indices()
    return [_vals(rng, (n,), dt, integer), A.indptr.astype(np.int64), A.indices.astype(np.int64)], {}


@dataclass(frozen=True)
class Spec:
    """One kernel: an input maker and what the columns need to know about its arguments."""

    name: str
    make: Callable[..., Args]
    layouts: tuple[int, ...] = ()  # positional 2-D arguments that may come in any memory layout
    nan: tuple[tuple[int | str, str], ...] = ()  # (argument, regex of the name in the message)
    mix: tuple[int | str, ...] = ()  # float arguments that must share one dtype
    k_at: int | str | None = None  # where k is, for top-k kernels
    full_k: Callable[[list[Any], dict[str, Any]], int] | None = None  # k = every candidate
    inplace: bool = False  # adam_step: the outputs are the updated (param, m, v)
    tags: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return self.name


SPECS = [
    Spec("gram", mk_gram, layouts=(0,), nan=((0, "X"),)),
    Spec(
        "feature_topk", mk_feature_topk, layouts=(0,), nan=((0, "X"),), k_at=1, full_k=lambda a, kw: a[0].shape[1] - 1
    ),
    Spec("rayleigh_energy", mk_rayleigh, layouts=(0,), nan=((0, "X"), (3, "L"))),
    Spec(
        "gemm_topk",
        mk_gemm_topk,
        layouts=(0, 1),
        nan=((0, "A"), (1, "B"), ("bias", "bias")),
        mix=(1, "bias"),
        k_at=2,
        full_k=lambda a, kw: a[1].shape[0] - bool(kw.get("exclude_self")),
    ),  # fmt: skip
    Spec(
        "lambda_topk",
        mk_lambda_topk,
        layouts=(0, 1),
        nan=((0, "Q"), (1, "items"), (3, "query_lambda"), (5, "item_lambda")),
        mix=(1,),
        k_at=6,
        full_k=lambda a, kw: a[1].shape[0],
    ),  # fmt: skip
    Spec("taumode_raw", mk_taumode, layouts=(0,), nan=((0, "X"), (3, "L"))),
    Spec("knn_sqdist", mk_knn, layouts=(0,), nan=((0, "X"),), k_at="k", full_k=lambda a, kw: a[0].shape[0] - 1),
    Spec(
        "sae_encode",
        mk_sae_encode,
        layouts=(0, 1),
        # NaN in W_enc reaches the kernel's folded bias b_enc - W_enc b_dec first: named b_enc there
        nan=((0, "X"), (1, "W_enc|b_enc"), (2, "b_enc"), ("b_dec", "b_dec")),
        mix=(1, 2, "b_dec"),
        k_at=3,
        full_k=lambda a, kw: a[1].shape[0],
    ),  # fmt: skip
    Spec(
        "sae_encode_threshold",
        mk_sae_threshold,
        layouts=(0, 1),
        nan=((0, "X"), (1, "W_enc"), (2, "b_enc"), (3, "threshold"), ("b_dec", "b_dec")),
        mix=(1, 2, 3, "b_dec"),
    ),
    Spec("sparse_decode", mk_sparse_decode, layouts=(0, 1, 2), nan=((0, "values"),), mix=(2, "bias")),
    Spec("sparse_gather_dot", mk_gather, layouts=(0, 1, 2), mix=(2,)),
    Spec("sparse_scatter_rows", mk_scatter, layouts=(0, 1, 2), nan=((0, "coef"),), mix=(2,)),
    Spec(
        "latent_search",
        mk_latent_search,
        layouts=(0, 1, 2, 3),
        nan=((0, "query_values"), (2, "doc_values")),
        mix=(2,),
        k_at=5,
        full_k=lambda a, kw: a[2].shape[0],
    ),  # fmt: skip
    Spec("adam_step", mk_adam, nan=((1, "grad"),), mix=(1, 2), inplace=True),
    Spec("tomato_forest", mk_tomato, nan=((0, "density"),)),
]
BY_NAME = {s.name: s for s in SPECS}
# functions of _core that are not kernels (no arrays in, nothing to twin)
NOT_KERNELS = {"simd_path", "simd_warning", "build_profile", "rayon_threads"}
CORE_FUNCS = sorted(
    n for n in dir(_core) if callable(getattr(_core, n)) and not n.startswith("_") and n not in NOT_KERNELS
)


# --- calling both sides ------------------------------------------------------------------------------
def _core_fn(name: str) -> Callable[..., Any]:
    if not hasattr(_core, name):
        reason = f"_core.{name} is not built yet (the Rust side is adding it); its twin is tested alone"
        print(reason)
        pytest.skip(reason)
    fn = getattr(_core, name)
    if name != "feature_topk":
        return fn

    def feature_topk(*a: Any, **kw: Any) -> Any:
        out = fn(*a, **kw)
        if out[0].dtype == np.int64:  # the old (indices, values) order, until the Rust change lands
            return out[1], out[0]
        return out

    return feature_topk


def _call(fn: Callable[..., Any], spec: Spec, args: list[Any], kw: dict[str, Any]) -> tuple[np.ndarray, ...]:
    if spec.inplace:
        a = [np.array(x, copy=True) for x in args]
        fn(*a, **kw)
        return a[0], a[2], a[3]
    out = fn(*args, **kw)
    return tuple(out) if isinstance(out, tuple) else (out,)


def _set(args: list[Any], kw: dict[str, Any], at: int | str, value: Any) -> Args:
    args, kw = list(args), dict(kw)
    if isinstance(at, int):
        args[at] = value
    else:
        kw[at] = value
    return args, kw


def _get(args: list[Any], kw: dict[str, Any], at: int | str) -> Any:
    return args[at] if isinstance(at, int) else kw[at]


def _layout(a: np.ndarray, how: str) -> np.ndarray:
    if how == "F":
        return np.asfortranarray(a)
    if how == "strided":  # same values, every second row and column of a larger array
        v = np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)[::2, ::2]
        assert not v.flags.c_contiguous or a.size <= 1
        return v
    return a


def _tol(dt: Any) -> float:
    return 3e-5 if np.dtype(dt) == np.float32 else 1e-10


def _compare(spec: Spec, got: tuple, want: tuple, args: list[Any], kw: dict[str, Any], dt: Any, exact: bool) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (spec.name, g.shape, w.shape, g.dtype, w.dtype)
    if exact:
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w, err_msg=spec.name)
        return
    tol = _tol(dt)
    values = [(g, w) for g, w in zip(got, want) if g.dtype.kind == "f"]
    for g, w in values:
        scale = max(float(np.abs(w).max(initial=0.0)), 1.0)
        np.testing.assert_allclose(g, w, rtol=0, atol=tol * scale, err_msg=spec.name)
    if spec.k_at is None:
        return
    (gv, gi), (wv, wi) = got, want
    if np.dtype(dt) == np.float64:
        np.testing.assert_array_equal(gi, wi, err_msg=f"{spec.name}: indices")
        return
    # float32: a near-tie may swap; each returned index must score its returned value (f64 twin scores)
    fa, fkw = _set(args, kw, spec.k_at, spec.full_k(args, kw))
    fv, fi = _call(getattr(twin, spec.name), spec, fa, fkw)
    S = np.full((fv.shape[0], int(max(fi.max(initial=0), gi.max(initial=0))) + 1), np.nan)
    np.put_along_axis(S, fi, fv.astype(np.float64), axis=1)
    scale = max(float(np.abs(wv).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(np.take_along_axis(S, gi, axis=1), gv, rtol=0, atol=tol * scale, err_msg=spec.name)
    assert (gi == wi).mean() > 0.95, f"{spec.name}: too many index swaps for near-ties"


# --- the columns -------------------------------------------------------------------------------------
def test_surface():
    """Every _core function has a row, and its twin has the same parameters (names, kinds, defaults)."""
    assert set(CORE_FUNCS) <= set(BY_NAME), f"no contract row for {set(CORE_FUNCS) - set(BY_NAME)}"
    for name in BY_NAME:
        assert callable(getattr(twin, name)), name
        if not hasattr(_core, name):
            continue
        sc, st = inspect.signature(getattr(_core, name)), inspect.signature(getattr(twin, name))
        assert [(p.name, p.kind) for p in sc.parameters.values()] == [
            (p.name, p.kind) for p in st.parameters.values()
        ], name
        for p in sc.parameters.values():
            q = st.parameters[p.name]
            if p.default is not inspect.Parameter.empty and p.name != "chunk_rows":
                assert q.default == p.default, (name, p.name)


def test_feature_topk_returns_values_then_indices():
    x = np.random.default_rng(0).standard_normal((40, 6))
    v, i = twin.feature_topk(x, 3)
    assert v.dtype == np.float64 and i.dtype == np.int64
    if _core.feature_topk(x, 3)[0].dtype == np.int64:
        reason = "_core.feature_topk still returns (indices, values); the Rust change to (values, indices) is pending"
        print(reason)
        pytest.skip(reason)
    cv, ci = _core.feature_topk(x, 3)
    assert cv.dtype == np.float64 and ci.dtype == np.int64


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_matches_twin(spec, dt, layout):
    if layout != "C" and not spec.layouts:
        pytest.skip(f"{spec.name} takes C-contiguous arrays only")
    rng = np.random.default_rng(zlib.crc32(f"{spec.name}-{layout}".encode()))
    args, kw = spec.make(rng, dt, False)
    want = _call(getattr(twin, spec.name), spec, args, kw)
    lay = [(_layout(a, layout) if i in spec.layouts else a) for i, a in enumerate(args)]
    got = _call(_core_fn(spec.name), spec, lay, kw)
    _compare(spec, got, want, args, kw, dt, exact=False)
    # the twin itself is layout-blind
    _compare(spec, _call(getattr(twin, spec.name), spec, lay, kw), want, args, kw, dt, exact=False)


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_exact_on_integer_data(spec, dt):
    """Small integers make every sum exact in both precisions and create many ties."""
    args, kw = spec.make(np.random.default_rng(7), dt, True)
    got = _call(_core_fn(spec.name), spec, args, kw)
    want = _call(getattr(twin, spec.name), spec, args, kw)
    _compare(spec, got, want, args, kw, dt, exact=True)


def _taumode_extreme(dt: Any, row_exp: int, l_exp: int) -> Args:
    """Integer X and L with one row and L scaled by powers of two (float32 X keeps its row unscaled:
    2^60 would not fit); every sum of λ stays exact, so the kernel's rescaled rows equal the twin's."""
    (x, indptr, indices, data), _ = mk_rayleigh(np.random.default_rng(11), np.float64, True)
    x = x[:40].copy()
    if np.dtype(dt) == np.float64:
        x[7] = np.ldexp(x[7], row_exp)
    return [x.astype(dt), indptr, indices, np.ldexp(data, l_exp)], {}


def _edge_cases() -> list[tuple[str, str, Callable[[Any], Args]]]:
    """(kernel, case, inputs of a dtype); integer-valued data, so kernel and twin agree bit for bit."""
    r = np.random.default_rng(3)
    const = np.ones((30, 5))
    const[:, 2] = 0.0  # a zero column: cosine 0 with everything
    const[:, 4] = 2.5  # constant columns: parallel to column 0
    dup = np.repeat(r.integers(-2, 3, (6, 3)), 3, axis=0).astype(np.float64)  # each row three times
    return [
        ("gram", "no rows", lambda dt: ([np.zeros((0, 4), dt)], {})),
        ("gram", "no columns", lambda dt: ([np.zeros((5, 0), dt)], {})),
        ("gram", "constant columns", lambda dt: ([const.astype(dt)], {})),
        ("feature_topk", "zero and constant columns", lambda dt: ([const.astype(dt), 4], {})),
        ("feature_topk", "two columns", lambda dt: ([r.integers(-3, 4, (9, 2)).astype(dt), 1], {})),
        (
            "rayleigh_energy",
            "zero rows and no edges",
            lambda dt: (
                [
                    np.vstack([np.zeros((2, 4)), np.ones((2, 4))]).astype(dt),
                    np.zeros(5, np.int64),
                    np.zeros(0, np.int64),
                    np.zeros(0),
                ],
                {},
            ),
        ),  # fmt: skip
        ("taumode_raw", "a row x 2^60, L x 2^1000: sums overflow", lambda dt: _taumode_extreme(dt, 60, 1000)),
        ("taumode_raw", "a row x 2^-600, L x 2^-1000: sums underflow", lambda dt: _taumode_extreme(dt, -600, -1000)),
        ("gemm_topk", "no rows in A", lambda dt: ([np.zeros((0, 3), dt), np.ones((4, 3), dt), 2], {})),
        ("gemm_topk", "d = 0: all ties", lambda dt: ([np.zeros((3, 0), dt), np.zeros((5, 0), dt), 5], {})),
        (
            "gemm_topk",
            "k = all, exclude_self",
            lambda dt: ([dup.astype(dt), dup.astype(dt), 17], {"exclude_self": True}),
        ),
        (
            "gemm_topk",
            "constant rows",
            lambda dt: ([np.ones((4, 3), dt), np.ones((6, 3), dt), 3], {"bias": np.zeros(6, dt)}),
        ),
        ("knn_sqdist", "duplicate rows: zero distances, lower index first", lambda dt: ([dup.astype(dt)], {"k": 4})),
        ("knn_sqdist", "k = n - 1", lambda dt: ([dup.astype(dt)], {"k": 17})),
        ("sae_encode", "no rows", lambda dt: ([np.zeros((0, 3), dt), np.ones((4, 3), dt), np.zeros(4, dt), 2], {})),
        (
            "sae_encode",
            "all pre-activations negative: ReLU zeros",
            lambda dt: (
                [np.ones((3, 2), dt), -np.ones((5, 2), dt), -np.arange(5, dtype=dt), 5],
                {"b_dec": np.zeros(2, dt)},
            ),
        ),  # fmt: skip
        (
            "sparse_decode",
            "no rows",
            lambda dt: ([np.zeros((0, 3), dt), np.zeros((0, 3), np.int64), np.ones((4, 2), dt)], {}),
        ),
        (
            "sparse_decode",
            "k = 0: only the bias",
            lambda dt: (
                [np.zeros((3, 0), dt), np.zeros((3, 0), np.int64), np.ones((4, 2), dt)],
                {"bias": np.arange(2, dtype=dt)},
            ),
        ),  # fmt: skip
        (
            "sparse_decode",
            "repeated latents and zero values",
            lambda dt: (
                [
                    np.array([[1.0, 2.0, 0.0]], dt),
                    np.array([[1, 1, 3]], np.int64),
                    r.integers(-3, 4, (4, 2)).astype(dt),
                ],
                {},
            ),
        ),  # fmt: skip
        (
            "sparse_gather_dot",
            "k = 0",
            lambda dt: ([np.ones((3, 2), dt), np.zeros((3, 0), np.int64), np.ones((4, 2), dt)], {}),
        ),
        (
            "sparse_scatter_rows",
            "repeated latents, zero coefficients, unused latents",
            lambda dt: (
                [
                    np.array([[1.0, 2.0, 0.0], [0.5, 0.0, 0.0]], dt),
                    np.array([[1, 1, 3], [1, 0, 0]], np.int64),
                    np.arange(4, dtype=dt).reshape(2, 2),
                    6,
                ],
                {},
            ),
        ),  # fmt: skip
        (
            "latent_search",
            "all-zero queries: every document scores 0",
            lambda dt: (
                [
                    np.zeros((2, 3), dt),
                    np.zeros((2, 3), np.int64),
                    np.ones((5, 3), dt),
                    np.ones((5, 3), np.int64),
                    4,
                    5,
                ],
                {},
            ),
        ),  # fmt: skip
        (
            "adam_step",
            "first step: lr · sign(g)",
            lambda dt: (
                [np.zeros(7, dt), np.arange(-3, 4, dtype=dt), np.zeros(7, dt), np.zeros(7, dt)],
                {"lr": 0.5, "step": 1},
            ),
        ),  # fmt: skip
        ("adam_step", "empty", lambda dt: ([np.zeros(0, dt) for _ in range(4)], {"lr": 0.5, "step": 1})),
        (
            "tomato_forest",
            "no edges, equal densities: every vertex a peak, by index",
            lambda dt: ([np.ones(4, dt), np.zeros(5, np.int64), np.zeros(0, np.int64)], {}),
        ),
        (
            "tomato_forest",
            "a path with two peaks and a self loop",
            lambda dt: (
                [np.array([0, 3, 1, 2, 0], dt), np.array([0, 1, 4, 6, 8, 9]), np.array([1, 0, 2, 1, 1, 3, 2, 4, 3])],
                {},
            ),
        ),  # fmt: skip
    ]


EDGE = _edge_cases()


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name,case,make", EDGE, ids=[f"{n}-{c}" for n, c, _ in EDGE])
def test_edge_cases(name, case, make, dt):
    spec = BY_NAME[name]
    args, kw = make(dt)
    want = _call(getattr(twin, name), spec, args, kw)
    got = _call(_core_fn(name), spec, args, kw)
    _compare(spec, got, want, args, kw, dt, exact=True)  # small integers throughout: exact sums


def test_edge_case_expectations():
    """A few edge results spelled out (the twins agree with the kernels on them above)."""
    v, i = twin.gemm_topk(np.zeros((2, 0)), np.zeros((4, 0)), 3)
    assert np.array_equal(i, [[0, 1, 2]] * 2) and not v.any()
    d2, i = twin.knn_sqdist(np.array([[0.0], [1.0], [0.0], [1.0]]), k=2)
    assert np.array_equal(i, [[2, 1], [3, 0], [0, 1], [1, 0]]) and np.array_equal(d2, [[0, 1], [0, 1], [0, 1], [0, 1]])
    v, i = twin.feature_topk(np.array([[1.0, 0.0, 2.0], [1.0, 0.0, 2.0]]), 2)
    assert np.array_equal(i, [[2, 1], [0, 2], [0, 1]])
    np.testing.assert_allclose(v, [[1, 0], [0, 0], [1, 0]], atol=1e-15)


def taumode_raw_longdouble(X: Any, L: Any, tau: float | None = None) -> np.ndarray:
    """taumode λ before the min-max, straight from its definition over ordered pairs (REFERENCE.md §2),
    in ``np.longdouble``: on x86-64 a 64-bit mantissa and exponents to ±4932, so no step of it
    overflows or underflows for float64 inputs (the oracle of the scale tests)."""
    ld = np.longdouble
    if np.finfo(ld).maxexp < 4096:
        pytest.skip("np.longdouble has no extended exponent range on this platform")
    Ld = (L.toarray() if sp.issparse(L) else np.asarray(L)).astype(ld)
    W = -(Ld + Ld.T) / 2  # w_ab on each ordered pair
    np.fill_diagonal(W, 0)
    out = []
    for x in np.asarray(X, dtype=np.float64).astype(ld):
        den = x @ x
        E = max((x @ Ld @ x) / den, ld(0)) if den > 1e-9 else ld(0)
        t = W * (x[:, None] - x[None, :]) ** 2
        s1 = t.sum()
        G = (t * t).sum() / (s1 * s1) if s1 != 0 else ld(0)
        tt = max(np.median(x), ld(1e-10)) if tau is None else ld(tau)
        tw = min(tt, ld(1))
        out.append(tw * E / (E + tt) + (1 - tw) * G)
    return np.array(out, dtype=ld)


def _laplacian_csr(f: int, seed: int, scale: float = 1.0) -> sp.csr_matrix:
    """A random graph Laplacian (positive weights), times ``scale``."""
    W = sp.random(f, f, density=0.4, random_state=seed, format="csr")
    W = W + W.T
    W.setdiag(0)
    L = sp.csr_matrix(sp.diags(np.asarray(W.sum(axis=1)).ravel()) - W)
    L.data = L.data * scale
    return L


def _scale_case(case: str) -> tuple[np.ndarray, sp.csr_matrix]:
    X = np.random.default_rng(5).standard_normal((40, 9))
    L = _laplacian_csr(9, 3)
    with np.errstate(all="ignore"):
        if case == "row x1e100":
            X[4] *= 1e100
            X[9] = -np.abs(X[9]) * 1e100  # a negative median: τ = 1e-10, λ ≈ G
        elif case == "rows x1e200 and x1e-160":
            X[4] *= 1e200
            X[5] *= 1e-160
        elif case == "L x1e300":
            L.data *= 1e300
        elif case == "L x1e-300":
            L.data *= 1e-300
        elif case == "median overflows":  # (a + b)/2 of the two middle values exceeds float64
            X = X[:, :8]
            X[6] = [-1.0, 2.0, 1.5e308, 1.6e308, 1.7e308, 1.65e308, 0.0, 1.55e308]
            L = _laplacian_csr(8, 3)
    return X, L


SCALE_CASES = ["row x1e100", "rows x1e200 and x1e-160", "L x1e300", "L x1e-300", "median overflows"]


@pytest.mark.parametrize("tau", [None, 0.5])
@pytest.mark.parametrize("impl", ["core", "twin"])
@pytest.mark.parametrize("case", SCALE_CASES)
def test_taumode_raw_at_extreme_scales(case, impl, tau):
    """Finite input gives the finite λ of the formula: the sums of an overflowing (or underflowing)
    row are taken on the row and L scaled by powers of two, E and G being scale-free."""
    X, L = _scale_case(case)
    fn = _core.taumode_raw if impl == "core" else twin.taumode_raw
    L = sp.csr_matrix(L)
    with np.errstate(all="ignore"):
        got = fn(X, L.indptr.astype(np.int64), L.indices.astype(np.int64), L.data, tau=tau)
    assert np.isfinite(got).all(), (case, got)
    np.testing.assert_allclose(got, taumode_raw_longdouble(X, L, tau).astype(np.float64), rtol=1e-9, atol=1e-12)


def test_taumode_rescue_is_bit_exact_on_integer_data():
    """The contract rows above compare kernel and twin exactly; here both are also finite and equal
    to the unscaled λ where only the scale of E changes."""
    for row_exp, l_exp in ((60, 1000), (-600, -1000)):
        args, kw = _taumode_extreme(np.float64, row_exp, l_exp)
        got = _core.taumode_raw(*args, **kw)
        assert np.isfinite(got).all()
        assert np.array_equal(got, twin.taumode_raw(*args, **kw))


NAN_CASES = [(s, at, rx) for s in SPECS for at, rx in s.nan]


@pytest.mark.parametrize("impl", ["core", "twin"])
@pytest.mark.parametrize("spec,at,rx", NAN_CASES, ids=[f"{s.name}-{at}" for s, at, _ in NAN_CASES])
def test_nan_rejected(spec, at, rx, impl):
    args, kw = spec.make(np.random.default_rng(1), np.float64, False)
    bad = np.array(_get(args, kw, at), copy=True)
    bad.reshape(-1)[bad.size // 2] = np.nan
    args, kw = _set(args, kw, at, bad)
    fn = _core_fn(spec.name) if impl == "core" else getattr(twin, spec.name)
    with pytest.raises(ValueError, match=rf"({rx}).*(NaN|nan|finite)"):
        _call(fn, spec, args, kw)


MIX_CASES = [(s, at) for s in SPECS for at in (s.mix or (0,))]


@pytest.mark.parametrize("impl", ["core", "twin"])
@pytest.mark.parametrize("spec,at", MIX_CASES, ids=[f"{s.name}-{at}" for s, at in MIX_CASES])
def test_dtype_mix(spec, at, impl):
    args, kw = spec.make(np.random.default_rng(2), np.float32, False)
    a = _get(args, kw, at)
    # a float64 among float32 arguments, or (single-array kernels) an integer array
    args, kw = _set(args, kw, at, a.astype(np.float64) if spec.mix else a.astype(np.int32))
    fn = _core_fn(spec.name) if impl == "core" else getattr(twin, spec.name)
    with pytest.raises(TypeError):
        _call(fn, spec, args, kw)


@pytest.mark.parametrize("impl", ["core", "twin"])
def test_adam_needs_c_contiguous(impl):
    fn = _core_fn("adam_step") if impl == "core" else twin.adam_step
    x = np.zeros((4, 6))
    with pytest.raises(ValueError, match="C-contiguous"):
        fn(x[:, ::2], x[:, ::2].copy(), x[:, ::2].copy(), x[:, ::2].copy(), lr=0.1, step=1)
    with pytest.raises(ValueError, match="step"):
        fn(x, x.copy(), x.copy(), x.copy(), lr=0.1, step=0)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_threads_bit_identical(spec):
    fn = _core_fn(spec.name)
    for dt in DTYPES:
        args, kw = spec.make(np.random.default_rng(4), dt, False, scale=8)
        outs = [_call(fn, spec, args, {**kw, "threads": t}) for t in (1, 2, None)]
        for other in outs[1:]:
            for a, b in zip(outs[0], other):
                assert np.array_equal(a, b), spec.name
