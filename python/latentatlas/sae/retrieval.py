"""Retrieval with dense embeddings and with sparse latent codes, and its evaluation (paper Table 1).

* :func:`dense_search` — exact inner-product top-k on the core GEMM + top-k primitive.
* :func:`latent_search` — sparse dot product over latent codes through an inverted index
  (latent → postings of (document, value)); only the postings of a query's active latents are
  walked, never the dense ``queries × documents`` product.
* :func:`evaluate` — MRR@k, P@k, R@k with trec_eval semantics (:mod:`latentatlas.metrics`).
* :func:`retrieval_report` — original vs sparse-latent vs reconstructed retrieval for one or more
  SAEs, in the layout of the paper's Table 1.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import chunked, kernels
from .._optional import import_optional, is_dask_array
from .._validate import as_matrix, check_int, check_threads
from ..metrics import mrr_at_k, precision_at_k, recall_at_k
from .model import Codes, TopKSAE, check_codes

__all__ = ["RetrievalReport", "dense_search", "evaluate", "latent_search", "retrieval_report", "to_run"]


def dense_search(Q: Any, D: Any, k: int = 10, *, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product retrieval.

    Parameters
    ----------
    Q : array (M, d) queries; D : array (N, d) documents; k : documents per query (<= N)

    Returns
    -------
    scores : (M, k) descending; ids : (M, k) int64 document rows (ties to the lower row)

    D may be row chunks or a Dask array (Q stays in memory): per-block top-k merged under the same
    tie rule, so the result is the in-memory one.
    """
    Q = as_matrix(Q, "Q")
    R = chunked.rows(D, "D")
    if Q.shape[1] != R.n_cols:
        raise ValueError(f"Q and D must have the same number of columns, got {Q.shape[1]} and {R.n_cols}")
    k = check_int(k, "k", high=R.shape[0] if R.rows_known else None)  # at most the documents
    dt = np.result_type(Q.dtype, R.dtype)
    if not R.whole:
        fn = functools.partial(_dense_rows, Q.astype(dt, copy=False), k, check_threads(threads))
        return _full_k(R.topk(fn, k), k)
    return kernels.gemm_topk(Q.astype(dt, copy=False), R.data.astype(dt, copy=False), k, threads=check_threads(threads))


def _dense_rows(Q: np.ndarray, k: int, threads: int | None, D: np.ndarray, start: int) -> Any:
    return kernels.gemm_topk(Q, D.astype(Q.dtype, copy=False), min(k, D.shape[0]), threads=threads)


def _full_k(res: tuple[np.ndarray, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    if res[1].shape[1] < k:  # chunks: the row count is known only now
        raise ValueError(f"k must be <= the number of documents = {res[1].shape[1]}, got {k}")
    return res


def latent_search(
    Qcodes: Codes,
    Dcodes: Codes,
    k: int = 10,
    *,
    n_latents: int | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse dot-product retrieval over latent codes via an inverted index.

    Parameters
    ----------
    Qcodes, Dcodes : (values (M, kq), indices (M, kq)) and (values (N, kd), indices (N, kd)),
        e.g. from :meth:`TopKSAE.encode`.
    k : documents per query (<= N)
    n_latents : size of the latent space (default: 1 + the largest index seen)

    Returns
    -------
    scores : (M, k) descending; ids : (M, k) int64 (ties to the lower row; documents that share no
    latent with the query score 0) — the same as the top-k of the dense product of the codes.

    Dcodes may be a pair of Dask arrays (as :meth:`TopKSAE.encode` of a Dask array returns them):
    per-block searches merged under the same tie rule give the in-memory result.
    """
    for name, c in (("Qcodes", Qcodes), ("Dcodes", Dcodes)):
        if not isinstance(c, (tuple, list)) or len(c) != 2:
            raise TypeError(f"{name} must be a (values, indices) pair")
    if is_dask_array(Dcodes[0]) or is_dask_array(Dcodes[1]):
        return _latent_search_dask(Qcodes, Dcodes, k, n_latents, threads)
    if n_latents is None:
        n_latents = 1 + int(max(np.max(Qcodes[1], initial=-1), np.max(Dcodes[1], initial=-1), 0))
    n_latents = check_int(n_latents, "n_latents", high=2**63 - 1)  # indices are int64
    dt = np.result_type(np.asarray(Qcodes[0]).dtype, np.asarray(Dcodes[0]).dtype, np.float32)
    dt = np.dtype(np.float32) if dt == np.float32 else np.dtype(np.float64)
    qv, qi = check_codes(*Qcodes, n_latents, dt, "Qcodes")
    dv, di = check_codes(*Dcodes, n_latents, dt, "Dcodes")
    for name, v in (("Qcodes", qv), ("Dcodes", dv)):
        if not np.isfinite(v).all():
            raise ValueError(f"{name}: values contain NaN or infinity")
    k = check_int(k, "k", high=dv.shape[0])  # at most the documents
    return kernels.latent_search(qv, qi, dv, di, n_latents, k, threads=check_threads(threads))


def _latent_search_dask(Qcodes: Codes, Dcodes: Any, k: int, n_latents: int | None, threads: int | None) -> Any:
    da = import_optional("dask.array", feature="Dask input")
    dv, di = (da.asarray(a) for a in Dcodes)
    if dv.ndim != 2 or di.shape != dv.shape:
        raise ValueError(
            f"Dcodes: values and indices must both be 2-D (N, k) of one shape, got {dv.shape} and {di.shape}"
        )
    if n_latents is None:
        (dmax,) = chunked.compute(di.max())
        n_latents = 1 + int(max(np.max(Qcodes[1], initial=-1), dmax, 0))
    dt = np.result_type(np.asarray(Qcodes[0]).dtype, dv.dtype, np.float32)
    dt = np.dtype(np.float32) if dt == np.float32 else np.dtype(np.float64)
    qv, qi = check_codes(*Qcodes, n_latents, dt, "Qcodes")
    if not np.isfinite(qv).all():
        raise ValueError("Qcodes: values contain NaN or infinity")
    k = check_int(k, "k", high=dv.shape[0])
    # one row block holds a document's values and indices side by side in float64 (both exact there:
    # float32/64 values and indices < 2**53), so the corpus is one row-chunked array
    both = da.concatenate([dv.astype(np.float64), di.rechunk(dv.chunks).astype(np.float64)], axis=1)
    fn = functools.partial(_latent_rows, qv, qi, dt, int(n_latents), k, check_threads(threads))
    return chunked.rows(both, "Dcodes").topk(fn, k)


def _latent_rows(
    qv: np.ndarray, qi: np.ndarray, dt: np.dtype, n_latents: int, k: int, threads: int | None, D: np.ndarray, start: int
) -> Any:
    kd = D.shape[1] // 2
    dv, di = check_codes(D[:, :kd].astype(dt), D[:, kd:].astype(np.int64), n_latents, dt, "Dcodes")
    if not np.isfinite(dv).all():
        raise ValueError(f"Dcodes: values contain NaN or infinity (in the rows from {start})")
    return kernels.latent_search(qv, qi, dv, di, n_latents, min(k, dv.shape[0]), threads=threads)


def to_run(
    scores: np.ndarray,
    ids: np.ndarray,
    query_ids: Sequence[Hashable] | None = None,
    doc_ids: Sequence[Hashable] | None = None,
) -> dict[Hashable, dict[Hashable, float]]:
    """Search results → ``{qid: {docid: score}}`` (row numbers when ids are not given)."""
    qids = range(scores.shape[0]) if query_ids is None else query_ids
    out: dict[Hashable, dict[Hashable, float]] = {}
    for r, q in enumerate(qids):
        out[q] = {(int(j) if doc_ids is None else doc_ids[int(j)]): float(s) for s, j in zip(scores[r], ids[r])}
    return out


def evaluate(
    run: dict[Hashable, dict[Hashable, float]], qrels: dict[Hashable, dict[Hashable, int]], k: int = 10
) -> dict[str, float]:
    """``{"mrr@k", "p@k", "r@k"}`` of a run against qrels (trec_eval semantics, see :mod:`latentatlas.metrics`)."""
    return {
        f"mrr@{k}": mrr_at_k(run, qrels, k),
        f"p@{k}": precision_at_k(run, qrels, k),
        f"r@{k}": recall_at_k(run, qrels, k),
    }


@dataclass
class RetrievalReport:
    """Rows of the paper's Table 1: ``{"method", "K", "mse", "mrr@k", "p@k", "r@k"}`` each."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    k: int = 10

    def _cols(self) -> list[str]:
        return ["method", "mse", f"mrr@{self.k}", f"p@{self.k}", f"r@{self.k}"]

    def _fmt(self, row: dict[str, Any], c: str) -> str:
        v = row.get(c)
        if c == "method":
            return str(v)
        if v is None:
            return ""
        return f"{v:.5f}" if c == "mse" else f"{v:.4f}"

    def to_markdown(self) -> str:
        cols = self._cols()
        lines = ["| " + " | ".join(c.upper() if c != "method" else "" for c in cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(self._fmt(r, c) for c in cols) + " |" for r in self.rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self) -> str:
        cols = self._cols()
        head = "".join(f"<th>{html.escape(c.upper() if c != 'method' else '')}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(self._fmt(r, c))}</td>" for c in cols) + "</tr>" for r in self.rows
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    def __str__(self) -> str:
        return self.to_markdown()


def check_qrels(qrels: Any, query_ids: Sequence[Hashable], doc_ids: Sequence[Hashable]) -> None:
    """qrels must be ``{qid: {docid: relevance}}`` naming only known query and document ids."""
    if not isinstance(qrels, dict):
        raise TypeError("qrels must be a dict {qid: {docid: relevance}}")
    qs, ds = set(query_ids), set(doc_ids)
    bad_q = [q for q in qrels if q not in qs]
    if bad_q:
        raise ValueError(
            f"qrels names {len(bad_q)} unknown query id(s), e.g. {bad_q[:3]} (query ids are {list(query_ids)[:3]}...)"
        )
    for q, docs in qrels.items():
        bad_d = [d for d in docs if d not in ds]
        if bad_d:
            raise ValueError(
                f"qrels[{q!r}] names unknown document id(s) {bad_d[:3]} (document ids are {list(doc_ids)[:3]}...)"
            )


def retrieval_report(
    sae: TopKSAE | Sequence[TopKSAE],
    Q: Any,
    D: Any,
    qrels: dict[Hashable, dict[Hashable, int]],
    *,
    k: int = 10,
    query_ids: Sequence[Hashable] | None = None,
    doc_ids: Sequence[Hashable] | None = None,
    latent_subtract_decoder_bias: bool | None = None,
    threads: int | None = None,
) -> RetrievalReport:
    """Original vs sparse-latent vs reconstructed retrieval (the paper's Table 1 layout).

    Parameters
    ----------
    sae : one model or several (e.g. K = 32, 64, 128)
    Q, D : query (M, d) and document (N, d) embeddings
    qrels : ``{qid: {docid: relevance}}``; ids are rows of Q / D unless ``query_ids`` / ``doc_ids``
    latent_subtract_decoder_bias : encoding used for latent retrieval (None: the model's flag;
        False reproduces embedding-scope's evaluator, which ranks ``W_enc x + b_enc``)

    The MSE column is the reconstruction error (element mean) over the queries and their relevant
    documents, as in the paper.
    """
    saes = [sae] if isinstance(sae, TopKSAE) else list(sae)
    Q = as_matrix(Q, "Q")
    D = as_matrix(D, "D")
    qids = list(range(Q.shape[0])) if query_ids is None else list(query_ids)
    dids = list(range(D.shape[0])) if doc_ids is None else list(doc_ids)
    if len(qids) != Q.shape[0] or len(dids) != D.shape[0]:
        raise ValueError(
            f"query_ids / doc_ids must have {Q.shape[0]} / {D.shape[0]} entries, got {len(qids)} / {len(dids)}"
        )
    check_qrels(qrels, qids, dids)
    pos = {d: i for i, d in enumerate(dids)}
    qpos = {q: i for i, q in enumerate(qids)}
    rel_rows = sorted({pos[d] for docs in qrels.values() for d, r in docs.items() if r >= 1})
    q_rows = sorted(qpos[q] for q in qrels)

    def run_of(scores: np.ndarray, ids: np.ndarray) -> dict[Hashable, dict[Hashable, float]]:
        return to_run(scores, ids, qids, dids)

    rep = RetrievalReport(k=k)
    s, i = dense_search(Q, D, k, threads=threads)
    rep.rows.append({"method": "Original", "K": None, "mse": None, **evaluate(run_of(s, i), qrels, k)})
    latent_rows, recon_rows = [], []
    for m in saes:
        qc = m.encode(Q, subtract_decoder_bias=latent_subtract_decoder_bias, threads=threads)
        dc = m.encode(D, subtract_decoder_bias=latent_subtract_decoder_bias, threads=threads)
        s, i = latent_search(qc, dc, k, n_latents=m.n_latents, threads=threads)
        latent_rows.append(
            {"method": f"Sparse Latent (K={m.k})", "K": m.k, "mse": None, **evaluate(run_of(s, i), qrels, k)}
        )
        Qh = m.reconstruct(Q, threads=threads)
        Dh = m.reconstruct(D, threads=threads)
        err_q = (Qh[q_rows].astype(np.float64) - Q[q_rows]) if q_rows else np.zeros((0, Q.shape[1]))
        err_d = (Dh[rel_rows].astype(np.float64) - D[rel_rows]) if rel_rows else np.zeros((0, D.shape[1]))
        errs = np.concatenate([err_q, err_d])
        mse = float((errs**2).mean()) if errs.size else float("nan")
        s, i = dense_search(Qh, Dh, k, threads=threads)
        recon_rows.append(
            {"method": f"Reconstructed (K={m.k})", "K": m.k, "mse": mse, **evaluate(run_of(s, i), qrels, k)}
        )
    rep.rows += latent_rows + recon_rows
    return rep
