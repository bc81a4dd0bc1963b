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
//! `predict`, the sweep's models and the experiment's scoring all route
//! through [`Router`], so the same row gets the same prediction everywhere
//! (tested: `predict` reproduces the experiment's predictions bit for bit).

use crate::gate::Gate;
use crate::models::{Expert, ModelSet};
use crate::partition::RowKeys;
use crate::{Error, Result};

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
}

impl Route {
    /// The bin whose expert predicted the row (None: the global expert).
    pub fn expert_bin(self) -> Option<usize> {
        match self {
            Route::Bin(b) | Route::Gate(b) => Some(b),
            _ => None,
        }
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
}

impl<'a> Router<'a> {
    /// A router over `models`, with the gate saved in them if any.
    pub fn new(models: &'a ModelSet) -> Self {
        Router {
            models,
            gate: models.gate.as_ref().map(|g| (&g.gate, g.partition)),
        }
    }

    /// A router with this gate (routing to the partition at position
    /// `partition`) in place of the saved one.
    pub(crate) fn with_gate(models: &'a ModelSet, gate: Option<(&'a Gate, usize)>) -> Self {
        Router { models, gate }
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
