"""Interpretation (top documents, tf-idf keywords, frequency regions) and control (amplify, steer)."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas.sae import TopKSAE, dense_search
from latentatlas.sae.control import amplification_grid, amplify, latent_counts, pseudo_relevance_feedback, steer
from latentatlas.sae.interpret import LatentExplainer, explain_latent, frequency_regions
from latentatlas.sae.plots import amplification_figure, frequency_figure, steering_figure

TOPICS = {
    "space": ["rocket launch orbit", "nasa astronaut mission", "satellite orbit telescope", "mars rover mission"],
    "food": [
        "pasta recipe tomato sauce",
        "bread baking flour oven",
        "tomato soup recipe",
        "chocolate cake oven baking",
    ],
    "sport": ["football match goal", "tennis match serve", "football league season goal", "basketball season playoff"],
}


def _corpus(seed=0):
    rng = np.random.default_rng(seed)
    d = 12
    centers = {t: rng.standard_normal(d) * 2 for t in TOPICS}
    texts, X = [], []
    for t, sents in TOPICS.items():
        for rep in range(10):
            for s in sents:
                texts.append(f"{s} {rep}")
                X.append(centers[t] + 0.3 * rng.standard_normal(d))
    X = np.asarray(X)
    return texts, (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    texts, X = _corpus()
    sae = TopKSAE(12, 48, 3, seed=0).fit(X, epochs=5, batch_size=16, lr=3e-3, progress=False)
    return sae, texts, X


def test_top_documents_and_keywords(fitted):
    sae, texts, X = fitted
    ex = LatentExplainer(sae, X, texts, n_top=6, explainer=lambda docs: f"{len(docs)} docs")
    H = sae.encode_dense(X)
    j = int(np.argmax((H > 0).sum(0)))
    s = ex.explain(j)
    ref = np.lexsort((np.arange(len(texts)), -H[:, j]))[:6]
    assert [r for r, _, _ in s.documents] == [int(r) for r in ref if H[r, j] > 0][:6]
    np.testing.assert_allclose([v for _, v, _ in s.documents], H[[r for r, _, _ in s.documents], j], rtol=1e-6)
    assert s.explanation == "6 docs"
    assert s.frequency == pytest.approx((H[:, j] > 0).mean())
    # keywords of the latent's documents come from their topic
    topic = next(t for t, sents in TOPICS.items() if any(texts[s.documents[0][0]].startswith(x) for x in sents))
    vocab = " ".join(TOPICS[topic])
    assert s.keywords and all(w in vocab for w in s.keywords[:3])
    # independent tf-idf contrast for a hand-picked set of rows
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(
        stop_words="english", min_df=2, max_df=0.5, sublinear_tf=True, token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b"
    )
    M = vec.fit_transform(texts)
    rows = [0, 4, 8]
    score = np.asarray(M[rows].mean(0)).ravel() - np.asarray(M.mean(0)).ravel()
    assert ex.keywords(rows, n=2) == list(vec.get_feature_names_out()[np.argsort(-score, kind="stable")[:2]])
    tl = ex.top_latents(0, n=2)
    assert [j for j, _, _ in tl] == [int(x) for x in sae.encode(X[:1])[1][0, :2]]
    assert ex.top_latents(X[0], n=2)[0][0] == tl[0][0]
    assert explain_latent(sae, j, X, texts, n_top=6).documents == s.documents
    with pytest.raises(ValueError, match="latent must lie"):
        ex.explain(48)
    with pytest.raises(ValueError, match="one entry per row"):
        LatentExplainer(sae, X, texts[:-1])


def test_frequency_regions_and_plot():
    freq = np.array([0.5, 0.0, 0.1, 0.3, 0.01, 0.02, 0.0, 0.2, 0.05, 0.4])
    r = frequency_regions(freq, head=0.25, tail=0.25)
    assert list(r["dead"]) == [1, 6]
    assert list(r["head"]) == [0, 9] and list(r["tail"]) == [5, 4]
    assert sorted(np.concatenate([r["head"], r["torso"], r["tail"]])) == [0, 2, 3, 4, 5, 7, 8, 9]
    fig = frequency_figure(freq)
    assert fig.layout.xaxis.type == "log" and sum(len(t.x) for t in fig.data) == 8
    with pytest.raises(ValueError, match="fractions"):
        frequency_regions(freq, head=0.8, tail=0.5)


def test_amplify_matches_dense_edit(fitted):
    sae, _, X = fitted
    codes = sae.encode(X[:20])
    H = sae.encode_dense(X[:20])
    j = int(codes[1][0, 0])
    other = int(next(x for x in range(48) if H[0, x] == 0))
    for mode, amt in (("additive", 0.3), ("multiplicative", 2.5)):
        v, i = amplify(codes, [j, other], amt, mode=mode, n_latents=48)
        Ha = np.zeros_like(H)
        for r in range(20):
            np.add.at(Ha[r], i[r], v[r])
        ref = H.copy()
        if mode == "additive":
            ref[:, [j, other]] += amt
        else:
            ref[:, [j, other]] *= amt
        np.testing.assert_allclose(Ha, ref, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(sae.decode(v, i), Ha @ sae.W_dec + sae.b_dec, atol=1e-5)
    # per-row latents and a row mask
    v, i = amplify(codes, np.full((20, 1), other), 1.0, n_latents=48, rows=np.arange(20) < 5)
    assert (v[:5, -1] == 1.0).all() and (v[5:, -1] == 0).all()
    with pytest.raises(ValueError, match="mode"):
        amplify(codes, [j], 1.0, mode="power", n_latents=48)
    with pytest.raises(ValueError, match="latents must lie"):
        amplify(codes, [99], 1.0, n_latents=48)


def test_steer_prf_grid_counts(fitted):
    sae, texts, X = fitted
    Q = X[::10]
    j = int(sae.encode(X[60:61])[1][0, 0])  # a "sport" latent
    res = steer(sae, Q, X, [j], 5.0, side="query", k=5)
    b_s, b_i = dense_search(sae.reconstruct(Q), sae.reconstruct(X), 5)
    assert np.array_equal(res["before_ids"], b_i)
    before, after = latent_counts(sae, res["before_ids"], res["after_ids"], X, j, top=5)
    assert after.sum() > before.sum()
    carries = ((sae.encode(X)[1] == j) & (sae.encode(X)[0] > 0)).any(1)
    assert np.array_equal(before, carries[b_i].sum(1))
    resd = steer(sae, Q, X, [j], 5.0, side="document", doc_rows=np.arange(20, 25), k=5)
    Da = sae.reconstruct(X).astype(np.float64)
    Da[20:25] += 5.0 * sae.W_dec[j]  # dense edit: +5 on latent j of those documents
    ref = np.argsort(-(sae.reconstruct(Q) @ Da.T), axis=1, kind="stable")[:, :5]
    assert (resd["after_ids"] == ref).mean() > 0.95
    s, i = pseudo_relevance_feedback(sae, Q, X, feedback_docs=3, feedback_latents=2, delta=0.0, k=5)
    assert np.array_equal(i, b_i)
    s, i = pseudo_relevance_feedback(sae, Q, X, feedback_docs=3, feedback_latents=2, delta=0.2, k=5)
    assert i.shape == (len(Q), 5)
    qrels = {q: {int(d): 1 for d in range(q * 10 // 10 * 10 - 0, q * 10 + 10) if d < len(X)} for q in range(len(Q))}
    for side in ("query", "document"):
        grid = amplification_grid(sae, Q, X, qrels, side=side, steps=4, k=5)
        assert [g["amount"] for g in grid] == [0.0, 0.0004, 0.0008, 0.0016, 0.0032]
        assert all(0 <= g["mrr@5"] <= 1 for g in grid)
    fig = amplification_figure({"query": grid}, k=5)
    assert len(fig.data) == 2
    assert len(steering_figure(before, after).data) == 2
    with pytest.raises(ValueError, match="unknown document id"):
        amplification_grid(sae, Q, X, {0: {10_000: 1}})
