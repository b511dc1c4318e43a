"""The kNN graph of the minima methods: exact (Rust core) and approximate (faiss HNSW) with its sampled recall."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas.datasets import three_gaussians
from latentatlas.minima import compare, knn_graph
from latentatlas.minima.graph import sampled_recall

pytest.importorskip("faiss")


def _brute(X, k):
    D = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(D, np.inf)
    return np.argsort(D, axis=1, kind="stable")[:, :k]


def test_exact_graph_is_brute_force_and_symmetric_csr_is_the_union():
    X = np.random.default_rng(0).standard_normal((300, 8))
    g = knn_graph(X, 7, method="exact")
    assert g.method == "exact" and g.recall == 1.0
    np.testing.assert_array_equal(g.idx, _brute(X, 7))
    indptr, indices = g.symmetric_csr()
    edges = {(i, int(j)) for i in range(300) for j in indices[indptr[i] : indptr[i + 1]]}
    want = {(i, int(j)) for i in range(300) for j in g.idx[i]}
    assert edges == want | {(j, i) for i, j in want}


def test_approx_graph_recall_is_measured_and_high():
    X, _, _ = three_gaussians(np.random.default_rng(1), n_per_cluster=700, dim=32)
    g = knn_graph(X, 15, method="approx", n_recall=300)
    assert g.method == "approx" and g.n_recall == 300
    exact = knn_graph(X, 15, method="exact").idx
    true_recall = np.mean([np.intersect1d(a, b).size / 15 for a, b in zip(g.idx, exact)])
    assert true_recall > 0.95
    assert abs(g.recall - sampled_recall(X, exact, n_recall=300)) <= 1.0 - true_recall + 0.05
    assert sampled_recall(X, exact, n_recall=300) == 1.0
    # distances are float64 of the kept pairs, ascending, self never included
    assert (np.diff(g.d2, axis=1) >= 0).all() and not (g.idx == np.arange(len(X))[:, None]).any()
    np.testing.assert_allclose(g.d2[:, 0], ((X - X[g.idx[:, 0]]) ** 2).sum(1), rtol=1e-12)


def test_compare_records_the_graph_and_tomato():
    X, y, _ = three_gaussians(np.random.default_rng(2), n_per_cluster=300, dim=16)
    res = compare(X, y, knn="approx", progress=False, n_seeds=2, basin_kwargs={"niter": 5})
    assert res.info["knn_method"] == "approx" and 0.9 < res.info["knn_recall"] <= 1.0
    assert [r["method"] for r in res.rows][-2:] == ["ToMATo", "ToMATo + Spectral"]
    assert res.tomato is not None and res.info["tomato_clusters"] == res.tomato.n_clusters
    # the minima are the points near the peaks of every kept mode
    assert set(res.tomato.labels[res.masks["ToMATo"]]) == set(range(res.tomato.n_clusters))
    with pytest.raises(ValueError, match="knn"):
        compare(X, y, knn="fast", progress=False)
    with pytest.raises(ValueError, match="n_neighbors"):
        compare(X[:20], y[:20], n_neighbors=20, progress=False)


def test_compare_on_duplicates_and_identical_rows():
    X, y, _ = three_gaussians(np.random.default_rng(3), n_per_cluster=20, dim=16)
    Xd, yd = np.repeat(X, 3, axis=0), np.repeat(y, 3)  # every point three times: zero distances
    res = compare(Xd, yd, knn="exact", n_neighbors=5, progress=False, n_seeds=2, basin_kwargs={"niter": 3})
    assert all(np.isfinite(s).all() for s in res.scores.values())
    with pytest.raises(ValueError, match="identical|degenerate|line"):
        compare(np.ones((30, 4)), k=2, n_neighbors=5, progress=False)
