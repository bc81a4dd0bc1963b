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
use crate::route::{LoadedExperts, Router};
use crate::stats::StatsHeader;
use crate::sweep::test_eval::{stream, CurveScorer, TestSpec};
use crate::sweep::{GroupId, Sweep};
use crate::threads::Pool;
use crate::{Result, Threads};

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
    /// The tree experts' part, when they were trained.
    pub trees: Option<TreeTable>,
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

/// The tree experts' view of the test rows.
#[derive(Debug, Clone, Default)]
pub struct TreeTable {
    /// The partition (position in the models) whose bins they are.
    pub partition: usize,
    /// The true bin's LightGBM prediction (NaN: outside the bins, or the
    /// bin has none).
    pub lightgbm: Vec<f64>,
    /// The oracle-hybrid: the true bin's chosen kind's prediction (the
    /// partition's oracle prediction where Ridge is chosen or outside the
    /// bins).
    pub hybrid: Vec<f64>,
    /// Per bin: the kind the hybrid used.
    pub chosen: Vec<crate::experts::ExpertKind>,
}

impl TestTable {
    /// Number of test rows: one per entry of `y` (and of each per-row vector).
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// The chunk's rows' LightGBM predictions (every bin with a model, one
/// call per bin present) and the oracle-hybrid's ([`Router::hybrid_rows`]:
/// the one place that applies the choice). `keys`, `bins`, `oracle`: the
/// chunk's rows' keys, true bins and Ridge oracle predictions on the
/// experts' partition; `flux`: their spectra.
fn tree_columns(
    router: &Router<'_>,
    experts: &LoadedExperts,
    tt: &mut TreeTable,
    (keys, bins, oracle): (&[RowKeys], &[Option<usize>], &[f64]),
    flux: &[f64],
) -> Result<()> {
    let n = bins.len();
    let p = flux.len() / n.max(1);
    let mut lgbm = vec![f64::NAN; n];
    let mut present: Vec<usize> = bins.iter().flatten().copied().collect();
    present.sort_unstable();
    present.dedup();
    for b in present.into_iter().filter(|&b| experts.has_lightgbm(b)) {
        let idx: Vec<usize> = (0..n).filter(|&i| bins[i] == Some(b)).collect();
        let x: Vec<f64> = idx
            .iter()
            .flat_map(|&i| flux[i * p..(i + 1) * p].iter().copied())
            .collect();
        for (&i, v) in idx.iter().zip(experts.lightgbm_rows(b, &x)?) {
            lgbm[i] = v;
        }
    }
    let mut hybrid = oracle.to_vec();
    let mut routes = vec![crate::route::Route::Global; n];
    router.hybrid_rows(experts.partition(), keys, flux, &mut hybrid, &mut routes)?;
    tt.lightgbm.extend(lgbm);
    tt.hybrid.extend(hybrid);
    Ok(())
}

/// Streams the test shard of `spec` once and predicts every row with
/// `models` (and `gate`, routing on partition position `gate_partition`);
/// with `curves`, the same rows also score every (group, α) model of that
/// sweep (its test metrics and summary are filled in; `threads` run their
/// matrix products).
pub(crate) fn score(
    spec: &TestSpec,
    header: &StatsHeader,
    models: &ModelSet,
    gate: Option<(&Gate, usize)>,
    experts: Option<&LoadedExperts>,
    curves: Option<&mut Sweep>,
    threads: Threads,
    progress: &mut dyn FnMut(u64),
) -> Result<TestTable> {
    let pool = Pool::new(threads)?;
    let mut t = TestTable {
        bins: vec![Vec::new(); models.partitions.len()],
        oracle: vec![Vec::new(); models.partitions.len()],
        gate: gate.map(|(g, partition)| GateTable {
            partition,
            k: g.partition.bins(),
            ..Default::default()
        }),
        trees: experts.map(|e| TreeTable {
            partition: e.partition(),
            chosen: e.chosen().to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = header.pixels;
    let router = Router::with_gate(models, gate).with_experts(experts)?;
    // Disjoint borrows of the sweep: its models score, its groups receive.
    let (mut scorer, mut curves) = match curves {
        Some(Sweep {
            models,
            groups,
            test,
            alphas,
            ..
        }) => {
            let ids: Vec<GroupId> = groups.iter().map(|g| g.id).collect();
            let scorer = CurveScorer::new(header, &ids, models, alphas.len(), &pool);
            (Some(scorer), Some((groups, test)))
        }
        None => (None, None),
    };
    let (_, spectra) = stream(spec, header, |rows, chunk| {
        if let Some(s) = scorer.as_mut() {
            s.add(rows, chunk);
        }
        for (r, row) in rows.iter().enumerate() {
            let x = &chunk.flux[r * p..(r + 1) * p];
            let global = router.global(x);
            t.keys.push(row.keys);
            t.y.push(row.log_g);
            t.global.push(global);
            for (pi, pm) in models.partitions.iter().enumerate() {
                let (pred, _) = router.oracle(pi, &row.keys, x, global);
                t.bins[pi].push(pm.partition.bin(&row.keys));
                t.oracle[pi].push(pred);
            }
            if let (Some(g), Some(gt)) = (router.gated(x, global), t.gate.as_mut()) {
                gt.soft.push(g.soft);
                gt.hard.push(g.hard);
                gt.routed.push(g.bin);
                gt.probs.extend_from_slice(&g.probs);
            }
        }
        if let (Some(e), Some(tt)) = (experts, t.trees.as_mut()) {
            let first = t.y.len() - rows.len();
            let pi = e.partition();
            tree_columns(
                &router,
                e,
                tt,
                (
                    &t.keys[first..],
                    &t.bins[pi][first..],
                    &t.oracle[pi][first..],
                ),
                &chunk.flux[..rows.len() * p],
            )?;
        }
        progress(rows.len() as u64);
        Ok(())
    })?;
    if let (Some(s), Some((groups, test))) = (scorer, curves.as_mut()) {
        **test = Some(s.finish(groups, &spec.path, spectra.clone()));
    }
    t.spectra = spectra;
    Ok(t)
}
