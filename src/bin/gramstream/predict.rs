//! `gramstream predict`: saved experts applied to shards (see `gramstream::predict`).

use std::path::PathBuf;

use anyhow::Result;
use gramstream::models::ModelSet;
use gramstream::noise::NoiseModel;
use gramstream::predict::{predict_csv, PredictOptions, Routing, SpectraChoice};
use gramstream::source::ReadPath;

/// Routing named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutingArg {
    Global,
    Oracle,
    Hard,
    Soft,
}

/// `global`, `oracle`, `hard`, `soft`.
fn parse_routing(s: &str) -> Result<RoutingArg, String> {
    match s {
        "global" => Ok(RoutingArg::Global),
        "oracle" => Ok(RoutingArg::Oracle),
        "hard" => Ok(RoutingArg::Hard),
        "soft" => Ok(RoutingArg::Soft),
        other => Err(format!(
            "unknown routing {other:?}: use global, oracle, hard or soft"
        )),
    }
}

/// Arguments of `predict` (DESIGN §7).
#[derive(clap::Args)]
pub struct PredictArgs {
    /// Shard files; the shard index (noise streams) is --first-shard-index + the position in this list.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Models file (models.h5) written by sweep or experiment.
    #[arg(long, value_name = "MODELS.h5")]
    pub model: PathBuf,
    /// Which expert predicts a row: global; oracle (the expert of the row's
    /// true bin; rows outside every bin go to the global expert; with
    /// models whose bins chose Ridge or LightGBM, each bin's chosen expert:
    /// the oracle-hybrid); hard (the
    /// expert of the gate's most probable bin) or soft (Σ p_k ŷ_k over the
    /// gate's bins) — these need models.h5 from `experiment` with the gate.
    #[arg(long, default_value = "global", value_parser = parse_routing)]
    pub routing: RoutingArg,
    /// Partition of oracle routing (default: the models' first).
    #[arg(long, value_name = "NAME")]
    pub partition: Option<String>,
    /// Predict flux + L·error·z with this noise level L instead of the stored spectra.
    #[arg(long, value_name = "L", conflicts_with = "stored_noisy", value_parser = crate::parse_noise_level, allow_negative_numbers = true)]
    pub noise: Option<f64>,
    /// Seed of --noise (default: the models' seed).
    #[arg(long, value_name = "S", requires = "noise")]
    pub seed: Option<u64>,
    /// Predict the stored `noisy` array; a shard without one is an error.
    /// (Default: the stored noisy array when present, else the flux as stored.)
    #[arg(long)]
    pub stored_noisy: bool,
    /// Rows per chunk read (memory is bounded by the chunk).
    #[arg(long, default_value_t = 256, value_parser = crate::parse_rows)]
    pub chunk_rows: usize,
    /// Shard index of the first shard given (noise streams), as in accumulate.
    #[arg(long, default_value_t = 0)]
    pub first_shard_index: u64,
    /// Threads each LightGBM call predicts on (the oracle-hybrid's LightGBM
    /// bins); 0 = all cores. The predictions do not depend on it.
    #[arg(long, default_value = "1", value_parser = crate::parse_threads)]
    pub threads: gramstream::Threads,
    /// Always use libhdf5 hyperslabs (no memory map).
    #[arg(long)]
    pub hdf5_path: bool,
    /// Output CSV: id,log_g,prediction,bin (and expert: ridge, lightgbm or global, under the oracle-hybrid).
    #[arg(long, value_name = "PRED.csv")]
    pub out: PathBuf,
    #[command(flatten)]
    pub layout: crate::LayoutArgs,
}

pub fn run(args: &PredictArgs) -> Result<String> {
    gramstream::noise::predicted_shard_indices(args.first_shard_index, args.shards.len())?;
    if args.partition.is_some() && args.routing != RoutingArg::Oracle {
        clap::Error::raw(
            clap::error::ErrorKind::ArgumentConflict,
            "--partition applies to --routing oracle (the gate routes to its own partition)\n",
        )
        .exit();
    }
    let mut inputs = args.shards.clone();
    inputs.push(args.model.clone());
    gramstream::output::refuse_input_overwrite(&args.out, &inputs)?;
    let models = ModelSet::open(&args.model)?;
    let mut opts = PredictOptions::new(&models);
    opts.layout
        .columns
        .apply_renames(args.layout.columns.iter().map(String::as_str))?;
    opts.routing = match args.routing {
        RoutingArg::Global => Routing::Global,
        RoutingArg::Oracle => {
            if models.partitions.is_empty() {
                anyhow::bail!(
                    "{}: the models have no partition: oracle routing needs one",
                    args.model.display()
                );
            }
            Routing::Oracle {
                partition: match &args.partition {
                    Some(name) => models.partition_index(name)?,
                    None => 0,
                },
            }
        }
        RoutingArg::Hard | RoutingArg::Soft => {
            if models.gate.is_none() {
                anyhow::bail!(
                    "{}: no gate in these models: {} routing needs models.h5 from `gramstream experiment` with [gate] enabled",
                    args.model.display(),
                    if args.routing == RoutingArg::Soft { "soft" } else { "hard" }
                );
            }
            Routing::Gate {
                soft: args.routing == RoutingArg::Soft,
            }
        }
    };
    opts.spectra = match (args.noise, args.stored_noisy) {
        (Some(level), _) => {
            SpectraChoice::Noise(NoiseModel::new(level, args.seed.unwrap_or(models.seed))?)
        }
        (None, true) => SpectraChoice::StoredNoisy,
        (None, false) => SpectraChoice::Auto,
    };
    opts.chunk_rows = args.chunk_rows;
    opts.first_shard_index = args.first_shard_index;
    opts.threads = args.threads;
    opts.read_path = if args.hdf5_path {
        ReadPath::Hdf5
    } else {
        ReadPath::Auto
    };
    let mut total = 0u64;
    for p in &args.shards {
        total += gramstream::source::Shard::open(p, &opts.layout)?.rows() as u64;
    }
    let bar = crate::progress::rows_bar(total, "predict");
    let summary = predict_csv(&models, &args.shards, &opts, &args.out, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    Ok(format!("{summary}\nwrote {}", args.out.display()))
}
