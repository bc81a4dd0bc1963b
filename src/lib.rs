//! # gramstream
//!
//! One-pass, bounded-memory Ridge regression and mixtures of Ridge experts on
//! spectra datasets far larger than RAM.
//!
//! Chunked readers stream HDF5 shards ([`source`]), deterministic
//! heteroscedastic noise is added per row ([`noise`]), and per-bin
//! sufficient statistics are accumulated in f64. Every Ridge α, expert and
//! report is then solved from those statistics without re-reading the data.
//!
//! ## Modules
//!
//! | module | owns |
//! |---|---|
//! | [`layout`] | where things live in a shard |
//! | [`params`] | the params table: compound fields and pandas blocks |
//! | [`source`] | chunk sources: libhdf5 and zero-copy readers, planner, prefetch, in-memory |
//! | [`noise`] | deterministic per-row noise streams |
//! | [`synth`] | the synthetic BOSZ-like shard generator |
//! | [`inspect`] | a human-readable report on a shard |
//! | [`partition`] | bins, folds, the common refinement |
//! | [`stats`] | sufficient statistics: the pass, the file, merge |
//! | [`linalg`] | the symmetric eigendecomposition: faer or LAPACK (OpenBLAS) |
//! | [`ridge`] | every Ridge α from the statistics, GCV, exact K-fold CV |
//! | [`tsqr`] | streaming QR of the rows, merged like the statistics: α = 0 and Ridge from R, better conditioned (an option beside the pass) |
//! | [`cv`] | exact K-fold CV for many α by block PCG, the full eigendecomposition as preconditioner |
//! | [`eval`] | R², MAE, RMSE of a model on a test shard |
//! | [`models`], [`predict`] | saved Ridge experts (`models.h5`); streaming prediction with them |
//! | [`scan`] | one read with noise, and what it saw |
//! | [`plot`] | PNG figures (plotters) |
//! | [`report_figures`] | report PNGs from plain numbers: grouped bars, annotated heatmaps, predicted vs true, bars |
//! | [`sweep`] | every α of every bin: CV/GCV selection, test scores |
//! | [`experiment`] | the reference experiments from a TOML config: runs over noise levels and seeds, results.json, per_bin.csv, report.md, plots |
//! | [`threads`] | parallelism: [`Threads`], the one notion every entry point takes; results never depend on it |
//! | [`gate`] | the gate: 37 PCA and line features, multinomial L2 logistic regression over the T_eff × [M/H] bins |
#![deny(missing_docs)]

pub mod error;
pub mod eval;
pub mod experiment;
pub mod gate;
mod h5check;
mod h5raw;
mod h5write;
pub mod layout;
pub mod models;
pub mod params;
pub mod synth;

pub use error::{Error, Result};
pub use layout::Layout;
pub use threads::Threads;
pub mod cv;
pub mod inspect;
pub mod linalg;
pub mod noise;
pub mod output;
pub mod partition;
pub mod plot;
pub mod predict;
pub mod report_figures;
pub mod ridge;
pub mod route;
pub mod rows;
pub mod scan;
pub mod source;
pub mod stats;
pub mod sweep;
pub mod threads;
pub mod tsqr;
