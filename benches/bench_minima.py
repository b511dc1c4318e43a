"""Local-minima benchmarks: growth of ``compare`` with N (F = 128, up to 1,000,000), the ratio against
the seed's dense pipeline at N = 5,000, the approximate-kNN candidates side by side at N = 100,000, and
how the minima sets differ between the exact and the approximate kNN graph at N = 100,000.

Each measurement runs in a fresh Python process, so the peak resident memory
(``resource.getrusage(...).ru_maxrss``: NumPy, SciPy *and* the Rust core's buffers, which
``tracemalloc`` cannot see) belongs to that run alone. Run with::

    .venv/bin/python -m pytest benches/bench_minima.py -q -p no:randomly --benchmark-only -s

``LATENTATLAS_BENCH_MAX_N`` (default 100000) skips the larger growth rows (set it to 1000000 for the
1M row: minutes, ~5 GB); ``LATENTATLAS_BENCH_KNN=1`` runs the kNN candidates and the exact-vs-approx
Jaccard (each builds an exact 100k graph: minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

MAX_N = int(os.environ.get("LATENTATLAS_BENCH_MAX_N", "100000"))
KNN = os.environ.get("LATENTATLAS_BENCH_KNN") == "1"

_DATA = """
import json, os, resource, time
import numpy as np
from latentatlas.datasets import three_gaussians
N, F = {n}, {f}
X, y, _ = three_gaussians(np.random.default_rng(0), n_per_cluster=-(-N // 3), dim=F)
X, y = X[:N], y[:N]
"""

_OURS = """
from latentatlas.minima import compare
t = time.perf_counter()
r = compare(X, y, rng=np.random.default_rng(1), progress=False)
wall = time.perf_counter() - t
out = dict(wall=wall, timings=r.info["timings"], kde=r.info["kde_path"], err=r.info.get("kde_max_rel_error"),
           rows=r.rows, knn=r.info["knn_method"], recall=r.info["knn_recall"], clusters=r.info["tomato_clusters"],
           load=os.getloadavg())
"""

# The minima sets of every method with the exact and with the approximate kNN graph (same data, same rng).
_JACCARD = """
from latentatlas.metrics import jaccard
from latentatlas.minima import compare
res = {}
for knn in ("exact", "approx"):
    t = time.perf_counter()
    res[knn] = compare(X, y, rng=np.random.default_rng(1), progress=False, knn=knn)
    res[knn + "_wall"] = time.perf_counter() - t
out = dict(recall=res["approx"].info["knn_recall"], wall_exact=res["exact_wall"], wall_approx=res["approx_wall"],
           jaccard={m: jaccard(res["exact"].masks[m], res["approx"].masks[m]) for m in res["exact"].masks})
"""

# Approximate-kNN candidates: recall@30 against float64 brute force on 1,000 rows, build + query wall time.
_CANDIDATE = """
K = 30
Xf = np.ascontiguousarray(X, dtype=np.float32)
q = np.random.default_rng(1).choice(N, 1000, replace=False)
sq = (Xf.astype(np.float64) ** 2).sum(1)
D = sq[q, None] + sq[None, :] - 2 * Xf[q].astype(np.float64) @ Xf.T.astype(np.float64)
D[np.arange(len(q)), q] = np.inf
truth = np.argpartition(D, K, axis=1)[:, :K]
del D
def strip_self(I):
    keep = I != np.arange(I.shape[0])[:, None]
    keep[keep.sum(1) > K, K] = False
    return I[keep].reshape(I.shape[0], K)
t = time.perf_counter()
if WHICH == "exact":
    from latentatlas import _core
    I = _core.knn_sqdist(Xf, k=K)[1]
elif WHICH.startswith("faiss-hnsw"):
    import faiss
    M, efc, efs = (16, 32, 48) if WHICH == "faiss-hnsw16" else (32, 40, 64)
    ix = faiss.IndexHNSWFlat(128, M); ix.hnsw.efConstruction = efc; ix.add(Xf); ix.hnsw.efSearch = efs
    I = strip_self(ix.search(Xf, K + 1)[1])
elif WHICH == "faiss-ivf":
    import faiss
    nlist = int(4 * np.sqrt(N)); ix = faiss.IndexIVFFlat(faiss.IndexFlatL2(128), 128, nlist)
    ix.train(Xf[np.random.default_rng(2).choice(N, min(N, 40 * nlist), replace=False)]); ix.add(Xf); ix.nprobe = 16
    I = strip_self(ix.search(Xf, K + 1)[1])
elif WHICH == "usearch":
    from usearch.index import Index
    ix = Index(ndim=128, metric="l2sq", dtype="f32", connectivity=16, expansion_add=128, expansion_search=64)
    ix.add(np.arange(N), Xf)
    I = strip_self(np.asarray(ix.search(Xf, K + 1).keys, dtype=np.int64))
elif WHICH == "pynndescent":
    from pynndescent import NNDescent
    I = strip_self(NNDescent(Xf, n_neighbors=K + 1, random_state=0, compressed=True).neighbor_graph[0])
wall = time.perf_counter() - t
out = dict(method=WHICH, wall=wall, recall=float(np.mean([np.intersect1d(a, b).size / K for a, b in zip(I[q], truth)])),
           load=os.getloadavg())
"""

# The seed notebook's pipeline as printed (dense N×N kernel, eigh, exact KDE everywhere).
_SEED = """
from scipy.linalg import eigh
from scipy.optimize import basinhopping
from scipy.stats import gaussian_kde
from sklearn.cluster import AgglomerativeClustering
from sklearn.decomposition import PCA
from sklearn.metrics.pairwise import rbf_kernel
from latentatlas.reference import build_feature_laplacian, rayleigh_energy, minmax
t = time.perf_counter(); T = {}
rng = np.random.default_rng(1)
L, _ = build_feature_laplacian(X, 8); R = minmax(rayleigh_energy(X, L)); T["spectral energy"] = time.perf_counter() - t
X_2d = PCA(n_components=2, random_state=42).fit_transform(X)
s = time.perf_counter(); kde = gaussian_kde(X_2d.T, bw_method="silverman"); dn = minmax(kde(X_2d.T)); T["KDE"] = time.perf_counter() - s
s = time.perf_counter()
sub = X[:300]; sigma2 = np.median(np.sum((sub - sub.mean(0)) ** 2, axis=1))
K = rbf_kernel(X, gamma=1.0 / (2 * sigma2)); P = np.diag(1.0 / K.sum(axis=1)) @ K
ev, evec = eigh(P, subset_by_index=[N - 6, N - 1]); ev, evec = ev[::-1], evec[:, ::-1]
dc = evec[:, 1:3] * ev[1:3]; dd = minmax(np.linalg.norm(dc - dc.mean(0), axis=1)); T["diffusion maps"] = time.perf_counter() - s
s = time.perf_counter()
def f(pt):
    return -np.log(float(kde(np.array(pt).reshape(2, 1)).item()) + 1e-20)
seeds = [X_2d.mean(0) + 0.6 * rng.standard_normal(2) for _ in range(14)]
opts = {"method": "Nelder-Mead", "options": {"xatol": 1e-3, "fatol": 1e-3, "maxiter": 300}}
bh = np.array([basinhopping(f, s0, minimizer_kwargs=opts, niter=60, T=1.2, stepsize=0.6, seed=42).x for s0 in seeds])
cl = AgglomerativeClustering(n_clusters=None, distance_threshold=0.5, linkage="single").fit(bh)
T["basin-hopping"] = time.perf_counter() - s
out = dict(wall=time.perf_counter() - t, timings=T)
"""

_TAIL = """
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT" + json.dumps(out))
"""


def _run(body: str, n: int, f: int = 128, prelude: str = "") -> dict:
    code = textwrap.dedent(_DATA.format(n=n, f=f)) + prelude + textwrap.dedent(body) + textwrap.dedent(_TAIL)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT") :])


def _fmt(t: dict) -> str:
    return ", ".join(f"{k} {v:.1f}s" for k, v in t.items())


@pytest.mark.parametrize("n", [1_000, 10_000, 100_000, 1_000_000])
def test_compare_growth(benchmark, n):
    if n > MAX_N:
        pytest.skip(f"N = {n} > LATENTATLAS_BENCH_MAX_N = {MAX_N}")
    res = benchmark.pedantic(_run, args=(_OURS, n), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    recall = "" if res["knn"] == "exact" else f", recall {res['recall']:.3f}"
    print(
        f"\n| {n:,} × 128 | {res['wall']:.1f} s | {res['peak_rss_mb']:.0f} MB | {res['kde']} "
        f"({res['err'] if res['err'] is None else format(res['err'], '.1e')}) | {res['knn']}{recall} | "
        f"{_fmt(res['timings'])} | load {', '.join(f'{v:.1f}' for v in res['load'])} |"
    )
    assert res["peak_rss_mb"] < 6144


@pytest.mark.parametrize("which", ["faiss-hnsw16", "faiss-hnsw", "faiss-ivf", "usearch", "pynndescent", "exact"])
def test_knn_candidates_n100k(benchmark, which):
    if not KNN:
        pytest.skip("set LATENTATLAS_BENCH_KNN=1 (builds 100k graphs: minutes each)")
    pytest.importorskip({"usearch": "usearch", "pynndescent": "pynndescent"}.get(which, "faiss"))
    res = benchmark.pedantic(_run, args=(_CANDIDATE, 100_000), kwargs={"prelude": f"WHICH = {which!r}\n"}, rounds=1)
    benchmark.extra_info.update(res)
    print(f"\n| {which} | {res['recall']:.4f} | {res['wall']:.1f} s | load {res['load'][0]:.1f} |")


def test_minima_jaccard_exact_vs_approx_n100k(benchmark):
    if not KNN:
        pytest.skip("set LATENTATLAS_BENCH_KNN=1 (an exact 100k graph: minutes)")
    res = benchmark.pedantic(_run, args=(_JACCARD, 100_000), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    print(
        f"\nN = 100,000 × 128: approximate graph recall@30 {res['recall']:.4f}; "
        f"compare {res['wall_exact']:.1f} s (exact) vs {res['wall_approx']:.1f} s (approx)"
    )
    for m, j in res["jaccard"].items():
        print(f"| {m} | {j:.3f} |")


def test_ratio_vs_seed_dense_pipeline_n5000(benchmark):
    n = 5_000
    ours = _run(_OURS, n)
    seed = benchmark.pedantic(_run, args=(_SEED, n), rounds=1, iterations=1)
    benchmark.extra_info.update(ours=ours, seed=seed)
    print(
        f"\nN = {n} × 128: seed dense pipeline {seed['wall']:.1f} s, peak {seed['peak_rss_mb']:.0f} MB "
        f"({_fmt(seed['timings'])})\n"
        f"             latentatlas compare {ours['wall']:.1f} s, peak {ours['peak_rss_mb']:.0f} MB "
        f"({_fmt(ours['timings'])})\n"
        f"             speed-up {seed['wall'] / ours['wall']:.1f}x, memory ratio "
        f"{seed['peak_rss_mb'] / ours['peak_rss_mb']:.1f}x"
    )
