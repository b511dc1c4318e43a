"""`latentatlas atlas`: end-to-end report in headless Chromium, input formats, bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

import latentatlas.minima  # noqa: F401  (registers latentatlas.minima.blend in sys.modules)
from _browser import check_html
from latentatlas.cli import main
from latentatlas.datasets import three_gaussians

FAST = ["--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("atlas")
    X, y, _ = three_gaussians(4, n_per_cluster=30, dim=16)
    np.save(d / "x.npy", X)
    np.savetxt(d / "y.txt", y, fmt="%d")
    np.save(d / "y.npy", y)
    np.savez(d / "two.npz", emb=X, other=X[:5])
    save_file({"emb": X.astype(np.float32), "extra": np.zeros((2, 2), np.float32)}, str(d / "x.safetensors"))
    return d, X, y


def test_end_to_end_report_renders(data, monkeypatch):
    d, X, y = data
    # keep the run short: fewer basin-hopping steps (the defaults are the notebook's)
    blend = sys.modules["latentatlas.minima.blend"]  # the package attribute `blend` is the function

    orig = blend.compare
    monkeypatch.setattr(blend, "compare", lambda *a, **k: orig(*a, **k, basin_kwargs={"niter": 5}, n_seeds=4))
    out = d / "report.html"
    args = ["--knn", "exact", "--n-neighbors", "10", "--clusters", "3", "--max-points", "50"]
    assert main(["atlas", str(d / "x.npy"), "--labels", str(d / "y.txt"), "--out", str(out), *args, *FAST]) == 0
    text = out.read_text()
    assert "Comparison" in text and "BasinHop + Spectral" in text and "purity" in text
    assert "ToMATo persistence" in text and "3 clusters kept" in text
    assert "evenly strided subset of 50 items (max_points = 50); all numbers use all 90" in text
    page = check_html(out, min_plots=16)
    assert page.n_rendered == page.n_plots


def test_formats_and_python_api(data, tmp_path, monkeypatch):
    d, X, y = data
    blend = sys.modules["latentatlas.minima.blend"]  # the package attribute `blend` is the function

    orig = blend.compare
    monkeypatch.setattr(blend, "compare", lambda *a, **k: orig(*a, **k, basin_kwargs={"niter": 3}, n_seeds=2))
    for args in (
        [str(d / "two.npz"), "--key", "emb", "--labels", str(d / "y.npy")],
        [str(d / "x.safetensors"), "--key", "emb", "--alpha", "0.3", "--k", "4", "--quantile", "0.2"],
    ):
        out = tmp_path / "r.html"
        assert main(["atlas", *args, "--out", str(out), *FAST]) == 0
        assert out.stat().st_size > 0
        out.unlink()
    from latentatlas.minima import minima_report

    path, res = minima_report(X, y, out=tmp_path / "api.html", progress=False)
    assert path.exists() and len(res.rows) == 9 and res.alpha == 0.5


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.npy"], "not found"),
        (["y.txt"], "unsupported input format"),
        (["two.npz"], "choose one with --key"),
        (["two.npz", "--key", "nope"], "no array 'nope'"),
        (["x.safetensors"], "choose one with --key"),
        (["bad.npy"], "cannot read"),
        (["vec.npy"], "must be 2-D"),
        (["nan.npy"], "NaN"),
        (["x.npy", "--labels", "short.txt"], "--labels has 5 entries"),
        (["x.npy", "--labels", "missing.txt"], "labels file not found"),
        (["x.npy", "--alpha", "1.5"], "alpha must be in [0, 1]"),
        (["x.npy", "--quantile", "0"], "quantile must be in the open interval"),
        (["tiny.npy"], "at least 10 points"),
        (["x.npy", "--n-neighbors", "90"], "n_neighbors must satisfy"),
        (["x.npy", "--clusters", "0"], "n_clusters must be"),
    ],
)
def test_bad_input_one_line_error(data, args, message, capsys):
    d, X, _ = data
    (d / "bad.npy").write_bytes(b"not a numpy file")
    np.save(d / "vec.npy", X[:, 0])
    np.save(d / "nan.npy", np.full((12, 3), np.nan))
    np.save(d / "tiny.npy", X[:5])
    (d / "short.txt").write_text("0\n1\n2\n0\n1\n")
    paths = [str(d / a) if i == 0 or (i > 0 and args[i - 1] in ("--labels",)) else a for i, a in enumerate(args)]
    assert main(["atlas", *paths, "--out", str(d / "never.html"), *FAST]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (d / "never.html").exists()


def test_no_traceback_without_debug(data):
    d, _, _ = data
    cmd = [sys.executable, "-m", "latentatlas", "atlas", str(d / "missing.npy")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "not found" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "latentatlas", "--debug", "atlas", str(d / "missing.npy")],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "Traceback" in r.stderr
