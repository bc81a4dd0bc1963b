//! Small helpers shared by the HDF5 files gramstream writes (the statistics
//! file and `models.h5`): fixed-length UTF-8 strings, scalar attributes.
//! (Their atomic replacement is [`crate::output`]'s.)

use std::path::Path;

use hdf5::types::TypeDescriptor;
use hdf5::{Dataset, Datatype, Group, H5Type};

use crate::{Error, Result};

/// Chunks of at most this many bytes (whole rows).
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

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

/// Creates a dataset, chunked with Fletcher32 unless it is empty (a chunk
/// cannot exceed a fixed zero extent; an empty array has nothing to check).
pub(crate) fn create_array<T: H5Type>(
    group: &Group,
    path: &Path,
    name: &str,
    shape: &[usize],
    chunk: &[usize],
) -> Result<Dataset> {
    let b = group.new_dataset::<T>();
    let b = if shape.iter().product::<usize>() > 0 {
        let chunk: Vec<usize> = chunk
            .iter()
            .zip(shape)
            .map(|(&c, &s)| c.clamp(1, s))
            .collect();
        b.chunk(chunk).fletcher32()
    } else {
        b
    };
    b.shape(shape.to_vec())
        .create(name)
        .map_err(|e| Error::hdf5(path, format!("creating {name}"), e))
}

/// Creates and fills a dataset (row-major `data` of `shape`), in chunks
/// of whole rows up to 1 MiB.
pub(crate) fn write_array<T: H5Type>(
    group: &Group,
    path: &Path,
    name: &str,
    shape: &[usize],
    data: &[T],
) -> Result<Dataset> {
    let row: usize = shape[1..].iter().product();
    let rows = (CHUNK_BYTES / (row.max(1) * std::mem::size_of::<T>()).max(1)).max(1);
    let mut chunk = shape.to_vec();
    chunk[0] = rows;
    let ds = create_array::<T>(group, path, name, shape, &chunk)?;
    if !data.is_empty() {
        ds.write_raw(data)
            .map_err(|e| Error::hdf5(path, format!("writing {name}"), e))?;
    }
    Ok(ds)
}
