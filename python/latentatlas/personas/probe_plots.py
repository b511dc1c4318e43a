"""Probe-sweep figures with the persona-vectors project's API (re-exported by :mod:`.plots`).

A sweep is a list of row dicts, one per (attribute, layer, probe_kind), holding the metric (e.g.
``"balanced_accuracy"``, ``"r2"``, ``"mae"``) and optionally ``"baseline_<metric>"`` (the
majority-class or mean-prediction score).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from .._plotting import PALETTE, TEMPLATE

__all__ = ["plot_attribute_layer_selectivity_heatmap", "plot_metric_comparison", "plot_metric_over_layers"]

_UNBOUNDED = {"r2", "mae"}  # other metrics live in [0, 1] and get a fixed axis
_DASHES = ("solid", "dot", "dash", "dashdot")


def _lines(
    sweeps: Mapping[str, Sequence[Mapping[str, Any]]], attributes: list[str], metric: str, *, by_attribute: bool
) -> go.Figure:
    """One line per (attribute, sweep label, probe_kind): colour per attribute (or probe kind), dash per sweep."""
    kinds = sorted({str(r["probe_kind"]) for rows in sweeps.values() for r in rows if r.get("probe_kind") is not None})
    fig = go.Figure()
    baseline = None
    for ai, attr in enumerate(attributes):
        for dash, (label, rows) in zip(_DASHES, sweeps.items()):
            mine = [r for r in rows if r.get("attribute") == attr and r.get(metric) is not None]
            if not mine:
                continue
            if baseline is None and ai == 0:
                baseline = mine[0].get(f"baseline_{metric}")
            for kind in sorted({str(r.get("probe_kind")) for r in mine}):
                series = sorted((r for r in mine if str(r.get("probe_kind")) == kind), key=lambda r: int(r["layer"]))
                if by_attribute:
                    name = f"{attr} · {label}" + (f" · {kind}" if len(kinds) > 1 else "")
                    ci = ai * max(1, len(kinds)) + (kinds.index(kind) if kind in kinds and len(kinds) > 1 else 0)
                    line = dict(dash=dash, color=PALETTE[ci % len(PALETTE)])
                else:
                    name, line = kind, dict(dash=dash)
                fig.add_trace(
                    go.Scatter(
                        x=[int(r["layer"]) for r in series],
                        y=[float(r[metric]) for r in series],
                        mode="lines+markers",
                        name=name,
                        line=line,
                        hovertemplate=f"{name}<br>Layer %{{x}}<br>{metric}: %{{y:.3f}}<extra></extra>",
                    )
                )
    if baseline is not None:
        fig.add_hline(
            y=float(baseline),
            line=dict(color="#64748b", dash="dot", width=2),
            annotation_text=f"baseline {float(baseline):.3f}",
            annotation_position="bottom right",
        )
    what = attributes[0] if len(attributes) == 1 else "Attributes"
    fig.update_layout(
        template=TEMPLATE,
        title=f"{what}: {metric} over layers",
        legend=dict(x=0.98, y=0.02, xanchor="right", yanchor="bottom"),
        xaxis_title="Layer",
        yaxis=dict(title=metric, range=None if metric in _UNBOUNDED else [0.0, 1.02]),
    )
    return fig


def plot_metric_over_layers(
    rows: Sequence[Mapping[str, Any]], attribute_name: str, *, metric: str = "balanced_accuracy"
) -> go.Figure:
    """One metric of one attribute over layers, a line per probe kind, the baseline dotted."""
    return _lines({"": rows}, [attribute_name], metric, by_attribute=False)


def plot_metric_comparison(
    rows_by_label: Mapping[str, Sequence[Mapping[str, Any]]],
    attribute_name: str | Sequence[str],
    *,
    metric: str = "balanced_accuracy",
) -> go.Figure:
    """Several labelled sweeps (e.g. ``{"full": rows, "pca10": rows}``) overlaid: colour per attribute, dash per label."""
    attributes = [attribute_name] if isinstance(attribute_name, str) else list(attribute_name)
    return _lines(rows_by_label, attributes, metric, by_attribute=True)


def plot_attribute_layer_selectivity_heatmap(
    rows_by_attribute: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    metric: str = "balanced_accuracy",
    subtract_baseline: bool = True,
    title: str | None = None,
    colorscale: str = "RdBu",
    zmid: float | None = 0.0,
) -> go.Figure:
    """Attribute x layer heat map of the best probe's score per cell.

    The score is ``metric - baseline_<metric>`` when ``subtract_baseline`` (and a baseline is in
    the row), negated for ``mae`` so that higher is better everywhere; the best probe kind of each
    (attribute, layer) is kept. Cells without rows are NaN.
    """
    attributes = list(rows_by_attribute)
    if not attributes:
        raise ValueError("rows_by_attribute must contain at least one attribute")
    best: dict[str, dict[int, float]] = {}
    for attr in attributes:
        cells: dict[int, float] = {}
        for row in rows_by_attribute[attr]:
            if row.get(metric) is None:
                continue
            score = float(row[metric])
            base = row.get(f"baseline_{metric}")
            if subtract_baseline and base is not None:
                score -= float(base)
            if metric == "mae":
                score = -score
            layer = int(row["layer"])
            cells[layer] = max(score, cells.get(layer, -np.inf))
        best[attr] = cells
    layers = sorted({layer for cells in best.values() for layer in cells})
    if not layers:
        raise ValueError(f"No rows with metric {metric!r} found in any attribute")
    z = np.array([[best[a].get(layer, np.nan) for layer in layers] for a in attributes])
    label = (f"{metric} − baseline" if subtract_baseline else metric) + (
        " (flipped; higher is better)" if metric == "mae" else ""
    )
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=layers,
            y=attributes,
            colorscale=colorscale,
            zmid=zmid if subtract_baseline else None,
            colorbar=dict(title=label),
            hovertemplate=f"Attribute: %{{y}}<br>Layer: %{{x}}<br>{label}: %{{z:.3f}}<extra></extra>",
        )
    )
    auto = f"Attribute × layer selectivity ({label})" if subtract_baseline else f"Attribute × layer {metric}"
    fig.update_layout(template=TEMPLATE, title=title or auto, xaxis_title="Layer", yaxis_title="Attribute")
    return fig
