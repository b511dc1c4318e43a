"""Persona vectors on disk: the persona-vectors project's layout and store API, byte-compatible both ways.

Layout (REFERENCE §4)::

    <root>/<model with "/" -> "__">/<mask_strategy>/<variant>/<persona_id>.safetensors
    <root>/<model with "/" -> "__">/<mask_strategy>/<variant>/manifest.json

Each tensor file holds one tensor under the key ``"activations"`` of shape
``(num_layers, hidden_size)``; the manifest is
``{"num_layers": L, "hidden_size": H, "personas": {id: {"name": str, "sample_ids": [...]}}}``
written with ``json.dumps(..., indent=2)`` as the reference project writes it.

The API is the original's (``persona_vectors.artifacts``): ``PersonaVectorStore(model_name,
root_dir=None, mask_strategy="answer_mean", variants=("templated", "biography"))``, a per-call
``mask_strategy`` on every method, missing variants and personas giving empty results, and
``baseline_assistant`` hidden from :meth:`~PersonaVectorStore.list_personas` unless asked for.
``root_dir=None`` means ``$LATENTATLAS_PERSONA_ROOT``, else ``$ARTIFACTS_DIR/activations`` (the
original's default), else ``~/.cache/latentatlas/personas``.

What this store adds (never at the cost of the layout):

- **Safe paths.** Model, mask strategy, variant and persona id each become one path component
  through :func:`latentatlas._io.safe_name` (``"org/model"`` maps to ``org__model`` first), and the
  result is checked to stay inside the root (:func:`latentatlas._io.inside`): no name, from a
  caller or from a manifest, reads or writes outside the root.
- **Crash-consistent saves.** A save stages the tensor and the new manifest as temporary files,
  then writes a journal naming both (the commit point) and renames them into place. A process
  killed before the journal leaves the old variant; after it, the next reader or writer finishes
  the renames. Either way the variant is the complete old or the complete new version. Writers
  of one variant are serialised by a lock file, so concurrent saves lose no manifest entry.
- **Checked reads.** A tensor holding NaN or infinity, a shape that disagrees with the manifest,
  a corrupt file or a manifest entry that is not an object is a ValueError naming the file.
- ``variants=None`` discovers every variant on disk instead of the original's fixed pair, and
  ``array_type`` chooses what :meth:`load` returns (``"auto"``: a torch tensor when torch is
  already imported, as the original always returns; NumPy otherwise).

The Hub dataset's Parquet layout (one config ``<model_dir>__<mask>``, one split per variant,
columns ``persona_id, name, sample_ids, vector``) is read and written from local files by
:func:`export_parquet`, :class:`ParquetPersonaStore` and :class:`HFPersonaVectorStore`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, fsync_dir, inside, locked, read_safetensors, safe_name, write_staged
from .._optional import import_optional, to_numpy
from ._arrays import ARRAY_TYPES, as_array_type

__all__ = [
    "BASELINE_PERSONA_ID",
    "DEFAULT_MASK_STRATEGY",
    "MANIFEST_FILENAME",
    "SUPPORTED_VARIANTS",
    "TENSOR_KEY",
    "HFPersonaVectorStore",
    "ParquetPersonaStore",
    "PersonaVectorSource",
    "PersonaVectorStore",
    "activation_config_name",
    "default_root",
    "discover_activation_models",
    "export_parquet",
    "local_dataset_dir",
    "model_dir_name",
    "normalize_mask_strategy",
]

DEFAULT_MASK_STRATEGY = "answer_mean"
SUPPORTED_VARIANTS: tuple[str, ...] = ("templated", "biography")
BASELINE_PERSONA_ID = "baseline_assistant"  # persona_data's id for the no-persona baseline
MANIFEST_FILENAME = "manifest.json"
TENSOR_KEY = "activations"
_SUFFIX = ".safetensors"
_LOCK = ".manifest.lock"
_JOURNAL = ".commit.json"  # staged renames of a save in progress; its presence means "roll forward"
ROOT_ENV = "LATENTATLAS_PERSONA_ROOT"
ARTIFACTS_ENV = "ARTIFACTS_DIR"  # the original's artifacts directory (persona_data.environment)


def default_root() -> Path:
    """``$LATENTATLAS_PERSONA_ROOT``, else ``$ARTIFACTS_DIR/activations``, else ``~/.cache/latentatlas/personas``."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).expanduser()
    artifacts = os.environ.get(ARTIFACTS_ENV)
    if artifacts:
        return Path(artifacts).expanduser() / "activations"
    return Path.home() / ".cache" / "latentatlas" / "personas"


def model_dir_name(model_name: str) -> str:
    """The reference project's directory name for a model id (``"/"`` becomes ``"__"``), checked safe."""
    if not isinstance(model_name, str):
        raise TypeError(f"model_name must be a string, got {type(model_name).__name__}")
    return safe_name(model_name.replace("/", "__"), "model_name")


def normalize_mask_strategy(mask_strategy: object | None) -> str:
    """``None`` -> ``"answer_mean"``; an enum -> its ``.value``; else ``str(mask_strategy)``."""
    if mask_strategy is None:
        return DEFAULT_MASK_STRATEGY
    return str(getattr(mask_strategy, "value", mask_strategy))


def activation_config_name(model_name: str, mask_strategy: object | None = DEFAULT_MASK_STRATEGY) -> str:
    """The Hub dataset config name: ``<model_dir>__<mask_strategy>``."""
    return f"{model_dir_name(model_name)}__{_mask_name(mask_strategy)}"


def _mask_name(mask_strategy: object | None) -> str:
    return safe_name(normalize_mask_strategy(mask_strategy), "mask_strategy")


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


def _is_safe(name: str) -> bool:
    try:
        safe_name(name, "name")
    except ValueError:
        return False
    return True


def _as_variants(variants: Any, default: Sequence[str]) -> list[str]:
    if variants is None:
        return list(default)
    if isinstance(variants, str):
        return [variants]
    return list(variants)


# ---------------------------------------------------------------------------------------- reading


def _read_safetensors(path: Path) -> np.ndarray:
    """Read the ``activations`` tensor of one file as float32, with errors that name the file.

    bfloat16 (which numpy lacks, and which torch users often save) is widened by
    :func:`latentatlas._io.read_safetensors`. NaN or infinity is an error naming the file.
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
    arr = arr if arr.dtype == np.float32 else arr.astype(np.float32)
    if not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{path} holds {bad} non-finite value(s) (NaN or infinity)")
    return arr


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
    for pid, entry in manifest["personas"].items():
        if not isinstance(entry, dict):
            raise ValueError(f"manifest {path}: the entry of persona {pid!r} must be an object, got {entry!r}")
        name, sids = entry.get("name"), entry.get("sample_ids", [])
        if name is not None and not isinstance(name, str):
            raise ValueError(f"manifest {path}: persona {pid!r} has a non-string name {name!r}")
        if not isinstance(sids, list):
            raise ValueError(f"manifest {path}: persona {pid!r} has sample_ids that are not a list")
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


class _ReadAPI:
    """The original's read API, shared by the directory, Parquet and Hub stores.

    A subclass supplies ``_personas(variant, mask)`` (the manifest's persona mapping, or None when
    the variant is missing), ``_shape(variant, mask)``, ``_vector(variant, id, mask)`` (float32
    NumPy) and ``_default_variants()``.
    """

    model_name: str
    mask_strategy: str
    array_type: str = "auto"

    @property
    def model(self) -> str:
        """latentatlas's name for ``model_name``."""
        return self.model_name

    def _mask(self, mask_strategy: object | None) -> str:  # pragma: no cover
        raise NotImplementedError

    def _personas(self, variant: str, mask: str) -> dict[str, dict[str, Any]] | None:  # pragma: no cover
        raise NotImplementedError

    def _shape(self, variant: str, mask: str) -> tuple[int, int]:  # pragma: no cover
        raise NotImplementedError

    def _vector(self, variant: str, persona_id: str, mask: str) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _default_variants(self) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    def _check_id(self, persona_id: str) -> None:
        """Where ids become file names, check them before anything else."""

    def _where(self, mask: str) -> str:  # pragma: no cover
        raise NotImplementedError

    def _requested(self, variants: Sequence[str] | str | None) -> list[str]:
        return self._default_variants() if variants is None else _as_variants(variants, ())

    def _all_personas(self, variants: list[str], mask: str) -> list[dict[str, dict[str, Any]]]:
        """Each variant's persona mapping; ``[]`` when any variant is missing (as the original)."""
        found = []
        for v in variants:
            personas = self._personas(v, mask)
            if personas is None:
                return []
            found.append(personas)
        return found

    def _require(self, variant: str, mask: str) -> dict[str, dict[str, Any]]:
        personas = self._personas(variant, mask)
        if personas is None:
            raise FileNotFoundError(
                f"unknown variant {variant!r} for model {self.model_name!r} / mask strategy {mask!r} in "
                f"{self._where(mask)}; available: {self.available_variants(None, mask)}"
            )
        return personas

    def available_variants(
        self, variants: Sequence[str] | None = None, mask_strategy: object | None = None
    ) -> list[str]:
        """The requested variants (default: the store's ``variants``) that hold at least one persona."""
        mask = self._mask(mask_strategy)
        cands = self._default_variants() if variants is None else _as_variants(variants, ())
        return [v for v in cands if self._personas(v, mask)]

    def list_personas(
        self,
        variants: Sequence[str] | str | None = None,
        mask_strategy: object | None = None,
        warn_missing: bool = True,
        *,
        include_baseline: bool = False,
    ) -> list[str]:
        """Sorted persona ids present in every requested variant (warns about the skipped ones).

        ``[]`` when a requested variant does not exist. ``baseline_assistant`` is left out unless
        ``include_baseline=True``.
        """
        mask = self._mask(mask_strategy)
        requested = self._requested(variants)
        ids = _shared_ids([set(p) for p in self._all_personas(requested, mask)], warn_missing)
        return ids if include_baseline else [p for p in ids if p != BASELINE_PERSONA_ID]

    def persona_names(
        self,
        persona_ids: Sequence[str] | None = None,
        variants: Sequence[str] | str | None = None,
        mask_strategy: object | None = None,
    ) -> dict[str, str]:
        """``{persona_id: name}`` in ``persona_ids`` order: the first non-empty name across variants.

        Ids without a stored name are left out; ``{}`` when a requested variant does not exist.
        ``persona_ids=None`` means :meth:`list_personas` of the variants.
        """
        mask = self._mask(mask_strategy)
        requested = self._requested(variants)
        found = self._all_personas(requested, mask)
        if persona_ids is None:
            persona_ids = _shared_ids([set(p) for p in found], False)
        names: dict[str, str] = {}
        for pid in persona_ids:
            for personas in found:
                name = personas.get(pid, {}).get("name")
                if isinstance(name, str) and name:
                    names[pid] = name
                    break
        return names

    def list_layers(
        self,
        variants: Sequence[str] | str | None = None,
        persona_ids: Sequence[str] | None = None,
        mask_strategy: object | None = None,
        *,
        item_ids: Sequence[str] | None = None,
    ) -> list[int]:
        """Layer indices shared by the requested variants, ``[0, ..., num_layers - 1]``.

        ``[]`` when a variant is missing or a requested id (``persona_ids``, or ``item_ids`` as the
        original's newer name) is not in every variant.
        """
        mask = self._mask(mask_strategy)
        requested = self._requested(variants)
        found = self._all_personas(requested, mask)
        ids = persona_ids if persona_ids is not None else item_ids
        if not found or (ids and not set(ids) <= set.intersection(*(set(p) for p in found))):
            return []
        return list(range(min(self._shape(v, mask)[0] for v in requested)))

    def persona_sample_ids(
        self, prompt_variant: str, persona_id: str, mask_strategy: object | None = None
    ) -> list[str] | None:
        """The stored sample ids of a persona, or None when the variant or persona is missing."""
        personas = self._personas(prompt_variant, self._mask(mask_strategy)) or {}
        entry = personas.get(persona_id)
        sids = entry.get("sample_ids") if entry else None
        return [str(s) for s in sids] if isinstance(sids, list) else None

    def sample_ids(self, variant: str, persona_id: str, mask_strategy: object | None = None) -> list[str]:
        """Like :meth:`persona_sample_ids`, but a missing variant or persona is a FileNotFoundError."""
        mask = self._mask(mask_strategy)
        entry = self._require(variant, mask).get(persona_id)
        if entry is None:
            raise FileNotFoundError(f"persona {persona_id!r} not found in variant {variant!r} ({self._where(mask)})")
        return [str(s) for s in entry.get("sample_ids", [])]

    def shape(self, variant: str, mask_strategy: object | None = None) -> tuple[int, int]:
        """``(num_layers, hidden_size)`` of a variant."""
        mask = self._mask(mask_strategy)
        self._require(variant, mask)
        return self._shape(variant, mask)

    def load(self, prompt_variant: str, persona_id: str, mask_strategy: object | None = None) -> Any:
        """One persona's vector ``(num_layers, hidden_size)`` float32, as ``array_type`` says.

        A missing variant or persona is a FileNotFoundError.
        """
        return as_array_type(self.load_numpy(prompt_variant, persona_id, mask_strategy), self.array_type)

    def load_numpy(self, variant: str, persona_id: str, mask_strategy: object | None = None) -> np.ndarray:
        """:meth:`load` as a float32 NumPy array, whatever ``array_type`` is."""
        mask = self._mask(mask_strategy)
        self._check_id(persona_id)
        if persona_id not in self._require(variant, mask):
            raise FileNotFoundError(
                f"no vector for persona {persona_id!r} in variant {variant!r} of {self.model_name!r} / "
                f"{mask!r} ({self._where(mask)})"
            )
        return self._vector(variant, persona_id, mask)

    def load_into(self, variant: str, persona_id: str, out: np.ndarray, mask_strategy: object | None = None) -> None:
        """Load one vector straight into ``out`` (a slice of a preallocated array)."""
        out[...] = self.load_numpy(variant, persona_id, mask_strategy)


def _check_array_type(array_type: str) -> str:
    if array_type not in ARRAY_TYPES:
        raise ValueError(f"array_type must be one of: {', '.join(ARRAY_TYPES)}; got {array_type!r}")
    return array_type


# ------------------------------------------------------------------------------- crash-safe commit


def _stage(vdir: Path, final: str, data: bytes) -> str:
    """Write ``data`` to a fsynced temporary file in ``vdir``; returns its name."""
    return write_staged(vdir / final, data).name


def _plain(name: Any) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


def _roll_forward(vdir: Path) -> None:
    """Finish a committed save (journal present) and remove temporaries of interrupted ones.

    Call with the variant's lock held. Every rename is idempotent: a staged file that is no
    longer there was already renamed before the crash.
    """
    journal = vdir / _JOURNAL
    if journal.exists():
        try:
            staged = json.loads(journal.read_text(encoding="utf-8"))
        except ValueError:  # written atomically, so never torn; an alien file: ignore it
            staged = []
        for pair in staged if isinstance(staged, list) else []:
            if isinstance(pair, list) and len(pair) == 2 and all(_plain(p) for p in pair):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(vdir / pair[0], vdir / pair[1])
        fsync_dir(vdir)  # the renames are durable before the journal goes
        journal.unlink()  # a journal that survives a power loss is replayed harmlessly
    for tmp in vdir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _commit(vdir: Path, files: dict[str, bytes]) -> None:
    """Replace several files of ``vdir`` together: all old or all new, even across SIGKILL.

    Stage every file, write the journal (the commit point, itself staged and renamed), then
    roll forward. Call with the variant's lock held.
    """
    staged: list[list[str]] = []
    try:
        for name, data in files.items():
            staged.append([_stage(vdir, name, data), name])
        tmp = _stage(vdir, _JOURNAL, json.dumps(staged).encode("utf-8"))
        os.replace(vdir / tmp, vdir / _JOURNAL)
        fsync_dir(vdir)  # the commit point is durable before any file is replaced
    except BaseException:  # not committed: the old version stands; drop what was staged
        for name, _ in staged:
            (vdir / name).unlink(missing_ok=True)
        raise
    _roll_forward(vdir)


# ------------------------------------------------------------------------------------ the store


class PersonaVectorStore(_ReadAPI):
    """Per-layer persona vectors in the persona-vectors directory layout (the original's API).

    Parameters
    ----------
    model_name : str
        Model id, e.g. ``"google/gemma-2-9b-it"`` (stored under ``google__gemma-2-9b-it``).
    root_dir : path, optional
        Store root (``root=`` is an alias). Default: ``$LATENTATLAS_PERSONA_ROOT``, else
        ``$ARTIFACTS_DIR/activations``, else ``~/.cache/latentatlas/personas``.
    mask_strategy : str or enum, default "answer_mean"
        Token-mask strategy the vectors were averaged with (a directory level); every method
        also takes a per-call ``mask_strategy``.
    variants : sequence of str or None, default ("templated", "biography")
        The variants that ``variants=None`` arguments mean. ``None`` (latentatlas): every
        variant on disk.
    array_type : {"auto", "numpy", "torch"}
        What :meth:`load` returns. ``"auto"``: a torch tensor if torch is already imported
        (the original always returns one), else a NumPy array.

    Examples
    --------
    >>> store = PersonaVectorStore("google/gemma-2-9b-it", "artifacts/activations")  # doctest: +SKIP
    >>> store.save("biography", "p001", "Ada", vec, ["q1", "q2"])                    # doctest: +SKIP
    >>> store.load("biography", "p001").shape                                        # doctest: +SKIP
    (42, 3584)
    """

    def __init__(
        self,
        model_name: str,
        root_dir: str | os.PathLike[str] | None = None,
        mask_strategy: object | None = DEFAULT_MASK_STRATEGY,
        variants: Sequence[str] | None = SUPPORTED_VARIANTS,
        *,
        root: str | os.PathLike[str] | None = None,
        array_type: str = "auto",
    ) -> None:
        if not isinstance(model_name, str) or not model_name.strip():
            raise TypeError(f"model_name must be a non-empty string, got {model_name!r}")
        if root is not None and root_dir is not None:
            raise TypeError("pass root_dir or its alias root, not both")
        self.model_name = model_name
        self._model_dir = model_dir_name(model_name)
        self.mask_strategy = _mask_name(mask_strategy)
        self.variants = None if variants is None else tuple(_as_variants(variants, ()))
        for v in self.variants or ():
            safe_name(v, "variant")
        self.array_type = _check_array_type(array_type)
        given = root_dir if root_dir is not None else root
        self.root_dir = Path(given).expanduser() if given is not None else default_root()
        self._manifests: dict[Path, tuple[int, int, dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"PersonaVectorStore({self.model_name!r}, {str(self.root_dir)!r}, mask_strategy={self.mask_strategy!r})"

    @property
    def root(self) -> Path:
        """latentatlas's name for ``root_dir``."""
        return self.root_dir

    def _mask(self, mask_strategy: object | None) -> str:
        return self.mask_strategy if mask_strategy is None else _mask_name(mask_strategy)

    def _path(self, *parts: str) -> Path:
        """``root_dir / parts``, each part a safe name, checked to stay inside the root (symlinks too)."""
        inside(self.root_dir, *parts)
        return self.root_dir.joinpath(*parts)

    @property
    def base_dir(self) -> Path:
        """``<root>/<model_dir>/<mask_strategy>``: one sub-directory per variant."""
        return self._path(self._model_dir, self.mask_strategy)

    def variant_dir(self, variant: str, mask_strategy: object | None = None) -> Path:
        return self._path(self._model_dir, self._mask(mask_strategy), safe_name(variant, "variant"))

    def tensor_path(self, variant: str, persona_id: str, mask_strategy: object | None = None) -> Path:
        name = safe_name(persona_id, "persona_id") + _SUFFIX
        return self._path(self._model_dir, self._mask(mask_strategy), safe_name(variant, "variant"), name)

    def _where(self, mask: str) -> str:
        return str(self._path(self._model_dir, mask))

    def _check_id(self, persona_id: str) -> None:
        safe_name(persona_id, "persona_id")

    def _default_variants(self) -> list[str]:
        if self.variants is not None:
            return list(self.variants)
        base = self.root_dir / self._model_dir / self.mask_strategy
        names = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        return [v for v in names if _is_safe(v)]  # other folders cannot be variants

    # -- manifest ----------------------------------------------------------------------------

    def _recover(self, vdir: Path) -> None:
        """Finish a save that a killed process committed (needs write access; else read as is)."""
        try:
            with locked(vdir, name=_LOCK):
                _roll_forward(vdir)
        except PermissionError:  # pragma: no cover - a read-only store cannot hold a torn save
            pass

    def _manifest_or_none(self, variant: str, mask: str) -> dict[str, Any] | None:
        vdir = self.variant_dir(variant, mask)
        if (vdir / _JOURNAL).exists():
            self._recover(vdir)
        path = vdir / MANIFEST_FILENAME
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        cached = self._manifests.get(path)
        if cached is not None and cached[:2] == (st.st_mtime_ns, st.st_size):
            return cached[2]
        manifest = _load_manifest_file(path)
        self._manifests[path] = (st.st_mtime_ns, st.st_size, manifest)
        return manifest

    def manifest(self, variant: str, mask_strategy: object | None = None) -> dict[str, Any]:
        """The parsed ``manifest.json`` of a variant (cached until the file changes)."""
        mask = self._mask(mask_strategy)
        m = self._manifest_or_none(variant, mask)
        if m is None:
            self._require(variant, mask)  # raises, listing what is there
        return m  # type: ignore[return-value]

    def _personas(self, variant: str, mask: str) -> dict[str, dict[str, Any]] | None:
        m = self._manifest_or_none(variant, mask)
        return None if m is None else m["personas"]

    def _shape(self, variant: str, mask: str) -> tuple[int, int]:
        m = self.manifest(variant, mask)
        return int(m["num_layers"]), int(m["hidden_size"])

    def _vector(self, variant: str, persona_id: str, mask: str) -> np.ndarray:
        want = self._shape(variant, mask)
        path = self.tensor_path(variant, persona_id, mask)
        arr = _read_safetensors(path)
        if arr.shape != want:
            raise ValueError(
                f"{path} holds a tensor of shape {arr.shape} but its manifest says "
                f"(num_layers={want[0]}, hidden_size={want[1]})"
            )
        return arr

    # -- write -------------------------------------------------------------------------------

    def save(
        self,
        prompt_variant: str,
        persona_id: str,
        persona_name: str | None,
        vectors: Any,
        sample_ids: Sequence[str] = (),
        mask_strategy: object | None = None,
    ) -> Path:
        """Save one persona's vectors ``(num_layers, hidden_size)`` and record it in the manifest.

        NumPy arrays, array-likes and torch tensors are accepted and stored as float32 (float16
        stays float16). ``persona_name`` None or empty means ``persona_id``. A shape that differs
        from the variant's manifest, NaN/inf or an unsafe name is an error before anything is
        written. The tensor and the manifest are replaced together (crash-consistent, see the
        module docstring) under the variant's lock. Returns the variant directory.
        """
        vdir = self.variant_dir(prompt_variant, mask_strategy)
        path = self.tensor_path(prompt_variant, persona_id, mask_strategy)
        arr = _as_vector(vectors, persona_id)
        if isinstance(sample_ids, str):
            raise TypeError("sample_ids must be a sequence of strings, not a single string")
        ids = [str(s) for s in sample_ids]
        if persona_name is not None and not isinstance(persona_name, str):
            raise TypeError(f"persona_name must be a string or None, got {type(persona_name).__name__}")
        from safetensors.numpy import save as st_save

        vdir.mkdir(parents=True, exist_ok=True)
        with locked(vdir, name=_LOCK):
            _roll_forward(vdir)
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
            manifest["personas"][persona_id] = {"name": persona_name or persona_id, "sample_ids": ids}
            _commit(
                vdir,
                {path.name: st_save({TENSOR_KEY: arr}), MANIFEST_FILENAME: json.dumps(manifest, indent=2).encode()},
            )
        return vdir


def discover_activation_models(
    root_dir: str | os.PathLike[str], mask_strategy: object | None = DEFAULT_MASK_STRATEGY
) -> list[str]:
    """Model ids (``org__model`` -> ``org/model``) with at least one variant manifest for ``mask_strategy``."""
    root = Path(root_dir).expanduser()
    mask = _mask_name(mask_strategy)
    if not root.is_dir():
        return []
    models = []
    for model_root in sorted(p for p in root.iterdir() if p.is_dir()):
        strategy_root = model_root / mask
        try:
            if strategy_root.is_dir() and any((v / MANIFEST_FILENAME).is_file() for v in strategy_root.iterdir()):
                models.append(model_root.name.replace("__", "/"))
        except OSError:  # pragma: no cover - unreadable directory: not a model
            continue
    return models


# ----------------------------------------------------------------------------- Hub Parquet layout


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
