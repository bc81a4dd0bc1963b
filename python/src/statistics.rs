//! The pass and its statistics: `accumulate`, `merge`, `Statistics`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gramstream::source::{ReadPath, Shard};
use gramstream::stats::derive::{members, sum, Group};
use gramstream::stats::pass::{
    self, AccumulateOptions, CheckpointOptions, PassOutput, PassSummary,
};
use gramstream::stats::{write_stats, Mode, Reservoir, StatsFile, StatsHeader, SuffStats, Sums};
use gramstream::Threads;
use numpy::{PyArray1, PyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::args;
use crate::convert::{faer2, mat2, record, vec1};
use crate::errors::{invalid, IntoPy};
use crate::interrupt::interruptible;
use crate::progress::Progress;
use crate::ridge::Ridge;

/// Where a statistics set lives: a validated file (accumulators read one
/// at a time, on demand) or memory (a pass run without `out`).
pub(crate) enum Backing {
    File(StatsFile),
    Memory {
        header: StatsHeader,
        sums: Vec<SuffStats>,
        reservoir: Reservoir,
    },
}

impl Backing {
    pub(crate) fn header(&self) -> &StatsHeader {
        match self {
            Backing::File(f) => f.header(),
            Backing::Memory { header, .. } => header,
        }
    }

    fn path(&self) -> Option<&Path> {
        match self {
            Backing::File(f) => Some(f.path()),
            Backing::Memory { .. } => None,
        }
    }

    fn accumulator(&self, a: usize) -> gramstream::Result<SuffStats> {
        match self {
            Backing::File(f) => f.accumulator(a),
            Backing::Memory { sums, .. } => {
                sums.get(a)
                    .cloned()
                    .ok_or_else(|| gramstream::Error::Shape {
                        what: "accumulator index".into(),
                        expected: format!("< {}", sums.len()),
                        found: a.to_string(),
                    })
            }
        }
    }

    fn reservoir(&self) -> gramstream::Result<Reservoir> {
        match self {
            Backing::File(f) => f.reservoir(),
            Backing::Memory { reservoir, .. } => Ok(reservoir.clone()),
        }
    }

    /// A checkpoint's sums cover part of the shards: no model or summary from them.
    fn require_complete(&self) -> gramstream::Result<()> {
        match self {
            Backing::File(f) => f.require_complete(),
            Backing::Memory { .. } => Ok(()),
        }
    }

    /// The sums of `group` restricted to `fold` (None: every fold).
    pub(crate) fn group_sum(
        &self,
        group: Group,
        fold: Option<usize>,
    ) -> gramstream::Result<SuffStats> {
        self.require_complete()?;
        let h = self.header();
        sum(h.pixels, &members(h, group, fold)?, |a| self.accumulator(a))
    }

    /// The sums of `group` per fold, and their total summed in fold order:
    /// as the sweep sums a group ([`gramstream::sweep::group_fold_sums`]).
    pub(crate) fn group_folds(
        &self,
        group: Group,
    ) -> gramstream::Result<(Vec<SuffStats>, SuffStats)> {
        self.require_complete()?;
        let h = self.header();
        let folds = gramstream::sweep::group_fold_sums(h, group, &mut |a| self.accumulator(a))?;
        let mut total = SuffStats::zeros(h.pixels);
        for f in &folds {
            total.add(f)?;
        }
        Ok((folds, total))
    }
}

/// Per-bin sufficient statistics of one pass: a statistics file or a pass's
/// result in memory.
///
/// A group of rows is named by ``None``/``"global"`` (every row) or a
/// ``(partition, bin)`` tuple: the partition by name (``"teff_mh"``,
/// ``"snr"``) or index, the bin by index or name (``"Cool Poor"``, ``"H"``;
/// ``"outside bins"`` for the rows of no T_eff × [M/H] bin). ``fold=k``
/// restricts a group to its rows of fold k.
#[pyclass(module = "gramstream", name = "Statistics", frozen)]
pub struct Statistics {
    pub(crate) data: Arc<Backing>,
    summary: Option<PassSummary>,
}

impl Statistics {
    /// A pass's result kept in memory: its accumulators finished (staged
    /// rows folded in) in `threads`.
    pub(crate) fn in_memory(
        output: PassOutput,
        threads: Threads,
    ) -> gramstream::Result<Statistics> {
        let summary = output.summary.clone();
        let (header, sums, reservoir) = threads.install(move || output.into_stats(threads))?;
        Ok(Statistics {
            data: Arc::new(Backing::Memory {
                header,
                sums,
                reservoir,
            }),
            summary: Some(summary),
        })
    }

    fn header(&self) -> &StatsHeader {
        self.data.header()
    }

    fn group(&self, spec: Option<&Bound<'_, PyAny>>) -> PyResult<Group> {
        args::group(self.header(), spec)
    }

    fn sums(
        &self,
        py: Python<'_>,
        group: Option<&Bound<'_, PyAny>>,
        fold: Option<usize>,
    ) -> PyResult<SuffStats> {
        let g = self.group(group)?;
        let data = &self.data;
        py.detach(|| data.group_sum(g, fold)).py_err()
    }
}

#[pymethods]
impl Statistics {
    /// Opens and validates a statistics file (or a checkpoint) written by
    /// ``accumulate``, ``merge`` or ``gramstream accumulate``. Accumulators
    /// are read when a group needs them.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Statistics> {
        let file = py.detach(|| StatsFile::open(&path)).py_err()?;
        Ok(Statistics {
            data: Arc::new(Backing::File(file)),
            summary: None,
        })
    }

    /// Writes the statistics to ``path`` (HDF5, the format of
    /// ``gramstream accumulate``), atomically. Refuses a path that is one of
    /// the shards or the file these statistics were read from, and a
    /// checkpoint (``UnfinishedError``).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let data = &self.data;
        py.detach(|| -> gramstream::Result<()> {
            data.require_complete()?;
            let h = data.header();
            let mut inputs: Vec<PathBuf> =
                h.shards.iter().map(|s| PathBuf::from(&s.path)).collect();
            inputs.extend(data.path().map(Path::to_path_buf));
            gramstream::output::refuse_input_overwrite(&path, &inputs)?;
            let reservoir = data.reservoir()?;
            let mut accs = (0..h.accumulators()).map(|a| data.accumulator(a).map(Sums::Packed));
            write_stats(&path, h, &mut accs, &reservoir, None)
        })
        .py_err()
    }

    /// The file the statistics were read from (None: in memory).
    #[getter]
    fn path(&self) -> Option<String> {
        self.data.path().map(|p| p.display().to_string())
    }

    /// Pixels per spectrum (P).
    #[getter]
    fn pixels(&self) -> usize {
        self.header().pixels
    }

    /// Rows accumulated (rows skipped not counted).
    #[getter]
    fn rows(&self) -> u64 {
        self.header().rows
    }

    /// Rows skipped (``skip_bad_rows=True``).
    #[getter]
    fn skipped(&self) -> u64 {
        self.header().skipped
    }

    /// The noise level L of the pass.
    #[getter]
    fn noise_level(&self) -> f64 {
        self.header().noise.level
    }

    /// The seed of the noise, the folds and the gate sample.
    #[getter]
    fn seed(&self) -> u64 {
        self.header().noise.seed
    }

    /// How the block products were formed: ``"f64"`` or ``"mixed"``.
    #[getter]
    fn precision(&self) -> &'static str {
        self.header().precision.name()
    }

    /// Folds (1: no cross-validation).
    #[getter]
    fn folds(&self) -> usize {
        self.header().partitions.folds
    }

    /// How the accumulators are keyed: ``"cells"`` or ``"per_bin"``.
    #[getter]
    fn mode(&self) -> &'static str {
        match self.header().mode {
            Mode::Cells => "cells",
            Mode::PerBin => "per_bin",
        }
    }

    /// Number of accumulators in the file.
    #[getter]
    fn accumulators(&self) -> usize {
        self.header().accumulators()
    }

    /// Whether this is the checkpoint of an unfinished pass (no group
    /// statistics can be taken from it).
    #[getter]
    fn is_checkpoint(&self) -> bool {
        matches!(&*self.data, Backing::File(f) if f.is_checkpoint())
    }

    /// The partitions: one dict each with ``name``, ``bins`` (bin names),
    /// ``slots`` (bins, plus one for rows outside every bin when the
    /// partition has such rows) and ``definition`` (edges and rules).
    #[getter]
    fn partitions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for p in &self.header().partitions.partitions {
            let d = PyDict::new(py);
            d.set_item("name", &p.name)?;
            d.set_item("bins", &p.bin_names)?;
            d.set_item("slots", p.slots())?;
            d.set_item("definition", record(py, &p.kind)?)?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// The shift (x₀, y₀) every sum is taken around: the mean of the first
    /// 256 usable rows of the first shard.
    #[getter]
    fn shift<'py>(&self, py: Python<'py>) -> (Bound<'py, PyArray1<f64>>, f64) {
        let h = self.header();
        (vec1(py, h.shift_x.clone()), h.shift_y)
    }

    /// The shards read, in order: dicts with ``path``, ``rows``, ``bytes``,
    /// ``mtime_ns`` and ``index`` (the shard index of the noise and folds).
    #[getter]
    fn shards<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        record(py, &self.header().shards)
    }

    /// What the pass did (rows/s, memory plan, peak RSS …) when these
    /// statistics come from ``accumulate`` in this process; None otherwise.
    #[getter]
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.summary.as_ref().map(|s| record(py, s)).transpose()
    }

    /// Every group: ``"global"``, then ``(partition, slot)`` for each slot
    /// of each partition.
    fn groups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        list.append("global")?;
        for p in &self.header().partitions.partitions {
            for slot in 0..p.slots() {
                list.append(PyTuple::new(
                    py,
                    [
                        p.name.clone().into_pyobject(py)?.into_any(),
                        slot.into_pyobject(py)?.into_any(),
                    ],
                )?)?;
            }
        }
        Ok(list)
    }

    /// The name of a group: ``"global"`` or ``"partition/bin name"``.
    #[pyo3(signature = (group=None))]
    fn group_name(&self, group: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
        Ok(args::group_label(self.header(), self.group(group)?))
    }

    /// Rows of a group (of one fold with ``fold=k``). Reads the group's
    /// accumulators, except for every row (``n()``: the header's count).
    #[pyo3(signature = (group=None, *, fold=None))]
    fn n(
        &self,
        py: Python<'_>,
        group: Option<&Bound<'_, PyAny>>,
        fold: Option<usize>,
    ) -> PyResult<u64> {
        if fold.is_none() && self.group(group)? == Group::Global {
            self.data.require_complete().py_err()?;
            return Ok(self.header().rows);
        }
        Ok(self.sums(py, group, fold)?.n)
    }

    /// The means of a group: ``(x̄, ȳ)``, x̄ an array of P values, ȳ the mean log g.
    #[pyo3(signature = (group=None, *, fold=None))]
    fn mean<'py>(
        &self,
        py: Python<'py>,
        group: Option<&Bound<'_, PyAny>>,
        fold: Option<usize>,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, f64)> {
        let s = self.sums(py, group, fold)?;
        if s.n == 0 {
            return Err(empty(fold));
        }
        let h = self.header();
        let n = s.n as f64;
        let x: Vec<f64> = h
            .shift_x
            .iter()
            .zip(&s.sum_x)
            .map(|(x0, sx)| x0 + sx / n)
            .collect();
        Ok((vec1(py, x), h.shift_y + s.sum_y / n))
    }

    /// The P × P covariance of the group's spectra, centred, divided by
    /// n − ``ddof``: ``numpy.cov(X, rowvar=False, ddof=ddof)`` of its rows
    /// (``ddof=1``, numpy's default, or ``ddof=0`` for the population
    /// covariance). Computed from the shifted sums without cancellation.
    #[pyo3(signature = (group=None, *, fold=None, ddof=1))]
    fn covariance<'py>(
        &self,
        py: Python<'py>,
        group: Option<&Bound<'_, PyAny>>,
        fold: Option<usize>,
        ddof: u64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let s = self.sums(py, group, fold)?;
        if s.n <= ddof {
            return Err(gramstream::Error::Fit(gramstream::FitError::TooFewRows {
                model: "a covariance",
                set: "this group",
                need: ddof + 1,
                rows: s.n,
            }))
            .py_err();
        }
        let (c, _, _) = py.detach(|| gramstream::ridge::centred_sums(&s));
        let scale = 1.0 / (s.n - ddof) as f64;
        let c = faer::Mat::from_fn(c.nrows(), c.ncols(), |i, j| c[(i, j)] * scale);
        faer2(py, c.as_ref())
    }

    /// The group's raw sums around the shift, as stored: a dict with ``n``,
    /// ``sum_x`` (P), ``sum_y``, ``sum_yy``, ``xty`` (P), ``xtx`` (P × P,
    /// full), ``shift_x`` (P) and ``shift_y``; e.g. Σxᵢ = sum_x + n·shift_x.
    #[pyo3(signature = (group=None, *, fold=None))]
    fn raw_sums<'py>(
        &self,
        py: Python<'py>,
        group: Option<&Bound<'_, PyAny>>,
        fold: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let s = self.sums(py, group, fold)?;
        let h = self.header();
        let p = s.p;
        let mut full = vec![0.0; p * p];
        for i in 0..p {
            for j in 0..=i {
                let v = s.xtx[gramstream::stats::packed_index(i, j)];
                full[i * p + j] = v;
                full[j * p + i] = v;
            }
        }
        let d = PyDict::new(py);
        d.set_item("n", s.n)?;
        d.set_item("sum_x", vec1(py, s.sum_x.clone()))?;
        d.set_item("sum_y", s.sum_y)?;
        d.set_item("sum_yy", s.sum_yy)?;
        d.set_item("xty", vec1(py, s.xty.clone()))?;
        d.set_item("xtx", mat2(py, p, p, full)?)?;
        d.set_item("shift_x", vec1(py, h.shift_x.clone()))?;
        d.set_item("shift_y", h.shift_y)?;
        Ok(d)
    }

    /// Every Ridge model of a group (see ``Ridge``): one eigendecomposition
    /// of its centred covariance, as the sweep solves it. Needs ≥ 2 rows.
    #[pyo3(signature = (group=None, *, threads=0))]
    fn ridge(
        &self,
        py: Python<'_>,
        group: Option<&Bound<'_, PyAny>>,
        threads: usize,
    ) -> PyResult<Ridge> {
        let g = self.group(group)?;
        Ridge::new(py, &self.data, g, args::threads(threads))
    }

    /// The gate's sample kept by the pass (``gate_sample`` rows): a dict
    /// with ``x`` (N × P noisy spectra), ``teff``, ``mh``, ``log_g``,
    /// ``snr``, ``shard`` and ``row`` (N each).
    fn gate_sample<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let data = &self.data;
        let r = py.detach(|| data.reservoir()).py_err()?;
        let d = PyDict::new(py);
        let n = r.len();
        let col = |k: usize| r.params.iter().map(|p| p[k]).collect::<Vec<f64>>();
        let p = if n == 0 {
            self.header().pixels
        } else {
            r.pixels
        };
        d.set_item("x", mat2(py, n, p, r.x.clone())?)?;
        d.set_item("teff", vec1(py, col(0)))?;
        d.set_item("mh", vec1(py, col(1)))?;
        d.set_item("log_g", vec1(py, col(2)))?;
        d.set_item("snr", vec1(py, col(3)))?;
        d.set_item(
            "shard",
            PyArray1::from_vec(py, r.origin.iter().map(|o| o.0).collect::<Vec<u64>>()),
        )?;
        d.set_item(
            "row",
            PyArray1::from_vec(py, r.origin.iter().map(|o| o.1).collect::<Vec<u64>>()),
        )?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let h = self.header();
        let parts: Vec<&str> = h
            .partitions
            .partitions
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        format!(
            "<Statistics {}: {} rows × {} pixels, noise {} seed {}, partitions {}, {} fold(s){}>",
            self.data
                .path()
                .map_or("in memory".to_string(), |p| p.display().to_string()),
            h.rows,
            h.pixels,
            h.noise.level,
            h.noise.seed,
            parts.join(", "),
            h.partitions.folds,
            if self.is_checkpoint() {
                ", checkpoint"
            } else {
                ""
            }
        )
    }
}

/// A mean of no rows.
fn empty(fold: Option<usize>) -> PyErr {
    crate::errors::to_py(gramstream::Error::Fit(gramstream::FitError::TooFewRows {
        model: "a mean",
        set: if fold.is_some() {
            "this fold of the group"
        } else {
            "this group"
        },
        need: 1,
        rows: 0,
    }))
}

/// The pass over shard files, as ``gramstream accumulate`` runs it.
#[pyfunction]
#[pyo3(signature = (
    shards, *, out=None, noise=1.0, seed=42,
    partitions=vec!["teff_mh".to_string(), "snr".to_string()],
    folds=1, mode=None, mem_budget=None, threads=0, first_shard_index=0,
    gate_sample=0, chunk_rows=None, block_rows=None, skip_bad_rows=false,
    precision="f64", columns=None, read_path="auto", checkpoint=None, checkpoint_every=60.0,
    resume=false, progress=None
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn accumulate(
    py: Python<'_>,
    shards: Vec<PathBuf>,
    out: Option<PathBuf>,
    noise: f64,
    seed: u64,
    partitions: Vec<String>,
    folds: usize,
    mode: Option<&str>,
    mem_budget: Option<&Bound<'_, PyAny>>,
    threads: usize,
    first_shard_index: u64,
    gate_sample: usize,
    chunk_rows: Option<usize>,
    block_rows: Option<usize>,
    skip_bad_rows: bool,
    precision: &str,
    columns: Option<Vec<(String, String)>>,
    read_path: &str,
    checkpoint: Option<PathBuf>,
    checkpoint_every: f64,
    resume: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Statistics> {
    let shards = args::shards(shards)?;
    if chunk_rows == Some(0) {
        return Err(invalid("chunk_rows", "must be at least 1 row"));
    }
    // Its `cancel` token is cancelled by Ctrl-C (`interruptible` below).
    let opts = AccumulateOptions {
        layout: args::layout(columns)?,
        chunk_rows,
        read_path: read_path_of(read_path)?,
        ..args::pass_options(args::PassArgs {
            noise,
            seed,
            partitions: &partitions,
            folds,
            mode,
            mem_budget,
            threads,
            first_shard_index,
            gate_sample,
            block_rows,
            skip_bad_rows,
            precision,
        })?
    };
    let checkpoint = match checkpoint {
        None if resume => return Err(invalid("resume", "resume=True needs checkpoint=PATH")),
        None => None,
        Some(_) if out.is_none() => {
            return Err(invalid(
                "checkpoint",
                "checkpoints are for a pass written to a file: give out=PATH",
            ))
        }
        Some(path) => {
            if !(checkpoint_every.is_finite() && checkpoint_every >= 0.0)
                || Duration::try_from_secs_f64(checkpoint_every).is_err()
            {
                return Err(invalid(
                    "checkpoint_every",
                    format!(
                        "{checkpoint_every}: the interval must be a finite number of seconds ≥ 0"
                    ),
                ));
            }
            Some(CheckpointOptions {
                path,
                every: Duration::from_secs_f64(checkpoint_every),
                resume,
            })
        }
    };
    let total = py.detach(|| total_rows(&shards, &opts)).py_err()?;
    let prog = Progress::new(progress, total);
    let report = |n: u64| prog.add(n);
    let result = interruptible(py, &opts.cancel, || -> gramstream::Result<Statistics> {
        match &out {
            Some(out) => {
                let summary =
                    pass::accumulate_to_file(out, &shards, &opts, checkpoint.as_ref(), &report)?;
                Ok(Statistics {
                    data: Arc::new(Backing::File(StatsFile::open(out)?)),
                    summary: Some(summary),
                })
            }
            None => Statistics::in_memory(
                pass::accumulate(&shards, &opts, None, &report)?,
                opts.threads,
            ),
        }
    });
    prog.finish()?;
    result?.py_err()
}

fn read_path_of(s: &str) -> PyResult<ReadPath> {
    match s {
        "auto" => Ok(ReadPath::Auto),
        "hdf5" => Ok(ReadPath::Hdf5),
        other => Err(invalid(
            "read_path",
            format!(
                "unknown read path {other:?}: \"auto\" (memory map where it applies) or \"hdf5\""
            ),
        )),
    }
}

/// Rows of every shard (the progress total), opening each as the CLI does.
fn total_rows(shards: &[PathBuf], opts: &AccumulateOptions) -> gramstream::Result<u64> {
    let mut total = 0u64;
    for p in shards {
        total += Shard::open(p, &opts.layout)?.rows() as u64;
    }
    Ok(total)
}

/// Sums statistics files of disjoint shard sets into ``out``.
#[pyfunction]
pub(crate) fn merge(py: Python<'_>, inputs: Vec<PathBuf>, out: PathBuf) -> PyResult<Statistics> {
    let file = py
        .detach(|| -> gramstream::Result<StatsFile> {
            gramstream::stats::merge(&inputs, &out, &|_| {})?;
            StatsFile::open(&out)
        })
        .py_err()?;
    Ok(Statistics {
        data: Arc::new(Backing::File(file)),
        summary: None,
    })
}
