//! Shared by the benches (`mod common;`): environment knobs, the cached
//! synthetic shard under target/bench-data, noisy spectra from it, and their
//! statistics per fold.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Instant;

use faer::Par;
use gramstream::noise::NoiseModel;
use gramstream::source::{Chunk, ChunkSource, ReadOptions, Shard};
use gramstream::stats::{Accumulator, SuffStats};
use gramstream::synth::{write_shard, ShardSpec};
use gramstream::Layout;

pub fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("a list of integers"))
        .collect()
}

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map_or(default, |s| s.parse().expect("an integer"))
}

pub fn data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Noisy spectra (rows × p, row-major) and log g, from a cached synthetic shard.
pub fn spectra(p: usize, rows: usize) -> (Vec<f64>, Vec<f64>) {
    let path = data_dir().join(format!("eigh_p{p}_n{rows}.h5"));
    if !path.exists() {
        let t = Instant::now();
        let tmp = path.with_extension("tmp.h5");
        write_shard(&tmp, &ShardSpec::new(rows, p, 42, 0), &|_| {}).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        eprintln!(
            "wrote {} in {:.1} s",
            path.display(),
            t.elapsed().as_secs_f64()
        );
    }
    let shard = Shard::open(&path, &Layout::default()).unwrap();
    let read = ReadOptions {
        columns: vec!["log_g".into()],
        ..Default::default()
    };
    let mut reader = shard.reader(0, &read).unwrap();
    let mut chunk = Chunk::default();
    reader.read_chunk(0..shard.rows(), &mut chunk).unwrap();
    let noise = NoiseModel::new(1.0, 42).unwrap();
    let mut x = Vec::with_capacity(rows * p);
    let mut y = Vec::with_capacity(rows);
    for r in 0..chunk.rows {
        let mut row = chunk.flux_row(r).to_vec();
        noise.apply_row(0, r as u64, &mut row, &chunk.error[r * p..(r + 1) * p]);
        x.extend_from_slice(&row);
        y.push(chunk.params_row(r)[0]);
    }
    (x, y)
}

/// Total and per-fold statistics (fold = row mod k) around the first row.
pub fn stats(
    x: &[f64],
    y: &[f64],
    p: usize,
    k: usize,
) -> (SuffStats, Vec<SuffStats>, Vec<f64>, f64) {
    let shift = x[..p].to_vec();
    let sy = y[0];
    let mut accs: Vec<Accumulator> = (0..k).map(|_| Accumulator::new(p, 256)).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        for (r, row) in x.chunks_exact(p).enumerate() {
            accs[r % k].push_shifted(row, &shift, y[r] - sy, Par::rayon(2));
        }
    });
    let folds: Vec<SuffStats> = accs.iter_mut().map(|a| a.finish(Par::rayon(2))).collect();
    let mut total = SuffStats::zeros(p);
    for f in &folds {
        total.add(f).unwrap();
    }
    (total, folds, shift, sy)
}

/// PCG iterations per α decade (1e-2 … 1e5) over all folds, as `1eD: max/mean`.
pub fn decades(r: &gramstream::cv::CvResult, alphas: &[f64]) -> Vec<String> {
    let mut out = Vec::new();
    for d in -2..6 {
        let its: Vec<usize> = r
            .iterations
            .iter()
            .flat_map(|f| {
                alphas
                    .iter()
                    .zip(&f.per_alpha)
                    .filter(|(a, _)| a.log10() >= d as f64 && a.log10() < d as f64 + 1.0)
                    .map(|(_, &i)| i)
            })
            .collect();
        if its.is_empty() {
            continue;
        }
        let max = its.iter().max().unwrap();
        let mean = its.iter().sum::<usize>() as f64 / its.len() as f64;
        out.push(format!("1e{d}: {max}/{mean:.1}"));
    }
    out
}
