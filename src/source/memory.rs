//! Rows held in memory: a source for tests and fuzzing.

use std::ops::Range;

use super::{Chunk, ChunkSource};
use crate::{Error, Result};

/// A [`ChunkSource`] over row-major arrays in memory.
#[derive(Debug, Clone)]
pub struct MemorySource {
    shard: u64,
    rows: usize,
    pixels: usize,
    flux: Vec<f64>,
    error: Option<Vec<f64>>,
    params: Vec<f64>,
    ncols: usize,
}

impl MemorySource {
    /// A source of `flux` (rows × pixels), optional `error` (same shape) and
    /// `params` (rows × ncols). Shapes are checked.
    pub fn new(
        shard: u64,
        pixels: usize,
        flux: Vec<f64>,
        error: Option<Vec<f64>>,
        params: Vec<f64>,
        ncols: usize,
    ) -> Result<Self> {
        if pixels == 0 || flux.len() % pixels != 0 {
            return Err(Error::shape(
                "in-memory flux",
                format!("whole rows of {pixels} pixels (at least 1)"),
                format!("{} values", flux.len()),
            ));
        }
        let rows = flux.len() / pixels;
        if let Some(e) = &error {
            if e.len() != flux.len() {
                return Err(Error::shape(
                    "in-memory error",
                    format!("{} values (as flux)", flux.len()),
                    e.len(),
                ));
            }
        }
        if params.len() != rows * ncols {
            return Err(Error::shape(
                "in-memory params",
                format!("{} values ({rows} rows × {ncols} columns)", rows * ncols),
                params.len(),
            ));
        }
        Ok(MemorySource {
            shard,
            rows,
            pixels,
            flux,
            error,
            params,
            ncols,
        })
    }
}

impl ChunkSource for MemorySource {
    fn rows(&self) -> usize {
        self.rows
    }
    fn pixels(&self) -> usize {
        self.pixels
    }
    fn shard_index(&self) -> u64 {
        self.shard
    }
    fn read_chunk(&mut self, rows: Range<usize>, chunk: &mut Chunk) -> Result<()> {
        if rows.start > rows.end || rows.end > self.rows {
            return Err(Error::shape(
                "in-memory rows",
                format!("a range within 0..{}", self.rows),
                format!("{}..{}", rows.start, rows.end),
            ));
        }
        let p = self.pixels;
        chunk.reset(
            self.shard,
            rows.clone(),
            p,
            self.ncols,
            self.error.is_some(),
            false,
        );
        chunk
            .flux
            .copy_from_slice(&self.flux[rows.start * p..rows.end * p]);
        if let Some(e) = &self.error {
            chunk
                .error
                .copy_from_slice(&e[rows.start * p..rows.end * p]);
        }
        chunk
            .params
            .copy_from_slice(&self.params[rows.start * self.ncols..rows.end * self.ncols]);
        Ok(())
    }
}
