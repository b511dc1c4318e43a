"""The persona analysis as HTML: the four ``analyze`` files and the main job's persona chapter."""

from __future__ import annotations

import html
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import datasets
from .._io import safe_name
from ..lm.backends import GGUFBackend
from ..report import Section, write_figure_html
from .analysis import (
    as_layered_samples,
    layered_analysis,
    load_persona_vectors,
    persona_spectral_energy,
    scree_layers,
    validate_layers,
)
from .attributes import (
    PersonaAttributeTable,
    attribute_color_kwargs,
    synthetic_persona_dataset,
    synthetic_persona_vectors,
)
from .extract import demo_store
from .plots import build_layered_figure, build_pair_similarity_figure, plot_scree, plot_spectral_energy
from .projection import LayeredProjectionData, prepare_layered_projection_data
from .steering import attribute_groups, mean_difference_directions, write_control_vector
from .store import PersonaVectorStore

__all__ = [
    "analyze_store",
    "demo_chapter",
    "run_saved_activation_analysis",
    "write_analysis_files",
]


def write_analysis_files(
    samples: Any,
    out: str | os.PathLike[str],
    *,
    variant: str,
    mask_strategy: str,
    layers: Sequence[int] | None = None,
    progress: bool = False,
) -> dict[str, Path]:
    """Write the four ``analyze`` HTML files for one variant's samples; returns ``{key: path}``.

    ``<variant>_<mask>_persona_vector_pca.html`` (PCA with a layer slider),
    ``..._persona_vector_similarity.html`` (centred cosine similarity, layer slider),
    ``..._persona_pair_similarity.html`` (persona pairs across layers) and
    ``..._pca_scree.html`` (explained variance at layers {0, L//3, 2L//3, L-1} or ``layers``).
    The PCA and similarity views share one Gram matrix per layer.
    """
    s = as_layered_samples(samples)
    sel = validate_layers(s.vectors, layers)
    safe_name(variant, "variant")  # both become part of the output file names
    safe_name(mask_strategy, "mask_strategy")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{variant}_{mask_strategy}"
    scree_sel = scree_layers(s.num_layers, layers)
    union = sorted(set(sel) | set(scree_sel))
    res = layered_analysis(s.vectors, union, n_components=2, spectrum_layers=scree_sel, progress=progress)
    at = {layer: i for i, layer in enumerate(union)}
    coords = {layer: res.pca[at[layer]] for layer in sel}  # type: ignore[index]
    pdata = LayeredProjectionData.from_coords("pca", coords, normalize=True)
    paths: dict[str, Path] = {}
    fig = build_layered_figure(
        s, "pca", layers=sel, projection_data=pdata, title=f"{variant} {mask_strategy} persona vector PCA", webgl=None
    )
    paths["persona_vector_pca"] = write_figure_html(fig, out / f"{stem}_persona_vector_pca.html")
    fig = build_layered_figure(
        s, "similarity", layers=sel, title=f"{variant} {mask_strategy} persona vector centered cosine similarity"
    )
    paths["persona_vector_similarity"] = write_figure_html(fig, out / f"{stem}_persona_vector_similarity.html")
    fig = build_pair_similarity_figure(  # 12 pairs and a slider: all n(n-1)/2 would not fit in a page
        s,
        layers=sel,
        title=f"{variant} {mask_strategy} persona-pair similarity across layers",
        max_pairs=12,
        layer_slider=True,
    )
    paths["persona_pair_similarity"] = write_figure_html(fig, out / f"{stem}_persona_pair_similarity.html")
    ratios = {f"layer {layer}": res.spectra[layer] for layer in scree_sel}
    fig = plot_scree(ratios, title=f"{variant} {mask_strategy} PCA explained variance")
    paths["pca_scree"] = write_figure_html(fig, out / f"{stem}_pca_scree.html")
    return paths


def analyze_store(
    store: Any,
    variant: str,
    out: str | os.PathLike[str],
    *,
    layers: Sequence[int] | None = None,
    persona_ids: Sequence[str] | None = None,
    include_baseline: bool = False,
    progress: bool = False,
) -> dict[str, Path]:
    """Load one variant from a store (directory or Parquet) and write the four HTML files."""
    safe_name(variant, "variant")  # it becomes part of the output file names
    store.shape(variant)  # a missing variant: FileNotFoundError listing the available ones
    if persona_ids is None:
        persona_ids = store.list_personas([variant], include_baseline=include_baseline)
    samples = load_persona_vectors(store, variant, persona_ids=persona_ids, progress=progress)
    return write_analysis_files(
        samples, out, variant=variant, mask_strategy=store.mask_strategy, layers=layers, progress=progress
    )


def run_saved_activation_analysis(
    model_name: str,
    activations_dir: str | os.PathLike[str] | None,
    output_dir: str | os.PathLike[str],
    variant: str,
    mask_strategy: object = "answer_mean",
    persona_ids: Sequence[str] | None = None,
    include_baseline: bool = False,
    layers: Sequence[int] | None = None,
) -> dict[str, Path]:
    """The persona-vectors project's entry point: the four HTML files from a directory store."""
    store = PersonaVectorStore(model_name, activations_dir, mask_strategy)
    return analyze_store(
        store, variant, output_dir, layers=layers, persona_ids=persona_ids, include_baseline=include_baseline
    )


# ------------------------------------------------------------------------------ demo chapter


def _real_store(cache_dir: Path, verbose: bool) -> tuple[Any, str, Any, str]:
    """Real persona vectors of the packaged SmolLM2 (:func:`.extract.demo_store`), with the prompt set's attributes."""
    store, variant = demo_store(cache_dir, verbose=verbose)
    table = PersonaAttributeTable(datasets.persona_prompts())
    return store, variant, table, f"{store.model} (real decoder-block outputs, mask strategy {store.mask_strategy})"


def _synthetic_store(root: Path) -> tuple[Any, str, Any, str]:
    table = synthetic_persona_dataset(60, seed=0)
    vectors = synthetic_persona_vectors(table, num_layers=16, hidden_size=128, seed=0)
    store = PersonaVectorStore("latentatlas/synthetic-personas", root, array_type="numpy")
    for pid, name, vec in zip(table.persona_ids, table.names(), vectors):
        store.save("biography", pid, name, vec, [f"{pid}/q{j}" for j in range(3)])
    return store, "biography", table, "synthetic persona vectors (60 personas × 16 layers × 128, attribute-driven)"


_STEER_PROMPTS = ("How was your day?", "What do you think of Mondays?")
_STEER_SCALES = (-1.0, 0.0, 1.0)


def _steering_html(store: Any, variant: str, table: Any, pdir: Path, max_new_tokens: int = 16) -> str:
    """Cheerful-minus-grumpy control vector from the real store, and the model's answers at scales -1, 0, +1.

    Adds about 12 s of CPU to the demo (model load + 3 batched generations of 16 tokens).
    """
    ids = store.list_personas([variant], warn_missing=False)
    pos, neg = attribute_groups(table, "temperament", "cheerful", "grumpy", ids)
    directions = mean_difference_directions(store, variant, pos, neg)
    path = write_control_vector(directions, pdir / "cheerful_minus_grumpy.gguf", model_hint="llama")
    backend = GGUFBackend(model_name=store.model)
    prompts = [backend.encode_chat([{"role": "user", "content": q}]) for q in _STEER_PROMPTS]
    rows = []
    for scale in _STEER_SCALES:
        out, _ = backend.generate_ids(prompts, max_new_tokens, control_vector=directions, scale=scale)
        for q, ids_ in zip(_STEER_PROMPTS, out):
            answer = backend.decode(ids_)
            rows.append(f"<tr><td>{scale:+g}</td><td>{html.escape(q)}</td><td>{html.escape(answer)}</td></tr>")
    steered = np.flatnonzero(directions.any(axis=1))
    return (
        f"<h3>Steering with a llama.cpp control vector</h3><p>Mean of the {len(pos)} cheerful minus the "
        f"{len(neg)} grumpy personas, blocks {steered[0]}–{steered[-1]}, written as "
        f"<a href='personas/{html.escape(path.name)}'>{html.escape(path.name)}</a> (loads in "
        "<code>llama-completion -m MODEL.gguf --control-vector-scaled FILE:SCALE</code>); the same model's greedy answers with "
        "scale × direction.N added after block N:</p>"
        f"<table><tr><th>scale</th><th>prompt</th><th>answer ({max_new_tokens} tokens)</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _pick_attribute(table: Any) -> str | None:
    fields = table.attribute_schema["persona_fields"]
    for pref in ("occupation", "region", "age", "education"):
        if pref in fields:
            return pref
    return next(iter(fields), None)


def demo_chapter(out: Path, *, verbose: bool = True) -> list[Section]:
    """The persona chapter of ``latentatlas demo``: the four analyze files plus attribute and spectral views.

    Uses real vectors from :func:`latentatlas.personas.extract.demo_store` (the packaged SmolLM2)
    when they can be built; otherwise (model package not installed, extraction failed) a
    synthetic attribute-driven persona set written to a temporary store under ``out`` (removed
    afterwards), with a note saying why. Files go to ``out/personas/``.
    """
    out = Path(out)
    pdir = out / "personas"
    pdir.mkdir(parents=True, exist_ok=True)
    tmp: str | None = None
    note = ""
    try:
        store, variant, table, source = _real_store(out / "persona_store", verbose)
    except Exception as exc:  # no model package or a failed extraction: say so and use the synthetic set
        note = f"<p>Real persona vectors were not available ({html.escape(type(exc).__name__)}: {html.escape(str(exc))}); using the synthetic set.</p>"
        if verbose:
            print(f"personas: real vectors unavailable ({exc}); using synthetic vectors")
        tmp = tempfile.mkdtemp(prefix=".synthetic_store_", dir=out)
        store, variant, table, source = _synthetic_store(Path(tmp))
    try:
        samples = load_persona_vectors(store, variant)
        files = write_analysis_files(samples, pdir, variant=variant, mask_strategy=store.mask_strategy)
        n, L, H = samples.vectors.shape
        extra = _attribute_views(samples, table, pdir, variant, store.mask_strategy)
        sl = scree_layers(L)
        energy = persona_spectral_energy(samples, sl, k=8)
        spec_fig = plot_spectral_energy(
            energy, sl, samples.labels, title=f"{variant}: feature-graph Rayleigh energy of each persona (k=8)"
        )
        rows = _layer_rows(samples, sl, energy)
        links = "".join(
            f"<li><a href='personas/{html.escape(p.name)}'>{html.escape(p.name)}</a></li>"
            for p in [*files.values(), *extra.values()]
        )
        text = (
            f"<p>Source: {html.escape(source)}; variant <code>{html.escape(variant)}</code>; "
            f"{n} personas × {L} layers × {H} hidden units.</p>{note}"
            "<p>Interactive views (layer slider + play button):</p>"
            f"<ul>{links}</ul>"
            "<table><tr><th>layer</th><th>PC1 var</th><th>PC1+2 var</th><th>mean nearest-persona centred cos</th><th>median λ</th></tr>"
            + "".join(rows)
            + "</table>"
            "<p>PCA inputs are centred and L2-normalised per layer; similarity is centred cosine. "
            "λ is each persona's Rayleigh energy on the hidden-unit feature graph of its layer.</p>"
        )
        if tmp is None:  # real vectors of the packaged model: show them steering it
            text += _steering_html(store, variant, table, pdir)
        if verbose:
            print(f"personas: {n} personas × {L} layers × {H}; wrote {len(files) + len(extra)} HTML files to {pdir}")
        return [(f"Persona vectors — {source}", text, [spec_fig])]
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _attribute_views(samples: Any, table: Any, pdir: Path, variant: str, mask_strategy: str) -> dict[str, Path]:
    """Isomap figures coloured by a persona attribute (and by age), when the table covers every persona."""
    extra: dict[str, Path] = {}
    attr = None
    if table is not None:
        known = set(table.persona_ids)
        if all(p in known for p in samples.persona_ids):
            attr = _pick_attribute(table)
    if attr is None:
        return extra
    pdata = prepare_layered_projection_data(samples, "isomap", graph_overlay=True)
    for a in [attr] + [x for x in ("age",) if x != attr and x in table.attribute_schema["persona_fields"]]:
        fig = build_layered_figure(
            samples,
            "isomap",
            projection_data=pdata,
            graph_overlay=True,
            webgl=None,
            title=f"{variant}: Isomap coloured by {a}",
            **attribute_color_kwargs(table, a, samples.persona_ids),
        )
        extra[f"isomap_{a}"] = write_figure_html(fig, pdir / f"{variant}_{mask_strategy}_isomap_{a}.html")
    return extra


def _layer_rows(samples: Any, sl: list[int], energy: np.ndarray) -> list[str]:
    """A table row per layer of ``sl``: PC1 and PC1+2 variance, nearest-persona centred cosine, median λ."""
    n = samples.vectors.shape[0]
    res = layered_analysis(samples, sl, n_components=2, similarity=True)
    rows = []
    for i, layer in enumerate(sl):
        S = res.similarity[i]  # type: ignore[index]
        r = res.explained_variance_ratio[i]  # type: ignore[index]
        nearest = np.where(np.eye(n, dtype=bool), -np.inf, S).max(axis=1).mean()
        rows.append(
            f"<tr><td>{layer}</td><td>{r[0]:.3f}</td><td>{r[:2].sum():.3f}</td><td>{nearest:+.3f}</td>"
            f"<td>{np.median(energy[i]):.4f}</td></tr>"
        )
    return rows
