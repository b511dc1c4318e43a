"""Sparse autoencoders on a language model's residual stream: activations in, CE loss recovered out.

The model is a LLaMA-family decoder run in NumPy (:class:`latentatlas.lm.llama.LlamaModel`, e.g.
the packaged SmolLM2-135M-Instruct through :class:`latentatlas.lm.backends.GGUFBackend`). Layer
``l`` is the output of decoder block ``l`` (0-based): Hugging Face's ``hidden_states[l + 1]``,
TransformerLens / SAELens's ``blocks.{l}.hook_resid_post`` (:func:`hook_name`).

* :func:`token_windows` packs texts into fixed-length windows as SAELens's activation store does:
  texts joined by the end-of-text token, cut into ``context_size - 1`` tokens, each window
  starting with that token as its BOS.
* :func:`collect_activations` runs the windows up to the chosen block only (the rest of the
  model is skipped) and returns the residual vectors.
* :func:`massive_positions` marks the "massive activations" (Sun et al. 2024): the BOS /
  end-of-text tokens and a few early positions carry residual norms 30–100× the typical token
  in SmolLM2 (measured at block 15: median 175, BOS 20,557). SAELens users exclude the BOS from
  training and from the splice; here every position whose norm exceeds ``factor`` × the median
  is excluded, and the cut-off travels with the SAE (``metadata["max_norm"]``).
* :func:`ce_recovered` splices the SAE's reconstruction into the forward pass at that layer
  (through the model's residual-stream hook) and reports CE clean / SAE / zero-ablated
  (/ mean-ablated), ``recovered = 1 - (CE_sae - CE_clean) / (CE_zero - CE_clean)`` and the
  KL divergence from the clean next-token distribution, averaged per token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from .._progress import progress_bar
from .._validate import check_float, check_int

__all__ = [
    "ce_recovered",
    "collect_activations",
    "fold_input_scale",
    "hook_name",
    "massive_positions",
    "splice_hook",
    "token_windows",
    "train_lm_sae",
]

#: The token that separates documents in SmolLM2's pretraining data; used as each window's BOS.
END_OF_TEXT = "<|endoftext|>"


class Reconstructor(Protocol):
    """What the splice needs of an SAE (TopKSAE, ThresholdSAE, or anything alike)."""

    d_in: int

    def reconstruct(self, X: Any) -> np.ndarray: ...


def hook_name(layer: int) -> str:
    """SAELens / TransformerLens name of the output of block ``layer``: ``blocks.{layer}.hook_resid_post``."""
    return f"blocks.{int(layer)}.hook_resid_post"


def _model(backend: Any) -> Any:
    """The :class:`LlamaModel` of a backend (``.model``) or the model itself."""
    model = getattr(backend, "model", backend)
    if not callable(getattr(model, "forward", None)) or not hasattr(model, "config"):
        raise TypeError(f"backend must be a GGUFBackend or a LlamaModel, got {type(backend).__name__}")
    return model


def _check_layer(model: Any, layer: Any) -> int:
    n = int(model.config.num_layers)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < n:
        raise ValueError(f"layer must be a block index in [0, num_layers={n}), got {layer!r}")
    return int(layer)


def _check_windows(model: Any, windows: Any) -> np.ndarray:
    w = np.asarray(windows)
    if w.ndim != 2 or w.shape[0] == 0 or w.shape[1] < 2:
        raise ValueError(f"windows must be a non-empty 2-D array (n_windows, context_size >= 2), got shape {w.shape}")
    if w.dtype.kind not in "iu":
        raise TypeError(f"windows must hold integer token ids, got dtype {w.dtype}")
    vocab = int(model.config.vocab_size)
    if w.min() < 0 or w.max() >= vocab:
        raise ValueError(f"windows: token ids must lie in [0, vocab_size={vocab}), got [{w.min()}, {w.max()}]")
    return w.astype(np.int64, copy=False)


def token_windows(
    backend: Any, texts: Sequence[str], context_size: int = 128, *, max_windows: int | None = None
) -> np.ndarray:
    """Pack ``texts`` into windows of ``context_size`` token ids, ``(n_windows, context_size)`` int64.

    The texts are tokenised (``backend.encode``), joined with the end-of-text token between them and
    cut into pieces of ``context_size - 1`` tokens; every window starts with the end-of-text token
    (SAELens's ``prepend_bos``). A last, incomplete piece is dropped. ``max_windows`` stops early.
    """
    context_size = check_int(context_size, "context_size", low=2)
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a sequence of strings")
    bos = backend.tokenizer.token_to_id(END_OF_TEXT)
    if bos is None:
        raise ValueError(f"the tokenizer has no {END_OF_TEXT!r} token to separate texts")
    step = context_size - 1
    need = None if max_windows is None else check_int(max_windows, "max_windows") * step
    parts: list[int] = []
    for t in texts:
        parts.append(int(bos))
        parts.extend(backend.encode(t))
        if need is not None and len(parts) >= need:
            break
    n = len(parts) // step if need is None else min(len(parts) // step, need // step)
    if n == 0:
        raise ValueError(f"texts hold {len(parts)} tokens, fewer than one window of {step} (+ BOS)")
    body = np.asarray(parts[: n * step], np.int64).reshape(n, step)
    return np.concatenate([np.full((n, 1), bos, np.int64), body], axis=1)


class _Stop(Exception):
    """Raised by the collecting hook: the blocks after the chosen layer are not needed."""

    def __init__(self, h: np.ndarray) -> None:
        self.h = h


def collect_activations(
    backend: Any, windows: Any, layer: int, *, batch_size: int = 32, progress: bool = True
) -> np.ndarray:
    """Residual stream after block ``layer`` at every position, ``(n_windows, context_size, hidden)`` float32.

    Only blocks ``0..layer`` run (the hook stops the forward pass there).
    """
    model = _model(backend)
    layer = _check_layer(model, layer)
    w = _check_windows(model, windows)
    batch_size = check_int(batch_size, "batch_size")
    out = np.empty(w.shape + (model.config.hidden_size,), np.float32)

    def stop(li: int, h: np.ndarray) -> np.ndarray:
        if li == layer:
            raise _Stop(h)
        return h

    bar = progress_bar(w.shape[0] * w.shape[1], "activations", progress)
    try:
        for a in range(0, w.shape[0], batch_size):
            ids = w[a : a + batch_size]
            try:
                model.forward(ids, model.new_cache(ids.shape[0], ids.shape[1]), return_hidden=False, hook=stop)
            except _Stop as s:
                out[a : a + ids.shape[0]] = s.h.reshape(ids.shape + (-1,))
            bar.update(ids.size)
    finally:
        bar.close()
    return out


def massive_positions(acts: np.ndarray, factor: float = 10.0) -> tuple[np.ndarray, float]:
    """Positions whose residual norm exceeds ``factor`` × the median norm, and that cut-off.

    Returns
    -------
    mask : ndarray of bool, ``acts.shape[:-1]`` (True = massive, excluded)
    max_norm : float
    """
    factor = check_float(factor, "factor", low=1.0)
    norms = np.linalg.norm(np.asarray(acts, np.float32), axis=-1)
    max_norm = float(factor * np.median(norms))
    return norms > max_norm, max_norm


def splice_hook(
    layer: int, replace: Callable[[np.ndarray], np.ndarray], *, max_norm: float | None = None
) -> tuple[Callable[[int, np.ndarray], np.ndarray], dict[str, np.ndarray]]:
    """A residual-stream hook that replaces the output of block ``layer`` by ``replace(rows)``.

    Rows whose norm exceeds ``max_norm`` (massive activations) stay as they are. Returns the hook
    and a dict whose ``"spliced"`` entry (bool, ``(batch * T,)``) records which rows were replaced
    on the last call.
    """
    state: dict[str, np.ndarray] = {}

    def hook(li: int, h: np.ndarray) -> np.ndarray:
        if li != layer:
            return h
        keep = np.ones(h.shape[0], bool) if max_norm is None else np.linalg.norm(h, axis=1) <= max_norm
        state["spliced"] = keep
        out = h.copy()
        if keep.any():
            out[keep] = replace(h[keep])
        return out

    return hook, state


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of float32 logits (float32 out; the normaliser summed in float64)."""
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True, dtype=np.float64)).astype(np.float32)


def ce_recovered(
    backend: Any,
    sae: Reconstructor,
    windows: Any,
    layer: int,
    *,
    max_norm: float | None = None,
    mean: Any = None,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, float]:
    """Next-token cross-entropy with the SAE's reconstruction spliced in after block ``layer``.

    Four forward passes per batch (three without ``mean``), all positions' logits: clean (no hook);
    SAE (the stream at ``layer`` replaced by ``sae.reconstruct`` of it); zero ablation (replaced by
    zeros); mean ablation (replaced by ``mean``, e.g. the training activations' mean). Rows with
    norm above ``max_norm`` are left as they are in every pass. Scored are the predictions made at
    spliced positions that have a next token in the window.

    Parameters
    ----------
    backend : GGUFBackend or LlamaModel
    sae : object with ``d_in`` (the model's hidden size) and ``reconstruct(X (N, d_in)) -> (N, d_in)``
    windows : int array (n_windows, context_size), e.g. from :func:`token_windows`
    layer : int, the block whose output is replaced (0-based)
    max_norm : float, optional; positions above it are not spliced (see :func:`massive_positions`)
    mean : array (d_in,), optional; adds the mean-ablation pass

    Returns
    -------
    dict with ``ce_clean``, ``ce_sae``, ``ce_zero``, ``recovered`` (= 1 - (ce_sae - ce_clean) /
    (ce_zero - ce_clean)), ``kl_sae`` and ``kl_zero`` (mean per token of KL(clean ‖ spliced), nats),
    ``n_tokens`` (scored predictions), ``spliced_fraction`` (of all positions); with ``mean`` also
    ``ce_mean``, ``recovered_vs_mean`` and ``kl_mean``.
    """
    model = _model(backend)
    layer = _check_layer(model, layer)
    hidden = int(model.config.hidden_size)
    d_in = getattr(sae, "d_in", None)
    if not callable(getattr(sae, "reconstruct", None)) or d_in is None:
        raise TypeError(f"sae must have d_in and reconstruct(X), got {type(sae).__name__}")
    if int(d_in) != hidden:
        raise ValueError(f"sae.d_in = {d_in} does not match the model's hidden size {hidden}")
    w = _check_windows(model, windows)
    batch_size = check_int(batch_size, "batch_size")
    if max_norm is not None:
        max_norm = check_float(max_norm, "max_norm", low=0.0, low_open=True)
    replace = _replacements(sae, mean, hidden)
    ce = dict.fromkeys(["clean", *replace], 0.0)
    kl = dict.fromkeys(replace, 0.0)
    n_scored, n_spliced = 0, 0
    bar = progress_bar(w.shape[0], "CE recovered", progress)
    try:
        for a in range(0, w.shape[0], batch_size):
            ids = w[a : a + batch_size]
            B, T = ids.shape
            logits, _ = model.forward(ids, model.new_cache(B, T), return_hidden=False, all_logits=True)
            spliced = None
            for name, fn in replace.items():
                hook, state = splice_hook(layer, fn, max_norm=max_norm)
                out, _ = model.forward(ids, model.new_cache(B, T), return_hidden=False, hook=hook, all_logits=True)
                if spliced is None:  # the same rows in every pass: they are the clean stream's
                    spliced = state["spliced"].reshape(B, T)
                    # scored: predictions of token t + 1 made at a spliced position t
                    rows, cols = np.nonzero(spliced[:, :-1])
                    pick = (np.arange(len(rows)), ids[rows, cols + 1])
                    lp_clean = _log_softmax(logits[rows, cols])
                    p_clean = np.exp(lp_clean)
                    ce["clean"] -= float(lp_clean[pick].sum(dtype=np.float64))
                    del logits
                lp = _log_softmax(out[rows, cols])
                del out
                ce[name] -= float(lp[pick].sum(dtype=np.float64))
                kl[name] += float((p_clean * (lp_clean - lp)).sum(dtype=np.float64))
            assert spliced is not None
            n_spliced += int(spliced.sum())
            n_scored += len(rows)
            bar.update(B)
    finally:
        bar.close()
    if n_scored == 0:
        raise ValueError("no position was spliced and scored (max_norm below every position's norm?)")
    return _ce_summary(ce, kl, n_scored, n_spliced / w.size)


def _replacements(sae: Reconstructor, mean: Any, hidden: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """What each spliced pass puts in place of the stream: the SAE's reconstruction, zeros, (``mean``) the mean."""
    replace: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "sae": lambda X: np.asarray(sae.reconstruct(X), np.float32),
        "zero": np.zeros_like,
    }
    if mean is not None:
        mu = np.asarray(mean, np.float32)
        if mu.shape != (hidden,) or not np.isfinite(mu).all():
            raise ValueError(f"mean must be a finite vector of the hidden size ({hidden},), got shape {mu.shape}")
        replace["mean"] = lambda X: np.broadcast_to(mu, X.shape)
    return replace


def _ce_summary(ce: dict[str, float], kl: dict[str, float], n_scored: int, spliced_fraction: float) -> dict[str, float]:
    """Summed CE and KL per pass as means per scored token, and the CE loss recovered against zero (and mean)."""
    res: dict[str, float] = {f"ce_{k}": v / n_scored for k, v in ce.items()}
    res.update({f"kl_{k}": v / n_scored for k, v in kl.items()})
    gap = res["ce_zero"] - res["ce_clean"]
    res["recovered"] = 1.0 - (res["ce_sae"] - res["ce_clean"]) / gap if gap else float("nan")
    if "ce_mean" in res:
        gap_m = res["ce_mean"] - res["ce_clean"]
        res["recovered_vs_mean"] = 1.0 - (res["ce_sae"] - res["ce_clean"]) / gap_m if gap_m else float("nan")
    res["n_tokens"] = float(n_scored)
    res["spliced_fraction"] = spliced_fraction
    return res


def fold_input_scale(sae: Any, scale: float) -> Any:
    """A copy of a TopK ``sae`` trained on ``X / scale`` that reads raw ``X``: ``reconstruct(X) =
    scale · sae.reconstruct(X / scale)``. TopK and ReLU commute with a positive scale, so only the
    biases change (× ``scale``); the latents' values grow by ``scale`` (SAELens's
    ``fold_activation_norm_scaling_factor``)."""
    from .model import TopKSAE

    scale = check_float(scale, "scale", low=0.0, low_open=True)
    out = TopKSAE.from_arrays(
        sae.W_enc, sae.b_enc * scale, sae.W_dec, sae.b_dec * scale, sae.k,
        subtract_decoder_bias=sae.subtract_decoder_bias,
    )  # fmt: skip
    out.history_ = list(sae.history_)
    out.metadata = dict(sae.metadata)
    return out


def _cached_activations(
    backend: Any, windows: np.ndarray, layer: int, file: Any, key: dict[str, str], progress: bool
) -> np.ndarray:
    """:func:`collect_activations`, kept in the safetensors ``file`` (reused when ``key`` and the
    windows match)."""
    from .._io import atomic_write_bytes, read_safetensors
    from .formats import safetensors_bytes

    if file.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(file), framework="numpy") as fh:
                same = fh.metadata() == key
            if same:
                t = read_safetensors(file)
                if "windows" in t and np.array_equal(t["windows"], windows):
                    return t["activations"]
        except (OSError, ValueError, KeyError):
            pass  # unreadable or stale: collect again
    acts = collect_activations(backend, windows, layer, progress=progress)
    atomic_write_bytes(file, safetensors_bytes({"windows": windows, "activations": acts}, key))
    return acts


def train_lm_sae(
    backend: Any,
    texts: Sequence[str],
    out: Any,
    *,
    layer: int = 15,
    train_tokens: int = 32768,
    eval_tokens: int = 2048,
    context_size: int = 128,
    n_latents: int = 4608,
    k: int = 32,
    epochs: int | None = None,
    batch_size: int = 256,
    lr: float = 3e-3,
    auxk: int | None = 256,
    outlier_factor: float = 10.0,
    dataset: str = "",
    seed: int = 0,
    progress: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Train a TopK SAE on the residual stream after block ``layer`` and evaluate it on held-out text.

    The texts are shuffled (``seed``); the first fifth is the held-out pool. Activations of the
    training and evaluation windows are cached in ``out/activations-*.safetensors``. Massive
    activations (:func:`massive_positions`) are left out of training and of the splice. The SAE
    trains on activations scaled to mean norm 1 (the scale the library's defaults are tuned for),
    then the scale is folded into the biases so that it reads raw residual vectors (as SAELens's
    ``fold_activation_norm_scaling_factor``). Writes the SAE in SAELens layout into ``out`` and
    ``out/metrics.json``; returns ``(sae, metrics)``.
    """
    # Long: one pipeline, timed step by step (tokenize, activations, train, evaluate) into its metrics
    import json
    import time
    from pathlib import Path

    from .._io import atomic_write_text
    from .model import TopKSAE

    t0 = time.perf_counter()
    model = _model(backend)
    layer = _check_layer(model, layer)
    train_tokens = check_int(train_tokens, "train_tokens")
    eval_tokens = check_int(eval_tokens, "eval_tokens")
    context_size = check_int(context_size, "context_size", low=2)
    outlier_factor = check_float(outlier_factor, "outlier_factor", low=1.0)
    # checked before the minutes of forward passes: n_latents, k
    sae = TopKSAE(model.config.hidden_size, n_latents, k, seed=seed)
    w_train, w_eval = _split_windows(backend, texts, context_size, train_tokens, eval_tokens, seed)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    name = str(getattr(backend, "model_name", "model"))
    key = {"model": name, "layer": str(layer), "context_size": str(context_size), "seed": str(seed)}
    t1 = time.perf_counter()
    acts = _cached_activations(backend, w_train, layer, outdir / "activations-train.safetensors", key, progress)
    acts_eval = _cached_activations(backend, w_eval, layer, outdir / "activations-eval.safetensors", key, progress)
    t2 = time.perf_counter()
    massive, max_norm = massive_positions(acts, outlier_factor)
    X = acts[~massive]
    X_eval = acts_eval[np.linalg.norm(acts_eval, axis=-1) <= max_norm]
    scale = float(np.linalg.norm(X, axis=1).mean())
    sae.fit(X / scale, epochs=epochs, batch_size=batch_size, lr=lr, auxk=auxk, seed=seed, progress=progress)
    sae = fold_input_scale(sae, scale)
    t3 = time.perf_counter()
    train_health = sae.health(X)
    health = sae.health(X_eval)
    ce = ce_recovered(backend, sae, w_eval, layer, max_norm=max_norm, mean=X.mean(axis=0), progress=progress)
    t4 = time.perf_counter()
    first = np.linalg.norm(acts[:, 0], axis=-1)
    metrics: dict[str, Any] = {
        "model": name,
        "layer": layer,
        "hook_name": hook_name(layer),
        "context_size": context_size,
        "n_latents": n_latents,
        "k": k,
        "train_windows": int(w_train.shape[0]),
        "train_tokens": int(X.shape[0]),
        "eval_windows": int(w_eval.shape[0]),
        "eval_tokens": int(X_eval.shape[0]),
        "massive_fraction": float(massive.mean()),
        "max_norm": max_norm,
        "median_norm": max_norm / outlier_factor,
        "bos_norm": float(np.median(first)),
        "fve": health["fve"],
        "l0": health["l0"],
        "train_fve": train_health["fve"],
        "dead_fraction": train_health["dead_fraction"],
        **ce,
        "seconds": {
            "tokenize": t1 - t0,
            "activations": t2 - t1,
            "train": t3 - t2,
            "evaluate": t4 - t3,
            "total": t4 - t0,
        },
    }
    sae.save(outdir, format="saelens", metadata=_saelens_metadata(metrics, int(w_train[0, 0]), dataset))
    atomic_write_text(outdir / "metrics.json", json.dumps(metrics, indent=2))
    return sae, metrics


def _split_windows(
    backend: Any, texts: Sequence[str], context_size: int, train_tokens: int, eval_tokens: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out token windows: the texts shuffled (``seed``), the first fifth held out."""
    order = np.random.default_rng(seed).permutation(len(texts))
    shuffled = [texts[i] for i in order]
    held = len(shuffled) // 5
    per = context_size - 1
    w_eval = token_windows(backend, shuffled[:held], context_size, max_windows=-(-eval_tokens // per))
    w_train = token_windows(backend, shuffled[held:], context_size, max_windows=-(-train_tokens // per))
    return w_train, w_eval


def _saelens_metadata(metrics: dict[str, Any], bos: int, dataset: str) -> dict[str, Any]:
    """SAELens's ``cfg.json`` fields of an SAE trained by :func:`train_lm_sae` (``bos``: the excluded token)."""
    return {
        "model_name": metrics["model"],
        "hook_name": metrics["hook_name"],
        "hook_layer": metrics["layer"],
        "hook_head_index": None,
        "context_size": metrics["context_size"],
        "prepend_bos": True,
        "exclude_special_tokens": [bos],
        "dataset_path": dataset,
        "max_norm": metrics["max_norm"],
        "training_tokens": metrics["train_tokens"],
    }
