"""Rotten Tomatoes plots → reviews with SAEs trained on a larger corpus (issue 15, seed paper's Table 1).

The SAEs train on ``datasets.text_corpus(N)`` (every packaged short text: the full Rotten Tomatoes
reviews, NewsArticles titles, health tweets; embedded offline with all-MiniLM-L6-v2 and cached) and
are evaluated on the 156-plot / 4,866-review task: original vs sparse-latent vs reconstructed
MRR@10 / P@10 / R@10. Reproduce (minutes on 2 cores; the embedding is cached after the first run)::

    .venv/bin/python benches/sae_rt_corpus.py 50000
"""

from __future__ import annotations

import sys
import time

import numpy as np

from latentatlas.datasets import rotten_tomatoes_embeddings, text_corpus
from latentatlas.lm.minilm import embed_texts
from latentatlas.sae import TopKSAE
from latentatlas.sae.retrieval import retrieval_report


def main(n: int, n_latents: int = 4096) -> None:
    task, Q, D = rotten_tomatoes_embeddings(progress=False)
    t = time.perf_counter()
    corpus = text_corpus(n)
    E = embed_texts(corpus, progress=False)
    print(f"corpus: {E.shape[0]} texts embedded in {time.perf_counter() - t:.0f} s", flush=True)
    runs: list[tuple[str, int, dict]] = [(f"MSE, K={k}", k, {}) for k in (32, 64, 128)]
    runs.append(("MSE + KL (anchors = corpus, weight 1), K=128", 128, {"kl_weight": 1.0, "neighbors": 8}))
    for name, k, kw in runs:
        t = time.perf_counter()
        sae = TopKSAE(E.shape[1], n_latents, k, seed=0).fit(E, progress=False, **kw)
        fit_s = time.perf_counter() - t
        h = sae.health(D)
        rep = retrieval_report(sae, Q, D, task.qrels, query_ids=task.query_ids, doc_ids=task.doc_ids)
        print(f"\n## {name}: n_latents {n_latents}, fit {fit_s:.0f} s, FVE on the task docs {h['fve']:.3f}")
        print(rep.to_markdown(), flush=True)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
