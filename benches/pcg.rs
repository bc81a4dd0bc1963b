//! Exact K-fold CV by block PCG (`cv::cv_sse_pcg`) against one
//! eigendecomposition and against `ridge::cv_sse` (one eigendecomposition
//! per fold), on the covariance of noisy synthetic spectra
//! (`gramstream::synth`, noise level 1; the shards of benches/eigh.rs,
//! cached under target/bench-data).
//!
//!     nice cargo bench --bench pcg
//!
//! Environment: `PCG_P` (sizes, default "2048,4096"), `PCG_ROWS` (spectra,
//! default "12000,6000": the first rows of one cached shard of the largest),
//! `PCG_K` (folds, default 5; rows to folds round-robin), `PCG_THREADS`
//! (rayon threads for `cv_sse_pcg`, default 2), `PCG_CV_SSE_P` (sizes at
//! which `ridge::cv_sse` is timed too, default "2048"; it prints the
//! largest relative SSE difference to PCG).
//!
//! Printed per (P, rows): one eigendecomposition (dsyevd, 1 OpenBLAS thread,
//! the default backend), the PCG CV total, per fold, the block iterations
//! (largest per α over the fold) per fold, seconds per block iteration,
//! the CPU seconds of the PCG part (all threads: under contention a steadier
//! measure than wall time),
//! iterations max/mean per α decade, fallback folds; `cv_sse` total; the
//! CPU seconds per fold of the band reduction (`cv_sse_auto` with every
//! fold forced to `FoldSolver::Band`, one thread) and the calibration of
//! `--cv auto`'s cost model it implies: κ = (band CPU per fold / PCG CPU per
//! block iteration) · m / P, the constant `BAND_COST` of `cv::auto`.

use std::time::Instant;

use faer::Par;
use gramstream::cv::{cv_sse_auto, cv_sse_pcg, FoldSolver, PcgOptions, Solvers};
use gramstream::ridge::{cv_sse, RidgePath};

mod common;
use common::{decades, env_list, env_usize, spectra, stats};

/// CPU seconds (user + system) of this process so far, all threads.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn main() {
    gramstream::stats::gram::init();
    let ps = env_list("PCG_P", "2048,4096");
    let mut rows_list = env_list("PCG_ROWS", "12000,6000");
    rows_list.sort_unstable_by(|a, b| b.cmp(a));
    let k = env_usize("PCG_K", 5);
    let threads = env_usize("PCG_THREADS", 2);
    let cv_sse_ps = env_list("PCG_CV_SSE_P", "2048");
    let alphas: Vec<f64> = (0..50)
        .map(|i| 10f64.powf(-2.0 + 8.0 * i as f64 / 49.0))
        .collect();
    println!("(timings on a shared 2-core machine: contended, see the load average)");
    println!("load average at start: {}", loadavg());
    println!(
        "\nK = {k}, 50 α log-spaced 1e-2..1e6, PCG on a rayon pool of {threads} threads (Par::rayon({threads}))"
    );
    println!("| P | rows | one eigh (s) | PCG CV (s) | PCG CPU (s) | per fold (s) | block iterations per fold | s / iteration | fallback folds | iterations max/mean per α decade (all folds) | cv_sse, eigh per fold (s) | max rel. SSE diff | band CPU per fold (s) | κ | load |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let par = if threads <= 1 {
        Par::Seq
    } else {
        Par::rayon(threads)
    };
    for &p in &ps {
        let (x_all, y_all) = spectra(p, rows_list[0]);
        for &rows in &rows_list {
            let (x, y) = (&x_all[..rows * p], &y_all[..rows]);
            let (total, folds, shift, sy) = stats(x, y, p, k);
            let t = Instant::now();
            let path = RidgePath::new(&total, &shift, sy, Par::Seq).unwrap();
            let t_eigh = t.elapsed().as_secs_f64();
            let opts = PcgOptions::default();
            let t = Instant::now();
            let cpu0 = cpu_seconds();
            let r = pool.install(|| {
                cv_sse_pcg(&path, &total, &folds, &shift, sy, &alphas, &opts, par).unwrap()
            });
            let secs = t.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu0;
            let block_its: Vec<usize> = r.iterations.iter().map(|f| f.max).collect();
            let its_total: usize = block_its.iter().sum();
            let per_it = if its_total > 0 {
                format!("{:.4}", secs / its_total as f64)
            } else {
                "–".into()
            };
            let by_decade = decades(&r, &alphas);
            let (direct, diff) = if cv_sse_ps.contains(&p) {
                let t = Instant::now();
                let (want, _) = cv_sse(&total, &folds, &shift, sy, &alphas, Par::Seq).unwrap();
                let d = r
                    .sse
                    .iter()
                    .zip(&want)
                    .map(|(g, w)| (g - w).abs() / w.abs())
                    .fold(0.0f64, f64::max);
                (
                    format!("{:.2}", t.elapsed().as_secs_f64()),
                    format!("{d:.1e}"),
                )
            } else {
                ("–".into(), "–".into())
            };
            let one = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let cpu0 = cpu_seconds();
            let (_, band) = one.install(|| {
                let force = Solvers::Force(FoldSolver::Band);
                cv_sse_auto(&total, &folds, &shift, sy, &alphas, force).unwrap()
            });
            // The band CPU includes the bin's own decomposition, run first.
            let band_fold = (cpu_seconds() - cpu0 - t_eigh) / band.solvers.len() as f64;
            let kappa = if its_total > 0 {
                let per_iteration = cpu / its_total as f64;
                format!(
                    "{:.3}",
                    band_fold / per_iteration * alphas.len() as f64 / p as f64
                )
            } else {
                "–".into()
            };
            println!(
                "| {p} | {rows} | {t_eigh:.2} | {secs:.2} | {cpu:.2} | {:.2} | {:?} | {per_it} | {} | {} | {direct} | {diff} | {band_fold:.2} | {kappa} | {} |",
                secs / r.iterations.len().max(1) as f64,
                block_its,
                r.fallback_folds,
                by_decade.join(", "),
                loadavg()
            );
        }
    }
    println!("\nload average at end: {}", loadavg());
}
