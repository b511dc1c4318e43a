"""The scikit-learn estimator protocol without importing scikit-learn.

``get_params`` / ``set_params`` read the ``__init__`` signature exactly as ``sklearn.base.BaseEstimator``
does, so ``sklearn.base.clone``, grid searches and pipelines work on latentatlas estimators, while
``import latentatlas`` does not pay the ~1 s that importing scikit-learn costs.
"""

from __future__ import annotations

import inspect
from typing import Any

from ._display import fmt, html_card

__all__ = ["Estimator"]


class Estimator:
    """Base class: constructor arguments are the parameters, stored unchanged as attributes."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments as a dict (``deep`` expands nested estimators, as scikit-learn)."""
        out: dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Estimator:
        """Set constructor arguments by name; unknown names raise ValueError."""
        valid = self._param_names()
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {', '.join(valid)}")
            if sub:
                getattr(self, name).set_params(**{sub: value})
            else:
                setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values() if p.name != "self"
        }
        changed = [
            f"{k}={v!r}"
            for k, v in self.get_params(deep=False).items()
            if defaults.get(k) is not v and defaults.get(k) != v
        ]
        head = f"{type(self).__name__}({', '.join(changed)})"
        facts = self._fitted_facts()
        return head if not facts else head + " fitted: " + ", ".join(f"{k} {fmt(v)}" for k, v in facts.items())

    def _fitted_facts(self) -> dict[str, Any]:
        """What a fitted estimator learnt, for its reprs (empty before ``fit``); estimators override it."""
        return {}

    def _repr_html_(self) -> str:
        facts = {f"{k} (param)": v for k, v in self.get_params(deep=False).items()} | self._fitted_facts()
        return html_card(f"{type(self).__name__}" + ("" if self._fitted_facts() else " (not fitted)"), facts)
