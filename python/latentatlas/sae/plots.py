"""Plotly figures of the SAE area: latent frequency (Zipf) plot, amplification curves, before/after,
latent clusters (co-firing vs decoder) and document code energies.

Renderer (SVG/WebGL), palette and template follow :mod:`latentatlas._plotting`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .._plotting import PALETTE, TEMPLATE, scatter_cls
from .features import FeatureClusters
from .interpret import frequency_regions

__all__ = [
    "amplification_figure",
    "code_energy_figure",
    "feature_clusters_figure",
    "frequency_figure",
    "steering_figure",
]

_COLORS = {"head": PALETTE[3], "torso": PALETTE[0], "tail": PALETTE[2]}  # red, blue, green


def frequency_figure(
    freq: np.ndarray, *, title: str = "Latent frequency (Zipf plot)", head: float = 0.05, tail: float = 0.5
) -> go.Figure:
    """Log-log activation frequency against frequency rank, coloured by head / torso / tail."""
    regions = frequency_regions(freq, head=head, tail=tail)
    f = np.asarray(freq, dtype=np.float64)
    fig = go.Figure()
    rank0 = 1
    for name in ("head", "torso", "tail"):
        ids = regions[name]
        if ids.size:
            ranks = np.arange(rank0, rank0 + ids.size)
            fig.add_trace(
                scatter_cls(ids.size)(
                    x=ranks,
                    y=f[ids],
                    mode="markers",
                    name=f"{name} ({ids.size})",
                    marker={"size": 4, "color": _COLORS[name]},
                    text=[f"latent {j}" for j in ids],
                    hovertemplate="%{text}<br>rank %{x}<br>freq %{y:.3g}<extra></extra>",
                )
            )
            rank0 += ids.size
    n_dead = regions["dead"].size
    fig.update_layout(
        title=f"{title} — {n_dead} dead of {f.size}",
        xaxis={"type": "log", "title": "frequency rank"},
        yaxis={"type": "log", "title": "fraction of documents where the latent is active"},
        template=TEMPLATE,
        height=420,
    )
    return fig


def amplification_figure(
    curves: dict[str, Sequence[dict[str, float]]], *, k: int = 10, title: str = "Amplification grid"
) -> go.Figure:
    """MRR@k and P@k against the amplification amount, one line pair per curve name (e.g. side)."""
    fig = go.Figure()
    for name, rows in curves.items():
        amounts = [r["amount"] for r in rows if r["amount"] > 0]
        for metric, dash in ((f"mrr@{k}", "solid"), (f"p@{k}", "dot")):
            fig.add_trace(
                go.Scatter(
                    x=amounts,
                    y=[r[metric] for r in rows if r["amount"] > 0],
                    mode="lines+markers",
                    name=f"{name} {metric}",
                    line={"dash": dash},
                )
            )
            base = next((r[metric] for r in rows if r["amount"] == 0), None)
            if base is not None:
                fig.add_hline(y=base, line={"dash": "dash", "width": 1, "color": "#999"})
    fig.update_layout(
        title=title,
        xaxis={"type": "log", "title": "amount added to the latent"},
        yaxis={"title": "score"},
        template=TEMPLATE,
        height=420,
    )
    return fig


def steering_figure(
    before: np.ndarray,
    after: np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    title: str = "Documents carrying the latent in the top 5",
) -> go.Figure:
    """Grouped bars of per-query counts before and after steering."""
    x = list(labels) if labels is not None else [str(i) for i in range(len(before))]
    fig = go.Figure([go.Bar(x=x, y=list(before), name="before"), go.Bar(x=x, y=list(after), name="after")])
    fig.update_layout(barmode="group", title=title, template=TEMPLATE, height=380)
    return fig


def feature_clusters_figure(
    fc: FeatureClusters, *, title: str = "SAE latents: co-firing clusters vs decoder clusters"
) -> go.Figure:
    """Two panels on one layout (the latent graph's Laplacian eigenmap): live latents coloured by their
    spectral cluster (left) and by their decoder-cosine cluster (right); hover names the latent."""
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=2,
        shared_xaxes=True,
        shared_yaxes=True,
        subplot_titles=("spectral clusters (co-firing graph)", "decoder-cosine clusters (k-means)"),
    )
    x, y = fc.embedding[:, 0], fc.embedding[:, 1]
    for col, labels in ((1, fc.spectral_labels), (2, fc.decoder_labels)):
        for c in np.unique(labels):
            m = labels == c
            fig.add_trace(
                scatter_cls(int(m.sum()))(
                    x=x[m],
                    y=y[m],
                    mode="markers",
                    name=f"cluster {c}",
                    legendgroup=f"{col}",
                    showlegend=False,
                    marker={"size": 5, "color": PALETTE[int(c) % len(PALETTE)]},
                    text=[f"latent {j}" for j in fc.live[m]],
                    hovertemplate=f"%{{text}}<br>cluster {c}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_layout(
        title=f"{title} — ARI {fc.agreement['ari']:.2f}, NMI {fc.agreement['nmi']:.2f}",
        template=TEMPLATE,
        height=460,
    )
    fig.update_xaxes(title_text="eigenvector 1")
    fig.update_yaxes(title_text="eigenvector 2", col=1)
    return fig


def code_energy_figure(energy: np.ndarray, *, title: str = "Rayleigh energy of each document's code") -> go.Figure:
    """Histogram of the documents' code energies ``xᵀLx / xᵀx`` on the latent graph."""
    e = np.asarray(energy, dtype=np.float64)
    fig = go.Figure(go.Histogram(x=e, nbinsx=60, marker={"color": PALETTE[0]}, name="documents"))
    fig.update_layout(
        title=f"{title} (median {np.median(e):.3g})" if e.size else title,
        xaxis={"title": "xᵀLx / xᵀx (low: the document's active latents are graph neighbours)"},
        yaxis={"title": "documents"},
        template=TEMPLATE,
        height=360,
        bargap=0.02,
    )
    return fig
