//! One streamed pass over the test shard: every row's true keys and log g,
//! the global prediction, each partition's oracle prediction (the expert of
//! the row's true bin; the global expert outside every bin or for a bin
//! without an expert), and, with a gate, its probabilities, the soft mixture
//! `Σ p_k ŷ_k` over every bin's expert (the global expert's prediction for a
//! bin without one) and the hard (argmax) choice.
//!
//! The test set is small (the reports used 1k–10k rows), so the per-row
//! numbers — not the spectra — are kept; a chunk of spectra is in memory at
//! a time.

use crate::gate::Gate;
use crate::models::ModelSet;
use crate::partition::RowKeys;
use crate::stats::StatsHeader;
use crate::sweep::test_eval::{stream, TestSpec};
use crate::Result;

/// Per-row predictions of the test set.
#[derive(Debug, Clone, Default)]
pub struct TestTable {
    /// True keys (T_eff, [M/H], SNR of the noiseless flux).
    pub keys: Vec<RowKeys>,
    /// True log g.
    pub y: Vec<f64>,
    /// The global expert's predictions.
    pub global: Vec<f64>,
    /// Per partition (the models' order): the true bin of each row.
    pub bins: Vec<Vec<Option<usize>>>,
    /// Per partition: the oracle-routed prediction of each row.
    pub oracle: Vec<Vec<f64>>,
    /// The gate's part, when a gate was given.
    pub gate: Option<GateTable>,
    /// Where the noisy test spectra came from.
    pub spectra: String,
}

/// The gate's view of the test rows.
#[derive(Debug, Clone, Default)]
pub struct GateTable {
    /// The partition (position in the models) whose bins the gate routes to.
    pub partition: usize,
    /// Bins (classes).
    pub k: usize,
    /// Probabilities, row-major `rows × k`.
    pub probs: Vec<f64>,
    /// `Σ p_k ŷ_k`.
    pub soft: Vec<f64>,
    /// The argmax bin's expert's prediction.
    pub hard: Vec<f64>,
    /// The argmax bin.
    pub routed: Vec<usize>,
}

impl TestTable {
    /// Rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// Streams the test shard of `spec` and predicts every row with `models`
/// (and `gate`, routing on partition position `gate_partition`).
pub fn score(
    spec: &TestSpec,
    header: &StatsHeader,
    models: &ModelSet,
    gate: Option<(&Gate, usize)>,
    progress: &mut dyn FnMut(u64),
) -> Result<TestTable> {
    let mut t = TestTable {
        bins: vec![Vec::new(); models.partitions.len()],
        oracle: vec![Vec::new(); models.partitions.len()],
        gate: gate.map(|(g, partition)| GateTable {
            partition,
            k: g.partition.bins(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = header.pixels;
    let (_, spectra) = stream(spec, header, |rows, chunk| {
        for (r, row) in rows.iter().enumerate() {
            let x = &chunk.flux[r * p..(r + 1) * p];
            let global = models.global.coefficients.predict(x);
            t.keys.push(row.keys);
            t.y.push(row.log_g);
            t.global.push(global);
            for (pi, pm) in models.partitions.iter().enumerate() {
                let bin = pm.partition.bin(&row.keys);
                let pred = match bin.and_then(|b| pm.experts[b].as_ref()) {
                    Some(e) => e.coefficients.predict(x),
                    None => global,
                };
                t.bins[pi].push(bin);
                t.oracle[pi].push(pred);
            }
            if let (Some((g, pi)), Some(gt)) = (gate, t.gate.as_mut()) {
                let probs = g.probabilities(x);
                let experts: Vec<f64> = (0..gt.k)
                    .map(|b| match models.partitions[pi].experts[b].as_ref() {
                        Some(e) => e.coefficients.predict(x),
                        None => global,
                    })
                    .collect();
                let routed = crate::gate::logistic::argmax(&probs);
                gt.soft
                    .push(probs.iter().zip(&experts).map(|(p, y)| p * y).sum());
                gt.hard.push(experts[routed]);
                gt.routed.push(routed);
                gt.probs.extend_from_slice(&probs);
            }
        }
        progress(rows.len() as u64);
        Ok(())
    })?;
    t.spectra = spectra;
    Ok(t)
}
