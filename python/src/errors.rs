//! The library's errors as Python exceptions.
//!
//! The classes live in `gramstream/errors.py` (plain Python, so that
//! `InvalidParameterError` can also be a `ValueError`); this module
//! instantiates them with the library's one-line message and sets the
//! positions the error carries as attributes (`path`, `dataset`, `row`,
//! `column`, `name`, `line`, …), `kind` being the library's variant name.

use gramstream::{Error, FitError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// An attribute value of an exception.
pub(crate) enum Attr {
    Str(String),
    Int(u64),
    Strs(Vec<String>),
}

/// An exception of class `class` (a name in `gramstream.errors`) with
/// `message` and attributes, ready to be raised.
pub(crate) fn exception(class: &str, message: String, attrs: Vec<(&str, Attr)>) -> PyErr {
    Python::attach(|py| {
        build(py, class, &message, attrs).unwrap_or_else(|e| {
            // The errors module itself failed (it ships with the package, so
            // this is a broken installation): raise that, with our message.
            pyo3::exceptions::PyRuntimeError::new_err(format!("{message} (and {e})"))
        })
    })
}

fn build(py: Python<'_>, class: &str, message: &str, attrs: Vec<(&str, Attr)>) -> PyResult<PyErr> {
    let module = ERRORS.get_or_try_init(py, || {
        PyModule::import(py, "gramstream.errors").map(Bound::unbind)
    })?;
    let cls = module.bind(py).getattr(class)?;
    let value = cls.call1((message,))?;
    for (name, v) in attrs {
        match v {
            Attr::Str(s) => value.setattr(name, s)?,
            Attr::Int(i) => value.setattr(name, i)?,
            Attr::Strs(v) => value.setattr(name, v)?,
        }
    }
    Ok(PyErr::from_value(value))
}

fn path(p: &std::path::Path) -> Attr {
    Attr::Str(p.display().to_string())
}

fn s(v: &str) -> Attr {
    Attr::Str(v.to_string())
}

/// The Python exception for a library error: its class by kind, its
/// message the library's Display, its positions as attributes.
pub(crate) fn to_py(e: Error) -> PyErr {
    let message = e.to_string().replace('\n', " ");
    let (class, kind, attrs): (&str, &str, Vec<(&str, Attr)>) = match &e {
        Error::Io { path: p, source } => (
            "DataError",
            "Io",
            match source.raw_os_error() {
                Some(errno) => vec![("path", path(p)), ("errno", Attr::Int(errno as u64))],
                None => vec![("path", path(p))],
            },
        ),
        Error::Hdf5 { path: p, what, .. } => (
            "DataError",
            "Hdf5",
            vec![("path", path(p)), ("what", s(what))],
        ),
        Error::MissingDataset {
            path: p, dataset, ..
        } => (
            "DataError",
            "MissingDataset",
            vec![("path", path(p)), ("dataset", s(dataset))],
        ),
        Error::Layout {
            path: p, dataset, ..
        } => (
            "DataError",
            "Layout",
            vec![("path", path(p)), ("dataset", s(dataset))],
        ),
        Error::MissingColumn {
            path: p,
            dataset,
            column,
            available,
        } => (
            "DataError",
            "MissingColumn",
            vec![
                ("path", path(p)),
                ("dataset", s(dataset)),
                ("column", s(column)),
                (
                    "available",
                    Attr::Strs(available.split(", ").map(str::to_string).collect()),
                ),
            ],
        ),
        Error::BadValue {
            path: p,
            dataset,
            row,
            column,
            ..
        } => (
            "DataError",
            "BadValue",
            vec![
                ("path", path(p)),
                ("dataset", s(dataset)),
                ("row", Attr::Int(*row as u64)),
                ("column", s(column)),
            ],
        ),
        Error::Pickle {
            path: p,
            dataset,
            attribute,
            ..
        } => (
            "DataError",
            "Pickle",
            vec![
                ("path", path(p)),
                ("dataset", s(dataset)),
                ("attribute", s(attribute)),
            ],
        ),
        Error::InvalidParameter { name, .. } => (
            "InvalidParameterError",
            "InvalidParameter",
            vec![("name", s(name))],
        ),
        Error::Config { file, line, .. } => {
            let mut attrs = Vec::new();
            if let Some(f) = file {
                attrs.push(("path", path(f)));
            }
            if let Some(l) = line {
                attrs.push(("line", Attr::Int(*l as u64)));
            }
            ("ConfigError", "Config", attrs)
        }
        Error::Fit(f) => ("FitError", fit_kind(f), fit_attrs(f)),
        Error::Unfinished { path: p } => ("UnfinishedError", "Unfinished", vec![("path", path(p))]),
        Error::Shape { what, .. } => ("ShapeError", "Shape", vec![("what", s(what))]),
        Error::Incompatible { first, second, .. } => (
            "IncompatibleError",
            "Incompatible",
            vec![("path", path(second)), ("first", path(first))],
        ),
        Error::Output { path: p, .. } => ("OutputError", "Output", vec![("path", path(p))]),
        Error::Json { .. } => ("GramstreamError", "Json", vec![]),
        Error::Worker(_) => ("GramstreamError", "Worker", vec![]),
        Error::Cancelled => ("GramstreamError", "Cancelled", vec![]),
        Error::Rank { rank, .. } => (
            "GramstreamError",
            "Rank",
            vec![("rank", Attr::Int(*rank as u64))],
        ),
        _ => ("GramstreamError", "Other", vec![]),
    };
    let mut attrs = attrs;
    attrs.push(("kind", s(kind)));
    exception(class, message, attrs)
}

fn fit_kind(f: &FitError) -> &'static str {
    match f {
        FitError::TooFewRows { .. } => "TooFewRows",
        FitError::Singular { .. } => "Singular",
        FitError::NotConverged { .. } => "NotConverged",
        FitError::Diverged { .. } => "Diverged",
        FitError::Missing { .. } => "Missing",
        _ => "Fit",
    }
}

fn fit_attrs(f: &FitError) -> Vec<(&'static str, Attr)> {
    match f {
        FitError::TooFewRows { need, rows, .. } => {
            vec![("rows", Attr::Int(*rows)), ("need", Attr::Int(*need))]
        }
        FitError::Singular { rows, .. } => vec![("rows", Attr::Int(*rows))],
        _ => vec![],
    }
}

/// `Result<T, gramstream::Error>` → `PyResult<T>`.
pub(crate) trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for gramstream::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// An invalid argument of the bindings themselves (a routing name, a
/// group), raised as the library raises its own: `InvalidParameterError`
/// with the message "invalid parameter NAME: PROBLEM".
pub(crate) fn invalid(name: &'static str, problem: impl Into<String>) -> PyErr {
    to_py(Error::InvalidParameter {
        name,
        problem: problem.into(),
    })
}

/// Arrays given by the caller that do not fit together: `ShapeError`.
pub(crate) fn shape(
    what: &str,
    expected: impl std::fmt::Display,
    found: impl std::fmt::Display,
) -> PyErr {
    to_py(Error::Shape {
        what: what.to_string(),
        expected: expected.to_string(),
        found: found.to_string(),
    })
}
