"""The benchmarks page, generated at build time from the JSON files in ``docs/data/bench/``.

No number on the page is typed by hand: each file is one benchmark run, written by a bench script
(``make bench`` copies ``benches/results/*.json`` here). Two schemas are read:

* the house schema: ``{"date", "cpu", "simd", "load_average", "command", "rows": [{"kernel",
  "latentatlas_s", "reference", "reference_s", "ratio", ...}]}``;
* ``benches/bench_peers_torch.py``'s: ``"peer"`` / ``"peer_s"`` for ``"reference"`` / ``"reference_s"``,
  ``"load_average_before"`` / ``"load_average_after"`` for ``"load_average"``, and ``"cores"``.

``"load_average"`` may also be ``{"before": [...], "after": [...]}`` and ``"simd"`` a list of paths. A row
without ``"ratio"`` (one that records an overhead) gets ``reference_s / latentatlas_s``. Extra row keys are
shown in a last "notes" column; a file that cannot be read is a build error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Row:
    kernel: str
    ours: float
    reference: str
    theirs: float
    ratio: float
    extra: dict[str, Any]


@dataclass
class Run:
    name: str
    date: str
    machine: str
    load: str
    command: str
    rows: list[Row]


_ROW_KEYS = {"kernel", "latentatlas_s", "reference", "reference_s", "peer", "peer_s", "ratio"}


def _load(la: Any) -> str:
    def fmt(v: Any) -> str:
        return ", ".join(f"{x:.2f}" for x in v) if isinstance(v, (list, tuple)) else f"{float(v):.2f}"

    if isinstance(la, dict):
        return "; ".join(f"{k}: {fmt(v)}" for k, v in la.items())
    return fmt(la)


def read_run(path: Path) -> Run:
    """One benchmark file in either schema; ValueError naming the file and key when it does not fit."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if "load_average" in d:
            load = _load(d["load_average"])
        else:
            load = _load({k[len("load_average_") :]: v for k, v in d.items() if k.startswith("load_average_")})
        parts = [str(d.get("cpu", "unknown CPU"))]
        if "cores" in d:
            parts.append(f"{d['cores']} cores")
        if "simd" in d:
            simd = d["simd"]
            parts.append("SIMD " + (", ".join(map(str, simd)) if isinstance(simd, list) else str(simd)))
        rows = []
        for r in d["rows"]:
            ours = float(r["latentatlas_s"])
            ref_s = float(r["reference_s"] if "reference_s" in r else r["peer_s"])
            ratio = float(r["ratio"]) if "ratio" in r else ref_s / ours  # a row that records an overhead instead
            extra = {k: v for k, v in r.items() if k not in _ROW_KEYS}
            rows.append(Row(str(r["kernel"]), ours, str(r.get("reference", r.get("peer"))), ref_s, ratio, extra))
        return Run(path.stem, str(d["date"]), ", ".join(parts), load or "not recorded", str(d["command"]), rows)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a benchmark file ({type(exc).__name__}: {exc})") from exc


def _secs(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def _value(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def ratio_text(r: float) -> str:
    """How a ratio is printed everywhere (this page and the README's table): two decimals and ×."""
    return f"{r:.2f}×"


def render(data_dir: Path) -> str:
    files = sorted(data_dir.glob("*.json"))
    lines = [
        "# Benchmarks",
        "",
        "Generated when the site is built from the JSON files in `docs/data/bench/`, one per benchmark run:",
        "nothing here is typed by hand. **Ratio** is the reference's time over latentatlas's in the same run",
        "(above 1: latentatlas is faster). Absolute times move with the machine and its load; the ratios are",
        "what to compare. `make bench` runs the benches and copies their JSON here; rerun the command shown",
        "under a run to reproduce it, on a quiet machine.",
        "",
    ]
    if not files:
        lines += [
            '!!! note "No benchmark results yet"',
            "    `docs/data/bench/` holds no JSON file, so there is nothing to show. Run `make bench` on a quiet",
            "    machine, then build the docs again.",
            "",
        ]
    for path in files:
        run = read_run(path)
        lines += [
            f"## {run.name}",
            "",
            f"- **date**: {run.date}",
            f"- **machine**: {run.machine}",
            f"- **load average**: {run.load}",
            f"- **data**: [`{path.name}`](../data/bench/{path.name})",
            "",
            "Reproduce:",
            "",
            "```bash",
            run.command,
            "```",
            "",
        ]
        has_extra = any(r.extra for r in run.rows)
        head = "| kernel | latentatlas | reference | reference time | ratio |"
        lines += [head + (" notes |" if has_extra else ""), "|---|---:|---|---:|---:|" + ("---|" if has_extra else "")]
        for r in run.rows:
            cells = [r.kernel, _secs(r.ours), r.reference, _secs(r.theirs), f"**{ratio_text(r.ratio)}**"]
            if has_extra:
                cells.append(", ".join(f"{k}: {_value(v)}" for k, v in r.extra.items()))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Earlier measurements",
        "",
        "The measurements recorded by hand before the benches wrote JSON (with their commands and the load",
        "of the day) are kept, unchanged, in [the measurement log](archive.md).",
        "",
    ]
    return "\n".join(lines)
