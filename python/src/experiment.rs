//! Experiments from a TOML configuration, as `gramstream experiment` runs them.

use std::path::PathBuf;
use std::sync::Mutex;

use gramstream::experiment::{self, Config, Event};
use pyo3::prelude::*;

use crate::args;
use crate::errors::{invalid, IntoPy};
use crate::interrupt::interruptible;

/// Runs an experiment; returns its output directory. The configuration is
/// a TOML file (``config_path``, relative paths resolved against its
/// directory) or TOML text (``config_text``, resolved against ``base``).
/// ``progress`` (optional) receives each stage's line as the CLI prints it.
#[pyfunction]
#[pyo3(signature = (*, config_path=None, config_text=None, base=None, out=None, force=false, mem_budget=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_experiment(
    py: Python<'_>,
    config_path: Option<PathBuf>,
    config_text: Option<String>,
    base: Option<PathBuf>,
    out: Option<PathBuf>,
    force: bool,
    mem_budget: Option<&Bound<'_, PyAny>>,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let budget = args::mem_budget(mem_budget)?;
    let mut plan = py
        .detach(|| match (&config_path, &config_text) {
            (Some(path), None) => Ok(experiment::plan_file(path, out.as_deref())),
            (None, Some(text)) => Ok(Config::parse(text).and_then(|c| {
                let base = base.clone().unwrap_or_else(|| PathBuf::from("."));
                c.plan(None, &base, out.as_deref())
            })),
            _ => Err(()),
        })
        .map_err(|_| invalid("config", "give a configuration file or TOML text, not both"))?
        .py_err()?;
    if budget.is_some() {
        plan.mem_budget = budget;
    }
    let dir = plan.out.clone();
    let cancel = plan.cancel.clone();
    // An exception in the callback stops the run (through the cancel
    // token) and is raised; so does Ctrl-C (`interruptible`).
    let failed: Mutex<Option<PyErr>> = Mutex::new(None);
    let say = |line: String| {
        let Some(cb) = &progress else { return };
        let mut failed = failed.lock().unwrap_or_else(|p| p.into_inner());
        if failed.is_none() {
            if let Err(e) = Python::attach(|py| cb.call1(py, (line,))) {
                *failed = Some(e);
                cancel.cancel();
            }
        }
    };
    let on_event = |e: Event<'_>| match e {
        Event::Stage {
            run,
            runs,
            stage,
            detail,
            ..
        } => say(format!("[run {}/{runs}] {stage}: {detail}", run + 1)),
        Event::Done(msg) => say(format!("    {msg}")),
        Event::Advance(_) => {}
    };
    let result = interruptible(py, &cancel, || experiment::execute(plan, force, &on_event))?;
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    result.py_err()?;
    Ok(dir.display().to_string())
}
