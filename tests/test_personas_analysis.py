"""Persona analysis functions against direct NumPy / scikit-learn / SciPy computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import PCA
from sklearn.manifold import Isomap
from sklearn.metrics.pairwise import cosine_similarity

from latentatlas import reference
from latentatlas.personas import (
    LayeredSamples,
    cluster_agglomerative,
    cluster_kmeans,
    cosine_similarity_matrix,
    layer_variant_similarity,
    layered_analysis,
    layered_pca,
    layered_similarity,
    pca_explained_variance,
    persona_spectral_energy,
    prepare_cluster_samples,
    prepare_layer_mean_cluster_samples,
    project_isomap,
    project_pca,
    project_umap,
    scree_layers,
    synthetic_persona_dataset,
    synthetic_persona_vectors,
    validate_layers,
)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    table = synthetic_persona_dataset(24, seed=1)
    return synthetic_persona_vectors(table, num_layers=6, hidden_size=40, seed=1)


def prep(x: np.ndarray, normalize: bool = True) -> np.ndarray:
    x = np.asarray(x, np.float64)
    x = x - x.mean(0)
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def test_cosine_similarity(vectors):
    x = vectors[:, 3]
    np.testing.assert_allclose(cosine_similarity_matrix(x), cosine_similarity(x - x.mean(0)), atol=2e-6)
    np.testing.assert_allclose(cosine_similarity_matrix(x, center=False), cosine_similarity(x), atol=2e-6)
    raw = cosine_similarity_matrix(x, center=False)
    assert raw[np.triu_indices(len(x), 1)].mean() > 0.9  # the DC component centring removes
    assert cosine_similarity_matrix(x)[np.triu_indices(len(x), 1)].mean() < 0.1


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("k", [2, 3])
def test_project_pca_matches_sklearn(vectors, normalize, k):
    x = vectors[:, 4]
    ref = PCA(n_components=k, svd_solver="full", random_state=0).fit_transform(prep(x, normalize))
    np.testing.assert_allclose(project_pca(x, k, normalize=normalize), ref, atol=2e-5 * np.abs(ref).max())


def test_pca_more_personas_than_hidden():
    x = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    ref = PCA(n_components=3, svd_solver="full").fit_transform(prep(x))
    np.testing.assert_allclose(project_pca(x, 3), ref, atol=1e-5)
    ratio = PCA(svd_solver="full").fit(prep(x)).explained_variance_ratio_
    np.testing.assert_allclose(pca_explained_variance(x), ratio, atol=1e-6)


def test_explained_variance(vectors):
    x = vectors[:, 2]
    ratio = PCA(svd_solver="full").fit(prep(x)).explained_variance_ratio_
    got = pca_explained_variance(x)
    assert got.shape == ratio.shape == (24,)
    np.testing.assert_allclose(got, ratio, atol=1e-6)
    np.testing.assert_allclose(pca_explained_variance(x, 5), ratio[:5], atol=1e-6)
    raw = PCA(svd_solver="full").fit(prep(x, False)).explained_variance_ratio_
    np.testing.assert_allclose(pca_explained_variance(x, normalize=False), raw, atol=1e-6)


def test_isomap_matches_sklearn(vectors):
    x = vectors[:, 5]
    ref = Isomap(n_components=2, n_neighbors=8).fit_transform(prep(x))
    got = project_isomap(x)
    # eigenvectors are defined up to sign: align each column
    signs = np.sign((ref * got).sum(0))
    np.testing.assert_allclose(got * signs, ref, atol=1e-4 * np.abs(ref).max())


def test_umap_matches_umap_learn():
    umap = pytest.importorskip("umap")
    x = np.random.default_rng(5).standard_normal((20, 16)).astype(np.float32)
    # UMAP amplifies last-bit input differences, so feed it the prepared rows (checked against
    # NumPy in test_layer_mean_cluster_samples) and compare with umap-learn's own result
    p = prepare_cluster_samples(x)
    np.testing.assert_allclose(p, prep(x), atol=1e-6)
    ref = umap.UMAP(n_components=2, n_neighbors=15, init="random", random_state=42, n_jobs=1).fit_transform(p)
    np.testing.assert_allclose(project_umap(x), ref, atol=1e-5)
    raw = umap.UMAP(n_components=2, n_neighbors=9, init="random", random_state=42, n_jobs=1).fit_transform(
        prepare_cluster_samples(x[:10], normalize=False)
    )
    np.testing.assert_allclose(project_umap(x[:10], normalize=False), raw, atol=1e-5)  # n_neighbors = min(15, n-1)


def test_kmeans_and_agglomerative(vectors):
    x = vectors[:, 5]
    ref = KMeans(n_clusters=4, n_init="auto", random_state=0).fit_predict(prep(x).astype(np.float32))
    np.testing.assert_array_equal(cluster_kmeans(x, 4), ref)
    for linkage in ("ward", "average", "complete", "single"):
        ref = AgglomerativeClustering(n_clusters=3, linkage=linkage).fit_predict(prep(x).astype(np.float32))
        np.testing.assert_array_equal(cluster_agglomerative(x, 3, linkage=linkage), ref)
    with pytest.raises(ValueError, match="n_clusters must satisfy"):
        cluster_kmeans(x, 0)


def test_layer_mean_cluster_samples(vectors):
    expect = np.mean([prep(vectors[:, lay]) for lay in range(vectors.shape[1])], axis=0)
    np.testing.assert_allclose(prepare_layer_mean_cluster_samples(vectors), expect, atol=1e-6)
    x = prepare_layer_mean_cluster_samples(vectors)
    ref = KMeans(n_clusters=3, n_init="auto", random_state=0).fit_predict(x)
    np.testing.assert_array_equal(cluster_kmeans(x, 3, center=False, normalize=False), ref)
    np.testing.assert_allclose(
        prepare_cluster_samples(vectors[:, 0], normalize=False), prep(vectors[:, 0], False), atol=1e-5
    )


def test_layered_functions_equal_per_layer_loops(vectors):
    samples = LayeredSamples(vectors, [f"n{i}" for i in range(24)], [""] * 24, [str(i) for i in range(24)])
    res = layered_analysis(samples, [0, 3, 5], n_components=3, spectrum_layers=[3])
    for i, layer in enumerate([0, 3, 5]):
        x = vectors[:, layer]
        np.testing.assert_allclose(res.similarity[i], cosine_similarity(prep(x)), atol=2e-6)
        ref = PCA(n_components=3, svd_solver="full").fit(prep(x))
        np.testing.assert_allclose(res.pca[i], ref.transform(prep(x)), atol=2e-5)
        np.testing.assert_allclose(res.explained_variance_ratio[i], ref.explained_variance_ratio_, atol=1e-6)
    np.testing.assert_allclose(
        res.spectra[3], PCA(svd_solver="full").fit(prep(vectors[:, 3])).explained_variance_ratio_, atol=1e-6
    )
    assert set(res.spectra) == {3}
    coords, _ = layered_pca(vectors, [1], 2, normalize=False)
    np.testing.assert_allclose(
        coords[0], PCA(2, svd_solver="full").fit_transform(prep(vectors[:, 1], False)), atol=2e-4
    )
    S = layered_similarity(vectors, center=False)
    assert S.shape == (6, 24, 24) and S.dtype == np.float32
    np.testing.assert_allclose(S[2], cosine_similarity(vectors[:, 2]), atol=2e-6)


def test_layer_variant_similarity(vectors):
    other = vectors + np.random.default_rng(0).standard_normal(vectors.shape).astype(np.float32)
    got = layer_variant_similarity(vectors, other)
    expect = [
        np.mean(
            np.sum(
                cosine_similarity(vectors[:, lay]) * 0 + cosine_similarity(vectors[:, lay], other[:, lay]) * np.eye(24),
                1,
            )
        )
        for lay in range(6)
    ]
    np.testing.assert_allclose(got, expect, atol=1e-6)


def test_spectral_energy_matches_reference(vectors):
    got = persona_spectral_energy(vectors, [0, 5], k=6)
    assert got.shape == (2, 24)
    for i, layer in enumerate([0, 5]):
        x = np.asarray(vectors[:, layer], np.float64)
        x = x - x.mean(0)
        Lap = reference.build_feature_laplacian(x, k=6)[0]
        np.testing.assert_allclose(got[i], reference.rayleigh_energy(x, Lap), rtol=1e-4, atol=1e-6)


def test_validation_messages(vectors):
    with pytest.raises(ValueError, match=r"^samples must have shape \(n_samples, hidden_size\)$"):
        cosine_similarity_matrix(vectors)
    with pytest.raises(ValueError, match=r"^samples must have shape \(n_samples, hidden_size\)$"):
        project_pca(vectors[0, 0])
    with pytest.raises(ValueError, match=r"^samples must have shape \(n_samples, hidden_size\)$"):
        pca_explained_variance(vectors)
    with pytest.raises(ValueError, match=r"^Invalid layer\(s\) for tensor with 6 layers: \[6, -1\]$"):
        validate_layers(vectors, [0, 6, -1])
    with pytest.raises(ValueError, match=r"^Invalid layer\(s\) for tensor with 6 layers: \[9\]$"):
        layered_similarity(vectors, [9])
    with pytest.raises(ValueError, match=r"^Invalid layer\(s\) for tensor with 6 layers: \[7\]$"):
        scree_layers(6, [7])
    with pytest.raises(ValueError, match="linkage must be one of: ward, average, complete, single"):
        cluster_agglomerative(vectors[:, 0], 2, linkage="median")
    with pytest.raises(ValueError, match=r"samples must have shape \(n_personas, num_layers, hidden_size\)"):
        layered_similarity(vectors[:, 0])
    with pytest.raises(ValueError, match="PCA n_components=30 must be <= min"):
        project_pca(vectors[:, 0], 30)
    with pytest.raises(TypeError, match="layers must be integers"):
        validate_layers(vectors, [1.5])


def test_scree_layers_default():
    assert scree_layers(42) == [0, 14, 28, 41]
    assert scree_layers(3) == [0, 1, 2]


def test_lanczos_path_matches_sklearn():
    """Above 256 personas the top components come from ARPACK; still sklearn's exact answer."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((300, 6)) @ rng.standard_normal((6, 400)) * 3 + rng.standard_normal((300, 400))).astype(
        np.float32
    )
    ref = PCA(3, svd_solver="full").fit(prep(x))
    np.testing.assert_allclose(project_pca(x, 3), ref.transform(prep(x)), atol=1e-4)
    coords, ratio = layered_pca(x[:, None, :], None, 3)
    np.testing.assert_allclose(coords[0], ref.transform(prep(x)), atol=1e-4)
    np.testing.assert_allclose(ratio[0], ref.explained_variance_ratio_, atol=1e-6)


def test_pca_is_deterministic_and_float32_safe(vectors):
    a = project_pca(vectors[:, 1])
    b = project_pca(vectors[:, 1].astype(np.float64))
    np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_array_equal(a, project_pca(vectors[:, 1]))


def _thread_bounds(x: np.ndarray, k: int) -> tuple[float, float]:
    """How far ``layered_analysis`` of one float32 layer may move between BLAS thread counts.

    The analysis decomposes the unit-row Gram Gn = D Xc Xcᵀ D (float32 BLAS product, D from its
    diagonal). Another thread count may block the product differently (OpenBLAS's Haswell kernels
    do; its SkylakeX kernels happen not to), so the two runs see Gn + E₁ and Gn + E₂, each E the
    float32 rounding of one evaluation. Measured here, with this BLAS, against the float64 product:
    ‖Gn₁ - Gn₂‖ <= ‖E₁‖ + ‖E₂‖ = δ (triangle inequality; both settings are evaluated).

    - similarity (Gn as float32): |ΔS| <= max|E₁| + max|E₂| + 2 ulp(1) (the float32 cast of each).
    - PCA scores sqrt(λ_j) u_j of PCA's Gram H Gn H (‖H‖ = 1): Davis-Kahan bounds the angle of
      u_j by δ / (gap_j - δ), gap_j the distance of λ_j to the rest of the spectrum, so
      ‖Δu_j‖ <= sqrt(2) δ / (gap_j - δ); Weyl bounds |Δλ_j| <= δ, so |Δ sqrt(λ_j)| <= δ / (2 sqrt(λ_j)).
      Plus the float64 eigensolver's own backward error (n eps64 ‖Gn‖), negligible beside δ.
    """
    from threadpoolctl import threadpool_limits

    xc = x - x.mean(axis=0, keepdims=True, dtype=np.float64).astype(x.dtype)

    def unit(G: np.ndarray) -> np.ndarray:
        s = 1.0 / np.sqrt(np.diag(G))
        return G * s[:, None] * s[None, :]

    exact = unit(xc.astype(np.float64) @ xc.T.astype(np.float64))
    many = unit((xc @ xc.T).astype(np.float64))  # BLAS's default thread count
    with threadpool_limits(1):
        one = unit((xc @ xc.T).astype(np.float64))
    E1, E2 = many - exact, one - exact
    n = len(x)
    lam = np.linalg.eigvalsh(exact - exact.mean(0) - exact.mean(1)[:, None] + exact.mean())[::-1]
    delta = np.linalg.norm(E1, 2) + np.linalg.norm(E2, 2) + n * np.finfo(np.float64).eps * lam[0]
    sim_tol = float(np.abs(E1).max() + np.abs(E2).max() + 2 * np.finfo(np.float32).eps)
    gaps = np.minimum(np.r_[np.inf, -np.diff(lam)][:k], -np.diff(lam)[:k])
    assert (gaps > 2 * delta).all(), "the components are not separated enough for a bound"
    pca_tol = np.sqrt(lam[:k]) * np.sqrt(2) * delta / (gaps - delta) + delta / (2 * np.sqrt(lam[:k]))
    return sim_tol, float(pca_tol.max())


def test_flat_spectrum_falls_back_to_dense_and_threads_agree(monkeypatch):
    """Near-degenerate top eigenvalues (pure noise): subspace iteration gives up, dense eigh answers."""
    from latentatlas import linalg

    outcomes = []
    real = linalg._subspace_top
    monkeypatch.setattr(linalg, "_subspace_top", lambda G, k: outcomes.append(real(G, k)) or outcomes[-1])
    rng = np.random.default_rng(3)
    v = rng.standard_normal((300, 3, 400)).astype(np.float32)
    res = layered_analysis(v, n_components=2, threads=1)
    assert outcomes and all(o is None for o in outcomes)  # the fallback ran
    for layer in range(3):
        x = prep(v[:, layer])
        ref = PCA(2, svd_solver="full").fit(x)
        np.testing.assert_allclose(res.pca[layer], ref.transform(x), atol=1e-4 * np.abs(res.pca[layer]).max())
        np.testing.assert_allclose(res.explained_variance_ratio[layer], ref.explained_variance_ratio_, atol=1e-6)
        np.testing.assert_allclose(res.similarity[layer], cosine_similarity(x), atol=2e-6)
    par = layered_analysis(v, n_components=2, threads=2)  # layers in parallel, 1 BLAS thread each
    # BLAS thread count changes rounding only, within bounds that follow from the float32 Gram
    for layer in range(3):
        sim_tol, pca_tol = _thread_bounds(v[:, layer], k=2)
        np.testing.assert_allclose(par.similarity[layer], res.similarity[layer], rtol=0, atol=sim_tol)
        np.testing.assert_allclose(par.pca[layer], res.pca[layer], rtol=0, atol=pca_tol)
    np.testing.assert_array_equal(layered_analysis(v, n_components=2, threads=2).pca, par.pca)  # deterministic
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        layered_analysis(v, threads=0)


def test_small_pca_runs_on_one_blas_thread_and_restores_the_setting(monkeypatch):
    """NumPy and SciPy each bundle an OpenBLAS; on few cores their idle threads spin against each other
    and a 400 x 576 PCA stalls. Up to a side of 1024 the Gram PCA runs on one BLAS thread (a larger side
    asks for no limit); the limit is lifted on exit."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from latentatlas import linalg

    def blas_threads_now() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    seen: list[set[int]] = []
    real = linalg._gram_pca
    monkeypatch.setattr(linalg, "_gram_pca", lambda *a: seen.append(blas_threads_now()) or real(*a))
    x = np.random.default_rng(0).standard_normal((40, 64))
    with threadpool_limits(2, user_api="blas"):
        before = blas_threads_now()
        got = linalg.PCA(2).fit_transform(x)
        assert blas_threads_now() == before  # restored
    assert seen == [{1}]
    # float64 through the Gram: a score's error is about eps * lambda_1 / gap * |score| (the Gram squares the
    # condition); 200 seeds of this shape gave at most 7e-13, so 1e-10 holds on any BLAS kernel set
    np.testing.assert_allclose(np.abs(got), np.abs(PCA(2, svd_solver="full").fit_transform(x)), atol=1e-10)
    assert linalg.gram_threads(2000, 1025) is None and linalg.gram_threads(5000, 1024) == 1
