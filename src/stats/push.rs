//! The pass fed by the caller: rows pushed chunk by chunk — numpy arrays
//! from Python, any loader — instead of pulled from sources.
//!
//! The same rows give the same statistics, bit for bit, as
//! [`super::pass::accumulate_sources`] over them: they go through the same
//! value checks ([`crate::source`]), the same preparation (SNR key, noise of
//! (seed, shard index, row): [`crate::rows`]) and the same accumulation.
//! The shift x₀, y₀ is the mean of the first [`SHIFT_ROWS`] rows of the
//! first shard, as in the pull pass, so those rows are held (at most
//! `SHIFT_ROWS` × P values) until they have all arrived or the shard ends.
//!
//! Rows arrive in order: shard after shard ([`PushPass::next_shard`]), row
//! after row; their keys (shard index, row) follow from that order.

use std::path::PathBuf;
use std::time::Instant;

use super::pass::{
    new_header, AccumulateOptions, MemoryPlan, PassOutput, RunFigures, ShiftSum, State, SHIFT_ROWS,
};
use super::ShardFingerprint;
use crate::partition::PartitionKind;
use crate::rows::RowSpec;
use crate::source::{Chunk, RowChecks};
use crate::threads::Pool;
use crate::{Error, Result};

/// One call's rows, row-major: `flux` is rows × pixels, `error` the same
/// shape (needed when noise is drawn or a partition bins on SNR), and one
/// T_eff (K), [M/H] (dex) and log g (dex) per row.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)] // the fields are as above
pub struct PushRows<'a> {
    pub flux: &'a [f64],
    pub error: Option<&'a [f64]>,
    pub teff: &'a [f64],
    pub mh: &'a [f64],
    pub log_g: &'a [f64],
}

/// A pass the caller feeds ([`PushPass::push`]) and then finishes
/// ([`PushPass::finish`]) into the same [`PassOutput`] as the pull pass.
pub struct PushPass {
    opts: AccumulateOptions,
    pixels: usize,
    spec: RowSpec,
    pool: Pool,
    plan: MemoryPlan,
    /// The first shard's rows until the shift is known; then the state.
    stage: Stage,
    /// Position of the shard being fed (its index is
    /// `first_shard_index` + position), and its next row.
    shard: usize,
    next_row: usize,
    /// Rows fed per shard.
    rows: Vec<u64>,
    run: RunFigures,
    last_row: Option<(u64, usize)>,
    needs_error: bool,
    /// The value checks of a shard reader, naming the current shard.
    checks: RowChecks,
}

enum Stage {
    /// Prepared chunks of the first shard, fewer than SHIFT_ROWS rows in all.
    Held(Vec<Chunk>),
    Summing(Box<State>),
}

impl PushPass {
    /// A pass over rows of `pixels` pixels, planned within the options'
    /// budget like the pull pass (no checkpoints: the caller holds the
    /// rows' order).
    pub fn new(opts: &AccumulateOptions, pixels: usize) -> Result<PushPass> {
        if pixels == 0 {
            return Err(Error::InvalidParameter {
                name: "pixels",
                problem: "a spectrum needs at least 1 pixel".into(),
            });
        }
        crate::noise::shard_indices(opts.first_shard_index, 1)?;
        let plan = MemoryPlan::new(opts, pixels, false)?;
        super::gram::init();
        let bins_on_snr = opts
            .partitions
            .partitions
            .iter()
            .any(|p| matches!(p.kind, PartitionKind::Snr { .. }));
        Ok(PushPass {
            opts: opts.clone(),
            pixels,
            spec: RowSpec::draw(opts.noise),
            pool: Pool::new(opts.threads)?,
            plan,
            stage: Stage::Held(Vec::new()),
            shard: 0,
            next_row: 0,
            rows: vec![0],
            run: RunFigures::new(Instant::now(), false),
            last_row: None,
            needs_error: opts.noise.level > 0.0 || bins_on_snr,
            checks: RowChecks {
                path: origin(opts.first_shard_index),
                flux: "flux".into(),
                error: "error".into(),
                noisy: "noisy".into(),
                params: "params".into(),
                columns: vec!["teff".into(), "mh".into(), "log_g".into()],
                policy: opts.non_finite,
                lenient_params: false,
            },
        })
    }

    /// Feeds the next rows of the current shard.
    pub fn push(&mut self, rows: PushRows<'_>) -> Result<()> {
        let mut chunk = self.chunk_of(rows)?;
        if chunk.rows == 0 {
            return Ok(());
        }
        self.spec.prepare(&mut chunk);
        self.next_row += chunk.rows;
        self.rows[self.shard] += chunk.rows as u64;
        let held_rows = match &mut self.stage {
            Stage::Held(held) => {
                held.push(chunk);
                held.iter().map(|c| c.rows).sum::<usize>()
            }
            Stage::Summing(_) => return self.take(chunk),
        };
        if held_rows >= SHIFT_ROWS {
            self.start_summing()?;
        }
        Ok(())
    }

    /// Starts the next shard (index + 1, rows from 0).
    pub fn next_shard(&mut self) -> Result<()> {
        crate::noise::shard_indices(self.opts.first_shard_index, self.shard + 2)?;
        if matches!(self.stage, Stage::Held(_)) {
            self.start_summing()?;
        }
        self.shard += 1;
        self.next_row = 0;
        self.rows.push(0);
        let origin = origin(self.opts.first_shard_index + self.shard as u64);
        self.checks.path = origin.clone();
        if let Stage::Summing(state) = &mut self.stage {
            state.add_origin(origin);
        }
        Ok(())
    }

    /// The statistics of every row pushed.
    pub fn finish(mut self) -> Result<PassOutput> {
        if matches!(self.stage, Stage::Held(_)) {
            self.start_summing()?;
        }
        let Stage::Summing(state) = self.stage else {
            unreachable!("start_summing leaves the pass summing")
        };
        let (run, last_row) = (self.run, self.last_row);
        let mut state = *state;
        state.header_mut().shards = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, &rows)| {
                let index = self.opts.first_shard_index + i as u64;
                ShardFingerprint {
                    path: origin(index).display().to_string(),
                    rows,
                    bytes: 0,
                    mtime_ns: 0,
                    index,
                }
            })
            .collect();
        self.pool.run(move || state.output(run, last_row))
    }

    /// The shift from the held rows of the first shard, then those rows.
    fn start_summing(&mut self) -> Result<()> {
        let Stage::Held(held) = std::mem::replace(&mut self.stage, Stage::Held(Vec::new())) else {
            return Ok(());
        };
        let mut shift = ShiftSum::new(self.pixels);
        let mut left = SHIFT_ROWS;
        for c in &held {
            shift.add(c, left);
            left = left.saturating_sub(c.rows);
        }
        let header = new_header(
            &self.opts,
            &self.plan,
            self.pixels,
            Vec::new(),
            shift.mean(),
        );
        let origins = vec![origin(self.opts.first_shard_index)];
        self.stage = Stage::Summing(Box::new(State::fresh(
            &self.opts, &self.plan, header, origins,
        )));
        for c in held {
            self.take(c)?;
        }
        Ok(())
    }

    fn take(&mut self, chunk: Chunk) -> Result<()> {
        let Stage::Summing(state) = &mut self.stage else {
            unreachable!("rows are taken once the shift is known")
        };
        self.pool.run(|| state.take(&chunk))?;
        self.last_row = Some((chunk.shard, chunk.start + chunk.rows - 1));
        self.run.count(&chunk);
        Ok(())
    }

    /// The rows as a chunk of the current shard, shapes and values checked
    /// as a shard reader checks them.
    fn chunk_of(&self, rows: PushRows<'_>) -> Result<Chunk> {
        let p = self.pixels;
        if rows.flux.len() % p != 0 {
            return Err(Error::shape(
                "pushed flux",
                format!("whole rows of {p} pixels"),
                format!("{} values", rows.flux.len()),
            ));
        }
        let n = rows.flux.len() / p;
        if let Some(e) = rows.error.filter(|e| e.len() != rows.flux.len()) {
            return Err(Error::shape(
                "pushed error",
                format!("{} values (as flux)", rows.flux.len()),
                e.len(),
            ));
        }
        if rows.error.is_none() && self.needs_error {
            return Err(Error::InvalidParameter {
                name: "error",
                problem:
                    "the noise (level > 0) and the SNR key are drawn from the error array: give it"
                        .into(),
            });
        }
        for (what, v) in [("teff", rows.teff), ("mh", rows.mh), ("log_g", rows.log_g)] {
            if v.len() != n {
                return Err(Error::shape(
                    format!("pushed {what}"),
                    format!("{n} values (one per row of flux)"),
                    v.len(),
                ));
            }
        }
        let shard = self.opts.first_shard_index + self.shard as u64;
        let mut chunk = Chunk::default();
        chunk.reset(
            shard,
            self.next_row..self.next_row + n,
            p,
            3,
            rows.error.is_some(),
            false,
        );
        chunk.flux.copy_from_slice(rows.flux);
        if let Some(e) = rows.error {
            chunk.error.copy_from_slice(e);
        }
        for r in 0..n {
            chunk.params[3 * r..3 * r + 3].copy_from_slice(&[
                rows.teff[r],
                rows.mh[r],
                rows.log_g[r],
            ]);
        }
        self.checks.check(&mut chunk)?;
        Ok(chunk)
    }
}

/// What errors call the pushed rows of shard `index`.
fn origin(index: u64) -> PathBuf {
    PathBuf::from(format!("<pushed rows, shard {index}>"))
}
