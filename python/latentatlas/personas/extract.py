"""Persona vectors from a real language model: extraction, attribute recovery, the demo store.

:func:`extract_persona_vectors` asks each persona (a system prompt) every question through a chat
backend (:mod:`latentatlas.lm.backends`), averages the hidden states over the tokens picked by
the mask strategy, then over questions, and saves one ``(num_layers, hidden_size)`` vector per
persona into a :class:`~latentatlas.personas.store.PersonaVectorStore` with sample ids
``"<persona>:<question>"``.

The backends (:class:`~latentatlas.lm.backends.GGUFBackend`,
:class:`~latentatlas.lm.backends.TransformersBackend`) live in :mod:`latentatlas.lm.backends`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import datasets
from .._io import atomic_write_text
from .._progress import progress_bar
from .._validate import check_int
from ..lm.backends import ChatBackend, GGUFBackend, check_mask_strategy, check_max_new_tokens
from ..lm.gguf import default_gguf_path
from .store import PersonaVectorStore

__all__ = [
    "DEFAULT_GGUF_MODEL_NAME",
    "ExtractionResult",
    "attribute_recovery",
    "demo_store",
    "extract_persona_vectors",
]

DEFAULT_GGUF_MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1"
_DEMO_VARIANT = "persona_prompts"
_DEMO_MAX_NEW_TOKENS = 32
_DEMO_MARKER = "demo_extract.json"


# ------------------------------------------------------------------------------------ extraction


@dataclass
class ExtractionResult:
    """What :func:`extract_persona_vectors` produced.

    Attributes
    ----------
    store : PersonaVectorStore
    variant : str
    persona_ids : list of str
    vectors : ndarray, shape (n_personas, num_layers, hidden_size), float32
    answers : dict
        ``{sample_id: answer text}`` ("" for prompt-only strategies).
    """

    store: Any
    variant: str
    persona_ids: list[str]
    vectors: np.ndarray
    answers: dict[str, str] = field(default_factory=dict)


def _norm_personas(personas: Any) -> list[dict[str, str]]:
    if isinstance(personas, Mapping) and "personas" in personas:
        personas = personas["personas"]
    if isinstance(personas, (str, bytes)) or not isinstance(personas, Iterable):
        raise TypeError("personas must be a list of dicts with 'id' and 'system_prompt'")
    out = []
    for i, p in enumerate(personas):
        if not isinstance(p, Mapping) or "id" not in p or "system_prompt" not in p:
            raise TypeError(f"personas[{i}] must be a dict with 'id' and 'system_prompt' keys")
        if not isinstance(p["system_prompt"], str) or not p["system_prompt"].strip():
            raise ValueError(f"personas[{i}]['system_prompt'] must be a non-empty string")
        out.append({"id": str(p["id"]), "name": str(p.get("name", p["id"])), "system_prompt": p["system_prompt"]})
    if not out:
        raise ValueError("personas must not be empty")
    ids = [p["id"] for p in out]
    if len(set(ids)) != len(ids):
        raise ValueError("persona ids must be unique")
    return out


def _norm_questions(questions: Any) -> list[dict[str, str]]:
    if isinstance(questions, (str, bytes)) or not isinstance(questions, Iterable):
        raise TypeError("questions must be a list of strings or of dicts with 'id' and 'text'")
    out = []
    for j, q in enumerate(questions):
        if isinstance(q, str):
            q = {"id": f"q{j + 1:02d}", "text": q}
        if not isinstance(q, Mapping) or "text" not in q or not isinstance(q["text"], str) or not q["text"].strip():
            raise TypeError(f"questions[{j}] must be a non-empty string or a dict with a non-empty 'text'")
        out.append({"id": str(q.get("id", f"q{j + 1:02d}")), "text": q["text"]})
    if not out:
        raise ValueError("questions must not be empty")
    if len({q["id"] for q in out}) != len(out):
        raise ValueError("question ids must be unique")
    return out


def extract_persona_vectors(
    backend: ChatBackend,
    personas: Any,
    questions: Any,
    *,
    mask_strategy: str = "answer_mean",
    max_new_tokens: int = 32,
    seed: int = 0,
    store: Any = None,
    variant: str = "default",
    root: str | Path | None = None,
    batch_size: int = 16,
    skip_existing: bool = False,
    progress: bool = True,
) -> ExtractionResult:
    """Per-layer persona vectors: mean hidden state over masked tokens, then over questions.

    Parameters
    ----------
    backend : GGUFBackend or TransformersBackend
    personas : list of dict
        ``{"id", "system_prompt"}`` and optionally ``"name"`` (extra keys are ignored);
        ``datasets.persona_prompts()`` works as is.
    questions : list of str or of dict ``{"id", "text"}``
        Asked as the user turn after each persona's system prompt.
    mask_strategy : {"answer_mean", "prompt_mean", "prompt_last"}
        Tokens averaged per chat: the generated answer, the whole chat-formatted prompt, or the
        last prompt token (the one the answer is generated from). Prompt strategies need no
        generation.
    max_new_tokens : int
        Answer length cap (``answer_mean``).
    seed : int
        Decoding is greedy and deterministic; the seed is passed to backends that sample.
    store : PersonaVectorStore, optional
        Default: ``PersonaVectorStore(backend.model_name, root, mask_strategy)``. Its
        mask strategy must equal ``mask_strategy``.
    variant : str
        Store variant (prompt set) name.
    batch_size : int
        Questions decoded together (left-padded batch; same tokens as one at a time).
    skip_existing : bool
        Keep personas already saved in ``variant`` (resume an interrupted run).
    progress : bool
        A bar over personas (:func:`latentatlas._progress.progress_bar`).

    Returns
    -------
    ExtractionResult
        ``vectors`` has shape (n_personas, num_layers, hidden_size); each persona is saved with
        sample ids ``"<persona_id>:<question_id>"`` of the chats it averages.

    Raises
    ------
    ValueError
        Unknown mask strategy, empty persona or question lists, bad ``max_new_tokens``, a store
        with another mask strategy, or a persona whose every answer was empty.
    """
    check_mask_strategy(mask_strategy)
    plist = _norm_personas(personas)
    qlist = _norm_questions(questions)
    n_new = check_max_new_tokens(max_new_tokens) if mask_strategy == "answer_mean" else 0
    batch_size = check_int(batch_size, "batch_size")
    if store is None:
        store = PersonaVectorStore(backend.model_name, root, mask_strategy, variants=None, array_type="numpy")
    elif getattr(store, "mask_strategy", mask_strategy) != mask_strategy:
        raise ValueError(
            f"store has mask_strategy {store.mask_strategy!r} but mask_strategy={mask_strategy!r} was requested"
        )
    done: set[str] = set()
    if skip_existing:
        mpath = Path(store.variant_dir(variant)) / "manifest.json"
        if mpath.is_file():
            done = set(json.loads(mpath.read_text())["personas"])

    ids_out, vecs, answers = [], [], {}
    for pi, p in enumerate(progress_bar(plist, f"persona vectors ({mask_strategy})", progress, leave=True)):
        if p["id"] in done:
            ids_out.append(p["id"])
            vecs.append(np.asarray(store.load_numpy(variant, p["id"])))
            continue
        chats = [
            [{"role": "system", "content": p["system_prompt"]}, {"role": "user", "content": q["text"]}] for q in qlist
        ]
        total = np.zeros((backend.num_layers, backend.hidden_size))
        used: list[str] = []
        for s in range(0, len(chats), batch_size):
            hs = backend.generate_hidden(chats[s : s + batch_size], n_new, seed=seed + pi)
            for q, h in zip(qlist[s : s + batch_size], hs):
                sid = f"{p['id']}:{q['id']}"
                answers[sid] = h.answer
                if mask_strategy == "answer_mean" and not h.answer_mask.any():
                    warnings.warn(f"empty answer for {sid}: left out of the average", stacklevel=2)
                    continue
                total += h.pooled(mask_strategy)
                used.append(sid)
        if not used:
            raise ValueError(f"persona {p['id']!r}: every answer was empty; nothing to average")
        vec = (total / len(used)).astype(np.float32)
        store.save(variant, p["id"], p["name"], vec, used)
        ids_out.append(p["id"])
        vecs.append(vec)
    return ExtractionResult(
        store=store, variant=variant, persona_ids=ids_out, vectors=np.stack(vecs).astype(np.float32), answers=answers
    )


# ------------------------------------------------------------------------- signal measurement


def attribute_recovery(
    vectors: np.ndarray,
    labels: Sequence[Any],
    *,
    n_shuffles: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """How well k-means on layer-mean persona vectors recovers an attribute, against chance.

    Each persona's vector is averaged over layers, the rows are centred and L2-normalised (the
    analysis defaults), and k-means (k = number of attribute values, seed ``seed``) is scored by
    the adjusted Rand index against the labels. Chance is the ARI of the same clustering against
    ``n_shuffles`` random permutations of the labels.

    Parameters
    ----------
    vectors : ndarray, shape (n_personas, num_layers, hidden_size)
    labels : sequence, length n_personas
    n_shuffles : int
    seed : int

    Returns
    -------
    dict
        ``ari``, ``chance_mean``, ``chance_std``, ``p_value`` (fraction of shuffles with ARI >=
        the observed one, with the +1 correction), ``k``.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 3:
        raise ValueError(f"vectors must have shape (n_personas, num_layers, hidden_size), got {v.shape}")
    lab = np.asarray([str(x) for x in labels])
    if len(lab) != v.shape[0]:
        raise ValueError(f"labels must have one entry per persona ({v.shape[0]}), got {len(lab)}")
    k = len(set(lab.tolist()))
    if k < 2 or k >= len(lab):
        raise ValueError(f"labels must have between 2 and n_personas-1 distinct values, got {k}")
    x = v.mean(axis=1)
    x = x - x.mean(axis=0)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    pred = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    ari = float(adjusted_rand_score(lab, pred))
    rng = np.random.default_rng(seed)
    null = np.array([adjusted_rand_score(rng.permutation(lab), pred) for _ in range(n_shuffles)])
    return {
        "ari": ari,
        "chance_mean": float(null.mean()),
        "chance_std": float(null.std()),
        "p_value": float((1 + np.sum(null >= ari)) / (1 + n_shuffles)),
        "k": float(k),
    }


# --------------------------------------------------------------------------------- demo store


def _demo_key(path: Path, personas: list[dict], questions: list[dict], max_new_tokens: int) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([personas, questions, max_new_tokens], sort_keys=True).encode())
    h.update(f"{path.name}:{path.stat().st_size}".encode())
    return h.hexdigest()[:16]


def demo_store(cache_dir: Path, *, verbose: bool = True) -> tuple[Any, str]:
    """Persona vectors of ``datasets.persona_prompts()`` from the packaged SmolLM2, cached on disk.

    The first call runs :func:`extract_persona_vectors` (``answer_mean``, 32 new tokens, all 24
    personas x 10 questions; a few minutes on 2 cores) into a store rooted at ``cache_dir``;
    later calls reuse it when it is complete and was built from the same prompts and model
    file (an interrupted build resumes). The generated answers are kept in
    ``cache_dir/demo_answers.json``.

    Returns
    -------
    (PersonaVectorStore, variant)
    """
    cache_dir = Path(cache_dir)
    prompts = datasets.persona_prompts()
    personas = _norm_personas(prompts.personas)
    questions = _norm_questions(prompts.questions)
    path = default_gguf_path()
    key = _demo_key(path, personas, questions, _DEMO_MAX_NEW_TOKENS)
    store = PersonaVectorStore(DEFAULT_GGUF_MODEL_NAME, cache_dir, "answer_mean", variants=None, array_type="numpy")
    marker = cache_dir / _DEMO_MARKER
    manifest = Path(store.variant_dir(_DEMO_VARIANT)) / "manifest.json"
    meta = json.loads(marker.read_text()) if marker.is_file() else {}
    if meta.get("key") == key and meta.get("complete") and manifest.is_file():
        have = set(json.loads(manifest.read_text())["personas"])
        if have >= {p["id"] for p in personas}:
            if verbose:
                print(f"personas: reusing cached SmolLM2 persona vectors in {store.base_dir}")
            return store, _DEMO_VARIANT
    resume = meta.get("key") == key
    if not resume and manifest.is_file():
        shutil.rmtree(store.variant_dir(_DEMO_VARIANT))
    cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, json.dumps({"key": key, "complete": False}))
    if verbose:
        print(f"personas: extracting {len(personas)} persona vectors with {path.name} (NumPy, cached afterwards)")
    backend = GGUFBackend(path, model_name=DEFAULT_GGUF_MODEL_NAME)
    res = extract_persona_vectors(
        backend,
        personas,
        questions,
        mask_strategy="answer_mean",
        max_new_tokens=_DEMO_MAX_NEW_TOKENS,
        store=store,
        variant=_DEMO_VARIANT,
        skip_existing=resume,
        progress=verbose,
    )
    answers_path = cache_dir / "demo_answers.json"
    old = json.loads(answers_path.read_text()) if resume and answers_path.is_file() else {}
    atomic_write_text(answers_path, json.dumps({**old, **res.answers}, indent=1))
    atomic_write_text(marker, json.dumps({"key": key, "complete": True}))
    return store, _DEMO_VARIANT
