"""Ground-truth SAE quality on the SynthSAEBench-16k configuration, on CPU (the README table).

Generates samples from :func:`latentatlas.sae.synthetic.synthsaebench_16k`, trains TopK SAEs (with
and without AuxK) and a BatchTopK SAE (evaluated in its JumpReLU inference form) at L0 = k, and reports the ground-truth metrics of
:func:`latentatlas.sae.synthetic.evaluate_synthetic` on held-out samples as a Markdown table.

Run: ``.venv/bin/python benches/synth_sae_table.py`` (``--help`` for sizes; the defaults take
several minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time

from latentatlas.sae import ThresholdSAE, TopKSAE
from latentatlas.sae.synthetic import evaluate_synthetic, synthsaebench_16k


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-features", type=int, default=16384)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--latents", type=int, default=4096, help="SAE width (SynthSAEBench's panel: 4096)")
    ap.add_argument("--k", type=int, default=25, help="L0 of the TopK SAEs")
    ap.add_argument("--train", type=int, default=60000, help="training samples")
    ap.add_argument("--test", type=int, default=5000, help="held-out samples for the metrics")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", help="run only the SAEs whose name starts with this (e.g. BatchTopK)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    model = synthsaebench_16k(n_features=args.n_features, d=args.d)
    X, _ = model.sample(args.train, seed=args.seed + 1)
    Xt, At = model.sample(args.test, seed=args.seed + 2)
    print(f"generated {args.train:,} + {args.test:,} samples in {time.perf_counter() - t0:.1f} s; "
          f"true L0 {At.nnz / args.test:.1f}")  # fmt: skip
    rows = []
    configs = (
        ("TopK", {}),
        ("TopK + AuxK (k_aux = 512)", {"auxk": 512}),
        ("BatchTopK (as JumpReLU)", {"batch_topk": True}),
    )
    for name, kw in configs:
        if args.only and not name.startswith(args.only):
            continue
        t0 = time.perf_counter()
        sae = TopKSAE(args.d, args.latents, args.k, seed=args.seed)
        sae.fit(X, epochs=args.epochs, seed=args.seed, progress=True, **kw)
        if kw.get("batch_topk"):
            jr = ThresholdSAE.from_batch_topk(sae)
            H = jr.encode(Xt)
            Xh = jr.decode(H)
        else:
            codes = sae.encode(Xt)
            H, Xh = codes.to_csr(), sae.decode(*codes)
        m = evaluate_synthetic(model.features, sae.W_dec, X=Xt, A=At, codes=H, X_hat=Xh, bias=model.bias)
        secs = time.perf_counter() - t0
        rows.append(
            f"| {name} | {m['l0']:.1f} | {m['fve']:.3f} | {m['mcc']:.3f} | {m['f1']:.3f} | {m['uniqueness']:.3f} "
            f"| {m['dead_fraction']:.3f} | {m['shrinkage']:.3f} | {secs:.0f} |"
        )
        print(rows[-1], flush=True)
    print("\n| SAE | L0 | FVE | MCC | F1 | uniqueness | dead | shrinkage | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
