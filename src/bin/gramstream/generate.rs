//! `gramstream generate`: synthetic shards (see `gramstream::synth`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use gramstream::synth::{Dtype, GenerateConfig, ParamsFormat};

/// Arguments of `generate` (DESIGN §7).
#[derive(clap::Args, Clone)]
pub struct GenerateArgs {
    /// Output directory: DIR/train_<i>/dataset.h5 and DIR/test/dataset.h5.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of training shards.
    #[arg(long, default_value_t = 2)]
    pub train_shards: usize,
    /// Rows per training shard.
    #[arg(long, default_value_t = 10_000)]
    pub rows: usize,
    /// Rows of the test shard (0 = no test shard).
    #[arg(long, default_value_t = 2_000)]
    pub test_rows: usize,
    /// Pixels per spectrum (7100–8850 Å).
    #[arg(long, default_value_t = 4096)]
    pub pixels: usize,
    /// Seed of parameters, spectra and the test shard's noise.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Noise level of the test shard's stored `noisy` array.
    #[arg(long, default_value_t = 1.0, value_parser = crate::parse_noise_level, allow_negative_numbers = true)]
    pub test_noise: f64,
    /// Element type of flux, error and noisy.
    #[arg(long, value_enum, default_value = "f64")]
    pub dtype: DtypeArg,
    /// Chunked storage with this many rows per chunk (default: contiguous).
    #[arg(long, value_name = "ROWS", value_parser = crate::parse_rows)]
    pub chunked: Option<usize>,
    /// gzip level 1–9 (implies chunked).
    #[arg(long, value_name = "LEVEL")]
    pub gzip: Option<u8>,
    /// Params table format.
    #[arg(long, value_enum, default_value = "pandas")]
    pub params_format: ParamsFormatArg,
}

/// `--dtype`.
#[derive(clap::ValueEnum, Clone, Copy)]
pub enum DtypeArg {
    /// 32-bit floats.
    F32,
    /// 64-bit floats.
    F64,
}

/// `--params-format`.
#[derive(clap::ValueEnum, Clone, Copy)]
pub enum ParamsFormatArg {
    /// pandas `format="table"` blocks with pickled names (the real files).
    Pandas,
    /// One compound field per column.
    Fields,
}

impl GenerateArgs {
    /// The demo's data set.
    pub fn demo(out: &Path, rows: usize, pixels: usize) -> Self {
        GenerateArgs {
            out: out.to_path_buf(),
            train_shards: 2,
            rows,
            test_rows: rows / 2,
            pixels,
            seed: 42,
            test_noise: 1.0,
            dtype: DtypeArg::F64,
            chunked: None,
            gzip: None,
            params_format: ParamsFormatArg::Pandas,
        }
    }

    fn config(&self) -> GenerateConfig {
        GenerateConfig {
            out: self.out.clone(),
            train_shards: self.train_shards,
            rows_per_shard: self.rows,
            test_rows: self.test_rows,
            pixels: self.pixels,
            seed: self.seed,
            test_noise: self.test_noise,
            dtype: match self.dtype {
                DtypeArg::F32 => Dtype::F32,
                DtypeArg::F64 => Dtype::F64,
            },
            chunk_rows: self.chunked,
            gzip: self.gzip,
            params_format: match self.params_format {
                ParamsFormatArg::Pandas => ParamsFormat::Pandas,
                ParamsFormatArg::Fields => ParamsFormat::Fields,
            },
        }
    }
}

/// Runs `generate` with a progress bar; returns a one-paragraph summary.
pub fn run(args: &GenerateArgs) -> Result<String> {
    let cfg = args.config();
    let total = (args.train_shards * args.rows + args.test_rows) as u64;
    let bar = crate::progress::rows_bar(total, "generate");
    let summary = gramstream::synth::generate(&cfg, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    let mut s = format!(
        "wrote {} rows in {} files, {:.2} GB, in {:.1} s ({:.0} rows/s)",
        summary.rows,
        summary.files.len(),
        summary.bytes as f64 / 1e9,
        summary.seconds,
        summary.rows as f64 / summary.seconds.max(1e-9)
    );
    for f in &summary.files {
        s.push_str(&format!("\n  {}", f.display()));
    }
    Ok(s)
}
