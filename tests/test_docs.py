"""The documentation is tested like code.

* Every ```python block of README.md, CONTRIBUTING.md and docs/**/*.md runs: each page's blocks in order,
  in one fresh interpreter (the project's), in an empty temporary folder, offline. A block that cannot
  run here says so on the line before it: ``<!-- docs-test: skip: <reason> -->`` (the reason is required).
* The README stays a front page: at most 200 lines, every number of its "How fast" table is a ratio
  from the benchmark files in docs/data/bench/ and links to the benchmarks page, and every relative link
  points to a file that exists.
* ``mkdocs build --strict`` passes (a broken link, a missing reference or an API page that fails to render
  is an error), every public name of every public module has its anchor in the built API reference, and
  the site opens in headless Chromium with no console error: the home page, a guide, an API page and a
  notebook page (screenshots in $LATENTATLAS_DOCS_SHOTS, default /tmp/docs-shots).

Needs the ``docs`` extra (``make docs`` installs it); skipped without it, outside CI.
"""

from __future__ import annotations

import http.server
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIP = re.compile(r"<!--\s*docs-test:\s*skip:\s*(?P<why>.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)[^\n]*$")


def _pages() -> list[Path]:
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
    pages += sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.relative_to(DOCS).parts)
    return pages


def python_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """``(line, code, skip reason or None)`` for each ```python block, in order (line: 1-based, of the fence)."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang, start = m["indent"], m["lang"], i
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if lang in ("python", "py"):
            body = "\n".join(ln[len(indent) :] for ln in lines[start + 1 : j])
            prev = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
            skip = SKIP.search(prev)
            out.append((start + 1, textwrap.dedent(body), skip["why"] if skip else None))
        i = j + 1
    return out


_DRIVER = r"""
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
ns = {"__name__": "__main__"}
for line, code in blocks:
    try:
        exec(compile(code, f"{sys.argv[2]}:{line}", "exec"), ns)
    except BaseException:
        traceback.print_exc()
        print(f"\nFAILED: the block at {sys.argv[2]}:{line}", file=sys.stderr)
        sys.exit(1)
"""

PAGES = [p for p in _pages() if p.exists() and python_blocks(p.read_text(encoding="utf-8"))]


def test_every_page_with_code_is_collected():
    assert (ROOT / "README.md") in PAGES
    assert len(PAGES) >= 8, [p.name for p in PAGES]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(page: Path, tmp_path: Path):
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    for line, _, why in blocks:
        assert why is None or why.strip(), f"{page}:{line}: a skipped block must say why"
    run = [(line, code) for line, code, why in blocks if why is None]
    if not run:
        pytest.skip("every block of this page is marked as not runnable offline")
    spec = tmp_path / "blocks.json"
    spec.write_text(json.dumps(run), encoding="utf-8")
    (tmp_path / "driver.py").write_text(_DRIVER, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg"}
    rel = str(page.relative_to(ROOT))
    r = subprocess.run(
        [sys.executable, str(tmp_path / "driver.py"), str(spec), rel],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert r.returncode == 0, f"{rel}:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"


# ------------------------------------------------------------------------------------- README


def test_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    head = "\n".join(text.splitlines()[:40])
    assert "make demo" in head and "make test" in head, "the two commands belong near the top"
    assert "make docs" in text and "make docs-serve" in text


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def _bench_module():
    sys.path.insert(0, str(DOCS / "hooks"))
    try:
        return importlib.import_module("bench")
    finally:
        sys.path.pop(0)


def test_readme_speed_numbers_come_from_the_benchmark_files():
    """Each row of the README's How fast table is a row of a benchmark file: its kernel, its peer and its
    ratio as the benchmarks page prints it, the ratio a link to that page."""
    bench = _bench_module()
    runs = [bench.read_run(p) for p in sorted((DOCS / "data" / "bench").glob("*.json"))]
    known = {(r.kernel, r.reference, bench.ratio_text(r.ratio)) for run in runs for r in run.rows}
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## How fast", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("|") and not set(ln) <= set("|-: ")][1:]
    assert rows, "the README's How fast table is missing"
    for row in rows:
        kernel, peer, ratio = (c.strip() for c in row.strip("|").split("|"))
        m = re.fullmatch(r"\[([^\]]+)\]\(docs/benchmarks/index\.md\)", ratio)
        assert m, f"{row}: the ratio must link to the benchmarks page"
        assert (kernel, peer, m[1]) in known, f"{row} is not a row of docs/data/bench/*.json: {sorted(known)}"


def test_benchmark_renderer_reads_both_schemas_and_says_when_empty(tmp_path):
    bench = _bench_module()
    assert "No benchmark results yet" in bench.render(tmp_path)
    house = {
        "date": "2026-01-01T00:00:00",
        "cpu": "Test CPU",
        "simd": "avx2",
        "load_average": [0.1, 0.2, 0.3],
        "command": "make bench",
        "rows": [{"kernel": "k", "latentatlas_s": 0.5, "reference": "NumPy", "reference_s": 1.0, "ratio": 2.0}],
    }
    (tmp_path / "house.json").write_text(json.dumps(house), encoding="utf-8")
    peers = json.loads((DOCS / "data" / "bench" / "peers_torch.json").read_text(encoding="utf-8"))
    (tmp_path / "peers.json").write_text(json.dumps(peers), encoding="utf-8")
    page = bench.render(tmp_path)
    assert "| k | 500.0 ms | NumPy | 1.00 s | **2.00×** |" in page
    assert "SIMD avx2" in page and "0.10, 0.20, 0.30" in page and "make bench" in page
    assert peers["command"] in page and peers["rows"][0]["peer"] in page
    (tmp_path / "bad.json").write_text('{"date": "x"}', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json"):
        bench.render(tmp_path)


def test_architecture_page_names_the_floors_the_layering_test_enforces():
    import test_layers

    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    want = {
        "top": test_layers.TOP,
        "area": test_layers.AREAS,
        "shared": test_layers.SHARED,
        "ground": test_layers.GROUND,
    }
    for floor, members in want.items():
        row = re.search(rf"^\| {floor} \| (?P<mods>[^|]+) \|", text, re.M)
        assert row, f"docs/architecture.md has no row for the {floor} floor"
        assert set(re.findall(r"`([\w.]+)`", row["mods"])) == set(members), (
            f"docs/architecture.md's {floor} floor differs from tests/test_layers.py: {sorted(members)}"
        )


# --------------------------------------------------------------------------------- the site


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (make docs)")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{r.stdout[-3000:]}\n{r.stderr[-8000:]}"
    return out


def test_strict_build_refuses_a_broken_link_and_a_broken_reference(site: Path, tmp_path: Path):
    """The gate works: the same site plus one page with a dead link and one with a reference to no API name
    fails ``mkdocs build --strict``, naming both."""
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs, ignore=shutil.ignore_patterns("__pycache__"))
    (docs / "planted.md").write_text(
        "# Planted\n\n[a page that is not there](nowhere.md) and [a name][latentatlas.no_such_name]\n", encoding="utf-8"
    )
    cfg = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    cfg = cfg.replace("docs_dir: docs", f"docs_dir: {docs}").replace(
        "- docs/hooks/build.py", f"- {docs}/hooks/build.py"
    )
    cfg = cfg.replace("  - Home: index.md", "  - Home: index.md\n  - Planted: planted.md")
    (tmp_path / "mkdocs.yml").write_text(cfg, encoding="utf-8")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(tmp_path / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    out = r.stdout + r.stderr
    assert r.returncode != 0, "a strict build with a dead link passed"
    assert "nowhere.md" in out and "latentatlas.no_such_name" in out, out[-3000:]


def test_every_public_name_has_an_api_anchor(site: Path):
    sys.path.insert(0, str(DOCS / "hooks"))
    try:
        apiref = importlib.import_module("apiref")
    finally:
        sys.path.pop(0)
    pages = apiref.scan()
    missing = []
    for name, page in pages.items():
        html_file = site / "reference" / "api" / name / "index.html"
        assert html_file.exists(), f"no API page for {name}"
        html = html_file.read_text(encoding="utf-8")
        missing += [f"{name}.{n}" for n in page.defined if f'id="{name}.{n}"' not in html]
    assert not missing, f"public names without an API entry: {missing}"


def test_generated_pages_are_there(site: Path):
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for cmd in ("latentatlas demo", "latentatlas atlas", "latentatlas sae train", "latentatlas search query"):
        assert cmd in cli, cmd
    bench = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    assert "bench_peers_torch.py" in bench and "load average" in bench
    for nb in sorted((ROOT / "examples").glob("*.ipynb")):
        page = site / "examples" / nb.stem / "index.html"
        assert page.exists(), f"{nb.name} is not rendered"
        assert (page.parent / nb.name).exists(), f"{nb.name} is not offered for download"
        assert f'href="{nb.name}" download' in page.read_text(encoding="utf-8"), f"{nb.name}: no download link"


SHOTS = Path(os.environ.get("LATENTATLAS_DOCS_SHOTS", "/tmp/docs-shots"))
BROWSER_PAGES = {
    "home": "index.html",
    "guide": "guides/minima/index.html",
    "api": "reference/api/latentatlas.spectral/index.html",
    "notebook": "examples/02_local_minima/index.html",
}


@pytest.fixture(scope="module")
def served(site: Path):
    """The built site over HTTP on 127.0.0.1 (as ``mkdocs serve`` shows it: search needs http, not file://)."""
    import functools
    import threading

    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def _open(url: str):
    """Headless Chromium on ``url``: wait for the page and any Plotly figure to draw; return the driver."""
    from _browser import CHROMEDRIVER, CHROMIUM, require_browser

    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    driver.get(url)
    drawn = (
        "return document.readyState === 'complete' && [...document.querySelectorAll('.js-plotly-plot')]"
        ".every(p => p.querySelector('.main-svg') && p._fullLayout)"
    )
    deadline = time.time() + 60
    while time.time() < deadline and not driver.execute_script(drawn):
        time.sleep(0.25)
    time.sleep(0.5)  # late console messages (search index worker, fonts)
    return driver


def test_site_opens_in_chromium_without_console_errors(served: str):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, rel in BROWSER_PAGES.items():
        driver = _open(served + rel)
        try:
            text = driver.execute_script("return document.querySelector('article').innerText")
            assert len(text) > 300, f"{rel}: the page looks empty"
            if name == "notebook":
                n = driver.execute_script("return document.querySelectorAll('.js-plotly-plot .main-svg').length")
                assert n >= 1, f"{rel}: the notebook's figures did not draw"
            errors = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
            driver.save_screenshot(str(SHOTS / f"{name}.png"))
            assert not errors, f"{rel}: console errors: {errors}"
        finally:
            driver.quit()
