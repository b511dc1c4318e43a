"""Spectral search benchmarks: SpectralIndex vs arrowspace 0.30.0, faiss IndexFlatIP and NumPy.

Run with ``make bench`` (or ``pytest benches/bench_search.py --benchmark-only -s -p no:randomly`` after
``make build peers``). Groups (pytest-benchmark; ratios printed by benches/conftest.py):

* ``search τ=0.7 <dtype> N`` — 1,000 queries, k=10, arrowspace's λ-aware score: ours vs dense NumPy
  (BLAS scores + λ term + argpartition, query λ given for free).
* ``search τ=1 f32 N`` — exact cosine: ours vs faiss ``IndexFlatIP`` on normalised vectors (faiss-cpu,
  skipped if not installable) and NumPy.
* ``build <dtype> N`` — ``SpectralIndex().fit(X)`` (feature graph, taumode λ, norms).
* ``memmap`` — queries/s from an index of ``LATENTATLAS_BENCH_MEMMAP_ROWS`` (default 10,000,000) × 384
  float32 rows memory-mapped from disk (``0`` skips it; it writes that many rows to a temporary file).

arrowspace runs in the same session in its CPython 3.12 venv (tests/peers.py; float64 only, as it
requires): its build and its ``search`` loop over ``LATENTATLAS_BENCH_AS_QUERIES`` (default 100) queries
are timed inside the subprocess, and the recall of its ``search_hybrid`` against our exact top-k is
measured. Those numbers and the ratios to ours are printed and saved to benches/results/search.md.
Sizes: ``LATENTATLAS_BENCH_SEARCH_N`` (default "20000,100000").
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from latentatlas import _core
from latentatlas.search import SpectralIndex

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from peers import arrowspace_python, run_job  # noqa: E402

F, K, NQ, TAU = 384, 10, 1000, 0.7
SIZES = [int(s) for s in os.environ.get("LATENTATLAS_BENCH_SEARCH_N", "20000,100000").split(",") if s]
AS_QUERIES = int(os.environ.get("LATENTATLAS_BENCH_AS_QUERIES", "100"))
MEMMAP_ROWS = int(os.environ.get("LATENTATLAS_BENCH_MEMMAP_ROWS", "10000000"))
REPORT: dict[str, list[str]] = {}


def make_data(n, f, dtype, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 16), dtype=np.float32) @ rng.standard_normal((16, f), dtype=np.float32)
    Z += 0.3 * rng.standard_normal((n, f), dtype=np.float32)
    return Z.astype(dtype, copy=False)


def _median(fn, rounds=3):
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"N={n // 1000}k")
def corpus(request):
    n = request.param
    X64 = make_data(n, F, np.float64, seed=n)
    Q64 = make_data(NQ, F, np.float64, seed=n + 1)
    return n, X64, Q64


@pytest.fixture(scope="module")
def indexes(corpus):
    n, X64, Q64 = corpus
    return {dt: SpectralIndex().fit(X64.astype(dt)) for dt in (np.float32, np.float64)}


def numpy_search(Xn, lx, Qn, ql, k, tau, chunk=250):
    """Dense NumPy: BLAS scores in chunks of queries, λ term, argpartition + sort of the k."""
    out_v, out_i = [], []
    for s in range(0, len(Qn), chunk):
        S = Qn[s : s + chunk] @ Xn.T
        if tau < 1:
            S = tau * S + (1 - tau) * (1 - np.minimum(np.abs(ql[s : s + chunk, None] - lx[None, :]), 1))
        part = np.argpartition(-S, k, axis=1)[:, :k]
        vals = np.take_along_axis(S, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        out_v.append(np.take_along_axis(vals, order, axis=1))
        out_i.append(np.take_along_axis(part, order, axis=1))
    return np.concatenate(out_v), np.concatenate(out_i)


def _normed(A):
    nrm = np.linalg.norm(A.astype(np.float64), axis=1, keepdims=True)
    return (A / np.where(nrm > 0, nrm, 1)).astype(A.dtype)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_build_ours(benchmark, corpus, dt):
    n, X64, _ = corpus
    X = X64.astype(dt)
    benchmark.group = f"build {np.dtype(dt).name} N={n}"
    benchmark.extra_info.update(ours=True, label="latentatlas SpectralIndex().fit(X)")
    idx = benchmark.pedantic(lambda: SpectralIndex().fit(X), rounds=3, warmup_rounds=1)
    assert idx.n_items_ == n


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_search_ours(benchmark, corpus, indexes, dt):
    n, _, Q64 = corpus
    Q = Q64.astype(dt)
    benchmark.group = f"search τ=0.7 {np.dtype(dt).name} N={n} ({NQ} queries)"
    benchmark.extra_info.update(ours=True, label="latentatlas SpectralIndex.search (batched, exact)")
    v, i = benchmark.pedantic(lambda: indexes[dt].search(Q, k=K, tau=TAU), rounds=5, warmup_rounds=1)
    assert i.shape == (NQ, K)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_search_numpy(benchmark, corpus, indexes, dt):
    n, X64, Q64 = corpus
    idx = indexes[dt]
    Xn, Qn = _normed(X64.astype(dt)), _normed(Q64.astype(dt))
    lx, ql = idx.lambdas().astype(dt), idx.query_lambdas(Q64.astype(dt)).astype(dt)
    benchmark.group = f"search τ=0.7 {np.dtype(dt).name} N={n} ({NQ} queries)"
    benchmark.extra_info["label"] = "NumPy: BLAS scores + λ term + argpartition (query λ precomputed)"
    v, i = benchmark.pedantic(lambda: numpy_search(Xn, lx, Qn, ql, K, TAU), rounds=3, warmup_rounds=1)
    ours = idx.search(Q64.astype(dt), k=K, tau=TAU)
    assert (i == ours[1]).mean() > 0.99  # the same answer, or the comparison means nothing


def test_cosine_ours(benchmark, corpus, indexes):
    n, _, Q64 = corpus
    Q = Q64.astype(np.float32)
    benchmark.group = f"search τ=1 f32 N={n} ({NQ} queries)"
    benchmark.extra_info.update(ours=True, label="latentatlas SpectralIndex.search(tau=1)")
    benchmark.pedantic(lambda: indexes[np.float32].search(Q, k=K, tau=1.0), rounds=5, warmup_rounds=1)


def test_cosine_faiss(benchmark, corpus, indexes):
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is not installed (make bench installs it)")
    n, X64, Q64 = corpus
    Xn, Qn = _normed(X64.astype(np.float32)), _normed(Q64.astype(np.float32))
    flat = faiss.IndexFlatIP(F)
    flat.add(Xn)
    benchmark.group = f"search τ=1 f32 N={n} ({NQ} queries)"
    benchmark.extra_info["label"] = f"faiss {faiss.__version__} IndexFlatIP (normalised f32)"
    _, ids = benchmark.pedantic(lambda: flat.search(Qn, K), rounds=5, warmup_rounds=1)
    ours = indexes[np.float32].search(Q64.astype(np.float32), k=K, tau=1.0)
    assert (ids == ours[1]).mean() > 0.99


def test_cosine_numpy(benchmark, corpus, indexes):
    n, X64, Q64 = corpus
    Xn, Qn = _normed(X64.astype(np.float32)), _normed(Q64.astype(np.float32))
    benchmark.group = f"search τ=1 f32 N={n} ({NQ} queries)"
    benchmark.extra_info["label"] = "NumPy: BLAS Q Xᵀ + argpartition"
    with threadpool_limits(None):
        benchmark.pedantic(lambda: numpy_search(Xn, None, Qn, None, K, 1.0), rounds=3, warmup_rounds=1)


def test_against_arrowspace(benchmark, corpus, indexes, tmp_path):
    """arrowspace's build and search loop, timed in its 3.12 venv, against ours on the same data
    (our batched search is this group's benchmark; arrowspace's numbers go to benches/results/search.md)."""
    py, why = arrowspace_python()
    if py is None:
        print(f"arrowspace skipped: {why}")
        pytest.skip(why)
    n, X64, Q64 = corpus
    Qa = Q64[:AS_QUERIES]
    np.savez(tmp_path / "in.npz", X=X64, Q=Qa, k=K, tau=TAU, hybrid=True)
    run_job(py, tmp_path / "in.npz", tmp_path / "out.npz", timeout=3600)
    a = np.load(tmp_path / "out.npz")
    idx = indexes[np.float64]
    build = _median(lambda: SpectralIndex().fit(X64), rounds=3)
    build_as_L = _median(
        lambda: SpectralIndex().fit(X64, laplacian=(a["L_data"], a["L_indices"], a["L_indptr"], (F, F)))
    )
    benchmark.group = f"search τ=0.7 float64 N={n} ({NQ} queries, vs arrowspace)"
    benchmark.extra_info.update(ours=True, label="latentatlas SpectralIndex.search (batched, exact)")
    benchmark.pedantic(lambda: idx.search(Q64, k=K, tau=TAU), rounds=3, warmup_rounds=0)
    ours_q = NQ / benchmark.stats.stats.median
    as_q = len(Qa) / float(a["search_s"])
    ids = idx.search(Qa, k=K, tau=TAU)[1]
    hyb = a["hybrid_ids"]
    recall = np.mean([len(set(h[h >= 0]) & set(e[: max(1, (h >= 0).sum())])) / max(1, (h >= 0).sum())
                      for h, e in zip(hyb, ids)])  # fmt: skip
    rows = [
        f"| build, N={n} f64 | arrowspace `ArrowSpaceBuilder().build` | {float(a['build_s']):.2f} s | — |",
        f"| | **latentatlas** `SpectralIndex().fit(X)` | {build:.3f} s | {float(a['build_s']) / build:.0f}× |",
        f"| | latentatlas with arrowspace's L (`fit(X, laplacian=gl.to_csr())`) | {build_as_L:.3f} s | "
        f"{float(a['build_s']) / build_as_L:.0f}× |",
        f"| search τ=0.7, N={n} f64 | arrowspace `search` loop ({len(Qa)} queries) | {as_q:.1f} q/s | — |",
        f"| | **latentatlas** `search` (batch of {NQ}) | {ours_q:.0f} q/s | {ours_q / as_q:.0f}× |",
        f"| recall@{hyb.shape[1]} of arrowspace `search_hybrid` vs the exact top-k | | {recall:.3f} | |",
    ]
    REPORT[f"N={n}"] = rows
    _write_report()


def _write_report():
    lines = ["| what | implementation | value | ours vs arrowspace |", "|---|---|---:|---:|"]
    for rows in REPORT.values():
        lines += rows
    text = "\n".join(lines)
    print("\n" + text)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "search.md").write_text(text + "\n")


@pytest.fixture(scope="module")
def memmap_index():
    if MEMMAP_ROWS <= 0:
        pytest.skip("LATENTATLAS_BENCH_MEMMAP_ROWS=0")
    d = Path(tempfile.mkdtemp(prefix="latentatlas-bench-"))
    X = np.lib.format.open_memmap(d / "x.npy", mode="w+", dtype=np.float32, shape=(MEMMAP_ROWS, F))
    step = 200_000
    for s in range(0, MEMMAP_ROWS, step):
        X[s : s + step] = make_data(min(step, MEMMAP_ROWS - s), F, np.float32, seed=s)
    X.flush()
    del X
    Xm = np.load(d / "x.npy", mmap_mode="r")
    yield SpectralIndex().fit(Xm)
    for f in d.iterdir():
        f.unlink()
    d.rmdir()


def test_memmap_search(benchmark, memmap_index):
    Q = make_data(100, F, np.float32, seed=7)
    benchmark.group = f"memmap search τ=0.7 f32 N={MEMMAP_ROWS} (100 queries)"
    benchmark.extra_info.update(ours=True, label="latentatlas SpectralIndex.search on an np.memmap corpus")
    benchmark.pedantic(lambda: memmap_index.search(Q, k=K, tau=TAU), rounds=2, warmup_rounds=0)


@pytest.mark.parametrize("impl", ["taumode", "energy"])
def test_taumode_cost(benchmark, corpus, indexes, impl):
    """taumode λ (Rust, one pass over the edges) against the Rayleigh energies on the same L (target: ≤ 2×)."""
    n, X64, _ = corpus
    X = X64.astype(np.float32)
    L = indexes[np.float32].laplacian_
    parts = (L.indptr.astype(np.int64), L.indices.astype(np.int64), L.data.astype(np.float64))
    benchmark.group = f"taumode λ vs Rayleigh energy, f32 N={n}"
    if impl == "taumode":
        benchmark.extra_info.update(ours=True, label="latentatlas taumode_raw (Rust)")
        benchmark.pedantic(lambda: _core.taumode_raw(X, *parts), rounds=5, warmup_rounds=1)
    else:
        benchmark.extra_info["label"] = "latentatlas rayleigh_energy on the same L"
        benchmark.pedantic(lambda: _core.rayleigh_energy(X, *parts), rounds=5, warmup_rounds=1)
