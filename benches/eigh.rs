//! The eigendecomposition backends and exact K-fold CV by block PCG, on the
//! covariance of noisy synthetic spectra (`gramstream::synth`, noise level 1),
//! side by side with numpy's `eigh` on the same matrix (benches/eigh_numpy.py,
//! run by this bench with the venv's python).
//!
//!     cargo bench --bench eigh
//!
//! Environment: `EIGH_P` (sizes, default "1024,2048,4096"), `EIGH_ROWS`
//! (spectra, default 3000), `EIGH_REPEATS` (timings per backend, default 2;
//! the table shows the best), `EIGH_CV_P` (sizes for the CV part, default
//! "2048,4096"), `EIGH_PYTHON` (default /root/.cache/gs-venv/bin/python;
//! empty to skip numpy), `EIGH_CRITERION=1` adds a criterion group at P = 512.
//! Shards are cached under target/bench-data.
//!
//! Printed: per P, seconds per backend (best of the repeats), the accuracy
//! ‖AV − VΛ‖_F/‖A‖_F and ‖VᵀV − I‖_F, whether LAPACK with 1 and 2 OpenBLAS
//! threads gave the same bits; then per P and K the PCG CV time against one
//! eigendecomposition, the iterations per α decade, and the fallbacks.

use std::path::Path;
use std::time::Instant;

use criterion::Criterion;
use faer::{Mat, Par};
use gramstream::cv::{cv_sse_pcg, PcgOptions, Scaling};
use gramstream::linalg::{eigh_residuals, eigh_with, Backend, DEFAULT_BACKEND};
use gramstream::ridge::RidgePath;
use gramstream::stats::{packed_index, SuffStats};

mod common;
use common::{data_dir, decades, env_list, env_usize, spectra, stats};

/// The centred covariance of `s` (full, column-major).
fn covariance(s: &SuffStats) -> Mat<f64> {
    let n = s.n as f64;
    let m: Vec<f64> = s.sum_x.iter().map(|v| v / n).collect();
    Mat::from_fn(s.p, s.p, |i, j| {
        let (a, b) = if i >= j { (i, j) } else { (j, i) };
        s.xtx[packed_index(a, b)] - n * m[a] * m[b]
    })
}

fn best(times: &[f64]) -> f64 {
    times.iter().copied().fold(f64::INFINITY, f64::min)
}

fn numpy(p: usize, a: &Mat<f64>, repeats: usize) -> Option<String> {
    let python =
        std::env::var("EIGH_PYTHON").unwrap_or_else(|_| "/root/.cache/gs-venv/bin/python".into());
    if python.is_empty() || !Path::new(&python).exists() {
        return None;
    }
    let file = data_dir().join(format!("eigh_matrix_p{p}.f64"));
    let mut bytes = Vec::with_capacity(p * p * 8);
    for j in 0..p {
        for i in 0..p {
            bytes.extend_from_slice(&a[(i, j)].to_le_bytes());
        }
    }
    std::fs::write(&file, bytes).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/eigh_numpy.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(p.to_string())
        .arg(&file)
        .arg(repeats.to_string())
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&file);
    Some(
        String::from_utf8_lossy(&out.stdout).trim().to_string()
            + &String::from_utf8_lossy(&out.stderr),
    )
}

fn eigh_table(p: usize, rows: usize, repeats: usize) {
    let (x, y) = spectra(p, rows);
    let (total, _, _, _) = stats(&x, &y, p, 1);
    let a = covariance(&total);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let backends: Vec<(&str, Backend, Par)> = vec![
        ("faer Par::rayon(2)", Backend::Faer, Par::rayon(2)),
        ("faer Par::Seq", Backend::Faer, Par::Seq),
        (
            "LAPACK dsyevd, OpenBLAS 1 thread",
            Backend::Lapack { threads: 1 },
            Par::Seq,
        ),
        (
            "LAPACK dsyevd, OpenBLAS 2 threads",
            Backend::Lapack { threads: 2 },
            Par::Seq,
        ),
        (
            "LAPACK dsyevr, OpenBLAS 1 thread",
            Backend::LapackMrrr { threads: 1 },
            Par::Seq,
        ),
        (
            "LAPACK dsyevr, OpenBLAS 2 threads",
            Backend::LapackMrrr { threads: 2 },
            Par::Seq,
        ),
    ];
    println!(
        "\n## eigh, P = {p} (covariance of {rows} noisy synthetic spectra), best of {repeats}"
    );
    println!("| backend | seconds (best) | all | ‖AV−VΛ‖/‖A‖ | ‖VᵀV−I‖ |");
    println!("|---|---|---|---|---|");
    let mut results: Vec<(Vec<f64>, Mat<f64>)> = Vec::new();
    for (name, backend, par) in &backends {
        if !cfg!(feature = "openblas") && !matches!(backend, Backend::Faer) {
            continue;
        }
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..repeats {
            let t = Instant::now();
            let r = pool.install(|| eigh_with(&a, *backend, *par).unwrap());
            times.push(t.elapsed().as_secs_f64());
            last = Some(r);
        }
        let (l, v) = last.unwrap();
        let (res, orth) = pool.install(|| eigh_residuals(&a, &l, &v));
        let all: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
        println!(
            "| {name} | {:.2} | {} | {res:.1e} | {orth:.1e} |",
            best(&times),
            all.join(", ")
        );
        results.push((l, v));
    }
    let bits = |x: &(Vec<f64>, Mat<f64>), y: &(Vec<f64>, Mat<f64>)| {
        x.0.iter()
            .zip(&y.0)
            .all(|(a, b)| a.to_bits() == b.to_bits())
            && (0..p).all(|j| (0..p).all(|i| x.1[(i, j)].to_bits() == y.1[(i, j)].to_bits()))
    };
    if results.len() >= 6 {
        println!(
            "bitwise equal: faer rayon(2) vs Seq: {}; dsyevd 1 vs 2 threads: {}; dsyevr 1 vs 2 threads: {}",
            bits(&results[0], &results[1]),
            bits(&results[2], &results[3]),
            bits(&results[4], &results[5])
        );
    }
    if let Some(line) = numpy(p, &a, repeats) {
        println!("numpy (same matrix, its default threads): {line}");
    }
}

fn cv_table(p: usize, rows: usize) {
    let (x, y) = spectra(p, rows);
    let alphas: Vec<f64> = (0..50)
        .map(|i| 10f64.powf(-2.0 + 8.0 * i as f64 / 49.0))
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for k in [3usize, 5] {
        let (total, folds, shift, sy) = stats(&x, &y, p, k);
        let t = Instant::now();
        let path = pool.install(|| RidgePath::new(&total, &shift, sy, Par::rayon(2)).unwrap());
        let t_eigh = t.elapsed().as_secs_f64();
        println!(
            "\n## CV by block PCG, P = {p}, {rows} spectra, K = {k}, 50 α in 1e-2..1e6 (RidgePath with {DEFAULT_BACKEND:?}: {t_eigh:.2} s)"
        );
        println!("| scaling | CV seconds | ÷ one eigh | ÷ K eigh (K × {t_eigh:.2} s) | fallback folds | iterations max/mean per α decade (all folds) |");
        println!("|---|---|---|---|---|---|");
        for scaling in [Scaling::Trace, Scaling::RowFraction] {
            let opts = PcgOptions {
                scaling,
                ..Default::default()
            };
            let t = Instant::now();
            let r = pool.install(|| {
                cv_sse_pcg(
                    &path,
                    &total,
                    &folds,
                    &shift,
                    sy,
                    &alphas,
                    &opts,
                    Par::rayon(2),
                )
                .unwrap()
            });
            let secs = t.elapsed().as_secs_f64();
            let by_decade = decades(&r, &alphas);
            println!(
                "| {scaling:?} | {secs:.2} | {:.2} | {:.2} | {} | {} |",
                secs / t_eigh,
                secs / (k as f64 * t_eigh),
                r.fallback_folds,
                by_decade.join(", ")
            );
        }
    }
}

fn criterion_group_512() {
    let mut c = Criterion::default().configure_from_args().sample_size(10);
    let (x, y) = spectra(512, 1500);
    let (total, _, _, _) = stats(&x, &y, 512, 1);
    let a = covariance(&total);
    let mut g = c.benchmark_group("eigh_P512");
    g.bench_function("faer_seq", |b| {
        b.iter(|| eigh_with(&a, Backend::Faer, Par::Seq).unwrap())
    });
    if cfg!(feature = "openblas") {
        g.bench_function("dsyevd_1", |b| {
            b.iter(|| eigh_with(&a, Backend::Lapack { threads: 1 }, Par::Seq).unwrap())
        });
    }
    g.finish();
}

fn main() {
    gramstream::stats::gram::init();
    let rows = env_usize("EIGH_ROWS", 3000);
    let repeats = env_usize("EIGH_REPEATS", 2);
    println!("(timings on a shared 2-core machine: contended, see the load average)");
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", l.trim());
    }
    for p in env_list("EIGH_P", "1024,2048,4096") {
        eigh_table(p, rows, repeats);
    }
    for p in env_list("EIGH_CV_P", "2048,4096") {
        cv_table(p, rows);
    }
    if std::env::var("EIGH_CRITERION").is_ok_and(|v| v == "1") {
        criterion_group_512();
    }
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!("\nload average at end: {}", l.trim());
    }
}
