"""The interop suite runs in the peers environment (``.peers/interop``: CPython 3.12 with torch on the CPU,
SAELens, sparsify, persona-vectors, transformers; built by ``make peers``), never in the package's own.

``make interop`` runs it; ``make test`` runs ``make interop``. Each test drives the real peer library.
"""

from __future__ import annotations

import os

# sparsify decodes with a Triton kernel when triton is importable; on a CPU-only machine it has no
# driver, so take sparsify's own documented CPU path (its eager embedding_bag decoder)
os.environ.setdefault("SPARSIFY_DISABLE_TRITON", "1")
# nothing in this suite may reach the network: the Hub and its telemetry are off
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
