"""Deprecated location: the local-minima figures now live in :mod:`latentatlas.minima.plots`.

This module only re-exports them so ``from latentatlas.charts import ...`` keeps working.
"""

from __future__ import annotations

from .minima import plots as _plots
from .minima.plots import *  # noqa: F403  (the whole public surface of the new home)

__all__ = list(_plots.__all__)
