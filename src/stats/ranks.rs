//! The processes that share a pass, and how they agree.
//!
//! [`Ranks`] is what the pass in ranges ([`super::ranges`]) needs of a
//! transport — a few collectives and ordered point-to-point messages — so
//! that the pass is the same code for one process ([`Alone`]), for threads in
//! the tests, and for MPI (`crate::mpi::World`, feature `mpi`). [`agree`] is
//! the one rule for failures: every step that can fail ends in it, so when a
//! rank fails, every rank stops, and none waits forever.

use super::pass::AccumulateOptions;
use crate::{Error, Result};

/// The processes of a distributed pass and the messages between them: one
/// process ([`Alone`]), or the ranks of MPI (`gramstream::mpi`, feature
/// `mpi`). Every rank calls the collective operations in the same order;
/// sends and receives pair up in the order
/// [`super::ranges::accumulate_ranged`] gives
/// them. Transport failures are the transport's to report (MPI aborts the
/// job): these calls do not fail.
pub trait Ranks {
    /// This process's rank, 0-based.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// Collective: the smallest `value` over all ranks.
    fn min(&self, value: u64) -> u64;
    /// Collective: the largest `value` over all ranks.
    fn max(&self, value: u64) -> u64;
    /// Collective: `root`'s `bytes` on every rank.
    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>);
    /// Sends `values` to rank `to`.
    fn send_u64(&self, to: usize, values: &[u64]);
    /// Sends `values` to rank `to` (in pieces if the transport's counts are smaller).
    fn send_f64(&self, to: usize, values: &[f64]);
    /// Receives exactly `values.len()` values sent by rank `from`.
    fn receive_u64(&self, from: usize, values: &mut [u64]);
    /// Receives exactly `values.len()` values sent by rank `from`.
    fn receive_f64(&self, from: usize, values: &mut [f64]);
    /// Ranks on this process's node, sharing its cores and memory.
    fn on_this_node(&self) -> usize {
        1
    }
}

/// Gives a rank its share of its node: when k ranks share the node, threads
/// left at "all cores" become cores / k, and no budget becomes the default
/// budget / k (k copies of 80 % of the memory would not fit).
pub fn share_node(opts: &mut AccumulateOptions, ranks: &dyn Ranks) {
    let k = ranks.on_this_node().max(1);
    if k == 1 {
        return;
    }
    if opts.threads == crate::Threads::All {
        opts.threads = crate::Threads::new((crate::Threads::All.get() / k).max(1));
    }
    if opts.mem_budget.is_none() {
        opts.mem_budget = Some(super::pass::default_budget() / k as u64);
    }
}

/// One process: rank 0 of 1. It never sends or receives.
#[derive(Debug, Clone, Copy, Default)]
pub struct Alone;

impl Ranks for Alone {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn min(&self, value: u64) -> u64 {
        value
    }
    fn max(&self, value: u64) -> u64 {
        value
    }
    fn broadcast(&self, _: usize, _: &mut Vec<u8>) {}
    fn send_u64(&self, _: usize, _: &[u64]) {
        unreachable!("a single process sends nothing")
    }
    fn send_f64(&self, _: usize, _: &[f64]) {
        unreachable!("a single process sends nothing")
    }
    fn receive_u64(&self, _: usize, _: &mut [u64]) {
        unreachable!("a single process receives nothing")
    }
    fn receive_f64(&self, _: usize, _: &mut [f64]) {
        unreachable!("a single process receives nothing")
    }
}

/// Collective: every rank's outcome of one step. Ok on every rank when all
/// succeeded; otherwise the lowest failing rank keeps its error and every
/// other rank gets [`Error::Rank`] with its text.
pub fn agree<T>(ranks: &dyn Ranks, outcome: Result<T>) -> Result<T> {
    let me = ranks.rank() as u64;
    let first = ranks.min(if outcome.is_err() { me } else { u64::MAX });
    if first == u64::MAX {
        return outcome;
    }
    let mut text = match &outcome {
        Err(e) if first == me => e.to_string().into_bytes(),
        _ => Vec::new(),
    };
    ranks.broadcast(first as usize, &mut text);
    match outcome {
        Err(e) if first == me => Err(e),
        _ => Err(Error::Rank {
            rank: first as usize,
            message: String::from_utf8_lossy(&text).into_owned(),
        }),
    }
}
