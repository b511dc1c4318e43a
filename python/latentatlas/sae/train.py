"""Training a TopK SAE without torch: the paper's loss, analytic gradients with a sparse backward, Adam.

Loss of one batch (REFERENCE §3, cxcscmu/embedding-scope)::

    L = MSE(q̂, q) + MSE(d̂, d) + kl_weight · KL + auxk_coef · AuxK

* MSE terms are element means over the batch's anchor rows ("queries") and over the unique
  neighbour documents of the batch.
* KL runs over each anchor's ``neighbors`` dense nearest documents (exact inner-product top-K of
  the original embeddings, computed once on the core GEMM + top-k primitive). With scores
  ``s_j = q·d_j / τ`` and ``ŝ_j = q̂·d̂_j / τ`` (τ = ``temperature``, default 1 as in the paper's Eq. 2, where f is the plain dot product, and
  in the embedding-scope trainer read (commit 45b7ebb: ``exp(q·d)``); REFERENCE §3 records a 1/√d
  scaling in another version of that code — pass ``temperature=math.sqrt(d)`` for it):

  - ``kl="softmax"`` (the paper's Eq. 2): ``P = softmax(s)``, ``P̂ = softmax(ŝ)``,
    ``KL = mean_q Σ_j P_j (log P_j - log P̂_j)``.
  - ``kl="embedding-scope"`` (the reference code): ``tar_j = e^{s_j} / (e^{s_j} + Σ_m e^{s_m})``,
    ``ins_j = log(e^{ŝ_j} / (e^{ŝ_j} + Σ_m e^{ŝ_m}))``, ``KL = mean_q Σ_j tar_j (log tar_j - ins_j)``
    (torch ``kl_div(ins, tar, reduction="batchmean")``). Its "distribution" counts s_j twice in the
    denominator and does not sum to one; its gradient still pulls reconstructed scores towards the
    original ranking, more softly than the softmax.

* AuxK (Gao et al. 2024, optional): latents that have not fired for ``dead_after`` rows are
  "dead"; the top-``auxk`` dead latents reconstruct the (detached) residual ``x - x̂``.

The backward pass touches only the k active latents of each row: decoder and encoder gradients
are scatter-adds of the k active (row, latent) pairs (Rust ``sparse_scatter_rows``) and the
gradient into the codes is a gather of k decoder rows (``sparse_gather_dot``). The loss has one
body over a kernel namespace: ``backend="sparse"`` runs it on :mod:`latentatlas.kernels` (the Rust kernels),
``backend="dense"`` on the NumPy twins :class:`latentatlas.reference.core` (dense
``N × n_latents`` matrices, float64) — the reference for tests and benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import chunked, kernels, reference
from .._progress import progress_bar
from .._validate import check_choice, check_finite, check_float, check_int, check_threads

if TYPE_CHECKING:
    from .model import TopKSAE

__all__ = ["Batch", "fit", "fit_stream", "loss_and_grads", "nearest_documents", "partial_fit"]

#: Adam steps that ``fit(epochs=None)`` aims for, and the most epochs it chooses.
DEFAULT_STEPS = 3000
MAX_EPOCHS = 30


@dataclass
class Batch:
    """One training batch.

    anchors : (B, d) query (anchor) embeddings
    docs : (U, d) the unique neighbour documents of the anchors
    nbr : (B, K) int64 rows of ``docs`` that are each anchor's dense nearest documents (K may be 0)
    """

    anchors: np.ndarray
    docs: np.ndarray
    nbr: np.ndarray


def nearest_documents(
    Q: np.ndarray, D: np.ndarray, k: int, *, exclude_self: bool = False, threads: int | None = None
) -> np.ndarray:
    """Exact inner-product top-k documents of every query, ``(len(Q), k)`` int64 (core primitive)."""
    return kernels.gemm_topk(Q, D, k, exclude_self=exclude_self, threads=threads)[1]


# ---------------------------------------------------------------------------------------------
# the KL term on score matrices (float64), returns (loss, dL/dŝ)
def _kl_scores(s: np.ndarray, sh: np.ndarray, kind: str) -> tuple[float, np.ndarray]:
    B = s.shape[0]
    if kind == "softmax":
        ls = s - s.max(axis=1, keepdims=True)
        logP = ls - np.log(np.exp(ls).sum(axis=1, keepdims=True))
        lsh = sh - sh.max(axis=1, keepdims=True)
        logPh = lsh - np.log(np.exp(lsh).sum(axis=1, keepdims=True))
        P = np.exp(logP)
        loss = float((P * (logP - logPh)).sum() / B)
        grad = (np.exp(logPh) - P) / B
        return loss, grad
    # embedding-scope: tar_j = e^s_j / (e^s_j + Σ e^s); all ratios are shift invariant
    e = np.exp(s - s.max(axis=1, keepdims=True))
    tar = e / (e + e.sum(axis=1, keepdims=True))
    eh = np.exp(sh - sh.max(axis=1, keepdims=True))
    den = eh + eh.sum(axis=1, keepdims=True)
    ins = np.log(eh / den)
    loss = float((tar * (np.log(tar) - ins)).sum() / B)
    # dL/dŝ_m = -tar_m + tar_m·ê_m/den_m + ê_m·Σ_j tar_j/den_j
    grad = -tar + tar * eh / den + eh * (tar / den).sum(axis=1, keepdims=True)
    return loss, grad / B


def loss_and_grads(
    params: dict[str, np.ndarray],
    batch: Batch,
    k: int,
    *,
    kl: str = "softmax",
    kl_weight: float = 1.0,
    temperature: float | None = None,
    subtract_decoder_bias: bool = True,
    dead: np.ndarray | None = None,
    auxk: int | None = None,
    auxk_coef: float = 1.0 / 32.0,
    residual: np.ndarray | None = None,
    batch_topk: bool = False,
    backend: str = "sparse",
    threads: int | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Loss terms and gradients of one batch.

    Parameters
    ----------
    params : dict with W_enc (n, d), b_enc (n,), W_dec (n, d), b_dec (d,)
    batch : :class:`Batch`
    dead : bool (n,), optional
        Dead latents for the AuxK term (used when ``auxk`` is set).
    residual : (B + U, d), optional
        Fix the AuxK target instead of ``x - x̂`` (it is detached either way; tests pass it
        to check the AuxK gradient by finite differences).
    batch_topk : BatchTopK (Bussmann et al. 2024): keep the ``rows · k`` largest activations of
        the whole batch instead of k per row (each row's candidates are its top ``4k``)
    backend : "sparse" (Rust kernels, O(rows·k·d) backward) or "dense" (NumPy reference)

    Returns
    -------
    losses : dict ``mse``, ``kl``, ``auxk``, ``loss`` (floats), ``fired`` (indices of active latents),
        ``cutoff`` (BatchTopK: the smallest kept activation, else 0)
    grads : dict of arrays shaped like ``params``
    """
    # Long: one forward + backward pass, top to bottom as the loss is written (encode, MSE, KL, backward, AuxK)
    K: Any = kernels if backend == "sparse" else reference.core
    We, be, Wd, bd = params["W_enc"], params["b_enc"], params["W_dec"], params["b_dec"]
    n = We.shape[0]
    A, D, nbr = batch.anchors, batch.docs, batch.nbr
    B, U = A.shape[0], D.shape[0]
    R = np.concatenate([A, D]).astype(We.dtype, copy=False)
    Rc = R - bd if subtract_decoder_bias else R
    b_dec = bd if subtract_decoder_bias else None
    tau = 1.0 if temperature is None else float(temperature)
    if not (tau > 0 and math.isfinite(tau)):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")

    v, idx = K.sae_encode(R, We, be, min(n, 4 * k) if batch_topk else k, b_dec=b_dec, threads=threads)
    cutoff = 0.0
    if batch_topk:
        # the batch's rows·k largest activations survive; zeros are skipped by decode and backward
        flat = v.ravel()
        keep = min(R.shape[0] * k, flat.size)
        cutoff = float(np.partition(flat, flat.size - keep)[flat.size - keep]) if keep else 0.0
        v = np.where(v >= cutoff, v, 0).astype(v.dtype)
        pos = v[v > 0]
        cutoff = float(pos.min()) if pos.size else 0.0
    Rh = K.sparse_decode(v, idx, Wd, bias=bd, threads=threads)

    # MSE(q̂, q) + MSE(d̂, d), each an element mean
    diff = Rh - R
    G = np.empty_like(diff)
    mse = 0.0
    for sl in (slice(0, B), slice(B, B + U)):
        part = diff[sl]
        if part.size:
            mse += float(np.einsum("ij,ij->", part, part, dtype=np.float64)) / part.size
            G[sl] = part * (2.0 / part.size)
    kl_loss = 0.0
    if kl_weight and nbr.size:
        A64, D64 = A.astype(np.float64), D.astype(np.float64)
        Ah, Dh = Rh[:B].astype(np.float64), Rh[B:].astype(np.float64)
        s = np.einsum("bd,bjd->bj", A64, D64[nbr]) / tau
        Dhn = Dh[nbr]
        sh = np.einsum("bd,bjd->bj", Ah, Dhn) / tau
        kl_loss, gs = _kl_scores(s, sh, kl)
        gs *= kl_weight / tau
        GA = np.einsum("bj,bjd->bd", gs, Dhn)
        # GD[u] = Σ_{nbr[b,j]=u} gs[b,j]·Âq[b]: the backward's scatter-add
        GD, _ = K.sparse_scatter_rows(gs, np.ascontiguousarray(nbr, dtype=np.int64), Ah, U, threads=threads)
        G[:B] += GA.astype(G.dtype)
        G[B:] += GD.astype(G.dtype)

    # the backward of a TopK layer touches only the k active (row, latent) pairs
    fired = np.unique(idx[v > 0])
    gWd, _ = K.sparse_scatter_rows(v, idx, G, n, threads=threads)
    gv = K.sparse_gather_dot(G, idx, Wd, threads=threads) * (v > 0)
    gWe, gbe = K.sparse_scatter_rows(gv, idx, Rc, n, threads=threads)
    gbd = G.sum(axis=0)
    if subtract_decoder_bias:
        gbd = gbd - gbe @ We
    grads = {"W_enc": gWe, "b_enc": gbe, "W_dec": gWd, "b_dec": gbd}

    aux_loss = 0.0
    if auxk and dead is not None and dead.any():
        # AuxK: the top-``auxk`` dead latents (a TopK encode restricted to them) fit the residual
        dead_ids = np.flatnonzero(dead)
        ka = min(int(auxk), dead_ids.size)
        E = (R - Rh) if residual is None else residual.astype(We.dtype)
        va, ia = K.sae_encode(R, np.ascontiguousarray(We[dead_ids]), be[dead_ids], ka, b_dec=b_dec, threads=threads)
        ia = dead_ids[ia]
        da = K.sparse_decode(va, ia, Wd, threads=threads) - E
        aux_loss = float(np.einsum("ij,ij->", da, da, dtype=np.float64)) / da.size
        Ga = (da * (2.0 * auxk_coef / da.size)).astype(We.dtype)
        gWd_a, _ = K.sparse_scatter_rows(va, ia, Ga, n, threads=threads)
        gva = K.sparse_gather_dot(Ga, ia, Wd, threads=threads) * (va > 0)
        gWe_a, gbe_a = K.sparse_scatter_rows(gva, ia, Rc, n, threads=threads)
        grads["W_dec"] = grads["W_dec"] + gWd_a
        grads["W_enc"] = grads["W_enc"] + gWe_a
        grads["b_enc"] = grads["b_enc"] + gbe_a
        if subtract_decoder_bias:
            grads["b_dec"] = grads["b_dec"] - gbe_a @ We
    total = mse + kl_weight * kl_loss + auxk_coef * aux_loss
    grads = {p: np.ascontiguousarray(g, dtype=We.dtype) for p, g in grads.items()}
    losses = {"loss": total, "mse": mse, "kl": kl_loss, "auxk": aux_loss, "fired": fired, "cutoff": cutoff}
    return losses, grads


def _lr_at(epoch: int, epochs: int, lr: float, schedule: str) -> float:
    if schedule == "constant":
        return lr
    # torch CosineAnnealingLR(T_max=epochs, eta_min=0), stepped once per epoch
    return lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def _update(
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    moments: dict[str, tuple[np.ndarray, np.ndarray]],
    lr: float,
    step: int,
    normalize_decoder: bool,
    K: Any,
    threads: int | None,
) -> None:
    """One Adam step in place (decoder rows kept at unit norm when asked): fit's and partial_fit's step."""
    if normalize_decoder:
        W = params["W_dec"]
        g = grads["W_dec"]
        g -= np.einsum("ij,ij->i", g, W)[:, None] * W
    for p, m_v in moments.items():
        m, v = m_v
        K.adam_step(params[p], grads[p], m, v, lr=lr, step=step, threads=threads)
    if normalize_decoder:
        W = params["W_dec"]
        W /= np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)


def fit(
    sae: TopKSAE,
    docs: Any,
    queries: Any = None,
    *,
    epochs: int | None = None,
    batch_size: int = 256,
    lr: float = 3e-3,
    schedule: str = "cosine",
    neighbors: int = 8,
    kl_weight: float = 0.0,
    kl: str = "softmax",
    temperature: float | None = None,
    normalize_decoder: bool = True,
    auxk: int | None = None,
    auxk_coef: float = 1.0 / 32.0,
    dead_after: int | None = None,
    init_decoder_bias: bool = True,
    init_from_data: bool = False,
    batch_topk: bool = False,
    seed: int = 0,
    progress: bool = True,
    backend: str = "sparse",
    threads: int | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> TopKSAE:
    """Train ``sae`` in place: plain reconstruction (MSE) by default; ``kl_weight > 0`` adds the
    seed paper's retrieval-oriented KL term (for query/document embeddings; the RT demo and
    ``latentatlas sae train`` turn it on).

    Parameters
    ----------
    docs : array (N, d)
        Document embeddings (L2-normalised, as the paper's).
    queries : array (M, d), optional
        Anchor embeddings of the KL term. One epoch is one pass over the anchors; each batch
        holds ``batch_size`` anchors and their ``neighbors`` dense nearest documents. Without
        queries every document is an anchor and its neighbours exclude itself.
    epochs, batch_size, lr : Adam (β = 0.9, 0.999, ε = 1e-8) with ``schedule`` "cosine"
        (per-epoch cosine annealing to 0, as torch's CosineAnnealingLR) or "constant".
        ``epochs=None`` trains for about :data:`DEFAULT_STEPS` Adam steps, between 1 and
        :data:`MAX_EPOCHS` epochs (small data needs many passes, large data few; the defaults
        recover planted dictionaries, ``tests/test_sae_defaults.py``).
    neighbors : int
        K dense neighbours per anchor for the KL term (0 turns the KL term off).
    kl_weight, kl, temperature : weight (default 0: off) and variant of the KL term ("softmax" (paper) or
        "embedding-scope" (reference code)), score temperature τ (default 1; see the module docstring).
    normalize_decoder : keep decoder rows at unit norm (gradient component along each row
        removed before the step, rows renormalised after).
    auxk, auxk_coef, dead_after : AuxK loss over the top ``auxk`` dead latents (off when None);
        a latent is dead after ``dead_after`` rows without firing (default: one epoch of rows).
    init_decoder_bias : set b_dec to the mean document before the first epoch of a fresh model.
    init_from_data : start a fresh model's decoder rows (and the tied encoder) at random centred
        documents instead of random directions.
    batch_topk : train a BatchTopK SAE (see :func:`loss_and_grads`); the mean smallest kept
        activation of the last epoch is stored as ``sae.batch_topk_threshold_``, the JumpReLU
        threshold that :meth:`ThresholdSAE.from_batch_topk` runs it with at inference.
    seed : shuffling seed; the same seed and inputs give the same model.
    backend : "sparse" (Rust) or "dense" (NumPy reference, slow; for tests and benchmarks).

    Returns
    -------
    sae, with ``history_`` holding per-epoch mean losses.
    """
    docs = sae._rows(docs, "docs")
    if not docs.whole:
        if queries is not None:
            raise ValueError("queries cannot be given with streamed docs (chunks or a Dask array); see fit_stream")
        if batch_topk:
            raise ValueError("batch_topk is not available for streamed docs (chunks or a Dask array); see fit_stream")
        return fit_stream(
            sae, docs, epochs=1 if epochs is None else epochs, batch_size=batch_size, lr=lr, schedule=schedule, neighbors=neighbors,
            kl_weight=kl_weight, kl=kl, temperature=temperature, normalize_decoder=normalize_decoder, auxk=auxk,
            auxk_coef=auxk_coef, dead_after=dead_after, progress=progress, backend=backend, threads=threads,
            callback=callback,
        )  # fmt: skip
    D, Q = _training_data(sae, docs, queries)
    batch_size = check_int(batch_size, "batch_size")
    neighbors = check_int(neighbors, "neighbors", low=0)
    lr = check_float(lr, "lr", low=0.0, low_open=True)
    kl_weight = check_float(kl_weight, "kl_weight", low=0.0)
    auxk_coef = check_float(auxk_coef, "auxk_coef", low=0.0)
    check_choice(schedule, "schedule", ("cosine", "constant"))
    check_choice(kl, "kl", ("softmax", "embedding-scope"))
    check_choice(backend, "backend", ("sparse", "dense"))
    threads = check_threads(threads)
    anchors = D if Q is None else Q
    max_nb = D.shape[0] - 1 if Q is None else D.shape[0]
    if neighbors > max_nb:
        raise ValueError(f"neighbors must be <= {max_nb} (documents available per anchor), got {neighbors}")
    auxk = None if auxk is None else check_int(auxk, "auxk")
    n_anchor = anchors.shape[0]
    dead_after = n_anchor if dead_after is None else check_int(dead_after, "dead_after", low=0)
    use_kl = bool(kl_weight) and neighbors > 0
    # each anchor's nearest documents, once: the KL term's targets
    nbr = nearest_documents(anchors, D, neighbors, exclude_self=Q is None, threads=threads) if use_kl else None
    state = _State(_initial_params(sae, D, init_decoder_bias, init_from_data, seed), sae.n_latents)
    loss_kw = {
        "kl": kl, "kl_weight": kl_weight if use_kl else 0.0, "temperature": temperature,
        "subtract_decoder_bias": sae.subtract_decoder_bias, "auxk": auxk, "auxk_coef": auxk_coef,
        "batch_topk": batch_topk, "backend": backend, "threads": threads,
    }  # fmt: skip
    K: Any = kernels if backend == "sparse" else reference.core
    rng = np.random.default_rng(seed)
    n_batches = math.ceil(n_anchor / batch_size)
    if epochs is None:
        epochs = min(MAX_EPOCHS, max(1, math.ceil(DEFAULT_STEPS / n_batches)))
    epochs = check_int(epochs, "epochs")
    bar = progress_bar(epochs * n_batches, "sae fit", progress)
    try:
        for epoch in range(epochs):
            lr_e = _lr_at(epoch, epochs, lr, schedule)
            batches = _epoch_batches(anchors, D, nbr, rng.permutation(n_anchor), batch_size)
            sums = _epoch(state, sae.k, batches, dead_after if auxk else None, lr_e, normalize_decoder, K, loss_kw, bar)
            # once per epoch, without forcing a redraw: tqdm's mininterval bounds the output
            bar.set_postfix(epoch=epoch, loss=f"{sums['loss'] / n_batches:.3g}", refresh=False)
            rec = {key: val / n_batches for key, val in sums.items()}
            rec.update(epoch=epoch, lr=lr_e, dead_fraction=float((state.since >= dead_after).mean()))
            sae.history_.append(rec)
            if batch_topk:
                sae.batch_topk_threshold_ = rec["cutoff"]
            if callback is not None:
                callback(epoch, rec)
    finally:
        bar.close()
    sae.params = state.params
    return sae


def _training_data(sae: TopKSAE, docs: chunked.Rows, queries: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(D, Q) in the model's dtype; every value finite (a memmap is checked block by block)."""
    D = docs.data.astype(sae.dtype, copy=False)
    if D.shape[0] < 2:
        raise ValueError(f"docs must have at least 2 rows, got shape {D.shape}")
    Q = None if queries is None else sae.check_input(queries, "queries")
    for name, arr in (("docs", D), ("queries", Q)):
        if arr is not None:
            for _, block in chunked.rows(arr, name, min_rows=0).blocks():
                check_finite(block, name)
    return D, Q


def _initial_params(
    sae: TopKSAE, D: np.ndarray, init_decoder_bias: bool, init_from_data: bool, seed: int
) -> dict[str, np.ndarray]:
    """The weights fit starts from, C-contiguous (Adam updates them in place); a fresh model may take
    b_dec = the mean document and decoder rows at random centred documents."""
    params = {p: np.ascontiguousarray(a) for p, a in sae.params.items()}
    if init_decoder_bias and not sae.history_:
        params["b_dec"] = D.mean(axis=0).astype(sae.dtype)
    if init_from_data and not sae.history_:
        # decoder rows start at random centred documents (unit norm), the encoder tied to them:
        # every latent begins "alive" on some region of the data
        rng0 = np.random.default_rng(seed)
        rows = rng0.choice(D.shape[0], sae.n_latents, replace=sae.n_latents > D.shape[0])
        W = D[rows].astype(np.float64) - params["b_dec"]
        W += 1e-3 * rng0.standard_normal(W.shape)
        W /= np.linalg.norm(W, axis=1, keepdims=True)
        params["W_dec"] = W.astype(sae.dtype)
        params["W_enc"] = W.astype(sae.dtype)
    return params


@dataclass
class _State:
    """fit's optimisation state: the weights, Adam's moments and step, steps since each latent fired."""

    params: dict[str, np.ndarray]
    n_latents: int
    step: int = 0
    moments: dict[str, tuple[np.ndarray, np.ndarray]] = field(init=False)
    since: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.moments = {p: (np.zeros_like(a), np.zeros_like(a)) for p, a in self.params.items()}
        self.since = np.zeros(self.n_latents, dtype=np.int64)


def _epoch_batches(
    anchors: np.ndarray, D: np.ndarray, nbr: np.ndarray | None, order: np.ndarray, batch_size: int
) -> Any:
    """One epoch's batches in ``order``: anchors with the unique documents of their neighbours (KL)."""
    for b0 in range(0, len(order), batch_size):
        rows = order[b0 : b0 + batch_size]
        if nbr is None:
            yield Batch(anchors[rows], D[:0], np.zeros((len(rows), 0), np.int64))
        else:
            u, inv = np.unique(nbr[rows].ravel(), return_inverse=True)
            yield Batch(anchors[rows], D[u], inv.reshape(len(rows), -1).astype(np.int64))


def _epoch(
    state: _State,
    k: int,
    batches: Any,
    dead_after: int | None,
    lr: float,
    normalize_decoder: bool,
    K: Any,
    loss_kw: dict[str, Any],
    bar: Any,
) -> dict[str, float]:
    """One pass of Adam steps over ``batches``; the summed losses."""
    sums = {"loss": 0.0, "mse": 0.0, "kl": 0.0, "auxk": 0.0, "cutoff": 0.0}
    for batch in batches:
        dead = state.since >= dead_after if dead_after is not None else None
        losses, grads = loss_and_grads(state.params, batch, k, dead=dead, **loss_kw)
        state.since += batch.anchors.shape[0] + batch.docs.shape[0]
        state.since[losses["fired"]] = 0
        state.step += 1
        _update(state.params, grads, state.moments, lr, state.step, normalize_decoder, K, loss_kw["threads"])
        for key in sums:
            sums[key] += losses[key]
        bar.update(1)
    return sums


# ---------------------------------------------------------------------------------------------
# streaming: one step per batch, the optimiser's state kept on the model
def partial_fit(
    sae: TopKSAE,
    batch: Any,
    *,
    lr: float = 1e-3,
    neighbors: int = 0,
    kl_weight: float = 0.0,
    kl: str = "softmax",
    temperature: float | None = None,
    normalize_decoder: bool = True,
    auxk: int | None = None,
    auxk_coef: float = 1.0 / 32.0,
    dead_after: int | None = None,
    backend: str = "sparse",
    threads: int | None = None,
) -> dict[str, Any]:
    """One Adam step of ``sae`` on one batch of rows ``(B, d)``; returns the batch's losses.

    The loss is :func:`loss_and_grads`' with every row an anchor; the KL term (``neighbors > 0``)
    uses each row's dense nearest rows *within the batch* (no corpus-wide neighbours in a stream).
    Adam's moments, the step count and the dead-latent counters live on the model
    (``sae.stream_state_``), so successive calls continue one optimisation; :meth:`TopKSAE.fit` on
    chunks or a Dask array is this step over consecutive batches.
    """
    X = sae.check_input(batch, "batch")
    if X.shape[0] < 1:
        raise ValueError("batch must hold at least one row")
    check_finite(X, "batch")
    lr = check_float(lr, "lr", low=0.0, low_open=True)
    neighbors = check_int(neighbors, "neighbors", low=0)
    if neighbors and neighbors >= X.shape[0]:
        raise ValueError(f"neighbors must be < the batch's rows = {X.shape[0]}, got {neighbors}")
    check_choice(backend, "backend", ("sparse", "dense"))
    threads = check_threads(threads)
    K: Any = kernels if backend == "sparse" else reference.core
    state = sae.stream_state_
    if state is None:
        state = sae.stream_state_ = {
            "step": 0,
            "moments": {p: (np.zeros_like(a), np.zeros_like(a)) for p, a in sae.params.items()},
            "since": np.zeros(sae.n_latents, dtype=np.int64),
        }
    use_kl = bool(kl_weight) and neighbors > 0
    if use_kl:
        b = Batch(X, X, nearest_documents(X, X, neighbors, exclude_self=True, threads=threads))
    else:
        b = Batch(X, X[:0], np.zeros((X.shape[0], 0), np.int64))
    dead = state["since"] >= (X.shape[0] if dead_after is None else dead_after) if auxk else None
    params = {p: np.ascontiguousarray(a) for p, a in sae.params.items()}
    losses, grads = loss_and_grads(
        params, b, sae.k, kl=kl, kl_weight=kl_weight if use_kl else 0.0, temperature=temperature,
        subtract_decoder_bias=sae.subtract_decoder_bias, dead=dead, auxk=auxk, auxk_coef=auxk_coef,
        backend=backend, threads=threads,
    )  # fmt: skip
    state["since"] += X.shape[0] + b.docs.shape[0]
    state["since"][losses["fired"]] = 0
    state["step"] += 1
    _update(params, grads, state["moments"], lr, state["step"], normalize_decoder, K, threads)
    sae.params = params
    return losses


def fit_stream(
    sae: TopKSAE,
    X: Any,
    *,
    epochs: int = 1,
    batch_size: int = 512,
    lr: float = 1e-3,
    schedule: str = "constant",
    progress: bool = True,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    **step: Any,
) -> TopKSAE:
    """Train on rows that need not fit in memory: a memmap, row chunks or a Dask array.

    Each epoch reads X once, in row order, one block at a time, and takes :func:`partial_fit` steps
    on consecutive ``batch_size``-row batches (a batch may straddle two chunks), so the weights
    depend on the rows and ``batch_size`` only — never on the chunking — and equal those of the same
    ``partial_fit`` calls on in-memory batches. Rows are not shuffled (shuffle the file once, as
    streaming trainers do). ``schedule`` "cosine" anneals lr per epoch as :func:`fit` does;
    ``step`` passes the loss options (``neighbors``, ``kl``, ``auxk``, …) to :func:`partial_fit`.
    Progress shows rows/s. A one-shot iterator of chunks allows one epoch.
    """
    epochs = check_int(epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size")
    check_choice(schedule, "schedule", ("cosine", "constant"))
    X = sae._rows(X)
    if epochs > 1 and not X.reiterable:
        raise ValueError("X is a one-shot iterator of chunks: it allows epochs=1 (pass a list, memmap or Dask array)")
    total = epochs * X.shape[0] if X.rows_known else None
    bar = progress_bar(total, "sae fit (stream)", progress, unit="rows", unit_scale=True)
    try:
        for epoch in range(epochs):
            lr_e = _lr_at(epoch, epochs, lr, schedule)
            sums = {"loss": 0.0, "mse": 0.0, "kl": 0.0, "auxk": 0.0}
            n_batches = 0
            for batch in _batches(X, batch_size):
                losses = partial_fit(sae, batch, lr=lr_e, **step)
                for key in sums:
                    sums[key] += losses[key]
                n_batches += 1
                bar.update(batch.shape[0])
            rec = {key: val / max(n_batches, 1) for key, val in sums.items()}
            rec.update(epoch=epoch, lr=lr_e)
            sae.history_.append(rec)
            if callback is not None:
                callback(epoch, rec)
    finally:
        bar.close()
    return sae


def _batches(X: chunked.Rows, batch_size: int) -> Any:
    """Consecutive ``batch_size``-row batches of X's rows, whatever its chunks (the last may be short)."""
    carry: np.ndarray | None = None
    for _, block in X.blocks():
        if carry is not None:
            block = np.concatenate([carry, block])
        whole = block.shape[0] - block.shape[0] % batch_size
        for s in range(0, whole, batch_size):
            yield block[s : s + batch_size]
        carry = np.array(block[whole:]) if whole < block.shape[0] else None
    if carry is not None:
        yield carry
