//! Sufficient statistics: the accumulating pass and its results.
//!
//! [`SuffStats`] holds one accumulator's sums; [`Accumulator`] builds them
//! from staged rows through the Gram kernel ([`gram`]).

pub mod gram;
mod suff;

pub use suff::{packed_index, packed_len, Accumulator, SuffStats};
