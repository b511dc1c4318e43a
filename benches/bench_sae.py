"""Speed of the SAE kernels against NumPy / SciPy / faiss, as same-run ratios (pytest-benchmark).

Run: ``.venv/bin/python -m pytest benches/bench_sae.py -q -p no:randomly --benchmark-only -s``
(`make bench` runs every bench file). The summary printed at the end lists each pair's ratio;
absolute times on a shared machine are not stable, ratios from one run are.

Sizes (the issue's): N = 20,000 rows, d = 384, n_latents = 16,384, k = 32, float32. The training
epoch runs at N_TRAIN documents (each batch also encodes its anchors' 8 dense neighbours, ~9 rows
per anchor) — the dense NumPy epoch at 20,000 documents takes many minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.sparse as sp

from latentatlas.sae import ThresholdSAE, TopKSAE, dense_search, latent_search

N = int(os.environ.get("LATENTATLAS_BENCH_N", "20000"))
N_LAT = int(os.environ.get("LATENTATLAS_BENCH_LATENTS", "16384"))
D_IN, K = 384, 32
N_Q = 1_000
N_TRAIN = int(os.environ.get("LATENTATLAS_BENCH_TRAIN_N", "2000"))
RESULTS: dict[str, float] = {}
EXTRA: dict[str, str] = {}


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


@pytest.fixture(scope="module")
def data():
    sae = TopKSAE(D_IN, N_LAT, K, seed=0)
    X = _unit(N, D_IN, 1)
    sae.b_dec = X.mean(0)
    return sae, X


def _numpy_encode(sae: TopKSAE, X: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Chunked NumPy TopK encode: matmul, argpartition, sort the k kept, ReLU."""
    out_v = np.empty((X.shape[0], sae.k), np.float32)
    out_i = np.empty((X.shape[0], sae.k), np.int64)
    c = sae.b_enc - sae.W_enc @ sae.b_dec
    for r0 in range(0, X.shape[0], chunk):
        pre = X[r0 : r0 + chunk] @ sae.W_enc.T + c
        part = np.argpartition(-pre, sae.k - 1, axis=1)[:, : sae.k]
        vals = np.take_along_axis(pre, part, 1)
        order = np.argsort(-vals, axis=1)
        out_v[r0 : r0 + chunk] = np.maximum(np.take_along_axis(vals, order, 1), 0)
        out_i[r0 : r0 + chunk] = np.take_along_axis(part, order, 1)
    return out_v, out_i


_GROUPS = {
    "encode": "sae encode",
    "gemm": "sae encode",
    "peak": "sae tables",
    "threshold": "sae threshold encode to CSR",
    "decode": "sae decode",
    "train": "sae train epoch",
    "latent": "sae latent search",
    "dense": "sae dense search",
}


def _run(benchmark, key: str, fn, rounds: int = 3):
    kind, impl = key.split("/")
    benchmark.group = _GROUPS[kind]
    labels = {"rust": "latentatlas (Rust)", "sparse": "latentatlas (Rust, sparse backward)"}
    labels |= {"gemm/numpy": "NumPy GEMM alone (BLAS rate)", "peak/numpy": "NumPy 4096² GEMM (practical peak)"}
    benchmark.extra_info["label"] = labels.get(key, labels.get(impl, impl))
    benchmark.extra_info["ours"] = impl in ("rust", "sparse")
    res = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
    RESULTS[key] = benchmark.stats.stats.min
    return res


# -- encode ----------------------------------------------------------------------------------
def test_encode_rust(benchmark, data):
    sae, X = data
    v, i = _run(benchmark, "encode/rust", lambda: sae.encode(X))
    nv, ni = _numpy_encode(sae, X[:500])
    assert (i[:500] == ni).mean() > 0.99


def test_encode_numpy_chunked(benchmark, data):
    sae, X = data
    _run(benchmark, "encode/numpy", lambda: _numpy_encode(sae, X))


def test_encode_numpy_gemm_alone(benchmark, data):
    """The BLAS rate: only the chunked matmul of the encode (no bias, no top-k), same shapes."""
    sae, X = data

    def gemm():
        for r0 in range(0, X.shape[0], 2048):
            X[r0 : r0 + 2048] @ sae.W_enc.T

    _run(benchmark, "gemm/numpy", gemm)


def test_gemm_peak(benchmark):
    """The machine's practical GEMM peak: NumPy's BLAS on a large square float32 product."""
    A = np.random.default_rng(0).standard_normal((4096, 4096), dtype=np.float32)
    _run(benchmark, "peak/numpy", lambda: A @ A)


# -- threshold (JumpReLU) encode to CSR --------------------------------------------------------
#: a JumpReLU threshold at the ~99.6th percentile of the pre-activations (L0 ≈ 64 on unit rows)
_THETA = 2.66 / np.sqrt(D_IN)


@pytest.fixture(scope="module")
def jumprelu(data):
    sae, X = data
    th = np.full(N_LAT, _THETA, np.float32)
    return ThresholdSAE.from_arrays(sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec, th), X


def _numpy_threshold(sae: ThresholdSAE, X: np.ndarray, chunk: int = 2048) -> sp.csr_matrix:
    """Chunked NumPy JumpReLU encode: matmul, threshold, CSR of each chunk, stacked."""
    c = sae.b_enc - sae.W_enc @ sae.b_dec
    cut = np.maximum(sae.threshold, 0)
    parts = []
    for r0 in range(0, X.shape[0], chunk):
        pre = X[r0 : r0 + chunk] @ sae.W_enc.T + c
        pre[pre <= cut] = 0
        parts.append(sp.csr_matrix(pre))
    return sp.vstack(parts, format="csr")


def test_threshold_encode_rust(benchmark, jumprelu):
    sae, X = jumprelu
    H = _run(benchmark, "threshold/rust", lambda: sae.encode(X))
    ref = _numpy_threshold(sae, X[:500])
    assert abs(H[:500].nnz - ref.nnz) <= 0.001 * ref.nnz
    EXTRA["threshold encode L0"] = f"{H.nnz / X.shape[0]:.1f} active latents per row"


def test_threshold_encode_numpy_chunked(benchmark, jumprelu):
    sae, X = jumprelu
    _run(benchmark, "threshold/numpy", lambda: _numpy_threshold(sae, X))


_MEM = """
import sys, numpy as np
from latentatlas.sae import TopKSAE
sys.path.insert(0, {bench!r}); import bench_sae as b
sae = TopKSAE(b.D_IN, b.N_LAT, b.K, seed=0); X = b._unit(b.N, b.D_IN, 1)
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
# reset the peak-RSS mark (Linux clear_refs "5"), so setup allocations do not count
open("/proc/self/clear_refs", "w").write("5")
base = status("VmRSS")
mode = {mode!r}
if mode == "rust": sae.encode(X)
elif mode == "numpy-chunked": b._numpy_encode(sae, X)
else:
    pre = X @ sae.W_enc.T + (sae.b_enc - sae.W_enc @ sae.b_dec)
    part = np.argpartition(-pre, b.K - 1, axis=1)[:, :b.K]
print(status("VmHWM") - base)
"""


def test_encode_peak_memory(benchmark):
    """Extra peak RSS (MiB) of one encode of N×d against n_latents, each in a fresh process."""
    benchmark.group = "sae tables"
    benchmark.pedantic(_peak_memory, rounds=1, iterations=1)


def _peak_memory() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    peaks = {}
    for mode in ("rust", "numpy-chunked", "numpy-dense"):
        out = subprocess.run(
            [sys.executable, "-c", _MEM.format(bench=here, mode=mode)], capture_output=True, text=True, check=True
        )
        peaks[mode] = max(float(out.stdout.strip().splitlines()[-1]), 0.5)
    EXTRA["encode peak MiB"] = json.dumps({k: round(v, 1) for k, v in peaks.items()})
    RESULTS["mem/rust"], RESULTS["mem/numpy-dense"], RESULTS["mem/numpy-chunked"] = (
        peaks["rust"],
        peaks["numpy-dense"],
        peaks["numpy-chunked"],
    )


# -- decode ----------------------------------------------------------------------------------
def test_decode_rust(benchmark, data):
    sae, X = data
    v, i = sae.encode(X)
    out = _run(benchmark, "decode/rust", lambda: sae.decode(v, i), rounds=5)
    H = np.zeros((200, N_LAT), np.float32)
    np.put_along_axis(H, i[:200], v[:200], 1)
    np.testing.assert_allclose(out[:200], H @ sae.W_dec + sae.b_dec, atol=1e-4)


def test_decode_numpy_dense(benchmark, data):
    sae, X = data
    v, i = sae.encode(X)

    def dense():
        H = np.zeros((X.shape[0], N_LAT), np.float32)
        np.put_along_axis(H, i, v, 1)
        return H @ sae.W_dec + sae.b_dec

    _run(benchmark, "decode/numpy", dense, rounds=1)


# -- training epoch --------------------------------------------------------------------------
def _epoch(backend: str):
    Xt = _unit(N_TRAIN, D_IN, 7)
    sae = TopKSAE(D_IN, N_LAT, K, seed=0)
    return lambda: (
        TopKSAE(D_IN, N_LAT, K, seed=0).fit(
            Xt, epochs=1, batch_size=512, kl_weight=1.0, progress=False, backend=backend
        )
        and sae
    )


def test_train_epoch_sparse(benchmark):
    _run(benchmark, "train/sparse", _epoch("sparse"), rounds=1)


def test_train_epoch_dense_numpy(benchmark):
    _run(benchmark, "train/dense", _epoch("dense"), rounds=1)


# -- latent search ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def codes(data):
    sae, X = data
    Q = _unit(N_Q, D_IN, 3)
    return sae.encode(Q), sae.encode(X)


def _csr(c):
    v, i = c
    rows = np.repeat(np.arange(v.shape[0]), v.shape[1])
    return sp.csr_matrix((v.ravel(), (rows, i.ravel())), shape=(v.shape[0], N_LAT))


def test_latent_search_rust(benchmark, codes):
    qc, dc = codes
    _run(benchmark, "latent/rust", lambda: latent_search(qc, dc, 10, n_latents=N_LAT))


def test_latent_search_scipy(benchmark, codes):
    qc, dc = codes

    def scipy_search():
        Dt = _csr(dc).T.tocsr()  # index build, as the inverted index is built per call
        S = (_csr(qc) @ Dt).toarray()
        part = np.argpartition(-S, 9, axis=1)[:, :10]
        return np.take_along_axis(S, part, 1), part

    s_ref, _ = _run(benchmark, "latent/scipy", scipy_search)
    s, _ = latent_search(qc, dc, 10, n_latents=N_LAT)
    np.testing.assert_allclose(np.sort(s, 1), np.sort(s_ref, 1), atol=1e-5)


# -- dense search ----------------------------------------------------------------------------
def test_dense_search_rust(benchmark, data):
    _, X = data
    Q = _unit(N_Q, D_IN, 4)
    _run(benchmark, "dense/rust", lambda: dense_search(Q, X, 10))


def test_dense_search_numpy(benchmark, data):
    _, X = data
    Q = _unit(N_Q, D_IN, 4)

    def np_search():
        S = Q @ X.T
        part = np.argpartition(-S, 9, axis=1)[:, :10]
        return part

    _run(benchmark, "dense/numpy", np_search)


def test_dense_search_faiss(benchmark, data):
    faiss = pytest.importorskip("faiss")
    _, X = data
    Q = _unit(N_Q, D_IN, 4)
    index = faiss.IndexFlatIP(D_IN)
    index.add(X)
    _, ids = _run(benchmark, "dense/faiss", lambda: index.search(Q, 10))
    assert (np.sort(ids, 1) == np.sort(dense_search(Q, X, 10)[1], 1)).mean() > 0.99


# -- growth ----------------------------------------------------------------------------------
def test_encode_growth(benchmark):
    """Encode time (min of 2) over N and n_latents, Rust vs chunked NumPy."""
    benchmark.group = "sae tables"
    benchmark.pedantic(_growth, rounds=1, iterations=1)


def _growth() -> None:
    rows = []
    for n_lat in (N_LAT // 4, N_LAT):
        sae = TopKSAE(D_IN, n_lat, K, seed=0)
        for n in (N // 4, N):
            X = _unit(n, D_IN, 5)
            t = {}
            for name, fn in (
                ("rust", lambda sae=sae, X=X: sae.encode(X)),
                ("numpy", lambda sae=sae, X=X: _numpy_encode(sae, X)),
            ):
                best = float("inf")
                for _ in range(2):
                    t0 = time.perf_counter()
                    fn()
                    best = min(best, time.perf_counter() - t0)
                t[name] = best
            rows.append(f"| {n:,} | {n_lat:,} | {t['rust']:.3f} | {t['numpy']:.3f} | {t['numpy'] / t['rust']:.2f}× |")
    EXTRA["encode growth"] = "\n".join(
        ["| N | n_latents | Rust s | NumPy s | speed-up |", "|---|---|---|---|---|", *rows]
    )


def test_zz_summary(benchmark):
    """Print the same-run ratios (no timing asserts: shared machines are noisy)."""
    benchmark.group = "sae tables"
    benchmark.pedantic(_summary, rounds=1, iterations=1)


def _summary() -> None:
    pairs = [
        ("encode: NumPy chunked / Rust", "encode/numpy", "encode/rust"),
        ("TopK encode at the BLAS rate: NumPy GEMM alone / Rust encode", "gemm/numpy", "encode/rust"),
        ("threshold encode to CSR: NumPy chunked / Rust", "threshold/numpy", "threshold/rust"),
        ("encode peak memory: NumPy dense / Rust", "mem/numpy-dense", "mem/rust"),
        ("encode peak memory: NumPy chunked / Rust", "mem/numpy-chunked", "mem/rust"),
        ("decode: NumPy dense / Rust", "decode/numpy", "decode/rust"),
        (f"training epoch (N={N_TRAIN}): dense NumPy / Rust sparse", "train/dense", "train/sparse"),
        ("latent search: scipy.sparse / Rust inverted index", "latent/scipy", "latent/rust"),
        ("dense search: NumPy / Rust", "dense/numpy", "dense/rust"),
        ("dense search: faiss IndexFlatIP / Rust", "dense/faiss", "dense/rust"),
    ]
    print("\n\nSAE benchmark ratios (same run; > 1 means latentatlas is faster / smaller)")
    for label, a, b in pairs:
        if a in RESULTS and b in RESULTS:
            print(f"  {label:<55} {RESULTS[a] / RESULTS[b]:8.2f}×   ({RESULTS[a]:.4g} vs {RESULTS[b]:.4g})")
    # the physical yardstick: useful GEMM flops per second (2·N·d·n_latents per encode)
    flops = 2.0 * N * D_IN * N_LAT
    rates = [f"{name} {flops / RESULTS[key] / 1e9:.0f} GFLOP/s" for name, key in
             (("NumPy/BLAS GEMM alone", "gemm/numpy"), ("Rust TopK encode", "encode/rust"),
              ("Rust threshold encode", "threshold/rust")) if key in RESULTS]  # fmt: skip
    if "peak/numpy" in RESULTS:
        rates.insert(
            0, f"practical peak (NumPy 4096² square) {2.0 * 4096**3 / RESULTS['peak/numpy'] / 1e9:.0f} GFLOP/s"
        )
    if rates:
        EXTRA["encode GEMM rate"] = ", ".join(rates)
    for k, v in EXTRA.items():
        print(f"\n{k}:\n{v}")
