//! Deriving a partition's bins, folds and the global model from the
//! accumulators, by summing: in [`Mode::Cells`] a bin is the sum of the cells
//! that carry its slot; in [`Mode::PerBin`] it is its own accumulator; the
//! global model is the sum over every slot of the first partition (every row
//! is in exactly one slot of each partition).

use super::{Mode, StatsHeader, SuffStats};
use crate::{Error, Result};

/// A set of rows the statistics can describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Every accumulated row, whatever its bins: the global model's rows.
    Global,
    /// Slot `slot` of partition `partition` (slot = bins for unbinned rows).
    Bin {
        /// Partition position in the header's set.
        partition: usize,
        /// Bin id, or the partition's bin count for unbinned rows.
        slot: usize,
    },
}

/// The accumulators whose sum is `group` restricted to `fold` (None: all folds).
pub fn members(header: &StatsHeader, group: Group, fold: Option<usize>) -> Result<Vec<usize>> {
    let set = &header.partitions;
    if let Some(f) = fold {
        if f >= set.folds {
            return Err(Error::InvalidParameter {
                name: "fold",
                problem: format!("fold {f} of {}", set.folds),
            });
        }
    }
    if let Group::Bin { partition, slot } = group {
        let ok = set
            .partitions
            .get(partition)
            .is_some_and(|p| slot < p.slots());
        if !ok {
            return Err(Error::InvalidParameter {
                name: "bin",
                problem: format!("no slot {slot} in partition {partition}"),
            });
        }
    }
    let fold_ok = |f: usize| fold.is_none_or(|want| want == f);
    Ok(match header.mode {
        Mode::Cells => (0..set.cells())
            .filter(|&c| {
                let (slots, f) = set.cell_parts(c);
                fold_ok(f)
                    && match group {
                        Group::Global => true,
                        Group::Bin { partition, slot } => slots[partition] == slot,
                    }
            })
            .collect(),
        Mode::PerBin => {
            let (partition, slots): (usize, Vec<usize>) = match group {
                Group::Global => (0, (0..set.partitions[0].slots()).collect()),
                Group::Bin { partition, slot } => (partition, vec![slot]),
            };
            slots
                .into_iter()
                .flat_map(|s| (0..set.folds).filter(|&f| fold_ok(f)).map(move |f| (s, f)))
                .map(|(s, f)| set.per_bin_index(partition, s, f))
                .collect()
        }
    })
}

/// Sums the accumulators `members`, reading each with `read`, in the given order.
pub fn sum(
    p: usize,
    members: &[usize],
    mut read: impl FnMut(usize) -> Result<SuffStats>,
) -> Result<SuffStats> {
    let mut total = SuffStats::zeros(p);
    for &a in members {
        total.add(&read(a)?)?;
    }
    Ok(total)
}
