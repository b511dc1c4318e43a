"""Retrieval: dense and latent search against NumPy / scipy.sparse; metrics against pytrec_eval."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from latentatlas.metrics import mrr_at_k, precision_at_k, recall_at_k
from latentatlas.sae import TopKSAE, dense_search, evaluate, latent_search, retrieval_report
from latentatlas.sae.retrieval import to_run


def _unit(n, d, seed):
    X = np.random.default_rng(seed).standard_normal((n, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_dense_search_matches_numpy():
    Q, D = _unit(30, 16, 0), _unit(500, 16, 1)
    s, i = dense_search(Q, D, 10)
    S = Q.astype(np.float64) @ D.T.astype(np.float64)
    ref = np.argsort(-S, axis=1, kind="stable")[:, :10]
    assert (i == ref).mean() > 0.99
    np.testing.assert_allclose(s, np.take_along_axis(S, i, 1), atol=1e-5)
    with pytest.raises(ValueError, match="1 <= k <= 500"):
        dense_search(Q, D, 501)
    with pytest.raises(ValueError, match="same number of columns"):
        dense_search(Q, D[:, :5], 3)


def test_latent_search_matches_scipy_sparse():
    sae = TopKSAE(16, 256, 6, seed=0)
    Q, D = _unit(40, 16, 2), _unit(700, 16, 3)
    qc, dc = sae.encode(Q), sae.encode(D)
    s, i = latent_search(qc, dc, 25, n_latents=256)

    def csr(c):
        v, ix = c
        rows = np.repeat(np.arange(v.shape[0]), v.shape[1])
        return sp.csr_matrix((v.ravel().astype(np.float64), (rows, ix.ravel())), shape=(v.shape[0], 256))

    S = (csr(qc) @ csr(dc).T).toarray()
    ref_s = -np.sort(-S, axis=1)[:, :25]
    np.testing.assert_allclose(s, ref_s, atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(S, i, 1), s, atol=1e-5)
    # default n_latents, threads give identical bits, f64 codes
    s2, i2 = latent_search(qc, dc, 25, threads=1)
    assert np.array_equal(i, i2)
    s3, i3 = latent_search(
        (qc[0].astype(np.float64), qc[1]), (dc[0].astype(np.float64), dc[1]), 25, n_latents=256, threads=2
    )
    assert (i3 == i).mean() > 0.99


def test_latent_search_zero_scores_and_errors():
    # a query sharing no latent with any document: all scores 0, ids 0..k-1
    qc = (np.array([[1.0, 0.5]]), np.array([[7, 8]]))
    dc = (np.array([[1.0, 1.0], [2.0, 0.0], [0.5, 0.5]]), np.array([[0, 1], [2, 7], [1, 3]]))
    s, i = latent_search(qc, dc, 3, n_latents=10)
    assert list(i[0]) == [0, 1, 2] and not s.any()  # all tie at 0 (doc 1 has latent 7 at value 0): lower ids first
    qc2 = (np.array([[1.0]]), np.array([[1]]))
    s, i = latent_search(qc2, dc, 3, n_latents=10)
    assert list(i[0]) == [0, 2, 1] and list(s[0]) == [1.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="indices must lie"):
        latent_search(qc, dc, 2, n_latents=5)
    with pytest.raises(ValueError, match="1 <= k <= 3"):
        latent_search(qc, dc, 4)
    with pytest.raises(TypeError, match="pair"):
        latent_search(qc[0], dc, 2)
    with pytest.raises(ValueError, match="NaN"):
        latent_search((np.array([[np.nan, 1.0]]), qc[1]), dc, 2, n_latents=10)


def _random_run(seed):
    rng = np.random.default_rng(seed)
    run = {f"q{i}": {f"d{j}": float(rng.integers(0, 6)) for j in rng.choice(60, 30, replace=False)} for i in range(25)}
    qrels = {f"q{i}": {f"d{j}": int(rng.integers(0, 3)) for j in rng.choice(60, 9, replace=False)} for i in range(25)}
    qrels["q_extra"] = {"d1": 1}  # not in the run: ignored, as trec_eval does
    return run, qrels


def _cut(run, k):
    """Top k per query in trec_eval order (score desc, docno desc), written independently."""
    out = {}
    for q, docs in run.items():
        ranked = sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:k]
        out[q] = dict(ranked)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_match_pytrec_eval(seed):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    run, qrels = _random_run(seed)
    res = pytrec_eval.RelevanceEvaluator(qrels, {"P_10", "recall_10"}).evaluate(run)
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(_cut(run, 10))
    p = precision_at_k(run, qrels, 10, per_query=True)
    r = recall_at_k(run, qrels, 10, per_query=True)
    m = mrr_at_k(run, qrels, 10, per_query=True)
    assert set(p) == set(res)
    for q in res:
        assert p[q] == pytest.approx(res[q]["P_10"])
        assert r[q] == pytest.approx(res[q]["recall_10"])
        assert m[q] == pytest.approx(rr[q]["recip_rank"])
    ev = evaluate(run, qrels, 10)
    assert ev["p@10"] == pytest.approx(np.mean([res[q]["P_10"] for q in res]))
    assert ev["mrr@10"] == pytest.approx(np.mean([rr[q]["recip_rank"] for q in rr]))


def test_metrics_by_hand_and_errors():
    run = {"a": {"x": 3.0, "y": 2.0, "z": 1.0}}
    qrels = {"a": {"z": 1, "w": 1, "y": 0}}
    assert mrr_at_k(run, qrels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(run, qrels, 2) == 0.0
    assert precision_at_k(run, qrels, 10) == pytest.approx(0.1)
    assert recall_at_k(run, qrels, 10) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="share no query id"):
        evaluate({0: {"x": 1.0}}, {"0": {"x": 1}})
    with pytest.raises(ValueError, match="k must be a positive"):
        mrr_at_k(run, qrels, 0)
    with pytest.raises(TypeError, match="dicts"):
        evaluate([("a", "x", 1.0)], qrels)


def test_retrieval_report_layout_and_values():
    Q, D = _unit(20, 16, 5), _unit(300, 16, 6)
    qrels = {q: {int(d): 1 for d in np.random.default_rng(q).choice(300, 5, replace=False)} for q in range(20)}
    s1 = TopKSAE(16, 128, 4, seed=0).fit(D, epochs=1, progress=False)
    s2 = TopKSAE(16, 128, 8, seed=0).fit(D, epochs=1, progress=False)
    rep = retrieval_report([s1, s2], Q, D, qrels)
    assert [r["method"] for r in rep.rows] == [
        "Original",
        "Sparse Latent (K=4)",
        "Sparse Latent (K=8)",
        "Reconstructed (K=4)",
        "Reconstructed (K=8)",
    ]
    s, i = dense_search(Q, D, 10)
    assert rep.rows[0]["mrr@10"] == pytest.approx(evaluate(to_run(s, i), qrels)["mrr@10"])
    s, i = dense_search(s2.reconstruct(Q), s2.reconstruct(D), 10)
    assert rep.rows[4]["p@10"] == pytest.approx(evaluate(to_run(s, i), qrels)["p@10"])
    rows = sorted({d for v in qrels.values() for d in v})
    err = np.concatenate([s1.reconstruct(Q) - Q, s1.reconstruct(D)[rows] - D[rows]])
    assert rep.rows[3]["mse"] == pytest.approx((err.astype(np.float64) ** 2).mean(), rel=1e-5)
    md = rep.to_markdown()
    assert "Sparse Latent (K=8)" in md and "MRR@10" in md and "<table>" in rep.to_html()
    with pytest.raises(ValueError, match="unknown document id"):
        retrieval_report(s1, Q, D, {0: {999: 1}})
    with pytest.raises(ValueError, match="unknown query id"):
        retrieval_report(s1, Q, D, {"zz": {1: 1}})
