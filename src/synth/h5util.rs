//! The few libhdf5 writes the high-level `hdf5` crate cannot express.
//!
//! * Writing a row range of a 2-D dataset from a caller-owned `f64` buffer
//!   (hyperslab `H5Dwrite`; libhdf5 converts to the file's f32 when asked),
//!   without `ndarray`.
//! * Writing records of a 1-D compound dataset from raw native bytes.
//! * Attributes with the exact types PyTables writes: fixed-length
//!   NUL-terminated strings in ASCII or UTF-8, empty (`H5S_NULL`) strings,
//!   and 8-bit bitfields (numpy `bool`).
//!
//! Each is one libhdf5 call sequence on ids from the safe API, under the
//! crate's global libhdf5 lock (`hdf5::sync::sync`). Every id created here is
//! closed on every path.

use hdf5::{H5Type, Location};
use hdf5_sys::h5i::hid_t;

/// The character set of a string attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cset {
    /// `H5T_CSET_ASCII` (PyTables uses it for pickled values).
    Ascii,
    /// `H5T_CSET_UTF8` (PyTables uses it for `str` values).
    Utf8,
}

pub(crate) use crate::h5raw::{write_records_raw, write_rows};

/// A fixed-length, NUL-terminated string type of `size` bytes (at least 1).
/// The caller closes the returned id.
///
/// # Safety
/// Must run under the libhdf5 lock.
unsafe fn string_type(size: usize, cset: Cset) -> hid_t {
    use hdf5_sys::h5t::*;
    // SAFETY: the caller holds the lock; H5T_C_S1 is a valid predefined id
    // once the library is open (it is: a file is open).
    unsafe {
        let t = H5Tcopy(*H5T_C_S1);
        if t < 0 {
            return t;
        }
        let cs = match cset {
            Cset::Ascii => H5T_cset_t::H5T_CSET_ASCII,
            Cset::Utf8 => H5T_cset_t::H5T_CSET_UTF8,
        };
        if H5Tset_size(t, size.max(1)) < 0
            || H5Tset_strpad(t, H5T_str_t::H5T_STR_NULLTERM) < 0
            || H5Tset_cset(t, cs) < 0
        {
            H5Tclose(t);
            return -1;
        }
        t
    }
}

/// Creates attribute `name` on `loc` with type `tid` and dataspace `sid`, and
/// writes `data` (None: nothing to write, for `H5S_NULL`). Closes `tid` and
/// `sid`.
///
/// # Safety
/// Must run under the libhdf5 lock; `data` must hold one value of `tid` (or
/// be None for a null dataspace); `tid` and `sid` are valid or negative.
unsafe fn create_attr(
    loc: hid_t,
    name: &str,
    tid: hid_t,
    sid: hid_t,
    data: Option<*const std::ffi::c_void>,
) -> hdf5::Result<()> {
    use hdf5_sys::{h5a, h5p::H5P_DEFAULT, h5s, h5t};
    let cname = std::ffi::CString::new(name)
        .map_err(|_| hdf5::Error::from(format!("attribute name {name:?} contains NUL")))?;
    // SAFETY: see the function contract; every id is closed below.
    unsafe {
        let mut ok = tid >= 0 && sid >= 0;
        if ok {
            let aid = h5a::H5Acreate2(loc, cname.as_ptr(), tid, sid, H5P_DEFAULT, H5P_DEFAULT);
            if aid < 0 {
                ok = false;
            } else {
                if let Some(ptr) = data {
                    ok = h5a::H5Awrite(aid, tid, ptr) >= 0;
                }
                ok &= h5a::H5Aclose(aid) >= 0;
            }
        }
        if tid >= 0 {
            h5t::H5Tclose(tid);
        }
        if sid >= 0 {
            h5s::H5Sclose(sid);
        }
        if ok {
            Ok(())
        } else {
            Err(hdf5::Error::from(format!("writing attribute {name}")))
        }
    }
}

/// Writes a scalar fixed-length NUL-terminated string attribute holding
/// exactly `value` (no terminator stored when it fills the size, as PyTables
/// and numpy do).
pub(crate) fn attr_str(loc: &Location, name: &str, value: &[u8], cset: Cset) -> hdf5::Result<()> {
    let mut buf = value.to_vec();
    if buf.is_empty() {
        buf.push(0);
    }
    hdf5::sync::sync(|| {
        // SAFETY: under the lock; `buf` holds one value of the string type of
        // size buf.len(); the scalar dataspace matches.
        unsafe {
            let tid = string_type(buf.len(), cset);
            let sid = hdf5_sys::h5s::H5Screate(hdf5_sys::h5s::H5S_class_t::H5S_SCALAR);
            create_attr(loc.id(), name, tid, sid, Some(buf.as_ptr().cast()))
        }
    })
}

/// Writes an empty string attribute the way PyTables writes `TITLE = ''`:
/// one-byte UTF-8 string type on a null dataspace.
pub(crate) fn attr_empty_str(loc: &Location, name: &str) -> hdf5::Result<()> {
    hdf5::sync::sync(|| {
        // SAFETY: under the lock; a null dataspace takes no data.
        unsafe {
            let tid = string_type(1, Cset::Utf8);
            let sid = hdf5_sys::h5s::H5Screate(hdf5_sys::h5s::H5S_class_t::H5S_NULL);
            create_attr(loc.id(), name, tid, sid, None)
        }
    })
}

/// Writes a scalar 8-bit little-endian bitfield attribute (numpy `bool`).
pub(crate) fn attr_bool(loc: &Location, name: &str, value: bool) -> hdf5::Result<()> {
    let byte = u8::from(value);
    hdf5::sync::sync(|| {
        // SAFETY: under the lock; `byte` is one 1-byte value of the copied
        // B8LE type; scalar dataspace.
        unsafe {
            let tid = hdf5_sys::h5t::H5Tcopy(*hdf5_sys::h5t::H5T_STD_B8LE);
            let sid = hdf5_sys::h5s::H5Screate(hdf5_sys::h5s::H5S_class_t::H5S_SCALAR);
            create_attr(loc.id(), name, tid, sid, Some((&byte as *const u8).cast()))
        }
    })
}

/// Writes a scalar numeric attribute of type `T` (i64, f64, …).
pub(crate) fn attr_scalar<T: H5Type>(loc: &Location, name: &str, value: T) -> hdf5::Result<()> {
    loc.new_attr::<T>().create(name)?.write_scalar(&value)
}
