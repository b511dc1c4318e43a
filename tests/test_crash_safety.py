"""kill -9 and concurrent writers against ``TopKSAE.save``: the destination always loads as a complete model.

Writers run in forked child processes that save one of two models (A, B) over and over; they are killed with
SIGKILL at random moments and, through a hook that reports each finished file and then pauses,
exactly between the files of one save. After every kill the directory must load as exactly A or B,
and the next save or load must clear the killed writer's leftovers.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from latentatlas.sae import TopKSAE
from latentatlas.sae import formats as sae_formats
from latentatlas.sae.io import load

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and POSIX signals")


def _child(dest: Path, models: list[TopKSAE], pause: float) -> tuple[int, int]:
    """Fork a writer that saves ``models`` in turn into ``dest`` forever: ``(pid, read end of its pipe)``.

    It writes ``R`` when it starts; with ``pause``, also ``F`` after every file a save finishes, then
    sleeps, so the parent can kill it exactly between two files. (A fork, not a fresh interpreter:
    starting Python and importing latentatlas would take most of the test's time.)
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        return pid, r
    os.close(r)
    try:
        if pause:

            def traced(write):
                def run(path, data):
                    out = write(path, data)
                    os.write(w, b"F")
                    time.sleep(pause)
                    return out

                return run

            sae_formats.atomic_write_bytes = traced(sae_formats.atomic_write_bytes)
            sae_formats.atomic_write_text = traced(sae_formats.atomic_write_text)
        os.write(w, b"R")
        i = 0
        while True:
            models[i % len(models)].save(dest)
            i += 1
    finally:
        os._exit(1)


def _read(fd: int) -> bytes:
    return os.read(fd, 1)


def _kill(pid: int, fd: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(fd)


def _which(dest: Path, models: dict[int, TopKSAE]) -> int:
    got = load(dest)
    for seed, m in models.items():
        if all(np.array_equal(getattr(got, n), getattr(m, n)) for n in ("W_enc", "b_enc", "W_dec", "b_dec")):
            return seed
    raise AssertionError("the destination holds neither complete model")


def _leftovers(dest: Path) -> list[str]:
    named = json.loads((dest / "cfg.json").read_text())["weights"]
    return sorted(p.name for p in dest.iterdir() if p.name not in ("cfg.json", ".lock", named))


def test_sigkill_at_random_moments_and_between_files(tmp_path):
    models = {s: TopKSAE(16, 256, 4, seed=s) for s in (1, 2)}
    dest = tmp_path / "sae"
    models[1].save(dest)
    seen = set()
    rng = np.random.default_rng(0)
    # between files: after the weights file (1st byte) or after cfg.json (2nd), of the 1st or 2nd save
    for n_files in (1, 2, 3, 4):
        pid, fd = _child(dest, [models[1], models[2]], pause=0.3)
        assert _read(fd) == b"R"
        for _ in range(n_files):
            assert _read(fd) == b"F"
        _kill(pid, fd)
        seen.add(_which(dest, models))
    # random moments of a tight save loop
    for _ in range(20):
        pid, fd = _child(dest, [models[2], models[1]], pause=0.0)
        assert _read(fd) == b"R"
        time.sleep(float(rng.uniform(0.0, 0.05)))
        _kill(pid, fd)
        seen.add(_which(dest, models))
    assert seen == {1, 2}  # both versions were observed: the kills did land mid-stream
    # the loads above tidied up; a killed writer's temp file is cleared by the next save too
    (dest / ".cfg.json.abc.tmp").write_bytes(b"half")
    models[2].save(dest)
    assert _leftovers(dest) == []


def test_concurrent_writers_never_corrupt(tmp_path):
    dest = tmp_path / "sae"
    seeds = (3, 4, 5)
    models = {s: TopKSAE(16, 256, 4, seed=s) for s in seeds}
    procs = [_child(dest, [models[s]], pause=0.0) for s in seeds]
    try:
        for _, fd in procs:
            assert _read(fd) == b"R"
        seen = set()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # readers during the storm: always a complete model
            if (dest / "cfg.json").exists():
                seen.add(_which(dest, models))
    finally:
        for pid, fd in procs:
            _kill(pid, fd)
    assert seen and seen <= set(seeds)
    assert _which(dest, models) in seeds
    assert _leftovers(dest) == []  # the last load removed what the killed writers left
