//! Fuzz target `open_results`: see `check_open_results` in `fuzz/checks/mod.rs` (shared
//! with `tests/fuzz_regressions.rs`) and FUZZING.md.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_open_results(data));
