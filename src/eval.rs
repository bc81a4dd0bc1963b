//! Evaluating a model on a test shard: R², MAE, RMSE.
//!
//! The test rows are streamed (chunk by chunk), so a test set larger than
//! memory is fine. Rows come from the stored `noisy` array, or from flux +
//! error with noise drawn from the test's own seed.

use std::path::Path;

use crate::noise::NoiseModel;
use crate::ridge::Coefficients;
use crate::rows::{ModelSpectra, RowSpec, RowStream};
use crate::source::{ReadOptions, Shard};
use crate::{Layout, Result};

/// Regression metrics on a set of rows.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Number of rows scored (≥ 1: with no row there are no metrics).
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
    let spec = RowSpec {
        spectra: noise.map_or(ModelSpectra::Stored, ModelSpectra::Draw),
        snr_level: None,
        parallel: false,
    };
    let opts = ReadOptions {
        spectra: spec.reader_spectra(noise.is_none()),
        columns: vec![layout.columns.log_g.clone()],
        ..Default::default()
    };
    let reader = shard.reader(index, &opts)?;
    let mut scores = Scores::default();
    let mut stream = RowStream::new(vec![reader], spec, 256, 2)?;
    while let Some(chunk) = stream.next() {
        let chunk = chunk?;
        for r in 0..chunk.rows {
            let y = chunk.params_row(r)[0];
            scores.add(y, model.predict(chunk.flux_row(r)));
        }
        stream.recycle(chunk);
    }
    scores
        .metrics()
        .ok_or_else(|| crate::Error::InvalidParameter {
            name: "test",
            problem: format!("{}: no rows to score", shard_path.display()),
        })
}
