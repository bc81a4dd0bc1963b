//! The accumulating pass: reader → noise → partition → staging → Gram.
//!
//! One pass over the shards leaves, for every accumulator (a cell of the
//! common refinement, or a (partition, bin, fold)), the sums of
//! [`SuffStats`], plus the gate's [`Reservoir`].
//!
//! * **Reading overlaps computing**: a [`Prefetcher`] thread reads ahead.
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
use super::{Accumulator, Cursor, Mode, Reservoir, ShardFingerprint, StatsHeader, SuffStats};
use crate::noise::NoiseModel;
use crate::partition::{fold_of, PartitionSet, RowKeys};
use crate::source::{
    Chunk, ChunkSource, NonFinitePolicy, Prefetcher, ReadOptions, ReadPath, Shard, ShardReader,
    Spectra,
};
use crate::{Error, Layout, Result};

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
    /// Threads for noise and the Gram kernel (0 = all cores).
    pub threads: usize,
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
    /// Read path.
    pub read_path: ReadPath,
    /// Shard index of the first shard (the others follow in order). Shard
    /// indices key the noise, fold and reservoir streams: a run split over
    /// nodes gives each part the indices its shards have in the whole list,
    /// so that merging the parts reproduces the single run.
    pub first_shard_index: u64,
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
            threads: 0,
            chunk_rows: None,
            block_rows: None,
            mem_budget: None,
            mode: None,
            gate_sample: 0,
            non_finite: NonFinitePolicy::Error,
            read_path: ReadPath::Auto,
            first_shard_index: 0,
        }
    }
}

/// Checkpointing of a pass.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// The checkpoint file.
    pub path: PathBuf,
    /// Time between checkpoints.
    pub every: Duration,
    /// Continue from the checkpoint at `path` if it exists.
    pub resume: bool,
}

/// How the pass will use memory: chosen before any work.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MemoryPlan {
    /// Accumulator keying.
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
    /// Fixed overhead (binary, libhdf5, kernel scratch).
    pub overhead_bytes: u64,
    /// The budget planned against.
    pub budget: u64,
}

/// Fixed overhead: the binary and libhdf5, OpenBLAS's per-thread packing
/// buffers, allocator slack. Set from measurement: with 70 accumulators at
/// P = 4096 the pass's peak RSS exceeded the sum of the other terms by
/// ~0.3 GiB (README, "Memory"); 512 MiB keeps the plan an upper bound.
const OVERHEAD: u64 = 512 << 20;

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
}

impl MemoryPlan {
    /// Total planned bytes.
    pub fn total(&self) -> u64 {
        self.accumulator_bytes
            + self.reader_bytes
            + self.reservoir_bytes
            + self.write_bytes
            + self.overhead_bytes
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
            write_bytes: (super::packed_len(p) * 8 * 2) as u64
                + if checkpoint {
                    stage + Reservoir::max_bytes(opts.gate_sample, p)
                } else {
                    0
                },
            overhead_bytes: OVERHEAD,
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
            Some(b) => vec![b.max(1)],
            None => vec![256, 128, 64],
        };
        let mut smallest: Option<MemoryPlan> = None;
        for &mode in modes {
            for &block in &blocks {
                let plan = Self::with(opts, pixels, mode, block, checkpoint, budget);
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
                 accumulators {} + reader {} + reservoir {} + write/checkpoint {} + overhead {} = {}; \
                 raise --mem-budget, or lower --gate-sample, --folds or the number of partitions",
                gib(budget),
                s.mode,
                s.accumulators,
                s.block_rows,
                gib(s.accumulator_bytes),
                gib(s.reader_bytes),
                gib(s.reservoir_bytes),
                gib(s.write_bytes),
                gib(s.overhead_bytes),
                gib(s.total())
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
pub fn peak_rss() -> Option<u64> {
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
    /// Rows skipped.
    pub skipped: u64,
    /// Rows processed by this run.
    pub rows_this_run: u64,
    /// Bytes of spectra decoded by this run.
    pub bytes_this_run: u64,
    /// Wall time of this run (s).
    pub seconds: f64,
    /// Gram flops of this run (rows × P² per update).
    pub flops_this_run: f64,
    /// The memory plan.
    pub plan: MemoryPlan,
    /// Checkpoints written.
    pub checkpoints: usize,
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
    /// The gate's sample.
    pub reservoir: Reservoir,
    /// What the run did.
    pub summary: PassSummary,
}

impl PassOutput {
    /// Writes the statistics atomically, finishing (and dropping) one
    /// accumulator at a time so memory does not double.
    pub fn write(self, path: &Path, threads: usize) -> Result<PassSummary> {
        let par = par_of(threads);
        let mut accs = self
            .accumulators
            .into_iter()
            .map(move |mut a| Ok(a.finish(par)));
        write_stats(path, &self.header, &mut accs, &self.reservoir, None)?;
        Ok(self.summary)
    }

    /// The finished statistics of every accumulator (small P: tests, examples).
    pub fn into_stats(self, threads: usize) -> (StatsHeader, Vec<SuffStats>, Reservoir) {
        let par = par_of(threads);
        let stats = self
            .accumulators
            .into_iter()
            .map(|mut a| a.finish(par))
            .collect();
        (self.header, stats, self.reservoir)
    }
}

fn par_of(threads: usize) -> Par {
    if threads == 1 {
        Par::Seq
    } else {
        Par::rayon(threads)
    }
}

/// The gate sample while the pass runs: the `capacity` rows with the
/// smallest keys, in one slab allocated once (`capacity × P`), an evicted
/// row's place reused by the row that replaces it. No allocation per row and
/// no copy at the end: measured, a heap of one vector per row plus the final
/// copy took 0.86 GiB more than the sample (20,000 rows at P = 4096).
#[derive(Debug, Default)]
struct Sample {
    capacity: usize,
    pixels: usize,
    /// Max-heap of (key, origin, slot): the top is the row to evict next.
    heap: BinaryHeap<(u64, (u64, u64), usize)>,
    /// Row `slot` at `slot·P`.
    x: Vec<f64>,
    params: Vec<[f64; 4]>,
}

impl Sample {
    fn new(capacity: usize, pixels: usize) -> Sample {
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
    fn offer(&mut self, key: u64, origin: (u64, u64), x: &[f64], params: [f64; 4]) {
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
    fn snapshot(&self) -> Reservoir {
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
    fn into_reservoir(self) -> Reservoir {
        let p = self.pixels;
        let order = self.sorted();
        let n = order.len();
        let mut x = self.x;
        // Position i receives the row in slot order[i].2: follow each cycle.
        let from: Vec<usize> = order.iter().map(|e| e.2).collect();
        let mut placed = vec![false; n];
        let mut spare = vec![0.0; p];
        for start in 0..n {
            if placed[start] {
                continue;
            }
            if from[start] == start {
                placed[start] = true;
                continue;
            }
            spare.copy_from_slice(&x[start * p..(start + 1) * p]);
            let mut i = start;
            loop {
                placed[i] = true;
                let src = from[i];
                if src == start {
                    x[i * p..(i + 1) * p].copy_from_slice(&spare);
                    break;
                }
                x.copy_within(src * p..(src + 1) * p, i * p);
                i = src;
            }
        }
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
    fn from_reservoir(res: Reservoir, capacity: usize) -> Sample {
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
struct State<'a> {
    opts: &'a AccumulateOptions,
    plan: MemoryPlan,
    header: StatsHeader,
    accs: Vec<Accumulator>,
    sample: Sample,
    par: Par,
    slots: Vec<usize>,
    snr: Vec<f64>,
    paths: Vec<PathBuf>,
}

impl State<'_> {
    fn bad_snr(&self, chunk: &Chunk, r: usize) -> Error {
        Error::BadValue {
            path: self.paths[(chunk.shard - self.opts.first_shard_index) as usize].clone(),
            dataset: self.opts.layout.error.clone(),
            row: chunk.start + r,
            column: "snr".into(),
            problem: format!(
                "SNR is not finite ({}): flux and error are all zero?",
                self.snr[r]
            ),
        }
    }

    /// Noise, routing and staging of one chunk.
    fn absorb(&mut self, chunk: &mut Chunk) -> Result<()> {
        let noise = self.header.noise;
        let (shard, start) = (chunk.shard, chunk.start as u64);
        std::mem::swap(&mut self.snr, &mut chunk.row_values);
        let set = &self.header.partitions;
        let (seed, folds) = (noise.seed, set.folds);
        for r in 0..chunk.rows {
            if chunk.skip[r] {
                self.header.skipped += 1;
                continue;
            }
            let prm = chunk.params_row(r);
            let keys = RowKeys {
                teff: prm[0],
                mh: prm[1],
                snr: self.snr[r],
            };
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
            let y = prm[2] - self.header.shift_y;
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
            if self.opts.gate_sample > 0 {
                self.sample.offer(
                    Reservoir::key(seed, shard, row),
                    (shard, row),
                    x,
                    [prm[0], prm[1], prm[2], self.snr[r]],
                );
            }
            self.header.rows += 1;
        }
        Ok(())
    }

    fn checkpoint(&self, path: &Path, source: usize, row: usize) -> Result<()> {
        let mut staged = Vec::with_capacity(self.accs.len());
        let mut stats = Vec::with_capacity(self.accs.len());
        for a in &self.accs {
            let (s, x, y) = a.snapshot();
            stats.push(s);
            staged.push((x, y));
        }
        let cursor = Cursor {
            source,
            row,
            staged,
            block_rows: self.plan.block_rows,
        };
        let reservoir = self.sample.snapshot();
        let mut it = stats.into_iter().map(Ok);
        write_stats(path, &self.header, &mut it, &reservoir, Some(&cursor))
    }
}

/// Runs the pass over `shards` (shard index = `first_shard_index` + position).
pub fn accumulate(
    shards: &[PathBuf],
    opts: &AccumulateOptions,
    checkpoint: Option<&CheckpointOptions>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PassOutput> {
    let start = Instant::now();
    if shards.is_empty() {
        return Err(Error::InvalidParameter {
            name: "shards",
            problem: "no shard given".into(),
        });
    }
    let cols = &opts.layout.columns;
    let read = ReadOptions {
        spectra: Spectra::FluxError,
        columns: vec![cols.teff.clone(), cols.mh.clone(), cols.log_g.clone()],
        path: opts.read_path,
        non_finite: opts.non_finite,
    };
    let mut opened = Vec::with_capacity(shards.len());
    let mut fingerprints = Vec::with_capacity(shards.len());
    for (i, path) in shards.iter().enumerate() {
        let shard = Shard::open(path, &opts.layout)?;
        if shard.pixels()
            != opened
                .first()
                .map_or(shard.pixels(), |s: &Shard| s.pixels())
        {
            return Err(Error::Layout {
                path: path.clone(),
                dataset: opts.layout.flux.clone(),
                expected: format!("{} pixels like {}", opened[0].pixels(), shards[0].display()),
                found: format!("{} pixels", shard.pixels()),
            });
        }
        fingerprints.push(ShardFingerprint::of(
            path,
            opts.first_shard_index + i as u64,
            shard.rows() as u64,
        )?);
        opened.push(shard);
    }
    let pixels = opened[0].pixels();
    let plan = MemoryPlan::new(opts, pixels, checkpoint.is_some())?;
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    };
    super::gram::init();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Worker(format!("thread pool: {e}")))?;
    let par = par_of(threads);

    let resume = match checkpoint {
        Some(c) if c.resume && c.path.exists() => Some(StatsFile::open(&c.path)?),
        _ => None,
    };
    let (header, accs, sample, cursor) = match resume {
        Some(file) => {
            let ckpt_path = &checkpoint.map(|c| c.path.clone()).unwrap_or_default();
            let refuse = |why: String| Error::Layout {
                path: ckpt_path.clone(),
                dataset: "/".into(),
                expected: "a checkpoint of this same run".into(),
                found: why,
            };
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
                    "a different configuration (pixels, noise, seed, partitions, folds or layout)"
                        .into(),
                ));
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
            let mut accs = Vec::with_capacity(plan.accumulators);
            for (a, (sx, sy)) in cursor.staged.iter().enumerate() {
                accs.push(Accumulator::restore(
                    &file.accumulator(a)?,
                    sx,
                    sy,
                    plan.block_rows,
                )?);
            }
            if accs.len() != plan.accumulators {
                return Err(refuse(format!(
                    "{} accumulators, expected {}",
                    accs.len(),
                    plan.accumulators
                )));
            }
            let sample = Sample::from_reservoir(file.reservoir()?, opts.gate_sample);
            (h, accs, sample, Some((cursor.source, cursor.row)))
        }
        None => {
            let (shift_x, shift_y) =
                shift_of(&opened[0], opts.first_shard_index, &read, &opts.noise)?;
            let header = StatsHeader {
                pixels,
                noise: opts.noise,
                partitions: opts.partitions.clone(),
                mode: plan.mode,
                layout: opts.layout.clone(),
                shards: fingerprints,
                shift_x,
                shift_y,
                rows: 0,
                skipped: 0,
            };
            let accs = (0..plan.accumulators)
                .map(|_| Accumulator::new(pixels, plan.block_rows))
                .collect();
            (header, accs, Sample::new(opts.gate_sample, pixels), None)
        }
    };
    let resumed = cursor.is_some();
    let (from_source, from_row) = cursor.unwrap_or((0, 0));

    // Readers from the cursor on: rows before it are done.
    let mut readers: Vec<Offset<ShardReader>> = Vec::new();
    for (i, shard) in opened.iter().enumerate().skip(from_source) {
        let first = if i == from_source { from_row } else { 0 };
        readers.push(Offset {
            inner: shard.reader(opts.first_shard_index + i as u64, &read)?,
            first,
            index: opts.first_shard_index + i as u64,
        });
    }
    let done_before: usize = opened[..from_source.min(opened.len())]
        .iter()
        .map(Shard::rows)
        .sum::<usize>()
        + from_row;
    progress(done_before as u64);
    let mut state = State {
        opts,
        plan: plan.clone(),
        header,
        accs,
        sample,
        par,
        slots: vec![0; opts.partitions.partitions.len()],
        snr: Vec::new(),
        paths: shards.to_vec(),
    };
    let updates_per_row = match plan.mode {
        Mode::Cells => 1.0,
        Mode::PerBin => opts.partitions.partitions.len() as f64,
    };
    let (mut rows_this_run, mut bytes_this_run, mut checkpoints) = (0u64, 0u64, 0usize);
    let mut last_checkpoint = Instant::now();
    let noise = opts.noise;
    pool.install(|| -> Result<()> {
        // SNR and noise run in the reader thread, overlapping the Gram
        // updates (in the main thread they left a core idle: perf).
        let mut pre =
            Prefetcher::spawn_with(readers, plan.chunk_rows, plan.prefetch, move |chunk| {
                snr_and_noise(chunk, &noise)
            })?;
        while let Some(chunk) = pre.next() {
            let mut chunk = chunk?;
            state.absorb(&mut chunk)?;
            rows_this_run += chunk.rows as u64;
            bytes_this_run += chunk.spectra_bytes() as u64;
            progress(chunk.rows as u64);
            if let Some(c) = checkpoint {
                let next_row = chunk.start + chunk.rows;
                if last_checkpoint.elapsed() >= c.every {
                    let pos = (chunk.shard - opts.first_shard_index) as usize;
                    let (src, row) = if next_row >= opened[pos].rows() {
                        (pos + 1, 0)
                    } else {
                        (pos, next_row)
                    };
                    state.checkpoint(&c.path, src, row)?;
                    checkpoints += 1;
                    last_checkpoint = Instant::now();
                }
            }
            pre.recycle(chunk);
        }
        // Fold the rows still staged into the sums now, so the pass's figures
        // include all of its Gram work (finishing would flush them anyway, in
        // the same order: the bits do not change).
        for acc in &mut state.accs {
            acc.flush(state.par);
        }
        Ok(())
    })?;
    let reservoir = std::mem::take(&mut state.sample).into_reservoir();
    let seconds = start.elapsed().as_secs_f64();
    let summary = PassSummary {
        rows: state.header.rows,
        skipped: state.header.skipped,
        rows_this_run,
        bytes_this_run,
        seconds,
        flops_this_run: rows_this_run as f64 * (pixels * pixels) as f64 * updates_per_row,
        plan,
        checkpoints,
        resumed,
        peak_rss: peak_rss(),
    };
    Ok(PassOutput {
        header: state.header,
        accumulators: state.accs,
        reservoir,
        summary,
    })
}

/// Per row: SNR = ‖flux‖₂ / (L‖error‖₂) of the noiseless flux into
/// `chunk.row_values`, then the noise.
fn snr_and_noise(chunk: &mut Chunk, noise: &NoiseModel) {
    let p = chunk.pixels;
    let l = if noise.level > 0.0 { noise.level } else { 1.0 };
    chunk.row_values.clear();
    for r in 0..chunk.rows {
        let f = chunk.flux_row(r);
        let e = &chunk.error[r * p..(r + 1) * p];
        let nf = f.iter().map(|v| v * v).sum::<f64>().sqrt();
        let ne = e.iter().map(|v| v * v).sum::<f64>().sqrt();
        chunk.row_values.push(nf / (l * ne));
    }
    noise.apply_rows(
        chunk.shard,
        chunk.start as u64,
        p,
        &mut chunk.flux,
        &chunk.error,
        false,
    );
}

/// The shift: mean of the first [`SHIFT_ROWS`] usable rows of the first
/// shard, noise included — independent of chunk size and thread count.
fn shift_of(
    shard: &Shard,
    index: u64,
    read: &ReadOptions,
    noise: &NoiseModel,
) -> Result<(Vec<f64>, f64)> {
    let mut reader = shard.reader(index, read)?;
    let n = shard.rows().min(SHIFT_ROWS);
    let mut chunk = Chunk::default();
    reader.read_chunk(0..n, &mut chunk)?;
    let p = chunk.pixels;
    noise.apply_rows(index, 0, p, &mut chunk.flux, &chunk.error, false);
    let (mut sx, mut sy, mut k) = (vec![0.0; p], 0.0, 0usize);
    for r in 0..chunk.rows {
        if chunk.skip[r] {
            continue;
        }
        for (s, v) in sx.iter_mut().zip(chunk.flux_row(r)) {
            *s += v;
        }
        sy += chunk.params_row(r)[2];
        k += 1;
    }
    if k > 0 {
        sx.iter_mut().for_each(|s| *s /= k as f64);
        sy /= k as f64;
    }
    Ok((sx, sy))
}

/// A source that starts at row `first` (resume): rows before it are not read.
struct Offset<S> {
    inner: S,
    first: usize,
    index: u64,
}

impl<S: ChunkSource> ChunkSource for Offset<S> {
    fn rows(&self) -> usize {
        self.inner.rows().saturating_sub(self.first)
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
}
