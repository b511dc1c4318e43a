"""Deprecated location: the local-minima figures now live in :mod:`latentatlas.minima.plots`.

This module only re-exports them so ``from latentatlas.charts import ...`` keeps working.
"""

from __future__ import annotations

from .minima.plots import (
    alpha_sweep_chart,
    basin_overlay,
    energy_scatter,
    energy_vs_score,
    jaccard_heatmap,
    kde_density_chart,
    method_bars,
    score_scatter,
)

__all__ = [
    "alpha_sweep_chart",
    "basin_overlay",
    "energy_scatter",
    "energy_vs_score",
    "jaccard_heatmap",
    "kde_density_chart",
    "method_bars",
    "score_scatter",
]
