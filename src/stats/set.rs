//! What a pass produces besides the sums: its configuration and provenance
//! ([`StatsHeader`]), the gate's reservoir sample ([`Reservoir`]), and the
//! resumable state of an unfinished pass ([`Cursor`]).

use serde::{Deserialize, Serialize};

use super::gram::Precision;
use crate::noise::NoiseModel;
use crate::partition::PartitionSet;
use crate::{Error, Layout, Result};

/// Version of the statistics file format written by this crate.
pub const FORMAT_VERSION: u32 = 1;

/// How the accumulators are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One accumulator per cell of the common refinement of all partitions
    /// and folds ([`PartitionSet::cell`]): one Gram update per row.
    Cells,
    /// One accumulator per (partition, slot, fold)
    /// ([`PartitionSet::per_bin_index`]): one Gram update per row and partition.
    PerBin,
}

impl Mode {
    /// Number of accumulators this mode needs for `set`.
    pub fn accumulators(self, set: &PartitionSet) -> usize {
        match self {
            Mode::Cells => set.cells(),
            Mode::PerBin => set.per_bin_accumulators(),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Cells => "common refinement (one accumulator per cell)",
            Mode::PerBin => "one accumulator per bin",
        })
    }
}

/// Identity of a shard as it was read: enough to refuse a changed file on
/// resume, and a shard present twice on merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFingerprint {
    /// Path as given (canonicalised when possible).
    pub path: String,
    /// Rows (spectra) in the shard when it was read.
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 if unknown).
    pub mtime_ns: i64,
    /// Shard index (the noise and fold streams' shard number).
    pub index: u64,
}

impl ShardFingerprint {
    /// Fingerprints `path` as shard `index` of `rows` rows.
    pub fn of(path: &std::path::Path, index: u64, rows: u64) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(ShardFingerprint {
            path: canonical.display().to_string(),
            rows,
            bytes: meta.len(),
            mtime_ns,
            index,
        })
    }
}

/// Configuration and provenance of a statistics set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsHeader {
    /// Pixels per row (P).
    pub pixels: usize,
    /// Noise level and seed (the seed also drives folds and the reservoir).
    pub noise: NoiseModel,
    /// Partitions and folds.
    pub partitions: PartitionSet,
    /// How the accumulators are keyed: per refinement cell or per (partition, slot, fold).
    pub mode: Mode,
    /// The layout the shards were read with.
    pub layout: Layout,
    /// The shards, in the order read.
    pub shards: Vec<ShardFingerprint>,
    /// x₀: the shift all sums are taken around (length P).
    pub shift_x: Vec<f64>,
    /// y₀: the shift all log g sums are taken around (mean log g of the rows x₀ came from).
    pub shift_y: f64,
    /// Rows summed into the accumulators, skipped rows not counted (merges add their inputs').
    pub rows: u64,
    /// Rows skipped (non-finite values under the skip policy).
    pub skipped: u64,
    /// How block products were formed ([`Precision`]): recorded only when
    /// not f64, so f64 files are what they were before the option existed.
    #[serde(default, skip_serializing_if = "Precision::is_f64")]
    pub precision: Precision,
}

impl StatsHeader {
    /// Number of accumulators.
    pub fn accumulators(&self) -> usize {
        self.mode.accumulators(&self.partitions)
    }
}

/// A bounded, deterministic sample of training rows for the gate.
///
/// Priority sampling: each row gets a key from (seed, shard, row) alone and
/// the sample is the `capacity` rows with the smallest keys. The sample thus
/// does not depend on chunking, threads, resume points or the order shards
/// are read in, and two samples of disjoint shards merge exactly (keep the
/// smallest keys of the union).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reservoir {
    /// Maximum rows kept.
    pub capacity: usize,
    /// Pixels per row.
    pub pixels: usize,
    /// Each kept row's priority key ([`Reservoir::key`]), ascending; the other fields share this order.
    pub keys: Vec<u64>,
    /// (shard index, row) of each kept row.
    pub origin: Vec<(u64, u64)>,
    /// Noisy flux, row-major `len × pixels`.
    pub x: Vec<f64>,
    /// Per row: T_eff, [M/H], log g, SNR.
    pub params: Vec<[f64; 4]>,
}

impl Reservoir {
    /// The key of a row.
    pub fn key(seed: u64, shard: u64, row: u64) -> u64 {
        crate::noise::row_key(seed ^ 0x7265_7365_7276_6f69, shard, row)
    }

    /// Number of rows kept: at most `capacity`, fewer when the pass saw fewer rows.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bytes a full reservoir holds (`capacity` × (P + 7) × 8), saturating
    /// at [`Reservoir::MAX_PLAN_BYTES`]: a capacity whose sample cannot even
    /// be counted (`--gate-sample 18446744073709551615`) then exceeds every
    /// memory budget, and the planner refuses it with the arithmetic, instead
    /// of the count overflowing.
    pub(crate) fn max_bytes(capacity: usize, pixels: usize) -> u64 {
        pixels
            .checked_add(7)
            .and_then(|w| capacity.checked_mul(w))
            .and_then(|v| u64::try_from(v).ok())
            .and_then(|v| v.checked_mul(8))
            .map_or(Self::MAX_PLAN_BYTES, |b| b.min(Self::MAX_PLAN_BYTES))
    }

    /// The ceiling of [`Reservoir::max_bytes`]: 1 EiB, more than any memory
    /// budget, and small enough that the planner's sum of a few such terms
    /// cannot overflow a `u64`.
    pub(crate) const MAX_PLAN_BYTES: u64 = 1 << 60;
}

/// Puts row `from[i]` of `x` (rows of `width` values) at position `i`, in
/// place: `from` is a permutation of `0..from.len()` and `x` holds that
/// many rows. Follows each cycle with one spare row, so a sample's rows are
/// put in key order without a second copy of the sample.
pub(crate) fn permute_rows<T: Copy + Default>(x: &mut [T], width: usize, from: &[usize]) {
    let n = from.len();
    debug_assert_eq!(x.len(), n * width);
    let mut placed = vec![false; n];
    let mut spare = vec![T::default(); width];
    for start in 0..n {
        if placed[start] {
            continue;
        }
        if from[start] == start {
            placed[start] = true;
            continue;
        }
        spare.copy_from_slice(&x[start * width..(start + 1) * width]);
        let mut i = start;
        loop {
            placed[i] = true;
            let src = from[i];
            if src == start {
                x[i * width..(i + 1) * width].copy_from_slice(&spare);
                break;
            }
            x.copy_within(src * width..(src + 1) * width, i * width);
            i = src;
        }
    }
}

/// Where an unfinished pass stopped, and the accumulators' staged rows, so
/// that resuming gives the same bits as never stopping.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cursor {
    /// Position of the next shard to read in the shard list.
    pub source: usize,
    /// Next row of that shard.
    pub row: usize,
    /// Per accumulator: staged rows (row-major `s × P`, shifted) and their y.
    pub staged: Vec<(Vec<f64>, Vec<f64>)>,
    /// Staging block of the accumulators.
    pub block_rows: usize,
    /// The row ranges of a ranged pass ([`super::ranges`]), whose
    /// checkpoints fall between ranges with nothing staged; 0 for the
    /// ordinary pass. A checkpoint resumes only under the same kind of pass:
    /// the two sum in different orders.
    pub range_rows: usize,
}

#[cfg(test)]
mod tests {
    use super::Reservoir;

    #[test]
    fn reservoir_bytes_saturate_instead_of_overflowing() {
        assert_eq!(Reservoir::max_bytes(20_000, 4096), 20_000 * 4103 * 8);
        assert_eq!(Reservoir::max_bytes(0, 4096), 0);
        for (capacity, pixels) in [(usize::MAX, 4096), (usize::MAX / 8, 1), (1 << 60, 4096)] {
            assert_eq!(
                Reservoir::max_bytes(capacity, pixels),
                Reservoir::MAX_PLAN_BYTES
            );
        }
        // Five such terms still add up without overflow.
        assert!(Reservoir::MAX_PLAN_BYTES.checked_mul(8).is_some());
    }
}
