//! The numbers of an experiment (DESIGN §8, `results.json`): one
//! [`RunResult`] per (noise level, seed), and their mean ± std over seeds.

use std::collections::BTreeMap;

use serde::Serialize;

use super::score::{GateTable, TestTable};
use crate::eval::Scores;
use crate::sweep::Sweep;

/// R², MAE, RMSE on a set of rows (R² is NaN, `null` in JSON, below 2 rows).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub(crate) struct Score {
    /// Rows scored: those given with a finite true log g.
    pub n: u64,
    /// R² (NaN below 2 rows or when not finite).
    pub r2: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
}

/// Scores `pred` against `y` on the rows `rows`.
pub(crate) fn score_rows(rows: impl Iterator<Item = usize>, y: &[f64], pred: &[f64]) -> Score {
    let mut s = Scores::around(0.0);
    let mut first = None;
    for i in rows {
        if !y[i].is_finite() {
            continue;
        }
        if first.is_none() {
            first = Some(y[i]);
            s = Scores::around(y[i]);
        }
        s.add(y[i], pred[i]);
    }
    match s.metrics() {
        Some(m) => Score {
            n: m.n,
            r2: if m.n >= 2 && m.r2.is_finite() {
                m.r2
            } else {
                f64::NAN
            },
            mae: m.mae,
            rmse: m.rmse,
        },
        None => Score {
            n: 0,
            r2: f64::NAN,
            mae: f64::NAN,
            rmse: f64::NAN,
        },
    }
}

/// The data of one run.
#[derive(Debug, Clone, Serialize)]
pub struct DataInfo {
    /// Training rows accumulated.
    pub train_rows: u64,
    /// Test rows scored.
    pub test_rows: u64,
    /// Pixels per spectrum.
    pub pixels: usize,
    /// Noise level L of the training pass (and of the test spectra when drawn).
    pub noise: f64,
    /// Seed (noise, folds, gate sample, test noise).
    pub seed: u64,
    /// Training shard paths as resolved by the plan, in read order (shard index = position).
    pub train_shards: Vec<String>,
    /// Test shard path as resolved by the plan.
    pub test: String,
    /// Where the noisy test spectra came from.
    pub test_spectra: String,
    /// How the statistics' block products were formed (written only when
    /// not f64: `[stats] precision = "mixed"`).
    #[serde(skip_serializing_if = "crate::stats::Precision::is_f64")]
    pub precision: crate::stats::Precision,
    /// Rows per bin the pass kept for tree experts at most (absent without them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expert_rows_per_bin: Option<usize>,
}

/// The global model's α and its scores on every test row.
#[derive(Debug, Clone, Serialize)]
pub struct GlobalScore {
    /// The α selected for the global model (NaN when none could be).
    pub alpha: f64,
    /// How α was chosen (`cv`, `gcv`, `fixed`).
    pub selected_by: String,
    /// Training rows of the global model: every row accumulated.
    pub n_train: u64,
    /// R² on the test rows.
    pub r2: f64,
    /// MAE (dex).
    pub mae: f64,
    /// RMSE (dex).
    pub rmse: f64,
}

/// Oracle routing on one partition.
#[derive(Debug, Clone, Serialize)]
pub struct OracleScore {
    /// R² over every test row (rows outside every bin by the global expert).
    pub r2: f64,
    /// MAE over every test row (dex).
    pub mae: f64,
    /// RMSE over every test row (dex).
    pub rmse: f64,
    /// R² − the global model's R² on the same rows.
    pub delta_r2: f64,
    /// Fraction of test rows inside a bin with an expert.
    pub coverage: f64,
    /// Test rows outside every bin (predicted by the global expert).
    pub outside: u64,
}

/// A gate's routing on its partition.
#[derive(Debug, Clone, Serialize)]
pub struct GateScore {
    /// R² over every test row.
    pub r2: f64,
    /// MAE over every test row (dex).
    pub mae: f64,
    /// RMSE over every test row (dex).
    pub rmse: f64,
    /// R² − global R².
    pub delta_r2: f64,
    /// ρ = (R²_gate − R²_global) / (R²_oracle − R²_global).
    pub rho: f64,
    /// Fraction of binned test rows whose argmax bin is their true bin.
    pub routing_accuracy: f64,
}

/// One bin of a partition.
#[derive(Debug, Clone, Serialize)]
pub struct BinResult {
    /// 0-based bin index in the partition (position in its bin names).
    pub id: usize,
    /// The bin's name in the partition, e.g. `Cool Poor`.
    pub name: String,
    /// The expert's α (null: no expert).
    pub alpha: Option<f64>,
    /// How α was chosen.
    pub selected_by: Option<String>,
    /// Training rows of this bin, summed over folds (0 when the sweep has no group for it).
    pub n_train: u64,
    /// Test rows whose true bin this is.
    pub n_test: u64,
    /// The bin's expert on its test rows.
    pub r2: f64,
    /// The global model on the same rows.
    pub r2_global: f64,
    /// `r2 − r2_global`.
    pub delta_r2: f64,
    /// The expert's MAE on its rows.
    pub mae: f64,
    /// The global model's MAE on the same rows.
    pub mae_global: f64,
    /// The expert's RMSE on its test rows (dex).
    pub rmse: f64,
    /// Soft-gate mixture on the same rows (with a gate).
    pub r2_soft: Option<f64>,
    /// Hard-gate routing on the same rows (with a gate).
    pub r2_hard: Option<f64>,
    /// Fraction of the bin's rows the gate routes to it (with a gate).
    pub routing_accuracy: Option<f64>,
    /// The bin's tree expert, its validation and the hybrid's choice (on
    /// the experts' partition, when tree experts were trained).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experts: Option<BinExperts>,
}

/// One bin's experts side by side (issue 13).
#[derive(Debug, Clone, Serialize)]
pub struct BinExperts {
    /// Validation figures and the choice.
    #[serde(flatten)]
    pub choice: super::experts::BinChoice,
    /// LightGBM on the bin's test rows (null: no model).
    pub lightgbm_r2: Option<f64>,
    /// Its RMSE there (dex).
    pub lightgbm_rmse: Option<f64>,
    /// The hybrid's chosen expert on the bin's test rows.
    pub hybrid_r2: f64,
    /// `hybrid_r2 − r2` (the Ridge expert's).
    pub delta_r2_vs_ridge: f64,
    /// The kind with the higher test R² — what choosing on the test rows
    /// would pick (optimistic: the test rows then choose and score).
    pub best_on_test: crate::experts::ExpertKind,
}

/// The oracle-hybrid of a partition: each test row to its true bin's
/// chosen expert kind (issue 13).
#[derive(Debug, Clone, Serialize)]
pub struct HybridScore {
    /// R² over every test row (rows outside every bin by the global expert).
    pub r2: f64,
    /// MAE (dex).
    pub mae: f64,
    /// RMSE (dex).
    pub rmse: f64,
    /// R² − the Ridge oracle's R².
    pub delta_r2_vs_oracle: f64,
    /// R² − the global model's R².
    pub delta_r2: f64,
    /// Bins whose validation chose each kind, e.g. `{"ridge": 5, "lightgbm": 4}`.
    pub chosen: BTreeMap<String, usize>,
    /// LightGBM in every bin that has one (Ridge elsewhere): R².
    pub lightgbm_oracle_r2: f64,
    /// The hybrid had each bin's kind been chosen on the test rows: R²
    /// (optimistic — the seed's procedure; not the hybrid's score).
    pub chosen_on_test_r2: f64,
}

/// The experts and routings of one partition.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionResult {
    /// Oracle routing: each test row to its true bin's expert, else to the global expert.
    pub oracle: OracleScore,
    /// Soft gate (when trained on this partition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_gate: Option<GateScore>,
    /// Hard gate: the most probable bin's expert (when trained on this partition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hard_gate: Option<GateScore>,
    /// One entry per bin, in bin-id order (none for rows outside every bin).
    pub bins: Vec<BinResult>,
    /// The oracle-hybrid (when tree experts were trained on this partition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hybrid: Option<HybridScore>,
}

/// How the gate was trained and how it routes the test rows.
#[derive(Debug, Clone, Serialize)]
pub struct GateInfo {
    /// Name of the partition whose bins the gate routes to.
    pub partition: String,
    /// Inverse regularisation C.
    pub c: f64,
    /// Reservoir rows used (inside a bin).
    pub train_rows: usize,
    /// Reservoir rows outside every bin (left out).
    pub train_unbinned: usize,
    /// Accuracy on its training rows.
    pub train_accuracy: f64,
    /// Newton iterations of the gate's logistic regression (at most 100).
    pub iterations: usize,
    /// Fraction of the global scatter the 10 principal components explain.
    pub pca_explained: f64,
    /// Seconds to compute features and fit.
    pub seconds: f64,
    /// Routing accuracy on the binned test rows.
    pub routing_accuracy: f64,
    /// `confusion[true][routed]`: binned test rows.
    pub confusion: Vec<Vec<u64>>,
    /// Mean gate probability of each bin (columns) over the test rows of each true bin (rows).
    pub mean_probabilities: Vec<Vec<f64>>,
}

/// Seconds per stage of a run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timing {
    /// The accumulating pass over the training shards, writing `stats.h5` included.
    pub accumulate: f64,
    /// Every α of every bin, CV included (without test scoring).
    pub solve: f64,
    /// Gate features and fit.
    pub gate: f64,
    /// Tree experts trained and chosen per bin (absent without them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experts: Option<f64>,
    /// Test scoring: the α curves and the experiment's predictions.
    pub evaluate: f64,
    /// The whole run, start to results: the stages and the file writes between them.
    pub total: f64,
}

/// One (noise level, seed) run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// What the run read: row counts, pixels, noise level, seed, shard paths.
    pub data: DataInfo,
    /// The global model's α and test scores.
    pub global: GlobalScore,
    /// Oracle and gate scores of each partition, keyed by partition name.
    pub moe: BTreeMap<String, PartitionResult>,
    /// How the gate was trained and routed the test rows (absent without a gate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateInfo>,
    /// Wall time of each stage of the run, in seconds.
    pub timing_s: Timing,
}

/// ρ, NaN when the oracle gains nothing.
pub fn rho(r2_gate: f64, r2_global: f64, r2_oracle: f64) -> f64 {
    let d = r2_oracle - r2_global;
    if d.abs() < 1e-12 {
        f64::NAN
    } else {
        (r2_gate - r2_global) / d
    }
}

/// The gate's test routing: accuracy, confusion matrix, mean probabilities.
pub(crate) type GateEval = (f64, Vec<Vec<u64>>, Vec<Vec<f64>>);

/// Everything but data, gate training and timing, measured from the test
/// table and the sweep.
pub(crate) fn measure(
    table: &TestTable,
    sweep: &Sweep,
    partition_names: &[String],
    bin_names: &[Vec<String>],
) -> (
    GlobalScore,
    BTreeMap<String, PartitionResult>,
    Option<GateEval>,
) {
    let g = score_rows(0..table.len(), &table.y, &table.global);
    let global = global_score(sweep, g);
    let mut moe = BTreeMap::new();
    let mut gate_out = None;
    for (pi, name) in partition_names.iter().enumerate() {
        let view = PartitionView::new(table, pi, name);
        let (result, gate_eval) = view.result(sweep, &bin_names[pi], g);
        if let Some(e) = gate_eval {
            gate_out = Some(e);
        }
        moe.insert(name.clone(), result);
    }
    (global, moe, gate_out)
}

/// Adds the tree experts of partition `name` (their validation and choice
/// per bin, `choices`) to its result: each bin's LightGBM and hybrid test
/// scores, and the hybrid over all rows.
pub(crate) fn add_experts(
    moe: &mut BTreeMap<String, PartitionResult>,
    table: &TestTable,
    name: &str,
    choices: Vec<super::experts::BinChoice>,
) {
    use crate::experts::ExpertKind;
    let (Some(tt), Some(part)) = (table.trees.as_ref(), moe.get_mut(name)) else {
        return;
    };
    let y = &table.y;
    let bins = &table.bins[tt.partition];
    let oracle = &table.oracle[tt.partition];
    // Per row: LightGBM where its bin has a model, else the oracle's.
    let lgbm_or_ridge: Vec<f64> = (0..table.len())
        .map(|i| {
            if tt.lightgbm[i].is_finite() {
                tt.lightgbm[i]
            } else {
                oracle[i]
            }
        })
        .collect();
    let mut on_test = oracle.clone();
    for (b, (bin, choice)) in part.bins.iter_mut().zip(choices).enumerate() {
        let rows: Vec<usize> = (0..table.len()).filter(|&i| bins[i] == Some(b)).collect();
        let has_tree = choice.lightgbm_train_rows > 0;
        let l = has_tree.then(|| score_rows(rows.iter().copied(), y, &tt.lightgbm));
        let h = score_rows(rows.iter().copied(), y, &tt.hybrid);
        let best_on_test = match l {
            Some(l) if l.r2 > bin.r2 => ExpertKind::LightGbm,
            _ => ExpertKind::Ridge,
        };
        if best_on_test == ExpertKind::LightGbm {
            for &i in &rows {
                on_test[i] = tt.lightgbm[i];
            }
        }
        bin.experts = Some(BinExperts {
            choice,
            lightgbm_r2: l.map(|l| l.r2),
            lightgbm_rmse: l.map(|l| l.rmse),
            hybrid_r2: h.r2,
            delta_r2_vs_ridge: h.r2 - bin.r2,
            best_on_test,
        });
    }
    let hy = score_rows(0..table.len(), y, &tt.hybrid);
    let g = score_rows(0..table.len(), y, &table.global);
    let mut chosen = BTreeMap::new();
    for k in &tt.chosen {
        *chosen.entry(k.name().to_string()).or_insert(0) += 1;
    }
    part.hybrid = Some(HybridScore {
        r2: hy.r2,
        mae: hy.mae,
        rmse: hy.rmse,
        delta_r2_vs_oracle: hy.r2 - part.oracle.r2,
        delta_r2: hy.r2 - g.r2,
        chosen,
        lightgbm_oracle_r2: score_rows(0..table.len(), y, &lgbm_or_ridge).r2,
        chosen_on_test_r2: score_rows(0..table.len(), y, &on_test).r2,
    });
}

/// The global model: its test score `g` and, from the sweep's first group
/// (the global one), its α, how it was chosen and its training rows.
fn global_score(sweep: &Sweep, g: Score) -> GlobalScore {
    let gsel = sweep.groups[0].selected_point();
    GlobalScore {
        alpha: gsel.map_or(f64::NAN, |p| p.alpha),
        selected_by: sweep.groups[0]
            .selected_by
            .map_or("none", |s| s.as_str())
            .to_string(),
        n_train: sweep.groups[0].n_train,
        r2: g.r2,
        mae: g.mae,
        rmse: g.rmse,
    }
}

/// The test table as one partition sees it: its position `pi` in the
/// models, its name in the sweep, each row's true bin, and the gate's
/// columns when the gate routes to this partition.
struct PartitionView<'a> {
    table: &'a TestTable,
    pi: usize,
    name: &'a str,
    bins: &'a [Option<usize>],
    gate: Option<&'a GateTable>,
}

impl<'a> PartitionView<'a> {
    /// Partition `pi` of `table`, named `name`.
    fn new(table: &'a TestTable, pi: usize, name: &'a str) -> Self {
        PartitionView {
            table,
            pi,
            name,
            bins: &table.bins[pi],
            gate: table.gate.as_ref().filter(|gt| gt.partition == pi),
        }
    }

    /// Oracle routing, the gate's two routings and every bin, scored
    /// against the global model's score `g`; with the gate, also its
    /// [`GateEval`].
    fn result(
        &self,
        sweep: &Sweep,
        bin_names: &[String],
        g: Score,
    ) -> (PartitionResult, Option<GateEval>) {
        let table = self.table;
        let o = score_rows(0..table.len(), &table.y, &table.oracle[self.pi]);
        let outside = self.bins.iter().filter(|b| b.is_none()).count() as u64;
        let with_expert = self
            .bins
            .iter()
            .zip(table.oracle[self.pi].iter().zip(&table.global))
            .filter(|(b, _)| b.is_some())
            .count();
        let (soft, hard, gate_eval) = match self.gate {
            None => (None, None, None),
            Some(gt) => {
                let (soft, hard, eval) = self.gate_scores(gt, g, o);
                (Some(soft), Some(hard), Some(eval))
            }
        };
        let bins = (0..bin_names.len())
            .map(|b| self.bin(sweep, b, &bin_names[b]))
            .collect();
        let result = PartitionResult {
            oracle: OracleScore {
                r2: o.r2,
                mae: o.mae,
                rmse: o.rmse,
                delta_r2: o.r2 - g.r2,
                coverage: with_expert as f64 / table.len().max(1) as f64,
                outside,
            },
            soft_gate: soft,
            hard_gate: hard,
            bins,
            hybrid: None,
        };
        (result, gate_eval)
    }

    /// The soft and hard gate's scores (ρ against the global score `g` and
    /// the oracle's `o`), and the routing of the binned test rows: accuracy,
    /// confusion matrix, and each true bin's mean probabilities (NaN for a
    /// bin without test rows).
    fn gate_scores(&self, gt: &GateTable, g: Score, o: Score) -> (GateScore, GateScore, GateEval) {
        let (table, bins) = (self.table, self.bins);
        let binned: Vec<usize> = (0..table.len()).filter(|&i| bins[i].is_some()).collect();
        let correct = binned
            .iter()
            .filter(|&&i| bins[i] == Some(gt.routed[i]))
            .count();
        let acc = correct as f64 / binned.len().max(1) as f64;
        let mk = |pred: &[f64]| {
            let s = score_rows(0..table.len(), &table.y, pred);
            GateScore {
                r2: s.r2,
                mae: s.mae,
                rmse: s.rmse,
                delta_r2: s.r2 - g.r2,
                rho: rho(s.r2, g.r2, o.r2),
                routing_accuracy: acc,
            }
        };
        let mut confusion = vec![vec![0u64; gt.k]; gt.k];
        let mut probs = vec![vec![0.0; gt.k]; gt.k];
        for &i in &binned {
            let t = bins[i].expect("binned");
            confusion[t][gt.routed[i]] += 1;
            for (k, p) in probs[t].iter_mut().enumerate() {
                *p += gt.probs[i * gt.k + k];
            }
        }
        for (row, c) in probs.iter_mut().zip(&confusion) {
            let n: u64 = c.iter().sum();
            row.iter_mut()
                .for_each(|p| *p = if n > 0 { *p / n as f64 } else { f64::NAN });
        }
        (mk(&gt.soft), mk(&gt.hard), (acc, confusion, probs))
    }

    /// Bin `b` (named `name`): its expert and the global model on the test
    /// rows whose true bin it is, its α from the sweep (none without an
    /// expert), and with the gate, the gate's routings on the same rows.
    fn bin(&self, sweep: &Sweep, b: usize, name: &str) -> BinResult {
        let (table, y) = (self.table, &self.table.y);
        let rows: Vec<usize> = (0..table.len())
            .filter(|&i| self.bins[i] == Some(b))
            .collect();
        let e = score_rows(rows.iter().copied(), y, &table.oracle[self.pi]);
        let gl = score_rows(rows.iter().copied(), y, &table.global);
        let grp = sweep
            .groups
            .iter()
            .find(|gr| gr.partition == self.name && gr.bin == b.to_string());
        let sel = grp.and_then(|gr| gr.selected_point());
        let gate = self.gate;
        BinResult {
            id: b,
            name: name.to_string(),
            alpha: sel.map(|p| p.alpha),
            selected_by: grp
                .and_then(|gr| gr.selected_by)
                .map(|s| s.as_str().to_string()),
            n_train: grp.map_or(0, |gr| gr.n_train),
            n_test: rows.len() as u64,
            r2: e.r2,
            r2_global: gl.r2,
            delta_r2: e.r2 - gl.r2,
            mae: e.mae,
            mae_global: gl.mae,
            rmse: e.rmse,
            r2_soft: gate.map(|gt| score_rows(rows.iter().copied(), y, &gt.soft).r2),
            r2_hard: gate.map(|gt| score_rows(rows.iter().copied(), y, &gt.hard).r2),
            routing_accuracy: gate.map(|gt| {
                rows.iter().filter(|&&i| gt.routed[i] == b).count() as f64
                    / rows.len().max(1) as f64
            }),
            experts: None,
        }
    }
}

/// Mean, standard deviation (n − 1 in the denominator; 0 for one value)
/// and the values of one metric over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    /// Arithmetic mean of `values` (not finite when one of them is not).
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// The values, in seed order.
    pub values: Vec<f64>,
}

impl Stat {
    /// Over finite `values` (non-finite ones give a NaN mean).
    pub fn of(values: Vec<f64>) -> Stat {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Stat { mean, std, values }
    }
}

/// The runs of one noise level over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct LevelSummary {
    /// The noise level L these runs share.
    pub noise: f64,
    /// Seeds, in run order.
    pub seeds: Vec<u64>,
    /// Every numeric field of the runs' `global`, `moe` and `timing_s`, by
    /// dotted path (`moe.teff_mh.oracle.delta_r2`, `moe.snr.bins.2.r2`, …).
    pub metrics: BTreeMap<String, Stat>,
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, f64>) {
    match v {
        serde_json::Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.insert(prefix.to_string(), x);
            }
        }
        serde_json::Value::Null => {
            out.insert(prefix.to_string(), f64::NAN);
        }
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), v, out);
            }
        }
        _ => {}
    }
}

/// The numeric fields of a run by dotted path.
pub(crate) fn flat(run: &RunResult) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (name, v) in [
        ("global", serde_json::to_value(&run.global)),
        ("moe", serde_json::to_value(&run.moe)),
        ("timing_s", serde_json::to_value(run.timing_s)),
    ] {
        if let Ok(v) = v {
            flatten(name, &v, &mut out);
        }
    }
    out
}

/// Mean ± std over the seeds of each noise level (levels in run order).
pub(crate) fn summarize(runs: &[RunResult]) -> Vec<LevelSummary> {
    let mut levels: Vec<f64> = Vec::new();
    for r in runs {
        if !levels.contains(&r.data.noise) {
            levels.push(r.data.noise);
        }
    }
    levels
        .into_iter()
        .map(|l| {
            let these: Vec<&RunResult> = runs.iter().filter(|r| r.data.noise == l).collect();
            let flats: Vec<BTreeMap<String, f64>> = these.iter().map(|r| flat(r)).collect();
            let mut metrics = BTreeMap::new();
            for key in flats[0].keys() {
                if key.ends_with(".id") || key.ends_with(".n_train") && key.starts_with("global") {
                    continue;
                }
                let values: Vec<f64> = flats
                    .iter()
                    .map(|f| f.get(key).copied().unwrap_or(f64::NAN))
                    .collect();
                metrics.insert(key.clone(), Stat::of(values));
            }
            LevelSummary {
                noise: l,
                seeds: these.iter().map(|r| r.data.seed).collect(),
                metrics,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_rho() {
        let y = [1.0, 2.0, 3.0, 4.0];
        let p = [1.0, 2.0, 3.0, 5.0];
        let s = score_rows(0..4, &y, &p);
        assert_eq!(s.n, 4);
        assert!((s.r2 - (1.0 - 1.0 / 5.0)).abs() < 1e-12);
        assert!((s.mae - 0.25).abs() < 1e-12);
        assert!(score_rows(0..1, &y, &p).r2.is_nan(), "one row has no R²");
        assert!(score_rows(0..0, &y, &p).mae.is_nan());
        assert!((rho(0.6, 0.5, 0.7) - 0.5).abs() < 1e-12);
        assert!(rho(0.6, 0.5, 0.5).is_nan());
    }

    #[test]
    fn stats_over_seeds() {
        let s = Stat::of(vec![1.0, 2.0, 3.0]);
        assert_eq!(s.mean, 2.0);
        assert!((s.std - 1.0).abs() < 1e-12);
        assert_eq!(Stat::of(vec![5.0]).std, 0.0);
    }
}
