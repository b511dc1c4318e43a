"""Tokenizer and chat template built from a GGUF file's own metadata.

The GPT-2 style byte-level BPE (``tokenizer.ggml.model == "gpt2"``) is rebuilt with the
``tokenizers`` library from ``tokenizer.ggml.tokens`` / ``merges`` / ``token_type``; control
tokens (type 3) become special tokens, user-defined ones (type 4) added tokens. The
pre-tokenizer follows llama.cpp's table for ``tokenizer.ggml.pre``.

Chat templates: ChatML (``<|im_start|>role\\n...<|im_end|>``, SmolLM2, Qwen, ...) is rendered
natively, including the template's default system prompt; any other template is rendered with
``jinja2`` when it is installed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .._optional import import_optional

__all__ = ["ChatTemplate", "build_tokenizer", "check_messages"]

_CONTROL, _USER_DEFINED = 3, 4
# llama.cpp pre-tokenizer types whose regex splits digits one by one before the GPT-2 regex.
_DIGIT_SPLIT_PRE = {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"}
_ROLES = ("system", "user", "assistant")
_JINJA_FEATURE = "this model's chat template is not ChatML; rendering it"


def build_tokenizer(meta: Mapping[str, Any]) -> Any:
    """A ``tokenizers.Tokenizer`` from GGUF tokenizer metadata (see ``load_gguf``).

    Raises
    ------
    ValueError
        For tokenizer models other than byte-level BPE (``gpt2``).
    """
    tk = import_optional("tokenizers", feature="the GGUF tokenizer")
    AddedToken, Tokenizer, decoders, models, pre_tokenizers = (
        tk.AddedToken,
        tk.Tokenizer,
        tk.decoders,
        tk.models,
        tk.pre_tokenizers,
    )

    if meta.get("model") != "gpt2":
        raise ValueError(f"tokenizer.ggml.model is {meta.get('model')!r}; only byte-level BPE ('gpt2') is supported")
    tokens = list(meta["tokens"])
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = [tuple(m.split(" ", 1)) for m in meta["merges"]]
    bpe = models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False)
    tok = Tokenizer(bpe)
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if meta.get("pre") in _DIGIT_SPLIT_PRE:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    types = list(meta.get("token_types") or [])
    special = [AddedToken(tokens[i], special=True, normalized=False) for i, t in enumerate(types) if t == _CONTROL]
    added = [AddedToken(tokens[i], special=False, normalized=False) for i, t in enumerate(types) if t == _USER_DEFINED]
    if special:
        tok.add_special_tokens(special)
    if added:
        tok.add_tokens(added)
    return tok


def check_messages(messages: Any) -> list[dict[str, str]]:
    """Validate a chat: a non-empty list of ``{"role", "content"}`` dicts with known roles."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise TypeError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise TypeError(f"messages[{i}] must be a dict with 'role' and 'content' keys")
        if m["role"] not in _ROLES:
            raise ValueError(f"messages[{i}]['role'] must be one of {', '.join(_ROLES)}, got {m['role']!r}")
        if not isinstance(m["content"], str):
            raise TypeError(f"messages[{i}]['content'] must be a str")
        out.append({"role": m["role"], "content": m["content"]})
    return out


class ChatTemplate:
    """Render a chat into the prompt string the model was fine-tuned on.

    Parameters
    ----------
    template : str or None
        ``tokenizer.chat_template`` from the model; None means plain ChatML.
    """

    _DEFAULT_SYS = re.compile(r"<\|im_start\|>system(?:\\n|\n)(.*?)<\|im_end\|>", re.S)

    def __init__(self, template: str | None) -> None:
        self.template = template
        self.chatml = template is None or ("<|im_start|>" in template and "<|im_end|>" in template)
        self.default_system: str | None = None
        if self.chatml and template:
            m = self._DEFAULT_SYS.search(template)
            if m and "messages[0]['role'] != 'system'" in template:
                self.default_system = m.group(1)
        elif not self.chatml:
            try:
                import_optional("jinja2.sandbox", feature=_JINJA_FEATURE)
            except ModuleNotFoundError as exc:  # ValueError, as before: the model file is unusable here
                raise ValueError(str(exc)) from exc

    def render(self, messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages`` (validated), ending with the assistant header."""
        msgs = check_messages(messages)
        if not self.chatml:
            sandbox = import_optional("jinja2.sandbox", feature=_JINJA_FEATURE)
            env = sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            return env.from_string(self.template).render(
                messages=msgs,
                add_generation_prompt=add_generation_prompt,
                bos_token="",
                eos_token="",
            )
        parts = []
        if self.default_system is not None and msgs[0]["role"] != "system":
            parts.append(f"<|im_start|>system\n{self.default_system}<|im_end|>\n")
        for m in msgs:
            parts.append(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n")
        if add_generation_prompt:
            parts.append("<|im_start|>assistant\n")
        return "".join(parts)
