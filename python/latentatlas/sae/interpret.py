"""Interpreting SAE latents: top-activating documents, tf-idf keywords, frequency regions.

The paper explains each latent with N2G and an LLM over its top-activating documents. Here a
latent's summary is the tf-idf contrast of its top documents against the whole corpus
(scikit-learn, no language model); pass ``explainer=`` (any ``callable(list[str]) -> str``, e.g.
a call to an LLM) to add a free-text explanation from the same documents.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validate import check_int
from .model import TopKSAE, latent_frequencies

__all__ = ["LatentExplainer", "LatentSummary", "TfidfKeywords", "explain_latent", "frequency_regions"]


@dataclass
class LatentSummary:
    """One latent: its frequency, top documents ``(row, activation, text)``, keywords, explanation."""

    latent: int
    frequency: float
    documents: list[tuple[int, float, str]] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    explanation: str | None = None


def frequency_regions(freq: np.ndarray, *, head: float = 0.05, tail: float = 0.5) -> dict[str, np.ndarray]:
    """Split the live latents by frequency rank into head / torso / tail (the paper's Zipf regions).

    Parameters
    ----------
    freq : (n_latents,) activation frequencies (e.g. :meth:`TopKSAE.latent_frequencies`)
    head : fraction of live latents, most frequent first, that form the head
    tail : fraction of live latents, least frequent last, that form the tail

    Returns
    -------
    dict ``head``, ``torso``, ``tail``, ``dead`` of latent ids (head/torso/tail by frequency desc)
    """
    f = np.asarray(freq, dtype=np.float64)
    if f.ndim != 1:
        raise ValueError(f"freq must be 1-D (n_latents,), got shape {f.shape}")
    if not (0 <= head <= 1 and 0 <= tail <= 1 and head + tail <= 1):
        raise ValueError(f"head and tail must be fractions with head + tail <= 1, got {head}, {tail}")
    live = np.flatnonzero(f > 0)
    order = live[np.lexsort((live, -f[live]))]
    nh = int(round(head * order.size))
    nt = int(round(tail * order.size))
    return {
        "head": order[:nh],
        "torso": order[nh : order.size - nt],
        "tail": order[order.size - nt :],
        "dead": np.flatnonzero(f == 0),
    }


class TfidfKeywords:
    """Keywords of a set of documents: the terms whose mean tf-idf over those rows most exceeds their
    mean over the whole corpus (scikit-learn's ``TfidfVectorizer``, English stop words dropped).

    Parameters
    ----------
    texts : N strings (the corpus)
    n_keywords : default number of keywords per call
    """

    def __init__(self, texts: Sequence[str], *, n_keywords: int = 8) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a sequence of strings")
        self.n_keywords = check_int(n_keywords, "n_keywords")
        pattern = r"(?u)\b[a-zA-Z][a-zA-Z]+\b"
        try:
            self._vec = TfidfVectorizer(
                stop_words="english", min_df=2, max_df=0.5, sublinear_tf=True, token_pattern=pattern
            )
            self._tfidf = self._vec.fit_transform(texts)
        except ValueError:  # a tiny or uniform corpus: keep every term
            self._vec = TfidfVectorizer(sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
            self._tfidf = self._vec.fit_transform([t if t.strip() else "_" for t in texts])
        self._terms = np.asarray(self._vec.get_feature_names_out())
        self._mean = np.asarray(self._tfidf.mean(axis=0)).ravel()

    def __call__(self, rows: Sequence[int], n: int | None = None) -> list[str]:
        """Up to ``n`` terms (best first) whose mean tf-idf over ``rows`` exceeds their corpus mean."""
        rows = list(rows)
        if not rows:
            return []
        score = np.asarray(self._tfidf[rows].mean(axis=0)).ravel() - self._mean
        n = self.n_keywords if n is None else n
        top = np.argsort(-score, kind="stable")[:n]
        return [str(t) for t in self._terms[top[score[top] > 0]]]


class LatentExplainer:
    """Top documents and keyword summaries of the latents of ``sae`` over a text corpus.

    Parameters
    ----------
    sae : TopKSAE
    D : array (N, d) embeddings of ``texts``
    texts : N strings
    explainer : optional ``callable(list[str]) -> str`` given a latent's top documents
    n_top : documents kept per latent; n_keywords : keywords per latent
    """

    def __init__(
        self,
        sae: TopKSAE,
        D: Any,
        texts: Sequence[str],
        *,
        explainer: Callable[[list[str]], str] | None = None,
        n_top: int = 10,
        n_keywords: int = 8,
        threads: int | None = None,
    ) -> None:
        D = sae.check_input(D, "D")
        if len(texts) != D.shape[0]:
            raise ValueError(f"texts must have one entry per row of D ({D.shape[0]}), got {len(texts)}")
        if explainer is not None and not callable(explainer):
            raise TypeError("explainer must be a callable(list[str]) -> str or None")
        self.sae, self.texts, self.explainer = sae, list(texts), explainer
        self.n_top, self.n_keywords = check_int(n_top, "n_top"), check_int(n_keywords, "n_keywords")
        self.values_, self.indices_ = sae.encode(D, threads=threads)
        active = self.values_ > 0
        self.frequencies_ = latent_frequencies((self.values_, self.indices_), sae.n_latents)
        self._keywords = TfidfKeywords(self.texts, n_keywords=self.n_keywords)
        # postings latent -> rows, sorted by activation (desc), for top documents
        rows = np.repeat(np.arange(D.shape[0]), self.values_.shape[1])[active.ravel()]
        lat = self.indices_[active]
        val = self.values_[active]
        order = np.lexsort((rows, -val, lat))
        self._lat, self._rows, self._val = lat[order], rows[order], val[order]
        self._ptr = np.searchsorted(self._lat, np.arange(sae.n_latents + 1))

    def _check_latent(self, latent: Any) -> int:
        latent = check_int(latent, "latent", low=None)
        if not 0 <= latent < self.sae.n_latents:
            raise ValueError(f"latent must lie in [0, {self.sae.n_latents}), got {latent}")
        return latent

    def top_documents(self, latent: int, n: int | None = None) -> list[tuple[int, float, str]]:
        """``(row, activation, text)`` of the documents that activate ``latent`` most."""
        j = self._check_latent(latent)
        a, b = self._ptr[j], self._ptr[j + 1]
        n = self.n_top if n is None else n
        return [(int(r), float(v), self.texts[r]) for r, v in zip(self._rows[a : a + n], self._val[a : a + n])][: b - a]

    def keywords(self, rows: Sequence[int], n: int | None = None) -> list[str]:
        """Terms whose mean tf-idf over ``rows`` most exceeds their corpus mean."""
        return self._keywords(rows, n)

    def explain(self, latent: int) -> LatentSummary:
        """Summary of one latent (top documents, keywords, optional explanation)."""
        docs = self.top_documents(latent)
        s = LatentSummary(
            int(latent), float(self.frequencies_[int(latent)]), docs, self.keywords([r for r, _, _ in docs])
        )
        if self.explainer is not None and docs:
            s.explanation = str(self.explainer([t for _, _, t in docs]))
        return s

    def regions(self, **kw: Any) -> dict[str, np.ndarray]:
        """:func:`frequency_regions` of the corpus frequencies."""
        return frequency_regions(self.frequencies_, **kw)

    def top_latents(self, x: Any, n: int = 5) -> list[tuple[int, float, LatentSummary]]:
        """``(latent, activation, summary)`` of the ``n`` most active latents of one embedding
        (d_in,) or of a corpus row (int)."""
        if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
            if not 0 <= x < len(self.texts):
                raise ValueError(f"row must lie in [0, {len(self.texts)}), got {x}")
            v, i = self.values_[x], self.indices_[x]
        else:
            arr = np.asarray(x)
            if arr.ndim != 1:
                raise ValueError(f"x must be a row number or one embedding (d_in,), got shape {arr.shape}")
            vv, ii = self.sae.encode(arr[None, :])
            v, i = vv[0], ii[0]
        return [(int(j), float(val), self.explain(int(j))) for val, j in zip(v[:n], i[:n]) if val > 0]


def explain_latent(
    sae: TopKSAE,
    latent: int,
    D: Any,
    texts: Sequence[str],
    *,
    explainer: Callable[[list[str]], str] | None = None,
    n_top: int = 10,
    n_keywords: int = 8,
) -> LatentSummary:
    """One-shot :meth:`LatentExplainer.explain` (build a :class:`LatentExplainer` to explain many)."""
    return LatentExplainer(sae, D, texts, explainer=explainer, n_top=n_top, n_keywords=n_keywords).explain(latent)
