//! ToMATo's merge forest (Chazal, Guibas, Oudot, Skraba: "Persistence-Based Clustering in
//! Riemannian Manifolds", J. ACM 2013): the 0-dimensional persistence of the superlevel sets of a
//! density on a neighbourhood graph, as a list of merges between raw clusters.
//!
//! Vertices are visited by decreasing density (ties: lower index first). A vertex with no
//! already-visited neighbour is a peak and opens a raw cluster; otherwise it joins the raw cluster
//! of its highest visited neighbour, and every other cluster (union-find set) among its visited
//! neighbours is merged into that one there: the younger peak dies at this vertex's density (the
//! elder rule), and the merge is recorded between two raw clusters. Selecting clusters (merging
//! the least persistent first) is left to the caller, which replays the merges.
//!
//! The bookkeeping follows gudhi's `Tomato` (`clustering/_tomato.cc`) so that the same graph
//! (neighbour lists in the same order) and density give the same merges: the other clusters of a
//! vertex are visited by increasing set representative, each represented by the raw cluster of the
//! first neighbour found in it; union by rank breaks rank ties towards the second argument.
//! gudhi orders equal densities arbitrarily; here they go by index.

use crate::check::check_finite_slice;
use crate::error::{shape, Result};

/// The merge forest of [`tomato_forest`].
#[derive(Debug, Clone, PartialEq)]
pub struct TomatoForest {
    /// Raw cluster of each vertex (`n`); raw clusters are numbered by decreasing peak density.
    pub raw_cluster: Vec<i64>,
    /// Vertex at the peak of each raw cluster.
    pub peaks: Vec<i64>,
    /// The two raw clusters of each merge, in the order the merges happen.
    pub merges: Vec<[i64; 2]>,
    /// Density of the younger (lower) peak of each merge: the birth of the dying cluster.
    pub birth: Vec<f64>,
    /// Density of the vertex where each merge happens: the death.
    pub death: Vec<f64>,
}

/// Union-find over raw clusters with union by rank and full path compression.
struct Sets {
    parent: Vec<usize>,
    rank: Vec<u32>,
    /// Visit rank of the highest vertex of each set (valid at set roots).
    top: Vec<usize>,
}

impl Sets {
    fn find(&mut self, x: usize) -> usize {
        let mut root = x;
        while self.parent[root] != root {
            root = self.parent[root];
        }
        let mut y = x;
        while self.parent[y] != root {
            let next = self.parent[y];
            self.parent[y] = root;
            y = next;
        }
        root
    }

    /// Link two roots; on equal ranks `b` becomes the root (as boost's `disjoint_sets::link`).
    fn link(&mut self, a: usize, b: usize) {
        if self.rank[a] > self.rank[b] {
            self.parent[b] = a;
        } else {
            self.parent[a] = b;
            if self.rank[a] == self.rank[b] {
                self.rank[b] += 1;
            }
        }
    }
}

/// Check a CSR graph (`indptr` of length n + 1 from 0 to `indices.len()`, non-decreasing,
/// `indices` in `[0, n)`).
fn check_graph(indptr: &[i64], indices: &[i64], n: usize) -> Result<()> {
    if indptr.len() != n + 1 {
        return Err(shape(
            "indptr",
            format!(
                "expected length n + 1 = {} for {n} densities, got {}",
                n + 1,
                indptr.len()
            ),
        ));
    }
    if indptr[0] != 0 || indptr[n] != indices.len() as i64 || indptr.windows(2).any(|w| w[1] < w[0])
    {
        return Err(shape(
            "indptr",
            format!(
                "must rise from 0 to len(indices) = {} without decreasing",
                indices.len()
            ),
        ));
    }
    if let Some(&bad) = indices.iter().find(|&&j| j < 0 || j >= n as i64) {
        return Err(shape(
            "indices",
            format!("neighbour {bad} is outside [0, {n})"),
        ));
    }
    Ok(())
}

/// The ToMATo merge forest of `density` (n) on the graph in CSR form (`indptr`, `indices`): each
/// vertex looks at its own neighbour list (pass a symmetric graph for an undirected one; self
/// loops are ignored).
pub fn tomato_forest(density: &[f64], indptr: &[i64], indices: &[i64]) -> Result<TomatoForest> {
    let n = density.len();
    check_finite_slice(density, "density")?;
    check_graph(indptr, indices, n)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| density[b].total_cmp(&density[a]).then(a.cmp(&b)));
    let mut rank_of = vec![0usize; n];
    for (r, &p) in order.iter().enumerate() {
        rank_of[p] = r;
    }
    let mut raw = vec![0usize; n]; // by visit rank
    let mut sets = Sets {
        parent: Vec::new(),
        rank: Vec::new(),
        top: Vec::new(),
    };
    let mut out = TomatoForest {
        raw_cluster: vec![0; n],
        peaks: Vec::new(),
        merges: Vec::new(),
        birth: Vec::new(),
        death: Vec::new(),
    };
    let mut adj: Vec<(usize, usize)> = Vec::new(); // (set root, a raw cluster in it)
    for i in 0..n {
        let p = order[i];
        adj.clear();
        let mut j = i; // highest visited neighbour
        for &q in &indices[indptr[p] as usize..indptr[p + 1] as usize] {
            let k = rank_of[q as usize];
            if k >= i {
                continue;
            }
            j = j.min(k);
            let rk = raw[k];
            let ck = sets.find(rk);
            if !adj.iter().any(|&(c, _)| c == ck) {
                adj.push((ck, rk));
            }
        }
        if j == i {
            let c = sets.parent.len();
            sets.parent.push(c);
            sets.rank.push(0);
            sets.top.push(i);
            raw[i] = c;
            out.peaks.push(p as i64);
            continue;
        }
        let rj = raw[j];
        raw[i] = rj;
        adj.sort_unstable_by_key(|&(c, _)| c);
        let first = sets.find(rj);
        let mut cj = first;
        for &(ck, rk) in &adj {
            if ck == first {
                continue;
            }
            let (tj, tk) = (sets.top[cj], sets.top[ck]);
            out.birth.push(density[order[tj.max(tk)]]);
            out.death.push(density[p]);
            out.merges.push([rj as i64, rk as i64]);
            sets.link(cj, ck);
            cj = sets.find(cj);
            sets.top[cj] = tj.min(tk);
        }
    }
    for (r, &p) in order.iter().enumerate() {
        out.raw_cluster[p] = raw[r] as i64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path 0-1-2-3-4 with density peaks at 1 (3.0) and 3 (2.0), saddle at 2 (1.0).
    #[test]
    fn two_peaks_on_a_path() {
        let density = [0.5, 3.0, 1.0, 2.0, 0.2];
        let indptr = [0, 1, 3, 5, 7, 8];
        let indices = [1, 0, 2, 1, 3, 2, 4, 3];
        let f = tomato_forest(&density, &indptr, &indices).unwrap();
        assert_eq!(f.peaks, vec![1, 3]);
        assert_eq!(f.raw_cluster, vec![0, 0, 0, 1, 1]);
        assert_eq!(f.merges, vec![[0, 1]]);
        assert_eq!((f.birth[0], f.death[0]), (2.0, 1.0));
    }

    #[test]
    fn bad_graphs_are_errors() {
        assert!(tomato_forest(&[1.0, 2.0], &[0, 1], &[1]).is_err());
        assert!(tomato_forest(&[1.0, 2.0], &[0, 1, 2], &[1, 2]).is_err());
        assert!(tomato_forest(&[1.0, f64::NAN], &[0, 1, 2], &[1, 0]).is_err());
        assert!(tomato_forest(&[1.0, 2.0], &[0, 2, 1], &[1, 0]).is_err());
    }
}
