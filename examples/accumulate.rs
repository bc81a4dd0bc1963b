//! One pass from Rust: generate two small shards, accumulate per-bin
//! statistics with noise and 3 folds, write the statistics file, and print
//! the global model's row count and the rows per T_eff × [M/H] bin.
//!
//!     cargo run --release --example accumulate [OUT_DIR]

use std::path::PathBuf;

use gramstream::noise::NoiseModel;
use gramstream::partition::PartitionSet;
use gramstream::stats::pass::{accumulate, AccumulateOptions};
use gramstream::synth::{write_shard, ShardSpec};

fn main() -> gramstream::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "example-out".into()),
    );
    std::fs::create_dir_all(&dir).map_err(|e| gramstream::Error::Io {
        path: dir.clone(),
        source: e,
    })?;
    let shards: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("train_{i}.h5"))).collect();
    for (i, path) in shards.iter().enumerate() {
        write_shard(path, &ShardSpec::new(2000, 512, 42, i as u64), &|_| {})?;
    }
    let opts = AccumulateOptions {
        partitions: PartitionSet::new(PartitionSet::default().partitions, 3)?,
        noise: NoiseModel::new(1.0, 42)?,
        gate_sample: 500,
        mem_budget: Some(2 << 30),
        ..Default::default()
    };
    let output = accumulate(&shards, &opts, None, &|_| {})?;
    let header = output.header.clone();
    let summary = output.write(&dir.join("stats.h5"), gramstream::Threads::All)?;
    println!("{summary}");
    let set = &header.partitions;
    let teff_mh = &set.partitions[0];
    println!("rows: {} (global model)", header.rows);
    let file = gramstream::stats::file::StatsFile::open(&dir.join("stats.h5"))?;
    let mut per_bin = vec![0u64; teff_mh.slots()];
    for c in 0..header.accumulators() {
        let (slots, _fold) = set.cell_parts(c);
        per_bin[slots[0]] += file.accumulator(c)?.n;
    }
    for (b, n) in per_bin.iter().enumerate() {
        let name = teff_mh.bin_names.get(b).map_or("unbinned", String::as_str);
        println!("  {name:<12} {n:>6} rows");
    }
    Ok(())
}
