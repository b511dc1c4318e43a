use std::cmp::Ordering;

/// The k best `(value, index)` pairs seen so far, ranked by value descending, then index
/// ascending (a total order, so the result never depends on the order candidates arrive in).
///
/// Candidates go into a buffer of `2k`; when it fills, a linear-time selection keeps the k best
/// and their worst value becomes the floor below which later candidates are dropped with a single
/// comparison. Each candidate thus costs O(1) amortised, where replacing the worst of k kept
/// entries costs O(k) (which dominated at k = 32 and above).
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    kept: Vec<(f64, usize)>,
    floor: f64,
}

/// The ranking: higher value first, then lower index.
#[inline(always)]
fn rank(a: &(f64, usize), b: &(f64, usize)) -> Ordering {
    b.0.partial_cmp(&a.0)
        .unwrap_or(Ordering::Equal)
        .then(a.1.cmp(&b.1))
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            kept: Vec::with_capacity(2 * k),
            floor: f64::NEG_INFINITY,
        }
    }

    pub fn clear(&mut self) {
        self.kept.clear();
        self.floor = f64::NEG_INFINITY;
    }

    /// How many pairs are kept (at most k).
    pub fn len(&self) -> usize {
        self.kept.len().min(self.k)
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Keep only the k best of the buffer; their worst value becomes the floor.
    fn compact(&mut self) {
        if self.kept.len() > self.k {
            self.kept.select_nth_unstable_by(self.k - 1, rank);
            self.kept.truncate(self.k);
            self.floor = self.kept[self.k - 1].0;
        }
    }

    /// A value every pair still able to enter must reach (`-inf` until k have been seen): the
    /// k-th best value at the last selection, so a candidate below it cannot enter.
    #[inline(always)]
    pub fn floor(&self) -> Option<f64> {
        (self.floor > f64::NEG_INFINITY).then_some(self.floor)
    }

    /// Offer a candidate.
    #[inline(always)]
    pub fn push(&mut self, v: f64, i: usize) {
        if self.k == 0 || v < self.floor {
            return;
        }
        self.kept.push((v, i));
        if self.kept.len() == 2 * self.k {
            self.compact();
        }
    }

    /// Write the kept pairs, best first, into the front of `vals`/`idx`; returns how many.
    pub fn write_sorted(&self, vals: &mut [f64], idx: &mut [usize]) -> usize {
        let mut order = self.kept.clone();
        order.sort_unstable_by(rank);
        order.truncate(self.k);
        for (t, &(v, i)) in order.iter().enumerate() {
            vals[t] = v;
            idx[t] = i;
        }
        order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_with_index_tiebreak() {
        let data = [0.5, 0.9, 0.1, 0.9, 0.7, 0.5, 0.9];
        let mut t = TopK::new(4);
        for (i, &v) in data.iter().enumerate() {
            t.push(v, i);
        }
        let (mut v, mut ix) = (vec![0.0; 4], vec![0; 4]);
        assert_eq!(t.write_sorted(&mut v, &mut ix), 4);
        assert_eq!(ix, vec![1, 3, 6, 4]);
        assert_eq!(v, vec![0.9, 0.9, 0.9, 0.7]);
    }

    #[test]
    fn order_of_arrival_does_not_matter() {
        let data: Vec<f64> = (0..200).map(|i| ((i * 37) % 11) as f64).collect();
        let mut a = TopK::new(7);
        let mut b = TopK::new(7);
        for (i, &v) in data.iter().enumerate() {
            a.push(v, i);
        }
        for (i, &v) in data.iter().enumerate().rev() {
            b.push(v, i);
        }
        let (mut va, mut ia, mut vb, mut ib) = (vec![0.0; 7], vec![0; 7], vec![0.0; 7], vec![0; 7]);
        a.write_sorted(&mut va, &mut ia);
        b.write_sorted(&mut vb, &mut ib);
        assert_eq!(ia, ib);
        assert_eq!(va, vb);
    }

    #[test]
    fn matches_a_full_sort_with_many_ties() {
        // values from a small set, so ties are everywhere and the index tie-break decides
        for k in [1, 2, 5, 33, 300] {
            let data: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 13) as f64).collect();
            let mut t = TopK::new(k);
            for (i, &v) in data.iter().enumerate() {
                t.push(v, i);
            }
            let mut want: Vec<(f64, usize)> = data.iter().copied().zip(0..).collect();
            want.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
            let (mut v, mut ix) = (vec![0.0; k], vec![0; k]);
            assert_eq!(t.write_sorted(&mut v, &mut ix), k.min(1000));
            for s in 0..k {
                assert_eq!((v[s], ix[s]), want[s], "k = {k}, rank {s}");
            }
            assert!(t.floor().unwrap() <= v[k - 1]);
        }
    }
}
