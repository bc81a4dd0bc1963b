//! Chunk sources: where rows of spectra come from.
//!
//! A [`ChunkSource`] fills a caller-owned [`Chunk`] with rows `[a, b)` of
//! flux, error (or a stored `noisy` array) and the params columns the run
//! needs, as f64 whatever the dtype on disk. Implementations:
//!
//! * [`ShardReader`] — an HDF5 shard. Contiguous, unfiltered, little-endian
//!   float datasets are read through a memory map ([`zero_copy`]); anything
//!   else (chunked, gzip, big-endian, not allocated) through libhdf5
//!   hyperslabs. Both give identical rows (tested).
//! * [`MemorySource`] — rows held in memory, for tests and fuzzing.
//!
//! [`plan`] cuts shards into chunks that cover every row exactly once;
//! [`Prefetcher`] reads ahead on its own thread through a bounded channel so
//! reading overlaps computation, recycling buffers so the steady state
//! allocates nothing.

mod checks;
mod memory;
mod plan;
mod prefetch;
mod shard;
pub mod zero_copy;

pub(crate) use checks::RowChecks;
pub use checks::MAX_SPECTRUM_VALUE;
pub use memory::MemorySource;
pub use plan::{plan, plan_iter, ChunkTask};
pub use prefetch::Prefetcher;
pub use shard::{
    ArrayInfo, NonFinitePolicy, ReadOptions, ReadPath, Shard, ShardReader, Spectra, Storage,
};

use std::ops::Range;

use crate::Result;

/// A block of consecutive rows of one shard, in caller-owned buffers.
///
/// Buffers keep their capacity between reads: reading a chunk of the same
/// size again allocates nothing.
#[derive(Debug, Default, Clone)]
pub struct Chunk {
    /// Index of the shard the rows come from (the noise stream's shard index).
    pub shard: u64,
    /// First row (within the shard).
    pub start: usize,
    /// Number of rows.
    pub rows: usize,
    /// Pixels per row.
    pub pixels: usize,
    /// Flux (or the stored noisy flux), row-major `rows × pixels`.
    pub flux: Vec<f64>,
    /// Error, row-major `rows × pixels`; empty when not read.
    pub error: Vec<f64>,
    /// Params columns, row-major `rows × columns.len()` of the read options.
    pub params: Vec<f64>,
    /// Number of params columns per row.
    pub ncols: usize,
    /// Rows to ignore (non-finite values under [`NonFinitePolicy::SkipRow`]).
    pub skip: Vec<bool>,
    /// The stored `noisy` spectra when read beside flux and error
    /// ([`Spectra::NoisyWithFluxError`]); the row stream moves them into
    /// `flux` once the SNR keys are taken. Empty otherwise.
    pub noisy: Vec<f64>,
    /// Each row's SNR key ([`crate::rows::snr`]) when the row stream was asked
    /// for it; empty otherwise.
    pub snr: Vec<f64>,
}

impl Chunk {
    /// The flux of row `r` (0-based within the chunk).
    pub fn flux_row(&self, r: usize) -> &[f64] {
        &self.flux[r * self.pixels..(r + 1) * self.pixels]
    }

    /// The params of row `r`.
    pub fn params_row(&self, r: usize) -> &[f64] {
        &self.params[r * self.ncols..(r + 1) * self.ncols]
    }

    /// Number of rows marked to skip.
    pub fn skipped(&self) -> usize {
        self.skip.iter().filter(|&&s| s).count()
    }

    /// Sizes the buffers for `rows` rows (keeping capacity) and sets the header.
    pub(crate) fn reset(
        &mut self,
        shard: u64,
        rows: Range<usize>,
        pixels: usize,
        ncols: usize,
        error: bool,
        noisy: bool,
    ) {
        let n = rows.end - rows.start;
        self.shard = shard;
        self.start = rows.start;
        self.rows = n;
        self.pixels = pixels;
        self.ncols = ncols;
        self.flux.resize(n * pixels, 0.0);
        self.error.resize(if error { n * pixels } else { 0 }, 0.0);
        self.noisy.resize(if noisy { n * pixels } else { 0 }, 0.0);
        self.params.resize(n * ncols, 0.0);
        self.snr.clear();
        self.skip.clear();
        self.skip.resize(n, false);
    }

    /// Bytes of spectra held (flux, error, stored noisy), for throughput figures.
    pub fn spectra_bytes(&self) -> usize {
        (self.flux.len() + self.error.len() + self.noisy.len()) * std::mem::size_of::<f64>()
    }
}

/// Something that can fill chunks with rows of spectra.
pub trait ChunkSource: Send {
    /// Rows the source holds: every `read_chunk` range must end at or before it.
    fn rows(&self) -> usize;
    /// Pixels per row.
    fn pixels(&self) -> usize;
    /// The shard index recorded in chunks (and used by the noise streams).
    fn shard_index(&self) -> u64;
    /// Fills `chunk` with rows `rows` (`rows.end ≤ self.rows()`).
    fn read_chunk(&mut self, rows: Range<usize>, chunk: &mut Chunk) -> Result<()>;
    /// What errors about these rows name as the file.
    fn origin(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("<memory source {}>", self.shard_index()))
    }
}

impl<S: ChunkSource + ?Sized> ChunkSource for Box<S> {
    fn rows(&self) -> usize {
        (**self).rows()
    }
    fn pixels(&self) -> usize {
        (**self).pixels()
    }
    fn shard_index(&self) -> u64 {
        (**self).shard_index()
    }
    fn read_chunk(&mut self, rows: Range<usize>, chunk: &mut Chunk) -> Result<()> {
        (**self).read_chunk(rows, chunk)
    }
    fn origin(&self) -> std::path::PathBuf {
        (**self).origin()
    }
}
