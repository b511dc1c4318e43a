"""Every progress bar goes through ``latentatlas._progress.progress_bar`` (issue 25): live in a
terminal, at most a line every ``QUIET_INTERVAL_S`` seconds anywhere else (a log, CI, a pipe).

The pipe tests run the package's long loops (basin-hopping, ``minima.compare``'s stages, the layers of
``minima_across_layers``) with ``progress=True`` in a child process whose stderr is a pipe, and count
the redraws (tqdm separates them with ``\\r`` or ``\\n``).
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

import latentatlas
from latentatlas import _progress
from latentatlas._progress import QUIET_INTERVAL_S, progress_bar

_CHILD = """
import sys, time
import numpy as np
import latentatlas._progress as P
P.QUIET_INTERVAL_S = float(sys.argv[2])
rng = np.random.default_rng(0)
t = time.perf_counter()
if sys.argv[1] == "basin":
    from latentatlas.minima.basin import basin_hopping_minima
    basin_hopping_minima(rng.standard_normal((300, 2)), n_seeds=60, niter=3, progress=True)
elif sys.argv[1] == "compare":
    from latentatlas.minima import compare
    compare(rng.standard_normal((200, 12)), progress=True, n_seeds=30)
else:
    from latentatlas.minima import minima_across_layers
    minima_across_layers(rng.standard_normal((40, 30, 10)), method="kde", progress=True)
print(time.perf_counter() - t)
"""


def _redraws(err: str) -> int:
    return len([s for s in re.split(r"[\r\n]", err) if s.strip()])


@pytest.mark.parametrize("what", ["basin", "compare", "layers"])
def test_bars_through_a_pipe_write_a_bounded_number_of_lines(what: str) -> None:
    """Default interval: a run of a few seconds writes nothing; at most one line per interval in general.
    Before: tqdm's own 0.1 s interval, several lines a second (basin-hopping, compare's stages)."""
    r = subprocess.run(
        [sys.executable, "-c", _CHILD, what, str(QUIET_INTERVAL_S)], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr
    elapsed = float(r.stdout.split()[-1])
    assert _redraws(r.stderr) <= 1 + elapsed / QUIET_INTERVAL_S, (elapsed, r.stderr)


def test_a_short_interval_shows_the_bar_is_alive_and_bounded() -> None:
    """With the interval at 0.25 s the same loop redraws now and then, never more than once per interval."""
    r = subprocess.run([sys.executable, "-c", _CHILD, "basin", "0.25"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    elapsed = float(r.stdout.split()[-1])
    n = _redraws(r.stderr)
    assert "basin-hopping" in r.stderr and 1 <= n <= 2 + elapsed / 0.25, (n, elapsed, r.stderr)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_in_a_terminal_quiet_elsewhere(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stderr", _Tty())
    live = progress_bar(100, "x")
    assert live.mininterval < 1 and live.delay == 0
    live.close()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    quiet = progress_bar(100, "x")
    assert quiet.mininterval == QUIET_INTERVAL_S and quiet.delay == QUIET_INTERVAL_S
    quiet.close()


def test_the_helper_wraps_iterables(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert list(progress_bar(range(5), "x")) == [0, 1, 2, 3, 4]
    assert progress_bar(range(5), "x").total == 5
    assert progress_bar(iter([1, 2]), "x", total=2).total == 2
    assert list(progress_bar((i for i in range(3)), "x", enabled=False)) == [0, 1, 2]
    assert progress_bar(7, "x", enabled=False).disable


def test_no_module_creates_a_tqdm_bar_itself() -> None:
    """One helper: tqdm is imported by ``_progress`` only."""
    root = Path(latentatlas.__file__).parent
    offenders = []
    for f in root.rglob("*.py"):
        if f == Path(_progress.__file__):
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "tqdm" for n in names):
                offenders.append(f"{f.relative_to(root)}:{node.lineno}")
    assert not offenders, offenders
