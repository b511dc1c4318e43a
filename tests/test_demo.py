"""The main job's spectral chapter and the CLI entry point, checked in a real browser."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from _browser import check_html
from latentatlas import cli, demo
from latentatlas.datasets import digits, three_gaussians


def test_spectral_demo_report_renders(tmp_path, capsys):
    path = demo.demo(tmp_path, chapters=[], verbose=True)
    out = capsys.readouterr().out
    assert "energy quantiles" in out and "mean energy per class" in out
    assert path.name == "atlas_demo.html" and path.stat().st_size > 1_000_000  # plotly.js inlined
    page = check_html(path, min_plots=2)
    assert page.n_plots == 2
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic writer left nothing behind


def test_energy_summary_against_numpy():
    e = np.random.default_rng(0).random(101)
    labels = np.arange(101) % 3
    s = demo.energy_summary(e, labels)
    assert s["quantiles"]["median"] == np.median(e)
    assert s["class_mean"]["2"] == e[labels == 2].mean()


def test_datasets_shapes_and_seed_stream():
    rng = np.random.default_rng(42)
    X, y, X2 = three_gaussians(rng)
    assert X.shape == (1200, 32) and X2.shape == (1200, 2) and np.bincount(y).tolist() == [400] * 3
    # the notebook's stream: 3 cluster draws, the projection, the noise, in that order
    r = np.random.default_rng(42)
    parts = [c + 0.5 * r.standard_normal((400, 2)) for c in ([-2, 0], [2, 0.5], [0, 2.5])]
    proj = r.standard_normal((2, 32))
    want = np.vstack(parts) @ proj + 0.1 * r.standard_normal((1200, 32))
    assert np.array_equal(X, want)
    assert rng.standard_normal() == r.standard_normal()  # left advanced exactly as the notebook
    Xd, yd = digits()
    assert Xd.shape == (1797, 64) and set(yd.tolist()) == set(range(10))


def test_cli_help_and_errors(tmp_path):
    assert cli.main([]) == 2
    proc = subprocess.run([sys.executable, "-m", "latentatlas", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "demo" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "latentatlas", "demo", "--k", "99", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("latentatlas demo: error: k must satisfy")
