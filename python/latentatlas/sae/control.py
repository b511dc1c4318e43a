"""Controlling retrieval through SAE latents: amplify, decode, re-retrieve.

* :func:`amplify` — scale (``"multiplicative"``) or shift (``"additive"``) chosen latents of sparse
  codes; an additive shift also switches on latents that were not active.
* :func:`steer` — amplify latents of the queries or of the documents, decode, retrieve with
  the reconstructed embeddings; returns the rankings before and after.
* :func:`pseudo_relevance_feedback` — the reference code's rule: retrieve with the reconstructed
  query, take the top latents of the top feedback documents, add ``delta`` at those latents of
  the query code (zero ones included), decode, re-retrieve.
* :func:`amplification_grid` — the paper's controllability study: amplify, for each query, the
  latent most active in its relevant documents (query side) or the query's top latent in its
  relevant documents (document side) by amounts 0.0004·2^i, with MRR/P@10 at each step.
* :func:`latent_counts` — documents carrying a latent among the top-n, before and after.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from .._validate import check_choice, check_int
from .model import Codes, TopKSAE, check_codes
from .retrieval import check_qrels, dense_search, evaluate, to_run

__all__ = ["amplification_grid", "amplify", "latent_counts", "pseudo_relevance_feedback", "steer"]


def _latents(latents: Any, n_latents: int) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(latents))
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise TypeError(f"latents must be an integer or a 1-D sequence of integers, got {latents!r}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_latents):
        raise ValueError(f"latents must lie in [0, {n_latents}), got {arr.tolist()}")
    return arr.astype(np.int64)


def amplify(
    codes: Codes,
    latents: Any,
    amount: float | np.ndarray,
    *,
    mode: str = "additive",
    n_latents: int,
    rows: Any = None,
) -> Codes:
    """Amplify ``latents`` in the sparse codes.

    Parameters
    ----------
    codes : (values (N, k), indices (N, k))
    latents : int or sequence of m ints — the same latents for every row — or an (N, m)
        integer array giving each row its own m latents
    amount : additive shift (``mode="additive"``: v + amount, latents not active get amount) or
        factor (``mode="multiplicative"``: v · amount, inactive latents stay 0); scalar or (N,)
    rows : optional bool mask or row ids; other rows are left unchanged

    Returns
    -------
    values, indices : (N, k + m) — the original columns plus one column per amplified latent
    """
    check_choice(mode, "mode", ("additive", "multiplicative"))
    v0 = np.asarray(codes[0]).dtype
    v, i = check_codes(*codes, n_latents, v0 if v0.kind == "f" else np.dtype(np.float64))
    N = v.shape[0]
    L = np.asarray(latents)
    if L.ndim <= 1:
        L = np.broadcast_to(_latents(L, n_latents), (N, np.atleast_1d(L).size))
    else:
        if L.shape[0] != N:
            raise ValueError(f"per-row latents must have {N} rows, got shape {L.shape}")
        L = _latents(L.ravel(), n_latents).reshape(L.shape)
    amt = np.asarray(amount, dtype=np.float64)
    if amt.ndim == 0:
        amt = np.full((N, 1), float(amt))
    elif amt.shape == (N,):
        amt = amt[:, None]
    else:
        raise ValueError(f"amount must be a scalar or have shape ({N},), got {amt.shape}")
    amt = amt.astype(v.dtype)
    if not np.isfinite(amt).all():
        raise ValueError("amount contains NaN or infinity")
    sel = np.ones(N, bool)
    if rows is not None:
        r = np.asarray(rows)
        sel = r if r.dtype == np.bool_ else np.isin(np.arange(N), r)
        if sel.shape != (N,):
            raise ValueError(f"rows must be a bool mask of length {N} or row ids")
    m = L.shape[1]
    out_v = np.concatenate([v, np.zeros((N, m), v.dtype)], axis=1)
    out_i = np.concatenate([i, L.astype(np.int64)], axis=1)
    for c in range(m):
        hit = (i == L[:, c : c + 1]) & sel[:, None]
        present = hit.any(axis=1)
        if mode == "multiplicative":
            out_v[:, : v.shape[1]] = np.where(hit, out_v[:, : v.shape[1]] * amt, out_v[:, : v.shape[1]])
        else:
            out_v[:, : v.shape[1]] = np.where(hit, out_v[:, : v.shape[1]] + amt, out_v[:, : v.shape[1]])
            add = sel & ~present
            out_v[add, v.shape[1] + c] = amt[add, 0]
    return out_v, out_i


def steer(
    sae: TopKSAE,
    Q: Any,
    D: Any,
    latents: Any,
    amount: float,
    *,
    mode: str = "additive",
    side: str = "query",
    k: int = 10,
    doc_rows: Any = None,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Retrieve with reconstructed embeddings before and after amplifying ``latents``.

    ``side="query"`` amplifies the query codes; ``side="document"`` amplifies the document codes
    (all documents, or ``doc_rows``). Returns ``before_scores``, ``before_ids``, ``after_scores``,
    ``after_ids``, each (M, k).
    """
    check_choice(side, "side", ("query", "document"))
    qc, dc = sae.encode(Q, threads=threads), sae.encode(D, threads=threads)
    Qh, Dh = sae.decode(*qc), sae.decode(*dc)
    bs, bi = dense_search(Qh, Dh, k, threads=threads)
    if side == "query":
        Qa = sae.decode(*amplify(qc, latents, amount, mode=mode, n_latents=sae.n_latents))
        a_s, a_i = dense_search(Qa, Dh, k, threads=threads)
    else:
        Da = sae.decode(*amplify(dc, latents, amount, mode=mode, n_latents=sae.n_latents, rows=doc_rows))
        a_s, a_i = dense_search(Qh, Da, k, threads=threads)
    return {"before_scores": bs, "before_ids": bi, "after_scores": a_s, "after_ids": a_i}


def pseudo_relevance_feedback(
    sae: TopKSAE,
    Q: Any,
    D: Any,
    *,
    feedback_docs: int = 3,
    feedback_latents: int = 8,
    delta: float = 0.05,
    k: int = 10,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-relevance feedback in latent space (embedding-scope's rule).

    1. Retrieve ``feedback_docs`` documents with the reconstructed query.
    2. Sum their codes and take the ``feedback_latents`` largest latents.
    3. Add ``delta`` to those latents of the query code (switching on inactive ones), decode.
    4. Retrieve ``k`` documents with the modified query against the reconstructed documents.

    Returns (scores (M, k), ids (M, k)).
    """
    feedback_docs = check_int(feedback_docs, "feedback_docs")
    feedback_latents = check_int(feedback_latents, "feedback_latents", high=sae.n_latents, what="n_latents")
    qc, dc = sae.encode(Q, threads=threads), sae.encode(D, threads=threads)
    Dh = sae.decode(*dc)
    _, fb = dense_search(sae.decode(*qc), Dh, feedback_docs, threads=threads)
    M, n = qc[0].shape[0], sae.n_latents
    chosen = np.empty((M, feedback_latents), np.int64)
    for q in range(M):
        lat = dc[1][fb[q]].ravel()
        val = dc[0][fb[q]].ravel().astype(np.float64)
        tot = np.bincount(lat, weights=val, minlength=n)
        order = np.lexsort((np.arange(n), -tot))
        chosen[q] = order[:feedback_latents]
    Qa = sae.decode(*amplify(qc, chosen, delta, mode="additive", n_latents=n))
    return dense_search(Qa, Dh, k, threads=threads)


def amplification_grid(
    sae: TopKSAE,
    Q: Any,
    D: Any,
    qrels: dict[Hashable, dict[Hashable, int]],
    *,
    side: str = "query",
    start: float = 0.0004,
    factor: float = 2.0,
    steps: int = 12,
    k: int = 10,
    query_ids: Sequence[Hashable] | None = None,
    doc_ids: Sequence[Hashable] | None = None,
    threads: int | None = None,
) -> list[dict[str, float]]:
    """The paper's controllability grid (amounts ``start · factor^i``, i < steps, plus 0).

    Query side: each query's code gets ``+amount`` at the latent with the largest summed
    activation over its relevant documents. Document side: each query's relevant documents get
    ``+amount`` at the query's top latent. Retrieval uses reconstructed embeddings throughout.

    Returns a list of ``{"amount", "mrr@k", "p@k", "r@k"}`` (amount 0 = no amplification).
    """
    check_choice(side, "side", ("query", "document"))
    qids = list(range(np.asarray(Q).shape[0])) if query_ids is None else list(query_ids)
    dids = list(range(np.asarray(D).shape[0])) if doc_ids is None else list(doc_ids)
    steps = check_int(steps, "steps", low=0)
    check_qrels(qrels, qids, dids)
    pos = {d: r for r, d in enumerate(dids)}
    qpos = {q: r for r, q in enumerate(qids)}
    qc, dc = sae.encode(Q, threads=threads), sae.encode(D, threads=threads)
    Qh, Dh = sae.decode(*qc), sae.decode(*dc)
    n = sae.n_latents
    rel_rows = {qpos[q]: [pos[d] for d, r in docs.items() if r >= 1] for q, docs in qrels.items()}
    if side == "query":
        target = np.array([int(qc[1][q, 0]) for q in range(len(qids))])
        for q, rows in rel_rows.items():
            if rows:
                tot = np.bincount(dc[1][rows].ravel(), weights=dc[0][rows].ravel().astype(np.float64), minlength=n)
                target[q] = int(np.argmax(tot))
    amounts = [0.0] + [start * factor**i for i in range(steps)]
    out = []
    for a in amounts:
        if side == "query":
            Qa = sae.decode(*amplify(qc, target[:, None], a, n_latents=n)) if a else Qh
            s, i = dense_search(Qa, Dh, k, threads=threads)
        else:
            lat = np.full(len(dids), -1, np.int64)
            for q, rows in rel_rows.items():
                lat[rows] = qc[1][q, 0]
            mask = lat >= 0
            Da = Dh
            if a and mask.any():
                Da = sae.decode(*amplify(dc, np.where(mask, lat, 0)[:, None], a, n_latents=n, rows=mask))
            s, i = dense_search(Qh, Da, k, threads=threads)
        m = evaluate(to_run(s, i, qids, dids), qrels, k)
        out.append({"amount": a, **m})
    return out


def latent_counts(
    sae: TopKSAE,
    ids_before: np.ndarray,
    ids_after: np.ndarray,
    D: Any,
    latent: int,
    *,
    top: int = 5,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per query, how many of the top ``top`` documents carry ``latent`` (active in their code),
    before and after steering: two (M,) int arrays."""
    j = int(_latents(latent, sae.n_latents)[0])
    v, i = sae.encode(D, threads=threads)
    carries = ((i == j) & (v > 0)).any(axis=1)
    return carries[ids_before[:, :top]].sum(axis=1), carries[ids_after[:, :top]].sum(axis=1)
