//! Sparse dot-product retrieval over latent codes with an inverted index.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::check::{check_values, checked_indices};
use crate::error::{argument, buffer, Result};
use crate::real::Real;
use crate::sparse::{postings, ROWS_PER_TASK};
use crate::topk::TopK;

/// Sparse dot-product retrieval over latent codes with an inverted index.
///
/// Builds postings latent → (document, value) from the document codes, then scores each query by
/// walking the postings of its active latents only. Returns the `k` best documents per query,
/// `(scores, doc ids)`, each `queries × k`, best first, ties to the lower document id — exactly the
/// top-k of the dense product `Q_codes · D_codesᵀ` (documents sharing no latent score 0).
pub fn latent_search<T: Real>(
    q_vals: ArrayView2<T>,
    q_idx: ArrayView2<i64>,
    d_vals: ArrayView2<T>,
    d_idx: ArrayView2<i64>,
    n_latents: usize,
    k: usize,
) -> Result<(Array2<T>, Array2<i64>)> {
    check_values(&q_vals, &q_idx, "query_values", "query_indices")?;
    let q_idx = checked_indices(&q_idx, n_latents, "query_indices")?;
    check_values(&d_vals, &d_idx, "doc_values", "doc_indices")?;
    let d_idx = checked_indices(&d_idx, n_latents, "doc_indices")?;
    let n_docs = d_vals.nrows();
    if k < 1 || k > n_docs {
        return Err(argument(
            "k",
            format!("expected 1 <= k <= {n_docs} (documents), got k = {k}"),
        ));
    }
    if n_docs > u32::MAX as usize || d_vals.ncols() > u32::MAX as usize {
        return Err(argument("doc_values", "too many documents for one index"));
    }
    let post = postings(&d_idx.view(), |i, t| d_vals[[i, t]] != T::ZERO)?;
    let pvals: Vec<f64> = (0..post.rows.len())
        .map(|p| d_vals[[post.rows[p] as usize, post.slots[p] as usize]].to_f64())
        .collect();
    let nq = q_vals.nrows();
    let kq = q_vals.ncols();
    let mut vals = buffer(&[nq, k], T::ZERO, "k")?;
    let mut ids = buffer(&[nq, k], 0i64, "k")?;
    vals.par_chunks_mut(ROWS_PER_TASK * k)
        .zip(ids.par_chunks_mut(ROWS_PER_TASK * k))
        .enumerate()
        .for_each(|(blk, (vout, iout))| {
            let mut acc = vec![0.0f64; n_docs];
            let mut seen = vec![false; n_docs];
            let mut touched: Vec<usize> = Vec::new();
            let mut top = TopK::new(k);
            let (mut sv, mut si) = (vec![0.0f64; k], vec![0usize; k]);
            for r in 0..vout.len() / k {
                let i = blk * ROWS_PER_TASK + r;
                for t in 0..kq {
                    let qv = q_vals[[i, t]].to_f64();
                    if qv == 0.0 {
                        continue;
                    }
                    let j = q_idx[[i, t]] as usize;
                    for p in post.range(j) {
                        let doc = post.rows[p] as usize;
                        if !seen[doc] {
                            seen[doc] = true;
                            touched.push(doc);
                        }
                        acc[doc] += qv * pvals[p];
                    }
                }
                top.clear();
                for &doc in &touched {
                    top.push(acc[doc], doc);
                }
                // Untouched documents score exactly 0; only the k lowest ids can make the cut.
                let mut filled = 0;
                for doc in 0..n_docs {
                    if filled == k {
                        break;
                    }
                    if !seen[doc] {
                        top.push(0.0, doc);
                        filled += 1;
                    }
                }
                top.write_sorted(&mut sv, &mut si);
                for t in 0..k {
                    vout[r * k + t] = T::from_f64(sv[t]);
                    iout[r * k + t] = si[t] as i64;
                }
                for &doc in &touched {
                    acc[doc] = 0.0;
                    seen[doc] = false;
                }
                touched.clear();
            }
        });
    Ok((
        Array2::from_shape_vec((nq, k), vals).expect("nq*k buffer"),
        Array2::from_shape_vec((nq, k), ids).expect("nq*k buffer"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{dense_codes, pseudo};

    #[test]
    fn matches_dense_product() {
        let q = pseudo(40, 16, 5).mapv(|v| v.max(0.0));
        let d = pseudo(150, 16, 6).mapv(|v| v.max(0.0));
        // codes: keep the 3 largest of each row
        let codes = |m: &Array2<f64>| {
            let (r, _) = m.dim();
            let mut vals = Array2::zeros((r, 3));
            let mut idx = Array2::zeros((r, 3));
            for i in 0..r {
                let mut o: Vec<usize> = (0..16).collect();
                o.sort_by(|&a, &b| m[[i, b]].partial_cmp(&m[[i, a]]).unwrap());
                for t in 0..3 {
                    vals[[i, t]] = m[[i, o[t]]];
                    idx[[i, t]] = o[t] as i64;
                }
            }
            (vals, idx)
        };
        let (qv, qi) = codes(&q);
        let (dv, di) = codes(&d);
        let (s, ids) = latent_search(qv.view(), qi.view(), dv.view(), di.view(), 16, 20).unwrap();
        let full = dense_codes(&qv, &qi, 16).dot(&dense_codes(&dv, &di, 16).t());
        for i in 0..40 {
            let mut o: Vec<usize> = (0..150).collect();
            o.sort_by(|&a, &b| {
                full[[i, b]]
                    .partial_cmp(&full[[i, a]])
                    .unwrap()
                    .then(a.cmp(&b))
            });
            for t in 0..20 {
                assert!((s[[i, t]] - full[[i, o[t]]]).abs() < 1e-12);
                assert_eq!(ids[[i, t]] as usize, o[t]);
            }
        }
        assert!(latent_search(qv.view(), qi.view(), dv.view(), di.view(), 16, 151).is_err());
        assert!(latent_search(qv.view(), qi.view(), dv.view(), di.view(), 10, 5).is_err());
    }
}
