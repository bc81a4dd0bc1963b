//! Partitions of the rows into bins, folds, and the common refinement.
//!
//! A [`Partition`] maps a row (T_eff, [M/H], SNR) to a bin or to *unbinned*.
//! The defaults (DESIGN §1):
//!
//! * `teff_mh`: a 3 × 3 grid, T_eff edges [3750, 4500, 5250, 6000], [M/H]
//!   edges [−2, −1, 0, 0.5], bin id = 3·t + m; intervals [lo, hi) except the
//!   last, which is closed; rows outside are unbinned.
//! * `snr`: X (≤ 2), L (2, 4], M (4, 7], H (> 7) — every finite SNR is binned.
//!
//! Folds are assigned from (seed, shard, row) alone, like the noise, so a row
//! lands in the same fold whatever the chunking, threads or resume point.
//!
//! The **common refinement** of all partitions and folds is the set of cells
//! (bin-or-unbinned of each partition, fold). Accumulating per cell costs one
//! Gram update per row however many partitions there are; each partition's
//! bins and the global model are sums of cells.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The rule that maps a value to an interval of sorted edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Axis {
    /// Bins [e0, e1), [e1, e2), …, [e_{n−1}, e_n]; values outside are unbinned.
    Closed {
        /// Sorted edges (at least two).
        edges: Vec<f64>,
    },
    /// Bins (−∞, e0], (e0, e1], …, (e_{n−1}, ∞): every finite value is binned.
    RightClosedOpenEnds {
        /// Sorted inner edges (at least one).
        edges: Vec<f64>,
    },
}

impl Axis {
    /// Number of bins.
    pub fn bins(&self) -> usize {
        match self {
            Axis::Closed { edges } => edges.len().saturating_sub(1),
            Axis::RightClosedOpenEnds { edges } => edges.len() + 1,
        }
    }

    /// The bin of `v`, if any. NaN is never binned.
    pub fn bin(&self, v: f64) -> Option<usize> {
        if v.is_nan() {
            return None;
        }
        match self {
            Axis::Closed { edges } => {
                let (lo, hi) = (*edges.first()?, *edges.last()?);
                if v < lo || v > hi {
                    return None;
                }
                // Number of inner edges ≤ v gives the bin; the last is closed.
                let k = edges[1..edges.len() - 1].partition_point(|&e| e <= v);
                Some(k)
            }
            Axis::RightClosedOpenEnds { edges } => Some(edges.partition_point(|&e| e < v)),
        }
    }

    fn check(&self, name: &str) -> Result<()> {
        let (edges, min) = match self {
            Axis::Closed { edges } => (edges, 2),
            Axis::RightClosedOpenEnds { edges } => (edges, 1),
        };
        if edges.len() < min
            || edges.iter().any(|e| !e.is_finite())
            || edges.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(Error::InvalidParameter {
                name: "partition",
                problem: format!(
                    "{name}: edges must be finite, strictly increasing, at least {min}: {edges:?}"
                ),
            });
        }
        Ok(())
    }
}

/// What a partition bins on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartitionKind {
    /// A grid of T_eff × [M/H]; bin id = t · (number of [M/H] bins) + m.
    TeffMh {
        /// T_eff axis.
        teff: Axis,
        /// [M/H] axis.
        mh: Axis,
    },
    /// SNR = ‖flux‖₂ / (L · ‖error‖₂) of the noiseless flux.
    Snr {
        /// SNR axis.
        snr: Axis,
    },
}

/// A named partition with bin names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// Name, e.g. `teff_mh`.
    pub name: String,
    /// What it bins on.
    pub kind: PartitionKind,
    /// One name per bin.
    pub bin_names: Vec<String>,
}

/// The per-row quantities partitions use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowKeys {
    /// Effective temperature T_eff (K), from the layout's `teff` params column.
    pub teff: f64,
    /// Metallicity [M/H] (dex), from the layout's `mh` params column.
    pub mh: f64,
    /// SNR of the noiseless flux.
    pub snr: f64,
}

impl Partition {
    /// The default T_eff × [M/H] grid.
    pub fn teff_mh() -> Self {
        let names = ["Cool", "Mid", "Hot"]
            .iter()
            .flat_map(|t| {
                ["Poor", "Solar", "Rich"]
                    .iter()
                    .map(move |m| format!("{t} {m}"))
            })
            .collect();
        Partition {
            name: "teff_mh".into(),
            kind: PartitionKind::TeffMh {
                teff: Axis::Closed {
                    edges: vec![3750.0, 4500.0, 5250.0, 6000.0],
                },
                mh: Axis::Closed {
                    edges: vec![-2.0, -1.0, 0.0, 0.5],
                },
            },
            bin_names: names,
        }
    }

    /// The default SNR bins X, L, M, H.
    pub fn snr() -> Self {
        Partition {
            name: "snr".into(),
            kind: PartitionKind::Snr {
                snr: Axis::RightClosedOpenEnds {
                    edges: vec![2.0, 4.0, 7.0],
                },
            },
            bin_names: ["X", "L", "M", "H"].iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Looks up a default partition by name (`teff_mh`/`teff-mh`, `snr`).
    pub fn by_name(name: &str) -> Result<Self> {
        match name {
            "teff_mh" | "teff-mh" => Ok(Self::teff_mh()),
            "snr" => Ok(Self::snr()),
            other => Err(Error::InvalidParameter {
                name: "partition",
                problem: format!("unknown partition {other:?}; known: teff_mh, snr"),
            }),
        }
    }

    /// Number of bins (not counting unbinned).
    pub fn bins(&self) -> usize {
        match &self.kind {
            PartitionKind::TeffMh { teff, mh } => teff.bins() * mh.bins(),
            PartitionKind::Snr { snr } => snr.bins(),
        }
    }

    /// The bin of a row, or None when it is outside every bin.
    pub fn bin(&self, keys: &RowKeys) -> Option<usize> {
        match &self.kind {
            PartitionKind::TeffMh { teff, mh } => {
                Some(teff.bin(keys.teff)? * mh.bins() + mh.bin(keys.mh)?)
            }
            PartitionKind::Snr { snr } => snr.bin(keys.snr),
        }
    }

    /// Whether every row with finite keys falls in a bin (no unbinned slot
    /// is needed): true for open-ended axes such as the SNR bins.
    pub(crate) fn covers_all(&self) -> bool {
        matches!(
            &self.kind,
            PartitionKind::Snr {
                snr: Axis::RightClosedOpenEnds { .. }
            }
        )
    }

    /// Slots of this partition in the refinement: its bins, plus one for
    /// unbinned rows unless it covers all.
    pub fn slots(&self) -> usize {
        self.bins() + usize::from(!self.covers_all())
    }

    /// Validates edges and names.
    pub fn check(&self) -> Result<()> {
        match &self.kind {
            PartitionKind::TeffMh { teff, mh } => {
                teff.check(&format!("{} T_eff", self.name))?;
                mh.check(&format!("{} [M/H]", self.name))?;
            }
            PartitionKind::Snr { snr } => snr.check(&format!("{} SNR", self.name))?,
        }
        if self.bin_names.len() != self.bins() {
            return Err(Error::InvalidParameter {
                name: "partition",
                problem: format!(
                    "{}: {} bin names for {} bins",
                    self.name,
                    self.bin_names.len(),
                    self.bins()
                ),
            });
        }
        Ok(())
    }
}

/// The fold of a row: a hash of (seed, shard, row) modulo `folds`.
pub fn fold_of(seed: u64, shard: u64, row: u64, folds: usize) -> usize {
    if folds <= 1 {
        return 0;
    }
    // A different key from the noise stream's, so folds and noise are independent.
    let key = crate::noise::row_key(seed ^ 0x5f0d_f01d_5eed_0001, shard, row);
    // Multiply-shift: unbiased enough for small K, and exact integer arithmetic.
    ((key as u128 * folds as u128) >> 64) as usize
}

/// All partitions and folds of a run, and the cells of their refinement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionSet {
    /// The partitions, in order.
    pub partitions: Vec<Partition>,
    /// Number of folds (1 = no cross-validation).
    pub folds: usize,
}

impl PartitionSet {
    /// Validated set; `folds` ≥ 1, at least one partition, unique names.
    pub fn new(partitions: Vec<Partition>, folds: usize) -> Result<Self> {
        if folds == 0 || folds > 64 {
            return Err(Error::InvalidParameter {
                name: "folds",
                problem: format!("must be 1…64, got {folds}"),
            });
        }
        for (i, p) in partitions.iter().enumerate() {
            p.check()?;
            if partitions[..i].iter().any(|q| q.name == p.name) {
                return Err(Error::InvalidParameter {
                    name: "partition",
                    problem: format!("partition {} given twice", p.name),
                });
            }
        }
        Ok(PartitionSet { partitions, folds })
    }

    /// Slots per partition (see [`Partition::slots`]).
    fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.partitions.iter().map(Partition::slots)
    }

    /// Cells of the common refinement (including unbinned slots), times folds.
    pub fn cells(&self) -> usize {
        self.slots().product::<usize>() * self.folds
    }

    /// Accumulators needed without the refinement: one per (partition,
    /// slot, fold). Every partition's slots together hold every row once, so
    /// the global model is the sum over the first partition's slots.
    pub(crate) fn per_bin_accumulators(&self) -> usize {
        self.slots().sum::<usize>() * self.folds
    }

    /// The slot of each partition for a row (bin, or `bins` for unbinned).
    /// Returns the index of a covering partition that cannot place the row
    /// (its key is not finite), if any.
    pub fn slots_of(&self, keys: &RowKeys, out: &mut [usize]) -> std::result::Result<(), usize> {
        for (i, (o, p)) in out.iter_mut().zip(&self.partitions).enumerate() {
            *o = match p.bin(keys) {
                Some(b) => b,
                None if p.covers_all() => return Err(i),
                None => p.bins(),
            };
        }
        Ok(())
    }

    /// The per-bin accumulator index of (partition, slot, fold).
    pub fn per_bin_index(&self, partition: usize, slot: usize, fold: usize) -> usize {
        let before: usize = self.partitions[..partition]
            .iter()
            .map(Partition::slots)
            .sum();
        (before + slot) * self.folds + fold
    }

    /// The cell index of slots and a fold (row-major over partitions, fold last).
    pub fn cell(&self, slots: &[usize], fold: usize) -> usize {
        let mut c = 0;
        for (s, n) in slots.iter().zip(self.slots()) {
            c = c * n + s;
        }
        c * self.folds + fold
    }

    /// The slots and fold of a cell index (inverse of [`Self::cell`]).
    pub fn cell_parts(&self, mut cell: usize) -> (Vec<usize>, usize) {
        let fold = cell % self.folds;
        cell /= self.folds;
        let sizes: Vec<usize> = self.slots().collect();
        let mut slots = vec![0; sizes.len()];
        for i in (0..sizes.len()).rev() {
            slots[i] = cell % sizes[i];
            cell /= sizes[i];
        }
        (slots, fold)
    }
}

impl Default for PartitionSet {
    fn default() -> Self {
        PartitionSet {
            partitions: vec![Partition::teff_mh(), Partition::snr()],
            folds: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(teff: f64, mh: f64, snr: f64) -> RowKeys {
        RowKeys { teff, mh, snr }
    }

    #[test]
    fn teff_mh_edges_follow_the_reports() {
        let p = Partition::teff_mh();
        assert_eq!(p.bin(&keys(3750.0, -2.0, 1.0)), Some(0));
        assert_eq!(p.bin(&keys(4499.9, -1.0, 1.0)), Some(1));
        assert_eq!(p.bin(&keys(4500.0, 0.0, 1.0)), Some(5));
        assert_eq!(
            p.bin(&keys(6000.0, 0.5, 1.0)),
            Some(8),
            "last interval closed"
        );
        assert_eq!(p.bin(&keys(6000.1, 0.0, 1.0)), None);
        assert_eq!(p.bin(&keys(5000.0, -2.5, 1.0)), None);
        assert_eq!(p.bin(&keys(5000.0, 0.75, 1.0)), None);
        assert_eq!(p.bin(&keys(f64::NAN, 0.0, 1.0)), None);
        assert_eq!(p.bin_names[3], "Mid Poor");
    }

    #[test]
    fn snr_bins_are_right_closed() {
        let p = Partition::snr();
        let b = |s| p.bin(&keys(5000.0, 0.0, s));
        assert_eq!(
            [b(0.0), b(2.0), b(2.01), b(4.0), b(7.0), b(7.5)],
            [Some(0), Some(0), Some(1), Some(1), Some(2), Some(3)]
        );
    }

    #[test]
    fn cells_round_trip() {
        let set = PartitionSet::new(vec![Partition::teff_mh(), Partition::snr()], 3).unwrap();
        assert_eq!(set.cells(), 10 * 4 * 3);
        assert_eq!(set.per_bin_accumulators(), 14 * 3);
        assert_eq!(set.per_bin_index(1, 3, 2), (10 + 3) * 3 + 2);
        let mut slots = [0; 2];
        set.slots_of(&keys(7000.0, 0.0, 3.0), &mut slots).unwrap();
        assert_eq!(slots, [9, 1]);
        assert_eq!(
            set.slots_of(&keys(5000.0, 0.0, f64::NAN), &mut slots),
            Err(1)
        );
        for cell in 0..set.cells() {
            let (slots, fold) = set.cell_parts(cell);
            assert_eq!(set.cell(&slots, fold), cell);
        }
    }

    #[test]
    fn folds_are_balanced_and_deterministic() {
        let k = 5;
        let mut counts = vec![0usize; k];
        for row in 0..50_000u64 {
            counts[fold_of(42, 1, row, k)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(fold_of(42, 1, 7, k), fold_of(42, 1, 7, k));
        assert_eq!(fold_of(42, 1, 7, 1), 0);
    }

    #[test]
    fn bad_edges_are_refused() {
        let mut p = Partition::snr();
        p.kind = PartitionKind::Snr {
            snr: Axis::RightClosedOpenEnds {
                edges: vec![4.0, 2.0],
            },
        };
        assert!(p.check().is_err());
        assert!(PartitionSet::new(vec![Partition::snr(), Partition::snr()], 1).is_err());
        assert!(PartitionSet::new(vec![Partition::snr()], 0).is_err());
    }
}
