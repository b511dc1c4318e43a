//! Criterion benches of the core kernels, measured without Python: the GEMM + top-k primitive
//! and its epilogues (kNN, TopK and threshold SAE encode, λ-aware search), the streaming Gram,
//! the edge pass (Rayleigh energies, taumode λ) and the sparse decode.
//!
//! `cargo bench -p latentatlas-core` (about a minute and a half). The edge-pass (energy, taumode),
//! decode and GEMM-epilogue kernels run on the SIMD path `LATENTATLAS_SIMD` selects (auto, scalar,
//! avx2, avx512), so tuning is measured by running the benches once per path.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use latentatlas_core::{
    feature_topk, gemm_topk, gram, knn_sqdist, lambda_topk, rayleigh_energy, sae_encode,
    sae_encode_threshold, simd_path, sparse_decode, taumode_raw, EdgeList, GemmTopkOptions,
    LambdaTopkOptions, GRAM_CHUNK_ROWS,
};
use ndarray::Array2;

/// A deterministic rows×cols matrix of values in [-0.5, 0.5).
fn pseudo(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut s = seed;
    Array2::from_shape_fn((rows, cols), |_| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    })
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

fn bench_gemm_topk(c: &mut Criterion) {
    let (m, n, d, k) = (1024, 8192, 128, 10);
    let a = pseudo(m, d, 1).mapv(|v| v as f32);
    let b = pseudo(n, d, 2).mapv(|v| v as f32);
    let mut g = c.benchmark_group("gemm_topk");
    g.throughput(Throughput::Elements((2 * m * n * d) as u64)); // flops
    g.bench_function("f32 1024x8192x128 k10", |bn| {
        bn.iter(|| gemm_topk(a.view(), b.view(), GemmTopkOptions::new(k)).unwrap())
    });
    g.throughput(Throughput::Elements(2 * 4096 * 4096 * 64u64));
    let x = pseudo(4096, 64, 3).mapv(|v| v as f32);
    g.bench_function("knn_sqdist f32 4096x64 k15", |bn| {
        bn.iter(|| knn_sqdist(x.view(), 15).unwrap())
    });
    g.finish();
}

fn bench_sae(c: &mut Criterion) {
    let (rows, n, d) = (2048, 16384, 256);
    let x = pseudo(rows, d, 8).mapv(|v| v as f32);
    let w = pseudo(n, d, 9).mapv(|v| v as f32);
    let b_enc: Vec<f32> = (0..n).map(|j| (j % 7) as f32 * 0.01 - 0.03).collect();
    let b_dec: Vec<f32> = (0..d).map(|j| (j % 5) as f32 * 0.02).collect();
    // pre-activations have sd ≈ 1.3: a threshold of 3.5 keeps about 0.4 % (≈ 60 latents a row)
    let threshold = vec![3.5f32; n];
    let mut g = c.benchmark_group(format!("sae [{}]", simd_path().name()));
    g.throughput(Throughput::Elements((2 * rows * n * d) as u64)); // flops
    g.bench_function("topk f32 2048x256 -> 16384 k32", |bn| {
        bn.iter(|| sae_encode(x.view(), w.view(), &b_enc, Some(&b_dec), 32).unwrap())
    });
    g.bench_function("threshold f32 2048x256 -> 16384", |bn| {
        bn.iter(|| {
            sae_encode_threshold(x.view(), w.view(), &b_enc, Some(&b_dec), &threshold).unwrap()
        })
    });
    g.finish();
}

fn inv_norms(x: &Array2<f32>) -> Vec<f64> {
    x.rows()
        .into_iter()
        .map(|r| 1.0 / r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt())
        .collect()
}

fn bench_lambda_topk(c: &mut Criterion) {
    let (m, n, d) = (1024, 8192, 128);
    let q = pseudo(m, d, 10).mapv(|v| v as f32);
    let x = pseudo(n, d, 11).mapv(|v| v as f32);
    let (qin, xin) = (inv_norms(&q), inv_norms(&x));
    let ql: Vec<f64> = (0..m).map(|i| (i % 17) as f64 / 17.0).collect();
    let xl: Vec<f64> = (0..n).map(|j| ((j * 13) % 101) as f64 / 100.0).collect();
    let mut g = c.benchmark_group("lambda_topk");
    g.throughput(Throughput::Elements((2 * m * n * d) as u64)); // flops
    for (name, band) in [("f32 1024x8192x128 k10", None), ("band", Some((0.2, 0.6)))] {
        let opts = LambdaTopkOptions {
            k: 10,
            tau: 0.7,
            query_inv_norm: &qin,
            query_lambda: &ql,
            item_inv_norm: &xin,
            item_lambda: &xl,
            band,
        };
        g.bench_function(name, |bn| {
            bn.iter(|| lambda_topk(q.view(), x.view(), opts).unwrap())
        });
    }
    g.finish();
}

fn bench_gram(c: &mut Criterion) {
    let (n, f) = (16384, 256);
    let x = pseudo(n, f, 4);
    let x32 = x.mapv(|v| v as f32);
    let mut g = c.benchmark_group("gram");
    g.throughput(Throughput::Elements((n * f * f) as u64)); // flops of the upper triangle
    g.bench_function("f64 16384x256", |bn| {
        bn.iter(|| gram(x.view(), GRAM_CHUNK_ROWS).unwrap())
    });
    g.bench_function("f32 16384x256", |bn| {
        bn.iter(|| gram(x32.view(), GRAM_CHUNK_ROWS).unwrap())
    });
    g.bench_function("feature_topk f32 16384x256 k10", |bn| {
        bn.iter(|| feature_topk(x32.view(), 10, GRAM_CHUNK_ROWS).unwrap())
    });
    g.finish();
}

/// A sparse symmetric F×F Laplacian-like operator with about `deg` neighbours per feature.
fn operator(f: usize, deg: usize) -> EdgeList {
    let (mut indptr, mut indices, mut data) = (vec![0i64], vec![], vec![]);
    for i in 0..f {
        for t in 1..=deg / 2 {
            for j in [(i + t * 37) % f, (i + f - (t * 37) % f) % f] {
                indices.push(j as i64);
                data.push(-0.1);
            }
        }
        indices.push(i as i64);
        data.push(deg as f64 * 0.1);
        indptr.push(indices.len() as i64);
    }
    EdgeList::from_csr(f, &indptr, &indices, &data).unwrap()
}

fn bench_energy(c: &mut Criterion) {
    let (n, f) = (20000, 384);
    let l = operator(f, 10);
    let x32 = pseudo(n, f, 5).mapv(|v| v as f32);
    let mut g = c.benchmark_group(format!("rayleigh_energy [{}]", simd_path().name()));
    g.throughput(Throughput::Bytes((n * f * 4) as u64));
    g.bench_function("f32 20000x384 deg10", |bn| {
        bn.iter(|| rayleigh_energy(black_box(x32.view()), &l).unwrap())
    });
    g.finish();
    let mut g = c.benchmark_group(format!("taumode [{}]", simd_path().name()));
    g.throughput(Throughput::Bytes((n * f * 4) as u64));
    g.bench_function("f32 20000x384 deg10 median", |bn| {
        bn.iter(|| taumode_raw(black_box(x32.view()), &l, None).unwrap())
    });
    g.bench_function("f32 20000x384 deg10 tau0.5", |bn| {
        bn.iter(|| taumode_raw(black_box(x32.view()), &l, Some(0.5)).unwrap())
    });
    g.finish();
}

fn bench_decode(c: &mut Criterion) {
    let (rows, k, n, d) = (4096, 32, 16384, 256);
    let w = pseudo(n, d, 6).mapv(|v| v as f32);
    let vals = pseudo(rows, k, 7).mapv(|v| (v + 0.6) as f32);
    let idx = Array2::from_shape_fn((rows, k), |(i, t)| ((i * 7919 + t * 104729) % n) as i64);
    let mut g = c.benchmark_group(format!("sparse_decode [{}]", simd_path().name()));
    g.throughput(Throughput::Elements((rows * k * d) as u64)); // multiply-adds
    g.bench_function("f32 4096 rows k32 16384x256", |bn| {
        bn.iter(|| sparse_decode(vals.view(), idx.view(), w.view(), None).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_gemm_topk, bench_sae, bench_lambda_topk, bench_gram, bench_energy, bench_decode
}
criterion_main!(benches);
