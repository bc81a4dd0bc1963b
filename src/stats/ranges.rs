//! The pass in fixed row ranges: statistics whose bits do not depend on how
//! many processes computed them.
//!
//! A floating-point sum depends on its order. The ordinary pass adds every
//! row to one running sum, so dividing its rows among processes would change
//! the bits. Here the rows are cut into fixed ranges — each shard into
//! ⌈rows / range_rows⌉ near-equal ranges, shard after shard
//! ([`row_ranges`]), a function of the shards and `range_rows` alone. Each
//! range is summed from zero by the ordinary machinery (same noise, checks,
//! staging and Gram kernel), and the range sums are added to the totals in
//! range order. Which process summed a range does not enter: with N
//! processes ([`Ranks`]), range i goes to rank i mod N, and rank 0 adds each
//! round's ranges in order — its own, then those it receives from ranks 1,
//! 2, … — and writes the file. One process is the case N = 1, so
//! `accumulate --range-rows R` gives the bits of `mpiexec -n N gramstream
//! accumulate` (default R) for any N. Against the ordinary pass the sums
//! differ only by rounding (≲ 1e-15 relative).
//!
//! **Failures.** Every step that can fail ends in a collective agreement
//! ([`agree`]): when any rank failed, every rank stops with the error of the
//! lowest failing rank (its text sent to all), so no rank waits forever and
//! nothing is written.
//!
//! **Memory** is the ordinary pass's plan plus the running totals (packed
//! sums of every accumulator and a second gate sample,
//! [`MemoryPlan::range_bytes`]); a rank sends its range's sums one
//! accumulator at a time, and rank 0 adds them as they arrive.
//!
//! **Checkpoints** (rank 0, between rounds) hold the totals and the next
//! range, nothing staged: a run resumes under any number of ranks.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::file::{write_stats, StatsFile};
use super::pass::{
    check_sources, checkpoint_of_this_run, new_header, not_this_run, open_shards, peak_rss,
    read_options, refuse_outputs, shift_of, AccumulateOptions, CheckpointOptions, Checkpoints,
    MemoryPlan, Offset, PassSummary, RunFigures, Sample, State,
};
use super::{Cursor, Mode, Reservoir, ShardFingerprint, StatsHeader, SuffStats, Sums};
use crate::rows::{RowSpec, RowStream};
use crate::source::{ChunkSource, Shard, ShardReader};
use crate::threads::Pool;

use super::ranks::{agree, Ranks};
use crate::{Error, Result};

/// Rows per range when none is given under MPI: 1M rows in five shards make
/// 20 ranges of 50,000 rows, enough for 20 ranks.
pub const DEFAULT_RANGE_ROWS: usize = 65_536;

/// Rows `rows` of the source at position `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRange {
    /// Position of the shard in the shard list.
    pub source: usize,
    /// Rows of that shard, 0-based, end exclusive.
    pub rows: Range<usize>,
}

/// The fixed ranges of shards of `rows` rows each: shard after shard, each
/// cut into ⌈rows / range_rows⌉ ranges whose sizes differ by at most one
/// row (so a 200,000-row shard and 65,536 make four of 50,000, not three of
/// 65,536 and a small one).
pub fn row_ranges(rows: &[usize], range_rows: usize) -> Vec<RowRange> {
    let mut out = Vec::new();
    for (source, &n) in rows.iter().enumerate() {
        let k = n.div_ceil(range_rows.max(1));
        out.extend((0..k).map(|j| RowRange {
            source,
            rows: j * n / k..(j + 1) * n / k,
        }));
    }
    out
}

/// The shards of a ranged pass: how to open each (a fresh reader per range)
/// and what is known of them before reading.
pub struct Inputs<S> {
    /// A reader of the source at a position in the list.
    pub open: Box<dyn Fn(usize) -> Result<S>>,
    /// Rows of each source.
    pub rows: Vec<usize>,
    /// Recorded in the header (and checked on resume), one per source.
    pub fingerprints: Vec<ShardFingerprint>,
    /// What errors call each source (its path).
    pub origins: Vec<PathBuf>,
}

/// The result of a ranged pass, on rank 0: write it with
/// [`RangedOutput::write`].
#[derive(Debug)]
pub struct RangedOutput {
    /// Configuration, provenance and row counts.
    pub header: StatsHeader,
    /// The totals, in accumulator order.
    pub sums: Vec<SuffStats>,
    /// The gate's sample.
    pub reservoir: Reservoir,
    /// What the run did, over all ranks (rows, bytes and flops of every
    /// rank; the peak RSS is the largest rank's).
    pub summary: PassSummary,
    /// Ranks that shared the ranges.
    pub ranks: usize,
    /// Ranges the rows were cut into.
    pub ranges: usize,
}

impl RangedOutput {
    /// Writes the statistics atomically.
    pub fn write(self, path: &Path) -> Result<RangedSummary> {
        let mut sums = self.sums.into_iter().map(|s| Ok(Sums::Packed(s)));
        write_stats(path, &self.header, &mut sums, &self.reservoir, None)?;
        Ok(RangedSummary {
            pass: self.summary,
            ranks: self.ranks,
            ranges: self.ranges,
        })
    }
}

/// What a ranged pass did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RangedSummary {
    /// Over all ranks (see [`RangedOutput::summary`]).
    pub pass: PassSummary,
    /// Ranks that shared the ranges.
    pub ranks: usize,
    /// Ranges the rows were cut into.
    pub ranges: usize,
}

impl std::fmt::Display for RangedSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n{} row ranges summed by {} rank(s) (peak RSS: the largest rank's)",
            self.pass, self.ranges, self.ranks
        )
    }
}

/// The running totals on rank 0.
struct Totals {
    sums: Vec<SuffStats>,
    rows: u64,
    skipped: u64,
    sample: Sample,
    /// Rows and bytes read by this run, all ranks.
    read_rows: u64,
    read_bytes: u64,
}

impl Totals {
    fn zeros(plan: &MemoryPlan, pixels: usize, gate_sample: usize) -> Totals {
        Totals {
            sums: (0..plan.accumulators)
                .map(|_| SuffStats::zeros(pixels))
                .collect(),
            rows: 0,
            skipped: 0,
            sample: Sample::new(gate_sample, pixels),
            read_rows: 0,
            read_bytes: 0,
        }
    }

    /// Adds one accumulator's range sums, refusing totals that overflowed.
    fn add(&mut self, a: usize, s: &SuffStats) -> Result<()> {
        self.sums[a].add(s)?;
        self.check(a)
    }

    /// Refuses totals that overflowed.
    fn check(&self, a: usize) -> Result<()> {
        let t = &self.sums[a];
        let finite = t.sum_y.is_finite()
            && t.sum_yy.is_finite()
            && t.sum_x.iter().chain(&t.xty).all(|v| v.is_finite());
        if finite {
            Ok(())
        } else {
            Err(Error::InvalidParameter {
                name: "shards",
                problem: format!(
                    "accumulator {a}'s totals are not finite: the flux values are too large to sum in f64"
                ),
            })
        }
    }

    fn add_sample(&mut self, r: &Reservoir) {
        for i in 0..r.len() {
            let x = &r.x[i * r.pixels..(i + 1) * r.pixels];
            self.sample.offer(r.keys[i], r.origin[i], x, r.params[i]);
        }
    }
}

/// What every rank knows before the first range.
struct Setup {
    plan: MemoryPlan,
    spec: RowSpec,
    header: StatsHeader,
    ranges: Vec<RowRange>,
    range_rows: usize,
    /// The first range this run sums (after a resume, the checkpoint's).
    first: usize,
    /// Rank 0: the totals so far.
    totals: Option<Totals>,
}

/// Runs the pass over `inputs` in fixed row ranges shared among `ranks`
/// (see the module docs); collective. Rank 0 gets the totals, the others
/// `None`. `opts.range_rows` must be set. `progress` is called on rank 0
/// with rows summed, by any rank.
pub fn accumulate_ranged<S: ChunkSource + 'static>(
    inputs: Inputs<S>,
    opts: &AccumulateOptions,
    checkpoint: Option<&CheckpointOptions>,
    ranks: &dyn Ranks,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Option<RangedOutput>> {
    let start = Instant::now();
    let setup = agree(ranks, setup(&inputs, opts, checkpoint, ranks.rank() == 0))?;
    let mut setup = same_everywhere(ranks, setup)?;
    let totals = setup.totals.take();
    let mine: Vec<usize> = (setup.first..setup.ranges.len())
        .filter(|i| (i - setup.first) % ranks.size() == ranks.rank())
        .collect();
    let windows = agree(ranks, windows(&inputs, &setup, &mine, opts))?;
    let resumed = setup.first > 0;
    // Messages go from this thread (MPI's "funneled" threading); the Gram
    // work runs in the pool, entered per chunk.
    let pool = agree(ranks, Pool::new(opts.threads))?;
    let stream = RowStream::new(
        windows,
        setup.spec,
        setup.plan.chunk_rows,
        setup.plan.prefetch,
    );
    let mut stream = agree(ranks, stream)?;
    let mut empty = setup.header.clone();
    (empty.rows, empty.skipped) = (0, 0);
    let mut state = State::fresh(opts, &setup.plan, empty, inputs.origins.clone());
    let mut rounds = Rounds {
        ranks,
        opts,
        setup: &setup,
        pool: &pool,
        checkpoints: checkpoint.map(|c| Checkpoints::new(c, inputs.rows.clone())),
        run: RunFigures::new(start, resumed),
        progress,
    };
    let output = rounds.all(&mut stream, &mut state, totals)?;
    let peak = ranks.max(peak_rss().unwrap_or(0));
    Ok(output.map(|mut o| {
        o.summary.peak_rss = Some(peak).filter(|&p| p > 0);
        o
    }))
}

/// The plan, shift, ranges and (rank 0) the resumed totals.
fn setup<S: ChunkSource>(
    inputs: &Inputs<S>,
    opts: &AccumulateOptions,
    checkpoint: Option<&CheckpointOptions>,
    rank0: bool,
) -> Result<Setup> {
    if opts.experts.is_some() {
        return Err(Error::InvalidParameter {
            name: "experts",
            problem: "a pass in ranges (MPI) cannot keep rows for tree experts yet: run the experiment in one process".into(),
        });
    }
    let range_rows = opts
        .range_rows
        .filter(|&r| r > 0)
        .ok_or_else(|| Error::InvalidParameter {
            name: "range-rows",
            problem: "a pass in ranges needs ranges of at least 1 row".into(),
        })?;
    let mut first = (inputs.open)(0)?;
    let pixels = check_sources(
        std::slice::from_ref(&first),
        &inputs.fingerprints[..1],
        opts,
    )?;
    crate::noise::shard_indices(opts.first_shard_index, inputs.rows.len())?;
    if inputs.fingerprints.len() != inputs.rows.len() {
        return Err(Error::shape(
            "shard fingerprints",
            format!("one per source ({})", inputs.rows.len()),
            inputs.fingerprints.len(),
        ));
    }
    let plan = MemoryPlan::new(opts, pixels, checkpoint.is_some())?;
    super::gram::init();
    let spec = RowSpec::draw(opts.noise);
    let shift = shift_of(&mut first, &spec)?;
    let mut header = new_header(opts, &plan, pixels, inputs.fingerprints.clone(), shift);
    let ranges = row_ranges(&inputs.rows, range_rows);
    let mut setup = Setup {
        plan,
        spec,
        header: header.clone(),
        ranges,
        range_rows,
        first: 0,
        totals: None,
    };
    if rank0 {
        let mut totals = Totals::zeros(&setup.plan, pixels, opts.gate_sample);
        if let Some(c) = checkpoint.filter(|c| c.resume && c.path.exists()) {
            let (h, first) = resume(&c.path, opts, &setup, &mut totals)?;
            header = h;
            setup.first = first;
        }
        setup.header = header;
        setup.totals = Some(totals);
    }
    Ok(setup)
}

/// Restores a checkpoint of this same ranged run into `totals`; returns
/// its header and the first range still to sum.
fn resume(
    path: &Path,
    opts: &AccumulateOptions,
    setup: &Setup,
    totals: &mut Totals,
) -> Result<(StatsHeader, usize)> {
    let file = StatsFile::open(path)?;
    let (h, cursor) = checkpoint_of_this_run(
        &file,
        path,
        opts,
        &setup.plan,
        setup.header.pixels,
        &setup.header.shards,
    )?;
    let next = setup
        .ranges
        .iter()
        .position(|r| (r.source, r.rows.start) == (cursor.source, cursor.row))
        .or((cursor.source == h.shards.len() && cursor.row == 0).then_some(setup.ranges.len()))
        .filter(|_| cursor.staged.iter().all(|(_, y)| y.is_empty()))
        .ok_or_else(|| {
            not_this_run(
                path,
                format!(
                    "a cursor (shard {}, row {}) that is not the start of a range",
                    cursor.source, cursor.row
                ),
            )
        })?;
    for (a, t) in totals.sums.iter_mut().enumerate() {
        *t = file.accumulator(a)?;
    }
    totals.sample = Sample::from_reservoir(file.reservoir()?, opts.gate_sample);
    (totals.rows, totals.skipped) = (h.rows, h.skipped);
    Ok((h, next))
}

/// Collective: checks that every rank planned and sees what rank 0 does
/// (same shards, shift, partitions, noise, mode and staging — a rank given
/// another --mem-budget could plan another staging block, and its sums
/// would round differently), and gives every rank rank 0's first range.
fn same_everywhere(ranks: &dyn Ranks, mut setup: Setup) -> Result<Setup> {
    let mut header = setup.header.clone();
    (header.rows, header.skipped) = (0, 0);
    let digest = serde_json::to_string(&(
        &header,
        setup.plan.mode,
        setup.plan.block_rows,
        setup.range_rows,
    ))
    .map_err(|e| Error::Json {
        what: "the pass's configuration".into(),
        source: e,
    })?;
    let mut bytes = format!("{}\n{digest}", setup.first).into_bytes();
    ranks.broadcast(0, &mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (first, theirs) = text.split_once('\n').unwrap_or(("0", ""));
    let outcome = if theirs == digest {
        setup.first = first.parse().unwrap_or(usize::MAX);
        Ok(setup)
    } else {
        Err(Error::InvalidParameter {
            name: "ranks",
            problem: format!(
                "rank {} planned or sees another pass than rank 0 ({} with {} rows staged here; \
                 shards, shift or options differ): give every rank the same arguments and --mem-budget",
                ranks.rank(),
                setup.plan.mode,
                setup.plan.block_rows
            ),
        })
    };
    agree(ranks, outcome)
}

/// Readers of this rank's ranges, in order.
fn windows<S: ChunkSource>(
    inputs: &Inputs<S>,
    setup: &Setup,
    mine: &[usize],
    opts: &AccumulateOptions,
) -> Result<Vec<Offset<S>>> {
    mine.iter()
        .map(|&i| {
            let r = &setup.ranges[i];
            Ok(Offset {
                inner: (inputs.open)(r.source)?,
                first: r.rows.start,
                end: r.rows.end,
                index: opts.first_shard_index + r.source as u64,
            })
        })
        .collect()
}

/// The rounds of a ranged pass: in round k, rank r sums range
/// first + k·N + r.
struct Rounds<'a> {
    ranks: &'a dyn Ranks,
    opts: &'a AccumulateOptions,
    setup: &'a Setup,
    pool: &'a Pool,
    checkpoints: Option<Checkpoints<'a>>,
    run: RunFigures,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl Rounds<'_> {
    /// Every round; rank 0 brings the totals it starts from (zeros, or a
    /// checkpoint's) and gets the output.
    fn all(
        &mut self,
        stream: &mut RowStream,
        state: &mut State,
        mut totals: Option<Totals>,
    ) -> Result<Option<RangedOutput>> {
        let (n, me) = (self.ranks.size(), self.ranks.rank());
        let m = self.setup.ranges.len();
        let first = self.setup.first;
        let mut pending: Result<()> = Ok(());
        for round in 0..(m - first.min(m)).div_ceil(n) {
            let base = first + round * n;
            let i = base + me;
            let summed = if i < m {
                self.sum_range(stream, state, &self.setup.ranges[i])
            } else {
                Ok(())
            };
            agree(
                self.ranks,
                summed.and(std::mem::replace(&mut pending, Ok(()))),
            )?;
            if me != 0 {
                if i < m {
                    // Cannot fail: the buffer has the pass's order (a
                    // mismatch would be a bug, and it would fail every rank's
                    // setup first).
                    self.send(state)?;
                }
                continue;
            }
            let Some(t) = totals.as_mut() else {
                return Err(Error::Worker("rank 0 holds no totals".into()));
            };
            pending = self.fold_round(state, t, base, m);
            if pending.is_ok() {
                pending = self.maybe_checkpoint(t, (base + n).min(m));
            }
        }
        agree(self.ranks, pending)?;
        Ok(totals.map(|t| self.output(t)))
    }

    /// Reads this rank's next range through the state (staged, not yet
    /// handed on).
    fn sum_range(
        &mut self,
        stream: &mut RowStream,
        state: &mut State,
        range: &RowRange,
    ) -> Result<()> {
        loop {
            let chunk = stream.next().ok_or_else(|| {
                Error::Worker(format!(
                    "the row stream ended before rows {:?} of shard {}",
                    range.rows, range.source
                ))
            })??;
            self.opts.cancel.check()?;
            self.pool.run(|| state.take(&chunk))?;
            self.run.count(&chunk);
            (self.progress)(chunk.rows as u64);
            let (shard, end) = (chunk.shard, chunk.start + chunk.rows);
            stream.recycle(chunk);
            if end >= range.rows.end {
                // Staged rows too: a bad value is named here, on its rank.
                return self.pool.run(|| state.flush(Some((shard, end - 1))));
            }
        }
    }

    /// Rank 0: its own range of the round, then each other rank's, in rank
    /// order. A failure is kept for the next agreement, after every rank's
    /// range has been received (the senders would wait forever otherwise).
    fn fold_round(
        &mut self,
        state: &mut State,
        t: &mut Totals,
        base: usize,
        m: usize,
    ) -> Result<()> {
        let mut kept: Result<()> = Ok(());
        for a in 0..state.accumulators() {
            let added = self
                .pool
                .run(|| state.end_range_of(a, &mut t.sums[a], true));
            if kept.is_ok() {
                kept = added.and_then(|()| t.check(a));
            }
        }
        let (rows, skipped, sample) = state.end_range();
        let (read_rows, read_bytes) = self.run.take_counts();
        add_counts(t, [rows, skipped, read_rows, read_bytes]);
        t.add_sample(&sample.into_reservoir());
        for r in 1..self.ranks.size() {
            if base + r < m {
                let received = self.receive(r, t);
                if kept.is_ok() {
                    kept = received;
                }
            }
        }
        kept
    }

    /// A rank's range to rank 0: counts, then each accumulator's sums, then
    /// its gate sample.
    fn send(&mut self, state: &mut State) -> Result<()> {
        let ranks = self.ranks;
        let mut s = SuffStats::zeros(self.setup.header.pixels);
        for a in 0..state.accumulators() {
            self.pool.run(|| state.end_range_of(a, &mut s, false))?;
            ranks.send_u64(0, &[s.n]);
            let mut small = Vec::with_capacity(2 + 2 * s.p);
            small.extend([s.sum_y, s.sum_yy]);
            small.extend_from_slice(&s.sum_x);
            small.extend_from_slice(&s.xty);
            ranks.send_f64(0, &small);
            ranks.send_f64(0, &s.xtx);
        }
        let (rows, skipped, sample) = state.end_range();
        let (read_rows, read_bytes) = self.run.take_counts();
        let sample = sample.into_reservoir();
        ranks.send_u64(
            0,
            &[rows, skipped, read_rows, read_bytes, sample.len() as u64],
        );
        if !sample.is_empty() {
            ranks.send_u64(0, &sample.keys);
            let origin: Vec<u64> = sample.origin.iter().flat_map(|&(s, r)| [s, r]).collect();
            ranks.send_u64(0, &origin);
            ranks.send_f64(0, &sample.x);
            let params: Vec<f64> = sample.params.iter().flatten().copied().collect();
            ranks.send_f64(0, &params);
        }
        Ok(())
    }

    /// Rank 0: rank `from`'s range, added to the totals as it arrives.
    fn receive(&mut self, from: usize, t: &mut Totals) -> Result<()> {
        let ranks = self.ranks;
        let p = self.setup.header.pixels;
        let mut s = SuffStats::zeros(p);
        let mut small = vec![0.0; 2 + 2 * p];
        let mut kept: Result<()> = Ok(());
        for a in 0..t.sums.len() {
            let mut n = [0u64];
            ranks.receive_u64(from, &mut n);
            ranks.receive_f64(from, &mut small);
            ranks.receive_f64(from, &mut s.xtx);
            s.n = n[0];
            (s.sum_y, s.sum_yy) = (small[0], small[1]);
            s.sum_x.copy_from_slice(&small[2..2 + p]);
            s.xty.copy_from_slice(&small[2 + p..]);
            if kept.is_ok() {
                kept = t.add(a, &s);
            }
        }
        let mut head = [0u64; 5];
        ranks.receive_u64(from, &mut head);
        add_counts(t, [head[0], head[1], head[2], head[3]]);
        (self.progress)(head[0] + head[1]);
        let len = head[4] as usize;
        if len > 0 {
            let mut r = Reservoir {
                capacity: self.opts.gate_sample,
                pixels: p,
                keys: vec![0; len],
                origin: Vec::new(),
                x: vec![0.0; len * p],
                params: Vec::new(),
            };
            ranks.receive_u64(from, &mut r.keys);
            let mut origin = vec![0u64; 2 * len];
            ranks.receive_u64(from, &mut origin);
            r.origin = origin.chunks_exact(2).map(|o| (o[0], o[1])).collect();
            ranks.receive_f64(from, &mut r.x);
            let mut params = vec![0.0; 4 * len];
            ranks.receive_f64(from, &mut params);
            r.params = params
                .chunks_exact(4)
                .map(|q| [q[0], q[1], q[2], q[3]])
                .collect();
            t.add_sample(&r);
        }
        kept
    }

    /// Rank 0, between rounds: the totals as a checkpoint whose cursor is
    /// the start of range `next`, when one is due.
    fn maybe_checkpoint(&mut self, t: &Totals, next: usize) -> Result<()> {
        let Some(c) = self.checkpoints.as_mut() else {
            return Ok(());
        };
        if !c.due() {
            return Ok(());
        }
        let setup = self.setup;
        let (source, row) = match setup.ranges.get(next) {
            Some(r) => (r.source, r.rows.start),
            None => (setup.header.shards.len(), 0),
        };
        let cursor = Cursor {
            source,
            row,
            staged: vec![(Vec::new(), Vec::new()); t.sums.len()],
            block_rows: setup.plan.block_rows,
            range_rows: setup.range_rows,
        };
        let mut header = setup.header.clone();
        (header.rows, header.skipped) = (t.rows, t.skipped);
        let reservoir = t.sample.snapshot();
        c.write(|path| {
            let mut sums = t.sums.iter().map(|s| Ok(Sums::PackedRef(s)));
            write_stats(path, &header, &mut sums, &reservoir, Some(&cursor))
        })
    }

    fn output(&mut self, t: Totals) -> RangedOutput {
        let setup = self.setup;
        let mut header = setup.header.clone();
        (header.rows, header.skipped) = (t.rows, t.skipped);
        let updates = match setup.plan.mode {
            Mode::Cells => 1.0,
            Mode::PerBin => self.opts.partitions.partitions.len() as f64,
        };
        let p = header.pixels as f64;
        let (checkpoints, checkpoint_seconds) = self
            .checkpoints
            .as_ref()
            .map_or((0, 0.0), |c| (c.count, c.seconds));
        let summary = PassSummary {
            rows: t.rows,
            skipped: t.skipped,
            rows_this_run: t.read_rows,
            bytes_this_run: t.read_bytes,
            seconds: self.run.seconds(),
            flops_this_run: t.read_rows as f64 * p * p * updates,
            plan: setup.plan.clone(),
            checkpoints,
            checkpoint_seconds,
            resumed: self.run.resumed(),
            // The largest rank's, set once every rank has finished.
            peak_rss: None,
        };
        RangedOutput {
            header,
            sums: t.sums,
            reservoir: t.sample.into_reservoir(),
            summary,
            ranks: self.ranks.size(),
            ranges: setup.ranges.len(),
        }
    }
}

fn add_counts(t: &mut Totals, [rows, skipped, read_rows, read_bytes]: [u64; 4]) {
    t.rows += rows;
    t.skipped += skipped;
    t.read_rows += read_rows;
    t.read_bytes += read_bytes;
}

/// The pass in ranges from shard files to a statistics file: what
/// `gramstream accumulate --range-rows R` runs, and every rank of `mpiexec
/// … gramstream accumulate`; collective. The refusals of
/// [`super::pass::accumulate_to_file`] (an output over an input, a
/// checkpoint not asked to resume) on every rank; rank 0 writes the file
/// atomically, removes the checkpoint once it is written, and gets the
/// summary.
pub fn accumulate_ranged_to_file(
    out: &Path,
    shards: &[PathBuf],
    opts: &AccumulateOptions,
    checkpoint: Option<&CheckpointOptions>,
    ranks: &dyn Ranks,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Option<RangedSummary>> {
    let inputs = agree(
        ranks,
        refuse_outputs(out, shards, opts, checkpoint).and_then(|()| shard_inputs(shards, opts)),
    )?;
    let output = accumulate_ranged(inputs, opts, checkpoint, ranks, progress)?;
    let written = match output {
        Some(o) => o.write(out).map(Some),
        None => Ok(None),
    };
    let summary = agree(ranks, written)?;
    if let (Some(c), Some(_)) = (checkpoint, &summary) {
        let _ = std::fs::remove_file(&c.path);
    }
    Ok(summary)
}

/// Shard files as the inputs of a ranged pass: a fresh reader per range.
pub fn shard_inputs(shards: &[PathBuf], opts: &AccumulateOptions) -> Result<Inputs<ShardReader>> {
    let (opened, fingerprints) = open_shards(shards, opts)?;
    let read = read_options(opts);
    let rows = opened.iter().map(Shard::rows).collect();
    let origins = shards.to_vec();
    let indices: Vec<u64> = fingerprints.iter().map(|f| f.index).collect();
    Ok(Inputs {
        open: Box::new(move |i| opened[i].reader(indices[i], &read)),
        rows,
        fingerprints,
        origins,
    })
}

#[cfg(test)]
mod tests {
    //! The pass in ranges against the ordinary pass, and across "ranks"
    //! simulated by threads (the MPI transport is tested under mpiexec).

    use std::sync::{Barrier, Mutex};
    use std::time::Duration;

    use crossbeam_channel::{unbounded, Receiver, Sender};

    use super::*;
    use crate::noise::NoiseModel;
    use crate::partition::{Partition, PartitionSet};
    use crate::source::MemorySource;
    use crate::stats::pass::accumulate_sources;
    use crate::stats::pass::tests::{fingerprints, sources};
    use crate::stats::ranks::Alone;
    use crate::Threads;

    enum Message {
        U64(Vec<u64>),
        F64(Vec<f64>),
    }

    /// Ranks as threads: collectives through a barrier and shared slots,
    /// messages through one FIFO channel per (sender, receiver).
    struct ThreadRanks {
        rank: usize,
        size: usize,
        barrier: std::sync::Arc<Barrier>,
        slots: std::sync::Arc<Mutex<Vec<u64>>>,
        shared: std::sync::Arc<Mutex<Vec<u8>>>,
        to: Vec<Sender<Message>>,
        from: Vec<Receiver<Message>>,
    }

    fn thread_ranks(size: usize) -> Vec<ThreadRanks> {
        let barrier = std::sync::Arc::new(Barrier::new(size));
        let slots = std::sync::Arc::new(Mutex::new(vec![0; size]));
        let shared = std::sync::Arc::new(Mutex::new(Vec::new()));
        // channel[s][r]: from s to r.
        let channels: Vec<Vec<(Sender<Message>, Receiver<Message>)>> = (0..size)
            .map(|_| (0..size).map(|_| unbounded()).collect())
            .collect();
        (0..size)
            .map(|rank| ThreadRanks {
                rank,
                size,
                barrier: barrier.clone(),
                slots: slots.clone(),
                shared: shared.clone(),
                to: (0..size).map(|r| channels[rank][r].0.clone()).collect(),
                from: (0..size).map(|s| channels[s][rank].1.clone()).collect(),
            })
            .collect()
    }

    impl ThreadRanks {
        fn reduce(&self, value: u64, f: fn(u64, u64) -> u64) -> u64 {
            self.slots.lock().unwrap()[self.rank] = value;
            self.barrier.wait();
            let out = self
                .slots
                .lock()
                .unwrap()
                .iter()
                .copied()
                .reduce(f)
                .unwrap();
            self.barrier.wait();
            out
        }
    }

    impl Ranks for ThreadRanks {
        fn rank(&self) -> usize {
            self.rank
        }
        fn size(&self) -> usize {
            self.size
        }
        fn min(&self, value: u64) -> u64 {
            self.reduce(value, u64::min)
        }
        fn max(&self, value: u64) -> u64 {
            self.reduce(value, u64::max)
        }
        fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) {
            if self.rank == root {
                *self.shared.lock().unwrap() = bytes.clone();
            }
            self.barrier.wait();
            if self.rank != root {
                *bytes = self.shared.lock().unwrap().clone();
            }
            self.barrier.wait();
        }
        fn send_u64(&self, to: usize, values: &[u64]) {
            self.to[to].send(Message::U64(values.to_vec())).unwrap();
        }
        fn send_f64(&self, to: usize, values: &[f64]) {
            self.to[to].send(Message::F64(values.to_vec())).unwrap();
        }
        fn receive_u64(&self, from: usize, values: &mut [u64]) {
            match self.from[from]
                .recv_timeout(Duration::from_secs(60))
                .unwrap()
            {
                Message::U64(v) => values.copy_from_slice(&v),
                Message::F64(_) => panic!("expected u64 values from rank {from}"),
            }
        }
        fn receive_f64(&self, from: usize, values: &mut [f64]) {
            match self.from[from]
                .recv_timeout(Duration::from_secs(60))
                .unwrap()
            {
                Message::F64(v) => values.copy_from_slice(&v),
                Message::U64(_) => panic!("expected f64 values from rank {from}"),
            }
        }
    }

    const SIZES: [usize; 3] = [70, 23, 41];
    const P: usize = 12;

    fn options(range_rows: Option<usize>) -> AccumulateOptions {
        AccumulateOptions {
            partitions: PartitionSet::new(vec![Partition::teff_mh(), Partition::snr()], 2).unwrap(),
            noise: NoiseModel::new(0.8, 5).unwrap(),
            threads: Threads::new(1),
            chunk_rows: Some(9),
            block_rows: Some(4),
            mem_budget: Some(1 << 30),
            gate_sample: 17,
            range_rows,
            ..Default::default()
        }
    }

    fn inputs(srcs: Vec<MemorySource>) -> Inputs<MemorySource> {
        let sizes: Vec<usize> = srcs.iter().map(ChunkSource::rows).collect();
        let origins = srcs.iter().map(ChunkSource::origin).collect();
        Inputs {
            open: Box::new(move |i| Ok(srcs[i].clone())),
            rows: sizes.clone(),
            fingerprints: fingerprints(&sizes),
            origins,
        }
    }

    /// Every rank's result of one ranged pass over `srcs` with `n` ranks.
    fn run_ranks(
        srcs: &[MemorySource],
        n: usize,
        opts: &AccumulateOptions,
        checkpoint: Option<&CheckpointOptions>,
    ) -> Vec<Result<Option<RangedOutput>>> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = thread_ranks(n)
                .into_iter()
                .map(|ranks| {
                    let srcs = srcs.to_vec();
                    scope.spawn(move || {
                        accumulate_ranged(inputs(srcs), opts, checkpoint, &ranks, &|_| {})
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    fn rank0(results: Vec<Result<Option<RangedOutput>>>) -> RangedOutput {
        let mut it = results.into_iter();
        let out = it.next().unwrap().unwrap().unwrap();
        for other in it {
            assert!(other.unwrap().is_none(), "only rank 0 holds the totals");
        }
        out
    }

    #[test]
    fn ranges_cover_each_shard_in_near_equal_parts() {
        let r = row_ranges(&[200_000, 5, 0, 7], 65_536);
        let sizes: Vec<usize> = r.iter().map(|r| r.rows.len()).collect();
        assert_eq!(sizes, [50_000, 50_000, 50_000, 50_000, 5, 7]);
        assert_eq!(
            r[4],
            RowRange {
                source: 1,
                rows: 0..5
            }
        );
        assert_eq!(
            r[5],
            RowRange {
                source: 3,
                rows: 0..7
            }
        );
        let r = row_ranges(&[7], 3);
        let bounds: Vec<_> = r.iter().map(|r| r.rows.clone()).collect();
        assert_eq!(bounds, [0..2, 2..4, 4..7]);
        for w in r.windows(2) {
            if w[0].source == w[1].source {
                assert_eq!(w[0].rows.end, w[1].rows.start);
            }
        }
        assert_eq!(row_ranges(&[10], 1).len(), 10);
    }

    /// The pass in ranges sums the same rows as the ordinary pass: equal
    /// counts and gate sample, sums equal to rounding.
    #[test]
    fn ranges_sum_what_the_ordinary_pass_sums() {
        let srcs = sources(3, &SIZES, P);
        let ordinary = accumulate_sources(
            srcs.clone(),
            fingerprints(&SIZES),
            &options(None),
            None,
            &|_| {},
        )
        .unwrap();
        let (header, want, reservoir) = ordinary.into_stats(Threads::new(1));
        let got = accumulate_ranged(
            inputs(srcs.clone()),
            &options(Some(16)),
            None,
            &Alone,
            &|_| {},
        )
        .unwrap()
        .unwrap();
        assert_eq!(got.ranges, 5 + 2 + 3);
        assert_eq!(
            (got.header.rows, got.header.skipped),
            (header.rows, header.skipped)
        );
        assert_eq!(got.header.shift_x, header.shift_x);
        assert_eq!(got.reservoir, reservoir);
        assert_eq!(
            got.summary.rows_this_run,
            SIZES.iter().sum::<usize>() as u64
        );
        for (g, w) in got.sums.iter().zip(&want) {
            assert_eq!(g.n, w.n);
            let scale = w
                .xtx
                .iter()
                .chain(&w.sum_x)
                .fold(1.0f64, |m, v| m.max(v.abs()));
            for (a, b) in g
                .xtx
                .iter()
                .chain(&g.sum_x)
                .chain(&g.xty)
                .zip(w.xtx.iter().chain(&w.sum_x).chain(&w.xty))
            {
                assert!((a - b).abs() <= 1e-14 * scale, "{a} vs {b}");
            }
        }
        assert!(
            got.sums != want,
            "the ranges sum in another order: some bits should differ"
        );
    }

    /// Any number of ranks, threads or chunk size: the same bits.
    #[test]
    fn any_rank_count_gives_the_same_bits() {
        let srcs = sources(4, &SIZES, P);
        let one = rank0(run_ranks(&srcs, 1, &options(Some(16)), None));
        for n in [2, 3, 5] {
            let mut opts = options(Some(16));
            opts.threads = Threads::new(1 + n % 2);
            opts.chunk_rows = Some(2 + n);
            let other = rank0(run_ranks(&srcs, n, &opts, None));
            assert!(other.sums == one.sums, "{n} ranks");
            assert_eq!(other.reservoir, one.reservoir, "{n} ranks");
            assert_eq!(other.header, one.header, "{n} ranks");
            assert_eq!(other.ranks, n);
        }
    }

    /// A bad row on one rank stops every rank with that rank's error, and
    /// nothing is returned.
    #[test]
    fn a_failing_rank_stops_every_rank_with_its_error() {
        let mut srcs = sources(5, &SIZES, P);
        // Shard 2, row 30: range 9 of 10 (rows 27..41), rank 0 of 3, rank 1 of 4.
        let mut chunk = crate::source::Chunk::default();
        let mut s = srcs[2].clone();
        s.read_chunk(0..SIZES[2], &mut chunk).unwrap();
        let mut flux = chunk.flux.clone();
        flux[30 * P + 3] = f64::INFINITY;
        srcs[2] = MemorySource::new(
            2,
            P,
            flux,
            Some(chunk.error.clone()),
            chunk.params.clone(),
            3,
        )
        .unwrap();
        for (n, failing) in [(1, 0), (3, 0), (4, 1)] {
            let results = run_ranks(&srcs, n, &options(Some(16)), None);
            for (rank, r) in results.into_iter().enumerate() {
                let e = r.expect_err("every rank fails");
                if rank == failing {
                    assert!(
                        matches!(e, Error::BadValue { .. }),
                        "{n} ranks, rank {rank}: {e}"
                    );
                } else {
                    match e {
                        Error::Rank { rank: r, message } => {
                            assert_eq!(r, failing, "{n} ranks");
                            assert!(
                                message.contains("<memory source 2>")
                                    && message.contains("not finite"),
                                "{message}"
                            );
                        }
                        other => panic!("{n} ranks, rank {rank}: {other}"),
                    }
                }
            }
        }
    }

    /// A run stopped part-way resumes from rank 0's checkpoint under another
    /// number of ranks and ends with the bits of an uninterrupted run.
    #[test]
    fn a_checkpoint_resumes_under_any_rank_count() {
        let srcs = sources(6, &SIZES, P);
        let whole = rank0(run_ranks(&srcs, 1, &options(Some(16)), None));
        let dir = tempfile::tempdir().unwrap();
        for (first, then) in [(2, 3), (3, 1)] {
            let path = dir.path().join(format!("ckpt-{first}-{then}.h5"));
            let ckpt = CheckpointOptions {
                path: path.clone(),
                every: Duration::ZERO,
                resume: true,
            };
            // Cancelled at rank 0's third chunk: a round or more is in the checkpoint.
            let cancel = crate::threads::Cancel::default();
            let mut opts = options(Some(16));
            opts.cancel = cancel.clone();
            let calls = std::sync::atomic::AtomicUsize::new(0);
            let stopped: Vec<_> = std::thread::scope(|scope| {
                let handles: Vec<_> = thread_ranks(first)
                    .into_iter()
                    .map(|ranks| {
                        let (srcs, opts, ckpt, cancel, calls) =
                            (srcs.to_vec(), &opts, &ckpt, &cancel, &calls);
                        scope.spawn(move || {
                            let progress = |_| {
                                if ranks.rank == 0
                                    && calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 4
                                {
                                    cancel.cancel();
                                }
                            };
                            accumulate_ranged(inputs(srcs), opts, Some(ckpt), &ranks, &progress)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(stopped.iter().all(Result::is_err));
            let file = StatsFile::open(&path).unwrap();
            let cursor = file.cursor().unwrap().unwrap();
            assert_eq!(cursor.range_rows, 16);
            assert!(
                file.header().rows > 0 && file.header().rows < SIZES.iter().sum::<usize>() as u64
            );
            drop(file);
            let resumed = rank0(run_ranks(&srcs, then, &options(Some(16)), Some(&ckpt)));
            assert!(resumed.summary.resumed);
            assert!(resumed.sums == whole.sums, "{first} then {then} ranks");
            assert_eq!(resumed.reservoir, whole.reservoir);
            assert_eq!(resumed.header.rows, whole.header.rows);
        }
    }
}
