"""Plotly figures of the local-minima area (each function returns a ``plotly.graph_objects.Figure``).

Used by :mod:`latentatlas.minima.report`; :func:`energy_scatter` also by the main job's spectral
chapter. Renderer (SVG/WebGL), palette and template follow :mod:`latentatlas._plotting`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from .._plotting import PALETTE, TEMPLATE, scatter_cls
from .._validate import check_choice, check_int
from ..metrics import pearson
from .layers import LayerMinima

__all__ = [
    "alpha_sweep_chart",
    "basin_overlay",
    "energy_scatter",
    "energy_vs_score",
    "jaccard_heatmap",
    "layer_heatmap",
    "layer_sankey",
    "kde_density_chart",
    "method_bars",
    "persistence_diagram",
    "score_scatter",
]


def _view(X2d: Any, *arrays: tuple[str, Any]) -> tuple[np.ndarray, list[np.ndarray]]:
    X2d = np.asarray(X2d, dtype=np.float64)
    if X2d.ndim != 2 or X2d.shape[1] != 2:
        raise ValueError(f"X2d must have shape (n, 2), got {X2d.shape}")
    out = []
    for name, a in arrays:
        a = np.asarray(a)
        if a.shape != (X2d.shape[0],):
            raise ValueError(f"{name} must have shape ({X2d.shape[0]},), got {a.shape}")
        out.append(a)
    return X2d, out


def energy_scatter(
    X2d: Any,
    energy: Any,
    labels: Any = None,
    *,
    title: str = "Feature-graph Rayleigh energy",
    colorscale: str = "Viridis",
) -> go.Figure:
    """Items in a 2-D view (n, 2) coloured by their energy (n,); low energy is dark."""
    X2d = np.asarray(X2d, dtype=np.float64)
    energy = np.asarray(energy, dtype=np.float64)
    if X2d.ndim != 2 or X2d.shape[1] != 2:
        raise ValueError(f"X2d must have shape (n, 2), got {X2d.shape}")
    if energy.shape != (X2d.shape[0],):
        raise ValueError(f"energy must have shape ({X2d.shape[0]},), got {energy.shape}")
    text = None if labels is None else [f"label {v}" for v in np.asarray(labels)]
    fig = go.Figure(
        scatter_cls(len(energy))(
            x=X2d[:, 0],
            y=X2d[:, 1],
            mode="markers",
            marker=dict(color=energy, colorscale=colorscale, size=5, colorbar=dict(title="λ")),
            text=text,
            hovertemplate="%{text}<br>λ = %{marker.color:.4f}<extra></extra>" if text else None,
        )
    )
    fig.update_layout(title=title, xaxis_title="PC 1", yaxis_title="PC 2", template=TEMPLATE)
    return fig


def kde_density_chart(X2d: Any, density: Any, *, title: str = "Gaussian KDE density (Silverman)") -> go.Figure:
    """Items in the 2-D view (n, 2) coloured by their KDE density (n,): bright = dense (a mode)."""
    X2d, (d,) = _view(X2d, ("density", density))
    fig = go.Figure(
        scatter_cls(len(d))(
            x=X2d[:, 0],
            y=X2d[:, 1],
            mode="markers",
            marker=dict(color=d.astype(np.float64), colorscale="Magma", size=5, colorbar=dict(title="density")),
            hovertemplate="density = %{marker.color:.3g}<extra></extra>",
        )
    )
    fig.update_layout(title=title, xaxis_title="PC 1", yaxis_title="PC 2", template=TEMPLATE)
    return fig


def score_scatter(
    X2d: Any,
    score: Any,
    mask: Any = None,
    *,
    title: str = "Minimum score",
    colorscale: str = "Viridis",
) -> go.Figure:
    """A minimum score (n,) over the 2-D view (low = dark); the selected minima (n,) bool ringed in red."""
    X2d, (s,) = _view(X2d, ("score", score))
    cls = scatter_cls(len(s))
    fig = go.Figure(
        cls(
            x=X2d[:, 0],
            y=X2d[:, 1],
            mode="markers",
            name="items",
            marker=dict(color=s.astype(np.float64), colorscale=colorscale, size=5, colorbar=dict(title="score")),
            hovertemplate="score = %{marker.color:.4f}<extra></extra>",
        )
    )
    if mask is not None:
        _, (m,) = _view(X2d, ("mask", mask))
        m = m.astype(bool)
        fig.add_trace(
            cls(
                x=X2d[m, 0],
                y=X2d[m, 1],
                mode="markers",
                name="minima",
                marker=dict(size=8, color="rgba(0,0,0,0)", line=dict(color="red", width=1.2)),
                hoverinfo="skip",
            )
        )
    fig.update_layout(title=title, xaxis_title="PC 1", yaxis_title="PC 2", template=TEMPLATE)
    return fig


def basin_overlay(
    X2d: Any,
    vanilla_mask: Any,
    augmented_mask: Any,
    minima: Any = None,
    *,
    title: str = "Basin-hopping: vanilla vs spectrally augmented minima",
) -> go.Figure:
    """The notebook's overlay: grey items, orange vanilla-only, purple augmented-only, green stable.

    ``minima`` (m, 2), the basin-hopping minima, are drawn as black crosses.
    """
    X2d, (v, a) = _view(X2d, ("vanilla_mask", vanilla_mask), ("augmented_mask", augmented_mask))
    v, a = v.astype(bool), a.astype(bool)
    cls = scatter_cls(len(v))
    fig = go.Figure()
    for sel, name, color, size in (
        (~(v | a), "other items", "lightgrey", 4),
        (v & ~a, "vanilla only (removed)", "darkorange", 7),
        (a & ~v, "augmented only (added)", "purple", 7),
        (v & a, "stable (both)", "green", 7),
    ):
        fig.add_trace(cls(x=X2d[sel, 0], y=X2d[sel, 1], mode="markers", name=name, marker=dict(color=color, size=size)))
    if minima is not None:
        mn = np.asarray(minima, dtype=np.float64).reshape(-1, 2)
        fig.add_trace(
            go.Scatter(
                x=mn[:, 0],
                y=mn[:, 1],
                mode="markers",
                name="basin-hopping minima",
                marker=dict(symbol="x", size=13, color="black"),
            )
        )
    fig.update_layout(title=title, xaxis_title="PC 1", yaxis_title="PC 2", template=TEMPLATE)
    return fig


def method_bars(rows: Any, *, title: str = "Minima quality per method") -> go.Figure:
    """Grouped bars per method: purity (blue, if present) and mean energy (orange).

    ``rows``: a list of dicts with ``method``, ``mean_energy`` and optionally ``purity``.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows must not be empty")
    names = [r["method"] for r in rows]
    fig = go.Figure()
    if all("purity" in r for r in rows):
        fig.add_trace(go.Bar(x=names, y=[r["purity"] for r in rows], name="purity (↑)", marker_color=PALETTE[0]))
    fig.add_trace(go.Bar(x=names, y=[r["mean_energy"] for r in rows], name="mean λ (↓)", marker_color=PALETTE[1]))
    fig.update_layout(title=title, barmode="group", yaxis_title="value", template=TEMPLATE)
    return fig


def alpha_sweep_chart(sweep: Any, metric: str = "purity", *, title: str | None = None) -> go.Figure:
    """One curve per method of ``metric`` ("purity" or "mean_energy") against alpha.

    ``sweep``: the list of dicts of :func:`latentatlas.minima.alpha_sweep`.
    """
    if metric not in ("purity", "mean_energy"):
        raise ValueError(f"metric must be 'purity' or 'mean_energy', got {metric!r}")
    sweep = list(sweep)
    if not sweep or metric not in sweep[0]:
        raise ValueError(f"sweep has no {metric!r} values")
    fig = go.Figure()
    for name in dict.fromkeys(r["method"] for r in sweep):
        pts = [r for r in sweep if r["method"] == name]
        fig.add_trace(
            go.Scatter(x=[r["alpha"] for r in pts], y=[r[metric] for r in pts], mode="lines+markers", name=name)
        )
    label = "purity" if metric == "purity" else "mean λ"
    fig.update_layout(
        title=title or f"{label} of the blended minima vs alpha (alpha = 1: vanilla only)",
        xaxis_title="alpha",
        yaxis_title=label,
        template=TEMPLATE,
    )
    return fig


def jaccard_heatmap(matrix: Any, names: Any, *, title: str = "Jaccard overlap of the minima sets") -> go.Figure:
    """Heatmap of an (m, m) Jaccard matrix with the method names on both axes."""
    M = np.asarray(matrix, dtype=np.float64)
    names = list(names)
    if M.ndim != 2 or M.shape != (len(names), len(names)):
        raise ValueError(f"matrix must have shape ({len(names)}, {len(names)}), got {M.shape}")
    fig = go.Figure(
        go.Heatmap(
            z=M,
            x=names,
            y=names,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            text=np.round(M, 3),
            texttemplate="%{text}",
            colorbar=dict(title="Jaccard"),
        )
    )
    fig.update_layout(title=title, template=TEMPLATE, yaxis_autorange="reversed")
    return fig


def energy_vs_score(
    energy: Any, score: Any, *, name: str = "vanilla score", r: float | None = None, max_points: int = 20000
) -> go.Figure:
    """Scatter of a vanilla score against the normalised energy, Pearson r in the title.

    Above ``max_points`` items an evenly strided subset is drawn (r is always over all items).
    """
    e = np.asarray(energy, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    if e.ndim != 1 or e.shape != s.shape:
        raise ValueError(f"energy and score must be 1-D of the same length, got {e.shape} and {s.shape}")
    if r is None:
        r = pearson(e, s)
    sl = slice(None, None, max(1, -(-len(e) // max_points)))
    fig = go.Figure(
        scatter_cls(len(e[sl]))(x=s[sl], y=e[sl], mode="markers", marker=dict(size=4, opacity=0.6), name="items")
    )
    fig.update_layout(
        title=f"Energy vs {name}: Pearson r = {r:.2f}",
        xaxis_title=name,
        yaxis_title="R_norm (λ)",
        template=TEMPLATE,
    )
    return fig


def persistence_diagram(
    diagram: Any,
    component_peaks: Any = (),
    n_clusters: int | None = None,
    *,
    title: str = "ToMATo persistence diagram (density superlevel sets)",
) -> go.Figure:
    """ToMATo's diagram: one point (birth, death) per merge (density of the younger peak, density where
    it merged), the diagonal, and each connected component's peak as a point that never dies (drawn on
    a line below the lowest death). With ``n_clusters``, the merges ToMATo kept apart are highlighted.
    """
    D = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    comp = np.asarray(component_peaks, dtype=np.float64).ravel()
    fig = go.Figure()
    lo = float(min(D.min(initial=np.inf), comp.min(initial=np.inf)))
    hi = float(max(D.max(initial=-np.inf), comp.max(initial=-np.inf)))
    if not np.isfinite(lo):
        lo, hi = 0.0, 1.0
    pad = 0.05 * (hi - lo or 1.0)
    floor = lo - pad
    prom = D[:, 0] - D[:, 1]
    kept = np.zeros(len(D), dtype=bool)
    if n_clusters is not None and len(D):
        n_kept = max(0, int(n_clusters) - comp.size)
        kept[np.argsort(-prom, kind="stable")[:n_kept]] = True
    fig.add_trace(go.Scatter(x=[floor, hi + pad], y=[floor, hi + pad], mode="lines", name="diagonal",
                             line=dict(color="lightgrey", dash="dash"), hoverinfo="skip"))  # fmt: skip
    for sel, name, color in ((~kept, "merged (noise)", PALETTE[0]), (kept, "kept apart (clusters)", "red")):
        if sel.any():
            fig.add_trace(
                scatter_cls(int(sel.sum()))(
                    x=D[sel, 0],
                    y=D[sel, 1],
                    mode="markers",
                    name=name,
                    marker=dict(color=color, size=6),
                    hovertemplate="birth %{x:.3f}<br>death %{y:.3f}<extra></extra>",
                )
            )
    if comp.size:
        fig.add_trace(
            go.Scatter(
                x=comp,
                y=np.full(comp.size, floor),
                mode="markers",
                name="component peaks (never die)",
                marker=dict(symbol="triangle-down", size=11, color="black"),
            )
        )
    fig.update_layout(title=title, xaxis_title="birth (peak density)", yaxis_title="death (merge density)",
                      template=TEMPLATE)  # fmt: skip
    return fig


def _layer_result(res: Any) -> LayerMinima:
    if not isinstance(res, LayerMinima):
        raise TypeError(f"res must be the LayerMinima of minima_across_layers, got {type(res).__name__}")
    return res


def layer_sankey(res: LayerMinima, *, title: str | None = None) -> go.Figure:
    """Alluvial (Sankey) diagram of minimum status from layer to layer.

    Each layer l has two nodes, ``2l`` = "minimum" and ``2l + 1`` = "other", in layer order from left
    to right; the links between layers l and l+1 carry ``res.transitions[l]`` (empty flows left out),
    so the links leaving each layer sum to N.
    """
    res = _layer_result(res)
    L = res.n_layers
    labels, colors, xs, ys = [], [], [], []
    for i, name in enumerate(res.layers):
        for state, color, y in (("minimum", PALETTE[3], 0.15), ("other", "lightgrey", 0.6)):
            labels.append(f"{name} · {state}")
            colors.append(color)
            xs.append(0.001 + 0.998 * i / (L - 1))
            ys.append(y)
    src, dst, val, lcol = [], [], [], []
    link_colors = {(1, 1): "rgba(214,39,40,0.55)", (1, 0): "rgba(255,127,14,0.45)",
                   (0, 1): "rgba(148,103,189,0.45)", (0, 0): "rgba(180,180,180,0.35)"}  # fmt: skip
    for i in range(L - 1):
        for a in (1, 0):
            for b in (1, 0):
                c = int(res.transitions[i, a, b])
                if c:
                    src.append(2 * i + (1 - a))
                    dst.append(2 * (i + 1) + (1 - b))
                    val.append(c)
                    lcol.append(link_colors[(a, b)])
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node=dict(label=labels, color=colors, x=xs, y=ys, pad=12, thickness=14),
            link=dict(source=src, target=dst, value=val, color=lcol),
        )
    )
    stable = int((res.stability == 1.0).sum())
    fig.update_layout(
        title=title
        or f"Minima across layers ({res.method} + spectral, alpha = {res.alpha:g}, bottom {res.quantile:.0%}): "
        f"{stable} of {res.n_items} items are minima in every layer",
        template=TEMPLATE,
    )
    return fig


def layer_heatmap(
    res: LayerMinima,
    *,
    value: str = "score",
    max_items: int = 300,
    title: str | None = None,
) -> go.Figure:
    """Layer × item heat map of the blended score (``value="score"``) or the energy (``"energy"``).

    Items (columns) are ordered from most to least stable (:meth:`LayerMinima.order`); each layer's
    minima are marked with a dot. Above ``max_items`` items, ``max_items`` columns evenly spaced along
    that order are drawn and the title says so.
    """
    res = _layer_result(res)
    check_choice(value, "value", ("score", "energy"))
    max_items = check_int(max_items, "max_items", low=2)
    order = res.order()
    n = res.n_items
    if n > max_items:
        order = order[np.linspace(0, n - 1, max_items).round().astype(np.int64)]
    names = [res.items[i] if res.items is not None else str(i) for i in order]
    z = (res.score if value == "score" else res.energy)[:, order]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(len(order))),
            y=res.layers,
            customdata=np.array(
                [[f"{nm} (stability {res.stability[i]:.2f})" for nm, i in zip(names, order)]] * res.n_layers
            ),
            colorscale="Viridis",
            colorbar=dict(title="blended score" if value == "score" else "R_norm"),
            hovertemplate="layer %{y}<br>%{customdata}<br>" + value + " = %{z:.3f}<extra></extra>",
        )
    )
    li, ci = np.nonzero(res.is_minimum[:, order])
    fig.add_trace(
        go.Scatter(
            x=ci,
            y=[res.layers[j] for j in li],
            mode="markers",
            name="minimum",
            marker=dict(size=5, color="red", symbol="circle"),
            hoverinfo="skip",
        )
    )
    note = f" — {len(order)} of {n} items, evenly spaced in stability order" if len(order) < n else ""
    fig.update_layout(
        title=title or f"{'Blended score' if value == 'score' else 'Spectral energy'} per layer, items by stability{note}",
        xaxis=dict(title="items (most stable first)", tickvals=list(range(len(order))) if len(order) <= 60 else None,
                   ticktext=names if len(order) <= 60 else None),
        yaxis_title="layer",
        template=TEMPLATE,
        legend=dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom"),
    )  # fmt: skip
    return fig
