"""Spectral energy: Rust results against the seed's NumPy reference, layouts, threads, bad input."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import laplacian as scipy_laplacian
from sklearn.base import clone
from sklearn.metrics.pairwise import cosine_similarity

import latentatlas as la
from latentatlas import _core, reference
from latentatlas.datasets import three_gaussians
from test_core import SCALE_CASES, _scale_case, taumode_raw_longdouble  # the longdouble oracle of λ


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture(scope="module")
def seed_corpus():
    X, labels, _ = three_gaussians(np.random.default_rng(42))
    return X, labels


def random_data(n, f, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    # Correlated columns, like embeddings: a few latent factors plus noise.
    Z = rng.standard_normal((n, 5)) @ rng.standard_normal((5, f)) + 0.3 * rng.standard_normal((n, f))
    return Z.astype(dtype)


# --- equivalence with the reference ---------------------------------------------------------


def test_seed_corpus_laplacian_and_energy_match_reference(seed_corpus):
    X, _ = seed_corpus
    L_ref, W_ref = reference.build_feature_laplacian(X, k=8)
    W = la.feature_graph(X, 8)
    L = la.feature_laplacian(X, 8)
    assert isinstance(W, sp.csr_matrix) and isinstance(L, sp.csr_matrix)
    assert rel_err(W.toarray(), W_ref) < 1e-10
    assert rel_err(L.toarray(), L_ref) < 1e-10
    e_ref = reference.rayleigh_energy(X, L_ref)
    e = la.rayleigh_energy(X, L)
    assert e.dtype == np.float64 and e.shape == (X.shape[0],)
    assert rel_err(e, e_ref) < 1e-10
    # the seed's normalised energy
    se = la.SpectralEnergy(k=8).fit(X)
    assert rel_err(se.normalized_energy(), reference.minmax(e_ref)) < 1e-10


@pytest.mark.parametrize("n,f,k,seed", [(500, 16, 3, 0), (3000, 50, 8, 1), (9000, 130, 12, 2), (40, 7, 6, 3)])
def test_random_data_matches_reference_f64(n, f, k, seed):
    X = random_data(n, f, seed)
    L_ref, _ = reference.build_feature_laplacian(X, k=k)
    L = la.feature_laplacian(X, k)
    assert rel_err(L.toarray(), L_ref) < 1e-10
    assert rel_err(la.rayleigh_energy(X, L), reference.rayleigh_energy(X, L_ref)) < 1e-10


@pytest.mark.parametrize("n,f,k,seed", [(2000, 32, 8, 4), (9000, 130, 10, 5)])
def test_random_data_matches_reference_f32(n, f, k, seed):
    X32 = random_data(n, f, seed, np.float32)
    X64 = X32.astype(np.float64)  # ground truth: the same values in exact-enough arithmetic
    L_ref, _ = reference.build_feature_laplacian(X64, k=k)
    L = la.feature_laplacian(X32, k)
    assert rel_err(L.toarray(), L_ref) < 1e-4
    e = la.rayleigh_energy(X32, L)
    e_ref = reference.rayleigh_energy(X64, L_ref)
    assert np.max(np.abs(e - e_ref) / np.abs(e_ref)) < 1e-4


def test_energy_of_any_square_matrix_is_its_quadratic_form():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((300, 9))
    M = sp.random(9, 9, density=0.4, random_state=3, format="csr")  # not symmetric
    M = M + sp.csr_matrix(([2.0, -1.0], ([1, 1], [3, 3])), shape=(9, 9))  # duplicate-ish entries summed
    want = np.einsum("ij,jk,ik->i", X, M.toarray(), X) / np.einsum("ij,ij->i", X, X)
    assert rel_err(la.rayleigh_energy(X, M), want) < 1e-12
    assert rel_err(la.rayleigh_energy(X, M.toarray()), want) < 1e-12  # dense L accepted
    assert rel_err(la.rayleigh_energy(X, M.tocoo()), want) < 1e-12


def _directed_reference_graph(X, k):
    S = cosine_similarity(X.T)
    f = S.shape[0]
    D = np.zeros_like(S)
    for i in range(f):
        order = sorted((j for j in range(f) if j != i), key=lambda j: (-S[i, j], j))[:k]
        D[i, order] = S[i, order]
    return D


@pytest.mark.parametrize("weights", ["positive", "binary"])
def test_weight_options(weights):
    X = random_data(800, 20, 9)
    X[:, 3] = -X[:, 2]  # a strongly negative pair so "positive" has something to drop
    D = _directed_reference_graph(X, 6)
    if weights == "positive":
        D = np.maximum(D, 0.0)
    else:
        D = (D != 0).astype(float)
    want = np.maximum(D, D.T)
    W = la.feature_graph(X, 6, weights=weights)
    assert rel_err(W.toarray(), want) < 1e-10
    assert (W.toarray() >= 0).all()


@pytest.mark.parametrize("weights", ["positive", "binary"])
def test_normalized_laplacian_matches_scipy(weights):
    X = random_data(600, 24, 11)
    W = la.feature_graph(X, 5, weights=weights)
    L = la.feature_laplacian(X, 5, weights=weights, normalized=True)
    want = scipy_laplacian(W.toarray(), normed=True)
    assert rel_err(L.toarray(), want) < 1e-12


def test_gram_and_gemm_topk_against_numpy():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((10_000, 70))
    assert rel_err(_core.gram(X), X.T @ X) < 1e-12
    assert (
        rel_err(
            _core.gram(X.astype(np.float32)),
            X.astype(np.float32).astype(np.float64).T @ X.astype(np.float32).astype(np.float64),
        )
        < 1e-5
    )
    A, B = rng.standard_normal((57, 16)), rng.standard_normal((3000, 16))
    bias = rng.standard_normal(3000)
    vals, idx = _core.gemm_topk(A, B, 7, bias=bias)
    S = A @ B.T + bias
    order = np.lexsort((np.broadcast_to(np.arange(3000), S.shape), -S), axis=1)[:, :7]
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_allclose(vals, np.take_along_axis(S, order, 1), rtol=1e-12, atol=1e-12)
    # exact kNN through bias = -|b|²/2, self excluded
    v, i = _core.gemm_topk(B, B, 5, bias=-0.5 * (B * B).sum(1), exclude_self=True)
    d2 = ((B[:200, None, :] - B[None, :, :]) ** 2).sum(-1)
    d2[np.arange(200), np.arange(200)] = np.inf
    np.testing.assert_array_equal(i[:200], np.argsort(d2, axis=1, kind="stable")[:, :5])


# --- layouts, memmap, memory -----------------------------------------------------------------


def test_layouts_give_the_same_answer(seed_corpus):
    X, _ = seed_corpus
    big = np.zeros((2 * X.shape[0], 3 * X.shape[1]))
    big[::2, ::3] = X
    views = {
        "C": np.ascontiguousarray(X),
        "F": np.asfortranarray(X),
        "strided": big[::2, ::3],
        "reversed": X[::-1][::-1],
    }
    L_ref, _ = reference.build_feature_laplacian(X, 8)
    e_ref = reference.rayleigh_energy(X, L_ref)
    for name, V in views.items():
        L = la.feature_laplacian(V, 8)
        assert rel_err(L.toarray(), L_ref) < 1e-10, name
        assert rel_err(la.rayleigh_energy(V, L), e_ref) < 1e-10, name
    Xr = X[::-1]  # negative row stride
    assert rel_err(la.rayleigh_energy(Xr, la.feature_laplacian(Xr, 8)), e_ref[::-1]) < 1e-10


def test_other_dtypes_are_converted():
    X = np.random.default_rng(1).integers(-5, 5, size=(200, 12))
    e = la.rayleigh_energy(X, la.feature_laplacian(X, 4))
    Xf = X.astype(np.float64)
    assert rel_err(e, reference.rayleigh_energy(Xf, reference.build_feature_laplacian(Xf, 4)[0])) < 1e-10
    h = la.rayleigh_energy(X.astype(np.float16), la.feature_laplacian(X.astype(np.float16), 4))
    assert np.allclose(h, e, rtol=1e-4)


def _rss_anon_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def test_memmap_streams_with_bounded_anonymous_memory(tmp_path):
    n, f = 400_000, 128  # 205 MB of float32 on disk
    path = tmp_path / "big.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, f))
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((4, f)).astype(np.float32)
    for s in range(0, n, 50_000):
        mm[s : s + 50_000] = rng.standard_normal((50_000, 4)).astype(np.float32) @ basis
    mm.flush()
    del mm
    X = np.load(path, mmap_mode="r")

    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_anon_kb())
            done.wait(0.005)

    base = _rss_anon_kb()
    t = threading.Thread(target=sample)
    t.start()
    try:
        se = la.SpectralEnergy(k=8).fit(X)
        e = se.energy()
    finally:
        done.set()
        t.join()
    grew_mb = (peak[0] - base) / 1024
    data_mb = X.nbytes / 2**20
    assert grew_mb < 0.25 * data_mb, f"anonymous memory grew {grew_mb:.0f} MB for {data_mb:.0f} MB of data"
    # and the answer is right: compare a slice against the in-memory computation
    chunk = np.asarray(X[:5000], dtype=np.float64)
    assert rel_err(e[:5000], la.rayleigh_energy(chunk, se.laplacian_)) < 1e-10
    Xs = np.asarray(X[::37], dtype=np.float64)
    G = Xs.T @ Xs  # a different subsample has a similar graph; the full Gram must equal numpy's
    assert rel_err(_core.gram(X[::37]), G) < 1e-5


# --- threads and the GIL -------------------------------------------------------------------


def test_results_do_not_depend_on_thread_count():
    X = random_data(20_000, 200, 21, np.float32)  # several Gram chunks and tiles
    g1, g2 = _core.gram(X, threads=1), _core.gram(X, threads=2)
    assert np.array_equal(g1, g2)
    i1, v1 = _core.feature_topk(X, 9, threads=1)
    i2, v2 = _core.feature_topk(X, 9, threads=2)
    assert np.array_equal(i1, i2) and np.array_equal(v1, v2)
    L = la.feature_laplacian(X, 9, threads=1)
    assert (la.feature_laplacian(X, 9, threads=2) != L).nnz == 0
    assert np.array_equal(la.rayleigh_energy(X, L, threads=1), la.rayleigh_energy(X, L, threads=2))
    a1 = _core.gemm_topk(X[:3000], X, 10, threads=1)
    a2 = _core.gemm_topk(X[:3000], X, 10, threads=2)
    assert np.array_equal(a1[0], a2[0]) and np.array_equal(a1[1], a2[1])


def test_two_python_threads_and_the_gil_is_released():
    X = random_data(200_000, 128, 30)
    L = la.feature_laplacian(X[:20_000], 8)
    want = la.rayleigh_energy(X, L, threads=1)
    results: dict[int, np.ndarray] = {}

    def work(i):
        for _ in range(3):
            results[i] = la.rayleigh_energy(X, L, threads=1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    ticks = 0
    while any(t.is_alive() for t in threads):
        ticks += 1  # runs only while the workers do not hold the GIL
    for t in threads:
        t.join()
    assert all(np.array_equal(results[i], want) for i in range(2))
    assert ticks > 1000, f"main thread barely ran ({ticks} ticks): is the GIL held during the kernel?"


# --- estimator and edge cases ----------------------------------------------------------------


def test_estimator_api(seed_corpus):
    X, _ = seed_corpus
    se = la.SpectralEnergy(k=5, weights="positive", normalized=True)
    assert clone(se).get_params() == se.get_params()
    with pytest.raises(RuntimeError, match="not fitted"):
        se.energy()
    se.fit(X)
    assert se.graph_.shape == (32, 32) and se.laplacian_.shape == (32, 32) and se.n_features_in_ == 32
    e_fit = se.energy()
    assert np.array_equal(e_fit, la.rayleigh_energy(X, se.laplacian_))
    assert np.array_equal(se.energy(X[:10]), e_fit[:10])
    assert np.array_equal(se.fit_energy(X), e_fit)
    with pytest.raises(ValueError, match="fitted with 32"):
        se.energy(X[:, :10])
    ne = se.normalized_energy()
    assert ne.min() == 0.0 and ne.max() < 1.0


def test_zero_rows_and_constant_columns():
    X = random_data(300, 10, 40)
    X[:, 2] = 3.0  # constant, non-zero
    X[:, 7] = 0.0  # all-zero column: cosine 0 with everything
    X[5] = 0.0  # an all-zero item
    L = la.feature_laplacian(X, 4)
    e = la.rayleigh_energy(X, L)
    assert np.isfinite(L.data).all() and np.isfinite(e).all()
    assert e[5] == 0.0
    # The seed's argsort(-S)[1:] drops an arbitrary tie for the zero column instead of itself; the
    # contract is self excluded by index and ties to the lower index, as this direct loop does.
    D = _directed_reference_graph(X, 4)
    assert rel_err(la.feature_graph(X, 4).toarray(), np.maximum(D, D.T)) < 1e-10


def test_taumode_lambda_against_direct_loops():
    X = random_data(60, 8, 50)
    X[3] = 0.0
    L = la.feature_laplacian(X, 3)
    lam = la.taumode_lambda(X, L)
    Ld = L.toarray()
    raw = []
    for x in X:
        den = x @ x
        E = max((x @ Ld @ x) / den if den > 1e-9 else 0.0, 0.0)
        terms = [(-Ld[a, b]) * (x[a] - x[b]) ** 2 for a in range(8) for b in range(8) if a != b and Ld[a, b] != 0]
        T = sum(terms)
        G = sum((t / T) ** 2 for t in terms) if T != 0 else 0.0
        tau = max(np.median(x), 1e-10)
        tw = min(tau, 1.0)
        raw.append(tw * E / (E + tau) + (1 - tw) * G)
    raw = np.array(raw)
    want = (raw - raw.min()) / (raw.max() - raw.min())
    assert rel_err(lam, want) < 1e-10
    fixed = la.taumode_lambda(X, L, tau=0.5)
    assert fixed.shape == (60,) and 0.0 <= fixed.min() and fixed.max() <= 1.0


def _minmax_ld(raw):
    raw = np.asarray(raw, dtype=np.longdouble)
    return ((raw - raw.min()) / (raw.max() - raw.min())).astype(np.float64)


@pytest.mark.parametrize("tau", ["median", 0.5])
@pytest.mark.parametrize("case", SCALE_CASES)
def test_taumode_lambda_at_extreme_scales_matches_a_longdouble_reference(case, tau):
    """One row ×1e100, L ×1e300 (and more): the concentration Σt²/(2(Σt)²) used to overflow to
    inf/inf = NaN and the min-max turned every row's λ into 0. Now the λ of the formula, against the
    definition evaluated in np.longdouble (no overflow there)."""
    X, L = _scale_case(case)
    lam = la.taumode_lambda(X, L, tau=tau)
    want = _minmax_ld(taumode_raw_longdouble(X, L, None if tau == "median" else tau))
    assert np.isfinite(lam).all() and lam.max() == 1.0
    np.testing.assert_allclose(lam, want, rtol=0, atol=1e-9)


def test_taumode_lambda_one_huge_row_leaves_the_others_alone():
    """Scaling one row by 1e100 changes that row's τ only (E and G are scale-free): every other
    row's raw λ keeps its bits."""
    X = random_data(50, 8, 51)
    L = la.feature_laplacian(X, 3)
    parts = (L.indptr.astype(np.int64), L.indices.astype(np.int64), L.data.astype(np.float64))
    raw = _core.taumode_raw(X, *parts)
    X2 = X.copy()
    X2[7] *= 1e100
    raw2 = _core.taumode_raw(X2, *parts)
    assert np.array_equal(np.delete(raw2, 7), np.delete(raw, 7))
    np.testing.assert_allclose(raw2[7], taumode_raw_longdouble(X2[7:8], L)[0].astype(np.float64), rtol=1e-12)
    lam = la.taumode_lambda(X2, L)
    assert np.isfinite(lam).all() and np.ptp(lam) == 1.0


def test_taumode_lambda_dask_at_extreme_scales():
    da = pytest.importorskip("dask.array")
    X, L = _scale_case("row x1e100")
    lam = la.taumode_lambda(da.from_array(X, chunks=(7, -1)), L)
    np.testing.assert_array_equal(np.asarray(lam.compute()), la.taumode_lambda(X, L))


@pytest.mark.parametrize("dask", [False, True])
def test_taumode_lambda_never_min_maxes_a_non_finite_raw_value(monkeypatch, dask):
    """A NaN raw λ (whatever produced it) raises instead of becoming 0 for every row."""
    from latentatlas import kernels, spectral

    X = random_data(30, 6, 52)
    L = la.feature_laplacian(X, 2)

    def nan_rows(parts, tau, Xb, start):
        out = kernels.taumode_raw(Xb, *parts)
        out[Xb.shape[0] // 2] = np.nan
        return out

    monkeypatch.setattr(spectral, "_taumode_rows", nan_rows)
    if dask:
        da = pytest.importorskip("dask.array")
        X = da.from_array(X, chunks=(10, -1))
    with pytest.raises(ValueError, match=r"taumode λ.*not finite.*\bX\b"):
        lam = la.taumode_lambda(X, L)
        if dask:
            lam.compute()


def test_rayleigh_energy_of_huge_rows_is_scale_free():
    """|x| > 1e154: xᵀx overflows float64. E is scale-invariant, so the energy of a row ×1e160 is
    that of the row (it used to raise); a row ×1e153 with L ×1e3 overflowed xᵀLx into NaN."""
    X = random_data(40, 8, 53)
    L = la.feature_laplacian(X, 3)
    e = la.rayleigh_energy(X, L)
    X2 = X.copy()
    X2[[3, 4]] *= 2.0**532  # ≈ 1.4e160, a power of two: the same bits
    assert np.array_equal(la.rayleigh_energy(X2, L), e)
    X2[[3, 4]] = X[[3, 4]] * 1e153
    np.testing.assert_allclose(la.rayleigh_energy(X2, L * 1e3), e * 1e3, rtol=1e-12)


def test_rayleigh_energy_of_a_huge_L_is_right_or_a_clear_error():
    X = random_data(40, 8, 54)
    L = la.feature_laplacian(X, 3)
    e = la.rayleigh_energy(X, L)
    big = L * (1e308 / abs(L).max() / 2)  # the largest entry 5e307: xᵀLx overflows, E = xᵀLx/xᵀx fits
    scale = 1e308 / abs(L).max() / 2
    np.testing.assert_allclose(la.rayleigh_energy(X, big), e * scale, rtol=1e-12)
    two = sp.csr_matrix(np.array([[1.0, -1.0], [-1.0, 1.0]]) * 1e308)  # E of (1, -1) is 2e308
    with pytest.raises(ValueError, match=r"\bL\b.*row 1.*float64"):
        la.rayleigh_energy(np.array([[1.0, 1.0], [1.0, -1.0]]), two)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "X,exc,match",
    [
        (np.ones(5), ValueError, "X must be 2-D"),
        (np.ones((2, 3, 4)), ValueError, "X must be 2-D"),
        (np.ones((0, 5)), ValueError, "at least 1 row"),
        (np.ones((5, 1)), ValueError, "at least 2 feature"),
        (np.ones((5, 0)), ValueError, "at least 2 feature"),
        (np.ones((5, 4), dtype=complex), TypeError, "real numeric"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, "real numeric"),
        (sp.csr_matrix(np.eye(4)), TypeError, "dense array"),
    ],
)
def test_bad_X(X, exc, match):
    with pytest.raises(exc, match=match):
        la.feature_graph(X, 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_X_is_rejected_everywhere(bad):
    X = random_data(100, 6, 1)
    L = la.feature_laplacian(X, 2)
    X[42, 3] = bad
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at row 42\)"):
        la.feature_graph(X, 2)
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at row 42\)"):
        la.rayleigh_energy(X, L)
    with pytest.raises(ValueError, match="contains NaN or infinity"):
        _core.gemm_topk(X, X, 2)
    L2 = L.copy()
    L2.data[0] = bad
    with pytest.raises(ValueError, match="L contains NaN or infinity"):
        la.rayleigh_energy(np.ones((3, 6)), L2)


@pytest.mark.parametrize(
    "k,exc", [(0, ValueError), (-1, ValueError), (6, ValueError), (7, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_bad_k(k, exc):
    with pytest.raises(exc, match="k"):
        la.feature_laplacian(np.random.default_rng(0).standard_normal((20, 6)), k)


def test_bad_L_and_options():
    X = np.random.default_rng(0).standard_normal((20, 6))
    with pytest.raises(ValueError, match=r"L has shape \(5, 5\) but X has 6 features"):
        la.rayleigh_energy(X, np.eye(5))
    with pytest.raises(ValueError, match="L must be square"):
        la.rayleigh_energy(X, sp.csr_matrix(np.ones((6, 5))))
    with pytest.raises(ValueError, match="L must be a 2-D"):
        la.rayleigh_energy(X, np.ones(6))
    with pytest.raises(ValueError, match="weights must be one of"):
        la.feature_graph(X, 2, weights="euclid")
    with pytest.raises(ValueError, match="threads"):
        la.feature_graph(X, 2, threads=0)
    with pytest.raises(ValueError, match="tau"):
        la.taumode_lambda(X, la.feature_laplacian(X, 2), tau=-1)
    with pytest.raises(ValueError, match="k"):
        _core.gemm_topk(X, X, 20, exclude_self=True)
    with pytest.raises(ValueError, match="B"):
        _core.gemm_topk(X, X[:, :3], 2)
    with pytest.raises(TypeError, match="dtype"):
        _core.gemm_topk(X, X.astype(np.float32), 2)
