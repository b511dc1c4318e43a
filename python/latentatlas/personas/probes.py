"""Linear probes: how well does one layer's persona vector read out a persona attribute?

The persona-vectors project's ``probes`` module, as a drop-in (same names, arguments, metric rows and
artifact files; ``tests/interop/test_persona_vectors.py`` runs both on the same data). Three probe kinds:

* ``difference_of_means`` — mean(positive) − mean(negative) with the midpoint as bias (binary only);
* ``logistic_regression`` — class-balanced, L2, after a StandardScaler (binary and categorical);
* ``ridge_regression`` — for ordinal ranks (predictions rounded to the nearest observed rank) and numbers.

Each (layer, kind) is scored on one 80/20 split (``seed`` = 0 by default; stratified for classes) with
the scaler and the optional PCA (``n_pca_components``) fitted on the training part only, beside the
score of a constant predictor (``baseline_*``). :func:`save_probe_artifact` refits on every persona and
writes ``probe.json`` + ``weights.safetensors`` (schema 2) together, crash-consistently.

The estimators are scikit-learn's (the same calls as the original, so the same numbers). Vectors may be
NumPy or torch; artifact tensors come back as torch when torch is imported (as the original), else NumPy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._io import commit_files, locked, read_safetensors, roll_forward, safe_name, safetensors_writer
from .._optional import to_numpy
from .._progress import progress_bar
from ._arrays import as_array_type
from .analysis import LayeredSamples
from .store import model_dir_name, normalize_mask_strategy

__all__ = [
    "CLASSIFICATION_TASKS", "RANDOM_STATE", "SCHEMA_VERSION", "TEST_SIZE",
    "AttributeLabels", "ProbeArtifact", "ProbeKind", "ProbeTask",
    "attribute_probe_labels", "best_row", "classification_baseline_metrics", "default_probe_kinds",
    "difference_of_means_direction", "evaluate_classification", "evaluate_regression",
    "filter_attribute_samples_min_count", "infer_probe_task", "layer_matrix", "load_probe_artifact",
    "make_linear_probe", "pick_layers", "predict_difference_of_means", "primary_metric",
    "regression_baseline_metrics", "run_attribute_probe", "save_probe_artifact", "shuffle_label_baseline",
    "sweep_attribute",
]  # fmt: skip

ProbeTask = Literal["binary", "ordinal", "categorical", "numeric"]
ProbeKind = Literal["difference_of_means", "logistic_regression", "ridge_regression"]
CLASSIFICATION_TASKS: frozenset[str] = frozenset({"binary", "categorical", "ordinal"})
TEST_SIZE = 0.2
RANDOM_STATE = 0
SCHEMA_VERSION = 2
_KINDS = ("difference_of_means", "logistic_regression", "ridge_regression")
_METADATA, _WEIGHTS = "probe.json", "weights.safetensors"


@dataclass(frozen=True)
class AttributeLabels:
    """One attribute's targets for the personas of a sample set.

    Attributes
    ----------
    attribute_name : str
    task : {"binary", "ordinal", "categorical", "numeric"}
    y : ndarray, shape (n_personas,)
        Class index (binary: 1 = the second of the sorted values), rank (ordinal) or number (numeric).
    labels : list of str, length n_personas
        The raw values as text.
    class_names : list of str or None
        The name of each class index or rank (None for numeric).
    """

    attribute_name: str
    task: ProbeTask
    y: np.ndarray
    labels: list[str]
    class_names: list[str] | None = None


@dataclass(frozen=True)
class ProbeArtifact:
    """A saved probe: ``metadata`` (probe.json) and ``tensors`` (weight, bias, scaler/PCA, direction)."""

    metadata: dict[str, object]
    tensors: dict[str, Any]

    @property
    def schema_version(self) -> int:
        return int(self.metadata.get("schema_version", 0))  # type: ignore[call-overload]


# -- labels -------------------------------------------------------------------------------------------
def infer_probe_task(persona_dataset: Any, attribute_name: str) -> ProbeTask:
    """The task the attribute's schema implies: numeric, ordinal, binary (two values) or categorical."""
    info = persona_dataset.attribute_info(attribute_name)
    kind = info.get("kind")
    if kind in ("numeric", "ordinal"):
        return kind
    ordered = info.get("ordered_values")
    return "binary" if kind == "binary" or (ordered is not None and len(ordered) == 2) else "categorical"


def attribute_probe_labels(
    persona_dataset: Any, attribute_name: str, persona_ids: Sequence[str], task: ProbeTask | None = None
) -> AttributeLabels:
    """Targets of ``attribute_name`` for ``persona_ids`` (``task`` inferred from the schema when None)."""
    task = infer_probe_task(persona_dataset, attribute_name) if task is None else task
    raw = list(persona_dataset.attribute_values(attribute_name, list(persona_ids)))
    text = [str(v) for v in raw]
    if task == "numeric":
        return AttributeLabels(attribute_name, task, np.asarray(raw, dtype=float), text)
    if task == "ordinal":
        order = [str(v) for v in persona_dataset.attribute_info(attribute_name)["ordered_values"]]
        unknown = sorted(set(text) - set(order))
        if unknown:
            raise ValueError(f"attribute {attribute_name!r} has values outside its ordered_values: {unknown}")
        return AttributeLabels(attribute_name, task, np.asarray([order.index(v) for v in text], dtype=int), text, order)
    classes = sorted(set(text))
    if task == "binary" and len(classes) != 2:
        raise ValueError(f"{attribute_name!r} must have exactly two observed values for a binary probe; got {classes}")
    y = np.asarray([classes.index(v) for v in text], dtype=int)
    return AttributeLabels(attribute_name, "binary" if task == "binary" else "categorical", y, text, classes)


# -- probes -------------------------------------------------------------------------------------------
def difference_of_means_direction(X_train: Any, y_train: Any) -> tuple[np.ndarray, float]:
    """``(direction, bias)``: mean of class 1 − mean of class 0 (float32, (F,)) and minus its midpoint score."""
    X = np.asarray(to_numpy(X_train), dtype=np.float32)
    y = np.asarray(y_train, dtype=int)
    neg, pos = X[y == 0], X[y == 1]
    if len(neg) == 0 or len(pos) == 0:
        raise ValueError("difference_of_means needs rows of both classes (y == 0 and y == 1)")
    mu_neg, mu_pos = neg.mean(axis=0), pos.mean(axis=0)
    direction = mu_pos - mu_neg
    return direction, -float(0.5 * (mu_neg @ direction + mu_pos @ direction))


def predict_difference_of_means(X: Any, direction: Any, bias: float) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, scores)``: score = X·direction + bias, class 1 where score ≥ 0."""
    scores = np.asarray(to_numpy(X), dtype=np.float32) @ np.asarray(to_numpy(direction)) + bias
    return (scores >= 0).astype(int), scores


def make_linear_probe(
    probe_kind: ProbeKind, n_pca_components: int | None = None, normalize_pca: bool = True, seed: int = 0
) -> Any:
    """A scikit-learn Pipeline: StandardScaler (unless PCA without normalising), optional PCA, the estimator."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if probe_kind == "logistic_regression":
        head: Any = LogisticRegression(class_weight="balanced", max_iter=5000, random_state=seed)
    elif probe_kind == "ridge_regression":
        head = Ridge(alpha=1.0)
    elif probe_kind == "difference_of_means":
        raise ValueError("difference_of_means is closed-form, not a scikit-learn pipeline")
    else:
        raise ValueError(f"probe_kind must be one of {_KINDS}, got {probe_kind!r}")
    steps: list[tuple[str, Any]] = []
    if n_pca_components is None or normalize_pca:
        steps.append(("scale", StandardScaler()))
    if n_pca_components is not None:
        steps.append(("pca", PCA(n_components=n_pca_components, random_state=seed)))
    return Pipeline([*steps, ("probe", head)])


def default_probe_kinds(task: ProbeTask) -> list[ProbeKind]:
    """The kinds a sweep runs for ``task``: binary gets both linear readouts."""
    if task == "binary":
        return ["difference_of_means", "logistic_regression"]
    return ["logistic_regression"] if task == "categorical" else ["ridge_regression"]


# -- metrics ------------------------------------------------------------------------------------------
def classification_baseline_metrics(y: Any) -> dict[str, float]:
    """Balanced accuracy of always predicting the majority class (1 / n_classes present)."""
    from sklearn.metrics import balanced_accuracy_score

    y = np.asarray(y, dtype=int)
    return {"baseline_balanced_accuracy": float(balanced_accuracy_score(y, np.full_like(y, np.bincount(y).argmax())))}


def regression_baseline_metrics(y: Any) -> dict[str, float]:
    """MAE and R² of always predicting the mean."""
    from sklearn.metrics import mean_absolute_error, r2_score

    y = np.asarray(y, dtype=float)
    const = np.full_like(y, y.mean())
    return {"baseline_mae": float(mean_absolute_error(y, const)), "baseline_r2": float(r2_score(y, const))}


def primary_metric(task: ProbeTask) -> str:
    """The metric that picks the best probe: R² for numeric targets, else balanced accuracy."""
    return "r2" if task == "numeric" else "balanced_accuracy"


def best_row(rows: Sequence[dict[str, Any]], metric: str, *, higher_is_better: bool = True) -> dict[str, Any]:
    """The first row with the best finite ``metric`` (rows where it is None or NaN are skipped)."""
    valid = [r for r in rows if r.get(metric) is not None and np.isfinite(float(r[metric]))]
    if not valid:
        raise ValueError(f"no row has a finite {metric!r}")
    sign = 1.0 if higher_is_better else -1.0
    return max(valid, key=lambda r: sign * float(r[metric]))


# -- one split ----------------------------------------------------------------------------------------
def _xy(X: Any, y: Any, y_dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    Xa = np.asarray(to_numpy(X), dtype=np.float32)
    ya = np.asarray(to_numpy(y), dtype=y_dtype)
    if Xa.ndim != 2 or ya.ndim != 1 or len(Xa) != len(ya):
        raise ValueError(f"X must be (n_personas, hidden_size) and y (n_personas,); got {Xa.shape} and {ya.shape}")
    if not np.isfinite(Xa).all():
        raise ValueError("X contains NaN or infinity")
    return Xa, ya


def _split(y: np.ndarray, *, classification: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: one 80/20 split, stratified on y for classes."""
    from sklearn.model_selection import train_test_split

    if classification:
        rare = {int(c): int(n) for c, n in zip(*np.unique(y, return_counts=True)) if n < 2}
        if rare:
            raise ValueError(
                f"a stratified split needs at least 2 personas per class; class(es) {rare} have fewer "
                "(drop them with filter_attribute_samples_min_count)"
            )
    idx = np.arange(len(y))
    train, test = train_test_split(idx, test_size=TEST_SIZE, random_state=seed, stratify=y if classification else None)
    return train, test


def _pca_features(
    X_train: np.ndarray, X_test: np.ndarray | None, n_pca_components: int | None, seed: int, normalize: bool
) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    """(train, test, tensors): the optional scaler + PCA fitted on the training rows, and their parameters."""
    if n_pca_components is None:
        return X_train, X_test, {}
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    tensors: dict[str, np.ndarray] = {}
    if normalize:
        scaler = StandardScaler().fit(X_train)
        X_train = scaler.transform(X_train)
        X_test = None if X_test is None else scaler.transform(X_test)
        tensors.update(_scaler_tensors(scaler))
    pca = PCA(n_components=n_pca_components, random_state=seed)
    X_train = pca.fit_transform(X_train)
    X_test = None if X_test is None else pca.transform(X_test)
    tensors.update(_pca_tensors(pca))
    return X_train, X_test, tensors


def evaluate_classification(
    X: Any,
    y: Any,
    *,
    task: ProbeTask,
    layer: int,
    probe_kind: ProbeKind,
    n_pca_components: int | None = None,
    normalize_pca: bool = True,
    seed: int = 0,
) -> dict[str, object]:
    """Score one probe on one stratified 80/20 split: balanced accuracy (+ rank MAE for ordinal targets).

    ``X`` is (n_personas, hidden_size); ``y`` class indices or ranks. Ordinal targets are fitted as
    numbers and the predictions rounded, clipped and snapped to the nearest observed rank.
    """
    from sklearn.metrics import balanced_accuracy_score, mean_absolute_error

    if task not in CLASSIFICATION_TASKS:
        raise ValueError(f"task must be one of {sorted(CLASSIFICATION_TASKS)}, got {task!r}")
    if (task == "ordinal") != (probe_kind == "ridge_regression"):
        raise ValueError("ordinal targets take ridge_regression, binary/categorical ones the other kinds")
    X, y = _xy(X, y, int)
    observed = np.unique(y)
    if probe_kind == "difference_of_means" and len(observed) != 2:
        raise ValueError(f"difference_of_means needs binary labels, got {len(observed)} classes")
    train, test = _split(y, classification=True, seed=seed)
    if probe_kind == "difference_of_means":
        f_train, f_test, _ = _pca_features(X[train], X[test], n_pca_components, seed, normalize_pca)
        pred, _ = predict_difference_of_means(f_test, *difference_of_means_direction(f_train, y[train]))
    else:
        pipe = make_linear_probe(probe_kind, n_pca_components, normalize_pca=normalize_pca, seed=seed)
        pipe.fit(X[train], y[train].astype(float) if task == "ordinal" else y[train])
        pred = pipe.predict(X[test])
        if task == "ordinal":
            ranks = np.clip(np.rint(pred), y.min(), y.max())
            pred = observed[np.abs(ranks[:, None] - observed[None, :]).argmin(axis=1)]
    return {
        "layer": layer,
        "probe_kind": probe_kind,
        "balanced_accuracy": float(balanced_accuracy_score(y[test], pred)),
        "mae": float(mean_absolute_error(y[test], pred)) if task == "ordinal" else None,
        "r2": None,
        **classification_baseline_metrics(y[test]),
    }


def evaluate_regression(
    X: Any,
    y: Any,
    *,
    layer: int,
    probe_kind: ProbeKind = "ridge_regression",
    n_pca_components: int | None = None,
    normalize_pca: bool = True,
    seed: int = 0,
) -> dict[str, object]:
    """Score a ridge probe of a numeric target on one 80/20 split: MAE and R² beside the mean's."""
    from sklearn.metrics import mean_absolute_error, r2_score

    if probe_kind != "ridge_regression":
        raise ValueError(f"numeric targets take ridge_regression, got {probe_kind!r}")
    X, y = _xy(X, y, float)
    train, test = _split(y, classification=False, seed=seed)
    pipe = make_linear_probe(probe_kind, n_pca_components, normalize_pca=normalize_pca, seed=seed)
    pred = pipe.fit(X[train], y[train]).predict(X[test])
    return {
        "layer": layer,
        "probe_kind": probe_kind,
        "balanced_accuracy": None,
        "mae": float(mean_absolute_error(y[test], pred)),
        "r2": float(r2_score(y[test], pred)),
        **regression_baseline_metrics(y[test]),
    }


# -- sweeps and controls ------------------------------------------------------------------------------
def _vectors(samples: Any) -> np.ndarray:
    v = np.asarray(to_numpy(samples.vectors if hasattr(samples, "vectors") else samples), dtype=np.float32)
    if v.ndim != 3:
        raise ValueError(f"samples.vectors must be (n_personas, num_layers, hidden_size), got shape {v.shape}")
    return v


def layer_matrix(samples: Any, layer: int) -> np.ndarray:
    """One layer of the samples: float32 NumPy (n_personas, hidden_size)."""
    v = _vectors(samples)
    if not -v.shape[1] <= layer < v.shape[1]:
        raise IndexError(f"layer {layer} is out of range for {v.shape[1]} layers")
    return v[:, layer, :]


def pick_layers(num_layers: int, fast: bool = True) -> list[int]:
    """Every layer, or (``fast``) the first, quarter, middle, three-quarter and last."""
    if not fast:
        return list(range(num_layers))
    return sorted({0, num_layers // 4, num_layers // 2, (3 * num_layers) // 4, num_layers - 1})


def _metric_row(labels: AttributeLabels, metrics: dict[str, object]) -> dict[str, object]:
    row: dict[str, object] = {"attribute": labels.attribute_name}
    row.update({k: metrics[k] for k in ("layer", "probe_kind", "balanced_accuracy", "mae", "r2")})
    row.update({k: v for k, v in metrics.items() if k.startswith("baseline_")})
    return row


def sweep_attribute(
    samples: Any,
    labels: AttributeLabels,
    *,
    layers: Sequence[int],
    probe_kinds: Sequence[ProbeKind] | None = None,
    n_pca_components: int | None = None,
    normalize_pca: bool = True,
    seed: int = 0,
) -> list[dict[str, object]]:
    """One metric row per (layer, probe kind): attribute, layer, probe_kind, balanced_accuracy, mae, r2, baselines."""
    kinds = list(probe_kinds or default_probe_kinds(labels.task))
    vectors = _vectors(samples)
    rows = []
    opts: dict[str, Any] = {"n_pca_components": n_pca_components, "normalize_pca": normalize_pca, "seed": seed}
    for layer in progress_bar(list(layers), desc=labels.attribute_name, unit="layer", leave=False):
        X = vectors[:, layer, :]
        for kind in kinds:
            if labels.task == "numeric":
                metrics = evaluate_regression(X, labels.y, layer=layer, probe_kind=kind, **opts)
            else:
                metrics = evaluate_classification(X, labels.y, task=labels.task, layer=layer, probe_kind=kind, **opts)
            rows.append(_metric_row(labels, metrics))
    return rows


def shuffle_label_baseline(
    X: Any,
    y: Any,
    *,
    task: ProbeTask,
    layer: int,
    probe_kind: ProbeKind,
    n_pca_components: int | None = None,
    normalize_pca: bool = True,
    n_repeats: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Selectivity control (Hewitt & Liang 2019): the same probe on shuffled labels, ``n_repeats`` times.

    Returns the mean and standard deviation of the balanced accuracy; the gap to the real labels' score
    is what the probe reads from the vectors rather than from the split. Classification tasks only.
    """
    if task not in CLASSIFICATION_TASKS:
        raise ValueError("shuffle_label_baseline is defined for classification tasks only")
    rng = np.random.default_rng(seed)
    y = np.asarray(to_numpy(y))
    scores = [
        float(
            evaluate_classification(
                X, rng.permutation(y), task=task, layer=layer, probe_kind=probe_kind,
                n_pca_components=n_pca_components, normalize_pca=normalize_pca, seed=seed + r,
            )["balanced_accuracy"]  # type: ignore[arg-type]
        )
        for r in range(n_repeats)
    ]  # fmt: skip
    return {"balanced_accuracy_mean": float(np.mean(scores)), "balanced_accuracy_std": float(np.std(scores))}


def filter_attribute_samples_min_count(
    samples: Any, labels: AttributeLabels, min_count: int
) -> tuple[Any, AttributeLabels]:
    """Drop the personas of classes with fewer than ``min_count`` members (numeric targets pass through).

    Ordinal ranks keep their numbers; binary/categorical classes that survive are renumbered 0..k-1.
    The samples keep their array type (NumPy or torch).
    """
    if labels.task not in CLASSIFICATION_TASKS:
        return samples, labels
    y = np.asarray(labels.y, dtype=int)
    counts = np.bincount(y)
    keep = counts[y] >= min_count
    if keep.all():
        return samples, labels
    idx = np.flatnonzero(keep)
    names = labels.class_names
    if labels.task == "ordinal":
        new_y = y[keep]
    else:
        kept = np.flatnonzero(counts >= min_count)
        new_y = np.searchsorted(kept, y[keep])
        names = None if names is None else [names[c] for c in kept]
    pick = idx.tolist()
    extra = {}
    for name in ("persona_ids",):  # latentatlas's LayeredSamples carries ids too
        got = getattr(samples, name, None)
        if got:
            extra[name] = [got[i] for i in pick]
    kept_samples = LayeredSamples(
        vectors=samples.vectors[pick],
        labels=[samples.labels[i] for i in pick],
        hover_text=[samples.hover_text[i] for i in pick],
        variant=getattr(samples, "variant", None),
        **extra,
    )
    new_labels = replace(labels, y=new_y, labels=[labels.labels[i] for i in pick], class_names=names)
    return kept_samples, new_labels


# -- artifacts ----------------------------------------------------------------------------------------
def _scaler_tensors(scaler: Any) -> dict[str, np.ndarray]:
    return {"scaler_mean": scaler.mean_.astype(np.float32), "scaler_scale": scaler.scale_.astype(np.float32)}


def _pca_tensors(pca: Any) -> dict[str, np.ndarray]:
    return {
        "pca_mean": np.ascontiguousarray(pca.mean_, dtype=np.float32),
        "pca_components": np.ascontiguousarray(pca.components_, dtype=np.float32),
    }


def _two_class_head(w: np.ndarray, b: float) -> dict[str, np.ndarray]:
    """A binary readout as the two-row linear head persona-ui loads: rows −w/2 and +w/2."""
    return {
        "weight": np.stack([-0.5 * w, 0.5 * w]).astype(np.float32),
        "bias": np.asarray([-0.5 * b, 0.5 * b], dtype=np.float32),
    }


def _fit_tensors(
    X: np.ndarray, y: np.ndarray, task: ProbeTask, probe_kind: ProbeKind, n_pca: int | None, normalize: bool, seed: int
) -> dict[str, np.ndarray]:
    """The probe refitted on every row, as the artifact's tensors."""
    if probe_kind == "difference_of_means":
        feats, _, tensors = _pca_features(X, None, n_pca, seed, normalize)
        direction, bias = difference_of_means_direction(feats, y.astype(int))
        tensors.update(_two_class_head(direction, bias))
        tensors["direction"] = direction.astype(np.float32)
        tensors["direction_bias"] = np.asarray([bias], dtype=np.float32)
        return tensors
    pipe = make_linear_probe(probe_kind, n_pca, normalize_pca=normalize, seed=seed)
    pipe.fit(X, y.astype(float) if task in ("ordinal", "numeric") else y)
    tensors = {}
    if "scale" in pipe.named_steps:
        tensors.update(_scaler_tensors(pipe.named_steps["scale"]))
    if "pca" in pipe.named_steps:
        tensors.update(_pca_tensors(pipe.named_steps["pca"]))
    head = pipe.named_steps["probe"]
    coef = np.atleast_2d(np.asarray(head.coef_, dtype=np.float32))
    intercept = np.atleast_1d(np.asarray(head.intercept_, dtype=np.float32))
    if task == "binary" and coef.shape[0] == 1:
        tensors.update(_two_class_head(coef[0], float(intercept[0])))
    else:
        tensors.update({"weight": coef, "bias": intercept})
    return tensors


def _json_safe(value: Any) -> Any:
    """JSON-ready: NumPy scalars as Python numbers, non-finite floats as null (strict JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def save_probe_artifact(
    *,
    X: Any,
    y: Any,
    labels: AttributeLabels,
    task: ProbeTask,
    probe_kind: ProbeKind,
    layer: int,
    model_name: str,
    variant: str,
    mask_strategy: object,
    n_pca_components: int | None = None,
    normalize_pca: bool = True,
    output_dir: str | os.PathLike[str] = "artifacts/probes",
    metrics: dict[str, object] | None = None,
    seed: int = 0,
    location: str = "post_reasoning",
) -> Path:
    """Refit the probe on every persona and save it; returns the artifact directory.

    The directory is ``output_dir/<model>/<mask_strategy>/<variant>/<attribute>/<kind>[_pcaN]_layer<L>``
    (each name checked to be one safe path component) and holds ``probe.json`` (schema 2: the probe's
    settings, input and feature sizes, class names, ``metrics``) and ``weights.safetensors`` (float32
    ``weight`` (classes, features), ``bias``, and ``scaler_*`` / ``pca_*`` / ``direction*`` as used).
    Both files are replaced together: a crash leaves the old pair or the new one.
    """
    X, y = _xy(X, y, float if task == "numeric" else int)
    tensors = _fit_tensors(X, y, task, probe_kind, n_pca_components, normalize_pca, seed)
    mask = safe_name(normalize_mask_strategy(mask_strategy), "mask_strategy")
    suffix = "" if n_pca_components is None else f"_pca{int(n_pca_components)}"
    root = Path(output_dir).joinpath(
        model_dir_name(model_name), mask, safe_name(variant, "variant"),
        safe_name(labels.attribute_name, "attribute_name"), f"{probe_kind}{suffix}_layer{int(layer)}",
    )  # fmt: skip
    metadata = {
        "schema_version": SCHEMA_VERSION, "model_name": model_name, "variant": variant, "mask_strategy": mask,
        "attribute_name": labels.attribute_name, "task": task, "probe_kind": probe_kind,
        "n_pca_components": n_pca_components,
        "normalize_pca": bool(normalize_pca) if n_pca_components is not None else None,
        "layer": int(layer), "location": location, "input_dim": int(X.shape[1]),
        "artifact_feature_dim": int(tensors["weight"].shape[1]), "class_names": labels.class_names,
        "metrics": metrics or {},
    }  # fmt: skip
    text = json.dumps(_json_safe(metadata), indent=2, allow_nan=False)
    root.mkdir(parents=True, exist_ok=True)
    with locked(root):
        roll_forward(root)
        commit_files(root, {_WEIGHTS: safetensors_writer(tensors), _METADATA: text.encode("utf-8")})
    return root


def load_probe_artifact(path: str | os.PathLike[str]) -> ProbeArtifact:
    """Read a saved probe: ``path`` is its directory or either of its two files.

    Tensors come back as torch tensors when torch is imported, else NumPy. A missing file is a
    FileNotFoundError, another schema version or a file without ``weight``/``bias`` a ValueError.
    """
    source = Path(path)
    root = source if source.is_dir() else source.parent
    meta_path, weights_path = root / _METADATA, root / _WEIGHTS
    for p, what in ((meta_path, "metadata"), (weights_path, "weights")):
        if not p.is_file():
            raise FileNotFoundError(f"missing probe {what} file: {p}")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{meta_path}: not valid JSON ({exc})") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{meta_path}: probe metadata must be a JSON object")
    try:
        version = int(metadata.get("schema_version", 0))
    except (TypeError, ValueError):
        version = -1
    if version != SCHEMA_VERSION:
        raise ValueError(f"{meta_path}: schema_version {metadata.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    tensors = read_safetensors(weights_path)
    if not {"weight", "bias"} <= tensors.keys():
        raise ValueError(f"{weights_path} lacks the required tensors weight and bias (it holds {sorted(tensors)})")
    return ProbeArtifact(metadata, {k: as_array_type(v, "auto") for k, v in tensors.items()})


# -- the whole job ------------------------------------------------------------------------------------
def run_attribute_probe(
    samples: Any,
    persona_dataset: Any,
    attribute: str,
    persona_ids: Sequence[str],
    *,
    layers: Sequence[int],
    n_pca_components: int | None = None,
    normalize_pca: bool = True,
    min_class_count: int = 5,
    model_name: str,
    variant: str,
    mask_strategy: object,
    output_dir: str | os.PathLike[str],
    seed: int = 0,
) -> tuple[Path, dict[str, object], ProbeTask]:
    """Label, drop rare classes, sweep ``layers``, refit the best (layer, kind) on all personas and save it.

    Returns ``(artifact directory, the winning sweep row, the task)``.
    """
    task = infer_probe_task(persona_dataset, attribute)
    labels = attribute_probe_labels(persona_dataset, attribute, persona_ids, task=task)
    kept, labels = filter_attribute_samples_min_count(samples, labels, min_count=min_class_count)
    opts: dict[str, Any] = {"n_pca_components": n_pca_components, "normalize_pca": normalize_pca, "seed": seed}
    best = best_row(sweep_attribute(kept, labels, layers=layers, **opts), primary_metric(task))
    layer = int(best["layer"])
    directory = save_probe_artifact(
        X=layer_matrix(kept, layer), y=labels.y, labels=labels, task=task,
        probe_kind=best["probe_kind"], layer=layer, model_name=model_name, variant=variant,
        mask_strategy=mask_strategy, output_dir=output_dir, metrics=best, **opts,
    )  # fmt: skip
    return directory, best, task
