"""``persona_vectors.artifacts`` under its own name: the store API (see :mod:`.store` and :mod:`.hub_store`)."""

from __future__ import annotations

from .hub_store import HFPersonaVectorStore, PersonaVectorSource
from .store import (
    BASELINE_PERSONA_ID,
    DEFAULT_MASK_STRATEGY,
    SUPPORTED_VARIANTS,
    PersonaVectorStore,
    activation_config_name,
    discover_activation_models,
    model_dir_name,
    normalize_mask_strategy,
)

__all__ = [
    "BASELINE_PERSONA_ID",
    "DEFAULT_MASK_STRATEGY",
    "SUPPORTED_VARIANTS",
    "HFPersonaVectorStore",
    "PersonaVectorSource",
    "PersonaVectorStore",
    "activation_config_name",
    "discover_activation_models",
    "model_dir_name",
    "normalize_mask_strategy",
]
