"""The input's kind is decided once, at the door of a public call (``chunked.rows``), never again below.

``chunked.kind_of`` is the one place that asks whether X is a Dask array, chunks, a memmap or an array;
each public call must ask it exactly once for its X, whatever X is, and the result must not change.
"""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas import SpectralEnergy, SpectralIndex, chunked, feature_laplacian, rayleigh_energy, taumode_lambda
from latentatlas.sae import TopKSAE, dense_search

da = pytest.importorskip("dask.array")


@pytest.fixture
def count(monkeypatch):
    calls = []
    real = chunked.kind_of

    def counted(X):
        calls.append(type(X).__name__)
        return real(X)

    monkeypatch.setattr(chunked, "kind_of", counted)
    return calls


def _kinds(X, tmp_path):
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=X.dtype, shape=X.shape)
    mm[:] = X
    mm.flush()
    return {
        "array": X,
        "memmap": np.load(tmp_path / "x.npy", mmap_mode="r"),
        "chunks": [X[:70], X[70:]],
        "dask": da.from_array(X, chunks=(50, -1)),
    }


def _value(x):
    if isinstance(x, tuple):
        return tuple(_value(v) for v in x)
    return np.asarray(x.compute() if hasattr(x, "compute") else x)


@pytest.mark.parametrize("kind", ["array", "memmap", "chunks", "dask"])
def test_each_public_call_asks_the_kind_once(count, kind, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((160, 12)).astype(np.float32)
    L = feature_laplacian(X, 3)
    sae = TopKSAE(12, 40, 4, seed=1)
    Q = X[:5].copy()
    calls = {
        "rayleigh_energy": lambda X: rayleigh_energy(X, L),
        "taumode_lambda": lambda X: taumode_lambda(X, L),
        "feature_laplacian": lambda X: feature_laplacian(X, 3).toarray(),
        "SpectralEnergy.fit_energy": lambda X: SpectralEnergy(k=3).fit_energy(X),
        "TopKSAE.encode": lambda X: tuple(sae.encode(X)),
        "TopKSAE.reconstruct": lambda X: sae.reconstruct(X),
        "TopKSAE.health": lambda X: sae.health(X)["mse"],
        "dense_search": lambda D: dense_search(Q, D, 3),
    }
    if kind != "chunks":  # a search scans its items again: chunks are refused
        calls["SpectralIndex.fit"] = lambda X: SpectralIndex(k=3).fit(X).lambdas()
    want = {name: _value(fn(X)) for name, fn in calls.items()}
    for name, fn in calls.items():
        inp = _kinds(X, tmp_path)[kind]
        count.clear()
        got = _value(fn(inp))
        # dense_search's queries are a plain array checked by as_matrix: only D is a "rows" input
        assert len(count) == 1, f"{name} on {kind} asked the kind {len(count)} times: {count}"
        np.testing.assert_allclose(
            np.asarray(got, dtype=object).astype(float) if isinstance(got, tuple) else got,
            np.asarray(want[name], dtype=object).astype(float) if isinstance(want[name], tuple) else want[name],
            rtol=1e-5,
            atol=1e-6,
        )
