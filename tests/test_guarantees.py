"""Guarantees of the Rust core at the Python boundary (README "Guarantees"): no panic, no abort, no hang.

* fork: a process that used the kernels forks; the child calls every kernel (global pool and a sized
  pool) and gets the parent's bits, instead of waiting forever on worker threads that did not survive;
* absurd sizes (``n_latents`` up to 2**64 - 1, ``threads`` in the thousands): a ValueError naming the
  argument, never an allocation abort, ``capacity overflow`` or index panic;
* racing writers: another Python thread rewriting an index array during a call gives an error or a
  result, never a panic (the kernels copy the indices before checking them);
* layouts the flat kernels cannot pair (``adam_step`` with a Fortran param and a C grad) are rejected;
* determinism: threads = 1, 2, 4 and two Python threads calling at once give the serial bits.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import zlib

import numpy as np
import pytest

from latentatlas import _core
from test_core import SPECS, _call  # the contract table: one input maker per kernel


def _inputs(spec, dt=np.float64, scale=1):
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()))
    return spec.make(rng, dt, False, scale)


def _run_all(threads):
    out = {}
    for spec in SPECS:
        args, kw = _inputs(spec)
        out[spec.name] = _call(getattr(_core, spec.name), spec, args, {**kw, "threads": threads})
    return out


def _same(a, b):
    return all(all(np.array_equal(x, y) for x, y in zip(a[n], b[n])) for n in a)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_every_kernel_runs_in_a_forked_child():
    want = _run_all(None)  # the global pool is alive in this process now
    assert _same(_run_all(2), want)  # and a cached pool of 2
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        code = 1
        try:
            code = 0 if _same(_run_all(None), want) and _same(_run_all(2), want) and _same(_run_all(3), want) else 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung on a kernel call")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
    assert _same(_run_all(None), want)  # the parent's pools still work


def test_threads_are_capped():
    x = np.ones((10, 3))
    assert _core.MAX_THREADS >= 8 and _core.MAX_THREADS % 8 == 0  # 8 per core the process may use
    for bad in (_core.MAX_THREADS + 1, 4096, 10**9):
        with pytest.raises(ValueError, match="threads"):
            _core.gram(x, threads=bad)
    import latentatlas as la

    with pytest.raises(ValueError, match="threads must be at most"):
        la.feature_graph(x, 1, threads=10**9)
    la.feature_graph(x, 1, threads=_core.MAX_THREADS)


@pytest.mark.parametrize("n_latents", [10**12, 2**62, 2**64 - 1])
def test_absurd_latent_counts(n_latents):
    v = np.ones((3, 2))
    i = np.zeros((3, 2), np.int64)
    with pytest.raises(ValueError, match="n_latents"):
        _core.sparse_scatter_rows(v, i, np.ones((3, 4)), n_latents)
    # the index only spans the latents that occur: a huge n_latents costs nothing
    s, ids = _core.latent_search(v, i, v, i, n_latents, 2)
    np.testing.assert_array_equal(ids, [[0, 1]] * 3)
    np.testing.assert_array_equal(s, np.full((3, 2), 4.0))
    from latentatlas.sae.retrieval import latent_search

    if n_latents < 2**63:
        latent_search((v, i), (v, i), 2, n_latents=n_latents)
    else:
        with pytest.raises(ValueError, match="n_latents"):
            latent_search((v, i), (v, i), 2, n_latents=n_latents)


def test_adam_rejects_layouts_it_cannot_pair():
    rng = np.random.default_rng(0)
    p = np.asfortranarray(rng.standard_normal((4, 3)))
    g = rng.standard_normal((4, 3))
    m, v = np.zeros((4, 3)), np.zeros((4, 3))
    with pytest.raises(ValueError, match="param: expected a C-contiguous"):
        _core.adam_step(p, g, m, v, lr=0.1, step=1)
    with pytest.raises(ValueError, match="grad: expected the shape"):
        _core.adam_step(np.ascontiguousarray(p), g.reshape(3, 4), m, v, lr=0.1, step=1)
    with pytest.raises(ValueError, match="m: expected a C-contiguous"):
        _core.adam_step(np.ascontiguousarray(p), g, np.asfortranarray(m), v, lr=0.1, step=1)
    # every public path passes C-ordered arrays of one shape: training a model from Fortran data works
    from latentatlas.sae import TopKSAE

    X = np.asfortranarray(rng.standard_normal((64, 6)))
    sae = TopKSAE(6, 12, 3, seed=0).fit(X, epochs=1, batch_size=32, progress=False)
    assert all(np.isfinite(a).all() for a in sae.params.values())


def test_racing_index_writer_never_panics():
    """Another thread flips indices between valid and out-of-range while kernels run (GIL released)."""
    rng = np.random.default_rng(1)
    n, rows, k, d = 300, 4000, 8, 16
    vals = rng.random((rows, k)) + 0.1
    idx = rng.integers(0, n, (rows, k))
    good = idx.copy()
    W = rng.standard_normal((n, d))
    G = rng.standard_normal((rows, d))
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            idx[::7] = n + 10**9  # out of range
            idx[::7] = good[::7]

    t = threading.Thread(target=writer)
    t.start()
    outcomes = {"ok": 0, "error": 0}
    try:
        for _ in range(25):
            for call in (
                lambda: _core.sparse_decode(vals, idx, W),
                lambda: _core.sparse_gather_dot(G, idx, W),
                lambda: _core.sparse_scatter_rows(vals, idx, G, n),
                lambda: _core.latent_search(vals[:50], idx[:50], vals, idx, n, 5),
            ):
                try:
                    call()
                    outcomes["ok"] += 1
                except ValueError as exc:  # the copy held an out-of-range index: named, no panic
                    assert "indices" in str(exc)
                    outcomes["error"] += 1
    finally:
        stop.set()
        t.join()
    assert sum(outcomes.values()) == 100


def test_threads_1_2_4_bit_identical():
    for spec in SPECS:
        for dt in (np.float32, np.float64):
            args, kw = _inputs(spec, dt, scale=3)
            fn = getattr(_core, spec.name)
            want = _call(fn, spec, args, {**kw, "threads": 1})
            for t in (2, 4):
                got = _call(fn, spec, args, {**kw, "threads": t})
                for g, w in zip(got, want):
                    np.testing.assert_array_equal(g, w, err_msg=f"{spec.name} threads={t}")


def test_two_python_threads_give_the_serial_result():
    want = _run_all(None)
    results: list = [None, None]

    def worker(slot):
        results[slot] = [_run_all(None) for _ in range(3)]

    ts = [threading.Thread(target=worker, args=(s,)) for s in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(_same(r, want) for rs in results for r in rs)


@pytest.mark.parametrize(
    "dt, big", [(np.float64, 1e160), (np.float64, np.finfo(np.float64).max / 8), (np.float32, 1e20)]
)
def test_feature_graph_of_values_near_the_float_range(dt, big):
    """Squares that overflow: columns are scaled (cosines do not change), never NaN/inf edges."""
    import latentatlas as la

    rng = np.random.default_rng(5)
    X = rng.standard_normal((200, 6))
    scales = np.array([big, 1.0, big / 3, 1e-3, 1.0, big])
    W = la.feature_laplacian((X * scales).astype(dt), k=3)
    assert np.isfinite(W.data).all()
    want = la.feature_laplacian(X.astype(dt), k=3)  # the same cosines at a tame scale
    assert (W != want).nnz == 0 or np.abs((W - want).data).max() < (1e-4 if dt == np.float32 else 1e-10)


def test_taumode_lambda_needs_two_features():
    import latentatlas as la

    with pytest.raises(ValueError, match="X must have at least 2 feature"):
        la.taumode_lambda(np.ones((4, 1)), np.zeros((1, 1)))
