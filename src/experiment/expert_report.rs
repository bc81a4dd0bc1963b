//! The tree experts' part of `report.md` (issue 13, seed 002): Table 1
//! (per bin: Ridge with its α, LightGBM, the validation choice, the
//! hybrid's ΔR²), Table 2 (global Ridge, Ridge oracle, hybrid) and the
//! seed's hypotheses checked on these numbers.

use std::fmt::Write as _;

use super::report::{alpha_cell, pm};
use super::results::LevelSummary;
use super::Experiment;
use crate::experts::ExpertKind;
use crate::partition::Partition;

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
