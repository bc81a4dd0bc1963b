//! Fuzz target `open_shard`: see `check_open_shard` in `fuzz/checks/mod.rs` (shared with
//! `tests/fuzz_regressions.rs`) and FUZZING.md.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_open_shard(data));
