//! The pass as the tree experts' consumer (DESIGN §11): before the first
//! row, code boundaries from a deterministic sample of the sources; during
//! the pass, each row of a bin of one partition offered to that bin's
//! bounded [`ExpertDataset`]. No second pass over the shards.
//!
//! The boundary sample is the first [`BLOCK`] rows at evenly spaced
//! positions of every source, noised as the pass noises them: the same
//! rows for any thread count or chunking, spread over the shards (the
//! first rows alone could be one corner of the parameter space), and read
//! in a few contiguous blocks (a chunked shard is read by whole chunks).

use std::sync::Arc;

use super::binning::{PixelBins, MAX_CODES};
use super::dataset::{CodedRows, ExpertDataset};
use crate::rows::RowSpec;
use crate::source::{Chunk, ChunkSource};
use crate::{Error, Result};

/// Rows per contiguous block of the boundary sample.
pub const BLOCK: usize = 64;

/// What the pass keeps for tree experts (`AccumulateOptions::experts`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertFeed {
    /// Position of the partition whose bins get a dataset each.
    pub partition: usize,
    /// Rows kept per bin at most; None: as many as the memory budget
    /// leaves (the planner's choice, `MemoryPlan::expert_rows_per_bin`).
    pub rows_per_bin: Option<usize>,
    /// Rows of the boundary sample (spread over the sources).
    pub boundary_rows: usize,
}

impl ExpertFeed {
    /// Bytes besides the datasets: the boundary sample in f64 (read
    /// before the pass) and the boundaries themselves (≤ 254 per pixel).
    pub fn fixed_bytes(&self, pixels: usize) -> u64 {
        let sample = (self.boundary_rows as u64).saturating_mul(pixels as u64 * 8);
        sample.saturating_add(((MAX_CODES - 1) * pixels * 8) as u64)
    }
}

/// The datasets of every bin while the pass runs, and after it.
#[derive(Debug, Clone)]
pub struct ExpertRows {
    /// Position of their partition.
    pub partition: usize,
    /// The boundaries every row is coded with.
    pub bins: Arc<PixelBins>,
    /// One per bin of the partition (the unbinned slot gets none).
    pub datasets: Vec<ExpertDataset>,
}

impl ExpertRows {
    /// Empty datasets of `cap` rows for `bins_count` bins.
    pub fn new(
        partition: usize,
        bins: Arc<PixelBins>,
        bins_count: usize,
        cap: usize,
        seed: u64,
    ) -> Self {
        ExpertRows {
            partition,
            datasets: (0..bins_count)
                .map(|_| ExpertDataset::new(Arc::clone(&bins), cap, seed))
                .collect(),
            bins,
        }
    }

    /// The kept rows of a chunk: `picks` are (slot of the partition, row
    /// within `chunk`) in row order. Which rows are kept is decided row by
    /// row (as [`ExpertDataset::offer`] would); the kept rows are then coded in
    /// parallel on the current rayon pool — coding is a binary search per
    /// pixel over boundaries that do not fit the cache. Measured (100k
    /// rows × 4096, 9 bins, 2 threads): the experiment's pass took 46.1 s
    /// without experts, 81.4 s coding row by row on the pass's thread,
    /// 57.9 s coding each chunk's kept rows in parallel. The same codes as
    /// row by row, for any thread count (tested).
    pub fn offer_chunk(&mut self, chunk: &Chunk, picks: &[(usize, usize)]) -> Result<()> {
        use rayon::prelude::*;
        let p = self.bins.pixels();
        let (shard, start) = (chunk.shard, chunk.start as u64);
        let mut claimed: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.datasets.len()];
        for &(bin, r) in picks {
            if let Some(d) = self.datasets.get_mut(bin) {
                let x = chunk.flux_row(r);
                if let Some(slot) = d.claim(shard, start + r as u64, x, chunk.log_g(r))? {
                    claimed[bin].push((slot, r));
                }
            }
        }
        let mut jobs: Vec<(&mut [u8], usize)> = Vec::new();
        for (d, mut list) in self.datasets.iter_mut().zip(claimed) {
            if list.is_empty() {
                continue;
            }
            // A slot claimed twice in the chunk holds its last row.
            list.reverse();
            let mut seen = std::collections::HashSet::new();
            list.retain(|&(slot, _)| seen.insert(slot));
            list.sort_unstable();
            let mut rest = d.codes_mut();
            let mut at = 0;
            for (slot, r) in list {
                let (_, tail) = rest.split_at_mut((slot - at) * p);
                let (row, tail) = tail.split_at_mut(p);
                jobs.push((row, r));
                rest = tail;
                at = slot + 1;
            }
        }
        let bins = &self.bins;
        jobs.into_par_iter()
            .for_each(|(out, r)| bins.encode_finite(chunk.flux_row(r), out));
        Ok(())
    }

    /// Rows kept, over all bins.
    pub fn rows(&self) -> usize {
        self.datasets.iter().map(ExpertDataset::len).sum()
    }

    /// Each bin's kept rows in key order.
    pub fn into_rows(self) -> Vec<CodedRows> {
        self.datasets
            .into_iter()
            .map(ExpertDataset::into_rows)
            .collect()
    }
}

/// Row positions of the boundary sample in a source of `rows` rows when it
/// is to give `want` rows: blocks of [`BLOCK`] at evenly spaced starts.
fn sample_ranges(rows: usize, want: usize) -> Vec<std::ops::Range<usize>> {
    let want = want.min(rows);
    if want == 0 {
        return Vec::new();
    }
    let blocks = want.div_ceil(BLOCK);
    let mut out: Vec<std::ops::Range<usize>> = Vec::with_capacity(blocks);
    for b in 0..blocks {
        let len = BLOCK.min(want - b * BLOCK);
        // Evenly spaced starts over [0, rows − len].
        let start =
            ((rows - len) as u128 * b as u128 / blocks.max(2).saturating_sub(1) as u128) as usize;
        let start = match out.last() {
            Some(prev) => start.max(prev.end),
            None => start,
        };
        let end = (start + len).min(rows);
        if start < end {
            out.push(start..end);
        }
    }
    out
}

/// The code boundaries: `rows` rows spread over `sources` (a share of each
/// in proportion to its rows), prepared by `spec` (the pass's noise), rows
/// the readers flag as unusable left out.
pub fn boundaries<S: ChunkSource>(
    sources: &mut [S],
    spec: &RowSpec,
    rows: usize,
) -> Result<PixelBins> {
    let total: usize = sources.iter().map(ChunkSource::rows).sum();
    let pixels = sources.first().map_or(0, ChunkSource::pixels);
    let mut sample = Vec::new();
    let mut chunk = Chunk::default();
    let mut given = 0usize;
    let n = sources.len();
    for (i, source) in sources.iter_mut().enumerate() {
        // The last source takes what rounding left, so the shares add up.
        let share = if i + 1 == n {
            rows.saturating_sub(given)
        } else {
            (rows as u128 * source.rows() as u128 / total.max(1) as u128) as usize
        };
        given += share;
        for range in sample_ranges(source.rows(), share) {
            source.read_chunk(range, &mut chunk)?;
            spec.prepare(&mut chunk);
            for r in (0..chunk.rows).filter(|&r| !chunk.skip[r]) {
                sample.extend_from_slice(chunk.flux_row(r));
            }
        }
    }
    if sample.is_empty() {
        return Err(Error::InvalidParameter {
            name: "experts",
            problem: format!(
                "no usable row among the {rows} rows sampled for the tree experts' code boundaries"
            ),
        });
    }
    PixelBins::fit(&sample, pixels, MAX_CODES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_blocks_are_spread_disjoint_and_sized() {
        let r = sample_ranges(10_000, 300);
        assert_eq!(r.iter().map(|r| r.len()).sum::<usize>(), 300);
        assert_eq!(r.first().unwrap().start, 0);
        assert_eq!(r.last().unwrap().end, 10_000);
        for w in r.windows(2) {
            assert!(w[0].end <= w[1].start);
        }
        // More wanted than held: every row, once.
        let all = sample_ranges(100, 1000);
        assert_eq!(all.iter().map(|r| r.len()).sum::<usize>(), 100);
        assert_eq!(all.first().unwrap().start, 0);
        assert!(sample_ranges(0, 10).is_empty());
        assert!(sample_ranges(10, 0).is_empty());
        // One block.
        assert_eq!(sample_ranges(1000, 10), vec![0..10]);
    }
}
