"""Property-based tests (hypothesis) over the public API and every ``_core`` kernel.

Each generated call must either return a result equal to the NumPy reference (``latentatlas.reference``)
or raise a documented error: ValueError / TypeError naming the argument (the public API; the ``_core``
binding may also raise OverflowError for an integer outside the unsigned 64-bit range, as its stub says).
Never a PanicException, a RuntimeError, a crash or a silently wrong result.

Inputs: arrays of any dtype (float16/32/64, integers, bool, complex, object), shape (0-3 dimensions,
empty sides), layout (C, Fortran, negative strides, non-contiguous, read-only, ``np.memmap``) and values
(NaN, ±inf, huge, subnormal, zero, constant, duplicated), and argument values (k, n_latents, τ, threads,
weights). ``make test`` runs the bounded ``ci`` profile; ``make fuzz`` the long ``fuzz`` profile
(profiles live in ``tests/conftest.py``).
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
import zlib
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import latentatlas as la
from latentatlas import _core
from latentatlas.reference import core as twin
from latentatlas.sae import TopKSAE
from latentatlas.sae.retrieval import dense_search, latent_search
from test_core import SPECS, _call, _compare, _laplacian_csr, taumode_raw_longdouble  # contract table; λ oracle

MEMMAP_DIR = tempfile.mkdtemp(prefix="latentatlas-props-")
atexit.register(shutil.rmtree, MEMMAP_DIR, ignore_errors=True)
SPECIAL = [np.nan, np.inf, -np.inf, 1e308, -1e308, 3e38, 1e20, 5e-324, 1e-310, 1e-45, 0.0, -0.0, 1.0]
INTS = [-(2**63), -1, 0, 1, 2, 3, 7, 2**31, 2**62, 2**63 - 1, 2**64 - 1, 2**64, 10**30]


def _layout(a: np.ndarray, how: str) -> np.ndarray:
    """The same values in another memory layout."""
    if a.ndim == 0 or a.dtype == object:
        return a
    if how == "F":
        return np.asfortranarray(a)
    if how == "reversed":  # negative strides
        return np.ascontiguousarray(a[::-1])[::-1]
    if how == "strided":
        big = np.repeat(a, 2, axis=-1)
        return big[..., ::2]
    if how == "readonly":
        b = a.copy()
        b.setflags(write=False)
        return b
    if how == "memmap" and a.size and a.dtype.kind in "fiub":
        m = np.memmap(tempfile.mktemp(dir=MEMMAP_DIR, suffix=".dat"), dtype=a.dtype, mode="w+", shape=a.shape)
        m[...] = a
        return m
    return a


LAYOUTS = st.sampled_from(["C", "F", "reversed", "strided", "readonly", "memmap"])


@st.composite
def matrices(draw: Any, *, min_side: int = 0, max_side: int = 7, wild: bool = True) -> np.ndarray:
    """A float matrix (tame) or, with ``wild``, an array of any dtype, dimensionality and values."""
    if wild and draw(st.booleans()):
        dtype = draw(
            st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.bool_, np.complex64])
        )
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=max_side))
    else:
        dtype = draw(st.sampled_from([np.float32, np.float64]))
        shape = draw(st.tuples(st.integers(min_side, max_side), st.integers(min_side, max_side)))
    kind = np.dtype(dtype).kind
    width = 8 * np.dtype(dtype).itemsize
    elements = st.floats(-4, 4, width=width) if kind == "f" else None
    a = draw(hnp.arrays(dtype, shape, elements=elements))
    if a.dtype.kind in "fc" and a.size and draw(st.booleans()):  # special values
        how = draw(st.sampled_from(["special", "constant", "duplicate rows", "huge"]))
        a = a.copy()
        flat = a.reshape(-1)
        if how == "special":
            for _ in range(draw(st.integers(1, 3))):
                with np.errstate(all="ignore"):
                    flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from(SPECIAL))
        elif how == "constant":
            flat[:] = draw(st.sampled_from([0.0, 1.0, -2.5]))
        elif how == "duplicate rows" and a.ndim == 2 and a.shape[0] > 1:
            a[1:] = a[0]
        elif how == "huge":
            with np.errstate(all="ignore"):
                a *= draw(st.sampled_from([1e20, 1e150, 1e300]))
    return _layout(a, draw(LAYOUTS))


def _tame(*arrays: np.ndarray) -> bool:
    """Float32/64 2-D arrays of moderate finite values: the reference must agree to tolerance."""
    return all(
        a.ndim == 2 and a.dtype in (np.float32, np.float64) and np.isfinite(a).all() and np.abs(a).max(initial=0) < 1e3
        for a in arrays
    )


def _clean_error(exc: BaseException, names: tuple[str, ...], *, core: bool = False) -> None:
    """The error is documented and names one of ``names``; anything else fails the property."""
    allowed = (ValueError, TypeError, OverflowError) if core else (ValueError, TypeError)
    note(f"{type(exc).__name__}: {exc}")
    assert type(exc).__name__ != "PanicException", f"panic crossed into Python: {exc}"
    assert isinstance(exc, allowed), f"undocumented {type(exc).__name__}: {exc}"
    if not core:
        msg = str(exc)
        assert any(re.search(rf"\b{re.escape(n)}\b", msg) for n in names), f"message names none of {names}: {msg}"


def _outcome(fn: Any, *args: Any, names: tuple[str, ...], core: bool = False, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except BaseException as exc:  # noqa: BLE001 - the property is about which exceptions escape
        _clean_error(exc, names, core=core)
        return None


THREADS = st.one_of(st.none(), st.sampled_from([1, 2, 4, 0, -1, _core.MAX_THREADS + 1, 10**9, 2**64, True, 1.5]))


# --- _core: every kernel, valid inputs from the contract table with one argument changed --------------
@pytest.mark.parametrize("spec", SPECS, ids=str)
@given(data=st.data())
def test_core_kernel_property(spec, data):
    dt = data.draw(st.sampled_from([np.float32, np.float64]), "dtype")
    args, kw = spec.make(np.random.default_rng(zlib.crc32(spec.name.encode())), dt, False)
    args = list(args)
    kind = data.draw(st.sampled_from(["layout", "array", "int", "threads", "values", "none"]), "mutation")
    arrays = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]
    ints = [i for i, a in enumerate(args) if isinstance(a, int)] + [k for k, v in kw.items() if isinstance(v, int)]
    compare = kind in ("none", "layout")
    if kind == "layout":
        i = data.draw(st.sampled_from(arrays))
        how = data.draw(LAYOUTS)
        if spec.inplace and how in ("readonly", "F", "reversed", "strided"):
            compare = False  # adam_step rejects what it cannot update in place
        args[i] = _layout(args[i], how)
    elif kind == "array":
        i = data.draw(st.sampled_from(arrays))
        args[i] = data.draw(matrices())
    elif kind == "values":
        i = data.draw(st.sampled_from(arrays))
        a = np.array(args[i], copy=True)
        if a.dtype.kind == "f" and a.size:
            with np.errstate(all="ignore"):  # 1e308 into float32 is inf: one more special value
                a.reshape(-1)[data.draw(st.integers(0, a.size - 1))] = data.draw(st.sampled_from(SPECIAL))
        elif a.dtype == np.int64 and a.size:  # an index array
            a.reshape(-1)[data.draw(st.integers(0, a.size - 1))] = data.draw(st.sampled_from(INTS[:10]))  # int64
        args[i] = a
    elif kind == "int" and ints:
        at = data.draw(st.sampled_from(ints))
        v = data.draw(st.sampled_from(INTS))
        if isinstance(at, int):
            args[at] = v
        else:
            kw[at] = v
    elif kind == "threads":
        kw["threads"] = data.draw(THREADS)
    fn = getattr(_core, spec.name)
    try:
        got = _call(fn, spec, args, kw)
    except BaseException as exc:  # noqa: BLE001
        _clean_error(exc, (), core=True)
        return
    if compare:
        want = _call(getattr(twin, spec.name), spec, args, {k: v for k, v in kw.items() if k != "threads"})
        _compare(spec, got, want, args, kw, dt, exact=False)
    else:
        for g in got:
            assert isinstance(g, np.ndarray)


# --- the public API -------------------------------------------------------------------------------
@given(X=matrices(), k=st.one_of(st.integers(-2, 8), st.sampled_from([2**40, 1.5, None, "3"])), threads=THREADS)
def test_feature_graph_property(X, k, threads):
    W = _outcome(la.feature_graph, X, k, threads=threads, names=("X", "k", "threads", "n_features"))
    if W is None:
        return
    assert sp.issparse(W) and W.shape == (X.shape[1],) * 2 and np.isfinite(W.data).all()
    assert abs(W - W.T).max() == 0 and W.diagonal().sum() == 0
    if _tame(X) and X.dtype == np.float64:
        v, i = twin.feature_topk(np.asarray(X), k)
        f = X.shape[1]
        D = sp.csr_matrix((v.ravel(), (np.repeat(np.arange(f), k), i.ravel())), shape=(f, f))
        want = D.maximum(D.T).toarray()
        np.testing.assert_allclose(W.toarray(), want, atol=1e-10)


@given(X=matrices(), data=st.data())
def test_rayleigh_and_taumode_property(X, data):
    f = X.shape[1] if X.ndim == 2 else 3
    L = data.draw(
        st.sampled_from(["good", "wrong shape", "nan", "dense", "1-d"]).map(
            lambda how: {
                "good": sp.random(f, f, density=0.5, random_state=1, format="csr"),
                "wrong shape": sp.eye(f + 1, format="csr"),
                "nan": sp.csr_matrix(np.full((f, f), np.nan)),
                "dense": np.eye(f),
                "1-d": np.ones(f),
            }[how]
        ),
        "L",
    )
    e = _outcome(la.rayleigh_energy, X, L, names=("X", "L"))
    if e is not None and _tame(X):
        Ld = L.toarray() if sp.issparse(L) else np.asarray(L, dtype=np.float64)
        want = la.reference.rayleigh_energy(np.asarray(X, dtype=np.float64), Ld)
        np.testing.assert_allclose(e, want, rtol=1e-6 if X.dtype == np.float32 else 1e-10, atol=1e-9)
    tau = data.draw(st.sampled_from(["median", 0.5, 0.0, -1.0, np.nan, np.inf, "mean", True]), "tau")
    lam = _outcome(la.taumode_lambda, X, L, tau=tau, names=("X", "L", "tau"))
    if lam is not None:
        assert lam.shape == (X.shape[0],) and np.isfinite(lam).all() and lam.min() >= 0 and lam.max() <= 1


@given(
    seed=st.integers(0, 2**16),
    shape=st.tuples(st.integers(1, 6), st.integers(2, 7)),
    row_scale=st.sampled_from([1e-300, 1e-160, 1e-100, 1.0, 1e100, 1e154, 1e200, 1e300, 1.7e308]),
    l_scale=st.sampled_from([1e-300, 1e-100, 1.0, 1e100, 1e300]),
    tau=st.sampled_from([None, 0.5, 1e300]),
    data=st.data(),
)
def test_taumode_extreme_scales_property(seed, shape, row_scale, l_scale, tau, data):
    """Finite X and L, whatever their scale: the kernel, its twin and the public λ give the finite λ of
    the formula (evaluated in np.longdouble), never a NaN and never all zeros from one huge row."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape)
    rows = data.draw(st.lists(st.integers(0, shape[0] - 1), max_size=shape[0], unique=True), "scaled rows")
    X[rows] = X[rows] / np.abs(X[rows]).max(axis=1, keepdims=True) * row_scale  # largest |x| of the row
    L = _laplacian_csr(shape[1], seed, l_scale)
    parts = (L.indptr.astype(np.int64), L.indices.astype(np.int64), L.data)
    want = taumode_raw_longdouble(X, L, tau).astype(np.float64)
    note(f"X={X!r}\nwant={want!r}")
    for fn in (_core.taumode_raw, twin.taumode_raw):
        got = fn(X, *parts, tau=tau)
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10, err_msg=str(fn))
    lam = la.taumode_lambda(X, L, tau="median" if tau is None else tau)
    assert lam.shape == (shape[0],) and np.isfinite(lam).all() and lam.min() >= 0 and lam.max() <= 1
    if np.ptp(want) > 1e-6 * np.abs(want).max():  # a well-separated range: the min-max is stable too
        np.testing.assert_allclose(lam, (want - want.min()) / np.ptp(want), atol=1e-6)


@given(Q=matrices(min_side=1), D=matrices(min_side=1), k=st.sampled_from(INTS + [1.5]), threads=THREADS)
def test_dense_search_property(Q, D, k, threads):
    out = _outcome(dense_search, Q, D, k, threads=threads, names=("Q", "D", "k", "threads"))
    if out is None or not _tame(Q, D):
        return
    dt = np.result_type(Q.dtype, D.dtype)
    want = twin.gemm_topk(np.asarray(Q, dt), np.asarray(D, dt), k)
    np.testing.assert_allclose(out[0], want[0], rtol=0, atol=1e-3 if dt == np.float32 else 1e-9)


@st.composite
def codes(draw: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    rows, k = draw(st.integers(0, 6)), draw(st.integers(0, 4))
    v = draw(hnp.arrays(np.float64, (rows, k), elements=st.floats(-3, 3)))
    i = draw(hnp.arrays(np.int64, (rows, k), elements=st.integers(0, n - 1)))
    if draw(st.booleans()) and i.size:  # a bad code: out-of-range index, NaN value, wrong dtype or shape
        how = draw(st.sampled_from(["index", "nan", "dtype", "shape"]))
        if how == "index":
            i.reshape(-1)[0] = draw(st.sampled_from([-1, n, 2**62]))
        elif how == "nan":
            v.reshape(-1)[0] = np.nan
        elif how == "dtype":
            i = i.astype(np.float64)
        else:
            i = i[:, :-1]
    return _layout(v, draw(LAYOUTS)), _layout(i, draw(LAYOUTS))


@given(data=st.data())
def test_latent_search_and_decode_property(data):
    n = data.draw(st.integers(1, 12), "n_latents")
    Qc, Dc = data.draw(codes(n), "Qcodes"), data.draw(codes(n), "Dcodes")
    k = data.draw(st.sampled_from([1, 2, 5, 0, -1, 2**40]), "k")
    n_arg = data.draw(st.sampled_from([None, n, n + 5, 0, -3, 2**62, 2**64]), "n_latents arg")
    out = _outcome(latent_search, Qc, Dc, k, n_latents=n_arg, names=("Qcodes", "Dcodes", "k", "n_latents"))
    if out is not None and (n_arg is None or n_arg < 100):  # the dense twin needs a small n_latents
        nn = n_arg if n_arg is not None else 1 + int(max(Qc[1].max(initial=-1), Dc[1].max(initial=-1), 0))
        want = twin.latent_search(np.asarray(Qc[0]), np.ascontiguousarray(Qc[1]), np.asarray(Dc[0]),
                                  np.ascontiguousarray(Dc[1]), nn, k)  # fmt: skip
        np.testing.assert_allclose(out[0], want[0], atol=1e-12)
        np.testing.assert_array_equal(out[1], want[1])
    sae = TopKSAE(3, n, 1, seed=0)
    x = _outcome(sae.decode, *Qc, names=("codes", "values", "indices"))
    if x is not None and Qc[0].size:
        v = np.asarray(Qc[0], sae.dtype)
        want = twin.sparse_decode(v, np.ascontiguousarray(Qc[1]), sae.W_dec, bias=sae.b_dec)
        np.testing.assert_allclose(x, want, atol=1e-5)


@given(X=matrices(), k=st.sampled_from([1, 2, 0, -1, 2**33]), d=st.sampled_from([1, 3, 4]))
def test_topk_sae_encode_property(X, k, d):
    sae = _outcome(TopKSAE, d, 8, k, names=("k", "d_in", "n_latents"))
    if sae is None:
        return
    out = _outcome(sae.encode, X, names=("X", "d_in"))
    if out is not None and _tame(X):
        want = twin.sae_encode(np.asarray(X, sae.dtype), sae.W_enc, sae.b_enc, k, b_dec=sae.b_dec)
        np.testing.assert_allclose(out[0], want[0], atol=1e-4)
