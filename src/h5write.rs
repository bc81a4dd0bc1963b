//! Small helpers shared by the HDF5 files gramstream writes (the statistics
//! file and `models.h5`): fixed-length UTF-8 strings, scalar attributes.
//! (Their atomic replacement is [`crate::output`]'s.)

use std::path::Path;

use hdf5::types::TypeDescriptor;
use hdf5::{Datatype, H5Type};

use crate::{Error, Result};

/// The fixed-length, NUL-padded UTF-8 string type of `len` bytes (at least 1).
pub(crate) fn fixed_str_type(len: usize) -> hdf5::Result<Datatype> {
    Datatype::from_descriptor(&TypeDescriptor::FixedUnicode(len.max(1)))
}

/// `strings` NUL-padded to `width` bytes each, back to back.
pub(crate) fn padded(strings: &[&str], width: usize) -> Vec<u8> {
    let mut buf = vec![0u8; strings.len() * width];
    for (dst, s) in buf.chunks_exact_mut(width.max(1)).zip(strings) {
        dst[..s.len()].copy_from_slice(s.as_bytes());
    }
    buf
}

/// Writes a scalar fixed-length string attribute holding exactly `value`.
pub(crate) fn write_str_attr(
    loc: &hdf5::Location,
    path: &Path,
    name: &str,
    value: &str,
) -> Result<()> {
    let wrap = |e| Error::hdf5(path, format!("writing attribute {name}"), e);
    let dtype = fixed_str_type(value.len()).map_err(wrap)?;
    let attr = loc
        .new_attr_builder()
        .empty_as(&dtype)
        .shape(())
        .create(name)
        .map_err(wrap)?;
    let buf = padded(&[value], dtype.size());
    let status = hdf5::sync::sync(|| {
        // SAFETY: `buf` holds one value of `dtype` (dtype.size() bytes) for the
        // scalar attribute; both ids are alive; libhdf5 is serialised by `sync`.
        unsafe { hdf5_sys::h5a::H5Awrite(attr.id(), dtype.id(), buf.as_ptr().cast()) }
    });
    if status < 0 {
        return Err(wrap(hdf5::Error::from("H5Awrite failed".to_string())));
    }
    Ok(())
}

pub(crate) fn write_attr<T: H5Type>(
    loc: &hdf5::Location,
    path: &Path,
    name: &str,
    value: T,
) -> Result<()> {
    loc.new_attr::<T>()
        .create(name)
        .and_then(|a| a.write_scalar(&value))
        .map_err(|e| Error::hdf5(path, format!("writing attribute {name}"), e))
}

pub(crate) fn json<T: serde::Serialize>(what: &str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|source| Error::Json {
        what: what.into(),
        source,
    })
}
