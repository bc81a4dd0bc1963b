//! `Accumulator`: the pass fed with numpy chunks from any loader (the
//! library's [`PushPass`]), giving the same statistics, bit for bit, as
//! `accumulate` over the same rows in files.

use std::sync::Mutex;

use gramstream::{PushPass, PushRows, Threads};
use pyo3::prelude::*;

use crate::args;
use crate::convert::{dims, floats1, floats2, slice};
use crate::errors::{invalid, shape, IntoPy};
use crate::statistics::Statistics;

/// The pass fed with numpy arrays instead of shard files.
///
/// Feed rows in file order with :meth:`add` (any chunk size), call
/// :meth:`next_shard` between shards, then :meth:`finish` for the
/// :class:`Statistics`. Rows are keyed by (shard index, row) exactly as the
/// file pass keys them — shard index ``first_shard_index`` + the number of
/// :meth:`next_shard` calls, rows counted from 0 in each shard — so the same
/// rows give the same statistics bit for bit, and the noise drawn for a row
/// is the one ``accumulate`` draws for it. Rows are checked as a shard's
/// are (finite, ``|value| ≤ 1e100``, error ≥ 0), and errors name the pushed
/// shard and row. Memory: the accumulators the budget plans, plus one chunk.
#[pyclass(module = "gramstream", name = "Accumulator")]
pub struct Accumulator {
    pass: Mutex<Option<PushPass>>,
    pixels: usize,
    threads: Threads,
}

impl Accumulator {
    fn with_pass<T>(&self, f: impl FnOnce(&mut PushPass) -> PyResult<T>) -> PyResult<T> {
        let mut guard = self.pass.lock().unwrap_or_else(|p| p.into_inner());
        let pass = guard
            .as_mut()
            .ok_or_else(|| invalid("accumulator", "finished: start a new Accumulator"))?;
        f(pass)
    }
}

#[pymethods]
impl Accumulator {
    /// A pass over spectra of ``pixels`` pixels; the options are
    /// ``accumulate``'s (the same defaults).
    #[new]
    #[pyo3(signature = (
        pixels, *, noise=1.0, seed=42,
        partitions=vec!["teff_mh".to_string(), "snr".to_string()],
        folds=1, mode=None, mem_budget=None, threads=0, first_shard_index=0,
        gate_sample=0, block_rows=None, skip_bad_rows=false, precision="f64"
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        pixels: usize,
        noise: f64,
        seed: u64,
        partitions: Vec<String>,
        folds: usize,
        mode: Option<&str>,
        mem_budget: Option<&Bound<'_, PyAny>>,
        threads: usize,
        first_shard_index: u64,
        gate_sample: usize,
        block_rows: Option<usize>,
        skip_bad_rows: bool,
        precision: &str,
    ) -> PyResult<Accumulator> {
        let opts = args::pass_options(args::PassArgs {
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
        })?;
        let pass = py.detach(|| PushPass::new(&opts, pixels)).py_err()?;
        Ok(Accumulator {
            pass: Mutex::new(Some(pass)),
            pixels,
            threads: opts.threads,
        })
    }

    /// Feeds the next rows of the current shard: ``flux`` (rows × pixels),
    /// ``error`` of the same shape (needed when noise is drawn or a
    /// partition bins on SNR), and one ``teff``, ``mh``, ``log_g`` per row.
    /// Any float dtype; the rows are copied, so the arrays can be reused.
    #[pyo3(signature = (flux, error=None, *, teff, mh, log_g))]
    fn add(
        &self,
        py: Python<'_>,
        flux: &Bound<'_, PyAny>,
        error: Option<&Bound<'_, PyAny>>,
        teff: &Bound<'_, PyAny>,
        mh: &Bound<'_, PyAny>,
        log_g: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let flux = floats2(flux, "flux")?;
        if dims(&flux)[1] != self.pixels {
            return Err(shape(
                "flux",
                format!("{} columns (the accumulator's pixels)", self.pixels),
                dims(&flux)[1],
            ));
        }
        let error = error
            .filter(|e| !e.is_none())
            .map(|e| floats2(e, "error"))
            .transpose()?;
        let (teff, mh, log_g) = (
            floats1(teff, "teff")?,
            floats1(mh, "mh")?,
            floats1(log_g, "log_g")?,
        );
        let rows = PushRows {
            flux: slice(&flux),
            error: error.as_ref().map(slice),
            teff: slice(&teff),
            mh: slice(&mh),
            log_g: slice(&log_g),
        };
        self.with_pass(|pass| py.detach(|| pass.push(rows)).py_err())
    }

    /// Starts the next shard: its index is one more, its rows count from 0.
    fn next_shard(&self) -> PyResult<()> {
        self.with_pass(|pass| pass.next_shard().py_err())
    }

    /// The statistics of every row added; the accumulator cannot be fed after.
    fn finish(&self, py: Python<'_>) -> PyResult<Statistics> {
        let pass = self
            .pass
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| invalid("accumulator", "finished already"))?;
        let threads = self.threads;
        py.detach(|| Statistics::in_memory(pass.finish()?, threads))
            .py_err()
    }

    /// Pixels per spectrum.
    #[getter]
    fn pixels(&self) -> usize {
        self.pixels
    }
}
