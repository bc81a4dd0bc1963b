//! `gramstream sweep`: every α of every bin from a statistics file
//! (see `gramstream::sweep`), written as `sweep.csv`, `sweep.json` and plots.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use gramstream::noise::NoiseModel;
use gramstream::stats::StatsFile;
use gramstream::sweep::{self, report, CvMethod, Progress, Select, Sweep, SweepOptions, TestSpec};

use crate::progress;

/// Arguments of `sweep` (DESIGN §7).
#[derive(clap::Args)]
pub struct SweepArgs {
    /// Statistics file written by `accumulate` or `merge`.
    pub stats: PathBuf,
    /// α grid: LO:HI:N (log-spaced, inclusive) or a comma-separated list.
    #[arg(long, default_value = "1e-2:1e6:50")]
    pub alphas: String,
    /// Test shard: every (bin, α) model is scored on the bin's own test rows.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Draw the test noise at this level from the test flux (with
    /// --test-seed) instead of reading the stored `noisy` array.
    #[arg(long, value_parser = crate::parse_noise_level, allow_negative_numbers = true)]
    pub test_noise: Option<f64>,
    /// Seed of the drawn test noise.
    #[arg(long, default_value_t = 2024, requires = "test_noise")]
    pub test_seed: u64,
    /// How each bin's α is chosen: cv (default when the statistics have
    /// folds) or gcv.
    #[arg(long, conflicts_with = "fixed_alpha")]
    pub select: Option<Select>,
    /// Use this α for every bin (added to the grid if absent), as the
    /// reports' fixed α = 1e5; the curves are still computed for the grid.
    #[arg(long, value_name = "ALPHA")]
    pub fixed_alpha: Option<f64>,
    /// How CV solves each fold: auto (the cheapest exact solver per fold by
    /// a cost model: band reduction, or PCG where the fold has many more
    /// rows than pixels), eigh (one eigendecomposition per fold, run
    /// concurrently), pcg (block preconditioned CG from the bin's own
    /// decomposition), or none (no CV; α by GCV).
    #[arg(long, default_value = "auto")]
    pub cv: CvMethod,
    /// Output directory (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// Threads (0 = all cores). The results do not depend on it, bit for bit.
    #[arg(long, default_value = "0", value_parser = crate::parse_threads)]
    pub threads: gramstream::Threads,
    /// Rows per chunk when reading the test shard (≥ 1).
    #[arg(long, default_value_t = 256, value_parser = crate::parse_rows)]
    pub chunk_rows: usize,
    /// Skip the PNG plots.
    #[arg(long)]
    pub no_plots: bool,
}

/// Runs the sweep and writes its outputs; returns the printed summary.
pub fn run(args: &SweepArgs) -> Result<String> {
    let mut alphas = sweep::parse_alphas(&args.alphas)?;
    let select = match args.fixed_alpha {
        Some(a) => {
            sweep::insert_alpha(&mut alphas, a)?;
            Some(Select::Fixed)
        }
        None => args.select,
    };
    let inputs: Vec<&Path> = args.test.iter().map(PathBuf::as_path).collect();
    report::check_outputs(&args.out, &args.stats, &inputs)?;
    let file = StatsFile::open(&args.stats)?;
    let test = args.test.as_ref().map(|path| -> Result<TestSpec> {
        Ok(TestSpec {
            path: path.clone(),
            noise: args
                .test_noise
                .map(|l| NoiseModel::new(l, args.test_seed))
                .transpose()?,
            chunk_rows: args.chunk_rows,
        })
    });
    let opts = SweepOptions {
        alphas,
        select,
        cv: args.cv,
        test: test.transpose()?,
        threads: args.threads,
        fixed_alpha: args.fixed_alpha,
        pca_components: 0,
        cancel: Default::default(),
    };
    let n_groups = 1 + file
        .header()
        .partitions
        .partitions
        .iter()
        .map(|p| p.slots())
        .sum::<usize>();
    let bar = progress::counting_bar(n_groups as u64, "sweep", "bins");
    let mut test_bar: Option<progress::Bar> = None;
    let result = sweep::run(&file, &opts, |ev| match ev {
        Progress::Group { index, label, .. } => {
            if index > 0 {
                bar.inc(1);
            }
            bar.set_message(label.to_string());
        }
        Progress::TestRows { done, total } => {
            let b = test_bar.get_or_insert_with(|| {
                bar.inc(1);
                bar.finish_and_clear();
                progress::rows_bar(total, "test")
            });
            b.inc(done - b.position());
        }
    });
    bar.finish_and_clear();
    if let Some(b) = &test_bar {
        b.finish_and_clear();
    }
    let result = result?;
    let files = report::write_outputs(
        &result,
        file.header(),
        &args.stats,
        &inputs,
        &args.out,
        !args.no_plots,
    )?;
    let mut s = table(&result);
    writeln!(s, "\nwrote:")?;
    for f in files {
        writeln!(s, "  {}", f.display())?;
    }
    Ok(s)
}

fn fmt(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.prec$}"),
        _ => "—".into(),
    }
}

/// The per-bin table printed at the end.
pub fn table(r: &Sweep) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} α from {:.0e} to {:.0e}; {} training rows, {} pixels, {} fold(s); α chosen by {}",
        r.alphas.len(),
        r.alphas.iter().cloned().fold(f64::INFINITY, f64::min),
        r.alphas.iter().cloned().fold(0.0, f64::max),
        r.train_rows,
        r.pixels,
        r.folds,
        r.select.describe()
    );
    if !r.precision.is_f64() {
        let _ = writeln!(
            s,
            "statistics of {} precision: block products in f32, sums in f64",
            r.precision
        );
    }
    let _ = writeln!(
        s,
        "\n{:<8} {:>3}  {:<13} {:>8} {:>8} {:>4} {:>8} {:>9} {:>9} {:>7} {:>8}",
        "part",
        "bin",
        "name",
        "n_train",
        "alpha",
        "by",
        "train R²",
        "CV MSE",
        "GCV",
        "n_test",
        "test R²"
    );
    for g in &r.groups {
        let pt = g.selected_point();
        let _ = writeln!(
            s,
            "{:<8} {:>3}  {:<13} {:>8} {:>8} {:>4} {:>8} {:>9} {:>9} {:>7} {:>8}",
            g.partition,
            g.bin,
            g.name,
            g.n_train,
            pt.map_or("—".into(), |p| format!("{:.1e}", p.alpha)),
            match g.selected_by {
                Some(Select::Cv) => "CV",
                Some(Select::Gcv) => "GCV",
                Some(Select::Fixed) => "fix",
                None => "—",
            },
            fmt(pt.map(|p| p.train_r2), 4),
            fmt(pt.and_then(|p| p.cv_mse), 5),
            fmt(pt.map(|p| p.gcv), 5),
            if r.test.is_some() {
                g.n_test.to_string()
            } else {
                "—".into()
            },
            fmt(pt.and_then(|p| p.test.map(|t| t.r2)), 4),
        );
    }
    let notes: Vec<String> = r
        .groups
        .iter()
        .flat_map(|g| {
            g.notes
                .iter()
                .map(move |n| format!("  {} {} ({}): {n}", g.partition, g.bin, g.name))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(s, "\nnotes:");
        for n in notes {
            let _ = writeln!(s, "{n}");
        }
    }
    if let Some(t) = &r.test {
        let _ = writeln!(
            s,
            "\ntest: {} rows of {} ({}); each bin scored on its own rows, routed by true T_eff, [M/H], SNR",
            t.rows, t.path, t.spectra
        );
        for (name, n) in &t.outside {
            if *n > 0 {
                let _ = writeln!(s, "  {name}: {n} test rows outside every bin");
            }
        }
    }
    let t = r.timing;
    let _ = writeln!(
        s,
        "\ntime: {:.2} s — statistics read {:.2} s, eigendecompositions {:.2} s, CV {:.2} s, paths {:.2} s, test {:.2} s",
        t.total_s, t.read_s, t.eigh_s, t.cv_s, t.path_s, t.test_s
    );
    s
}
