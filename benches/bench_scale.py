"""Beyond one machine's memory: memmaps larger than the page cache, and the same API on a Dask cluster.

Two ways to run it:

* ``make bench`` / ``pytest benches/bench_scale.py --benchmark-only -s`` — small groups (200k × 384
  memmap) that keep the ratios honest in every benchmark run: our tree-ordered Gram over a memmap vs
  NumPy's BLAS ``X.T @ X`` on the same rows in memory, and our energy pass vs one chunked read pass.
* ``python benches/bench_scale.py --rows 1000000 --dir /tmp/scale`` — the scale table of the README:
  a float32 ``(rows, 384)`` memmap generated block by block, ``SpectralEnergy`` fit + energies
  (time, GB/s, peak anonymous memory), the Gram's rate vs NumPy's GEMM on an in-memory block, the
  energy pass vs one chunked read of the file, streamed SAE encode (``encode_to``) vs in-memory encode,
  and a Dask ``LocalCluster`` with 1 vs 2 worker processes (1 thread each). Each step prints one
  Markdown row as soon as it is measured.

Peak anonymous memory is the largest ``RssAnon`` of this process (``/proc/self/status``, sampled
every 10 ms while a step runs): the memmap's own pages are file-backed and not counted.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from latentatlas import chunked, spectral

F = 384
GB = 1e9


def make_memmap(path: str | os.PathLike[str], rows: int, f: int = F, seed: int = 0, block: int = 65536) -> np.memmap:
    """A float32 (rows, f) memmap of low-rank + noise rows (embedding-like spectrum), written block by block."""
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, f))
    mix = np.random.default_rng(seed).standard_normal((16, f), dtype=np.float32)
    for a in range(0, rows, block):
        rng = np.random.default_rng([seed, a])
        b = min(a + block, rows)
        z = rng.standard_normal((b - a, 16), dtype=np.float32) @ mix
        z += 0.3 * rng.standard_normal((b - a, f), dtype=np.float32)
        mm[a:b] = z
    mm.flush()
    del mm
    return np.load(path, mmap_mode="r")


def read_pass(X: np.ndarray, block: int = 65536) -> float:
    """One chunked read of every value (the floor any streaming pass can reach)."""
    s = 0.0
    for a in range(0, X.shape[0], block):
        s += float(np.add.reduce(X[a : a + block], axis=None, dtype=np.float64))
    return s


class PeakAnon:
    """Largest RssAnon (bytes) seen while the ``with`` body runs."""

    def __enter__(self) -> PeakAnon:
        self.peak, self._stop = self.now(), threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    @staticmethod
    def now() -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.now())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.now())


def _gram(X, **kw) -> np.ndarray:
    return chunked.rows(X).gram(**kw)


def timed(fn, *args, **kw):
    base = PeakAnon.now()
    with PeakAnon() as mem:
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        dt = time.perf_counter() - t0
    return out, dt, max(mem.peak - base, 0)


# -- pytest-benchmark groups (small: run by `make bench`) ---------------------------------------------
BENCH_ROWS = 200_000


@pytest.fixture(scope="module")
def mm(tmp_path_factory):
    return make_memmap(tmp_path_factory.mktemp("scale") / "x.npy", BENCH_ROWS)


def test_scale_gram_memmap(benchmark, mm):
    benchmark.group = "scale: Gram over a 200k x 384 f32 memmap"
    benchmark.extra_info["ours"] = True
    benchmark.pedantic(_gram, args=(mm,), rounds=3, iterations=1)


def test_scale_gram_numpy_in_memory(benchmark, mm):
    benchmark.group = "scale: Gram over a 200k x 384 f32 memmap"
    X = np.array(mm)
    benchmark.pedantic(lambda: X.T @ X, rounds=3, iterations=1)


def test_scale_energy_memmap(benchmark, mm):
    benchmark.group = "scale: energy pass over a 200k x 384 f32 memmap"
    benchmark.extra_info["ours"] = True
    L = spectral.feature_laplacian(mm, 8)
    benchmark.pedantic(spectral.rayleigh_energy, args=(mm, L), rounds=3, iterations=1)


def test_scale_read_pass(benchmark, mm):
    benchmark.group = "scale: energy pass over a 200k x 384 f32 memmap"
    benchmark.pedantic(read_pass, args=(mm,), rounds=3, iterations=1)


# -- the scale table (script) -------------------------------------------------------------------------
def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


def spectral_scale(path: Path, rows: int) -> None:
    t0 = time.perf_counter()
    X = make_memmap(path, rows)
    gen = time.perf_counter() - t0
    size = X.nbytes / GB
    row(f"generate {rows:,} x {F} f32 memmap", f"{gen:.1f}", f"{size / gen:.2f}", "-", f"{size:.2f} GB file")
    _, t_read, m_read = timed(read_pass, X)
    row(
        "one chunked read pass (np.add.reduce per 65,536 rows)",
        f"{t_read:.2f}",
        f"{size / t_read:.2f}",
        f"{m_read / 1e6:.0f}",
        "",
    )
    se = spectral.SpectralEnergy(k=8)
    _, t_fit, m_fit = timed(se.fit, X)
    row(
        "SpectralEnergy.fit (tree-ordered Gram + graph)",
        f"{t_fit:.2f}",
        f"{size / t_fit:.2f}",
        f"{m_fit / 1e6:.0f}",
        "",
    )
    _, t_e, m_e = timed(se.energy)
    row(
        "energies (one streamed pass)",
        f"{t_e:.2f}",
        f"{size / t_e:.2f}",
        f"{m_e / 1e6:.0f}",
        f"{t_e / t_read:.2f}x the read pass",
    )
    blk = np.array(X[: min(rows, 262_144)])
    reps = []
    for _ in range(3):
        t0 = time.perf_counter()
        blk.T @ blk
        reps.append(time.perf_counter() - t0)
    np_rate = blk.shape[0] / min(reps)
    ours = rows / t_fit
    row(
        f"NumPy GEMM X.T @ X on an in-memory block of {blk.shape[0]:,} rows",
        f"{min(reps):.3f}",
        "-",
        "-",
        f"Gram rate ours/NumPy = {ours / np_rate:.2f} ({ours / 1e6:.2f} vs {np_rate / 1e6:.2f} M rows/s)",
    )


def in_memory_energy(path: Path, rows: int = 100_000) -> None:
    X = np.array(make_memmap(path, rows))
    path.unlink()
    L = spectral.feature_laplacian(X, 8)
    t_e = min(timed(spectral.rayleigh_energy, X, L)[1] for _ in range(5))
    t_r = min(timed(np.add.reduce, X, axis=None, dtype=np.float64)[1] for _ in range(5))
    row(
        f"in memory {rows:,} x {F}: energy pass on a fitted L",
        f"{t_e:.4f}",
        f"{X.nbytes / GB / t_e:.2f}",
        "-",
        f"{t_e / t_r:.1f}x one NumPy read pass ({t_r:.4f} s)",
    )


def encode_scale(path: Path, rows: int, n_latents: int, k: int, out: Path) -> None:
    from latentatlas.sae import TopKSAE

    X = make_memmap(path, rows, seed=1)
    sae = TopKSAE(F, n_latents, k, seed=0)
    blk = np.array(X[: min(rows, 32_768)])
    sae.encode(blk[:1024])
    _, t_mem, _ = timed(sae.encode, blk)
    r_mem = blk.shape[0] / t_mem
    _, t_str, m_str = timed(sae.encode_to, X, out, progress=False)
    r_str = rows / t_str
    row(
        f"SAE encode d={F}, {n_latents:,} latents, k={k}: {rows:,} rows streamed to .npy",
        f"{t_str:.1f}",
        f"{X.nbytes / GB / t_str:.3f}",
        f"{m_str / 1e6:.0f}",
        f"{r_str:,.0f} rows/s = {r_str / r_mem:.2f}x in-memory ({r_mem:,.0f} rows/s)",
    )


def _load_rows(path: str, a: int, b: int) -> np.ndarray:
    # a view of the file, read through the page cache as the in-process memmap reader does: a copy
    # here (200 MB per block, fresh pages under a Dask worker's malloc settings) timed the loader, not us
    return np.load(path, mmap_mode="r")[a:b]


def dask_scale(path: Path, rows: int, enc_rows: int, n_latents: int, k: int) -> None:
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from latentatlas.sae import TopKSAE

    X = make_memmap(path, rows, seed=2)
    step = 131_072

    def as_dask(n: int, step: int = step):
        parts = [
            da.from_delayed(
                dask.delayed(_load_rows)(str(path), a, min(a + step, n)), (min(a + step, n) - a, F), np.float32
            )
            for a in range(0, n, step)
        ]
        return da.concatenate(parts)

    sae = TopKSAE(F, n_latents, k, seed=0)
    t_mem_gram = timed(_gram, X, threads=1)[1]
    t_mem_enc = timed(sae.encode, np.array(X[:enc_rows]), threads=1)[1]
    res = {}
    for workers in (1, 2):
        env = {"RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, env=env
            ) as cluster,
            Client(cluster),
        ):
            _gram(as_dask(step))  # warm the workers
            t_g = timed(_gram, as_dask(rows))[1]
            # eight blocks: two workers need more than one block to share (one block = one task)
            v, i = sae.encode(as_dask(enc_rows, max(1, -(-enc_rows // 8))))
            t_e = timed(dask.compute, v.sum(), i.sum())[1]
            res[workers] = (t_g, t_e)
    (g1, e1), (g2, e2) = res[1], res[2]
    row(
        f"Dask Gram {rows:,} rows: in memory 1 thread / 1 worker / 2 workers",
        f"{t_mem_gram:.1f} / {g1:.1f} / {g2:.1f}",
        "-",
        "-",
        f"scaling {g1 / g2:.2f}x, overhead vs in-memory {100 * (g1 / t_mem_gram - 1):+.0f} %",
    )
    row(
        f"Dask encode {enc_rows:,} rows ({n_latents:,} latents): in memory / 1 / 2 workers",
        f"{t_mem_enc:.1f} / {e1:.1f} / {e2:.1f}",
        "-",
        "-",
        f"scaling {e1 / e2:.2f}x, overhead vs in-memory {100 * (e1 / t_mem_enc - 1):+.0f} %",
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dir", required=True, type=Path, help="folder for the generated memmaps (deleted after each step)")
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000], help="memmap sizes for fit + energies")
    p.add_argument("--encode-rows", type=int, nargs="*", default=[100_000], help="rows streamed through SAE encode")
    p.add_argument("--latents", type=int, default=16_384)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--dask-rows", type=int, default=0, help="rows of the Dask Gram (0: skip the Dask rows)")
    p.add_argument("--dask-encode-rows", type=int, default=50_000)
    p.add_argument("--dask-latents", type=int, default=4096)
    a = p.parse_args(argv)
    a.dir.mkdir(parents=True, exist_ok=True)
    print(f"# bench_scale — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores\n")
    row("step", "time (s)", "GB/s", "peak anon MB", "note")
    row("---", "---:", "---:", "---:", "---")
    in_memory_energy(a.dir / "inmem.npy")
    for n in a.rows:
        path = a.dir / f"x{n}.npy"
        try:
            spectral_scale(path, n)
        finally:
            path.unlink(missing_ok=True)
    for n in a.encode_rows:
        path, out = a.dir / f"e{n}.npy", a.dir / f"codes{n}"
        try:
            encode_scale(path, n, a.latents, a.k, out)
        finally:
            path.unlink(missing_ok=True)
            for f in ("values.npy", "indices.npy"):
                (out / f).unlink(missing_ok=True)
    if a.dask_rows:
        path = a.dir / "d.npy"
        try:
            dask_scale(path, a.dask_rows, a.dask_encode_rows, a.dask_latents, a.k)
        finally:
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
