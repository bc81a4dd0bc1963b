//! Replays the committed fuzz corpora and regression inputs through the same
//! checks as the libFuzzer targets (`fuzz/checks/mod.rs`), without libFuzzer:
//! a plain `cargo test --test it fuzz_regressions::`.
//!
//! For each target, every file of `fuzz/corpus/<target>/` (seeds and a
//! minimised corpus) and `fuzz/regressions/<target>/` (inputs that once found
//! a bug, named after it) is checked. A missing or empty corpus directory
//! fails the test, so a corpus cannot silently disappear.

#[path = "../fuzz/checks/mod.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = files(&root.join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is missing or empty"
    );
    let regressions = files(&root.join("regressions").join(target));
    for file in corpus.iter().chain(&regressions) {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let result = std::panic::catch_unwind(|| check(&data));
        if let Err(panic) = result {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            panic!("{target}: {} fails: {msg}", file.display());
        }
    }
    eprintln!(
        "{target}: {} corpus and {} regression inputs pass",
        corpus.len(),
        regressions.len()
    );
}

#[test]
fn plan_memory() {
    replay("plan_memory", checks::check_plan_memory);
}

#[test]
fn zero_copy() {
    replay("zero_copy", checks::check_zero_copy);
}

#[test]
fn pickle_names() {
    replay("pickle_names", checks::check_pickle_names);
}

#[test]
fn open_results() {
    replay("open_results", checks::check_open_results);
}

#[test]
fn open_shard() {
    replay("open_shard", checks::check_open_shard);
}

/// The encoders the round trip relies on write what Python writes (bytes
/// taken from CPython 3 `pickle.dumps`), so the round trip tests the decoder
/// against real pickles, not against a mirror of itself.
#[test]
fn pickle_encoders_match_python() {
    let names: Vec<String> = ["T_eff", "M_H", "log_g"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        checks::pickle_protocol0(&names),
        b"(lp0\nVT_eff\np1\naVM_H\np2\naVlog_g\np3\na."
    );
    let two: Vec<String> = ["T_eff", "M_H"].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        checks::pickle_binary(&two, 4, false),
        b"\x80\x04\x95\x13\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x05T_eff\x94\x8c\x03M_H\x94e."
    );
    assert_eq!(
        checks::pickle_binary(&["ab".to_string()], 2, true),
        b"\x80\x02X\x02\x00\x00\x00abq\x00\x85q\x01."
    );
}

/// The HDF5 seeds (`fuzz/seeds/make_shards.py`) are valid shards that both
/// read paths read in full, so fuzzing starts from the reader's happy paths.
#[test]
fn open_shard_seeds_are_valid_shards() {
    use gramstream::source::{Chunk, ChunkSource, ReadOptions, ReadPath, Shard};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/open_shard");
    let seeds: Vec<PathBuf> = files(&dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed_")
        })
        .collect();
    assert!(
        seeds.len() >= 4,
        "expected the seed_*.h5 files in {}",
        dir.display()
    );
    for seed in seeds {
        let shard = Shard::open(&seed, &gramstream::Layout::default())
            .unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
        for path in [ReadPath::Auto, ReadPath::Hdf5] {
            let columns = ["T_eff", "M_H", "log_g"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let options = ReadOptions {
                columns,
                path,
                ..Default::default()
            };
            let mut reader = shard
                .reader(0, &options)
                .unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
            let mut chunk = Chunk::default();
            reader
                .read_chunk(0..shard.rows(), &mut chunk)
                .unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
            assert!(
                chunk.params.iter().all(|v| v.is_finite()) && chunk.flux.iter().all(|v| *v > 0.0)
            );
            eprintln!(
                "{}: {path:?} zero_copy={}",
                seed.display(),
                reader.zero_copy()
            );
        }
        checks::check_open_shard_file(&seed, true);
    }
}

/// Inputs that show a known, not yet fixed bug in src/ (FUZZING.md, "Known
/// issues"): `fuzz/known_issues/<target>/`. Each fails today; once the bug is
/// fixed, move the file to `fuzz/regressions/<target>/` and this stays empty.
/// `cargo test --test it fuzz_regressions:: -- --ignored` replays them.
#[test]
#[ignore = "known, unfixed bugs in src/ (FUZZING.md)"]
fn known_issues() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/known_issues");
    let mut failures = Vec::new();
    for (target, check) in [
        ("open_shard", checks::check_open_shard_strict as fn(&[u8])),
        ("pickle_names", checks::check_pickle_names_bounded),
    ] {
        for file in files(&root.join(target)) {
            let data = std::fs::read(&file).unwrap();
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "still failing: {failures:#?}");
}
