//! Bad input: every malformed file gets a typed error that names the file,
//! the dataset and, where they apply, the row and the column — never a panic.
//!
//! Files that need a writer are written by h5py (`tests/interop/make_files.py`,
//! see `common::interop`); files that are not HDF5 at all are written here.

use crate::common;

use std::path::{Path, PathBuf};

use common::{assert_bits_eq, read_all, read_prefetched};
use gramstream::source::{ChunkSource, NonFinitePolicy, ReadOptions, ReadPath, Shard, Spectra};
use gramstream::{Error, Layout};

const FLUX: &str = "/dataset/arrays/flux/value";
const ERROR: &str = "/dataset/arrays/error/value";
const PARAMS: &str = "/dataset/params/table";
const WAVE: &str = "/spectrumdataset/wave";

fn open(path: &Path) -> gramstream::Result<Shard> {
    Shard::open(path, &Layout::default())
}

fn open_err(path: &Path) -> Error {
    match open(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e,
    }
}

fn options(columns: &[&str], path: ReadPath, non_finite: NonFinitePolicy) -> ReadOptions {
    ReadOptions {
        spectra: Spectra::FluxError,
        columns: columns.iter().map(|c| c.to_string()).collect(),
        path,
        non_finite,
    }
}

/// The one-line message names the file.
fn assert_names_file(err: &Error, path: &Path) {
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "message does not name the file: {message}"
    );
}

// ------------------------------------------------------- not HDF5 at all

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_such_shard.h5");
    let err = open_err(&path);
    assert_names_file(&err, &path);
    match err {
        Error::Io { path: p, source } => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = open_err(dir.path());
    assert_names_file(&err, dir.path());
    match err {
        Error::Io { path, source } => {
            assert_eq!(path, dir.path());
            assert!(source.to_string().contains("directory"), "{source}");
        }
        other => panic!("{other:?}"),
    }
}

fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn not_hdf5_text_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let text = "T_eff,M_H,log_g\n5000,0.0,4.5\n".repeat(40);
    for path in [
        write_bytes(dir.path(), "params.csv.h5", text.as_bytes()),
        write_bytes(dir.path(), "empty.h5", b""),
    ] {
        let err = open_err(&path);
        assert_names_file(&err, &path);
        match err {
            Error::Hdf5 {
                path: p,
                what,
                message,
            } => {
                assert_eq!(p, path);
                assert!(what.contains("opening"), "{what}");
                assert!(message.contains("not an HDF5 file"), "{message}");
            }
            other => panic!("{}: {other:?}", path.display()),
        }
    }
}

#[test]
fn hdf5_signature_then_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"\x89HDF\r\n\x1a\n".to_vec();
    bytes.extend((0..1024).map(|i| (i * 7 % 251) as u8));
    let path = write_bytes(dir.path(), "damaged.h5", &bytes);
    match open_err(&path) {
        Error::Hdf5 { path: p, what, .. } => {
            assert_eq!(p, path);
            assert!(what.contains("truncated or damaged"), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

// --------------------------------------------------- wrong structure (h5py)

fn expect_missing(files: &common::Interop, name: &str, dataset: &str) {
    let path = files.bad_path(name);
    assert_eq!(files.bad(name)["dataset"], dataset);
    let err = open_err(&path);
    assert_names_file(&err, &path);
    assert!(err.to_string().contains(dataset), "{err}");
    match err {
        Error::MissingDataset {
            path: p,
            dataset: d,
            ..
        } => {
            assert_eq!(p, path);
            assert_eq!(d, dataset);
        }
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn missing_datasets() {
    let files = require_interop!();
    expect_missing(files, "missing_flux", FLUX);
    expect_missing(files, "missing_params", PARAMS);
    expect_missing(files, "missing_wave", WAVE);
    // The flux error says what is there instead.
    match open_err(&files.bad_path("missing_flux")) {
        Error::MissingDataset { found, .. } => {
            assert!(
                found.contains("dataset") && found.contains("spectrumdataset"),
                "{found}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// A `Layout` error on `dataset` whose expected/found texts contain the given parts.
fn expect_layout(
    files: &common::Interop,
    name: &str,
    dataset: &str,
    expected: &[&str],
    found: &[&str],
) {
    let path = files.bad_path(name);
    let err = open_err(&path);
    assert_names_file(&err, &path);
    match err {
        Error::Layout {
            path: p,
            dataset: d,
            expected: e,
            found: f,
        } => {
            assert_eq!(p, path, "{name}");
            assert_eq!(d, dataset, "{name}: dataset ({e}; {f})");
            for part in expected {
                assert!(e.contains(part), "{name}: expected {e:?} lacks {part:?}");
            }
            for part in found {
                assert!(f.contains(part), "{name}: found {f:?} lacks {part:?}");
            }
        }
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn shapes_that_disagree() {
    let files = require_interop!();
    expect_layout(
        files,
        "error_shape",
        ERROR,
        &["[37, 50]", FLUX],
        &["[37, 49]"],
    );
    expect_layout(files, "error_rows", ERROR, &["[37, 50]"], &["[35, 50]"]);
    expect_layout(
        files,
        "params_rows",
        PARAMS,
        &["37 rows", FLUX],
        &["36 rows"],
    );
    expect_layout(files, "wave_len", WAVE, &["50 wavelengths"], &["[49]"]);
}

#[test]
fn flux_that_is_not_a_2d_float_array() {
    let files = require_interop!();
    expect_layout(files, "flux_1d", FLUX, &["2-D"], &["[50]"]);
    expect_layout(files, "flux_3d", FLUX, &["2-D"], &["[37, 5, 10]"]);
    expect_layout(files, "flux_int", FLUX, &["float32 or float64"], &["int"]);
    expect_layout(
        files,
        "zero_rows",
        FLUX,
        &["at least one row"],
        &["[0, 50]"],
    );
    expect_layout(files, "params_not_compound", PARAMS, &["compound"], &[]);
}

// -------------------------------------------------------------- truncated

#[test]
fn truncated_to_60_percent_fails_at_open() {
    let files = require_interop!();
    let path = files.bad_path("truncated_60");
    let err = open_err(&path);
    assert_names_file(&err, &path);
    match err {
        Error::Hdf5 {
            path: p,
            what,
            message,
        } => {
            assert_eq!(p, path);
            assert!(what.contains("truncated"), "{what}: {message}");
        }
        other => panic!("{other:?}"),
    }
}

/// The superblock agrees with the shortened file, so libhdf5 opens it; the
/// contiguous error array runs past the end and the reader must say so
/// before mapping it.
#[test]
fn contiguous_error_past_the_end_fails_at_open() {
    let files = require_interop!();
    expect_layout(
        files,
        "truncated_error_contiguous",
        ERROR,
        &["bytes of data from byte"],
        &["truncated"],
    );
}

/// Chunked error whose last chunks are cut off: the shard opens, the intact
/// rows read, the first chunk that touches a lost chunk fails with an error
/// naming the file, the dataset and the rows.
#[test]
fn chunked_error_cut_off_fails_at_read() {
    let files = require_interop!();
    let info = files.bad("truncated_error_chunked");
    let path = files.bad_path("truncated_error_chunked");
    let first_broken = info["broken"][0].as_u64().unwrap() as usize;
    assert_eq!(first_broken, 20);
    let shard = open(&path).unwrap_or_else(|e| panic!("opens: {e}"));
    for read_path in [ReadPath::Auto, ReadPath::Hdf5] {
        for chunk in [1, 4, 7, 64] {
            let mut reader = shard
                .reader(0, &options(&["log_g"], read_path, NonFinitePolicy::Error))
                .unwrap();
            let intact =
                common::read_range_with(&mut reader, 0..first_broken, chunk, |_| {}).unwrap();
            assert!(
                intact.error.iter().all(|&e| (0.01..0.2).contains(&e)),
                "intact error rows read"
            );
            let mut good_rows = 0;
            let mut c = gramstream::source::Chunk::default();
            let err = loop {
                let a = good_rows;
                let b = (a + chunk).min(shard.rows());
                match reader.read_chunk(a..b, &mut c) {
                    Ok(()) => good_rows = b,
                    Err(e) => break e,
                }
                assert!(
                    good_rows < shard.rows(),
                    "every row read from a cut-off file"
                );
            };
            assert!(
                good_rows <= first_broken && good_rows + chunk > first_broken,
                "failed at row {good_rows}"
            );
            assert_names_file(&err, &path);
            match err {
                Error::Hdf5 { path: p, what, .. } => {
                    assert_eq!(p, path);
                    let rows = format!(
                        "rows {}..{}",
                        good_rows,
                        (good_rows + chunk).min(shard.rows())
                    );
                    assert!(
                        what.contains(ERROR) && what.contains(&rows),
                        "{what} (want {rows})"
                    );
                }
                other => panic!("{read_path:?} chunk {chunk}: {other:?}"),
            }
        }
    }
}

// ------------------------------------------------------------- bad values

/// Opens the bad-value file `name` and checks that reading it fails at the
/// recorded (row, column) on both paths, for several chunk sizes, directly
/// and through the Prefetcher.
fn expect_bad_value(files: &common::Interop, name: &str, columns: &[&str], problem: &str) {
    let info = files.bad(name);
    let path = files.bad_path(name);
    let dataset = info["dataset"].as_str().unwrap();
    let row = info["row"].as_u64().unwrap() as usize;
    let column = match &info["column"] {
        serde_json::Value::Number(n) => format!("pixel {n}"),
        serde_json::Value::String(s) => s.clone(),
        other => panic!("{other}"),
    };
    let shard =
        open(&path).unwrap_or_else(|e| panic!("{name} opens (values are checked at read): {e}"));
    let check = |err: Error, what: &str| {
        let message = err.to_string();
        match err {
            Error::BadValue {
                path: p,
                dataset: d,
                row: r,
                column: c,
                problem: pr,
            } => {
                assert_eq!(p, path, "{what}");
                assert_eq!(
                    (d.as_str(), r, c.as_str()),
                    (dataset, row, column.as_str()),
                    "{what}: {pr}"
                );
                assert!(
                    pr.contains(problem),
                    "{what}: problem {pr:?} lacks {problem:?}"
                );
                for part in [
                    path.display().to_string(),
                    dataset.to_string(),
                    format!("row {row}"),
                    column.clone(),
                ] {
                    assert!(
                        message.contains(&part),
                        "{what}: message {message:?} lacks {part:?}"
                    );
                }
            }
            other => panic!("{what}: {other:?}"),
        }
    };
    for read_path in [ReadPath::Auto, ReadPath::Hdf5] {
        for chunk in [1, 4, 37] {
            let what = format!("{name} {read_path:?} chunk {chunk}");
            let mut reader = shard
                .reader(0, &options(columns, read_path, NonFinitePolicy::Error))
                .unwrap();
            check(read_all(&mut reader, chunk).unwrap_err(), &what);
            // Rows before the bad one read cleanly.
            if row > 0 {
                common::read_range_with(&mut reader, 0..row, chunk, |_| {}).unwrap();
            }
        }
        let readers = vec![shard
            .reader(0, &options(columns, read_path, NonFinitePolicy::Error))
            .unwrap()];
        let what = format!("{name} {read_path:?} prefetched");
        check(read_prefetched(readers, 3, 2, |_| {}).unwrap_err(), &what);
    }
    // With SkipRow, exactly that row is marked.
    let mut reader = shard
        .reader(
            0,
            &options(columns, ReadPath::Auto, NonFinitePolicy::SkipRow),
        )
        .unwrap();
    let rows = read_all(&mut reader, 5).unwrap();
    let marked: Vec<usize> = (0..rows.skip.len()).filter(|&r| rows.skip[r]).collect();
    assert_eq!(marked, [row], "{name}: SkipRow marks");
}

const COLUMNS: [&str; 3] = ["T_eff", "M_H", "log_g"];

#[test]
fn non_finite_flux_names_file_dataset_row_and_pixel() {
    let files = require_interop!();
    expect_bad_value(files, "flux_nan", &COLUMNS, "NaN");
    expect_bad_value(files, "flux_inf", &COLUMNS, "inf");
    expect_bad_value(files, "flux_neg_inf", &COLUMNS, "-inf");
}

#[test]
fn negative_or_non_finite_error() {
    let files = require_interop!();
    expect_bad_value(files, "error_negative", &COLUMNS, "negative error -0.25");
    expect_bad_value(files, "error_nan", &COLUMNS, "NaN");
}

#[test]
fn non_finite_params_value_names_the_column() {
    let files = require_interop!();
    expect_bad_value(files, "log_g_nan", &COLUMNS, "NaN");
    expect_bad_value(files, "teff_inf", &["log_g", "T_eff"], "inf");
    // A column the run does not read may hold anything.
    let shard = open(&files.bad_path("log_g_nan")).unwrap();
    let mut reader = shard
        .reader(
            0,
            &options(&["T_eff", "M_H"], ReadPath::Auto, NonFinitePolicy::Error),
        )
        .unwrap();
    let rows = read_all(&mut reader, 10).unwrap();
    assert_eq!(rows.row.len(), 37);
}

/// `NonFinitePolicy::SkipRow` marks exactly the bad rows (flux NaN/inf, a
/// negative or infinite error, NaN/−inf in a read params column), counts
/// them, leaves the values as they are, and ignores columns not read.
#[test]
fn skip_row_marks_exactly_the_bad_rows() {
    let files = require_interop!();
    let info = files.bad("many_bad_rows");
    let path = files.bad_path("many_bad_rows");
    let bad: Vec<usize> = info["bad_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(bad, [2, 9, 14, 15, 20, 21, 36]);
    let shard = open(&path).unwrap();
    let n = shard.rows();
    let flux = files.values("many_bad_rows.flux.f64");
    let log_g = files.values("many_bad_rows.log_g.f64");
    for read_path in [ReadPath::Auto, ReadPath::Hdf5] {
        for chunk in [1, 6, 10, n] {
            let what = format!("{read_path:?} chunk {chunk}");
            let opts = options(&COLUMNS, read_path, NonFinitePolicy::SkipRow);
            let mut reader = shard.reader(0, &opts).unwrap();
            let mut counted = 0;
            let mut marked = Vec::new();
            let mut all_flux = Vec::new();
            let mut got_log_g = Vec::new();
            let mut c = gramstream::source::Chunk::default();
            for task in gramstream::source::plan(&[n], chunk).unwrap() {
                reader.read_chunk(task.rows.clone(), &mut c).unwrap();
                counted += c.skipped();
                marked.extend((0..c.rows).filter(|&r| c.skip[r]).map(|r| c.start + r));
                all_flux.extend_from_slice(&c.flux);
                got_log_g.extend((0..c.rows).map(|r| c.params_row(r)[2]));
            }
            assert_eq!(marked, bad, "{what}: marked rows");
            assert_eq!(counted, bad.len(), "{what}: Chunk::skipped");
            assert_bits_eq(
                &all_flux,
                &flux,
                shard.pixels(),
                &format!("{what}: values kept"),
            );
            assert_bits_eq(&got_log_g, &log_g, 1, &format!("{what}: log_g kept"));

            // Through the Prefetcher, the same marks.
            let rows =
                read_prefetched(vec![shard.reader(5, &opts).unwrap()], chunk, 2, |_| {}).unwrap();
            let marked: Vec<usize> = (0..n).filter(|&r| rows.skip[r]).collect();
            assert_eq!(marked, bad, "{what}: prefetched marks");

            // The error policy stops at the first bad row (2, pixel 0).
            let mut reader = shard
                .reader(0, &options(&COLUMNS, read_path, NonFinitePolicy::Error))
                .unwrap();
            match read_all(&mut reader, chunk).unwrap_err() {
                Error::BadValue {
                    row,
                    column,
                    dataset,
                    ..
                } => {
                    assert_eq!(
                        (row, column.as_str(), dataset.as_str()),
                        (2, "pixel 0", FLUX),
                        "{what}"
                    )
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }
    // snr has a NaN at row 3: a bad row only when snr is read.
    let clean = info["clean_nan_row"].as_u64().unwrap() as usize;
    assert_eq!(info["clean_nan_column"], "snr");
    let mut reader = shard
        .reader(
            0,
            &options(&["log_g", "snr"], ReadPath::Auto, NonFinitePolicy::SkipRow),
        )
        .unwrap();
    let rows = read_all(&mut reader, 8).unwrap();
    let marked: Vec<usize> = (0..n).filter(|&r| rows.skip[r]).collect();
    let mut want = bad.clone();
    want.retain(|&r| r != 21); // M_H is not read now
    want.push(clean);
    want.sort();
    assert_eq!(marked, want, "snr read: row {clean} is bad too");
}

/// Every bad file the script writes is exercised by a test here.
#[test]
fn every_bad_file_has_a_test() {
    let files = require_interop!();
    let source = include_str!("bad_input.rs");
    for name in files.manifest["bad"].as_object().unwrap().keys() {
        let used = source.contains(&format!("\"{name}\""));
        let covered_in_rust = ["not_hdf5", "signature_only", "empty"].contains(&name.as_str());
        assert!(used || covered_in_rust, "bad file {name} has no test");
        if covered_in_rust {
            // The Python-written counterparts of the Rust-written files fail the same way.
            let err = open_err(&files.bad_path(name));
            assert!(matches!(err, Error::Hdf5 { .. }), "{name}: {err:?}");
        }
    }
}

// ------------------------------------------------- the command-line tool
//
// Files from `gramstream generate` and `accumulate`, damaged by h5py or by
// flipping bytes; every refusal checked by exit status and its one line.

use std::process::{Command, Output};
use std::sync::OnceLock;

/// `gramstream` without HDF5 file locking (see tests/sweep.rs: a child
/// spawned while another test thread holds a file open inherits its lock).
fn gramstream() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gramstream"));
    cmd.env("HDF5_USE_FILE_LOCKING", "FALSE");
    cmd
}

/// Runs a command that must fail with `code`; returns its one stderr line.
fn fails(cmd: &mut Command, code: i32) -> String {
    let out: Output = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert_eq!(out.status.code(), Some(code), "{cmd:?}: {err}");
    if code == 1 {
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("error: "), "{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two generated training shards, a test shard, statistics with 3 folds.
struct Fixture {
    train: Vec<PathBuf>,
    test: PathBuf,
    stats: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // Kept after the process (statics are never dropped); sets older
        // than an hour are removed here.
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            if old && entry.file_name().to_string_lossy().starts_with("cli-bad-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("cli-bad-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        let data = dir.join("data");
        succeeds(
            gramstream()
                .args([
                    "generate",
                    "--train-shards",
                    "2",
                    "--rows",
                    "300",
                    "--test-rows",
                    "100",
                    "--pixels",
                    "32",
                    "--params-format",
                    "fields",
                    "--out",
                ])
                .arg(&data),
        );
        let train: Vec<PathBuf> = (0..2)
            .map(|i| data.join(format!("train_{i}/dataset.h5")))
            .collect();
        let stats = dir.join("stats3.h5");
        succeeds(
            gramstream()
                .args(["accumulate", "--folds", "3", "--out"])
                .arg(&stats)
                .args(&train),
        );
        Fixture {
            test: data.join("test/dataset.h5"),
            train,
            stats,
        }
    })
}

/// A copy of `src` named `name` in a fresh directory.
fn copy_of(src: &Path, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join(name);
    std::fs::copy(src, &dst).unwrap();
    (dir, dst)
}

/// Runs a Python snippet (h5py, numpy) with `args` as `sys.argv[1:]`; None
/// when no such Python exists (outside CI).
fn python(script: &str, args: &[&Path]) -> Option<()> {
    let py = match common::find_python() {
        Ok(p) => p,
        Err(why) if std::env::var_os("CI").is_some() => panic!("{why}"),
        Err(why) => {
            eprintln!("skipping: {why}");
            return None;
        }
    };
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

// ------------------------------------- issue 11, item 3: finite statistics

/// One flux value of 1e200 made `accumulate` exit 0 with `inf` in `xtx`
/// (the failure surfaced later in `sweep`, naming nothing of the input).
/// The reader now refuses a value whose square would overflow the sums,
/// naming the file, dataset, row and pixel, and nothing is written.
#[test]
fn overflowing_flux_is_refused() {
    let f = fixture();
    let (dir, shard) = copy_of(&f.train[0], "big.h5");
    let script = "import sys, h5py\nwith h5py.File(sys.argv[1], 'r+') as h:\n    h['/dataset/arrays/flux/value'][17, 5] = 1e200\n";
    if python(script, &[&shard]).is_none() {
        return;
    }
    let out = dir.path().join("s.h5");
    let err = fails(
        gramstream()
            .args(["accumulate", "--out"])
            .arg(&out)
            .arg(&shard),
        1,
    );
    assert_eq!(
        err,
        format!(
            "error: {}: {FLUX}: row 17, column pixel 5: flux 1e200 is too large (|value| > 1e100: its square would overflow the sums)",
            shard.display()
        )
    );
    assert!(!out.exists() && scratch_in(dir.path()).is_empty());
    // With --skip-bad-rows the row is counted out and the rest accumulated.
    let text = succeeds(
        gramstream()
            .args(["accumulate", "--skip-bad-rows", "--out"])
            .arg(&out)
            .arg(&shard),
    );
    assert!(text.contains("(1 skipped)"), "{text}");
}

/// A statistics file holding inf or NaN (an overflow in the pass) is refused
/// by the loader, naming the file, the dataset and the accumulator.
#[test]
fn non_finite_statistics_are_refused() {
    use gramstream::stats::StatsFile;
    let f = fixture();
    let set = |dataset: &str, index: &str, value: &str| {
        let (dir, path) = copy_of(&f.stats, "stats.h5");
        let script = format!(
            "import sys, h5py\nwith h5py.File(sys.argv[1], 'r+') as h:\n    h['{dataset}'][{index}] = float('{value}')\n"
        );
        python(&script, &[&path]).map(|()| (dir, path))
    };
    // XᵀX of accumulator 1, packed element 5 = pixels (2, 2): found when read.
    let Some((_dir, path)) = set("accumulators/xtx", "1, 5", "inf") else {
        return;
    };
    let file = StatsFile::open(&path).unwrap();
    file.accumulator(0).unwrap();
    let err = file.accumulator(1).unwrap_err();
    let text = err.to_string();
    match err {
        Error::Layout {
            path: p,
            dataset,
            found,
            ..
        } => {
            assert_eq!(
                (p.as_path(), dataset.as_str()),
                (path.as_path(), "/accumulators/xtx")
            );
            assert_eq!(found, "inf at accumulator 1, element 5 (pixels 2, 2)");
        }
        other => panic!("{other:?}"),
    }
    assert!(text.contains("expected finite values"), "{text}");
    // sweep reads every accumulator: exit 1, the same line.
    let err = fails(
        gramstream()
            .args(["sweep", "--no-plots", "--out"])
            .arg(path.with_file_name("sw"))
            .arg(&path),
        1,
    );
    assert!(
        err.contains("/accumulators/xtx: expected finite values, found inf at accumulator 1"),
        "{err}"
    );
    assert!(!path.with_file_name("sw").join("sweep.csv").exists());

    // Σy, Σx and the shift: refused at open or read, each named.
    for (dataset, index, value, want) in [
        (
            "accumulators/sum_y",
            "0",
            "nan",
            "/accumulators/sum_y: expected finite values, found NaN at accumulator 0",
        ),
        (
            "accumulators/sum_yy",
            "2",
            "-inf",
            "/accumulators/sum_yy: expected finite values, found -inf at accumulator 2",
        ),
        (
            "shift_x",
            "3",
            "inf",
            "/shift_x: expected finite values, found inf at pixel 3",
        ),
    ] {
        let (_dir, path) = set(dataset, index, value).unwrap();
        let err = StatsFile::open(&path).unwrap_err().to_string();
        assert!(err.contains(want), "{dataset}: {err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
    for (dataset, index, want) in [
        (
            "accumulators/sum_x",
            "4, 7",
            "/accumulators/sum_x: expected finite values, found NaN at accumulator 4, pixel 7",
        ),
        (
            "accumulators/xty",
            "0, 31",
            "/accumulators/xty: expected finite values, found NaN at accumulator 0, pixel 31",
        ),
    ] {
        let (_dir, path) = set(dataset, index, "nan").unwrap();
        let file = StatsFile::open(&path).unwrap();
        let a: usize = index.split(',').next().unwrap().parse().unwrap();
        let err = file.accumulator(a).unwrap_err().to_string();
        assert!(err.contains(want), "{dataset}: {err}");
    }
}

// ----------------------------- issue 11, item 6: rows that were never written

/// Writes shards whose flux and error declare more rows than their storage
/// holds (h5py, no data written), and one fully written gzip shard whose
/// compressed storage is far smaller than its raw size.
const UNALLOCATED: &str = r#"
import sys, h5py, numpy as np
out = sys.argv[1]
def shard(name, rows, p, make):
    with h5py.File(f"{out}/{name}.h5", "w") as f:
        for a in ("flux", "error"):
            make(f, f"/dataset/arrays/{a}/value", rows, p)
        t = np.dtype([("T_eff", "<f8"), ("M_H", "<f8"), ("log_g", "<f8")])
        if rows > 10**6:
            f.create_dataset("/dataset/params/table", shape=(rows,), dtype=t, chunks=(64,), maxshape=(None,))
        else:
            tab = np.zeros(rows, t); tab["T_eff"] = 5000.0; tab["log_g"] = 4.0
            f.create_dataset("/dataset/params/table", data=tab)
        f.create_dataset("/spectrumdataset/wave", data=np.linspace(4000.0, 9000.0, p))
def huge(f, name, rows, p):
    f.create_dataset(name, shape=(rows, p), chunks=(64, p), maxshape=(None, p), dtype="<f8")
def partly(f, name, rows, p):
    d = f.create_dataset(name, shape=(rows, p), chunks=(64, p), dtype="<f8")
    d[:64] = 1.0
def contiguous(f, name, rows, p):
    f.create_dataset(name, shape=(rows, p), dtype="<f8")
def gzip(f, name, rows, p):
    f.create_dataset(name, data=np.full((rows, p), 0.5), chunks=(7, p), compression="gzip", compression_opts=9)
shard("huge", 2**40, 256, huge)
shard("partly", 640, 256, partly)
shard("contiguous", 37, 50, contiguous)
shard("gzip", 100, 256, gzip)
"#;

#[test]
fn unallocated_rows_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    if python(UNALLOCATED, &[dir.path()]).is_none() {
        return;
    }
    let path = |name: &str| dir.path().join(format!("{name}.h5"));
    assert!(std::fs::metadata(path("huge")).unwrap().len() < 100_000);
    for (name, expected, found) in [
        (
            "huge",
            "17179869184 chunks of [64, 256] for the declared 1099511627776 rows (1099511627776 × 256)",
            "0 chunks allocated (0 bytes): the rows were never written",
        ),
        (
            "partly",
            "10 chunks of [64, 256] for the declared 640 rows (640 × 256)",
            "1 chunks allocated (131072 bytes)",
        ),
        (
            "contiguous",
            "14800 bytes of storage for the declared 37 rows (37 × 50)",
            "0 bytes allocated",
        ),
    ] {
        let p = path(name);
        let err = open_err(&p);
        assert_names_file(&err, &p);
        match err {
            Error::Layout {
                dataset,
                expected: e,
                found: f,
                ..
            } => {
                assert_eq!(dataset, FLUX, "{name}");
                assert_eq!(e, expected, "{name}");
                assert!(f.starts_with(found), "{name}: {f}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // Compressed chunks are smaller than the raw data, and legitimate.
    let shard = open(&path("gzip")).unwrap();
    let rows = read_all(
        &mut shard
            .reader(
                0,
                &options(&COLUMNS, ReadPath::Auto, NonFinitePolicy::Error),
            )
            .unwrap(),
        64,
    )
    .unwrap();
    assert!(rows.flux.iter().all(|&v| v == 0.5));

    // Every command opens shards the same way: `scan` fails at once instead
    // of reading 2^40 rows of fill values.
    let mut child = gramstream()
        .args(["scan", "--noise", "0"])
        .arg(path("huge"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs() > 60 {
            child.kill().unwrap();
            panic!("scan still running after 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(FLUX) && err.contains("0 chunks allocated (0 bytes)"),
        "{err}"
    );
    for cmd in ["inspect", "accumulate"] {
        let mut c = gramstream();
        c.arg(cmd);
        if cmd == "accumulate" {
            c.arg("--out").arg(dir.path().join("s.h5"));
        }
        let err = fails(c.arg(path("huge")), 1);
        assert!(err.contains("never written"), "{cmd}: {err}");
    }
}

// --------------------------- issue 11, item 7: inspect and unusable shards

/// Rewrites the params table of a copy: drops a column, or stores T_eff as strings.
const PARAMS_EDIT: &str = r#"
import sys, h5py, numpy as np
path, edit = sys.argv[1], sys.argv[2]
with h5py.File(path, "r+") as f:
    t = f["/dataset/params/table"][...]
    names = [n for n in t.dtype.names if not (edit == "drop_log_g" and n == "log_g")]
    fields = [(n, "S16" if (edit == "teff_strings" and n == "T_eff") else t.dtype[n]) for n in names]
    new = np.zeros(t.shape, np.dtype(fields))
    for n in names:
        new[n] = t[n].astype("S16") if new.dtype[n].kind == "S" else t[n]
    del f["/dataset/params/table"]
    f.create_dataset("/dataset/params/table", data=new)
"#;

#[test]
fn inspect_exits_1_on_unusable_shard() {
    let f = fixture();
    let stdout = succeeds(gramstream().arg("inspect").arg(&f.train[0]));
    assert!(stdout.contains("read path"), "{stdout}");
    for (edit, want) in [
        ("drop_log_g", "column \"log_g\" not found"),
        ("teff_strings", "expected a numeric column \"T_eff\""),
    ] {
        let (_dir, path) = copy_of(&f.train[0], "dataset.h5");
        let edit_arg = PathBuf::from(edit);
        if python(PARAMS_EDIT, &[&path, &edit_arg]).is_none() {
            return;
        }
        let err = fails(gramstream().arg("inspect").arg(&path), 1);
        assert!(
            err.contains(&path.display().to_string()) && err.contains(PARAMS) && err.contains(want),
            "{edit}: {err}"
        );
        // The library says the same.
        let e = gramstream::inspect::inspect(&path, &Layout::default()).unwrap_err();
        assert!(e.to_string().contains(want), "{edit}: {e}");
    }
}

// ------------------------------------------- issue 11, item 8: no panics

/// An experiment config for the fixture's shards with `extra` appended.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let f = fixture();
    let text = format!(
        "name = \"bad\"\n[data]\ntrain = [{}]\ntest = {:?}\n{extra}",
        f.train
            .iter()
            .map(|p| format!("{:?}", p.display().to_string()))
            .collect::<Vec<_>>()
            .join(", "),
        f.test.display().to_string()
    );
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `sweep --alphas 1:1e6:100000000` allocated 204 GB and panicked; the same
/// grid in a config also left the experiment's scratch behind.
#[test]
fn alpha_grid_too_large_is_refused() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sw");
    let err = fails(
        gramstream()
            .args(["sweep", "--alphas", "1:1e6:100000000", "--out"])
            .arg(&out)
            .arg(&f.stats),
        1,
    );
    assert_eq!(
        err,
        "error: invalid parameter alphas: 100000000 values: at most 1000 (each group keeps P weights per α; the default grid has 50)"
    );
    assert!(!out.exists());
    let cfg = config(
        dir.path(),
        "[stats]\nfolds = 3\n[ridge]\nalphas = \"1:1e6:100000000\"\n",
    );
    let err = fails(
        gramstream()
            .args(["experiment", "--out"])
            .arg(&out)
            .arg(&cfg),
        1,
    );
    assert!(
        err.contains("[ridge] alphas") && err.contains("100000000 values: at most 1000"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the config"
    );
}

/// `--gate-sample 18446744073709551615` overflowed the reservoir's size
/// (capacity overflow panic); the planner now refuses it with the arithmetic.
#[test]
fn gate_sample_overflow_is_refused() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.h5");
    let err = fails(
        gramstream()
            .args([
                "accumulate",
                "--gate-sample",
                "18446744073709551615",
                "--out",
            ])
            .arg(&out)
            .arg(&f.train[0]),
        1,
    );
    assert!(
        err.contains("invalid parameter mem-budget")
            && err.contains("reservoir 1073741824.00 GiB")
            && err.contains("lower --gate-sample"),
        "{err}"
    );
    assert!(!out.exists());
    // A budget beyond 1 EiB is refused, so the planner's sums stay exact.
    let err = fails(
        gramstream()
            .args(["accumulate", "--mem-budget", "2000000T", "--out"])
            .arg(&out)
            .arg(&f.train[0]),
        2,
    );
    assert!(err.contains("more than 1 EiB"), "{err}");
}

// ------------------- issue 11, item 9: out-of-range values, before any work

/// Shard indices wrapped: `--first-shard-index 18446744073709551615` gave the
/// second shard index 0 (the first shard's noise) — and u64::MAX is the test
/// shard's.
#[test]
fn shard_index_overflow_is_refused() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.h5");
    let want = "error: invalid parameter first-shard-index: 2 shard(s) from index 18446744073709551615 would need indices up to 18446744073709551615 + 2 − 1, but shard indices must stay below 18446744073709551615 (reserved for the test shard's noise)";
    let err = fails(
        gramstream()
            .args([
                "accumulate",
                "--first-shard-index",
                "18446744073709551615",
                "--out",
            ])
            .arg(&out)
            .args(&f.train),
        1,
    );
    assert_eq!(err, want);
    assert!(!out.exists());
    let err = fails(
        gramstream()
            .args([
                "predict",
                "--model",
                "none.h5",
                "--first-shard-index",
                "18446744073709551615",
                "--out",
            ])
            .arg(dir.path().join("p.csv"))
            .args(&f.train),
        1,
    );
    assert_eq!(err, want);
    // The last index below the reserved one is fine.
    succeeds(
        gramstream()
            .args([
                "accumulate",
                "--first-shard-index",
                "18446744073709551614",
                "--out",
            ])
            .arg(&out)
            .arg(&f.train[0]),
    );
}

/// `--noise 1e308` made L·error overflow and exited 0 with meaningless
/// numbers; `--noise -1` read as an unknown argument.
#[test]
fn noise_level_out_of_range_is_refused() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    for level in ["1e308", "-1", "nan", "inf", "1000001"] {
        let mut cases: Vec<(&str, Command)> = Vec::new();
        let mut scan = gramstream();
        scan.args(["scan", "--noise", level]).arg(&f.train[0]);
        cases.push(("scan", scan));
        let mut acc = gramstream();
        acc.args(["accumulate", "--noise", level, "--out"])
            .arg(dir.path().join("s.h5"))
            .arg(&f.train[0]);
        cases.push(("accumulate", acc));
        let mut predict = gramstream();
        predict
            .args(["predict", "--model", "m.h5", "--noise", level, "--out"])
            .arg(dir.path().join("p.csv"))
            .arg(&f.test);
        cases.push(("predict", predict));
        let mut sweep = gramstream();
        sweep
            .args(["sweep", "--test-noise", level, "--test"])
            .arg(&f.test)
            .arg("--out")
            .arg(dir.path().join("sw"))
            .arg(&f.stats);
        cases.push(("sweep", sweep));
        for (name, mut cmd) in cases {
            let err = fails(&mut cmd, 2);
            assert!(
                err.contains(&format!("invalid value '{level}'"))
                    && err.contains("the noise level must be finite, ≥ 0 and ≤ 1e6"),
                "{name} {level}: {err}"
            );
        }
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A config level is checked the same way, before any work.
    let cfg = config(dir.path(), "[noise]\nlevels = [1e308]\n");
    let err = fails(
        gramstream()
            .args(["experiment", "--out"])
            .arg(dir.path().join("out"))
            .arg(&cfg),
        1,
    );
    assert!(
        err.contains("[noise] levels: invalid parameter noise: the noise level must be finite, ≥ 0 and ≤ 1e6, got 1e308"),
        "{err}"
    );
    assert!(!dir.path().join("out").exists());
}

/// `--chunk-rows 0` was refused by two commands and accepted by two;
/// `--block-rows 0` silently became 1; `--checkpoint-every nan` was taken.
#[test]
fn zero_rows_and_nan_intervals_are_refused() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let stats_out = dir.path().join("s.h5");
    let mut cases: Vec<(&str, Command, &str)> = Vec::new();
    let mut c = gramstream();
    c.args(["scan", "--chunk-rows", "0"]).arg(&f.train[0]);
    cases.push(("scan --chunk-rows", c, "must be at least 1 row"));
    let mut c = gramstream();
    c.args(["accumulate", "--chunk-rows", "0", "--out"])
        .arg(&stats_out)
        .arg(&f.train[0]);
    cases.push(("accumulate --chunk-rows", c, "must be at least 1 row"));
    let mut c = gramstream();
    c.args(["accumulate", "--block-rows", "0", "--out"])
        .arg(&stats_out)
        .arg(&f.train[0]);
    cases.push(("accumulate --block-rows", c, "must be at least 1 row"));
    let mut c = gramstream();
    c.args(["sweep", "--chunk-rows", "0", "--out"])
        .arg(dir.path().join("sw"))
        .arg(&f.stats);
    cases.push(("sweep --chunk-rows", c, "must be at least 1 row"));
    let mut c = gramstream();
    c.args(["predict", "--model", "m.h5", "--chunk-rows", "0", "--out"])
        .arg(dir.path().join("p.csv"))
        .arg(&f.test);
    cases.push(("predict --chunk-rows", c, "must be at least 1 row"));
    for every in ["nan", "-1", "1e300"] {
        let mut c = gramstream();
        c.args(["accumulate", "--checkpoint"])
            .arg(dir.path().join("ck.h5"))
            .args(["--checkpoint-every", every, "--out"])
            .arg(&stats_out)
            .arg(&f.train[0]);
        cases.push((
            "accumulate --checkpoint-every",
            c,
            "the interval must be a finite number of seconds ≥ 0",
        ));
    }
    for (name, mut cmd, want) in cases {
        let err = fails(&mut cmd, 2);
        assert!(err.contains(want), "{name}: {err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `sweep --alphas 0` on 3-fold statistics selected by GCV while the header
/// said CV (CV is computed for α > 0 only); a config said nothing either.
#[test]
fn cv_without_a_positive_alpha_is_refused() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sw");
    for extra in [&[][..], &["--select", "cv"][..]] {
        let err = fails(
            gramstream()
                .args(["sweep", "--alphas", "0"])
                .args(extra)
                .arg("--out")
                .arg(&out)
                .arg(&f.stats),
            1,
        );
        assert!(
            err.contains("invalid parameter alphas: α by exact K-fold CV")
                && err.contains("needs an α > 0 in the grid")
                && err.contains("--select gcv"),
            "{err}"
        );
    }
    assert!(!out.exists());
    // By GCV, α = 0 alone is a valid request.
    let stdout = succeeds(
        gramstream()
            .args([
                "sweep",
                "--alphas",
                "0",
                "--select",
                "gcv",
                "--no-plots",
                "--out",
            ])
            .arg(&out)
            .arg(&f.stats),
    );
    assert!(stdout.contains("α chosen by GCV"), "{stdout}");
    let cfg = config(
        dir.path(),
        "[stats]\nfolds = 3\n[ridge]\nalphas = [0.0]\nselect = \"cv\"\n",
    );
    let err = fails(gramstream().arg("experiment").arg(&cfg), 1);
    assert!(
        err.contains("[ridge] select = \"cv\" needs an α > 0"),
        "{err}"
    );
}

/// `partitions = []` ran and reported "0 training rows" though rows were read.
#[test]
fn config_without_partitions_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "[stats]\npartitions = []\n[gate]\nenabled = false\n",
    );
    let out = dir.path().join("out");
    let err = fails(
        gramstream()
            .args(["experiment", "--out"])
            .arg(&out)
            .arg(&cfg),
        1,
    );
    assert!(
        err.contains("[stats] partitions = []: name at least one of \"teff_mh\", \"snr\""),
        "{err}"
    );
    assert!(!out.exists());
}

// ------------------------ issue 11, item 10: messages that name the cause

/// A Fletcher32 failure read as "H5Dread of rows 10..11 failed"; a damaged
/// root header as a missing `format` attribute.
#[test]
fn damaged_statistics_name_the_checksum() {
    use gramstream::stats::StatsFile;
    let f = fixture();
    // One byte inside the stored chunk of accumulator 1's XᵀX.
    let (_dir, path) = copy_of(&f.stats, "stats.h5");
    let script = r#"
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    info = f["accumulators/xtx"].id.get_chunk_info_by_coord((1, 0))
with open(path, "r+b") as out:
    out.seek(info.byte_offset + 16)
    b = out.read(1)
    out.seek(info.byte_offset + 16)
    out.write(bytes([b[0] ^ 0x40]))
"#;
    if python(script, &[&path]).is_none() {
        return;
    }
    let file = StatsFile::open(&path).unwrap();
    file.accumulator(0).unwrap();
    match file.accumulator(1).unwrap_err() {
        Error::Hdf5 { what, message, .. } => {
            assert_eq!(what, "reading /accumulators/xtx row 1");
            assert_eq!(
                message,
                "H5Dread of rows 1..2 failed: checksum mismatch (Fletcher32): the file is damaged"
            );
        }
        other => panic!("{other:?}"),
    }
    let err = fails(
        gramstream()
            .args(["sweep", "--no-plots", "--out"])
            .arg(path.with_file_name("sw"))
            .arg(&path),
        1,
    );
    assert!(
        err.contains("/accumulators/xtx row 1")
            && err.ends_with("checksum mismatch (Fletcher32): the file is damaged"),
        "{err}"
    );

    // One byte of the root object header (inside the `format` attribute's value).
    let (_dir, path) = copy_of(&f.stats, "stats.h5");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(16)
        .position(|w| w == b"gramstream.stats")
        .unwrap();
    bytes[at + 3] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let err = StatsFile::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("checksum mismatch in the file's metadata: the file is damaged")
            && !err.contains("attribute format"),
        "{err}"
    );
}

/// Output errors said only "creating ro/sw" or the path: the OS's reason
/// now follows.
#[test]
fn output_errors_name_the_reason() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a_file");
    std::fs::write(&file, b"").unwrap();
    sweep_fails_naming(&file.join("sw"), &f.stats, "Not a directory (os error 20)");
}

/// `sweep --out OUT` fails with exactly `error: OUT: REASON`.
fn sweep_fails_naming(out: &Path, stats: &Path, reason: &str) {
    let err = fails(
        gramstream()
            .args(["sweep", "--no-plots", "--out"])
            .arg(out)
            .arg(stats),
        1,
    );
    assert_eq!(err, format!("error: {}: {reason}", out.display()));
}

/// A small tmpfs, mounted when the tests may (root); unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipping: cannot mount a tmpfs (not root?)");
        }
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    fn remount_read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Full disk: `sweep` said only the path, libhdf5 printed "bytes actually
/// written = 18446744073709551615"; a read-only target only "creating ro/sw".
/// Runs where a tmpfs can be mounted (as root).
#[test]
fn full_and_read_only_disks_are_named() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("full");
    std::fs::create_dir(&mnt).unwrap();
    let Some(fs) = Tmpfs::mount(&mnt, "64k") else {
        return;
    };
    let err = fails(
        gramstream()
            .args(["sweep", "--no-plots", "--out"])
            .arg(mnt.join("sw"))
            .arg(&f.stats),
        1,
    );
    assert!(
        err.to_lowercase().contains("no space left on device"),
        "{err}"
    );
    let err = fails(
        gramstream()
            .args(["accumulate", "--out"])
            .arg(mnt.join("s.h5"))
            .args(&f.train),
        1,
    );
    assert!(
        err.ends_with("no space left on device") && !err.contains("18446744073709551615"),
        "{err}"
    );
    fs.remount_read_only();
    sweep_fails_naming(
        &mnt.join("sw2"),
        &f.stats,
        "Read-only file system (os error 30)",
    );
}

// ------------------------------------ issue 11, items 1, 2, 4: outputs

/// The entries of `dir` that are some run's scratch.
fn scratch_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".gramstream-"))
        .collect()
}

/// `accumulate --out X.h5 X.h5` turned the shard into a statistics file;
/// `predict --model M --out M` and `predict --out T T` overwrote the models
/// file or the shard with a CSV. Each is refused before any work, also
/// through a symlink or a hard link, and the input is untouched.
#[test]
fn output_that_is_an_input_is_refused() {
    let f = fixture();
    let (dir, shard) = copy_of(&f.train[0], "shard.h5");
    let models = dir.path().join("models.h5");
    succeeds(
        gramstream()
            .args([
                "sweep",
                "--select",
                "gcv",
                "--cv",
                "none",
                "--no-plots",
                "--out",
            ])
            .arg(dir.path().join("sw"))
            .arg(&f.stats),
    );
    std::fs::copy(dir.path().join("sw/models.h5"), &models).unwrap();
    let link = dir.path().join("link.h5");
    std::os::unix::fs::symlink(&shard, &link).unwrap();
    let hard = dir.path().join("hard.h5");
    std::fs::hard_link(&shard, &hard).unwrap();
    let before = (
        std::fs::read(&shard).unwrap(),
        std::fs::read(&models).unwrap(),
    );
    let m = models.as_os_str();
    let (sh, st) = (shard.as_os_str(), f.stats.as_os_str());
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (
            vec!["accumulate".as_ref(), "--out".as_ref(), sh, sh],
            "shard.h5",
        ),
        (
            vec![
                "accumulate".as_ref(),
                "--out".as_ref(),
                link.as_os_str(),
                sh,
            ],
            "shard.h5",
        ),
        (
            vec![
                "accumulate".as_ref(),
                "--out".as_ref(),
                hard.as_os_str(),
                sh,
            ],
            "shard.h5",
        ),
        (
            vec![
                "predict".as_ref(),
                "--model".as_ref(),
                m,
                "--out".as_ref(),
                m,
                sh,
            ],
            "models.h5",
        ),
        (
            vec![
                "predict".as_ref(),
                "--model".as_ref(),
                m,
                "--out".as_ref(),
                sh,
                sh,
            ],
            "shard.h5",
        ),
        (
            vec!["merge".as_ref(), "--out".as_ref(), st, st],
            "stats3.h5",
        ),
        // A checkpoint over a shard.
        (
            vec![
                "accumulate".as_ref(),
                "--out".as_ref(),
                dir.path().join("s.h5").into_os_string().leak(),
                "--checkpoint".as_ref(),
                sh,
                sh,
            ],
            "shard.h5",
        ),
    ];
    for (args, input) in cases {
        let err = fails(gramstream().args(&args), 1);
        assert!(
            err.contains("is the input") && err.contains(input),
            "{args:?}: {err}"
        );
    }
    // An experiment whose output directory holds its inputs.
    let cfg = config(dir.path(), "");
    let err = fails(
        gramstream()
            .arg("experiment")
            .arg(&cfg)
            .arg("--out")
            .arg(f.train[0].parent().unwrap().parent().unwrap())
            .arg("--force"),
        1,
    );
    assert!(err.contains("holds the input"), "{err}");
    assert_eq!(
        std::fs::read(&shard).unwrap(),
        before.0,
        "the shard is untouched"
    );
    assert_eq!(
        std::fs::read(&models).unwrap(),
        before.1,
        "the models are untouched"
    );
    assert!(f.train[0].exists());
    assert!(scratch_in(dir.path()).is_empty());
}

/// Two `accumulate` runs with the same `--out` shared `OUT.tmp`: one's
/// cleanup deleted the other's file, or the result mixed Gram rows of two
/// seeds. Now each run writes its own scratch; whatever order they finish
/// in, the output is one run's statistics bit for bit, and a run whose
/// destination the other wrote meanwhile says so and keeps its result
/// beside it.
#[test]
fn concurrent_runs_do_not_mix() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.h5");
    // References, one per seed, each alone.
    let reference = |seed: &str| {
        let p = dir.path().join(format!("ref{seed}.h5"));
        succeeds(
            gramstream()
                .args(["accumulate", "--seed", seed, "--out"])
                .arg(&p)
                .args(&f.train),
        );
        std::fs::read(&p).unwrap()
    };
    let (r1, r2) = (reference("1"), reference("2"));
    let h5_equal = |a: &[u8], b: &Path| {
        // Same bytes apart from the fixed-length shard-path strings' padding
        // is not guaranteed: compare the accumulators through the library.
        let pa = dir.path().join("cmp.h5");
        std::fs::write(&pa, a).unwrap();
        let (x, y) = (
            gramstream::stats::StatsFile::open(&pa).unwrap(),
            gramstream::stats::StatsFile::open(b).unwrap(),
        );
        x.header().noise == y.header().noise
            && (0..x.header().accumulators())
                .all(|i| x.accumulator(i).unwrap() == y.accumulator(i).unwrap())
    };
    for trial in 0..3 {
        let _ = std::fs::remove_file(&out);
        let spawn = |seed: &str| {
            gramstream()
                .args(["accumulate", "--seed", seed, "--out"])
                .arg(&out)
                .args(&f.train)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let a = spawn("1");
        std::thread::sleep(std::time::Duration::from_millis(30 * trial));
        let b = spawn("2");
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let seed_of_out = if h5_equal(&r1, &out) {
            1
        } else {
            assert!(
                h5_equal(&r2, &out),
                "trial {trial}: the output is neither run's statistics"
            );
            2
        };
        for (run, seed) in [(&a, 1), (&b, 2)] {
            if !run.status.success() {
                let err = String::from_utf8_lossy(&run.stderr);
                assert!(err.contains("written by another run"), "{err}");
                assert_ne!(seed, seed_of_out);
                let beside: Vec<_> = std::fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.to_string_lossy().contains("out.h5."))
                    .collect();
                assert_eq!(beside.len(), 1, "{beside:?}");
                assert!(h5_equal(if seed == 1 { &r1 } else { &r2 }, &beside[0]));
                std::fs::remove_file(&beside[0]).unwrap();
            }
        }
        assert!(
            scratch_in(dir.path()).is_empty(),
            "trial {trial}: {:?}",
            scratch_in(dir.path())
        );
    }
}

/// SIGTERM/SIGINT during `experiment` left `.NAME.partial-PID/` (up to the
/// run's statistics) in 8 of 8 tries; `accumulate` killed while writing
/// left `OUT.tmp`. Now a signal removes the run's scratch (exit 128 + the
/// signal), and scratch left by `kill -9` is removed by the next run.
#[test]
fn killed_runs_clean_up() {
    let dir = tempfile::tempdir().unwrap();
    // Many seeds: the run is still going when the signal comes.
    let seeds: Vec<String> = (1..=400).map(|s| s.to_string()).collect();
    let seeds = format!("seeds = [{}]", seeds.join(", "));
    let cfg = config(
        dir.path(),
        &format!("[noise]\n{seeds}\n[gate]\nenabled = false\n[stats]\nfolds = 2\n"),
    );
    let out = dir.path().join("results");
    for (signal, code) in [
        (libc::SIGTERM, 143),
        (libc::SIGINT, 130),
        (libc::SIGKILL, -1),
    ] {
        let mut child = gramstream()
            .arg("experiment")
            .arg(&cfg)
            .arg("--out")
            .arg(&out)
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the run has scratch to clean up.
        let start = std::time::Instant::now();
        while scratch_in(dir.path()).is_empty() && start.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        // SAFETY: a plain kill(2) of our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        if signal == libc::SIGKILL {
            assert!(!scratch_in(dir.path()).is_empty(), "kill -9 leaves scratch");
            // The next run writing there removes it, and finishes.
            let mut short = std::fs::read_to_string(&cfg).unwrap();
            short = short.replace(&seeds, "seeds = [1]");
            std::fs::write(&cfg, short).unwrap();
            succeeds(
                gramstream()
                    .arg("experiment")
                    .arg(&cfg)
                    .arg("--out")
                    .arg(&out),
            );
            assert!(out.join("results.json").exists());
        } else {
            assert_eq!(status.code(), Some(code), "signal {signal}");
            assert!(!out.exists(), "no output that looks complete");
        }
        assert!(
            scratch_in(dir.path()).is_empty(),
            "signal {signal}: {:?}",
            scratch_in(dir.path())
        );
    }
}

/// Item 11: the two damaged files that crash Debian's libhdf5 1.10.8 inside
/// the C library (`fuzz/known_issues/libhdf5/`) are refused with exit 1, and
/// one line, by a build that links the bundled HDF5 2.2.0. Compiled only with
/// `--features hdf5-static` (README, Known issues): the default build links
/// the system libhdf5, which still dies on them.
#[cfg(feature = "hdf5-static")]
#[test]
fn libhdf5_crashers_are_refused_with_the_bundled_hdf5() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/known_issues/libhdf5");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    for path in &files {
        for command in ["inspect", "scan"] {
            let out = gramstream().arg(command).arg(path).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{command} {}: {err}",
                path.display()
            );
            assert_eq!(err.trim_end().lines().count(), 1, "{command}: {err}");
        }
    }
}
