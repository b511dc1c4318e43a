"""SpectralIndex: exact λ-aware search against a brute-force NumPy oracle and against arrowspace 0.30.0
itself (a CPython 3.12 subprocess, see peers.py); blocking, memmaps, persistence, CLI, bad input."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import scipy.sparse as sp

import latentatlas.search as search_mod
from latentatlas import chunked
from latentatlas.cli import main
from latentatlas.reference import core as twin
from latentatlas.reference import topk_rows
from latentatlas.search import SpectralIndex
from peers import arrowspace_python, run_job


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((1500, 16)) + 0.3 * rng.standard_normal((1500, 1))  # correlated features
    X[7] = 0.0  # a zero item
    Q = np.vstack([X[:4], rng.standard_normal((6, 16)), np.zeros((1, 16))])  # last: a zero query
    return X, Q


def oracle(X, L, Q, k, tau, band=None, lam="taumode"):
    """Brute force from the formulas: λ = min-max of the raw λ, query λ scaled and clamped, dense scores."""
    L = sp.csr_matrix(L)
    parts = (L.indptr.astype(np.int64), L.indices.astype(np.int64), L.data.astype(np.float64))
    raw_of = twin.taumode_raw if lam == "taumode" else twin.rayleigh_energy
    raw, qraw = raw_of(X, *parts), raw_of(Q, *parts)
    lo, span = raw.min(), raw.max() - raw.min()
    lx, lq = (raw - lo) / span, np.clip((qraw - lo) / span, 0, 1)
    nx, nq = np.linalg.norm(X, axis=1), np.linalg.norm(Q, axis=1)
    Xn = X / np.where(nx > 0, nx, 1)[:, None]
    Qn = Q / np.where(nq > 0, nq, 1)[:, None]
    S = tau * (Qn @ Xn.T) + (1 - tau) * (1 - np.minimum(np.abs(lq[:, None] - lx[None, :]), 1))
    if band is not None:
        S[:, ~((band[0] <= lx) & (lx <= band[1]))] = -np.inf
    return (*topk_rows(S, k), lx)


@pytest.mark.parametrize("lam", ["taumode", "energy"])
@pytest.mark.parametrize("tau", [0.0, 0.7, 1.0])
def test_matches_brute_force(corpus, tau, lam):
    X, Q = corpus
    idx = SpectralIndex(k=6, lam=lam).fit(X)
    want_v, want_i, lx = oracle(X, idx.laplacian_, Q, 12, tau, lam=lam)
    np.testing.assert_allclose(idx.lambdas(), lx, atol=1e-12)
    v, i = idx.search(Q, k=12, tau=tau)
    assert v.shape == i.shape == (len(Q), 12) and v.dtype == np.float64 and i.dtype == np.int64
    np.testing.assert_allclose(v, want_v, atol=1e-12)
    if tau > 0:  # tau = 0 ties whole λ-groups; scores above say the choice is equally good
        np.testing.assert_array_equal(i, want_i)
    # the zero query has cosine 0 with everything: its scores are the λ term alone
    assert np.all(v[-1] <= 1 - tau + 1e-12)


def test_band_and_lambda_order(corpus):
    X, Q = corpus
    idx = SpectralIndex(k=6).fit(X)
    band = (0.2, 0.45)
    want_v, want_i, lx = oracle(X, idx.laplacian_, Q, 9, 0.6, band=band)
    v, i = idx.search(Q, k=9, tau=0.6, band=band)
    np.testing.assert_array_equal(i, want_i)
    np.testing.assert_allclose(v, want_v, atol=1e-12)
    lam, ids = idx.lambdas_sorted()
    assert np.array_equal(ids, np.lexsort((np.arange(len(lx)), lx))) and np.array_equal(lam, idx.lambdas()[ids])
    inb = idx.in_band(*band)
    assert set(inb) == set(np.flatnonzero((band[0] <= lx) & (lx <= band[1])))
    assert np.all(np.diff(idx.lambdas()[inb]) >= 0)
    n_in = len(inb)
    with pytest.raises(ValueError, match="k must"):
        idx.search(Q, k=n_in + 1, band=band)


def test_cosine_search_at_tau_one_f32(corpus):
    X, Q = corpus
    X32, Q32 = X.astype(np.float32), Q.astype(np.float32)
    idx = SpectralIndex().fit(X32)
    v, i = idx.search(Q32[:10], k=5, tau=1.0)
    Xn = X / np.maximum(np.linalg.norm(X, axis=1), 1e-300)[:, None]
    cos = (Q[:10] / np.linalg.norm(Q[:10], axis=1)[:, None]) @ Xn.T
    np.testing.assert_allclose(v, np.take_along_axis(cos, i, axis=1), atol=1e-5)  # each id scores its value
    assert (i == topk_rows(cos, 5)[1]).mean() > 0.95  # float32 may swap near-ties


def test_blocks_memmap_and_threads_give_identical_results(corpus, tmp_path, monkeypatch):
    X, Q = corpus
    Qs = np.repeat(Q, 30, axis=0)
    want = SpectralIndex(k=6).fit(X).search(Qs, k=7, tau=0.5, band=(0.1, 0.8))
    np.save(tmp_path / "x.npy", X)
    Xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    monkeypatch.setattr(chunked, "MAP_ROWS", 2048 // 4)  # not a multiple of the tile: still exact ids
    monkeypatch.setattr(search_mod, "QUERY_BLOCK", 64)
    got = SpectralIndex(k=6, threads=1).fit(Xm).search(Qs, k=7, tau=0.5, band=(0.1, 0.8))
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], atol=1e-13)


def test_dask_corpus_gives_the_in_memory_result(corpus):
    da = pytest.importorskip("dask.array", reason="the [dask] extra is not installed")
    X, Q = corpus
    want = SpectralIndex(k=6).fit(X).search(Q, k=7, tau=0.6, band=(0.0, 0.7))
    idx = SpectralIndex(k=6).fit(da.from_array(X, chunks=(333, 16)))
    got = idx.search(Q, k=7, tau=0.6, band=(0.0, 0.7))
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], atol=1e-13)


def test_save_load_roundtrip_and_corruption(corpus, tmp_path):
    X, Q = corpus
    idx = SpectralIndex(k=5, tau_mode=0.3).fit(X.astype(np.float32))
    want = idx.search(Q, k=4)
    idx.save(tmp_path / "ix")
    for mmap in (True, False):
        back = SpectralIndex.load(tmp_path / "ix", mmap=mmap)
        assert back.get_params() == idx.get_params()
        assert isinstance(back.items_, np.memmap) == mmap
        got = back.search(Q, k=4)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(back.lambdas_sorted()[1], idx.lambdas_sorted()[1])
    st, meta = tmp_path / "ix" / "index.safetensors", tmp_path / "ix" / "index.json"
    assert not list((tmp_path / "ix").glob("*.tmp"))
    with pytest.raises(FileNotFoundError, match="index.json"):
        SpectralIndex.load(tmp_path / "nowhere")
    raw = st.read_bytes()
    st.write_bytes(raw[: len(raw) - 100])  # truncated
    with pytest.raises(ValueError, match="index.safetensors"):
        SpectralIndex.load(tmp_path / "ix")
    st.write_bytes(raw)
    m = json.loads(meta.read_text())
    meta.write_text(json.dumps({**m, "id": "another"}))  # a JSON from another save
    with pytest.raises(ValueError, match="does not belong"):
        SpectralIndex.load(tmp_path / "ix")
    meta.write_text("{not json")
    with pytest.raises(ValueError, match="index.json"):
        SpectralIndex.load(tmp_path / "ix")
    meta.write_text(json.dumps({**m, "n_items": m["n_items"] + 1}))
    with pytest.raises(ValueError, match="corrupt"):
        SpectralIndex.load(tmp_path / "ix")
    (hlen,) = struct.unpack("<Q", raw[:8])
    st.write_bytes(raw[:8] + b"{" * hlen + raw[8 + hlen :])  # garbage header
    meta.write_text(json.dumps(m))
    with pytest.raises(ValueError, match="index.safetensors"):
        SpectralIndex.load(tmp_path / "ix")


def test_bad_input(corpus):
    X, Q = corpus
    idx = SpectralIndex(k=4).fit(X[:200])
    with pytest.raises(ValueError, match="Q has 5 features"):
        idx.search(Q[:, :5])
    bad = Q.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="Q contains NaN"):
        idx.search(bad)
    with pytest.raises(ValueError, match="k must"):
        idx.search(Q, k=201)
    with pytest.raises(ValueError, match="tau must be in"):
        idx.search(Q, tau=1.5)
    with pytest.raises(ValueError, match="band"):
        idx.search(Q, band=(0.5, 0.1))
    with pytest.raises(ValueError, match="laplacian has shape"):
        SpectralIndex().fit(X, laplacian=sp.eye(5))
    with pytest.raises(ValueError, match="laplacian contains NaN"):
        SpectralIndex().fit(X, laplacian=sp.diags(np.full(16, np.nan)))
    Xbad = X[:50].copy()
    Xbad[9, 1] = np.inf
    with pytest.raises(ValueError, match="X contains NaN or infinity .*row 9"):
        SpectralIndex().fit(Xbad)
    with pytest.raises(ValueError, match="lam must be"):
        SpectralIndex(lam="nope").fit(X)
    with pytest.raises(RuntimeError, match="not fitted"):
        SpectralIndex().search(Q)
    one = idx.search(Q[0], k=3)  # a 1-D vector is one query
    assert one[1].shape == (1, 3)


def test_cli_build_and_query(corpus, tmp_path, capsys):
    X, Q = corpus
    np.save(tmp_path / "x.npy", X.astype(np.float32))
    np.save(tmp_path / "q.npy", Q[:3].astype(np.float32))
    assert main(["search", "build", str(tmp_path / "x.npy"), "--out", str(tmp_path / "ix"), "--quiet"]) == 0
    out = tmp_path / "r.npz"
    argv = ["search", "query", str(tmp_path / "ix"), str(tmp_path / "q.npy"), "--k", "4", "--tau", "0.8"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    want = SpectralIndex().fit(X.astype(np.float32)).search(Q[:3].astype(np.float32), k=4, tau=0.8)
    with np.load(out) as z:
        np.testing.assert_array_equal(z["ids"], want[1])
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(f"0\t{want[1][0, 0]}:")
    assert main(["search", "query", str(tmp_path / "nope"), str(tmp_path / "q.npy")]) == 1
    assert "not found" in capsys.readouterr().err


def test_same_results_as_arrowspace(tmp_path):
    """Given arrowspace's own L, the same λ, top-k ids and scores as arrowspace 0.30.0's ``search``."""
    py, why = arrowspace_python()
    if py is None:
        print(f"skipped: {why}")
        pytest.skip(why)
    rng = np.random.default_rng(11)
    X = rng.standard_normal((700, 20)) + 0.5 * rng.standard_normal((700, 1))
    Q = np.vstack([X[:5], rng.standard_normal((5, 20))])
    np.savez(tmp_path / "in.npz", X=X, Q=Q, k=10, tau=0.7)
    run_job(py, tmp_path / "in.npz", tmp_path / "out.npz")
    a = np.load(tmp_path / "out.npz")
    L = (a["L_data"], a["L_indices"], a["L_indptr"], tuple(a["L_shape"]))
    idx = SpectralIndex().fit(X, laplacian=L)
    np.testing.assert_allclose(idx.lambdas(), a["lambdas"], atol=1e-8)  # arrowspace keeps L in float32
    np.testing.assert_array_equal(idx.lambdas_sorted()[1], a["sorted_ids"])
    v, i = idx.search(Q, k=10, tau=0.7)
    np.testing.assert_allclose(v, a["scores"], atol=1e-8)
    for r, t in zip(*np.nonzero(i != a["ids"])):  # ties aside: a differing id sits in a run of equal scores
        assert any(abs(v[r, t] - v[r, u]) < 1e-8 for u in (t - 1, t + 1) if 0 <= u < 10), (r, t)
