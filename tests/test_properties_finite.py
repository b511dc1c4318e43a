"""No NaN or infinity becomes a number (issue 25): property tests of every min-max, normalisation and
division of the package that a NaN/inf range, or a finite input whose sums overflow or underflow float64,
used to turn into a plausible number (zeros, a cosine of 0, a "degenerate" diagnosis).

Each property draws ordinary data, then scales it (or one row of it) by a power of two near float64's
limits, or plants a NaN/inf; the result must be the unscaled one (the quantity is scale-free) or a
ValueError naming the argument. ``make test`` runs the ``ci`` profile, ``make fuzz`` the ``fuzz`` one
(tests/conftest.py). taumode λ has its own properties (tests/test_properties.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from latentatlas import metrics, spectral
from latentatlas.minima.kde import silverman_covariance
from latentatlas.personas import cosine_similarity_matrix, prepare_cluster_samples
from latentatlas.personas.plots import _row_cosines
from latentatlas.search import SpectralIndex

FLOATS = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False, width=64)
#: Scales whose squares (or sums) overflow or underflow float64: powers of two, so that scaling is exact
#: and the scaled data are the same numbers (the rounding of a centring cannot differ).
HUGE = st.integers(515, 1000).map(lambda e: 2.0**e)  # 1.1e155 .. 1.1e301
TINY = st.integers(-1000, -548).map(lambda e: 2.0**e)  # 9.3e-302 .. 1.9e-165
EXTREME = st.one_of(HUGE, TINY)
BAD = st.sampled_from([np.nan, np.inf, -np.inf])


@st.composite
def spread_matrix(draw: Any, rows: tuple[int, int] = (3, 12), cols: tuple[int, int] = (2, 9)) -> np.ndarray:
    """A float64 matrix of ordinary values whose rows are not constant (so every ratio is defined)."""
    n = draw(st.integers(*rows))
    f = draw(st.integers(*cols))
    X = draw(hnp.arrays(np.float64, (n, f), elements=FLOATS))
    X += np.arange(f) * 0.37 - np.arange(n)[:, None] * 0.11  # no constant row or column
    return X


def _plant(draw: Any, v: np.ndarray) -> np.ndarray:
    v = v.copy()
    v.flat[draw(st.integers(0, v.size - 1))] = draw(BAD)
    return v


# ------------------------------------------------------------------------------- min-max (spectral)


@given(v=hnp.arrays(np.float64, st.integers(1, 30), elements=FLOATS), data=st.data())
def test_minmax_refuses_nan_and_inf(v: np.ndarray, data: Any) -> None:
    """Old: a NaN range gave NaN everywhere, an inf made every finite value 0."""
    with pytest.raises(ValueError, match="v contains NaN or infinity"):
        spectral.minmax(_plant(data.draw, v))


@given(v=hnp.arrays(np.float64, st.integers(2, 30), elements=FLOATS), top=st.floats(0.9e308, 1.79e308))
def test_minmax_of_a_range_that_overflows(v: np.ndarray, top: float) -> None:
    """Old: values near ±1e308 have a range of inf, and every value became 0 (the largest NaN)."""
    v = v / max(np.abs(v).max(), 1.0) * top
    v[0], v[-1] = -top, top
    got = spectral.minmax(v)
    want = (v / 2 - v.min() / 2) / (v.max() / 2 - v.min() / 2)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------- Pearson r


@given(x=hnp.arrays(np.float64, 12, elements=FLOATS), y=hnp.arrays(np.float64, 12, elements=FLOATS))
def test_pearson_is_scale_free(x: np.ndarray, y: np.ndarray) -> None:
    """Old: x·1e200 overflowed the sums (NaN), x·1e-200 underflowed them (NaN: "constant")."""
    x, y = x + np.arange(12) * 0.3, y - np.arange(12) * 0.2  # neither constant
    r = metrics.pearson(x, y)
    for c in (1e200, 1e-200, 1e300):
        np.testing.assert_allclose(metrics.pearson(x * c, y), r, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(metrics.pearson(x, y * c), r, rtol=1e-12, atol=1e-15)


@given(x=hnp.arrays(np.float64, 8, elements=FLOATS), data=st.data())
def test_pearson_refuses_nan_and_inf(x: np.ndarray, data: Any) -> None:
    """Old: NaN, as for a constant array: the two cases could not be told apart."""
    with pytest.raises(ValueError, match="b contains NaN or infinity"):
        metrics.pearson(x, _plant(data.draw, x))


# ------------------------------------------------------------------------------- row norms


@given(X=spread_matrix(), c=EXTREME)
def test_row_norms_are_scale_free(X: np.ndarray, c: float) -> None:
    from latentatlas.linalg import row_norms  # new with issue 25: imported here so the others run on old code

    np.testing.assert_allclose(row_norms(X * c) / c, row_norms(X), rtol=1e-13)


@given(X=spread_matrix(rows=(4, 10), cols=(3, 8)), c=HUGE)
def test_unit_rows_and_cosines_of_huge_samples(X: np.ndarray, c: float) -> None:
    """Old: |x|² overflowed to inf, so every row 'normalised' to zeros and every cosine was 0."""
    # a centred row below the absolute eps (1e-12, torch's) stays zero by design: not a scale-free case
    assume(np.linalg.norm(X - X.mean(axis=0), axis=1).min() > 1e-6)
    np.testing.assert_allclose(prepare_cluster_samples(X * c), prepare_cluster_samples(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cosine_similarity_matrix(X * c), cosine_similarity_matrix(X), rtol=1e-9, atol=1e-12)


@given(a=spread_matrix(rows=(2, 6), cols=(3, 8)), c=HUGE, data=st.data())
def test_layer_similarity_cosines_are_scale_free(a: np.ndarray, c: float, data: Any) -> None:
    """Old: the norms of huge rows overflowed and the cosine came out 0 (or NaN)."""
    b = a[::-1] + 1.0
    want = _row_cosines(a, b, "t")
    np.testing.assert_allclose(_row_cosines(a * c, b, "t"), want, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="must be finite"):
        _row_cosines(_plant(data.draw, a), b, "t")


# ------------------------------------------------------------------------------- search cosines


@given(X=spread_matrix(rows=(6, 14), cols=(3, 7)), c=EXTREME, data=st.data())
def test_search_cosine_of_an_extreme_row(X: np.ndarray, c: float, data: Any) -> None:
    """Old: the inverse norm of a row ×1e200 (or ×1e-200) was 0, so its cosine with every query was 0."""
    j = data.draw(st.integers(0, len(X) - 1))
    Xs = X.copy()
    Xs[j] *= c
    q = X[j : j + 1] + 0.01
    want = SpectralIndex(k=1).fit(X).search(q, k=len(X), tau=1.0)
    got = SpectralIndex(k=1).fit(Xs).search(q, k=len(X), tau=1.0)
    note(f"row {j} x {c:g}")
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)


def test_search_refuses_a_dot_product_that_overflows() -> None:
    X = np.random.default_rng(0).standard_normal((8, 4))
    X[2] *= 1e200
    idx = SpectralIndex(k=1).fit(X)
    with pytest.raises(ValueError, match="Q row 0: its dot products with the items overflow"):
        idx.search(X[2:3] * 1e100, k=3, tau=1.0)  # ~1e300 and ~1e200: their dot product is ~1e500


# ------------------------------------------------------------------------------- sparse energies


@given(X=spread_matrix(rows=(3, 10), cols=(4, 9)), c=HUGE)
def test_sparse_rayleigh_energy_is_scale_free(X: np.ndarray, c: float) -> None:
    """Old: xᵀLx and xᵀx of a sparse row ×1e200 overflowed, and its energy came out NaN."""
    L = spectral.feature_laplacian(X, 2)
    want = spectral.rayleigh_energy(sp.csr_matrix(X), L)
    got = spectral.rayleigh_energy(sp.csr_matrix(X * c), L)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, spectral.rayleigh_energy(X * c, L), rtol=1e-10, atol=1e-12)  # as the dense path


@given(X=spread_matrix(rows=(3, 10), cols=(4, 9)), c=EXTREME, data=st.data())
def test_the_energy_twin_is_scale_free_as_the_kernel(X: np.ndarray, c: float, data: Any) -> None:
    """Old: reference.core.rayleigh_energy gave NaN for a row ×1e160 (its xᵀx overflowed) where the kernel
    is right: one row scaled by a power of two keeps its energy in both, and they agree."""
    from latentatlas import _core, reference

    L = sp.csr_matrix(spectral.feature_laplacian(X, 2))
    args = (L.indptr.astype(np.int64), L.indices.astype(np.int64), L.data.astype(np.float64))
    want = reference.core.rayleigh_energy(X, *args)
    i = data.draw(st.integers(0, X.shape[0] - 1))
    Xc = X.copy()
    Xc[i] *= c
    got = reference.core.rayleigh_energy(Xc, *args)
    if c > 1 or np.dot(Xc[i], Xc[i]) > 1e-9:  # a tiny row under the 1e-9 cut has energy 0 by definition
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    else:
        assert got[i] == 0.0
    np.testing.assert_allclose(got, _core.rayleigh_energy(Xc, *args), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------- the KDE bandwidth


@given(V=spread_matrix(rows=(5, 20), cols=(2, 2)), c=EXTREME)
def test_kde_of_an_extreme_view_says_why(V: np.ndarray, c: float) -> None:
    """Old: an overflowing (inf) or underflowing (0) covariance was reported as points on a line."""
    V = V + np.stack([np.arange(len(V)), np.arange(len(V)) ** 2], axis=1)  # full rank
    silverman_covariance(V)
    which = "overflows" if c > 1 else "underflows"
    with pytest.raises(ValueError, match=f"X2d's covariance {which} float64"):
        silverman_covariance(V * c)
