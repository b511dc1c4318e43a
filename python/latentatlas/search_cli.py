"""``latentatlas search build X.npy --out index/`` and ``latentatlas search query index/ Q.npy``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write_bytes, load_matrix

__all__ = ["register"]


def _matrix(path: str, key: str | None) -> np.ndarray:
    """A ``.npy`` is memory-mapped (a corpus larger than memory streams); other formats are read."""
    p = Path(path)
    if p.suffix.lower() != ".npy":
        return load_matrix(p, key)
    if not p.is_file():
        raise FileNotFoundError(f"input file not found: {p}")
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"cannot read {p}: {exc.__class__.__name__}: {exc}") from exc
    if arr.ndim != 2 or arr.dtype.kind not in "fiu":
        raise ValueError(f"{p} must be a 2-D numeric array, got shape {arr.shape} dtype {arr.dtype}")
    return arr


def _build(args: argparse.Namespace) -> int:
    from .search import SpectralIndex

    X = _matrix(args.input, args.key)
    tau_mode: Any = "median" if args.tau_mode == "median" else float(args.tau_mode)
    index = SpectralIndex(k=args.k, weights=args.weights, lam=args.lam, tau_mode=tau_mode).fit(X)
    out = index.save(args.out)
    if not args.quiet:
        print(f"indexed {index.n_items_} items × {index.n_features_in_} features into {out}")
    return 0


def _query(args: argparse.Namespace) -> int:
    from .search import SpectralIndex

    index = SpectralIndex.load(args.index)
    Q = _matrix(args.queries, args.key)
    band = tuple(args.band) if args.band else None
    scores, ids = index.search(Q, k=args.k, tau=args.tau, band=band)
    if args.out:
        out = Path(args.out)
        if out.suffix.lower() == ".npz":
            import io

            buf = io.BytesIO()
            np.savez(buf, scores=scores, ids=ids)
            atomic_write_bytes(out, buf.getvalue())
        else:
            rows = [{"ids": i.tolist(), "scores": s.tolist()} for s, i in zip(scores, ids)]
            atomic_write_bytes(out, json.dumps(rows).encode("utf-8"))
        if not args.quiet:
            print(f"wrote {len(ids)} × {ids.shape[1]} results to {out}")
    else:
        for r, (s, i) in enumerate(zip(scores, ids)):
            print(f"{r}\t" + " ".join(f"{int(a)}:{b:.6f}" for a, b in zip(i, s)))
    return 0


def register(sub: Any) -> None:
    """Add ``search build`` and ``search query`` to the ``latentatlas`` sub-commands."""
    p = sub.add_parser(
        "search",
        help="exact λ-aware search (arrowspace's score): build an index, query it",
        description="Build a SpectralIndex of an embedding matrix and query it with arrowspace's score "
        "τ·cos + (1−τ)·(1 − |Δλ|), exactly and in batches.",
    )
    ss = p.add_subparsers(dest="search_command", metavar="{build,query}", required=True)
    b = ss.add_parser("build", help="index the rows of an embedding matrix", description="Index X into a folder.")
    b.add_argument("input", help="items: .npy (memory-mapped), .npz or .safetensors (n_items × n_features)")
    b.add_argument("--out", required=True, help="index folder (index.safetensors + index.json)")
    b.add_argument("--key", help="array name inside a .npz/.safetensors file holding several")
    b.add_argument(
        "--k", type=int, default=8, help="neighbours per feature in the feature graph (default: %(default)s)"
    )
    b.add_argument("--weights", default="cosine", choices=("cosine", "positive", "binary"), help="feature-graph edges")
    b.add_argument("--lam", default="taumode", choices=("taumode", "energy"), help="the λ of an item")
    b.add_argument("--tau-mode", default="median", help="taumode τ: 'median' or a positive number")
    b.add_argument("--quiet", action="store_true", help="print nothing")
    b.set_defaults(func=_build)
    q = ss.add_parser("query", help="search an index", description="Top-k items per query row.")
    q.add_argument("index", help="index folder written by `latentatlas search build`")
    q.add_argument("queries", help="queries: .npy, .npz or .safetensors (n_queries × n_features)")
    q.add_argument("--key", help="array name inside a .npz/.safetensors file holding several")
    q.add_argument("--k", type=int, default=10, help="results per query (default: %(default)s)")
    q.add_argument("--tau", type=float, default=0.7, help="weight of the cosine in [0, 1] (default: %(default)s)")
    q.add_argument("--band", type=float, nargs=2, metavar=("LO", "HI"), help="only items with LO <= λ <= HI")
    q.add_argument("--out", help="write results to .npz (scores, ids) or .json instead of printing them")
    q.add_argument("--quiet", action="store_true", help="print nothing when writing --out")
    q.set_defaults(func=_query)
