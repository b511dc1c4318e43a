"""Every progress bar of the package, one policy: live where someone watches, quiet in a log.

:func:`progress_bar` is the only place that creates a tqdm bar. In a terminal or a notebook
(tqdm.auto's widget, when ipywidgets is there) it is the usual live bar. Anywhere else (stderr
redirected to a file or a pipe, CI) it stays silent for the first :data:`QUIET_INTERVAL_S` seconds,
then redraws at most every :data:`QUIET_INTERVAL_S` seconds and, when the total is known, every
``total / PROGRESS_UPDATES`` steps, so a long run writes a bounded number of lines and a short one none.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["PROGRESS_UPDATES", "QUIET_INTERVAL_S", "progress_bar"]

#: Most redraws of a bar whose output is not live (a log file, CI): one per 5 % of the work.
PROGRESS_UPDATES = 20
#: Least seconds between two redraws of a bar whose output is not live.
QUIET_INTERVAL_S = 10.0


def progress_bar(work: int | Iterable[Any] | None, desc: str, enabled: bool = True, **kw: Any) -> Any:
    """A tqdm bar over ``work`` that does not flood logs.

    ``work`` is the number of steps (then call ``bar.update``) or an iterable to wrap
    (``for x in progress_bar(items, "desc")``; its ``len`` is the total when it has one, or pass
    ``total=``). ``enabled=False`` gives a disabled bar (an iterable passes through unchanged).
    Other keywords go to tqdm (``unit``, ``unit_scale``, ``initial``, ``leave``; ``leave`` defaults
    to False).
    """
    from tqdm.auto import tqdm

    iterable: Iterable[Any] | None = None
    if work is None or isinstance(work, (int, numbers.Integral)):  # numbers.Integral: NumPy integers
        total = None if work is None else int(work)
    else:
        iterable = work
        total = kw.pop("total", None)
        if total is None and hasattr(work, "__len__"):
            total = len(work)  # type: ignore[arg-type]
    kw.setdefault("leave", False)
    out = kw.get("file") or sys.stderr
    live = bool(getattr(out, "isatty", lambda: False)()) or any("notebook" in c.__module__ for c in tqdm.__mro__)
    if not live:
        # maxinterval=inf: tqdm's monitor thread would otherwise reset miniters to 1 after 10 s without a redraw
        # delay: a bar that finishes within the interval writes nothing at all (no 0 % line, no clearing)
        kw.update(
            mininterval=QUIET_INTERVAL_S,
            maxinterval=float("inf"),
            miniters=max(1, (total or 0) // PROGRESS_UPDATES),
            delay=QUIET_INTERVAL_S,
        )
    if iterable is None:
        return tqdm(total=total, desc=desc, disable=not enabled, **kw)
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, **kw)
