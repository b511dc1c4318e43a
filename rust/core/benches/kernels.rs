//! Criterion benches of the core kernels, measured without Python: the GEMM + top-k primitive
//! (and the kNN on it), the streaming Gram, Rayleigh energies and the sparse decode.
//!
//! `cargo bench -p latentatlas-core` (about half a minute). The energy and decode kernels run on
//! the SIMD path `LATENTATLAS_SIMD` selects (auto, scalar, avx2, avx512), so tuning is measured
//! by running the benches once per path.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use latentatlas_core::{
    feature_topk, gemm_topk, gram, knn_sqdist, rayleigh_energy, simd_path, sparse_decode, EdgeList,
    GemmTopkOptions, GRAM_CHUNK_ROWS,
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
    targets = bench_gemm_topk, bench_gram, bench_energy, bench_decode
}
criterion_main!(benches);
