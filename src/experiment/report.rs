//! The experiment's outputs: `results.json` (DESIGN §8), `per_bin.csv`,
//! `report.md` with the reference reports' tables, and the PNG plots.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::results::{GateInfo, LevelSummary, PartitionResult, RunResult, Stat};
use super::score::GateTable;
use super::{write_file, Experiment};
use crate::partition::{Partition, PartitionKind};
use crate::report_figures::{bars, grouped_bars, heatmap, scatter_pred_true};
use crate::Result;

/// Schema tag of `results.json`.
pub(crate) const SCHEMA: &str = "gramstream.results/1";

/// Columns of `per_bin.csv`.
pub const PER_BIN_HEADER: &str = "noise,seed,partition,bin,name,alpha,selected_by,n_train,n_test,r2,r2_global,delta_r2,mae,mae_global,rmse,r2_soft,r2_hard,routing_accuracy";

#[derive(Serialize)]
struct TopTiming {
    accumulate: f64,
    solve: f64,
    gate: f64,
    evaluate: f64,
    total: f64,
    experiment: f64,
}

#[derive(Serialize)]
struct ResultsJson<'a> {
    schema: &'static str,
    name: &'a str,
    description: &'a str,
    config: Option<String>,
    version: &'static str,
    data: &'a super::results::DataInfo,
    global: &'a super::results::GlobalScore,
    moe: &'a std::collections::BTreeMap<String, super::results::PartitionResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gate: Option<&'a super::results::GateInfo>,
    timing_s: TopTiming,
    runs: &'a [RunResult],
    summary: &'a [LevelSummary],
}

/// Writes `results.json`, `per_bin.csv`, `report.md` and (if configured)
/// `plots/*.png` into `dir`.
pub fn write(exp: &Experiment, dir: &Path) -> Result<()> {
    let first = &exp.runs[0];
    let json = ResultsJson {
        schema: SCHEMA,
        name: &exp.plan.config.name,
        description: &exp.plan.config.description,
        config: exp.plan.source.as_ref().map(|p| p.display().to_string()),
        version: env!("CARGO_PKG_VERSION"),
        data: &first.data,
        global: &first.global,
        moe: &first.moe,
        gate: first.gate.as_ref(),
        timing_s: TopTiming {
            accumulate: first.timing_s.accumulate,
            solve: first.timing_s.solve,
            gate: first.timing_s.gate,
            evaluate: first.timing_s.evaluate,
            total: first.timing_s.total,
            experiment: exp.total_s,
        },
        runs: &exp.runs,
        summary: &exp.summary,
    };
    write_file(&dir.join("results.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, &json)?;
        writeln!(w)
    })?;
    write_file(&dir.join("per_bin.csv"), |w| write_per_bin(&exp.runs, w))?;
    write_file(&dir.join("predictions.csv"), |w| {
        write_predictions(exp, &exp.artifacts[0].table, w)
    })?;
    let figures = if exp.plan.config.output.plots {
        let plots = dir.join("plots");
        std::fs::create_dir_all(&plots).map_err(|e| crate::Error::Io {
            path: plots.clone(),
            source: e,
        })?;
        write_plots(exp, &plots)?
            .into_iter()
            .map(|p| p.strip_prefix(dir).map(Path::to_path_buf).unwrap_or(p))
            .collect()
    } else {
        vec![]
    };
    let md = markdown(exp, &figures);
    write_file(&dir.join("report.md"), |w| w.write_all(md.as_bytes()))
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, num)
}

/// Columns `per_bin.csv` gains when tree experts were trained (empty in
/// the other partitions' rows).
pub const PER_BIN_EXPERT_COLUMNS: &str = "chosen,lightgbm_r2,hybrid_r2,delta_r2_hybrid_vs_ridge,best_on_test,ridge_validation_mse,lightgbm_validation_mse,lightgbm_train_rows,lightgbm_validation_rows,lightgbm_seconds";

/// The expert columns of one bin (empty cells for a bin without them).
fn expert_cells(e: Option<&super::results::BinExperts>) -> String {
    match e {
        None => ",".repeat(PER_BIN_EXPERT_COLUMNS.matches(',').count()),
        Some(e) => {
            let c = &e.choice;
            format!(
                "{},{},{},{},{},{},{},{},{},{}",
                c.chosen,
                opt(e.lightgbm_r2),
                num(e.hybrid_r2),
                num(e.delta_r2_vs_ridge),
                e.best_on_test,
                opt(c.ridge_validation_mse),
                opt(c.lightgbm_validation_mse),
                c.lightgbm_train_rows,
                c.lightgbm_validation_rows,
                num(c.lightgbm_seconds)
            )
        }
    }
}

/// One CSV row per run, partition and bin.
pub(crate) fn write_per_bin(runs: &[RunResult], mut w: impl Write) -> std::io::Result<()> {
    let experts = runs
        .iter()
        .flat_map(|r| r.moe.values())
        .any(|p| p.hybrid.is_some());
    if experts {
        writeln!(w, "{PER_BIN_HEADER},{PER_BIN_EXPERT_COLUMNS}")?;
    } else {
        writeln!(w, "{PER_BIN_HEADER}")?;
    }
    for r in runs {
        for (part, pr) in &r.moe {
            for b in &pr.bins {
                write!(
                    w,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    r.data.noise,
                    r.data.seed,
                    part,
                    b.id,
                    b.name,
                    opt(b.alpha),
                    b.selected_by.as_deref().unwrap_or(""),
                    b.n_train,
                    b.n_test,
                    num(b.r2),
                    num(b.r2_global),
                    num(b.delta_r2),
                    num(b.mae),
                    num(b.mae_global),
                    num(b.rmse),
                    opt(b.r2_soft),
                    opt(b.r2_hard),
                    opt(b.routing_accuracy),
                )?;
                if experts {
                    write!(w, ",{}", expert_cells(b.experts.as_ref()))?;
                }
                writeln!(w)?;
            }
        }
    }
    Ok(())
}

/// The first run's test rows: `row,log_g,teff,mh,snr,global`, per partition
/// `bin_<p>` (empty outside every bin) and `oracle_<p>`, and with a gate
/// `soft,hard,routed,p_0…p_{k−1}`, and with tree experts
/// `lightgbm_<p>,hybrid_<p>` (LightGBM empty where the bin has none). Numbers in Rust's shortest round-trip form.
pub(crate) fn write_predictions(
    exp: &Experiment,
    t: &super::score::TestTable,
    mut w: impl Write,
) -> std::io::Result<()> {
    let mut head = vec!["row", "log_g", "teff", "mh", "snr", "global"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    for p in &exp.plan.partitions {
        head.push(format!("bin_{}", p.name));
        head.push(format!("oracle_{}", p.name));
    }
    if let Some(g) = &t.gate {
        head.extend(["soft", "hard", "routed"].map(String::from));
        head.extend((0..g.k).map(|k| format!("p_{k}")));
    }
    if let Some(tt) = &t.trees {
        let name = &exp.plan.partitions[tt.partition].name;
        head.push(format!("lightgbm_{name}"));
        head.push(format!("hybrid_{name}"));
    }
    writeln!(w, "{}", head.join(","))?;
    for i in 0..t.len() {
        let k = &t.keys[i];
        let mut row = vec![
            i.to_string(),
            num(t.y[i]),
            num(k.teff),
            num(k.mh),
            num(k.snr),
            num(t.global[i]),
        ];
        for pi in 0..exp.plan.partitions.len() {
            row.push(t.bins[pi][i].map_or(String::new(), |b| b.to_string()));
            row.push(num(t.oracle[pi][i]));
        }
        if let Some(g) = &t.gate {
            row.push(num(g.soft[i]));
            row.push(num(g.hard[i]));
            row.push(g.routed[i].to_string());
            row.extend(g.probs[i * g.k..(i + 1) * g.k].iter().map(|&p| num(p)));
        }
        if let Some(tt) = &t.trees {
            row.push(num(tt.lightgbm[i]));
            row.push(num(tt.hybrid[i]));
        }
        writeln!(w, "{}", row.join(","))?;
    }
    Ok(())
}

/// `x.xxxx` or `x.xxxx ± y.yyyy` over seeds.
pub(super) fn pm(s: Option<&Stat>, prec: usize, signed: bool) -> String {
    match s {
        None => "—".into(),
        Some(s) if !s.mean.is_finite() => "—".into(),
        Some(s) => {
            let m = if signed {
                format!("{:+.*}", prec, s.mean)
            } else {
                format!("{:.*}", prec, s.mean)
            };
            // Counts and fixed settings do not vary over seeds: no "± 0".
            if s.values.len() > 1 && s.std > 0.0 {
                format!("{m} ± {:.*}", prec, s.std)
            } else {
                m
            }
        }
    }
}

/// An α over seeds: `868.5`, `1000`, or `655.1 ± 120.3`.
pub(super) fn alpha_cell(s: Option<&Stat>) -> String {
    let one = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    match s {
        Some(s) if s.mean.is_finite() => {
            if s.values.len() > 1 && s.std > 0.0 {
                format!("{} ± {}", one(s.mean), one(s.std))
            } else {
                one(s.mean)
            }
        }
        _ => "—".into(),
    }
}

fn f(v: f64, prec: usize) -> String {
    if v.is_finite() {
        format!("{v:.prec$}")
    } else {
        "—".into()
    }
}

fn fs(v: f64, prec: usize) -> String {
    if v.is_finite() {
        format!("{v:+.prec$}")
    } else {
        "—".into()
    }
}

/// The (T_eff, [M/H]) grid shape and axis labels of a T_eff × [M/H] partition.
fn grid_of(
    kind: &PartitionKind,
    names: &[String],
) -> Option<(usize, usize, Vec<String>, Vec<String>)> {
    let PartitionKind::TeffMh { teff, mh } = kind else {
        return None;
    };
    let (nt, nm) = (teff.bins(), mh.bins());
    let word = |s: &str, i: usize| s.split_whitespace().nth(i).unwrap_or(s).to_string();
    let rows = (0..nt)
        .map(|t| format!("T_eff {}", word(&names[t * nm], 0)))
        .collect();
    let cols = (0..nm)
        .map(|m| format!("[M/H] {}", word(&names[m], 1)))
        .collect();
    Some((nt, nm, rows, cols))
}

/// The findings of the reference reports, checked on these numbers.
fn findings(exp: &Experiment, s: &LevelSummary) -> Vec<String> {
    let mut out = Vec::new();
    let get = |k: &str| s.metrics.get(k);
    let mean = |k: &str| get(k).map_or(f64::NAN, |s| s.mean);
    let seeds = if s.seeds.len() > 1 {
        format!(" (mean over {} seeds)", s.seeds.len())
    } else {
        String::new()
    };
    for part in &exp.plan.partitions {
        let p = &part.name;
        let d = mean(&format!("moe.{p}.oracle.delta_r2"));
        let (ref_d, thr) = match part.kind {
            PartitionKind::TeffMh { .. } => ("+0.164 at noise 1 on 1M rows (report 000/001)", 0.05),
            PartitionKind::Snr { .. } => ("+0.050 at noise 1 on 1M rows (report 003)", 0.02),
        };
        out.push(format!(
            "**Structure bonus, {p}:** oracle ΔR² = {}{seeds}; the reports' decision threshold was ΔR² ≥ {thr} and they measured {ref_d}. **{}**.",
            pm(get(&format!("moe.{p}.oracle.delta_r2")), 4, true),
            if d >= thr { "Holds" } else if d > 0.0 { "Positive but below the threshold" } else { "Does not hold" }
        ));
        if let Some((nt, nm, _, _)) = grid_of(&part.kind, &part.bin_names) {
            // Metal-poor = the first [M/H] column.
            let r2 = |b: usize| mean(&format!("moe.{p}.bins.{b}.r2"));
            let dr = |b: usize| mean(&format!("moe.{p}.bins.{b}.delta_r2"));
            let mut lowest = 0;
            for t in 0..nt {
                let row: Vec<f64> = (0..nm).map(|m| r2(t * nm + m)).collect();
                let min = row.iter().cloned().fold(f64::INFINITY, f64::min);
                if row[0] == min {
                    lowest += 1;
                }
            }
            let poor: Vec<String> = (0..nt).map(|t| f(r2(t * nm), 3)).collect();
            out.push(format!(
                "**Metal-poor bins hardest:** in {lowest} of {nt} T_eff rows the metal-poor bin has the lowest oracle R² (metal-poor R²: {}; the reports: 0.31–0.54). **{}**.",
                poor.join(", "),
                if lowest == nt { "Holds" } else if lowest > 0 { "Partly" } else { "Does not hold" }
            ));
            let poor_gain = (0..nt).map(|t| dr(t * nm)).sum::<f64>() / nt as f64;
            let other_gain = (0..nt)
                .flat_map(|t| (1..nm).map(move |m| t * nm + m))
                .map(dr)
                .sum::<f64>()
                / (nt * (nm - 1)) as f64;
            out.push(format!(
                "**Metal-poor bins gain most:** mean ΔR² of the metal-poor bins {} against {} for the others (the reports: +0.17–0.19 against less). **{}**.",
                fs(poor_gain, 3),
                fs(other_gain, 3),
                if poor_gain > other_gain { "Holds" } else { "Does not hold" }
            ));
            if exp.plan.gate_partition.is_some() {
                let soft = mean(&format!("moe.{p}.soft_gate.r2"));
                let hard = mean(&format!("moe.{p}.hard_gate.r2"));
                out.push(format!(
                    "**Soft gate beats hard:** R² soft {} against hard {} (the reports: 0.6077 against 0.6018). **{}**.",
                    pm(get(&format!("moe.{p}.soft_gate.r2")), 4, false),
                    pm(get(&format!("moe.{p}.hard_gate.r2")), 4, false),
                    if soft > hard { "Holds" } else { "Does not hold" }
                ));
                let rho = mean(&format!("moe.{p}.soft_gate.rho"));
                out.push(format!(
                    "**ρ:** soft {} and hard {}, routing accuracy {} (the reports: ρ 0.72 soft, 0.68 hard, 86.3 % accuracy; target ρ ≥ 0.70). **{}**.",
                    pm(get(&format!("moe.{p}.soft_gate.rho")), 3, false),
                    pm(get(&format!("moe.{p}.hard_gate.rho")), 3, false),
                    pm(get(&format!("moe.{p}.soft_gate.routing_accuracy")), 3, false),
                    if rho >= 0.7 { "Holds" } else { "Below the 0.70 target" }
                ));
            }
        }
        out.extend(super::expert_report::findings(part, s, &seeds));
    }
    out
}

/// The table of models (global, oracle, soft and hard gate) of one noise
/// level, with mean ± std over its seeds, and the global α and coverage.
pub(crate) fn model_table(exp: &Experiment, lvl: &LevelSummary) -> String {
    let mut s = String::new();
    let m = |k: &str| lvl.metrics.get(k);
    let _ = writeln!(s, "| model | R² | MAE (dex) | RMSE (dex) | ΔR² vs global | ρ | routing accuracy |\n|---|---|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "| global Ridge | {} | {} | {} | | | |",
        pm(m("global.r2"), 4, false),
        pm(m("global.mae"), 4, false),
        pm(m("global.rmse"), 4, false)
    );
    for p in &exp.plan.partitions {
        let n = &p.name;
        let _ = writeln!(
            s,
            "| oracle MoE, {n} | {} | {} | {} | {} | 1 | 1 |",
            pm(m(&format!("moe.{n}.oracle.r2")), 4, false),
            pm(m(&format!("moe.{n}.oracle.mae")), 4, false),
            pm(m(&format!("moe.{n}.oracle.rmse")), 4, false),
            pm(m(&format!("moe.{n}.oracle.delta_r2")), 4, true),
        );
        if m(&format!("moe.{n}.hybrid.r2")).is_some() {
            let _ = writeln!(
                s,
                "| oracle-hybrid (Ridge or LightGBM per bin), {n} | {} | {} | {} | {} | | 1 |",
                pm(m(&format!("moe.{n}.hybrid.r2")), 4, false),
                pm(m(&format!("moe.{n}.hybrid.mae")), 4, false),
                pm(m(&format!("moe.{n}.hybrid.rmse")), 4, false),
                pm(m(&format!("moe.{n}.hybrid.delta_r2")), 4, true),
            );
        }
        for (kind, label) in [
            ("soft_gate", "soft gate"),
            ("hard_gate", "hard gate (argmax)"),
        ] {
            if m(&format!("moe.{n}.{kind}.r2")).is_some() {
                let _ = writeln!(
                    s,
                    "| {label} MoE, {n} | {} | {} | {} | {} | {} | {} |",
                    pm(m(&format!("moe.{n}.{kind}.r2")), 4, false),
                    pm(m(&format!("moe.{n}.{kind}.mae")), 4, false),
                    pm(m(&format!("moe.{n}.{kind}.rmse")), 4, false),
                    pm(m(&format!("moe.{n}.{kind}.delta_r2")), 4, true),
                    pm(m(&format!("moe.{n}.{kind}.rho")), 3, false),
                    pm(m(&format!("moe.{n}.{kind}.routing_accuracy")), 3, false),
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nGlobal α = {}; oracle coverage: {}.",
        pm(m("global.alpha"), 1, false),
        exp.plan
            .partitions
            .iter()
            .map(|p| format!(
                "{} {}",
                p.name,
                pm(m(&format!("moe.{}.oracle.coverage", p.name)), 3, false)
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    s
}

/// The model tables and the findings of every level: what the CLI prints.
pub fn summary_text(exp: &Experiment) -> String {
    let mut s = String::new();
    for lvl in &exp.summary {
        let _ = writeln!(
            s,
            "\nnoise {}, {}:\n",
            lvl.noise,
            if lvl.seeds.len() > 1 {
                format!("mean ± std over seeds {:?}", lvl.seeds)
            } else {
                format!("seed {}", lvl.seeds[0])
            }
        );
        s.push_str(&model_table(exp, lvl));
        let _ = writeln!(s);
        for line in findings(exp, lvl) {
            let _ = writeln!(s, "- {}", line.replace("**", ""));
        }
    }
    s
}

/// `report.md`: the setup, each level's tables and findings, the noise
/// levels compared, the gate, the runs, the time, the figures and the files.
fn markdown(exp: &Experiment, figures: &[PathBuf]) -> String {
    let first = &exp.runs[0];
    let mut s = String::new();
    setup(&mut s, exp);
    for lvl in &exp.summary {
        level(&mut s, exp, lvl);
    }
    if exp.summary.len() > 1 {
        noise_table(&mut s, exp);
        noise_verdicts(&mut s, exp);
    }
    if let Some(g) = &first.gate {
        gate(&mut s, exp, g);
    }
    if exp.runs.len() > 1 {
        runs_table(&mut s, exp);
    }
    time_table(&mut s, exp);
    if !figures.is_empty() {
        figure_list(&mut s, first, figures);
    }
    let _ = writeln!(
        s,
        "\nFiles: `results.json` (every number; schema {SCHEMA}), `per_bin.csv`, `predictions.csv` (the first run's test rows), `models.h5` (the first run's experts, for `gramstream predict`), `runs/*/sweep.csv` (every α of every bin)."
    );
    s
}

/// The title, the description, where the numbers came from, and the
/// `## Setup` table of data, runs, partitions, α grid and gate (the first
/// run's: every run reads the same shards).
fn setup(s: &mut String, exp: &Experiment) {
    let cfg = &exp.plan.config;
    let first = &exp.runs[0];
    let _ = writeln!(s, "# {}\n", cfg.name);
    if !cfg.description.is_empty() {
        let _ = writeln!(s, "{}\n", cfg.description.trim());
    }
    let _ = writeln!(
        s,
        "Generated by gramstream {} from {} in {:.1} s.\n",
        env!("CARGO_PKG_VERSION"),
        exp.plan
            .source
            .as_ref()
            .map_or("a configuration built in code".into(), |p| format!(
                "`{}`",
                p.display()
            )),
        exp.total_s
    );
    let _ = writeln!(s, "## Setup\n\n| | |\n|---|---|");
    let _ = writeln!(
        s,
        "| training rows | {} in {} shard(s) |",
        first.data.train_rows,
        first.data.train_shards.len()
    );
    let _ = writeln!(
        s,
        "| test rows | {} (`{}`), spectra: {} |",
        first.data.test_rows, first.data.test, first.data.test_spectra
    );
    let _ = writeln!(s, "| pixels | {} |", first.data.pixels);
    if !first.data.precision.is_f64() {
        let _ = writeln!(
            s,
            "| Gram products | {}: f32 block products summed in f64 (README, \"Mixed precision\") |",
            first.data.precision
        );
    }
    let _ = writeln!(
        s,
        "| noise levels × seeds | {:?} × {:?} |",
        cfg.noise.levels, cfg.noise.seeds
    );
    let _ = writeln!(
        s,
        "| partitions | {} |",
        exp.plan
            .partitions
            .iter()
            .map(|p| format!("{} ({} bins)", p.name, p.bins()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let a = &exp.plan.alphas;
    let _ = writeln!(
        s,
        "| Ridge α | {} values from {:e} to {:e}; chosen by {}{} |",
        a.len(),
        a[0],
        a[a.len() - 1],
        exp.plan.select.describe(),
        match (exp.plan.select, cfg.ridge.alpha) {
            (crate::sweep::Select::Fixed, Some(x)) => format!(" = {x:e}"),
            (crate::sweep::Select::Cv, _) => format!(" ({} folds)", cfg.stats.folds),
            _ => String::new(),
        }
    );
    if let Some(e) = &exp.plan.experts {
        let l = &e.lightgbm;
        let _ = writeln!(
            s,
            "| experts per bin of {} | {}; LightGBM {} trees, depth {}, {} leaves, learning rate {}, feature fraction {}, min {} rows per leaf, L1 {} L2 {}; on ≤ {} rows per bin kept by the pass (1 byte per pixel, boundaries from {} sampled rows); chosen on fold {} |",
            exp.plan.partitions[e.partition].name,
            e.kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "),
            l.n_estimators,
            l.max_depth,
            l.num_leaves,
            l.learning_rate,
            l.feature_fraction,
            l.min_child_samples,
            l.reg_alpha,
            l.reg_lambda,
            first.data.expert_rows_per_bin.map_or("—".into(), |n| n.to_string()),
            e.feed.boundary_rows,
            e.validation_fold
        );
    }
    if let Some(g) = &first.gate {
        let _ = writeln!(
            s,
            "| gate | 37 features (10 PCA explaining {:.2} % of the scatter, 27 line features), multinomial logistic regression C = {} on {} reservoir rows |",
            100.0 * g.pca_explained,
            g.c,
            g.train_rows
        );
    }
}

/// `## Results at noise …`: the model table, one per-bin table per
/// partition, and the reference reports' findings checked on this level.
fn level(s: &mut String, exp: &Experiment, lvl: &LevelSummary) {
    let seeds = lvl.seeds.len();
    let _ = writeln!(
        s,
        "\n## Results at noise {}{}\n",
        lvl.noise,
        if seeds > 1 {
            format!(" — mean ± std over seeds {:?}", lvl.seeds)
        } else {
            format!(" — seed {}", lvl.seeds[0])
        }
    );
    s.push_str(&model_table(exp, lvl));
    for p in &exp.plan.partitions {
        per_bin_table(s, p, lvl);
        super::expert_report::tables(s, exp, p, lvl);
    }
    let _ = writeln!(s, "\n### What the reference reports found, checked here\n");
    for line in findings(exp, lvl) {
        let _ = writeln!(s, "- {line}");
    }
}

/// `### Per bin: …` of one partition at one level; the gate's three columns
/// only where this partition has a gate.
fn per_bin_table(s: &mut String, p: &Partition, lvl: &LevelSummary) {
    let m = |k: &str| lvl.metrics.get(k);
    let n = &p.name;
    let gate = m(&format!("moe.{n}.soft_gate.r2")).is_some();
    let _ = writeln!(s, "\n### Per bin: {n}\n");
    let _ = write!(
        s,
        "| bin | name | α | n_train | n_test | R² oracle | R² global | ΔR² | MAE | MAE global |"
    );
    if gate {
        let _ = write!(s, " R² soft | R² hard | routed to own bin |");
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|---|---|---|{}",
        if gate { "---|---|---|" } else { "" }
    );
    for (b, name) in p.bin_names.iter().enumerate() {
        let k = |f: &str| m(&format!("moe.{n}.bins.{b}.{f}"));
        let _ = write!(
            s,
            "| {b} | {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            alpha_cell(k("alpha")),
            pm(k("n_train"), 0, false),
            pm(k("n_test"), 0, false),
            pm(k("r2"), 4, false),
            pm(k("r2_global"), 4, false),
            pm(k("delta_r2"), 4, true),
            pm(k("mae"), 3, false),
            pm(k("mae_global"), 3, false),
        );
        if gate {
            let _ = write!(
                s,
                " {} | {} | {} |",
                pm(k("r2_soft"), 4, false),
                pm(k("r2_hard"), 4, false),
                pm(k("routing_accuracy"), 3, false)
            );
        }
        let _ = writeln!(s);
    }
}

/// `## Noise levels compared`: global and oracle R² and ΔR² of every
/// partition, one row per level (with more than one level).
fn noise_table(s: &mut String, exp: &Experiment) {
    let _ = writeln!(s, "\n## Noise levels compared\n");
    let _ = write!(s, "| noise | global R² |");
    for p in &exp.plan.partitions {
        let _ = write!(s, " oracle R² {0} | ΔR² {0} |", p.name);
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "|---|---|{}",
        "---|---|".repeat(exp.plan.partitions.len())
    );
    for lvl in &exp.summary {
        let m = |k: &str| lvl.metrics.get(k);
        let _ = write!(s, "| {} | {} |", lvl.noise, pm(m("global.r2"), 4, false));
        for p in &exp.plan.partitions {
            let _ = write!(
                s,
                " {} | {} |",
                pm(m(&format!("moe.{}.oracle.r2", p.name)), 4, false),
                pm(m(&format!("moe.{}.oracle.delta_r2", p.name)), 4, true)
            );
        }
        let _ = writeln!(s);
    }
}

/// Whether noise amplifies each partition's structure bonus: the mean
/// oracle ΔR² at the highest level against the lowest, by the reports'
/// measure (their 3.3× from noise 0.2 to 1).
fn noise_verdicts(s: &mut String, exp: &Experiment) {
    let d = |l: &LevelSummary, p: &str| {
        l.metrics
            .get(&format!("moe.{p}.oracle.delta_r2"))
            .map_or(f64::NAN, |s| s.mean)
    };
    let (lo, hi) = (
        exp.summary
            .iter()
            .min_by(|a, b| a.noise.total_cmp(&b.noise))
            .unwrap(),
        exp.summary
            .iter()
            .max_by(|a, b| a.noise.total_cmp(&b.noise))
            .unwrap(),
    );
    for p in &exp.plan.partitions {
        let (dh, dl) = (d(hi, &p.name), d(lo, &p.name));
        let verdict = if dl > 0.0 && dh > dl {
            format!(
                "ΔR² at noise {} is {:.2}× that at noise {} (the reports: 3.3× from 0.2 to 1 on teff_mh). **Holds in direction**{}",
                hi.noise,
                dh / dl,
                lo.noise,
                if dh / dl < 2.5 { ", weaker than in the reports" } else { "" }
            )
        } else {
            format!(
                "ΔR² {} at noise {} against {} at noise {} (the reports: +0.16 against +0.05 on teff_mh). **{}**",
                fs(dh, 4),
                hi.noise,
                fs(dl, 4),
                lo.noise,
                if dh > dl { "Larger at the higher noise" } else { "Does not hold" }
            )
        };
        let _ = writeln!(
            s,
            "\n**Noise amplifies the structure bonus ({}):** {verdict}.",
            p.name
        );
    }
}

/// `## Gate`: how the first run's gate was trained, and its confusion
/// matrix on the test rows, labelled with its partition's bin names.
fn gate(s: &mut String, exp: &Experiment, g: &GateInfo) {
    let first = &exp.runs[0];
    let _ = writeln!(
        s,
        "\n## Gate (noise {}, seed {})\n\nTrained on {} reservoir rows ({} outside every bin left out): training accuracy {:.1} %, {} Newton iterations, {:.1} s. On the test rows inside a bin, routing accuracy {:.1} %.\n\nConfusion matrix (rows: true bin; columns: routed bin; test rows):\n",
        first.data.noise,
        first.data.seed,
        g.train_rows,
        g.train_unbinned,
        100.0 * g.train_accuracy,
        g.iterations,
        g.seconds,
        100.0 * g.routing_accuracy
    );
    let names = &exp.plan.partitions[exp.plan.gate_partition.unwrap_or(0)].bin_names;
    let _ = writeln!(s, "| true \\ routed | {} |", names.join(" | "));
    let _ = writeln!(s, "|---|{}", "---|".repeat(names.len()));
    for (i, row) in g.confusion.iter().enumerate() {
        let _ = writeln!(
            s,
            "| {} | {} |",
            names[i],
            row.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
}

/// `## Runs`: global and oracle R² and seconds of every run (with more
/// than one run).
fn runs_table(s: &mut String, exp: &Experiment) {
    let _ = writeln!(
        s,
        "\n## Runs\n\n| noise | seed | global R² | {} | seconds |",
        exp.plan
            .partitions
            .iter()
            .map(|p| format!("oracle R² {}", p.name))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(
        s,
        "|---|---|---|{}---|",
        "---|".repeat(exp.plan.partitions.len())
    );
    for r in &exp.runs {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} |",
            r.data.noise,
            r.data.seed,
            f(r.global.r2, 4),
            exp.plan
                .partitions
                .iter()
                .map(|p| r.moe.get(&p.name).map_or("—".into(), |x| f(x.oracle.r2, 4)))
                .collect::<Vec<_>>()
                .join(" | "),
            r.timing_s.total
        );
    }
}

/// `## Time`: the first run's stages and the whole experiment, in seconds.
fn time_table(s: &mut String, exp: &Experiment) {
    let first = &exp.runs[0];
    let t = &first.timing_s;
    let (head, sep, cell) = match t.experts {
        Some(e) => (" experts |", "---|", format!(" {e:.1} s |")),
        None => ("", "", String::new()),
    };
    let _ = writeln!(
        s,
        "\n## Time (first run)\n\n| accumulate | solve | gate |{head} evaluate | run total | experiment total |\n|---|---|---|{sep}---|---|---|\n| {:.1} s | {:.1} s | {:.1} s |{cell} {:.1} s | {:.1} s | {:.1} s |",
        t.accumulate,
        t.solve,
        t.gate,
        t.evaluate,
        t.total,
        exp.total_s
    );
}

/// `## Figures`: each plot under a heading of its file stem, linked by its
/// path relative to `report.md`.
fn figure_list(s: &mut String, first: &RunResult, figures: &[PathBuf]) {
    let _ = writeln!(
        s,
        "\n## Figures (noise {}, seed {})\n",
        first.data.noise, first.data.seed
    );
    for p in figures {
        let name = p
            .file_stem()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        let _ = writeln!(s, "### {name}\n\n![{name}]({})\n", p.display());
    }
}

/// Draws the figures of the first run of each level; returns their paths.
pub(crate) fn write_plots(exp: &Experiment, dir: &Path) -> Result<Vec<PathBuf>> {
    let first = &exp.runs[0];
    let mut plots = Plots {
        exp,
        dir,
        tag: format!("noise {}, seed {}", first.data.noise, first.data.seed),
        out: Vec::new(),
    };
    plots.model_r2()?;
    for (pi, p) in exp.plan.partitions.iter().enumerate() {
        plots.partition(pi, p)?;
    }
    // α paths (every bin's training, GCV, CV and test R² against α).
    plots.out.extend(crate::sweep::report::write_plots(
        &exp.artifacts[0].sweep,
        dir,
    )?);
    // Noise levels: per-bin ΔR² at each level.
    if exp.summary.len() > 1 {
        for p in &exp.plan.partitions {
            plots.noise_delta_r2(p)?;
        }
    }
    Ok(plots.out)
}

/// The figures of [`write_plots`] as they are drawn: each method draws one
/// figure (or one partition's) of the first run into `dir` and appends its
/// path to `out`, whose order is the order of the report's figure list.
struct Plots<'a> {
    exp: &'a Experiment,
    dir: &'a Path,
    /// `noise …, seed …` of the first run, for the titles.
    tag: String,
    out: Vec<PathBuf>,
}

impl<'a> Plots<'a> {
    /// The first run's scores of partition `p`.
    fn scores(&self, p: &Partition) -> &'a PartitionResult {
        &self.exp.runs[0].moe[&p.name]
    }

    /// `model_r2.png`: test R² of the global model, then of each
    /// partition's oracle and (where trained) soft and hard gate.
    fn model_r2(&mut self) -> Result<()> {
        let first = &self.exp.runs[0];
        let mut names = vec!["global".to_string()];
        let mut r2 = vec![first.global.r2];
        for p in &self.exp.plan.partitions {
            let pr = &first.moe[&p.name];
            names.push(format!("oracle {}", p.name));
            r2.push(pr.oracle.r2);
            if let (Some(s), Some(h)) = (&pr.soft_gate, &pr.hard_gate) {
                names.push(format!("soft gate {}", p.name));
                r2.push(s.r2);
                names.push(format!("hard gate {}", p.name));
                r2.push(h.r2);
            }
        }
        let path = self.dir.join("model_r2.png");
        bars(
            &path,
            &format!("Test R² by model ({})", self.tag),
            &names,
            &r2,
            "R² (test)",
        )?;
        self.out.push(path);
        Ok(())
    }

    /// The figures of partition `pi`: per-bin R², ΔR², predicted vs true,
    /// training rows per bin, the tree experts' five if they were trained
    /// on `p`, and the gate's three if it routes to `p`.
    fn partition(&mut self, pi: usize, p: &Partition) -> Result<()> {
        let exp = self.exp;
        let t = &exp.artifacts[0].table;
        self.per_bin_r2(p)?;
        self.delta_r2(p)?;
        // Colour by true bin; rows outside every bin are a last group.
        let k = p.bins();
        let group: Vec<usize> = t.bins[pi].iter().map(|b| b.unwrap_or(k)).collect();
        let mut gnames = p.bin_names.clone();
        if group.contains(&k) {
            gnames.push("outside bins (global)".into());
        }
        self.pred_vs_true(pi, p, &group, &gnames)?;
        self.samples_per_bin(p)?;
        // Tree experts trained on this partition: seed 002's five figures.
        self.out.extend(super::expert_report::figures(
            exp, pi, p, self.dir, &self.tag,
        )?);
        if let (Some(gt), Some(g)) = (
            t.gate.as_ref().filter(|g| g.partition == pi),
            &exp.runs[0].gate,
        ) {
            self.gate(p, g)?;
            self.soft_gate_pred_vs_true(p, gt, &group, &gnames)?;
        }
        Ok(())
    }

    /// `perbin_r2_<p>.png`: the oracle expert, the global model and (with a
    /// gate) the soft gate on each bin's test rows.
    fn per_bin_r2(&mut self, p: &Partition) -> Result<()> {
        let pr = self.scores(p);
        let mut series = vec![
            (
                "oracle expert".to_string(),
                pr.bins.iter().map(|b| b.r2).collect::<Vec<_>>(),
            ),
            (
                "global Ridge".to_string(),
                pr.bins.iter().map(|b| b.r2_global).collect(),
            ),
        ];
        if pr.soft_gate.is_some() {
            series.push((
                "soft gate".to_string(),
                pr.bins
                    .iter()
                    .map(|b| b.r2_soft.unwrap_or(f64::NAN))
                    .collect(),
            ));
        }
        let path = self.dir.join(format!("perbin_r2_{}.png", p.name));
        grouped_bars(
            &path,
            &format!("Per-bin test R², {} ({})", p.name, self.tag),
            &p.bin_names,
            &series,
            "R² (test rows of the bin)",
        )?;
        self.out.push(path);
        Ok(())
    }

    /// Each bin's ΔR²: a T_eff × [M/H] heatmap (`delta_r2_heatmap_<p>.png`)
    /// for a grid partition, bars (`delta_r2_<p>.png`) for any other.
    fn delta_r2(&mut self, p: &Partition) -> Result<()> {
        let delta: Vec<f64> = self.scores(p).bins.iter().map(|b| b.delta_r2).collect();
        let path = match grid_of(&p.kind, &p.bin_names) {
            Some((nt, nm, rows, cols)) => {
                let grid: Vec<Vec<f64>> = (0..nt)
                    .map(|i| (0..nm).map(|j| delta[i * nm + j]).collect())
                    .collect();
                let path = self.dir.join(format!("delta_r2_heatmap_{}.png", p.name));
                heatmap(
                    &path,
                    &format!(
                        "ΔR² = R²(oracle expert) − R²(global) per bin ({})",
                        self.tag
                    ),
                    &rows,
                    &cols,
                    &grid,
                    &|v| format!("{v:+.3}"),
                    true,
                )?;
                path
            }
            None => {
                let path = self.dir.join(format!("delta_r2_{}.png", p.name));
                bars(
                    &path,
                    &format!(
                        "ΔR² = R²(oracle expert) − R²(global), {} ({})",
                        p.name, self.tag
                    ),
                    &p.bin_names,
                    &delta,
                    "ΔR²",
                )?;
                path
            }
        };
        self.out.push(path);
        Ok(())
    }

    /// `pred_vs_true_<p>.png`: oracle routing's predictions against the
    /// true log g, coloured by `group` (the true bin) named by `gnames`.
    fn pred_vs_true(
        &mut self,
        pi: usize,
        p: &Partition,
        group: &[usize],
        gnames: &[String],
    ) -> Result<()> {
        let t = &self.exp.artifacts[0].table;
        let path = self.dir.join(format!("pred_vs_true_{}.png", p.name));
        scatter_pred_true(
            &path,
            &format!(
                "Oracle MoE {}: predicted vs true log g ({})",
                p.name, self.tag
            ),
            &t.y,
            &t.oracle[pi],
            group,
            gnames,
        )?;
        self.out.push(path);
        Ok(())
    }

    /// `samples_per_bin_<p>.png`: each bin's training rows.
    fn samples_per_bin(&mut self, p: &Partition) -> Result<()> {
        let path = self.dir.join(format!("samples_per_bin_{}.png", p.name));
        bars(
            &path,
            &format!("Training rows per bin, {} ({})", p.name, self.tag),
            &p.bin_names,
            &self
                .scores(p)
                .bins
                .iter()
                .map(|b| b.n_train as f64)
                .collect::<Vec<_>>(),
            "training rows",
        )?;
        self.out.push(path);
        Ok(())
    }

    /// `gate_confusion.png` (each true bin's test rows as fractions of the
    /// row, so bins of any size compare) and `gate_probabilities.png`.
    fn gate(&mut self, p: &Partition, g: &GateInfo) -> Result<()> {
        let frac: Vec<Vec<f64>> = g
            .confusion
            .iter()
            .map(|row| {
                let n: u64 = row.iter().sum();
                row.iter()
                    .map(|&c| if n > 0 { c as f64 / n as f64 } else { f64::NAN })
                    .collect()
            })
            .collect();
        let path = self.dir.join("gate_confusion.png");
        heatmap(
            &path,
            &format!(
                "Gate routing: true bin → argmax bin, fraction of row (accuracy {:.1} %)",
                100.0 * g.routing_accuracy
            ),
            &p.bin_names,
            &p.bin_names,
            &frac,
            &|v| format!("{v:.2}"),
            false,
        )?;
        self.out.push(path);
        let path = self.dir.join("gate_probabilities.png");
        heatmap(
            &path,
            "Mean gate probability: true bin (rows) × expert (columns)",
            &p.bin_names,
            &p.bin_names,
            &g.mean_probabilities,
            &|v| format!("{v:.2}"),
            false,
        )?;
        self.out.push(path);
        Ok(())
    }

    /// `pred_vs_true_soft_gate.png`: as [`Plots::pred_vs_true`] for the
    /// soft gate's mixture; rows outside every bin are named without
    /// "(global)", since the gate routes them too.
    fn soft_gate_pred_vs_true(
        &mut self,
        p: &Partition,
        gt: &GateTable,
        group: &[usize],
        gnames: &[String],
    ) -> Result<()> {
        let t = &self.exp.artifacts[0].table;
        let path = self.dir.join("pred_vs_true_soft_gate.png");
        let mut soft_names = gnames.to_vec();
        if let Some(n) = soft_names.get_mut(p.bins()) {
            *n = "outside bins".into();
        }
        scatter_pred_true(
            &path,
            &format!(
                "Soft-gate MoE: predicted vs true log g, coloured by true bin ({})",
                self.tag
            ),
            &t.y,
            &gt.soft,
            group,
            &soft_names,
        )?;
        self.out.push(path);
        Ok(())
    }

    /// `noise_delta_r2_<p>.png`: each bin's mean ΔR² over seeds, one series
    /// per noise level.
    fn noise_delta_r2(&mut self, p: &Partition) -> Result<()> {
        let series: Vec<(String, Vec<f64>)> = self
            .exp
            .summary
            .iter()
            .map(|l| {
                (
                    format!("noise {}", l.noise),
                    (0..p.bins())
                        .map(|b| {
                            l.metrics
                                .get(&format!("moe.{}.bins.{b}.delta_r2", p.name))
                                .map_or(f64::NAN, |s| s.mean)
                        })
                        .collect(),
                )
            })
            .collect();
        let path = self.dir.join(format!("noise_delta_r2_{}.png", p.name));
        grouped_bars(
            &path,
            &format!("Structure bonus per bin and noise level, {}", p.name),
            &p.bin_names,
            &series,
            "ΔR² (oracle − global)",
        )?;
        self.out.push(path);
        Ok(())
    }
}
