//! The zero-copy path: a contiguous, unfiltered, little-endian float dataset
//! read straight from a memory map of the file.
//!
//! libhdf5 copies every hyperslab through its own machinery under a global
//! lock; for the common layout of the real shards (contiguous f64) the bytes
//! of rows `[a, b)` are one range of the file. We map the file once
//! ([`memmap2`]) and decode that range into the caller's f64 buffer: a plain
//! `memcpy` for little-endian f64 on a little-endian host (h5py stores data at
//! unaligned offsets, so the mapped bytes are copied, never cast in place),
//! an element-wise widening for f32.
//!
//! [`RawArray`] works over any byte container, so the fuzzer drives it with
//! arbitrary bytes, offsets, shapes and dtypes; its constructor checks every
//! bound with overflow-checked arithmetic, and `read_rows` cannot read out of
//! bounds.

use std::ops::Range;

use crate::{Error, Result};

/// Element type of a raw float array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatType {
    /// Little-endian IEEE binary32.
    F32Le,
    /// Little-endian IEEE binary64.
    F64Le,
}

impl FloatType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            FloatType::F32Le => 4,
            FloatType::F64Le => 8,
        }
    }
}

/// A 2-D row-major float array stored at `offset` in `bytes`.
#[derive(Debug)]
pub struct RawArray<B> {
    bytes: B,
    offset: usize,
    rows: usize,
    cols: usize,
    dtype: FloatType,
}

impl<B: AsRef<[u8]>> RawArray<B> {
    /// Checks that `rows × cols` elements of `dtype` starting at `offset` lie
    /// inside `bytes`.
    pub fn new(bytes: B, offset: u64, rows: usize, cols: usize, dtype: FloatType) -> Result<Self> {
        let len = bytes.as_ref().len();
        let need = rows
            .checked_mul(cols)
            .and_then(|n| n.checked_mul(dtype.size()))
            .and_then(|n| usize::try_from(offset).ok().and_then(|o| o.checked_add(n)));
        match need {
            Some(end) if end <= len => Ok(RawArray {
                bytes,
                offset: offset as usize,
                rows,
                cols,
                dtype,
            }),
            _ => Err(Error::shape(
                format!(
                    "{rows} × {cols} values of {} bytes at offset {offset}",
                    dtype.size()
                ),
                "to fit in the mapped bytes",
                format!("{len} bytes"),
            )),
        }
    }

    /// Number of rows (first dimension), as given to [`RawArray::new`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Values per row (second dimension; the pixels of a spectra array).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Decodes rows `rows` into `out` (`rows.len() × cols` values).
    pub fn read_rows(&self, rows: Range<usize>, out: &mut [f64]) -> Result<()> {
        let n = rows
            .end
            .checked_sub(rows.start)
            .filter(|_| rows.end <= self.rows);
        let Some(n) = n.filter(|&n| out.len() == n * self.cols) else {
            return Err(Error::shape(
                format!("rows {}..{}", rows.start, rows.end),
                format!(
                    "rows within the array's {}, into a buffer of {} values per row",
                    self.rows, self.cols
                ),
                format!("a buffer of {} values", out.len()),
            ));
        };
        let size = self.dtype.size();
        let a = self.offset + rows.start * self.cols * size;
        let src = &self.bytes.as_ref()[a..a + n * self.cols * size];
        match self.dtype {
            FloatType::F64Le if cfg!(target_endian = "little") => {
                bytemuck::cast_slice_mut::<f64, u8>(out).copy_from_slice(src);
            }
            FloatType::F64Le => {
                for (o, b) in out.iter_mut().zip(src.chunks_exact(8)) {
                    *o = f64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                }
            }
            FloatType::F32Le => {
                for (o, b) in out.iter_mut().zip(src.chunks_exact(4)) {
                    *o = f32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as f64;
                }
            }
        }
        Ok(())
    }
}

/// A read-only memory map of a whole file.
#[derive(Debug)]
pub(crate) struct MappedFile(memmap2::Mmap);

impl MappedFile {
    /// Maps `path` read-only.
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only and private to this process. If another
        // process truncates or rewrites the shard while we read it, reads may
        // see the new bytes or fault (SIGBUS) — the same hazard as any reader
        // of a file being rewritten; shards are written once and then only
        // read. Measured reason for the map: see benches/reader.rs (the
        // libhdf5 path copies through its own buffers under a global lock).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        // Rows are read front to back: let the kernel read ahead (a hint).
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(MappedFile(map))
    }

    /// Drops the pages of bytes `[offset, offset + len)` from this process's
    /// resident set once they have been copied out; the page cache keeps
    /// them. Without it a pass over a 20 GB shard would count 20 GB of mapped
    /// file pages against its peak RSS (measured: 11 GiB for 8 GB of shards).
    pub fn release(&self, offset: usize, len: usize) {
        let end = offset.saturating_add(len).min(self.0.len());
        if offset >= end {
            return;
        }
        // SAFETY: the range lies inside the map (clamped above); the map is a
        // read-only shared mapping of a file, so MADV_DONTNEED only unmaps
        // the pages — a later access faults them in again from the file with
        // the same contents — and no reference into the range is held here.
        let _ = unsafe {
            self.0
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, end - offset)
        };
    }
}

impl MappedFile {
    /// Faults in bytes `[offset, offset + len)` with one system call
    /// (MADV_POPULATE_READ, Linux ≥ 5.14) instead of one page fault per 4 KiB
    /// page; a hint, ignored where unsupported.
    pub(crate) fn populate(&self, offset: usize, len: usize) {
        let end = offset.saturating_add(len).min(self.0.len());
        if offset < end {
            let _ = self
                .0
                .advise_range(memmap2::Advice::PopulateRead, offset, end - offset);
        }
    }
}

impl RawArray<MappedFile> {
    /// Faults in the mapped pages of rows `rows` in one call (see
    /// [`MappedFile::populate`]).
    pub(crate) fn populate_rows(&self, rows: Range<usize>) {
        let row_bytes = self.cols * self.dtype.size();
        let start = self.offset + rows.start.min(self.rows) * row_bytes;
        let end = self.offset + rows.end.min(self.rows) * row_bytes;
        self.bytes.populate(start, end.saturating_sub(start));
    }

    /// Releases the mapped pages of rows `rows` (see [`MappedFile::release`]).
    pub(crate) fn release_rows(&self, rows: Range<usize>) {
        let row_bytes = self.cols * self.dtype.size();
        let start = self.offset + rows.start.min(self.rows) * row_bytes;
        let end = self.offset + rows.end.min(self.rows) * row_bytes;
        // A page shared with the next rows may go too: it faults back in from the page cache.
        self.bytes.release(start, end.saturating_sub(start));
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unaligned_offsets_and_both_dtypes_decode() {
        let values: Vec<f64> = (0..24).map(|i| i as f64 * 0.5 - 3.0).collect();
        for offset in [0usize, 1, 3, 7, 88622 % 8] {
            let mut bytes = vec![0xAAu8; offset];
            bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            let a = RawArray::new(&bytes[..], offset as u64, 4, 6, FloatType::F64Le).unwrap();
            let mut out = vec![0.0; 12];
            a.read_rows(1..3, &mut out).unwrap();
            assert_eq!(out, values[6..18]);

            let mut bytes32 = vec![0u8; offset];
            bytes32.extend(values.iter().flat_map(|&v| (v as f32).to_le_bytes()));
            let a = RawArray::new(&bytes32[..], offset as u64, 4, 6, FloatType::F32Le).unwrap();
            a.read_rows(2..4, &mut out).unwrap();
            assert_eq!(out, values[12..24]);
        }
    }

    #[test]
    // A reversed range is one of the inputs refused (clippy flags it as a mistake).
    #[allow(clippy::reversed_empty_ranges)]
    fn out_of_bounds_is_refused() {
        let bytes = vec![0u8; 100];
        assert!(RawArray::new(&bytes[..], 0, 13, 1, FloatType::F64Le).is_err());
        assert!(RawArray::new(&bytes[..], 93, 1, 1, FloatType::F64Le).is_err());
        assert!(RawArray::new(&bytes[..], u64::MAX, 1, 1, FloatType::F64Le).is_err());
        assert!(RawArray::new(&bytes[..], 0, usize::MAX, 2, FloatType::F32Le).is_err());
        let a = RawArray::new(&bytes[..], 4, 3, 4, FloatType::F64Le).unwrap();
        let mut out = vec![0.0; 4];
        assert!(a.read_rows(2..4, &mut out).is_err());
        assert!(a.read_rows(2..1, &mut out).is_err());
        assert!(a.read_rows(0..1, &mut out[..3]).is_err());
    }
}
