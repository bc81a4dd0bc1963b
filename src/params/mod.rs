//! Reading the params table.
pub mod pickle;
