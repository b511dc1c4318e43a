"""Persona-vector analysis with the persona-vectors project's API.

``from latentatlas.personas import ...`` replaces ``persona_vectors.analysis``,
``persona_vectors.plots``, ``persona_vectors.attributes`` and the store: same function and
argument names. Modules: :mod:`.store` (on-disk and Parquet layouts), :mod:`.analysis` (loaders,
similarity, projections, clustering, spectral energy), :mod:`.plots` (layered Plotly figures),
:mod:`.attributes` (attribute colouring, synthetic personas), :mod:`.extract` (persona vectors
from a language model through :mod:`latentatlas.lm`), :mod:`.report` (HTML files, demo chapter).
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> submodule. Loaded on first use, so importing one submodule (e.g. the store)
# does not load the others (plotly, scikit-learn).
_EXPORTS = {
    "AnalysisDataset": "analysis",
    "DEFAULT_MASK_STRATEGY": "store",
    "LayeredAnalysis": "analysis",
    "LayeredProjectionData": "plots",
    "LayeredSamples": "analysis",
    "ParquetPersonaStore": "store",
    "PersonaAttributeTable": "attributes",
    "PersonaVectorStore": "store",
    "activation_config_name": "store",
    "as_layered_samples": "analysis",
    "attribute_color_kwargs": "attributes",
    "build_layered_figure": "plots",
    "build_pair_similarity_figure": "plots",
    "categorical_attribute_labels": "attributes",
    "cluster_agglomerative": "analysis",
    "cluster_kmeans": "analysis",
    "cosine_similarity_matrix": "analysis",
    "default_root": "store",
    "export_parquet": "store",
    "layer_variant_similarity": "analysis",
    "layered_analysis": "analysis",
    "layered_pca": "analysis",
    "layered_similarity": "analysis",
    "load_analysis_dataset": "analysis",
    "load_persona_vectors": "analysis",
    "load_variant_vectors": "analysis",
    "model_dir_name": "store",
    "pca_explained_variance": "analysis",
    "persona_spectral_energy": "analysis",
    "plot_layer_similarity": "plots",
    "plot_persona_dendrogram": "plots",
    "plot_scree": "plots",
    "plot_spectral_energy": "plots",
    "prepare_cluster_samples": "analysis",
    "prepare_kmeans_groups": "plots",
    "prepare_layer_mean_cluster_samples": "analysis",
    "prepare_layered_projection_data": "plots",
    "project_isomap": "analysis",
    "project_pca": "analysis",
    "project_umap": "analysis",
    "scree_layers": "analysis",
    "synthetic_persona_dataset": "attributes",
    "synthetic_persona_vectors": "attributes",
    "validate_layers": "analysis",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
