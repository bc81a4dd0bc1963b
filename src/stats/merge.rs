//! Merging statistics of disjoint shard sets.
//!
//! Runs over disjoint shards with the same configuration (pixels, noise
//! level and seed, partitions and folds, mode, layout, reservoir capacity)
//! add up: the sums are re-expressed around the **first** input's shift
//! (`SuffStats::reshift`, exact algebra) and added in input order, one
//! accumulator index at a time, so memory stays at about two accumulators
//! plus the reservoirs and the result depends only on the order of the
//! inputs. The reservoirs merge exactly: keys depend on (seed, shard, row)
//! only, so the smallest `capacity` keys of the union are the sample a
//! single run would have kept.
//!
//! Two inputs may not share a shard, by path or by shard index (the noise
//! and fold streams are keyed on the index: two runs that both used index k
//! drew correlated noise and folds).

use std::path::{Path, PathBuf};

use super::file::{write_stats, StatsFile};
use super::{Precision, Reservoir, StatsHeader, Sums};
use crate::{Error, Result};

/// What [`merge`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeSummary {
    /// Input files merged.
    pub inputs: usize,
    /// Shards in the merged statistics.
    pub shards: usize,
    /// Rows accumulated in all.
    pub rows: u64,
    /// Rows skipped in all.
    pub skipped: u64,
    /// Accumulators written.
    pub accumulators: usize,
    /// Rows in the merged reservoir.
    pub reservoir: usize,
}

/// Merges the statistics files `inputs` (complete statistics of disjoint
/// shard sets, same configuration) into `out`, written atomically with
/// [`write_stats`]. `progress` is called with the number of accumulators
/// done after each one.
///
/// Refuses, with an [`Error::Incompatible`] naming both files: a different
/// configuration, a checkpoint, a shard in two inputs (same path or same
/// shard index), different reservoir capacities.
pub fn merge(inputs: &[PathBuf], out: &Path, progress: &dyn Fn(usize)) -> Result<MergeSummary> {
    let first_path = inputs.first().ok_or_else(|| Error::InvalidParameter {
        name: "inputs",
        problem: "merge needs at least one statistics file".into(),
    })?;
    crate::output::refuse_input_overwrite(out, inputs)?;
    let files = inputs
        .iter()
        .map(|p| StatsFile::open(p))
        .collect::<Result<Vec<_>>>()?;
    let first = &files[0];
    // A merge names both files, whatever the reason they do not combine.
    for f in &files {
        f.require_complete()
            .map_err(|e| incompatible(first_path, f.path(), e.to_string()))?;
    }
    let reservoirs = files
        .iter()
        .map(StatsFile::reservoir)
        .collect::<Result<Vec<_>>>()?;
    for (f, r) in files.iter().zip(&reservoirs).skip(1) {
        compatible(first.header(), f.header())
            .map_err(|reason| incompatible(first_path, f.path(), reason))?;
        if r.capacity != reservoirs[0].capacity {
            return Err(incompatible(
                first_path,
                f.path(),
                format!(
                    "reservoir capacity {} vs {}",
                    reservoirs[0].capacity, r.capacity
                ),
            ));
        }
    }
    disjoint(&files)?;

    let mut header = first.header().clone();
    for f in &files[1..] {
        let h = f.header();
        header.shards.extend(h.shards.iter().cloned());
        header.rows = header
            .rows
            .checked_add(h.rows)
            .ok_or_else(|| overflow("rows"))?;
        header.skipped = header
            .skipped
            .checked_add(h.skipped)
            .ok_or_else(|| overflow("skipped rows"))?;
        // Sums of mixed-precision parts are mixed-precision sums: say so.
        if h.precision == Precision::Mixed {
            header.precision = Precision::Mixed;
        }
    }
    // Per input: (dx, dy) = old shift − first shift.
    let shifts: Vec<(Vec<f64>, f64)> = files
        .iter()
        .map(|f| {
            let h = f.header();
            let dx = h
                .shift_x
                .iter()
                .zip(&header.shift_x)
                .map(|(o, n)| o - n)
                .collect();
            (dx, h.shift_y - header.shift_y)
        })
        .collect();
    let reservoir = merge_reservoirs(&reservoirs);
    let count = header.accumulators();
    let mut sums = (0..count).map(|a| -> Result<Sums> {
        let mut s = first.accumulator(a)?;
        for (f, (dx, dy)) in files.iter().zip(&shifts).skip(1) {
            let mut t = f.accumulator(a)?;
            t.reshift(dx, *dy);
            s.add(&t)?;
        }
        progress(a + 1);
        Ok(Sums::Packed(s))
    });
    write_stats(out, &header, &mut sums, &reservoir, None)?;
    Ok(MergeSummary {
        inputs: files.len(),
        shards: header.shards.len(),
        rows: header.rows,
        skipped: header.skipped,
        accumulators: count,
        reservoir: reservoir.len(),
    })
}

fn incompatible(first: &Path, second: &Path, reason: String) -> Error {
    Error::Incompatible {
        first: first.to_path_buf(),
        second: second.to_path_buf(),
        reason,
    }
}

fn overflow(what: &str) -> Error {
    Error::InvalidParameter {
        name: "inputs",
        problem: format!("the merged count of {what} overflows"),
    }
}

/// Why two headers cannot be merged, if they cannot.
fn compatible(a: &StatsHeader, b: &StatsHeader) -> std::result::Result<(), String> {
    if a.pixels != b.pixels {
        return Err(format!("{} vs {} pixels", a.pixels, b.pixels));
    }
    if a.noise.level.to_bits() != b.noise.level.to_bits() {
        return Err(format!(
            "noise level {} vs {}",
            a.noise.level, b.noise.level
        ));
    }
    if a.noise.seed != b.noise.seed {
        return Err(format!("seed {} vs {}", a.noise.seed, b.noise.seed));
    }
    if a.partitions.folds != b.partitions.folds {
        return Err(format!(
            "{} vs {} folds",
            a.partitions.folds, b.partitions.folds
        ));
    }
    if a.partitions != b.partitions {
        let names = |h: &StatsHeader| {
            h.partitions
                .partitions
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(format!(
            "different partitions or edges ({} vs {})",
            names(a),
            names(b)
        ));
    }
    if a.mode != b.mode {
        return Err(format!("accumulators keyed by {} vs {}", a.mode, b.mode));
    }
    if a.layout != b.layout {
        return Err("different shard layouts (dataset paths or column names)".into());
    }
    Ok(())
}

/// Refuses a shard claimed by two inputs: same shard index, same recorded
/// path, or paths that resolve to the same file now. (One file never lists
/// an index twice: [`StatsFile::open`] refuses that.)
fn disjoint(files: &[StatsFile]) -> Result<()> {
    use std::collections::HashMap;
    // First claim of each index and path: (input, recorded path).
    let mut by_index: HashMap<u64, (usize, &str)> = HashMap::new();
    let mut by_path: HashMap<String, (usize, &str)> = HashMap::new();
    for (j, f) in files.iter().enumerate() {
        let mut claims = Vec::new();
        for s in &f.header().shards {
            if let Some(&(i, other)) = by_index.get(&s.index) {
                return Err(incompatible(
                    files[i].path(),
                    f.path(),
                    format!(
                        "both claim shard index {} ({other} and {}); the noise and fold streams are keyed on the index, so runs to merge must use disjoint indices",
                        s.index, s.path
                    ),
                ));
            }
            let mut names = vec![s.path.clone()];
            if let Ok(c) = std::fs::canonicalize(&s.path) {
                names.push(c.display().to_string());
            }
            for name in names {
                if let Some(&(i, other)) = by_path.get(&name) {
                    return Err(incompatible(
                        files[i].path(),
                        f.path(),
                        format!("shard {other} is in both (as {})", s.path),
                    ));
                }
                claims.push((name, s));
            }
        }
        for (name, s) in claims {
            by_index.insert(s.index, (j, &s.path));
            by_path.insert(name, (j, &s.path));
        }
    }
    Ok(())
}

/// The union of the samples, cut to the `capacity` smallest keys (ties, which
/// distinct rows almost never produce, broken by origin).
pub(crate) fn merge_reservoirs(inputs: &[Reservoir]) -> Reservoir {
    let capacity = inputs.first().map_or(0, |r| r.capacity);
    let pixels = inputs.iter().map(|r| r.pixels).max().unwrap_or(0);
    let mut all: Vec<(u64, (u64, u64), usize, usize)> = inputs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| (0..r.len()).map(move |k| (r.keys[k], r.origin[k], i, k)))
        .collect();
    all.sort_unstable_by_key(|&(key, origin, i, k)| (key, origin, i, k));
    all.truncate(capacity);
    let mut out = Reservoir {
        capacity,
        pixels: if all.is_empty() {
            inputs.first().map_or(0, |r| r.pixels)
        } else {
            pixels
        },
        ..Reservoir::default()
    };
    for (key, origin, i, k) in all {
        let r = &inputs[i];
        out.keys.push(key);
        out.origin.push(origin);
        out.x
            .extend_from_slice(&r.x[k * r.pixels..(k + 1) * r.pixels]);
        out.params.push(r.params[k]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(capacity: usize, keys: &[u64], tag: f64) -> Reservoir {
        Reservoir {
            capacity,
            pixels: 2,
            keys: keys.to_vec(),
            origin: keys.iter().map(|&k| (k % 7, k)).collect(),
            x: keys.iter().flat_map(|&k| [k as f64, tag]).collect(),
            params: keys.iter().map(|&k| [k as f64, tag, 0.0, 1.0]).collect(),
        }
    }

    #[test]
    fn reservoir_merge_keeps_the_smallest_keys_with_their_rows() {
        let a = res(4, &[1, 5, 9, 12], 1.0);
        let b = res(4, &[2, 3, 10], 2.0);
        let m = merge_reservoirs(&[a, b]);
        assert_eq!(m.keys, vec![1, 2, 3, 5]);
        assert_eq!(m.x, vec![1.0, 1.0, 2.0, 2.0, 3.0, 2.0, 5.0, 1.0]);
        assert_eq!(m.params[1], [2.0, 2.0, 0.0, 1.0]);
        assert_eq!(m.origin[3], (5, 5));
        assert_eq!(m.capacity, 4);
        let empty = merge_reservoirs(&[res(3, &[], 0.0), res(3, &[], 0.0)]);
        assert!(empty.is_empty() && empty.pixels == 2);
    }
}
