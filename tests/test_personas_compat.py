"""persona-vectors compatibility: a user of the original changes only the import.

Each test is written from the original's documented behaviour (its docs and signatures, see
shared/design/persona-vectors-compat.md): the store API, the loaders, the missing names, the
module layout (``persona_vectors.X`` -> ``latentatlas.personas.X``) and the figure structure.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import json
import warnings

import numpy as np
import pytest

from latentatlas.personas import analysis, artifacts, attributes, hub, plots
from latentatlas.personas.analysis import (
    AnalysisDataset,
    LayeredSamples,
    load_analysis_dataset,
    load_persona_vectors,
    load_variant_vectors,
)
from latentatlas.personas.artifacts import (
    BASELINE_PERSONA_ID,
    DEFAULT_MASK_STRATEGY,
    SUPPORTED_VARIANTS,
    HFPersonaVectorStore,
    PersonaVectorStore,
    activation_config_name,
    discover_activation_models,
    model_dir_name,
    normalize_mask_strategy,
)


def vec(value: float, L: int = 4, H: int = 8) -> np.ndarray:
    return np.arange(L * H, dtype=np.float32).reshape(L, H) + value


# ------------------------------------------------------------------------------- module layout

ORIGINAL_NAMES = {
    # every public name a persona-vectors user imports from these modules
    "analysis": [
        "AnalysisDataset", "LayeredSamples", "cluster_kmeans", "cosine_similarity_matrix", "load_analysis_dataset",
        "load_persona_vectors", "load_variant_vectors", "pca_explained_variance", "prepare_cluster_samples",
        "prepare_layer_mean_cluster_samples", "project_isomap", "project_pca", "project_umap",
        "run_saved_activation_analysis", "samples_to_numpy", "_samples_to_numpy", "PCA", "KMeans", "Isomap", "twonn",
    ],
    "artifacts": [
        "BASELINE_PERSONA_ID", "DEFAULT_MASK_STRATEGY", "SUPPORTED_VARIANTS", "HFPersonaVectorStore",
        "PersonaVectorSource", "PersonaVectorStore", "activation_config_name", "discover_activation_models",
        "model_dir_name", "normalize_mask_strategy",
    ],
    "plots": [
        "ClusterMode", "LayeredProjectionData", "ProjectionKind", "build_layered_figure",
        "build_pair_similarity_figure", "build_similarity_figures", "plot_attribute_layer_selectivity_heatmap",
        "plot_layer_similarity", "plot_metric_comparison", "plot_metric_over_layers", "plot_persona_dendrogram",
        "plot_scree", "prepare_kmeans_groups", "prepare_layered_projection_data", "save_plot_html",
    ],
    "attributes": [
        "DEFAULT_MAX_ATTRIBUTE_CATEGORIES", "attribute_color_kwargs", "attribute_display_label", "attribute_schema",
        "categorical_attribute_labels",
    ],
    "hub": ["parse_vector_config_name"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(ORIGINAL_NAMES))
def test_every_original_name_is_importable_module_for_module(module):
    mod = importlib.import_module(f"latentatlas.personas.{module}")
    missing = [n for n in ORIGINAL_NAMES[module] if not hasattr(mod, n)]
    assert not missing, f"latentatlas.personas.{module} lacks {missing}"


def test_signatures_take_the_original_arguments_in_order():
    def params(fn):
        return list(inspect.signature(fn).parameters)

    assert params(PersonaVectorStore)[:4] == ["model_name", "root_dir", "mask_strategy", "variants"]
    assert params(PersonaVectorStore.save)[1:7] == [
        "prompt_variant", "persona_id", "persona_name", "vectors", "sample_ids", "mask_strategy"
    ]  # fmt: skip
    assert params(PersonaVectorStore.load)[1:4] == ["prompt_variant", "persona_id", "mask_strategy"]
    assert params(PersonaVectorStore.list_personas)[1:4] == ["variants", "mask_strategy", "warn_missing"]
    assert params(PersonaVectorStore.persona_names)[1:4] == ["persona_ids", "variants", "mask_strategy"]
    assert params(PersonaVectorStore.available_variants)[1:3] == ["variants", "mask_strategy"]
    assert params(load_persona_vectors)[:4] == ["store", "variant", "mask_strategy", "persona_ids"]
    assert params(load_variant_vectors)[:4] == ["store", "variants", "mask_strategy", "persona_ids"]
    run = params(analysis.run_saved_activation_analysis)
    assert run == [
        "model_name", "activations_dir", "output_dir", "variant", "mask_strategy", "persona_ids",
        "include_baseline", "layers",
    ]  # fmt: skip
    assert params(HFPersonaVectorStore)[:3] == ["repo_id", "model_name", "mask_strategy"]


# ---------------------------------------------------------------------------------- the store


def test_store_round_trip_as_the_original_documents(tmp_path):
    store = PersonaVectorStore("test/model", root_dir=tmp_path, mask_strategy="answer_previous")
    saved = store.save("templated", "persona-001", "Test Persona", vec(0), ["q0", "q1", "q2"])
    expected = store.root_dir / "test__model" / "answer_previous" / "templated"
    assert saved == expected
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["personas"]["persona-001"] == {"name": "Test Persona", "sample_ids": ["q0", "q1", "q2"]}
    np.testing.assert_array_equal(store.load("templated", "persona-001"), vec(0))
    assert store.list_personas(["templated"]) == ["persona-001"]
    assert store.list_personas([]) == []
    assert store.available_variants(["templated", "biography"]) == ["templated"]
    assert store.available_variants() == ["templated"]  # the default variants: ("templated", "biography")
    assert store.available_variants([]) == []
    assert store.persona_names(["persona-001"], variants=["templated"]) == {"persona-001": "Test Persona"}
    assert store.list_layers(["templated"], ["persona-001"]) == [0, 1, 2, 3]
    assert store.list_layers(["templated"], item_ids=["persona-001"]) == [0, 1, 2, 3]  # the newer name
    assert store.persona_sample_ids("templated", "persona-001") == ["q0", "q1", "q2"]
    assert discover_activation_models(tmp_path, "answer_previous") == ["test/model"]
    assert discover_activation_models(tmp_path, "answer_mean") == []
    assert discover_activation_models(tmp_path / "nope") == []


def test_missing_variants_and_personas_give_empty_results(tmp_path):
    store = PersonaVectorStore("test/model", tmp_path)
    store.save("biography", "p1", "P1", vec(1), ["q"])
    assert store.list_personas() == []  # "templated" (a default variant) is missing
    assert store.list_personas(["templated"]) == []
    assert store.list_personas(["biography"]) == ["p1"]
    assert store.persona_names(["p1"], variants=["templated"]) == {}
    assert store.persona_names(["p1", "nope"], variants=["biography"]) == {"p1": "P1"}
    assert store.list_layers(["biography"], ["nope"]) == []
    assert store.list_layers(["templated"]) == []
    assert store.persona_sample_ids("biography", "nope") is None
    assert store.persona_sample_ids("templated", "p1") is None
    with pytest.raises(FileNotFoundError):
        store.load("biography", "nope")
    # latentatlas's option: variants=None means every variant on disk
    assert PersonaVectorStore("test/model", tmp_path, variants=None).list_personas() == ["p1"]


def test_baseline_is_hidden_unless_asked_for(tmp_path):
    store = PersonaVectorStore("test/model", tmp_path)
    store.save("templated", "persona-001", "P", vec(0), ["q"])
    store.save("templated", BASELINE_PERSONA_ID, "Assistant", vec(1), ["q"])
    assert BASELINE_PERSONA_ID == "baseline_assistant"
    assert store.list_personas(["templated"]) == ["persona-001"]
    assert store.list_personas(["templated"], include_baseline=True) == [BASELINE_PERSONA_ID, "persona-001"]
    assert load_persona_vectors(store, "templated").labels == ["P"]
    ds = load_analysis_dataset(store, ["templated"], include_baseline=True)
    assert ds.persona_ids == (BASELINE_PERSONA_ID, "persona-001")


def test_per_call_mask_strategy_and_enums(tmp_path):
    class Mask(enum.Enum):
        PREV = "answer_previous"

    store = PersonaVectorStore("test/model", tmp_path)
    store.save("biography", "p1", "P1", vec(1), ["q"], mask_strategy=Mask.PREV)
    store.save("biography", "p1", "P1 mean", vec(2), ["q"])
    assert (tmp_path / "test__model" / "answer_previous" / "biography" / "p1.safetensors").is_file()
    np.testing.assert_array_equal(store.load("biography", "p1", mask_strategy="answer_previous"), vec(1))
    np.testing.assert_array_equal(store.load("biography", "p1"), vec(2))
    assert store.persona_names(["p1"], ["biography"], Mask.PREV) == {"p1": "P1"}
    assert load_persona_vectors(store, "biography", "answer_previous").vectors[0, 0, 0] == 1.0
    assert load_persona_vectors(store, "biography", mask_strategy=None).vectors[0, 0, 0] == 2.0
    assert normalize_mask_strategy(None) == DEFAULT_MASK_STRATEGY == "answer_mean"
    assert normalize_mask_strategy(Mask.PREV) == "answer_previous"
    assert SUPPORTED_VARIANTS == ("templated", "biography")


def test_names_and_config_parsing():
    assert model_dir_name("org/model") == "org__model"
    assert activation_config_name("org/model", "answer_mean") == "org__model__answer_mean"
    assert hub.parse_vector_config_name("org__model__answer_mean") == ("org/model", "answer_mean")
    assert hub.parse_vector_config_name("not-a-vector-config") is None


def test_loaders_and_dataset_types(tmp_path):
    store = PersonaVectorStore("test/model", tmp_path)
    for i in range(2):
        store.save("templated", f"persona-{i:03d}", f"Persona {i}", vec(10 * i, 3, 6), ["q0"])
        store.save("biography", f"persona-{i:03d}", f"Persona {i}", vec(10 * i + 1, 3, 6), ["q0"])
    dataset = load_analysis_dataset(store, ["templated", "biography"])
    assert isinstance(dataset, AnalysisDataset)
    assert dataset.variants == ("templated", "biography")
    assert dataset.persona_ids == ("persona-000", "persona-001")
    assert dataset.layers == (0, 1, 2)
    assert dataset.persona_names == {"persona-000": "Persona 0", "persona-001": "Persona 1"}
    assert dataset.samples("templated").vectors.shape == (2, 3, 6)
    assert dataset.samples_by_variant["biography"].vectors[1, 0, 0] == 11.0
    pm = load_persona_vectors(store, "biography")
    assert isinstance(pm, LayeredSamples)
    assert pm.labels == ["Persona 0", "Persona 1"]
    assert pm.hover_text == ["Persona: Persona 0<br>ID: persona-000", "Persona: Persona 1<br>ID: persona-001"]
    vm = load_variant_vectors(store, ["biography"], persona_ids=["persona-001", "persona-000"])
    assert vm["biography"].labels == ["Persona 1", "Persona 0"]
    # the original's third positional argument is the mask strategy, not the ids
    assert load_persona_vectors(store, "biography", "answer_mean").vectors.shape == (2, 3, 6)
    with pytest.raises(FileNotFoundError, match="No personas found"):
        load_persona_vectors(store, "missing")
    with pytest.raises(ValueError, match="At least one variant is required"):
        load_analysis_dataset(store, [])


def test_layered_samples_positional_construction():
    values = np.arange(5 * 2 * 8, dtype=np.float32).reshape(5, 2, 8)
    labels = [f"Persona {i}" for i in range(5)]
    samples = LayeredSamples(values, labels, labels)
    fig = plots.build_layered_figure(samples, "similarity", layers=[0, 1])
    assert list(fig.data[0].x) == labels


# ---------------------------------------------------------------------------------- the Hub store


def test_hub_store_reads_a_local_copy_without_network(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    from latentatlas.personas.hub_store import export_parquet

    src = PersonaVectorStore("test/model", tmp_path / "src")
    src.save("templated", "persona-001", "Test Persona", vec(0), ["q0"])
    src.save("templated", "persona-002", "Other Persona", vec(1), ["q1"])
    src.save("biography", "persona-001", "Test Persona", vec(2), ["q0"])
    # a Hugging Face cache snapshot, as `huggingface-cli download --repo-type dataset` leaves it
    cache = tmp_path / "hf" / "hub"
    snap = cache / "datasets--test--repo" / "snapshots" / "abc123"
    export_parquet(src, snap)
    (cache / "datasets--test--repo" / "refs").mkdir(parents=True)
    (cache / "datasets--test--repo" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    hub_store = HFPersonaVectorStore("test/repo", "test/model")
    assert hub_store.config_name == "test__model__answer_mean"
    assert hub_store.available_variants() == ["biography", "templated"]
    assert hub_store.available_variants([]) == []
    assert hub_store.list_personas(["templated"]) == ["persona-001", "persona-002"]
    assert hub_store.list_personas(["templated", "biography"]) == ["persona-001"]
    assert hub_store.list_personas([]) == []
    assert hub_store.persona_names(["persona-001"], variants=[]) == {}
    assert hub_store.persona_names(["persona-001"], variants=["templated"]) == {"persona-001": "Test Persona"}
    assert hub_store.list_layers(["templated", "biography"], ["persona-001"]) == [0, 1, 2, 3]
    assert hub_store.list_layers(["templated"], ["missing"]) == []
    np.testing.assert_array_equal(hub_store.load("templated", "persona-002"), vec(1))
    assert hub_store.persona_sample_ids("templated", "persona-002") == ["q1"]
    with pytest.raises(ValueError, match="bound to mask_strategy"):
        hub_store.load("templated", "persona-001", mask_strategy="answer_previous")
    with pytest.raises(ValueError, match="bound to mask_strategy"):
        hub_store.list_personas(["templated"], mask_strategy="answer_previous")
    samples = load_persona_vectors(hub_store, "templated")
    np.testing.assert_array_equal(samples.vectors[1], vec(1))
    with pytest.raises(FileNotFoundError, match="huggingface-cli download"):
        HFPersonaVectorStore("test/other", "test/model").available_variants()
    # a local directory works as repo_id too
    assert HFPersonaVectorStore(snap, "test/model").list_personas(["biography"]) == ["persona-001"]
    assert hub.list_hub_vector_models(snap) == {"test/model": ["answer_mean"]}
    with pytest.raises(
        FileNotFoundError, match=r"config 'test__model__answer_previous' not in .*\['test__model__answer_mean'\]"
    ):
        HFPersonaVectorStore(snap, "test/model", "answer_previous").available_variants()


def test_hub_metadata_reads_two_columns_once(tmp_path):
    """The documented lazy scan: names and ids from one columnar pass, vectors only on load."""

    class Columnar(list):
        reads = 0

        def select_columns(self, columns):
            outer = self

            class Selected:
                def __getitem__(self, column):
                    assert isinstance(column, str)
                    outer.reads += 1
                    return [row[column] for row in outer]

            return Selected()

    rows = Columnar([{"persona_id": f"p{i:02d}", "name": f"P {i}", "vector": vec(i).tolist()} for i in range(20)])
    store = HFPersonaVectorStore("test/repo", "test/model")
    store._datasets["templated"] = rows
    assert store.persona_names(["p01", "p03"], variants=["templated"]) == {"p01": "P 1", "p03": "P 3"}
    assert rows.reads == 2
    np.testing.assert_array_equal(store.load("templated", "p07"), vec(7))
    assert len(store.list_personas(["templated"])) == 20 and rows.reads == 2


# ------------------------------------------------------------------------------ array types


def test_numpy_in_numpy_out_without_importing_torch():
    import sys

    x = np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)
    for fn in (analysis.cosine_similarity_matrix, analysis.prepare_cluster_samples, analysis.project_pca):
        assert isinstance(fn(x), np.ndarray)
    if "torch" not in sys.modules:
        assert "torch" not in sys.modules  # nothing above imported it


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    x = torch.randn(6, 10)
    xs = x.numpy()
    for fn in (analysis.cosine_similarity_matrix, analysis.prepare_cluster_samples, analysis.project_pca):
        got = fn(x)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
        np.testing.assert_allclose(got.numpy(), fn(xs), rtol=1e-5, atol=1e-6)
    samples = LayeredSamples(torch.randn(5, 2, 8), [f"P{i}" for i in range(5)], [f"P{i}" for i in range(5)])
    assert isinstance(analysis.prepare_layer_mean_cluster_samples(samples.vectors), torch.Tensor)
    plots.build_layered_figure(samples, "pca", layers=[0, 1])


def test_store_array_type_option(tmp_path):
    store = PersonaVectorStore("test/model", tmp_path, array_type="numpy")
    store.save("biography", "p", "P", vec(0), [])
    assert isinstance(store.load("biography", "p"), np.ndarray)
    with pytest.raises(ValueError, match="array_type must be one of"):
        PersonaVectorStore("test/model", tmp_path, array_type="jax")


def test_warnings_match_the_original(tmp_path):
    store = PersonaVectorStore("test/model", tmp_path)
    store.save("templated", "a", "A", vec(0), [])
    store.save("templated", "b", "B", vec(0), [])
    store.save("biography", "a", "A", vec(0), [])
    with pytest.warns(UserWarning, match=r"Skipping 1 persona\(s\) missing one or more requested variants\."):
        assert store.list_personas(["templated", "biography"]) == ["a"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.list_personas(["templated", "biography"], warn_missing=False) == ["a"]


def test_attributes_module_is_the_originals():
    assert attributes.DEFAULT_MAX_ATTRIBUTE_CATEGORIES == 12
    assert artifacts.PersonaVectorSource is not None


# ------------------------------------------------------------------------------------ figures


def layered(n: int = 5, layers: int = 2, hidden: int = 8) -> LayeredSamples:
    values = np.arange(n * layers * hidden, dtype=np.float32).reshape(n, layers, hidden)
    values += np.random.default_rng(n).standard_normal(values.shape).astype(np.float32)
    labels = [f"Persona {i}" for i in range(n)]
    return LayeredSamples(values, labels, labels)


def test_projection_figures_2d_3d_and_graph_overlay():
    s = layered()
    assert plots.build_layered_figure(s, "pca", layers=[0, 1], n_components=3).data[0].type == "scatter3d"
    assert plots.build_layered_figure(s, "isomap", layers=[0]).data[0].type == "scattergl"
    fig = plots.build_layered_figure(s, "isomap", layers=[0], n_components=3, graph_overlay=True, graph_n_neighbors=2)
    assert fig.data[0].type == "scatter3d" and fig.data[0].mode == "lines" and fig.data[1].type == "scatter3d"
    pca = plots.build_layered_figure(s, "pca", layers=[0, 1])
    assert [f.name for f in pca.frames] == ["0", "1"]
    assert [list(step.args[0]) for step in pca.layout.sliders[0].steps] == [["0"], ["1"]]
    assert [b.label for b in pca.layout.updatemenus[0].buttons] == ["Play", "Pause"]
    assert pca.frames[1].layout.title.text == "PCA by Layer - Layer 1"
    assert [t.name for t in pca.data] == s.labels  # one legend trace per persona
    assert isinstance(pca.data[0].x, tuple)  # lists in, tuples out: the original's trace data, not arrays


def test_many_personas_share_one_webgl_trace():
    fig = plots.build_layered_figure(layered(45), "pca", layers=[0])
    assert len(fig.data) == 1 and fig.data[0].type == "scattergl" and fig.data[0].name == "Personas"
    assert len(fig.data[0].marker.color) == 45


def test_kmeans_modes_and_numeric_colours():
    vectors = np.array(
        [
            [[-1.0, -1.0], [-1.0, -1.0]],
            [[-1.0, -0.9], [1.0, 1.0]],
            [[1.0, 1.0], [-1.0, -0.9]],
            [[1.0, 0.9], [1.0, 0.9]],
        ],
        np.float32,
    )
    labels = [f"Persona {i}" for i in range(4)]
    s = LayeredSamples(vectors, labels, labels)

    def partitions(frame):
        return {frozenset(t.text) for t in frame.data if t.text}

    first = plots.build_layered_figure(s, "pca", layers=[0, 1], n_clusters=2, cluster_mode="first_layer")
    assert partitions(first.frames[0]) == partitions(first.frames[1])
    per = plots.build_layered_figure(s, "pca", layers=[0, 1], n_clusters=2, cluster_mode="per_layer")
    assert partitions(per.frames[0]) != partitions(per.frames[1])
    numeric = plots.build_layered_figure(
        s,
        "pca",
        layers=[0],
        color_values=[0.0, 1.0, 2.0, 3.0],
        color_label="Ordinal rank",
        color_tickvals=[0.0, 1.0, 2.0, 3.0],
        color_ticktext=["A", "B", "C", "D"],
    )
    assert numeric.data[0].marker.color == (0.0, 1.0, 2.0, 3.0)
    assert numeric.data[0].marker.colorbar.title.text == "Ordinal rank"


def test_projection_data_reuse_and_validation():
    s = layered()
    pdata = plots.prepare_layered_projection_data(s, "pca", layers=[0, 1])
    grouped = plots.build_layered_figure(s, "pca", layers=[0, 1], groups=["A"] * 5, projection_data=pdata)
    numeric = plots.build_layered_figure(
        s, "pca", layers=[0, 1], color_values=[0.0, 1.0, 2.0, 3.0, 4.0], projection_data=pdata
    )
    assert numeric.data[0].x == grouped.data[0].x
    with pytest.raises(ValueError, match="projection_data layers"):
        plots.build_layered_figure(s, "pca", layers=[0], projection_data=pdata)
    with pytest.raises(ValueError, match="projection_data kind"):
        plots.build_layered_figure(s, "umap", layers=[0, 1], projection_data=pdata)
    with pytest.raises(ValueError, match="projection_data normalize"):
        plots.build_layered_figure(s, "pca", layers=[0, 1], projection_normalize=False, projection_data=pdata)
    iso = plots.prepare_layered_projection_data(s, "isomap", layers=[0, 1], graph_overlay=True, graph_n_neighbors=2)
    with pytest.raises(ValueError, match="graph_n_neighbors"):
        plots.build_layered_figure(
            s, "isomap", layers=[0, 1], graph_overlay=True, graph_n_neighbors=3, projection_data=iso
        )
    # the Isomap projection itself uses graph_n_neighbors neighbours, as the original
    x = s.vectors[:, 1, :]
    np.testing.assert_allclose(iso.layer_coords[1], analysis.project_isomap(x, 2, n_neighbors=2), atol=1e-6)
    groups = plots.prepare_kmeans_groups(s, layers=[0, 1], n_clusters=2, cluster_mode="per_layer")
    assert sorted(groups) == [0, 1]
    assert [f.name for f in plots.build_layered_figure(s, "pca", layers=[0, 1], groups=groups).frames] == ["0", "1"]


def test_projection_errors_match_the_original():
    s = layered(2)
    with pytest.raises(ValueError, match="n_components=3"):
        plots.build_layered_figure(s, "pca", layers=[0], n_components=3)
    with pytest.raises(ValueError, match="UMAP requires at least 3 samples"):
        plots.build_layered_figure(s, "umap", layers=[0])


def test_dendrograms():
    s = layered()
    fig = plots.plot_persona_dendrogram(s, layered=True, layers=[0, 1])
    assert [f.name for f in fig.frames] == ["0", "1"]
    assert fig.layout.sliders[0].steps[0].label == "0" and fig.layout.sliders[0].pad.t == 115
    assert fig.layout.updatemenus[0].buttons[0].label == "Play" and fig.layout.margin.b == 260
    assert all(f.layout.yaxis.range is not None for f in fig.frames)
    assert fig.frames[0].layout.yaxis.range == fig.frames[1].layout.yaxis.range
    for linkage in ("average", "complete", "single", "ward"):
        fig = plots.plot_persona_dendrogram(s, linkage=linkage)
        assert fig.data and linkage.title() in fig.layout.title.text
    assert plots.plot_persona_dendrogram(s).layout.title.text == "Ward dendrogram - mean across layers"
    assert plots.plot_persona_dendrogram(s, layer=1).layout.title.text == "Ward dendrogram - layer 1"


def test_similarity_figures_and_scree(tmp_path, monkeypatch):
    s = layered()
    heat, pairs = plots.build_similarity_figures(s, layers=[0, 1])
    assert heat.data[0].type == "heatmap" and [f.name for f in heat.frames] == ["0", "1"]
    assert len(pairs.data) == 10 and pairs.data[0].name == "Persona 0 <> Persona 1" and not pairs.frames
    single = plots.build_pair_similarity_figure(s, layers=[0, 1])
    assert [t.y for t in single.data] == [t.y for t in pairs.data]
    scree = plots.plot_scree({"layer 0": analysis.pca_explained_variance(s.vectors[:, 0])}, n_components=3)
    assert [t.name for t in scree.data] == ["layer 0", "layer 0 cumulative"]
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path))
    plots.plot_scree({"a": [0.5, 0.3]}, filename="scree")
    assert (tmp_path / "plots" / "scree.html").is_file()
    assert plots.save_plot_html(scree, "again") == tmp_path / "plots" / "again.html"
    with pytest.raises(ValueError, match="not a safe file name"):
        plots.save_plot_html(scree, "../escape")


def test_layer_similarity_takes_the_originals_triples():
    rng = np.random.default_rng(0)
    short, long = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    fig = plots.plot_layer_similarity([("run", short, long)])
    expect = (short * long).sum(1) / (np.linalg.norm(short, axis=1) * np.linalg.norm(long, axis=1))
    np.testing.assert_allclose(fig.data[0].y, expect)
    assert fig.layout.title.text == "Layer-wise Activation Similarity" and list(fig.data[0].x) == [0, 1, 2, 3]


def test_probe_plots():
    rows = {
        "age": [
            {"attribute": "age", "layer": 0, "probe_kind": "worse", "mae": 4.0, "baseline_mae": 5.0},
            {"attribute": "age", "layer": 0, "probe_kind": "better", "mae": 2.0, "baseline_mae": 5.0},
        ]
    }
    fig = plots.plot_attribute_layer_selectivity_heatmap(rows, metric="mae")
    assert fig.data[0].z[0][0] == pytest.approx(3.0)  # the lower mae, flipped after subtracting the baseline
    sweep = [
        {
            "attribute": "sex",
            "layer": layer,
            "probe_kind": kind,
            "balanced_accuracy": acc,
            "baseline_balanced_accuracy": 0.5,
        }
        for layer, kind, acc in [(0, "lr", 0.6), (1, "lr", 0.8), (0, "mlp", 0.7), (1, "mlp", 0.9)]
    ]
    over = plots.plot_metric_over_layers(sweep, "sex")
    assert [t.name for t in over.data] == ["lr", "mlp"] and list(over.data[1].y) == [0.7, 0.9]
    assert over.layout.title.text == "sex: balanced_accuracy over layers" and list(over.layout.yaxis.range) == [0, 1.02]
    both = plots.plot_metric_comparison({"full": sweep, "pca10": sweep}, "sex")
    assert [t.name for t in both.data] == [
        "sex · full · lr",
        "sex · full · mlp",
        "sex · pca10 · lr",
        "sex · pca10 · mlp",
    ]
    assert both.data[2].line.dash == "dot"


def test_run_saved_activation_analysis(tmp_path):
    store = PersonaVectorStore("test/model", root_dir=tmp_path)
    for i in range(3):
        store.save("biography", f"persona-{i:03d}", f"P{i}", vec(100 * i) + np.eye(4, 8, i, dtype=np.float32), ["q"])
    store.save("biography", BASELINE_PERSONA_ID, "Assistant", vec(7), ["q"])
    out = analysis.run_saved_activation_analysis(
        model_name="test/model",
        activations_dir=tmp_path,
        output_dir=tmp_path / "out",
        variant="biography",
        mask_strategy="answer_mean",
        layers=[0, 1],
    )
    assert {"persona_vector_pca", "persona_vector_similarity", "persona_pair_similarity", "pca_scree"} <= out.keys()
    assert all(p.exists() for p in out.values())
    assert "Assistant" not in out["persona_vector_pca"].read_text()


def test_estimators_are_monkeypatchable_module_attributes(monkeypatch):
    """The original's tests replace analysis.PCA / sys.modules["umap"] and check what the projections feed them."""
    import sys
    import types

    x = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 4.0], [4.0, 0.0, 0.0]], np.float32)
    seen: dict[str, np.ndarray] = {}

    class FakePCA:
        explained_variance_ratio_ = np.asarray([1.0])

        def __init__(self, n_components: int, random_state: int):
            self.n_components = n_components

        def fit(self, values):
            seen["fit"] = values.copy()
            return self

        def fit_transform(self, values):
            seen["pca"] = values.copy()
            return values[:, : self.n_components]

    class FakeUMAP:
        def __init__(self, **kwargs):
            self.n_components = kwargs["n_components"]

        def fit_transform(self, values):
            seen["umap"] = values.copy()
            return np.zeros((values.shape[0], self.n_components))

    monkeypatch.setattr(analysis, "PCA", FakePCA)
    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    for normalize in (True, False):
        want = analysis.prepare_cluster_samples(x, center=True, normalize=normalize)
        analysis.project_pca(x, n_components=2, normalize=normalize)
        analysis.project_umap(x, n_components=2, normalize=normalize)
        analysis.pca_explained_variance(x, n_components=1, normalize=normalize)
        for key in ("pca", "umap", "fit"):
            np.testing.assert_allclose(seen[key], want)
    monkeypatch.undo()
    ref = analysis.PCA(2).fit_transform(analysis.prepare_cluster_samples(x))
    np.testing.assert_allclose(analysis.project_pca(x), ref)
    assert analysis.KMeans.__module__.startswith("sklearn")


def test_twonn_recovers_the_dimension_of_a_linear_manifold():
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(0)
    for d in (2, 5):
        x = rng.standard_normal((1500, d)) @ rng.standard_normal((d, 12))
        est = analysis.twonn(x)
        assert abs(est - d) < 0.1 * d + 0.15
        # the same estimator on SciPy's neighbours (an independent kNN)
        dist, _ = cKDTree(x).query(x, k=3)
        mu = np.sort(dist[:, 2] / dist[:, 1])
        m = int(len(mu) * 0.9)
        xs, ys = np.log(mu[:m]), -np.log(1 - np.arange(1, m + 1) / len(mu))
        assert est == pytest.approx(xs @ ys / (xs @ xs), rel=1e-9)
    with pytest.raises(ValueError, match="TwoNN needs at least 3 samples"):
        analysis.twonn(np.zeros((2, 4)))
