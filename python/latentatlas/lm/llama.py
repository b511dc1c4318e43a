"""A LLaMA decoder forward pass in NumPy (float32) with a KV cache and batched greedy decoding.

Layout follows Hugging Face ``LlamaModel``: RMSNorm -> attention with half-split rotary
embeddings (``rotate_half``) and grouped-query heads -> residual -> RMSNorm -> SwiGLU -> residual.
All heads of a layer are one batched matmul (no per-head Python loop); q, k, v and gate, up
are fused into one GEMM each.

Hidden states follow ``transformers``' ``output_hidden_states[1:]``: entry ``l`` is the output
of decoder block ``l``; the last entry has the model's final RMSNorm applied (as in HF).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._validate import as_rng

__all__ = ["KVCache", "LayerWeights", "LlamaConfig", "LlamaModel", "LlamaWeights"]


@dataclass(frozen=True)
class LlamaConfig:
    """Shape and numerics of a LLaMA-family decoder."""

    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5
    vocab_size: int = 32000
    context_length: int = 2048


@dataclass
class LayerWeights:
    """One decoder block, matrices stored (in, out) so that ``x @ W`` is the projection.

    ``wqkv``: (hidden, (num_heads + 2 num_kv_heads) head_dim); ``wo``: (num_heads head_dim, hidden);
    ``w_gate_up``: (hidden, 2 intermediate); ``w_down``: (intermediate, hidden).
    """

    attn_norm: np.ndarray
    wqkv: np.ndarray
    wo: np.ndarray
    ffn_norm: np.ndarray
    w_gate_up: np.ndarray
    w_down: np.ndarray


@dataclass
class LlamaWeights:
    """All weights, float32. ``embed`` and ``lm_head``: (vocab, hidden) (may be the same array)."""

    embed: np.ndarray
    layers: list[LayerWeights]
    final_norm: np.ndarray
    lm_head: np.ndarray

    def check(self, cfg: LlamaConfig) -> None:
        """Raise ValueError when a shape disagrees with ``cfg``."""
        h, hd, i = cfg.hidden_size, cfg.head_dim, cfg.intermediate_size
        qkv = (cfg.num_heads + 2 * cfg.num_kv_heads) * hd
        expect = {
            "attn_norm": (h,),
            "wqkv": (h, qkv),
            "wo": (cfg.num_heads * hd, h),
            "ffn_norm": (h,),
            "w_gate_up": (h, 2 * i),
            "w_down": (i, h),
        }
        if len(self.layers) != cfg.num_layers:
            raise ValueError(f"expected {cfg.num_layers} layers, got {len(self.layers)}")
        for n, lw in enumerate(self.layers):
            for name, shape in expect.items():
                got = getattr(lw, name).shape
                if got != shape:
                    raise ValueError(f"layer {n} {name}: expected shape {shape}, got {got}")
        if self.embed.shape[1] != h or self.lm_head.shape[1] != h:
            raise ValueError("embedding / lm_head width must equal hidden_size")
        if cfg.num_heads % cfg.num_kv_heads:
            raise ValueError("num_heads must be a multiple of num_kv_heads")


class KVCache:
    """Per-layer key/value buffers of shape (batch, num_kv_heads, capacity, head_dim).

    ``valid`` (batch, length) marks real (non-padding) key slots; ``positions`` (batch,) is the
    next rotary position of each sequence.
    """

    def __init__(self, cfg: LlamaConfig, batch: int, capacity: int = 256) -> None:
        self.cfg = cfg
        self.batch = batch
        self.length = 0
        self._cap = max(int(capacity), 1)
        shape = (batch, cfg.num_kv_heads, self._cap, cfg.head_dim)
        self.k = [np.zeros(shape, np.float32) for _ in range(cfg.num_layers)]
        self.v = [np.zeros(shape, np.float32) for _ in range(cfg.num_layers)]
        self.valid = np.zeros((batch, 0), bool)
        self.positions = np.zeros(batch, np.int64)

    def copy_prefix(self, other: KVCache) -> None:
        """Start every sequence of this (empty) cache with the single sequence held by ``other``."""
        if self.length or other.batch != 1:
            raise ValueError("copy_prefix needs an empty cache and a batch-1 source")
        n = other.length
        self.reserve(n)
        for dst, src in ((self.k, other.k), (self.v, other.v)):
            for i in range(len(dst)):
                dst[i][:, :, :n] = src[i][:, :, :n]
        self.valid = np.repeat(other.valid, self.batch, axis=0)
        self.positions = np.repeat(other.positions, self.batch)
        self.length = n

    def reserve(self, extra: int) -> None:
        """Grow the buffers (doubling) so that ``extra`` more slots fit."""
        need = self.length + extra
        if need <= self._cap:
            return
        cap = max(need, 2 * self._cap)
        for store in (self.k, self.v):
            for i, buf in enumerate(store):
                new = np.zeros(buf.shape[:2] + (cap, buf.shape[3]), np.float32)
                new[:, :, : self.length] = buf[:, :, : self.length]
                store[i] = new
        self._cap = cap


def _rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    var = np.mean(np.square(x), axis=-1, keepdims=True)
    return (x / np.sqrt(var + eps)) * w


def _sample(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(p.shape[-1], p=row) for row in p], dtype=np.int64)


ResidualHook = Callable[[int, np.ndarray], np.ndarray]


def _apply_hook(hook: ResidualHook, layer: int, h: np.ndarray) -> np.ndarray:
    out = np.asarray(hook(layer, h))
    if out.shape != h.shape:
        raise ValueError(f"hook must return the residual stream's shape {h.shape} at layer {layer}, got {out.shape}")
    return out.astype(np.float32, copy=False)


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _extend(cache: KVCache, real: np.ndarray) -> tuple[np.ndarray, int, int, np.ndarray]:
    """Append T slots to ``cache`` for tokens ``real`` (batch, T; False marks padding).

    Returns the tokens' rotary positions, the slots ``start:stop`` they take, and the additive
    attention mask (batch, 1, T, stop): causal over slots, padding keys masked.
    """
    T = real.shape[1]
    # rotary positions count only real tokens (HF: position_ids from the attention mask)
    positions = cache.positions[:, None] + np.cumsum(real, axis=1) - 1
    positions = np.maximum(positions, 0)
    cache.positions = cache.positions + real.sum(axis=1)
    cache.reserve(T)
    start, stop = cache.length, cache.length + T
    cache.valid = np.concatenate([cache.valid, real], axis=1)
    cache.length = stop
    # additive mask (batch, 1, T, S): causal over slots and padding keys
    slot_q = np.arange(start, stop)[:, None]
    allowed = (np.arange(stop)[None, :] <= slot_q)[None] & cache.valid[:, None, :]
    # a padding query would see no key: let it see itself so softmax stays finite
    allowed[:, np.arange(T), np.arange(start, stop)] = True
    mask = np.where(allowed, np.float32(0.0), np.float32(-np.inf))[:, None]
    return positions, start, stop, mask


def _common_prefix(prompts: list[list[int]]) -> int:
    """Length of the prompts' longest common prefix, leaving at least one token of each."""
    npre = 0
    shortest = min(len(p) for p in prompts) - 1
    while npre < shortest and all(p[npre] == prompts[0][npre] for p in prompts):
        npre += 1
    return npre


def _left_pad(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """``seqs`` right-aligned in one (batch, longest) id array, and the mask of real (not padding) tokens."""
    plen = max(len(p) for p in seqs)
    ids = np.zeros((len(seqs), plen), np.int64)
    real = np.zeros((len(seqs), plen), bool)
    for b, p in enumerate(seqs):
        ids[b, plen - len(p) :] = p
        real[b, plen - len(p) :] = True
    return ids, real


class LlamaModel:
    """Inference-only LLaMA decoder.

    Parameters
    ----------
    config : LlamaConfig
    weights : LlamaWeights
        float32, HF rotary layout (see :func:`latentatlas.lm.gguf.unpermute_qk`).
    """

    def __init__(self, config: LlamaConfig, weights: LlamaWeights) -> None:
        weights.check(config)
        self.config = config
        self.weights = weights
        hd = config.head_dim
        # inverse frequencies in float64 then cast, as HF computes them in float32 from int64 arange
        self._inv_freq = 1.0 / (config.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))

    # ------------------------------------------------------------------ pieces
    def _rope(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cos, sin of shape (batch, T, 1, head_dim/2) for integer positions (batch, T)."""
        ang = positions[..., None].astype(np.float64) * self._inv_freq
        return (np.cos(ang).astype(np.float32)[:, :, None, :], np.sin(ang).astype(np.float32)[:, :, None, :])

    @staticmethod
    def _apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        ids: np.ndarray,
        cache: KVCache,
        *,
        pad_mask: np.ndarray | None = None,
        return_hidden: bool = True,
        hook: ResidualHook | None = None,
        all_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Run ``ids`` (batch, T) after what ``cache`` already holds; append their keys/values.

        Parameters
        ----------
        ids : ndarray of int, shape (batch, T)
        cache : KVCache
            Updated in place (``length`` grows by T).
        pad_mask : ndarray of bool, shape (batch, T), optional
            False marks padding tokens (left padding): they get no rotary position and
            no query attends to them.
        return_hidden : bool
            Also return the per-layer hidden states.
        hook : callable ``(layer, h) -> h``, optional
            Called on the residual stream after each block (0-based ``layer``) with ``h`` of
            shape (batch * T, hidden); what it returns replaces the stream (and is what the
            hidden states record). Steering adds a direction here, as llama.cpp applies a
            control vector; an SAE evaluation splices its reconstruction in.
        all_logits : bool
            Return logits at every position, shape (batch, T, vocab), not only the last.

        Returns
        -------
        logits : ndarray, shape (batch, vocab) or (batch, T, vocab)
            Next-token logits at the last position (every position with ``all_logits``).
        hidden : ndarray, shape (num_layers, batch, T, hidden) or None
        """
        cfg, W = self.config, self.weights
        ids = np.asarray(ids)
        if ids.ndim != 2 or ids.shape[0] != cache.batch:
            raise ValueError(f"ids must have shape (batch={cache.batch}, T), got {ids.shape}")
        B, T = ids.shape
        if T == 0:
            raise ValueError("ids must hold at least one token")
        if ids.min() < 0 or ids.max() >= cfg.vocab_size:
            raise ValueError(f"token ids must lie in [0, {cfg.vocab_size})")
        real = np.ones((B, T), bool) if pad_mask is None else np.asarray(pad_mask, bool)
        positions, start, stop, mask = _extend(cache, real)
        cos, sin = self._rope(positions)

        nh, nkv, hd = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        g = nh // nkv
        scale = np.float32(1.0 / np.sqrt(hd))
        # activations are kept 2-D (B*T, H): one GEMM per projection, not one per sequence
        h = W.embed[ids.reshape(-1)]  # (B*T, H)
        hidden = np.empty((cfg.num_layers, B, T, cfg.hidden_size), np.float32) if return_hidden else None
        for li, lw in enumerate(W.layers):
            x = _rms_norm(h, lw.attn_norm, cfg.rms_eps)
            qkv = x @ lw.wqkv
            q = qkv[:, : nh * hd].reshape(B, T, nh, hd)
            k = qkv[:, nh * hd : (nh + nkv) * hd].reshape(B, T, nkv, hd)
            v = qkv[:, (nh + nkv) * hd :].reshape(B, T, nkv, hd)
            q = self._apply_rope(q, cos, sin)
            k = self._apply_rope(k, cos, sin)
            cache.k[li][:, :, start:stop] = k.transpose(0, 2, 1, 3)
            cache.v[li][:, :, start:stop] = v.transpose(0, 2, 1, 3)
            keys = cache.k[li][:, :, :stop]  # (B, nkv, S, hd)
            vals = cache.v[li][:, :, :stop]
            # query heads j*g .. j*g+g-1 share kv head j (HF repeat_kv order)
            qg = (q * scale).reshape(B, T, nkv, g, hd).transpose(0, 2, 3, 1, 4).reshape(B, nkv, g * T, hd)
            scores = (qg @ keys.transpose(0, 1, 3, 2)).reshape(B, nkv, g, T, stop)
            scores += mask[:, :, None]
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = scores.reshape(B, nkv, g * T, stop) @ vals  # (B, nkv, g*T, hd)
            ctx = ctx.reshape(B, nkv, g, T, hd).transpose(0, 3, 1, 2, 4).reshape(B * T, nh * hd)
            h = h + ctx @ lw.wo
            x = _rms_norm(h, lw.ffn_norm, cfg.rms_eps)
            gu = x @ lw.w_gate_up
            inter = cfg.intermediate_size
            h = h + (_silu(gu[:, :inter]) * gu[:, inter:]) @ lw.w_down
            if hook is not None:
                h = _apply_hook(hook, li, h)
            if hidden is not None:
                hidden[li] = h.reshape(B, T, -1)
        h = h.reshape(B, T, -1)
        last = _rms_norm(h if all_logits else h[:, -1], W.final_norm, cfg.rms_eps)
        if hidden is not None:
            hidden[-1] = _rms_norm(h, W.final_norm, cfg.rms_eps)
        logits = last @ W.lm_head.T
        return logits, hidden

    def new_cache(self, batch: int = 1, capacity: int = 256) -> KVCache:
        """An empty :class:`KVCache` for ``batch`` sequences."""
        return KVCache(self.config, batch, capacity)

    def generate(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        *,
        eos_ids: tuple[int, ...] = (),
        use_cache: bool = True,
        return_hidden: bool = False,
        temperature: float = 0.0,
        rng: np.random.Generator | None = None,
        share_prefix: bool = True,
        hook: ResidualHook | None = None,
    ) -> tuple[list[list[int]], list[np.ndarray] | None]:
        """Greedy (or temperature-sampled) decoding of a batch of prompts, left-padded together.

        Parameters
        ----------
        prompts : list of list of int
            Token ids per sequence (non-empty).
        max_new_tokens : int
        eos_ids : tuple of int
            Generation of a sequence stops after it emits one of these (the eos is kept in the
            returned ids).
        use_cache : bool
            False recomputes the whole sequence each step (reference / benchmark path).
        return_hidden : bool
            Also return, per sequence, hidden states (num_layers, prompt_len + n_new, hidden)
            of the prompt and every generated token (the last generated token is run
            through the model once more so its states exist).
        temperature : float
            0 (default) is greedy; > 0 samples from softmax(logits / temperature) with ``rng``.
        rng : numpy Generator, optional
            Needed when ``temperature > 0``.
        share_prefix : bool
            Run the prompts' longest common prefix once (KV cache only).
        hook : callable ``(layer, h) -> h``, optional
            Residual-stream hook applied at every step (see :meth:`forward`).

        Returns
        -------
        new_ids : list of list of int
        hidden : list of ndarray or None
        """
        if not prompts or any(len(p) == 0 for p in prompts):
            raise ValueError("prompts must be a non-empty list of non-empty token lists")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if temperature > 0 and rng is None:
            rng = np.random.default_rng()
        B = len(prompts)
        gen = as_rng(rng, default=0)  # temperature sampling without an rng is still reproducible
        # the longest common prefix (e.g. a shared system prompt) is run once, batch 1, and its
        # keys/values copied to every sequence; at least one token per suffix stays
        npre = _common_prefix(prompts) if use_cache and B > 1 and share_prefix else 0
        longest = max(len(p) for p in prompts) + max_new_tokens
        if longest > self.config.context_length:
            raise ValueError(
                f"prompt plus max_new_tokens ({longest} tokens) exceeds the model's context length "
                f"({self.config.context_length})"
            )
        ids, real = _left_pad([list(p[npre:]) for p in prompts])
        out: list[list[int]] = [[] for _ in range(B)]
        done = np.zeros(B, bool)
        hid_chunks: list[np.ndarray] = []
        if use_cache:
            cache, logits = self._prefill(prompts, npre, ids, real, max_new_tokens, return_hidden, hook, hid_chunks)
        seq, seq_real = ids, real
        for step in range(max_new_tokens):
            if not use_cache:
                cache = self.new_cache(B, seq.shape[1])
                logits, _ = self.forward(seq, cache, pad_mask=seq_real, return_hidden=False, hook=hook)
            nxt = logits.argmax(axis=-1) if temperature == 0 else _sample(logits, temperature, gen)
            for b in range(B):
                if not done[b]:
                    out[b].append(int(nxt[b]))
                    done[b] = int(nxt[b]) in eos_ids
            if done.all() or step == max_new_tokens - 1:
                if use_cache and return_hidden:
                    # run the final token too so every generated token has hidden states
                    _, hid = self.forward(nxt[:, None], cache, return_hidden=True, hook=hook)
                    assert hid is not None  # return_hidden=True always gives them
                    hid_chunks.append(hid)
                break
            if use_cache:
                logits, hid = self.forward(nxt[:, None], cache, return_hidden=return_hidden, hook=hook)
                if hid is not None:
                    hid_chunks.append(hid)
            else:
                seq = np.concatenate([seq, nxt[:, None]], axis=1)
                seq_real = np.concatenate([seq_real, np.ones((B, 1), bool)], axis=1)
        if not return_hidden:
            return out, None
        if not use_cache:
            full = [np.concatenate([np.asarray(p), np.asarray(o, np.int64)]) for p, o in zip(prompts, out)]
            return out, [self.hidden_states(f, hook=hook) for f in full]
        allh = np.concatenate(hid_chunks, axis=2)
        res = []
        for b, p in enumerate(prompts):
            keep = np.flatnonzero(cache.valid[b])[: len(p) + len(out[b])]
            res.append(np.ascontiguousarray(allh[:, b, keep]))
        return out, res

    def _prefill(
        self,
        prompts: list[list[int]],
        npre: int,
        ids: np.ndarray,
        real: np.ndarray,
        max_new_tokens: int,
        return_hidden: bool,
        hook: ResidualHook | None,
        hid_chunks: list[np.ndarray],
    ) -> tuple[KVCache, np.ndarray]:
        """A cache for the whole generation, filled with the shared prefix (run once, batch 1, copied to
        every sequence) and the left-padded suffixes ``ids``; their hidden states go to ``hid_chunks``."""
        B, plen = ids.shape
        cache = self.new_cache(B, npre + plen + max_new_tokens + 1)
        if npre:
            pre = self.new_cache(1, npre)
            _, hid = self.forward(np.asarray([prompts[0][:npre]]), pre, return_hidden=return_hidden, hook=hook)
            cache.copy_prefix(pre)
            if hid is not None:
                hid_chunks.append(np.broadcast_to(hid, (hid.shape[0], B) + hid.shape[2:]))
        logits, hid = self.forward(ids, cache, pad_mask=real, return_hidden=return_hidden, hook=hook)
        if hid is not None:
            hid_chunks.append(hid)
        return cache, logits

    def hidden_states(self, ids: list[int] | np.ndarray, *, hook: ResidualHook | None = None) -> np.ndarray:
        """Per-layer hidden states (num_layers, T, hidden) of one sequence in a single pass."""
        ids = np.asarray(ids, np.int64)[None]
        _, hid = self.forward(ids, self.new_cache(1, ids.shape[1]), return_hidden=True, hook=hook)
        assert hid is not None  # return_hidden=True always gives them
        return hid[:, 0]
