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


def test_old_module_paths_still_import():
    """The moved modules keep their old import paths as thin re-exports."""
    import latentatlas.charts
    import latentatlas.embed
    import latentatlas.personas.gguf_loader
    import latentatlas.personas.llama
    import latentatlas.personas.tokenizer
    from latentatlas import minima, report
    from latentatlas.lm import backends, chat, gguf, llama, minilm
    from latentatlas.minima import plots
    from latentatlas.personas import extract
    from latentatlas.personas import report as personas_report

    assert latentatlas.charts.energy_scatter is plots.energy_scatter
    assert latentatlas.embed.embed_texts is minilm.embed_texts
    assert latentatlas.personas.gguf_loader.load_gguf is gguf.load_gguf
    assert latentatlas.personas.llama.LlamaModel is llama.LlamaModel
    assert latentatlas.personas.tokenizer.ChatTemplate is chat.ChatTemplate
    assert extract.GGUFBackend is backends.GGUFBackend and extract.HiddenStates is backends.HiddenStates
    assert extract.MASK_STRATEGIES == backends.MASK_STRATEGIES
    assert personas_report.write_figure_html is report.write_figure_html
    assert report.atlas is minima.atlas  # deprecated alias, still named by the README


def test_layers_point_down():
    """No area imports another area nor the top floor (cli, demo, atlas); lm/ and report.py import no area."""
    import ast
    from pathlib import Path

    import latentatlas

    root = Path(latentatlas.__file__).parent
    areas = {"minima", "sae", "personas"}
    top_floor = {"cli", "demo", "atlas", "__main__"}

    def imported(f: Path) -> set[str]:
        pkg = ["latentatlas", *f.parent.relative_to(root).parts]
        out = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mods = [node.module] if node.module else [a.name for a in node.names]
                out |= {".".join(base + m.split(".")).split(".")[1] for m in mods if len(base) + len(m.split(".")) > 1}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("latentatlas."):
                out.add(node.module.split(".")[1])
        return out

    for where, allowed in [(a, {a}) for a in sorted(areas)] + [("lm", set())]:
        for f in sorted((root / where).glob("*.py")):
            assert not (imported(f) & areas) - allowed, f"{f.name} in {where}/ imports {imported(f) & areas - allowed}"
            assert not imported(f) & top_floor, f"{f.name} in {where}/ imports the top floor {imported(f) & top_floor}"
    for f in (root / "report.py", root / "_plotting.py", root / "datasets.py"):
        top = {n.module for n in ast.parse(f.read_text()).body if isinstance(n, ast.ImportFrom) and n.level}
        assert not {m.split(".")[0] for m in top if m} & areas, f"{f.name} imports an area at module level"
