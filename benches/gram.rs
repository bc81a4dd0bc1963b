//! The Gram kernel alone: GFLOP/s (k·P² per block of k rows) against P and
//! the block rows k, single-threaded and on all cores; and the accumulator
//! (staging rows + kernel), which is what the pass pays per row.
//!
//!     cargo bench --bench gram

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use faer::Par;
use gramstream::stats::gram::{syrk_lower, syrk_lower_mixed};
use gramstream::stats::Accumulator;

fn kernel(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("syrk_lower");
    g.sample_size(10);
    for &p in &[512usize, 1024, 2048, 4096] {
        for &k in &[64usize, 128, 256, 512] {
            let x: Vec<f64> = (0..k * p)
                .map(|i| ((i * 7919) % 1000) as f64 * 1e-3)
                .collect();
            let mut cmat = vec![0.0; p * p];
            // Throughput in "elements" = flops, so criterion prints Gelem/s = GFLOP/s.
            g.throughput(Throughput::Elements((k * p * p) as u64));
            gramstream::stats::gram::init();
            for (name, par) in [("seq", Par::Seq), ("all_cores", Par::rayon(threads))] {
                g.bench_with_input(BenchmarkId::new(format!("{name}/P{p}"), k), &k, |b, &k| {
                    b.iter(|| syrk_lower(&mut cmat, p, &x, k, par))
                });
                // --precision mixed: f32 block products added into f64.
                g.bench_with_input(
                    BenchmarkId::new(format!("{name}_mixed/P{p}"), k),
                    &k,
                    |b, &k| b.iter(|| syrk_lower_mixed(&mut cmat, p, &x, k, par)),
                );
            }
        }
    }
    g.finish();
}

fn accumulator(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let p = 4096;
    let rows = 1024;
    let data: Vec<f64> = (0..rows * p)
        .map(|i| ((i * 7919) % 1000) as f64 * 1e-3)
        .collect();
    let shift = vec![0.5; p];
    let mut g = c.benchmark_group("accumulator_push");
    g.sample_size(10);
    g.throughput(Throughput::Elements((rows * p * p) as u64));
    for &block in &[128usize, 256, 512] {
        let mut acc = Accumulator::new(p, block);
        g.bench_with_input(
            BenchmarkId::new("P4096_all_cores", block),
            &block,
            |b, _| {
                b.iter(|| {
                    for r in 0..rows {
                        acc.push_shifted(
                            &data[r * p..(r + 1) * p],
                            &shift,
                            1.0,
                            Par::rayon(threads),
                        );
                    }
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, kernel, accumulator);
criterion_main!(benches);
