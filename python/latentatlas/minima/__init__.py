"""Local minima of a latent space: vanilla scores (KDE, diffusion maps, basin-hopping), their
spectral augmentation with the feature-graph Rayleigh energy, and the seven-method comparison of
the seed notebook (``compare``). ``atlas(X, labels, out=...)`` runs the comparison and writes its
self-contained HTML report (:mod:`latentatlas.minima.report`); the figures are in
:mod:`latentatlas.minima.plots`.
"""

from __future__ import annotations

from .basin import basin_hopping_minima, basin_hopping_score
from .blend import METHODS, MinimaComparison, alpha_sweep, blend, compare
from .diffusion import diffusion_coords, diffusion_score
from .kde import BinnedKDE, kde_density, kde_score, silverman_covariance
from .report import atlas

__all__ = [
    "METHODS",
    "BinnedKDE",
    "MinimaComparison",
    "alpha_sweep",
    "atlas",
    "basin_hopping_minima",
    "basin_hopping_score",
    "blend",
    "compare",
    "diffusion_coords",
    "diffusion_score",
    "kde_density",
    "kde_score",
    "silverman_covariance",
]
