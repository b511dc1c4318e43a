"""Persona vectors on disk: the persona-vectors project's layout, byte-compatible both ways.

Layout (REFERENCE §4)::

    <root>/<model with "/" -> "__">/<mask_strategy>/<variant>/<persona_id>.safetensors
    <root>/<model with "/" -> "__">/<mask_strategy>/<variant>/manifest.json

Each tensor file holds one tensor under the key ``"activations"`` of shape
``(num_layers, hidden_size)``; the manifest is
``{"num_layers": L, "hidden_size": H, "personas": {id: {"name": str, "sample_ids": [...]}}}``
written with ``json.dumps(..., indent=2)`` as the reference project writes it.

``root=None`` means ``$LATENTATLAS_PERSONA_ROOT`` when set, else ``~/.cache/latentatlas/personas``.

Every write is atomic (temporary file + ``os.replace``), and the manifest's read-modify-write runs
under an advisory lock file, so concurrent writers into one variant never lose each other's
entries and a crash never leaves a half-written tensor or manifest.

The Hub dataset's Parquet layout (one config ``<model_dir>__<mask>``, one split per variant,
columns ``persona_id, name, sample_ids, vector``) is read and written from local files by
:func:`export_parquet` and :class:`ParquetPersonaStore` (pyarrow, an optional extra).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, atomic_write_text, read_safetensors
from .._optional import import_optional, to_numpy

__all__ = [
    "DEFAULT_MASK_STRATEGY",
    "MANIFEST_FILENAME",
    "TENSOR_KEY",
    "ParquetPersonaStore",
    "PersonaVectorStore",
    "activation_config_name",
    "default_root",
    "export_parquet",
    "model_dir_name",
]

DEFAULT_MASK_STRATEGY = "answer_mean"
MANIFEST_FILENAME = "manifest.json"
TENSOR_KEY = "activations"
_SUFFIX = ".safetensors"
_LOCK = ".manifest.lock"
ROOT_ENV = "LATENTATLAS_PERSONA_ROOT"


def default_root() -> Path:
    """``$LATENTATLAS_PERSONA_ROOT`` if set, else ``~/.cache/latentatlas/personas``."""
    env = os.environ.get(ROOT_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "latentatlas" / "personas"


def model_dir_name(model: str) -> str:
    """The reference project's directory name for a model id (``"/"`` becomes ``"__"``)."""
    return str(model).replace("/", "__")


def activation_config_name(model: str, mask_strategy: str = DEFAULT_MASK_STRATEGY) -> str:
    """The Hub dataset config name: ``<model_dir>__<mask_strategy>``."""
    return f"{model_dir_name(model)}__{_mask(mask_strategy)}"


def _mask(mask_strategy: Any) -> str:
    if mask_strategy is None:
        return DEFAULT_MASK_STRATEGY
    return str(getattr(mask_strategy, "value", mask_strategy))  # accepts the reference's enum


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty string, got {value!r}")
    if "/" in value or "\\" in value or value in (".", "..") or "\x00" in value:
        raise ValueError(f"{what} cannot contain path separators or be '.'/'..': {value!r}")
    return value


def _as_vector(vector: Any, persona_id: str) -> np.ndarray:
    """Accept numpy arrays, array-likes and torch tensors (without importing torch)."""
    arr = np.asarray(to_numpy(vector))
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"vector for {persona_id!r} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"vector for {persona_id!r} must have shape (num_layers, hidden_size), got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"vector for {persona_id!r} is empty: shape {arr.shape}")
    if arr.dtype != np.float32 and arr.dtype != np.float16:  # float32 on disk, as the Hub dataset
        arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"vector for {persona_id!r} contains NaN or infinity")
    return np.ascontiguousarray(arr)


# ---------------------------------------------------------------------------------------- reading


def _read_safetensors(path: Path) -> np.ndarray:
    """Read the ``activations`` tensor of one file as float32, with errors that name the file.

    bfloat16 (which numpy lacks, and which torch users often save) is widened by
    :func:`latentatlas._io.read_safetensors`.
    """
    try:
        tensors = read_safetensors(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"persona vector file not found: {path}") from None
    except ValueError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise ValueError(f"corrupt safetensors file {path}: {reason}") from None
    if TENSOR_KEY not in tensors:
        raise ValueError(f"safetensors file {path} has no {TENSOR_KEY!r} tensor (keys: {sorted(tensors)})")
    arr = tensors[TENSOR_KEY]
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"tensor in {path} has unsupported dtype {arr.dtype}")
    return arr if arr.dtype == np.float32 else arr.astype(np.float32)


def _load_manifest_file(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"manifest not found: {path}") from None
    except ValueError as exc:
        raise ValueError(f"corrupt manifest {path}: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("personas"), dict):
        raise ValueError(f"manifest {path} is missing a personas mapping")
    for key in ("num_layers", "hidden_size"):
        v = manifest.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"manifest {path} has an invalid {key!r}: {v!r}")
    return manifest


def _shared_ids(per_variant: list[set[str]], warn_missing: bool) -> list[str]:
    if not per_variant:
        return []
    shared = set.intersection(*per_variant)
    if warn_missing and len(per_variant) > 1:
        skipped = len(set.union(*per_variant) - shared)
        if skipped:
            warnings.warn(f"Skipping {skipped} persona(s) missing one or more requested variants.", stacklevel=3)
    return sorted(shared)


def _as_variants(variants: Any, default: Sequence[str]) -> list[str]:
    if variants is None:
        return list(default)
    if isinstance(variants, str):
        return [variants]
    return list(variants)


class _ReadAPI:
    """The read side shared by the directory store and the Parquet store."""

    model: str
    mask_strategy: str

    def _variant_personas(self, variant: str) -> dict[str, dict[str, Any]]:  # pragma: no cover
        raise NotImplementedError

    def _variant_shape(self, variant: str) -> tuple[int, int]:  # pragma: no cover
        raise NotImplementedError

    def available_variants(self, variants: Sequence[str] | None = None) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    def _check_variant(self, variant: str) -> None:
        if variant not in self.available_variants():
            known = self.available_variants()
            raise FileNotFoundError(
                f"unknown variant {variant!r} for model {self.model!r} / mask strategy "
                f"{self.mask_strategy!r} in {self._where()}; available: {known}"
            )

    def _where(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def list_personas(self, variants: Sequence[str] | str | None = None, *, warn_missing: bool = True) -> list[str]:
        """Sorted persona ids present in every requested variant (warns about the skipped ones).

        ``variants=None`` means every available variant.
        """
        requested = _as_variants(variants, self.available_variants())
        for v in requested:
            self._check_variant(v)
        return _shared_ids([set(self._variant_personas(v)) for v in requested], warn_missing)

    def persona_names(
        self, persona_ids: Sequence[str] | None = None, variants: Sequence[str] | str | None = None
    ) -> dict[str, str]:
        """``{persona_id: display name}`` in ``persona_ids`` order, first name found across variants.

        Ids without a stored name map to themselves.
        """
        requested = _as_variants(variants, self.available_variants())
        for v in requested:
            self._check_variant(v)
        if persona_ids is None:
            persona_ids = self.list_personas(requested, warn_missing=False)
        names: dict[str, str] = {}
        for pid in persona_ids:
            names[pid] = pid
            for v in requested:
                name = self._variant_personas(v).get(pid, {}).get("name")
                if isinstance(name, str) and name:
                    names[pid] = name
                    break
        return names

    def list_layers(
        self, variants: Sequence[str] | str | None = None, persona_ids: Sequence[str] | None = None
    ) -> list[int]:
        """Layer indices shared by the requested variants, ``[0, ..., num_layers - 1]``.

        With ``persona_ids``, every id must exist in every variant (else ``FileNotFoundError``).
        """
        requested = _as_variants(variants, self.available_variants())
        shared: set[int] | None = None
        for v in requested:
            self._check_variant(v)
            if persona_ids:
                missing = [p for p in persona_ids if p not in self._variant_personas(v)]
                if missing:
                    raise FileNotFoundError(f"persona(s) {missing} not found in variant {v!r} ({self._where()})")
            layers = set(range(self._variant_shape(v)[0]))
            shared = layers if shared is None else shared & layers
        return sorted(shared or set())

    def sample_ids(self, variant: str, persona_id: str) -> list[str]:
        """The sample ids recorded for one persona (provenance only)."""
        self._check_variant(variant)
        entry = self._variant_personas(variant).get(persona_id)
        if entry is None:
            raise FileNotFoundError(f"persona {persona_id!r} not found in variant {variant!r} ({self._where()})")
        return list(entry.get("sample_ids", []))


# ------------------------------------------------------------------------------------ the store


class PersonaVectorStore(_ReadAPI):
    """Per-layer persona vectors in the persona-vectors directory layout.

    Parameters
    ----------
    model : str
        Model id, e.g. ``"google/gemma-2-9b-it"`` (stored under ``google__gemma-2-9b-it``).
    mask_strategy : str, default "answer_mean"
        Token-mask strategy the vectors were averaged with (a directory level).
    root : path, optional
        Store root. Default: ``$LATENTATLAS_PERSONA_ROOT`` or ``~/.cache/latentatlas/personas``.
        A root that does not exist is an error when reading (saving creates it).

    Examples
    --------
    >>> store = PersonaVectorStore("google/gemma-2-9b-it", root="artifacts/activations")  # doctest: +SKIP
    >>> store.save("biography", "p001", vec, name="Ada", sample_ids=["q1", "q2"])         # doctest: +SKIP
    >>> store.load("biography", "p001").shape                                              # doctest: +SKIP
    (42, 3584)
    """

    def __init__(
        self,
        model: str,
        mask_strategy: str = DEFAULT_MASK_STRATEGY,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise TypeError(f"model must be a non-empty string, got {model!r}")
        self.model = model
        self.mask_strategy = _check_name(_mask(mask_strategy), "mask_strategy")
        self.root = Path(root).expanduser() if root is not None else default_root()
        self._manifests: dict[str, tuple[float, int, dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"PersonaVectorStore({self.model!r}, mask_strategy={self.mask_strategy!r}, root={str(self.root)!r})"

    # the reference project's attribute names
    @property
    def model_name(self) -> str:
        return self.model

    @property
    def root_dir(self) -> Path:
        return self.root

    @property
    def base_dir(self) -> Path:
        """``<root>/<model_dir>/<mask_strategy>``: one sub-directory per variant."""
        return self.root / model_dir_name(self.model) / self.mask_strategy

    def variant_dir(self, variant: str) -> Path:
        return self.base_dir / _check_name(variant, "variant")

    def tensor_path(self, variant: str, persona_id: str) -> Path:
        return self.variant_dir(variant) / f"{_check_name(persona_id, 'persona_id')}{_SUFFIX}"

    def _where(self) -> str:
        return str(self.base_dir)

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise FileNotFoundError(f"persona store root does not exist: {self.root}")

    # -- manifest ----------------------------------------------------------------------------

    def manifest(self, variant: str) -> dict[str, Any]:
        """The parsed ``manifest.json`` of a variant (cached until the file changes)."""
        self._check_root()
        path = self.variant_dir(variant) / MANIFEST_FILENAME
        try:
            st = path.stat()
        except FileNotFoundError:
            known = self.available_variants()
            raise FileNotFoundError(
                f"unknown variant {variant!r} for model {self.model!r} / mask strategy "
                f"{self.mask_strategy!r}: no {path}; available: {known}"
            ) from None
        cached = self._manifests.get(variant)
        if cached is not None and cached[:2] == (st.st_mtime, st.st_size):
            return cached[2]
        manifest = _load_manifest_file(path)
        self._manifests[variant] = (st.st_mtime, st.st_size, manifest)
        return manifest

    def _variant_personas(self, variant: str) -> dict[str, dict[str, Any]]:
        return self.manifest(variant)["personas"]

    def _variant_shape(self, variant: str) -> tuple[int, int]:
        m = self.manifest(variant)
        return int(m["num_layers"]), int(m["hidden_size"])

    def _check_variant(self, variant: str) -> None:
        self.manifest(variant)

    def available_variants(self, variants: Sequence[str] | None = None) -> list[str]:
        """Variants with at least one saved persona (among ``variants`` if given, else all, sorted)."""
        self._check_root()
        if variants is None:
            base = self.base_dir
            cands = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        else:
            cands = _as_variants(variants, ())
        out = []
        for v in cands:
            path = self.variant_dir(v) / MANIFEST_FILENAME
            if path.is_file():
                try:
                    if _load_manifest_file(path)["personas"]:
                        out.append(v)
                except ValueError:
                    continue
        return out

    def shape(self, variant: str) -> tuple[int, int]:
        """``(num_layers, hidden_size)`` of a variant, from its manifest."""
        return self._variant_shape(variant)

    # -- write -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, vdir: Path) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX: atomic renames only
            yield
            return
        with open(vdir / _LOCK, "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def save(
        self,
        variant: str,
        persona_id: str,
        vector: Any,
        *,
        name: str | None = None,
        sample_ids: Sequence[str] = (),
    ) -> Path:
        """Save one persona's vector (``(num_layers, hidden_size)``) and record it in the manifest.

        The tensor file is written first (temp + rename), then the manifest is updated under a lock
        (temp + rename). Saving a shape that differs from the variant's manifest is a ValueError.
        ``name`` defaults to ``persona_id``. Returns the tensor file's path.
        """
        vdir = self.variant_dir(variant)
        path = self.tensor_path(variant, persona_id)
        arr = _as_vector(vector, persona_id)
        if isinstance(sample_ids, str):
            raise TypeError("sample_ids must be a sequence of strings, not a single string")
        ids = [str(s) for s in sample_ids]
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {type(name).__name__}")
        from safetensors.numpy import save as st_save

        vdir.mkdir(parents=True, exist_ok=True)
        with self._locked(vdir):
            mpath = vdir / MANIFEST_FILENAME
            if mpath.exists():
                manifest = _load_manifest_file(mpath)
                want = (manifest["num_layers"], manifest["hidden_size"])
                if tuple(arr.shape) != want:
                    raise ValueError(
                        f"tensor shape {tuple(arr.shape)} for {persona_id!r} does not match the manifest "
                        f"{mpath} (num_layers={want[0]}, hidden_size={want[1]})"
                    )
            else:
                manifest = {"num_layers": int(arr.shape[0]), "hidden_size": int(arr.shape[1]), "personas": {}}
            atomic_write_bytes(path, st_save({TENSOR_KEY: arr}))
            manifest["personas"][persona_id] = {"name": name if name else persona_id, "sample_ids": ids}
            atomic_write_text(mpath, json.dumps(manifest, indent=2))
        self._manifests.pop(variant, None)
        return path

    # -- read --------------------------------------------------------------------------------

    def load(self, variant: str, persona_id: str) -> np.ndarray:
        """One persona's vector, float32 ``(num_layers, hidden_size)``; checked against the manifest."""
        manifest = self.manifest(variant)
        _check_name(persona_id, "persona_id")
        if persona_id not in manifest["personas"]:
            raise FileNotFoundError(
                f"no vector for persona {persona_id!r} in {self.variant_dir(variant) / MANIFEST_FILENAME}"
            )
        path = self.tensor_path(variant, persona_id)
        arr = _read_safetensors(path)
        want = (manifest["num_layers"], manifest["hidden_size"])
        if arr.shape != want:
            raise ValueError(
                f"{path} holds a tensor of shape {arr.shape} but its manifest says "
                f"(num_layers={want[0]}, hidden_size={want[1]})"
            )
        return arr

    def load_into(self, variant: str, persona_id: str, out: np.ndarray) -> None:
        """Load one vector straight into ``out`` (a slice of a preallocated array)."""
        out[...] = self.load(variant, persona_id)


# ----------------------------------------------------------------------------- Hub Parquet layout


def _pyarrow() -> Any:
    feature = "reading/writing the Hub Parquet layout"
    return import_optional("pyarrow", feature=feature), import_optional("pyarrow.parquet", feature=feature)


def _split_files(config_dir: Path, variant: str) -> list[Path]:
    return sorted(p for p in config_dir.glob(f"{variant}-*.parquet") if p.name[len(variant)] == "-") or sorted(
        config_dir.glob(f"{variant}.parquet")
    )


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
    back as the reference project's ``push_to_hub`` wrote it. Returns the files written.
    """
    pa, pq = _pyarrow()
    config_dir = Path(out_dir) / activation_config_name(store.model, store.mask_strategy)
    written = []
    for variant in _as_variants(variants, store.available_variants()):
        manifest = store.manifest(variant)
        L, H = manifest["num_layers"], manifest["hidden_size"]
        ids = sorted(manifest["personas"])
        vec_type = pa.list_(pa.list_(pa.float32()))
        vectors = [store.load(variant, pid) for pid in ids]
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
                ("vector", vec_type),
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
        path = config_dir / f"{variant}-00000-of-00001.parquet"
        written.append(atomic_write_bytes(path, sink.getvalue().to_pybytes()))
    return written


def _nested_to_numpy(col: Any, path: Path) -> np.ndarray:
    """A list<list<float>> (or fixed-size list) column as a float32 (n, num_layers, hidden) array."""
    import pyarrow.compute as pc

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
    return np.asarray(values, dtype=np.float32).reshape(n, int(outer_len[0]), int(inner_len[0]))


class ParquetPersonaStore(_ReadAPI):
    """Read-only store over the Hub dataset's Parquet files on local disk.

    Parameters
    ----------
    path : path
        Either a dataset directory holding ``<model_dir>__<mask>/`` config folders (a local clone
        of the Hub dataset or :func:`export_parquet`'s ``out_dir``), or a config folder itself.
    model, mask_strategy : str
        Select the config ``<model_dir>__<mask_strategy>``.

    Has the same read API as :class:`PersonaVectorStore`, so every loader accepts it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        model: str,
        mask_strategy: str = DEFAULT_MASK_STRATEGY,
    ) -> None:
        self.model = model
        self.mask_strategy = _mask(mask_strategy)
        path = Path(path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"persona store root does not exist: {path}")
        config = activation_config_name(model, self.mask_strategy)
        self.config_dir = path / config if (path / config).is_dir() else path
        self._rows: dict[str, tuple[dict[str, dict[str, Any]], dict[str, np.ndarray], tuple[int, int]]] = {}

    def _where(self) -> str:
        return str(self.config_dir)

    def available_variants(self, variants: Sequence[str] | None = None) -> list[str]:
        names = set()
        for p in self.config_dir.glob("*.parquet"):
            stem = p.stem
            names.add(stem.split("-")[0] if "-" in stem and stem.rsplit("-of-", 1)[-1].isdigit() else stem)
        if variants is None:
            return sorted(names)
        return [v for v in _as_variants(variants, ()) if v in names]

    def _read(self, variant: str) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray], tuple[int, int]]:
        if variant in self._rows:
            return self._rows[variant]
        files = _split_files(self.config_dir, variant)
        if not files:
            raise FileNotFoundError(
                f"unknown variant {variant!r}: no {variant}-*.parquet in {self.config_dir}; "
                f"available: {self.available_variants()}"
            )
        pa, pq = _pyarrow()
        meta: dict[str, dict[str, Any]] = {}
        vecs: dict[str, np.ndarray] = {}
        shape: tuple[int, int] | None = None
        for f in files:
            try:
                table = pq.read_table(f)
            except Exception as exc:
                raise ValueError(f"corrupt parquet file {f}: {exc}") from None
            missing = {"persona_id", "vector"} - set(table.column_names)
            if missing:
                raise ValueError(f"parquet file {f} lacks column(s) {sorted(missing)}")
            ids = table.column("persona_id").to_pylist()
            names = table.column("name").to_pylist() if "name" in table.column_names else ids
            sids = table.column("sample_ids").to_pylist() if "sample_ids" in table.column_names else [[]] * len(ids)
            block = _nested_to_numpy(table.column("vector").combine_chunks(), f)
            if shape is None:
                shape = block.shape[1:]
            elif block.shape[1:] != shape:
                raise ValueError(f"vectors in {f} have shape {block.shape[1:]}, other files have {shape}")
            for i, pid in enumerate(ids):
                vecs[pid] = block[i]
                meta[pid] = {"name": names[i] or pid, "sample_ids": list(sids[i] or [])}
        if shape is None:
            raise ValueError(f"variant {variant!r} in {self.config_dir} has no rows")
        self._rows[variant] = (meta, vecs, shape)
        return self._rows[variant]

    def _check_variant(self, variant: str) -> None:
        self._read(variant)

    def _variant_personas(self, variant: str) -> dict[str, dict[str, Any]]:
        return self._read(variant)[0]

    def _variant_shape(self, variant: str) -> tuple[int, int]:
        return self._read(variant)[2]

    def shape(self, variant: str) -> tuple[int, int]:
        return self._variant_shape(variant)

    def load(self, variant: str, persona_id: str) -> np.ndarray:
        vecs = self._read(variant)[1]
        if persona_id not in vecs:
            raise FileNotFoundError(f"no vector for persona {persona_id!r} in variant {variant!r} ({self.config_dir})")
        return vecs[persona_id]

    def load_into(self, variant: str, persona_id: str, out: np.ndarray) -> None:
        out[...] = self.load(variant, persona_id)

    def to_store(self, root: str | os.PathLike[str], variants: Sequence[str] | str | None = None) -> PersonaVectorStore:
        """Copy the Parquet rows into a directory store at ``root`` (the reference layout)."""
        store = PersonaVectorStore(self.model, self.mask_strategy, root=root)
        for v in _as_variants(variants, self.available_variants()):
            meta, vecs, _ = self._read(v)
            for pid in sorted(vecs):
                store.save(v, pid, vecs[pid], name=meta[pid]["name"], sample_ids=meta[pid]["sample_ids"])
        return store
