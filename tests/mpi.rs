//! `mpiexec -n N gramstream …` (feature `mpi`), through the real launcher:
//! the statistics are the same bits for 1, 2 and 3 ranks and for one
//! process with `--range-rows`, and equal to the ordinary pass up to
//! rounding; a bad row on any rank ends every rank with exit status 1, one
//! error line and no file; an experiment's outputs do not depend on the
//! number of ranks. Ranks beyond the cores are oversubscribed (Open MPI's
//! environment variables below), and root may run them (CI runs as root).

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use gramstream::stats::file::StatsFile;
use gramstream::synth::{write_shard, ShardSpec, TEST_SHARD};

const BIN: &str = env!("CARGO_BIN_EXE_gramstream");
const P: usize = 96;

/// `mpiexec -n ranks gramstream args…`, with what a container as root and
/// a 2-core machine need.
fn mpiexec(ranks: usize, args: &[&str], dir: &Path, piece: &str) -> Output {
    Command::new("mpiexec")
        .args(["-n", &ranks.to_string(), BIN])
        .args(args)
        .current_dir(dir)
        .env("HDF5_USE_FILE_LOCKING", "FALSE")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        // Containers often forbid the cross-memory attach of shared-memory transfers.
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .env("GRAMSTREAM_MPI_PIECE", piece)
        .stdin(Stdio::null())
        .output()
        .expect("mpiexec runs (Open MPI installed: scripts/setup.sh)")
}

fn gramstream(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("HDF5_USE_FILE_LOCKING", "FALSE")
        .output()
        .unwrap()
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Three training shards of unequal sizes (ranges then spread unevenly
/// over the ranks) and a test shard.
fn shards(dir: &Path) -> Vec<String> {
    shards_of(dir, P)
}

fn shards_of(dir: &Path, pixels: usize) -> Vec<String> {
    for (i, rows) in [(0u64, 700), (1, 450), (2, 320)] {
        write_shard(
            &dir.join(format!("train_{i}.h5")),
            &ShardSpec::new(rows, pixels, 9, i),
            &|_| {},
        )
        .unwrap();
    }
    let spec = ShardSpec {
        id_offset: 100_000,
        ..ShardSpec::new(300, pixels, 9, TEST_SHARD)
    };
    write_shard(&dir.join("test.h5"), &spec, &|_| {}).unwrap();
    (0..3).map(|i| format!("train_{i}.h5")).collect()
}

const PASS: [&str; 10] = [
    "--folds",
    "3",
    "--gate-sample",
    "120",
    "--chunk-rows",
    "40",
    "--block-rows",
    "16",
    "--mem-budget",
    "2GiB",
];

fn accumulate(
    ranks: Option<usize>,
    out: &str,
    extra: &[&str],
    shards: &[String],
    dir: &Path,
) -> Output {
    accumulate_with("0", ranks, out, extra, shards, dir)
}

/// [`accumulate`] with `GRAMSTREAM_MPI_PIECE` (0: the default piece).
fn accumulate_with(
    piece: &str,
    ranks: Option<usize>,
    out: &str,
    extra: &[&str],
    shards: &[String],
    dir: &Path,
) -> Output {
    let mut args = vec!["accumulate", "--out", out];
    args.extend(PASS);
    args.extend(extra);
    args.extend(shards.iter().map(String::as_str));
    match ranks {
        Some(n) => mpiexec(n, &args, dir, piece),
        None => gramstream(&args, dir),
    }
}

#[test]
fn statistics_are_the_same_bits_for_any_number_of_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shards = shards(d);
    // 700, 450, 320 rows in ranges of ≤ 200: 4 + 3 + 2 = 9 ranges.
    let range = ["--range-rows", "200"];
    ok(
        &accumulate(None, "alone.h5", &range, &shards, d),
        "one process in ranges",
    );
    let want = common::stats_bits(&d.join("alone.h5"));
    for n in [1, 2, 3] {
        let out = format!("ranks{n}.h5");
        let threads = if n == 1 { "2" } else { "1" };
        // With 3 ranks, every array goes in pieces of ≤ 1000 values (a
        // packed Gram of P = 96 is 4,656): the pieces of arrays beyond
        // MPI's 32-bit counts, at a size a test can afford.
        let piece = if n == 3 { "1000" } else { "0" };
        let run = accumulate_with(
            piece,
            Some(n),
            &out,
            &[&range[..], &["--threads", threads]].concat(),
            &shards,
            d,
        );
        ok(&run, &format!("{n} ranks"));
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            stdout.contains(&format!("9 row ranges summed by {n} rank(s)")),
            "{stdout}"
        );
        assert_eq!(
            stdout.matches("accumulated").count(),
            1,
            "only rank 0 reports: {stdout}"
        );
        assert!(
            common::stats_bits(&d.join(&out)) == want,
            "{n} ranks: other bits than one process"
        );
    }
    // The ordinary pass sums in another order: equal up to rounding.
    ok(
        &accumulate(None, "ordinary.h5", &[], &shards, d),
        "ordinary pass",
    );
    let (a, b) = (
        StatsFile::open(&d.join("ordinary.h5")).unwrap(),
        StatsFile::open(&d.join("alone.h5")).unwrap(),
    );
    assert_eq!(a.header().rows, b.header().rows);
    assert_eq!(a.reservoir().unwrap(), b.reservoir().unwrap());
    let mut worst = 0.0f64;
    for i in 0..a.header().accumulators() {
        let (x, y) = (a.accumulator(i).unwrap(), b.accumulator(i).unwrap());
        assert_eq!(x.n, y.n);
        let scale = x.xtx.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
        for (u, v) in x
            .xtx
            .iter()
            .chain(&x.sum_x)
            .zip(y.xtx.iter().chain(&y.sum_x))
        {
            worst = worst.max((u - v).abs() / scale);
        }
    }
    assert!(
        worst < 1e-14,
        "ordinary vs ranged: {worst:e} of the largest entry"
    );
}

#[test]
fn a_bad_row_on_any_rank_ends_every_rank_with_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut shards = shards(d);
    // A second shard of 450 rows with a NaN in row 400, pixel 7: range 6 of
    // 9 (rows 300..450 of shard 1), summed by rank 0 of 2 and rank 2 of 4.
    let (mut flux, error, params) = common::synthetic(450, P, 3);
    flux[400 * P + 7] = f64::NAN;
    common::write_shard(&d.join("bad.h5"), P, &flux, &error, &params, None);
    shards[1] = "bad.h5".into();
    for n in [2, 4] {
        let out = format!("bad{n}.h5");
        let run = accumulate(Some(n), &out, &["--range-rows", "200"], &shards, d);
        assert_eq!(run.status.code(), Some(1), "{n} ranks");
        let stderr = String::from_utf8_lossy(&run.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{n} ranks: one error line: {stderr}");
        assert!(
            errors[0].contains("bad.h5") && errors[0].contains("row 400"),
            "{}",
            errors[0]
        );
        assert!(
            !d.join(&out).exists(),
            "{n} ranks: no statistics from a failed pass"
        );
        let leftovers: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.') || n.contains("tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{n} ranks left {leftovers:?}");
    }
}

#[test]
fn only_accumulate_and_experiment_run_on_many_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    let run = mpiexec(2, &["scan", "train_0.h5"], d, "0");
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("`scan` runs as one process"), "{stderr}");
    // One rank of one is just a process.
    ok(
        &mpiexec(1, &["scan", "train_0.h5"], d, "0"),
        "scan under mpiexec -n 1",
    );
}

fn experiment_config(shards: &[String]) -> String {
    let train: Vec<String> = shards.iter().map(|s| format!("{s:?}")).collect();
    format!(
        r#"name = "mpi"
description = "the experiment's passes shared among ranks"
[data]
train = [{}]
test = "test.h5"
[noise]
levels = [1.0]
seeds = [3, 4]
[stats]
folds = 2
threads = 1
range_rows = 250
mem_budget = "2GiB"
[ridge]
alphas = "1:1e4:5"
[gate]
sample = 400
"#,
        train.join(", ")
    )
}

#[test]
fn an_experiment_gives_the_same_outputs_on_any_number_of_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The gate's features need the real wavelength grid's 1024 pixels.
    let shards = shards_of(d, 1024);
    std::fs::write(d.join("mpi.toml"), experiment_config(&shards)).unwrap();
    let mut per_bin: Vec<(usize, String)> = Vec::new();
    for n in [1, 3] {
        let out = format!("out{n}");
        let run = mpiexec(n, &["experiment", "mpi.toml", "--out", &out], d, "0");
        ok(&run, &format!("experiment on {n} ranks"));
        per_bin.push((
            n,
            std::fs::read_to_string(d.join(&out).join("per_bin.csv")).unwrap(),
        ));
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.join(&out).join("results.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(json["runs"].as_array().map(Vec::len), Some(2), "{n} ranks");
    }
    assert_eq!(
        per_bin[0].1, per_bin[1].1,
        "per_bin.csv differs between 1 and 3 ranks"
    );
    // One process (the ordinary pass): the same science up to rounding.
    ok(
        &gramstream(&["experiment", "mpi.toml", "--out", "alone"], d),
        "experiment alone",
    );
    let r2 = |dir: &str| -> Vec<f64> {
        let text = std::fs::read_to_string(d.join(dir).join("results.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["global"]["r2"].as_f64().unwrap())
            .collect()
    };
    let (alone, ranked) = (r2("alone"), r2("out3"));
    for (a, b) in alone.iter().zip(&ranked) {
        assert!(
            (a - b).abs() < 1e-9,
            "global R² {a} alone vs {b} on 3 ranks"
        );
    }
}

/// `mpiexec -n 2` stopped (SIGTERM to the launcher, forwarded to the ranks)
/// after rank 0's first checkpoints, resumed with `mpiexec -n 3`: the bits of
/// an uninterrupted run, no statistics from the stopped run, the checkpoint
/// removed at the end.
#[test]
fn a_stopped_run_resumes_under_another_rank_count() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shards = shards(d);
    let range = ["--range-rows", "10", "--threads", "1"];
    ok(
        &accumulate(None, "whole.h5", &range, &shards, d),
        "uninterrupted",
    );
    let want = common::stats_bits(&d.join("whole.h5"));
    let ckpt = ["--checkpoint", "ck.h5", "--checkpoint-every", "0"];
    let mut args = vec!["-n", "2", BIN, "accumulate", "--out", "stopped.h5"];
    args.extend(PASS);
    args.extend(range);
    args.extend(ckpt);
    args.extend(shards.iter().map(String::as_str));
    let mut child = Command::new("mpiexec")
        .args(&args)
        .current_dir(d)
        .env("HDF5_USE_FILE_LOCKING", "FALSE")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !d.join("ck.h5").exists() && start.elapsed().as_secs() < 60 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let stopped = child.try_wait().unwrap().is_none();
    // SAFETY: kill(2) on the child's pid; no memory is shared.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    assert!(
        stopped,
        "the run ended before it could be stopped: make it longer"
    );
    assert!(
        !d.join("stopped.h5").exists(),
        "a stopped run leaves no statistics"
    );
    assert!(
        d.join("ck.h5").exists(),
        "rank 0's checkpoint survives the stop"
    );
    let resumed = accumulate(
        Some(3),
        "stopped.h5",
        &[&range[..], &ckpt, &["--resume"]].concat(),
        &shards,
        d,
    );
    ok(&resumed, "resumed on 3 ranks");
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("resumed from a checkpoint"));
    assert!(
        common::stats_bits(&d.join("stopped.h5")) == want,
        "resumed statistics differ"
    );
    assert!(
        !d.join("ck.h5").exists(),
        "the checkpoint is removed once the statistics are written"
    );
}
