//! A bin's training rows for a tree expert, bounded: coded rows (one byte
//! per pixel, [`super::binning`]) and their targets, at most `cap` of them.
//!
//! The pass offers every row of the bin; [`ExpertDataset`] keeps the `cap`
//! rows with the smallest keys, a key being a hash of (seed, shard, row)
//! alone (priority sampling, as the gate's [`crate::stats::Reservoir`]).
//! So the rows kept do not depend on chunking, threads, the order shards
//! are read in or resume points, and datasets of disjoint shards merge
//! exactly ([`ExpertDataset::merge`]). [`ExpertDataset::into_rows`] puts the
//! kept rows in key order ([`CodedRows`]): the training set, the same for
//! any arrival order.
//!
//! Memory: `cap × (P + 40)` bytes at most ([`ExpertDataset::max_bytes`],
//! for the planner): P codes, the target (8) and the heap entry (32) per
//! row. Rows are coded only when kept.

use std::collections::BinaryHeap;
use std::sync::Arc;

use super::binning::PixelBins;
use crate::{Error, Result};

/// Bytes per kept row besides its codes: the f64 target and the heap
/// entry (key, origin, slot).
const ROW_OVERHEAD: usize = 8 + std::mem::size_of::<(u64, (u64, u64), usize)>();

/// The bounded training rows of one bin while the pass runs.
#[derive(Debug, Clone)]
pub struct ExpertDataset {
    bins: Arc<PixelBins>,
    cap: usize,
    seed: u64,
    /// Max-heap of (key, (shard, row), slot): the top is evicted next.
    heap: BinaryHeap<(u64, (u64, u64), usize)>,
    /// Row `slot`'s codes at `slot · P`.
    codes: Vec<u8>,
    targets: Vec<f64>,
}

impl ExpertDataset {
    /// An empty dataset of at most `cap` rows, coded with `bins`; `seed` is
    /// the run's seed (the keys' salt makes them independent of the noise,
    /// the folds and the gate's sample).
    pub fn new(bins: Arc<PixelBins>, cap: usize, seed: u64) -> ExpertDataset {
        ExpertDataset {
            bins,
            cap,
            seed,
            heap: BinaryHeap::new(),
            codes: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// The priority key of a row: the dataset keeps the smallest.
    pub fn key(seed: u64, shard: u64, row: u64) -> u64 {
        crate::noise::row_key(seed ^ 0x6578_7065_7274_6473, shard, row)
    }

    /// Offers row `row` of shard `shard` (noisy flux `x`, target `y`): kept
    /// and coded if its key is among the `cap` smallest so far. Returns
    /// whether it is kept for now. Each (shard, row) must be offered once.
    ///
    /// Errors: `x` not of [`PixelBins::pixels`] values ([`Error::Shape`]),
    /// a NaN or infinite value in a row that would be kept
    /// ([`Error::NonFinite`] naming the shard row); the dataset is then
    /// unchanged.
    pub fn offer(&mut self, shard: u64, row: u64, x: &[f64], y: f64) -> Result<bool> {
        let Some(slot) = self.claim(shard, row, x, y)? else {
            return Ok(false);
        };
        let p = self.pixels();
        let bins = Arc::clone(&self.bins);
        bins.encode_finite(x, &mut self.codes[slot * p..(slot + 1) * p]);
        Ok(true)
    }

    /// [`Self::offer`] without the coding: the row's slot when it is kept
    /// (its target and key recorded), for the caller to code `x` into
    /// [`Self::codes_mut`]`[slot·P..]` — in parallel with other rows
    /// ([`super::feed`]). A later claim may take the same slot again (the
    /// row evicted): the last claim's row is the one to code.
    pub(crate) fn claim(
        &mut self,
        shard: u64,
        row: u64,
        x: &[f64],
        y: f64,
    ) -> Result<Option<usize>> {
        let p = self.pixels();
        if x.len() != p {
            return Err(Error::shape(
                "expert dataset row",
                format!("{p} pixels"),
                x.len(),
            ));
        }
        let (key, origin) = (Self::key(self.seed, shard, row), (shard, row));
        let Some(slot) = self.slot_for(key, origin) else {
            return Ok(None);
        };
        let what = || format!("expert dataset row of shard {shard}");
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: what(),
                row,
                column: format!("pixel {i}"),
                value: x[i],
            });
        }
        if !y.is_finite() {
            return Err(Error::NonFinite {
                what: what(),
                row,
                column: "target".into(),
                value: y,
            });
        }
        self.place(slot, key, origin, y)?;
        Ok(Some(slot))
    }

    /// The rows' codes, row `slot` at `slot · P` (see [`Self::claim`]).
    pub(crate) fn codes_mut(&mut self) -> &mut [u8] {
        &mut self.codes
    }

    /// As [`Self::offer`] for a row already coded with the same boundaries
    /// (merging, tests).
    pub fn offer_codes(&mut self, shard: u64, row: u64, codes: &[u8], y: f64) -> Result<bool> {
        let p = self.pixels();
        if codes.len() != p {
            return Err(Error::shape(
                "expert dataset codes",
                format!("{p} codes"),
                codes.len(),
            ));
        }
        if !y.is_finite() {
            return Err(Error::NonFinite {
                what: format!("expert dataset row of shard {shard}"),
                row,
                column: "target".into(),
                value: y,
            });
        }
        let (key, origin) = (Self::key(self.seed, shard, row), (shard, row));
        let Some(slot) = self.slot_for(key, origin) else {
            return Ok(false);
        };
        self.place(slot, key, origin, y)?.copy_from_slice(codes);
        Ok(true)
    }

    /// Adds the rows of `other`, a dataset of other shards with the same
    /// boundaries, cap and seed: the result is the dataset of all of them.
    pub fn merge(&mut self, other: &ExpertDataset) -> Result<()> {
        if other.cap != self.cap || other.seed != self.seed || other.bins != self.bins {
            return Err(Error::InvalidParameter {
                name: "expert dataset",
                problem: format!(
                    "merging a dataset of cap {}, seed {} into one of cap {}, seed {} (and the same boundaries): they must agree",
                    other.cap, other.seed, self.cap, self.seed
                ),
            });
        }
        let p = self.pixels();
        for &(_, (shard, row), slot) in other.heap.iter() {
            let codes = &other.codes[slot * p..(slot + 1) * p];
            self.offer_codes(shard, row, codes, other.targets[slot])?;
        }
        Ok(())
    }

    /// The slot a row with this key would take (a new one, or the evicted
    /// top's), or `None` when it is not kept.
    fn slot_for(&self, key: u64, origin: (u64, u64)) -> Option<usize> {
        if self.heap.len() < self.cap {
            return Some(self.heap.len());
        }
        match self.heap.peek() {
            Some(&(top, top_origin, slot)) if (key, origin) < (top, top_origin) => Some(slot),
            _ => None,
        }
    }

    /// Records the row in `slot` (from [`Self::slot_for`]) and returns its
    /// codes to fill.
    fn place(&mut self, slot: usize, key: u64, origin: (u64, u64), y: f64) -> Result<&mut [u8]> {
        let p = self.pixels();
        if slot == self.heap.len() {
            self.grow()?;
            self.codes.resize((slot + 1) * p, 0);
            self.targets.push(y);
        } else {
            self.heap.pop();
            self.targets[slot] = y;
        }
        self.heap.push((key, origin, slot));
        Ok(&mut self.codes[slot * p..(slot + 1) * p])
    }

    /// Room for one more row: capacity doubles up to `cap` rows, and a
    /// failed allocation is an error, not an abort.
    fn grow(&mut self) -> Result<()> {
        let (n, p) = (self.heap.len(), self.pixels());
        if n < self.targets.capacity()
            && n < self.heap.capacity()
            && (n + 1) * p <= self.codes.capacity()
        {
            return Ok(());
        }
        let more = n.max(64).min(self.cap - n);
        let failed = |e: std::collections::TryReserveError| {
            Error::shape(
                "expert dataset",
                format!("memory for {} rows of {p} codes", n + more),
                format!("an allocation failure ({e})"),
            )
        };
        self.codes.try_reserve_exact(more * p).map_err(failed)?;
        self.targets.try_reserve_exact(more).map_err(failed)?;
        self.heap.try_reserve_exact(more).map_err(failed)
    }

    /// Pixels per row.
    pub fn pixels(&self) -> usize {
        self.bins.pixels()
    }

    /// The most rows kept.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Rows kept now.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no row is kept.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The boundaries the rows are coded with.
    pub fn bins(&self) -> &Arc<PixelBins> {
        &self.bins
    }

    /// Bytes held now (the rows' buffers as allocated; the boundaries,
    /// which may be shared, not included).
    pub fn bytes(&self) -> u64 {
        let heap = self.heap.capacity() * std::mem::size_of::<(u64, (u64, u64), usize)>();
        (self.codes.capacity() + self.targets.capacity() * 8 + heap) as u64
    }

    /// Bytes a full dataset of `cap` rows of `pixels` holds,
    /// `cap × (pixels + 40)`, saturating at
    /// [`crate::stats::Reservoir`]'s plan ceiling (1 EiB) so that a
    /// planner's sum of a few cannot overflow.
    pub fn max_bytes(cap: usize, pixels: usize) -> u64 {
        const CEILING: u64 = 1 << 60;
        pixels
            .checked_add(ROW_OVERHEAD)
            .and_then(|w| cap.checked_mul(w))
            .and_then(|v| u64::try_from(v).ok())
            .map_or(CEILING, |b| b.min(CEILING))
    }

    /// The kept rows in ascending (key, shard, row) order, their codes
    /// permuted in place (one spare row, no second copy).
    pub fn into_rows(self) -> CodedRows {
        let p = self.pixels();
        let mut order = self.heap.into_vec();
        order.sort_unstable();
        let from: Vec<usize> = order.iter().map(|e| e.2).collect();
        let mut codes = self.codes;
        crate::stats::permute_rows(&mut codes, p, &from);
        CodedRows {
            bins: self.bins,
            origin: order.iter().map(|e| e.1).collect(),
            codes,
            targets: from.iter().map(|&s| self.targets[s]).collect(),
        }
    }
}

/// A training set of coded rows: what a tree expert is trained on.
#[derive(Debug, Clone, PartialEq)]
pub struct CodedRows {
    bins: Arc<PixelBins>,
    origin: Vec<(u64, u64)>,
    codes: Vec<u8>,
    targets: Vec<f64>,
}

impl CodedRows {
    /// Rows from their parts: `codes` row-major (`origin.len()` rows of
    /// `bins.pixels()` codes, each below the pixel's number of codes),
    /// finite `targets` (one per row), `origin` the (shard, row) of each.
    ///
    /// Errors: lengths ([`Error::Shape`]), a code past its pixel's last
    /// ([`Error::InvalidParameter`]), a non-finite target ([`Error::NonFinite`]).
    pub fn new(
        bins: Arc<PixelBins>,
        origin: Vec<(u64, u64)>,
        codes: Vec<u8>,
        targets: Vec<f64>,
    ) -> Result<CodedRows> {
        let (n, p) = (origin.len(), bins.pixels());
        if codes.len() != n * p || targets.len() != n {
            return Err(Error::shape(
                "coded rows",
                format!("{} codes and {n} targets ({n} rows of {p} pixels)", n * p),
                format!("{} codes and {} targets", codes.len(), targets.len()),
            ));
        }
        if let Some(i) = codes
            .iter()
            .enumerate()
            .position(|(i, &c)| usize::from(c) > bins.bounds(i % p).len())
        {
            return Err(Error::InvalidParameter {
                name: "codes",
                problem: format!(
                    "row {}, pixel {}: code {} past the pixel's last ({})",
                    i / p,
                    i % p,
                    codes[i],
                    bins.bounds(i % p).len()
                ),
            });
        }
        if let Some(i) = targets.iter().position(|y| !y.is_finite()) {
            return Err(Error::NonFinite {
                what: "coded rows".into(),
                row: i as u64,
                column: "target".into(),
                value: targets[i],
            });
        }
        Ok(CodedRows {
            bins,
            origin,
            codes,
            targets,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Pixels per row.
    pub fn pixels(&self) -> usize {
        self.bins.pixels()
    }

    /// The boundaries the rows were coded with.
    pub fn bins(&self) -> &Arc<PixelBins> {
        &self.bins
    }

    /// (shard, row) of each row.
    pub fn origin(&self) -> &[(u64, u64)] {
        &self.origin
    }

    /// The codes, row-major.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// The targets, one per row.
    pub fn targets(&self) -> &[f64] {
        &self.targets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    const P: usize = 6;

    /// (shard, row, noisy flux, target).
    type Row = (u64, u64, Vec<f64>, f64);

    /// Rows of three shards with targets, and boundaries from them.
    fn rows(n: usize) -> (Arc<PixelBins>, Vec<Row>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(n as u64);
        let rows: Vec<_> = (0..n)
            .map(|i| {
                let x: Vec<f64> = (0..P).map(|_| rng.random::<f64>()).collect();
                ((i % 3) as u64, (i / 3) as u64, x, rng.random::<f64>() * 5.0)
            })
            .collect();
        let sample: Vec<f64> = rows.iter().flat_map(|r| r.2.clone()).collect();
        (Arc::new(PixelBins::fit(&sample, P, 255).unwrap()), rows)
    }

    fn collect(bins: &Arc<PixelBins>, cap: usize, rows: &[&Row]) -> CodedRows {
        let mut d = ExpertDataset::new(bins.clone(), cap, 42);
        for (shard, row, x, y) in rows.iter().map(|r| (r.0, r.1, &r.2, r.3)) {
            d.offer(shard, row, x, y).unwrap();
        }
        assert!(d.len() <= cap);
        assert!(
            d.bytes() <= ExpertDataset::max_bytes(cap, P),
            "{} bytes",
            d.bytes()
        );
        d.into_rows()
    }

    #[test]
    fn keeps_the_cap_smallest_keys_of_seed_shard_row() {
        for (n, cap) in [(10, 0), (10, 25), (500, 37), (2000, 1000), (300, 300)] {
            let (bins, all) = rows(n);
            let got = collect(&bins, cap, &all.iter().collect::<Vec<_>>());
            assert_eq!(got.len(), cap.min(n));
            let mut want: Vec<(u64, (u64, u64))> = all
                .iter()
                .map(|r| (ExpertDataset::key(42, r.0, r.1), (r.0, r.1)))
                .collect();
            want.sort_unstable();
            want.truncate(cap);
            let want_origin: Vec<(u64, u64)> = want.iter().map(|w| w.1).collect();
            assert_eq!(got.origin(), &want_origin[..], "{n} rows, cap {cap}");
            for (i, &(shard, row)) in got.origin().iter().enumerate() {
                let r = all.iter().find(|r| (r.0, r.1) == (shard, row)).unwrap();
                let mut codes = vec![0; P];
                bins.encode(&r.2, &mut codes).unwrap();
                assert_eq!(&got.codes()[i * P..(i + 1) * P], &codes[..]);
                assert_eq!(got.targets()[i], r.3);
            }
        }
    }

    #[test]
    fn any_arrival_order_or_split_gives_the_same_rows() {
        let (bins, all) = rows(1500);
        let mut order: Vec<_> = all.iter().collect();
        let want = collect(&bins, 200, &order);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        for _ in 0..4 {
            order.shuffle(&mut rng);
            assert_eq!(collect(&bins, 200, &order), want);
        }
        // Shards collected apart (as by separate processes) and merged.
        let mut merged = ExpertDataset::new(bins.clone(), 200, 42);
        for shard in [2, 0, 1] {
            let mut d = ExpertDataset::new(bins.clone(), 200, 42);
            for r in all.iter().filter(|r| r.0 == shard) {
                d.offer_codes(r.0, r.1, &code(&bins, &r.2), r.3).unwrap();
            }
            merged.merge(&d).unwrap();
        }
        assert_eq!(merged.into_rows(), want);
        // Another seed keeps other rows.
        let mut other = ExpertDataset::new(bins.clone(), 200, 43);
        for r in &all {
            other.offer(r.0, r.1, &r.2, r.3).unwrap();
        }
        assert_ne!(other.into_rows().origin(), want.origin());
    }

    fn code(bins: &PixelBins, x: &[f64]) -> Vec<u8> {
        let mut c = vec![0; x.len()];
        bins.encode(x, &mut c).unwrap();
        c
    }

    #[test]
    fn bad_rows_are_refused_and_leave_the_dataset_unchanged() {
        let (bins, all) = rows(50);
        let mut d = ExpertDataset::new(bins.clone(), 10, 42);
        for r in &all {
            d.offer(r.0, r.1, &r.2, r.3).unwrap();
        }
        let before = d.clone().into_rows();
        // Find a row that would be kept, and spoil it.
        let mut x = all[0].2.clone();
        x[3] = f64::NAN;
        let kept = (1000..).find(|&row| {
            d.slot_for(ExpertDataset::key(42, 9, row), (9, row))
                .is_some()
        });
        let row = kept.unwrap();
        match d.offer(9, row, &x, 1.0) {
            Err(Error::NonFinite { row: r, column, .. }) => {
                assert_eq!((r, column.as_str()), (row, "pixel 3"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            d.offer(9, row, &all[0].2, f64::INFINITY),
            Err(Error::NonFinite { .. })
        ));
        assert!(matches!(
            d.offer(9, row, &x[..3], 1.0),
            Err(Error::Shape { .. })
        ));
        assert_eq!(d.clone().into_rows(), before);
        let other = ExpertDataset::new(bins, 11, 42);
        assert!(d.merge(&other).is_err());
    }

    #[test]
    fn planner_bytes_saturate() {
        assert_eq!(ExpertDataset::max_bytes(1000, 4096), 1000 * (4096 + 40));
        assert_eq!(ExpertDataset::max_bytes(usize::MAX, 4096), 1 << 60);
    }

    #[test]
    fn coded_rows_from_parts_are_checked() {
        let (bins, _) = rows(300);
        let ok = CodedRows::new(bins.clone(), vec![(0, 0)], vec![254; P], vec![1.0]);
        assert!(ok.is_ok());
        assert!(CodedRows::new(bins.clone(), vec![(0, 0)], vec![0; P - 1], vec![1.0]).is_err());
        let few = Arc::new(PixelBins::fit(&[0.0, 1.0], 1, 255).unwrap());
        assert!(CodedRows::new(few.clone(), vec![(0, 0)], vec![1], vec![1.0]).is_ok());
        assert!(CodedRows::new(few.clone(), vec![(0, 0)], vec![2], vec![1.0]).is_err());
        assert!(CodedRows::new(few, vec![(0, 0)], vec![0], vec![f64::NAN]).is_err());
    }
}
