"""The local-minima report: one self-contained HTML page of the local-minima comparison.

``minima_report(X, labels)`` runs :func:`latentatlas.minima.compare` and writes the data summary, the
energies, the comparison table, the alpha sweep and the charts. ``demo_chapter`` is the main job's
local-minima chapter: minima reports for the seed corpus (notebook-compatible and default modes)
and for scikit-learn's digits.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_int
from ..datasets import digits, three_gaussians
from ..report import Section, write_report
from .blend import METHODS, MinimaComparison, compare
from .plots import (
    alpha_sweep_chart,
    basin_overlay,
    energy_scatter,
    energy_vs_score,
    jaccard_heatmap,
    kde_density_chart,
    method_bars,
    persistence_diagram,
    score_scatter,
)

__all__ = ["demo_chapter", "minima_report", "minima_sections", "write_minima_report"]


def _subsample(n: int, max_points: int) -> np.ndarray:
    """Evenly strided indices (≤ max_points) so big inputs still give a light page."""
    if n <= max_points:
        return np.arange(n)
    return np.linspace(0, n - 1, max_points).round().astype(np.int64)


def _table_html(res: MinimaComparison) -> str:
    has_p = res.labels is not None
    head = (
        "<tr><th>method</th>"
        + ("<th>purity</th>" if has_p else "")
        + "<th>Jaccard w/ Spectral</th><th>mean λ</th></tr>"
    )
    body = []
    for r in res.rows:
        p = f"<td>{r['purity']:.3f}</td>" if has_p else ""
        body.append(
            f"<tr><td style='text-align:left'>{html.escape(r['method'])}</td>{p}"
            f"<td>{r['jaccard']:.3f}</td><td>{r['mean_energy']:.4f}</td></tr>"
        )
    return "<table>" + head + "".join(body) + "</table>"


def _summary_lines(res: MinimaComparison, name: str, shown: int, max_points: int) -> list[str]:
    """The data summary: sizes, mode and parameters, the paths each step took, the energy's quantiles."""
    n = res.energy.shape[0]
    info = res.info
    mode = "notebook-compatible" if res.notebook_compat else "default (consistent)"
    summary = [
        f"{name}: {info['n']} items × {info['n_features']} features; "
        f"labels: {'none' if res.labels is None else f'{len(np.unique(res.labels))} classes'}",
        f"mode: {mode}; alpha = {res.alpha}; k = {res.k}; quantile = {res.quantile}",
        f"KDE path: {info.get('kde_path')}"
        + (f" (max error vs exact {info['kde_max_rel_error']:.1e} of peak)" if "kde_max_rel_error" in info else "")
        + f"; diffusion path: {info.get('diffusion_path', info.get('diffusion_method'))}"
        + f"; basin-hopping minima found: {len(res.minima)}",
        f"kNN graph: {info.get('knn_method')}, k = {info.get('knn_k')}"
        + (
            f", sampled recall@k {info['knn_recall']:.3f} on {info['knn_recall_rows']} rows"
            if info.get("knn_method") == "approx" and info.get("knn_recall") is not None
            else ""
        )
        + f"; ToMATo: {info.get('tomato_clusters')} clusters from {info.get('tomato_leaves')} local maxima",
    ]
    if shown < n:
        summary.append(
            f"scatter charts show an evenly strided subset of {shown} items (max_points = {max_points}); "
            f"all numbers use all {n}"
        )
    q = np.quantile(res.energy, [0, 0.1, 0.5, 0.9, 1.0])
    summary.append("R_norm quantiles (min, q10, median, q90, max): " + ", ".join(f"{v:.4f}" for v in q))
    return summary


def minima_sections(res: MinimaComparison, *, name: str = "data", max_points: int = 20000) -> list[Section]:
    """The report's sections for one comparison result (see :func:`minima_report`)."""
    n = res.energy.shape[0]
    idx = _subsample(n, max_points)
    view = res.view[idx]
    lab = None if res.labels is None else res.labels[idx]
    summary = _summary_lines(res, name, len(idx), max_points)
    corr = ", ".join(f"r(R_norm, {k}) = {v:.2f}" for k, v in res.correlations.items())
    sections: list[Section] = [
        ("Data summary", "<pre>" + html.escape("\n".join(summary)) + "</pre>", []),
        (
            "Spectral energy",
            "<p>Feature-graph Rayleigh energy, min-max normalised (R_norm); low = spectrally smooth.</p>",
            [energy_scatter(view, res.energy[idx], lab, title="R_norm over the PCA-2D view")],
        ),
        (
            "Comparison",
            _table_html(res)
            + f"<p>Minima = bottom {res.quantile:g} quantile of each score; blends use alpha = {res.alpha}. "
            f"Pearson correlations: {html.escape(corr)}.</p>",
            [method_bars(res.rows), jaccard_heatmap(res.jaccard_matrix, METHODS)],
        ),
        (
            "Vanilla and blended scores",
            "<p>KDE density; each blended score with its minima ringed in red.</p>",
            [kde_density_chart(view, res.density[idx])]
            + [
                score_scatter(view, res.scores[m][idx], res.masks[m][idx], title=f"{m} (alpha = {res.alpha})")
                for m in ("KDE + Spectral", "DiffMaps + Spectral", "BasinHop + Spectral", "ToMATo + Spectral")
            ]
            + [basin_overlay(view, res.masks["BasinHop"][idx], res.masks["BasinHop + Spectral"][idx], res.minima)],
        ),
    ]
    if res.tomato is not None:
        t = res.tomato
        sections.append(
            (
                "ToMATo persistence",
                f"<p>Density modes on the kNN graph merged by persistence: {t.n_clusters} clusters kept "
                f"from {t.peaks.size} local maxima; minima = points near the peaks of the kept modes.</p>",
                [persistence_diagram(t.diagram, t.component_peaks, t.n_clusters)],
            )
        )
    sections += [
        (
            "Alpha sweep",
            "<p>21 alphas from 0 (spectral only) to 1 (vanilla only).</p>",
            ([alpha_sweep_chart(res.sweep, "purity")] if res.labels is not None else [])
            + [alpha_sweep_chart(res.sweep, "mean_energy")],
        ),
        (
            "Energy vs vanilla scores",
            "",
            [
                energy_vs_score(res.energy, res.scores[m], name=m, r=res.correlations[m], max_points=max_points)
                for m in ("KDE", "DiffMaps", "BasinHop", "ToMATo")
            ],
        ),
    ]
    return sections


def write_minima_report(
    res: MinimaComparison,
    out: str | os.PathLike[str],
    *,
    title: str = "latentatlas — local minima report",
    name: str = "data",
    max_points: int = 20000,
) -> Path:
    """Write the report of a :class:`MinimaComparison` to ``out`` (atomically); return its path."""
    return write_report(out, title, minima_sections(res, name=name, max_points=max_points))


def minima_report(
    X: Any,
    labels: Any = None,
    *,
    out: str | os.PathLike[str] = "minima.html",
    title: str = "latentatlas — local minima report",
    name: str = "data",
    max_points: int = 20000,
    **compare_kwargs: Any,
) -> tuple[Path, MinimaComparison]:
    """Compare local-minima methods on X and write one self-contained HTML report.

    Parameters
    ----------
    X : array-like (n_samples, n_features)
    labels : array-like (n_samples,), optional
    out : path of the HTML file
    title, name : page title and the data's name in the summary
    max_points : charts draw at most this many items (an evenly strided subset); numbers use all
    **compare_kwargs : passed to :func:`latentatlas.minima.compare` (alpha, k, quantile, rng,
        notebook_compat, progress, ...)

    Returns
    -------
    (path, result) : the written file and the :class:`MinimaComparison`
    """
    max_points = check_int(max_points, "max_points")
    res = compare(X, labels, **compare_kwargs)
    return write_minima_report(res, out, title=title, name=name, max_points=max_points), res


def demo_chapter(out: Path, *, verbose: bool = True) -> list[Section]:
    """The main job's local-minima chapter: minima reports for the seed corpus and digits in ``out``."""
    out = Path(out)
    parts: list[str] = []
    figs: list[Any] = []
    runs = []
    rng = np.random.default_rng(42)
    X, y, _ = three_gaussians(rng)
    state = rng.bit_generator.state  # both modes continue the same stream, as the notebook does
    for compat in (True, False):
        rng.bit_generator.state = state
        runs.append(
            (
                f"seed corpus (1200×32), {'notebook-compatible' if compat else 'default'} mode",
                f"minima_seed{'_notebook' if compat else ''}.html",
                compare(X, y, rng=rng, notebook_compat=compat, progress=verbose),
            )
        )
    Xd, yd = digits()
    runs.append(
        ("scikit-learn digits (1797×64), default mode", "minima_digits.html", compare(Xd, yd, rng=42, progress=verbose))
    )
    for label, fname, res in runs:
        path = write_minima_report(res, out / fname, name=label, title=f"Local minima report — {label}")
        text = res.table()
        if verbose:
            print(f"{label}\n{text}\nwrote {path}")
        parts.append(
            f"<h3>{html.escape(label)}</h3>{_table_html(res)}"
            f"<p>Pearson r(R_norm, ·): "
            + html.escape(", ".join(f"{k} {v:.2f}" for k, v in res.correlations.items()))
            + f" — full report: <a href='{html.escape(fname)}'>{html.escape(fname)}</a></p>"
        )
    figs.append(method_bars(runs[0][2].rows, title="Seed corpus, notebook-compatible: purity and mean λ"))
    figs.append(method_bars(runs[2][2].rows, title="Digits, default mode: purity and mean λ"))
    intro = (
        "<p>Nine minima methods (spectral energy; KDE, diffusion maps, basin-hopping and ToMATo, each vanilla "
        "and blended with the spectral energy at alpha = 0.5). The notebook-compatible run reproduces the "
        "published table; the default mode takes the KDE density modes as minima and P's true diffusion "
        "eigenvectors (see the local-minima guide, docs/guides/minima.md).</p>"
    )
    return [("Local minima (KDE, diffusion maps, basin-hopping + spectral energy)", intro + "".join(parts), figs)]
