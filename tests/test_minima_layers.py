"""Minima tracked across layers (latentatlas.minima.layers): planted stable / transient minima, the
per-layer scores against the single-layer ``compare``, the bookkeeping against plain loops, the figures'
flows, thread independence and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas.minima import LayerMinima, MinimaComparison, compare, minima_across_layers
from latentatlas.minima.layers import MIN_ITEMS, transition_counts
from latentatlas.minima.plots import layer_heatmap, layer_sankey

N, N_STABLE, LAYERS = 120, 8, 4
STABLE = np.arange(N_STABLE)
EARLY = np.arange(8, 12)  # in the cluster in layers 0-1 only
LATE = np.arange(12, 16)  # in the cluster in layers 2-3 only
NOISE = np.arange(16, N)


def _layer(rng: np.random.Generator, groups: int, width: int, cluster: np.ndarray, n: int = N) -> np.ndarray:
    """Features in ``groups`` blocks of ``width`` co-varying columns. Noise items: a group latent ~ N(0, 1)
    plus iid N(0, 0.7) per column (rough across the feature graph: high energy; spread: low density).
    Cluster items: the same point (0.5 per group) plus 0.03 noise (smooth and dense: a minimum)."""
    lat = rng.standard_normal((n, groups))
    X = np.repeat(lat, width, axis=1) + 0.7 * rng.standard_normal((n, groups * width))
    X[cluster] = 0.5 + 0.03 * rng.standard_normal((cluster.size, groups * width))
    return X


@pytest.fixture(scope="module")
def planted() -> list[np.ndarray]:
    """4 layers of different widths (24, 32, 40, 32 columns): STABLE items form the dense, smooth cluster
    in every layer, EARLY items join it in layers 0-1, LATE items in layers 2-3: 12 = 10 % of 120 cluster
    items per layer, exactly the minima slots."""
    rng = np.random.default_rng(7)
    early, late = np.concatenate([STABLE, EARLY]), np.concatenate([STABLE, LATE])
    return [_layer(rng, 3, 8, early), _layer(rng, 4, 8, early), _layer(rng, 5, 8, late), _layer(rng, 4, 8, late)]


@pytest.fixture(scope="module")
def res(planted: list[np.ndarray]) -> LayerMinima:
    return minima_across_layers(planted, method="kde", alpha=0.5, k=4, items=[f"item {i}" for i in range(N)])


def test_planted_stable_and_transient_minima(res: LayerMinima) -> None:
    assert res.score.shape == res.energy.shape == res.is_minimum.shape == (LAYERS, N)
    want = np.zeros((LAYERS, N), dtype=bool)
    want[:, STABLE] = True
    want[:2, EARLY] = want[2:, LATE] = True
    np.testing.assert_array_equal(res.is_minimum, want)
    np.testing.assert_array_equal(res.stability[STABLE], 1.0)
    np.testing.assert_array_equal(res.longest_run[STABLE], LAYERS)
    # transient minima: 1 of the 3 layer pairs, half of the layers, runs of 2
    np.testing.assert_allclose(res.stability[EARLY], 1 / 3)
    np.testing.assert_allclose(res.stability[LATE], 1 / 3)
    np.testing.assert_allclose(res.frequency[np.r_[EARLY, LATE]], 0.5)
    np.testing.assert_array_equal(res.longest_run[np.r_[EARLY, LATE]], 2)
    np.testing.assert_array_equal(res.stability[NOISE], 0.0)
    assert set(res.order()[:N_STABLE]) == set(STABLE)
    np.testing.assert_array_equal(res.transitions[1], [[N - 16, 4], [4, 8]])  # the hand-over at layers 1 -> 2


def test_bookkeeping_matches_plain_loops(res: LayerMinima) -> None:
    m = res.is_minimum
    for i in range(N):
        col = [bool(v) for v in m[:, i]]
        pairs = [col[j] and col[j + 1] for j in range(LAYERS - 1)]
        assert res.stability[i] == pytest.approx(sum(pairs) / (LAYERS - 1))
        assert res.frequency[i] == pytest.approx(sum(col) / LAYERS)
        best = run = 0
        for v in col:
            run = run + 1 if v else 0
            best = max(best, run)
        assert res.longest_run[i] == best
    for j in range(LAYERS - 1):
        for a in (0, 1):
            for b in (0, 1):
                want = sum(1 for i in range(N) if int(m[j, i]) == a and int(m[j + 1, i]) == b)
                assert res.transitions[j, a, b] == want
        assert res.transitions[j].sum() == N
    # the minima are the bottom 10 % of the blend, recomputed here by sorting
    for s, mask in zip(res.score, m):
        assert mask.sum() >= int(0.1 * N) and (s[mask].max() <= s[~mask].min())


BASIN = {"n_seeds": 4, "niter": 10}  # few basin-hopping starts: the same code path, a fraction of the time
SETTINGS = {"alpha": 0.4, "k": 4, "quantile": 0.15, "n_neighbors": 20}


@pytest.fixture(scope="module")
def single(planted: list[np.ndarray]) -> dict[int, MinimaComparison]:
    """compare() on layers 0 and 2 alone: the independent single-layer pipeline, all four methods at once."""
    return {
        layer: compare(planted[layer], progress=False, n_seeds=BASIN["n_seeds"], basin_kwargs={"niter": 10}, **SETTINGS)
        for layer in (0, 2)
    }


@pytest.mark.parametrize("method", ["kde", "diffusion", "tomato", "basin"])
def test_each_layer_equals_single_layer_compare(
    planted: list[np.ndarray], single: dict[int, MinimaComparison], method: str
) -> None:
    """Layers 0 and 2 equal compare() on that matrix alone (basin: layer 0 only, where the rng stream starts)."""
    stack = planted[:2] if method == "basin" else planted[:3]
    res = minima_across_layers(stack, method=method, basin_kwargs=BASIN, **SETTINGS)  # type: ignore[arg-type]
    name = {"kde": "KDE", "diffusion": "DiffMaps", "tomato": "ToMATo", "basin": "BasinHop"}[method]
    for layer in (0,) if method == "basin" else (0, 2):
        ref = single[layer]
        np.testing.assert_allclose(res.energy[layer], ref.energy, rtol=0, atol=1e-12)
        np.testing.assert_allclose(res.vanilla[layer], ref.scores[name], rtol=0, atol=1e-12)
        np.testing.assert_allclose(res.score[layer], ref.scores[f"{name} + Spectral"], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(res.is_minimum[layer], ref.masks[f"{name} + Spectral"])


def test_independent_of_thread_count(planted: list[np.ndarray]) -> None:
    one = minima_across_layers(planted, method="tomato", k=4, threads=1)
    two = minima_across_layers(planted, method="tomato", k=4, threads=2)
    for attr in ("energy", "vanilla", "score", "is_minimum", "stability", "transitions"):
        np.testing.assert_array_equal(getattr(one, attr), getattr(two, attr))


def test_array_stack_and_labels(planted: list[np.ndarray]) -> None:
    arr = np.stack([planted[1], planted[3]])  # (2, N, 32) float64
    res = minima_across_layers(arr.astype(np.float32), layers=["L5", "L9"], k=4)
    assert res.layers == ["L5", "L9"] and res.items is None and res.transitions.shape == (1, 2, 2)
    assert res.is_minimum[:, STABLE].all()
    assert res.info["widths"] == [32, 32]


def test_sankey_flows_sum_to_item_count(res: LayerMinima) -> None:
    fig = layer_sankey(res)
    sk = fig.data[0]
    assert len(sk.node.label) == 2 * LAYERS
    src, dst, val = np.asarray(sk.link.source), np.asarray(sk.link.target), np.asarray(sk.link.value)
    assert (dst // 2 == src // 2 + 1).all()  # links only join consecutive layers
    for j in range(LAYERS - 1):
        out = src // 2 == j
        assert val[out].sum() == N
        # and the flow into each node of layer j+1 is that layer's minimum / other count
        n_min = int(res.is_minimum[j + 1].sum())
        assert val[out & (dst == 2 * (j + 1))].sum() == n_min
        assert val[out & (dst == 2 * (j + 1) + 1)].sum() == N - n_min
    assert f"{N_STABLE} of {N} items are minima in every layer" in fig.layout.title.text


def test_heatmap_orders_by_stability_and_subsamples(res: LayerMinima) -> None:
    fig = layer_heatmap(res)
    hm = fig.data[0]
    z = np.asarray(hm.z)
    assert z.shape == (LAYERS, N)
    np.testing.assert_allclose(z[:, :N_STABLE], res.score[:, res.order()[:N_STABLE]])
    assert int(np.asarray(fig.data[1].x).size) == int(res.is_minimum.sum())  # one dot per minimum
    small = layer_heatmap(res, value="energy", max_items=50)
    assert np.asarray(small.data[0].z).shape == (LAYERS, 50)
    assert "50 of 120 items" in small.layout.title.text
    np.testing.assert_allclose(np.asarray(small.data[0].z)[:, 0], res.energy[:, res.order()[0]])


def test_transition_counts_direct() -> None:
    m = np.array([[1, 1, 0, 0, 1], [1, 0, 1, 0, 1], [0, 0, 1, 1, 1]], dtype=bool)
    t = transition_counts(m)
    np.testing.assert_array_equal(t[0], [[1, 1], [1, 2]])  # [other->other, other->min], [min->other, min->min]
    np.testing.assert_array_equal(t[1], [[1, 1], [1, 2]])


@pytest.mark.parametrize(
    ("stack", "kwargs", "match"),
    [
        ("one", {}, "at least 2 layers"),
        ("persona", {}, f"at least {MIN_ITEMS} items"),
        ("rows", {}, r"stack\[1\] has 30 rows but stack\[0\] has 40"),
        ("nan", {}, r"stack\[1\] contains NaN"),
        ("flat", {}, "stack must be 3-D"),
        ("str", {}, "stack must be an array"),
        ("narrow", {}, r"stack\[0\] needs at least 2 feature columns"),
        ("ok", {"k": 16}, "k must satisfy"),
        ("ok", {"method": "pca"}, "method must be one of"),
        ("ok", {"layers": ["a"]}, "layers must have 2 entries"),
        ("ok", {"items": ["a"]}, "items must have 40 entries"),
        ("ok", {"alpha": 2.0}, "alpha must be in"),
        ("ok", {"n_neighbors": 40}, "n_neighbors must satisfy"),
    ],
)
def test_bad_input_names_the_argument(stack: str, kwargs: dict, match: str) -> None:
    rng = np.random.default_rng(0)
    good = [rng.standard_normal((40, 16)), rng.standard_normal((40, 12))]
    bad = {
        "one": good[:1],
        "persona": [g[:1] for g in good],  # a persona store with one persona
        "rows": [good[0], good[1][:30]],
        "nan": [good[0], np.where(np.eye(40, 12, dtype=bool), np.nan, good[1])],
        "flat": np.zeros(10),
        "str": "layers.npy",
        "narrow": [g[:, :1] for g in good],
        "ok": good,
    }[stack]
    err = TypeError if stack == "str" else ValueError
    with pytest.raises(err, match=match):
        minima_across_layers(bad, **kwargs)
    if stack == "ok" and "k" in kwargs:
        with pytest.raises(ValueError, match="narrowest layer's width = 12"):
            minima_across_layers(bad, **kwargs)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # sklearn PCA of a point
def test_degenerate_layer_error_names_the_layer() -> None:
    rng = np.random.default_rng(1)
    flat = np.ones((30, 8)) + np.arange(8)  # every item the same point: no 2-D view to estimate a density on
    with pytest.raises(ValueError, match=r"stack\[1\] \(layer 'mid'\): .*degenerate"):
        minima_across_layers([rng.standard_normal((30, 8)), flat, rng.standard_normal((30, 8))], k=3,
                             layers=["in", "mid", "out"])  # fmt: skip


def test_figures_reject_other_objects() -> None:
    with pytest.raises(TypeError, match="res must be the LayerMinima"):
        layer_sankey(np.zeros((2, 5), dtype=bool))  # type: ignore[arg-type]


def test_persona_store_recipe(tmp_path) -> None:
    """The README's persona-store line: (L, P, H) from a real PersonaVectorStore; one persona is a clear error."""
    from latentatlas.personas.store import PersonaVectorStore

    rng = np.random.default_rng(3)
    store = PersonaVectorStore("org/model", root=tmp_path)
    # 24 personas, 6 layers of 32 = 4 x 8 co-varying dims; p00-p02 are the planted cluster in every layer
    layers = np.stack([_layer(rng, 4, 8, np.arange(3), n=24) for _ in range(6)])  # (6, 24, 32)
    for i in range(24):
        store.save("biography", f"p{i:02d}", None, layers[:, i].astype(np.float32))
    ids = store.list_personas("biography")
    stack = np.stack([store.load_numpy("biography", p) for p in ids], axis=1)
    assert stack.shape == (6, 24, 32)
    res = minima_across_layers(stack, k=4, items=ids)
    assert res.score.shape == (6, 24) and res.items == ids
    assert res.is_minimum.sum(axis=1).tolist() == [3] * 6  # bottom 10 % of 24
    np.testing.assert_array_equal(res.stability[:3], 1.0)
    np.testing.assert_array_equal(res.stability[3:], 0.0)
    base = layers[:, 0]
    one = PersonaVectorStore("org/model", root=tmp_path / "one")
    one.save("biography", "solo", None, base)
    solo = np.stack([one.load_numpy("biography", p) for p in one.list_personas("biography")], axis=1)
    with pytest.raises(ValueError, match=f"stack needs at least {MIN_ITEMS} items"):
        minima_across_layers(solo)
