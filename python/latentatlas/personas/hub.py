"""``persona_vectors.hub`` offline: the Hub dataset's config names and the configs of a local copy.

Nothing here touches the network: :func:`export_parquet` writes the layout ``push_to_hub``
uploads, and :class:`~.hub_store.HFPersonaVectorStore` reads it from a local directory or cache.
"""

from __future__ import annotations

import os
from pathlib import Path

from .hub_store import HFPersonaVectorStore, export_parquet, local_dataset_dir
from .store import activation_config_name

__all__ = [
    "HFPersonaVectorStore",
    "activation_config_name",
    "export_parquet",
    "list_hub_vector_models",
    "parse_vector_config_name",
]


def parse_vector_config_name(config_name: str) -> tuple[str, str] | None:
    """``"org__model__answer_mean"`` -> ``("org/model", "answer_mean")``; None if not a vector config.

    The mask strategy is the part after the last ``"__"``; the model keeps ``"/"`` for each other ``"__"``.
    """
    model_key, sep, mask = str(config_name).rpartition("__")
    if not sep or not model_key or not mask:
        return None
    return model_key.replace("__", "/"), mask


def list_hub_vector_models(repo_id: str | os.PathLike[str]) -> dict[str, list[str]]:
    """``{model_name: [mask strategies]}`` of a local copy of the dataset (config folders holding Parquet files)."""
    root = local_dataset_dir(repo_id)
    models: dict[str, list[str]] = {}
    for d in sorted(p for p in Path(root).iterdir() if p.is_dir() and any(p.glob("*.parquet"))):
        parsed = parse_vector_config_name(d.name)
        if parsed is not None:
            models.setdefault(parsed[0], []).append(parsed[1])
    return models
