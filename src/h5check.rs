//! The one validator of the HDF5 files gramstream writes (the statistics
//! file and `models.h5`; their writing helpers are [`crate::h5write`]).
//!
//! A file of ours is trusted only after every object is checked against the
//! format: the `format` attribute and its version, each attribute's type,
//! each dataset's type, shape and Fletcher32 filter (the checksum is what
//! turns a flipped bit into an error instead of a wrong coefficient).
//! Shapes are checked before anything is read, so a damaged header that
//! declares 2^40 rows costs an error, not an allocation. Every error names
//! the file and the object ([`Error::Layout`], [`Error::MissingDataset`]).

use std::path::Path;

use hdf5::types::TypeDescriptor;
use hdf5::{Dataset, Group, H5Type};

use crate::{Error, Result};

/// Checks the objects of one file; `path` is named by every error.
pub(crate) struct Check<'a> {
    pub(crate) path: &'a Path,
}

impl Check<'_> {
    pub(crate) fn bad(
        &self,
        object: &str,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Error {
        Error::Layout {
            path: self.path.to_path_buf(),
            dataset: object.to_string(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    fn missing(&self, name: &str) -> Error {
        Error::MissingDataset {
            path: self.path.to_path_buf(),
            dataset: name.to_string(),
            found: String::new(),
        }
    }

    /// Opens one of our files and checks its format (see [`Check::format`]);
    /// a path that does not exist is an I/O error, not libhdf5's.
    pub(crate) fn open(&self, name: &str, what: &str, version: u32) -> Result<hdf5::File> {
        std::fs::metadata(self.path).map_err(|e| Error::io(self.path, e))?;
        let file = hdf5::File::open(self.path)
            .map_err(|e| Error::hdf5(self.path, "opening as HDF5", e))?;
        self.format(&file, name, what, version)?;
        Ok(file)
    }

    /// The root's `format` attribute must be `name` and `format_version`
    /// 1…`version`; a larger version was written by a newer gramstream, and
    /// the error says to upgrade. A root header libhdf5 cannot read at all is
    /// reported with libhdf5's cause, not as a missing attribute.
    pub(crate) fn format(&self, root: &Group, name: &str, what: &str, version: u32) -> Result<u64> {
        let names = root
            .attr_names()
            .map_err(|e| Error::hdf5(self.path, "reading the root group's attributes", e))?;
        let format = if names.iter().any(|n| n == "format") {
            let a = root
                .attr("format")
                .map_err(|e| Error::hdf5(self.path, "reading the root attribute format", e))?;
            crate::h5raw::read_fixed_string_attr(&a).ok()
        } else {
            None
        };
        if format.as_deref() != Some(name.as_bytes()) {
            return Err(self.bad(
                "/ attribute format",
                format!("{name:?} ({what})"),
                match format {
                    None => "no such attribute".to_string(),
                    Some(b) => format!("{:?}", String::from_utf8_lossy(&b)),
                },
            ));
        }
        let found = self.num_attr::<u64>(root, "/", "format_version")?;
        if found > u64::from(version) {
            return Err(self.bad(
                "/ attribute format_version",
                format!("format version {version} or older"),
                format!("version {found}: written by a newer gramstream; upgrade to read it"),
            ));
        }
        if found == 0 {
            return Err(self.bad("/ attribute format_version", format!("1…{version}"), "0"));
        }
        Ok(found)
    }

    pub(crate) fn attr(
        &self,
        loc: &hdf5::Location,
        loc_name: &str,
        name: &str,
    ) -> Result<hdf5::Attribute> {
        loc.attr(name).map_err(|_| {
            self.bad(
                &format!("{loc_name} attribute {name}"),
                "the attribute",
                "nothing (missing)",
            )
        })
    }

    pub(crate) fn str_attr(
        &self,
        loc: &hdf5::Location,
        loc_name: &str,
        name: &str,
    ) -> Result<String> {
        let a = self.attr(loc, loc_name, name)?;
        let object = format!("{loc_name} attribute {name}");
        let bytes = crate::h5raw::read_fixed_string_attr(&a)
            .map_err(|e| self.bad(&object, "a string", e.to_string()))?;
        String::from_utf8(bytes).map_err(|_| self.bad(&object, "UTF-8 text", "invalid UTF-8"))
    }

    pub(crate) fn num_attr<T: H5Type>(
        &self,
        loc: &hdf5::Location,
        loc_name: &str,
        name: &str,
    ) -> Result<T> {
        self.attr(loc, loc_name, name)?
            .read_scalar::<T>()
            .map_err(|e| {
                self.bad(
                    &format!("{loc_name} attribute {name}"),
                    format!("a scalar {}", std::any::type_name::<T>()),
                    e.to_string(),
                )
            })
    }

    /// A u64 attribute that must also fit this machine's `usize`.
    pub(crate) fn usize_attr(
        &self,
        loc: &hdf5::Location,
        loc_name: &str,
        name: &str,
    ) -> Result<usize> {
        let v = self.num_attr::<u64>(loc, loc_name, name)?;
        usize::try_from(v).map_err(|_| {
            self.bad(
                &format!("{loc_name} attribute {name}"),
                "a size",
                v.to_string(),
            )
        })
    }

    /// A string attribute holding JSON; `what` says what it should decode to.
    pub(crate) fn json_attr<T: serde::de::DeserializeOwned>(
        &self,
        loc: &hdf5::Location,
        loc_name: &str,
        name: &str,
        what: &str,
    ) -> Result<T> {
        let s = self.str_attr(loc, loc_name, name)?;
        serde_json::from_str(&s)
            .map_err(|e| self.bad(&format!("{loc_name} attribute {name}"), what, e.to_string()))
    }

    /// Opens a dataset and checks its type (any width for fixed-length
    /// strings), its shape and, when it holds data, its Fletcher32 filter
    /// (an empty dataset cannot be chunked, and has nothing to check).
    pub(crate) fn dataset(
        &self,
        group: &Group,
        name: &str,
        dtype: &TypeDescriptor,
        shape: &[usize],
    ) -> Result<Dataset> {
        let ds = group.dataset(name).map_err(|_| self.missing(name))?;
        let found = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| self.bad(name, format!("{dtype}"), e.to_string()))?;
        let same = match (dtype, &found) {
            (TypeDescriptor::FixedUnicode(_), TypeDescriptor::FixedUnicode(_)) => true,
            (a, b) => a == b,
        };
        if !same {
            return Err(self.bad(name, format!("{dtype}"), format!("{found}")));
        }
        let got = ds.shape();
        if got != shape {
            return Err(self.bad(name, format!("shape {shape:?}"), format!("shape {got:?}")));
        }
        if shape.iter().product::<usize>() > 0
            && !ds.filters().contains(&hdf5::filters::Filter::Fletcher32)
        {
            return Err(self.bad(name, "a Fletcher32 checksum filter", "no checksum"));
        }
        Ok(ds)
    }

    /// Opens a dataset whose first dimension is free (the rest is `tail`),
    /// checked as [`Check::dataset`]; returns it and that length.
    pub(crate) fn dataset_rows(
        &self,
        group: &Group,
        name: &str,
        dtype: &TypeDescriptor,
        tail: &[usize],
    ) -> Result<(Dataset, usize)> {
        let ds = group.dataset(name).map_err(|_| self.missing(name))?;
        let shape = ds.shape();
        if shape.len() != tail.len() + 1 {
            return Err(self.bad(
                name,
                format!("{} dimensions", tail.len() + 1),
                format!("shape {shape:?}"),
            ));
        }
        let rows = shape[0];
        let mut want = vec![rows];
        want.extend_from_slice(tail);
        Ok((self.dataset(group, name, dtype, &want)?, rows))
    }

    /// Reads a dataset already checked by [`Check::dataset`].
    pub(crate) fn read<T: H5Type>(&self, ds: &Dataset, name: &str) -> Result<Vec<T>> {
        ds.read_raw::<T>()
            .map_err(|e| Error::hdf5(self.path, format!("reading {name}"), e))
    }

    /// Checks and reads a dataset of the given type and shape.
    pub(crate) fn read_checked<T: H5Type>(
        &self,
        group: &Group,
        name: &str,
        dtype: &TypeDescriptor,
        shape: &[usize],
    ) -> Result<Vec<T>> {
        let ds = self.dataset(group, name, dtype, shape)?;
        self.read(&ds, name)
    }

    /// A 1-D dataset of fixed-length UTF-8 strings, `n` of them or (`None`)
    /// any number; trailing NULs are removed.
    pub(crate) fn strings(
        &self,
        group: &Group,
        name: &str,
        n: Option<usize>,
    ) -> Result<Vec<String>> {
        let utf8 = TypeDescriptor::FixedUnicode(1);
        let (ds, n) = match n {
            Some(n) => (self.dataset(group, name, &utf8, &[n])?, n),
            None => self.dataset_rows(group, name, &utf8, &[])?,
        };
        if n == 0 {
            return Ok(Vec::new());
        }
        let wrap = |e| Error::hdf5(self.path, format!("reading {name}"), e);
        let dtype = ds.dtype().map_err(wrap)?;
        let width = dtype.size();
        let mut buf = vec![0u8; n * width];
        crate::h5raw::transfer_rows(
            &ds,
            0..n,
            None,
            &dtype,
            crate::h5raw::Buffer::Read(&mut buf),
        )
        .map_err(wrap)?;
        buf.chunks_exact(width.max(1))
            .map(|c| {
                let end = c.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                String::from_utf8(c[..end].to_vec())
                    .map_err(|_| self.bad(name, "UTF-8 text", "invalid UTF-8"))
            })
            .collect()
    }

    /// Refuses a non-finite value in `values`; `at` says where index `i` is
    /// (accumulator, pixel, …).
    pub(crate) fn finite(
        &self,
        name: &str,
        values: &[f64],
        at: impl Fn(usize) -> String,
    ) -> Result<()> {
        match values.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(i) => Err(self.bad(name, "finite values", format!("{} at {}", values[i], at(i)))),
        }
    }
}
