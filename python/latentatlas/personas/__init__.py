"""Persona-vector analysis with the persona-vectors project's API.

A drop-in for the persona-vectors project: ``persona_vectors.X`` -> ``latentatlas.personas.X``
module for module (:mod:`.analysis`, :mod:`.plots`, :mod:`.artifacts`, :mod:`.attributes`,
:mod:`.hub`), same names, arguments and defaults; ``from latentatlas.personas import ...`` gives
all of them. Modules: :mod:`.store` (the on-disk directory layout and the read API),
:mod:`.hub_store` (the Hub dataset's Parquet layout, offline), :mod:`.analysis` (loaders,
similarity, projections, clustering, spectral energy), :mod:`.projection` (per-layer projection
coordinates, kNN edges, k-means groups), :mod:`.plots` (layered Plotly figures),
:mod:`.attributes` (attribute colouring, synthetic personas), :mod:`.extract` (persona vectors
from a language model through :mod:`latentatlas.lm`), :mod:`.steering` (steering directions exported as
llama.cpp control vectors), :mod:`.probes` (linear probes of persona attributes per layer, saved as artifacts), :mod:`.report` (HTML files, demo chapter).
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> submodule. Loaded on first use, so importing one submodule (e.g. the store)
# does not load the others (plotly, scikit-learn).
_EXPORTS = {
    "AnalysisDataset": "analysis",
    "AttributeLabels": "probes",
    "BASELINE_PERSONA_ID": "store",
    "CLASSIFICATION_TASKS": "probes",
    "ClusterMode": "projection",
    "DEFAULT_MASK_STRATEGY": "store",
    "HFPersonaVectorStore": "hub_store",
    "LayeredAnalysis": "analysis",
    "LayeredProjectionData": "projection",
    "LayeredSamples": "analysis",
    "ParquetPersonaStore": "hub_store",
    "PersonaAttributeTable": "attributes",
    "PersonaVectorSource": "hub_store",
    "PersonaVectorStore": "store",
    "ProbeArtifact": "probes",
    "ProbeKind": "probes",
    "ProbeTask": "probes",
    "ProjectionKind": "projection",
    "RANDOM_STATE": "probes",
    "SCHEMA_VERSION": "probes",
    "SUPPORTED_VARIANTS": "store",
    "TEST_SIZE": "probes",
    "activation_config_name": "store",
    "as_layered_samples": "analysis",
    "attribute_color_kwargs": "attributes",
    "attribute_groups": "steering",
    "attribute_probe_labels": "probes",
    "best_row": "probes",
    "build_layered_figure": "plots",
    "build_pair_similarity_figure": "plots",
    "build_similarity_figures": "plots",
    "categorical_attribute_labels": "attributes",
    "classification_baseline_metrics": "probes",
    "cluster_agglomerative": "analysis",
    "cluster_kmeans": "analysis",
    "cosine_similarity_matrix": "analysis",
    "default_probe_kinds": "probes",
    "default_root": "store",
    "difference_of_means_direction": "probes",
    "discover_activation_models": "store",
    "evaluate_classification": "probes",
    "evaluate_regression": "probes",
    "export_parquet": "hub_store",
    "filter_attribute_samples_min_count": "probes",
    "infer_probe_task": "probes",
    "layer_matrix": "probes",
    "layer_variant_similarity": "analysis",
    "layered_analysis": "analysis",
    "layered_pca": "analysis",
    "layered_similarity": "analysis",
    "load_analysis_dataset": "analysis",
    "load_persona_vectors": "analysis",
    "load_probe_artifact": "probes",
    "load_variant_vectors": "analysis",
    "make_linear_probe": "probes",
    "mean_difference_directions": "steering",
    "model_dir_name": "store",
    "normalize_mask_strategy": "store",
    "parse_vector_config_name": "hub",
    "pca_directions": "steering",
    "pca_explained_variance": "analysis",
    "persona_spectral_energy": "analysis",
    "pick_layers": "probes",
    "plot_attribute_layer_selectivity_heatmap": "plots",
    "plot_layer_similarity": "plots",
    "plot_metric_comparison": "plots",
    "plot_metric_over_layers": "plots",
    "plot_persona_dendrogram": "plots",
    "plot_scree": "plots",
    "plot_spectral_energy": "plots",
    "predict_difference_of_means": "probes",
    "prepare_cluster_samples": "analysis",
    "prepare_kmeans_groups": "projection",
    "prepare_layer_mean_cluster_samples": "analysis",
    "prepare_layered_projection_data": "projection",
    "primary_metric": "probes",
    "project_isomap": "analysis",
    "project_pca": "analysis",
    "project_umap": "analysis",
    "read_control_vector": "steering",
    "regression_baseline_metrics": "probes",
    "run_attribute_probe": "probes",
    "run_saved_activation_analysis": "analysis",
    "samples_to_numpy": "analysis",
    "save_plot_html": "plots",
    "save_probe_artifact": "probes",
    "scree_layers": "analysis",
    "shuffle_label_baseline": "probes",
    "sweep_attribute": "probes",
    "synthetic_persona_dataset": "attributes",
    "synthetic_persona_vectors": "attributes",
    "twonn": "analysis",
    "validate_layers": "analysis",
    "write_control_vector": "steering",
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
