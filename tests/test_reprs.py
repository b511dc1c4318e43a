"""Result objects print what matters (``__repr__``) and show a table in a notebook (``_repr_html_``)."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np

from latentatlas import SpectralEnergy, SpectralIndex, minima
from latentatlas.datasets import three_gaussians
from latentatlas.sae import Health, TopKSAE


class _Cells(HTMLParser):
    """The text of every table cell, and whether every opened tag was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.open: list[str] = []
        self._in = False

    def handle_starttag(self, tag, attrs):  # noqa: ARG002
        self.open.append(tag)
        self._in = tag in ("td", "th")
        if self._in:
            self.cells.append("")

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.cells[-1] += data


def _cells(html: str) -> list[str]:
    p = _Cells()
    p.feed(html)
    assert p.open == []
    return p.cells


def test_estimators_before_and_after_fit():
    X = np.random.default_rng(0).standard_normal((300, 12)).astype(np.float32)
    se = SpectralEnergy(k=3)
    assert repr(se) == "SpectralEnergy(k=3)" and "not fitted" in se._repr_html_()
    e = se.fit_energy(X)
    assert "rows 300" in repr(se) and "features 12" in repr(se)
    cells = _cells(se._repr_html_())
    assert f"{e.max():.4g}" in cells and "300" in cells
    idx = SpectralIndex(k=3).fit(X)
    assert "items 300" in repr(idx)
    assert f"{idx.lambdas().max():.4g}" in _cells(idx._repr_html_())


def test_minima_comparison_repr_and_table():
    X, y, _ = three_gaussians(np.random.default_rng(0), n_per_cluster=100)
    res = minima.compare(X, y, progress=False, basin_kwargs={"niter": 3}, n_seeds=2)
    best = max(res.rows, key=lambda r: r["purity"])
    assert repr(res).startswith("MinimaComparison(300 items, 9 methods") and best["method"] in repr(res)
    cells = _cells(res._repr_html_())
    for r in res.rows:
        assert r["method"] in cells and f"{r['jaccard']:.4g}" in cells


def test_sae_health_is_a_dict_that_prints_a_summary():
    rng = np.random.default_rng(1)
    sae = TopKSAE(16, 64, 4, seed=0)
    h = sae.health(rng.standard_normal((200, 16)).astype(np.float32))
    assert isinstance(h, Health) and isinstance(h, dict) and set(h) >= {"mse", "fve", "l0", "frequencies"}
    assert f"fve={h['fve']:.4g}" in repr(h) and "frequencies" not in repr(h)  # no 64-number dump
    assert f"{h['l0']:.4g}" in _cells(h._repr_html_())


def test_atlas_repr_with_a_relative_path(tmp_path, monkeypatch):
    from latentatlas.atlas import build_atlas

    monkeypatch.chdir(tmp_path)
    X, y, _ = three_gaussians(np.random.default_rng(0), n_per_cluster=40)
    a = build_atlas(X, labels=y, out="atlas.html", progress=False)
    assert repr(a).startswith("Atlas(file=atlas.html, items=120")
    assert (tmp_path / "atlas.html").as_uri() in a._repr_html_()
