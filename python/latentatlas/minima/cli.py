"""``latentatlas atlas INPUT --out report.html``: the local-minima report from an embedding file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .._io import load_matrix
from .._validate import seed_arg

__all__ = ["load_labels", "load_matrix", "register"]


def load_labels(path: str | Path) -> np.ndarray:
    """Labels from a ``.npy`` (1-D) or a text file (one label per line; blank lines skipped)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"labels file not found: {p}")
    if p.suffix.lower() == ".npy":
        try:
            lab = np.load(p, allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"cannot read labels {p}: {exc.__class__.__name__}: {exc}") from exc
    else:
        try:
            lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError as exc:
            raise ValueError(f"cannot read labels {p}: not UTF-8 text (use .npy for binary labels)") from exc
        lab = np.array([ln for ln in lines if ln])
    if lab.ndim != 1:
        raise ValueError(f"labels in {p} must be 1-D (one per item), got shape {lab.shape}")
    return lab


def _run(args: argparse.Namespace) -> int:
    from .report import atlas

    X = load_matrix(args.input, args.key)
    labels = load_labels(args.labels) if args.labels else None
    if labels is not None and labels.shape[0] != X.shape[0]:
        raise ValueError(f"--labels has {labels.shape[0]} entries but the input has {X.shape[0]} rows")
    path, res = atlas(
        X,
        labels,
        out=args.out,
        name=Path(args.input).name,
        alpha=args.alpha,
        k=args.k,
        quantile=args.quantile,
        rng=args.seed,
        notebook_compat=args.notebook_compat,
        progress=not args.quiet,
        knn=args.knn,
        n_neighbors=args.n_neighbors,
        n_clusters=args.clusters,
        max_points=args.max_points,
    )
    if not args.quiet:
        print(res.table())
        print(f"wrote {path}")
    return 0


def register(sub: Any) -> None:
    """Add ``atlas`` to the ``latentatlas`` sub-commands."""
    p = sub.add_parser(
        "atlas",
        help="local-minima atlas of an embedding matrix (HTML report)",
        description="Compare KDE, diffusion-map, basin-hopping and ToMATo minima, vanilla and blended with the "
        "feature-graph spectral energy, and write one self-contained HTML report.",
    )
    p.add_argument("input", help="embedding matrix: .npy, .npz or .safetensors (n_samples × n_features)")
    p.add_argument("--out", default="atlas.html", help="HTML report path (default: %(default)s)")
    p.add_argument("--labels", help="ground-truth labels: .npy or a text file with one label per line")
    p.add_argument("--key", help="array name inside a .npz/.safetensors file holding several")
    p.add_argument(
        "--alpha", type=float, default=0.5, help="blend weight of the vanilla score, in [0, 1] (default: %(default)s)"
    )
    p.add_argument(
        "--k", type=int, default=8, help="neighbours per feature in the feature graph (default: %(default)s)"
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
        "--n-neighbors", type=int, default=30, help="neighbours per item in the kNN graph (default: %(default)s)"
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
    p.add_argument("--seed", type=seed_arg, default=42, help="seed of the basin-hopping starts (default: %(default)s)")
    p.add_argument(
        "--notebook-compat",
        action="store_true",
        help="reproduce the seed notebook exactly (anti-mode KDE mask, its eigh on the non-symmetric P)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or table")
    p.set_defaults(func=_run)
