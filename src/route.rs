//! The router: which expert predicts a row, the one place that decides it.
//!
//! * **Global**: the global expert, for every row.
//! * **Oracle** on a partition: the expert of the row's true bin
//!   ([`crate::partition::Partition::bin`] of its keys); a row outside every
//!   bin, or whose bin has no expert, gets the global expert's prediction.
//! * **Gate**: the learned gate's bin probabilities p_k from the noisy
//!   spectrum alone; hard routing takes the most probable bin's expert, soft
//!   routing the mixture Σ p_k ŷ_k, summed over the bins in order (a bin
//!   without an expert contributes the global expert's prediction).
//!
//! * **Oracle-hybrid** (issue 13): oracle routing on the partition whose
//!   bins chose their expert kind ([`ModelSet::bin_experts`]): a row in a
//!   bin that chose LightGBM gets that bin's LightGBM prediction, every
//!   other row its Ridge oracle prediction. The LightGBM models are loaded
//!   once ([`LoadedExperts`]) and given to the router
//!   ([`Router::with_experts`]); [`Router::hybrid`] routes one row,
//!   [`Router::hybrid_rows`] a chunk (LightGBM predicts many rows per call
//!   much faster than one at a time).
//!
//! `predict`, the sweep's models and the experiment's scoring all route
//! through [`Router`], so the same row gets the same prediction everywhere
//! (tested: `predict` reproduces the experiment's predictions bit for bit).

#[cfg(feature = "lightgbm")]
use std::sync::Mutex;

use crate::experts::ExpertKind;
use crate::gate::Gate;
use crate::models::{BinExperts, Expert, ModelSet};
use crate::partition::RowKeys;
use crate::{Error, Result, Threads};

/// Which expert predicts a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// The global expert, for every row.
    Global,
    /// The expert of the row's true bin in partition `partition` (its
    /// position in [`ModelSet::partitions`]).
    Oracle {
        /// Index into [`ModelSet::partitions`].
        partition: usize,
    },
    /// The learned gate: `soft` mixes its partition's experts,
    /// `ŷ = Σ p_k ŷ_k`; otherwise the most probable bin's expert predicts
    /// (hard routing).
    Gate {
        /// Soft mixing (else hard, argmax).
        soft: bool,
    },
}

/// Where a row was routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Global routing: the global expert.
    Global,
    /// Oracle routing: the expert of bin `b`.
    Bin(usize),
    /// Oracle routing, the row is outside every bin: the global expert.
    Unbinned,
    /// Oracle routing, the row's bin `b` has no expert: the global expert.
    NoExpert(usize),
    /// Gate routing: `b` is the most probable bin (hard: its expert
    /// predicted; soft: the mixture did).
    Gate(usize),
    /// Oracle-hybrid routing: bin `b` chose LightGBM, and its LightGBM
    /// expert predicted (rows of bins that chose Ridge are [`Route::Bin`]).
    LightGbm(usize),
}

impl Route {
    /// The bin whose expert predicted the row (None: the global expert).
    pub fn expert_bin(self) -> Option<usize> {
        match self {
            Route::Bin(b) | Route::Gate(b) | Route::LightGbm(b) => Some(b),
            _ => None,
        }
    }

    /// The kind of the bin expert that predicted the row (None: the global
    /// expert, or the soft gate's mixture).
    pub fn expert_kind(self) -> Option<ExpertKind> {
        match self {
            Route::Bin(_) | Route::Gate(_) => Some(ExpertKind::Ridge),
            Route::LightGbm(_) => Some(ExpertKind::LightGbm),
            _ => None,
        }
    }
}

/// A partition's [`BinExperts`] ready to predict: the choice per bin and
/// each bin's LightGBM expert, loaded once.
///
/// A LightGBM expert is `Send`, not `Sync` (one call at a time); each sits
/// behind a `Mutex`, so that a `LoadedExperts`, and a [`Router`] holding
/// one, can be shared by threads (Python's `predict_rows` routes rows on
/// rayon threads). Callers predict a chunk of rows per bin and call
/// ([`LoadedExperts::lightgbm_rows`]), so the lock is taken once per bin
/// and chunk; LightGBM spreads each call over its own threads.
///
/// Without the `lightgbm` feature a `BinExperts` holding any LightGBM
/// model cannot be loaded ([`Error::NotBuilt`]); one without (every bin
/// chose Ridge and no model was kept) can.
#[derive(Debug)]
pub struct LoadedExperts {
    partition: usize,
    chosen: Vec<ExpertKind>,
    #[cfg(feature = "lightgbm")]
    lightgbm: Vec<Option<Mutex<crate::experts::lightgbm::LightGbmExpert>>>,
}

impl LoadedExperts {
    /// Loads every LightGBM model of `experts`, each predicting on
    /// `threads` (LightGBM's own OpenMP threads).
    ///
    /// Errors: a choice and a model entry per bin, and a model wherever
    /// LightGBM is chosen ([`Error::InvalidParameter`]; a set read from a
    /// file was checked already); LightGBM cannot read a model
    /// ([`Error::LightGbm`], naming the bin); any LightGBM model in a build
    /// without the `lightgbm` feature ([`Error::NotBuilt`]).
    pub fn load(experts: &BinExperts, threads: Threads) -> Result<LoadedExperts> {
        let bins = experts.chosen.len();
        if experts.lightgbm.len() != bins {
            return Err(Error::InvalidParameter {
                name: "bin_experts",
                problem: format!(
                    "{} LightGBM entries for {bins} chosen kinds (one of each per bin)",
                    experts.lightgbm.len()
                ),
            });
        }
        if let Some(b) = (0..bins)
            .find(|&b| experts.chosen[b] == ExpertKind::LightGbm && experts.lightgbm[b].is_none())
        {
            return Err(Error::InvalidParameter {
                name: "bin_experts",
                problem: format!("bin {b} chooses lightgbm but has no LightGBM model"),
            });
        }
        #[cfg(feature = "lightgbm")]
        let lightgbm = experts
            .lightgbm
            .iter()
            .enumerate()
            .map(|(b, m)| {
                m.as_ref()
                    .map(|m| {
                        crate::experts::lightgbm::LightGbmExpert::load(m.clone(), threads)
                            .map(Mutex::new)
                            .map_err(|e| match e {
                                Error::LightGbm { what, message } => Error::LightGbm {
                                    what: format!("{what} (bin {b})"),
                                    message,
                                },
                                e => e,
                            })
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        #[cfg(not(feature = "lightgbm"))]
        {
            let _ = threads;
            if experts.lightgbm.iter().any(Option::is_some) {
                return Err(crate::experts::lightgbm::NOT_BUILT);
            }
        }
        Ok(LoadedExperts {
            partition: experts.partition,
            chosen: experts.chosen.clone(),
            #[cfg(feature = "lightgbm")]
            lightgbm,
        })
    }

    /// Position in [`ModelSet::partitions`] of the partition whose bins these are.
    pub fn partition(&self) -> usize {
        self.partition
    }

    /// The kind each bin uses (index = bin).
    pub fn chosen(&self) -> &[ExpertKind] {
        &self.chosen
    }

    /// Whether bin `bin` has a LightGBM model (whatever it chose).
    pub fn has_lightgbm(&self, bin: usize) -> bool {
        #[cfg(feature = "lightgbm")]
        {
            matches!(self.lightgbm.get(bin), Some(Some(_)))
        }
        #[cfg(not(feature = "lightgbm"))]
        {
            let _ = bin;
            false
        }
    }

    /// Bin `bin`'s LightGBM prediction for the raw row `x`, if it has a
    /// model (whatever kind it chose). Prefer [`Self::lightgbm_rows`] for
    /// many rows.
    ///
    /// Errors: `x` not one row of the model's pixels, a NaN or infinite value.
    pub fn lightgbm(&self, bin: usize, x: &[f64]) -> Result<Option<f64>> {
        if !self.has_lightgbm(bin) {
            return Ok(None);
        }
        let y = self.lightgbm_rows(bin, x)?;
        match y[..] {
            [y] => Ok(Some(y)),
            _ => Err(Error::shape(
                "a row to predict",
                "one row",
                format!("{} rows", y.len()),
            )),
        }
    }

    /// Bin `bin`'s LightGBM predictions for raw rows (row-major, whole
    /// rows of the model's pixels), one per row: one LightGBM call.
    ///
    /// Errors: the bin has no LightGBM model ([`Error::InvalidParameter`]:
    /// see [`Self::has_lightgbm`]), shapes, a NaN or infinite value
    /// ([`Error::NonFinite`], naming its row in `rows`).
    pub fn lightgbm_rows(&self, bin: usize, rows: &[f64]) -> Result<Vec<f64>> {
        #[cfg(feature = "lightgbm")]
        if let Some(Some(m)) = self.lightgbm.get(bin) {
            // Predicting changes nothing in the expert: a panic elsewhere
            // while the lock was held leaves it usable.
            let expert = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            return expert.predict(rows);
        }
        let _ = rows;
        Err(Error::InvalidParameter {
            name: "bin",
            problem: format!("bin {bin} has no LightGBM model"),
        })
    }
}

/// What the gate makes of one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Gated {
    /// The gate's probability of each bin, by bin id (sum 1; 0 for a bin absent from training).
    pub probs: Vec<f64>,
    /// The most probable bin.
    pub bin: usize,
    /// Σ p_k ŷ_k.
    pub soft: f64,
    /// The most probable bin's expert's prediction.
    pub hard: f64,
}

/// Routes rows to the experts of a [`ModelSet`] (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Router<'a> {
    models: &'a ModelSet,
    gate: Option<(&'a Gate, usize)>,
    experts: Option<&'a LoadedExperts>,
}

impl<'a> Router<'a> {
    /// A router over `models`, with the gate saved in them if any.
    pub fn new(models: &'a ModelSet) -> Self {
        Router {
            models,
            gate: models.gate.as_ref().map(|g| (&g.gate, g.partition)),
            experts: None,
        }
    }

    /// This router with the per-bin experts `experts` (None: none): oracle
    /// routing on their partition becomes the oracle-hybrid in
    /// [`Router::hybrid`] and [`Router::hybrid_rows`].
    ///
    /// Errors: their partition is not one of the models' or has another
    /// number of bins ([`Error::InvalidParameter`]).
    pub fn with_experts(self, experts: Option<&'a LoadedExperts>) -> Result<Self> {
        if let Some(e) = experts {
            let bins = self
                .models
                .partitions
                .get(e.partition)
                .map(|pm| pm.partition.bins());
            if bins != Some(e.chosen.len()) {
                return Err(Error::InvalidParameter {
                    name: "bin_experts",
                    problem: format!(
                        "experts for {} bins of partition {}, which the models {}",
                        e.chosen.len(),
                        e.partition,
                        match bins {
                            Some(b) => format!("give {b} bins"),
                            None => "do not have".into(),
                        }
                    ),
                });
            }
        }
        Ok(Router { experts, ..self })
    }

    /// The per-bin experts given with [`Router::with_experts`].
    pub fn experts(&self) -> Option<&'a LoadedExperts> {
        self.experts
    }

    /// A router with this gate (routing to the partition at position
    /// `partition`) in place of the saved one.
    pub(crate) fn with_gate(models: &'a ModelSet, gate: Option<(&'a Gate, usize)>) -> Self {
        Router {
            models,
            gate,
            experts: None,
        }
    }

    /// Checks that `routing` can be served by these models.
    pub fn check(&self, routing: Routing) -> Result<()> {
        match routing {
            Routing::Global => Ok(()),
            Routing::Oracle { partition } if partition < self.models.partitions.len() => Ok(()),
            Routing::Oracle { partition } => Err(Error::InvalidParameter {
                name: "partition",
                problem: format!(
                    "partition {partition} of {} in the models",
                    self.models.partitions.len()
                ),
            }),
            Routing::Gate { .. } if self.gate.is_some() => Ok(()),
            Routing::Gate { .. } => Err(Error::InvalidParameter {
                name: "routing",
                problem: "these models have no gate: gate routing needs models.h5 from `gramstream experiment` with the gate enabled".into(),
            }),
        }
    }

    /// The partition position whose bins `routing` routes to.
    pub fn partition(&self, routing: Routing) -> Option<usize> {
        match routing {
            Routing::Global => None,
            Routing::Oracle { partition } => Some(partition),
            Routing::Gate { .. } => self.gate.map(|(_, p)| p),
        }
    }

    /// The global expert's prediction.
    pub fn global(&self, x: &[f64]) -> f64 {
        self.models.global.coefficients.predict(x)
    }

    fn expert(&self, partition: usize, bin: usize) -> Option<&'a Expert> {
        self.models.partitions[partition].experts[bin].as_ref()
    }

    /// Bin `bin`'s expert's prediction, or `global` for a bin without one.
    fn expert_or_global(&self, partition: usize, bin: usize, x: &[f64], global: f64) -> f64 {
        self.expert(partition, bin)
            .map_or(global, |e| e.coefficients.predict(x))
    }

    /// Oracle routing on `partition` of a row with these keys, given its
    /// global prediction.
    pub fn oracle(&self, partition: usize, keys: &RowKeys, x: &[f64], global: f64) -> (f64, Route) {
        let part = &self.models.partitions[partition].partition;
        match part.bin(keys) {
            None => (global, Route::Unbinned),
            Some(b) => match self.expert(partition, b) {
                Some(e) => (e.coefficients.predict(x), Route::Bin(b)),
                None => (global, Route::NoExpert(b)),
            },
        }
    }

    /// The per-bin experts when they belong to `partition`.
    fn experts_of(&self, partition: usize) -> Option<&'a LoadedExperts> {
        self.experts.filter(|e| e.partition == partition)
    }

    /// Oracle-hybrid routing on `partition` of one row, given its Ridge
    /// oracle prediction `ridge` ([`Router::oracle`]'s): LightGBM's
    /// prediction when the row's true bin chose LightGBM, else `ridge`.
    /// On a partition without per-bin experts, this is [`Router::oracle`]'s
    /// routing. Many rows: [`Router::hybrid_rows`].
    ///
    /// Errors: LightGBM's ([`LoadedExperts::lightgbm`]).
    pub fn hybrid(
        &self,
        partition: usize,
        keys: &RowKeys,
        x: &[f64],
        ridge: f64,
    ) -> Result<(f64, Route)> {
        let part = &self.models.partitions[partition].partition;
        let Some(b) = part.bin(keys) else {
            return Ok((ridge, Route::Unbinned));
        };
        if let Some(e) = self.experts_of(partition) {
            if e.chosen[b] == ExpertKind::LightGbm {
                if let Some(y) = e.lightgbm(b, x)? {
                    return Ok((y, Route::LightGbm(b)));
                }
            }
        }
        let route = match self.expert(partition, b) {
            Some(_) => Route::Bin(b),
            None => Route::NoExpert(b),
        };
        Ok((ridge, route))
    }

    /// [`Router::hybrid`] for a chunk of rows (`x` row-major, one row per
    /// key), one LightGBM call per bin: `predictions` and `routes` hold the
    /// Ridge oracle's on entry ([`Router::oracle`] on `partition`), and the
    /// rows whose true bin chose LightGBM get LightGBM's prediction and
    /// [`Route::LightGbm`]; the others are left as they are. Nothing changes
    /// on a partition without per-bin experts.
    ///
    /// Errors: lengths that disagree ([`Error::Shape`]); LightGBM's, a
    /// non-finite value naming its row in the chunk ([`Error::NonFinite`]).
    pub fn hybrid_rows(
        &self,
        partition: usize,
        keys: &[RowKeys],
        x: &[f64],
        predictions: &mut [f64],
        routes: &mut [Route],
    ) -> Result<()> {
        let Some(e) = self.experts_of(partition) else {
            return Ok(());
        };
        let (n, p) = (keys.len(), self.models.pixels);
        if x.len() != n * p || predictions.len() != n || routes.len() != n {
            return Err(Error::shape(
                "oracle-hybrid rows",
                format!("{n} rows of {p} pixels, {n} predictions and {n} routes"),
                format!(
                    "{} values, {} predictions, {} routes",
                    x.len(),
                    predictions.len(),
                    routes.len()
                ),
            ));
        }
        let part = &self.models.partitions[partition].partition;
        let mut rows_of_bin: Vec<Vec<usize>> = vec![Vec::new(); e.chosen.len()];
        for (r, k) in keys.iter().enumerate() {
            if let Some(b) = part.bin(k) {
                if e.chosen[b] == ExpertKind::LightGbm {
                    rows_of_bin[b].push(r);
                }
            }
        }
        let mut rows = Vec::new();
        for (b, members) in rows_of_bin.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            rows.clear();
            for &r in members {
                rows.extend_from_slice(&x[r * p..(r + 1) * p]);
            }
            let y = e
                .lightgbm_rows(b, &rows)
                .map_err(|err| err.renumber_row(|row| members[row as usize] as u64))?;
            for (&r, y) in members.iter().zip(y) {
                predictions[r] = y;
                routes[r] = Route::LightGbm(b);
            }
        }
        Ok(())
    }

    /// The gate's view of a row, given its global prediction (None: no gate).
    pub fn gated(&self, x: &[f64], global: f64) -> Option<Gated> {
        let (gate, partition) = self.gate?;
        let probs = gate.probabilities(x);
        let experts: Vec<f64> = (0..probs.len())
            .map(|k| self.expert_or_global(partition, k, x, global))
            .collect();
        let bin = crate::gate::logistic::argmax(&probs);
        let soft = probs.iter().zip(&experts).map(|(p, y)| p * y).sum();
        let hard = experts[bin];
        Some(Gated {
            probs,
            bin,
            soft,
            hard,
        })
    }

    /// The prediction of a row under `routing` (checked with
    /// [`Router::check`]), and where it went.
    pub fn predict(&self, routing: Routing, x: &[f64], keys: &RowKeys) -> (f64, Route) {
        let global = self.global(x);
        match routing {
            Routing::Global => (global, Route::Global),
            Routing::Oracle { partition } => self.oracle(partition, keys, x, global),
            Routing::Gate { soft: true } => match self.gated(x, global) {
                Some(g) => (g.soft, Route::Gate(g.bin)),
                None => (global, Route::Global),
            },
            // Hard routing needs one expert's prediction, not every bin's.
            Routing::Gate { soft: false } => match self.gate {
                Some((gate, partition)) => {
                    let bin = crate::gate::logistic::argmax(&gate.probabilities(x));
                    (
                        self.expert_or_global(partition, bin, x, global),
                        Route::Gate(bin),
                    )
                }
                None => (global, Route::Global),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experts::binning::{PixelBins, MAX_CODES};
    use crate::experts::lightgbm::SavedLightGbm;
    use crate::experts::ExpertKind::{LightGbm, Ridge};

    /// Two bins: Ridge, then LightGBM with this model text.
    fn experts(model: &str) -> BinExperts {
        let bins = PixelBins::fit(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 3, MAX_CODES).unwrap();
        BinExperts {
            partition: 0,
            chosen: vec![Ridge, LightGbm],
            lightgbm: vec![
                None,
                Some(SavedLightGbm {
                    bins,
                    model: model.into(),
                }),
            ],
        }
    }

    #[test]
    fn loading_needs_lightgbm_and_names_the_bin() {
        let err = LoadedExperts::load(&experts("not a model"), Threads::ONE).unwrap_err();
        #[cfg(feature = "lightgbm")]
        assert!(
            matches!(&err, Error::LightGbm { what, .. } if what.contains("(bin 1)")),
            "{err}"
        );
        #[cfg(not(feature = "lightgbm"))]
        assert_eq!(
            err.to_string(),
            "this build has no LightGBM: rebuild with --features lightgbm"
        );
        let mut bad = experts("not a model");
        bad.lightgbm[1] = None;
        let err = LoadedExperts::load(&bad, Threads::ONE).unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { .. }), "{err}");
        bad.chosen.pop();
        let err = LoadedExperts::load(&bad, Threads::ONE).unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { .. }), "{err}");
        // Every bin chose Ridge and kept no model: any build loads it.
        let ridge = BinExperts {
            partition: 0,
            chosen: vec![Ridge; 2],
            lightgbm: vec![None; 2],
        };
        let loaded = LoadedExperts::load(&ridge, Threads::ONE).unwrap();
        assert!(!loaded.has_lightgbm(0) && !loaded.has_lightgbm(7));
        assert_eq!(loaded.lightgbm(1, &[0.0; 3]).unwrap(), None);
        assert!(loaded.lightgbm_rows(1, &[0.0; 3]).is_err());
        assert_eq!((loaded.partition(), loaded.chosen()), (0, &[Ridge; 2][..]));
    }

    /// The router is shared by threads (Python's `predict_rows`).
    #[test]
    fn a_router_with_experts_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<Router<'static>>();
        shared::<LoadedExperts>();
    }
}
