"""The main job (``latentatlas demo``): one chapter per area on the embedded default data, then the linked atlas.

The spectral chapter (energies of the seed corpus and of digits) comes first, then each area's
``demo_chapter(out, verbose=...) -> list[Section]`` in :data:`CHAPTERS` (local minima, sparse
autoencoders, personas). A chapter may write its own files into ``out`` and link them from its
text. Everything lands in one self-contained ``atlas_demo.html``: the linked atlas
(:func:`latentatlas.atlas.build_atlas`) of the Rotten Tomatoes review embeddings with the SAE the
SAE chapter trained on them and the persona store the persona chapter extracted — summary first,
a navigation bar on top — followed by one page per chapter.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .atlas import build_atlas, open_store
from .datasets import digits, rotten_tomatoes_embeddings, three_gaussians
from .minima import report as minima_report
from .minima.plots import energy_scatter
from .personas import report as personas_report
from .report import Page, Section, write_pages
from .sae import report as sae_report
from .spectral import SpectralEnergy

__all__ = ["CHAPTERS", "demo", "energy_summary", "linked_atlas", "register", "spectral_chapter"]

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


def _chapter_page(chapter: Chapter, sections: list[Section]) -> Page:
    """A chapter as a page of the report: anchored ``chapter-<area>``, titled by its area."""
    area = chapter.__module__.split(".")[-2] if chapter.__module__.count(".") >= 2 else chapter.__name__
    title = _CHAPTER_TITLES.get(area, sections[0][0] if sections else area)
    return Page(f"chapter-{area}".replace("_", "-"), f"{title} (chapter)", sections)


_CHAPTER_TITLES = {"minima": "Local minima", "sae": "Sparse autoencoder", "personas": "Personas"}
TITLE = "latentatlas — an atlas of latent spaces"


def linked_atlas(out: Path, pages: list[Page], *, verbose: bool = True) -> Path:
    """The linked atlas of the review embeddings (the SAE chapter's data) with ``pages`` appended.

    Uses the SAE the SAE chapter saved in ``out/sae_rotten_tomatoes`` and the persona store the persona
    chapter built in ``out/persona_store``, each when present (the atlas says when one is missing).
    """
    task, _, D = rotten_tomatoes_embeddings(progress=verbose)
    sae = out / "sae_rotten_tomatoes"
    store = None
    if (out / "persona_store").is_dir():
        try:
            store = open_store(out / "persona_store")[0]
        except ValueError as exc:  # the chapter fell back to synthetic vectors: no store on disk
            if verbose:
                print(f"atlas: no persona store ({exc})")
    res = build_atlas(
        D,
        sae=sae if sae.is_dir() else None,
        store=store,
        labels=np.asarray(task.doc_labels),
        texts=task.docs,
        out=out / "atlas_demo.html",
        name="Rotten Tomatoes critic reviews (all-MiniLM-L6-v2)",
        title=TITLE,
        extra_pages=pages,
        rng=42,
        progress=verbose,
    )
    if verbose:
        print(res.table())
    return res.path


def demo(
    out: str | os.PathLike[str] = "out",
    *,
    k: int = 8,
    verbose: bool = True,
    chapters: Iterable[Chapter] | None = None,
    linked: bool | None = None,
) -> Path:
    """The main job on the embedded default data; returns the path of ``atlas_demo.html``.

    Runs the spectral chapter, then ``chapters`` (default :data:`CHAPTERS`: local minima, sparse
    autoencoders, personas; ``[]`` for the spectral chapter only), each called as
    ``chapter(out, verbose=verbose)``, and writes one report with a navigation bar, one page per
    chapter, that links any extra files they wrote. ``linked`` (default: when ``chapters`` is the
    default) puts the linked atlas (:func:`linked_atlas`) first.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pages = [Page("chapter-spectral", "Spectral energy (chapter)", spectral_chapter(out, k=k, verbose=verbose))]
    for chapter in CHAPTERS if chapters is None else chapters:
        pages.append(_chapter_page(chapter, chapter(out, verbose=verbose)))
    if linked if linked is not None else chapters is None:
        path = linked_atlas(out, pages, verbose=verbose)
    else:
        path = write_pages(out / "atlas_demo.html", TITLE, pages)
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
