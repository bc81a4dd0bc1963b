//! `--precision mixed` (f32 block products summed in f64): close to f64,
//! deterministic, recorded in the file, kept honest by merge and resume —
//! and never used unless asked.

use std::path::{Path, PathBuf};
use std::process::Command;

use gramstream::noise::NoiseModel;
use gramstream::partition::PartitionSet;
use gramstream::stats::pass::{accumulate, AccumulateOptions, CheckpointOptions};
use gramstream::stats::{Mode, Precision, StatsFile, SuffStats};
use gramstream::synth::{write_shard, ShardSpec};

const P: usize = 96;

fn shards(dir: &Path) -> Vec<PathBuf> {
    (0..2u64)
        .map(|i| {
            let path = dir.join(format!("s{i}.h5"));
            write_shard(&path, &ShardSpec::new(700, P, 3, i), &|_| {}).unwrap();
            path
        })
        .collect()
}

fn options(precision: Precision, threads: usize, mode: Mode) -> AccumulateOptions {
    AccumulateOptions {
        partitions: PartitionSet::new(PartitionSet::default().partitions, 2).unwrap(),
        noise: NoiseModel::new(1.0, 5).unwrap(),
        threads: gramstream::Threads::new(threads),
        chunk_rows: Some(50),
        block_rows: Some(64),
        mem_budget: Some(1 << 30),
        mode: Some(mode),
        precision,
        ..Default::default()
    }
}

fn stats(paths: &[PathBuf], opts: &AccumulateOptions) -> Vec<SuffStats> {
    let out = accumulate(paths, opts, None, &|_| {}).unwrap();
    assert_eq!(out.header.precision, opts.precision);
    out.into_stats(opts.threads).1
}

fn bits(s: &[SuffStats]) -> Vec<u64> {
    s.iter()
        .flat_map(|s| {
            s.xtx
                .iter()
                .chain(&s.xty)
                .chain(&s.sum_x)
                .map(|v| v.to_bits())
        })
        .collect()
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gramstream"));
    cmd.env("HDF5_USE_FILE_LOCKING", "FALSE");
    cmd
}

#[test]
fn mixed_products_are_close_to_f64_and_the_same_bits_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let paths = shards(dir.path());
    for mode in [Mode::Cells, Mode::PerBin] {
        let exact = stats(&paths, &options(Precision::F64, 1, mode));
        let mixed = stats(&paths, &options(Precision::Mixed, 1, mode));
        let mixed2 = stats(&paths, &options(Precision::Mixed, 2, mode));
        assert!(
            bits(&mixed) == bits(&mixed2),
            "{mode:?}: mixed differs between 1 and 2 threads"
        );
        assert!(
            bits(&mixed) != bits(&exact),
            "{mode:?}: mixed gave the f64 bits"
        );
        for (a, (m, e)) in mixed.iter().zip(&exact).enumerate() {
            assert_eq!(m.n, e.n);
            // Only the Gram's block products are f32: the first-order sums are f64's bits.
            assert_eq!(
                bits(std::slice::from_ref(m))[m.xtx.len()..],
                bits(std::slice::from_ref(e))[e.xtx.len()..]
            );
            let diag = |i: usize| e.xtx[gramstream::stats::packed_index(i, i)];
            for i in 0..P {
                for j in 0..=i {
                    let k = gramstream::stats::packed_index(i, j);
                    let bound = 1e-5 * (diag(i) * diag(j)).sqrt();
                    assert!(
                        (m.xtx[k] - e.xtx[k]).abs() <= bound,
                        "{mode:?} accumulator {a} ({i}, {j}): {} vs {}",
                        m.xtx[k],
                        e.xtx[k]
                    );
                }
            }
        }
    }
}

/// The default is f64 everywhere — library, CLI, experiment config — and
/// an f64 file does not even mention the option; a mixed file says so in
/// its header and its plain attributes, and `merge` keeps saying so.
#[test]
fn f64_unless_asked_and_the_file_says_which() {
    assert_eq!(AccumulateOptions::default().precision, Precision::F64);
    assert_eq!(
        gramstream::experiment::config::StatsConfig::default().precision,
        Precision::F64
    );
    let dir = tempfile::tempdir().unwrap();
    let paths = shards(dir.path());
    let run = |out: &str, extra: &[&str], inputs: &[PathBuf]| {
        let o = bin()
            .args(["accumulate", "--folds", "2", "--out"])
            .arg(dir.path().join(out))
            .args(extra)
            .args(inputs)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dir.path().join(out)
    };
    let default = run("default.h5", &[], &paths);
    let f64 = run("f64.h5", &["--precision", "f64"], &paths);
    let mixed = run("mixed.h5", &["--precision", "mixed"], &paths);
    let attr = |path: &Path| {
        let f = hdf5::File::open(path).unwrap();
        f.attr_names().unwrap().contains(&"precision".to_string())
    };
    assert!(
        !attr(&default) && !attr(&f64),
        "an f64 file records nothing new"
    );
    assert!(attr(&mixed));
    assert_eq!(
        StatsFile::open(&default).unwrap().header().precision,
        Precision::F64
    );
    assert_eq!(
        StatsFile::open(&mixed).unwrap().header().precision,
        Precision::Mixed
    );
    assert_eq!(
        crate::common::stats_bits(&default),
        crate::common::stats_bits(&f64)
    );
    assert_ne!(
        crate::common::stats_bits(&default),
        crate::common::stats_bits(&mixed)
    );
    // One part in f64, one mixed: the merge is mixed.
    let part = |name: &str, shard: usize, precision: &str| {
        run(
            name,
            &[
                "--precision",
                precision,
                "--first-shard-index",
                &shard.to_string(),
            ],
            std::slice::from_ref(&paths[shard]),
        )
    };
    let (a, b) = (part("a.h5", 0, "f64"), part("b.h5", 1, "mixed"));
    let merged = dir.path().join("merged.h5");
    let o = bin()
        .arg("merge")
        .arg("--out")
        .arg(&merged)
        .args([&a, &b])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        StatsFile::open(&merged).unwrap().header().precision,
        Precision::Mixed
    );
    let both_f64 = dir.path().join("merged64.h5");
    let a2 = part("a2.h5", 1, "f64");
    let o = bin()
        .arg("merge")
        .arg("--out")
        .arg(&both_f64)
        .args([&a, &a2])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!attr(&both_f64));
}

/// A checkpoint of an f64 pass is not resumed as a mixed one (nor the
/// reverse): the sums would be neither.
#[test]
fn resume_refuses_another_precision() {
    let dir = tempfile::tempdir().unwrap();
    let paths = shards(dir.path());
    let ckpt = dir.path().join("ckpt.h5");
    let opts = options(Precision::F64, 1, Mode::PerBin);
    let cancel = opts.cancel.clone();
    let checkpoint = CheckpointOptions {
        path: ckpt.clone(),
        every: std::time::Duration::ZERO,
        resume: false,
    };
    // Stop after the first chunks: a checkpoint is left.
    let stop = |rows: u64| {
        if rows > 0 {
            cancel.cancel()
        }
    };
    assert!(accumulate(&paths, &opts, Some(&checkpoint), &stop).is_err());
    assert!(ckpt.is_file(), "a cancelled pass leaves its checkpoint");
    let resume = CheckpointOptions {
        resume: true,
        ..checkpoint
    };
    let e = accumulate(
        &paths,
        &options(Precision::Mixed, 1, Mode::PerBin),
        Some(&resume),
        &|_| {},
    )
    .err()
    .expect("resumed with another precision");
    assert!(
        e.to_string()
            .contains("products in f64 where this run asks for mixed"),
        "{e}"
    );
    // The same precision resumes (a fresh cancel token: the first is spent).
    let fresh = options(Precision::F64, 1, Mode::PerBin);
    accumulate(&paths, &fresh, Some(&resume), &|_| {}).unwrap();
}
