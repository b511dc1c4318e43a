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
  then writes a journal naming both (the commit point) and renames them into place
  (:func:`latentatlas._io.commit_files`). A process killed before the journal leaves the old
  variant; after it, the next reader or writer finishes the renames
  (:func:`latentatlas._io.roll_forward`). Either way the variant is the complete old or the complete
  new version. Writers of one variant are serialised by a lock file (:func:`latentatlas._io.locked`),
  so concurrent saves lose no manifest entry.
- **Checked reads.** A tensor holding NaN or infinity, a shape that disagrees with the manifest,
  a corrupt file or a manifest entry that is not an object is a ValueError naming the file.
- ``variants=None`` discovers every variant on disk instead of the original's fixed pair, and
  ``array_type`` chooses what :meth:`load` returns (``"auto"``: a torch tensor when torch is
  already imported, as the original always returns; NumPy otherwise).

The Hub dataset's Parquet layout (one config ``<model_dir>__<mask>``, one split per variant,
columns ``persona_id, name, sample_ids, vector``) is in :mod:`.hub_store`: its stores share this
module's read API (``_ReadAPI``).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import commit_files, inside, locked, read_safetensors, roll_forward, safe_name
from .._optional import to_numpy
from ._arrays import ARRAY_TYPES, as_array_type

__all__ = [
    "BASELINE_PERSONA_ID",
    "DEFAULT_MASK_STRATEGY",
    "MANIFEST_FILENAME",
    "SUPPORTED_VARIANTS",
    "TENSOR_KEY",
    "PersonaVectorStore",
    "activation_config_name",
    "default_root",
    "discover_activation_models",
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
                roll_forward(vdir, journal=_JOURNAL)
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
            roll_forward(vdir, journal=_JOURNAL)
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
            commit_files(
                vdir,
                {path.name: st_save({TENSOR_KEY: arr}), MANIFEST_FILENAME: json.dumps(manifest, indent=2).encode()},
                journal=_JOURNAL,
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
