//! One read of a set of shards with noise, and what it saw.
//!
//! This is the pass without statistics: reader → noise → per-row summary. It
//! measures the reader and the noise (rows/s, GB/s), checks every value, and
//! reports the SNR distribution (‖flux‖₂ / (L · ‖error‖₂) from the noiseless
//! flux, L = 1 when the level is 0) and a checksum of the noisy flux, which
//! must not depend on chunk size or thread count.

use std::path::PathBuf;
use std::time::Instant;

use crate::noise::NoiseModel;
use crate::rows::{ModelSpectra, RowSpec, RowStream};
use crate::source::{ReadOptions, Shard, ShardReader, Spectra};
use crate::{Layout, Result};

/// Options of [`scan`].
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Where things are in the shards.
    pub layout: Layout,
    /// Reader options (columns are set by `scan`).
    pub read: ReadOptions,
    /// Noise level and seed.
    pub noise: NoiseModel,
    /// Rows per chunk.
    pub chunk_rows: usize,
    /// Chunks read ahead.
    pub prefetch: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            layout: Layout::default(),
            read: ReadOptions::default(),
            noise: NoiseModel {
                level: 1.0,
                seed: 42,
            },
            chunk_rows: 256,
            prefetch: 2,
        }
    }
}

/// What a scan saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScanSummary {
    /// The shard paths as given, in read order (shard index = position).
    pub shards: Vec<PathBuf>,
    /// Rows read and checked, skipped rows not counted.
    pub rows: usize,
    /// Rows skipped under the skip policy.
    pub skipped: usize,
    /// Pixels per row.
    pub pixels: usize,
    /// Bytes of spectra decoded (f64 flux and error).
    pub bytes: u64,
    /// Wall time (s) of the whole scan, opening the shards included.
    pub seconds: f64,
    /// Whether every shard was read through the memory map.
    pub zero_copy: bool,
    /// SNR quantiles: min, median, max (None when no error was read).
    pub snr: Option<[f64; 3]>,
    /// log g: min, mean, max.
    pub log_g: [f64; 3],
    /// Sum of every noisy flux value: a checksum of the noise.
    pub flux_sum: f64,
}

impl ScanSummary {
    /// Rows per second.
    pub fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.seconds.max(1e-12)
    }
    /// Decoded gigabytes per second.
    pub fn gb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e9 / self.seconds.max(1e-12)
    }
}

/// Reads `paths` (shard index = position in the list) with noise and
/// summarises. `progress` is called with the rows of each chunk done.
pub fn scan(
    paths: &[PathBuf],
    options: &ScanOptions,
    progress: &dyn Fn(u64),
) -> Result<ScanSummary> {
    let start = Instant::now();
    let cols = &options.layout.columns;
    let mut read = options.read.clone();
    read.columns = vec![cols.log_g.clone()];
    let mut readers: Vec<ShardReader> = Vec::with_capacity(paths.len());
    let mut pixels = 0;
    for (i, p) in paths.iter().enumerate() {
        let shard = Shard::open(p, &options.layout)?;
        if i > 0 && shard.pixels() != pixels {
            return Err(crate::Error::Layout {
                path: p.clone(),
                dataset: options.layout.flux.clone(),
                expected: format!("{pixels} pixels like {}", paths[0].display()),
                found: format!("{} pixels", shard.pixels()),
            });
        }
        pixels = shard.pixels();
        readers.push(shard.reader(i as u64, &read)?);
    }
    let zero_copy = readers.iter().all(ShardReader::zero_copy);
    let stored = read.spectra == Spectra::Noisy;
    let spec = RowSpec {
        spectra: if stored {
            ModelSpectra::Stored
        } else {
            ModelSpectra::Draw(options.noise)
        },
        snr_level: (!stored).then_some(options.noise.level),
        parallel: true,
    };
    let mut stream = RowStream::new(readers, spec, options.chunk_rows, options.prefetch)?;
    let (mut rows, mut skipped, mut bytes, mut flux_sum) = (0usize, 0usize, 0u64, 0.0f64);
    let mut snr = Vec::new();
    let mut log_g = [f64::INFINITY, 0.0, f64::NEG_INFINITY];
    while let Some(chunk) = stream.next() {
        let chunk = chunk?;
        for r in 0..chunk.rows {
            if chunk.skip[r] {
                continue;
            }
            if let Some(&s) = chunk.snr.get(r) {
                snr.push(s);
            }
            let g = chunk.params_row(r)[0];
            log_g = [log_g[0].min(g), log_g[1] + g, log_g[2].max(g)];
            // Sum per row in a fixed order, then across rows in order: the
            // checksum does not depend on chunking.
            flux_sum += chunk.flux_row(r).iter().sum::<f64>();
        }
        let n = chunk.rows - chunk.skipped();
        rows += n;
        skipped += chunk.skipped();
        bytes += chunk.spectra_bytes() as u64;
        progress(chunk.rows as u64);
        stream.recycle(chunk);
    }
    if rows > 0 {
        log_g[1] /= rows as f64;
    }
    snr.sort_by(f64::total_cmp);
    let snr = (!snr.is_empty()).then(|| [snr[0], snr[snr.len() / 2], snr[snr.len() - 1]]);
    Ok(ScanSummary {
        shards: paths.to_vec(),
        rows,
        skipped,
        pixels,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
        zero_copy,
        snr,
        log_g,
        flux_sum,
    })
}
