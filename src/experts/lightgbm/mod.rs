//! LightGBM experts: gradient-boosted trees per bin, through LightGBM's C
//! API (feature `lightgbm`: `lightgbm3-sys` builds the LightGBM 4.7.0 it
//! bundles, with OpenMP).
//!
//! A bin's training set is its [`CodedRows`](super::dataset::CodedRows):
//! one byte per pixel, the codes of [`PixelBins`](super::binning::PixelBins).
//! `train` hands them to LightGBM as the numbers 0…254 and makes
//! LightGBM's bins exactly the codes (one bin per code a pixel takes), so
//! the trees split where the boundaries are and nowhere else; the model
//! keeps the boundaries ([`SavedLightGbm`]) and codes every row it
//! predicts for with them (`LightGbmExpert::predict`). `train` and
//! `LightGbmExpert` exist with the feature only; the parameters and the
//! stored form always.
//!
//! Why not the `lightgbm3` crate's safe API: its `Dataset` is built from
//! a dense f32/f64 matrix with empty dataset parameters, which would need
//! a 4-byte copy of every code plus LightGBM's own row sample, and ignore
//! the dataset settings below; its calls panic on unexpected return
//! values. The C calls used are few (module `ffi`).
//!
//! Memory while training (n rows, P pixels, L = `num_leaves`), on top of
//! the caller's `CodedRows` (n × P bytes): LightGBM's binned copy of the
//! rows (n × P bytes) and its cache of histograms, one per leaf, L × 255 ×
//! P × 16 bytes (319 MiB at L = 20, P = 4096), plus transient buffers of
//! ours (a 255 × P sample for the bin mappers, 12 bytes a value; a chunk of
//! f32 rows being pushed, ≤ 4 MiB). Measured peak growth during training
//! (2 threads, column-wise): +362 MiB at n = 4000, +378 MiB at n = 8000
//! (P = 4096); +93 MiB at n = 8000, P = 1024. Row-wise histograms add a
//! row-wise copy (+438 MiB at n = 8000, P = 4096), so column-wise is the
//! default ([`Histogram::ColWise`]); it was also the faster one measured
//! on one thread (100 trees, 4000 × 1024: 1.6–1.8 s against 2.0–2.3 s).
//!
//! Reproducibility: parameters always force one histogram layout and pass
//! LightGBM's `deterministic` and `seed`; the rows arrive in key order
//! ([`super::dataset`]), so the same rows and parameters give the same
//! model — the same trees on 1 and 2 threads (tested).

mod model;
mod params;

pub use model::SavedLightGbm;
pub use params::{Histogram, LightGbmParams};

#[cfg(feature = "lightgbm")]
mod expert;
#[cfg(feature = "lightgbm")]
mod ffi;
#[cfg(feature = "lightgbm")]
mod train;

#[cfg(feature = "lightgbm")]
pub use expert::LightGbmExpert;
#[cfg(feature = "lightgbm")]
pub use train::train;

/// Whether this build can train and run LightGBM experts (feature
/// `lightgbm`): configurations asking for them can be refused up front.
pub const AVAILABLE: bool = cfg!(feature = "lightgbm");

/// What a build without LightGBM answers when asked for it.
pub const NOT_BUILT: crate::Error = crate::Error::NotBuilt {
    feature: "LightGBM",
    flag: "lightgbm",
};

#[cfg(all(test, feature = "lightgbm"))]
mod tests;
