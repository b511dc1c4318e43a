"""latentatlas: map the latent spaces of machine-learning models.

Spectral energy of a latent space (feature-graph Laplacian, Rayleigh energies) and exact λ-aware
search (SpectralIndex), with a Rust core.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .search import SpectralIndex
from .spectral import (
    SpectralEnergy,
    feature_graph,
    feature_laplacian,
    graph_laplacian,
    minmax,
    rayleigh_energy,
    taumode_lambda,
)

try:
    __version__ = version("latentatlas")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "SpectralEnergy",
    "SpectralIndex",
    "__version__",
    "feature_graph",
    "feature_laplacian",
    "graph_laplacian",
    "minmax",
    "rayleigh_energy",
    "taumode_lambda",
]
