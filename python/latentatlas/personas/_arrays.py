"""NumPy in, NumPy out; torch in, torch out — without importing torch unless the caller did.

The persona-vectors project passes ``torch.Tensor`` everywhere; latentatlas computes in NumPy.
Results go back in the caller's array type (``torch.from_numpy``: zero-copy on the CPU), so code
written against the original keeps calling ``.numpy()`` / ``.float()`` on them.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import numpy as np

from .._optional import import_optional, is_torch_tensor

__all__ = ["ARRAY_TYPES", "ArrayType", "as_array_type", "like"]

ArrayType = Literal["auto", "numpy", "torch"]
ARRAY_TYPES = ("auto", "numpy", "torch")


def like(result: np.ndarray, template: Any) -> Any:
    """``result`` as a torch tensor (on ``template``'s device) when ``template`` is one, else unchanged."""
    if not is_torch_tensor(template):
        return result
    torch = sys.modules["torch"]
    out = torch.from_numpy(np.ascontiguousarray(result))
    return out if template.device.type == "cpu" else out.to(template.device)


def as_array_type(result: np.ndarray, array_type: str) -> Any:
    """A store's result: torch for ``"torch"`` (and for ``"auto"`` when torch is already imported)."""
    if array_type == "numpy" or (array_type == "auto" and "torch" not in sys.modules):
        return result
    torch = import_optional("torch", feature="array_type='torch'")
    return torch.from_numpy(np.ascontiguousarray(result))
