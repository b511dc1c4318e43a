"""How result objects look in a notebook: one small HTML table writer for their ``_repr_html_``.

Jupyter shows ``_repr_html_`` when an object is the last expression of a cell; ``__repr__`` stays the
plain one-line summary for terminals and logs. Values are escaped; floats print with 4 significant
digits unless a column asks otherwise.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["fmt", "html_card"]

_STYLE = (
    "<style>.la-card{font-family:system-ui,sans-serif;font-size:13px}"
    ".la-card table{border-collapse:collapse;margin:4px 0}"
    ".la-card td,.la-card th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    ".la-card th{background:#f3f3f3}.la-card td:first-child{text-align:left}</style>"
)


def fmt(value: Any) -> str:
    """A value as table text: floats to 4 significant digits, integers with separators."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int) or (
        hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu" and not getattr(value, "shape", ())
    ):
        return f"{int(value):,}"
    if isinstance(value, float) or (
        hasattr(value, "dtype") and getattr(value.dtype, "kind", "") == "f" and not getattr(value, "shape", ())
    ):
        return f"{float(value):.4g}"
    return str(value)


def html_card(
    title: str,
    facts: Mapping[str, Any] | None = None,
    rows: Sequence[Mapping[str, Any]] | None = None,
    columns: Sequence[str] | None = None,
) -> str:
    """A titled card: a two-column table of ``facts`` and, below it, ``rows`` as a table of ``columns``."""
    out = [_STYLE, f"<div class='la-card'><b>{html.escape(title)}</b>"]
    if facts:
        out.append(
            "<table>"
            + "".join(
                f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(fmt(v))}</td></tr>" for k, v in facts.items()
            )
            + "</table>"
        )
    if rows:
        cols = list(columns or rows[0].keys())
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
        out.append(f"<table><tr>{head}</tr>{body}</table>")
    out.append("</div>")
    return "".join(out)
