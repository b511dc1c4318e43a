"""Plain metric functions (NumPy in, floats out), each checked in tests against an independent
implementation.

Sections: minima-set metrics (purity, Jaccard, Pearson) and retrieval metrics (MRR@k, P@k, R@k).
"""

from __future__ import annotations

# --- minima-set metrics (local-minima area) ---------------------------------------------------
# The seed notebook's quantities: candidate minima are the items whose score lies in the bottom
# quantile; a set is judged by its purity (ground-truth labels), its overlap with another set
# (Jaccard) and its mean normalised energy ("mean λ").
from typing import Any as _Any

import numpy as np

from ._validate import check_float, check_int


def _as_mask(mask: _Any, name: str = "mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 1:
        raise ValueError(f"{name} must be a 1-D boolean array, got shape {m.shape}")
    if m.dtype != np.bool_:
        raise TypeError(f"{name} must be a boolean array, got dtype {m.dtype}")
    return m


def quantile_mask(score: _Any, quantile: float = 0.10) -> np.ndarray:
    """Candidate minima ``score <= np.quantile(score, quantile)`` (n,) bool, as the notebook selects them."""
    s = np.asarray(score, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"score must be a non-empty 1-D array, got shape {s.shape}")
    quantile = check_float(quantile, "quantile", low=0.0, high=1.0, low_open=True, high_open=True)
    if not np.isfinite(s).all():
        raise ValueError("score contains NaN or infinity")
    return s <= np.quantile(s, quantile)


def purity(mask: _Any, labels: _Any) -> float:
    """Fraction of the selected items that carry the most common true label among them.

    ``mask`` (n,) bool selects items; ``labels`` (n,) any hashable labels (ints or strings).
    """
    m = _as_mask(mask)
    lab = np.asarray(labels)
    if lab.shape != m.shape:
        raise ValueError(f"labels must have shape {m.shape} to match mask, got {lab.shape}")
    if not m.any():
        raise ValueError("mask selects no items; purity is undefined")
    _, counts = np.unique(lab[m], return_counts=True)
    return float(counts.max() / m.sum())


def jaccard(a: _Any, b: _Any) -> float:
    """``|a ∧ b| / (|a ∨ b| + 1e-9)`` of two boolean masks (n,), the notebook's overlap."""
    a, b = _as_mask(a, "a"), _as_mask(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return float(np.logical_and(a, b).sum() / (np.logical_or(a, b).sum() + 1e-9))


def jaccard_matrix(masks: _Any) -> np.ndarray:
    """Pairwise :func:`jaccard` of a sequence of m masks (each (n,)): an (m, m) array."""
    ms = [_as_mask(m) for m in masks]
    out = np.empty((len(ms), len(ms)))
    for i, a in enumerate(ms):
        for j, b in enumerate(ms):
            out[i, j] = jaccard(a, b)
    return out


def mean_over(mask: _Any, values: _Any) -> float:
    """Mean of ``values`` (n,) over the selected items: the notebook's "mean λ" with R_norm as values."""
    m = _as_mask(mask)
    v = np.asarray(values, dtype=np.float64)
    if v.shape != m.shape:
        raise ValueError(f"values must have shape {m.shape} to match mask, got {v.shape}")
    if not m.any():
        raise ValueError("mask selects no items; the mean is undefined")
    return float(v[m].mean())


def pearson(a: _Any, b: _Any) -> float:
    """Pearson correlation r of two (n,) arrays; NaN when either is constant.

    Scale-free: each array is scaled by a power of two near its largest |value| first (exact: r keeps its bits), so values
    near float64's limits neither overflow nor underflow the sums. A NaN or infinity is refused.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 2:
        raise ValueError(f"a and b must be 1-D of the same length >= 2, got {x.shape} and {y.shape}")
    for name, v in (("a", x), ("b", y)):
        if not np.isfinite(v).all():
            raise ValueError(f"{name} contains NaN or infinity: its correlation is undefined")
    xc, yc = _unit_max(x), _unit_max(y)
    xc, yc = _unit_max(xc - xc.mean()), _unit_max(yc - yc.mean())
    den = np.sqrt((xc * xc).sum() * (yc * yc).sum())
    return float(np.clip((xc * yc).sum() / den, -1.0, 1.0)) if den > 0 else float("nan")


def _unit_max(v: np.ndarray) -> np.ndarray:
    """``v`` times the power of two that brings its largest |value| into [0.5, 1) (exact, so r keeps its bits)."""
    m = float(np.abs(v).max())
    return np.ldexp(v, -np.frexp(m)[1]) if m > 0 else v


# --- retrieval metrics (sparse-autoencoder area) ----------------------------------------------
# trec_eval semantics: a run ranks each query's documents by score descending, ties broken by
# document id descending (trec_eval compares docnos as strings); a document is relevant when its
# qrels relevance is >= 1; only queries present in both the run and the qrels are averaged.
# MRR@k is trec_eval's recip_rank on the run cut to its top k; P@k divides by k even when fewer
# documents were retrieved; R@k divides by the query's number of relevant documents.


def _ranked(docs: dict[_Any, float], k: int) -> list[_Any]:
    items = sorted(docs.items(), key=lambda kv: str(kv[0]), reverse=True)
    items.sort(key=lambda kv: -float(kv[1]))  # stable: equal scores keep docid-descending order
    return [d for d, _ in items[:k]]


def _retrieval_queries(run: dict[_Any, dict[_Any, float]], qrels: dict[_Any, dict[_Any, int]], k: int) -> list[_Any]:
    if not isinstance(run, dict) or not isinstance(qrels, dict):
        raise TypeError("run and qrels must be dicts {qid: {docid: score}} and {qid: {docid: relevance}}")
    check_int(k, "k")
    common = [q for q in run if q in qrels]
    if run and qrels and not common:
        raise ValueError(
            "run and qrels share no query id (check the id types: e.g. 0 vs '0'); "
            f"run has {list(run)[:3]}..., qrels has {list(qrels)[:3]}..."
        )
    return common


def _per_query(
    run: dict[_Any, dict[_Any, float]], qrels: dict[_Any, dict[_Any, int]], k: int, kind: str
) -> dict[_Any, float]:
    out: dict[_Any, float] = {}
    for q in _retrieval_queries(run, qrels, k):
        rel = {d for d, r in qrels[q].items() if r >= 1}
        top = _ranked(run[q], k)
        if kind == "mrr":
            out[q] = next((1.0 / (i + 1) for i, d in enumerate(top) if d in rel), 0.0)
        elif kind == "p":
            out[q] = sum(d in rel for d in top) / k
        else:
            out[q] = sum(d in rel for d in top) / len(rel) if rel else 0.0
    return out


def mrr_at_k(
    run: dict[_Any, dict[_Any, float]], qrels: dict[_Any, dict[_Any, int]], k: int = 10, *, per_query: bool = False
) -> _Any:
    """Mean reciprocal rank of the first relevant document within the top k (0 when none)."""
    pq = _per_query(run, qrels, k, "mrr")
    return pq if per_query else (float(np.mean(list(pq.values()))) if pq else 0.0)


def precision_at_k(
    run: dict[_Any, dict[_Any, float]], qrels: dict[_Any, dict[_Any, int]], k: int = 10, *, per_query: bool = False
) -> _Any:
    """Mean fraction of relevant documents among the top k (divided by k, as trec_eval's P_k)."""
    pq = _per_query(run, qrels, k, "p")
    return pq if per_query else (float(np.mean(list(pq.values()))) if pq else 0.0)


def recall_at_k(
    run: dict[_Any, dict[_Any, float]], qrels: dict[_Any, dict[_Any, int]], k: int = 10, *, per_query: bool = False
) -> _Any:
    """Mean fraction of each query's relevant documents found in the top k (trec_eval's recall_k)."""
    pq = _per_query(run, qrels, k, "r")
    return pq if per_query else (float(np.mean(list(pq.values()))) if pq else 0.0)
