"""The Hub dataset's Parquet layout, offline: :func:`export_parquet` writes it, :class:`HFPersonaVectorStore`
and :class:`ParquetPersonaStore` read it with the directory store's read API.

Layout: one config folder ``<model_dir>__<mask>`` per model and mask strategy, one split per variant
(``<variant>-00000-of-00001.parquet``), columns ``persona_id, name, sample_ids, vector``. A Hub dataset
id is read from the local Hugging Face cache (:func:`local_dataset_dir`); nothing is downloaded.
persona-vectors keeps :class:`HFPersonaVectorStore` and ``PersonaVectorSource`` in its ``artifacts``
module: :mod:`.artifacts` re-exports them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, inside, safe_name
from .._optional import import_optional
from .store import (
    DEFAULT_MASK_STRATEGY,
    PersonaVectorStore,
    _as_variants,
    _check_array_type,
    _is_safe,
    _mask_name,
    _ReadAPI,
    activation_config_name,
    normalize_mask_strategy,
)

__all__ = [
    "HFPersonaVectorStore",
    "ParquetPersonaStore",
    "PersonaVectorSource",
    "export_parquet",
    "local_dataset_dir",
]


def _pyarrow() -> Any:
    feature = "reading/writing the Hub Parquet layout"
    return import_optional("pyarrow", feature=feature), import_optional("pyarrow.parquet", feature=feature)


def export_parquet(
    store: PersonaVectorStore,
    out_dir: str | os.PathLike[str],
    variants: Sequence[str] | str | None = None,
) -> list[Path]:
    """Write the store in the Hub dataset's Parquet layout, one file per variant.

    ``<out_dir>/<model_dir>__<mask>/<variant>-00000-of-00001.parquet`` with columns
    ``persona_id`` (string), ``name`` (string), ``sample_ids`` (list<string>) and ``vector``
    (float32, list<list<float32>> of shape (num_layers, hidden_size)), sorted by id; the schema
    carries the ``datasets`` feature metadata (``Array2D``) so ``datasets.load_dataset`` reads it
    back as the reference project's ``push_to_hub`` wrote it. ``variants=None``: every variant
    the store's ``variants`` name that exists. Returns the files written.
    """
    pa, pq = _pyarrow()
    config_dir = Path(out_dir) / activation_config_name(store.model_name, store.mask_strategy)
    written = []
    for variant in store.available_variants(store._requested(variants)):
        manifest = store.manifest(variant)
        L, H = manifest["num_layers"], manifest["hidden_size"]
        ids = sorted(manifest["personas"])
        vectors = [store.load_numpy(variant, pid) for pid in ids]
        flat = pa.array(np.concatenate([v.ravel() for v in vectors]) if vectors else np.zeros(0, np.float32))
        inner = pa.ListArray.from_arrays(pa.array(np.arange(0, len(ids) * L + 1) * H, pa.int32()), flat)
        outer = pa.ListArray.from_arrays(pa.array(np.arange(0, len(ids) + 1) * L, pa.int32()), inner)
        features = {
            "persona_id": {"dtype": "string", "_type": "Value"},
            "name": {"dtype": "string", "_type": "Value"},
            "sample_ids": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
            "vector": {"shape": [L, H], "dtype": "float32", "_type": "Array2D"},
        }
        schema = pa.schema(
            [
                ("persona_id", pa.string()),
                ("name", pa.string()),
                ("sample_ids", pa.list_(pa.string())),
                ("vector", pa.list_(pa.list_(pa.float32()))),
            ],
            metadata={"huggingface": json.dumps({"info": {"features": features}})},
        )
        table = pa.Table.from_arrays(
            [
                pa.array(ids, pa.string()),
                pa.array([manifest["personas"][p].get("name") or p for p in ids], pa.string()),
                pa.array([list(manifest["personas"][p].get("sample_ids", [])) for p in ids], pa.list_(pa.string())),
                outer,
            ],
            schema=schema,
        )
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        path = config_dir / f"{safe_name(variant, 'variant')}-00000-of-00001.parquet"
        written.append(atomic_write_bytes(path, sink.getvalue().to_pybytes()))
    return written


def _nested_to_numpy(col: Any, path: Path) -> np.ndarray:
    """A list<list<float>> (or fixed-size list) column as a float32 (n, num_layers, hidden) array."""
    pc = import_optional("pyarrow.compute", feature="reading persona-vector parquet")

    n = len(col)
    try:
        inner = col.flatten()
        outer_len = pc.list_value_length(col).to_numpy(zero_copy_only=False)
        inner_len = pc.list_value_length(inner).to_numpy(zero_copy_only=False)
        values = inner.flatten().to_numpy(zero_copy_only=False)
    except Exception as exc:
        raise ValueError(f"column 'vector' in {path} is not a 2-D float array per row ({exc})") from None
    if n == 0:
        return np.zeros((0, 0, 0), np.float32)
    if (outer_len != outer_len[0]).any() or (inner_len != inner_len[0]).any():
        raise ValueError(f"vectors in {path} must all have one shape (num_layers, hidden_size)")
    out = np.asarray(values, dtype=np.float32).reshape(n, int(outer_len[0]), int(inner_len[0]))
    if not np.isfinite(out).all():
        raise ValueError(f"{path} holds non-finite value(s) (NaN or infinity) in column 'vector'")
    return out


_SHARD = re.compile(r"(.+)-\d{5}-of-\d{5}\.parquet")


class _Split:
    """One split's Parquet shards, read column by column as ``datasets.Dataset`` is indexed.

    ``select_columns(cols)[col]`` gives a column as a list (metadata without the vectors);
    ``split[i]`` a row dict whose ``"vector"`` is a float32 ``(num_layers, hidden_size)`` array.
    """

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self._vectors: np.ndarray | None = None

    def _column(self, name: str) -> list[Any]:
        pa, pq = _pyarrow()
        out: list[Any] = []
        for f in self.files:
            try:
                schema = pq.read_schema(f)
                if name not in schema.names:
                    if name in ("persona_id", "vector"):
                        raise ValueError(f"parquet file {f} lacks column {name!r}")
                    out += [None] * pq.ParquetFile(f).metadata.num_rows
                    continue
                col = pq.read_table(f, columns=[name]).column(name)
            except ValueError:
                raise
            except Exception as exc:
                raise ValueError(f"corrupt parquet file {f}: {exc}") from None
            if name == "vector":
                out.append(_nested_to_numpy(col.combine_chunks(), f))
            else:
                out += col.to_pylist()
        return out

    def vectors(self) -> np.ndarray:
        if self._vectors is None:
            blocks = self._column("vector")
            shapes = {b.shape[1:] for b in blocks if len(b)}
            if len(shapes) > 1:
                raise ValueError(f"vectors of {self.files[0].parent} have several shapes: {sorted(shapes)}")
            self._vectors = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        return self._vectors

    def select_columns(self, columns: Sequence[str]) -> dict[str, list[Any]]:
        return {c: self._column(c) for c in columns}

    def __len__(self) -> int:
        return len(self._column("persona_id"))

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"vector": self.vectors()[i]}


def _hub_cache() -> Path:
    env = os.environ.get("HF_HUB_CACHE")
    if env:
        return Path(env).expanduser()
    home = os.environ.get("HF_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "huggingface") / "hub"


def local_dataset_dir(repo_id: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The local folder of a Hub dataset: ``repo_id`` itself if it is a directory, else its snapshot in the cache.

    The cache is ``cache_dir``, ``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``; the
    snapshot is the one ``refs/main`` names, else the newest. Nothing is downloaded.
    """
    local = Path(repo_id).expanduser()
    if local.is_dir():
        return local
    parts = str(repo_id).split("/")
    for p in parts:
        safe_name(p, "repo_id")
    repo = Path(cache_dir or _hub_cache()).expanduser() / ("datasets--" + "--".join(parts))
    snaps = repo / "snapshots"
    ref = repo / "refs" / "main"
    rev = ref.read_text().strip() if ref.is_file() else None
    if rev is not None and (snaps / safe_name(rev, "revision")).is_dir():
        return snaps / rev
    found = sorted(snaps.iterdir(), key=lambda p: p.stat().st_mtime) if snaps.is_dir() else []
    if not found:
        raise FileNotFoundError(
            f"Hub dataset {str(repo_id)!r} is neither a local directory nor in the Hugging Face cache "
            f"{repo.parent}; download it first, e.g. `huggingface-cli download --repo-type dataset "
            f"{repo_id}`, or pass the directory of a local copy"
        )
    return found[-1]


class HFPersonaVectorStore(_ReadAPI):
    """Persona vectors of the Hub dataset (one config per ``model__mask``, one split per variant), offline.

    ``repo_id`` is a local directory holding ``<model_dir>__<mask>/<variant>-*.parquet`` (a clone
    of the dataset, or :func:`export_parquet`'s output), or a Hub dataset id already in the local
    Hugging Face cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``;
    ``cache_dir`` overrides). Nothing is downloaded: a dataset that is not there is a
    FileNotFoundError saying how to fetch it. Metadata queries read only the ``persona_id`` and
    ``name`` columns; vectors are read on the first :meth:`load`. A ``mask_strategy`` other than
    the store's is a ValueError, as in the original.
    """

    def __init__(
        self,
        repo_id: str | os.PathLike[str],
        model_name: str,
        mask_strategy: object | None = DEFAULT_MASK_STRATEGY,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        array_type: str = "auto",
    ) -> None:
        self.repo_id = str(repo_id)
        self.model_name = model_name
        self.mask_strategy = _mask_name(mask_strategy)
        self.config_name = activation_config_name(model_name, self.mask_strategy)
        self.array_type = _check_array_type(array_type)
        self._cache_dir = cache_dir
        self._config: Path | None = None
        self._datasets: dict[str, Any] = {}
        self._index: dict[str, dict[str, int]] = {}
        self._names: dict[str, dict[str, str]] = {}
        self._metadata_complete: set[str] = set()

    # -- where the files are ------------------------------------------------------------------

    @property
    def config_dir(self) -> Path:
        """The folder of this store's config: ``<dataset>/<model_dir>__<mask>``, or the dataset folder
        itself when it holds the Parquet files directly (a config folder was passed)."""
        if self._config is None:
            root = local_dataset_dir(self.repo_id, self._cache_dir)
            cand = inside(root, self.config_name)
            if not cand.is_dir() and not any(root.glob("*.parquet")):
                configs = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.parquet")))
                raise FileNotFoundError(f"config {self.config_name!r} not in {root}; available configs: {configs}")
            self._config = cand if cand.is_dir() else root
        return self._config

    def _where(self, mask: str) -> str:
        return f"{self.repo_id} {self.config_name}"

    def _splits(self) -> dict[str, list[Path]]:
        files: dict[str, list[Path]] = {}
        for p in sorted(self.config_dir.glob("*.parquet")):
            m = _SHARD.fullmatch(p.name)
            split = m.group(1) if m else p.stem
            if _is_safe(split):
                files.setdefault(split, []).append(p)
        return files

    def _dataset(self, variant: str) -> Any:
        if variant not in self._datasets:
            files = self._splits().get(safe_name(variant, "variant"))
            if not files:
                raise FileNotFoundError(
                    f"unknown variant {variant!r}: no {variant}-*.parquet in {self.config_dir}; "
                    f"available: {sorted(self._splits())}"
                )
            self._datasets[variant] = _Split(files)
        return self._datasets[variant]

    def _metadata(self, variant: str) -> tuple[dict[str, int], dict[str, str]]:
        """``(persona_id -> row, persona_id -> name)`` from the two metadata columns only (cached)."""
        idx = self._index.setdefault(variant, {})
        names = self._names.setdefault(variant, {})
        if variant in self._metadata_complete:
            return idx, names
        meta = self._dataset(variant).select_columns(["persona_id", "name"])
        pids, raw = meta["persona_id"], meta["name"]
        for i, pid in enumerate(pids):
            if not isinstance(pid, str):
                raise ValueError(f"variant {variant!r} of {self._where('')} has a non-string persona_id {pid!r}")
            idx[pid] = i
            names[pid] = raw[i] or pid
        self._metadata_complete.add(variant)
        return idx, names

    def release_cache(self, variants: Sequence[str] | None = None) -> None:
        """Drop cached splits and metadata for ``variants`` (or all)."""
        for v in list(self._datasets) if variants is None else list(variants):
            self._datasets.pop(v, None)
            self._index.pop(v, None)
            self._names.pop(v, None)
            self._metadata_complete.discard(v)

    # -- the read API --------------------------------------------------------------------------

    def _mask(self, mask_strategy: object | None) -> str:
        if mask_strategy is not None and normalize_mask_strategy(mask_strategy) != self.mask_strategy:
            raise ValueError(
                f"{type(self).__name__} is bound to mask_strategy={self.mask_strategy!r}; got {mask_strategy!r}"
            )
        return self.mask_strategy

    def _default_variants(self) -> list[str]:
        return sorted(set(self._datasets) | set(self._splits()))

    def available_variants(
        self, variants: Sequence[str] | None = None, mask_strategy: object | None = None
    ) -> list[str]:
        """Splits present for this config (among ``variants`` if given)."""
        self._mask(mask_strategy)
        if variants is not None and not variants:
            return []
        present = self._default_variants()
        return present if variants is None else [v for v in _as_variants(variants, ()) if v in present]

    def _personas(self, variant: str, mask: str) -> dict[str, dict[str, Any]] | None:
        if variant not in self._datasets and variant not in self._metadata_complete:
            if safe_name(variant, "variant") not in self._splits():
                return None
        _, names = self._metadata(variant)
        return {pid: {"name": name} for pid, name in names.items()}

    def _shape(self, variant: str, mask: str) -> tuple[int, int]:
        idx, _ = self._metadata(variant)
        if not idx:
            raise ValueError(f"variant {variant!r} of {self._where(mask)} has no rows")
        L, H = self._vector(variant, next(iter(idx)), mask).shape
        return int(L), int(H)

    def _vector(self, variant: str, persona_id: str, mask: str) -> np.ndarray:
        idx, _ = self._metadata(variant)
        arr = np.asarray(self._dataset(variant)[idx[persona_id]]["vector"], dtype=np.float32)
        if arr.ndim != 2:
            raise ValueError(f"tensor for {persona_id!r} must have shape (num_layers, hidden_size)")
        return arr

    def list_personas(
        self,
        variants: Sequence[str] | str | None = None,
        mask_strategy: object | None = None,
        warn_missing: bool = False,
        *,
        include_baseline: bool = False,
    ) -> list[str]:
        """As :meth:`PersonaVectorStore.list_personas`, but quiet about skipped ids by default (the original's)."""
        return super().list_personas(variants, mask_strategy, warn_missing, include_baseline=include_baseline)

    def persona_sample_ids(
        self, prompt_variant: str, persona_id: str, mask_strategy: object | None = None
    ) -> list[str] | None:
        mask = self._mask(mask_strategy)
        if persona_id not in (self._personas(prompt_variant, mask) or {}):
            return None
        sids = self._dataset(prompt_variant).select_columns(["sample_ids"])["sample_ids"]
        got = sids[self._metadata(prompt_variant)[0][persona_id]]
        return [str(s) for s in got] if isinstance(got, list) else []

    def sample_ids(self, variant: str, persona_id: str, mask_strategy: object | None = None) -> list[str]:
        mask = self._mask(mask_strategy)
        if persona_id not in self._require(variant, mask):
            raise FileNotFoundError(f"persona {persona_id!r} not found in variant {variant!r} ({self._where(mask)})")
        return self.persona_sample_ids(variant, persona_id, mask) or []

    def to_store(self, root: str | os.PathLike[str], variants: Sequence[str] | str | None = None) -> PersonaVectorStore:
        """Copy the rows into a directory store at ``root`` (the reference layout)."""
        store = PersonaVectorStore(self.model_name, root, self.mask_strategy, variants=None)
        for v in _as_variants(variants, self.available_variants()):
            _, names = self._metadata(v)
            for pid in sorted(names):
                store.save(v, pid, names[pid], self.load_numpy(v, pid), self.sample_ids(v, pid))
        return store


class ParquetPersonaStore(HFPersonaVectorStore):
    """:class:`HFPersonaVectorStore` over a local directory, latentatlas's argument order.

    ``path`` is a dataset directory holding ``<model_dir>__<mask>/`` config folders, or a config
    folder itself; ``model``/``mask_strategy`` select the config. A missing ``path`` is a
    FileNotFoundError.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        model: str,
        mask_strategy: object | None = DEFAULT_MASK_STRATEGY,
        *,
        array_type: str = "auto",
    ) -> None:
        path = Path(path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"persona store root does not exist: {path}")
        super().__init__(path, model, mask_strategy, array_type=array_type)


PersonaVectorSource = PersonaVectorStore | HFPersonaVectorStore
