"""Layered persona figures: frame contents against direct computations, reuse, colouring, messages."""

from __future__ import annotations

from unittest import mock

import numpy as np
import plotly.graph_objects as go
import pytest
from scipy.cluster import hierarchy
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.neighbors import NearestNeighbors

from latentatlas.personas import analysis as A
from latentatlas.personas import (
    attribute_color_kwargs,
    build_layered_figure,
    build_pair_similarity_figure,
    plot_layer_similarity,
    plot_persona_dendrogram,
    plot_scree,
    plot_spectral_energy,
    prepare_kmeans_groups,
    prepare_layered_projection_data,
    synthetic_persona_dataset,
    synthetic_persona_vectors,
)
from latentatlas.personas.analysis import LayeredSamples

N, LAYERS, HID = 18, 5, 32


@pytest.fixture(scope="module")
def table():
    return synthetic_persona_dataset(N, seed=2)


@pytest.fixture(scope="module")
def samples(table):
    v = synthetic_persona_vectors(table, num_layers=LAYERS, hidden_size=HID, seed=2)
    return LayeredSamples(v, table.names(), [f"h{i}" for i in range(N)], table.persona_ids)


def prep(x):
    x = np.asarray(x, np.float64) - np.asarray(x, np.float64).mean(0)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def xy(trace):
    return np.column_stack([np.asarray(trace.x, float), np.asarray(trace.y, float)])


def points(frame, hover, axes="xy"):
    """Every persona's coordinates in ``hover`` order, gathered from the frame's marker traces."""
    at = {}
    for t in frame.data:
        if t.mode == "markers":
            for i, h in enumerate(t.text):
                at[h] = [float(getattr(t, a)[i]) for a in axes]
    return np.array([at[h] for h in hover])


def test_pca_figure_frames_and_slider(samples):
    fig = build_layered_figure(samples, "pca", layers=[0, 2, 4])
    assert isinstance(fig, go.Figure)
    assert [f.name for f in fig.frames] == ["0", "2", "4"]
    assert len(fig.layout.sliders[0].steps) == 3
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["Play", "Pause"]
    assert fig.layout.title.text == "PCA by Layer - Layer 0"
    assert len(fig.frames[0].data) == len(set(samples.labels))  # one legend trace per persona
    assert {t.type for t in fig.frames[0].data} == {"scattergl"}
    for frame, layer in zip(fig.frames, [0, 2, 4]):
        ref = PCA(2, svd_solver="full").fit_transform(prep(samples.vectors[:, layer]))
        np.testing.assert_allclose(points(frame, samples.hover_text), ref, atol=1e-4)
    # a plain array works the same
    fig2 = build_layered_figure(samples.vectors, "pca", layers=[0, 2, 4], webgl=False)
    assert {t.type for t in fig2.frames[0].data} == {"scatter"}
    plain = [f"Persona: persona {i}<br>ID: {i}" for i in range(N)]
    np.testing.assert_allclose(points(fig2.frames[1], plain), points(fig.frames[1], samples.hover_text))


def test_similarity_figure(samples):
    fig = build_layered_figure(samples.vectors, "similarity")
    assert len(fig.frames) == LAYERS and len(fig.layout.sliders[0].steps) == LAYERS
    for layer in range(LAYERS):
        np.testing.assert_allclose(
            np.asarray(fig.frames[layer].data[0].z), cosine_similarity(prep(samples.vectors[:, layer])), atol=2e-6
        )


def test_projection_data_reuse_skips_recomputation(samples, table):
    with mock.patch.object(A, "layered_pca", wraps=A.layered_pca) as spy:
        pdata = prepare_layered_projection_data(samples, "pca")
        assert spy.call_count == 1
        a = build_layered_figure(
            samples, "pca", projection_data=pdata, **attribute_color_kwargs(table, "age", samples.persona_ids)
        )
        b = build_layered_figure(
            samples, "pca", projection_data=pdata, **attribute_color_kwargs(table, "region", samples.persona_ids)
        )
        assert spy.call_count == 1  # no recomputation for either recolouring
    pdata_iso = prepare_layered_projection_data(samples, "isomap", layers=[1, 3], graph_overlay=True)
    with mock.patch.object(A, "project_isomap", side_effect=AssertionError("recomputed")):
        fig = build_layered_figure(samples, "isomap", layers=[1, 3], projection_data=pdata_iso, graph_overlay=True)
    assert len(fig.frames) == 2
    np.testing.assert_allclose(xy(a.frames[0].data[0]), pdata.layer_coords[0])  # numeric colours: one trace
    pts_b = np.vstack([xy(t) for t in b.frames[0].data if len(t.x)])
    assert sorted(map(tuple, pts_b.round(6))) == sorted(map(tuple, pdata.layer_coords[0].round(6)))
    with pytest.raises(ValueError, match="projection_data layers must match"):
        build_layered_figure(samples, "pca", layers=[0], projection_data=pdata)
    with pytest.raises(ValueError, match="projection_data kind must match"):
        build_layered_figure(
            samples,
            "isomap",
            layers=[1, 3],
            projection_data=prepare_layered_projection_data(samples, "pca", layers=[1, 3]),
        )


def test_attribute_colouring(samples, table):
    ids = samples.persona_ids
    num = attribute_color_kwargs(table, "age", ids)
    assert num["color_values"] == [float(v) for v in table.attribute_values("age", ids)]
    ordv = attribute_color_kwargs(table, "education", ids)
    order = ["primary", "secondary", "bachelor", "master", "doctorate"]
    assert ordv["color_values"] == [float(order.index(v)) for v in table.attribute_values("education", ids)]
    assert ordv["color_ticktext"] == order
    cat = attribute_color_kwargs(table, "occupation", ids, max_categories=3)
    vals = table.attribute_values("occupation", ids)
    top = {v for v, _ in sorted(((v, vals.count(v)) for v in set(vals)), key=lambda t: (-t[1], t[0]))[:3]}
    assert cat["groups"] == [v if v in top else "Other" for v in vals]
    fig = build_layered_figure(samples, "pca", layers=[4], **num)
    marker = fig.frames[0].data[0].marker
    np.testing.assert_allclose(np.asarray(marker.color, float), num["color_values"])
    fig = build_layered_figure(samples, "pca", layers=[4], **cat)
    names = [t.name for t in fig.frames[0].data]
    assert names == sorted(set(cat["groups"]), key=str.casefold)
    assert sum(len(t.x) for t in fig.frames[0].data) == N
    with pytest.raises(KeyError, match="unknown attribute 'shoe'"):
        attribute_color_kwargs(table, "shoe", ids)


def test_kmeans_groups(samples):
    g = prepare_kmeans_groups(samples, n_clusters=3)
    x = np.mean([prep(samples.vectors[:, lay]) for lay in range(LAYERS)], axis=0).astype(np.float32)
    ref = KMeans(3, n_init="auto", random_state=0).fit_predict(x)
    assert g == [f"Cluster {i}" for i in ref]
    first = prepare_kmeans_groups(samples, layers=[2, 3], n_clusters=2, cluster_mode="first_layer")
    ref = KMeans(2, n_init="auto", random_state=0).fit_predict(prep(samples.vectors[:, 2]).astype(np.float32))
    assert first == [f"Cluster {i}" for i in ref]
    per = prepare_kmeans_groups(samples, layers=[1, 4], n_clusters=2, cluster_mode="per_layer")
    assert set(per) == {1, 4}
    fig = build_layered_figure(samples, "pca", n_clusters=3, cluster_mode="per_layer", layers=[1, 4])
    assert len(fig.frames[0].data) == len(fig.frames[1].data)  # same trace count in every frame


def test_graph_overlay_edges(samples):
    pdata = prepare_layered_projection_data(samples, "pca", layers=[3], graph_overlay=True, graph_n_neighbors=4)
    nn = NearestNeighbors(n_neighbors=5).fit(prep(samples.vectors[:, 3]))
    idx = nn.kneighbors(return_distance=False)[:, :4]
    expect = sorted({tuple(sorted((i, int(j)))) for i, row in enumerate(idx) for j in row})
    assert pdata.graph_edges[3] == expect
    fig = build_layered_figure(
        samples, "pca", layers=[3], graph_overlay=True, graph_n_neighbors=4, projection_data=pdata
    )
    assert fig.frames[0].data[0].mode == "lines" and len(fig.frames[0].data[0].x) == 3 * len(expect)


def test_3d_and_umap(samples):
    fig = build_layered_figure(samples, "pca", layers=[0, 1], n_components=3)
    assert isinstance(fig.frames[0].data[0], go.Scatter3d)
    ref = PCA(3, svd_solver="full").fit_transform(prep(samples.vectors[:, 1]))
    np.testing.assert_allclose(points(fig.frames[1], samples.hover_text, "xyz"), ref, atol=1e-4)
    assert fig.layout.title.text == "PCA (3D) by Layer - Layer 0"


def test_pair_similarity_figure(samples):
    fig = build_pair_similarity_figure(samples, layers=[0, 2, 4], pairs=[(0, 1), (2, 5)], layer_slider=True)
    assert len(fig.layout.sliders[0].steps) == 3
    for t, (a, b) in zip(fig.data[:2], [(0, 1), (2, 5)]):
        expect = [cosine_similarity(prep(samples.vectors[:, lay]))[a, b] for lay in [0, 2, 4]]
        np.testing.assert_allclose(t.y, expect, atol=2e-6)
    # the original's default: every pair, no frames
    every = build_pair_similarity_figure(samples, layers=[0, 1])
    assert len(every.data) == N * (N - 1) // 2 and not every.frames
    assert every.layout.title.text == "Centered Pair Similarity Across Layers"
    auto = build_pair_similarity_figure(samples, max_pairs=4, layer_slider=True)
    assert len(auto.data) == 5  # 4 pairs + the moving marker
    S = np.mean([cosine_similarity(prep(samples.vectors[:, lay])) for lay in range(LAYERS)], axis=0)
    iu = np.triu_indices(N, 1)
    best = np.argmax(S[iu])
    assert auto.data[0].name == f"{samples.labels[iu[0][best]]} <> {samples.labels[iu[1][best]]}"
    with pytest.raises(ValueError, match="pairs must be index pairs"):
        build_pair_similarity_figure(samples, pairs=[(0, 0)])


def test_dendrogram_matches_scipy(samples):
    for linkage in ("ward", "average", "complete", "single"):
        fig = plot_persona_dendrogram(samples, linkage=linkage)
        x = np.mean([prep(samples.vectors[:, lay]) for lay in range(LAYERS)], axis=0)
        ref = hierarchy.dendrogram(hierarchy.linkage(x, method=linkage), no_plot=True, labels=samples.labels)
        assert list(fig.layout.xaxis.ticktext) == ref["ivl"]
    fig = plot_persona_dendrogram(samples.vectors, 2, linkage="average")
    ref = hierarchy.dendrogram(hierarchy.linkage(prep(samples.vectors[:, 2]), "average"), no_plot=True)
    top = max(max(t.y) for t in fig.data)
    assert top == pytest.approx(max(max(d) for d in ref["dcoord"]), rel=1e-5)
    assert len(fig.data) == N - 1  # one coloured trace per merge
    with pytest.raises(ValueError, match="^linkage must be one of: ward, average, complete, single$"):
        plot_persona_dendrogram(samples, linkage="centroid")


def test_scree_layer_similarity_spectral(samples):
    r0 = A.pca_explained_variance(samples.vectors[:, 0])
    fig = plot_scree({"layer 0": r0}, max_components=5)
    np.testing.assert_allclose(
        fig.data[0].y, PCA(svd_solver="full").fit(prep(samples.vectors[:, 0])).explained_variance_ratio_[:5], atol=1e-6
    )
    fig = plot_scree({"layer 0": r0}, n_components=None)  # cumulative by default, a dashed second trace
    assert fig.data[1].y[-1] == pytest.approx(1.0) and fig.data[1].line.dash == "dash"
    assert len(plot_scree({"layer 0": r0}, cumulative=False).data) == 1
    fig = plot_layer_similarity({"a vs b": [0.1, 0.5, 0.9]})
    assert list(fig.data[0].x) == [0, 1, 2]
    E = A.persona_spectral_energy(samples, [0, 4], k=4)
    fig = plot_spectral_energy(E, [0, 4], samples.labels)
    np.testing.assert_allclose(np.asarray(fig.data[0].customdata), E.T)
    with pytest.raises(ValueError, match="energy must have shape"):
        plot_spectral_energy(E, [0], samples.labels)


def test_figure_validation_messages(samples):
    with pytest.raises(ValueError, match="^n_components must be 2 or 3$"):
        build_layered_figure(samples, "pca", n_components=4)
    with pytest.raises(ValueError, match="^n_components must be 2 or 3$"):
        prepare_layered_projection_data(samples, "isomap", n_components=1)
    with pytest.raises(ValueError, match="^n_clusters, groups, and color_values are mutually exclusive$"):
        build_layered_figure(samples, "pca", n_clusters=2, groups=["a"] * N)
    with pytest.raises(ValueError, match="^n_clusters, groups, and color_values are mutually exclusive$"):
        build_layered_figure(samples, "pca", groups=["a"] * N, color_values=[1.0] * N)
    with pytest.raises(ValueError, match=r"^Invalid layer\(s\) for tensor with 5 layers: \[5\]$"):
        build_layered_figure(samples, "similarity", layers=[0, 5])
    with pytest.raises(ValueError, match="^cluster_mode must be one of: mean_across_layers, first_layer, per_layer$"):
        build_layered_figure(samples, "pca", n_clusters=2, cluster_mode="each")
    with pytest.raises(ValueError, match="^cluster_mode must be one of: mean_across_layers, first_layer, per_layer$"):
        prepare_kmeans_groups(samples, n_clusters=2, cluster_mode="each")
    with pytest.raises(ValueError, match="kind must be one of: pca, umap, isomap, similarity"):
        build_layered_figure(samples, "tsne")
    with pytest.raises(ValueError, match=f"groups must have length {N} for every layer"):
        build_layered_figure(samples, "pca", groups=["a", "b"])
    with pytest.raises(ValueError, match=r"color_values is missing layer\(s\): \[1\]"):
        build_layered_figure(samples, "pca", layers=[0, 1], color_values={0: [1.0] * N})
    with pytest.raises(ValueError, match="not supported for kind='similarity'"):
        build_layered_figure(samples, "similarity", n_clusters=2)
    with pytest.raises(ValueError, match=r"samples must have shape \(n_personas, num_layers, hidden_size\)"):
        build_layered_figure(samples.vectors[:, 0], "pca")
