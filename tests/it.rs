//! The integration tests, one binary: CI compiles and links one test
//! executable instead of one per file (each ~175 MB with debug info).
//! Run one file's tests with `cargo test --test it NAME::`, e.g.
//! `cargo test --test it nist:: -- --nocapture`.
//!
//! The shared helpers (`tests/common/`) are compiled once, here; each file
//! says `use crate::common;`.

#[macro_use]
#[path = "common/mod.rs"]
mod common;

#[path = "bad_input.rs"]
mod bad_input;
#[path = "experiment.rs"]
mod experiment;
#[path = "experts.rs"]
mod experts;
#[path = "fuzz_regressions.rs"]
mod fuzz_regressions;
#[path = "gate_sklearn.rs"]
mod gate_sklearn;
#[cfg(feature = "lightgbm")]
#[path = "lightgbm_interop.rs"]
mod lightgbm_interop;
#[cfg(feature = "mpi")]
#[path = "mpi.rs"]
mod mpi;
#[path = "nist.rs"]
mod nist;
#[path = "numpy_stats.rs"]
mod numpy_stats;
#[path = "pass.rs"]
mod pass;
#[path = "precision.rs"]
mod precision;
#[path = "predict.rs"]
mod predict;
#[path = "reader.rs"]
mod reader;
#[path = "resume.rs"]
mod resume;
#[path = "sklearn_agreement.rs"]
mod sklearn_agreement;
#[path = "stats_file.rs"]
mod stats_file;
#[path = "sweep.rs"]
mod sweep;

/// The test process opens HDF5 files without flock (`.cargo/config.toml`):
/// spawned `gramstream` children inherit libhdf5's descriptors, and a lock
/// they hold made this process's next open fail ("unable to lock file").
#[test]
fn hdf5_file_locking_is_off_in_the_test_process() {
    assert_eq!(
        std::env::var("HDF5_USE_FILE_LOCKING").as_deref(),
        Ok("FALSE"),
        "run the tests through cargo (it reads .cargo/config.toml)"
    );
}
