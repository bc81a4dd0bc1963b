//! Evaluating a model on a test shard: R², MAE, RMSE.
//!
//! The test rows are streamed (chunk by chunk), so a test set larger than
//! memory is fine. Rows come from the stored `noisy` array, or from flux +
//! error with noise drawn from the test's own seed.

use std::path::Path;

use crate::noise::NoiseModel;
use crate::ridge::Coefficients;
use crate::source::{Chunk, ChunkSource, ReadOptions, Shard, Spectra};
use crate::{Layout, Result};

/// Regression metrics on a set of rows.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Rows evaluated.
    pub n: u64,
    /// 1 − SSE / Σ(y − ȳ)².
    pub r2: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
}

/// Running sums for [`Metrics`], with y taken around a shift `y0` so the
/// total sum of squares does not cancel when the mean is large.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scores {
    y0: f64,
    n: u64,
    sum_y: f64,
    sum_yy: f64,
    sse: f64,
    sae: f64,
}

impl Scores {
    /// Empty sums around `y0` (any value near the mean of y).
    pub fn around(y0: f64) -> Self {
        Scores {
            y0,
            ..Default::default()
        }
    }

    /// Adds one row.
    pub fn add(&mut self, y: f64, prediction: f64) {
        let e = y - prediction;
        let yc = y - self.y0;
        self.n += 1;
        self.sum_y += yc;
        self.sum_yy += yc * yc;
        self.sse += e * e;
        self.sae += e.abs();
    }

    /// R², MAE and RMSE of the rows added (None: no row).
    pub fn metrics(&self) -> Option<Metrics> {
        (self.n > 0).then(|| {
            let n = self.n as f64;
            let syy = self.sum_yy - self.sum_y * self.sum_y / n;
            Metrics {
                n: self.n,
                r2: 1.0 - self.sse / syy,
                mae: self.sae / n,
                rmse: (self.sse / n).sqrt(),
            }
        })
    }
}

/// Streams `shard` (shard index `index` for noise) and scores `model`
/// against the log g column. With `noise` = None the stored `noisy` array is
/// read; otherwise flux + error with that noise.
pub fn evaluate(
    model: &Coefficients,
    shard: &Path,
    index: u64,
    layout: &Layout,
    noise: Option<NoiseModel>,
) -> Result<Metrics> {
    let shard_path = shard;
    let shard = Shard::open(shard, layout)?;
    let spectra = if noise.is_some() {
        Spectra::FluxError
    } else {
        Spectra::Noisy
    };
    let opts = ReadOptions {
        spectra,
        columns: vec![layout.columns.log_g.clone()],
        ..Default::default()
    };
    let mut reader = shard.reader(index, &opts)?;
    let mut chunk = Chunk::default();
    let mut scores = Scores::default();
    for task in crate::source::plan_iter(vec![shard.rows()], 256)? {
        reader.read_chunk(task.rows, &mut chunk)?;
        if let Some(noise) = noise {
            noise.apply_rows(
                index,
                chunk.start as u64,
                chunk.pixels,
                &mut chunk.flux,
                &chunk.error,
                false,
            );
        }
        for r in 0..chunk.rows {
            let y = chunk.params_row(r)[0];
            scores.add(y, model.predict(chunk.flux_row(r)));
        }
    }
    scores
        .metrics()
        .ok_or_else(|| crate::Error::InvalidParameter {
            name: "test",
            problem: format!("{}: no rows to score", shard_path.display()),
        })
}
