"""latentatlas.chunked: one implementation for arrays, memmaps, chunk iterables and Dask arrays.

The Dask tests run on a real ``distributed.LocalCluster`` (2 worker processes, 1 thread each),
started once per session. Every chunked result is compared with the in-memory path on the same
rows, for several chunkings: the same bits (the reduction order is a function of the row order).
"""

from __future__ import annotations

import os
import subprocess
import sys

import cloudpickle
import dask
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from distributed import Client, LocalCluster

from latentatlas import chunked, spectral
from latentatlas.chunked import LEAF_ROWS

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module

N, F = 2 * LEAF_ROWS + 901, 24  # three leaves, the last one partial
CHUNKINGS = [(N,), (1000,), (LEAF_ROWS,), (3000, 1500, N - 4500), (777,)]


@pytest.fixture(scope="session")
def client():
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, worker_dashboard_address=None
    )
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((N, 6)) @ rng.standard_normal((6, F))  # correlated features
    return (base + 0.3 * rng.standard_normal((N, F))).astype(np.float32)


def as_dask(X, rows, cols=-1):
    if isinstance(rows, tuple):  # a pattern of sizes, repeated over the rows
        rows = tuple(len(c) for c in chunks_of(X, rows))
    return da.from_array(X, chunks=(rows, cols))


def chunks_of(X, sizes):
    """X's rows cut into chunks of the given sizes, the pattern repeated until every row is in one."""
    out, a, t = [], 0, 0
    while a < X.shape[0]:
        out.append(X[a : a + sizes[t % len(sizes)]])
        a, t = a + sizes[t % len(sizes)], t + 1
    return out


def test_import_never_imports_dask():
    code = "import sys, latentatlas, latentatlas.chunked, latentatlas.spectral, latentatlas.sae; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tree_is_independent_of_how_leaves_are_grouped():
    rng = np.random.default_rng(1)
    leaves = [rng.standard_normal(5) * 10.0 ** rng.integers(-8, 8) for _ in range(37)]
    want = None
    for _ in range(20):  # random contiguous blocks merged in a random order
        cuts = np.sort(rng.choice(np.arange(1, 37), rng.integers(0, 10), replace=False))
        trees = []
        for a, b in zip([0, *cuts], [*cuts, 37]):
            t = chunked._Tree()
            for j in range(a, b):
                t.push(0, j, leaves[j])
            trees.append(t)
        rng.shuffle(trees)
        got = chunked._merge_trees(*trees).result(37)
        want = got if want is None else want
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(want, np.sum(leaves, axis=0), rtol=1e-12, atol=1e-6)


def test_gram_same_bits_for_any_chunking_and_matches_numpy(X, client):
    want = chunked.rows(X).gram()
    np.testing.assert_allclose(want, X.astype(np.float64).T @ X.astype(np.float64), rtol=1e-5, atol=1e-3)
    for sizes in CHUNKINGS:
        np.testing.assert_array_equal(chunked.rows(chunks_of(X, sizes)).gram(), want)
        np.testing.assert_array_equal(chunked.rows(iter(chunks_of(X, sizes))).gram(), want)
        np.testing.assert_array_equal(chunked.rows(as_dask(X, sizes)).gram(), want)
    np.testing.assert_array_equal(chunked.rows(as_dask(X, 1000, 7)).gram(), want)  # chunks along the features


def test_memmap_streams_and_matches(X, tmp_path):
    path = tmp_path / "x.f32"
    m = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    m[:] = X
    m.flush()
    r = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    np.testing.assert_array_equal(chunked.rows(r).gram(), chunked.rows(X).gram())
    L = spectral.feature_laplacian(X, 4)
    np.testing.assert_array_equal(spectral.rayleigh_energy(r, L), spectral.rayleigh_energy(X, L))


def test_truncated_memmap_is_an_error_not_a_crash(X, tmp_path):
    path = tmp_path / "x.f32"
    X.tofile(path)
    r = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    os.truncate(path, X.nbytes // 2)
    with pytest.raises(OSError, match="truncated"):
        chunked.rows(r).gram()
    with pytest.raises(OSError, match="truncated"):
        spectral.rayleigh_energy(r[: LEAF_ROWS * 2], sp.eye(F))


@pytest.mark.parametrize("sizes", CHUNKINGS[1:] + [(1000, 7)])
def test_spectral_on_dask_equals_in_memory(X, client, sizes):
    rows, cols = (sizes[0], sizes[1]) if len(sizes) == 2 and sizes[1] == 7 else (sizes, -1)
    Xd = as_dask(X, rows, cols)
    W = spectral.feature_graph(X, 5)
    Wd = spectral.feature_graph(Xd, 5)
    assert (W != Wd).nnz == 0
    Ld = spectral.feature_laplacian(Xd, 5, normalized=True)
    assert (spectral.feature_laplacian(X, 5, normalized=True) != Ld).nnz == 0

    se, sed = spectral.SpectralEnergy(k=5).fit(X), spectral.SpectralEnergy(k=5).fit(Xd)
    e = sed.energy()
    assert isinstance(e, da.Array) and e.chunks[0] == Xd.chunks[0]  # lazy, aligned with the rows
    np.testing.assert_array_equal(e.compute(), se.energy())
    np.testing.assert_array_equal(sed.energy(Xd[:1500]).compute(), se.energy(X[:1500]))
    np.testing.assert_array_equal(sed.normalized_energy().compute(), se.normalized_energy())
    np.testing.assert_array_equal(spectral.rayleigh_energy(Xd, Ld).compute(), spectral.rayleigh_energy(X, Ld))
    lam = spectral.taumode_lambda(Xd, Ld)
    assert isinstance(lam, da.Array)
    np.testing.assert_array_equal(lam.compute(), spectral.taumode_lambda(X, Ld))
    np.testing.assert_array_equal(
        spectral.taumode_lambda(Xd, Ld, tau=0.5).compute(), spectral.taumode_lambda(X, Ld, tau=0.5)
    )


def test_chunks_feed_the_spectral_api(X):
    L = spectral.feature_laplacian(X, 5)
    assert (spectral.feature_laplacian(chunks_of(X, (1000,) * 5), 5) != L).nnz == 0
    se = spectral.SpectralEnergy(k=5).fit(iter(chunks_of(X, (3000, N - 3000))))
    np.testing.assert_array_equal(se.energy(chunks_of(X, (999,) * 5)), spectral.rayleigh_energy(X, L))
    with pytest.raises(ValueError, match="already read"):
        se.energy()  # the fitted rows were a one-shot iterator


def test_nan_in_one_chunk_names_the_row(X, client):
    bad = X.copy()
    bad[3333, 5] = np.nan
    for src in (chunks_of(bad, (1000,) * 5), as_dask(bad, 1000)):
        with pytest.raises(ValueError, match=r"first at row 3333\)"):
            spectral.feature_graph(src, 4)
    with pytest.raises(ValueError, match=r"first at row 3333\)"):
        spectral.rayleigh_energy(as_dask(bad, 700), sp.eye(F)).compute()


def test_mixed_dtypes_across_chunks_are_a_type_error(X, client):
    parts = chunks_of(X, (1000,) * 5)
    parts[2] = parts[2].astype(np.float64)
    with pytest.raises(TypeError, match="starting at row 2000 has dtype float64"):
        chunked.rows(parts).gram()
    blocks = [da.from_delayed(dask.delayed(lambda p: p)(p), shape=p.shape, dtype=np.float32) for p in parts]
    with pytest.raises(TypeError, match="has dtype float64, but X has dtype float32"):
        chunked.rows(da.concatenate(blocks)).gram()


def _die_once(block, marker):
    # the first worker to run this block dies (a hard exit, as an OOM kill would look)
    if not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write("x")
        os._exit(1)
    return block


def test_a_killed_worker_is_retried_and_the_result_is_exact(X, client, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTATLAS_DASK_TIMEOUT", "120")  # a hung cluster fails the test, never hangs it
    marker = str(tmp_path / "died")
    Xd = as_dask(X, 1000).map_blocks(_die_once, marker, meta=np.empty((0, 0), X.dtype))  # meta: never run it here
    np.testing.assert_array_equal(chunked.rows(Xd).gram(), chunked.rows(X).gram())
    assert os.path.exists(marker)


# -- SAE, search, kNN ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sae(X):
    from latentatlas.sae import TopKSAE

    m = TopKSAE(F, 64, 6, seed=3)
    m.b_enc[:] = np.random.default_rng(4).standard_normal(64).astype(np.float32) * 0.1
    m.b_dec[:] = X.mean(axis=0)
    return m


@pytest.mark.parametrize("rows", [1000, (3000, 1500, N - 4500)])
def test_sae_on_dask_equals_in_memory(X, sae, client, rows):
    Xd = as_dask(X, rows)
    v, i = sae.encode(X)
    vd, id_ = sae.encode(Xd)
    assert isinstance(vd, da.Array) and vd.chunks[0] == Xd.chunks[0]
    vd, id_ = dask.compute(vd, id_)
    np.testing.assert_array_equal(vd, v)
    np.testing.assert_array_equal(id_, i)
    np.testing.assert_array_equal(sae.encode(Xd, k=3)[1].compute(), sae.encode(X, k=3)[1])
    np.testing.assert_array_equal(sae.decode(*sae.encode(Xd)).compute(), sae.decode(v, i))
    np.testing.assert_array_equal(sae.reconstruct(Xd).compute(), sae.reconstruct(X))
    h, hd = sae.health(X), sae.health(Xd)
    for key in ("mse", "fve", "l0", "dead_fraction"):
        assert h[key] == hd[key], key
    np.testing.assert_array_equal(h["frequencies"], hd["frequencies"])
    hc = sae.health(chunks_of(X, (999,) * 5))
    assert hc["mse"] == h["mse"] and hc["fve"] == h["fve"]


def test_sae_health_matches_an_independent_computation(X, sae):
    v, i = sae.encode(X)
    Xh = sae.decode(v, i).astype(np.float64)
    err = Xh - X
    h = sae.health(X)
    assert h["mse"] == pytest.approx(np.mean(err**2), rel=1e-12)
    assert h["fve"] == pytest.approx(1 - np.sum(err**2) / np.sum((X - X.astype(np.float64).mean(0)) ** 2), rel=1e-12)
    assert h["l0"] == pytest.approx((v > 0).sum(1).mean())


def test_search_with_a_chunked_corpus(X, sae, client):
    from latentatlas.sae import dense_search, latent_search

    Q = X[::97][:40] + np.float32(0.01)
    want = dense_search(Q, X, 7)
    for D in (as_dask(X, 1000), as_dask(X, (3000, 1500, N - 4500)), chunks_of(X, (777,) * 7)):
        got = dense_search(Q, D, 7)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
    qc, dc = sae.encode(Q), sae.encode(X)
    want = latent_search(qc, dc, 9, n_latents=64)
    for rows in (1000, (LEAF_ROWS, N - LEAF_ROWS)):
        dcd = sae.encode(as_dask(X, rows))
        got = latent_search(qc, dcd, 9, n_latents=64)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(latent_search(qc, sae.encode(as_dask(X, 1000)), 9)[1], latent_search(qc, dc, 9)[1])


def test_knn_graph_on_dask_is_the_in_memory_graph(client):
    from latentatlas import _core
    from latentatlas.minima.diffusion import knn_sqdist

    rng = np.random.default_rng(5)
    Y = rng.standard_normal((700, 5)).astype(np.float32)
    Y[10] = Y[20]  # a duplicate row: its tie must break as in memory
    want = _core.knn_sqdist(Y, k=6)
    for rows in (700, 100, (333, 300, 67)):
        d2, idx = knn_sqdist(da.from_array(Y, chunks=(rows, -1)), 6)
        assert isinstance(d2, da.Array)
        d2, idx = dask.compute(d2, idx)
        np.testing.assert_array_equal(idx, want[1])
        np.testing.assert_array_equal(d2, want[0])


# -- streaming training and out-of-core encode ---------------------------------------------------------
def _fresh():
    from latentatlas.sae import TopKSAE

    return TopKSAE(F, 48, 4, seed=7)


@pytest.mark.parametrize("opts", [{"neighbors": 0}, {"neighbors": 3, "auxk": 8}])
def test_streaming_fit_is_partial_fit_over_the_same_batches(X, client, opts, tmp_path):
    from latentatlas.sae.train import fit_stream

    Xs = X[:3000]
    ref = _fresh()
    for _ in range(2):
        for a in range(0, 3000, 256):
            ref.partial_fit(Xs[a : a + 256], lr=1e-3, **opts)
    path = tmp_path / "x.npy"
    np.save(path, Xs)
    for src in (as_dask(Xs, 700), chunks_of(Xs, (1000, 1, 1999)), np.load(path, mmap_mode="r")):
        m = fit_stream(_fresh(), src, epochs=2, batch_size=256, lr=1e-3, progress=False, **opts)
        if not isinstance(src, np.ndarray):  # TopKSAE.fit streams chunks and Dask arrays
            m2 = _fresh().fit(src, epochs=2, batch_size=256, lr=1e-3, schedule="constant", progress=False, **opts)
            np.testing.assert_array_equal(m2.W_enc, m.W_enc)
        for p in ("W_enc", "b_enc", "W_dec", "b_dec"):
            np.testing.assert_array_equal(getattr(m, p), getattr(ref, p))
    assert len(m.history_) == 2 and np.isfinite(m.history_[-1]["loss"])
    with pytest.raises(ValueError, match="one-shot"):
        _fresh().fit(iter(chunks_of(Xs, (1000,) * 3)), epochs=2, progress=False)


def test_fit_on_a_memmap_equals_fit_in_memory(X, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, X[:1500])
    a = _fresh().fit(X[:1500], epochs=1, neighbors=2, progress=False)
    b = _fresh().fit(np.load(path, mmap_mode="r"), epochs=1, neighbors=2, progress=False)
    np.testing.assert_array_equal(a.W_dec, b.W_dec)


def test_encode_to_npy_is_atomic_and_resumes(X, sae, tmp_path, client, monkeypatch):
    from latentatlas.sae import model as model_mod

    v, i = sae.encode(X)
    out = tmp_path / "codes"
    calls = []
    real = model_mod._encode_rows

    def crash_on_third(*args):
        calls.append(args[-1])
        if len(calls) == 3:
            raise KeyboardInterrupt  # a crash mid-run
        return real(*args)

    monkeypatch.setattr(model_mod, "_encode_rows", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        sae.encode_to(X, out, block_rows=1000, progress=False)
    assert not (out / "values.npy").exists() and (out / "values.npy.partial").exists()
    calls.clear()
    monkeypatch.setattr(model_mod, "_encode_rows", lambda *a: (calls.append(a[-1]), real(*a))[1])
    gv, gi = sae.encode_to(as_dask(X, 1300), out, block_rows=1000, progress=False)
    assert calls[0] == 2000  # resumed after the two finished blocks
    assert isinstance(gv, np.memmap)
    np.testing.assert_array_equal(gv, v)
    np.testing.assert_array_equal(gi, i)
    assert sorted(p.name for p in out.iterdir()) == ["indices.npy", "values.npy"]
