//! `gramstream experiment`: the reference experiments end to end, from a
//! TOML configuration ([`config`]).
//!
//! For each noise level and seed, one run:
//!
//! 1. **accumulate** — the one pass over the training shards with that
//!    noise, folds and a reservoir sample for the gate;
//! 2. **solve** — every α of the global model and of every bin
//!    ([`crate::sweep`]), α chosen by CV, GCV or fixed; the global
//!    decomposition also gives the gate's 10 principal components;
//! 3. **gate** — the 37 features and the multinomial logistic regression
//!    trained on the reservoir ([`crate::gate`]);
//! 4. **evaluate** — one stream over the test shard: global, oracle routing
//!    on each partition, soft and hard gate ([`score`]); metrics per model
//!    and per bin ([`results`]).
//!
//! Then the runs of each level are summarised over seeds (mean ± std), and
//! `results.json`, `per_bin.csv`, `report.md`, `models.h5` (the first
//! run's experts) and the plots are written ([`report`]). Everything goes
//! to a scratch directory first and is moved into place at the end, so a
//! failed run never leaves a complete-looking output.

pub mod config;
mod expert_report;
pub mod experts;
pub mod report;
pub mod results;
pub mod score;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use config::{Config, Plan};
use results::{DataInfo, GateInfo, LevelSummary, RunResult, Timing};

use crate::experts::feed::ExpertRows;
use crate::gate::Gate;
use crate::noise::NoiseModel;
use crate::partition::PartitionSet;
use crate::source::Shard;
use crate::stats::pass::{accumulate, AccumulateOptions};
use crate::stats::ranges::{accumulate_ranged_to_file, DEFAULT_RANGE_ROWS};
use crate::stats::ranks::{share_node, Ranks};
use crate::stats::StatsFile;
use crate::sweep::{self, CvMethod, Sweep, SweepOptions, TestSpec};
use crate::{Error, Result};

/// What an experiment reports while it runs.
#[derive(Debug)]
pub enum Event<'a> {
    /// A stage of run `run` (0-based) of `runs` starts.
    Stage {
        /// Run index.
        run: usize,
        /// Runs in all.
        runs: usize,
        /// `accumulate`, `solve`, `gate`, `evaluate`.
        stage: &'static str,
        /// What it does.
        detail: &'a str,
        /// Units of work the stage will report through `Advance`.
        total: u64,
    },
    /// Units of the current stage done.
    Advance(u64),
    /// A finished stage's one-line summary.
    Done(&'a str),
}

/// The kept artefacts of a run (the first one's go into the report).
pub struct RunArtifacts {
    /// The sweep (α curves).
    pub sweep: Sweep,
    /// Per-row test predictions.
    pub table: score::TestTable,
}

/// A finished experiment.
pub struct Experiment {
    /// What ran.
    pub plan: Plan,
    /// One result per (level, seed), levels outer.
    pub runs: Vec<RunResult>,
    /// Mean ± std over seeds, per level.
    pub summary: Vec<LevelSummary>,
    /// The first run of each level: sweep and test table (for plots).
    pub artifacts: Vec<RunArtifacts>,
    /// Seconds for everything.
    pub total_s: f64,
}

impl std::fmt::Debug for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Experiment")
            .field("name", &self.plan.config.name)
            .field("out", &self.plan.out)
            .field("runs", &self.runs.len())
            .field("total_s", &self.total_s)
            .finish()
    }
}

/// The directory name of a run.
pub(crate) fn run_dir_name(level: f64, seed: u64) -> String {
    format!("noise{level}_seed{seed}")
}

/// Runs the plan and writes its outputs to `plan.out`. `overwrite`: replace
/// an existing output directory (only one holding a `results.json`).
pub fn execute(
    plan: Plan,
    overwrite: bool,
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Experiment> {
    execute_in(plan, overwrite, None, progress)
}

/// [`execute`] on rank 0 of a distributed run: each pass shares its row
/// ranges with the ranks that [`follow`] (the statistics are the same bits
/// for any number of ranks, [`crate::stats::ranges`]); the solve, gate,
/// evaluation and reports run here. Collective: the followers stop when
/// this returns, with its error if it failed.
pub fn execute_ranked(
    plan: Plan,
    overwrite: bool,
    ranks: &dyn Ranks,
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Experiment> {
    let result = execute_in(plan, overwrite, Some(ranks), progress);
    let end = match &result {
        Ok(_) => Order::Done,
        Err(e) => Order::Failed(e.to_string()),
    };
    end.send(ranks);
    result
}

/// The part of ranks other than 0 in [`execute_ranked`]: the passes rank 0
/// orders, in order, until it is done. Errs when rank 0 failed
/// ([`Error::Rank`], rank 0's message) or a pass did.
pub fn follow(plan: &Plan, ranks: &dyn Ranks) -> Result<()> {
    loop {
        match Order::receive(ranks) {
            Order::Pass { level, seed } => {
                let opts = pass_options(plan, level, seed, Some(ranks))?;
                let out = plan.out.join("stats.h5");
                // A failed pass fails on every rank (collectively): rank 0
                // then orders `Failed`, which ends this loop.
                let _ = accumulate_ranged_to_file(&out, &plan.train, &opts, None, ranks, &|_| {});
            }
            Order::Done => return Ok(()),
            Order::Failed(message) => return Err(Error::Rank { rank: 0, message }),
        }
    }
}

/// What rank 0 tells the other ranks of a distributed experiment next.
enum Order {
    /// Share the pass at this noise level and seed.
    Pass { level: f64, seed: u64 },
    /// The experiment is done.
    Done,
    /// It failed on rank 0, with this error.
    Failed(String),
}

impl Order {
    /// Rank 0: broadcasts the order.
    fn send(&self, ranks: &dyn Ranks) {
        let mut bytes = match self {
            Order::Pass { level, seed } => format!("pass {} {seed}", level.to_bits()),
            Order::Done => "done".into(),
            Order::Failed(m) => format!("failed {m}"),
        }
        .into_bytes();
        ranks.broadcast(0, &mut bytes);
    }

    /// The other ranks: the order rank 0 broadcast.
    fn receive(ranks: &dyn Ranks) -> Order {
        let mut bytes = Vec::new();
        ranks.broadcast(0, &mut bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut words = text.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("pass"), Some(level), Some(seed)) => match (level.parse(), seed.parse()) {
                (Ok(level), Ok(seed)) => Order::Pass {
                    level: f64::from_bits(level),
                    seed,
                },
                _ => Order::Failed(format!("unreadable order from rank 0: {text}")),
            },
            (Some("done"), None, None) => Order::Done,
            _ => Order::Failed(text.strip_prefix("failed ").unwrap_or(&text).to_string()),
        }
    }
}

fn execute_in(
    plan: Plan,
    overwrite: bool,
    ranks: Option<&dyn Ranks>,
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Experiment> {
    let out = plan.out.clone();
    let mut inputs: Vec<&Path> = plan.train.iter().map(PathBuf::as_path).collect();
    inputs.push(&plan.test);
    crate::output::refuse_input_overwrite(&out, &inputs)?;
    if out.exists() {
        let empty = std::fs::read_dir(&out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !(empty || overwrite && out.join("results.json").exists()) {
            return Err(Error::Output {
                path: out.clone(),
                problem: format!(
                    "exists{}: remove it or choose another --out",
                    if out.join("results.json").exists() {
                        " (a previous experiment; --force replaces it)"
                    } else {
                        " and is not an experiment's output"
                    }
                ),
            });
        }
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let staged = crate::output::Staged::dir(&out)?;
    let exp = run_in(plan, staged.path(), ranks, progress)?;
    report::write(&exp, staged.path())?;
    staged.commit()?;
    Ok(exp)
}

fn run_in(
    plan: Plan,
    dir: &Path,
    ranks: Option<&dyn Ranks>,
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Experiment> {
    let start = Instant::now();
    let cfg = &plan.config;
    let mut runs = Vec::new();
    let mut artifacts = Vec::new();
    let n_runs = cfg.noise.levels.len() * cfg.noise.seeds.len();
    for &level in &cfg.noise.levels {
        for (si, &seed) in cfg.noise.seeds.iter().enumerate() {
            let index = runs.len();
            let run_dir = dir.join("runs").join(run_dir_name(level, seed));
            std::fs::create_dir_all(&run_dir).map_err(|e| Error::Io {
                path: run_dir.clone(),
                source: e,
            })?;
            let (result, art) = run_one(&Run {
                plan: &plan,
                level,
                seed,
                dir: &run_dir,
                index,
                runs: n_runs,
                ranks,
                progress,
            })?;
            if index == 0 {
                std::fs::copy(run_dir.join("models.h5"), dir.join("models.h5")).map_err(|e| {
                    Error::Io {
                        path: dir.join("models.h5"),
                        source: e,
                    }
                })?;
            }
            runs.push(result);
            if si == 0 {
                artifacts.push(art);
            }
        }
    }
    let summary = results::summarize(&runs);
    Ok(Experiment {
        plan,
        runs,
        summary,
        artifacts,
        total_s: start.elapsed().as_secs_f64(),
    })
}

/// One (noise level, seed) run and where it reports: the stages below
/// share it.
struct Run<'a> {
    plan: &'a Plan,
    level: f64,
    seed: u64,
    dir: &'a Path,
    /// This run's index and the number of runs (for progress).
    index: usize,
    runs: usize,
    /// The ranks the passes are shared with (rank 0 of MPI), if any.
    ranks: Option<&'a dyn Ranks>,
    progress: &'a (dyn for<'e> Fn(Event<'e>) + Sync),
}

impl Run<'_> {
    fn stage(&self, stage: &'static str, detail: &str, total: u64) {
        (self.progress)(Event::Stage {
            run: self.index,
            runs: self.runs,
            stage,
            detail,
            total,
        });
    }
}

/// A run: the pass, the solve (every α of every bin), the gate, one read
/// of the test shard scoring the mixtures and the α curves; its results
/// and the artifacts the report draws.
fn run_one(r: &Run<'_>) -> Result<(RunResult, RunArtifacts)> {
    let start = Instant::now();
    let mut timing = Timing::default();
    let (stats_path, wave, expert_rows) = match &r.plan.stats {
        Some(given) => {
            let (path, wave) = given_stats(r, given)?;
            (path, wave, None)
        }
        None => accumulate_stage(r, &mut timing)?,
    };
    let file = StatsFile::open(&stats_path)?;
    let header = file.header().clone();
    let (mut sw, threads) = solve_stage(r, &file, &mut timing)?;
    let stats_name = stats_path.display().to_string();
    let mut models = sw.model_set(&header, &stats_name)?;
    let (gate, mut gate_info) = match gate_stage(r, &file, &sw, &wave, &mut timing)? {
        Some((g, gp, info)) => (Some((g, gp)), Some(info)),
        None => (None, None),
    };
    models.gate = gate.as_ref().map(|(g, p)| crate::models::ModelGate {
        partition: *p,
        gate: g.clone(),
    });
    let expert_cap = expert_rows
        .as_ref()
        .and_then(|e| e.datasets.first())
        .map(|d| d.cap());
    let mut choices = match (&r.plan.experts, expert_rows) {
        (Some(plan), Some(rows)) => {
            let t = Instant::now();
            let c = experts::train_and_choose(r, plan, rows, &file, &models)?;
            timing.experts = Some(t.elapsed().as_secs_f64());
            Some((plan.partition, c))
        }
        _ => None,
    };
    if let Some((partition, c)) = choices.as_mut() {
        models.bin_experts = Some(crate::models::BinExperts {
            partition: *partition,
            chosen: c.iter().map(|b| b.chosen).collect(),
            lightgbm: c.iter_mut().map(|b| b.model.take()).collect(),
        });
    }
    crate::models::write_models(&r.dir.join("models.h5"), &models)?;
    drop(file);
    // The pass's file, never one the config gave.
    if !r.plan.config.stats.keep && r.plan.stats.is_none() {
        let _ = std::fs::remove_file(&stats_path);
    }
    let experts = match &models.bin_experts {
        Some(b) => Some(crate::route::LoadedExperts::load(b, threads)?),
        None => None,
    };
    let table = evaluate_stage(
        r,
        &header,
        &models,
        gate.as_ref(),
        experts.as_ref(),
        &mut sw,
        threads,
    )?;
    timing.evaluate = sw.timing.test_s;
    write_file(&r.dir.join("sweep.csv"), |w| {
        sweep::report::write_csv(&sw, w)
    })?;
    write_file(&r.dir.join("sweep.json"), |w| {
        sweep::report::write_json(&sw, &stats_name, w)
    })?;
    let plan = r.plan;
    let names: Vec<String> = plan.partitions.iter().map(|p| p.name.clone()).collect();
    let bin_names: Vec<Vec<String>> = plan
        .partitions
        .iter()
        .map(|p| p.bin_names.clone())
        .collect();
    let (global, mut moe, gate_eval) = results::measure(&table, &sw, &names, &bin_names);
    if let Some((partition, c)) = choices {
        results::add_experts(&mut moe, &table, &names[partition], c);
    }
    if let (Some(info), Some((acc, confusion, probs))) = (gate_info.as_mut(), gate_eval) {
        info.routing_accuracy = acc;
        info.confusion = confusion;
        info.mean_probabilities = probs;
    }
    timing.total = start.elapsed().as_secs_f64();
    (r.progress)(Event::Done(&format!(
        "test R²: global {:.4}{}",
        global.r2,
        moe.iter()
            .map(|(n, p)| {
                let hybrid = p.hybrid.as_ref().map_or(String::new(), |h| {
                    format!(", oracle-hybrid {n} {:.4}", h.r2)
                });
                format!(", oracle {n} {:.4}{hybrid}", p.oracle.r2)
            })
            .collect::<String>()
    )));
    let result = RunResult {
        data: DataInfo {
            train_rows: header.rows,
            test_rows: table.len() as u64,
            pixels: header.pixels,
            noise: r.level,
            seed: r.seed,
            train_shards: match plan.stats {
                // The shards the given statistics were summed from.
                Some(_) => header.shards.iter().map(|s| s.path.clone()).collect(),
                None => plan.train.iter().map(|p| p.display().to_string()).collect(),
            },
            test: plan.test.display().to_string(),
            test_spectra: table.spectra.clone(),
            precision: header.precision,
            expert_rows_per_bin: expert_cap,
        },
        global,
        moe,
        gate: gate_info,
        timing_s: timing,
    };
    Ok((result, RunArtifacts { sweep: sw, table }))
}

/// The pass over the training shards at this run's noise level and seed,
/// written to `stats.h5` in the run's directory; returns that path and the
/// wavelength grid (for the gate's features).
fn accumulate_stage(
    r: &Run<'_>,
    timing: &mut Timing,
) -> Result<(PathBuf, Vec<f64>, Option<ExpertRows>)> {
    let (plan, cfg) = (r.plan, &r.plan.config);
    let opts = pass_options(plan, r.level, r.seed, r.ranks)?;
    let gate_sample = opts.gate_sample;
    let mut total_rows = 0u64;
    let mut wave = Vec::new();
    for p in &plan.train {
        let shard = Shard::open(p, &opts.layout)?;
        total_rows += shard.rows() as u64;
        if wave.is_empty() {
            wave = shard.wave().to_vec();
        }
    }
    let detail = format!(
        "noise {}, seed {}: {} shard(s), {total_rows} rows, {} fold(s), gate sample {gate_sample}",
        r.level,
        r.seed,
        plan.train.len(),
        cfg.stats.folds
    );
    r.stage("accumulate", &detail, total_rows);
    let t = Instant::now();
    let stats_path = r.dir.join("stats.h5");
    let advance = |n| (r.progress)(Event::Advance(n));
    let mut expert_rows = None;
    let summary = match r.ranks {
        None => {
            let mut out = accumulate(&plan.train, &opts, None, &advance)?;
            expert_rows = out.experts.take();
            out.write(&stats_path, cfg.stats.threads)?
        }
        Some(ranks) => {
            Order::Pass {
                level: r.level,
                seed: r.seed,
            }
            .send(ranks);
            accumulate_ranged_to_file(&stats_path, &plan.train, &opts, None, ranks, &advance)?
                .ok_or_else(|| Error::Worker("rank 0 wrote no statistics".into()))?
                .pass
        }
    };
    timing.accumulate = t.elapsed().as_secs_f64();
    (r.progress)(Event::Done(&format!(
        "{} rows in {:.1} s ({:.0} rows/s), {} accumulators{}",
        summary.rows,
        timing.accumulate,
        summary.rows as f64 / timing.accumulate.max(1e-9),
        summary.plan.accumulators,
        match &expert_rows {
            Some(e) => format!(
                "; {} rows kept for the tree experts (at most {} per bin, {:.2} GiB planned); peak RSS {} of the {:.2} GiB budget",
                e.rows(),
                summary.plan.expert_rows_per_bin,
                summary.plan.expert_bytes as f64 / (1u64 << 30) as f64,
                summary
                    .peak_rss
                    .map_or("unknown".into(), |b| format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)),
                summary.plan.budget as f64 / (1u64 << 30) as f64
            ),
            None => String::new(),
        }
    )));
    Ok((stats_path, wave, expert_rows))
}

/// Statistics the config gave instead of a pass, checked against the run
/// (noise level and seed, partitions and folds, a gate sample when a gate
/// is trained), and the wavelength grid from the test shard (the training
/// shards may be gone).
fn given_stats(r: &Run<'_>, path: &Path) -> Result<(PathBuf, Vec<f64>)> {
    let (plan, cfg) = (r.plan, &r.plan.config);
    let file = StatsFile::open(path)?;
    file.require_complete()?;
    let h = file.header();
    let expected = PartitionSet::new(plan.partitions.clone(), cfg.stats.folds)?;
    let differs = |what: &str, theirs: String, ours: String| Error::Config {
        file: plan.source.clone(),
        line: None,
        problem: format!(
            "[data] stats {}: {what} {theirs}, where the config has {ours}",
            path.display()
        ),
    };
    if h.noise != NoiseModel::new(r.level, r.seed)? {
        return Err(differs(
            "noise level and seed",
            format!("{} and {}", h.noise.level, h.noise.seed),
            format!("{} and {}", r.level, r.seed),
        ));
    }
    if h.partitions != expected {
        let names = |s: &PartitionSet| {
            let p: Vec<&str> = s.partitions.iter().map(|p| p.name.as_str()).collect();
            format!("[{}] with {} fold(s)", p.join(", "), s.folds)
        };
        return Err(differs(
            "partitions",
            names(&h.partitions),
            names(&expected),
        ));
    }
    if h.precision != cfg.stats.precision {
        return Err(differs(
            "block products in",
            h.precision.to_string(),
            format!("[stats] precision = \"{}\"", cfg.stats.precision),
        ));
    }
    if plan.gate_partition.is_some() && file.reservoir()?.is_empty() {
        return Err(differs(
            "gate sample",
            "empty".into(),
            "a gate (accumulate with --gate-sample)".into(),
        ));
    }
    let shard = Shard::open(&plan.test, &h.layout)?;
    if shard.pixels() != h.pixels {
        return Err(differs(
            "pixels",
            h.pixels.to_string(),
            format!("a test shard of {}", shard.pixels()),
        ));
    }
    (r.progress)(Event::Done(&format!(
        "statistics of {} rows from {} (no pass)",
        h.rows,
        path.display()
    )));
    Ok((path.to_path_buf(), shard.wave().to_vec()))
}

/// The options of a run's pass: the plan's partitions, folds, budget and
/// gate sample at this noise level and seed; in ranges when shared among
/// `ranks`.
fn pass_options(
    plan: &Plan,
    level: f64,
    seed: u64,
    ranks: Option<&dyn Ranks>,
) -> Result<AccumulateOptions> {
    let cfg = &plan.config;
    let mut opts = AccumulateOptions {
        partitions: PartitionSet::new(plan.partitions.clone(), cfg.stats.folds)?,
        noise: NoiseModel::new(level, seed)?,
        threads: cfg.stats.threads,
        chunk_rows: cfg.stats.chunk_rows,
        mem_budget: plan.mem_budget,
        gate_sample: if plan.gate_partition.is_some() {
            cfg.gate.sample
        } else {
            0
        },
        cancel: plan.cancel.clone(),
        range_rows: ranks.map(|_| cfg.stats.range_rows.unwrap_or(DEFAULT_RANGE_ROWS)),
        precision: cfg.stats.precision,
        experts: plan.experts.as_ref().map(|e| e.feed.clone()),
        ..Default::default()
    };
    if ranks.is_some() && plan.experts.is_some() {
        return Err(Error::Config {
            file: plan.source.clone(),
            line: None,
            problem: "[experts] tree experts are not trained under MPI yet: run this experiment in one process".into(),
        });
    }
    if let Some(ranks) = ranks {
        share_node(&mut opts, ranks);
    }
    Ok(opts)
}

/// Every α of the global model and of every bin, α chosen by the plan's
/// rule, and the global model's principal components when a gate follows.
fn solve_stage(
    r: &Run<'_>,
    file: &StatsFile,
    timing: &mut Timing,
) -> Result<(Sweep, crate::Threads)> {
    let (plan, cfg) = (r.plan, &r.plan.config);
    let n_groups = 1 + plan.partitions.iter().map(|p| p.slots()).sum::<usize>();
    r.stage(
        "solve",
        &format!(
            "{} α for the global model and {} bins, α by {}",
            plan.alphas.len(),
            n_groups - 1,
            plan.select.describe()
        ),
        n_groups as u64,
    );
    let sopts = SweepOptions {
        alphas: plan.alphas.clone(),
        select: Some(plan.select),
        test: None,
        cv: if cfg.stats.folds >= 2 {
            CvMethod::Auto
        } else {
            CvMethod::Skip
        },
        threads: cfg.stats.threads,
        fixed_alpha: cfg.ridge.alpha,
        pca_components: if plan.gate_partition.is_some() {
            crate::gate::features::PCA_COMPONENTS
        } else {
            0
        },
        cancel: plan.cancel.clone(),
    };
    let sw = sweep::run(file, &sopts, |p| {
        if let sweep::Progress::Group { index, .. } = p {
            if index > 0 {
                (r.progress)(Event::Advance(1));
            }
        }
    })?;
    (r.progress)(Event::Advance(1));
    timing.solve = sw.timing.total_s;
    (r.progress)(Event::Done(&format!(
        "solved in {:.1} s (eigendecompositions {:.1} s, CV {:.1} s)",
        timing.solve, sw.timing.eigh_s, sw.timing.cv_s
    )));
    Ok((sw, sopts.threads))
}

/// The gate, when the plan has one: trained on the reservoir with the
/// global model's principal components; returns it, the partition it
/// routes on and what its training saw.
fn gate_stage(
    r: &Run<'_>,
    file: &StatsFile,
    sw: &Sweep,
    wave: &[f64],
    timing: &mut Timing,
) -> Result<Option<(Gate, usize, GateInfo)>> {
    let (plan, cfg) = (r.plan, &r.plan.config);
    let Some(gp) = plan.gate_partition else {
        return Ok(None);
    };
    let reservoir = file.reservoir()?;
    r.stage(
        "gate",
        &format!(
            "37 features and a {}-class logistic regression on {} reservoir rows",
            plan.partitions[gp].bins(),
            reservoir.len()
        ),
        1,
    );
    let t = Instant::now();
    let pca = sw.pca.clone().ok_or_else(|| Error::InvalidParameter {
        name: "gate",
        problem: "no principal components from the global model".into(),
    })?;
    let explained = pca.eigenvalues.iter().map(|v| v.max(0.0)).sum::<f64>() / pca.total;
    let (g, rep) = Gate::train(
        &reservoir,
        wave,
        pca.mean,
        pca.components,
        &plan.partitions[gp],
        cfg.gate.c,
    )?;
    timing.gate = t.elapsed().as_secs_f64();
    (r.progress)(Event::Advance(1));
    (r.progress)(Event::Done(&format!(
        "gate: {} rows, training accuracy {:.1} %, {} Newton iterations, {:.1} s",
        rep.rows,
        100.0 * rep.train_accuracy,
        rep.iterations,
        timing.gate
    )));
    let info = GateInfo {
        partition: plan.partitions[gp].name.clone(),
        c: cfg.gate.c,
        train_rows: rep.rows,
        train_unbinned: rep.unbinned,
        train_accuracy: rep.train_accuracy,
        iterations: rep.iterations,
        pca_explained: explained,
        seconds: timing.gate,
        routing_accuracy: f64::NAN,
        confusion: vec![],
        mean_probabilities: vec![],
    };
    Ok(Some((g, gp, info)))
}

/// One read of the test shard: the global model, the oracle, the gates,
/// and every (group, α) curve of the sweep (its test scores filled in).
fn evaluate_stage(
    r: &Run<'_>,
    header: &crate::stats::StatsHeader,
    models: &crate::models::ModelSet,
    gate: Option<&(Gate, usize)>,
    experts: Option<&crate::route::LoadedExperts>,
    sw: &mut Sweep,
    threads: crate::Threads,
) -> Result<score::TestTable> {
    let plan = r.plan;
    let test = TestSpec {
        path: plan.test.clone(),
        noise: match plan.config.data.test_spectra {
            config::TestSpectra::Draw => Some(NoiseModel::new(r.level, r.seed)?),
            config::TestSpectra::Stored => None,
        },
        chunk_rows: 256,
    };
    let test_rows = Shard::open(&plan.test, &header.layout)?.rows() as u64;
    r.stage(
        "evaluate",
        &format!(
            "{test_rows} test rows: global, oracle{}{}",
            if experts.is_some() {
                ", LightGBM and the oracle-hybrid"
            } else {
                ""
            },
            if gate.is_some() {
                ", soft and hard gate"
            } else {
                ""
            }
        ),
        test_rows,
    );
    let t = Instant::now();
    let table = score::score(
        &test,
        header,
        models,
        gate.map(|(g, p)| (g, *p)),
        experts,
        Some(sw),
        threads,
        &mut |n| (r.progress)(Event::Advance(n)),
    )?;
    sw.timing.test_s = t.elapsed().as_secs_f64();
    Ok(table)
}

/// Writes a file through a buffered writer, naming the path on error.
pub(crate) fn write_file(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let io = |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    f(&mut w).map_err(io)?;
    std::io::Write::flush(&mut w).map_err(io)
}

/// Loads, checks and plans a configuration file; `out` overrides its output
/// directory.
pub fn plan_file(path: &Path, out: Option<&Path>) -> Result<Plan> {
    let config = Config::load(path)?;
    let base: PathBuf = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    config.plan(Some(path), &base, out)
}
