"""Row-chunked computation beyond one machine's memory: NumPy arrays, memmaps, chunk iterables, Dask arrays.

A public call decides what its X is once, at the door: :func:`rows` turns X into a :class:`Rows`
(its kind — in-memory array, memmap, chunk iterable or Dask array — fixed there), and everything
below uses that object; nothing asks again. Every kernel of latentatlas is one of three patterns over
the rows, each a method of :class:`Rows`:

* :meth:`Rows.map` — a row-wise function over row blocks (energies, taumode λ, SAE encode/decode);
* :meth:`Rows.tree_sum` — a sum over rows in a fixed binary tree whose leaves are the ``LEAF_ROWS``-row
  spans at fixed positions ``[0, 2048), [2048, 4096), …`` (the Gram XᵀX, column sums, SAE health).
  The order of every floating-point addition is a function of the row order only, so any chunking
  of the same rows and any number of workers give the same bits;
* :meth:`Rows.topk` / :func:`merge_topk` — per-block top-k merged under the library's tie rule
  (value descending, index ascending) (dense search, latent search, kNN). That order is total,
  so the merge is exact whatever the blocks.

One implementation serves four kinds of input: a NumPy array (the kernels see it whole), an
``np.memmap`` (read leaf by leaf; a file truncated under the reader is an error, not a SIGBUS),
an iterable of ``(rows, F)`` chunks (a list, or a one-shot iterator/generator) and a
``dask.array.Array`` (Dask tasks: a row-wise result comes back lazy with the input's row chunks,
a reduction comes back computed). dask is imported only when the input is a Dask array.

Errors name the absolute row: NaN in one chunk, a chunk of another dtype or width, a Dask array
chunked along the feature axis (rechunked to whole rows: the result is exact). Computations on a
``distributed`` client wait at most ``LATENTATLAS_DASK_TIMEOUT`` seconds (default 3600) and then
raise TimeoutError instead of hanging; a worker that dies is retried by Dask.
"""

from __future__ import annotations

import functools
import itertools
import mmap
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

try:  # numpy >= 2.0
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # numpy 1.x
    from numpy import byte_bounds  # type: ignore[attr-defined,no-redef]

from . import kernels
from ._optional import import_optional, is_dask_array
from ._validate import as_matrix

__all__ = ["LEAF_ROWS", "MAP_ROWS", "Chunks", "Rows", "aligned", "compute", "merge_topk", "row_error", "rows"]

#: Rows per leaf of the reduction tree (the Rust Gram's own chunk: one leaf is one kernel call).
LEAF_ROWS = int(kernels.GRAM_CHUNK_ROWS)
#: Rows per block when a memmap is mapped row-wise (a few MB per block; bounded anonymous memory).
MAP_ROWS = 16 * LEAF_ROWS

_ROW = re.compile(r"\(first at row (\d+)\)")


# -- what the input is ------------------------------------------------------------------------------
def is_chunks(x: Any) -> bool:
    """True for :class:`Chunks`, an iterator of chunks, or a list/tuple of 2-D arrays (not a nested list of numbers)."""
    if isinstance(x, (Chunks, Iterator)):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(getattr(c, "ndim", 0) == 2 for c in x)


class Chunks:
    """Row chunks ``(rows, F)`` from a list (read as often as needed) or a one-shot iterator.

    The first chunk fixes the width and dtype (``shape`` is ``(-1, F)``: the row count is known
    only after a pass). A second pass over a consumed iterator is a ValueError, not an empty result.
    """

    def __init__(self, source: Iterable[Any], name: str = "X") -> None:
        self.name = name
        self._list: list[Any] | None = None
        self._iter: Iterator[Any] | None = None
        first: Any
        if isinstance(source, Chunks):
            self._list, self._iter = source._list, source._iter
            first = source._first
        elif isinstance(source, Iterator):
            first = next(source, None)
            self._iter = source if first is None else itertools.chain([first], source)
        else:
            self._list = list(source)
            first = self._list[0] if self._list else None
        if first is None:
            raise ValueError(f"{name}: the iterable of chunks is empty")
        arr = np.asarray(first) if not isinstance(first, np.ndarray) else first
        if arr.ndim != 2:
            raise ValueError(f"{name}: chunks must be 2-D (rows, n_features), got shape {arr.shape}")
        self._first: Any = first
        self.shape = (-1, int(arr.shape[1]))
        self.dtype = arr.dtype
        self.ndim = 2

    @property
    def reiterable(self) -> bool:
        return self._list is not None

    def __iter__(self) -> Iterator[Any]:
        if self._list is not None:
            return iter(self._list)
        if self._iter is None:
            raise ValueError(
                f"{self.name}: this one-shot iterator of chunks was already read; pass a list of chunks, "
                "a memmap or a Dask array to read the rows more than once"
            )
        it, self._iter = self._iter, None
        return it


def _dask_rows(X: Any, name: str) -> Any:
    """A 2-D Dask array with whole rows in every chunk (rechunked along the features if needed)."""
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got {X.ndim}-D with shape {X.shape}")
    if X.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be a real numeric array, got dtype {X.dtype}")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(f"{name}: the Dask array's row chunk sizes are unknown; call {name}.compute_chunk_sizes()")
    if len(X.chunks[1]) > 1:
        # chunks along the feature axis: every kernel needs whole rows. Rechunk (exact result).
        X = X.rechunk({1: -1})
    return X


class Rows:
    """The rows of X (N × F) with its kind decided once: "array", "memmap", "chunks" or "dask".

    Made by :func:`rows` at a public call's door; the call then uses only this object, so no layer
    below asks again what X is. ``data`` is the checked input (a float matrix, a memmap, a
    :class:`Chunks` or a Dask array with whole rows per chunk).
    """

    __slots__ = ("data", "kind", "name")

    def __init__(self, data: Any, kind: str, name: str) -> None:
        self.data, self.kind, self.name = data, kind, name

    def __repr__(self) -> str:
        return f"Rows({self.kind}, name={self.name!r}, shape={self.shape}, dtype={self.dtype})"

    # -- what the kernels need to know ---------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(N, F)``; N is -1 for chunks (known only after a pass)."""
        return (int(self.data.shape[0]), int(self.data.shape[1]))

    @property
    def n_cols(self) -> int:
        return int(self.data.shape[1])

    @property
    def dtype(self) -> np.dtype:
        """The dtype the kernels see for the rows (as :func:`as_matrix` converts them)."""
        return _row_dtype(self.data.dtype)

    @property
    def in_memory(self) -> bool:
        """An ordinary array: kernels take it whole."""
        return self.kind == "array"

    @property
    def whole(self) -> bool:
        """An array or a memmap: a Rust kernel takes it whole and streams over it itself."""
        return self.kind in ("array", "memmap")

    @property
    def lazy(self) -> bool:
        """A Dask array: row-wise results come back lazy."""
        return self.kind == "dask"

    @property
    def rows_known(self) -> bool:
        """False for chunks, whose row count is known only after a pass."""
        return self.kind != "chunks"

    @property
    def reiterable(self) -> bool:
        """The rows can be read more than once (all but a one-shot iterator of chunks)."""
        return self.kind != "chunks" or self.data.reiterable

    def replayable(self) -> Rows:
        """Rows that can be read twice: a one-shot iterator of chunks is read into a list once."""
        if self.reiterable:
            return self
        return Rows(Chunks(list(self.data), self.name), "chunks", self.name)

    # -- the three patterns --------------------------------------------------------------------------
    def blocks(self, rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, block)`` in row order: arrays and memmaps cut into ``rows``-row views (default
        ``MAP_ROWS``; a memmap's file is checked against truncation before each read), chunks and Dask
        blocks as they are (a Dask array computed one block at a time), each checked against the first
        one's width and dtype."""
        return _blocks(self, rows)

    def map(self, fn: Callable[[np.ndarray, int], Any], outs: list[tuple[tuple[int, ...], Any]]) -> Any:
        """Apply a row-wise ``fn(block, start) -> array | tuple of arrays`` over the rows.

        ``outs`` gives each output's trailing shape and dtype, e.g. ``[((), float64)]`` for one value
        per row or ``[((k,), float32), ((k,), int64)]``. An array goes to ``fn`` whole (the kernels
        stream over it themselves); a memmap and chunks go block by block (outputs concatenated in
        memory: for outputs larger than memory see ``TopKSAE.encode_to``); a Dask array gives lazy
        Dask arrays whose row chunks are X's. Returns one array or a tuple, as ``fn`` does.
        """
        return _map(self, fn, outs)

    def tree_sum(self, leaf_fn: Callable[[np.ndarray, int], Any]) -> Any:
        """Σ over leaves of ``leaf_fn(rows, start)`` (an array or a tuple of arrays), in the fixed tree order.

        The leaves are the rows ``[i·LEAF_ROWS, (i+1)·LEAF_ROWS)``; ``leaf_fn`` sees one leaf at a
        time (so a memmap or a stream is read once, with one leaf's worth of anonymous memory). A Dask
        array is rechunked so its blocks start on leaf boundaries; each block sums its leaves, partial
        trees merge in a Dask tree, and the result is computed.
        """
        return _tree_sum(self, leaf_fn)

    def topk(
        self, block_fn: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], k: int, *, descending: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k over the rows (a corpus): ``block_fn(block, start)`` gives ``(values, local indices)`` of
        its ``min(k, rows)`` best per query; the blocks' lists merge into the global ``(M, k)``, in memory."""
        return _topk(self, block_fn, k, descending)

    def gram(self, *, threads: int | None = None) -> np.ndarray:
        """XᵀX (F×F, float64) as a :meth:`tree_sum` of the Rust Gram of each leaf (same bits for any chunking)."""
        return _tree_sum(self, functools.partial(_gram_leaf, threads))

    def column_sums(self) -> np.ndarray:
        """Σ over rows (F,), float64, in the fixed tree order."""
        return _tree_sum(self, _colsum_leaf)

    def knn_sqdist(self, k: int, *, threads: int | None = None) -> tuple[Any, Any]:
        """Exact kNN by squared L2 (self excluded): ``(d2 (N, k) float64, idx (N, k) int64)``.

        In memory it is the Rust kernel; a Dask array gives lazy arrays with X's row chunks: each
        (query block, corpus block) pair is one task giving k+1 GEMM candidates with their float64
        distances, a query block's candidates merge under the kernel's own order and the final step
        drops the row itself, so the graph is the in-memory one, bit for bit.
        """
        if self.kind == "dask":
            return _dask_knn_sqdist(self, k, threads)
        if self.kind == "chunks":
            raise TypeError(f"{self.name}: the exact kNN graph needs an array, memmap or Dask array, not chunks")
        return kernels.knn_sqdist(np.ascontiguousarray(self.data, dtype=np.float32), k=k, threads=threads)


def kind_of(X: Any) -> str:
    """What X is: "dask", "chunks", "memmap" or "array" (anything else NumPy can read).

    The one place the kind is asked; :func:`rows` calls it once per public call.
    """
    if is_dask_array(X):
        return "dask"
    if is_chunks(X):
        return "chunks"
    return "memmap" if isinstance(X, np.memmap) else "array"


def rows(X: Any, name: str = "X", *, min_cols: int = 1, min_rows: int = 1) -> Rows:
    """X checked once, at a public call's door, as :class:`Rows` (a :class:`Rows` passes through).

    An array or memmap becomes :func:`as_matrix`'s float matrix (no copy for float32/float64), a
    list or iterator of chunks a :class:`Chunks`, a Dask array one with whole rows per chunk.
    ``min_rows`` applies to arrays and memmaps (the row count of chunks is known only after a pass).
    """
    if isinstance(X, Rows):
        return X
    kind = kind_of(X)
    if kind == "dask":
        X = _dask_rows(X, name)
    elif kind == "chunks":
        X = X if isinstance(X, Chunks) else Chunks(X, name)
        if X.dtype.kind not in "fiub":
            raise TypeError(f"{name} must be a real numeric array, got dtype {X.dtype}")
    else:
        X = as_matrix(X, name, min_cols=min_cols, min_rows=min_rows)
        kind = "memmap" if isinstance(X, np.memmap) else "array"
    if X.shape[1] < min_cols:
        raise ValueError(f"{name} must have at least {min_cols} feature column(s), got {X.shape[1]}")
    return Rows(X, kind, name)


def _row_dtype(dtype: Any) -> np.dtype:
    """The dtype the kernels see for rows of ``dtype`` (as :func:`as_matrix` converts them)."""
    dt = np.dtype(dtype)
    if dt.kind == "f" and dt.itemsize in (4, 8):
        return dt
    return np.dtype(np.float32 if dt.kind == "f" and dt.itemsize <= 4 else np.float64)


def row_error(exc: ValueError, start: int) -> ValueError:
    """A kernel's 'first at row r' of a block, re-said as the absolute row ``start + r``."""
    msg = _ROW.sub(lambda m: f"(first at row {start + int(m.group(1))})", str(exc))
    return ValueError(msg)


def _checked(block: Any, start: int, name: str, cols: int, dtype: np.dtype | None) -> np.ndarray:
    """One chunk as a float matrix of the expected width and dtype (errors name the chunk's first row)."""
    arr = block if isinstance(block, np.ndarray) else np.asarray(block)
    if arr.ndim != 2 or arr.shape[1] != cols:
        raise ValueError(f"{name}: the chunk starting at row {start} has shape {arr.shape}, expected (rows, {cols})")
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(
            f"{name}: the chunk starting at row {start} has dtype {arr.dtype}, but {name} has dtype {dtype}; "
            "give every chunk one dtype"
        )
    if not arr.flags.aligned:
        arr = arr.copy()
    return as_matrix(arr, name, min_rows=0)


def aligned(x: Any) -> Any:
    """Arrays bound to a task function, realigned: a worker may unpickle them into misaligned buffers."""
    if isinstance(x, functools.partial):
        return functools.partial(aligned(x.func), *map(aligned, x.args), **x.keywords)
    if isinstance(x, tuple):
        return tuple(map(aligned, x))
    if isinstance(x, np.ndarray) and not x.flags.aligned:
        return x.copy()
    return x


def _call(fn: Callable[[np.ndarray, int], Any], block: np.ndarray, start: int) -> Any:
    try:
        return fn(block, start)
    except ValueError as exc:
        if _ROW.search(str(exc)):
            raise row_error(exc, start) from None
        raise


class _Truncation:
    """Guards the reads of a memmap: its file must still hold every byte X spans (else a read is a SIGBUS)."""

    def __init__(self, X: Any, name: str) -> None:
        self.path, self.need, self.name = None, 0, name
        mm = getattr(X, "_mmap", None) if isinstance(X, np.memmap) else None
        if mm is None or not getattr(X, "filename", None) or X.size == 0:
            return
        self.path = X.filename
        # numpy maps from the offset rounded down to the allocation granularity
        base = int(X.offset) - int(X.offset) % mmap.ALLOCATIONGRANULARITY
        addr = np.frombuffer(mm, dtype=np.uint8).__array_interface__["data"][0]
        high = byte_bounds(X)[1]
        self.need = base + (high - addr)
        self.check(0, X.shape[0])

    def check(self, start: int, stop: int) -> None:
        if self.path is None:
            return
        try:
            now = os.path.getsize(self.path)
        except OSError as exc:
            raise FileNotFoundError(f"{self.name}: the memmap's file {self.path} disappeared while reading") from exc
        if now < self.need:
            raise OSError(
                f"{self.name}: the memmap's file {self.path} was truncated to {now} bytes but the array needs "
                f"{self.need} (before reading rows {start}..{stop})"
            )


# -- blocks -------------------------------------------------------------------------------------------
def _blocks(R: Rows, rows: int | None) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, block)`` over R's rows in row order (see :meth:`Rows.blocks`)."""
    X, name = R.data, R.name
    if R.kind == "dask":
        start = 0
        for blk in X.to_delayed().ravel():
            arr = _checked(compute(blk)[0], start, name, R.n_cols, R.dtype)
            yield start, arr
            start += arr.shape[0]
        return
    if R.kind == "chunks":
        start, cols, dtype = 0, None, None
        for block in X:
            arr = np.asarray(block) if not isinstance(block, np.ndarray) else block
            if cols is None:
                if arr.ndim != 2:
                    raise ValueError(f"{name}: chunks must be 2-D (rows, n_features), got shape {arr.shape}")
                cols, dtype = arr.shape[1], arr.dtype
            arr = _checked(arr, start, name, cols, dtype)
            yield start, arr
            start += arr.shape[0]
        if cols is None:
            raise ValueError(f"{name}: the iterable of chunks is empty")
        return
    guard = _Truncation(X, name)
    step = rows or MAP_ROWS
    for s in range(0, X.shape[0], step):
        guard.check(s, min(s + step, X.shape[0]))
        yield s, X[s : s + step]


# -- pattern 1: map over row blocks -------------------------------------------------------------------
def _map(R: Rows, fn: Callable[[np.ndarray, int], Any], outs: list[tuple[tuple[int, ...], Any]]) -> Any:
    single = len(outs) == 1
    if R.kind == "dask":
        da = import_optional("dask.array", feature="Dask input")
        X = R.data
        tasks = _per_block(R, functools.partial(_block_call, single=single), fn, nout=len(outs))
        res = tuple(
            da.concatenate(
                [da.from_delayed(t[o], shape=(n, *shape), dtype=dt) for t, n in zip(tasks, X.chunks[0])], axis=0
            )
            for o, (shape, dt) in enumerate(outs)
        )
        return res[0] if single else res
    if R.kind == "array":
        return _call(fn, R.data, 0)
    parts: list[tuple[np.ndarray, ...]] = []
    for start, block in _blocks(R, None):
        got = _call(fn, block, start)
        parts.append((got,) if single else tuple(got))
    if not parts:
        empty = tuple(np.zeros((0, *shape), dtype=dt) for shape, dt in outs)
        return empty[0] if single else empty
    res = tuple(np.concatenate([p[o] for p in parts], axis=0) for o in range(len(outs)))
    return res[0] if single else res


def _per_block(R: Rows, task: Callable[..., Any], fn: Callable[..., Any], nout: int | None = None) -> list[Any]:
    """One Dask task ``task(fn, block, start, name, cols, dtype)`` per row block of R (whole rows)."""
    dask = import_optional("dask", feature="Dask input")
    # One key for the function and its bound weights (an SAE's matrices: tens of MB): it reaches each
    # worker once (from the scheduler, then worker to worker), never once per task. Not client.scatter:
    # scattered data dies with the worker that holds it, and a killed worker must only cost a retry.
    f = dask.delayed(fn, pure=True)
    X, name, cols, dtype = R.data, R.name, R.n_cols, R.dtype
    out, start = [], 0
    for blk, rows in zip(X.to_delayed().ravel(), X.chunks[0]):
        out.append(dask.delayed(task, pure=True, nout=nout)(f, blk, start, name, cols, dtype))
        start += rows
    return out


def _merged(parts: list[Any], merge: Callable[..., Any]) -> Any:
    """The Dask task that merges ``parts`` through a tree of ``merge`` calls, 4 inputs each."""
    dask = import_optional("dask", feature="Dask input")
    while len(parts) > 1:
        parts = [dask.delayed(merge, pure=True)(*parts[i : i + 4]) for i in range(0, len(parts), 4)]
    return parts[0]


def _block_call(fn: Callable[..., Any], block: Any, start: int, name: str, cols: int, dtype: Any, single: bool) -> Any:
    got = _call(aligned(fn), _checked(block, start, name, cols, dtype), start)
    return (got,) if single else tuple(got)


# -- pattern 2: fixed-order tree reduction ------------------------------------------------------------
def _add(a: Any, b: Any) -> Any:
    # never in place: under Dask a partial may be an input that a retried task reads again
    if isinstance(a, tuple):
        return tuple(x + y for x, y in zip(a, b))
    return a + b


class _Tree:
    """Partial sums of a binary tree over leaf indices; node ``(level, j)`` covers leaves ``[j·2^l, (j+1)·2^l)``.

    A node is pushed only once complete and siblings always add as ``left + right``, so the value
    of every node, and of the root, depends on the leaf values and their count only: never on
    which block computed which leaf or in which order the partials meet.
    """

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], Any] = {}

    def push(self, level: int, j: int, value: Any) -> None:
        while (level, j ^ 1) in self.nodes:
            other = self.nodes.pop((level, j ^ 1))
            value = _add(value, other) if j % 2 == 0 else _add(other, value)
            level, j = level + 1, j // 2
        self.nodes[(level, j)] = value

    def merge(self, other: _Tree) -> _Tree:
        out = _Tree()
        out.nodes = dict(self.nodes)
        for (level, j), value in other.nodes.items():
            out.push(level, j, value)
        return out

    def result(self, n_leaves: int) -> Any:
        if not self.nodes:
            raise ValueError("no rows to reduce")
        # only the right spine is left: a node without a right sibling (past the end) moves up as is
        while True:
            (level, j) = min(self.nodes)
            if len(self.nodes) == 1 and j == 0 and (1 << level) >= n_leaves:
                return self.nodes[(level, j)]
            value = self.nodes.pop((level, j))
            if j % 2 == 1 or ((j + 1) << level) < n_leaves:
                raise RuntimeError(f"reduction tree: node ({level}, {j}) is missing its sibling")  # a bug, not input
            self.push(level + 1, j // 2, value)


def _block_tree(leaf_fn: Callable[[np.ndarray, int], Any], block: np.ndarray, start: int) -> _Tree:
    """The partial tree of one block whose first row is a leaf boundary."""
    tree = _Tree()
    for s in range(0, block.shape[0], LEAF_ROWS):
        tree.push(0, (start + s) // LEAF_ROWS, _call(leaf_fn, block[s : s + LEAF_ROWS], start + s))
    return tree


def _dask_block_tree(leaf_fn: Callable[..., Any], block: Any, start: int, name: str, cols: int, dtype: Any) -> _Tree:
    return _block_tree(aligned(leaf_fn), _checked(block, start, name, cols, dtype), start)


def _merge_trees(*trees: _Tree) -> _Tree:
    out = trees[0]
    for t in trees[1:]:
        out = out.merge(t)
    return out


def _aligned(chunks: tuple[int, ...]) -> tuple[int, ...]:
    """Row chunk sizes whose boundaries are multiples of LEAF_ROWS (each boundary moved to the nearest one)."""
    n = int(sum(chunks))
    cuts = {int(round(b / LEAF_ROWS)) * LEAF_ROWS for b in np.cumsum(chunks)[:-1]}
    bounds = [0, *sorted(c for c in cuts if 0 < c < n), n]
    return tuple(b - a for a, b in zip(bounds[:-1], bounds[1:])) if n else chunks


def _tree_sum(R: Rows, leaf_fn: Callable[[np.ndarray, int], Any]) -> Any:
    name = R.name
    if R.kind == "dask":
        X = R.data
        chunks = _aligned(X.chunks[0])
        if chunks != X.chunks[0]:
            X = X.rechunk({0: chunks})
        if X.shape[0] == 0:
            raise ValueError(f"{name} has no rows")
        root = _merged(_per_block(Rows(X, "dask", name), _dask_block_tree, leaf_fn), _merge_trees)
        return compute(root)[0].result(-(-int(X.shape[0]) // LEAF_ROWS))
    tree, carry, n = _Tree(), None, 0
    for start, block in _blocks(R, LEAF_ROWS * 16):
        if carry is not None:  # a stream's chunks need not end on leaf boundaries: carry the remainder
            block = np.concatenate([carry, block])
            start -= carry.shape[0]
        whole = block.shape[0] - block.shape[0] % LEAF_ROWS
        if whole:
            for s in range(0, whole, LEAF_ROWS):
                tree.push(0, (start + s) // LEAF_ROWS, _call(leaf_fn, block[s : s + LEAF_ROWS], start + s))
        carry = block[whole:] if whole < block.shape[0] else None
        if carry is not None and R.kind != "chunks":
            carry = np.array(carry)  # a memmap view must not outlive its guard
        n = start + block.shape[0]
    if carry is not None:
        tree.push(0, (n - carry.shape[0]) // LEAF_ROWS, _call(leaf_fn, carry, n - carry.shape[0]))
    if n == 0:
        raise ValueError(f"{name} has no rows")
    return tree.result(-(-n // LEAF_ROWS))


def _gram_leaf(threads: int | None, rows: np.ndarray, start: int) -> np.ndarray:
    return kernels.gram(rows, chunk_rows=LEAF_ROWS, threads=threads)


def _colsum_leaf(rows: np.ndarray, start: int) -> np.ndarray:
    return rows.sum(axis=0, dtype=np.float64)


# -- pattern 3: per-block top-k, merged ---------------------------------------------------------------
def merge_topk(parts: list[tuple[np.ndarray, np.ndarray]], k: int, *, descending: bool = True) -> tuple[Any, Any]:
    """The best ``k`` of several ``(values (M, kᵢ), global indices (M, kᵢ))`` under (value desc, index asc).

    With ``descending=False`` the smallest values win (distances). The order is total (indices are
    unique), so any grouping of the merges gives the same result.
    """
    v = np.concatenate([p[0] for p in parts], axis=1)
    i = np.concatenate([p[1] for p in parts], axis=1)
    order = np.lexsort((i, -v if descending else v), axis=1)[:, :k]
    return np.take_along_axis(v, order, axis=1), np.take_along_axis(i, order, axis=1)


def _offset_topk(fn: Callable[[np.ndarray, int], Any], block: np.ndarray, start: int) -> tuple[Any, Any]:
    v, i = _call(fn, block, start)
    return v, i + start


def _dask_offset_topk(
    fn: Callable[..., Any], block: Any, start: int, name: str, cols: int, dtype: Any
) -> tuple[Any, Any]:
    return _offset_topk(aligned(fn), _checked(block, start, name, cols, dtype), start)


def _topk(
    R: Rows, block_fn: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], k: int, descending: bool
) -> tuple[np.ndarray, np.ndarray]:
    if R.kind == "dask":
        merge = functools.partial(_merge_parts, k=k, descending=descending)
        return compute(_merged(_per_block(R, _dask_offset_topk, block_fn), merge))[0]
    best: tuple[np.ndarray, np.ndarray] | None = None
    for start, block in _blocks(R, None):
        got = _offset_topk(block_fn, block, start)
        best = got if best is None else merge_topk([best, got], k, descending=descending)
    if best is None:
        raise ValueError(f"{R.name} has no rows")
    return best


def _merge_parts(*parts: tuple[np.ndarray, np.ndarray], k: int, descending: bool) -> tuple[Any, Any]:
    return merge_topk(list(parts), k, descending=descending)


# -- exact kNN over a Dask array (the graph of diffusion maps) ---------------------------------------
def _seq_sqsum(d: np.ndarray) -> np.ndarray:
    """Σ_c d[:, c]² in float64 in column order: the Rust kernel's own summation order, hence its bits."""
    out = np.zeros(d.shape[:-1])
    for c in range(d.shape[-1]):
        out += d[..., c] * d[..., c]
    return out


def _knn_block(q: np.ndarray, c: np.ndarray, c_start: int, k: int, threads: int | None) -> tuple[Any, ...]:
    """(scores, global indices, d2) of q's best k+1 candidates in corpus block c (self not yet excluded)."""
    q, c = (np.require(a, np.float32, ["C", "A"]) for a in (q, c))
    bias = (-0.5 * _seq_sqsum(c.astype(np.float64))).astype(np.float32)
    if not np.isfinite(bias).all():
        raise ValueError(f"X: row {c_start + int(np.argmin(np.isfinite(bias)))}: the squared norm overflows float32")
    s, j = kernels.gemm_topk(q, c, min(k + 1, c.shape[0]), bias=bias, threads=threads)
    d2 = _seq_sqsum(q.astype(np.float64)[:, None, :] - c.astype(np.float64)[j])
    return s, j + c_start, d2


def _knn_merge(*parts: tuple[Any, ...], k: int) -> tuple[Any, ...]:
    s = np.concatenate([p[0] for p in parts], axis=1)
    j = np.concatenate([p[1] for p in parts], axis=1)
    d2 = np.concatenate([p[2] for p in parts], axis=1)
    order = np.lexsort((j, -s), axis=1)[:, : k + 1]  # the GEMM's candidates: score desc, index asc
    return tuple(np.take_along_axis(a, order, axis=1) for a in (s, j, d2))


def _knn_finish(q_start: int, k: int, part: tuple[Any, ...]) -> tuple[np.ndarray, np.ndarray]:
    _, j, d2 = part
    self_ = j == (q_start + np.arange(j.shape[0]))[:, None]
    # drop each row's own index if among the candidates, else its last candidate: the top k of the others
    drop = np.where(self_.any(axis=1), self_.argmax(axis=1), j.shape[1] - 1)
    keep = np.ones(j.shape, bool)
    keep[np.arange(j.shape[0]), drop] = False
    j, d2 = j[keep].reshape(-1, k), d2[keep].reshape(-1, k)
    order = np.lexsort((j, d2), axis=1)  # ascending distance, ties to the lower index
    return np.take_along_axis(d2, order, axis=1), np.take_along_axis(j, order, axis=1)


def _dask_knn_sqdist(R: Rows, k: int, threads: int | None) -> tuple[Any, Any]:
    X = R.data
    n = int(X.shape[0])
    if not (1 <= k < n):
        raise ValueError(f"k must satisfy 1 <= k < n_rows = {n}, got {k}")
    da, dask = import_optional("dask.array", feature="Dask input"), import_optional("dask", feature="Dask input")
    blocks = list(X.to_delayed().ravel())
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(int)
    d2s, idxs = [], []
    for qb, q0, rows in zip(blocks, starts, X.chunks[0]):
        parts = [dask.delayed(_knn_block, pure=True)(qb, cb, int(c0), k, threads) for cb, c0 in zip(blocks, starts)]
        best = _merged(parts, functools.partial(_knn_merge, k=k))
        fin = dask.delayed(_knn_finish, pure=True, nout=2)(int(q0), k, best)
        d2s.append(da.from_delayed(fin[0], shape=(rows, k), dtype=np.float64))
        idxs.append(da.from_delayed(fin[1], shape=(rows, k), dtype=np.int64))
    return da.concatenate(d2s, axis=0), da.concatenate(idxs, axis=0)


# -- running Dask graphs ------------------------------------------------------------------------------
def _client() -> Any:
    """The current ``distributed`` client, or None (no distributed loaded, or the local scheduler)."""
    if "distributed" not in sys.modules:
        return None
    try:
        return sys.modules["distributed"].get_client()
    except ValueError:  # no client: the local scheduler
        return None


def compute(*objs: Any) -> tuple[Any, ...]:
    """Compute Dask collections; on a ``distributed`` client wait at most ``LATENTATLAS_DASK_TIMEOUT`` s.

    A worker that dies is Dask's to retry (``distributed.scheduler.allowed-failures``); a task that
    keeps killing workers raises ``KilledWorker``; a cluster that stops answering raises TimeoutError
    rather than hanging the client.
    """
    dask = import_optional("dask", feature="Dask input")
    client = _client()
    if client is None:
        return tuple(dask.compute(*objs))
    timeout = float(os.environ.get("LATENTATLAS_DASK_TIMEOUT", "3600"))
    with warnings.catch_warnings():
        # a row function's bound weights are one key of the graph, sent once per call by design
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
        futures = client.compute(list(objs))
    try:
        sys.modules["distributed"].wait(futures, timeout=timeout)
    except TimeoutError as exc:
        client.cancel(futures)
        raise TimeoutError(
            f"the Dask computation did not finish within {timeout:g} s (LATENTATLAS_DASK_TIMEOUT); "
            "are the cluster's workers alive?"
        ) from exc
    return tuple(client.gather(futures))
