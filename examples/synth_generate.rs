//! Generates a synthetic data set with the library's generator and prints
//! the summary: `cargo run --release --example synth_generate -- DIR
//! [TRAIN_SHARDS ROWS TEST_ROWS PIXELS SEED]`.

use std::sync::atomic::{AtomicU64, Ordering};

use gramstream::synth::{generate, GenerateConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| -> Result<u64, std::num::ParseIntError> {
        args.get(i).map_or(Ok(default), |s| s.parse())
    };
    let cfg = GenerateConfig {
        out: args.first().map_or_else(|| "synthetic".into(), Into::into),
        train_shards: arg(1, 2)? as usize,
        rows_per_shard: arg(2, 10_000)? as usize,
        test_rows: arg(3, 2_000)? as usize,
        pixels: arg(4, 4096)? as usize,
        seed: arg(5, 42)?,
        ..GenerateConfig::default()
    };
    let done = AtomicU64::new(0);
    let s = generate(&cfg, &|n| {
        done.fetch_add(n, Ordering::Relaxed);
    })?;
    println!(
        "{} files, {} rows, {:.2} GB in {:.1} s: {:.0} rows/s, {:.2} GB/s",
        s.files.len(),
        s.rows,
        s.bytes as f64 / 1e9,
        s.seconds,
        s.rows as f64 / s.seconds,
        s.bytes as f64 / 1e9 / s.seconds
    );
    Ok(())
}
