//! The few libhdf5 reads the high-level `hdf5` crate cannot express.
//!
//! * Reading a row range of a 2-D dataset **into a caller-owned buffer**
//!   (`hdf5::Reader::read_slice` allocates a new array per call; the pass
//!   reads thousands of chunks and keeps its buffers, STYLE §4).
//! * Reading rows of a compound dataset whose fields are only known at run
//!   time, as raw bytes in the file's own type (the params table).
//! * Reading a fixed-length string attribute of any length as bytes (the
//!   pickled `values_block_K_kind` names).
//!
//! Each is one `H5Dread`/`H5Aread` call on ids and dataspaces built with the
//! safe API, under the crate's global libhdf5 lock.

use std::ops::Range;

use hdf5::{Attribute, Dataset, Dataspace, Datatype, H5Type};

/// A buffer for one hyperslab transfer: read into it, or write from it.
pub(crate) enum Buffer<'a> {
    /// `H5Dread` fills it.
    Read(&'a mut [u8]),
    /// `H5Dwrite` takes it.
    Write(&'a [u8]),
}

impl Buffer<'_> {
    fn len(&self) -> usize {
        match self {
            Buffer::Read(b) => b.len(),
            Buffer::Write(b) => b.len(),
        }
    }
}

/// Moves rows `rows` of `ds` (all `ncols` columns of a 2-D dataset, or whole
/// records of a 1-D one when `ncols` is None) between the file and `buf`,
/// laid out as `mem` values, row-major. The one place where gramstream calls
/// `H5Dread`/`H5Dwrite`: the `hdf5` crate's safe reads allocate a new array
/// per call, and cannot describe run-time record types.
pub(crate) fn transfer_rows(
    ds: &Dataset,
    rows: Range<usize>,
    ncols: Option<usize>,
    mem: &Datatype,
    buf: Buffer<'_>,
) -> hdf5::Result<()> {
    let n = rows.end.saturating_sub(rows.start);
    let values = n * ncols.unwrap_or(1);
    if buf.len() != values * mem.size() {
        return Err(hdf5::Error::from(format!(
            "buffer of {} bytes for {n} rows × {} values of {} bytes",
            buf.len(),
            ncols.unwrap_or(1),
            mem.size()
        )));
    }
    if n == 0 {
        return Ok(());
    }
    let (fspace, mspace) = match ncols {
        Some(c) => (
            ds.space()?.select((rows.start..rows.end, 0..c))?,
            Dataspace::try_new([n, c])?,
        ),
        None => (
            ds.space()?.select(rows.start..rows.end)?,
            Dataspace::try_new([n])?,
        ),
    };
    let (status, verb, stack) = hdf5::sync::sync(move || {
        let (status, verb) = match buf {
            // SAFETY (both arms): the buffer holds exactly n × ncols values of
            // `mem` (checked above), matching `mspace`; `mem` is a fixed-size type
            // with no variable-length members (callers build it from a Rust type
            // or `native_record_type`), so libhdf5 reads or writes no pointers;
            // every id is alive for the call; libhdf5 is serialised by `sync`.
            Buffer::Read(out) => (
                unsafe {
                    hdf5_sys::h5d::H5Dread(
                        ds.id(),
                        mem.id(),
                        mspace.id(),
                        fspace.id(),
                        hdf5_sys::h5p::H5P_DEFAULT,
                        out.as_mut_ptr().cast(),
                    )
                },
                "H5Dread",
            ),
            Buffer::Write(data) => (
                unsafe {
                    hdf5_sys::h5d::H5Dwrite(
                        ds.id(),
                        mem.id(),
                        mspace.id(),
                        fspace.id(),
                        hdf5_sys::h5p::H5P_DEFAULT,
                        data.as_ptr().cast(),
                    )
                },
                "H5Dwrite",
            ),
        };
        // libhdf5's error stack of this call, read before anything clears it.
        let stack = (status < 0).then(|| hdf5::Error::query().unwrap_or_else(|e| e));
        (status, verb, stack)
    });
    if status < 0 {
        return Err(hdf5::Error::from(format!(
            "{verb} of rows {}..{} failed: {}",
            rows.start,
            rows.end,
            stack.map_or_else(
                || "no libhdf5 error stack".into(),
                |e| crate::error::hdf5_cause(&e)
            )
        )));
    }
    Ok(())
}

/// Reads rows `rows` (all columns) of a 2-D dataset into `out`, converting to
/// `T` in libhdf5 (f32 on disk → f64 in memory, byte order).
pub(crate) fn read_rows_into<T: H5Type + bytemuck::Pod>(
    ds: &Dataset,
    rows: Range<usize>,
    ncols: usize,
    out: &mut [T],
) -> hdf5::Result<()> {
    let mem = Datatype::from_type::<T>()?;
    transfer_rows(
        ds,
        rows,
        Some(ncols),
        &mem,
        Buffer::Read(bytemuck::cast_slice_mut(out)),
    )
}

/// Writes rows `rows` (all columns) of a 2-D dataset from `data`, converted
/// from `T` by libhdf5 to the dataset's type.
pub(crate) fn write_rows<T: H5Type + bytemuck::Pod>(
    ds: &Dataset,
    rows: Range<usize>,
    ncols: usize,
    data: &[T],
) -> hdf5::Result<()> {
    let mem = Datatype::from_type::<T>()?;
    transfer_rows(
        ds,
        rows,
        Some(ncols),
        &mem,
        Buffer::Write(bytemuck::cast_slice(data)),
    )
}

/// The in-memory (native byte order) record type of a 1-D compound dataset,
/// with its descriptor (field names, types, offsets in the native record).
/// Variable-length members are refused: libhdf5 would write pointers.
///
/// The memory type is libhdf5's native form of the file type
/// (`H5Tget_native_type`), and the descriptor is read from that same type, so
/// offsets agree by construction. Bitfield members — how PyTables stores a
/// pandas `bool` column — are described as unsigned integers of their size
/// (the `hdf5` crate has no descriptor for them, and libhdf5 converts
/// bitfields only to bitfields).
pub(crate) fn native_record_type(
    ds: &Dataset,
) -> hdf5::Result<(hdf5::types::TypeDescriptor, Datatype)> {
    let file_type = ds.dtype()?;
    // SAFETY: `file_type` is alive; the call returns a new type id (or < 0).
    let native = hdf5::sync::sync(|| unsafe {
        hdf5_sys::h5t::H5Tget_native_type(
            file_type.id(),
            hdf5_sys::h5t::H5T_direction_t::H5T_DIR_ASCEND,
        )
    });
    let mem = owned_datatype(native, "H5Tget_native_type")?;
    let desc = record_descriptor(&mem)?;
    if has_variable_length(&desc) {
        return Err(hdf5::Error::from(
            "variable-length fields are not supported".to_string(),
        ));
    }
    Ok((desc, mem))
}

/// Wraps a datatype id freshly returned by libhdf5 (reference count 1).
fn owned_datatype(id: hdf5_sys::h5i::hid_t, call: &str) -> hdf5::Result<Datatype> {
    if id < 0 {
        return Err(hdf5::Error::from(format!("{call} failed")));
    }
    // SAFETY: `id` is a new, valid datatype id that nothing else owns; the
    // handle takes over its single reference.
    unsafe { hdf5::from_id::<Datatype>(id) }
}

/// Like `Datatype::to_descriptor`, but describing bitfields (also inside
/// arrays and compounds) as unsigned integers of the same size.
fn record_descriptor(t: &Datatype) -> hdf5::Result<hdf5::types::TypeDescriptor> {
    use hdf5::types::{CompoundField, CompoundType, IntSize, TypeDescriptor as TD};
    use hdf5_sys::h5t::{self, H5T_class_t};
    let id = t.id();
    // SAFETY (every block below): `id` stays alive for the call; returned
    // ids are wrapped at once by `owned_datatype`; the member name is copied
    // and then freed with libhdf5's allocator; libhdf5 is serialised.
    match hdf5::sync::sync(|| unsafe { h5t::H5Tget_class(id) }) {
        H5T_class_t::H5T_BITFIELD => IntSize::from_int(t.size())
            .map(TD::Unsigned)
            .ok_or_else(|| hdf5::Error::from(format!("a bitfield of {} bytes", t.size()))),
        H5T_class_t::H5T_ARRAY => {
            let ndims = hdf5::sync::sync(|| unsafe { h5t::H5Tget_array_ndims(id) });
            if ndims != 1 {
                return t.to_descriptor();
            }
            let mut len: hdf5_sys::h5::hsize_t = 0;
            if hdf5::sync::sync(|| unsafe { h5t::H5Tget_array_dims2(id, &mut len) }) < 0 {
                return Err(hdf5::Error::from("H5Tget_array_dims2 failed".to_string()));
            }
            let base = owned_datatype(
                hdf5::sync::sync(|| unsafe { h5t::H5Tget_super(id) }),
                "H5Tget_super",
            )?;
            Ok(TD::FixedArray(
                Box::new(record_descriptor(&base)?),
                len as usize,
            ))
        }
        H5T_class_t::H5T_COMPOUND => {
            let n = hdf5::sync::sync(|| unsafe { h5t::H5Tget_nmembers(id) });
            if n < 0 {
                return Err(hdf5::Error::from("H5Tget_nmembers failed".to_string()));
            }
            let mut fields = Vec::with_capacity(n as usize);
            for i in 0..n as u32 {
                let name = hdf5::sync::sync(|| unsafe {
                    let p = h5t::H5Tget_member_name(id, i);
                    if p.is_null() {
                        return None;
                    }
                    let name = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
                    hdf5_sys::h5::H5free_memory(p.cast());
                    Some(name)
                })
                .ok_or_else(|| hdf5::Error::from(format!("no name for member {i}")))?;
                let offset = hdf5::sync::sync(|| unsafe { h5t::H5Tget_member_offset(id, i) });
                let member = owned_datatype(
                    hdf5::sync::sync(|| unsafe { h5t::H5Tget_member_type(id, i) }),
                    "H5Tget_member_type",
                )?;
                fields.push(CompoundField {
                    name,
                    ty: record_descriptor(&member)?,
                    offset,
                    index: i as usize,
                });
            }
            Ok(TD::Compound(CompoundType {
                fields,
                size: t.size(),
            }))
        }
        _ => t.to_descriptor(),
    }
}

/// Reads rows `rows` of a 1-D dataset as raw records of the memory type
/// `mem` (from [`native_record_type`]); `out` is resized to
/// `rows.len() * mem.size()` bytes.
pub(crate) fn read_records_raw(
    ds: &Dataset,
    mem: &Datatype,
    rows: Range<usize>,
    out: &mut Vec<u8>,
) -> hdf5::Result<()> {
    let bytes = rows
        .end
        .saturating_sub(rows.start)
        .checked_mul(mem.size())
        .ok_or_else(|| hdf5::Error::from("records too large to address".to_string()))?;
    out.clear();
    // An allocation that fails is an error here, not an abort.
    out.try_reserve_exact(bytes)
        .map_err(|e| hdf5::Error::from(format!("{bytes} bytes for the records: {e}")))?;
    out.resize(bytes, 0);
    transfer_rows(ds, rows, None, mem, Buffer::Read(out))
}

/// Writes records `rows` of a 1-D dataset from `bytes`, laid out as the
/// memory type `mem` (`rows.len() * mem.size()` bytes, no variable-length
/// members).
pub(crate) fn write_records_raw(
    ds: &Dataset,
    mem: &Datatype,
    rows: Range<usize>,
    bytes: &[u8],
) -> hdf5::Result<()> {
    transfer_rows(ds, rows, None, mem, Buffer::Write(bytes))
}

/// Reads a scalar fixed-length string (or opaque) attribute as its bytes,
/// trailing NULs removed.
pub(crate) fn read_fixed_string_attr(attr: &Attribute) -> hdf5::Result<Vec<u8>> {
    let dtype = attr.dtype()?;
    match dtype.to_descriptor()? {
        hdf5::types::TypeDescriptor::FixedAscii(_)
        | hdf5::types::TypeDescriptor::FixedUnicode(_) => {}
        hdf5::types::TypeDescriptor::VarLenAscii => {
            return Ok(attr
                .read_scalar::<hdf5::types::VarLenAscii>()?
                .as_bytes()
                .to_vec())
        }
        hdf5::types::TypeDescriptor::VarLenUnicode => {
            return Ok(attr
                .read_scalar::<hdf5::types::VarLenUnicode>()?
                .as_bytes()
                .to_vec())
        }
        other => {
            return Err(hdf5::Error::from(format!(
                "expected a string attribute, found {other:?}"
            )))
        }
    }
    let npoints = attr.space()?.size().max(1);
    if npoints != 1 {
        return Err(hdf5::Error::from(format!(
            "expected a scalar string attribute, found {npoints} values"
        )));
    }
    let mut buf = vec![0u8; dtype.size()];
    let status = hdf5::sync::sync(|| {
        // SAFETY: `buf` holds one value of the attribute's own fixed-size
        // type (dtype.size() bytes, one point); ids are alive; serialised.
        unsafe { hdf5_sys::h5a::H5Aread(attr.id(), dtype.id(), buf.as_mut_ptr().cast()) }
    });
    if status < 0 {
        return Err(hdf5::Error::from("H5Aread failed".to_string()));
    }
    while buf.last() == Some(&0) {
        buf.pop();
    }
    Ok(buf)
}

fn has_variable_length(t: &hdf5::types::TypeDescriptor) -> bool {
    use hdf5::types::TypeDescriptor as T;
    match t {
        T::VarLenArray(_) | T::VarLenAscii | T::VarLenUnicode | T::Reference(_) => true,
        T::FixedArray(inner, _) => has_variable_length(inner),
        T::Compound(c) => c.fields.iter().any(|f| has_variable_length(&f.ty)),
        _ => false,
    }
}
