"""The linked atlas (`latentatlas atlas --sae --store`, `latentatlas.atlas.build_atlas`): links resolve,
the row → latent → cluster chain matches an independent encode, it renders in Chromium, bad input."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import latentatlas.minima  # noqa: F401  (registers latentatlas.minima.blend in sys.modules)
from _browser import open_html
from latentatlas import reference
from latentatlas.atlas import build_atlas, open_store, top_latents
from latentatlas.atlas.cards import _persona_sections
from latentatlas.cli import main
from latentatlas.datasets import three_gaussians
from latentatlas.personas import PersonaVectorStore, synthetic_persona_dataset, synthetic_persona_vectors
from latentatlas.sae import TopKSAE
from latentatlas.sae.features import feature_clusters

N_TOP = 5


class _Links(HTMLParser):
    """Every id, every in-page href, and the hrefs inside each card (ids row-/latent-/cluster-<n>)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.inside: dict[str, list[str]] = {}
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        card = None
        if a.get("id"):
            self.ids.append(str(a["id"]))
            if re.fullmatch(r"(row|latent|cluster)-\d+", str(a["id"])):
                card = str(a["id"])
                self.inside[card] = []
        if tag not in ("br", "meta", "img", "input"):
            self._open.append((tag, card))
        href = a.get("href")
        if href and href.startswith("#"):
            self.hrefs.append(href)
            for _, c in self._open:
                if c is not None:
                    self.inside[c].append(href)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            t, _ = self._open.pop()
            if t == tag:
                break


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def _numpy_top_latents(sae: TopKSAE, X: np.ndarray, m: int) -> list[list[int]]:
    """The row's m most active latents from the SAE's weights in plain NumPy (ties to the lower id)."""
    pre = (X.astype(np.float64) - sae.b_dec) @ sae.W_enc.astype(np.float64).T + sae.b_enc
    out = []
    for row in pre:
        order = np.lexsort((np.arange(row.size), -row))[: sae.k]  # the TopK, then ReLU
        out.append([int(j) for j in order[:m] if row[j] > 0])
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("linked")
    X, y, _ = three_gaussians(7, n_per_cluster=40, dim=16)
    np.save(d / "x.npy", X)
    np.savetxt(d / "y.txt", y, fmt="%d")
    texts = [f"item {i} of cluster {c} <b>&</b>" for i, c in enumerate(y)]  # markup must be escaped
    (d / "t.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    sae = TopKSAE(16, 48, 6, seed=0).fit(X, epochs=4, progress=False)
    sae.save(d / "sae")
    table = synthetic_persona_dataset(12, seed=0)
    store = PersonaVectorStore("test/synthetic", d / "store", array_type="numpy")
    for pid, name, vec in zip(table.persona_ids, table.names(), synthetic_persona_vectors(table, 4, 16, seed=0)):
        store.save("biography", pid, name, vec, ["q0"])
    blend = sys.modules["latentatlas.minima.blend"]  # the package attribute `blend` is the function
    orig = blend.compare
    with pytest.MonkeyPatch.context() as mp:  # fewer basin-hopping steps (the defaults are the notebook's)
        mp.setattr(blend, "compare", lambda *a, **k: orig(*a, **k, basin_kwargs={"niter": 5}, n_seeds=4))
        argv = ["atlas", str(d / "x.npy"), "--sae", str(d / "sae"), "--store", str(d / "store")]
        argv += ["--labels", str(d / "y.txt"), "--texts", str(d / "t.txt"), "--n-neighbors", "10", "--quiet"]
        assert main([*argv, "--out", str(d / "atlas.html")]) == 0
    return d, X, y, sae, d / "atlas.html"


def test_every_link_resolves(built):
    *_, path = built
    page = _parse(path)
    assert len(page.ids) == len(set(page.ids)), "duplicate ids"
    missing = {h for h in page.hrefs if h[1:] not in set(page.ids)}
    assert not missing, f"links without a target: {sorted(missing)[:10]}"
    for anchor in ("summary", "minima", "rows", "latents", "clusters", "personas"):
        assert f"#{anchor}" in page.hrefs and anchor in page.ids  # the navigation bar
    assert sum(i.startswith("row-") for i in page.ids) > 0 and sum(i.startswith("latent-") for i in page.ids) > 0


def test_row_latent_chain_matches_an_independent_encode(built):
    _, X, y, sae, path = built
    page = _parse(path)
    want = _numpy_top_latents(sae, X, N_TOP)
    rows = [int(i[4:]) for i in page.ids if i.startswith("row-")]
    for r in rows:
        got = [int(h[len("#latent-") :]) for h in page.inside[f"row-{r}"] if h.startswith("#latent-")]
        assert got == want[r], f"row {r}: page {got}, NumPy {want[r]}"
        # each linked latent's card lists that row among its top rows only if the row activates it
        for j in got:
            assert f"latent-{j}" in page.ids
    # the latents page holds exactly the latents the row cards link to
    linked = {int(h[len("#latent-") :]) for r in rows for h in page.inside[f"row-{r}"] if h.startswith("#latent-")}
    assert linked == {int(i[7:]) for i in page.ids if i.startswith("latent-")}
    # a latent card's top rows are rows on which the latent is among the row's top-k codes, by activation
    pre = (X.astype(np.float64) - sae.b_dec) @ sae.W_enc.astype(np.float64).T + sae.b_enc
    for j in sorted(linked)[:5]:
        top_rows = [int(h[5:]) for h in page.inside[f"latent-{j}"] if h.startswith("#row-")]
        for r in top_rows:
            assert j in np.argsort(-pre[r], kind="stable")[: sae.k]
    # → cluster: the row card, the latent card and the cluster card agree, and match feature_clusters run here
    codes = sae.encode(X).to_csr()
    live = np.unique(codes.indices)
    fc = feature_clusters(codes, sae, n_clusters=min(8, live.size - 1), seed=0)
    spectral = dict(zip(fc.live.tolist(), fc.spectral_labels.tolist()))
    n_checked = 0
    for r in rows:
        hrefs = page.inside[f"row-{r}"]
        for a, b in zip(hrefs, hrefs[1:]):
            if a.startswith("#latent-") and b.startswith("#cluster-"):
                j, c = int(a[8:]), int(b[9:])
                assert c == spectral[j]
                assert [h for h in page.inside[f"latent-{j}"] if h.startswith("#cluster-")] == [b]
                assert a in page.inside[f"cluster-{c}"]
                n_checked += 1
    assert n_checked >= len(rows)


def test_summary_numbers_against_numpy(built):
    _, X, y, sae, path = built
    text = path.read_text(encoding="utf-8")
    L, _ = reference.build_feature_laplacian(X, k=8)
    e = reference.minmax(reference.rayleigh_energy(X, L))
    q = ", ".join(f"{v:.4f}" for v in np.quantile(e, [0.0, 0.1, 0.5, 0.9, 1.0]))
    assert f"<td style='text-align:left'>{q}</td>" in text
    assert f"{X.shape[0]:,} rows × {X.shape[1]:,} features" in text
    assert "test/synthetic / answer_mean / biography: 12 personas × 4 layers × 16" in text
    assert "Minima across layers" in text and "Latents by co-firing (spectral) vs decoder direction" in text
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in text and "<b>&</b>" not in text  # the texts are escaped


def test_renders_in_chromium_and_clicks_navigate(built):
    *_, path = built
    page = open_html(path)  # one browser for both checks: starting Chromium is the slow part
    try:
        assert page.n_plots >= 22 and page.n_rendered == page.n_plots
        assert not page.js_errors, page.js_errors
        row = page.script("return document.querySelector('[id^=row-]').id")
        # a plotly_click on a point whose customdata is "#row-…" takes the reader to that card
        found = page.driver.execute_script(
            "var a=arguments[0];var gd=[...document.querySelectorAll('.js-plotly-plot')].find(p=>(p.data||[])"
            ".some(t=>t.customdata&&Array.from(t.customdata).includes(a)));"
            "if(!gd)return false;gd.emit('plotly_click',{points:[{customdata:a}]});return location.hash;",
            f"#{row}",
        )
        assert found == f"#{row}"
        assert not [e for e in page.driver.get_log("browser") if e.get("level") == "SEVERE"]
    finally:
        page.driver.quit()


def test_without_sae_or_store_degrades(tmp_path, monkeypatch):
    X, y, _ = three_gaussians(3, n_per_cluster=20, dim=12)
    blend = sys.modules["latentatlas.minima.blend"]
    orig = blend.compare
    monkeypatch.setattr(blend, "compare", lambda *a, **k: orig(*a, **k, basin_kwargs={"niter": 3}, n_seeds=2))
    a = build_atlas(X, labels=y, out=tmp_path / "plain.html", progress=False, n_neighbors=8, max_rows=7)
    text = a.path.read_text(encoding="utf-8")
    assert "No SAE was given" in text and "No persona store was given" in text
    assert a.top_latents is None and a.store is None and a.rows.size == 7
    votes = np.sum([a.comparison.masks[m] for m in latentatlas.minima.METHODS], axis=0)
    assert votes[a.rows].min() >= np.sort(votes)[-7]  # the cards go to the rows most methods call minima
    page = _parse(a.path)
    assert all(h[1:] in set(page.ids) for h in page.hrefs)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--sae", "sae8"], "sae has d_in = 8 but X has 16 columns"),
        (["--sae", "nowhere"], "no SAE at"),
        (["--store", "nowhere"], "persona store directory not found"),
        (["--store", "empty"], "no persona vectors under"),
        (["--store", "store", "--variant", "nope"], "variant 'nope' not found"),
        (["--texts", "short.txt"], "--texts has 2 lines"),
        (["--out", "outdir"], "is a directory"),
        (["--out", "outdir/"], "is a directory"),
        (["--out", "x.npy"], "must end in .html"),
        (["--out", "report.txt"], "must end in .html"),
    ],
)
def test_bad_input_is_a_one_line_error(built, extra, message, capsys):
    d, X, *_ = built
    (d / "outdir").mkdir(exist_ok=True)
    (d / "empty").mkdir(exist_ok=True)
    (d / "short.txt").write_text("a\nb\n")
    if not (d / "sae8").exists():
        TopKSAE(8, 16, 2, seed=0).save(d / "sae8")
    before = (d / "x.npy").read_bytes()
    # values of the path options are relative to the data folder (a trailing "/" kept)
    args = [
        f"{d}/{a}" if i and extra[i - 1] in ("--sae", "--store", "--texts", "--out") else a for i, a in enumerate(extra)
    ]
    out = [] if "--out" in extra else ["--out", str(d / "never.html")]
    assert main(["atlas", str(d / "x.npy"), *args, *out, "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (d / "never.html").exists() and (d / "x.npy").read_bytes() == before
    assert not list(d.glob(".*.tmp")) and not list((d / "outdir").iterdir())


def test_top_latents_against_dense_numpy():
    rng = np.random.default_rng(3)
    H = np.where(rng.random((40, 30)) < 0.2, rng.integers(0, 4, (40, 30)) / 4.0, 0.0)  # ties and empty rows
    H[5] = 0.0
    vals, lats = top_latents(sp.csr_matrix(H), 4)
    for r in range(H.shape[0]):
        order = [int(j) for j in np.lexsort((np.arange(30), -H[r])) if H[r, j] > 0][:4]
        assert lats[r, : len(order)].tolist() == order and (lats[r, len(order) :] == -1).all()
        assert np.array_equal(vals[r, : len(order)], H[r, order]) and (vals[r, len(order) :] == 0).all()


def test_small_store_degrades(tmp_path):
    """Too few personas to track minima across layers: the page says why, the rest is there."""
    table = synthetic_persona_dataset(4, seed=0)
    store = PersonaVectorStore("test/tiny", tmp_path / "store", array_type="numpy")
    for pid, name, vec in zip(table.persona_ids, table.names(), synthetic_persona_vectors(table, 3, 8, seed=0)):
        store.save("biography", pid, name, vec, ["q0"])
    sections, info, lm = _persona_sections(open_store(tmp_path / "store")[0], "biography", False)
    assert lm is None and info["personas"] == 4 and info["layers"] == 3
    assert [h for h, _, _ in sections] == ["Store analysis", "Minima across layers"]
    assert "Not computed" in sections[1][1] and "at least 5 items" in sections[1][1]


def test_python_api_bad_arguments(tmp_path):
    X, _, _ = three_gaussians(3, n_per_cluster=10, dim=8)
    with pytest.raises(TypeError, match="sae must be"):
        build_atlas(X, sae=object(), out=tmp_path / "a.html")
    with pytest.raises(ValueError, match="texts must have one entry per row"):
        build_atlas(X, texts=["a"], out=tmp_path / "a.html")
    with pytest.raises(TypeError, match="out must be a path"):
        build_atlas(X, out=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="store must be"):
        build_atlas(X, store=42, out=tmp_path / "a.html")
    assert not list(tmp_path.iterdir())
