//! Kill -9 and resume, through the real binary: a resumed run ends with
//! statistics bitwise identical to an uninterrupted one; thread count does
//! not change a bit; a failed pass leaves no statistics file behind.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gramstream::stats::file::StatsFile;

// Children run without HDF5 file locking: see tests/sweep.rs, `bin`.
const BIN: &str = env!("CARGO_BIN_EXE_gramstream");

fn generate(dir: &Path, rows: usize, pixels: usize) -> Vec<PathBuf> {
    let status = Command::new(BIN)
        .env("HDF5_USE_FILE_LOCKING", "FALSE")
        .args(["generate", "--out"])
        .arg(dir)
        .args([
            "--train-shards",
            "2",
            "--rows",
            &rows.to_string(),
            "--test-rows",
            "0",
        ])
        .args(["--pixels", &pixels.to_string(), "--seed", "5"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    (0..2)
        .map(|i| dir.join(format!("train_{i}/dataset.h5")))
        .collect()
}

fn accumulate_cmd(shards: &[PathBuf], out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("HDF5_USE_FILE_LOCKING", "FALSE");
    cmd.arg("accumulate").arg("--out").arg(out);
    cmd.args([
        "--folds",
        "2",
        "--gate-sample",
        "50",
        "--chunk-rows",
        "16",
        "--block-rows",
        "32",
    ]);
    cmd.args(["--mem-budget", "2GiB"]).args(extra).args(shards);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

#[test]
fn kill_and_resume_is_bitwise_identical() {
    let dir = tempfile::tempdir().unwrap();
    let shards = generate(dir.path(), 1500, 192);
    let full = dir.path().join("full.h5");
    let out = accumulate_cmd(&shards, &full, &["--threads", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = common::stats_bits(&full);

    // Kill at several points after the first checkpoint appears, then resume
    // (sometimes killing the resumed run too).
    for (case, delays_ms) in [vec![0u64], vec![40], vec![120], vec![10, 30]]
        .into_iter()
        .enumerate()
    {
        let ckpt = dir.path().join(format!("ckpt{case}.h5"));
        let result = dir.path().join(format!("resumed{case}.h5"));
        let args = [
            "--threads",
            "2",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--checkpoint-every",
            "0",
        ];
        let mut killed = 0;
        for (round, &delay) in delays_ms.iter().enumerate() {
            let mut cmd = accumulate_cmd(&shards, &result, &args);
            if round > 0 {
                cmd.arg("--resume");
            }
            let mut child = cmd.spawn().unwrap();
            let start = Instant::now();
            while !ckpt.exists() && start.elapsed() < Duration::from_secs(60) {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(delay));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                killed += 1;
            }
            child.wait().unwrap();
            assert!(
                !result.exists(),
                "a killed run must not leave statistics (case {case})"
            );
        }
        assert!(
            killed > 0,
            "case {case}: the run finished before it could be killed; make it longer"
        );
        assert!(ckpt.exists(), "case {case}: no checkpoint");
        let out = accumulate_cmd(&shards, &result, &args)
            .arg("--resume")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "resume: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!ckpt.exists(), "the checkpoint is removed after success");
        assert!(
            common::stats_bits(&result) == want,
            "case {case}: resumed statistics differ from the uninterrupted run"
        );
    }
}

#[test]
fn threads_do_not_change_a_bit() {
    let dir = tempfile::tempdir().unwrap();
    let shards = generate(dir.path(), 600, 96);
    let mut prints = Vec::new();
    for threads in ["1", "2"] {
        let out_path = dir.path().join(format!("t{threads}.h5"));
        let out = accumulate_cmd(&shards, &out_path, &["--threads", threads])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        prints.push(common::stats_bits(&out_path));
    }
    assert!(prints[0] == prints[1]);
}

#[test]
fn a_bad_row_fails_the_pass_with_its_position_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let shards = generate(dir.path(), 300, 64);
    {
        let file = hdf5::File::open_rw(&shards[1]).unwrap();
        let ds = file.dataset("/dataset/arrays/flux/value").unwrap();
        let mut flux: Vec<f64> = ds.read_raw().unwrap();
        flux[217 * 64 + 9] = f64::NAN;
        ds.write_raw(&flux).unwrap();
    }
    let out_path = dir.path().join("stats.h5");
    let out = accumulate_cmd(&shards, &out_path, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("train_1/dataset.h5") && err.contains("row 217") && err.contains("pixel 9"),
        "{err}"
    );
    assert!(!out_path.exists());
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("stats")));

    // Opt-in: skip it and count it.
    let out = accumulate_cmd(&shards, &out_path, &["--skip-bad-rows"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let f = StatsFile::open(&out_path).unwrap();
    assert_eq!((f.header().rows, f.header().skipped), (599, 1));
}

#[test]
fn truncated_shard_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let shards = generate(dir.path(), 200, 64);
    let len = std::fs::metadata(&shards[1]).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&shards[1])
        .unwrap();
    f.set_len(len * 3 / 4).unwrap();
    let out_path = dir.path().join("stats.h5");
    let out = accumulate_cmd(&shards, &out_path, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("train_1/dataset.h5"), "{err}");
    assert!(!out_path.exists());
}

/// Two halves accumulated as separate runs (with their shard indices) and
/// merged equal the single run to 1e-12 relative (not bitwise: the halves
/// have their own shifts and summation order).
#[test]
fn merge_of_halves_equals_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let shards = generate(dir.path(), 400, 80);
    let whole = dir.path().join("whole.h5");
    let a = dir.path().join("a.h5");
    let b = dir.path().join("b.h5");
    let merged = dir.path().join("merged.h5");
    assert!(accumulate_cmd(&shards, &whole, &[])
        .status()
        .unwrap()
        .success());
    assert!(accumulate_cmd(&shards[..1], &a, &[])
        .status()
        .unwrap()
        .success());
    assert!(
        accumulate_cmd(&shards[1..], &b, &["--first-shard-index", "1"])
            .status()
            .unwrap()
            .success()
    );
    let out = Command::new(BIN)
        .env("HDF5_USE_FILE_LOCKING", "FALSE")
        .args(["merge", "--out"])
        .arg(&merged)
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (w, m) = (
        StatsFile::open(&whole).unwrap(),
        StatsFile::open(&merged).unwrap(),
    );
    assert_eq!(w.header().rows, m.header().rows);
    assert_eq!(
        w.header().shift_x,
        m.header().shift_x,
        "merged around the first input's shift"
    );
    let mut worst = 0.0f64;
    for i in 0..w.header().accumulators() {
        let (x, y) = (w.accumulator(i).unwrap(), m.accumulator(i).unwrap());
        assert_eq!(x.n, y.n);
        let scale = x
            .xtx
            .iter()
            .chain(&x.xty)
            .fold(1e-300f64, |s, v| s.max(v.abs()));
        for (p, q) in x
            .xtx
            .iter()
            .chain(&x.xty)
            .chain(&x.sum_x)
            .zip(y.xtx.iter().chain(&y.xty).chain(&y.sum_x))
        {
            worst = worst.max((p - q).abs() / scale);
        }
    }
    eprintln!("merge vs single run: worst relative difference {worst:e}");
    assert!(worst <= 1e-12, "{worst:e}");
    assert_eq!(
        w.reservoir().unwrap(),
        m.reservoir().unwrap(),
        "the gate sample merges exactly"
    );
    // The same half twice is refused, naming both files.
    let out = Command::new(BIN)
        .env("HDF5_USE_FILE_LOCKING", "FALSE")
        .args(["merge", "--out"])
        .arg(dir.path().join("bad.h5"))
        .arg(&a)
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a.h5"), "{err}");
}
