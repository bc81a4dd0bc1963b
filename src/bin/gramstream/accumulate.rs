//! `gramstream accumulate`: the one pass (see `gramstream::stats::pass`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use gramstream::partition::{Partition, PartitionSet};
use gramstream::source::{NonFinitePolicy, ReadPath};
use gramstream::stats::pass::{accumulate_to_file, AccumulateOptions, CheckpointOptions};
use gramstream::stats::Mode;

/// Arguments of `accumulate` (DESIGN §7).
#[derive(clap::Args)]
pub struct AccumulateArgs {
    /// Shard files; the shard index (noise and fold streams) is the position in this list.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Statistics file to write (HDF5).
    #[arg(long)]
    pub out: PathBuf,
    /// Noise level L (0 = use the flux as is; at most 1e6).
    #[arg(long, default_value_t = 1.0, value_parser = crate::parse_noise_level, allow_negative_numbers = true)]
    pub noise: f64,
    /// Seed of noise, folds and the gate sample.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Partitions (repeatable): teff-mh, snr. Default: both.
    #[arg(long = "partition", value_name = "NAME")]
    pub partitions: Vec<String>,
    /// Folds for exact K-fold cross-validation (1 = none).
    #[arg(long, default_value_t = 1)]
    pub folds: usize,
    /// Threads (0 = all cores). The results do not depend on it, bit for bit.
    #[arg(long, default_value = "0", value_parser = crate::parse_threads)]
    pub threads: gramstream::Threads,
    /// Rows per chunk read (≥ 1).
    #[arg(long, value_parser = crate::parse_rows)]
    pub chunk_rows: Option<usize>,
    /// Rows staged per accumulator before a Gram update (≥ 1; default: from the budget).
    #[arg(long, value_parser = crate::parse_rows)]
    pub block_rows: Option<usize>,
    /// Peak-memory budget, e.g. 6GiB, 800MiB (default: 80 % of available memory).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub mem_budget: Option<u64>,
    /// Accumulator keying: auto (cells when they fit), cells, per-bin.
    #[arg(long, default_value = "auto")]
    pub mode: String,
    /// Checkpoint file, rewritten atomically every --checkpoint-every seconds.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Seconds between checkpoints (0 = after every chunk); never sooner than
    /// 9× the last checkpoint's write time, so they cost ≤ 10 % of the pass.
    #[arg(long, default_value_t = 60.0, value_parser = crate::parse_seconds, allow_negative_numbers = true)]
    pub checkpoint_every: f64,
    /// Continue from the checkpoint if it exists.
    #[arg(long, requires = "checkpoint")]
    pub resume: bool,
    /// Rows kept (reservoir sample) for training the gate.
    #[arg(long, default_value_t = 0)]
    pub gate_sample: usize,
    /// Skip rows with non-finite values instead of failing.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Always use libhdf5 hyperslabs (no memory map).
    #[arg(long)]
    pub hdf5_path: bool,
    /// Shard index of the first shard given (the rest follow). When a run is
    /// split over nodes, give each part the index its first shard has in the
    /// whole list: noise, folds and the gate sample are keyed on it, so
    /// `merge` of the parts reproduces the single run.
    #[arg(long, default_value_t = 0)]
    pub first_shard_index: u64,
    /// Sum in fixed ranges of at most this many rows per shard, each range
    /// from zero, added in order: the statistics an MPI run gives, bit for
    /// bit, for any number of ranks (`mpiexec -n N gramstream accumulate`
    /// uses 65536 unless given). Costs a second, packed set of sums in memory.
    #[arg(long, value_parser = crate::parse_rows)]
    pub range_rows: Option<usize>,
    /// How each block of rows' Gram product is formed: `f64` (default), or
    /// `mixed` — products in f32 (ssyrk/sgemm: the per-bin pass 1.47× faster here)
    /// added into f64 sums. Measured effect on R² in the README
    /// ("Mixed precision"); the file records it, and merge and resume keep
    /// it honest.
    #[arg(long, default_value = "f64", value_parser = parse_precision)]
    pub precision: gramstream::stats::Precision,
    #[command(flatten)]
    pub layout: crate::LayoutArgs,
}

fn parse_precision(s: &str) -> Result<gramstream::stats::Precision, String> {
    s.parse()
}

/// Parses `6GiB`, `6G`, `800MiB`, `800M`, `1.5GB`, or bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    gramstream::experiment::config::parse_size(s)
}

pub fn options(args: &AccumulateArgs) -> Result<AccumulateOptions> {
    let names = if args.partitions.is_empty() {
        vec!["teff-mh".to_string(), "snr".to_string()]
    } else {
        args.partitions.clone()
    };
    let partitions = names
        .iter()
        .map(|n| Partition::by_name(n))
        .collect::<gramstream::Result<Vec<_>>>()?;
    let mode = match args.mode.as_str() {
        "auto" => None,
        "cells" => Some(Mode::Cells),
        "per-bin" | "per_bin" => Some(Mode::PerBin),
        other => bail!("unknown --mode {other:?}: use auto, cells or per-bin"),
    };
    Ok(AccumulateOptions {
        layout: args.layout.layout()?,
        partitions: PartitionSet::new(partitions, args.folds)?,
        noise: gramstream::noise::NoiseModel::new(args.noise, args.seed)?,
        threads: args.threads,
        chunk_rows: args.chunk_rows,
        block_rows: args.block_rows,
        mem_budget: args.mem_budget,
        mode,
        gate_sample: args.gate_sample,
        non_finite: if args.skip_bad_rows {
            NonFinitePolicy::SkipRow
        } else {
            NonFinitePolicy::Error
        },
        read_path: if args.hdf5_path {
            ReadPath::Hdf5
        } else {
            ReadPath::Auto
        },
        first_shard_index: args.first_shard_index,
        // The CLI stops on SIGINT/SIGTERM through `output`'s handlers.
        cancel: Default::default(),
        range_rows: args.range_rows,
        precision: args.precision,
        experts: None,
    })
}

pub fn run(args: &AccumulateArgs, launch: &crate::launch::Launch) -> Result<String> {
    #[cfg_attr(not(feature = "mpi"), allow(unused_mut))]
    let mut opts = options(args)?;
    let checkpoint = args.checkpoint.as_ref().map(|path| CheckpointOptions {
        path: path.clone(),
        every: Duration::from_secs_f64(args.checkpoint_every),
        resume: args.resume,
    });
    // The bar's total and its throughput figures.
    let (mut total, mut pixels) = (0u64, 0u64);
    for p in &args.shards {
        let shard = gramstream::source::Shard::open(p, &opts.layout)?;
        total += shard.rows() as u64;
        pixels = shard.pixels() as u64;
    }
    let updates = match opts.mode {
        Some(Mode::PerBin) => opts.partitions.partitions.len() as f64,
        _ => 1.0,
    };
    let bar = if launch.reports() {
        crate::progress::rows_bar(total, "accumulate")
    } else {
        crate::progress::hidden_bar()
    };
    let start = std::time::Instant::now();
    let show = |n: u64| {
        bar.inc(n);
        let (rows, s) = (
            bar.position() as f64,
            start.elapsed().as_secs_f64().max(1e-9),
        );
        bar.set_message(if bar.position() >= total {
            "writing statistics".to_string()
        } else {
            format!(
                "{:.2} GB/s  {:.0} GFLOP/s",
                rows * pixels as f64 * 16.0 / s / 1e9,
                rows * (pixels * pixels) as f64 * updates / s / 1e9
            )
        });
    };
    #[cfg(feature = "mpi")]
    if let Some(world) = launch.ranks() {
        use gramstream::stats::ranges;
        opts.range_rows = Some(args.range_rows.unwrap_or(ranges::DEFAULT_RANGE_ROWS));
        let ranks: &dyn gramstream::stats::ranks::Ranks = world;
        gramstream::stats::ranks::share_node(&mut opts, ranks);
        let summary = launch.settle(ranges::accumulate_ranged_to_file(
            &args.out,
            &args.shards,
            &opts,
            checkpoint.as_ref(),
            ranks,
            &show,
        ))?;
        bar.finish_and_clear();
        return Ok(summary.map_or(String::new(), |s| {
            format!("{s}\nwrote {}\n", args.out.display())
        }));
    }
    let summary = accumulate_to_file(&args.out, &args.shards, &opts, checkpoint.as_ref(), &show)?;
    bar.finish_and_clear();
    Ok(format!("{summary}\nwrote {}\n", args.out.display()))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("6GiB").unwrap(), 6 << 30);
        assert_eq!(parse_size("800M").unwrap(), 800 << 20);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }
}
