"""Local minima of a latent space: vanilla scores (KDE, diffusion maps, basin-hopping, ToMATo), their
spectral augmentation with the feature-graph Rayleigh energy, and the comparison of the seed
notebook's seven methods plus ToMATo vanilla and blended (``compare``). The kNN graph (exact or
approximate) is in :mod:`latentatlas.minima.graph`. ``minima_across_layers(stack)`` tracks the blended minima
of the same items through a stack of per-layer matrices (:mod:`latentatlas.minima.layers`). ``minima_report(X, labels, out=...)`` runs the comparison and writes its
self-contained HTML report (:mod:`latentatlas.minima.report`); the figures are in
:mod:`latentatlas.minima.plots`.
"""

from __future__ import annotations

from .basin import basin_hopping_minima, basin_hopping_score
from .blend import METHODS, MinimaComparison, alpha_sweep, blend, compare
from .diffusion import diffusion_coords, diffusion_map, diffusion_score
from .graph import KNNGraph, knn_graph
from .kde import BinnedKDE, kde_density, kde_score, silverman_covariance
from .layers import LAYER_METHODS, LayerMinima, minima_across_layers
from .report import minima_report
from .tomato import TomatoResult, knn_log_density, tomato, tomato_score

__all__ = [
    "METHODS",
    "BinnedKDE",
    "KNNGraph",
    "LAYER_METHODS",
    "LayerMinima",
    "MinimaComparison",
    "TomatoResult",
    "alpha_sweep",
    "basin_hopping_minima",
    "basin_hopping_score",
    "blend",
    "compare",
    "diffusion_coords",
    "diffusion_map",
    "diffusion_score",
    "kde_density",
    "kde_score",
    "knn_graph",
    "knn_log_density",
    "minima_across_layers",
    "minima_report",
    "silverman_covariance",
    "tomato",
    "tomato_score",
]
