"""The main job (``latentatlas demo``): one chapter per area on the embedded default data.

The spectral chapter (energies of the seed corpus and of digits) comes first, then each area's
``demo_chapter(out, verbose=...) -> list[Section]`` in :data:`CHAPTERS` (local minima, sparse
autoencoders, personas). A chapter may write its own files into ``out`` and link them from its
text; everything lands in one self-contained ``atlas_demo.html``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import digits, three_gaussians
from .minima import report as minima_report
from .minima.plots import energy_scatter
from .personas import report as personas_report
from .report import Section, write_report
from .sae import report as sae_report
from .spectral import SpectralEnergy

__all__ = ["CHAPTERS", "demo", "energy_summary", "register", "spectral_chapter"]

Chapter = Callable[..., list[Section]]

# The chapters after the spectral one, in report order.
CHAPTERS: tuple[Chapter, ...] = (
    minima_report.demo_chapter,
    sae_report.demo_chapter,
    personas_report.demo_chapter,
)


def energy_summary(energy: np.ndarray, labels: Any = None) -> dict[str, Any]:
    """Quantiles of the energies and, with labels, the mean energy per class."""
    q = np.quantile(energy, [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
    out: dict[str, Any] = {
        "n": int(energy.size),
        "quantiles": dict(zip(["min", "q10", "q25", "median", "q75", "q90", "max"], q.tolist())),
    }
    if labels is not None:
        labels = np.asarray(labels)
        out["class_mean"] = {str(c): float(energy[labels == c].mean()) for c in np.unique(labels)}
    return out


def _summary_text(name: str, s: dict[str, Any]) -> str:
    q = s["quantiles"]
    lines = [f"{name}: n = {s['n']}", "  energy quantiles: " + "  ".join(f"{k}={v:.4f}" for k, v in q.items())]
    if "class_mean" in s:
        lines.append("  mean energy per class: " + "  ".join(f"{k}:{v:.4f}" for k, v in s["class_mean"].items()))
    return "\n".join(lines)


def spectral_chapter(out: Path, *, k: int = 8, verbose: bool = True) -> list[Section]:
    """Energies of the seed corpus and of digits: quantiles, per-class means, PCA-2D charts."""
    from sklearn.decomposition import PCA

    sections: list[Section] = []
    for name, (X, labels) in {
        "Three Gaussian clusters (seed corpus, 1200×32)": three_gaussians(np.random.default_rng(42))[:2],
        "scikit-learn digits (1797×64)": digits(),
    }.items():
        lam = SpectralEnergy(k=k).fit(X).energy()
        text = _summary_text(name, energy_summary(lam, labels))
        if verbose:
            print(text)
        view = PCA(n_components=2, random_state=42).fit_transform(X)
        fig = energy_scatter(view, lam, labels, title=f"{name}: Rayleigh energy over PCA-2D (k={k})")
        sections.append((f"Spectral energy — {name}", f"<pre>{html.escape(text)}</pre>", [fig]))
    return sections


def demo(
    out: str | os.PathLike[str] = "out",
    *,
    k: int = 8,
    verbose: bool = True,
    chapters: Iterable[Chapter] | None = None,
) -> Path:
    """The main job on the embedded default data; returns the path of ``atlas_demo.html``.

    Runs the spectral chapter, then ``chapters`` (default :data:`CHAPTERS`: local minima, sparse
    autoencoders, personas; ``[]`` for the spectral chapter only), each called as
    ``chapter(out, verbose=verbose)``, and writes one report that links any extra files they wrote.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections = spectral_chapter(out, k=k, verbose=verbose)
    for chapter in CHAPTERS if chapters is None else chapters:
        sections.extend(chapter(out, verbose=verbose))
    path = write_report(out / "atlas_demo.html", "latentatlas — an atlas of latent spaces", sections)
    if verbose:
        print(f"wrote {path}")
    return path


def register(sub: Any) -> None:
    """``latentatlas demo``: the main job."""
    d = sub.add_parser("demo", help="run the main job on the embedded default data and write HTML reports")
    d.add_argument("--out", default="out", help="output directory (default: %(default)s)")
    d.add_argument(
        "--k", type=int, default=8, help="neighbours per feature in the feature graph (default: %(default)s)"
    )
    d.add_argument("--quiet", action="store_true", help="print nothing but errors")
    d.set_defaults(func=lambda a: demo(a.out, k=a.k, verbose=not a.quiet) and 0)
