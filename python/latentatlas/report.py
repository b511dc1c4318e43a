"""Self-contained HTML output: the one writer every area's report uses.

A report is a list of :data:`Section` ``(heading, html_text, figures)`` written as one page with
plotly.js inlined once (:func:`write_report`); a single figure can also be its own page
(:func:`write_figure_html`). Files are written atomically. This module knows no area: the main
job that assembles the areas' chapters is :mod:`latentatlas.demo`.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from ._io import atomic_write_text

__all__ = ["Section", "write_figure_html", "write_report"]

Section = tuple[str, str, list[go.Figure]]
"""One report section: ``(heading, trusted HTML text, figures)``."""

_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "pre{background:#f6f6f6;padding:.6em}</style>"
)


def write_report(
    path: str | os.PathLike[str],
    title: str,
    sections: Iterable[Section],
) -> Path:
    """Write one self-contained HTML file (plotly.js inlined once) atomically.

    ``sections`` are ``(heading, html_text, figures)``; ``html_text`` is trusted HTML.
    """
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        _STYLE,
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    first = True
    for heading, text, figs in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{text}")
        for fig in figs:
            parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=first))
            first = False
    parts.append("</body></html>")
    return atomic_write_text(path, "\n".join(parts))


def write_figure_html(fig: go.Figure, path: str | os.PathLike[str]) -> Path:
    """One figure as its own self-contained HTML file (plotly.js inlined, no auto-play), written atomically."""
    return atomic_write_text(path, pio.to_html(fig, full_html=True, include_plotlyjs=True, auto_play=False))


def __getattr__(name: str) -> Any:
    # Deprecated: ``latentatlas.report.atlas`` was an alias of the local-minima report, kept only
    # because README examples still name it. Use ``latentatlas.minima.atlas``. Resolved lazily so
    # this module never imports an area.
    if name == "atlas":
        from .minima.report import atlas

        return atlas
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
