//! The chunk planner: cuts shards into row ranges.

use std::ops::Range;

use crate::{Error, Result};

/// One unit of reading: rows `rows` of the shard at position `source` in the
/// list of sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkTask {
    /// Position of the source in the list given to the planner.
    pub source: usize,
    /// Rows within that source.
    pub rows: Range<usize>,
}

/// Cuts sources of `rows[i]` rows into chunks of at most `chunk_rows` rows,
/// in order, shard after shard. Every row is covered exactly once; empty
/// sources produce no task. `chunk_rows` must be ≥ 1.
pub fn plan(rows: &[usize], chunk_rows: usize) -> Result<Vec<ChunkTask>> {
    Ok(plan_iter(rows.to_vec(), chunk_rows)?.collect())
}

/// The same plan as [`plan`], produced lazily: memory does not grow with the
/// number of chunks (a damaged file may declare 2^40 rows).
pub fn plan_iter(
    rows: Vec<usize>,
    chunk_rows: usize,
) -> Result<impl Iterator<Item = ChunkTask> + Send> {
    if chunk_rows == 0 {
        return Err(Error::InvalidParameter {
            name: "chunk_rows",
            problem: "must be at least 1".into(),
        });
    }
    let mut source = 0;
    let mut next = 0;
    Ok(std::iter::from_fn(move || {
        while source < rows.len() {
            let n = rows[source];
            if next < n {
                let a = next;
                next = a + chunk_rows.min(n - a);
                return Some(ChunkTask {
                    source,
                    rows: a..next,
                });
            }
            source += 1;
            next = 0;
        }
        None
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_every_row_once() {
        for rows in [vec![], vec![0], vec![1], vec![10, 0, 7], vec![4096, 1, 33]] {
            for chunk in [1, 2, 3, 7, 4096, 10_000] {
                let tasks = plan(&rows, chunk).unwrap();
                for (s, &n) in rows.iter().enumerate() {
                    let mut next = 0;
                    for t in tasks.iter().filter(|t| t.source == s) {
                        assert_eq!(t.rows.start, next);
                        assert!(t.rows.end > t.rows.start && t.rows.end - t.rows.start <= chunk);
                        next = t.rows.end;
                    }
                    assert_eq!(next, n);
                }
            }
        }
        assert!(plan(&[5], 0).is_err());
    }
}
