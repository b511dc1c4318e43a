"""latentatlas against the torch peers on the CPU, same inputs, same run: SAELens's SAE encode and
persona-vectors' persona analysis.

Runs in the peers environment (it imports torch, SAELens and persona-vectors)::

    make peers && .peers/interop/bin/python benches/bench_peers_torch.py

Each row is the best of ``--repeats`` interleaved runs (ours, then the peer, alternately, so a load
change hits both); the ratio is the peer's time over ours (> 1: latentatlas is faster). torch runs with
as many threads as latentatlas (the machine's cores). Writes ``benches/results/peers_torch.json`` with
the date, CPU, load average and the command. Run it on a quiet machine: nothing else running.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parent / "results" / "peers_torch.json"


def _best(fns: dict[str, object], repeats: int, rounds: int = 2) -> dict[str, float]:
    """Best time of each function: ``rounds`` rounds, each running every function ``repeats`` times in a
    row. Blocks, not single calls, alternate: torch's and scikit-learn's OpenMP threads spin for a
    while after their work, and a call timed right after the other library's would pay for it."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(repeats):
                t = time.perf_counter()
                fn()  # type: ignore[operator]
                best[name] = min(best[name], time.perf_counter() - t)
    return best


def sae_rows(rows: int, d: int, n: int, k: int, repeats: int) -> list[dict[str, object]]:
    from sae_lens import JumpReLUSAE, JumpReLUSAEConfig, TopKSAE, TopKSAEConfig

    from latentatlas import sae as la

    rng = np.random.default_rng(0)
    W = (rng.standard_normal((n, d)) / np.sqrt(d)).astype(np.float32)  # float32 / np.float64 would be float64
    be, bd = (0.1 * rng.standard_normal(n)).astype(np.float32), (0.1 * rng.standard_normal(d)).astype(np.float32)
    X = rng.standard_normal((rows, d)).astype(np.float32)
    Xt = torch.from_numpy(X)
    out = []
    ours_topk = la.TopKSAE.from_arrays(W, be, W, bd, k)
    theirs_topk = TopKSAE(TopKSAEConfig(d_in=d, d_sae=n, k=k))
    # a JumpReLU SAE is sparse by design (Gemma Scope: L0 of 20-150): one threshold giving L0 ≈ 64 here
    pre = X[:512] @ W.T + be
    th = np.full(n, np.quantile(pre, 1.0 - 64.0 / n), np.float32)
    ours_jr = la.ThresholdSAE.from_arrays(W, be, W, bd, th, architecture="jumprelu")
    theirs_jr = JumpReLUSAE(JumpReLUSAEConfig(d_in=d, d_sae=n))
    with torch.no_grad():
        for m in (theirs_topk, theirs_jr):
            m.W_enc.copy_(torch.from_numpy(W.T.copy()))
            m.W_dec.copy_(torch.from_numpy(W))
            m.b_enc.copy_(torch.from_numpy(be))
            m.b_dec.copy_(torch.from_numpy(bd))
        theirs_jr.threshold.copy_(torch.from_numpy(th))
    for name, ours, theirs in (
        ("TopK encode", lambda: ours_topk.encode(X), lambda: theirs_topk.encode(Xt)),
        ("JumpReLU encode", lambda: ours_jr.encode(X), lambda: theirs_jr.encode(Xt)),
    ):
        with torch.inference_mode():
            t = _best({"latentatlas": ours, "SAELens": theirs}, repeats)
        out.append(
            {
                "kernel": f"{name} {rows}×{d} → {n}" + (f", k={k}" if "TopK" in name else ", L0 ≈ 64"),
                "latentatlas_s": t["latentatlas"],
                "peer": "SAELens 6.54 (torch CPU)",
                "peer_s": t["SAELens"],
                "ratio": t["SAELens"] / t["latentatlas"],
            }
        )
    return out


def persona_rows(n: int, layers: int, hidden: int, repeats: int) -> list[dict[str, object]]:
    """Two inputs: pure noise (a flat spectrum: the hardest case for an exact top-k eigensolver, where a
    randomized one is fast and wrong) and a rank-8 signal plus noise (persona vectors have a few strong
    directions). ``pca_angle_deg``: each side's worst angle between its PCA coordinates and scikit-learn's
    ``svd_solver="full"`` on the same prepared layer."""
    from persona_vectors import analysis as pv
    from sklearn.decomposition import PCA

    from latentatlas.personas import analysis as la

    g = torch.Generator().manual_seed(0)
    noise = torch.randn(n, layers, hidden, generator=g)
    signal = torch.randn(n, 8, generator=g) * torch.logspace(1, 0, 8) @ torch.randn(8, layers * hidden, generator=g)
    inputs = {"noise": noise + 2.0, "rank-8 signal + noise": noise + 0.3 * signal.reshape(n, layers, hidden)}
    out = []
    for what, V in inputs.items():

        def run(mod: object, V: torch.Tensor = V) -> None:
            for layer in range(layers):
                x = V[:, layer, :]
                mod.cosine_similarity_matrix(x)  # type: ignore[attr-defined]
                mod.project_pca(x, 2)  # type: ignore[attr-defined]
                mod.cluster_kmeans(x, 8, seed=0)  # type: ignore[attr-defined]

        x0 = V[:, 0, :]
        exact = PCA(2, svd_solver="full").fit_transform(la.samples_to_numpy(x0, center=True, normalize=True))
        angle = {}
        for name, mod in (("latentatlas", la), ("peer", pv)):
            got = np.asarray(mod.project_pca(x0, 2), dtype=np.float64)  # type: ignore[attr-defined]
            cos = np.abs((got * exact).sum(0)) / (np.linalg.norm(got, axis=0) * np.linalg.norm(exact, axis=0))
            angle[name] = float(np.degrees(np.arccos(np.clip(cos, 0.0, 1.0))).max())
        t = _best({"latentatlas": lambda: run(la), "persona-vectors": lambda: run(pv)}, repeats)
        out.append(
            {
                "kernel": f"persona analysis per layer (cosine, PCA, k-means), {n} personas × {layers} layers × "
                f"{hidden}, {what}",
                "latentatlas_s": t["latentatlas"],
                "peer": "persona-vectors 0.8.10 (torch CPU)",
                "peer_s": t["persona-vectors"],
                "ratio": t["persona-vectors"] / t["latentatlas"],
                "latentatlas_pca_angle_deg": angle["latentatlas"],
                "peer_pca_angle_deg": angle["peer"],
            }
        )
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=8192)
    p.add_argument("--d", type=int, default=768)
    p.add_argument("--latents", type=int, default=16384)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--personas", type=int, default=400)
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--hidden", type=int, default=576)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    load_before = os.getloadavg()
    rows = sae_rows(args.rows, args.d, args.latents, args.k, args.repeats)
    rows += persona_rows(args.personas, args.layers, args.hidden, args.repeats)
    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "command": " ".join([".peers/interop/bin/python benches/bench_peers_torch.py", *(argv or sys.argv[1:])]),
        "rows": rows,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    for r in rows:
        print(
            f"{r['kernel']}: latentatlas {r['latentatlas_s']:.3f} s, {r['peer']} {r['peer_s']:.3f} s → {r['ratio']:.2f}×"
        )
    print(f"load average {load_before} → {result['load_average_after']}; wrote {OUT}")


if __name__ == "__main__":
    main()
