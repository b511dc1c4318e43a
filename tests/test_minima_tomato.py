"""ToMATo (persistence-based minima) and the kNN graph: checked against gudhi's Tomato on the same graph
and density, and on the bad inputs the issue lists (duplicates, identical rows, N < k, disconnected graphs)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from latentatlas.datasets import digits, three_gaussians
from latentatlas.minima import knn_graph, knn_log_density, tomato, tomato_score
from latentatlas.minima.diffusion import diffusion_map, score_from_coords

gudhi_tomato = pytest.importorskip("gudhi.clustering.tomato")


def _gudhi(density, indptr, indices, **kw):
    nbrs = [indices[indptr[i] : indptr[i + 1]].tolist() for i in range(len(density))]
    return gudhi_tomato.Tomato(graph_type="manual", density_type="manual", **kw).fit(nbrs, weights=density)


def _random_graph(rng, n, deg):
    """A random symmetric graph: many vertices where three or more clusters meet (the bookkeeping's hard case)."""
    nbr = rng.integers(0, n, (n, deg))
    A = sp.coo_matrix((np.ones(nbr.size), (np.repeat(np.arange(n), deg), nbr.ravel())), shape=(n, n)).tocsr()
    A = (A + A.T).tocsr()
    A.sort_indices()
    return A.indptr.astype(np.int64), A.indices.astype(np.int64)


def test_forest_matches_gudhi_on_random_graphs_at_every_cut():
    rng = np.random.default_rng(0)
    for n, deg in ((300, 2), (500, 3)):
        indptr, indices = _random_graph(rng, n, deg)
        f = rng.standard_normal(n)
        ours = tomato(f, indptr, indices, n_clusters=1)
        g = _gudhi(f, indptr, indices)
        np.testing.assert_array_equal(ours.leaf_labels, g.leaf_labels_)
        np.testing.assert_array_equal(ours.diagram, g.diagram_)
        n_leaves = ours.peaks.size
        assert n_leaves > 10 and len(ours.component_peaks) >= 1
        for k in range(1, n_leaves + 1):
            g.n_clusters_ = k
            np.testing.assert_array_equal(tomato(f, indptr, indices, n_clusters=k).labels, g.labels_, err_msg=f"k={k}")


@pytest.mark.parametrize("data", ["three_gaussians", "digits"])
def test_identical_clusters_to_gudhi_on_the_knn_graph(data):
    if data == "digits":
        X, _ = digits()
    else:
        X, _, _ = three_gaussians(np.random.default_rng(0), n_per_cluster=500, dim=32)
    g = knn_graph(X, 10, method="exact")
    indptr, indices = g.symmetric_csr()
    f = knn_log_density(g.d2)
    for kw in ({"n_clusters": 3}, {"n_clusters": 10}, {"merge_threshold": 0.05}):
        ours = tomato(f, indptr, indices, **kw)
        ref = _gudhi(f, indptr, indices, **kw)
        np.testing.assert_array_equal(ours.labels, ref.labels_, err_msg=str(kw))
        assert ours.n_clusters == ref.n_clusters_


def test_three_modes_found_and_score_low_at_the_peaks():
    X, y, _ = three_gaussians(np.random.default_rng(1), n_per_cluster=400, dim=32)
    g = knn_graph(X, 30, method="exact")
    res = tomato(knn_log_density(g.d2), *g.symmetric_csr())
    assert res.n_clusters == 3  # the diagram's widest gap separates the three modes from noise
    s = tomato_score(res)
    assert np.isfinite(s).all() and s.min() == 0.0 and s.max() == pytest.approx(1.0)
    top = [np.flatnonzero(res.labels == c)[np.argmax(res.density[res.labels == c])] for c in range(3)]
    assert np.all(s[top] == 0.0)  # each kept mode's peak scores 0
    # each cluster is (almost) one true cluster
    for c in range(3):
        _, counts = np.unique(y[res.labels == c], return_counts=True)
        assert counts.max() / counts.sum() > 0.95


def test_duplicates_identical_rows_and_small_n():
    rng = np.random.default_rng(2)
    X = np.repeat(rng.standard_normal((40, 5)), 3, axis=0)  # every row three times: zero distances
    g = knn_graph(X, 6, method="exact")
    f = knn_log_density(g.d2)
    assert np.isfinite(f).all()
    res = tomato(f, *g.symmetric_csr())
    assert np.isfinite(tomato_score(res)).all()
    with pytest.raises(ValueError, match="identical"):
        knn_log_density(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="k"):
        knn_graph(X[:5], 5)
    with pytest.raises(ValueError, match="n_clusters or merge_threshold"):
        tomato(f, *g.symmetric_csr(), n_clusters=2, merge_threshold=0.1)


def test_disconnected_graph_scored_per_component():
    rng = np.random.default_rng(3)
    X = np.vstack(
        [rng.standard_normal((60, 4)), 1e3 + rng.standard_normal((50, 4)), -1e4 + rng.standard_normal((8, 4))]
    )
    g = knn_graph(X, 5, method="exact")
    coords, comp, path = diffusion_map(X, method="sparse", graph=g)
    assert path == "sparse" and comp.max() + 1 == 3 and np.isfinite(coords).all()
    s = score_from_coords(coords, comp)
    assert np.isfinite(s).all()
    for c in (0, 1):  # each big component has its own centre (0) and rim (1)
        assert s[comp == c].min() == 0.0 and s[comp == c].max() == pytest.approx(1.0)
    res = tomato(knn_log_density(g.d2), *g.symmetric_csr())
    assert res.component_peaks.size == 3 and res.n_clusters >= 3
