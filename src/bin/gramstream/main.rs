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
mod launch;
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
        /// Shard files (HDF5) to describe, one report each in this order.
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
    /// Generate a small data set and run the full experiment on it (five seeds,
    /// oracle and gated experts) → report.md, results.json, plots.
    Demo {
        /// Output directory: shards in OUT/data, the config OUT/demo.toml, results in OUT/results.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        /// Training rows per shard (2 shards).
        #[arg(long, default_value_t = 15000)]
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
    /// Noise level L (0 = no noise; at most 1e6).
    #[arg(long, default_value_t = 1.0, value_parser = parse_noise_level, allow_negative_numbers = true)]
    noise: f64,
    /// Seed of the noise draws (with shard index and row, it fixes each row's noise).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rows per chunk (≥ 1).
    #[arg(long, default_value_t = 256, value_parser = parse_rows)]
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

/// `--noise`, `--test-noise`: a level in 0 ≤ L ≤ MAX_NOISE_LEVEL (usage error otherwise).
pub fn parse_noise_level(s: &str) -> Result<f64, String> {
    let level: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    gramstream::noise::NoiseModel::new(level, 0)
        .map(|m| m.level)
        .map_err(|e| match e {
            gramstream::Error::InvalidParameter { problem, .. } => problem,
            other => other.to_string(),
        })
}

/// `--chunk-rows`, `--block-rows`, `--chunked`: a row count ≥ 1.
pub fn parse_rows(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1 row".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a row count")),
    }
}

/// `--checkpoint-every`: seconds, finite and ≥ 0 (0 = after every chunk).
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(v.is_finite() && v >= 0.0) || std::time::Duration::try_from_secs_f64(v).is_err() {
        return Err(format!(
            "{s:?}: the interval must be a finite number of seconds ≥ 0"
        ));
    }
    Ok(v)
}

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

impl Command {
    /// The subcommand as typed, and whether it shares its work among MPI ranks.
    fn name(&self) -> (&'static str, bool) {
        match self {
            Command::Inspect { .. } => ("inspect", false),
            Command::Scan(_) => ("scan", false),
            Command::Accumulate(_) => ("accumulate", true),
            Command::Merge { .. } => ("merge", false),
            Command::Sweep(_) => ("sweep", false),
            Command::Experiment(_) => ("experiment", true),
            Command::Predict(_) => ("predict", false),
            Command::Generate(_) => ("generate", false),
            Command::Demo { .. } => ("demo", false),
        }
    }
}

/// Prints a command's report on the process that reports (not on MPI ranks other than 0).
fn report(launch: &launch::Launch, text: &str) {
    if launch.reports() {
        print!("{text}");
    }
}

fn run(cli: Cli, launch: &launch::Launch) -> Result<()> {
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
        Command::Accumulate(args) => report(launch, &accumulate::run(&args, launch)?),
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
        Command::Experiment(args) => report(launch, &experiment::run(&args, launch)?),
        Command::Generate(args) => {
            let summary = generate::run(&args)?;
            println!("{summary}");
        }
        Command::Demo { out, rows, pixels } => demo(&out, rows, pixels)?,
    }
    Ok(())
}

/// The demo's experiment: the reference seeds at noise 1, both partitions,
/// exact 3-fold CV over 25 α, the gate on a 6000-row reservoir.
fn demo_config(rows: usize) -> String {
    format!(
        r#"# Written by `gramstream demo`: edit and rerun with `gramstream experiment demo.toml --force`.
name = "demo"
description = """
The reference experiments on a small generated set ({rows} rows × 2 training shards):
oracle T_eff × [M/H] and SNR experts, a soft and a hard gate, at noise 1 over five seeds."""

[data]
train = ["data/train_0/dataset.h5", "data/train_1/dataset.h5"]
test = "data/test/dataset.h5"
test_spectra = "draw"

[noise]
levels = [1.0]
seeds = [42, 123, 456, 789, 2024]

[stats]
partitions = ["teff_mh", "snr"]
folds = 3

[ridge]
alphas = "1e-1:1e5:25"
select = "cv"

[gate]
sample = 6000
c = 1.0

[output]
dir = "results"
"#
    )
}

fn demo(out: &std::path::Path, rows: usize, pixels: usize) -> Result<()> {
    let data = out.join("data");
    println!(
        "== 1/2 generate: 2 training shards × {rows} rows + 1 test shard of {} rows, {pixels} pixels → {}",
        rows / 2,
        data.display()
    );
    let args = generate::GenerateArgs::demo(&data, rows, pixels);
    let summary = generate::run(&args)?;
    println!("{summary}");
    let config = out.join("demo.toml");
    std::fs::write(&config, demo_config(rows))
        .with_context(|| format!("writing {}", config.display()))?;
    println!(
        "\n== 2/2 experiment {}: 5 seeds × (one pass → every α of every bin → gate → test)",
        config.display()
    );
    let plan = gramstream::experiment::plan_file(&config, None)?;
    let results = plan.out.clone();
    // The demo owns its directory: a rerun replaces its previous results.
    print!(
        "{}",
        experiment::execute(plan, true, &launch::Launch::Alone)?
    );
    println!(
        "\nThe report with its tables and plots: {}/report.md. Next: edit {} and rerun it with\n  gramstream experiment {} --force\nor run a reference configuration from examples/configs/ (see README, Experiments).",
        results.display(),
        config.display(),
        config.display()
    );
    Ok(())
}

/// `--threads N`: a thread count, 0 = all cores.
pub fn parse_threads(s: &str) -> Result<gramstream::Threads, String> {
    s.trim()
        .parse::<usize>()
        .map(gramstream::Threads::new)
        .map_err(|_| format!("{s:?} is not a thread count (0 = all cores)"))
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

/// On SIGINT or SIGTERM: remove this run's scratch files and directories
/// (`gramstream::output`), then exit with 128 + the signal, as the shell
/// would report it. A checkpoint already written stays for `--resume`.
fn clean_up_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("gramstream-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                gramstream::output::interrupt();
                eprintln!("\ninterrupted (signal {sig}): this run's scratch files were removed");
                // Again: the work may have created a registered path since
                // (a killed run's test once found one left).
                gramstream::output::interrupt();
                // _exit, not exit: exit's atexit handlers include libhdf5's
                // shutdown, which crashed (SIGSEGV) while the main thread was
                // still inside libhdf5.
                // SAFETY: _exit ends the process at once; nothing runs after it.
                unsafe { libc::_exit(128 + sig) };
            }
        });
}

/// The error as one line: the library's error (its Display names file,
/// dataset, row, column) or the binary's context, followed by every cause
/// not already in the text ("creating out/sw: Permission denied (os error
/// 13)", not just "creating out/sw"). The outermost "gramstream failed"
/// context is dropped.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    if msg.is_empty() {
        msg = e.to_string();
    }
    msg.replace('\n', " ")
}

fn main() -> ExitCode {
    default_sigpipe();
    tune_allocator();
    clean_up_on_signals();
    let cli = Cli::parse();
    progress::force(cli.progress);
    let (name, distributed) = cli.command.name();
    let launch = match launch::launch(distributed, name) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            return ExitCode::from(1);
        }
    };
    let result = run(cli, &launch).context("gramstream failed");
    // MPI is finalised here, on every rank, before the exit status.
    drop(launch);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<launch::Printed>().is_some() => ExitCode::from(1),
        Err(_) if gramstream::output::interrupted() => {
            // The signal thread removed the scratch under the work, which
            // then failed: its error is not the story; the thread exits
            // with 128 + the signal.
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}
