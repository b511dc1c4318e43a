"""Optional dependencies in one place: lazy imports with an install hint, and type sniffing.

Importing latentatlas never imports an optional package; an area asks for one here when a user
calls the feature that needs it, and a missing package gives one message that says what to install.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

# module -> the pip requirement that brings it (an extra of latentatlas where one exists)
_HINTS = {
    "umap": "pip install 'latentatlas[umap]'",
    "faiss": "pip install 'latentatlas[minima]'",
    "pyarrow": "pip install 'latentatlas[parquet]'",
    "onnxruntime": "pip install 'latentatlas[text]'",
    "tokenizers": "pip install 'latentatlas[text]'",
    "gguf": "pip install 'latentatlas[llm]'",
    "dask": "pip install 'latentatlas[dask]'",
    "distributed": "pip install 'latentatlas[dask]'",
    "pandas": "pip install pandas",
    "jinja2": "pip install jinja2",
    "torch": "pip install torch",
    "transformers": "pip install torch transformers",
}


class MissingOptionalDependency(ModuleNotFoundError):
    """An optional package a feature needs is not installed; the message says what to install.

    A ModuleNotFoundError (so ``except ImportError`` still catches it). The command line turns it
    into its one-line error (``latentatlas <cmd>: error: <feature> needs <pkg>: pip install ...``)
    and exit status 1, never a traceback.
    """


def import_optional(name: str, *, feature: str) -> ModuleType:
    """Import ``name`` or raise :class:`MissingOptionalDependency` saying which ``feature`` needs it and how to install it."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        top = name.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != top:
            raise  # the package is there but one of its own dependencies is missing: show that
        hint = _HINTS.get(top, f"pip install {top}")
        raise MissingOptionalDependency(f"{feature} needs {top}: {hint}", name=top) from exc


def is_torch_tensor(x: Any) -> bool:
    """True for a ``torch.Tensor``, without importing torch (if torch is not loaded, x cannot be one)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_dask_array(x: Any) -> bool:
    """True for a ``dask.array.Array``, without importing dask (if dask.array is not loaded, x cannot be one)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(x, da.Array)


def to_numpy(x: Any) -> Any:
    """A torch tensor as a float32 (or float64) NumPy array on the CPU; anything else unchanged."""
    if is_torch_tensor(x):
        t = x.detach().cpu()
        if not t.dtype.is_floating_point or t.dtype not in (sys.modules["torch"].float32, sys.modules["torch"].float64):
            t = t.float()
        return t.numpy()
    return x
