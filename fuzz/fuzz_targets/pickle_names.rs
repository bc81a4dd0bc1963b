//! Fuzz target `pickle_names`: see `check_pickle_names` in `fuzz/checks/mod.rs` (shared with
//! `tests/fuzz_regressions.rs`) and FUZZING.md.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_pickle_names(data));
