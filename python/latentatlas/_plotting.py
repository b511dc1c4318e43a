"""Plot conventions shared by every area's figures: one WebGL switch, one palette, one template.

minima/plots.py, sae/plots.py and personas/plots.py all draw with these, so the same number of
points gets the same renderer everywhere and a colour means the same across a report.
"""

from __future__ import annotations

import plotly.graph_objects as go

__all__ = ["PALETTE", "TEMPLATE", "WEBGL_MIN_POINTS", "scatter_cls"]

# SVG below this many points: crisper, and it draws in headless / GPU-less browsers; WebGL above,
# where SVG gets slow.
WEBGL_MIN_POINTS = 5000

# Categorical colours: plotly's D3 / matplotlib tab10 first, then six more for larger groupings.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#e7ba52", "#843c39", "#637939", "#7b4173", "#3182bd",
)  # fmt: skip

TEMPLATE = "plotly_white"


def scatter_cls(n: int) -> type[go.Scatter | go.Scattergl]:
    """``go.Scattergl`` for ``n >= WEBGL_MIN_POINTS`` points, else ``go.Scatter``."""
    return go.Scattergl if n >= WEBGL_MIN_POINTS else go.Scatter
