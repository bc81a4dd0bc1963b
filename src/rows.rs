//! The row stream: the one definition of what a row is.
//!
//! Every consumer of rows — the pass, the gate's reservoir, test scoring in
//! the sweep and the experiment, `predict`, `scan` — reads them through
//! [`RowStream`], so a row is read, keyed and noised once, by the same code,
//! wherever it is used:
//!
//! * **SNR key** ([`snr`], DESIGN §1): ‖flux‖₂ / (L‖error‖₂) of the
//!   *noiseless* flux, L the noise level (1 when the level is 0). It is taken
//!   before the noise, and from the flux and error also when the models see a
//!   stored `noisy` array.
//! * **The spectra the models see** ([`ModelSpectra`], DESIGN §4): flux plus
//!   the deterministic noise of (seed, shard index, row), or the spectra as
//!   stored (the `noisy` array where one is read, else the flux).
//! * **Row keys**: a chunk records its shard index and first row; the noise,
//!   the fold ([`crate::partition::fold_of`]) and the reservoir key depend on
//!   (seed, shard index, row) only, so they do not depend on chunking,
//!   threads, shard subsets or resume points.
//! * **Bins**: [`crate::partition::Partition::bin`] of [`Chunk::keys`].
//!
//! Sources are any [`ChunkSource`]: shard files or arrays in memory. Reading,
//! the SNR keys and the noise run on the stream's own thread, ahead of the
//! consumer (a bounded number of chunks in flight, buffers recycled).

use crate::noise::NoiseModel;
use crate::partition::RowKeys;
use crate::source::{Chunk, ChunkSource, Prefetcher, Spectra};
use crate::Result;

/// The SNR of a row (DESIGN §1): ‖flux‖₂ / (L‖error‖₂) of the noiseless
/// flux, with L = `level`, or 1 when the level is 0.
pub fn snr(flux: &[f64], error: &[f64], level: f64) -> f64 {
    let l = if level > 0.0 { level } else { 1.0 };
    let nf = flux.iter().map(|v| v * v).sum::<f64>().sqrt();
    let ne = error.iter().map(|v| v * v).sum::<f64>().sqrt();
    nf / (l * ne)
}

/// The spectra the models see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ModelSpectra {
    /// Flux plus the deterministic noise of this model (DESIGN §4).
    Draw(NoiseModel),
    /// The spectra as stored: the `noisy` array where the reader delivers
    /// one, else the flux as it is (observed spectra).
    Stored,
}

/// What a stream makes of the rows it reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowSpec {
    /// The spectra the models see.
    pub spectra: ModelSpectra,
    /// Take each row's SNR key at this noise level (needs flux and error).
    pub snr_level: Option<f64>,
    /// Draw the noise of a chunk's rows on the rayon pool (same bits).
    pub parallel: bool,
}

impl RowSpec {
    /// Flux plus noise, SNR keys at the noise's level.
    pub fn draw(noise: NoiseModel) -> Self {
        RowSpec {
            spectra: ModelSpectra::Draw(noise),
            snr_level: Some(noise.level),
            parallel: false,
        }
    }

    /// What a reader must deliver for these rows; `stored_noisy`: the shard's
    /// `noisy` array is to be used (ignored when the noise is drawn).
    pub(crate) fn reader_spectra(&self, stored_noisy: bool) -> Spectra {
        match (self.spectra, stored_noisy, self.snr_level) {
            (ModelSpectra::Stored, true, None) => Spectra::Noisy,
            (ModelSpectra::Stored, true, Some(_)) => Spectra::NoisyWithFluxError,
            _ => Spectra::FluxError,
        }
    }

    /// The SNR keys, then the model spectra, of a chunk just read, in place.
    pub(crate) fn prepare(&self, chunk: &mut Chunk) {
        let p = chunk.pixels;
        chunk.snr.clear();
        if let Some(level) = self.snr_level {
            for r in 0..chunk.rows {
                let v = if chunk.error.is_empty() {
                    f64::NAN
                } else {
                    snr(chunk.flux_row(r), &chunk.error[r * p..(r + 1) * p], level)
                };
                chunk.snr.push(v);
            }
        }
        match self.spectra {
            ModelSpectra::Draw(noise) => noise.apply_rows(
                chunk.shard,
                chunk.start as u64,
                p,
                &mut chunk.flux,
                &chunk.error,
                self.parallel,
            ),
            ModelSpectra::Stored => {
                if !chunk.noisy.is_empty() {
                    std::mem::swap(&mut chunk.flux, &mut chunk.noisy);
                }
            }
        }
    }
}

impl Chunk {
    /// The keys of row `r` when the params were read as
    /// `key_columns` (T_eff, [M/H], log g) and SNR keys were taken (NaN
    /// SNR otherwise).
    pub fn keys(&self, r: usize) -> RowKeys {
        let prm = self.params_row(r);
        RowKeys {
            teff: prm[0],
            mh: prm[1],
            snr: self.snr.get(r).copied().unwrap_or(f64::NAN),
        }
    }

    /// log g of row `r` when the params were read as `key_columns`.
    pub fn log_g(&self, r: usize) -> f64 {
        self.params_row(r)[2]
    }
}

/// The params columns of a keyed row, in the order [`Chunk::keys`] and
/// [`Chunk::log_g`] read them: T_eff, [M/H], log g.
pub(crate) fn key_columns(layout: &crate::Layout) -> Vec<String> {
    let c = &layout.columns;
    vec![c.teff.clone(), c.mh.clone(), c.log_g.clone()]
}

/// Chunks of rows from sources, read ahead and prepared by a [`RowSpec`]
/// on the stream's thread, delivered in order: source after source, row
/// after row. Hand each chunk back with [`RowStream::recycle`].
pub struct RowStream {
    chunks: Prefetcher,
}

impl RowStream {
    /// Streams `sources` in chunks of `chunk_rows` rows, `depth` chunks ahead.
    pub fn new<S: ChunkSource + 'static>(
        sources: Vec<S>,
        spec: RowSpec,
        chunk_rows: usize,
        depth: usize,
    ) -> Result<Self> {
        let chunks = Prefetcher::spawn_with(sources, chunk_rows, depth, move |c| spec.prepare(c))?;
        Ok(RowStream { chunks })
    }

    /// Gives a chunk's buffers back for reuse.
    pub fn recycle(&self, chunk: Chunk) {
        self.chunks.recycle(chunk);
    }
}

impl Iterator for RowStream {
    type Item = Result<Chunk>;
    fn next(&mut self) -> Option<Self::Item> {
        self.chunks.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemorySource;

    fn source(shard: u64, rows: usize, p: usize) -> MemorySource {
        let flux: Vec<f64> = (0..rows * p).map(|i| 1.0 + (i % 11) as f64 * 0.1).collect();
        let error: Vec<f64> = (0..rows * p).map(|i| 0.1 + (i % 7) as f64 * 0.05).collect();
        let params: Vec<f64> = (0..rows * 3).map(|i| i as f64).collect();
        MemorySource::new(shard, p, flux, Some(error), params, 3).unwrap()
    }

    #[test]
    fn snr_is_the_ratio_of_norms_with_level_one_at_zero() {
        assert_eq!(snr(&[3.0, 4.0], &[0.6, 0.8], 2.0), 2.5);
        assert_eq!(snr(&[3.0, 4.0], &[0.6, 0.8], 0.0), 5.0);
    }

    #[test]
    fn keys_noise_and_snr_do_not_depend_on_chunking() {
        let noise = NoiseModel::new(1.0, 7).unwrap();
        for p in [1, 5, 64] {
            let collect = |chunk_rows: usize, parallel: bool| {
                let spec = RowSpec {
                    parallel,
                    ..RowSpec::draw(noise)
                };
                let sources = vec![source(3, 37, p), source(4, 5, p)];
                let mut out = Vec::new();
                let mut stream = RowStream::new(sources, spec, chunk_rows, 2).unwrap();
                while let Some(c) = stream.next() {
                    let c = c.unwrap();
                    for r in 0..c.rows {
                        out.push((c.shard, c.start + r, c.keys(r).snr, c.flux_row(r).to_vec()));
                    }
                    stream.recycle(c);
                }
                out
            };
            let one = collect(1, false);
            assert_eq!(one.len(), 42);
            for (rows, par) in [(3, false), (16, true), (100, false)] {
                assert_eq!(collect(rows, par), one);
            }
            // The SNR key is the noiseless flux's; the spectra carry the noise.
            let src = source(3, 37, p);
            let mut c = Chunk::default();
            let mut s = src.clone();
            s.read_chunk(0..1, &mut c).unwrap();
            assert_eq!(one[0].2, snr(c.flux_row(0), &c.error[..p], 1.0));
            let mut noisy = c.flux.clone();
            noise.apply_row(3, 0, &mut noisy, &c.error[..p]);
            assert_eq!(one[0].3, noisy);
        }
    }

    #[test]
    fn stored_spectra_swap_in_the_noisy_array() {
        let mut c = Chunk::default();
        source(0, 2, 3).read_chunk(0..2, &mut c).unwrap();
        let flux = c.flux.clone();
        c.noisy = vec![9.0; 6];
        let spec = RowSpec {
            spectra: ModelSpectra::Stored,
            snr_level: Some(1.0),
            parallel: false,
        };
        spec.prepare(&mut c);
        assert_eq!(c.flux, vec![9.0; 6]);
        assert_eq!(c.snr[1], snr(&flux[3..6], &c.error[3..6], 1.0));
        assert_eq!(spec.reader_spectra(true), Spectra::NoisyWithFluxError);
        assert_eq!(spec.reader_spectra(false), Spectra::FluxError);
    }
}
