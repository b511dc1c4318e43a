"""SAE features by spectral proximity: planted blocks recovered, energies vs dense NumPy, sparse at scale."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import laplacian as csgraph_laplacian
from sklearn.metrics import adjusted_rand_score

from latentatlas.sae import TopKSAE, feature_clusters, latent_graph
from latentatlas.spectral import feature_graph, rayleigh_energy


def _planted(n_blocks=4, per_block=12, n_dead=5, docs_per_block=60, active=5, d_model=24, seed=0):
    """Codes where latents of block b fire only on documents of group b (random values), a random
    decoder, and ``n_dead`` latents that never fire (ids interleaved with the live ones)."""
    rng = np.random.default_rng(seed)
    n_live = n_blocks * per_block
    ids = rng.permutation(n_live + n_dead)  # latent ids: live ones scattered among the dead
    live_ids, dead_ids = ids[:n_live], ids[n_live:]
    rows, cols, vals = [], [], []
    for b in range(n_blocks):
        for r in range(b * docs_per_block, (b + 1) * docs_per_block):
            pick = rng.choice(per_block, size=active, replace=False) + b * per_block
            rows += [r] * active
            cols += list(live_ids[pick])
            vals += list(rng.uniform(0.2, 2.0, size=active))
    C = sp.csr_matrix((vals, (rows, cols)), shape=(n_blocks * docs_per_block, n_live + n_dead))
    block = np.empty(n_live + n_dead, np.int64)
    block[live_ids] = np.arange(n_live) // per_block
    block[dead_ids] = -1
    return C, rng.standard_normal((n_live + n_dead, d_model)), block, np.sort(dead_ids)


def test_spectral_clusters_recover_planted_blocks_decoder_clusters_do_not():
    C, W_dec, block, dead = _planted()
    texts = [f"doc {i} about {['space', 'food', 'sport', 'music'][i // 60]} and more" for i in range(C.shape[0])]
    fc = feature_clusters(C, W_dec, texts, n_clusters=4, k=6, seed=0)
    np.testing.assert_array_equal(fc.dead, dead)
    np.testing.assert_array_equal(np.sort(np.concatenate([fc.live, fc.dead])), np.arange(C.shape[1]))
    truth = block[fc.live]
    assert adjusted_rand_score(truth, fc.spectral_labels) >= 0.9
    # a random decoder carries no block structure: the direction view disagrees with the usage view
    assert adjusted_rand_score(truth, fc.decoder_labels) < 0.3
    assert fc.agreement["ari"] == pytest.approx(adjusted_rand_score(fc.spectral_labels, fc.decoder_labels))
    # each spectral cluster's top documents come from its block's document group, keywords name it
    for cl in fc.spectral:
        groups = {r // 60 for r, _, _ in cl.documents}
        assert len(groups) == 1 and len(cl.documents) == 5
        g = groups.pop()
        assert set(block[cl.latents]) == {g}
        assert ["space", "food", "sport", "music"][g] in cl.keywords
        scores = [s for _, s, _ in cl.documents]
        assert scores == sorted(scores, reverse=True)
        r0 = cl.documents[0][0]
        assert scores[0] == pytest.approx(C[r0][:, cl.latents].sum())
    assert fc.embedding.shape == (fc.live.size, 2) and np.isfinite(fc.embedding).all()


def test_decoder_clusters_recover_planted_directions():
    """The converse: latents whose decoder rows lie in B tight cones, codes firing at random."""
    rng = np.random.default_rng(3)
    n, B, d = 60, 3, 32
    centers = rng.standard_normal((B, d)) * 3
    truth = np.arange(n) % B
    W_dec = centers[truth] + 0.2 * rng.standard_normal((n, d))
    C = sp.random(300, n, density=0.08, random_state=np.random.default_rng(4), format="csr")
    fc = feature_clusters(C, W_dec, n_clusters=B, seed=1)
    assert adjusted_rand_score(truth[fc.live], fc.decoder_labels) == 1.0
    assert fc.spectral[0].keywords == [] and fc.spectral[0].documents[0][2] is None


def test_graph_matches_dense_feature_graph_and_energies_match_numpy():
    rng = np.random.default_rng(1)
    dense = rng.uniform(0, 1, (80, 30)) * (rng.random((80, 30)) < 0.2)
    dense[:, 7] = 0.0  # a dead latent
    dense[3] = 0.0  # a document with no active latent
    W, live = latent_graph(sp.csr_matrix(dense), k=4)
    assert 7 not in live and live.size == 29
    # the same graph as the dense Rust path (feature_graph, positive weights) on the live columns
    ref = feature_graph(np.ascontiguousarray(dense[:, live]), 4, weights="positive")
    np.testing.assert_allclose(W.toarray(), ref.toarray(), rtol=1e-12, atol=1e-12)
    # energies: a plain dense NumPy Rayleigh quotient on scipy's csgraph Laplacian
    fc = feature_clusters(sp.csr_matrix(dense), rng.standard_normal((30, 5)), n_clusters=3, k=4)
    L = csgraph_laplacian(fc.graph.toarray())
    X = dense[:, fc.live]
    num, den = np.einsum("ij,jk,ik->i", X, L, X), (X * X).sum(1)
    expect = np.where(den > 1e-9, num / np.where(den > 0, den, 1), 0.0)
    np.testing.assert_allclose(fc.energy, expect, rtol=1e-10, atol=1e-12)
    assert fc.energy[3] == 0.0
    # the sparse path of rayleigh_energy equals the dense Rust kernel
    np.testing.assert_allclose(rayleigh_energy(sp.csr_matrix(X), fc.laplacian), rayleigh_energy(X, fc.laplacian))
    # normalised Laplacian: energies within [0, 2]
    fn = feature_clusters(sp.csr_matrix(dense), rng.standard_normal((30, 5)), n_clusters=3, k=4, normalized=True)
    assert (fn.energy >= -1e-12).all() and (fn.energy <= 2 + 1e-12).all()


def test_topk_codes_are_accepted_as_they_come():
    rng = np.random.default_rng(2)
    sae = TopKSAE(16, 40, 4, seed=0)
    D = rng.standard_normal((120, 16)).astype(np.float32)
    codes = sae.encode(D)
    a = feature_clusters(codes, sae, n_clusters=3, seed=5)  # SparseCodes + the SAE itself as the decoder
    b = feature_clusters(codes.to_csr(), sae.W_dec, n_clusters=3, seed=5)
    np.testing.assert_array_equal(a.spectral_labels, b.spectral_labels)
    np.testing.assert_array_equal(a.energy, b.energy)


def test_sparse_at_scale_is_never_densified():
    """200k documents × 16k latents (dense: 26 GB) with 3 active latents each, in bounded memory."""
    rng = np.random.default_rng(0)
    n, f, a = 200_000, 16_384, 3
    cols = rng.integers(0, f - 1000, size=(n, a))  # the last 1,000 latents are dead
    C = sp.csr_matrix((rng.uniform(0.1, 1.0, n * a), cols.ravel(), np.arange(0, n * a + 1, a)), shape=(n, f))
    tracemalloc.start()
    try:
        W, live = latent_graph(C, k=8)
        from latentatlas.spectral import graph_laplacian

        e = rayleigh_energy(C[:, live], graph_laplacian(W))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert live.size <= f - 1000 and e.shape == (n,) and np.isfinite(e).all()
    assert peak < 400 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_bad_input_is_a_clear_error():
    W_dec = np.ones((10, 4))
    with pytest.raises(ValueError, match="no latent is active on the corpus"):
        feature_clusters(sp.csr_matrix((20, 10)), W_dec)
    zeros = sp.csr_matrix((np.zeros(3), ([0, 1, 2], [0, 1, 2])), shape=(5, 10))  # explicit zeros only
    with pytest.raises(ValueError, match="no latent is active"):
        latent_graph(zeros)
    with pytest.raises(ValueError, match="only latent 4 is active"):
        latent_graph(sp.csr_matrix(([1.0], ([0], [4])), shape=(3, 10)))
    C = sp.random(30, 10, density=0.4, random_state=np.random.default_rng(0), format="csr")
    with pytest.raises(TypeError, match="codes must be a scipy.sparse matrix"):
        feature_clusters(C.toarray(), W_dec)
    with pytest.raises(ValueError, match="decoder has 9 rows"):
        feature_clusters(C, np.ones((9, 4)))
    with pytest.raises(ValueError, match="texts must have one entry per row"):
        feature_clusters(C, W_dec, ["a"] * 3)
    with pytest.raises(ValueError, match="n_clusters"):
        feature_clusters(C, W_dec, n_clusters=11)
    bad = C.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="codes contains NaN"):
        feature_clusters(bad, W_dec)
    with pytest.raises(ValueError, match="decoder contains NaN"):
        feature_clusters(C, np.full((10, 4), np.nan))
    # the sparse path of rayleigh_energy checks its input as the dense one does
    with pytest.raises(ValueError, match="L has shape"):
        rayleigh_energy(C, sp.eye(9, format="csr"))
    with pytest.raises(ValueError, match="X contains NaN"):
        rayleigh_energy(bad, sp.eye(10, format="csr"))


def test_same_seed_same_result_any_thread_count():
    from threadpoolctl import threadpool_limits

    C, W_dec, _, _ = _planted(seed=7)
    a = feature_clusters(C, W_dec, n_clusters=4, seed=3)
    with threadpool_limits(1):
        b = feature_clusters(C, W_dec, n_clusters=4, seed=3)
    for name in ("spectral_labels", "decoder_labels", "energy", "embedding"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.agreement == b.agreement
