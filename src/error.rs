//! Typed errors of the library.
//!
//! Every error that comes from data names where it happened: the file, the
//! dataset inside it, and where it applies the row and the column (pixel or
//! params column). The binary turns them into one readable line; the library
//! never panics on data.

use std::path::PathBuf;

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in gramstream, by kind.
///
/// Positions are fields, not prose, so a caller (a notebook, a job script)
/// can act on them: `path` is the file, `dataset` the HDF5 path inside it,
/// `row` the 0-based row within the shard, `column` the pixel index for
/// arrays or the column name for params, `name` the parameter as the CLI
/// and the config spell it. The text fields say what is wrong, with the
/// values involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // the fields follow the conventions above
pub enum Error {
    /// The file could not be opened or read at the operating-system level.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// libhdf5 refused the file or an object in it (not HDF5, truncated,
    /// damaged). `what` is what we were doing ("reading
    /// /dataset/arrays/flux/value rows 0..4096"), `message` libhdf5's cause.
    #[error("{path}: {what}: {message}")]
    Hdf5 {
        path: PathBuf,
        what: String,
        message: String,
    },
    /// A dataset the layout requires is not in the file; `found` is context
    /// such as ", found: …" (may be empty).
    #[error("{path}: dataset {dataset} is missing{found}")]
    MissingDataset {
        path: PathBuf,
        dataset: String,
        found: String,
    },
    /// A dataset exists but does not have the expected shape, type or content.
    #[error("{path}: {dataset}: expected {expected}, found {found}")]
    Layout {
        path: PathBuf,
        dataset: String,
        expected: String,
        found: String,
    },
    /// A params column the run needs is not in the table; `available`
    /// lists the columns that are, comma separated.
    #[error("{path}: {dataset}: column {column:?} not found; the columns are: {available}")]
    MissingColumn {
        path: PathBuf,
        dataset: String,
        column: String,
        available: String,
    },
    /// A value in the data is not acceptable (non-finite flux, negative
    /// error, a flux whose square would overflow the sums).
    #[error("{path}: {dataset}: row {row}, column {column}: {problem}")]
    BadValue {
        path: PathBuf,
        dataset: String,
        row: usize,
        column: String,
        problem: String,
    },
    /// A pickled attribute (pandas' column names) could not be decoded.
    #[error("{path}: {dataset}: attribute {attribute}: {problem}")]
    Pickle {
        path: PathBuf,
        dataset: String,
        attribute: String,
        problem: PickleError,
    },
    /// A parameter given by the caller (a flag, an option field, an index
    /// into the caller's data) is out of range or does not fit the others.
    #[error("invalid parameter {name}: {problem}")]
    InvalidParameter { name: &'static str, problem: String },
    /// An experiment's configuration is not valid TOML or does not describe
    /// a runnable experiment; `line` is known for syntax errors, the
    /// `[section] key` starts `problem`.
    #[error("{}: {}{problem}", file_name(.file), .line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Config {
        file: Option<PathBuf>,
        line: Option<usize>,
        problem: String,
    },
    /// A model cannot be fitted from these statistics.
    #[error(transparent)]
    Fit(#[from] FitError),
    /// A statistics file is the checkpoint of a pass that has not finished:
    /// its sums cover part of the shards only.
    #[error(
        "{path} is a checkpoint of an unfinished pass: finish it with `accumulate --resume` first"
    )]
    Unfinished { path: PathBuf },
    /// Arrays given to a function do not fit together (lengths,
    /// dimensions, a row range past the end), or a size does not fit this
    /// machine. These are the caller's arrays, not a file's: a file's
    /// shapes are [`Error::Layout`]. `what` names the array or the
    /// operation ("gate PCA components").
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        what: String,
        expected: String,
        found: String,
    },
    /// A header could not be written as JSON.
    #[error("{what} to JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// Two statistics files cannot be combined (by `merge`): different
    /// configuration, a checkpoint, or a shard present in both. `first` is
    /// the reference, `second` the file that does not fit it.
    #[error("cannot merge {first} and {second}: {reason}")]
    Incompatible {
        first: PathBuf,
        second: PathBuf,
        reason: String,
    },
    /// An output cannot be written where asked: it is one of the run's
    /// inputs, it exists, or another run wrote it meanwhile
    /// ([`crate::output`]).
    #[error("{path}: {problem}")]
    Output { path: PathBuf, problem: String },
    /// The caller cancelled the run ([`crate::threads::Cancel`]); nothing
    /// was written.
    #[error("cancelled: the run stopped at the caller's request and wrote nothing")]
    Cancelled,
    /// A worker thread ended without delivering (it panicked or its channel closed).
    #[error("reader thread stopped unexpectedly: {0}")]
    Worker(String),
    /// Another process of a distributed pass ([`crate::stats::ranges`])
    /// failed; `message` is its error (one line). Every process stops with
    /// it, so the run ends on every rank, with one message.
    #[error("rank {rank}: {message}")]
    Rank { rank: usize, message: String },
    /// A value in the caller's rows is NaN or infinite where a model needs
    /// a number: `what` names the rows ("expert binning sample"), `row` is
    /// the row (within the caller's array, or the shard row where `what`
    /// names the shard), `column` the pixel ("pixel 17") or "target".
    #[error("{what}: row {row}, {column}: {value} is not finite")]
    NonFinite {
        what: String,
        row: u64,
        column: String,
        value: f64,
    },
    /// LightGBM refused a call ([`crate::experts::lightgbm`]); `what` is
    /// what we asked of it ("creating the dataset"), `message` its own
    /// error text.
    #[error("LightGBM {what}: {message}")]
    LightGbm { what: String, message: String },
    /// Something needs a part of gramstream this build was compiled
    /// without: `feature` is what it is called ("LightGBM"), `flag` the
    /// cargo feature that builds it (`lightgbm`).
    #[error("this build has no {feature}: rebuild with --features {flag}")]
    NotBuilt {
        feature: &'static str,
        flag: &'static str,
    },
}

/// Why a model could not be fitted. These come from the statistics, not
/// from a bad parameter: a bin with too few rows, a covariance too
/// singular for least squares, a solver that did not converge.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // the variants' docs say what their fields hold
pub enum FitError {
    /// Fewer rows than the model needs; `model` is what was being fitted,
    /// `set` the rows it had ("this group", "this fold's training set").
    #[error("{model} needs at least {need} rows, {set} has {rows}")]
    TooFewRows {
        model: &'static str,
        set: &'static str,
        need: u64,
        rows: u64,
    },
    /// α = 0 on a covariance that is singular to working precision.
    #[error("α = 0 (least squares) needs a full-rank covariance; this group's is singular ({rows} rows, {pixels} pixels): use α > 0")]
    Singular { rows: u64, pixels: usize },
    /// An iterative solver or decomposition stopped without converging.
    #[error("the {what} did not converge: {detail}")]
    NotConverged { what: &'static str, detail: String },
    /// The objective became non-finite during the fit.
    #[error("{what} diverged (non-finite objective)")]
    Diverged { what: &'static str },
    /// A group every routing needs was not fitted; `reason` carries the
    /// notes the sweep recorded for it.
    #[error("no {group} model: {reason}")]
    Missing { group: &'static str, reason: String },
}

fn file_name(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map_or_else(|| "config".to_string(), |p| p.display().to_string())
}

/// Why a pickle could not be decoded (see [`crate::params::pickle`]).
/// `offset` is the 0-based byte offset in the attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // `offset` as above; the messages say the rest
pub enum PickleError {
    /// The bytes ended in the middle of an opcode or before STOP.
    #[error("truncated at byte {offset}")]
    Truncated { offset: usize },
    /// An opcode we do not support (only lists/tuples of strings are expected).
    #[error("unsupported opcode 0x{opcode:02x} at byte {offset}")]
    Unsupported { opcode: u8, offset: usize },
    /// The pickle is well formed but is not a list of strings, or is malformed.
    #[error("{problem} at byte {offset}")]
    Malformed {
        problem: &'static str,
        offset: usize,
    },
}

impl Error {
    /// A [`Error::NonFinite`] about a row of a part renumbered as a row of
    /// the whole (`row` maps the part's row to the whole's); other errors
    /// unchanged.
    pub(crate) fn renumber_row(self, row: impl FnOnce(u64) -> u64) -> Self {
        match self {
            Error::NonFinite {
                what,
                row: r,
                column,
                value,
            } => Error::NonFinite {
                what,
                row: row(r),
                column,
                value,
            },
            e => e,
        }
    }

    /// Wraps a libhdf5 error with the file and what we were doing.
    pub(crate) fn hdf5(path: &std::path::Path, what: impl Into<String>, e: hdf5::Error) -> Self {
        Error::Hdf5 {
            path: path.to_path_buf(),
            what: what.into(),
            message: hdf5_cause(&e),
        }
    }

    /// Arrays that do not fit together: `what` expected `expected`, found `found`.
    pub(crate) fn shape(
        what: impl Into<String>,
        expected: impl std::fmt::Display,
        found: impl std::fmt::Display,
    ) -> Self {
        Error::Shape {
            what: what.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    /// Wraps an I/O error with the file.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// libhdf5's error stack as the cause a user can act on. The crate's own
/// text is the outermost and innermost frames ("H5Dread(): can't read
/// data: filter returned failure during read"), which hides a checksum
/// failure behind a generic read error and a full disk behind
/// "bytes actually written = 18446744073709551615"; the frames in between
/// say what happened.
pub(crate) fn hdf5_cause(e: &hdf5::Error) -> String {
    let frames: Vec<String> = e
        .stack()
        .map(|s| s.iter().map(|f| f.desc().to_string()).collect())
        .unwrap_or_default();
    cause_of_frames(&frames).unwrap_or_else(|| e.to_string())
}

/// The cause named by libhdf5's frame descriptions, when one is recognised.
pub(crate) fn cause_of_frames(frames: &[String]) -> Option<String> {
    let any = |needle: &str| {
        frames.iter().any(|f| {
            f.to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase())
        })
    };
    if any("fletcher32") {
        return Some("checksum mismatch (Fletcher32): the file is damaged".into());
    }
    if any("checksum") {
        return Some("checksum mismatch in the file's metadata: the file is damaged".into());
    }
    if any("errno = 28,") || any("no space left on device") {
        return Some("no space left on device".into());
    }
    // The POSIX driver quotes the system's message: "…, errno = 13, error
    // message = 'Permission denied', …".
    frames.iter().find_map(|f| {
        let start = f.find("error message = '")? + "error message = '".len();
        let len = f[start..].find('\'')?;
        let head = f.split([':', ',']).next().unwrap_or_default().trim();
        Some(format!("{head}: {}", &f[start..start + len]))
    })
}

#[cfg(test)]
mod tests {
    use super::cause_of_frames;

    fn frames(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn libhdf5_causes_are_named() {
        assert_eq!(
            cause_of_frames(&frames(&[
                "can't read data",
                "filter returned failure during read",
                "data error detected by fletcher32 checksum",
            ]))
            .as_deref(),
            Some("checksum mismatch (Fletcher32): the file is damaged")
        );
        assert_eq!(
            cause_of_frames(&frames(&[
                "unable to flush file",
                "file write failed: time = Mon Nov 30 04:00:00 2026\n, filename = 'x.h5', file descriptor = 5, errno = 28, error message = 'No space left on device', buf = 0x5, total write size = 4096, bytes this sub-write = 4096, bytes actually written = 18446744073709551615, offset = 0",
            ]))
            .as_deref(),
            Some("no space left on device")
        );
        assert_eq!(
            cause_of_frames(&frames(&[
                "unable to open file",
                "unable to open file: name = 'ro/x.h5', errno = 13, error message = 'Permission denied', flags = 13, o_flags = 242",
            ]))
            .as_deref(),
            Some("unable to open file: Permission denied")
        );
        assert_eq!(
            cause_of_frames(&frames(&[
                "incorrect metadata checksum after all read tries"
            ]))
            .as_deref(),
            Some("checksum mismatch in the file's metadata: the file is damaged")
        );
        assert_eq!(cause_of_frames(&frames(&["unable to open file"])), None);
    }
}
