//! `gramstream experiment CONFIG.toml`: a reference experiment end to end
//! (see `gramstream::experiment` and the README's config format).

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Result;
use gramstream::experiment::{self, report, Event, Plan};

use crate::progress::{counting_bar, Bar};

/// Arguments of `experiment`.
#[derive(clap::Args)]
pub struct ExperimentArgs {
    /// The experiment's TOML configuration (format: README, "Experiments").
    pub config: PathBuf,
    /// Output directory (default: the config's [output] dir, else results/<name> beside the config).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the output directory if it holds a previous experiment.
    #[arg(long)]
    pub force: bool,
    /// Peak-memory budget of each pass, e.g. 8GiB (overrides [stats] mem_budget).
    #[arg(long, value_name = "SIZE", value_parser = crate::accumulate::parse_size)]
    pub mem_budget: Option<u64>,
}

/// Returns the heap's free memory to the kernel between stages. `main` keeps
/// large freed blocks in the heap (see `tune_allocator`), which suits one
/// pass; in an experiment the pass's accumulators are freed before the solve,
/// and without this the solve's allocations came on top of them: measured
/// peak RSS 8.26 GiB under an 8 GiB budget on 200k rows × 4096 (the pass
/// alone peaks at 6.6 GiB, the sweep alone at 2.2 GiB).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it
    // touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs a planned experiment, printing each stage and showing a bar on a
/// terminal; returns the summary to print.
pub fn execute(plan: Plan, force: bool, launch: &crate::launch::Launch) -> Result<String> {
    let out = plan.out.clone();
    let bar: Mutex<Option<Bar>> = Mutex::new(None);
    let on_event = |e: Event<'_>| {
        let mut b = bar.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::Stage {
                run,
                runs,
                stage,
                detail,
                total,
            } => {
                if let Some(old) = b.take() {
                    old.finish_and_clear();
                }
                release_free_memory();
                println!("[run {}/{runs}] {stage}: {detail}", run + 1);
                let unit = if stage == "accumulate" || stage == "evaluate" {
                    "rows"
                } else if stage == "solve" {
                    "bins"
                } else {
                    "steps"
                };
                *b = Some(counting_bar(total, stage, unit));
            }
            Event::Advance(n) => {
                if let Some(bar) = b.as_ref() {
                    bar.inc(n);
                }
            }
            Event::Done(msg) => {
                if let Some(old) = b.take() {
                    old.finish_and_clear();
                }
                println!("    {msg}");
            }
        }
    };
    #[cfg(feature = "mpi")]
    let exp = match launch.ranks() {
        Some(world) if !launch.reports() => {
            launch.settle(experiment::follow(&plan, world))?;
            return Ok(String::new());
        }
        Some(world) => launch.settle(experiment::execute_ranked(plan, force, world, &on_event))?,
        None => experiment::execute(plan, force, &on_event)?,
    };
    #[cfg(not(feature = "mpi"))]
    let exp = {
        let _ = launch;
        experiment::execute(plan, force, &on_event)?
    };
    if let Some(old) = bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
        old.finish_and_clear();
    }
    let mut s = report::summary_text(&exp);
    s.push_str(&format!(
        "\nwrote {0}/report.md, {0}/results.json, {0}/per_bin.csv, {0}/models.h5{1} in {2:.1} s\n",
        out.display(),
        if exp.plan.config.output.plots {
            format!(", {}/plots/*.png", out.display())
        } else {
            String::new()
        },
        exp.total_s
    ));
    Ok(s)
}

/// `gramstream experiment`.
pub fn run(args: &ExperimentArgs, launch: &crate::launch::Launch) -> Result<String> {
    let mut plan = experiment::plan_file(&args.config, args.out.as_deref())?;
    if args.mem_budget.is_some() {
        plan.mem_budget = args.mem_budget;
    }
    execute(plan, args.force, launch)
}
