"""Layered Plotly figures of persona vectors (every function returns a ``go.Figure``).

The persona-vectors project's plot API: :func:`build_layered_figure` (PCA, UMAP, Isomap or
centred similarity with a layer slider and a play button), :func:`build_pair_similarity_figure`,
:func:`plot_persona_dendrogram`, :func:`plot_scree`, :func:`plot_layer_similarity`, plus :func:`plot_spectral_energy` for this library's spectral view.
Every ``samples`` argument accepts the loaders' :class:`~.analysis.LayeredSamples` or a plain
array ``(n_personas, num_layers, hidden_size)``.

The projection maths (coordinates computed once and reused across recolourings, kNN edges, k-means
groups) is in :mod:`.projection`; its persona-vectors names (:func:`prepare_layered_projection_data`,
:func:`prepare_kmeans_groups`, :class:`LayeredProjectionData`, ``ClusterMode``, ``ProjectionKind``)
are importable from here too, as in the original.
"""

from __future__ import annotations

import html
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import plotly.graph_objects as go

from .._io import safe_name
from .._optional import to_numpy
from .._plotting import PALETTE, TEMPLATE, WEBGL_MIN_POINTS
from .._validate import check_int
from ..linalg import row_norms
from ..spectral import minmax
from . import analysis as _analysis
from .analysis import LINKAGES, as_layered_samples, validate_layers
from .probe_plots import (
    plot_attribute_layer_selectivity_heatmap,
    plot_metric_comparison,
    plot_metric_over_layers,
)
from .projection import (
    CLUSTER_MODES,
    ClusterMode,
    LayeredProjectionData,
    ProjectionKind,
    _check_kind,
    _check_n_components,
    _figure_projection,
    _kmeans_groups,
    prepare_kmeans_groups,
    prepare_layered_projection_data,
)

__all__ = [
    "ClusterMode",
    "LayeredProjectionData",
    "ProjectionKind",
    "build_layered_figure",
    "build_pair_similarity_figure",
    "build_similarity_figures",
    "plot_attribute_layer_selectivity_heatmap",
    "plot_layer_similarity",
    "plot_metric_comparison",
    "plot_metric_over_layers",
    "plot_persona_dendrogram",
    "plot_scree",
    "plot_spectral_energy",
    "prepare_kmeans_groups",
    "prepare_layered_projection_data",
    "save_plot_html",
]

_MAX_GROUP_LEGEND_TRACES = 40
_AXES = {"pca": "PC", "umap": "UMAP ", "isomap": "Isomap "}
_TITLES = {"pca": "PCA by Layer", "umap": "Centered UMAP by Layer", "isomap": "Centered Isomap by Layer"}


# --------------------------------------------------------------------------- shared controls


def _frame_name(layer: int) -> str:
    return str(layer)  # the original's frame names: slider steps and user code address frames by them


def _frame_title(title: str, layer: int) -> dict[str, Any]:
    return dict(text=f"{title} - Layer {layer}")


def _layer_controls(layers: Sequence[int], *, pad_t: int = 45) -> dict[str, Any]:
    """A slider with one step per layer (named ``str(layer)``) and Play/Pause buttons."""
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
        sliders=[dict(active=0, currentvalue=dict(prefix="Layer "), pad=dict(t=pad_t), steps=steps)],
        updatemenus=[
            dict(
                type="buttons",
                direction="left",
                active=-1,
                x=1,
                xanchor="right",
                y=1.16,
                yanchor="top",
                pad=dict(t=0, r=10),
                buttons=[
                    dict(
                        label="Play",
                        method="animate",
                        args=[
                            None,
                            dict(
                                frame=dict(duration=650, redraw=True), transition=dict(duration=250), fromcurrent=True
                            ),
                        ],
                    ),
                    dict(
                        label="Pause",
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


def _color_map(labels: Sequence[str]) -> dict[str, str]:
    """Label -> colour, labels in case-insensitive order over plotly's Safe + Dark24 + Set3 (47 colours)."""
    from plotly.colors import qualitative

    palette = qualitative.Safe + qualitative.Dark24 + qualitative.Set3
    return {lab: palette[i % len(palette)] for i, lab in enumerate(sorted(set(labels), key=str.casefold))}


class _Coloring:
    """Builds each layer's point traces; the trace count is the same in every frame.

    As the original: numeric ``color_values`` give one trace with a colour bar; otherwise the
    groups (``groups``, k-means clusters, or by default each persona's label) give one trace per
    group in the legend, or one trace with per-point colours above 40 groups.
    """

    def __init__(
        self,
        layers: list[int],
        n: int,
        *,
        labels: Sequence[str],
        groups: Any,
        color_values: Any,
        color_label: str,
        colorscale: str,
        tickvals: Any,
        ticktext: Any,
    ) -> None:
        self.mode = "groups"
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
            self.marker = dict(colorscale=colorscale, cmin=float(allv.min()), cmax=float(allv.max()), colorbar=cb)
            self.label = color_label
            return
        self.label = "Personas" if groups is None else "Groups"
        self.groups = _per_layer(list(labels) if groups is None else groups, layers, n, "groups", str)
        self.unique = sorted({g for v in self.groups.values() for g in v}, key=str.casefold)
        self.colors = _color_map(self.unique)
        if len(self.unique) > _MAX_GROUP_LEGEND_TRACES:
            self.mode = "groups_single"


def _points(coords: np.ndarray, idx: Sequence[int], n_components: int, webgl: bool, **kw: Any) -> Any:
    """A marker trace of the rows ``idx``; coordinates as lists, as the original's figures hold them."""
    xyz = dict(x=coords[idx, 0].tolist(), y=coords[idx, 1].tolist())
    if n_components == 3:
        xyz["z"] = coords[idx, 2].tolist()
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
    webgl: bool,
) -> list[Any]:
    """One layer's traces: the kNN graph (when ``edges`` is given) behind the coloured points."""
    hov = (
        "%{text}<br>"
        + f"{axis}1=%{{x:.4f}}<br>{axis}2=%{{y:.4f}}"
        + (f"<br>{axis}3=%{{z:.4f}}" if n_components == 3 else "")
    )
    points = _point_traces(layer, coords, col, list(s.hover_text), n_components, webgl, hov)
    return points if edges is None else [_edge_trace(coords, edges, n_components, webgl), *points]


def _edge_trace(coords: np.ndarray, edges: list[tuple[int, int]], n_components: int, webgl: bool) -> Any:
    """The kNN graph as one ``lines`` trace, the segments separated by gaps (None)."""
    segs = np.full((len(edges) * 3, n_components), np.nan)
    if edges:
        e = np.asarray(edges)
        segs[0::3], segs[1::3] = coords[e[:, 0]], coords[e[:, 1]]
    xyz = [[None if np.isnan(v) else float(v) for v in segs[:, a]] for a in range(n_components)]
    line = dict(color="rgba(71, 85, 105, 0.3)", width=1)
    kw = dict(x=xyz[0], y=xyz[1], mode="lines", name="kNN graph", hoverinfo="skip", showlegend=False, line=line)
    if n_components == 3:
        return go.Scatter3d(z=xyz[2], **kw)
    return (go.Scattergl if webgl else go.Scatter)(**kw)


def _point_traces(
    layer: int, coords: np.ndarray, col: _Coloring, text: list[str], n_components: int, webgl: bool, hov: str
) -> list[Any]:
    """The points: one trace with a colour bar, one with per-point group colours, or one per group."""
    size = 5 if n_components == 3 else 9
    allidx = list(range(coords.shape[0]))
    if col.mode == "numeric":
        return [
            _points(
                coords,
                allidx,
                n_components,
                webgl,
                text=text,
                name=col.label,
                marker=dict(color=list(col.values[layer]), size=size, opacity=0.82, **col.marker),
                hovertemplate="%{text}<br>"
                + col.label
                + ": %{marker.color}<br>"
                + hov[len("%{text}<br>") :]
                + "<extra></extra>",
            )
        ]
    g = col.groups[layer]
    if col.mode == "groups_single":
        return [
            _points(
                coords,
                allidx,
                n_components,
                webgl,
                text=text,
                customdata=list(g),
                name=col.label,
                marker=dict(size=size, opacity=0.82, color=[col.colors[v] for v in g]),
                hovertemplate=hov.replace("<br>", "<br>Group: %{customdata}<br>", 1) + "<extra></extra>",
            )
        ]
    traces = []
    for name in col.unique:
        idx = [i for i, v in enumerate(g) if v == name]
        traces.append(
            _points(
                coords,
                idx,
                n_components,
                webgl,
                text=[text[i] for i in idx],
                name=name,
                legendgroup=name,
                marker=dict(size=size, opacity=0.82, color=col.colors[name]),
                hovertemplate=hov + f"<br>{html.escape(name)}<extra></extra>",
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
    webgl: bool | None = True,
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
    webgl : bool or None, default True
        2-D points as ``scattergl`` (the original's); False draws SVG ``scatter`` (crisp, and it
        renders in GPU-less browsers); None picks WebGL from 5,000 points on.

    The figure is the original's: frames and slider steps named ``str(layer)``, titles
    ``"<title> - Layer <l>"``, by default one trace per persona label (up to 40, else one
    ``"Personas"`` trace coloured per point), trace coordinates as lists.
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
    gl = n >= WEBGL_MIN_POINTS if webgl is None else bool(webgl)
    if cluster_mode not in CLUSTER_MODES:
        raise ValueError("cluster_mode must be one of: mean_across_layers, first_layer, per_layer")
    if n_clusters is not None:
        groups = _kmeans_groups(s, sel, n_clusters, cluster_seed, cluster_mode)
    eff_norm = bool(projection_normalize) if kind in ("pca", "umap") else True
    pdata = _figure_projection(
        s,
        cast(ProjectionKind, kind),
        sel,
        n_components,
        eff_norm,
        graph_overlay,
        graph_n_neighbors,
        progress,
        projection_data,
    )
    col = _Coloring(
        sel,
        n,
        labels=s.labels,
        groups=groups,
        color_values=color_values,
        color_label=color_label,
        colorscale=colorscale,
        tickvals=color_tickvals,
        ticktext=color_ticktext,
    )
    return _projection_figure(s, kind, sel, pdata, col, n_components, title, graph_overlay=graph_overlay, webgl=gl)


def _projection_figure(
    s: Any,
    kind: str,
    sel: list[int],
    pdata: LayeredProjectionData,
    col: _Coloring,
    n_components: int,
    title: str | None,
    *,
    graph_overlay: bool,
    webgl: bool,
) -> go.Figure:
    """One frame per layer (its traces, axes and title) behind the layer slider and Play/Pause."""
    axis = _AXES[kind]
    base_title = title or (_TITLES[kind] if n_components == 2 else _TITLES[kind].replace(" by", " (3D) by"))
    frames = []
    for layer in sel:
        edges = pdata.graph_edges.get(layer) if graph_overlay else None
        traces = _layer_traces(layer, pdata.layer_coords[layer], col, s, n_components, axis, edges, webgl)
        layout = _axis_layout(pdata.layer_ranges[layer], n_components, axis)
        layout["title"] = _frame_title(base_title, layer)
        frames.append(go.Frame(name=_frame_name(layer), data=traces, layout=layout))
    fig = go.Figure(data=frames[0].data, frames=frames)
    fig.update_layout(
        template=TEMPLATE,
        height=700 if n_components == 3 else 640,
        margin=dict(t=140, b=90),
        legend=dict(itemsizing="constant"),
        **_layer_controls(sel),
        **_axis_layout(pdata.layer_ranges[sel[0]], n_components, axis),
    )
    fig.update_layout(title=_frame_title(base_title, sel[0]))
    return fig


def _unique_labels(labels: Sequence[str], ids: Sequence[str]) -> list[str]:
    """Heatmap axes merge equal category names: disambiguate duplicates with the id."""
    seen = {lab: labels.count(lab) for lab in set(labels)} if len(labels) < 5000 else {}
    return [f"{lab} ({pid})" if seen.get(lab, 1) > 1 else lab for lab, pid in zip(labels, ids)]


def _similarity_figure(s: Any, sel: list[int], title: str, *, progress: bool, S: np.ndarray | None = None) -> go.Figure:
    n = s.vectors.shape[0]
    if n > 400:
        warnings.warn(
            f"a similarity figure of {n} personas x {len(sel)} layers makes a large HTML file "
            f"({n * n * len(sel) * 4 / 1e6:.0f} MB of float32); pass fewer layers or personas",
            stacklevel=3,
        )
    if S is None:
        S = _analysis.layered_similarity(s, sel, progress=progress)
    labels = _unique_labels(list(s.labels), list(s.persona_ids))

    def heat(i: int) -> go.Heatmap:
        return go.Heatmap(
            z=S[i],
            x=labels,
            y=labels,
            coloraxis="coloraxis",
            hovertemplate="(%{x}, %{y})<br>Centered cosine: %{z:.4f}<extra></extra>",
        )

    frames = [
        go.Frame(name=_frame_name(layer), data=[heat(i)], layout=dict(title=_frame_title(title, layer)))
        for i, layer in enumerate(sel)
    ]
    fig = go.Figure(data=frames[0].data, frames=frames)
    side = min(900, 300 + 12 * n)
    fig.update_layout(
        template=TEMPLATE,
        height=side + 150,
        width=side + 200,
        margin=dict(t=170, b=90),
        coloraxis=dict(cmin=-1, cmax=1, cmid=0, colorscale="RdBu_r", colorbar=dict(title="Cosine sim")),
        yaxis=dict(autorange="reversed"),
        title=_frame_title(title, sel[0]),
        **_layer_controls(sel),
    )
    return fig


def _select_pairs(S: np.ndarray, max_pairs: int | None) -> list[tuple[int, int]]:
    """Every pair (i < j) in order; above ``max_pairs``, the most and least similar on average."""
    n = S.shape[1]
    iu, ju = np.triu_indices(n, k=1)
    if max_pairs is None or len(iu) <= max_pairs:
        return list(zip(iu.tolist(), ju.tolist()))
    mean = S[:, iu, ju].mean(axis=0)
    order = np.argsort(-mean, kind="stable")
    top = order[: (max_pairs + 1) // 2]
    bottom = order[::-1][: max_pairs // 2]
    chosen = list(top) + [b for b in bottom if b not in set(top)]
    return [(int(iu[c]), int(ju[c])) for c in chosen]


def _pair_figure(
    s: Any,
    sel: list[int],
    S: np.ndarray,
    title: str,
    chosen: list[tuple[int, int]],
    layer_slider: bool,
) -> go.Figure:
    fig = go.Figure()
    show_legend = len(chosen) <= 30
    for k, (a, b) in enumerate(chosen):
        la, lb = s.labels[a], s.labels[b]
        fig.add_trace(
            go.Scatter(
                x=list(sel),
                y=[float(v) for v in S[:, a, b]],
                mode="lines+markers",
                name=f"{la} <> {lb}",
                showlegend=show_legend,
                marker=dict(size=5),
                line=dict(width=1.8, color=PALETTE[k % len(PALETTE)]),
                opacity=0.78,
                hovertemplate=f"{html.escape(la)}<br>{html.escape(lb)}<br>Layer %{{x}}<br>Centered cosine: %{{y:.4f}}<extra></extra>",
            )
        )
    fig.add_hline(y=0, line_width=1, line_dash="dot", line_color="#64748b")
    fig.update_layout(
        template=TEMPLATE,
        height=560,
        title=title,
        margin=dict(t=90, b=70),
        xaxis=dict(title="Layer", tickmode="array", tickvals=list(sel)),
        yaxis=dict(title="Centered cosine similarity", range=[-1, 1]),
        legend=dict(yanchor="top", y=0.99, xanchor="left", x=1.02),
    )
    if layer_slider:  # latentatlas's option: a marker per pair that a layer slider moves

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
        fig.update_layout(**_layer_controls(sel))
    return fig


def build_pair_similarity_figure(
    samples: Any,
    layers: Sequence[int] | None = None,
    title: str = "Centered Pair Similarity Across Layers",
    *,
    pairs: Sequence[tuple[int, int]] | None = None,
    max_pairs: int | None = None,
    layer_slider: bool = False,
    center: bool = True,
    progress: bool = False,
) -> go.Figure:
    """Centred cosine similarity of persona pairs across layers (one ``lines+markers`` trace per pair).

    As the original, every pair ``"A <> B"`` by default (legend up to 30 pairs). Options:
    ``pairs`` (index pairs into the personas), ``max_pairs`` (the ``max_pairs/2`` most and least
    similar pairs on average over layers — the figure stays small for many personas) and
    ``layer_slider=True`` (a marker per pair that a layer slider and play button move).
    """
    s = as_layered_samples(samples)
    sel = validate_layers(s.vectors, layers)
    n = s.vectors.shape[0]
    if n < 2:
        raise ValueError("At least two samples are required")
    S = _analysis.layered_similarity(s, sel, center=center, progress=progress)
    if pairs is None:
        chosen = _select_pairs(S, None if max_pairs is None else check_int(max_pairs, "max_pairs"))
    else:
        chosen = [(int(a), int(b)) for a, b in pairs]
        bad = [p for p in chosen if not (0 <= p[0] < n and 0 <= p[1] < n) or p[0] == p[1]]
        if bad:
            raise ValueError(f"pairs must be index pairs of distinct personas in [0, {n}); invalid: {bad}")
    return _pair_figure(s, sel, S, title, chosen, layer_slider)


def build_similarity_figures(
    samples: Any,
    layers: Sequence[int] | None = None,
    title: str = "Centered Cosine Similarity by Layer",
    pair_title: str = "Centered Pair Similarity Across Layers",
) -> tuple[go.Figure, go.Figure]:
    """The layered similarity heat map and the all-pairs figure from one similarity pass."""
    s = as_layered_samples(samples)
    sel = validate_layers(s.vectors, layers)
    if s.vectors.shape[0] < 2:
        raise ValueError("At least two samples are required")
    S = _analysis.layered_similarity(s, sel)
    return (
        _similarity_figure(s, sel, title, progress=False, S=S),
        _pair_figure(s, sel, S, pair_title, _select_pairs(S, None), False),
    )


def _dendrogram_traces(x: np.ndarray, names: list[str], linkage: str) -> tuple[list[go.Scatter], list[str], list[int]]:
    """One coloured line trace per merge (SciPy's colour threshold), the leaf order and tick positions."""
    from scipy.cluster import hierarchy

    kw = {"method": "ward"} if linkage == "ward" else {"method": linkage, "metric": "euclidean"}
    Z = hierarchy.linkage(np.asarray(x, dtype=np.float64), **kw)
    d = hierarchy.dendrogram(Z, no_plot=True, labels=names)
    colors = {f"C{i}": c for i, c in enumerate(PALETTE)}
    traces = [
        go.Scatter(
            x=[float(v) for v in ic],
            y=[float(v) for v in dc],
            mode="lines",
            line=dict(color=colors.get(c, c), width=1.5),
            hoverinfo="skip",
            showlegend=False,
        )
        for ic, dc, c in zip(d["icoord"], d["dcoord"], d["color_list"])
    ]
    return traces, list(d["ivl"]), list(range(5, 10 * len(d["ivl"]), 10))


def _dendrogram_input(s: Any, layer: int | None, center: bool, normalize: bool) -> np.ndarray:
    if layer is None:
        return np.asarray(_analysis.prepare_layer_mean_cluster_samples(s.vectors, center=center, normalize=normalize))
    return _analysis.samples_to_numpy(s.vectors[:, layer, :], center=center, normalize=normalize)


def plot_persona_dendrogram(
    samples: Any,
    layer: int | None = None,
    *,
    layers: Sequence[int] | None = None,
    layered: bool = False,
    linkage: str = "ward",
    center: bool = True,
    normalize: bool = True,
    title: str | None = None,
    labels: Sequence[str] | None = None,
) -> go.Figure:
    """Hierarchical clustering dendrogram of personas (SciPy linkage on centred + unit vectors).

    ``layer=None`` clusters the per-layer-prepared mean vector
    (:func:`~.analysis.prepare_layer_mean_cluster_samples`), else one layer's vectors.
    ``layered=True`` draws one dendrogram per layer of ``layers`` (default all) behind a layer
    slider and Play/Pause buttons, on one shared height axis. ``linkage`` is one of ward,
    average, complete, single; each merge is a line coloured by SciPy's cluster threshold.
    ``labels`` (latentatlas) overrides the persona labels.
    """
    if linkage not in LINKAGES:
        raise ValueError("linkage must be one of: ward, average, complete, single")
    s = as_layered_samples(samples)
    n = s.vectors.shape[0]
    if n < 2:
        raise ValueError("At least two samples are required")
    names = list(labels) if labels is not None else list(s.labels)
    if len(names) != n:
        raise ValueError(f"labels must have length {n}, got {len(names)}")
    y_title = "Ward distance" if linkage == "ward" else ("Unit-vector distance" if normalize else "Euclidean distance")
    base = title or f"{linkage.title()} dendrogram"
    width = max(800, 18 * n)
    if not layered:
        if layer is not None:
            (layer,) = validate_layers(s.vectors, [layer])
        traces, ivl, ticks = _dendrogram_traces(_dendrogram_input(s, layer, center, normalize), names, linkage)
        where = "mean across layers" if layer is None else f"layer {layer}"
        fig = go.Figure(traces)
        fig.update_layout(
            template=TEMPLATE,
            title=title or f"{base} - {where}",
            width=width,
            margin=dict(t=80, b=160),
            showlegend=False,
            xaxis=dict(tickmode="array", tickvals=ticks, ticktext=ivl, tickangle=-45, automargin=True),
            yaxis=dict(title=y_title, automargin=True),
        )
        return fig
    sel = validate_layers(s.vectors, layers)
    per_layer = {ly: _dendrogram_traces(_dendrogram_input(s, ly, center, normalize), names, linkage) for ly in sel}
    top = max((max(t.y) for tr, _, _ in per_layer.values() for t in tr), default=0.0)
    y_range = [0.0, top * 1.08 if top > 0 else 1.0]
    frames = []
    for ly, (traces, ivl, ticks) in per_layer.items():
        layout = dict(
            title=_frame_title(base, ly),
            xaxis=dict(tickmode="array", tickvals=ticks, ticktext=ivl),
            yaxis=dict(title=y_title, range=y_range),
        )
        frames.append(go.Frame(name=_frame_name(ly), data=traces, layout=layout))
    first = per_layer[sel[0]]
    fig = go.Figure(data=frames[0].data, frames=frames)
    fig.update_layout(
        template=TEMPLATE,
        title=_frame_title(base, sel[0]),
        width=width,
        height=760,
        margin=dict(t=140, b=260),
        showlegend=False,
        xaxis=dict(tickmode="array", tickvals=first[2], ticktext=first[1], tickangle=-45, automargin=True),
        yaxis=dict(title=y_title, range=y_range, automargin=True),
        **_layer_controls(sel, pad_t=115),
    )
    return fig


def _finish(fig: go.Figure, filename: str | None, show: bool) -> go.Figure:
    """The original's ``filename=`` / ``show=`` epilogue."""
    if filename is not None:
        print(f"Plot saved to {save_plot_html(fig, filename)}")
    if show:  # pragma: no cover - interactive
        fig.show()
    return fig


def save_plot_html(fig: go.Figure, filename: str) -> Path:
    """Write ``fig`` to ``<artifacts>/plots/<filename>.html`` (atomically) and return the path.

    ``<artifacts>`` is ``$ARTIFACTS_DIR`` as in the original, else ``./artifacts``. ``filename``
    is one safe file-name stem (no directories).
    """
    from ..report import write_figure_html

    root = Path(os.environ.get("ARTIFACTS_DIR") or "artifacts").expanduser() / "plots"
    return write_figure_html(fig, root / f"{safe_name(filename, 'filename')}.html")


def plot_scree(
    variance_by_condition: Mapping[str, Sequence[float] | np.ndarray],
    title: str = "PCA Explained Variance",
    n_components: int | None = 20,
    cumulative: bool = True,
    filename: str | None = None,
    show: bool = False,
    *,
    max_components: int | None = None,
) -> go.Figure:
    """PCA explained-variance curves, one line per condition (e.g. ``{"layer 0": ratios, ...}``).

    The first ``n_components`` ratios (``max_components`` is latentatlas's old name for it);
    ``cumulative=True`` adds a dashed cumulative curve per condition. ``filename`` also saves it
    with :func:`save_plot_html`.
    """
    if not variance_by_condition:
        raise ValueError("variance_by_condition must hold at least one curve")
    k = max_components if max_components is not None else n_components
    colors = _color_map([str(c) for c in variance_by_condition])
    fig = go.Figure()
    for name, ratios in variance_by_condition.items():
        r = np.asarray(to_numpy(ratios), dtype=np.float64).ravel()
        if r.size == 0 or not np.isfinite(r).all():
            raise ValueError(f"explained variance of {name!r} must be a non-empty finite array")
        r = r[:k] if k is not None else r
        x = list(range(1, r.size + 1))
        color = colors[str(name)]
        fig.add_trace(
            go.Scatter(
                x=x, y=r.tolist(), mode="lines+markers", name=str(name), marker=dict(size=5), line=dict(color=color)
            )
        )
        if cumulative:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=np.cumsum(r).tolist(),
                    mode="lines",
                    name=f"{name} cumulative",
                    line=dict(color=color, dash="dash"),
                )
            )
    fig.update_layout(
        template=TEMPLATE,
        height=480,
        title=title,
        hovermode="x",
        xaxis=dict(title="Principal component", dtick=1 if (k or 99) <= 30 else None),
        yaxis=dict(title="Explained variance ratio", tickformat=".0%"),
        legend=dict(yanchor="top", y=0.99, xanchor="left", x=1.02),
    )
    return _finish(fig, filename, show)


def _row_cosines(short: Any, long: Any, name: str) -> list[float]:
    """Cosine of each row (layer) of two ``(L, hidden)`` arrays (eps 1e-8 on each norm, as torch's)."""
    a = np.asarray(to_numpy(short), dtype=np.float64)
    b = np.asarray(to_numpy(long), dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"trace {name!r}: short and long must both have shape (num_layers, hidden_size)")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"trace {name!r}: short and long must be finite (a NaN or infinity has no cosine)")
    # scale-free: norms without overflow, each row divided by its norm before the product
    na = np.maximum(row_norms(a), 1e-8)
    nb = np.maximum(row_norms(b), 1e-8)
    return ((a / na[:, None]) * (b / nb[:, None])).sum(axis=1).tolist()


def plot_layer_similarity(
    traces: Sequence[tuple[str, Any, Any]] | Mapping[str, Sequence[float]],
    title: str = "Layer-wise Activation Similarity",
    filename: str | None = None,
    show: bool = False,
    *,
    layers: Sequence[int] | None = None,
    y_label: str = "Cosine similarity",
) -> go.Figure:
    """Cosine similarity across layers, one line per trace.

    ``traces`` is the original's list of ``(label, short, long)`` — two ``(num_layers, hidden)``
    arrays or tensors whose per-layer cosine is drawn — or (latentatlas) a mapping
    ``{label: per-layer values}`` already computed (e.g. :func:`~.analysis.layer_variant_similarity`).
    """
    if not traces:
        raise ValueError("traces must hold at least one curve")
    items = (
        [(str(k), np.asarray(v, dtype=np.float64).ravel().tolist()) for k, v in traces.items()]
        if isinstance(traces, Mapping)
        else [(str(lab), _row_cosines(a, b, str(lab))) for lab, a, b in traces]
    )
    fig = go.Figure()
    for name, y in items:
        x = list(layers) if layers is not None else list(range(len(y)))
        if len(x) != len(y):
            raise ValueError(f"trace {name!r} has {len(y)} values but {len(x)} layers")
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines+markers",
                marker=dict(size=5),
                name=name,
                hovertemplate="Layer %{x}<br>Cosine sim: %{y:.4f}<extra></extra>",
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        height=460,
        title=title,
        hovermode="x",
        xaxis=dict(title="Layer"),
        yaxis=dict(title=y_label),
        legend=dict(yanchor="top", y=0.99, xanchor="left", x=1.02),
    )
    return _finish(fig, filename, show)


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
