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
    let (mut n, mut sum_y, mut sum_yy, mut sse, mut sae) = (0u64, 0.0, 0.0, 0.0, 0.0);
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
            let e = y - model.predict(chunk.flux_row(r));
            n += 1;
            sum_y += y;
            sum_yy += y * y;
            sse += e * e;
            sae += e.abs();
        }
    }
    let nf = n.max(1) as f64;
    let syy = sum_yy - sum_y * sum_y / nf;
    Ok(Metrics {
        n,
        r2: 1.0 - sse / syy,
        mae: sae / nf,
        rmse: (sse / nf).sqrt(),
    })
}
