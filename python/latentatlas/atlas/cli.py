"""``latentatlas atlas INPUT [--sae PATH] [--store PATH]``: the linked atlas from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._io import load_labels, load_matrix
from .._validate import seed_arg
from .build import build_atlas
from .load import _load_texts, check_out

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    check_out(args.out, args.input, args.labels, args.sae, args.store, args.texts)
    X = load_matrix(args.input, args.key)
    labels = load_labels(args.labels) if args.labels else None
    if labels is not None and labels.shape[0] != X.shape[0]:
        raise ValueError(f"--labels has {labels.shape[0]} entries but the input has {X.shape[0]} rows")
    texts = _load_texts(args.texts) if args.texts else None
    if texts is not None and len(texts) != X.shape[0]:
        raise ValueError(f"--texts has {len(texts)} lines but the input has {X.shape[0]} rows")
    res = build_atlas(
        X,
        sae=args.sae,
        store=args.store,
        labels=labels,
        texts=texts,
        out=args.out,
        name=Path(args.input).name,
        variant=args.variant,
        max_rows=args.max_rows,
        max_points=args.max_points,
        progress=not args.quiet,
        alpha=args.alpha,
        k=args.k,
        quantile=args.quantile,
        rng=args.seed,
        notebook_compat=args.notebook_compat,
        knn=args.knn,
        n_neighbors=args.n_neighbors,
        n_clusters=args.clusters,
    )
    if not args.quiet:
        print(res.table())
        print(f"wrote {res.path}")
    return 0


def register(sub: Any) -> None:
    """Add ``atlas`` to the ``latentatlas`` sub-commands."""
    p = sub.add_parser(
        "atlas",
        help="linked atlas of an embedding matrix: minima, SAE latents, persona store (one HTML report)",
        description="Compare KDE, diffusion-map, basin-hopping and ToMATo minima, vanilla and blended with the "
        "feature-graph spectral energy; with --sae, each minimum's top latents; with --store, the persona "
        "store's analysis. Writes one self-contained HTML report whose pages link rows, latents and clusters.",
    )
    p.add_argument("input", help="embedding matrix: .npy, .npz or .safetensors (n_samples × n_features)")
    p.add_argument("--out", default="atlas.html", help="HTML report path, .html (default: %(default)s)")
    p.add_argument("--labels", help="ground-truth labels: .npy or a text file with one label per line")
    p.add_argument("--texts", help="the rows' texts: a text file with one per line (cards and latent keywords)")
    p.add_argument("--key", help="array name inside a .npz/.safetensors file holding several")
    p.add_argument("--sae", metavar="PATH", help="a sparse autoencoder over X's space (any format sae.load reads)")
    p.add_argument("--store", metavar="PATH", help="a persona store directory (persona-vectors layout)")
    p.add_argument("--variant", help="the store's variant to show (default: the only one)")
    p.add_argument(
        "--alpha", type=float, default=0.5, help="blend weight of the vanilla score, in [0, 1] (default: %(default)s)"
    )
    p.add_argument(
        "--k", type=int, default=None, help="feature-graph neighbours per feature (default: min(8, n_features - 1))"
    )
    p.add_argument(
        "--quantile", type=float, default=0.10, help="minima = bottom quantile of each score (default: %(default)s)"
    )
    p.add_argument(
        "--knn",
        choices=("auto", "exact", "approx"),
        default="auto",
        help="kNN graph of ToMATo / sparse diffusion: exact (O(N²)), approximate (faiss HNSW, "
        "latentatlas[minima]) or auto (exact up to 20,000 items) (default: %(default)s)",
    )
    p.add_argument(
        "--n-neighbors", type=int, default=None, help="kNN-graph neighbours per item (default: min(30, n_samples - 1))"
    )
    p.add_argument(
        "--clusters",
        type=int,
        default=None,
        help="ToMATo clusters to keep (default: the persistence diagram's widest gap)",
    )
    p.add_argument(
        "--max-points",
        type=int,
        default=20000,
        help="scatter charts draw at most this many items, evenly strided (default: %(default)s)",
    )
    p.add_argument("--max-rows", type=int, default=100, help="rows with a card on the rows page (default: %(default)s)")
    p.add_argument("--seed", type=seed_arg, default=42, help="seed of the basin-hopping starts (default: %(default)s)")
    p.add_argument(
        "--notebook-compat",
        action="store_true",
        help="reproduce the seed notebook exactly (anti-mode KDE mask, its eigh on the non-symmetric P)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or table")
    p.set_defaults(func=_run)
