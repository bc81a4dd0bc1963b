//! Python bindings of gramstream (the `gramstream._gramstream` extension
//! module; the package `gramstream` in `python/gramstream/` wraps it).
//!
//! Every call is one of the library's entry points with the GIL released
//! while it works ([`Python::detach`]): the pass (`accumulate`, `merge`),
//! statistics and Ridge from them (`Statistics`, `Ridge`, exact K-fold CV
//! as the sweep computes it), saved models and the router (`Models`), an
//! experiment from a TOML configuration, and the per-row definitions (fold,
//! noise, SNR). Library errors become the exceptions of
//! `gramstream.errors` ([`errors`]); progress reaches Python callables
//! through [`progress`].
//!
//! Not bound yet: the push-fed pass (numpy chunks in, statistics out) and
//! the pass's cancellation token; see `python/README.md`, "Planned".

use pyo3::prelude::*;

mod accumulator;
mod args;
mod convert;
mod errors;
mod experiment;
mod interrupt;
mod models;
mod progress;
mod ridge;
mod rows;
mod statistics;

#[pymodule]
fn _gramstream(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("INTERVAL_S", progress::INTERVAL.as_secs_f64())?;
    m.add_class::<statistics::Statistics>()?;
    m.add_class::<accumulator::Accumulator>()?;
    m.add_class::<ridge::Ridge>()?;
    m.add_class::<models::Models>()?;
    m.add_function(wrap_pyfunction!(statistics::accumulate, m)?)?;
    m.add_function(wrap_pyfunction!(statistics::merge, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::run_experiment, m)?)?;
    m.add_function(wrap_pyfunction!(rows::folds_of, m)?)?;
    m.add_function(wrap_pyfunction!(rows::add_noise, m)?)?;
    m.add_function(wrap_pyfunction!(rows::snr, m)?)?;
    Ok(())
}
