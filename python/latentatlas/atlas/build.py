"""Build the atlas: compare the minima of X, encode it with the SAE, read the persona store, write the pages."""

from __future__ import annotations

import html
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._display import fmt, html_card
from .._validate import as_matrix, check_int
from ..minima.blend import METHODS, MinimaComparison
from ..minima.report import minima_sections
from ..report import Page, Section, write_pages
from . import cards
from .load import _load_sae, _texts, check_out, open_store

__all__ = ["Atlas", "build_atlas", "top_latents"]

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

    def _facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "file": str(self.path),
            "items": len(self.comparison.energy),
            "row cards": len(self.rows),
        }
        if self.latents is not None:
            facts["latent cards"] = len(self.latents)
        if self.sae_health is not None:
            facts.update(
                {f"SAE {k}": self.sae_health[k] for k in ("fve", "l0", "dead_fraction") if k in self.sae_health}
            )
        if self.store is not None:
            facts["persona store"] = ", ".join(f"{k} {v}" for k, v in self.store.items())
        return facts

    def __repr__(self) -> str:
        return "Atlas(" + ", ".join(f"{k}={fmt(v)}" for k, v in self._facts().items()) + ")"

    def _repr_html_(self) -> str:
        link = f"<p><a href='{html.escape(self.path.resolve().as_uri())}' target='_blank'>open the atlas</a></p>"
        return html_card("latentatlas atlas", self._facts()) + link


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
    from ..sae.features import feature_clusters

    live = np.unique(codes.indices).size
    if live < 3:
        return None, f"only {live} latents are active on X: too few to cluster"
    try:
        return feature_clusters(codes, sae, texts, n_clusters=min(N_CLUSTERS, live - 1), seed=0), ""
    except ValueError as exc:  # e.g. a latent graph the eigensolver cannot split
        return None, str(exc)


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
    max_rows = check_int(max_rows, "max_rows", low=0)
    n_top = check_int(n_top_latents, "n_top_latents")
    max_points = check_int(max_points, "max_points")
    lab = None if labels is None else np.asarray(labels)
    txt = _texts(texts, X.shape[0], "texts")
    model_ = _load_sae(sae, X.shape[1])
    store_, variant_ = open_store(store, model, mask_strategy, variant)

    # looked up at call time so that tests (and users) can patch latentatlas.minima.blend.compare
    res = importlib.import_module("..minima.blend", __package__).compare(X, lab, progress=progress, **compare_kwargs)
    rows = _pick_rows(res, max_rows)
    view = _sae_view(model_, X, rows, n_top, txt)
    store_info: dict[str, Any] | None = None
    layer_minima = None
    psections: list[Section] = [("No persona store", "<p>No persona store was given (store=, --store).</p>", [])]
    if store_ is not None:
        psections, store_info, layer_minima = cards._persona_sections(store_, variant_, progress)
    toc = [("summary", "Summary"), ("minima", "Energy & minima"), ("rows", "Rows")]
    toc += [(p.anchor, p.title) for p in view.pages] + [("personas", "Personas")]
    toc += [(p.anchor, p.title) for p in extra_pages]
    summary = cards._summary(X, name, res, view.health, model_, view.fc, store_info, layer_minima, toc[1:])
    all_pages = [
        Page("summary", "Summary", [("At a glance", summary, [])]),
        Page("minima", "Energy & minima", minima_sections(res, name=name, max_points=max_points)),
        _rows_page(res, rows, lab, txt, view, max_points),
        *view.pages,
        Page("personas", "Personas", psections),
        *extra_pages,
    ]
    written = write_pages(path, title, all_pages)
    return Atlas(
        written,
        res,
        rows,
        top_values=None if view.top is None else view.top[0],
        top_latents=None if view.top is None else view.top[1],
        latents=view.latents,
        clusters=view.clusters,
        features=view.fc,
        sae_health=view.health,
        store=store_info,
        layer_minima=layer_minima,
    )


@dataclass
class _SAEView:
    """The SAE's part of the atlas: X's top latents, their clusters, the SAE's health and its pages."""

    pages: list[Page]
    top: tuple[np.ndarray, np.ndarray] | None = None
    latents: np.ndarray | None = None
    clusters: np.ndarray | None = None
    health: dict[str, Any] | None = None
    fc: Any = None


def _sae_view(model_: Any, X: np.ndarray, rows: np.ndarray, n_top: int, txt: list[str] | None) -> _SAEView:
    """Encode X: each row's top latents, the feature clusters, and the latents and clusters pages."""
    if model_ is None:
        return _SAEView([Page("latents", "Latents", [("No SAE", "<p>No SAE was given (sae=, --sae).</p>", [])])])
    from ..sae.features import as_csr_codes
    from ..sae.interpret import TfidfKeywords
    from ..sae.report import feature_clusters_section

    shown_rows = set(rows.tolist())
    codes = as_csr_codes(model_.encode(X))
    top = top_latents(codes, n_top)
    health = model_.health(X)
    fc, why = _feature_clusters(model_, codes, txt)
    clusters = None
    if fc is not None:
        clusters = np.full(model_.n_latents, -1, dtype=np.int64)
        clusters[fc.live] = fc.spectral_labels
    latents = np.unique(top[1][rows][top[1][rows] >= 0])
    keywords = TfidfKeywords(txt) if txt is not None else None
    latent_cards, fig = cards._latent_cards(latents, codes, shown_rows, clusters, keywords)
    intro = (
        f"<p>The {latents.size} latents among the top {n_top} of the rows with a card"
        + (" (keywords: tf-idf of their top rows against all texts)" if keywords else "")
        + ".</p>"
    )
    if fc is None:
        csections: list[Section] = [("Not computed", f"<p>{html.escape(why)}.</p>", [])]
    else:
        csections = [
            feature_clusters_section(fc, heading="Latents by co-firing (spectral) vs decoder direction"),
            ("Cluster cards (spectral clusters)", cards._cluster_cards(fc, set(latents.tolist()), shown_rows), []),
        ]
    pages = [
        Page("latents", "Latents", [("Top latents of the rows", intro, [fig]), ("Latent cards", latent_cards, [])]),
        Page("clusters", "Feature clusters", csections),
    ]
    return _SAEView(pages, top, latents, clusters, health, fc)


def _rows_page(
    res: MinimaComparison,
    rows: np.ndarray,
    lab: np.ndarray | None,
    txt: list[str] | None,
    view: _SAEView,
    max_points: int,
) -> Page:
    """The map of R_norm and a card per row that most methods call a minimum."""
    row_text = (
        f"<p>The {rows.size} rows that the most of the {len(METHODS)} methods call local minima "
        "(then lowest R_norm): energy and rank, the methods, "
        + ("their top latents and those latents' clusters" if view.top is not None else "no latents (no SAE)")
        + ".</p>"
    )
    energy = None if view.fc is None else view.fc.energy
    row_cards = cards._row_cards(rows, res, lab, txt, view.top, view.clusters, energy)
    return Page(
        "rows",
        "Rows",
        [("Map", row_text, [cards._map_figure(res, rows, max_points)]), ("Row cards", row_cards, [])],
    )
