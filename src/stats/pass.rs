//! The accumulating pass: reader → noise → partition → staging → Gram.
//!
//! One pass over the shards leaves, for every accumulator (a cell of the
//! common refinement, or a (partition, bin, fold)), the sums of
//! [`SuffStats`], plus the gate's [`Reservoir`].
//!
//! * **Reading overlaps computing**: the [`RowStream`]'s thread reads,
//!   keys and noises rows ahead ([`crate::rows`]).
//! * **Work per row** is one Gram update in [`Mode::Cells`] however many
//!   partitions there are; [`Mode::PerBin`] (the fallback when the cells do
//!   not fit the budget) costs one per partition.
//! * **Memory** is planned before any work ([`MemoryPlan`]): accumulators,
//!   staging, reader buffers, reservoir and checkpoint copies must fit the
//!   budget, or the run is refused with the arithmetic.
//! * **Determinism**: noise, folds and reservoir keys depend on (seed, shard,
//!   row) only; rows reach each accumulator in file order and flush at fixed
//!   per-accumulator counts; the Gram kernel gives the same bits for any
//!   thread count. So the statistics are bitwise identical for any thread
//!   count, chunk size, or resume point.
//! * **Checkpoints** (at chunk boundaries) hold the exact state, staged rows
//!   included, so a resumed run ends with the same bits.

use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faer::Par;

use super::file::{write_stats, StatsFile};
use super::set::permute_rows;
use super::{
    Accumulator, Cursor, Mode, Precision, Reservoir, ShardFingerprint, StatsHeader, SuffStats, Sums,
};
use crate::experts::dataset::ExpertDataset;
use crate::experts::feed::{boundaries, ExpertFeed, ExpertRows};
use crate::noise::NoiseModel;
use crate::partition::{fold_of, PartitionSet};
use crate::rows::{key_columns, RowSpec, RowStream};
use crate::source::{
    Chunk, ChunkSource, NonFinitePolicy, ReadOptions, ReadPath, Shard, ShardReader, Spectra,
};
use crate::threads::Cancel;
use crate::{Error, Layout, Result, Threads};

/// The pass computes at least this many times as long as the last
/// checkpoint took to write before it writes the next: checkpoints cost at
/// most 1/(1 + 9) = 10 % of the pass whatever their size (4.7 GB at 1M
/// rows with 5 folds), on top of `--checkpoint-every` (unless that is 0:
/// after every chunk).
const CHECKPOINT_SHARE: u32 = 9;

/// Rows of the first shard whose mean is the shift x₀, y₀.
pub const SHIFT_ROWS: usize = 256;

/// Options of the pass.
#[derive(Debug, Clone)]
pub struct AccumulateOptions {
    /// Where things are in the shards.
    pub layout: Layout,
    /// Partitions and folds.
    pub partitions: PartitionSet,
    /// Noise level and seed (the seed also drives folds and the reservoir).
    pub noise: NoiseModel,
    /// Threads for the Gram kernel (the reader and the row stream have
    /// their own).
    pub threads: Threads,
    /// Rows per chunk read (None: 256).
    pub chunk_rows: Option<usize>,
    /// Rows staged per accumulator before a Gram update (None: from the budget).
    pub block_rows: Option<usize>,
    /// Peak-memory budget in bytes (None: 80 % of available memory).
    pub mem_budget: Option<u64>,
    /// Accumulator keying (None: cells if they fit, else per bin).
    pub mode: Option<Mode>,
    /// Rows kept for the gate.
    pub gate_sample: usize,
    /// Policy for rows with non-finite values.
    pub non_finite: NonFinitePolicy,
    /// Memory map where it applies ([`ReadPath::Auto`]) or always libhdf5 hyperslabs.
    pub read_path: ReadPath,
    /// Shard index of the first shard (the others follow in order). Shard
    /// indices key the noise, fold and reservoir streams: a run split over
    /// nodes gives each part the indices its shards have in the whole list,
    /// so that merging the parts reproduces the single run.
    pub first_shard_index: u64,
    /// Stops the pass after the chunk in hand when cancelled.
    pub cancel: Cancel,
    /// Sum the rows in fixed ranges of at most this many rows per shard,
    /// each from zero, added in range order ([`super::ranges`]): the bits
    /// then do not depend on how many processes share the ranges (MPI).
    /// None: one running sum (the ordinary pass, half the accumulator
    /// memory). Used by [`super::ranges::accumulate_ranged`]; the ordinary
    /// pass refuses it.
    pub range_rows: Option<usize>,
    /// How block products are formed: f64 unless asked ([`Precision`]).
    pub precision: Precision,
    /// Rows kept for tree experts, coded, per bin of one partition
    /// ([`crate::experts::feed`]); the ordinary pass only (no checkpoint,
    /// no ranges).
    pub experts: Option<ExpertFeed>,
}

impl Default for AccumulateOptions {
    fn default() -> Self {
        AccumulateOptions {
            layout: Layout::default(),
            partitions: PartitionSet::default(),
            noise: NoiseModel {
                level: 1.0,
                seed: 42,
            },
            threads: Threads::All,
            chunk_rows: None,
            block_rows: None,
            mem_budget: None,
            mode: None,
            gate_sample: 0,
            non_finite: NonFinitePolicy::Error,
            read_path: ReadPath::Auto,
            first_shard_index: 0,
            cancel: Cancel::default(),
            range_rows: None,
            precision: Precision::F64,
            experts: None,
        }
    }
}

/// Checkpointing of a pass.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// The checkpoint file: written at chunk boundaries, read back when `resume` is set.
    pub path: PathBuf,
    /// Time between checkpoints.
    pub every: Duration,
    /// Continue from the checkpoint at `path` if it exists.
    pub resume: bool,
}

/// How the pass will use memory: chosen before any work.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MemoryPlan {
    /// Accumulator keying: the mode asked for, else cells if they fit the budget, else per bin.
    pub mode: Mode,
    /// Number of accumulators.
    pub accumulators: usize,
    /// Rows staged per accumulator.
    pub block_rows: usize,
    /// Rows per chunk read.
    pub chunk_rows: usize,
    /// Chunks read ahead.
    pub prefetch: usize,
    /// Bytes for accumulators (Gram lower triangle, sums, stages).
    pub accumulator_bytes: u64,
    /// Bytes for chunk buffers in flight.
    pub reader_bytes: u64,
    /// Bytes for the reservoir.
    pub reservoir_bytes: u64,
    /// Bytes for the final write and checkpoint copies.
    pub write_bytes: u64,
    /// Bytes for the running totals of a ranged pass (packed sums of every
    /// accumulator and a second gate sample); 0 for the ordinary pass.
    pub range_bytes: u64,
    /// Bytes for the tree experts' datasets at their row cap, their
    /// boundaries and the boundary sample; 0 without experts.
    pub expert_bytes: u64,
    /// Rows kept per bin for the tree experts (0 without experts).
    pub expert_rows_per_bin: usize,
    /// Fixed overhead (binary, libhdf5, kernel scratch; with
    /// `--precision mixed` also the f32 block and panels,
    /// [`super::gram::mixed_scratch_bytes`]).
    pub overhead_bytes: u64,
    /// The budget planned against.
    pub budget: u64,
}

/// Fixed overhead: the binary and libhdf5, OpenBLAS's per-thread packing
/// buffers, allocator slack. Set from measurement: with 70 accumulators at
/// P = 4096 the pass's peak RSS exceeded the sum of the other terms by
/// ~0.3 GiB (README, "Memory"); 512 MiB keeps the plan an upper bound.
const OVERHEAD: u64 = 512 << 20;

/// The fewest rows per bin the planner gives tree experts when it sets
/// their cap: below it a budget is refused rather than trees trained on a
/// handful of rows.
pub const MIN_EXPERT_ROWS: usize = 200;

/// Bins of the experts' partition (its unbinned slot keeps no rows).
fn expert_bins(opts: &AccumulateOptions, feed: &ExpertFeed) -> usize {
    opts.partitions
        .partitions
        .get(feed.partition)
        .map_or(0, |p| p.bins())
}

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
}

impl MemoryPlan {
    /// Total planned bytes.
    pub fn total(&self) -> u64 {
        self.accumulator_bytes
            .saturating_add(self.reader_bytes)
            .saturating_add(self.reservoir_bytes)
            .saturating_add(self.write_bytes)
            .saturating_add(self.range_bytes)
            .saturating_add(self.expert_bytes)
            .saturating_add(self.overhead_bytes)
    }

    /// Sets the tree experts' row cap and their bytes.
    fn set_expert_rows(&mut self, opts: &AccumulateOptions, pixels: usize, cap: usize) {
        if let Some(feed) = &opts.experts {
            let bins = expert_bins(opts, feed) as u64;
            self.expert_rows_per_bin = cap;
            self.expert_bytes = feed
                .fixed_bytes(pixels)
                .saturating_add(bins.saturating_mul(ExpertDataset::max_bytes(cap, pixels)));
        }
    }

    /// A bin holds at most the pass's `rows`: a cap the budget set above
    /// that is lowered to it (so the plan states what can be used).
    pub fn limit_expert_rows(&mut self, opts: &AccumulateOptions, pixels: usize, rows: usize) {
        if self.expert_rows_per_bin > rows {
            self.set_expert_rows(opts, pixels, rows);
        }
    }

    /// With experts whose row cap is the planner's: the most rows per bin
    /// the budget leaves beside this plan, or None below
    /// [`MIN_EXPERT_ROWS`].
    fn with_auto_expert_rows(mut self, opts: &AccumulateOptions, pixels: usize) -> Option<Self> {
        let feed = opts.experts.as_ref()?;
        self.set_expert_rows(opts, pixels, 0);
        let left = self.budget.checked_sub(self.total())?;
        let per_row = ExpertDataset::max_bytes(1, pixels) * expert_bins(opts, feed) as u64;
        let cap = usize::try_from(left / per_row.max(1)).unwrap_or(usize::MAX);
        if cap < MIN_EXPERT_ROWS {
            return None;
        }
        self.set_expert_rows(opts, pixels, cap);
        Some(self)
    }

    fn with(
        opts: &AccumulateOptions,
        pixels: usize,
        mode: Mode,
        block: usize,
        checkpoint: bool,
        budget: u64,
    ) -> Self {
        let p = pixels;
        let accumulators = mode.accumulators(&opts.partitions);
        let chunk_rows = opts.chunk_rows.unwrap_or(256).max(1);
        let prefetch = 2;
        let stage = (accumulators * block * p * 8) as u64;
        MemoryPlan {
            mode,
            accumulators,
            block_rows: block,
            chunk_rows,
            prefetch,
            accumulator_bytes: accumulators as u64 * Accumulator::max_bytes(p, block),
            reader_bytes: ((prefetch + 3) * chunk_rows * p * 16) as u64,
            reservoir_bytes: Reservoir::max_bytes(opts.gate_sample, p),
            // A checkpoint copies the staged rows and the gate sample.
            write_bytes: ((super::packed_len(p) * 8 * 2) as u64).saturating_add(if checkpoint {
                stage.saturating_add(Reservoir::max_bytes(opts.gate_sample, p))
            } else {
                0
            }),
            range_bytes: match opts.range_rows {
                Some(_) => (accumulators as u64)
                    .saturating_mul(((super::packed_len(p) + 2 * p) * 8) as u64)
                    .saturating_add(Reservoir::max_bytes(opts.gate_sample, p)),
                None => 0,
            },
            expert_bytes: 0,
            expert_rows_per_bin: 0,
            overhead_bytes: match opts.precision {
                Precision::F64 => OVERHEAD,
                Precision::Mixed => OVERHEAD.saturating_add(super::gram::mixed_scratch_bytes(
                    p,
                    block,
                    opts.threads.get(),
                )),
            },
            budget,
        }
    }

    /// Plans the pass for `pixels`, or refuses with the arithmetic.
    pub fn new(opts: &AccumulateOptions, pixels: usize, checkpoint: bool) -> Result<Self> {
        let budget = opts.mem_budget.unwrap_or_else(default_budget);
        let modes: &[Mode] = match opts.mode {
            Some(m) => std::slice::from_ref(match m {
                Mode::Cells => &Mode::Cells,
                Mode::PerBin => &Mode::PerBin,
            }),
            None => &[Mode::Cells, Mode::PerBin],
        };
        let blocks: Vec<usize> = match opts.block_rows {
            Some(0) => {
                return Err(Error::InvalidParameter {
                    name: "block-rows",
                    problem: "must be at least 1 row".into(),
                })
            }
            Some(b) => vec![b],
            None => vec![256, 128, 64],
        };
        let mut smallest: Option<MemoryPlan> = None;
        for &mode in modes {
            for &block in &blocks {
                let mut plan = Self::with(opts, pixels, mode, block, checkpoint, budget);
                match opts.experts.as_ref().map(|f| f.rows_per_bin) {
                    Some(None) => {
                        if let Some(p) = plan.clone().with_auto_expert_rows(opts, pixels) {
                            return Ok(p);
                        }
                        plan.set_expert_rows(opts, pixels, MIN_EXPERT_ROWS);
                    }
                    Some(Some(cap)) => plan.set_expert_rows(opts, pixels, cap),
                    None => {}
                }
                if plan.total() <= budget {
                    return Ok(plan);
                }
                if smallest.as_ref().is_none_or(|s| plan.total() < s.total()) {
                    smallest = Some(plan);
                }
            }
        }
        let s = smallest.ok_or_else(|| Error::InvalidParameter {
            name: "mem-budget",
            problem: "no plan".into(),
        })?;
        Err(Error::InvalidParameter {
            name: "mem-budget",
            problem: format!(
                "{} cannot hold the smallest plan ({}, {} accumulators × {} rows staged, P = {pixels}): \
                 accumulators {} + reader {} + reservoir {} + write/checkpoint {}{}{} + overhead {} = {}; \
                 raise --mem-budget, or lower --gate-sample, --folds or the number of partitions{}",
                gib(budget),
                s.mode,
                s.accumulators,
                s.block_rows,
                gib(s.accumulator_bytes),
                gib(s.reader_bytes),
                gib(s.reservoir_bytes),
                gib(s.write_bytes),
                if s.range_bytes > 0 {
                    format!(" + range totals {}", gib(s.range_bytes))
                } else {
                    String::new()
                },
                match &opts.experts {
                    Some(f) => format!(
                        " + tree experts' rows {} ({} bins × {} rows × (P + 40) B, boundaries and their sample of {} rows)",
                        gib(s.expert_bytes),
                        expert_bins(opts, f),
                        s.expert_rows_per_bin,
                        f.boundary_rows
                    ),
                    None => String::new(),
                },
                gib(s.overhead_bytes),
                gib(s.total()),
                match opts.experts.as_ref().map(|f| f.rows_per_bin) {
                    Some(Some(_)) => ", or the experts' rows per bin".to_string(),
                    Some(None) => format!(
                        " (tree experts need at least {MIN_EXPERT_ROWS} rows per bin)"
                    ),
                    None => String::new(),
                }
            ),
        })
    }
}

/// 80 % of the memory available now (8 GiB if unknown).
pub fn default_budget() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(8 << 30, |kb| kb * 1024 / 10 * 8)
}

/// Peak resident memory of this process so far (VmHWM), if known.
pub(crate) fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// What a finished pass did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PassSummary {
    /// Rows accumulated (this run and, when resumed, before).
    pub rows: u64,
    /// Rows skipped under [`NonFinitePolicy::SkipRow`] (a bad value or a non-finite SNR
    /// key), this run and, when resumed, before.
    pub skipped: u64,
    /// Rows processed by this run.
    pub rows_this_run: u64,
    /// Bytes of spectra decoded by this run.
    pub bytes_this_run: u64,
    /// Wall time of this run (s).
    pub seconds: f64,
    /// Gram flops of this run (rows × P² per update).
    pub flops_this_run: f64,
    /// The memory plan the pass ran with (mode, staging, budget).
    pub plan: MemoryPlan,
    /// Checkpoints this run wrote (0 without checkpointing).
    pub checkpoints: usize,
    /// Seconds spent writing them.
    pub checkpoint_seconds: f64,
    /// Whether the run resumed from a checkpoint.
    pub resumed: bool,
    /// Peak RSS of the process (bytes), if known.
    pub peak_rss: Option<u64>,
}

impl std::fmt::Display for PassSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.seconds.max(1e-9);
        write!(
            f,
            "accumulated {} rows ({} skipped) in {:.1} s: {:.0} rows/s, {:.2} GB/s, {:.1} GFLOP/s; {}, {} accumulators, {} rows staged; peak RSS {} of budget {}",
            self.rows,
            self.skipped,
            self.seconds,
            self.rows_this_run as f64 / s,
            self.bytes_this_run as f64 / 1e9 / s,
            self.flops_this_run / 1e9 / s,
            self.plan.mode,
            self.plan.accumulators,
            self.plan.block_rows,
            self.peak_rss.map_or("unknown".into(), gib),
            gib(self.plan.budget),
        )?;
        if self.checkpoints > 0 {
            write!(
                f,
                "; {} checkpoint(s) written in {:.1} s",
                self.checkpoints, self.checkpoint_seconds
            )?;
        }
        if self.resumed {
            write!(f, "; resumed from a checkpoint")?;
        }
        Ok(())
    }
}

/// The result of a pass, in memory: write it with [`PassOutput::write`].
#[derive(Debug)]
pub struct PassOutput {
    /// Configuration and provenance.
    pub header: StatsHeader,
    /// The accumulators, in accumulator order.
    pub accumulators: Vec<Accumulator>,
    /// The gate's reservoir sample (empty when [`AccumulateOptions::gate_sample`] is 0).
    pub reservoir: Reservoir,
    /// The tree experts' rows ([`AccumulateOptions::experts`]); not part
    /// of the statistics file.
    pub experts: Option<ExpertRows>,
    /// What the run did.
    pub summary: PassSummary,
}

impl PassOutput {
    /// Writes the statistics atomically: each accumulator flushed, its
    /// Gram packed a slice at a time as the file takes it (no packed copy),
    /// then dropped.
    pub fn write(self, path: &Path, threads: Threads) -> Result<PassSummary> {
        let par = threads.par();
        let (header, reservoir, summary) = (self.header, self.reservoir, self.summary);
        let accumulators = self.accumulators;
        threads.install(move || {
            let mut accs = accumulators.into_iter().map(|mut a| {
                a.flush(par);
                Ok(Sums::Gram(a))
            });
            write_stats(path, &header, &mut accs, &reservoir, None)
        })??;
        Ok(summary)
    }

    /// The finished statistics of every accumulator (small P: tests, examples).
    /// Runs in the calling thread's rayon pool with `threads.par()`.
    pub fn into_stats(self, threads: Threads) -> (StatsHeader, Vec<SuffStats>, Reservoir) {
        let par = threads.par();
        let stats = self
            .accumulators
            .into_iter()
            .map(|mut a| a.finish(par))
            .collect();
        (self.header, stats, self.reservoir)
    }
}

/// The gate sample while the pass runs: the `capacity` rows with the
/// smallest keys, in one slab allocated once (`capacity × P`), an evicted
/// row's place reused by the row that replaces it. No allocation per row and
/// no copy at the end: measured, a heap of one vector per row plus the final
/// copy took 0.86 GiB more than the sample (20,000 rows at P = 4096).
#[derive(Debug, Default)]
pub(super) struct Sample {
    capacity: usize,
    pixels: usize,
    /// Max-heap of (key, origin, slot): the top is the row to evict next.
    heap: BinaryHeap<(u64, (u64, u64), usize)>,
    /// Row `slot` at `slot·P`.
    x: Vec<f64>,
    params: Vec<[f64; 4]>,
}

impl Sample {
    pub(super) fn new(capacity: usize, pixels: usize) -> Sample {
        Sample {
            capacity,
            pixels,
            heap: BinaryHeap::with_capacity(capacity),
            // Reserved, not touched: pages become resident as rows arrive.
            x: Vec::with_capacity(capacity * pixels),
            params: Vec::with_capacity(capacity),
        }
    }

    /// Keeps the row if its key is among the `capacity` smallest seen.
    pub(super) fn offer(&mut self, key: u64, origin: (u64, u64), x: &[f64], params: [f64; 4]) {
        if self.capacity == 0 {
            return;
        }
        let p = self.pixels;
        if self.heap.len() < self.capacity {
            let slot = self.heap.len();
            self.x.extend_from_slice(x);
            self.params.push(params);
            self.heap.push((key, origin, slot));
        } else if let Some(&(top, _, slot)) = self.heap.peek() {
            if key < top {
                self.heap.pop();
                self.x[slot * p..(slot + 1) * p].copy_from_slice(x);
                self.params[slot] = params;
                self.heap.push((key, origin, slot));
            }
        }
    }

    /// Slots in ascending (key, origin) order.
    fn sorted(&self) -> Vec<(u64, (u64, u64), usize)> {
        let mut order: Vec<_> = self.heap.iter().copied().collect();
        order.sort_unstable();
        order
    }

    /// A copy in key order (for a checkpoint).
    pub(super) fn snapshot(&self) -> Reservoir {
        let p = self.pixels;
        let order = self.sorted();
        Reservoir {
            capacity: self.capacity,
            pixels: p,
            keys: order.iter().map(|e| e.0).collect(),
            origin: order.iter().map(|e| e.1).collect(),
            x: order
                .iter()
                .flat_map(|e| self.x[e.2 * p..(e.2 + 1) * p].iter().copied())
                .collect(),
            params: order.iter().map(|e| self.params[e.2]).collect(),
        }
    }

    /// The sample in key order, its rows permuted in place (one spare row).
    pub(super) fn into_reservoir(self) -> Reservoir {
        let p = self.pixels;
        let order = self.sorted();
        let mut x = self.x;
        let from: Vec<usize> = order.iter().map(|e| e.2).collect();
        permute_rows(&mut x, p, &from);
        Reservoir {
            capacity: self.capacity,
            pixels: p,
            keys: order.iter().map(|e| e.0).collect(),
            origin: order.iter().map(|e| e.1).collect(),
            x,
            params: from.iter().map(|&s| self.params[s]).collect(),
        }
    }

    /// A sample holding a saved reservoir (resume).
    pub(super) fn from_reservoir(res: Reservoir, capacity: usize) -> Sample {
        let mut s = Sample::new(capacity, res.pixels);
        for i in 0..res.len() {
            s.offer(
                res.keys[i],
                res.origin[i],
                &res.x[i * res.pixels..(i + 1) * res.pixels],
                res.params[i],
            );
        }
        s
    }
}

/// The pass's working state.
pub(super) struct State {
    opts: AccumulateOptions,
    plan: MemoryPlan,
    header: StatsHeader,
    accs: Vec<Accumulator>,
    sample: Sample,
    par: Par,
    slots: Vec<usize>,
    origins: Vec<PathBuf>,
    /// The tree experts' rows, when the pass keeps them.
    experts: Option<ExpertRows>,
    /// This chunk's rows for them: (slot of their partition, row in chunk).
    expert_picks: Vec<(usize, usize)>,
}

impl State {
    /// A pass's state before its first row: the given header (shift set)
    /// with empty accumulators and gate sample.
    pub(super) fn fresh(
        opts: &AccumulateOptions,
        plan: &MemoryPlan,
        header: StatsHeader,
        origins: Vec<PathBuf>,
    ) -> State {
        let (accs, sample) = empty_sums(opts, plan, header.pixels);
        State::with(opts, plan, (header, accs, sample), origins)
    }

    fn with(
        opts: &AccumulateOptions,
        plan: &MemoryPlan,
        (header, accs, sample): (StatsHeader, Vec<Accumulator>, Sample),
        origins: Vec<PathBuf>,
    ) -> State {
        State {
            opts: opts.clone(),
            plan: plan.clone(),
            header,
            accs,
            sample,
            par: opts.threads.par(),
            slots: vec![0; opts.partitions.partitions.len()],
            origins,
            experts: None,
            expert_picks: Vec::new(),
        }
    }

    /// Keeps rows for tree experts in these (empty) datasets from the next
    /// row on.
    pub(super) fn keep_expert_rows(&mut self, rows: ExpertRows) {
        self.experts = Some(rows);
    }

    /// The name errors give the rows of a shard fed from memory.
    pub(super) fn add_origin(&mut self, origin: PathBuf) {
        self.origins.push(origin);
    }

    pub(super) fn header_mut(&mut self) -> &mut StatsHeader {
        &mut self.header
    }

    /// One chunk of prepared rows (SNR keys taken, noise drawn): staged
    /// into its accumulators, then the sums checked (see `check_finite`).
    pub(super) fn take(&mut self, chunk: &Chunk) -> Result<()> {
        self.absorb(chunk)?;
        let last = (chunk.start + chunk.rows).saturating_sub(1);
        self.check_finite(chunk.shard, last)
    }

    /// Flushes what is staged, so the pass's figures include all its Gram
    /// work (finishing would flush them anyway, in the same order: the bits
    /// do not change), and checks the sums one last time.
    pub(super) fn flush(&mut self, last_row: Option<(u64, usize)>) -> Result<()> {
        for acc in &mut self.accs {
            acc.flush(self.par);
        }
        match last_row {
            Some((shard, row)) => self.check_finite(shard, row),
            None => Ok(()),
        }
    }

    /// Number of accumulators.
    pub(super) fn accumulators(&self) -> usize {
        self.accs.len()
    }

    /// Ends accumulator `a`'s part of a range of a ranged pass
    /// ([`super::ranges`]): its sums, staged rows flushed, added into `out`
    /// (`add`) or written over it, the accumulator left empty in place. Run
    /// in the pass's pool.
    pub(super) fn end_range_of(&mut self, a: usize, out: &mut SuffStats, add: bool) -> Result<()> {
        self.accs[a].drain_into(out, add, self.par)
    }

    /// Ends a range: its rows, skipped rows and gate sample; the state is
    /// empty for the next range once every accumulator's part has ended.
    pub(super) fn end_range(&mut self) -> (u64, u64, Sample) {
        let p = self.header.pixels;
        let sample = std::mem::replace(&mut self.sample, Sample::new(self.opts.gate_sample, p));
        let rows = std::mem::take(&mut self.header.rows);
        let skipped = std::mem::take(&mut self.header.skipped);
        (rows, skipped, sample)
    }

    /// The pass's result from its final state and this run's figures.
    pub(super) fn output(
        mut self,
        run: RunFigures,
        last_row: Option<(u64, usize)>,
    ) -> Result<PassOutput> {
        self.flush(last_row)?;
        let pixels = self.header.pixels;
        let reservoir = std::mem::take(&mut self.sample).into_reservoir();
        let updates_per_row = match self.plan.mode {
            Mode::Cells => 1.0,
            Mode::PerBin => self.opts.partitions.partitions.len() as f64,
        };
        let summary = PassSummary {
            rows: self.header.rows,
            skipped: self.header.skipped,
            rows_this_run: run.rows,
            bytes_this_run: run.bytes,
            seconds: run.start.elapsed().as_secs_f64(),
            flops_this_run: run.rows as f64 * (pixels * pixels) as f64 * updates_per_row,
            plan: self.plan,
            checkpoints: run.checkpoints,
            checkpoint_seconds: run.checkpoint_seconds,
            resumed: run.resumed,
            peak_rss: peak_rss(),
        };
        Ok(PassOutput {
            header: self.header,
            accumulators: self.accs,
            reservoir,
            experts: self.experts.take(),
            summary,
        })
    }

    fn bad_snr(&self, chunk: &Chunk, r: usize) -> Error {
        Error::BadValue {
            path: self.origins[(chunk.shard - self.opts.first_shard_index) as usize].clone(),
            dataset: self.opts.layout.error.clone(),
            row: chunk.start + r,
            column: "snr".into(),
            problem: format!(
                "SNR is not finite ({}): flux and error are all zero?",
                chunk.keys(r).snr
            ),
        }
    }

    /// Refuses statistics that became non-finite, naming the accumulator and
    /// the rows read so far. Shard readers already refuse values whose
    /// squares could overflow ([`crate::source::MAX_SPECTRUM_VALUE`]); this
    /// is the backstop for other sources (rows in memory) and noise models
    /// built without [`NoiseModel::new`]'s range check. Per chunk, P values per
    /// accumulator: nothing on the per-row path.
    fn check_finite(&self, shard: u64, last_row: usize) -> Result<()> {
        for (a, acc) in self.accs.iter().enumerate() {
            if let Some(what) = acc.non_finite() {
                return Err(Error::BadValue {
                    path: self.origins[(shard - self.opts.first_shard_index) as usize].clone(),
                    dataset: self.opts.layout.flux.clone(),
                    row: last_row,
                    column: "all".into(),
                    problem: format!(
                        "accumulator {a}'s {what} is not finite after the rows up to this one: \
                         the flux values are too large to sum in f64"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Routing and staging of one chunk of keyed, noisy rows; the tree
    /// experts' rows kept and coded after them.
    fn absorb(&mut self, chunk: &Chunk) -> Result<()> {
        self.expert_picks.clear();
        self.stage(chunk)?;
        if let Some(e) = self.experts.as_mut() {
            let picks = std::mem::take(&mut self.expert_picks);
            // On the pass's pool (the pass runs inside it).
            let kept = e.offer_chunk(chunk, &picks);
            self.expert_picks = picks;
            kept?;
        }
        Ok(())
    }

    /// Routing and staging of one chunk of keyed, noisy rows.
    fn stage(&mut self, chunk: &Chunk) -> Result<()> {
        let (shard, start) = (chunk.shard, chunk.start as u64);
        let set = &self.header.partitions;
        let (seed, folds) = (self.header.noise.seed, set.folds);
        for r in 0..chunk.rows {
            if chunk.skip[r] {
                self.header.skipped += 1;
                continue;
            }
            let keys = chunk.keys(r);
            if set.slots_of(&keys, &mut self.slots).is_err() {
                match self.opts.non_finite {
                    NonFinitePolicy::Error => return Err(self.bad_snr(chunk, r)),
                    NonFinitePolicy::SkipRow => {
                        self.header.skipped += 1;
                        continue;
                    }
                }
            }
            let row = start + r as u64;
            let fold = fold_of(seed, shard, row, folds);
            let log_g = chunk.log_g(r);
            let y = log_g - self.header.shift_y;
            let x = chunk.flux_row(r);
            match self.plan.mode {
                Mode::Cells => {
                    let c = set.cell(&self.slots, fold);
                    self.accs[c].push_shifted(x, &self.header.shift_x, y, self.par);
                }
                Mode::PerBin => {
                    for (i, &slot) in self.slots.iter().enumerate() {
                        let a = set.per_bin_index(i, slot, fold);
                        self.accs[a].push_shifted(x, &self.header.shift_x, y, self.par);
                    }
                }
            }
            if let Some(e) = &self.experts {
                self.expert_picks.push((self.slots[e.partition], r));
            }
            if self.opts.gate_sample > 0 {
                self.sample.offer(
                    Reservoir::key(seed, shard, row),
                    (shard, row),
                    x,
                    [keys.teff, keys.mh, log_g, keys.snr],
                );
            }
            self.header.rows += 1;
        }
        Ok(())
    }

    /// Writes the exact state. Memory: the staged rows and the gate sample
    /// are copied (both in the plan), the accumulators' sums one at a time
    /// as the file takes them — copying them all first held a second set of
    /// accumulators (2.53 GiB peak under a 2 GiB budget, issue 11).
    fn checkpoint(&self, path: &Path, source: usize, row: usize) -> Result<()> {
        let cursor = Cursor {
            source,
            row,
            staged: self.accs.iter().map(Accumulator::staged_rows).collect(),
            block_rows: self.plan.block_rows,
            range_rows: 0,
        };
        let reservoir = self.sample.snapshot();
        let mut it = self.accs.iter().map(|a| Ok(Sums::GramRef(a)));
        write_stats(path, &self.header, &mut it, &reservoir, Some(&cursor))
    }
}

/// Runs the pass over shard files (shard index = `first_shard_index` +
/// position): opens and fingerprints them, then [`accumulate_sources`].
pub fn accumulate(
    shards: &[PathBuf],
    opts: &AccumulateOptions,
    checkpoint: Option<&CheckpointOptions>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PassOutput> {
    if opts.range_rows.is_some() {
        return Err(Error::InvalidParameter {
            name: "range-rows",
            problem: "the ordinary pass sums in one running sum: run a pass in ranges with \
                      accumulate_to_file or stats::ranges"
                .into(),
        });
    }
    let (shards, fingerprints) = open_shards(shards, opts)?;
    let read = read_options(opts);
    let readers = shards
        .iter()
        .zip(&fingerprints)
        .map(|(s, f)| s.reader(f.index, &read))
        .collect::<Result<Vec<ShardReader>>>()?;
    accumulate_sources(readers, fingerprints, opts, checkpoint, progress)
}

/// How the pass reads shards: flux and error, the key columns.
pub(super) fn read_options(opts: &AccumulateOptions) -> ReadOptions {
    ReadOptions {
        spectra: Spectra::FluxError,
        columns: key_columns(&opts.layout),
        path: opts.read_path,
        non_finite: opts.non_finite,
    }
}

/// Opens and fingerprints shard files (shard index = `first_shard_index` +
/// position), refusing none given or pixel counts that differ.
pub(super) fn open_shards(
    shards: &[PathBuf],
    opts: &AccumulateOptions,
) -> Result<(Vec<Shard>, Vec<ShardFingerprint>)> {
    if shards.is_empty() {
        return Err(Error::InvalidParameter {
            name: "shards",
            problem: "no shard given".into(),
        });
    }
    let mut opened: Vec<Shard> = Vec::with_capacity(shards.len());
    let mut fingerprints = Vec::with_capacity(shards.len());
    for (i, path) in shards.iter().enumerate() {
        let shard = Shard::open(path, &opts.layout)?;
        if let Some(first) = opened.first().map(Shard::pixels) {
            if shard.pixels() != first {
                return Err(Error::Layout {
                    path: path.clone(),
                    dataset: opts.layout.flux.clone(),
                    expected: format!("{first} pixels like {}", shards[0].display()),
                    found: format!("{} pixels", shard.pixels()),
                });
            }
        }
        let index = opts.first_shard_index + i as u64;
        fingerprints.push(ShardFingerprint::of(path, index, shard.rows() as u64)?);
        opened.push(shard);
    }
    Ok((opened, fingerprints))
}

/// The pass from shard files to a statistics file, as `gramstream
/// accumulate` runs it: the output (and the checkpoint) refused before any
/// work if it is one of the inputs, a checkpoint not asked to resume
/// refused rather than overwritten, the statistics written atomically, and
/// the checkpoint removed once they are.
pub fn accumulate_to_file(
    out: &Path,
    shards: &[PathBuf],
    opts: &AccumulateOptions,
    checkpoint: Option<&CheckpointOptions>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PassSummary> {
    if opts.range_rows.is_some() {
        let ranks = super::ranks::Alone;
        let summary = super::ranges::accumulate_ranged_to_file(
            out, shards, opts, checkpoint, &ranks, progress,
        )?;
        return summary
            .map(|s| s.pass)
            .ok_or_else(|| Error::Worker("rank 0 of 1 wrote nothing".into()));
    }
    refuse_outputs(out, shards, opts, checkpoint)?;
    let output = accumulate(shards, opts, checkpoint, progress)?;
    let summary = output.write(out, opts.threads)?;
    if let Some(c) = checkpoint {
        let _ = std::fs::remove_file(&c.path);
    }
    Ok(summary)
}

/// Refuses, before any work, an output or checkpoint that is one of the
/// inputs, and a checkpoint not asked to resume.
pub(super) fn refuse_outputs(
    out: &Path,
    shards: &[PathBuf],
    opts: &AccumulateOptions,
    checkpoint: Option<&CheckpointOptions>,
) -> Result<()> {
    crate::noise::shard_indices(opts.first_shard_index, shards.len())?;
    crate::output::refuse_input_overwrite(out, shards)?;
    if let Some(c) = checkpoint {
        let mut outputs = shards.to_vec();
        outputs.push(out.to_path_buf());
        crate::output::refuse_input_overwrite(&c.path, &outputs)?;
        if !c.resume && c.path.exists() {
            return Err(Error::Output {
                path: c.path.clone(),
                problem: "a checkpoint exists; pass --resume to continue it, or remove it".into(),
            });
        }
    }
    Ok(())
}

/// Runs the pass over `sources` — shard readers, or rows in memory
/// ([`crate::source::MemorySource`]) — whose chunks carry flux, error and
/// the params `key_columns`, with shard indices `first_shard_index` +
/// position. `fingerprints` (one per source) are recorded in the header and
/// checked on resume.
pub fn accumulate_sources<S: ChunkSource + 'static>(
    sources: Vec<S>,
    fingerprints: Vec<ShardFingerprint>,
    opts: &AccumulateOptions,
    checkpoint: Option<&CheckpointOptions>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PassOutput> {
    let start = Instant::now();
    let pixels = check_sources(&sources, &fingerprints, opts)?;
    let rows: Vec<usize> = sources.iter().map(ChunkSource::rows).collect();
    let origins: Vec<PathBuf> = sources.iter().map(ChunkSource::origin).collect();
    if opts.experts.is_some() && checkpoint.is_some() {
        return Err(Error::InvalidParameter {
            name: "checkpoint",
            problem: "a pass keeping rows for tree experts cannot be checkpointed: the statistics file has no place for them".into(),
        });
    }
    let mut plan = MemoryPlan::new(opts, pixels, checkpoint.is_some())?;
    plan.limit_expert_rows(opts, pixels, rows.iter().sum());
    super::gram::init();
    let spec = RowSpec::draw(opts.noise);
    let mut sources = sources;
    let (header, accs, sample, cursor) = begin(
        &mut sources[0],
        fingerprints,
        opts,
        checkpoint,
        &plan,
        pixels,
        &spec,
    )?;
    let resumed = cursor.is_some();
    let (from_source, from_row) = cursor.unwrap_or((0, 0));
    let expert_rows = match &opts.experts {
        Some(feed) => {
            let bins = boundaries(&mut sources, &spec, feed.boundary_rows)?;
            Some(ExpertRows::new(
                feed.partition,
                std::sync::Arc::new(bins),
                expert_bins(opts, feed),
                plan.expert_rows_per_bin,
                opts.noise.seed,
            ))
        }
        None => None,
    };

    // Sources from the cursor on: rows before it are done.
    let readers: Vec<Offset<S>> = sources
        .into_iter()
        .enumerate()
        .skip(from_source)
        .map(|(i, inner)| Offset {
            first: if i == from_source { from_row } else { 0 },
            end: inner.rows(),
            inner,
            index: opts.first_shard_index + i as u64,
        })
        .collect();
    let done_before = rows[..from_source.min(rows.len())].iter().sum::<usize>() + from_row;
    progress(done_before as u64);
    let mut state = State::with(opts, &plan, (header, accs, sample), origins);
    if let Some(e) = expert_rows {
        state.keep_expert_rows(e);
    }
    let mut checkpoints = checkpoint.map(|c| Checkpoints::new(c, rows));
    let mut run = RunFigures::new(start, resumed);
    opts.threads.install(|| -> Result<PassOutput> {
        // SNR and noise run on the stream's thread, overlapping the Gram
        // updates (in the main thread they left a core idle: perf).
        let mut stream = RowStream::new(readers, spec, plan.chunk_rows, plan.prefetch)?;
        let mut last_row: Option<(u64, usize)> = None;
        while let Some(chunk) = stream.next() {
            let chunk = chunk?;
            opts.cancel.check()?;
            state.take(&chunk)?;
            last_row = Some((chunk.shard, (chunk.start + chunk.rows).saturating_sub(1)));
            run.count(&chunk);
            progress(chunk.rows as u64);
            if let Some(c) = checkpoints.as_mut() {
                let source = (chunk.shard - opts.first_shard_index) as usize;
                c.after_chunk(&mut state, source, chunk.start + chunk.rows)?;
            }
            stream.recycle(chunk);
        }
        if let Some(c) = &checkpoints {
            (run.checkpoints, run.checkpoint_seconds) = (c.count, c.seconds);
        }
        state.output(run, last_row)
    })?
}

/// What one run of a pass did, beside the statistics: its figures.
pub(super) struct RunFigures {
    start: Instant,
    rows: u64,
    bytes: u64,
    checkpoints: usize,
    checkpoint_seconds: f64,
    resumed: bool,
}

impl RunFigures {
    pub(super) fn new(start: Instant, resumed: bool) -> Self {
        RunFigures {
            start,
            rows: 0,
            bytes: 0,
            checkpoints: 0,
            checkpoint_seconds: 0.0,
            resumed,
        }
    }

    pub(super) fn count(&mut self, chunk: &Chunk) {
        self.rows += chunk.rows as u64;
        self.bytes += chunk.spectra_bytes() as u64;
    }

    /// Rows and bytes counted since the last call (a ranged pass reports
    /// them per range).
    pub(super) fn take_counts(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.rows),
            std::mem::take(&mut self.bytes),
        )
    }

    pub(super) fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub(super) fn resumed(&self) -> bool {
        self.resumed
    }
}

/// At least one source, all of one pixel count, a usable range of shard
/// indices, one fingerprint per source; returns the pixel count.
pub(super) fn check_sources<S: ChunkSource>(
    sources: &[S],
    fingerprints: &[ShardFingerprint],
    opts: &AccumulateOptions,
) -> Result<usize> {
    let Some(first) = sources.first() else {
        return Err(Error::InvalidParameter {
            name: "shards",
            problem: "no shard given".into(),
        });
    };
    let pixels = first.pixels();
    if let Some(s) = sources.iter().find(|s| s.pixels() != pixels) {
        return Err(Error::shape(
            s.origin().display().to_string(),
            format!("{pixels} pixels (as {})", first.origin().display()),
            format!("{} pixels", s.pixels()),
        ));
    }
    crate::noise::shard_indices(opts.first_shard_index, sources.len())?;
    if fingerprints.len() != sources.len() {
        return Err(Error::shape(
            "shard fingerprints",
            format!("one per source ({})", sources.len()),
            fingerprints.len(),
        ));
    }
    Ok(pixels)
}

/// The header, accumulators and gate sample a pass starts from, and the
/// cursor it resumes at.
type Begun = (
    StatsHeader,
    Vec<Accumulator>,
    Sample,
    Option<(usize, usize)>,
);

/// The pass's starting state: restored from this run's checkpoint when it
/// resumes (with the cursor where it stopped), else a new header with the
/// shift from the first source and empty accumulators.
fn begin<S: ChunkSource>(
    first: &mut S,
    fingerprints: Vec<ShardFingerprint>,
    opts: &AccumulateOptions,
    checkpoint: Option<&CheckpointOptions>,
    plan: &MemoryPlan,
    pixels: usize,
    spec: &RowSpec,
) -> Result<Begun> {
    if let Some(c) = checkpoint.filter(|c| c.resume && c.path.exists()) {
        let file = StatsFile::open(&c.path)?;
        let (header, accs, sample, cursor) =
            restore(&file, &c.path, opts, plan, pixels, &fingerprints)?;
        return Ok((header, accs, sample, Some(cursor)));
    }
    let header = new_header(opts, plan, pixels, fingerprints, shift_of(first, spec)?);
    let (accs, sample) = empty_sums(opts, plan, pixels);
    Ok((header, accs, sample, None))
}

/// The header of a new pass: its configuration, shards and shift.
pub(super) fn new_header(
    opts: &AccumulateOptions,
    plan: &MemoryPlan,
    pixels: usize,
    shards: Vec<ShardFingerprint>,
    (shift_x, shift_y): (Vec<f64>, f64),
) -> StatsHeader {
    StatsHeader {
        pixels,
        noise: opts.noise,
        partitions: opts.partitions.clone(),
        mode: plan.mode,
        layout: opts.layout.clone(),
        shards,
        shift_x,
        shift_y,
        rows: 0,
        skipped: 0,
        precision: opts.precision,
    }
}

/// A new pass's accumulators and gate sample, empty.
fn empty_sums(
    opts: &AccumulateOptions,
    plan: &MemoryPlan,
    pixels: usize,
) -> (Vec<Accumulator>, Sample) {
    let accs = (0..plan.accumulators)
        .map(|_| Accumulator::new(pixels, plan.block_rows).with_precision(opts.precision))
        .collect();
    (accs, Sample::new(opts.gate_sample, pixels))
}

/// When to write checkpoints, and what they cost: after a chunk once the
/// interval has passed — and at least 9× the last write's time, so writes
/// take at most a tenth of the pass — or after every chunk with an
/// interval of 0 (tests that kill the process need them everywhere).
pub(super) struct Checkpoints<'a> {
    options: &'a CheckpointOptions,
    /// Rows of each source (where the cursor moves to the next).
    rows: Vec<usize>,
    last: Instant,
    cost: Duration,
    pub(super) count: usize,
    pub(super) seconds: f64,
}

impl<'a> Checkpoints<'a> {
    pub(super) fn new(options: &'a CheckpointOptions, rows: Vec<usize>) -> Self {
        Checkpoints {
            options,
            rows,
            last: Instant::now(),
            cost: Duration::ZERO,
            count: 0,
            seconds: 0.0,
        }
    }

    /// Whether a checkpoint is due now.
    pub(super) fn due(&self) -> bool {
        let wait = if self.options.every.is_zero() {
            Duration::ZERO
        } else {
            self.options.every.max(self.cost * CHECKPOINT_SHARE)
        };
        self.last.elapsed() >= wait
    }

    /// Writes a checkpoint with `write`, timing it.
    pub(super) fn write(&mut self, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        let t = Instant::now();
        write(&self.options.path)?;
        self.cost = t.elapsed();
        self.seconds += self.cost.as_secs_f64();
        self.count += 1;
        self.last = Instant::now();
        Ok(())
    }

    /// After the chunk that ends before `next_row` of source `source`.
    fn after_chunk(&mut self, state: &mut State, source: usize, next_row: usize) -> Result<()> {
        if !self.due() {
            return Ok(());
        }
        let (src, row) = if next_row >= self.rows[source] {
            (source + 1, 0)
        } else {
            (source, next_row)
        };
        self.write(|path| state.checkpoint(path, src, row))
    }
}

/// What a checkpoint restores.
type Restored = (StatsHeader, Vec<Accumulator>, Sample, (usize, usize));

/// The refusal of a checkpoint that is not this run's.
pub(super) fn not_this_run(ckpt_path: &Path, why: String) -> Error {
    Error::Layout {
        path: ckpt_path.to_path_buf(),
        dataset: "/".into(),
        expected: "a checkpoint of this same run".into(),
        found: why,
    }
}

/// The header and cursor of a checkpoint, if it is one of this same run:
/// configuration, shards, plan and kind of pass (ordinary or ranged, with
/// the same range size) as this run's.
pub(super) fn checkpoint_of_this_run(
    file: &StatsFile,
    ckpt_path: &Path,
    opts: &AccumulateOptions,
    plan: &MemoryPlan,
    pixels: usize,
    fingerprints: &[ShardFingerprint],
) -> Result<(StatsHeader, Cursor)> {
    let refuse = |why: String| not_this_run(ckpt_path, why);
    if !file.is_checkpoint() {
        return Err(refuse("complete statistics, not a checkpoint".into()));
    }
    let h = file.header().clone();
    if h.pixels != pixels
        || h.noise != opts.noise
        || h.partitions != opts.partitions
        || h.layout != opts.layout
    {
        return Err(refuse(
            "a different configuration (pixels, noise, seed, partitions, folds or layout)".into(),
        ));
    }
    if h.precision != opts.precision {
        return Err(refuse(format!(
            "products in {} where this run asks for {}",
            h.precision, opts.precision
        )));
    }
    if h.mode != plan.mode {
        return Err(refuse(format!(
            "mode {:?} where this run planned {:?}",
            h.mode, plan.mode
        )));
    }
    if h.shards != fingerprints {
        return Err(refuse(
            "a different shard list (paths, sizes or modification times changed)".into(),
        ));
    }
    let cursor = file.cursor()?.ok_or_else(|| refuse("no cursor".into()))?;
    if cursor.block_rows != plan.block_rows {
        return Err(refuse(format!(
            "{} rows staged per accumulator, this run plans {}",
            cursor.block_rows, plan.block_rows
        )));
    }
    let ranges = |r: usize| match r {
        0 => "the ordinary pass".to_string(),
        r => format!("a pass in ranges of {r} rows"),
    };
    let this = opts.range_rows.unwrap_or(0);
    if cursor.range_rows != this {
        return Err(refuse(format!(
            "a checkpoint of {} where this run is {}",
            ranges(cursor.range_rows),
            ranges(this)
        )));
    }
    if cursor.staged.len() != plan.accumulators {
        return Err(refuse(format!(
            "{} accumulators, expected {}",
            cursor.staged.len(),
            plan.accumulators
        )));
    }
    Ok((h, cursor))
}

/// The state saved in a checkpoint of this same run, and its cursor.
fn restore(
    file: &StatsFile,
    ckpt_path: &Path,
    opts: &AccumulateOptions,
    plan: &MemoryPlan,
    pixels: usize,
    fingerprints: &[ShardFingerprint],
) -> Result<Restored> {
    let (h, cursor) = checkpoint_of_this_run(file, ckpt_path, opts, plan, pixels, fingerprints)?;
    let mut accs = Vec::with_capacity(plan.accumulators);
    for (a, (sx, sy)) in cursor.staged.iter().enumerate() {
        accs.push(
            Accumulator::restore(&file.accumulator(a)?, sx, sy, plan.block_rows)?
                .with_precision(opts.precision),
        );
    }
    let sample = Sample::from_reservoir(file.reservoir()?, opts.gate_sample);
    Ok((h, accs, sample, (cursor.source, cursor.row)))
}

/// The shift: mean of the first [`SHIFT_ROWS`] usable rows of the first
/// source, noise included — independent of chunk size and thread count.
pub(super) fn shift_of<S: ChunkSource>(source: &mut S, spec: &RowSpec) -> Result<(Vec<f64>, f64)> {
    let n = source.rows().min(SHIFT_ROWS);
    let mut chunk = Chunk::default();
    source.read_chunk(0..n, &mut chunk)?;
    spec.prepare(&mut chunk);
    let mut sum = ShiftSum::new(chunk.pixels);
    sum.add(&chunk, chunk.rows);
    Ok(sum.mean())
}

/// The shift x₀, y₀: the mean of the usable rows among the first
/// [`SHIFT_ROWS`] of the first shard, summed row after row (so the same
/// rows give the same bits in one chunk or several).
pub(super) struct ShiftSum {
    sx: Vec<f64>,
    sy: f64,
    k: usize,
}

impl ShiftSum {
    pub(super) fn new(pixels: usize) -> Self {
        ShiftSum {
            sx: vec![0.0; pixels],
            sy: 0.0,
            k: 0,
        }
    }

    /// Adds the usable rows among the first `rows` of a prepared chunk.
    pub(super) fn add(&mut self, chunk: &Chunk, rows: usize) {
        for r in 0..rows.min(chunk.rows) {
            if chunk.skip[r] {
                continue;
            }
            for (s, v) in self.sx.iter_mut().zip(chunk.flux_row(r)) {
                *s += v;
            }
            self.sy += chunk.log_g(r);
            self.k += 1;
        }
    }

    pub(super) fn mean(mut self) -> (Vec<f64>, f64) {
        if self.k > 0 {
            let k = self.k as f64;
            self.sx.iter_mut().for_each(|s| *s /= k);
            self.sy /= k;
        }
        (self.sx, self.sy)
    }
}

/// Rows `first..end` of a source (a resume point, a row range), with
/// their positions in the whole source: rows outside are not read.
pub(super) struct Offset<S> {
    pub(super) inner: S,
    pub(super) first: usize,
    pub(super) end: usize,
    pub(super) index: u64,
}

impl<S: ChunkSource> ChunkSource for Offset<S> {
    fn rows(&self) -> usize {
        self.end.min(self.inner.rows()).saturating_sub(self.first)
    }
    fn pixels(&self) -> usize {
        self.inner.pixels()
    }
    fn shard_index(&self) -> u64 {
        self.index
    }
    fn read_chunk(&mut self, rows: std::ops::Range<usize>, chunk: &mut Chunk) -> Result<()> {
        self.inner
            .read_chunk(rows.start + self.first..rows.end + self.first, chunk)
    }
    fn origin(&self) -> PathBuf {
        self.inner.origin()
    }
}

#[cfg(test)]
pub(super) mod tests {
    //! The pass from memory against sums written out by hand.

    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    use super::*;
    use crate::partition::Partition;
    use crate::source::MemorySource;

    /// Sources of random spectra (`sizes[i]` rows each, P = `p`), params
    /// T_eff, [M/H], log g spread over and beyond the default bins.
    pub(crate) fn sources(seed: u64, sizes: &[usize], p: usize) -> Vec<MemorySource> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let flux: Vec<f64> = (0..n * p).map(|_| rng.random_range(0.2..2.0)).collect();
                let error: Vec<f64> = (0..n * p).map(|_| rng.random_range(0.05..1.5)).collect();
                let params: Vec<f64> = (0..n)
                    .flat_map(|_| {
                        [
                            rng.random_range(3500.0..6500.0),
                            rng.random_range(-2.5..0.8),
                            rng.random_range(1.0..5.0),
                        ]
                    })
                    .collect();
                MemorySource::new(i as u64, p, flux, Some(error), params, 3).unwrap()
            })
            .collect()
    }

    pub(crate) fn fingerprints(sizes: &[usize]) -> Vec<ShardFingerprint> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| ShardFingerprint {
                path: format!("<memory {i}>"),
                rows: n as u64,
                bytes: 0,
                mtime_ns: 0,
                index: i as u64,
            })
            .collect()
    }

    /// Per (partition, slot, fold): the sums of the shifted rows, by plain
    /// loops over every row.
    fn naive(
        srcs: &[MemorySource],
        set: &PartitionSet,
        noise: NoiseModel,
        shift: (&[f64], f64),
    ) -> Vec<Vec<Vec<SuffStats>>> {
        let p = srcs[0].pixels();
        let mut out: Vec<Vec<Vec<SuffStats>>> = set
            .partitions
            .iter()
            .map(|part| vec![vec![SuffStats::zeros(p); set.folds]; part.slots()])
            .collect();
        for src in srcs {
            let mut src = src.clone();
            let mut c = Chunk::default();
            src.read_chunk(0..src.rows(), &mut c).unwrap();
            for r in 0..c.rows {
                let e = &c.error[r * p..(r + 1) * p];
                let snr = crate::rows::snr(c.flux_row(r), e, noise.level);
                let mut x = c.flux_row(r).to_vec();
                noise.apply_row(c.shard, r as u64, &mut x, e);
                let prm = c.params_row(r);
                let keys = RowKeys {
                    teff: prm[0],
                    mh: prm[1],
                    snr,
                };
                let x: Vec<f64> = x.iter().zip(shift.0).map(|(a, b)| a - b).collect();
                let y = prm[2] - shift.1;
                let fold = crate::partition::fold_of(noise.seed, c.shard, r as u64, set.folds);
                for (pi, part) in set.partitions.iter().enumerate() {
                    let slot = part.bin(&keys).unwrap_or(part.bins());
                    out[pi][slot][fold].push_naive(&x, y);
                }
            }
        }
        out
    }

    fn close(got: f64, want: f64, scale: f64, what: &str) {
        assert!(
            (got - want).abs() <= 1e-11 * scale.max(1.0),
            "{what}: {got} vs {want}"
        );
    }

    use crate::partition::RowKeys;

    /// Issue 11, item 5: a pass that checkpoints plans what a checkpoint
    /// holds (the staged rows and the gate sample copied for the write)
    /// within the budget, staging fewer rows than one without checkpoints
    /// when the budget binds (2 × 4096 pixels, 2 GiB, as reported).
    #[test]
    fn checkpointing_is_planned_within_the_budget() {
        let opts = AccumulateOptions {
            mem_budget: Some(2 << 30),
            gate_sample: 1000,
            ..Default::default()
        };
        let with = MemoryPlan::new(&opts, 4096, true).unwrap();
        let without = MemoryPlan::new(&opts, 4096, false).unwrap();
        assert!(with.total() <= 2 << 30, "{with:?}");
        assert!(without.total() <= 2 << 30, "{without:?}");
        let staged = (with.accumulators * with.block_rows * 4096 * 8) as u64;
        let sample = Reservoir::max_bytes(1000, 4096);
        assert!(with.write_bytes >= staged + sample, "{with:?}");
        assert!(with.block_rows * with.accumulators <= without.block_rows * without.accumulators);
    }

    #[test]
    fn the_pass_from_memory_equals_sums_by_hand() {
        let noise = NoiseModel::new(1.0, 5).unwrap();
        for (case, (p, sizes, folds)) in [
            (3usize, vec![40usize], 1usize),
            (7, vec![300, 7], 3),
            (16, vec![1, 260, 90], 2),
        ]
        .into_iter()
        .enumerate()
        {
            let set =
                PartitionSet::new(vec![Partition::teff_mh(), Partition::snr()], folds).unwrap();
            for mode in [Mode::Cells, Mode::PerBin] {
                let opts = AccumulateOptions {
                    partitions: set.clone(),
                    noise,
                    threads: Threads::ONE,
                    chunk_rows: Some(13),
                    block_rows: Some(5),
                    mem_budget: Some(1 << 30),
                    mode: Some(mode),
                    gate_sample: 17,
                    ..Default::default()
                };
                let srcs = sources(case as u64, &sizes, p);
                let out =
                    accumulate_sources(srcs.clone(), fingerprints(&sizes), &opts, None, &|_| {})
                        .unwrap();
                let (header, stats, reservoir) = out.into_stats(Threads::ONE);
                let total: usize = sizes.iter().sum();
                assert_eq!(header.rows, total as u64);
                assert_eq!(reservoir.len(), 17.min(total));
                // The shift: the mean of the first 256 noisy rows of the first source.
                let first = sizes[0].min(SHIFT_ROWS);
                let mut c = Chunk::default();
                srcs[0].clone().read_chunk(0..first, &mut c).unwrap();
                RowSpec::draw(noise).prepare(&mut c);
                for i in 0..p {
                    let m = (0..first).map(|r| c.flux_row(r)[i]).sum::<f64>() / first as f64;
                    close(header.shift_x[i], m, 1.0, "shift");
                }
                let want = naive(&srcs, &set, noise, (&header.shift_x, header.shift_y));
                // Per (partition, slot, fold): the accumulator, or the sum of
                // the cells that refine it.
                for (pi, part) in set.partitions.iter().enumerate() {
                    for slot in 0..part.slots() {
                        for fold in 0..folds {
                            let mut got = SuffStats::zeros(p);
                            match mode {
                                Mode::PerBin => {
                                    got = stats[set.per_bin_index(pi, slot, fold)].clone();
                                }
                                Mode::Cells => {
                                    for (cell, s) in stats.iter().enumerate() {
                                        let (slots, f) = set.cell_parts(cell);
                                        if slots[pi] == slot && f == fold {
                                            got.add(s).unwrap();
                                        }
                                    }
                                }
                            }
                            let w = &want[pi][slot][fold];
                            let what = format!(
                                "case {case} {mode:?} partition {pi} slot {slot} fold {fold}"
                            );
                            assert_eq!(got.n, w.n, "{what}");
                            let scale = w.n as f64;
                            close(got.sum_y, w.sum_y, scale, &what);
                            close(got.sum_yy, w.sum_yy, scale, &what);
                            let got_all = got.sum_x.iter().chain(&got.xty).chain(&got.xtx);
                            let want_all = w.sum_x.iter().chain(&w.xty).chain(&w.xtx);
                            for (g, v) in got_all.zip(want_all) {
                                close(*g, *v, scale, &what);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The same rows pushed in chunks of any size (smaller and larger than
    /// the shift's 256 rows, a first shard shorter than them) give the pull
    /// pass's statistics bit for bit: header, every accumulator, reservoir.
    #[test]
    fn pushed_rows_give_the_pulled_statistics_bit_for_bit() {
        use super::super::push::{PushPass, PushRows};
        let noise = NoiseModel::new(1.0, 9).unwrap();
        let set = PartitionSet::new(vec![Partition::teff_mh(), Partition::snr()], 3).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (case, (p, sizes, pieces)) in [
            (5usize, vec![300usize, 40], vec![1usize, 7, 256, 100]),
            (9, vec![100, 260, 3], vec![31]),
            (4, vec![700], vec![700]),
        ]
        .into_iter()
        .enumerate()
        {
            for mode in [Mode::Cells, Mode::PerBin] {
                let opts = AccumulateOptions {
                    partitions: set.clone(),
                    noise,
                    threads: Threads::ONE,
                    block_rows: Some(6),
                    mem_budget: Some(1 << 30),
                    mode: Some(mode),
                    gate_sample: 23,
                    first_shard_index: 4,
                    ..Default::default()
                };
                let srcs = sources(10 + case as u64, &sizes, p);
                let pulled: Vec<MemorySource> = srcs
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let mut c = Chunk::default();
                        s.clone().read_chunk(0..s.rows(), &mut c).unwrap();
                        MemorySource::new(4 + i as u64, p, c.flux, Some(c.error), c.params, 3)
                            .unwrap()
                    })
                    .collect();
                let mut prints = fingerprints(&sizes);
                prints.iter_mut().for_each(|f| f.index += 4);
                let want = accumulate_sources(pulled, prints, &opts, None, &|_| {}).unwrap();
                let mut push = PushPass::new(&opts, p).unwrap();
                for (i, s) in srcs.iter().enumerate() {
                    if i > 0 {
                        push.next_shard().unwrap();
                    }
                    let mut c = Chunk::default();
                    s.clone().read_chunk(0..s.rows(), &mut c).unwrap();
                    let (mut r, mut k) = (0, 0);
                    while r < c.rows {
                        let n = pieces[k % pieces.len()].min(c.rows - r);
                        let col =
                            |j: usize| (r..r + n).map(|i| c.params[3 * i + j]).collect::<Vec<_>>();
                        push.push(PushRows {
                            flux: &c.flux[r * p..(r + n) * p],
                            error: Some(&c.error[r * p..(r + n) * p]),
                            teff: &col(0),
                            mh: &col(1),
                            log_g: &col(2),
                        })
                        .unwrap();
                        (r, k) = (r + n, k + 1);
                    }
                }
                let got = push.finish().unwrap();
                let what = format!("case {case} {mode:?}");
                let (gh, gs, gr) = got.into_stats(Threads::ONE);
                let (wh, ws, wr) = want.into_stats(Threads::ONE);
                assert_eq!(bits(&gh.shift_x), bits(&wh.shift_x), "{what}");
                assert_eq!(gh.shift_y.to_bits(), wh.shift_y.to_bits(), "{what}");
                assert_eq!((gh.rows, gh.skipped), (wh.rows, wh.skipped), "{what}");
                let rows: Vec<(u64, u64)> = gh.shards.iter().map(|f| (f.index, f.rows)).collect();
                let want_rows: Vec<(u64, u64)> =
                    wh.shards.iter().map(|f| (f.index, f.rows)).collect();
                assert_eq!(rows, want_rows, "{what}");
                assert_eq!(gs.len(), ws.len(), "{what}");
                for (a, (g, w)) in gs.iter().zip(&ws).enumerate() {
                    assert_eq!(g.n, w.n, "{what} accumulator {a}");
                    assert_eq!(
                        (bits(&g.sum_x), bits(&g.xty), bits(&g.xtx)),
                        (bits(&w.sum_x), bits(&w.xty), bits(&w.xtx)),
                        "{what} accumulator {a}"
                    );
                    assert_eq!(
                        (g.sum_y.to_bits(), g.sum_yy.to_bits()),
                        (w.sum_y.to_bits(), w.sum_yy.to_bits()),
                        "{what} accumulator {a}"
                    );
                }
                assert_eq!((&gr.keys, &gr.origin), (&wr.keys, &wr.origin), "{what}");
                assert_eq!(bits(&gr.x), bits(&wr.x), "{what}");
            }
        }
    }

    /// Pushed rows are checked like a shard's: shapes, values, the error
    /// array the noise needs; each refusal names the pushed shard and row.
    #[test]
    fn pushed_rows_are_checked_like_a_shards() {
        use super::super::push::{PushPass, PushRows};
        let opts = AccumulateOptions {
            threads: Threads::ONE,
            mem_budget: Some(1 << 30),
            ..Default::default()
        };
        let mut push = PushPass::new(&opts, 3).unwrap();
        let rows = |flux: &'static [f64], error: Option<&'static [f64]>| PushRows {
            flux,
            error,
            teff: &[5000.0, 5000.0],
            mh: &[0.0, 0.0],
            log_g: &[3.0, 3.0],
        };
        let e = push
            .push(rows(&[1.0, 2.0, 3.0, 4.0, f64::NAN, 6.0], Some(&[0.1; 6])))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "<pushed rows, shard 0>: flux: row 1, column pixel 1: non-finite flux NaN"
        );
        let e = push.push(rows(&[1.0; 6], None)).unwrap_err();
        assert!(
            matches!(e, Error::InvalidParameter { name: "error", .. }),
            "{e}"
        );
        let e = push.push(rows(&[1.0; 5], Some(&[0.1; 5]))).unwrap_err();
        assert!(matches!(e, Error::Shape { .. }), "{e}");
        push.push(rows(&[1.0; 6], Some(&[0.1; 6]))).unwrap();
        let e = push.push(rows(&[1.0; 6], Some(&[-0.1; 6]))).unwrap_err();
        assert!(
            e.to_string()
                .contains("row 2, column pixel 0: negative error"),
            "{e}"
        );
    }

    /// The tree experts' rows: every binned row of the experts' partition
    /// kept in its bin (none of the unbinned), the same rows, codes and
    /// targets for any thread count and chunking; a cap keeps each bin's
    /// smallest keys among them.
    #[test]
    fn expert_rows_are_every_binned_row_for_any_threads_and_chunks() {
        use crate::experts::dataset::{CodedRows, ExpertDataset};
        let noise = NoiseModel::new(0.7, 11).unwrap();
        let sizes = [120, 33];
        let run = |threads: usize, chunk: usize, cap: usize| {
            let opts = AccumulateOptions {
                partitions: PartitionSet::new(vec![Partition::snr(), Partition::teff_mh()], 2)
                    .unwrap(),
                noise,
                threads: Threads::new(threads),
                chunk_rows: Some(chunk),
                block_rows: Some(8),
                mem_budget: Some(1 << 30),
                mode: Some(Mode::PerBin),
                experts: Some(ExpertFeed {
                    partition: 1,
                    rows_per_bin: Some(cap),
                    boundary_rows: 50,
                }),
                ..Default::default()
            };
            let mut out = accumulate_sources(
                sources(9, &sizes, 24),
                fingerprints(&sizes),
                &opts,
                None,
                &|_| {},
            )
            .unwrap();
            // A cap above the pass's rows is lowered to them.
            assert_eq!(out.summary.plan.expert_rows_per_bin, cap.min(153));
            let rows: Vec<CodedRows> = out.experts.take().unwrap().into_rows();
            let (header, stats, _) = out.into_stats(Threads::ONE);
            (header, stats, rows)
        };
        let (header, stats, all) = run(1, 256, 1000);
        let set = &header.partitions;
        let bins = set.partitions[1].bins();
        assert_eq!(all.len(), bins);
        for (b, rows) in all.iter().enumerate() {
            // The bin's rows over both folds, from the statistics.
            let n: u64 = (0..set.folds)
                .map(|k| {
                    let a = set.per_bin_index(1, b, k);
                    stats[a].n
                })
                .sum();
            assert_eq!(rows.len() as u64, n, "bin {b}");
        }
        let kept: usize = all.iter().map(CodedRows::len).sum();
        assert!(
            kept > 0 && (kept as u64) < header.rows,
            "{kept} of {}",
            header.rows
        );
        for (threads, chunk) in [(2, 256), (1, 1), (2, 7)] {
            let (_, _, other) = run(threads, chunk, 1000);
            for (a, b) in all.iter().zip(&other) {
                assert!(
                    a.origin() == b.origin()
                        && a.codes() == b.codes()
                        && a.targets() == b.targets(),
                    "threads {threads}, chunk {chunk}"
                );
            }
        }
        let (_, _, capped) = run(2, 7, 5);
        for (a, c) in all.iter().zip(&capped) {
            let mut keys: Vec<(u64, (u64, u64))> = a
                .origin()
                .iter()
                .map(|&(s, r)| (ExpertDataset::key(11, s, r), (s, r)))
                .collect();
            keys.sort_unstable();
            let want: Vec<(u64, u64)> = keys.iter().take(5).map(|k| k.1).collect();
            assert_eq!(c.origin(), &want[..]);
            // Rows evicted within a chunk leave no trace: each kept row has
            // its own codes and target.
            let p = c.pixels();
            for (i, o) in c.origin().iter().enumerate() {
                let j = a.origin().iter().position(|x| x == o).unwrap();
                assert_eq!(c.codes()[i * p..(i + 1) * p], a.codes()[j * p..(j + 1) * p]);
                assert_eq!(c.targets()[i], a.targets()[j]);
            }
        }
    }

    /// Without a cap the planner gives the experts what the budget leaves,
    /// and says so when it leaves too little.
    #[test]
    fn the_planner_sets_the_expert_cap_from_the_budget() {
        let p = 64;
        let mut opts = AccumulateOptions {
            partitions: PartitionSet::new(vec![Partition::teff_mh()], 2).unwrap(),
            mem_budget: Some(1 << 30),
            experts: Some(ExpertFeed {
                partition: 0,
                rows_per_bin: None,
                boundary_rows: 100,
            }),
            ..Default::default()
        };
        let plan = MemoryPlan::new(&opts, p, false).unwrap();
        let mut without = opts.clone();
        without.experts = None;
        let base = MemoryPlan::new(&without, p, false).unwrap();
        let fixed = opts.experts.as_ref().unwrap().fixed_bytes(p);
        let per_row = 9 * ExpertDataset::max_bytes(1, p);
        let want = ((1u64 << 30) - base.total() - fixed) / per_row;
        assert_eq!(plan.expert_rows_per_bin as u64, want);
        assert!(plan.total() <= 1 << 30);
        // An explicit cap beyond the budget: refused with the arithmetic.
        opts.experts.as_mut().unwrap().rows_per_bin = Some(10_000_000);
        let e = MemoryPlan::new(&opts, p, false).unwrap_err().to_string();
        assert!(
            e.contains("tree experts' rows") && e.contains("9 bins × 10000000 rows"),
            "{e}"
        );
        // Too little left for the minimum beside the one plan allowed:
        // refused, naming it.
        opts.experts.as_mut().unwrap().rows_per_bin = None;
        (opts.mode, opts.block_rows) = (Some(base.mode), Some(base.block_rows));
        opts.mem_budget = Some(base.total() + fixed + per_row * 10);
        let e = MemoryPlan::new(&opts, p, false).unwrap_err().to_string();
        assert!(
            e.contains(&format!("at least {MIN_EXPERT_ROWS} rows per bin")),
            "{e}"
        );
    }

    /// A cancel from another thread (here: the progress callback after the
    /// first chunk) stops the pass at the next chunk with `Cancelled`.
    #[test]
    fn a_cancelled_pass_stops_at_the_next_chunk() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let cancel = Cancel::default();
        let opts = AccumulateOptions {
            threads: Threads::ONE,
            chunk_rows: Some(50),
            mem_budget: Some(1 << 30),
            cancel: cancel.clone(),
            ..Default::default()
        };
        let seen = AtomicU64::new(0);
        let result = accumulate_sources(
            sources(3, &[300, 300], 4),
            fingerprints(&[300, 300]),
            &opts,
            None,
            &|n| {
                if n > 0 {
                    seen.fetch_add(n, Ordering::Relaxed);
                    cancel.cancel();
                }
            },
        );
        assert!(
            matches!(result, Err(Error::Cancelled)),
            "{:?}",
            result.map(|_| ())
        );
        assert_eq!(seen.load(Ordering::Relaxed), 50);
    }

    /// Rows in memory bypass the reader's magnitude check: the pass's own
    /// check of the accumulators after each chunk names the overflow.
    #[test]
    fn non_finite_sums_from_memory_are_refused() {
        let p = 4;
        let mut flux = vec![1.0; 300 * p];
        // After the shift's first 256 rows, so that only this row overflows.
        flux[283 * p + 2] = 1e200;
        let src = MemorySource::new(
            0,
            p,
            flux,
            Some(vec![0.1; 300 * p]),
            [4500.0, -0.5, 3.0].repeat(300),
            3,
        )
        .unwrap();
        let opts = AccumulateOptions {
            partitions: PartitionSet::new(vec![Partition::teff_mh()], 1).unwrap(),
            noise: NoiseModel::new(0.0, 1).unwrap(),
            threads: Threads::ONE,
            chunk_rows: Some(10),
            block_rows: Some(4),
            mem_budget: Some(1 << 30),
            ..Default::default()
        };
        let err = accumulate_sources(vec![src], fingerprints(&[300]), &opts, None, &|_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("<memory source 0>") && err.contains("is not finite"),
            "{err}"
        );
        assert!(
            err.contains("row 289"),
            "the end of the chunk that overflowed: {err}"
        );
    }

    #[test]
    fn any_thread_count_and_chunking_give_the_same_bits() {
        let noise = NoiseModel::new(0.7, 11).unwrap();
        let sizes = [120, 33];
        let run = |threads: usize, chunk: usize| {
            let opts = AccumulateOptions {
                partitions: PartitionSet::new(vec![Partition::teff_mh(), Partition::snr()], 2)
                    .unwrap(),
                noise,
                threads: Threads::new(threads),
                chunk_rows: Some(chunk),
                block_rows: Some(8),
                mem_budget: Some(1 << 30),
                gate_sample: 10,
                ..Default::default()
            };
            let out = accumulate_sources(
                sources(9, &sizes, 24),
                fingerprints(&sizes),
                &opts,
                None,
                &|_| {},
            )
            .unwrap();
            let (_, stats, reservoir) = out.into_stats(Threads::new(threads));
            (stats, reservoir.x)
        };
        let one = run(1, 256);
        for (threads, chunk) in [(2, 256), (1, 1), (2, 7)] {
            let other = run(threads, chunk);
            assert!(one == other, "threads {threads}, chunk {chunk}");
        }
    }
}
