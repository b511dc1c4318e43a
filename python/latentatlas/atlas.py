"""The linked atlas: one self-contained report that joins the areas' views of the same rows.

``build_atlas(X, sae=..., store=...)`` runs the local-minima comparison on an embedding matrix,
encodes its rows with a sparse autoencoder and reads a persona store, and writes one HTML file
whose pages link to each other by anchors:

* **summary** — one screen: sizes, energy quantiles, minima per method, SAE health, the store;
* **energy & minima** — the local-minima report (:func:`latentatlas.minima.report.minima_sections`);
* **rows** (``#row-i``) — the rows most methods call minima: energy, which methods, top latents;
* **latents** (``#latent-j``) — each latent's frequency, top rows (and keywords, given texts), its
  feature cluster;
* **feature clusters** (``#cluster-c``) — the latents' spectral clusters on their co-firing graph vs
  decoder-cosine clusters (:mod:`latentatlas.sae.features`), a card per cluster;
* **personas** — the store's per-layer analysis and its minima across layers
  (:func:`latentatlas.minima.minima_across_layers`).

Every page but the first two is optional (no SAE, no store) and says so when left out. Points
of the figures carry their ``#anchor`` (customdata), so clicking a point opens its card. One file
rather than a folder of pages: it opens from anywhere (e-mail, a notebook, ``file://``) with
plotly.js inlined once, and is written atomically as a whole. This module is on the top floor: it
composes the areas (minima, sae, personas), which never import each other.
"""

from __future__ import annotations

import argparse
import html
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import scipy.sparse as sp

from ._io import load_labels, load_matrix
from ._plotting import TEMPLATE, scatter_cls
from ._validate import as_matrix, check_int, seed_arg
from .minima.blend import METHODS, MinimaComparison
from .minima.report import minima_sections
from .report import Page, Section, write_pages

__all__ = ["Atlas", "build_atlas", "check_out", "open_store", "register", "top_latents"]

_HTML_SUFFIXES = (".html", ".htm")
#: Spectral clusters of the latents on the feature-clusters page (fewer when fewer latents are live).
N_CLUSTERS = 8


@dataclass
class Atlas:
    """What :func:`build_atlas` wrote and computed.

    Attributes
    ----------
    path : the HTML file
    comparison : the local-minima comparison of X (:class:`latentatlas.minima.MinimaComparison`)
    rows : (r,) rows with a card on the rows page (most minima memberships first)
    top_values, top_latents : (n, m) each row's m most active latents, activation descending, ties
        to the lower latent id; latent -1 (value 0) where a row has fewer than m active; None without an SAE
    latents : (l,) latents with a card on the latents page; None without an SAE
    clusters : (n_latents,) spectral feature cluster of every latent (-1: never active on X); None without
        the clustering
    features : the :class:`latentatlas.sae.features.FeatureClusters` of X's codes; None without an SAE
    sae_health : the SAE's ``health(X)`` (fve, l0, dead_fraction, ...); None without an SAE
    store : model, variant, mask strategy and sizes of the persona store; None without one
    layer_minima : the store's :class:`latentatlas.minima.LayerMinima` (minima across layers); None without one
    """

    path: Path
    comparison: MinimaComparison
    rows: np.ndarray
    top_values: np.ndarray | None = None
    top_latents: np.ndarray | None = None
    latents: np.ndarray | None = None
    clusters: np.ndarray | None = None
    features: Any = None
    sae_health: dict[str, Any] | None = None
    store: dict[str, Any] | None = None
    layer_minima: Any = None

    def table(self) -> str:
        """The minima comparison as a Markdown table."""
        return self.comparison.table()


# ------------------------------------------------------------------------------------- inputs


def check_out(out: Any, *inputs: Any) -> Path:
    """The report path: an ``.html``/``.htm`` file name that is not a directory nor one of ``inputs``.

    Checked before any work, so a bad ``out`` fails at once and never overwrites the data.
    """
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise TypeError(f"out must be a path to an .html file, got {out!r}")
    path = Path(out).expanduser()
    if str(out).endswith(("/", os.sep)) or path.is_dir():
        raise ValueError(f"out {str(out)!r} is a directory; give the report's file name, e.g. {path / 'atlas.html'}")
    if path.suffix.lower() not in _HTML_SUFFIXES:
        raise ValueError(f"out {str(out)!r} must end in .html or .htm (the report is one HTML file)")
    for given in inputs:
        if isinstance(given, (str, os.PathLike)) and Path(given).exists() and path.exists():
            if Path(given).resolve() == path.resolve():
                raise ValueError(f"out {str(out)!r} is an input file; choose another report path")
    return path


def _load_sae(sae: Any, d: int) -> Any:
    """An SAE object (anything with ``encode``, ``d_in`` and ``n_latents``) or a path to load."""
    if sae is None:
        return None
    if isinstance(sae, (str, os.PathLike)):
        from .sae import load

        if not Path(sae).exists():
            raise FileNotFoundError(f"sae: no SAE at {sae}")
        sae = load(sae)
    if not all(hasattr(sae, a) for a in ("encode", "d_in", "n_latents")):
        raise TypeError(f"sae must be a TopKSAE/ThresholdSAE or a path to one, got {type(sae).__name__}")
    if sae.d_in != d:
        raise ValueError(f"sae has d_in = {sae.d_in} but X has {d} columns; the SAE must be trained on X's space")
    return sae


def open_store(
    store: Any, model: str | None = None, mask_strategy: str | None = None, variant: str | None = None
) -> Any:
    """``(store, variant)``: a persona store object or a directory store root, its variant chosen.

    With a root, the model and mask strategy are found on disk (the only ones, or those named);
    the variant is the only one present unless named. ``(None, None)`` for ``store=None``.
    """
    if store is None:
        return None, None
    from .personas.store import PersonaVectorStore, discover_activation_models

    if isinstance(store, (str, os.PathLike)):
        root = Path(store).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"store: persona store directory not found: {root}")
        masks = (
            [mask_strategy]
            if mask_strategy
            else sorted({p.name for m in root.iterdir() if m.is_dir() for p in m.iterdir() if p.is_dir()})
        )
        found = [(m, s) for s in masks for m in discover_activation_models(root, s)]
        if model is not None:
            found = [(m, s) for m, s in found if m == model]
        if not found:
            raise ValueError(f"store: no persona vectors under {root} (layout <model>/<mask strategy>/<variant>/)")
        if len(found) > 1:
            raise ValueError(
                f"store: {root} holds several (model, mask strategy): {found}; choose with model=/mask_strategy="
            )
        store = PersonaVectorStore(found[0][0], root, found[0][1], variants=None, array_type="numpy")
    if not hasattr(store, "list_personas") or not hasattr(store, "available_variants"):
        raise TypeError(f"store must be a persona store or its directory, got {type(store).__name__}")
    variants = store.available_variants()
    if variant is None:
        if len(variants) != 1:
            raise ValueError(f"store: choose a variant (variant=) among {variants}")
        variant = variants[0]
    elif variant not in variants:
        raise ValueError(f"store: variant {variant!r} not found; available: {variants}")
    return store, variant


def _texts(texts: Any, n: int, name: str) -> list[str] | None:
    if texts is None:
        return None
    out = [str(t) for t in texts]
    if len(out) != n:
        raise ValueError(f"{name} must have one entry per row of X ({n}), got {len(out)}")
    return out


# ---------------------------------------------------------------------------------- the views


def top_latents(codes: sp.csr_matrix, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``m`` largest active codes ``(values, latents)``, (n, m): activation descending,
    ties to the lower latent; latent -1 / value 0 fill rows with fewer than ``m`` active codes.

    One sort of the stored entries by (row, activation desc, latent): O(nnz log nnz), no loop over rows.
    """
    codes = sp.csr_matrix(codes)
    n = codes.shape[0]
    row = np.repeat(np.arange(n), np.diff(codes.indptr))
    keep = codes.data > 0
    row, lat, val = row[keep], codes.indices[keep].astype(np.int64), codes.data[keep]
    order = np.lexsort((lat, -val, row))
    row, lat, val = row[order], lat[order], val[order]
    rank = np.arange(row.size) - np.searchsorted(row, np.arange(n))[row]  # position within its row
    sel = rank < m
    vals = np.zeros((n, m))
    lats = np.full((n, m), -1, dtype=np.int64)
    vals[row[sel], rank[sel]] = val[sel]
    lats[row[sel], rank[sel]] = lat[sel]
    return vals, lats


def _pick_rows(res: MinimaComparison, max_rows: int) -> np.ndarray:
    """Rows called a minimum by the most methods (then lowest energy, then lowest index)."""
    votes = np.sum([res.masks[m] for m in METHODS], axis=0)
    order = np.lexsort((np.arange(votes.size), res.energy, -votes))
    return order[votes[order] > 0][:max_rows]


def _feature_clusters(sae: Any, codes: sp.csr_matrix, texts: list[str] | None) -> tuple[Any, str]:
    """:func:`latentatlas.sae.features.feature_clusters` of X's codes, or None and why it could not run."""
    from .sae.features import feature_clusters

    live = np.unique(codes.indices).size
    if live < 3:
        return None, f"only {live} latents are active on X: too few to cluster"
    try:
        return feature_clusters(codes, sae, texts, n_clusters=min(N_CLUSTERS, live - 1), seed=0), ""
    except ValueError as exc:  # e.g. a latent graph the eigensolver cannot split
        return None, str(exc)


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


def _persona_sections(store: Any, variant: str, progress: bool) -> tuple[list[Section], dict[str, Any], Any]:
    """The store's per-layer analysis and its minima across layers (:func:`latentatlas.minima.minima_across_layers`)."""
    from .minima.layers import minima_across_layers
    from .minima.plots import layer_heatmap, layer_sankey
    from .personas.analysis import layered_analysis, load_persona_vectors, persona_spectral_energy, scree_layers
    from .personas.plots import build_layered_figure, plot_spectral_energy

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
    # the same personas through every layer: (L, n, H); the items are the personas' names
    try:
        lm = minima_across_layers(
            np.moveaxis(samples.vectors, 1, 0), items=samples.labels, k=min(8, H - 1), rng=0, progress=progress
        )
    except ValueError as exc:  # too few personas or layers to track minima
        return (
            [
                ("Store analysis", text, figs),
                ("Minima across layers", f"<p>Not computed: {html.escape(str(exc))}.</p>", []),
            ],
            info,
            None,
        )
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
    sections = [("Store analysis", text, figs), ("Minima across layers", ltext, [layer_sankey(lm), layer_heatmap(lm)])]
    return sections, info, lm


# ------------------------------------------------------------------------------------ the API


def build_atlas(
    X: Any,
    *,
    sae: Any = None,
    store: Any = None,
    labels: Any = None,
    texts: Sequence[str] | None = None,
    out: str | os.PathLike[str] = "atlas.html",
    name: str = "data",
    title: str = "latentatlas — atlas",
    variant: str | None = None,
    model: str | None = None,
    mask_strategy: str | None = None,
    max_rows: int = 100,
    n_top_latents: int = 5,
    max_points: int = 20000,
    extra_pages: Sequence[Page] = (),
    progress: bool = True,
    **compare_kwargs: Any,
) -> Atlas:
    """One self-contained HTML report whose pages link the views of the same rows of X.

    Parameters
    ----------
    X : array-like (n_samples, n_features)
    sae : TopKSAE / ThresholdSAE or a path :func:`latentatlas.sae.load` reads, optional;
        its ``d_in`` must equal n_features
    store : PersonaVectorStore (or a Parquet store) or a directory store root, optional
    labels : (n_samples,), optional; texts : n_samples strings, optional (cards, keywords)
    out : path of the ``.html`` file (written atomically)
    name, title : the data's name in the summary, the page title
    variant, model, mask_strategy : which vectors of the store (default: the only ones present)
    max_rows : rows with a card (those most methods call minima); n_top_latents : latents per row
    max_points : charts draw at most this many items (numbers use all)
    extra_pages : more :class:`latentatlas.report.Page` s appended after the atlas's own
    progress : tqdm progress bars
    **compare_kwargs : passed to :func:`latentatlas.minima.compare` (alpha, k, quantile, rng, ...)

    Returns
    -------
    Atlas
    """
    path = check_out(out, sae, store)
    X = as_matrix(X, "X")
    n = X.shape[0]
    max_rows = check_int(max_rows, "max_rows", low=0)
    n_top = check_int(n_top_latents, "n_top_latents")
    max_points = check_int(max_points, "max_points")
    lab = None if labels is None else np.asarray(labels)
    txt = _texts(texts, n, "texts")
    model_ = _load_sae(sae, X.shape[1])
    store_, variant_ = open_store(store, model, mask_strategy, variant)

    # looked up at call time so that tests (and users) can patch latentatlas.minima.blend.compare
    res = importlib.import_module(".minima.blend", __package__).compare(X, lab, progress=progress, **compare_kwargs)
    rows = _pick_rows(res, max_rows)
    shown_rows = set(rows.tolist())
    pages = [("summary", "Summary"), ("minima", "Energy & minima"), ("rows", "Rows")]

    top = latents = clusters = health = fc = None
    sae_pages: list[Page] = []
    if model_ is not None:
        from .sae.features import as_csr_codes
        from .sae.interpret import TfidfKeywords
        from .sae.report import feature_clusters_section

        codes = as_csr_codes(model_.encode(X))
        top = top_latents(codes, n_top)
        health = model_.health(X)
        fc, why = _feature_clusters(model_, codes, txt)
        if fc is not None:
            clusters = np.full(model_.n_latents, -1, dtype=np.int64)
            clusters[fc.live] = fc.spectral_labels
        latents = np.unique(top[1][rows][top[1][rows] >= 0])
        keywords = TfidfKeywords(txt) if txt is not None else None
        cards, fig = _latent_cards(latents, codes, shown_rows, clusters, keywords)
        intro = (
            f"<p>The {latents.size} latents among the top {n_top} of the rows with a card"
            + (" (keywords: tf-idf of their top rows against all texts)" if keywords else "")
            + ".</p>"
        )
        sae_pages.append(
            Page("latents", "Latents", [("Top latents of the rows", intro, [fig]), ("Latent cards", cards, [])])
        )
        if fc is None:
            csections: list[Section] = [("Not computed", f"<p>{html.escape(why)}.</p>", [])]
        else:
            csections = [
                feature_clusters_section(fc, heading="Latents by co-firing (spectral) vs decoder direction"),
                ("Cluster cards (spectral clusters)", _cluster_cards(fc, set(latents.tolist()), shown_rows), []),
            ]
        sae_pages.append(Page("clusters", "Feature clusters", csections))
        pages += [("latents", "Latents"), ("clusters", "Feature clusters")]
    else:
        sae_pages.append(Page("latents", "Latents", [("No SAE", "<p>No SAE was given (sae=, --sae).</p>", [])]))
        pages.append(("latents", "Latents"))

    store_info = layer_minima = None
    if store_ is not None:
        psections, store_info, layer_minima = _persona_sections(store_, variant_, progress)
    else:
        psections = [("No persona store", "<p>No persona store was given (store=, --store).</p>", [])]
    pages.append(("personas", "Personas"))
    pages += [(p.anchor, p.title) for p in extra_pages]

    row_text = (
        f"<p>The {rows.size} rows that the most of the {len(METHODS)} methods call local minima "
        "(then lowest R_norm): energy and rank, the methods, "
        + ("their top latents and those latents' clusters" if top is not None else "no latents (no SAE)")
        + ".</p>"
    )
    all_pages = [
        Page(
            "summary",
            "Summary",
            [("At a glance", _summary(X, name, res, health, model_, fc, store_info, layer_minima, pages[1:]), [])],
        ),
        Page("minima", "Energy & minima", minima_sections(res, name=name, max_points=max_points)),
        Page(
            "rows",
            "Rows",
            [
                ("Map", row_text, [_map_figure(res, rows, max_points)]),
                ("Row cards", _row_cards(rows, res, lab, txt, top, clusters, None if fc is None else fc.energy), []),
            ],
        ),
        *sae_pages,
        Page("personas", "Personas", psections),
        *extra_pages,
    ]
    written = write_pages(path, title, all_pages)
    return Atlas(
        written,
        res,
        rows,
        top_values=None if top is None else top[0],
        top_latents=None if top is None else top[1],
        latents=latents,
        clusters=clusters,
        features=fc,
        sae_health=health,
        store=store_info,
        layer_minima=layer_minima,
    )


# ------------------------------------------------------------------------------------ the CLI


def _load_texts(path: str) -> list[str]:
    """One text per line of a UTF-8 file (every line counts, blank ones too)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--texts file not found: {p}")
    try:
        return p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"--texts {p} is not UTF-8 text") from exc


def _run(args: argparse.Namespace) -> int:
    check_out(args.out, args.input, args.labels, args.sae, args.store, args.texts)
    X = load_matrix(args.input, args.key)
    labels = load_labels(args.labels) if args.labels else None
    if labels is not None and labels.shape[0] != X.shape[0]:
        raise ValueError(f"--labels has {labels.shape[0]} entries but the input has {X.shape[0]} rows")
    texts = _load_texts(args.texts) if args.texts else None
    if texts is not None and len(texts) != X.shape[0]:
        raise ValueError(f"--texts has {len(texts)} lines but the input has {X.shape[0]} rows")
    res = build_atlas(
        X,
        sae=args.sae,
        store=args.store,
        labels=labels,
        texts=texts,
        out=args.out,
        name=Path(args.input).name,
        variant=args.variant,
        max_rows=args.max_rows,
        max_points=args.max_points,
        progress=not args.quiet,
        alpha=args.alpha,
        k=args.k,
        quantile=args.quantile,
        rng=args.seed,
        notebook_compat=args.notebook_compat,
        knn=args.knn,
        n_neighbors=args.n_neighbors,
        n_clusters=args.clusters,
    )
    if not args.quiet:
        print(res.table())
        print(f"wrote {res.path}")
    return 0


def register(sub: Any) -> None:
    """Add ``atlas`` to the ``latentatlas`` sub-commands."""
    p = sub.add_parser(
        "atlas",
        help="linked atlas of an embedding matrix: minima, SAE latents, persona store (one HTML report)",
        description="Compare KDE, diffusion-map, basin-hopping and ToMATo minima, vanilla and blended with the "
        "feature-graph spectral energy; with --sae, each minimum's top latents; with --store, the persona "
        "store's analysis. Writes one self-contained HTML report whose pages link rows, latents and clusters.",
    )
    p.add_argument("input", help="embedding matrix: .npy, .npz or .safetensors (n_samples × n_features)")
    p.add_argument("--out", default="atlas.html", help="HTML report path, .html (default: %(default)s)")
    p.add_argument("--labels", help="ground-truth labels: .npy or a text file with one label per line")
    p.add_argument("--texts", help="the rows' texts: a text file with one per line (cards and latent keywords)")
    p.add_argument("--key", help="array name inside a .npz/.safetensors file holding several")
    p.add_argument("--sae", metavar="PATH", help="a sparse autoencoder over X's space (any format sae.load reads)")
    p.add_argument("--store", metavar="PATH", help="a persona store directory (persona-vectors layout)")
    p.add_argument("--variant", help="the store's variant to show (default: the only one)")
    p.add_argument(
        "--alpha", type=float, default=0.5, help="blend weight of the vanilla score, in [0, 1] (default: %(default)s)"
    )
    p.add_argument(
        "--k", type=int, default=8, help="neighbours per feature in the feature graph (default: %(default)s)"
    )
    p.add_argument(
        "--quantile", type=float, default=0.10, help="minima = bottom quantile of each score (default: %(default)s)"
    )
    p.add_argument(
        "--knn",
        choices=("auto", "exact", "approx"),
        default="auto",
        help="kNN graph of ToMATo / sparse diffusion: exact (O(N²)), approximate (faiss HNSW, "
        "latentatlas[minima]) or auto (exact up to 20,000 items) (default: %(default)s)",
    )
    p.add_argument(
        "--n-neighbors", type=int, default=30, help="neighbours per item in the kNN graph (default: %(default)s)"
    )
    p.add_argument(
        "--clusters",
        type=int,
        default=None,
        help="ToMATo clusters to keep (default: the persistence diagram's widest gap)",
    )
    p.add_argument(
        "--max-points",
        type=int,
        default=20000,
        help="scatter charts draw at most this many items, evenly strided (default: %(default)s)",
    )
    p.add_argument("--max-rows", type=int, default=100, help="rows with a card on the rows page (default: %(default)s)")
    p.add_argument("--seed", type=seed_arg, default=42, help="seed of the basin-hopping starts (default: %(default)s)")
    p.add_argument(
        "--notebook-compat",
        action="store_true",
        help="reproduce the seed notebook exactly (anti-mode KDE mask, its eigh on the non-symmetric P)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or table")
    p.set_defaults(func=_run)
