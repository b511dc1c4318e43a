"""Input checks shared by the public API: clear errors that name the argument, no needless copies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

_KEEP = (np.dtype(np.float32), np.dtype(np.float64))


def as_matrix(X: Any, name: str = "X", *, min_rows: int = 1, min_cols: int = 1) -> np.ndarray:
    """Return X as a 2-D float32/float64 array, copying only when the dtype must change.

    float32 and float64 arrays (C or Fortran order, strided views, ``np.memmap``) pass through
    untouched; half precision becomes float32, integers and booleans become float64. NaN/inf are
    detected by the Rust kernels while they stream over the rows, so no N×F temporary is made here.
    """
    if sp.issparse(X):
        raise TypeError(f"{name} must be a dense array, got a scipy.sparse matrix (use .toarray())")
    arr = X if isinstance(X, np.ndarray) else np.asarray(X)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got {arr.ndim}-D with shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} row(s), got shape {arr.shape}")
    if arr.shape[1] < min_cols:
        raise ValueError(f"{name} must have at least {min_cols} feature column(s), got shape {arr.shape}")
    if arr.dtype in _KEEP and arr.dtype.isnative:
        return arr
    target = np.float32 if arr.dtype.kind == "f" and arr.dtype.itemsize <= 4 else np.float64
    return arr.astype(target)


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise ValueError if a (small, in-memory) array holds NaN or infinity."""
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")


def check_k(k: Any, upper: int, *, what: str) -> int:
    """k must be an integer with 1 <= k < upper (``what`` says what upper counts)."""
    return check_int(k, "k", low=1, high=upper, high_inclusive=False, what=what)


def check_threads(threads: Any) -> int | None:
    """None (the global pool: one thread per core) or a thread count in ``[1, _core.MAX_THREADS]``.

    The cap (8 per core) keeps a typo such as ``threads=4096`` from spending seconds spawning threads
    or exhausting the process table.
    """
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    from . import _core

    if threads > _core.MAX_THREADS:
        raise ValueError(f"threads must be at most {_core.MAX_THREADS} (8 per core), got {threads}")
    return int(threads)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_int(
    value: Any,
    name: str,
    *,
    low: int | None = 1,
    high: int | None = None,
    high_inclusive: bool = True,
    what: str | None = None,
) -> int:
    """``value`` as a Python int with ``low <= value`` and ``value <= high`` (``< high`` when not inclusive).

    Booleans are rejected (``True`` is an int to Python, never a count to a user). ``what`` says what
    ``high`` counts, for the message (e.g. ``"n_features"``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    bound = f"{what} = {high}" if what is not None else str(high)
    if low is not None and high is not None and not (low <= v and (v <= high if high_inclusive else v < high)):
        raise ValueError(f"{name} must satisfy {low} <= {name} {'<=' if high_inclusive else '<'} {bound}, got {v}")
    if low is not None and v < low:
        need = {1: "a positive integer", 0: "a non-negative integer"}.get(low, f"an integer >= {low}")
        raise ValueError(f"{name} must be {need}, got {v}")
    if high is not None and (v > high if high_inclusive else v >= high):
        raise ValueError(f"{name} must be {'<=' if high_inclusive else '<'} {bound}, got {v}")
    return v


def check_float(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite Python float inside ``[low, high]`` (open ends when ``*_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    lo_ok = low is None or (v > low if low_open else v >= low)
    hi_ok = high is None or (v < high if high_open else v <= high)
    if not (lo_ok and hi_ok):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        left, right = "(" if low_open or low is None else "[", ")" if high_open or high is None else "]"
        where = "the open interval " if left + right == "()" else ""
        raise ValueError(f"{name} must be in {where}{left}{lo}, {hi}{right}, got {value!r}")
    return v


def as_rng(rng: Any, default: int = 42) -> np.random.Generator:
    """A NumPy Generator from a Generator (used as is, so its stream continues), an int seed or None.

    ``None`` gives ``default_rng(default)``: the same call gives the same result unless the user
    asks otherwise.
    """
    if rng is None:
        return np.random.default_rng(default)
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng seed must be a non-negative integer, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


# Seeds reach NumPy's SeedSequence and the Rust kernels as unsigned 64-bit integers.
SEED_MAX = 2**64 - 1


def int_arg(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type=`` for an integer in ``[low, high]``: anything else is a usage error (exit 2)
    whose message argparse prefixes with the option's name."""
    import argparse

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if (low is not None and v < low) or (high is not None and v > high):
            lo = "-inf" if low is None else low
            hi = "inf" if high is None else high
            raise argparse.ArgumentTypeError(f"expected an integer in [{lo}, {hi}], got {v}")
        return v

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse


seed_arg = int_arg(0, SEED_MAX)
"""argparse ``type=`` of ``--seed`` options: an integer in ``[0, 2**64 - 1]``."""
