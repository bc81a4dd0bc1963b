//! The `gramstream` command-line tool: a thin layer over the library.
//!
//! Exit status: 0 on success, 1 on a runtime error (one line on stderr),
//! 2 on a usage error (clap).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod accumulate;
mod experiment;
mod predict;
mod progress;
mod sweep;

#[derive(Parser)]
#[command(
    name = "gramstream",
    version,
    about = "One-pass, bounded-memory Ridge regression on spectra far larger than RAM"
)]
struct Cli {
    /// Show progress bars even when stderr is not a terminal (pipes, batch logs).
    #[arg(long, global = true)]
    progress: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct LayoutArgs {
    /// Rename a params column: ROLE=COLUMN with ROLE one of teff, mh, log_g (repeatable).
    #[arg(long = "column", value_name = "ROLE=COLUMN")]
    columns: Vec<String>,
}

impl LayoutArgs {
    fn layout(&self) -> Result<gramstream::Layout> {
        let mut layout = gramstream::Layout::default();
        layout
            .columns
            .apply_renames(self.columns.iter().map(String::as_str))?;
        Ok(layout)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Describe shards: datasets, shapes, dtypes, storage, params columns, read path.
    Inspect {
        /// Shard files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        layout: LayoutArgs,
    },
    /// Read shards once with noise and report throughput, SNR and log g ranges.
    Scan(ScanArgs),
    /// One pass over the shards: per-bin sufficient statistics to a file.
    Accumulate(accumulate::AccumulateArgs),
    /// Sum statistics files of disjoint shard sets (same configuration).
    Merge {
        /// Output statistics file.
        #[arg(long)]
        out: PathBuf,
        /// Input statistics files, summed in this order.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Every Ridge α of every bin from a statistics file: GCV, exact K-fold CV,
    /// test scores; writes sweep.csv, sweep.json and plots.
    Sweep(sweep::SweepArgs),
    /// Run an experiment from a TOML config: runs over noise levels and seeds,
    /// oracle and gated mixtures of experts; writes results.json, per_bin.csv,
    /// report.md, plots and models.h5.
    Experiment(experiment::ExperimentArgs),
    /// Predict log g of every row of shards with saved experts (models.h5) → CSV.
    Predict(predict::PredictArgs),
    /// Generate synthetic BOSZ-like shards in the pfsspec layout.
    Generate(generate::GenerateArgs),
    /// Generate a small data set and run the pipeline on it.
    Demo {
        /// Output directory.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        /// Training rows per shard (2 shards).
        #[arg(long, default_value_t = 10000)]
        rows: usize,
        /// Pixels per spectrum (1024 keeps the demo's statistics file small —
        /// 120 accumulators × P²/2 doubles; the real data have 4096).
        #[arg(long, default_value_t = 1024)]
        pixels: usize,
    },
}

#[derive(clap::Args)]
struct ScanArgs {
    /// Shard files (shard index = position in this list).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Noise level L (0 = no noise).
    #[arg(long, default_value_t = 1.0)]
    noise: f64,
    /// Noise seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rows per chunk.
    #[arg(long, default_value_t = 256)]
    chunk_rows: usize,
    /// Read the stored `noisy` array instead of flux + error.
    #[arg(long)]
    stored_noisy: bool,
    /// Always use libhdf5 hyperslabs (no memory map).
    #[arg(long)]
    hdf5_path: bool,
    /// Skip rows with non-finite values instead of failing.
    #[arg(long)]
    skip_bad_rows: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    layout: LayoutArgs,
}

mod generate;

fn scan(args: &ScanArgs) -> Result<gramstream::scan::ScanSummary> {
    use gramstream::source::{NonFinitePolicy, ReadOptions, ReadPath, Spectra};
    let layout = args.layout.layout()?;
    let options = gramstream::scan::ScanOptions {
        layout,
        read: ReadOptions {
            spectra: if args.stored_noisy {
                Spectra::Noisy
            } else {
                Spectra::FluxError
            },
            columns: vec![],
            path: if args.hdf5_path {
                ReadPath::Hdf5
            } else {
                ReadPath::Auto
            },
            non_finite: if args.skip_bad_rows {
                NonFinitePolicy::SkipRow
            } else {
                NonFinitePolicy::Error
            },
        },
        noise: gramstream::noise::NoiseModel::new(args.noise, args.seed)?,
        chunk_rows: args.chunk_rows,
        prefetch: 2,
    };
    let total: usize = args
        .files
        .iter()
        .map(|p| gramstream::source::Shard::open(p, &options.layout).map(|s| s.rows()))
        .sum::<gramstream::Result<usize>>()?;
    let bar = progress::rows_bar(total as u64, "scan");
    let summary = gramstream::scan::scan(&args.files, &options, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    Ok(summary)
}

fn print_scan(s: &gramstream::scan::ScanSummary) {
    println!(
        "read {} rows × {} pixels from {} shard(s) in {:.2} s: {:.0} rows/s, {:.2} GB/s decoded ({} path)",
        s.rows,
        s.pixels,
        s.shards.len(),
        s.seconds,
        s.rows_per_s(),
        s.gb_per_s(),
        if s.zero_copy { "zero-copy" } else { "libhdf5" }
    );
    if s.skipped > 0 {
        println!("skipped {} rows with non-finite values", s.skipped);
    }
    if let Some([lo, med, hi]) = s.snr {
        println!("SNR = ‖flux‖/(L‖error‖): min {lo:.2}, median {med:.2}, max {hi:.2}");
    }
    println!(
        "log g: min {:.2}, mean {:.2}, max {:.2}",
        s.log_g[0], s.log_g[1], s.log_g[2]
    );
    println!("noisy flux checksum: {:.9e}", s.flux_sum);
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect { files, layout } => {
            let layout = layout.layout()?;
            for (i, f) in files.iter().enumerate() {
                let report = gramstream::inspect::inspect(f, &layout)?;
                if i > 0 {
                    println!();
                }
                println!("{report}");
            }
        }
        Command::Scan(args) => {
            let summary = scan(&args)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print_scan(&summary);
            }
        }
        Command::Accumulate(args) => println!("{}", accumulate::run(&args)?),
        Command::Sweep(args) => print!("{}", sweep::run(&args)?),
        Command::Merge { out, inputs } => {
            let s = gramstream::stats::merge(&inputs, &out, &|_| {})?;
            println!(
                "merged {} files ({} shards, {} rows, {} skipped, {} accumulators, gate sample {}) into {}",
                s.inputs,
                s.shards,
                s.rows,
                s.skipped,
                s.accumulators,
                s.reservoir,
                out.display()
            );
        }
        Command::Predict(args) => println!("{}", predict::run(&args)?),
        Command::Experiment(args) => print!("{}", experiment::run(&args)?),
        Command::Generate(args) => {
            let summary = generate::run(&args)?;
            println!("{summary}");
        }
        Command::Demo { out, rows, pixels } => demo(&out, rows, pixels)?,
    }
    Ok(())
}

fn demo(out: &std::path::Path, rows: usize, pixels: usize) -> Result<()> {
    let data = out.join("data");
    println!(
        "== 1/6 generate: 2 training shards × {rows} rows + 1 test shard, {pixels} pixels → {}",
        data.display()
    );
    let args = generate::GenerateArgs::demo(&data, rows, pixels);
    let summary = generate::run(&args)?;
    println!("{summary}");
    let train: Vec<PathBuf> = (0..2)
        .map(|i| data.join(format!("train_{i}/dataset.h5")))
        .collect();
    let test = data.join("test/dataset.h5");
    println!("\n== 2/6 inspect");
    let layout = gramstream::Layout::default();
    println!("{}", gramstream::inspect::inspect(&train[0], &layout)?);
    println!("\n== 3/6 scan the training shards with noise level 1, and the test shard's stored noisy flux");
    let base = ScanArgs {
        files: train.clone(),
        noise: 1.0,
        seed: 42,
        chunk_rows: 256,
        stored_noisy: false,
        hdf5_path: false,
        skip_bad_rows: false,
        json: false,
        layout: LayoutArgs { columns: vec![] },
    };
    print_scan(&scan(&base)?);
    let test_args = ScanArgs {
        files: vec![test.clone()],
        stored_noisy: true,
        ..base
    };
    print_scan(&scan(&test_args)?);

    let stats = out.join("stats.h5");
    println!(
        "\n== 4/6 accumulate: one pass, partitions teff_mh + snr, 3 folds, noise level 1 → {}",
        stats.display()
    );
    let cli = Cli::try_parse_from(
        [
            "gramstream",
            "accumulate",
            "--folds",
            "3",
            "--gate-sample",
            "500",
            "--out",
        ]
        .into_iter()
        .map(String::from)
        .chain(std::iter::once(stats.display().to_string()))
        .chain(train.iter().map(|p| p.display().to_string())),
    )?;
    if let Command::Accumulate(args) = cli.command {
        println!("{}", accumulate::run(&args)?);
    }

    let sweep_dir = out.join("sweep");
    println!(
        "\n== 5/6 sweep: 25 α per bin from the statistics alone (exact 3-fold CV), scored on the test shard → {}",
        sweep_dir.display()
    );
    let cli = Cli::try_parse_from(
        ["gramstream", "sweep", "--alphas", "1e-1:1e5:25", "--out"]
            .into_iter()
            .map(String::from)
            .chain([sweep_dir.display().to_string()])
            .chain(["--test".to_string(), test.display().to_string()])
            .chain([stats.display().to_string()]),
    )?;
    if let Command::Sweep(args) = cli.command {
        print!("{}", sweep::run(&args)?);
    }

    let pred = out.join("predictions.csv");
    println!(
        "\n== 6/6 predict: the test shard with the saved experts, each row routed to its true T_eff × [M/H] bin → {}",
        pred.display()
    );
    let cli = Cli::try_parse_from(
        ["gramstream", "predict", "--routing", "oracle", "--model"]
            .into_iter()
            .map(String::from)
            .chain([sweep_dir.join("models.h5").display().to_string()])
            .chain(["--out".to_string(), pred.display().to_string()])
            .chain([test.display().to_string()]),
    )?;
    if let Command::Predict(args) = cli.command {
        println!("{}", predict::run(&args)?);
    }
    println!("\nNext in the pipeline (not yet here): the learned gate and the experiment reports (see README, Status).");
    Ok(())
}

/// Parallelism of the dense kernels for `--threads N` (0 = all cores).
fn par(threads: usize) -> faer::Par {
    gramstream::linalg::par(threads)
}

/// glibc returns every freed block above its mmap threshold (≤ 32 MiB) to the
/// kernel, so each 67 MB statistics array written, and each checksum buffer
/// libhdf5 allocates, faulted in fresh pages again: measured ~25 % of a
/// 40-accumulator write in page faults. Keeping large blocks in the heap lets
/// them be reused; peak memory is still the pass's.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called once, first thing in main.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// `gramstream scan … | head` should end quietly, as Unix tools do, instead of
/// panicking on the closed pipe: restore the default SIGPIPE action.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: sets the signal disposition to the default; called first thing in main.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    tune_allocator();
    let cli = Cli::parse();
    progress::force(cli.progress);
    match run(cli).context("gramstream failed") {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the library's error (its Display names file, dataset, row, column).
            let msg = e
                .chain()
                .nth(1)
                .map_or_else(|| e.to_string(), |c| c.to_string());
            eprintln!("error: {}", msg.replace('\n', " "));
            ExitCode::from(1)
        }
    }
}
