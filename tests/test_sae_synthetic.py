"""latentatlas.sae.synthetic: the planted-dictionary generator and its ground-truth metrics.

Metrics are checked against independent computations: a brute-force best permutation for MCC,
scikit-learn's ``f1_score`` for the matched F1, explained variance by hand.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import f1_score

from latentatlas.sae.synthetic import SyntheticModel, evaluate_synthetic, synthsaebench_16k


def test_samples_are_the_planted_sum_and_fire_at_the_zipf_rates():
    m = SyntheticModel(50, 12, max_prob=0.3, min_prob=0.01, exponent=0.7, std_magnitude=0.1, bias=0.5, seed=1)
    X, A = m.sample(20000, seed=2)
    assert isinstance(A, sp.csr_matrix) and A.shape == (20000, 50) and X.dtype == np.float32
    np.testing.assert_allclose(X, A @ m.features + m.bias, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(m.features, axis=1), 1)
    assert np.linalg.norm(m.bias) == pytest.approx(0.5)
    rate = np.asarray((A > 0).mean(axis=0)).ravel()
    np.testing.assert_allclose(rate, m.probabilities, atol=4 * np.sqrt(0.3 * 0.7 / 20000))
    assert m.probabilities[0] == pytest.approx(0.3) and m.probabilities[-1] == pytest.approx(0.01)
    assert np.all(np.diff(m.probabilities) <= 0)
    a, b = m.sample(100, seed=3)[0], m.sample(100, seed=3)[0]
    np.testing.assert_array_equal(a, b)


def test_hierarchy_gates_children_and_siblings_exclude():
    m = SyntheticModel(40, 10, max_prob=0.5, min_prob=0.2, roots=2, branching=3, depth=2, exclusive=1.0, seed=4)
    _, A = m.sample(5000, seed=5)
    F = (A > 0).toarray()
    par = m.tree.parent
    kids = np.flatnonzero(par >= 0)
    assert kids.size == 2 * 3 + 2 * 3 * 3
    assert not (F[:, kids] & ~F[:, par[kids]]).any()  # a child never fires without its parent
    for p in np.flatnonzero(m.tree.exclusive):
        assert F[:, par == p].sum(axis=1).max() <= 1
    assert F[:, kids].any(axis=0).all()  # and children do fire


def test_correlation_couples_firing():
    kw = dict(max_prob=0.1, min_prob=0.1, exponent=0.0, seed=6)
    _, A0 = SyntheticModel(60, 8, **kw).sample(8000, seed=7)
    _, A1 = SyntheticModel(60, 8, correlation_rank=1, correlation_scale=0.8, **kw).sample(8000, seed=7)
    # a shared factor makes the number of active features per row overdispersed
    v0, v1 = (np.diff(A.indptr).var() for A in (A0, A1))
    assert v1 > 2 * v0


def test_metrics_against_independent_computations():
    rng = np.random.default_rng(8)
    F = rng.standard_normal((5, 7))
    D = rng.standard_normal((5, 7))
    D[0] = 3 * F[2] + 0.01 * rng.standard_normal(7)  # latent 0 ≈ feature 2
    m = evaluate_synthetic(F, D)
    Fn = F / np.linalg.norm(F, axis=1, keepdims=True)
    Dn = D / np.linalg.norm(D, axis=1, keepdims=True)
    C = np.abs(Dn @ Fn.T)
    brute = max(C[np.arange(5), list(p)].mean() for p in itertools.permutations(range(5)))
    assert m["mcc"] == pytest.approx(brute)
    assert m["recovered"] == pytest.approx(((Dn @ Fn.T).max(axis=0) > 0.9).mean())
    assert m["recovered"] >= 0.2

    # codes: latent j fires exactly with feature perm[j] except a few flips
    n = 400
    truth = rng.random((n, 5)) < 0.3
    perm = np.array([2, 0, 1, 4, 3])
    D2 = F[perm]
    fired = truth[:, perm].copy()
    fired[:20, 0] = ~fired[:20, 0]
    codes = sp.csr_matrix(fired.astype(np.float64))
    A = sp.csr_matrix(truth.astype(np.float64))
    X = A @ F
    Xh = X + 0.1 * rng.standard_normal(X.shape)
    m = evaluate_synthetic(F, D2, X=X, A=A, codes=codes, X_hat=Xh)
    f1 = np.mean([f1_score(truth[:, perm[j]], fired[:, j]) for j in range(5)])
    assert m["f1"] == pytest.approx(f1)
    assert m["mcc"] == pytest.approx(1.0) and m["uniqueness"] == 1.0
    assert m["l0"] == pytest.approx(fired.sum() / n) and m["dead_fraction"] == 0.0
    fve = 1 - ((Xh - X) ** 2).sum() / ((X - X.mean(0)) ** 2).sum()
    assert m["fve"] == pytest.approx(fve)
    assert m["shrinkage"] == pytest.approx(np.linalg.norm(Xh) / np.linalg.norm(X))
    # two latents on one feature: uniqueness drops
    assert evaluate_synthetic(F, np.vstack([F[:4], F[0]]))["uniqueness"] == pytest.approx(0.8)


def test_synthsaebench_configuration_and_bad_input():
    m = synthsaebench_16k(n_features=2048, d=64)
    assert m.tree is not None and m.tree.exclusive.any()
    assert m.probabilities[0] == pytest.approx(0.4) and m.probabilities[-1] == pytest.approx(5e-4)
    X, A = m.sample(300, seed=1)
    assert X.shape == (300, 64) and A.shape == (300, 2048)
    with pytest.raises(ValueError, match="min_prob"):
        SyntheticModel(10, 4, max_prob=0.1, min_prob=0.2)
    with pytest.raises(ValueError, match="n_features"):
        SyntheticModel(0, 4)
    with pytest.raises(ValueError, match="decoder must have d = 4"):
        evaluate_synthetic(np.ones((3, 4)), np.ones((3, 5)))
