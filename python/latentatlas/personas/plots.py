"""Layered Plotly figures of persona vectors (every function returns a ``go.Figure``).

The persona-vectors project's plot API: :func:`build_layered_figure` (PCA, UMAP, Isomap or
centred similarity with a layer slider and a play button), :func:`prepare_layered_projection_data`
(coordinates computed once and reused across recolourings), :func:`prepare_kmeans_groups`,
:func:`build_pair_similarity_figure`, :func:`plot_persona_dendrogram`, :func:`plot_scree`,
:func:`plot_layer_similarity`, plus :func:`plot_spectral_energy` for this library's spectral view.
Every ``samples`` argument accepts the loaders' :class:`~.analysis.LayeredSamples` or a plain
array ``(n_personas, num_layers, hidden_size)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import plotly.graph_objects as go

from .._plotting import PALETTE, TEMPLATE, WEBGL_MIN_POINTS
from ..spectral import minmax
from . import analysis as _analysis
from .analysis import LINKAGES, as_layered_samples, validate_layers

__all__ = [
    "LayeredProjectionData",
    "build_layered_figure",
    "build_pair_similarity_figure",
    "plot_layer_similarity",
    "plot_persona_dendrogram",
    "plot_scree",
    "plot_spectral_energy",
    "prepare_kmeans_groups",
    "prepare_layered_projection_data",
]

ClusterMode = Literal["mean_across_layers", "first_layer", "per_layer"]
ProjectionKind = Literal["pca", "umap", "isomap"]
CLUSTER_MODES = ("mean_across_layers", "first_layer", "per_layer")
_MAX_GROUP_LEGEND_TRACES = 40
_AXES = {"pca": "PC", "umap": "UMAP ", "isomap": "Isomap "}
_TITLES = {"pca": "PCA by Layer", "umap": "Centered UMAP by Layer", "isomap": "Centered Isomap by Layer"}


# --------------------------------------------------------------------------- shared controls


def _frame_name(layer: int) -> str:
    return f"layer {layer}"


def _layer_controls(layers: Sequence[int], *, duration: int = 500) -> dict[str, Any]:
    """A slider with one step per layer and a play/pause button."""
    steps = [
        dict(
            method="animate",
            label=str(layer),
            args=[
                [_frame_name(layer)],
                dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0)),
            ],
        )
        for layer in layers
    ]
    return dict(
        sliders=[dict(active=0, currentvalue=dict(prefix="Layer: "), pad=dict(t=50), steps=steps)],
        updatemenus=[
            dict(
                type="buttons",
                showactive=False,
                direction="left",
                x=0.0,
                y=0.0,
                xanchor="right",
                yanchor="top",
                pad=dict(t=60, r=10),
                buttons=[
                    dict(
                        label="▶ Play",
                        method="animate",
                        args=[
                            None,
                            dict(
                                frame=dict(duration=duration, redraw=True),
                                fromcurrent=True,
                                transition=dict(duration=0),
                                mode="immediate",
                            ),
                        ],
                    ),
                    dict(
                        label="❚❚ Pause",
                        method="animate",
                        args=[
                            [None],
                            dict(frame=dict(duration=0, redraw=False), transition=dict(duration=0), mode="immediate"),
                        ],
                    ),
                ],
            )
        ],
    )


def axis_range(values: np.ndarray) -> tuple[float, float]:
    """An axis range around ``values`` with a 5% margin (±1 for a constant)."""
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


# --------------------------------------------------------------------------- projection data


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
    n_samples: int
    layer_coords: dict[int, np.ndarray]
    layer_ranges: dict[int, tuple[tuple[float, float], ...]]
    graph_edges: dict[int, list[tuple[int, int]]]

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
        n, n_components = first
        n_components = _check_n_components(n_components)
        ranges = {layer: tuple(axis_range(c[:, a]) for a in range(n_components)) for layer, c in coords.items()}
        return cls(
            kind,
            tuple(coords),
            n_components,
            bool(normalize),
            int(graph_n_neighbors),
            int(n),
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
    from .. import _core

    n = x.shape[0]
    if n < 2:
        return []
    k = min(max(1, int(n_neighbors)), n - 1)
    p = np.ascontiguousarray(_analysis.prepare_cluster_samples(x), dtype=np.float32)
    _, idx = _core.knn_sqdist(p, k=k)  # nearest by squared L2, self excluded
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
    centred + unit vectors with 8 neighbours. ``graph_overlay=True`` also stores each layer's
    ``graph_n_neighbors``-nearest-neighbour edges (centred + unit vectors).
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
        kw = {"normalize": eff_norm} if kind == "umap" else {"n_neighbors": 8}
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
    for what, got, want in checks:
        if got != want:
            raise ValueError(f"projection_data {what} must match the requested {what}; got {got!r} and {want!r}")
    if graph_overlay:
        missing = [layer for layer in layers if layer not in pd_.graph_edges]
        if missing:
            raise ValueError(f"projection_data was prepared without graph edges for layer(s): {missing}")


# ------------------------------------------------------------------------------- colouring


def _per_layer(values: Any, layers: list[int], n: int, what: str, cast: Any) -> dict[int, list[Any]]:
    if isinstance(values, Mapping):
        missing = [layer for layer in layers if layer not in values]
        if missing:
            raise ValueError(f"{what} is missing layer(s): {missing}")
        out = {layer: [cast(v) for v in values[layer]] for layer in layers}
    else:
        stable = [cast(v) for v in values]
        out = {layer: stable for layer in layers}
    bad = {layer: len(v) for layer, v in out.items() if len(v) != n}
    if bad:
        raise ValueError(f"{what} must have length {n} for every layer; got {bad}")
    return out


class _Coloring:
    """Builds each layer's point traces; the trace count is the same in every frame."""

    def __init__(
        self,
        layers: list[int],
        n: int,
        *,
        groups: Any,
        color_values: Any,
        color_label: str,
        colorscale: str,
        tickvals: Any,
        ticktext: Any,
    ) -> None:
        self.mode = "single"
        if color_values is not None:
            self.mode = "numeric"
            self.values = _per_layer(color_values, layers, n, "color_values", float)
            allv = np.concatenate([np.asarray(v, dtype=float) for v in self.values.values()])
            if not np.isfinite(allv).all():
                raise ValueError("color_values contains NaN or infinity")
            cb: dict[str, Any] = dict(title=color_label)
            if tickvals is not None:
                cb["tickvals"] = list(tickvals)
            if ticktext is not None:
                cb["ticktext"] = list(ticktext)
            self.marker = dict(
                colorscale=colorscale,
                cmin=float(allv.min()),
                cmax=float(allv.max()),
                colorbar=cb,
                showscale=True,
                size=8,
            )
            self.label = color_label
        elif groups is not None:
            self.groups = _per_layer(groups, layers, n, "groups", str)
            self.unique = sorted({g for v in self.groups.values() for g in v})
            self.colors = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(self.unique)}
            self.mode = "groups" if len(self.unique) <= _MAX_GROUP_LEGEND_TRACES else "groups_single"


def _points(coords: np.ndarray, idx: np.ndarray, n_components: int, webgl: bool, **kw: Any) -> Any:
    xyz = dict(x=coords[idx, 0], y=coords[idx, 1])
    if n_components == 3:
        xyz["z"] = coords[idx, 2]
        return go.Scatter3d(mode="markers", **xyz, **kw)
    return (go.Scattergl if webgl else go.Scatter)(mode="markers", **xyz, **kw)


def _layer_traces(
    layer: int,
    coords: np.ndarray,
    col: _Coloring,
    s: Any,
    n_components: int,
    axis: str,
    edges: list[tuple[int, int]] | None,
) -> list[Any]:
    n = coords.shape[0]
    webgl = n >= WEBGL_MIN_POINTS
    text = np.asarray(s.hover_text, dtype=object)
    traces: list[Any] = []
    if edges is not None:
        segs = np.full((len(edges) * 3, n_components), np.nan)
        if edges:
            e = np.asarray(edges)
            segs[0::3], segs[1::3] = coords[e[:, 0]], coords[e[:, 1]]
        line = dict(color="rgba(71, 85, 105, 0.3)", width=1)
        kw = dict(
            x=segs[:, 0], y=segs[:, 1], mode="lines", name="kNN graph", hoverinfo="skip", showlegend=False, line=line
        )
        if n_components == 3:
            traces.append(go.Scatter3d(z=segs[:, 2], **kw))
        else:
            traces.append((go.Scattergl if webgl else go.Scatter)(**kw))
    hov = (
        "%{text}<br>"
        + f"{axis}1=%{{x:.4f}}<br>{axis}2=%{{y:.4f}}"
        + (f"<br>{axis}3=%{{z:.4f}}" if n_components == 3 else "")
    )
    allidx = np.arange(n)
    if col.mode == "single":
        traces.append(
            _points(
                coords,
                allidx,
                n_components,
                webgl,
                text=text,
                name="personas",
                showlegend=False,
                marker=dict(size=8, color="#3b6ea8"),
                hovertemplate=hov + "<extra></extra>",
            )
        )
    elif col.mode == "numeric":
        vals = np.asarray(col.values[layer])
        traces.append(
            _points(
                coords,
                allidx,
                n_components,
                webgl,
                text=text,
                name=col.label,
                showlegend=False,
                marker=dict(color=vals, **col.marker),
                customdata=vals,
                hovertemplate=hov + f"<br>{col.label}=%{{customdata:.4g}}<extra></extra>",
            )
        )
    else:
        g = np.asarray(col.groups[layer], dtype=object)
        if col.mode == "groups":
            for name in col.unique:
                idx = np.flatnonzero(g == name)
                traces.append(
                    _points(
                        coords,
                        idx,
                        n_components,
                        webgl,
                        text=text[idx],
                        name=name,
                        legendgroup=name,
                        marker=dict(size=8, color=col.colors[name]),
                        hovertemplate=hov + f"<br>Group: {name}<extra></extra>",
                    )
                )
        else:
            colors = [col.colors[v] for v in g]
            traces.append(
                _points(
                    coords,
                    allidx,
                    n_components,
                    webgl,
                    text=[f"{t}<br>Group: {v}" for t, v in zip(text, g)],
                    name="groups",
                    showlegend=False,
                    marker=dict(size=8, color=colors),
                    hovertemplate=hov + "<extra></extra>",
                )
            )
    return traces


def _axis_layout(ranges: tuple[tuple[float, float], ...], n_components: int, axis: str) -> dict[str, Any]:
    if n_components == 3:
        return dict(
            scene=dict(
                xaxis=dict(range=ranges[0], title=f"{axis}1"),
                yaxis=dict(range=ranges[1], title=f"{axis}2"),
                zaxis=dict(range=ranges[2], title=f"{axis}3"),
                aspectmode="cube",
            )
        )
    return dict(xaxis=dict(range=ranges[0], title=f"{axis}1"), yaxis=dict(range=ranges[1], title=f"{axis}2"))


# -------------------------------------------------------------------------------- figures


def build_layered_figure(
    samples: Any,
    kind: str,
    layers: Sequence[int] | None = None,
    title: str | None = None,
    n_components: int = 2,
    n_clusters: int | None = None,
    cluster_seed: int = 0,
    cluster_mode: ClusterMode = "mean_across_layers",
    groups: Sequence[str] | Mapping[int, Sequence[str]] | None = None,
    graph_overlay: bool = False,
    graph_n_neighbors: int = 5,
    projection_normalize: bool = True,
    color_values: Sequence[float] | Mapping[int, Sequence[float]] | None = None,
    color_label: str = "Value",
    colorscale: str = "Viridis",
    color_tickvals: Sequence[float] | None = None,
    color_ticktext: Sequence[str] | None = None,
    projection_data: LayeredProjectionData | None = None,
    *,
    progress: bool = False,
) -> go.Figure:
    """Per-layer PCA, UMAP, Isomap or centred-similarity figure with a layer slider and play button.

    Parameters
    ----------
    samples : LayeredSamples or array (n_personas, num_layers, hidden_size)
    kind : {"pca", "umap", "isomap", "similarity"}
    layers : list of int, optional
        Layers to show (default all); one slider step per layer.
    n_components : {2, 3}
        2-D scatter or 3-D scatter (projection kinds).
    n_clusters, groups, color_values
        Mutually exclusive colourings: k-means clusters (``cluster_mode`` in mean_across_layers,
        first_layer, per_layer), categorical labels (a list, or ``{layer: list}``), or numeric
        values with a colour bar (``color_label``, ``colorscale``, ``color_tickvals``, ``color_ticktext``).
    graph_overlay : bool
        Draw each layer's kNN graph (``graph_n_neighbors``, centred/unit vectors) behind the points.
    projection_normalize : bool
        Centre + L2-normalise before PCA/UMAP (Isomap always does).
    projection_data : LayeredProjectionData, optional
        From :func:`prepare_layered_projection_data`; reused as is (no recomputation).
    """
    s = as_layered_samples(samples)
    _check_kind(kind, similarity=True)
    sel = validate_layers(s.vectors, layers)
    n = int(s.vectors.shape[0])
    if n < 2:
        raise ValueError("At least two samples are required")
    if sum(o is not None for o in (n_clusters, groups, color_values)) > 1:
        raise ValueError("n_clusters, groups, and color_values are mutually exclusive")
    if kind == "similarity":
        if n_clusters is not None or groups is not None or color_values is not None:
            raise ValueError("n_clusters, groups, and color_values are not supported for kind='similarity'")
        if projection_data is not None:
            raise ValueError("projection_data is not supported for kind='similarity'")
        return _similarity_figure(s, sel, title or "Centered Cosine Similarity by Layer", progress=progress)
    n_components = _check_n_components(n_components)
    if cluster_mode not in CLUSTER_MODES:
        raise ValueError("cluster_mode must be one of: mean_across_layers, first_layer, per_layer")
    if n_clusters is not None:
        groups = _kmeans_groups(s, sel, n_clusters, cluster_seed, cluster_mode)
    eff_norm = bool(projection_normalize) if kind in ("pca", "umap") else True
    if projection_data is None:
        projection_data = _projection_data(
            s, cast(ProjectionKind, kind), sel, n_components, eff_norm, graph_overlay, graph_n_neighbors, progress
        )
    else:
        _validate_projection_data(
            projection_data,
            kind=kind,
            layers=sel,
            n_components=n_components,
            normalize=eff_norm,
            graph_overlay=graph_overlay,
            n=n,
        )
    col = _Coloring(
        sel,
        n,
        groups=groups,
        color_values=color_values,
        color_label=color_label,
        colorscale=colorscale,
        tickvals=color_tickvals,
        ticktext=color_ticktext,
    )
    axis = _AXES[kind]
    base_title = title or (_TITLES[kind] if n_components == 2 else _TITLES[kind].replace(" by", " (3D) by"))
    frames = []
    for layer in sel:
        traces = _layer_traces(
            layer,
            projection_data.layer_coords[layer],
            col,
            s,
            n_components,
            axis,
            projection_data.graph_edges.get(layer) if graph_overlay else None,
        )
        layout = _axis_layout(projection_data.layer_ranges[layer], n_components, axis)
        layout["title"] = dict(text=f"{base_title} — layer {layer}")
        frames.append(go.Frame(name=_frame_name(layer), data=traces, layout=layout))
    fig = go.Figure(data=frames[0].data, frames=frames)
    fig.update_layout(
        template=TEMPLATE,
        height=700 if n_components == 3 else 640,
        legend=dict(itemsizing="constant"),
        **_layer_controls(sel),
        **_axis_layout(projection_data.layer_ranges[sel[0]], n_components, axis),
    )
    fig.update_layout(title=dict(text=f"{base_title} — layer {sel[0]}"))
    return fig


def _unique_labels(labels: Sequence[str], ids: Sequence[str]) -> list[str]:
    """Heatmap axes merge equal category names: disambiguate duplicates with the id."""
    seen = {lab: labels.count(lab) for lab in set(labels)} if len(labels) < 5000 else {}
    return [f"{lab} ({pid})" if seen.get(lab, 1) > 1 else lab for lab, pid in zip(labels, ids)]


def _similarity_figure(s: Any, sel: list[int], title: str, *, progress: bool) -> go.Figure:
    n = s.vectors.shape[0]
    if n > 400:
        warnings.warn(
            f"a similarity figure of {n} personas x {len(sel)} layers makes a large HTML file "
            f"({n * n * len(sel) * 4 / 1e6:.0f} MB of float32); pass fewer layers or personas",
            stacklevel=3,
        )
    S = _analysis.layered_similarity(s, sel, progress=progress)
    labels = _unique_labels(list(s.labels), list(s.persona_ids))

    def heat(i: int) -> go.Heatmap:
        return go.Heatmap(
            z=S[i],
            x=labels,
            y=labels,
            zmin=-1.0,
            zmax=1.0,
            colorscale="RdBu",
            reversescale=True,
            colorbar=dict(title="cos"),
            hovertemplate="%{y}<br>%{x}<br>cos=%{z:.3f}<extra></extra>",
        )

    frames = [
        go.Frame(name=_frame_name(layer), data=[heat(i)], layout=dict(title=dict(text=f"{title} — layer {layer}")))
        for i, layer in enumerate(sel)
    ]
    fig = go.Figure(data=frames[0].data, frames=frames)
    side = min(900, 300 + 12 * n)
    fig.update_layout(
        template=TEMPLATE,
        height=side + 150,
        width=side + 200,
        yaxis=dict(autorange="reversed"),
        title=dict(text=f"{title} — layer {sel[0]}"),
        **_layer_controls(sel),
    )
    return fig


def _select_pairs(S: np.ndarray, max_pairs: int) -> list[tuple[int, int]]:
    n = S.shape[1]
    iu, ju = np.triu_indices(n, k=1)
    if len(iu) <= max_pairs:
        return list(zip(iu.tolist(), ju.tolist()))
    mean = S[:, iu, ju].mean(axis=0)
    order = np.argsort(-mean, kind="stable")
    top = order[: (max_pairs + 1) // 2]
    bottom = order[::-1][: max_pairs // 2]
    chosen = list(top) + [b for b in bottom if b not in set(top)]
    return [(int(iu[c]), int(ju[c])) for c in chosen]


def build_pair_similarity_figure(
    samples: Any,
    layers: Sequence[int] | None = None,
    title: str | None = None,
    *,
    pairs: Sequence[tuple[int, int]] | None = None,
    max_pairs: int = 12,
    center: bool = True,
    progress: bool = False,
) -> go.Figure:
    """Centred cosine similarity of persona pairs across layers (one line per pair).

    ``pairs`` are index pairs into the personas; by default all pairs when there are at most
    ``max_pairs``, else the ``max_pairs/2`` most and least similar pairs on average over layers.
    A layer slider (and play button) moves a marker along every line.
    """
    s = as_layered_samples(samples)
    sel = validate_layers(s.vectors, layers)
    n = s.vectors.shape[0]
    if n < 2:
        raise ValueError("At least two samples are required")
    S = _analysis.layered_similarity(s, sel, center=center, progress=progress)
    if pairs is None:
        chosen = _select_pairs(S, int(max_pairs))
    else:
        chosen = [(int(a), int(b)) for a, b in pairs]
        bad = [p for p in chosen if not (0 <= p[0] < n and 0 <= p[1] < n) or p[0] == p[1]]
        if bad:
            raise ValueError(f"pairs must be index pairs of distinct personas in [0, {n}); invalid: {bad}")
    fig = go.Figure()
    for k, (a, b) in enumerate(chosen):
        fig.add_trace(
            go.Scatter(
                x=sel,
                y=S[:, a, b],
                mode="lines",
                name=f"{s.labels[a]} ↔ {s.labels[b]}",
                line=dict(color=PALETTE[k % len(PALETTE)]),
                hovertemplate="layer %{x}<br>cos=%{y:.3f}<extra>%{fullData.name}</extra>",
            )
        )

    def marker(i: int) -> go.Scatter:
        return go.Scatter(
            x=[sel[i]] * len(chosen),
            y=[float(S[i, a, b]) for a, b in chosen],
            mode="markers",
            marker=dict(
                size=10,
                color=[PALETTE[k % len(PALETTE)] for k in range(len(chosen))],
                line=dict(width=1, color="black"),
            ),
            name="selected layer",
            showlegend=False,
            hoverinfo="skip",
        )

    fig.add_trace(marker(0))
    mi = len(chosen)
    fig.frames = [go.Frame(name=_frame_name(layer), data=[marker(i)], traces=[mi]) for i, layer in enumerate(sel)]
    fig.update_layout(
        template=TEMPLATE,
        height=560,
        title=title or "Persona-Pair Centered Cosine Similarity Across Layers",
        xaxis=dict(title="Layer"),
        yaxis=dict(title="Centered cosine similarity", range=[-1.05, 1.05]),
        **_layer_controls(sel),
    )
    return fig


def plot_persona_dendrogram(
    samples: Any,
    layer: int | None = None,
    *,
    linkage: str = "ward",
    title: str | None = None,
    labels: Sequence[str] | None = None,
    center: bool = True,
    normalize: bool = True,
) -> go.Figure:
    """Hierarchical clustering dendrogram of personas (SciPy linkage on centred + unit vectors).

    ``layer=None`` clusters the per-layer-prepared mean vector
    (:func:`~.analysis.prepare_layer_mean_cluster_samples`), else one layer's vectors.
    ``linkage`` is one of ward, average, complete, single.
    """
    from scipy.cluster import hierarchy

    if linkage not in LINKAGES:
        raise ValueError("linkage must be one of: ward, average, complete, single")
    s = as_layered_samples(samples)
    if s.vectors.shape[0] < 2:
        raise ValueError("At least two samples are required")
    if layer is None:
        x = _analysis.prepare_layer_mean_cluster_samples(s.vectors, center=center, normalize=normalize)
    else:
        (layer,) = validate_layers(s.vectors, [layer])
        x = _analysis.prepare_cluster_samples(s.vectors[:, layer, :], center=center, normalize=normalize)
    names = list(labels) if labels is not None else list(s.labels)
    if len(names) != x.shape[0]:
        raise ValueError(f"labels must have length {x.shape[0]}, got {len(names)}")
    Z = hierarchy.linkage(np.asarray(x, dtype=np.float64), method=linkage)
    d = hierarchy.dendrogram(Z, no_plot=True, labels=names)
    xs, ys = [], []
    for ic, dc in zip(d["icoord"], d["dcoord"]):
        xs += list(ic) + [None]
        ys += list(dc) + [None]
    fig = go.Figure(
        go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#3b6ea8", width=1.5), hoverinfo="skip", name="merges")
    )
    ticks = list(range(5, 10 * len(d["ivl"]), 10))
    where = "mean of layers" if layer is None else f"layer {layer}"
    fig.update_layout(
        template=TEMPLATE,
        height=520,
        showlegend=False,
        title=title or f"Persona dendrogram ({linkage} linkage, {where})",
        xaxis=dict(tickmode="array", tickvals=ticks, ticktext=d["ivl"], tickangle=-60),
        yaxis=dict(title="Merge distance"),
    )
    return fig


def plot_scree(
    variance_by_condition: Mapping[str, Sequence[float] | np.ndarray],
    title: str | None = None,
    *,
    max_components: int | None = 20,
    cumulative: bool = False,
    show: bool = False,
) -> go.Figure:
    """PCA explained-variance curves, one line per condition (e.g. ``{"layer 0": ratios, ...}``)."""
    if not variance_by_condition:
        raise ValueError("variance_by_condition must hold at least one curve")
    fig = go.Figure()
    for name, ratios in variance_by_condition.items():
        r = np.asarray(ratios, dtype=np.float64).ravel()
        if r.size == 0 or not np.isfinite(r).all():
            raise ValueError(f"explained variance of {name!r} must be a non-empty finite array")
        if max_components is not None:
            r = r[:max_components]
        y = np.cumsum(r) if cumulative else r
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, r.size + 1),
                y=y,
                mode="lines+markers",
                name=str(name),
                hovertemplate="PC %{x}<br>%{y:.3%}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        height=480,
        title=title or "PCA Explained Variance",
        xaxis=dict(title="Principal component", dtick=1 if (max_components or 99) <= 30 else None),
        yaxis=dict(
            title="Cumulative explained variance" if cumulative else "Explained variance ratio", tickformat=".0%"
        ),
    )
    if show:  # pragma: no cover - interactive
        fig.show()
    return fig


def plot_layer_similarity(
    traces: Mapping[str, Sequence[float]],
    title: str | None = None,
    *,
    layers: Sequence[int] | None = None,
    y_label: str = "Cosine similarity",
) -> go.Figure:
    """Per-layer curves (e.g. variant-to-variant cosine from :func:`~.analysis.layer_variant_similarity`)."""
    if not traces:
        raise ValueError("traces must hold at least one curve")
    fig = go.Figure()
    for name, values in traces.items():
        y = np.asarray(values, dtype=np.float64).ravel()
        x = list(layers) if layers is not None else list(range(y.size))
        if len(x) != y.size:
            raise ValueError(f"trace {name!r} has {y.size} values but {len(x)} layers")
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=str(name)))
    fig.update_layout(
        template=TEMPLATE,
        height=460,
        title=title or "Variant Similarity by Layer",
        xaxis=dict(title="Layer"),
        yaxis=dict(title=y_label),
    )
    return fig


def plot_spectral_energy(
    energy: Any,
    layers: Sequence[int],
    labels: Sequence[str],
    title: str | None = None,
    *,
    normalize_per_layer: bool = True,
) -> go.Figure:
    """Heat map of the feature-graph Rayleigh energy (n_layers, n_personas) of every persona by layer.

    ``normalize_per_layer`` min-max scales each layer (``+1e-9`` as the seed), so the colours
    compare personas within a layer; the raw values are in the hover text.
    """
    E = np.asarray(energy, dtype=np.float64)
    if E.ndim != 2 or E.shape != (len(layers), len(labels)):
        raise ValueError(
            f"energy must have shape (len(layers), len(labels)) = ({len(layers)}, {len(labels)}), got {E.shape}"
        )
    Z = np.stack([minmax(row) for row in E]) if normalize_per_layer else E
    fig = go.Figure(
        go.Heatmap(
            z=Z.T,
            x=[str(x) for x in layers],
            y=list(labels),
            customdata=E.T,
            colorscale="Viridis",
            colorbar=dict(title="λ (min-max per layer)" if normalize_per_layer else "λ"),
            hovertemplate="%{y}<br>layer %{x}<br>λ=%{customdata:.4g}<extra></extra>",
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        height=min(1200, 250 + 14 * len(labels)),
        title=title or "Feature-graph Rayleigh energy of each persona by layer",
        xaxis=dict(title="Layer"),
        yaxis=dict(autorange="reversed"),
    )
    return fig
