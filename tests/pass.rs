//! The accumulating pass against a naive f64 accumulation, and its
//! determinism over threads, chunk sizes and modes.

use std::path::PathBuf;

use gramstream::noise::NoiseModel;
use gramstream::partition::{fold_of, PartitionSet, RowKeys};
use gramstream::source::{Chunk, ChunkSource, ReadOptions, Shard};
use gramstream::stats::pass::{accumulate, AccumulateOptions};
use gramstream::stats::{packed_index, Mode, StatsHeader, SuffStats};
use gramstream::synth::{write_shard, ShardSpec};
use gramstream::Layout;

const P: usize = 48;

fn shards(dir: &std::path::Path, rows: &[usize]) -> Vec<PathBuf> {
    rows.iter()
        .enumerate()
        .map(|(i, &n)| {
            let path = dir.join(format!("s{i}.h5"));
            write_shard(&path, &ShardSpec::new(n, P, 7, i as u64), &|_| {}).unwrap();
            path
        })
        .collect()
}

fn options(folds: usize, threads: usize) -> AccumulateOptions {
    AccumulateOptions {
        partitions: PartitionSet::new(PartitionSet::default().partitions, folds).unwrap(),
        noise: NoiseModel::new(1.0, 11).unwrap(),
        threads: gramstream::Threads::new(threads),
        chunk_rows: Some(64),
        block_rows: Some(16),
        mem_budget: Some(1 << 30),
        gate_sample: 25,
        ..Default::default()
    }
}

/// Every row read, noised and routed by hand, summed naively around the header's shift.
fn naive(paths: &[PathBuf], header: &StatsHeader) -> Vec<SuffStats> {
    let set = &header.partitions;
    let mut out: Vec<SuffStats> = (0..header.accumulators())
        .map(|_| SuffStats::zeros(P))
        .collect();
    let layout = Layout::default();
    let read = ReadOptions {
        columns: vec!["T_eff".into(), "M_H".into(), "log_g".into()],
        ..Default::default()
    };
    for (i, path) in paths.iter().enumerate() {
        let shard = Shard::open(path, &layout).unwrap();
        let mut reader = shard.reader(i as u64, &read).unwrap();
        let mut chunk = Chunk::default();
        reader.read_chunk(0..shard.rows(), &mut chunk).unwrap();
        for r in 0..chunk.rows {
            let e = &chunk.error[r * P..(r + 1) * P];
            let mut x = chunk.flux_row(r).to_vec();
            let snr = x.iter().map(|v| v * v).sum::<f64>().sqrt()
                / e.iter().map(|v| v * v).sum::<f64>().sqrt();
            header.noise.apply_row(i as u64, r as u64, &mut x, e);
            let prm = chunk.params_row(r);
            let mut slots = vec![0; set.partitions.len()];
            set.slots_of(
                &RowKeys {
                    teff: prm[0],
                    mh: prm[1],
                    snr,
                },
                &mut slots,
            )
            .unwrap();
            let fold = fold_of(header.noise.seed, i as u64, r as u64, set.folds);
            let targets: Vec<usize> = match header.mode {
                Mode::Cells => vec![set.cell(&slots, fold)],
                Mode::PerBin => slots
                    .iter()
                    .enumerate()
                    .map(|(k, &s)| set.per_bin_index(k, s, fold))
                    .collect(),
            };
            let xs: Vec<f64> = x.iter().zip(&header.shift_x).map(|(a, b)| a - b).collect();
            let y = prm[2] - header.shift_y;
            for a in targets {
                let s = &mut out[a];
                s.n += 1;
                s.sum_y += y;
                s.sum_yy += y * y;
                for i in 0..P {
                    s.sum_x[i] += xs[i];
                    s.xty[i] += xs[i] * y;
                    for j in 0..=i {
                        s.xtx[packed_index(i, j)] += xs[i] * xs[j];
                    }
                }
            }
        }
    }
    out
}

fn rel_close(a: &[f64], b: &[f64], tol: f64) -> Result<(), String> {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if (x - y).abs() > tol * scale {
            return Err(format!("element {i}: {x} vs {y} (scale {scale})"));
        }
    }
    Ok(())
}

fn bits(stats: &[SuffStats]) -> Vec<u64> {
    stats
        .iter()
        .flat_map(|s| {
            std::iter::once(s.n)
                .chain([s.sum_y.to_bits(), s.sum_yy.to_bits()])
                .chain(
                    s.sum_x
                        .iter()
                        .chain(&s.xty)
                        .chain(&s.xtx)
                        .map(|v| v.to_bits()),
                )
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn pass_matches_naive_accumulation_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let paths = shards(dir.path(), &[300, 170]);
    for mode in [Mode::Cells, Mode::PerBin] {
        for folds in [1, 3] {
            let mut opts = options(folds, 1);
            opts.mode = Some(mode);
            let out = accumulate(&paths, &opts, None, &|_| {}).unwrap();
            assert_eq!(out.summary.rows, 470);
            let (header, stats, reservoir) = out.into_stats(gramstream::Threads::new(1));
            assert_eq!(header.mode, mode);
            let want = naive(&paths, &header);
            assert_eq!(stats.len(), want.len());
            for (a, (got, want)) in stats.iter().zip(&want).enumerate() {
                assert_eq!(got.n, want.n, "accumulator {a}");
                rel_close(&got.xtx, &want.xtx, 1e-12)
                    .map_err(|e| format!("{mode:?} folds {folds} acc {a} xtx: {e}"))
                    .unwrap();
                rel_close(&got.xty, &want.xty, 1e-12).unwrap();
                rel_close(&got.sum_x, &want.sum_x, 1e-12).unwrap();
                rel_close(&[got.sum_y, got.sum_yy], &[want.sum_y, want.sum_yy], 1e-12).unwrap();
            }
            let total: u64 = stats.iter().map(|s| s.n).sum();
            let per_row = if mode == Mode::Cells { 1 } else { 2 };
            assert_eq!(total, 470 * per_row);
            assert_eq!(reservoir.len(), 25);
            assert!(reservoir.keys.windows(2).all(|w| w[0] < w[1]));
        }
    }
}

#[test]
fn bitwise_identical_for_threads_and_chunk_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let paths = shards(dir.path(), &[260, 90]);
    let run = |threads: usize, chunk: usize| {
        let mut opts = options(2, threads);
        opts.chunk_rows = Some(chunk);
        let out = accumulate(&paths, &opts, None, &|_| {}).unwrap();
        let (h, stats, res) = out.into_stats(gramstream::Threads::new(threads));
        (h, bits(&stats), res)
    };
    let (h1, a, r1) = run(1, 64);
    for (threads, chunk) in [(2, 64), (2, 7), (1, 1000)] {
        let (h, b, r) = run(threads, chunk);
        assert_eq!(h, h1, "header, threads {threads} chunk {chunk}");
        assert!(
            a == b,
            "statistics differ for threads {threads} chunk {chunk}"
        );
        assert_eq!(r, r1, "reservoir");
    }
}

#[test]
fn cells_sum_to_per_bin_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let paths = shards(dir.path(), &[400]);
    let mut opts = options(1, 2);
    opts.mode = Some(Mode::Cells);
    let (hc, cells, _) = accumulate(&paths, &opts, None, &|_| {})
        .unwrap()
        .into_stats(gramstream::Threads::new(2));
    opts.mode = Some(Mode::PerBin);
    let (hb, bins, _) = accumulate(&paths, &opts, None, &|_| {})
        .unwrap()
        .into_stats(gramstream::Threads::new(2));
    let set = &hc.partitions;
    assert_eq!(hc.shift_x, hb.shift_x);
    for (k, part) in set.partitions.iter().enumerate() {
        for slot in 0..part.slots() {
            let mut sum = SuffStats::zeros(P);
            for c in 0..set.cells() {
                if set.cell_parts(c).0[k] == slot {
                    sum.add(&cells[c]).unwrap();
                }
            }
            let want = &bins[set.per_bin_index(k, slot, 0)];
            assert_eq!(sum.n, want.n);
            rel_close(&sum.xtx, &want.xtx, 1e-12).unwrap();
            rel_close(&sum.xty, &want.xty, 1e-12).unwrap();
        }
    }
}

#[test]
fn a_budget_that_cannot_fit_is_refused_with_the_arithmetic() {
    let dir = tempfile::tempdir().unwrap();
    let paths = shards(dir.path(), &[20]);
    let mut opts = options(1, 1);
    opts.mem_budget = Some(1 << 20);
    let err = accumulate(&paths, &opts, None, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mem-budget") && err.contains("accumulators") && err.contains("reader"),
        "{err}"
    );
}

/// A data set whose mean is ~1e4 times its spread: the centred covariance from
/// the shifted sums agrees with a two-pass computation. Without the shift
/// (sums of raw x), cancellation in XᵀX − n·x̄x̄ᵀ would leave about 7 digits.
#[test]
fn large_mean_is_centred_accurately() {
    let dir = tempfile::tempdir().unwrap();
    let paths = shards(dir.path(), &[500]);
    {
        let file = hdf5::File::open_rw(&paths[0]).unwrap();
        let ds = file.dataset("/dataset/arrays/flux/value").unwrap();
        let flux: Vec<f64> = ds.read_raw().unwrap();
        let shifted: Vec<f64> = flux.iter().map(|f| 1e4 + (f - 1.0)).collect();
        ds.write_raw(&shifted).unwrap();
    }
    let mut opts = options(1, 2);
    opts.noise = NoiseModel::new(0.0, 1).unwrap();
    opts.partitions = PartitionSet::new(vec![gramstream::partition::Partition::snr()], 1).unwrap();
    opts.mode = Some(Mode::Cells);
    let (header, stats, _) = accumulate(&paths, &opts, None, &|_| {})
        .unwrap()
        .into_stats(gramstream::Threads::new(2));
    let mut all = SuffStats::zeros(P);
    for s in &stats {
        all.add(s).unwrap();
    }
    let n = all.n as f64;
    assert_eq!(all.n, 500);
    // Two-pass reference.
    let shard = Shard::open(&paths[0], &Layout::default()).unwrap();
    let mut reader = shard
        .reader(
            0,
            &ReadOptions {
                columns: vec![],
                ..Default::default()
            },
        )
        .unwrap();
    let mut chunk = Chunk::default();
    reader.read_chunk(0..500, &mut chunk).unwrap();
    let mut mean = vec![0.0; P];
    for r in 0..500 {
        for (m, v) in mean.iter_mut().zip(chunk.flux_row(r)) {
            *m += v / 500.0;
        }
    }
    assert!(
        mean.iter().all(|m| (m - 1e4).abs() < 5.0),
        "the data's mean is ~1e4"
    );
    let mut worst = 0.0f64;
    let mut scale = 0.0f64;
    for i in 0..P {
        for j in 0..=i {
            let two_pass: f64 = (0..500)
                .map(|r| (chunk.flux_row(r)[i] - mean[i]) * (chunk.flux_row(r)[j] - mean[j]))
                .sum();
            let mi = all.sum_x[i] / n;
            let mj = all.sum_x[j] / n;
            let from_stats = all.xtx[packed_index(i, j)] - n * mi * mj;
            worst = worst.max((from_stats - two_pass).abs());
            scale = scale.max(two_pass.abs());
        }
    }
    assert!(scale > 0.0 && header.shift_x[0] > 9e3);
    assert!(
        worst <= 1e-11 * scale,
        "centred covariance off by {worst:e} (scale {scale:e})"
    );
}

#[test]
fn derived_groups_agree_between_modes() {
    use gramstream::stats::derive::{members, sum, Group};
    let dir = tempfile::tempdir().unwrap();
    let paths = shards(dir.path(), &[350]);
    let mut opts = options(2, 1);
    opts.mode = Some(Mode::Cells);
    let (hc, cells, _) = accumulate(&paths, &opts, None, &|_| {})
        .unwrap()
        .into_stats(gramstream::Threads::new(1));
    opts.mode = Some(Mode::PerBin);
    let (hb, bins, _) = accumulate(&paths, &opts, None, &|_| {})
        .unwrap()
        .into_stats(gramstream::Threads::new(1));
    let groups = [
        Group::Global,
        Group::Bin {
            partition: 0,
            slot: 4,
        },
        Group::Bin {
            partition: 1,
            slot: 1,
        },
    ];
    for g in groups {
        for fold in [None, Some(0), Some(1)] {
            let a = sum(P, &members(&hc, g, fold).unwrap(), |i| Ok(cells[i].clone())).unwrap();
            let b = sum(P, &members(&hb, g, fold).unwrap(), |i| Ok(bins[i].clone())).unwrap();
            assert_eq!(a.n, b.n, "{g:?} {fold:?}");
            rel_close(&a.xtx, &b.xtx, 1e-12).unwrap();
        }
    }
    let global = sum(P, &members(&hc, Group::Global, None).unwrap(), |i| {
        Ok(cells[i].clone())
    })
    .unwrap();
    assert_eq!(global.n, 350);
    assert!(
        members(
            &hc,
            Group::Bin {
                partition: 1,
                slot: 4
            },
            None
        )
        .is_err(),
        "snr has no unbinned slot"
    );
    assert!(members(&hc, Group::Global, Some(2)).is_err());
}

#[test]
fn evaluate_scores_a_model_on_a_shard() {
    use gramstream::ridge::Coefficients;
    let dir = tempfile::tempdir().unwrap();
    let paths = shards(dir.path(), &[120]);
    let shard = Shard::open(&paths[0], &Layout::default()).unwrap();
    let read = ReadOptions {
        columns: vec!["log_g".into()],
        ..Default::default()
    };
    let mut chunk = Chunk::default();
    shard
        .reader(0, &read)
        .unwrap()
        .read_chunk(0..120, &mut chunk)
        .unwrap();
    // A model that predicts 1 + 0.5·flux[3]: its metrics by hand.
    let mut w = vec![0.0; P];
    w[3] = 0.5;
    let model = Coefficients {
        alpha: 1.0,
        w,
        intercept: 1.0,
    };
    let noise = NoiseModel::new(0.0, 1).unwrap();
    let m =
        gramstream::eval::evaluate(&model, &paths[0], 0, &Layout::default(), Some(noise)).unwrap();
    let ys: Vec<f64> = (0..120).map(|r| chunk.params_row(r)[0]).collect();
    let preds: Vec<f64> = (0..120).map(|r| 1.0 + 0.5 * chunk.flux_row(r)[3]).collect();
    let mean = ys.iter().sum::<f64>() / 120.0;
    let sse: f64 = ys.iter().zip(&preds).map(|(y, p)| (y - p).powi(2)).sum();
    let syy: f64 = ys.iter().map(|y| (y - mean).powi(2)).sum();
    assert_eq!(m.n, 120);
    assert!((m.r2 - (1.0 - sse / syy)).abs() < 1e-12);
    assert!((m.rmse - (sse / 120.0).sqrt()).abs() < 1e-12);
    let mae: f64 = ys
        .iter()
        .zip(&preds)
        .map(|(y, p)| (y - p).abs())
        .sum::<f64>()
        / 120.0;
    assert!((m.mae - mae).abs() < 1e-12);
}
