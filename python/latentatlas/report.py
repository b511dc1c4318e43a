"""Self-contained HTML output: the one writer every area's report uses.

A report is a list of :data:`Section` ``(heading, html_text, figures)`` written as one page with
plotly.js inlined once (:func:`write_report`); a longer report is a list of :class:`Page` s written as
one file with a navigation bar (:func:`write_pages`), each page an anchored part of the document so
links like ``#row-12`` work offline; a single figure can also be its own page
(:func:`write_figure_html`). Files are written atomically. This module knows no area: the main
job that assembles the areas' chapters is :mod:`latentatlas.demo`, the linked atlas :mod:`latentatlas.atlas`.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from ._io import atomic_write_text

__all__ = ["Page", "Section", "write_figure_html", "write_pages", "write_report"]

Section = tuple[str, str, list[go.Figure]]
"""One report section: ``(heading, trusted HTML text, figures)``."""

_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "pre{background:#f6f6f6;padding:.6em}"
    "nav.pages{position:sticky;top:0;z-index:10;background:#fff;border-bottom:1px solid #ccc;padding:.4em 0}"
    "nav.pages a{margin-right:1.2em}[id]{scroll-margin-top:3em}:target{outline:2px solid #e7ba52}</style>"
)

# A point whose customdata is "#anchor" (or a list starting with one) takes the reader to that
# anchor when clicked, if the page has it: how a figure links to the rows, latents and clusters.
_CLICK_TO_ANCHOR = (
    "var gd=document.getElementById('{plot_id}');if(gd&&gd.on){gd.on('plotly_click',function(e){"
    "var p=e&&e.points&&e.points[0],a=p&&p.customdata;if(Array.isArray(a))a=a[0];"
    "if(typeof a==='string'&&a.charAt(0)==='#'&&document.getElementById(a.slice(1))){location.hash=a;}});}"
)

_ANCHOR = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


@dataclass
class Page:
    """One page of :func:`write_pages`: an ``anchor`` (HTML id), a ``title`` for the navigation bar
    and its heading, and its sections (:data:`Section`)."""

    anchor: str
    title: str
    sections: list[Section] = field(default_factory=list)


def _document(title: str, body: Iterable[str]) -> str:
    head = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{_STYLE}</head><body>"
    return "\n".join([head, *body, "</body></html>"])


def _sections_html(sections: Iterable[Section], level: int, state: dict[str, bool]) -> list[str]:
    """Headings, texts and figures; plotly.js is inlined with the first figure of the file only."""
    parts = []
    for heading, text, figs in sections:
        parts.append(f"<h{level}>{html.escape(heading)}</h{level}>{text}")
        for fig in figs:
            parts.append(
                pio.to_html(fig, full_html=False, include_plotlyjs=state["first"], post_script=_CLICK_TO_ANCHOR)
            )
            state["first"] = False
    return parts


def write_report(
    path: str | os.PathLike[str],
    title: str,
    sections: Iterable[Section],
) -> Path:
    """Write one self-contained HTML file (plotly.js inlined once) atomically.

    ``sections`` are ``(heading, html_text, figures)``; ``html_text`` is trusted HTML.
    """
    body = [f"<h1>{html.escape(title)}</h1>", *_sections_html(sections, 2, {"first": True})]
    return atomic_write_text(path, _document(title, body))


def write_pages(path: str | os.PathLike[str], title: str, pages: Sequence[Page]) -> Path:
    """Write several pages as one self-contained HTML file with a sticky navigation bar, atomically.

    Each page is a ``<section id=anchor>`` of the same document (so ``href="#anchor"`` links between
    pages, and to ids inside them, work offline with no server and no script); plotly.js is inlined
    once. Anchors must be unique HTML ids (a letter, then letters, digits, ``-`` or ``_``).
    """
    seen: set[str] = set()
    for p in pages:
        if not isinstance(p.anchor, str) or not _ANCHOR.fullmatch(p.anchor) or p.anchor in seen:
            raise ValueError(f"page anchor {p.anchor!r} must be a unique id: a letter, then letters, digits, - or _")
        seen.add(p.anchor)
    nav = "".join(f"<a href='#{p.anchor}'>{html.escape(p.title)}</a>" for p in pages)
    body = [f"<nav class='pages'><b>{html.escape(title)}</b> &nbsp; {nav}</nav>"]
    state = {"first": True}
    for p in pages:
        body.append(f"<section id='{p.anchor}'><h2>{html.escape(p.title)}</h2>")
        body += _sections_html(p.sections, 3, state)
        body.append("</section>")
    return atomic_write_text(path, _document(title, body))


def write_figure_html(fig: go.Figure, path: str | os.PathLike[str]) -> Path:
    """One figure as its own self-contained HTML file (plotly.js inlined, no auto-play), written atomically."""
    return atomic_write_text(path, pio.to_html(fig, full_html=True, include_plotlyjs=True, auto_play=False))
