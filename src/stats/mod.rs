//! Sufficient statistics: the accumulating pass and its results.
//!
//! [`SuffStats`] holds one accumulator's sums; [`Accumulator`] builds them
//! from staged rows through the Gram kernel ([`gram`]). A statistics set is
//! a [`StatsHeader`] (configuration, provenance, shift), the accumulators
//! keyed by [`Mode`], and the gate's [`Reservoir`]; [`mod@file`] stores it.

pub mod derive;
pub mod file;
pub mod gram;
pub mod merge;
pub mod pass;
pub mod push;
pub mod ranges;
pub mod ranks;
mod set;
mod suff;

pub use file::{write_stats, StatsFile};
pub use gram::Precision;
pub use merge::{merge, MergeSummary};
pub(crate) use set::permute_rows;
pub use set::{Cursor, Mode, Reservoir, ShardFingerprint, StatsHeader, FORMAT_VERSION};
pub use suff::{packed_index, packed_len, Accumulator, SuffStats, Sums};
