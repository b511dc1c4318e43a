"""Projection maths behind the layered figures: per-layer coordinates, kNN edges and k-means groups.

:func:`prepare_layered_projection_data` computes each selected layer's PCA, UMAP or Isomap
coordinates (and, on request, its exact-kNN edges) once, as a :class:`LayeredProjectionData`
that :func:`~.plots.build_layered_figure` recolours without recomputing;
:func:`prepare_kmeans_groups` gives k-means labels reusable as ``groups=``. No Plotly here:
the figures are in :mod:`.plots`, which re-exports these names (persona-vectors keeps them in
its ``plots`` module).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from . import analysis as _analysis
from .analysis import as_layered_samples, validate_layers

__all__ = [
    "CLUSTER_MODES",
    "ClusterMode",
    "LayeredProjectionData",
    "ProjectionKind",
    "axis_range",
    "prepare_kmeans_groups",
    "prepare_layered_projection_data",
]

ClusterMode = Literal["mean_across_layers", "first_layer", "per_layer"]
ProjectionKind = Literal["pca", "umap", "isomap"]
CLUSTER_MODES = ("mean_across_layers", "first_layer", "per_layer")


def axis_range(values: np.ndarray) -> tuple[float, float]:
    """An axis range around ``values`` with a 5% margin (±1 for a constant)."""
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


@dataclass(frozen=True)
class LayeredProjectionData:
    """Projection coordinates (and optional kNN edges) of every selected layer.

    Independent of colouring: pass it to ``build_layered_figure(..., projection_data=...)`` to
    redraw with other ``groups``/``color_values`` without recomputing the projection.
    """

    kind: ProjectionKind
    layers: tuple[int, ...]
    n_components: int
    normalize: bool
    graph_n_neighbors: int
    layer_coords: dict[int, np.ndarray]
    layer_ranges: dict[int, tuple[tuple[float, float], ...]]
    graph_edges: dict[int, list[tuple[int, int]]]

    @property
    def n_samples(self) -> int:
        return int(len(next(iter(self.layer_coords.values()))))

    @classmethod
    def from_coords(
        cls,
        kind: ProjectionKind,
        layer_coords: Mapping[int, np.ndarray],
        *,
        normalize: bool = True,
        graph_edges: Mapping[int, list[tuple[int, int]]] | None = None,
        graph_n_neighbors: int = 5,
    ) -> LayeredProjectionData:
        """Wrap coordinates computed elsewhere (``{layer: (n, 2 or 3)}``, in layer order).

        Axis ranges are derived from the coordinates; ``normalize`` records whether the
        projected vectors were centred and L2-normalised first.
        """
        _check_kind(kind, similarity=False)
        coords = {int(layer): np.asarray(c) for layer, c in layer_coords.items()}
        if not coords:
            raise ValueError("layer_coords must hold at least one layer")
        shapes = {c.shape for c in coords.values()}
        first = next(iter(shapes))
        if len(shapes) != 1 or len(first) != 2:
            raise ValueError(f"every layer's coordinates must have the same shape (n, 2 or 3), got {sorted(shapes)}")
        _, n_components = first
        n_components = _check_n_components(n_components)
        ranges = {layer: tuple(axis_range(c[:, a]) for a in range(n_components)) for layer, c in coords.items()}
        return cls(
            kind,
            tuple(coords),
            n_components,
            bool(normalize),
            int(graph_n_neighbors),
            coords,
            ranges,
            dict(graph_edges or {}),
        )


def _check_kind(kind: str, *, similarity: bool) -> None:
    ok = ("pca", "umap", "isomap", "similarity") if similarity else ("pca", "umap", "isomap")
    if kind not in ok:
        raise ValueError(f"kind must be one of: {', '.join(ok)}")


def _check_n_components(n_components: Any) -> int:
    if n_components not in (2, 3) or isinstance(n_components, bool):
        raise ValueError("n_components must be 2 or 3")
    return int(n_components)


def _knn_edges(x: np.ndarray, n_neighbors: int) -> list[tuple[int, int]]:
    """Undirected exact-kNN edges (i < j) of the centred + unit rows, via the Rust kNN."""
    from .. import kernels

    n = x.shape[0]
    if n < 2:
        return []
    k = min(max(1, int(n_neighbors)), n - 1)
    p = _analysis.prepare_cluster_samples(x).astype(np.float32)  # float32 candidates: the fast path
    _, idx = kernels.knn_sqdist(p, k=k)  # nearest by squared L2, self excluded
    rows = np.repeat(np.arange(n), k)
    pairs = np.stack([np.minimum(rows, idx.ravel()), np.maximum(rows, idx.ravel())], axis=1)
    return [(int(a), int(b)) for a, b in np.unique(pairs, axis=0)]


def prepare_layered_projection_data(
    samples: Any,
    kind: ProjectionKind,
    layers: Sequence[int] | None = None,
    n_components: int = 2,
    normalize: bool = True,
    graph_overlay: bool = False,
    graph_n_neighbors: int = 5,
    *,
    progress: bool = False,
) -> LayeredProjectionData:
    """Precompute per-layer PCA/UMAP/Isomap coordinates for repeated figure colouring.

    ``normalize`` (centre + L2-normalise first) applies to PCA and UMAP; Isomap always uses
    centred + unit vectors with ``graph_n_neighbors`` neighbours (as the original).
    ``graph_overlay=True`` also stores each layer's ``graph_n_neighbors``-nearest-neighbour edges
    (centred + unit vectors).
    """
    _check_kind(kind, similarity=False)
    n_components = _check_n_components(n_components)
    s = as_layered_samples(samples)
    sel = validate_layers(s.vectors, layers)
    if s.vectors.shape[0] < 2:
        raise ValueError("At least two samples are required")
    eff_norm = bool(normalize) if kind in ("pca", "umap") else True
    return _projection_data(s, kind, sel, n_components, eff_norm, graph_overlay, graph_n_neighbors, progress)


def _projection_data(
    s: _analysis.LayeredSamples,
    kind: ProjectionKind,
    sel: list[int],
    n_components: int,
    eff_norm: bool,
    graph_overlay: bool,
    graph_n_neighbors: int,
    progress: bool,
) -> LayeredProjectionData:
    """:func:`prepare_layered_projection_data` on already validated samples and layers."""
    if kind == "pca":
        coords, _ = _analysis.layered_pca(s, sel, n_components, normalize=eff_norm, progress=progress)
        layer_coords = {layer: coords[i] for i, layer in enumerate(sel)}
    else:
        fn = _analysis.project_umap if kind == "umap" else _analysis.project_isomap
        kw = {"normalize": eff_norm} if kind == "umap" else {"n_neighbors": int(graph_n_neighbors)}
        it = _analysis.progress_iter(sel, progress, kind, len(sel))
        layer_coords = {layer: np.asarray(fn(s.vectors[:, layer, :], n_components, **kw)) for layer in it}
    edges = {layer: _knn_edges(s.vectors[:, layer, :], graph_n_neighbors) for layer in sel} if graph_overlay else {}
    return LayeredProjectionData.from_coords(
        kind, layer_coords, normalize=eff_norm, graph_edges=edges, graph_n_neighbors=graph_n_neighbors
    )


def prepare_kmeans_groups(
    samples: Any,
    *,
    layers: Sequence[int] | None = None,
    n_clusters: int,
    cluster_seed: int = 0,
    cluster_mode: ClusterMode = "mean_across_layers",
) -> list[str] | dict[int, list[str]]:
    """K-means labels ("Cluster i") for projection colouring, reusable as ``groups=``.

    ``mean_across_layers``: one label set from the centred/unit per-layer mean vector;
    ``first_layer``: from the first selected layer; ``per_layer``: ``{layer: labels}`` per frame.
    """
    if cluster_mode not in CLUSTER_MODES:
        raise ValueError("cluster_mode must be one of: mean_across_layers, first_layer, per_layer")
    s = as_layered_samples(samples)
    sel = validate_layers(s.vectors, layers)
    return _kmeans_groups(s, sel, n_clusters, cluster_seed, cluster_mode)


def _kmeans_groups(
    s: _analysis.LayeredSamples, sel: list[int], n_clusters: int, cluster_seed: int, cluster_mode: str
) -> list[str] | dict[int, list[str]]:
    """:func:`prepare_kmeans_groups` on already validated samples and layers."""

    def lab(ids: np.ndarray) -> list[str]:
        return [f"Cluster {int(i)}" for i in ids]

    if cluster_mode == "mean_across_layers":
        x = _analysis.prepare_layer_mean_cluster_samples(s.vectors[:, sel, :])
        return lab(_analysis.cluster_kmeans(x, n_clusters, seed=cluster_seed, center=False, normalize=False))
    if cluster_mode == "first_layer":
        return lab(_analysis.cluster_kmeans(s.vectors[:, sel[0], :], n_clusters, seed=cluster_seed))
    return {
        layer: lab(_analysis.cluster_kmeans(s.vectors[:, layer, :], n_clusters, seed=cluster_seed)) for layer in sel
    }


def _validate_projection_data(
    pd_: LayeredProjectionData,
    *,
    kind: str,
    layers: list[int],
    n_components: int,
    normalize: bool,
    graph_overlay: bool,
    graph_n_neighbors: int,
    n: int,
) -> None:
    if not isinstance(pd_, LayeredProjectionData):
        raise TypeError(f"projection_data must come from prepare_layered_projection_data, got {type(pd_).__name__}")
    checks = [
        ("kind", pd_.kind, kind),
        ("layers", list(pd_.layers), layers),
        ("n_components", pd_.n_components, n_components),
        ("normalize", pd_.normalize, normalize),
        ("n_samples", pd_.n_samples, n),
    ]
    if kind == "isomap" or graph_overlay:  # the Isomap neighbour count and the kNN edges depend on it
        checks.append(("graph_n_neighbors", pd_.graph_n_neighbors, int(graph_n_neighbors)))
    for what, got, want in checks:
        if got != want:
            raise ValueError(f"projection_data {what} must match the requested {what}; got {got!r} and {want!r}")
    if graph_overlay:
        missing = [layer for layer in layers if layer not in pd_.graph_edges]
        if missing:
            raise ValueError(f"projection_data was prepared without graph edges for layer(s): {missing}")


def _figure_projection(
    s: _analysis.LayeredSamples,
    kind: ProjectionKind,
    sel: list[int],
    n_components: int,
    eff_norm: bool,
    graph_overlay: bool,
    graph_n_neighbors: int,
    progress: bool,
    projection_data: LayeredProjectionData | None,
) -> LayeredProjectionData:
    """The projection a figure draws: ``projection_data`` checked against the request, else computed."""
    if projection_data is None:
        return _projection_data(s, kind, sel, n_components, eff_norm, graph_overlay, graph_n_neighbors, progress)
    _validate_projection_data(
        projection_data,
        kind=kind,
        layers=sel,
        n_components=n_components,
        normalize=eff_norm,
        graph_overlay=graph_overlay,
        graph_n_neighbors=graph_n_neighbors,
        n=int(s.vectors.shape[0]),
    )
    return projection_data
