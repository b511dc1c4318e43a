"""Sparse autoencoders over retrieval embeddings (Kang, Wang & Xiong, "Interpret and Control Dense
Retrieval with Sparse Latent Features").

``TopKSAE`` (encode/decode on the Rust core), ``ThresholdSAE`` (ReLU / JumpReLU / BatchTopK, encode
to CSR), ``fit`` (plain MSE by default, the paper's retrieval KL on request; no torch), formats
(latentatlas, SAELens, Gemma Scope, Sentence-Transformers, EleutherAI sparsify, embedding-scope),
ground truth on planted dictionaries (:mod:`latentatlas.sae.synthetic`), retrieval and its evaluation,
interpretation, control, and latents clustered by co-firing vs by decoder direction
(:func:`feature_clusters`). Heavy optional pieces (the text encoder, scikit-learn's tf-idf) load lazily.
"""

from __future__ import annotations

from .control import amplification_grid, amplify, latent_counts, pseudo_relevance_feedback, steer
from .features import FeatureCluster, FeatureClusters, feature_clusters, latent_graph
from .interpret import LatentExplainer, TfidfKeywords, explain_latent, frequency_regions
from .io import load, save
from .model import Health, SparseCodes, TopKSAE
from .retrieval import dense_search, evaluate, latent_search, retrieval_report
from .threshold import ThresholdSAE
from .train import fit, loss_and_grads

__all__ = [
    "Health",
    "FeatureCluster",
    "FeatureClusters",
    "LatentExplainer",
    "SparseCodes",
    "ThresholdSAE",
    "TfidfKeywords",
    "TopKSAE",
    "amplification_grid",
    "amplify",
    "explain_latent",
    "feature_clusters",
    "frequency_regions",
    "latent_counts",
    "pseudo_relevance_feedback",
    "steer",
    "dense_search",
    "evaluate",
    "fit",
    "latent_graph",
    "latent_search",
    "load",
    "loss_and_grads",
    "retrieval_report",
    "save",
]
