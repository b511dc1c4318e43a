"""Linear probes over persona vectors (latentatlas.personas.probes), checked against scikit-learn run by hand.

The real persona-vectors library runs beside ours in tests/interop/test_persona_vectors.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from latentatlas.personas import probes
from latentatlas.personas.analysis import LayeredSamples
from latentatlas.personas.attributes import PersonaAttributeTable, synthetic_persona_dataset


@pytest.fixture(scope="module")
def planted():
    """60 personas × 4 layers × 16: 'side' is readable at layer 2 only (a planted direction), noise elsewhere."""
    rng = np.random.default_rng(0)
    n, L, H = 60, 4, 16
    side = np.array(["left", "right"] * (n // 2))
    level = np.array(["low", "mid", "high"] * (n // 3))
    age = rng.uniform(20, 70, n)
    v = rng.standard_normal((n, L, H)).astype(np.float32)
    u = rng.standard_normal(H).astype(np.float32)
    v[:, 2, :] += 3.0 * np.where(side == "right", 1.0, -1.0)[:, None] * u
    v[:, 3, :] += ((age - 45) / 10)[:, None] * u  # age is linear in layer 3
    records = [
        {"id": f"p{i}", "name": f"P {i}", "side": side[i], "level": level[i], "age": float(age[i])} for i in range(n)
    ]
    table = PersonaAttributeTable(records, ordinal={"level": ["low", "mid", "high"]})
    samples = LayeredSamples(v, [r["name"] for r in records], [r["id"] for r in records], [r["id"] for r in records])
    return table, samples, [r["id"] for r in records]


def test_tasks_and_labels_follow_the_schema(planted):
    table, _, ids = planted
    assert [probes.infer_probe_task(table, a) for a in ("age", "level", "side")] == [
        "numeric",
        "ordinal",
        "categorical",
    ]
    lab = probes.attribute_probe_labels(table, "side", ids, task="binary")
    assert lab.class_names == ["left", "right"] and lab.y.tolist() == [0, 1] * 30
    lab = probes.attribute_probe_labels(table, "level", ids)
    assert lab.class_names == ["low", "mid", "high"] and lab.y[:3].tolist() == [0, 1, 2]
    assert probes.attribute_probe_labels(table, "age", ids).y.dtype == float
    with pytest.raises(ValueError, match="exactly two"):
        probes.attribute_probe_labels(table, "level", ids, task="binary")
    synth = synthetic_persona_dataset(20)
    assert probes.infer_probe_task(synth, "occupation") == "categorical"
    with pytest.raises(KeyError, match="no attribute"):
        synth.attribute_info("nope")


def test_difference_of_means_is_the_midpoint_rule():
    X = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 2.0], [6.0, 2.0]])
    direction, bias = probes.difference_of_means_direction(X, [0, 0, 1, 1])
    np.testing.assert_allclose(direction, [4.0, 2.0])
    np.testing.assert_allclose(bias, -0.5 * ((1.0 * 4 + 0.0 * 2) + (5.0 * 4 + 2.0 * 2)))  # midpoint of the class means
    cls, scores = probes.predict_difference_of_means(X, direction, bias)
    assert cls.tolist() == [0, 0, 1, 1] and scores[0] < 0 < scores[3]
    with pytest.raises(ValueError, match="both classes"):
        probes.difference_of_means_direction(X, [1, 1, 1, 1])


def test_logistic_score_equals_sklearn_by_hand(planted):
    table, samples, ids = planted
    y = probes.attribute_probe_labels(table, "side", ids, task="binary").y
    X = samples.vectors[:, 2, :]
    got = probes.evaluate_classification(X, y, task="binary", layer=2, probe_kind="logistic_regression", seed=3)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, random_state=3, stratify=y)
    sc = StandardScaler().fit(X[tr])
    clf = LogisticRegression(class_weight="balanced", max_iter=5000, random_state=3).fit(sc.transform(X[tr]), y[tr])
    assert got["balanced_accuracy"] == balanced_accuracy_score(y[te], clf.predict(sc.transform(X[te])))
    assert got["baseline_balanced_accuracy"] == 0.5 and got["mae"] is None and got["r2"] is None


def test_sweep_finds_the_planted_layer_and_shuffled_labels_do_not(planted):
    table, samples, ids = planted
    lab = probes.attribute_probe_labels(table, "side", ids, task="binary")
    rows = probes.sweep_attribute(samples, lab, layers=[0, 1, 2, 3])
    assert len(rows) == 8 and {r["probe_kind"] for r in rows} == {"difference_of_means", "logistic_regression"}
    best = probes.best_row(rows, "balanced_accuracy")
    assert best["layer"] == 2 and best["balanced_accuracy"] == 1.0
    ctrl = probes.shuffle_label_baseline(
        samples.vectors[:, 2, :], lab.y, task="binary", layer=2, probe_kind="difference_of_means", n_repeats=8
    )
    assert ctrl["balanced_accuracy_mean"] < 0.8  # a planted direction does not predict shuffled labels
    num = probes.sweep_attribute(samples, probes.attribute_probe_labels(table, "age", ids), layers=[0, 3])
    r2 = {r["layer"]: r["r2"] for r in num}
    assert r2[3] > 0.9 > r2[0] and all(r["balanced_accuracy"] is None for r in num)


def test_ordinal_predictions_are_observed_ranks(planted):
    table, samples, ids = planted
    lab = probes.attribute_probe_labels(table, "level", ids)
    m = probes.evaluate_classification(
        samples.vectors[:, 0, :], lab.y, task="ordinal", layer=0, probe_kind="ridge_regression"
    )
    assert 0.0 <= m["balanced_accuracy"] <= 1.0 and 0.0 <= m["mae"] <= 2.0
    with pytest.raises(ValueError, match="ordinal targets take ridge_regression"):
        probes.evaluate_classification(
            samples.vectors[:, 0, :], lab.y, task="ordinal", layer=0, probe_kind="logistic_regression"
        )


def test_rare_classes_are_dropped_and_renumbered(planted):
    _, samples, _ = planted
    lab = probes.AttributeLabels(
        "c", "categorical", np.array([0] * 30 + [1] * 2 + [2] * 28), ["x"] * 60, ["a", "b", "c"]
    )
    kept, new = probes.filter_attribute_samples_min_count(samples, lab, 5)
    assert len(kept) == 58 and new.class_names == ["a", "c"] and sorted(set(new.y.tolist())) == [0, 1]
    np.testing.assert_array_equal(kept.vectors[30], samples.vectors[32])
    assert kept.persona_ids[30] == samples.persona_ids[32]
    with pytest.raises(ValueError, match="at least 2 personas per class"):
        probes.evaluate_classification(samples.vectors[:, 0, :], lab.y.clip(0, 1) * 0 + (np.arange(60) == 0),
                                       task="binary", layer=0, probe_kind="logistic_regression")  # fmt: skip


@pytest.mark.parametrize("n_pca", [None, 4])
def test_saved_artifact_reproduces_the_fitted_probe(planted, tmp_path, n_pca):
    table, samples, ids = planted
    lab = probes.attribute_probe_labels(table, "side", ids, task="binary")
    X = samples.vectors[:, 2, :]
    root = probes.save_probe_artifact(
        X=X, y=lab.y, labels=lab, task="binary", probe_kind="logistic_regression", layer=2, model_name="Org/M",
        variant="biography", mask_strategy=None, n_pca_components=n_pca, output_dir=tmp_path, metrics={"x": np.nan},
    )  # fmt: skip
    suffix = "" if n_pca is None else f"_pca{n_pca}"
    assert root == tmp_path / "Org__M" / "answer_mean" / "biography" / "side" / f"logistic_regression{suffix}_layer2"
    art = probes.load_probe_artifact(root / "probe.json")
    assert art.schema_version == 2 and art.metadata["metrics"] == {"x": None} and art.metadata["input_dim"] == 16
    t = {k: np.asarray(v) for k, v in art.tensors.items()}
    feats = (X - t["scaler_mean"]) / t["scaler_scale"]
    if n_pca is not None:
        feats = (feats - t["pca_mean"]) @ t["pca_components"].T
    logits = feats @ t["weight"].T + t["bias"]
    # an independent refit on every persona: the artifact's two-row head is ∓ its decision function / 2
    pipe = probes.make_linear_probe("logistic_regression", n_pca).fit(X, lab.y)
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], pipe.decision_function(X), rtol=1e-4, atol=1e-4)
    assert not list(root.glob("*.tmp*")) and sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [
        "probe.json", "weights.safetensors"
    ]  # fmt: skip


def test_artifact_names_cannot_leave_the_output_dir_and_bad_files_are_refused(planted, tmp_path):
    table, samples, ids = planted
    lab = probes.attribute_probe_labels(table, "side", ids, task="binary")
    kw = dict(X=samples.vectors[:, 2, :], y=lab.y, labels=lab, task="binary", probe_kind="difference_of_means",
              layer=2, model_name="m", mask_strategy=None, output_dir=tmp_path / "out")  # fmt: skip
    for variant in ("../up", "/abs", "a/b"):
        with pytest.raises(ValueError, match="variant"):
            probes.save_probe_artifact(variant=variant, **kw)
    assert not (tmp_path / "up").exists() and not (tmp_path / "out").exists()
    root = probes.save_probe_artifact(variant="v", **kw)
    with pytest.raises(FileNotFoundError, match="missing probe"):
        probes.load_probe_artifact(tmp_path / "nowhere")
    meta = json.loads((root / "probe.json").read_text())
    (root / "probe.json").write_text(json.dumps({**meta, "schema_version": 1}))
    with pytest.raises(ValueError, match="schema_version"):
        probes.load_probe_artifact(root)
    (root / "probe.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        probes.load_probe_artifact(root)


def test_run_attribute_probe_saves_the_best_layer(planted, tmp_path):
    table, samples, ids = planted
    root, best, task = probes.run_attribute_probe(
        samples, table, "age", ids, layers=probes.pick_layers(4, fast=False), model_name="m", variant="v",
        mask_strategy="answer_mean", output_dir=tmp_path,
    )  # fmt: skip
    assert task == "numeric" and best["layer"] == 3 and root.name == "ridge_regression_layer3"
    assert probes.load_probe_artifact(root).metadata["metrics"]["r2"] == best["r2"]
    assert probes.pick_layers(30) == [0, 7, 15, 22, 29]
