"""Persona analysis over every layer: latentatlas vs a plain NumPy/scikit-learn loop, same run.

Workload (the issue's): 1,000 personas x 42 layers x 3,584 hidden (float32, 600 MB), all per-layer
centred cosine-similarity matrices plus 2-D PCA projections of the centred + unit vectors.

- baseline: per layer ``sklearn.metrics.pairwise.cosine_similarity(x - mean)`` and
  ``PCA(2, random_state=0).fit_transform(normalize(x - mean))`` (scikit-learn's randomized solver).
- latentatlas: ``layered_analysis`` — one float32 Gram product (BLAS syrk) per layer of the centred
  rows; the similarity is its diagonal scaling, double-centring that gives PCA's Gram, and subspace
  iteration (dense ``syevr`` fallback) its top components (exact, not randomized). Whole layers run
  in parallel, one per core with single-threaded BLAS.

Run::

    .venv/bin/python -m pytest benches/bench_personas.py --benchmark-only -q     # pytest-benchmark
    .venv/bin/python benches/bench_personas.py                                   # table for the README

Sizes: PERSONAS_BENCH_N / _L / _H (default 1000 / 42 / 3584).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

N = int(os.environ.get("PERSONAS_BENCH_N", 1000))
L = int(os.environ.get("PERSONAS_BENCH_L", 42))
H = int(os.environ.get("PERSONAS_BENCH_H", 3584))


def make_vectors(n: int = N, num_layers: int = L, hidden: int = H, seed: int = 0) -> np.ndarray:
    """Residual-stream-like float32 vectors: a shared DC part, a rank-24 persona part, noise."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, num_layers, hidden), dtype=np.float32)
    z = rng.standard_normal((n, 24), dtype=np.float32)
    for layer in range(num_layers):
        basis = rng.standard_normal((24, hidden), dtype=np.float32) * (0.5 + layer / num_layers)
        dc = rng.standard_normal(hidden, dtype=np.float32) * 8
        out[:, layer, :] = z @ basis + dc + rng.standard_normal((n, hidden), dtype=np.float32) * 2
    return out


def baseline(v: np.ndarray, svd_solver: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA
    from sklearn.metrics.pairwise import cosine_similarity
    from sklearn.preprocessing import normalize

    n, num_layers, _ = v.shape
    sims = np.empty((num_layers, n, n), dtype=np.float32)
    coords = np.empty((num_layers, n, 2))
    for layer in range(num_layers):
        xc = v[:, layer, :] - v[:, layer, :].mean(axis=0)
        sims[layer] = cosine_similarity(xc)
        coords[layer] = PCA(n_components=2, random_state=0, svd_solver=svd_solver).fit_transform(normalize(xc))
    return sims, coords


def ours(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from latentatlas.personas import layered_analysis

    res = layered_analysis(v, n_components=2)
    return res.similarity, res.pca  # type: ignore[return-value]


def check_same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Largest difference (similarity, and PCA coordinates after per-axis sign alignment)."""
    ds = float(np.abs(a[0] - b[0]).max())
    ca, cb = a[1], b[1]
    signs = np.sign((ca * cb).sum(axis=1, keepdims=True))
    dc = float(np.abs(ca - cb * signs).max() / np.abs(ca).max())
    return max(ds, dc)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return make_vectors()


def test_bench_numpy_sklearn_loop(benchmark, vectors):
    benchmark.extra_info.update(n=N, layers=L, hidden=H)
    benchmark.pedantic(baseline, args=(vectors,), rounds=1, iterations=1)


def test_bench_latentatlas_layered(benchmark, vectors):
    benchmark.extra_info.update(n=N, layers=L, hidden=H)
    got = benchmark.pedantic(ours, args=(vectors,), rounds=1, iterations=1)
    small = vectors[:, :3]
    assert check_same(ours(small), baseline(small, "full")) < 1e-3  # exact, unlike the randomized default
    assert got[0].shape == (L, N, N)


def main() -> None:
    import threadpoolctl

    t0 = time.perf_counter()
    v = make_vectors()
    print(
        f"data {v.shape} float32 ({v.nbytes / 1e6:.0f} MB) made in {time.perf_counter() - t0:.1f} s; "
        f"BLAS threads: {[p['num_threads'] for p in threadpoolctl.threadpool_info()]}; "
        f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}"
    )
    ours(v[:, :1])  # warm imports
    baseline(v[:, :1])
    times = {}
    for name, fn in (("numpy/sklearn loop", baseline), ("latentatlas layered_analysis", ours)):
        t = time.perf_counter()
        res = fn(v)
        times[name] = time.perf_counter() - t
        print(f"{name:32s} {times[name]:7.2f} s")
        if name.startswith("numpy"):
            ref = res
    print(
        f"max difference vs baseline (sim / relative PCA coords): {check_same(res, ref):.2e} "
        f"(randomized); vs exact PCA on 3 layers: {check_same(ours(v[:, :3]), baseline(v[:, :3], 'full')):.2e}"
    )
    print(
        f"speed-up: {times['numpy/sklearn loop'] / times['latentatlas layered_analysis']:.2f}x; "
        f"load average after: {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
