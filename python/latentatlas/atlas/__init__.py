"""The linked atlas: one self-contained report that joins the areas' views of the same rows.

``build_atlas(X, sae=..., store=...)`` runs the local-minima comparison on an embedding matrix,
encodes its rows with a sparse autoencoder and reads a persona store, and writes one HTML file
whose pages link to each other by anchors:

* **summary** — one screen: sizes, energy quantiles, minima per method, SAE health, the store;
* **energy & minima** — the local-minima report (:func:`latentatlas.minima.report.minima_sections`);
* **rows** (``#row-i``) — the rows most methods call minima: energy, which methods, top latents;
* **latents** (``#latent-j``) — each latent's frequency, top rows (and keywords, given texts), its
  feature cluster;
* **feature clusters** (``#cluster-c``) — the latents' spectral clusters on their co-firing graph vs
  decoder-cosine clusters (:mod:`latentatlas.sae.features`), a card per cluster;
* **personas** — the store's per-layer analysis and its minima across layers
  (:func:`latentatlas.minima.minima_across_layers`).

Every page but the first two is optional (no SAE, no store) and says so when left out. Points
of the figures carry their ``#anchor`` (customdata), so clicking a point opens its card. One file
rather than a folder of pages: it opens from anywhere (e-mail, a notebook, ``file://``) with
plotly.js inlined once, and is written atomically as a whole. This package is on the top floor: it
composes the areas (minima, sae, personas), which never import each other.

Modules: :mod:`.load` (the inputs: report path, SAE, persona store, texts), :mod:`.build`
(:func:`build_atlas`, :class:`Atlas`, :func:`top_latents`), :mod:`.cards` (the pages' HTML: summary,
cards, map figure, persona sections), :mod:`.cli` (the ``latentatlas atlas`` sub-command).
"""

from __future__ import annotations

from .build import Atlas, build_atlas, top_latents
from .cli import register
from .load import check_out, open_store

__all__ = ["Atlas", "build_atlas", "check_out", "open_store", "register", "top_latents"]
