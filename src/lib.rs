//! # gramstream
//!
//! One-pass, bounded-memory Ridge regression and mixtures of Ridge experts on
//! spectra datasets far larger than RAM.
//!
//! Chunked readers stream HDF5 shards, deterministic heteroscedastic noise
//! is added per row, and per-bin sufficient statistics are accumulated in
//! f64, once. Every Ridge α, every expert, exact K-fold CV, the gate and
//! the reports are then solved from those statistics without re-reading
//! the data. Same inputs and seed give the same statistics bit for bit, for
//! any thread count ([`Threads`]).
//!
//! ## Contents
//!
//! 1. [Reading shards](#reading-shards)
//! 2. [The pass](#the-pass)
//! 3. [Solving: every α, every bin](#solving-every-α-every-bin)
//! 4. [Experts, routing and prediction](#experts-routing-and-prediction)
//! 5. [Experiments and reports](#experiments-and-reports)
//! 6. [Errors, outputs, parallelism](#errors-outputs-parallelism)
//! 7. [Modules](#modules)
//!
//! `examples/accumulate.rs` (the pass) and `examples/sweep_predict.rs` (the
//! sweep, predict, an experiment) run the whole flow as library calls; each
//! CLI command is argument parsing, one of the calls below, and printing.
//!
//! ## Reading shards
//!
//! A shard is an HDF5 file with flux, error, a wavelength grid and a params
//! table ([`Layout`] says where). [`Shard::open`] validates one and
//! [`Shard::reader`] streams its rows through libhdf5 or a zero-copy map;
//! [`MemorySource`] serves rows from memory. Both are [`ChunkSource`]s, and
//! [`rows::RowStream`] turns any of them into the rows the models see: the
//! noisy spectra ([`NoiseModel`]), the SNR, the keys — each computed in one
//! place ([`rows`]).
//!
//! ## The pass
//!
//! [`accumulate`] (shard paths) and [`stats::pass::accumulate_sources`]
//! (any sources) read every row once within a memory budget
//! ([`AccumulateOptions`]) and return the per-bin, per-fold sums, written
//! with [`stats::pass::PassOutput::write`] and read back by
//! [`StatsFile::open`]. [`PushPass`] is the same pass fed by the caller,
//! chunk by chunk (numpy arrays, any loader), with the same bits.
//! Statistics of disjoint shards merge exactly ([`stats::merge()`]); a
//! killed pass resumes from its checkpoint.
//!
//! ## Solving: every α, every bin
//!
//! [`sweep::run`] solves the global model and every bin of every
//! [`Partition`] for a whole α grid ([`SweepOptions`]): one
//! eigendecomposition per group ([`ridge::RidgePath`]), α chosen by exact
//! K-fold CV or GCV, and, with a test shard, every (group, α) scored in one
//! read. Its outputs (CSV, JSON, `models.h5`, plots) are
//! [`sweep::report::write_outputs`].
//!
//! ## Experts, routing and prediction
//!
//! A [`ModelSet`] (`models.h5`) holds the selected experts and the gate.
//! [`Router`] sends a row to its expert — global, oracle on a partition
//! (with the global fallback), hard or soft gate ([`Routing`]) — for the
//! experiment's scoring and for [`predict::predict`] alike.
//!
//! ## Experiments and reports
//!
//! [`experiment::execute`] runs a TOML-configured experiment ([`experiment::Config`])
//! over noise levels and seeds — pass, solve, gate, one read of the test
//! shard — and writes `results.json`, `per_bin.csv`, `report.md` and its
//! plots.
//!
//! ## Errors, outputs, parallelism
//!
//! Every failure is an [`Error`] naming where it happened (file, dataset,
//! row, column, parameter); the library never panics on data. Outputs are
//! written under run-unique scratch names and renamed into place, never over
//! an input ([`output`]). Parallelism is one value, [`Threads`], at every
//! entry point; a [`Cancel`] token in the options stops a pass, a sweep or
//! an experiment from another thread (Python's Ctrl-C).
//!
//! ## Modules
//!
//! | module | owns |
//! |---|---|
//! | [`layout`] | where things live in a shard |
//! | [`params`] | the params table: compound fields and pandas blocks |
//! | [`source`] | chunk sources: libhdf5 and zero-copy readers, planner, prefetch, in-memory |
//! | [`rows`] | the row stream: SNR, model spectra, keys over any source |
//! | [`noise`] | deterministic per-row noise streams |
//! | [`synth`] | the synthetic BOSZ-like shard generator |
//! | [`inspect`] | a human-readable report on a shard |
//! | [`partition`] | bins, folds, the common refinement |
//! | [`stats`] | sufficient statistics: the pass, the file, merge; the pass in ranges ([`stats::ranges`]) for any number of processes |
//! | [`mpi`] | running under `mpiexec` (feature `mpi`) |
//! | [`linalg`] | the symmetric eigendecomposition: faer or LAPACK (OpenBLAS) |
//! | [`ridge`] | every Ridge α from the statistics, GCV, exact K-fold CV |
//! | [`tsqr`] | streaming QR of the rows, merged like the statistics: α = 0 and Ridge from R, better conditioned (an option beside the pass) |
//! | [`cv`] | exact K-fold CV for many α by block PCG, the full eigendecomposition as preconditioner |
//! | [`eval`] | R², MAE, RMSE with shifted sums |
//! | [`route`] | the router: global, oracle, hard and soft gate |
//! | [`models`], [`predict`] | saved Ridge experts (`models.h5`); streaming prediction with them |
//! | [`scan`] | one read with noise, and what it saw |
//! | [`report_figures`] | report PNGs from plain numbers: grouped bars, annotated heatmaps, predicted vs true, bars |
//! | [`sweep`] | every α of every bin: CV/GCV selection, test scores |
//! | [`experiment`] | the reference experiments from a TOML config: runs over noise levels and seeds, results.json, per_bin.csv, report.md, plots |
//! | [`experts`] | nonlinear per-bin experts (foundation): per-pixel 1-byte codes, bounded per-bin training rows, LightGBM (feature `lightgbm`) |
//! | [`gate`] | the gate: 37 PCA and line features, multinomial L2 logistic regression over the T_eff × [M/H] bins |
//! | [`output`] | outputs: never over an input, scratch unique per run, commit by rename, cleanup on signals |
//! | [`threads`] | parallelism: [`Threads`]; results never depend on it |
//! | [`error`] | [`Error`]: kinds with positions |
#![deny(missing_docs)]

pub mod cv;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod experts;
pub mod gate;
mod h5check;
mod h5raw;
mod h5write;
pub mod inspect;
pub mod layout;
pub mod linalg;
pub mod models;
pub mod mpi;
pub mod noise;
pub mod output;
pub mod params;
pub mod partition;
pub(crate) mod plot;
pub mod predict;
pub mod report_figures;
pub mod ridge;
pub mod route;
pub mod rows;
pub mod scan;
pub mod source;
pub mod stats;
pub mod sweep;
pub mod synth;
pub mod threads;
pub mod tsqr;

// The entry points, by theme (see the crate docs above).
pub use error::{Error, FitError, Result};
pub use layout::Layout;
pub use models::ModelSet;
pub use noise::NoiseModel;
pub use partition::{Partition, PartitionSet};
pub use predict::PredictOptions;
pub use route::{Router, Routing};
pub use source::{ChunkSource, MemorySource, Shard};
pub use stats::pass::{accumulate, AccumulateOptions};
pub use stats::push::{PushPass, PushRows};
pub use stats::StatsFile;
pub use sweep::{Sweep, SweepOptions};
pub use threads::{Cancel, Threads};
