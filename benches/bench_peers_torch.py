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


def _best(fns: dict[str, object], repeats: int) -> dict[str, float]:
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()  # type: ignore[operator]
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def sae_rows(rows: int, d: int, n: int, k: int, repeats: int) -> list[dict[str, object]]:
    from sae_lens import JumpReLUSAE, JumpReLUSAEConfig, TopKSAE, TopKSAEConfig

    from latentatlas import sae as la

    rng = np.random.default_rng(0)
    W = rng.standard_normal((n, d)).astype(np.float32) / np.sqrt(d)
    be, bd = (0.1 * rng.standard_normal(n)).astype(np.float32), (0.1 * rng.standard_normal(d)).astype(np.float32)
    X = rng.standard_normal((rows, d)).astype(np.float32)
    Xt = torch.from_numpy(X)
    out = []
    ours_topk = la.TopKSAE.from_arrays(W, be, W, bd, k)
    theirs_topk = TopKSAE(TopKSAEConfig(d_in=d, d_sae=n, k=k))
    th = np.full(n, 0.5, np.float32)
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
                "kernel": f"{name} {rows}×{d} → {n}" + (f", k={k}" if "TopK" in name else ""),
                "latentatlas_s": t["latentatlas"],
                "peer": "SAELens 6.54 (torch CPU)",
                "peer_s": t["SAELens"],
                "ratio": t["SAELens"] / t["latentatlas"],
            }
        )
    return out


def persona_rows(n: int, layers: int, hidden: int, repeats: int) -> list[dict[str, object]]:
    from persona_vectors import analysis as pv

    from latentatlas.personas import analysis as la

    g = torch.Generator().manual_seed(0)
    V = torch.randn(n, layers, hidden, generator=g) + 2.0

    def run(mod: object) -> None:
        for layer in range(layers):
            x = V[:, layer, :]
            mod.cosine_similarity_matrix(x)  # type: ignore[attr-defined]
            mod.project_pca(x, 2)  # type: ignore[attr-defined]
            mod.cluster_kmeans(x, 8, seed=0)  # type: ignore[attr-defined]

    t = _best({"latentatlas": lambda: run(la), "persona-vectors": lambda: run(pv)}, repeats)
    return [
        {
            "kernel": f"persona analysis per layer (cosine, PCA, k-means), {n} personas × {layers} layers × {hidden}",
            "latentatlas_s": t["latentatlas"],
            "peer": "persona-vectors 0.8.10 (torch CPU)",
            "peer_s": t["persona-vectors"],
            "ratio": t["persona-vectors"] / t["latentatlas"],
        }
    ]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=8192)
    p.add_argument("--d", type=int, default=768)
    p.add_argument("--latents", type=int, default=16384)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--personas", type=int, default=400)
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--hidden", type=int, default=576)
    p.add_argument("--repeats", type=int, default=5)
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
