//! A trained LightGBM expert: predictions from coded or raw rows, and its
//! stored form.

use std::sync::Arc;

use super::ffi::Booster;
use super::model::SavedLightGbm;
use crate::experts::binning::PixelBins;
use crate::{Error, Result, Threads};

/// Values per chunk of f32 rows handed to LightGBM (16 MiB).
const CHUNK_VALUES: usize = 1 << 22;

/// A LightGBM model with the boundaries its inputs are coded with.
/// `Send`, not `Sync`: one thread predicts at a time (LightGBM spreads each
/// call over [`Self::threads`]).
pub struct LightGbmExpert {
    bins: Arc<PixelBins>,
    booster: Booster,
    model: String,
    threads: Threads,
}

impl std::fmt::Debug for LightGbmExpert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightGbmExpert")
            .field("pixels", &self.bins.pixels())
            .field("trees", &self.booster.trees())
            .field("model_bytes", &self.model.len())
            .field("threads", &self.threads)
            .finish()
    }
}

impl LightGbmExpert {
    /// The expert stored as `saved`, predicting on `threads`.
    ///
    /// Errors: LightGBM cannot read the model, or the model's features are
    /// not the boundaries' pixels ([`Error::LightGbm`]).
    pub fn load(saved: SavedLightGbm, threads: Threads) -> Result<LightGbmExpert> {
        Self::from_parts(Arc::new(saved.bins), saved.model, threads)
    }

    pub(super) fn from_parts(
        bins: Arc<PixelBins>,
        model: String,
        threads: Threads,
    ) -> Result<LightGbmExpert> {
        let booster = Booster::from_string(&model)?;
        if booster.features() != bins.pixels() {
            return Err(Error::LightGbm {
                what: "reading the model".into(),
                message: format!(
                    "a model of {} features with boundaries for {} pixels",
                    booster.features(),
                    bins.pixels()
                ),
            });
        }
        Ok(LightGbmExpert {
            bins,
            booster,
            model,
            threads,
        })
    }

    /// The stored form: LightGBM's text as trained, and the boundaries.
    pub fn save(&self) -> SavedLightGbm {
        SavedLightGbm {
            bins: self.bins.as_ref().clone(),
            model: self.model.clone(),
        }
    }

    /// The boundaries rows are coded with.
    pub fn bins(&self) -> &PixelBins {
        &self.bins
    }

    /// Pixels per row.
    pub fn pixels(&self) -> usize {
        self.bins.pixels()
    }

    /// Trees in the model (fewer than asked when LightGBM found no more
    /// useful split).
    pub fn trees(&self) -> usize {
        self.booster.trees()
    }

    /// LightGBM's model text.
    pub fn model_text(&self) -> &str {
        &self.model
    }

    /// Threads LightGBM predicts on.
    pub fn threads(&self) -> Threads {
        self.threads
    }

    /// Predicts on `threads` from now on.
    pub fn set_threads(&mut self, threads: Threads) {
        self.threads = threads;
    }

    /// Predictions for coded rows (row-major, [`Self::pixels`] codes per
    /// row, coded with [`Self::bins`]), one per row.
    pub fn predict_codes(&self, codes: &[u8]) -> Result<Vec<f64>> {
        let p = self.pixels();
        if codes.len() % p != 0 {
            return Err(Error::shape(
                "coded rows",
                format!("whole rows of {p} codes"),
                codes.len(),
            ));
        }
        let mut out = vec![0.0; codes.len() / p];
        let rows_per_chunk = (CHUNK_VALUES / p).max(1);
        let mut x = Vec::with_capacity(rows_per_chunk.min(out.len()) * p);
        for (c, o) in codes
            .chunks(rows_per_chunk * p)
            .zip(out.chunks_mut(rows_per_chunk))
        {
            x.clear();
            x.extend(c.iter().map(|&v| f32::from(v)));
            self.booster.predict(&x, self.threads.get(), o)?;
        }
        Ok(out)
    }

    /// Predictions for raw rows (row-major noisy flux, [`Self::pixels`]
    /// per row), coded with [`Self::bins`] first, one per row.
    ///
    /// Errors: shapes, a NaN or infinite value ([`Error::NonFinite`],
    /// naming its row in `x`).
    pub fn predict(&self, x: &[f64]) -> Result<Vec<f64>> {
        let p = self.pixels();
        if x.len() % p != 0 {
            return Err(Error::shape(
                "rows to predict",
                format!("whole rows of {p} pixels"),
                x.len(),
            ));
        }
        let rows_per_chunk = (CHUNK_VALUES / p).max(1);
        let mut out = Vec::with_capacity(x.len() / p);
        let mut codes = Vec::with_capacity(rows_per_chunk.min(x.len() / p) * p);
        for (i, chunk) in x.chunks(rows_per_chunk * p).enumerate() {
            codes.resize(chunk.len(), 0);
            self.bins
                .encode(chunk, &mut codes)
                .map_err(|e| e.renumber_row(|row| row + (i * rows_per_chunk) as u64))?;
            out.extend(self.predict_codes(&codes)?);
        }
        Ok(out)
    }
}
