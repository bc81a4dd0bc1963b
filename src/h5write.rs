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

/// Creates the 1-D dataset `name` in `group` holding `strings` as
/// fixed-length UTF-8 as wide as the longest, chunked (≤ 1 MiB) with
/// Fletcher32 like the numeric arrays (an empty one is contiguous: a chunk
/// cannot exceed a zero extent, and there is nothing to check). `object`
/// names it in errors.
pub(crate) fn write_strings(
    group: &hdf5::Group,
    path: &Path,
    name: &str,
    object: &str,
    strings: &[&str],
) -> Result<()> {
    const CHUNK_BYTES: usize = 1 << 20;
    let wrap = |e| Error::hdf5(path, format!("writing {object}"), e);
    let width = strings.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    let dtype = fixed_str_type(width).map_err(wrap)?;
    let b = group.new_dataset_builder().empty_as(&dtype);
    let b = if strings.is_empty() {
        b
    } else {
        let rows = (CHUNK_BYTES / width).clamp(1, strings.len());
        b.chunk(vec![rows]).fletcher32()
    };
    let ds = b.shape(vec![strings.len()]).create(name).map_err(wrap)?;
    if strings.is_empty() {
        return Ok(());
    }
    let buf = padded(strings, width);
    crate::h5raw::transfer_rows(
        &ds,
        0..strings.len(),
        None,
        &dtype,
        crate::h5raw::Buffer::Write(&buf),
    )
    .map_err(wrap)
}
