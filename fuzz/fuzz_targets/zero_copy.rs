//! Fuzz target `zero_copy`: see `check_zero_copy` in `fuzz/checks/mod.rs` (shared with
//! `tests/fuzz_regressions.rs`) and FUZZING.md.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_zero_copy(data));
