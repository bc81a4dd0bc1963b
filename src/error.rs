//! Typed errors of the library.
//!
//! Every error that comes from data names where it happened: the file, the
//! dataset inside it, and where it applies the row and the column (pixel or
//! params column). The binary turns them into one readable line; the library
//! never panics on data.

use std::path::PathBuf;

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in gramstream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read at the operating-system level.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// libhdf5 refused the file or an object in it (not HDF5, truncated, …).
    #[error("{path}: {what}: {message}")]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// What we were doing (e.g. "opening as HDF5", "reading /dataset/arrays/flux/value rows 0..4096").
        what: String,
        /// libhdf5's message.
        message: String,
    },
    /// A dataset the layout requires is not in the file.
    #[error("{path}: dataset {dataset} is missing{found}")]
    MissingDataset {
        /// The file.
        path: PathBuf,
        /// The dataset path inside the file.
        dataset: String,
        /// Context such as ", found: …" (may be empty).
        found: String,
    },
    /// A dataset exists but does not have the expected shape, type or content.
    #[error("{path}: {dataset}: expected {expected}, found {found}")]
    Layout {
        /// The file.
        path: PathBuf,
        /// The dataset path inside the file.
        dataset: String,
        /// What the layout requires.
        expected: String,
        /// What the file has.
        found: String,
    },
    /// A params column the run needs is not in the table.
    #[error("{path}: {dataset}: column {column:?} not found; the columns are: {available}")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The params table's dataset path.
        dataset: String,
        /// The column asked for.
        column: String,
        /// The columns that exist, comma separated.
        available: String,
    },
    /// A value in the data is not acceptable (non-finite flux, negative error, …).
    #[error("{path}: {dataset}: row {row}, column {column}: {problem}")]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The dataset path inside the file.
        dataset: String,
        /// Row within the shard (0-based).
        row: usize,
        /// Column: pixel index for arrays, column name for params.
        column: String,
        /// What is wrong, with the value.
        problem: String,
    },
    /// A pickled attribute could not be decoded.
    #[error("{path}: {dataset}: attribute {attribute}: {problem}")]
    Pickle {
        /// The file.
        path: PathBuf,
        /// The dataset holding the attribute.
        dataset: String,
        /// The attribute name.
        attribute: String,
        /// The decoding problem.
        problem: PickleError,
    },
    /// A parameter given by the caller is out of range.
    #[error("invalid parameter {name}: {problem}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why it is invalid.
        problem: String,
    },
    /// Arrays given to a function do not fit together (lengths,
    /// dimensions, a row range past the end), or a size does not fit this
    /// machine. These are the caller's arrays, not a file's: a file's
    /// shapes are [`Error::Layout`].
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        /// The array or the operation (e.g. "gate PCA components").
        what: String,
        /// The size or shape that fits.
        expected: String,
        /// The size or shape given.
        found: String,
    },
    /// A header could not be written as JSON.
    #[error("{what} to JSON: {source}")]
    Json {
        /// The value being written.
        what: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// Two statistics files cannot be combined (by `merge`): different
    /// configuration, a checkpoint, or a shard present in both.
    #[error("cannot merge {first} and {second}: {reason}")]
    Incompatible {
        /// The first file (the reference).
        first: PathBuf,
        /// The file that does not fit.
        second: PathBuf,
        /// Why, with both values.
        reason: String,
    },
    /// An output cannot be written where asked: it is one of the run's
    /// inputs, or another run wrote it meanwhile ([`crate::output`]).
    #[error("{path}: {problem}")]
    Output {
        /// The output.
        path: PathBuf,
        /// Why it was not written there.
        problem: String,
    },
    /// A worker thread ended without delivering (it panicked or its channel closed).
    #[error("reader thread stopped unexpectedly: {0}")]
    Worker(String),
}

/// Why a pickle could not be decoded (see [`crate::params::pickle`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The bytes ended in the middle of an opcode or before STOP.
    #[error("truncated at byte {offset}")]
    Truncated {
        /// Byte offset where more input was needed.
        offset: usize,
    },
    /// An opcode we do not support (only lists/tuples of strings are expected).
    #[error("unsupported opcode 0x{opcode:02x} at byte {offset}")]
    Unsupported {
        /// The opcode byte.
        opcode: u8,
        /// Its offset.
        offset: usize,
    },
    /// The pickle is well formed but is not a list of strings, or is malformed.
    #[error("{problem} at byte {offset}")]
    Malformed {
        /// What is wrong.
        problem: &'static str,
        /// Its offset.
        offset: usize,
    },
}

impl Error {
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
