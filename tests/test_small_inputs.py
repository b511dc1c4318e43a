"""Defaults adapt to small inputs (issue 25): every input the docs call valid runs with the defaults.

``minima.compare`` documents 10 rows and 2 feature columns as its minimum, but its defaults
``n_neighbors=30`` and ``k=8`` rejected every N <= 30 and every X with at most 8 columns;
``minima_across_layers`` documents layers of width >= 2 with ``k=8``; the ``atlas`` command passed
both fixed defaults on.
"""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas.cli import main
from latentatlas.minima import compare, minima_across_layers
from latentatlas.minima.blend import MIN_POINTS
from latentatlas.minima.layers import MIN_ITEMS

WIDTHS = (2, 3, 5, 8, 12)


@pytest.mark.parametrize("n", range(MIN_POINTS, 32))
def test_compare_runs_with_its_defaults_from_the_documented_minimum(n: int) -> None:
    f = WIDTHS[(n - MIN_POINTS) % len(WIDTHS)]
    X = np.random.default_rng(n).standard_normal((n, f))
    res = compare(X, progress=False, n_seeds=3)
    assert res.info["knn_k"] == min(30, n - 1)
    assert res.k == min(8, f - 1)
    assert all(np.isfinite(v).all() for v in res.scores.values())


@pytest.mark.parametrize("method", ["kde", "tomato"])
@pytest.mark.parametrize("width", [2, 5, 8])
def test_layers_run_with_their_defaults_on_narrow_layers(method: str, width: int) -> None:
    stack = np.random.default_rng(width).standard_normal((3, MIN_ITEMS + 7, width))
    res = minima_across_layers(stack, method=method)
    assert res.is_minimum.shape == (3, MIN_ITEMS + 7)


def test_atlas_command_on_a_small_narrow_matrix(tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((12, 3)).astype(np.float32))
    assert main(["atlas", str(tmp_path / "x.npy"), "--out", str(tmp_path / "a.html"), "--quiet"]) == 0
    assert (tmp_path / "a.html").stat().st_size > 0
