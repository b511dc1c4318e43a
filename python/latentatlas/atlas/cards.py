"""The atlas's pages, piece by piece: the summary table, the row / latent / feature-cluster cards
(``#row-i``, ``#latent-j``, ``#cluster-c``), the map figure and the persona-store sections.

Every card links the others by anchor; points of the figures carry their ``#anchor`` (customdata),
so clicking a point opens its card.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import plotly.graph_objects as go
import scipy.sparse as sp

from .._plotting import TEMPLATE, scatter_cls
from ..minima.blend import METHODS, MinimaComparison
from ..report import Section


def _summary(
    X: np.ndarray,
    name: str,
    res: MinimaComparison,
    health: dict[str, Any] | None,
    sae: Any,
    fc: Any,
    store_info: dict[str, Any] | None,
    lm: Any,
    pages: list[tuple[str, str]],
) -> str:
    q = np.quantile(res.energy, [0.0, 0.1, 0.5, 0.9, 1.0])
    counts = " · ".join(f"{m} {int(res.masks[m].sum())}" for m in METHODS)
    rows = [
        ("data", f"{html.escape(name)}: {X.shape[0]:,} rows × {X.shape[1]:,} features"),
        ("R_norm (min, q10, median, q90, max)", ", ".join(f"{v:.4f}" for v in q)),
        (f"minima per method (bottom {res.quantile:g})", html.escape(counts)),
    ]
    if health is not None:
        rows.append(
            (
                "SAE",
                f"{type(sae).__name__}, {sae.n_latents:,} latents; on X: FVE {health['fve']:.3f}, "
                f"L0 {health['l0']:.1f}, dead {health['dead_fraction']:.1%}"
                + (
                    f"; {len(fc.spectral)} feature clusters of {fc.live.size:,} live latents "
                    f"(agreement with decoder-cosine clusters: ARI {fc.agreement['ari']:.2f})"
                    if fc is not None
                    else ""
                ),
            )
        )
    else:
        rows.append(("SAE", "none given"))
    if store_info is not None:
        s = store_info
        rows.append(
            (
                "persona store",
                html.escape(
                    f"{s['model']} / {s['mask_strategy']} / {s['variant']}: "
                    f"{s['personas']} personas × {s['layers']} layers × {s['hidden']}"
                    + (
                        f"; {int((lm.stability == 1).sum())} personas are minima in every layer, "
                        f"{int((lm.frequency > 0).sum())} in at least one"
                        if lm is not None
                        else ""
                    )
                ),
            )
        )
    else:
        rows.append(("persona store", "none given"))
    body = "".join(
        f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>" for k, v in rows
    )
    links = " · ".join(f"<a href='#{a}'>{html.escape(t)}</a>" for a, t in pages)
    return f"<table>{body}</table><p>Pages: {links}. Click a point in a chart to open its card.</p>"


def _row_cards(
    rows: np.ndarray,
    res: MinimaComparison,
    labels: np.ndarray | None,
    texts: list[str] | None,
    top: tuple[np.ndarray, np.ndarray] | None,
    clusters: np.ndarray | None,
    code_energy: np.ndarray | None,
) -> str:
    rank = np.empty(res.energy.size, dtype=np.int64)
    rank[np.argsort(res.energy, kind="stable")] = np.arange(1, res.energy.size + 1)
    cards = []
    for r in rows:
        members = [m for m in METHODS if res.masks[m][r]]
        head = f"<b>row {r}</b>" + (f" · label <i>{html.escape(str(labels[r]))}</i>" if labels is not None else "")
        lines = [
            head,
            f"R_norm {res.energy[r]:.4f} (rank {rank[r]:,} of {res.energy.size:,}); "
            f"minimum for {len(members)} of {len(METHODS)} methods: {html.escape(', '.join(members))}",
        ]
        if texts is not None:
            lines.append(f"<q>{html.escape(texts[r][:300])}</q>")
        if top is not None:
            vals, lats = top
            items = []
            for v, j in zip(vals[r], lats[r]):
                if j < 0:
                    continue
                c = (
                    f" → <a href='#cluster-{clusters[j]}'>cluster {clusters[j]}</a>"
                    if clusters is not None and clusters[j] >= 0
                    else ""
                )
                items.append(f"<a href='#latent-{j}'>latent {j}</a> ({v:.3f}){c}")
            lines.append("top latents: " + ("; ".join(items) if items else "none active"))
        if code_energy is not None:
            lines.append(f"energy of its code on the latent co-firing graph: {code_energy[r]:.4f}")
        cards.append(f"<div id='row-{r}' class='card'><p>" + "<br>".join(lines) + "</p></div>")
    return "".join(cards)


def _latent_cards(
    latents: np.ndarray,
    codes: sp.csr_matrix,
    shown_rows: set[int],
    clusters: np.ndarray | None,
    keywords: Any,
) -> tuple[str, go.Figure]:
    csc = codes.tocsc()
    freq = np.diff(csc.indptr) / max(codes.shape[0], 1)
    cards = []
    for j in latents:
        a, b = csc.indptr[j], csc.indptr[j + 1]
        rows, vals = csc.indices[a:b], csc.data[a:b]
        order = np.lexsort((rows, -vals))[:8]
        top_rows = rows[order].tolist()
        parts = [f"<b>latent {j}</b> · active on {freq[j]:.2%} of rows"]
        if clusters is not None and clusters[j] >= 0:
            parts[0] += f" · <a href='#cluster-{clusters[j]}'>cluster {clusters[j]}</a>"
        parts.append("top rows: " + _anchor_list(top_rows, "row", shown_rows))
        if keywords is not None:
            parts.append("keywords: <i>" + html.escape(", ".join(keywords(top_rows))) + "</i>")
        cards.append(f"<div id='latent-{j}' class='card'><p>" + "<br>".join(parts) + "</p></div>")
    fig = go.Figure(
        go.Bar(
            x=[str(j) for j in latents],
            y=freq[latents],
            customdata=[f"#latent-{j}" for j in latents],
            hovertemplate="latent %{x}: active on %{y:.2%}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Frequency of the latents on this page (click a bar to open it)",
        template=TEMPLATE,
        xaxis={"title": "latent", "type": "category"},
        yaxis={"title": "fraction of rows active", "tickformat": ".0%"},
    )
    return "".join(cards), fig


def _cluster_cards(fc: Any, latent_cards: set[int], shown_rows: set[int]) -> str:
    """One card per spectral cluster (``#cluster-c``): its latents, keywords and top rows, linked."""
    cards = []
    for cl in fc.spectral:
        dec = np.bincount(fc.decoder_labels[fc.spectral_labels == cl.label], minlength=len(fc.decoder))
        ids = cl.latents.tolist()
        parts = [
            f"<b>cluster {cl.label}</b> · {len(ids)} latents; by decoder direction they fall in clusters "
            + ", ".join(f"{d} ({n})" for d, n in enumerate(dec.tolist()) if n),
            "latents: " + _anchor_list(ids[:40], "latent", latent_cards) + (" …" if len(ids) > 40 else ""),
        ]
        if cl.keywords:
            parts.append("keywords: <i>" + html.escape(", ".join(cl.keywords)) + "</i>")
        parts.append("top rows: " + _anchor_list([r for r, _, _ in cl.documents], "row", shown_rows))
        cards.append(f"<div id='cluster-{cl.label}' class='card'><p>" + "<br>".join(parts) + "</p></div>")
    return "".join(cards)


def _anchor_list(ids: Any, prefix: str, shown: set[int]) -> str:
    """Comma-separated ids, linked to ``#prefix-id`` when that card exists."""
    return ", ".join(f"<a href='#{prefix}-{i}'>{i}</a>" if i in shown else str(i) for i in ids)


def _map_figure(res: MinimaComparison, shown: np.ndarray, max_points: int) -> go.Figure:
    """R_norm over the PCA-2D view; the rows with a card are ringed and open it when clicked."""
    n = res.energy.size
    idx = np.unique(np.concatenate([np.linspace(0, n - 1, min(n, max_points)).round().astype(np.int64), shown]))
    has_card = np.isin(idx, shown)
    anchor = np.where(has_card, [f"#row-{i}" for i in idx], "")
    sc = scatter_cls(idx.size)
    fig = go.Figure(
        sc(
            x=res.view[idx, 0],
            y=res.view[idx, 1],
            mode="markers",
            marker={
                "color": res.energy[idx],
                "colorscale": "Viridis",
                "size": np.where(has_card, 9, 5),
                "line": {"width": np.where(has_card, 1.5, 0).tolist(), "color": "#d62728"},
                "colorbar": {"title": "R_norm"},
            },
            customdata=anchor,
            text=[f"row {i}" for i in idx],
            hovertemplate="%{text}<br>R_norm %{marker.color:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        title="R_norm over the PCA-2D view (ringed: rows with a card; click to open)",
        template=TEMPLATE,
        xaxis_title="PC1",
        yaxis_title="PC2",
    )
    return fig


def _persona_sections(store: Any, variant: str, progress: bool) -> tuple[list[Section], dict[str, Any], Any]:
    """The store's per-layer analysis and its minima across layers (:func:`latentatlas.minima.minima_across_layers`)."""
    from ..minima.layers import minima_across_layers
    from ..personas.analysis import load_persona_vectors

    samples = load_persona_vectors(store, variant, progress=progress)
    n, L, H = samples.vectors.shape
    info = {
        "model": store.model,
        "mask_strategy": store.mask_strategy,
        "variant": variant,
        "personas": n,
        "layers": L,
        "hidden": H,
    }
    analysis = _store_analysis_section(store, variant, samples)
    # the same personas through every layer: (L, n, H); the items are the personas' names
    try:
        lm = minima_across_layers(
            np.moveaxis(samples.vectors, 1, 0), items=samples.labels, k=min(8, H - 1), rng=0, progress=progress
        )
    except ValueError as exc:  # too few personas or layers to track minima
        return [analysis, ("Minima across layers", f"<p>Not computed: {html.escape(str(exc))}.</p>", [])], info, None
    return [analysis, _layer_minima_section(samples, lm)], info, lm


def _store_analysis_section(store: Any, variant: str, samples: Any) -> Section:
    """Explained variance and median spectral energy of a few layers, a layered PCA and the energy heat map."""
    from ..personas.analysis import layered_analysis, persona_spectral_energy, scree_layers
    from ..personas.plots import build_layered_figure, plot_spectral_energy

    n, L, H = samples.vectors.shape
    sl = scree_layers(L)
    energy = persona_spectral_energy(samples, sl, k=min(8, H - 1))
    res = layered_analysis(samples, sl, n_components=2, similarity=False)
    rows = "".join(
        f"<tr><td>{layer}</td><td>{r[0]:.3f}</td><td>{r[:2].sum():.3f}</td><td>{np.median(e):.4f}</td></tr>"
        for layer, r, e in zip(sl, res.explained_variance_ratio, energy)  # type: ignore[arg-type]
    )
    text = (
        f"<p>{html.escape(store.model)}, variant <code>{html.escape(variant)}</code>, mask strategy "
        f"<code>{html.escape(store.mask_strategy)}</code>: {n} personas × {L} layers × {H} hidden units.</p>"
        "<table><tr><th>layer</th><th>PC1 var</th><th>PC1+2 var</th><th>median λ</th></tr>" + rows + "</table>"
        "<p>PCA of the centred, L2-normalised vectors per layer; λ is each persona's Rayleigh energy on "
        "the hidden-unit feature graph of its layer.</p>"
    )
    figs = [
        build_layered_figure(samples, "pca", title=f"{variant}: persona vectors, PCA per layer", webgl=None),
        plot_spectral_energy(energy, sl, samples.labels, title=f"{variant}: feature-graph energy of each persona"),
    ]
    return ("Store analysis", text, figs)


def _layer_minima_section(samples: Any, lm: Any) -> Section:
    """The ten personas most stably minima across layers, the Sankey of layer memberships and the heat map."""
    from ..minima.plots import layer_heatmap, layer_sankey

    stable = "".join(
        f"<tr><td style='text-align:left'>{html.escape(str(samples.labels[i]))}</td><td>{lm.stability[i]:.2f}</td>"
        f"<td>{lm.frequency[i]:.2f}</td><td>{lm.longest_run[i]}</td></tr>"
        for i in lm.order()[:10]
    )
    ltext = (
        f"<p>Each layer's minima: the bottom {lm.quantile:.0%} of KDE + spectral energy (alpha = {lm.alpha:g}) among "
        "the personas. Stability: the fraction of adjacent layer pairs in which a persona is a minimum in both.</p>"
        "<table><tr><th>persona</th><th>stability</th><th>frequency</th><th>longest run</th></tr>" + stable + "</table>"
    )
    return ("Minima across layers", ltext, [layer_sankey(lm), layer_heatmap(lm)])
