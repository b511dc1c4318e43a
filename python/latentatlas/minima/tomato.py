"""ToMATo: persistence-based minima (Chazal, Guibas, Oudot, Skraba, "Persistence-Based Clustering
in Riemannian Manifolds", J. ACM 60(6), 2013), the fourth vanilla method of ``compare``.

1. **Density** on the kNN graph: ``f_i = -½ log(mean_j d²_ij)`` over the point's k neighbours (the
   log of the inverse distance-to-measure, gudhi's "logDTM" with exponent 2; constant factors do not
   change the clustering). A point whose k neighbours all coincide with it would get ``+inf``: mean
   squared distances are floored at 1e-12 of the median one, so duplicates tie at the top instead.
2. **Merge forest** (``kernels.tomato_forest``, Rust): points by decreasing density on the symmetrised
   kNN graph; each local maximum starts a cluster, each other point joins its highest neighbour's,
   and where two clusters meet the younger peak dies (elder rule). Each merge is a point
   ``(birth, death)`` of the persistence diagram; its prominence is ``birth - death``.
3. **Clusters**: the ``n_leaves - n_clusters`` least prominent merges are applied (as gudhi's
   ``Tomato(n_clusters=...)``; ``merge_threshold`` keeps the merges more prominent than it). Without
   either, ``n_clusters`` is read off the diagram at its widest gap: the prominences sorted
   decreasingly (with 0 appended), the cut goes after the largest drop.
4. **Score**: the height of each point below the peak of its cluster, ``f_peak - f_i``, min-max
   normalised; the minima (bottom quantile) are the points of the persistent modes' basins near
   their peaks. Low score = near a persistent density mode, as the other vanilla scores.

A disconnected graph is no error: each component has at least one cluster of its own (gudhi's
"infinite" diagram points, ``component_peaks``).

Checked against gudhi's ``Tomato`` on the same graph and density (``tests/test_minima_tomato.py``):
identical labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import check_float, check_int
from ..spectral import minmax

__all__ = ["TomatoResult", "knn_log_density", "tomato", "tomato_score"]


@dataclass
class TomatoResult:
    """ToMATo's clustering of a density on a graph.

    Attributes
    ----------
    labels : (n,) int64       final cluster of each point, numbered by decreasing peak density
    leaf_labels : (n,) int64  raw cluster (local maximum's basin) of each point
    peaks : (r,) int64        point at the peak of each raw cluster
    diagram : (m, 2) float64  (birth, death) density of every merge: the finite persistence diagram
    component_peaks : (c,) float64  highest density of each connected component (the infinite points)
    n_clusters : int
    density : (n,) float64
    """

    labels: np.ndarray
    leaf_labels: np.ndarray
    peaks: np.ndarray
    diagram: np.ndarray
    component_peaks: np.ndarray
    n_clusters: int
    density: np.ndarray

    @property
    def prominence(self) -> np.ndarray:
        """birth - death of each finite diagram point."""
        return self.diagram[:, 0] - self.diagram[:, 1]


def knn_log_density(d2: Any) -> np.ndarray:
    """``-½ log(mean squared distance to the k neighbours)`` per row of ``d2`` (n, k); see the module docstring."""
    d2 = np.asarray(d2, dtype=np.float64)
    if d2.ndim != 2 or d2.shape[1] < 1:
        raise ValueError(f"d2 must have shape (n, k) with k >= 1, got {d2.shape}")
    m = d2.mean(axis=1)
    scale = float(np.median(m)) if np.median(m) > 0 else float(m.max())
    if not scale > 0:
        raise ValueError("every point coincides with its neighbours (all rows identical?): no density to cluster")
    return -0.5 * np.log(np.maximum(m, 1e-12 * scale))


def _merge_labels(leaf_labels: np.ndarray, merges: np.ndarray, prominence: np.ndarray, n_apply: int) -> np.ndarray:
    """Apply the ``n_apply`` least prominent merges (stable order) and name the clusters 0, 1, ... by
    their lowest raw cluster (= the highest peak)."""
    n_leaves = int(leaf_labels.max()) + 1 if leaf_labels.size else 0
    parent = np.arange(n_leaves)

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = int(parent[c])
        return c

    for t in np.argsort(prominence, kind="stable")[:n_apply]:
        a, b = find(int(merges[t, 0])), find(int(merges[t, 1]))
        parent[max(a, b)] = min(a, b)  # the lower raw cluster (higher peak) names the union
    roots = np.array([find(c) for c in range(n_leaves)], dtype=np.int64)
    _, names = np.unique(roots, return_inverse=True)
    return names.astype(np.int64)[leaf_labels]


def _gap_n_clusters(prominence: np.ndarray, n_components: int) -> int:
    if prominence.size == 0:
        return n_components
    p = np.sort(prominence)[::-1]
    drops = p - np.append(p[1:], 0.0)
    return n_components + int(np.argmax(drops)) + 1


def tomato(
    density: Any,
    indptr: Any,
    indices: Any,
    *,
    n_clusters: int | None = None,
    merge_threshold: float | None = None,
) -> TomatoResult:
    """ToMATo clustering of ``density`` (n,) on the graph in CSR form (``indptr`` (n+1,), ``indices``).

    Parameters
    ----------
    density : (n,) finite floats
    indptr, indices : int arrays, the neighbour lists (pass a symmetric graph for an undirected one)
    n_clusters : int, optional
        Clusters to keep (at least one per connected component, at most one per local maximum).
    merge_threshold : float, optional
        Keep the clusters whose prominence exceeds it. At most one of the two; neither: the widest
        gap of the diagram (module docstring).
    """
    from .. import kernels

    if n_clusters is not None and merge_threshold is not None:
        raise ValueError("give n_clusters or merge_threshold, not both")
    f = np.asarray(density)
    if f.ndim != 1:
        raise ValueError(f"density must be 1-D, got shape {f.shape}")
    leaf, peaks, merges, birth, death = kernels.tomato_forest(f, indptr, indices)
    diagram = np.column_stack([birth, death])
    prom = birth - death
    n_leaves = peaks.size
    n_comp = n_leaves - merges.shape[0]
    if merge_threshold is not None:
        thr = check_float(merge_threshold, "merge_threshold", low=0.0)
        k = int(np.count_nonzero(prom > thr)) + n_comp
    elif n_clusters is not None:
        k = check_int(n_clusters, "n_clusters", low=1)
        k = min(max(k, n_comp), n_leaves)
    else:
        k = _gap_n_clusters(prom, n_comp)
    labels = _merge_labels(leaf, merges, prom, n_leaves - k)
    comp = _merge_labels(leaf, merges, prom, merges.shape[0])
    comp_peaks = np.full(n_comp, -np.inf)
    np.maximum.at(comp_peaks, comp, f)
    return TomatoResult(
        labels=labels,
        leaf_labels=leaf,
        peaks=peaks,
        diagram=diagram,
        component_peaks=comp_peaks,
        n_clusters=k,
        density=f,
    )


def tomato_score(result: TomatoResult) -> np.ndarray:
    """Vanilla ToMATo minimum score (n,): min-max height below the peak of the point's cluster."""
    top = np.full(result.n_clusters, -np.inf)
    np.maximum.at(top, result.labels, result.density)
    return minmax(top[result.labels] - result.density)
