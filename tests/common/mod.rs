//! Shared helpers of the integration tests.
//!
//! * [`interop`] runs `tests/interop/make_files.py` once per test binary,
//!   with a Python that has h5py, pandas and tables, and loads the manifest it
//!   writes (`expected.json`, raw little-endian f64 expected values). Without
//!   such a Python the interop tests print `skipping interop: …` — unless the
//!   environment variable `CI` is set, where they fail: CI must run them.
//! * [`read_all`] / [`read_prefetched`] read every row of sources in chunks.
//! * [`write_shard`] writes a pfsspec-layout shard with the `hdf5` crate, for
//!   tests that need no foreign writer (noise invariance).
#![allow(dead_code)]

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{OnceLock, RwLock};

use gramstream::source::{plan, Chunk, ChunkSource, Prefetcher};

/// The files written by `make_files.py` and its manifest.
pub struct Interop {
    /// Directory holding the files.
    pub dir: PathBuf,
    /// `expected.json`.
    pub manifest: serde_json::Value,
}

impl Interop {
    /// Path of a file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Rows of every file.
    pub fn rows(&self) -> usize {
        self.manifest["rows"].as_u64().expect("manifest rows") as usize
    }

    /// Pixels of every file.
    pub fn pixels(&self) -> usize {
        self.manifest["pixels"].as_u64().expect("manifest pixels") as usize
    }

    /// The good files' entries.
    pub fn good(&self) -> &[serde_json::Value] {
        self.manifest["good"].as_array().expect("manifest good")
    }

    /// The good file called `name`.
    pub fn good_file(&self, name: &str) -> &serde_json::Value {
        self.good()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no good file {name}"))
    }

    /// The bad file called `name`: its entry.
    pub fn bad(&self, name: &str) -> &serde_json::Value {
        let e = &self.manifest["bad"][name];
        assert!(e.is_object(), "manifest has no bad file {name}");
        e
    }

    /// The path of the bad file called `name`.
    pub fn bad_path(&self, name: &str) -> PathBuf {
        self.path(self.bad(name)["file"].as_str().expect("file"))
    }

    /// Reads a raw little-endian f64 file written by the script.
    pub fn values(&self, name: &str) -> Vec<f64> {
        read_f64(&self.path(name))
    }
}

/// Reads a raw little-endian f64 file.
pub fn read_f64(path: &Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        bytes.len() % 8,
        0,
        "{}: not whole f64 values",
        path.display()
    );
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

pub fn find_python() -> Result<PathBuf, String> {
    let mut tried = Vec::new();
    let candidates: Vec<PathBuf> = match std::env::var_os("GRAMSTREAM_PYTHON") {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![
            PathBuf::from("/root/.cache/gs-venv/bin/python"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
        ],
    };
    for python in candidates {
        let out = Command::new(&python)
            .args(["-c", "import h5py, pandas, tables, numpy"])
            .output();
        match out {
            Ok(o) if o.status.success() => return Ok(python),
            Ok(o) => tried.push(format!(
                "{}: {}",
                python.display(),
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("import failed")
            )),
            Err(e) => tried.push(format!("{}: {e}", python.display())),
        }
    }
    Err(format!(
        "no Python with h5py, pandas and tables (set GRAMSTREAM_PYTHON); tried {}",
        tried.join("; ")
    ))
}

/// Held for writing while Python runs, for reading while Rust writes an HDF5
/// file. libhdf5 opens files without `O_CLOEXEC`, so a child process started
/// while a file is open for writing inherits its descriptor and with it the
/// exclusive file lock, for the child's whole life: reopening the file then
/// fails with "unable to lock file" (EWOULDBLOCK).
static SPAWN_VS_WRITE: RwLock<()> = RwLock::new(());

fn generate() -> Result<Interop, String> {
    // Every child process (the import check too) starts under this lock.
    let _exclusive = SPAWN_VS_WRITE.write().unwrap_or_else(|e| e.into_inner());
    let python = find_python()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/make_files.py");
    // Under target/tmp, and kept after the process (statics are never
    // dropped): a failing test's files can be inspected there. Sets older
    // than an hour are removed here.
    remove_stale_sets(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let dir = tempfile::Builder::new()
        .prefix("interop-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .map_err(|e| format!("tempdir: {e}"))?
        .keep();
    let out = Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .output()
        .map_err(|e| format!("running {}: {e}", python.display()))?;
    if !out.status.success() {
        // The Python exists and has the modules: a failing script is a test
        // failure, not a reason to skip.
        panic!(
            "{} {} failed:\n{}{}",
            python.display(),
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(dir.join("expected.json"))
        .map_err(|e| format!("expected.json: {e}"))?;
    let manifest = serde_json::from_str(&text).map_err(|e| format!("expected.json: {e}"))?;
    Ok(Interop { dir, manifest })
}

fn remove_stale_sets(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if stale && entry.file_name().to_string_lossy().starts_with("interop-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The interop files, generated once per test binary; `None` (after a
/// `skipping interop: …` line) when Python is not available outside CI.
pub fn interop() -> Option<&'static Interop> {
    static FILES: OnceLock<Result<Interop, String>> = OnceLock::new();
    match FILES.get_or_init(generate) {
        Ok(files) => Some(files),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("interop tests must run in CI, but: {why}")
        }
        Err(why) => {
            eprintln!("skipping interop: {why}");
            None
        }
    }
}

/// `let files = require_interop!();` — the interop files, or return early.
#[macro_export]
macro_rules! require_interop {
    () => {
        match common::interop() {
            Some(files) => files,
            None => return,
        }
    };
}

/// Every row of a source, gathered from chunks.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rows {
    /// Shard index of each row.
    pub shard: Vec<u64>,
    /// Row index of each row.
    pub row: Vec<usize>,
    /// Flux, row-major.
    pub flux: Vec<f64>,
    /// Error, row-major (empty if not read).
    pub error: Vec<f64>,
    /// Params, row-major.
    pub params: Vec<f64>,
    /// Skip marks.
    pub skip: Vec<bool>,
}

impl Rows {
    /// Appends a chunk, checking its header.
    pub fn push(&mut self, chunk: &Chunk) {
        assert_eq!(
            chunk.flux.len(),
            chunk.rows * chunk.pixels,
            "flux buffer of a chunk"
        );
        assert_eq!(
            chunk.params.len(),
            chunk.rows * chunk.ncols,
            "params buffer of a chunk"
        );
        assert_eq!(chunk.skip.len(), chunk.rows, "skip marks of a chunk");
        assert!(chunk.error.is_empty() || chunk.error.len() == chunk.flux.len());
        for r in 0..chunk.rows {
            self.shard.push(chunk.shard);
            self.row.push(chunk.start + r);
        }
        self.flux.extend_from_slice(&chunk.flux);
        self.error.extend_from_slice(&chunk.error);
        self.params.extend_from_slice(&chunk.params);
        self.skip.extend_from_slice(&chunk.skip);
    }
}

/// Reads `rows` of `source` in chunks of `chunk_rows`, with `each` applied
/// to every chunk before it is gathered (e.g. noise).
pub fn read_range_with(
    source: &mut dyn ChunkSource,
    rows: Range<usize>,
    chunk_rows: usize,
    mut each: impl FnMut(&mut Chunk),
) -> gramstream::Result<Rows> {
    let mut out = Rows::default();
    let mut chunk = Chunk::default();
    for task in plan(&[rows.end - rows.start], chunk_rows)? {
        source.read_chunk(
            rows.start + task.rows.start..rows.start + task.rows.end,
            &mut chunk,
        )?;
        each(&mut chunk);
        out.push(&chunk);
    }
    Ok(out)
}

/// Reads every row of `source` in chunks of `chunk_rows`.
pub fn read_all(source: &mut dyn ChunkSource, chunk_rows: usize) -> gramstream::Result<Rows> {
    let n = source.rows();
    read_range_with(source, 0..n, chunk_rows, |_| {})
}

/// Reads every row of `sources` through a [`Prefetcher`], `each` applied to
/// every chunk; chunks are recycled.
pub fn read_prefetched<S: ChunkSource + 'static>(
    sources: Vec<S>,
    chunk_rows: usize,
    depth: usize,
    mut each: impl FnMut(&mut Chunk),
) -> gramstream::Result<Rows> {
    let mut out = Rows::default();
    let mut pre = Prefetcher::spawn(sources, chunk_rows, depth)?;
    while let Some(chunk) = pre.next() {
        let mut chunk = chunk?;
        each(&mut chunk);
        out.push(&chunk);
        pre.recycle(chunk);
    }
    Ok(out)
}

/// Asserts two f64 slices are bitwise equal, naming the first difference.
pub fn assert_bits_eq(got: &[f64], want: &[f64], pixels: usize, what: &str) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} values, expected {}",
        got.len(),
        want.len()
    );
    if let Some(i) = got
        .iter()
        .zip(want)
        .position(|(a, b)| a.to_bits() != b.to_bits())
    {
        panic!(
            "{what}: differs at row {}, column {}: got {:e}, expected {:e}",
            i / pixels.max(1),
            i % pixels.max(1),
            got[i],
            want[i]
        );
    }
}

/// The params record the [`write_shard`] files use.
#[derive(hdf5::H5Type, Clone, Copy, Debug)]
#[repr(C)]
#[allow(non_snake_case)]
pub struct ParamsRecord {
    /// Effective temperature.
    pub T_eff: f64,
    /// Metallicity.
    pub M_H: f64,
    /// Surface gravity.
    pub log_g: f64,
    /// An integer id.
    pub id: i64,
}

/// Deterministic synthetic values for [`write_shard`]: flux, error, params.
pub fn synthetic(rows: usize, pixels: usize, salt: u64) -> (Vec<f64>, Vec<f64>, Vec<ParamsRecord>) {
    // A small LCG: the tests must not depend on the crate's own generators.
    let mut state = salt
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let flux: Vec<f64> = (0..rows * pixels).map(|_| 0.2 + 1.5 * next()).collect();
    let error: Vec<f64> = (0..rows * pixels).map(|_| 0.01 + 0.3 * next()).collect();
    let params = (0..rows)
        .map(|i| ParamsRecord {
            T_eff: 3500.0 + 3000.0 * next(),
            M_H: -2.5 + 3.0 * next(),
            log_g: 5.0 * next(),
            id: i as i64,
        })
        .collect();
    (flux, error, params)
}

/// Writes a pfsspec-layout shard with the `hdf5` crate: flux and error f64,
/// contiguous or chunked `chunk_rows × pixels`.
pub fn write_shard(
    path: &Path,
    pixels: usize,
    flux: &[f64],
    error: &[f64],
    params: &[ParamsRecord],
    chunk_rows: Option<usize>,
) {
    let _no_spawn = SPAWN_VS_WRITE.read().unwrap_or_else(|e| e.into_inner());
    let rows = params.len();
    assert_eq!(flux.len(), rows * pixels);
    let file = hdf5::File::create(path).expect("create shard");
    for (name, data) in [
        ("/dataset/arrays/flux/value", flux),
        ("/dataset/arrays/error/value", error),
    ] {
        let mut builder = file.new_dataset::<f64>().shape([rows, pixels]);
        if let Some(c) = chunk_rows {
            builder = file
                .new_dataset::<f64>()
                .chunk([c, pixels])
                .shape([rows, pixels]);
        }
        let ds = builder.create(name).expect("create array");
        ds.write_raw(data).expect("write array");
    }
    let table = file
        .new_dataset::<ParamsRecord>()
        .shape([rows])
        .create("/dataset/params/table")
        .expect("params");
    table.write_raw(params).expect("write params");
    let wave: Vec<f64> = (0..pixels).map(|i| 4000.0 + i as f64).collect();
    let w = file
        .new_dataset::<f64>()
        .shape([pixels])
        .create("/spectrumdataset/wave")
        .expect("wave");
    w.write_raw(&wave).expect("write wave");
}

/// A Python with numpy, h5py and scikit-learn for the agreement tests, or
/// None (the test then skips, saying so) — except under `CI`, where a missing
/// one fails: CI must run them.
pub fn python_with_sklearn() -> Option<PathBuf> {
    let found = find_python().ok().filter(|py| {
        Command::new(py)
            .args(["-c", "import sklearn"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the scikit-learn agreement tests: no Python with numpy, h5py and scikit-learn (set GRAMSTREAM_PYTHON)"
        );
        eprintln!("skipping: no Python with numpy, h5py and scikit-learn");
    }
    found
}

/// A Python with numpy, h5py and `lightgbm` for the LightGBM interop test,
/// or None (the test then skips, saying so) — except under `CI`, where a
/// missing one fails.
pub fn python_with_lightgbm() -> Option<PathBuf> {
    let found = find_python().ok().filter(|py| {
        Command::new(py)
            .args(["-c", "import lightgbm"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the LightGBM interop test: no Python with numpy, h5py and lightgbm (set GRAMSTREAM_PYTHON)"
        );
        eprintln!("skipping: no Python with numpy, h5py and lightgbm");
    }
    found
}

/// Every number in a statistics file, as bits.
pub fn stats_bits(path: &Path) -> Vec<u64> {
    let f = gramstream::stats::file::StatsFile::open(path).unwrap();
    let h = f.header();
    let mut bits = vec![h.rows, h.skipped, h.shift_y.to_bits()];
    bits.extend(h.shift_x.iter().map(|v| v.to_bits()));
    for a in 0..h.accumulators() {
        let s = f.accumulator(a).unwrap();
        bits.extend([s.n, s.sum_y.to_bits(), s.sum_yy.to_bits()]);
        bits.extend(
            s.sum_x
                .iter()
                .chain(&s.xty)
                .chain(&s.xtx)
                .map(|v| v.to_bits()),
        );
    }
    let r = f.reservoir().unwrap();
    bits.extend(r.keys.iter().copied());
    bits.extend(r.x.iter().map(|v| v.to_bits()));
    bits
}
