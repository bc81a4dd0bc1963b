//! The tree experts' part of `report.md` (issue 13, seed 002): Table 1
//! (per bin: Ridge with its α, LightGBM, the validation choice, the
//! hybrid's ΔR²), Table 2 (global Ridge, Ridge oracle, hybrid), the
//! seed's hypotheses checked on these numbers, and its five figures.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::report::{alpha_cell, pm};
use super::results::{BinExperts, LevelSummary};
use super::Experiment;
use crate::experts::ExpertKind;
use crate::partition::{Partition, PartitionKind};
use crate::plot::colors;
use crate::report_figures::experts::{
    bars_with_reference, expert_bars, expert_heatmap, scatter_groups, signed_bars, ExpertScores,
    PointGroup,
};
use crate::Result;

/// The seed's targets: the hybrid's R², its gain over the Ridge oracle,
/// and the gain in the metal-poor bins.
const TARGET_R2: f64 = 0.70;
const TARGET_GAIN: f64 = 0.05;

/// Each bin's chosen kind over the level's runs: `lightgbm`, or
/// `lightgbm 2/3` when seeds disagree.
fn chosen_cell(exp: &Experiment, lvl: &LevelSummary, part: &str, b: usize) -> String {
    let kinds: Vec<ExpertKind> = exp
        .runs
        .iter()
        .filter(|r| r.data.noise == lvl.noise)
        .filter_map(|r| r.moe.get(part)?.bins.get(b)?.experts.as_ref())
        .map(|e| e.choice.chosen)
        .collect();
    let lgbm = kinds.iter().filter(|&&k| k == ExpertKind::LightGbm).count();
    match (lgbm, kinds.len()) {
        (_, 0) => "—".into(),
        (0, _) => "ridge".into(),
        (l, n) if l == n => "**lightgbm**".into(),
        (l, n) => format!("lightgbm {l}/{n}"),
    }
}

/// `### Experts per bin` (Table 1) and `### Experts overall` (Table 2)
/// of partition `p` at one level.
pub(super) fn tables(s: &mut String, exp: &Experiment, p: &Partition, lvl: &LevelSummary) {
    let m = |k: &str| lvl.metrics.get(k);
    let n = &p.name;
    if m(&format!("moe.{n}.hybrid.r2")).is_none() {
        return;
    }
    let fold = exp.plan.experts.as_ref().map_or(0, |e| e.validation_fold);
    let _ = writeln!(
        s,
        "\n### Table 1 — experts per bin: {n}\n\n\
         Ridge at its selected α and LightGBM on each bin's test rows; the hybrid's kind is \
         the one with the smaller MSE on validation fold {fold} (never the test rows). \
         \"best on test\" is what choosing on the test rows would pick (the seed's procedure: optimistic).\n"
    );
    let _ = writeln!(
        s,
        "| bin | name | n_train | LightGBM rows (train / val) | Ridge R² (α) | LightGBM R² | val. MSE Ridge / LightGBM | chosen | ΔR² hybrid vs Ridge | best on test | LightGBM time |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (b, name) in p.bin_names.iter().enumerate() {
        let k = |f: &str| m(&format!("moe.{n}.bins.{b}.{f}"));
        let e = |f: &str| m(&format!("moe.{n}.bins.{b}.experts.{f}"));
        let best: Vec<ExpertKind> = exp
            .runs
            .iter()
            .filter(|r| r.data.noise == lvl.noise)
            .filter_map(|r| r.moe.get(n)?.bins.get(b)?.experts.as_ref())
            .map(|x| x.best_on_test)
            .collect();
        let best = match best.iter().filter(|&&k| k == ExpertKind::LightGbm).count() {
            0 => "ridge".to_string(),
            l if l == best.len() => "lightgbm".to_string(),
            l => format!("lightgbm {l}/{}", best.len()),
        };
        let _ = writeln!(
            s,
            "| {b} | {name} | {} | {} / {} | {} ({}) | {} | {} / {} | {} | {} | {best} | {} s |",
            pm(k("n_train"), 0, false),
            pm(e("lightgbm_train_rows"), 0, false),
            pm(e("lightgbm_validation_rows"), 0, false),
            pm(k("r2"), 4, false),
            alpha_cell(k("alpha")),
            pm(e("lightgbm_r2"), 4, false),
            pm(e("ridge_validation_mse"), 4, false),
            pm(e("lightgbm_validation_mse"), 4, false),
            chosen_cell(exp, lvl, n, b),
            pm(e("delta_r2_vs_ridge"), 4, true),
            pm(e("lightgbm_seconds"), 1, false),
        );
    }
    let h = |f: &str| m(&format!("moe.{n}.hybrid.{f}"));
    let _ = writeln!(
        s,
        "\n### Table 2 — overall: {n}\n\n| method | R² | ΔR² vs global | ΔR² vs Ridge oracle | notes |\n|---|---|---|---|---|"
    );
    let _ = writeln!(
        s,
        "| global Ridge | {} | | | baseline |",
        pm(m("global.r2"), 4, false)
    );
    let _ = writeln!(
        s,
        "| Ridge oracle | {} | {} | | one Ridge expert per bin |",
        pm(m(&format!("moe.{n}.oracle.r2")), 4, false),
        pm(m(&format!("moe.{n}.oracle.delta_r2")), 4, true),
    );
    let _ = writeln!(
        s,
        "| LightGBM oracle | {} | | | LightGBM in every bin that has one |",
        pm(h("lightgbm_oracle_r2"), 4, false),
    );
    let _ = writeln!(
        s,
        "| **oracle-hybrid** | **{}** | {} | {} | kind per bin chosen on validation fold {fold}: {} bin(s) LightGBM |",
        pm(h("r2"), 4, false),
        pm(h("delta_r2"), 4, true),
        pm(h("delta_r2_vs_oracle"), 4, true),
        pm(h("chosen.lightgbm"), 0, false).replace('—', "0"),
    );
    let _ = writeln!(
        s,
        "| hybrid chosen on test | {} | | | optimistic: the test rows choose and score |",
        pm(h("chosen_on_test_r2"), 4, false),
    );
    let _ = writeln!(
        s,
        "| ViT (reference) | ~0.70 | | | seed 002's target, not run here |"
    );
}

/// The seed's three questions on partition `p`'s numbers.
pub(super) fn findings(p: &Partition, lvl: &LevelSummary, seeds: &str) -> Vec<String> {
    let n = &p.name;
    let mean = |k: &str| lvl.metrics.get(k).map_or(f64::NAN, |s| s.mean);
    let hybrid = mean(&format!("moe.{n}.hybrid.r2"));
    if hybrid.is_nan() {
        return Vec::new();
    }
    let gain = mean(&format!("moe.{n}.hybrid.delta_r2_vs_oracle"));
    let verdict = |ok: bool| if ok { "Holds" } else { "Does not hold" };
    let mut out = vec![
        format!(
            "**Oracle-hybrid ≥ {TARGET_R2}, {n}:** R² = {hybrid:.4}{seeds}. **{}**.",
            verdict(hybrid >= TARGET_R2)
        ),
        format!(
            "**Hybrid ΔR² ≥ +{TARGET_GAIN} vs the Ridge oracle, {n}:** ΔR² = {gain:+.4}{seeds}. **{}**.",
            verdict(gain >= TARGET_GAIN)
        ),
    ];
    // The metal-poor bins of the T_eff × [M/H] grid (seed 002's 3 and 6:
    // the mid and hot metal-poor bins).
    if let crate::partition::PartitionKind::TeffMh { mh, .. } = &p.kind {
        let mh = mh.bins();
        let poor: Vec<usize> = (1..p.bins() / mh).map(|t| t * mh).collect();
        let parts: Vec<String> = poor
            .iter()
            .map(|&b| {
                format!(
                    "bin {b} ({}) {:+.4}",
                    p.bin_names[b],
                    mean(&format!("moe.{n}.bins.{b}.experts.delta_r2_vs_ridge"))
                )
            })
            .collect();
        let ok = poor
            .iter()
            .all(|&b| mean(&format!("moe.{n}.bins.{b}.experts.delta_r2_vs_ridge")) >= TARGET_GAIN);
        out.push(format!(
            "**Metal-poor bins improved by ≥ +{TARGET_GAIN} (hybrid vs Ridge):** {}{seeds}. **{}**.",
            parts.join(", "),
            verdict(ok)
        ));
    }
    out
}

/// The display name of an expert kind in the figures, and its column.
const KINDS: [(ExpertKind, &str); 2] = [
    (ExpertKind::Ridge, "Ridge"),
    (ExpertKind::LightGbm, "LightGBM"),
];

fn column(kind: ExpertKind) -> usize {
    KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(0)
}

/// Seed 002's five figures of partition `p` (position `pi`) from the first
/// run, into `dir`: per-bin test R² of each kind, the selection heatmap,
/// the mixtures against the ViT's reference R², the hybrid's per-bin gain
/// hardest bin first, and the hybrid's predictions. None without a hybrid.
pub(super) fn figures(
    exp: &Experiment,
    pi: usize,
    p: &Partition,
    dir: &Path,
    tag: &str,
) -> Result<Vec<PathBuf>> {
    let first = &exp.runs[0];
    let t = &exp.artifacts[0].table;
    let (Some(pr), Some(tt)) = (
        first.moe.get(&p.name),
        t.trees.as_ref().filter(|tt| tt.partition == pi),
    ) else {
        return Ok(Vec::new());
    };
    let Some(hybrid) = &pr.hybrid else {
        return Ok(Vec::new());
    };
    let n = &p.name;
    let file = |stem: &str| dir.join(format!("ceiling_{stem}_{n}.png"));
    let mut out = Vec::new();

    let names: Vec<String> = pr.bins.iter().map(|b| b.name.clone()).collect();
    let kinds: Vec<String> = KINDS.iter().map(|(_, k)| k.to_string()).collect();
    let experts: Vec<Option<&BinExperts>> = pr.bins.iter().map(|b| b.experts.as_ref()).collect();
    let r2: Vec<Vec<f64>> = pr
        .bins
        .iter()
        .zip(&experts)
        .map(|(b, e)| vec![b.r2, e.and_then(|e| e.lightgbm_r2).unwrap_or(f64::NAN)])
        .collect();
    let kind_of = |f: fn(&BinExperts) -> ExpertKind| -> Vec<usize> {
        experts
            .iter()
            .map(|e| column(e.map_or(ExpertKind::Ridge, f)))
            .collect()
    };
    let chosen = kind_of(|e| e.choice.chosen);
    let best = kind_of(|e| e.best_on_test);
    let scores = ExpertScores {
        bins: &names,
        kinds: &kinds,
        r2: &r2,
        chosen: &chosen,
        best_on_test: &best,
    };
    // Metal-poor: the first [M/H] column of the T_eff × [M/H] grid.
    let poor: Vec<usize> = match &p.kind {
        PartitionKind::TeffMh { mh, .. } => (0..names.len()).step_by(mh.bins().max(1)).collect(),
        PartitionKind::Snr { .. } => Vec::new(),
    };
    let path = file("perbin_expert_comparison");
    expert_bars(
        &path,
        &format!("Per-bin test R² by expert, {n} ({tag})"),
        &scores,
        &poor,
        "metal-poor bins",
    )?;
    out.push(path);

    let path = file("expert_selection_heatmap");
    expert_heatmap(
        &path,
        &format!("Expert selection per bin, {n}: test R² ({tag})"),
        &scores,
    )?;
    out.push(path);

    let path = file("oracle_hybrid_vs_baseline");
    bars_with_reference(
        &path,
        &format!("Overall test R², {n} ({tag})"),
        &[
            ("global Ridge".into(), first.global.r2, colors::GREY),
            ("Ridge oracle".into(), pr.oracle.r2, colors::BLUE),
            (
                "LightGBM oracle".into(),
                hybrid.lightgbm_oracle_r2,
                colors::ORANGE,
            ),
            ("oracle-hybrid".into(), hybrid.r2, colors::GREEN),
        ],
        Some((TARGET_R2, "ViT (reference, ~0.70; not run here)")),
        "R² (all test rows)",
    )?;
    out.push(path);

    // Hardest bin (lowest Ridge R²) first.
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| pr.bins[a].r2.total_cmp(&pr.bins[b].r2));
    let delta: Vec<f64> = order
        .iter()
        .map(|&b| experts[b].map_or(f64::NAN, |e| e.delta_r2_vs_ridge))
        .collect();
    let labels: Vec<String> = order
        .iter()
        .zip(&delta)
        .map(|(&b, d)| match chosen[b] {
            0 => "Ridge".to_string(),
            _ => format!("{d:+.3}"),
        })
        .collect();
    let cats: Vec<String> = order
        .iter()
        .map(|&b| format!("{}\nR² {:.2}", names[b], pr.bins[b].r2))
        .collect();
    let path = file("perbin_delta_r2");
    signed_bars(
        &path,
        &format!("ΔR² hybrid − Ridge per bin, {n}, hardest first (by Ridge R²) ({tag})"),
        &cats,
        &delta,
        &labels,
        "ΔR² (hybrid − Ridge expert)",
    )?;
    out.push(path);

    // Colour by the kind predicting the row, as the hybrid does.
    let groups = [
        PointGroup {
            name: "Ridge bins".into(),
            rgb: colors::BLUE,
        },
        PointGroup {
            name: "LightGBM bins".into(),
            rgb: colors::ORANGE,
        },
        PointGroup {
            name: "outside bins (global)".into(),
            rgb: colors::GREY,
        },
    ];
    let group: Vec<usize> = t.bins[pi]
        .iter()
        .zip(&tt.lightgbm)
        .map(|(bin, l)| match bin {
            Some(b) if tt.chosen.get(*b) == Some(&ExpertKind::LightGbm) && l.is_finite() => 1,
            Some(_) => 0,
            None => 2,
        })
        .collect();
    let path = file("hybrid_pred_vs_true");
    scatter_groups(
        &path,
        &format!(
            "Oracle-hybrid {n}: predicted vs true log g, R² = {:.4} ({tag})",
            hybrid.r2
        ),
        &t.y,
        &tt.hybrid,
        &group,
        &groups,
    )?;
    out.push(path);
    Ok(out)
}
