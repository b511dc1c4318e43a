"""Persona attributes for colouring figures, and a synthetic persona dataset for examples.

:func:`attribute_color_kwargs` turns one attribute into ``build_layered_figure`` colour keywords
(numeric -> continuous colour scale, ordinal -> ranked scale with tick labels, categorical ->
groups with rare values collapsed to "Other"), exactly as the persona-vectors project does; any
object with ``attribute_schema`` (``{"persona_fields": {name: {"kind", "ordered_values"}}}``) and
``attribute_values(name, persona_ids)`` works, e.g. ``persona_data.SynthPersonaDataset``.

:class:`PersonaAttributeTable` is such an object built from plain records (list of dicts with
``"id"``, ``"name"`` and attribute keys); :func:`synthetic_persona_dataset` makes one with age,
age group, occupation, region, education, personality and income bracket, and
:func:`synthetic_persona_vectors` makes per-layer vectors whose geometry depends on those
attributes, for examples and tests that need no language model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .._validate import as_rng, check_int

__all__ = [
    "DEFAULT_MAX_ATTRIBUTE_CATEGORIES",
    "PersonaAttributeTable",
    "attribute_color_kwargs",
    "attribute_display_label",
    "attribute_schema",
    "categorical_attribute_labels",
    "synthetic_persona_dataset",
    "synthetic_persona_vectors",
]

DEFAULT_MAX_ATTRIBUTE_CATEGORIES = 12
KINDS = ("numeric", "ordinal", "categorical")


def _plotly_tick_label(value: object) -> str:
    return str(value).replace("$", "&#36;")  # Plotly would read "$...$" as LaTeX


def attribute_schema(persona_dataset: Any) -> dict[str, dict[str, Any]]:
    """The ``persona_fields`` schema of a SynthPersonaDataset-like object."""
    return dict(getattr(persona_dataset, "attribute_schema", {}).get("persona_fields", {}))


def attribute_display_label(persona_dataset: Any, attribute_name: str) -> str:
    """``"age (numeric, 37 values)"``-style label with kind and cardinality."""
    info = attribute_schema(persona_dataset).get(attribute_name)
    if not info:
        return attribute_name
    unique = info.get("n_unique_seed_values")
    suffix = f", {unique} values" if unique else ""
    return f"{attribute_name} ({info.get('kind', 'unknown')}{suffix})"


def categorical_attribute_labels(
    values: Iterable[object], max_categories: int = DEFAULT_MAX_ATTRIBUTE_CATEGORIES
) -> list[str]:
    """String labels, the ``max_categories`` most frequent kept, the rest collapsed to ``"Other"``."""
    values = list(values)
    counts = Counter(values)
    keep = {v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:max_categories]}
    return [str(v) if v in keep else "Other" for v in values]


def attribute_color_kwargs(
    persona_dataset: Any,
    attribute_name: str,
    persona_ids: Sequence[str],
    *,
    max_categories: int = DEFAULT_MAX_ATTRIBUTE_CATEGORIES,
    numeric_colorscale: str = "Viridis",
    ordinal_colorscale: str = "Plasma",
) -> dict[str, Any]:
    """``build_layered_figure`` colour keywords for one persona attribute.

    Returns ``{"color_values", "color_label", "colorscale"}`` for numeric attributes, the same plus
    ``color_tickvals``/``color_ticktext`` (ranks of ``ordered_values``) for ordinal ones, and
    ``{"groups": [...]}`` for categorical ones.
    """
    schema = attribute_schema(persona_dataset)
    if attribute_name not in schema:
        raise KeyError(f"unknown attribute {attribute_name!r}; known: {sorted(schema)}")
    info = schema[attribute_name]
    values = list(persona_dataset.attribute_values(attribute_name, list(persona_ids)))
    kind = info.get("kind")
    if kind == "numeric":
        return {
            "color_values": [float(v) for v in values],
            "color_label": attribute_name,
            "colorscale": numeric_colorscale,
        }
    if kind == "ordinal":
        ordered = list(info["ordered_values"])
        ranks = {v: i for i, v in enumerate(ordered)}
        bad = sorted({str(v) for v in values if v not in ranks})
        if bad:
            raise ValueError(f"attribute {attribute_name!r} has values outside its ordered_values: {bad}")
        return {
            "color_values": [float(ranks[v]) for v in values],
            "color_label": attribute_name,
            "colorscale": ordinal_colorscale,
            "color_tickvals": [float(i) for i in range(len(ordered))],
            "color_ticktext": [_plotly_tick_label(v) for v in ordered],
        }
    return {"groups": categorical_attribute_labels(values, max_categories)}


class PersonaAttributeTable:
    """Persona attributes from plain records, with the SynthPersonaDataset interface.

    Parameters
    ----------
    records : sequence of dict
        One dict per persona with ``"id"``, optional ``"name"`` and attribute keys.
    ordinal : mapping attribute -> ordered values, optional
        Attributes to treat as ordinal. Others are numeric when every value is a number,
        otherwise categorical. Keys listed in ``ignore`` (default: id, name, and any key whose
        values are long free text) are not attributes.
    """

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        ordinal: Mapping[str, Sequence[Any]] | None = None,
        ignore: Iterable[str] = ("id", "name", "persona_id", "biography", "description", "prompt", "text"),
    ) -> None:
        if not records:
            raise ValueError("records must hold at least one persona")
        self.records = [dict(r) for r in records]
        for i, r in enumerate(self.records):
            if "id" not in r:
                raise ValueError(f"record {i} has no 'id' key")
        ids = [str(r["id"]) for r in self.records]
        if len(set(ids)) != len(ids):
            raise ValueError("record ids must be unique")
        self.persona_ids = ids
        self._by_id = dict(zip(ids, self.records))
        ordinal = dict(ordinal or {})
        ignored = set(ignore)
        keys: list[str] = []
        for r in self.records:
            keys += [k for k in r if k not in ignored and k not in keys]
        fields: dict[str, dict[str, Any]] = {}
        for key in keys:
            vals = [r.get(key) for r in self.records]
            present = [v for v in vals if v is not None]
            if not present or any(isinstance(v, (list, dict)) for v in present):
                continue
            if key in ordinal:
                info: dict[str, Any] = {"kind": "ordinal", "ordered_values": list(ordinal[key])}
            elif all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in present):
                info = {"kind": "numeric"}
            elif all(isinstance(v, str) and len(v) <= 60 for v in present):
                info = {"kind": "categorical"}
            else:
                continue
            info["n_unique_seed_values"] = len({str(v) for v in present})
            fields[key] = info
        self.attribute_schema = {"persona_fields": fields}

    @property
    def attributes(self) -> list[str]:
        return list(self.attribute_schema["persona_fields"])

    def names(self, persona_ids: Sequence[str] | None = None) -> list[str]:
        ids = self.persona_ids if persona_ids is None else persona_ids
        return [str(self._by_id[p].get("name", p)) for p in ids]

    def attribute_info(self, attribute_name: str) -> dict[str, Any]:
        """The schema entry of one attribute (``kind``, ``ordered_values`` for ordinals); KeyError if unknown."""
        fields = self.attribute_schema["persona_fields"]
        if attribute_name not in fields:
            raise KeyError(f"no attribute {attribute_name!r}; this table has {sorted(fields)}")
        return dict(fields[attribute_name])

    def attribute_values(self, attribute_name: str, persona_ids: Sequence[str]) -> list[Any]:
        """Values of one attribute for ``persona_ids`` (KeyError names an unknown id)."""
        missing = [p for p in persona_ids if p not in self._by_id]
        if missing:
            raise KeyError(f"persona id(s) not in this dataset: {missing[:5]}")
        return [self._by_id[p].get(attribute_name) for p in persona_ids]


_OCCUPATIONS = ("teacher", "nurse", "software engineer", "farmer", "lawyer", "artist", "chef", "electrician")
_REGIONS = ("North America", "South America", "Europe", "Africa", "East Asia", "South Asia", "Oceania")
_EDUCATION = ("primary", "secondary", "bachelor", "master", "doctorate")
_PERSONALITY = ("introvert", "extrovert", "ambivert")
_INCOME = ("low", "lower-middle", "upper-middle", "high")
_AGE_GROUPS = ("18-29", "30-44", "45-59", "60+")
_FIRST = (
    "Ada",
    "Bram",
    "Chen",
    "Dalia",
    "Emeka",
    "Freya",
    "Gus",
    "Hana",
    "Ivo",
    "Juno",
    "Kofi",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
    "Priya",
)
_LAST = (
    "Ames",
    "Brandt",
    "Costa",
    "Dube",
    "Eriksen",
    "Fujita",
    "Garcia",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kaur",
    "Lopez",
)


def synthetic_persona_dataset(n: int = 60, seed: int = 0) -> PersonaAttributeTable:
    """A synthetic persona table: age, age_group, occupation, region, education, personality, income.

    Education correlates with occupation and income with both, so attributes are not independent
    (as in real persona sets). Same ``seed``, same table.
    """
    n = check_int(n, "n", low=2)
    rng = as_rng(seed)
    records = []
    for i in range(n):
        age = int(rng.integers(18, 80))
        occ = int(rng.integers(len(_OCCUPATIONS)))
        edu = int(np.clip(rng.integers(1, 4) + (occ in (2, 4)) - (occ in (3, 6)), 0, 4))
        inc = int(np.clip(round(0.5 * edu + 0.02 * (age - 18) + rng.normal(0, 0.7)), 0, 3))
        records.append(
            {
                "id": f"persona_{i:04d}",
                "name": f"{_FIRST[i % len(_FIRST)]} {_LAST[(i * 7 + i // len(_FIRST)) % len(_LAST)]}",
                "age": age,
                "age_group": _AGE_GROUPS[min(3, (age - 18) // 15)] if age < 60 else "60+",
                "occupation": _OCCUPATIONS[occ],
                "region": _REGIONS[int(rng.integers(len(_REGIONS)))],
                "education": _EDUCATION[edu],
                "personality": _PERSONALITY[int(rng.integers(3))],
                "income_bracket": _INCOME[inc],
            }
        )
    return PersonaAttributeTable(
        records, ordinal={"age_group": _AGE_GROUPS, "education": _EDUCATION, "income_bracket": _INCOME}
    )


def synthetic_persona_vectors(
    dataset: PersonaAttributeTable,
    num_layers: int = 12,
    hidden_size: int = 128,
    *,
    seed: int = 0,
    noise: float = 0.6,
) -> np.ndarray:
    """Per-layer vectors (n_personas, num_layers, hidden_size) float32 shaped by the attributes.

    Every categorical/ordinal value gets a random direction and age a linear direction; their
    weight rises over depth (early layers mostly shared signal and noise, late layers separate
    personas by occupation and region), on top of a large shared DC component per layer, as in a
    residual stream. Same ``seed``, same vectors.
    """
    num_layers = check_int(num_layers, "num_layers")
    hidden_size = check_int(hidden_size, "hidden_size")
    rng = as_rng(seed)
    ids = dataset.persona_ids
    n = len(ids)
    fields = dataset.attribute_schema["persona_fields"]
    dc = rng.normal(0.0, 4.0, size=(num_layers, hidden_size))
    depth = np.linspace(0.15, 1.0, num_layers)
    out = dc[None] + noise * rng.standard_normal((n, num_layers, hidden_size))
    weights = {
        "occupation": 1.6,
        "region": 1.1,
        "education": 0.7,
        "personality": 0.5,
        "income_bracket": 0.5,
        "age_group": 0.3,
    }
    for attr, w in weights.items():
        if attr not in fields:
            continue
        vals = dataset.attribute_values(attr, ids)
        dirs = {
            v: rng.standard_normal((num_layers, hidden_size)) / np.sqrt(hidden_size) * 6
            for v in sorted(set(map(str, vals)))
        }
        # the attribute's weight peaks at a different depth per attribute
        peak = rng.uniform(0.4, 1.0)
        profile = w * np.exp(-((depth - peak) ** 2) / 0.18) * depth
        for i, v in enumerate(vals):
            out[i] += profile[:, None] * dirs[str(v)]
    if "age" in fields:
        age = np.asarray(dataset.attribute_values("age", ids), dtype=np.float64)
        z = (age - age.mean()) / (age.std() + 1e-9)
        d = rng.standard_normal((num_layers, hidden_size)) / np.sqrt(hidden_size) * 6
        out += 0.6 * depth[None, :, None] * z[:, None, None] * d[None]
    return out.astype(np.float32)
