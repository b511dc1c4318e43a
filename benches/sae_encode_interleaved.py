"""SAE encode speed against NumPy in interleaved rounds (issue 15's ratios, robust to drift).

Each round times, one after another: NumPy's chunked ``X @ W_enc.T`` alone (the BLAS rate), the Rust
TopK encode, the Rust threshold (JumpReLU) encode to CSR, and NumPy's chunked threshold encode, on
``bench_sae.py``'s shapes (20,000 × 384 rows, 16,384 latents, k = 32, L0 ≈ 63). It prints the best
time of each and the per-round ratios' median and range, so a drifting machine shows as a range
rather than a single lucky or unlucky ratio. Reproduce (about 1 min per 5 rounds on 2 cores)::

    .venv/bin/python benches/sae_encode_interleaved.py 8
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_sae as b  # noqa: E402
from latentatlas.sae import ThresholdSAE, TopKSAE  # noqa: E402


def main(rounds: int) -> None:
    sae = TopKSAE(b.D_IN, b.N_LAT, b.K, seed=0)
    X = b._unit(b.N, b.D_IN, 1)
    sae.b_dec = X.mean(0)
    jr = ThresholdSAE.from_arrays(sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec, np.full(b.N_LAT, b._THETA, np.float32))

    def gemm() -> None:
        for r0 in range(0, X.shape[0], 2048):
            X[r0 : r0 + 2048] @ sae.W_enc.T

    fns = {
        "NumPy GEMM alone": gemm,
        "Rust TopK encode": lambda: sae.encode(X),
        "Rust threshold encode": lambda: jr.encode(X),
        "NumPy threshold encode": lambda: b._numpy_threshold(jr, X),
    }
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    flops = 2.0 * b.N * b.D_IN * b.N_LAT
    for name, ts in times.items():
        print(f"{name:<24} best {min(ts):.3f} s  ({flops / min(ts) / 1e9:.0f} GFLOP/s of the encode's GEMM)")
    ratios = {
        "TopK encode at the BLAS rate (GEMM alone / TopK)": ("NumPy GEMM alone", "Rust TopK encode"),
        "threshold encode: NumPy / Rust": ("NumPy threshold encode", "Rust threshold encode"),
    }
    for label, (num, den) in ratios.items():
        r = [n / d for n, d in zip(times[num], times[den])]
        print(f"{label:<50} median {statistics.median(r):.2f}×, range {min(r):.2f}–{max(r):.2f}× over {rounds} rounds")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
