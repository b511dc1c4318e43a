"""SAE features grouped by spectral proximity: the latent graph, its clusters, and code energies.

The latents of an SAE are the nodes of a feature graph whose signals are their activations over a
corpus: two latents are close when they fire on the same documents (cosine of their activation
columns, each latent keeping its top-k co-firing partners). Spectral clustering on that graph
groups latents by *usage*; k-means on the unit decoder rows groups them by *direction*. The two
views need not agree (a block of latents that co-fire may point anywhere), so both are returned
with their agreement, each cluster's top documents and tf-idf keywords, and the Rayleigh energy
``xᵀLx / xᵀx`` of every document's code on the latent graph (low: the document's active latents
are graph neighbours).

The codes stay sparse throughout: the Gram ``CᵀC`` is formed in blocks of latents from the CSR
codes (memory bounded by a block's co-firing pairs), the energies are sparse products over blocks
of documents; nothing ``N × n_latents`` is ever dense. Latents that never fire are no nodes of
the graph and are reported as ``dead``.

Example
-------
>>> codes = sae.encode(D)                            # TopKSAE: SparseCodes; ThresholdSAE: CSR  # doctest: +SKIP
>>> fc = feature_clusters(codes, sae, texts, n_clusters=8, seed=0)                             # doctest: +SKIP
>>> fc.agreement, fc.spectral[0].keywords, fc.energy.shape                                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validate import as_matrix, check_finite, check_int
from ..spectral import graph_laplacian, rayleigh_energy
from .interpret import TfidfKeywords

__all__ = ["FeatureCluster", "FeatureClusters", "as_csr_codes", "feature_clusters", "latent_graph"]

#: Latents per block when the co-firing Gram is formed (bounds the block × n_live temporary).
_GRAM_BLOCK = 1024
#: Graphs up to this many live latents take a dense eigendecomposition (exact, and quicker when small).
_DENSE_EIGH = 600


@dataclass
class FeatureCluster:
    """One cluster of latents: its latent ids, top documents ``(row, summed activation, text)`` and
    keywords (tf-idf of those documents against the corpus; empty without texts)."""

    label: int
    latents: np.ndarray
    documents: list[tuple[int, float, str | None]] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)


@dataclass
class FeatureClusters:
    """What :func:`feature_clusters` returns. Graph node ``j`` is latent ``live[j]``.

    Attributes
    ----------
    live : ndarray (n_live,) int64
        Latents active (non-zero) on at least one document, ascending.
    dead : ndarray (n_dead,) int64
        Latents never active on the corpus (not in the graph).
    graph : csr_matrix (n_live, n_live)
        Symmetric co-firing cosine graph, top-k partners per latent, zero diagonal.
    laplacian : csr_matrix (n_live, n_live)
        Its Laplacian (``D - W`` or the normalised one).
    spectral_labels, decoder_labels : ndarray (n_live,) int64
        Cluster of each live latent by spectral clustering on ``graph`` / by k-means on unit decoder rows.
    embedding : ndarray (n_live, 2)
        Laplacian-eigenmap coordinates of the live latents (the first two non-trivial eigenvectors
        of the normalised graph Laplacian), for plotting both labelings on one layout.
    energy : ndarray (n_docs,) float64
        Rayleigh energy of each document's code on ``laplacian``; 0 for a document with no active latent.
    agreement : dict
        ``{"ari": adjusted Rand index, "nmi": normalised mutual information}`` of the two labelings.
    spectral, decoder : list[FeatureCluster]
        The clusters of each labeling, by label.
    """

    live: np.ndarray
    dead: np.ndarray
    graph: sp.csr_matrix
    laplacian: sp.csr_matrix
    spectral_labels: np.ndarray
    decoder_labels: np.ndarray
    embedding: np.ndarray
    energy: np.ndarray
    agreement: dict[str, float]
    spectral: list[FeatureCluster]
    decoder: list[FeatureCluster]


def as_csr_codes(codes: Any, name: str = "codes") -> sp.csr_matrix:
    """SAE codes as a float64 ``csr_matrix (N, n_latents)`` without explicit zeros, columns sorted.

    Accepts a ``scipy.sparse`` matrix (:meth:`ThresholdSAE.encode`) or anything with ``to_csr()``
    (:class:`SparseCodes` from :meth:`TopKSAE.encode`). Copies only the ``nnz`` stored entries.
    """
    if hasattr(codes, "to_csr") and not sp.issparse(codes):
        codes = codes.to_csr()
    if not sp.issparse(codes):
        raise TypeError(
            f"{name} must be a scipy.sparse matrix (N, n_latents) or the SparseCodes of TopKSAE.encode, "
            f"got {type(codes).__name__} (a dense array: scipy.sparse.csr_matrix(array))"
        )
    if codes.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, n_latents), got shape {codes.shape}")
    if codes.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {codes.dtype}")
    C = sp.csr_matrix(codes, dtype=np.float64, copy=True)
    if C.nnz and not np.isfinite(C.data).all():
        raise ValueError(f"{name} contains NaN or infinity")
    C.eliminate_zeros()
    C.sort_indices()
    return C


def _live_latents(C: sp.csr_matrix, name: str = "codes") -> np.ndarray:
    live = np.flatnonzero(np.bincount(C.indices, minlength=C.shape[1]))
    if live.size == 0:
        raise ValueError(
            f"{name}: no latent is active on the corpus (all {C.shape[0]} × {C.shape[1]} codes are zero); "
            "check the SAE matches the embeddings (same model, layer and normalisation)"
        )
    if live.size < 2:
        raise ValueError(f"{name}: only latent {int(live[0])} is active on the corpus; a latent graph needs two")
    return live


def latent_graph(codes: Any, k: int = 8) -> tuple[sp.csr_matrix, np.ndarray]:
    """The co-firing graph of an SAE's latents over a corpus.

    Parameters
    ----------
    codes : scipy.sparse (N, n_latents) or SparseCodes
        The SAE codes of N documents; never densified.
    k : int
        Co-firing partners kept per latent (those of positive cosine; a latent with fewer keeps fewer).

    Returns
    -------
    (W, live) : csr_matrix (n_live, n_live) float64, ndarray (n_live,) int64
        ``W = max(W_directed, W_directedᵀ)`` of the activation-column cosines (zero diagonal), the same
        graph as :func:`latentatlas.spectral.feature_graph` with ``weights="positive"`` on the dense
        live columns; node ``j`` is latent ``live[j]``.
    """
    C = as_csr_codes(codes)
    live = _live_latents(C)
    return _latent_graph(C, live, check_int(k, "k")), live


def _latent_graph(C: sp.csr_matrix, live: np.ndarray, k: int) -> sp.csr_matrix:
    """:func:`latent_graph` on checked codes and their live latents."""
    Cl = C[:, live].tocsc()  # columns of live latents; CSC so a block of latents is a cheap slice
    norms = np.sqrt(np.asarray(Cl.multiply(Cl).sum(axis=0)).ravel())
    n = live.size
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    Cr = Cl.tocsr()
    for a in range(0, n, _GRAM_BLOCK):
        G = (Cl[:, a : a + _GRAM_BLOCK].T @ Cr).tocoo()  # block of CᵀC: only co-firing pairs are stored
        rows, cols = G.row + a, G.col
        cos = G.data / (norms[rows] * norms[cols])
        keep = (rows != cols) & (cos > 0)
        rows, cols, cos = rows[keep], cols[keep], cos[keep]
        order = np.lexsort((cols, -cos, rows))  # per latent: cosine desc, ties to the lower index
        rows, cols, cos = rows[order], cols[order], cos[order]
        first = np.searchsorted(rows, rows, side="left")
        top = np.arange(rows.size) - first < k
        parts.append((rows[top], cols[top], cos[top]))
    r, c, v = (np.concatenate(x) for x in zip(*parts))
    directed = sp.csr_matrix((v, (r, c)), shape=(n, n))
    W = directed.maximum(directed.T).tocsr()
    W.eliminate_zeros()
    W.sort_indices()
    return W


def _spectral_embedding(W: sp.csr_matrix, n_components: int, seed: int) -> np.ndarray:
    """The top ``n_components`` eigenvectors of ``D^-1/2 W D^-1/2`` (the bottom of the normalised
    Laplacian) scaled by ``D^-1/2``, signs fixed (largest |entry| positive), as scikit-learn's
    ``spectral_embedding`` returns them for ``SpectralClustering``.

    Lanczos on the largest eigenvalues needs only products with W; scikit-learn's ARPACK path
    factorises the shifted Laplacian instead, which fills in badly on a large co-firing graph
    (minutes at 15k latents, against seconds here). Small graphs take a dense ``eigh``.
    """
    deg = np.asarray(W.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0)), 0.0)  # isolated latents: row of zeros
    A = sp.csr_matrix(sp.diags(inv) @ W @ sp.diags(inv))
    n = A.shape[0]
    if n <= _DENSE_EIGH or n_components >= n - 1:
        vals, vecs = np.linalg.eigh(A.toarray())
    else:
        from scipy.sparse.linalg import eigsh

        v0 = np.random.default_rng(seed).uniform(-1.0, 1.0, n)
        vals, vecs = eigsh(A, k=n_components, which="LA", v0=v0, tol=1e-10)
    vecs = vecs[:, np.argsort(-vals, kind="stable")[:n_components]] * inv[:, None]
    lead = vecs[np.abs(vecs).argmax(axis=0), np.arange(vecs.shape[1])]  # each column's largest |entry|
    return vecs * np.where(lead < 0, -1.0, 1.0)


def _kmeans(X: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit(X)
    return np.asarray(km.labels_, dtype=np.int64)


def _clusters(
    Cl: sp.csr_matrix,
    live: np.ndarray,
    labels: np.ndarray,
    n_clusters: int,
    texts: list[str] | None,
    keywords: TfidfKeywords | None,
    n_top: int,
) -> list[FeatureCluster]:
    """Each cluster's latents and its top documents by summed activation of those latents."""
    M = sp.csr_matrix((np.ones(live.size), (np.arange(live.size), labels)), shape=(live.size, n_clusters))
    S = (Cl @ M).tocsc()  # (N, n_clusters), sparse: a document scores only for clusters it touches
    out = []
    for c in range(n_clusters):
        rows, score = S.indices[S.indptr[c] : S.indptr[c + 1]], S.data[S.indptr[c] : S.indptr[c + 1]]
        top = np.lexsort((rows, -score))[:n_top]
        docs = [(int(rows[i]), float(score[i]), texts[rows[i]] if texts is not None else None) for i in top]
        kw = keywords([d[0] for d in docs]) if keywords is not None else []
        out.append(FeatureCluster(c, live[labels == c], docs, kw))
    return out


def feature_clusters(
    codes: Any,
    decoder: Any,
    texts: Sequence[str] | None = None,
    *,
    n_clusters: int = 8,
    k: int = 8,
    n_top: int = 5,
    n_keywords: int = 8,
    normalized: bool = False,
    seed: int = 0,
) -> FeatureClusters:
    """Cluster an SAE's latents by spectral proximity on their co-firing graph and by decoder cosine.

    Parameters
    ----------
    codes : scipy.sparse (N, n_latents) or SparseCodes
        The SAE's codes of N documents (``sae.encode(D)``); never densified.
    decoder : array (n_latents, d_model), or an SAE (its ``W_dec`` is used)
        Row j is latent j's decoder direction.
    texts : N strings, optional
        The documents, for each cluster's top documents and tf-idf keywords.
    n_clusters : int
        Clusters in each labeling, ``2 <= n_clusters <= n_live``.
    k : int
        Co-firing partners per latent in the graph (:func:`latent_graph`).
    n_top, n_keywords : int
        Documents and keywords kept per cluster.
    normalized : bool
        Energies on the normalised Laplacian (scale-free, in [0, 2]) instead of ``D - W``.
    seed : int
        Seeds the eigensolver's start vector and both k-means runs; the result depends on nothing else.

    Returns
    -------
    FeatureClusters
    """
    C = as_csr_codes(codes)
    W_dec = getattr(decoder, "W_dec", decoder)
    W_dec = as_matrix(W_dec, "decoder")
    if W_dec.shape[0] != C.shape[1]:
        raise ValueError(
            f"decoder has {W_dec.shape[0]} rows but codes have n_latents = {C.shape[1]} columns; "
            "pass the decoder (n_latents, d_model) of the SAE that made the codes"
        )
    if texts is not None:
        texts = list(texts)
        if len(texts) != C.shape[0]:
            raise ValueError(f"texts must have one entry per row of codes ({C.shape[0]}), got {len(texts)}")
    n_top, n_keywords = check_int(n_top, "n_top"), check_int(n_keywords, "n_keywords")
    seed = check_int(seed, "seed", low=0, high=2**32 - 1)
    live = _live_latents(C)
    W = _latent_graph(C, live, check_int(k, "k"))
    n_clusters = check_int(n_clusters, "n_clusters", low=2, high=live.size, what="the number of live latents")
    L = graph_laplacian(W, normalized=normalized)
    Cl = C[:, live]
    energy = rayleigh_energy(Cl, L)

    emb = _spectral_embedding(W, min(max(n_clusters, 3), live.size), seed)
    spectral_labels = _kmeans(emb[:, :n_clusters], n_clusters, seed)
    D = np.asarray(W_dec[live], dtype=np.float64)
    check_finite(D, "decoder")
    norms = np.linalg.norm(D, axis=1, keepdims=True)
    D = np.divide(D, norms, out=np.zeros_like(D), where=norms > 0)  # unit rows: k-means ~ cosine clustering
    decoder_labels = _kmeans(D, n_clusters, seed)

    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    agreement = {
        "ari": float(adjusted_rand_score(spectral_labels, decoder_labels)),
        "nmi": float(normalized_mutual_info_score(spectral_labels, decoder_labels)),
    }
    kw = TfidfKeywords(texts, n_keywords=n_keywords) if texts is not None else None
    return FeatureClusters(
        live=live,
        dead=np.setdiff1d(np.arange(C.shape[1]), live),
        graph=W,
        laplacian=L,
        spectral_labels=spectral_labels,
        decoder_labels=decoder_labels,
        embedding=np.ascontiguousarray(emb[:, 1:3]) if emb.shape[1] >= 3 else np.zeros((live.size, 2)),
        energy=energy,
        agreement=agreement,
        spectral=_clusters(Cl, live, spectral_labels, n_clusters, texts, kw, n_top),
        decoder=_clusters(Cl, live, decoder_labels, n_clusters, texts, kw, n_top),
    )
