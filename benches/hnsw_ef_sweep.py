"""Recall@30 of the approximate kNN graph (faiss HNSW, M = 16) against efConstruction and efSearch.

The data and k of ``bench_minima.py`` (three Gaussian clusters lifted to 128 dimensions); recall is
measured on 1,000 random rows against the exact search of the core primitive; query cost is the
process CPU time per row, scaled to a million rows. Chose ``minima.graph.EF_SEARCH``::

    .venv/bin/python benches/hnsw_ef_sweep.py 300000
"""

from __future__ import annotations

import sys
import time

import numpy as np

from latentatlas._optional import import_optional
from latentatlas.datasets import three_gaussians
from latentatlas.minima.graph import _exact_rows


def main(n: int, k: int = 30) -> None:
    faiss = import_optional("faiss", feature="this benchmark")
    X = three_gaussians(np.random.default_rng(1), n_per_cluster=n // 3, dim=128)[0].astype(np.float32)
    n = X.shape[0]
    rows = np.sort(np.random.default_rng(0).choice(n, 1000, replace=False))
    exact = _exact_rows(X, rows, k, None)
    for efc in (32, 64):
        index = faiss.IndexHNSWFlat(X.shape[1], 16)
        index.hnsw.efConstruction = efc
        t = time.perf_counter()
        index.add(X)
        build = time.perf_counter() - t
        for efs in (48, 64, 96, 128, 192):
            index.hnsw.efSearch = efs
            t = time.process_time()
            _, found = index.search(X[rows], k + 1)
            cpu = time.process_time() - t
            recall = np.mean([np.intersect1d(f[f != r], e).size / k for f, e, r in zip(found, exact, rows)])
            print(
                f"n={n} efConstruction={efc} build={build:.0f}s efSearch={efs} recall@{k}={recall:.4f} "
                f"query CPU per 1M rows={cpu / len(rows) * 1e6:.0f}s",
                flush=True,
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
