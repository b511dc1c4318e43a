"""Runs inside the arrowspace venv (CPython 3.12, see peers.py); imports arrowspace, never latentatlas.

Input .npz: X (float64 items), Q (float64 queries), k, tau, and optional flags ``hybrid`` (also run
search_hybrid) and ``batch`` (time search_batch too). Output .npz: build seconds, arrowspace's
lambdas, its Laplacian as CSR, per-query search ids/scores (-1/NaN where it refused the query),
search seconds, and hybrid ids when asked.
"""

import sys
import time

import numpy as np
from arrowspace import ArrowSpaceBuilder

PARAMS = {"eps": 1.0, "k": 8, "topk": 8, "p": 2.0, "sigma": 1.0}


def main(inp: str, out: str) -> None:
    z = np.load(inp)
    X, Q, k, tau = z["X"], z["Q"], int(z["k"]), float(z["tau"])
    t0 = time.perf_counter()
    aspace, gl = ArrowSpaceBuilder().with_seed(42).build(PARAMS, X)
    build_s = time.perf_counter() - t0
    data, indices, indptr, shape = gl.to_csr()
    ids = np.full((len(Q), k), -1, np.int64)
    scores = np.full((len(Q), k), np.nan)
    t0 = time.perf_counter()
    for r, q in enumerate(Q):
        try:
            res = aspace.search(q, gl, tau, k)
        except ValueError:  # arrowspace refuses queries whose raw λ is ~0 (e.g. a zero vector)
            continue
        ids[r, : len(res)] = [i for i, _ in res]
        scores[r, : len(res)] = [s for _, s in res]
    search_s = time.perf_counter() - t0
    extra = {}
    if "hybrid" in z and bool(z["hybrid"]):
        hyb = []
        t0 = time.perf_counter()
        for q in Q:
            try:
                hyb.append([i for i, _ in aspace.search_hybrid(q, gl, tau)])
            except ValueError:
                hyb.append([])
        extra["hybrid_s"] = time.perf_counter() - t0
        width = max((len(h) for h in hyb), default=0)
        extra["hybrid_ids"] = np.array([h + [-1] * (width - len(h)) for h in hyb], np.int64).reshape(len(Q), width)
    lam_sorted = aspace.lambdas_sorted()
    np.savez(
        out,
        build_s=build_s,
        search_s=search_s,
        lambdas=np.asarray(aspace.lambdas(), np.float64),
        sorted_ids=np.asarray([i for _, i in lam_sorted], np.int64),
        L_data=np.asarray(data, np.float64),
        L_indices=np.asarray(indices, np.int64),
        L_indptr=np.asarray(indptr, np.int64),
        L_shape=np.asarray(shape, np.int64),
        ids=ids,
        scores=scores,
        **extra,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
