//! An HDF5 shard: opening and validating it, and reading it in chunks.

use std::ops::Range;
use std::path::{Path, PathBuf};

use hdf5::types::{FloatSize, TypeDescriptor};

use super::zero_copy::{FloatType, MappedFile, RawArray};
use super::{Chunk, ChunkSource, RowChecks};
use crate::params::ParamsTable;
use crate::{Error, Layout, Result};

/// How a dataset is stored in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// One contiguous block at a byte offset (None: not allocated yet).
    Contiguous {
        /// Byte offset of the data in the file.
        offset: Option<u64>,
    },
    /// Chunked, with the chunk shape and the filter pipeline.
    Chunked {
        /// Shape of one HDF5 chunk, in elements per dimension.
        chunk: Vec<usize>,
        /// Filters, e.g. `deflate(4)`, `shuffle`.
        filters: Vec<String>,
    },
    /// Stored in the object header.
    Compact,
    /// A virtual dataset or another layout.
    Other,
}

impl std::fmt::Display for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Contiguous { offset: Some(o) } => write!(f, "contiguous at byte {o}"),
            Storage::Contiguous { offset: None } => write!(f, "contiguous, not allocated"),
            Storage::Chunked { chunk, filters } if filters.is_empty() => {
                write!(f, "chunked {chunk:?}")
            }
            Storage::Chunked { chunk, filters } => {
                write!(f, "chunked {chunk:?}, filters {}", filters.join(", "))
            }
            Storage::Compact => write!(f, "compact"),
            Storage::Other => write!(f, "other (virtual?)"),
        }
    }
}

/// What we know about one array dataset of a shard.
#[derive(Debug, Clone)]
pub struct ArrayInfo {
    /// Dataset path in the file.
    pub name: String,
    /// Dimensions as HDF5 reports them, e.g. `[rows, pixels]` for flux.
    pub shape: Vec<usize>,
    /// Element type, e.g. `float64 LE`.
    pub dtype: String,
    /// How HDF5 stores the data: contiguous, chunked (with filters), compact or other.
    pub storage: Storage,
    /// Whether the zero-copy (memory-map) path applies, or why not.
    pub zero_copy: std::result::Result<(), String>,
    float: Option<FloatType>,
}

/// An opened, validated shard: flux, error, optional noisy, params table,
/// wavelength grid, all with consistent shapes.
#[derive(Debug)]
pub struct Shard {
    path: PathBuf,
    layout: Layout,
    rows: usize,
    pixels: usize,
    file_len: u64,
    flux: (hdf5::Dataset, ArrayInfo),
    error: Option<(hdf5::Dataset, ArrayInfo)>,
    noisy: Option<(hdf5::Dataset, ArrayInfo)>,
    mask: Option<ArrayInfo>,
    params: ParamsTable,
    wave: Vec<f64>,
}

/// Which spectra a reader delivers in [`Chunk::flux`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spectra {
    /// Noiseless flux and its error (noise is added later, [`crate::noise`]).
    #[default]
    FluxError,
    /// The stored pre-noised `noisy` array (test files); no error is read.
    Noisy,
    /// Flux and error, and the stored `noisy` array into [`Chunk::noisy`]:
    /// SNR keys of the noiseless flux for rows whose models see the stored
    /// spectra.
    NoisyWithFluxError,
}

/// Which read path to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadPath {
    /// The zero-copy path where it applies, libhdf5 otherwise.
    #[default]
    Auto,
    /// Always libhdf5 hyperslabs.
    Hdf5,
}

/// What to do with a row that has a non-finite flux or error, a negative
/// error, or a non-finite params value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonFinitePolicy {
    /// Fail with an error naming file, dataset, row and column.
    #[default]
    Error,
    /// Mark the row in [`Chunk::skip`] and go on; callers count them.
    SkipRow,
}

/// Options of a [`ShardReader`].
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Which spectra to read.
    pub spectra: Spectra,
    /// Params columns to read, by name in the file, in this order.
    pub columns: Vec<String>,
    /// Memory map where it applies ([`ReadPath::Auto`]) or always libhdf5 hyperslabs.
    pub path: ReadPath,
    /// Policy for bad values.
    pub non_finite: NonFinitePolicy,
}

fn describe_float(dtype: &hdf5::Datatype) -> (String, Option<FloatType>) {
    let order = match dtype.byte_order() {
        hdf5::datatype::ByteOrder::LittleEndian => "LE",
        hdf5::datatype::ByteOrder::BigEndian => "BE",
        _ => "?",
    };
    // The memory map decodes IEEE little-endian bits itself: only a type
    // identical to the standard one qualifies (a float of 4 or 8 bytes with
    // another bit layout — found by fuzzing — goes through libhdf5, which
    // converts it).
    let standard = |t: hdf5::Result<hdf5::Datatype>| {
        cfg!(target_endian = "little") && t.is_ok_and(|t| &t == dtype)
    };
    match dtype.to_descriptor() {
        Ok(TypeDescriptor::Float(FloatSize::U8)) => (
            format!("float64 {order}"),
            standard(hdf5::Datatype::from_type::<f64>()).then_some(FloatType::F64Le),
        ),
        Ok(TypeDescriptor::Float(FloatSize::U4)) => (
            format!("float32 {order}"),
            standard(hdf5::Datatype::from_type::<f32>()).then_some(FloatType::F32Le),
        ),
        Ok(other) => (format!("{other}"), None),
        Err(_) => ("unknown".into(), None),
    }
}

fn array_info(ds: &hdf5::Dataset, name: &str, file_len: u64) -> ArrayInfo {
    let shape = ds.shape();
    let dtype = ds.dtype().ok();
    let (dtype_name, float) = dtype
        .as_ref()
        .map(describe_float)
        .unwrap_or(("unknown".into(), None));
    let storage = match ds.layout() {
        hdf5::dataset::Layout::Contiguous => Storage::Contiguous {
            offset: ds.offset(),
        },
        hdf5::dataset::Layout::Chunked => Storage::Chunked {
            chunk: ds.chunk().unwrap_or_default(),
            filters: ds
                .filters()
                .iter()
                .map(|f| format!("{f:?}").to_lowercase())
                .collect(),
        },
        hdf5::dataset::Layout::Compact => Storage::Compact,
        #[allow(unreachable_patterns)]
        _ => Storage::Other,
    };
    // The declared size; None when it overflows (a damaged shape).
    let size = dtype.as_ref().map_or(0, |d| d.size() as u64);
    let bytes = shape.iter().try_fold(size, |a, &d| a.checked_mul(d as u64));
    let zero_copy = match (&storage, float) {
        (_, None) => Err(format!(
            "element type {dtype_name} is not a little-endian float"
        )),
        (Storage::Contiguous { offset: Some(o) }, Some(_)) => {
            match bytes.and_then(|b| o.checked_add(b)) {
                Some(end) if end <= file_len => Ok(()),
                Some(end) => Err(format!(
                    "data at bytes {o}..{end} lie past the end of the {file_len}-byte file"
                )),
                None => Err(format!(
                    "data of shape {shape:?} × {size} bytes from byte {o} exceed 2^64 bytes"
                )),
            }
        }
        (Storage::Contiguous { offset: None }, _) => Err("storage not allocated".into()),
        (Storage::Chunked { .. }, _) => Err("chunked storage".into()),
        (Storage::Compact, _) => Err("compact storage".into()),
        (Storage::Other, _) => Err("virtual or unknown storage".into()),
    };
    ArrayInfo {
        name: name.to_string(),
        shape,
        dtype: dtype_name,
        storage,
        zero_copy,
        float,
    }
}

/// Refuses an array whose allocated storage cannot hold its declared rows.
///
/// Unwritten chunks (or an unallocated contiguous block) read as the fill
/// value, so a file of a few kilobytes could declare 2^40 rows × P of zeros
/// and keep every command reading for ever. Chunked data are judged by the
/// number of allocated chunks against the number the shape needs (not by
/// bytes: compressed chunks are legitimately smaller than the raw data);
/// contiguous data by the allocated bytes against the raw size.
fn check_allocated(path: &Path, ds: &hdf5::Dataset, info: &ArrayInfo) -> Result<()> {
    let elem = ds.dtype().map_or(0, |t| t.size() as u128);
    let declared: u128 = info.shape.iter().map(|&d| d as u128).product::<u128>() * elem;
    if declared == 0 {
        return Ok(());
    }
    let rows = info.shape.first().copied().unwrap_or(0);
    let shape = info
        .shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" × ");
    let refuse = |expected: String, found: String| Error::Layout {
        path: path.to_path_buf(),
        dataset: info.name.clone(),
        expected,
        found: format!("{found}: the rows were never written (they would read as fill values)"),
    };
    match &info.storage {
        Storage::Contiguous { .. } if u128::from(ds.storage_size()) < declared => Err(refuse(
            format!("{declared} bytes of storage for the declared {rows} rows ({shape})"),
            format!("{} bytes allocated", ds.storage_size()),
        )),
        Storage::Chunked { chunk, .. } => {
            if chunk.len() != info.shape.len() || chunk.contains(&0) {
                return Err(Error::Layout {
                    path: path.to_path_buf(),
                    dataset: info.name.clone(),
                    expected: format!("a chunk shape of {} positive extents", info.shape.len()),
                    found: format!("chunk shape {chunk:?}"),
                });
            }
            let needed: u128 = info
                .shape
                .iter()
                .zip(chunk)
                .map(|(&d, &c)| (d as u128).div_ceil(c as u128))
                .product();
            let Some(have) = ds.num_chunks() else {
                return Err(Error::hdf5(
                    path,
                    format!("counting the allocated chunks of {}", info.name),
                    "the chunk index cannot be read (damaged file?)"
                        .to_string()
                        .into(),
                ));
            };
            if (have as u128) < needed {
                return Err(refuse(
                    format!("{needed} chunks of {chunk:?} for the declared {rows} rows ({shape})"),
                    // Counting bytes walks the chunk index again: only when refusing.
                    format!("{have} chunks allocated ({} bytes)", ds.storage_size()),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether every link of the absolute path `dataset` exists.
fn exists(file: &hdf5::File, dataset: &str) -> bool {
    let mut prefix = String::new();
    for part in dataset.split('/').filter(|p| !p.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        if !file.link_exists(&prefix) {
            return false;
        }
    }
    !prefix.is_empty()
}

/// Whether the HDF5 signature is at byte 0, 512, 1024, 2048, … (libhdf5
/// looks there too: files may start with a user block).
fn has_hdf5_signature(path: &Path, file_len: u64) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut offset = 0u64;
    while offset + 8 <= file_len {
        let mut sig = [0u8; 8];
        if f.seek(SeekFrom::Start(offset)).is_err() || f.read_exact(&mut sig).is_err() {
            return false;
        }
        if sig == *b"\x89HDF\r\n\x1a\n" {
            return true;
        }
        offset = if offset == 0 { 512 } else { offset * 2 };
    }
    false
}

/// A dataset opened for reading with what we know about it.
type Array = (hdf5::Dataset, ArrayInfo);

/// The HDF5 file [`Shard::open`] validates, with its path and size: what
/// every check needs, and what its errors name.
struct OpenFile<'a> {
    path: &'a Path,
    file: hdf5::File,
    file_len: u64,
}

impl<'a> OpenFile<'a> {
    /// Opens `path` as HDF5; a directory, or a file without the HDF5
    /// signature, is refused with a message that says so (libhdf5's own
    /// does not).
    fn open(path: &'a Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::io(
                path,
                std::io::Error::other("is a directory, not an HDF5 file"),
            ));
        }
        let file_len = meta.len();
        let file = hdf5::File::open(path).map_err(|e| {
            let is_hdf5 = has_hdf5_signature(path, file_len);
            if is_hdf5 {
                Error::hdf5(path, "opening as HDF5 (truncated or damaged file?)", e)
            } else {
                Error::hdf5(
                    path,
                    "opening as HDF5",
                    "not an HDF5 file (no HDF5 signature)".to_string().into(),
                )
            }
        })?;
        Ok(OpenFile {
            path,
            file,
            file_len,
        })
    }

    /// `dataset` is absent: the error lists the top-level members, which
    /// usually shows the layout that was meant.
    fn missing(&self, dataset: &str) -> Error {
        let groups = self.file.member_names().unwrap_or_default();
        Error::MissingDataset {
            path: self.path.to_path_buf(),
            dataset: dataset.to_string(),
            found: format!("; top-level members: [{}]", groups.join(", ")),
        }
    }

    /// Why `dataset` could not be opened. A dataset that exists but cannot
    /// be opened (damaged, or written in a newer format than this libhdf5
    /// reads) is not "missing": say why.
    fn unopenable(&self, dataset: &str, e: hdf5::Error) -> Error {
        if exists(&self.file, dataset) {
            Error::hdf5(self.path, format!("opening {dataset}"), e)
        } else {
            self.missing(dataset)
        }
    }

    /// `dataset` is not what the layout needs.
    fn layout_err(&self, dataset: &str, expected: &str, found: String) -> Error {
        Error::Layout {
            path: self.path.to_path_buf(),
            dataset: dataset.to_string(),
            expected: expected.to_string(),
            found,
        }
    }

    /// The array `name`; None when it is optional (`!required`) and absent.
    fn array(&self, name: &str, required: bool) -> Result<Option<Array>> {
        match self.file.dataset(name) {
            Ok(ds) => {
                let info = array_info(&ds, name, self.file_len);
                Ok(Some((ds, info)))
            }
            // Optional and absent; an optional dataset that exists
            // but cannot be opened (damaged) is an error, not "missing".
            Err(_) if !required && !exists(&self.file, name) => Ok(None),
            Err(e) => Err(self.unopenable(name, e)),
        }
    }

    /// Refuses an array whose elements are not float32 or float64 (of
    /// either byte order: libhdf5 converts what the memory map cannot read).
    fn check_float(&self, info: &ArrayInfo) -> Result<()> {
        if info.float.is_none() && !info.dtype.starts_with("float") {
            return Err(self.layout_err(
                &info.name,
                "float32 or float64 values",
                info.dtype.clone(),
            ));
        }
        Ok(())
    }

    /// The flux array and its (rows, pixels): it fixes the shape every
    /// other dataset must match, so it must be a non-empty 2-D float array.
    fn flux(&self, layout: &Layout) -> Result<(Array, usize, usize)> {
        let flux = self
            .array(&layout.flux, true)?
            .ok_or_else(|| self.missing(&layout.flux))?;
        let shape = &flux.1.shape;
        if shape.len() != 2 {
            return Err(self.layout_err(
                &layout.flux,
                "a 2-D (rows, pixels) array",
                format!("shape {shape:?}"),
            ));
        }
        let (rows, pixels) = (shape[0], shape[1]);
        if rows == 0 || pixels == 0 {
            return Err(self.layout_err(
                &layout.flux,
                "at least one row and one pixel",
                format!("shape {shape:?}"),
            ));
        }
        self.check_float(&flux.1)?;
        Ok((flux, rows, pixels))
    }

    /// An optional array (error, noisy), refused unless it is a float array
    /// of the shape of `flux`.
    fn like_flux(
        &self,
        a: Option<Array>,
        flux: &ArrayInfo,
        layout: &Layout,
    ) -> Result<Option<Array>> {
        if let Some((_, info)) = &a {
            let shape = &flux.shape;
            if info.shape != *shape {
                return Err(self.layout_err(
                    &info.name,
                    &format!("shape {shape:?} like {}", layout.flux),
                    format!("shape {:?}", info.shape),
                ));
            }
            self.check_float(info)?;
        }
        Ok(a)
    }

    /// The params table, which must have one row per spectrum.
    fn params(&self, layout: &Layout, rows: usize) -> Result<ParamsTable> {
        let params = ParamsTable::open(&self.file, self.path, &layout.params)?;
        if params.rows() != rows {
            return Err(self.layout_err(
                &layout.params,
                &format!("{rows} rows like {}", layout.flux),
                format!("{} rows", params.rows()),
            ));
        }
        Ok(params)
    }

    /// The wavelength grid: one finite value per pixel.
    fn wave(&self, layout: &Layout, pixels: usize) -> Result<Vec<f64>> {
        let wave_ds = self
            .file
            .dataset(&layout.wave)
            .map_err(|e| self.unopenable(&layout.wave, e))?;
        // Check the shape before reading: a damaged file may declare 2^40 values.
        if wave_ds.ndim() != 1 || wave_ds.size() != pixels {
            return Err(self.layout_err(
                &layout.wave,
                &format!("{pixels} wavelengths (one per pixel of {})", layout.flux),
                format!("shape {:?}", wave_ds.shape()),
            ));
        }
        let wave: Vec<f64> = wave_ds
            .read_raw::<f64>()
            .map_err(|e| Error::hdf5(self.path, format!("reading {}", layout.wave), e))?;
        if let Some(i) = wave.iter().position(|w| !w.is_finite()) {
            return Err(Error::BadValue {
                path: self.path.to_path_buf(),
                dataset: layout.wave.clone(),
                row: i,
                column: "wavelength".into(),
                problem: format!("non-finite wavelength {}", wave[i]),
            });
        }
        Ok(wave)
    }

    /// Refuses contiguous data of `rows` × `pixels` that would run past the
    /// end of the file (a truncated file), whichever read path is taken.
    fn check_inside(&self, info: &ArrayInfo, rows: usize, pixels: usize) -> Result<()> {
        let file_len = self.file_len;
        if let Storage::Contiguous { offset: Some(o) } = info.storage {
            let width: u64 = if info.dtype.starts_with("float32") {
                4
            } else {
                8
            };
            // Saturating: a damaged shape may declare more than 2^64 bytes.
            let bytes = (rows as u64)
                .saturating_mul(pixels as u64)
                .saturating_mul(width);
            if o.saturating_add(bytes) > file_len {
                return Err(self.layout_err(
                    &info.name,
                    &format!("{bytes} bytes of data from byte {o}"),
                    format!("a file of only {file_len} bytes (truncated?)"),
                ));
            }
        }
        Ok(())
    }
}

impl Shard {
    /// Opens `path` with `layout` and validates it: datasets present, 2-D
    /// float arrays of one shape (N, P) with N ≥ 1, a params table of N rows,
    /// a wavelength grid of P values, contiguous data inside the file, and
    /// storage allocated for every declared row of flux, error and noisy
    /// (unwritten rows would read as fill values; a tiny file declaring 2^40
    /// rows is refused here instead of being read for ever).
    pub fn open(path: impl AsRef<Path>, layout: &Layout) -> Result<Self> {
        let path = path.as_ref();
        let f = OpenFile::open(path)?;
        let (flux, rows, pixels) = f.flux(layout)?;
        let error = f.like_flux(f.array(&layout.error, false)?, &flux.1, layout)?;
        let noisy = f.like_flux(f.array(&layout.noisy, false)?, &flux.1, layout)?;
        if error.is_none() && noisy.is_none() {
            return Err(f.missing(&layout.error));
        }
        for (ds, info) in [Some(&flux), error.as_ref(), noisy.as_ref()]
            .into_iter()
            .flatten()
        {
            check_allocated(path, ds, info)?;
        }
        let mask = f.array(&layout.mask, false)?.map(|(_, info)| info);
        let params = f.params(layout, rows)?;
        let wave = f.wave(layout, pixels)?;
        for info in [
            Some(&flux.1),
            error.as_ref().map(|e| &e.1),
            noisy.as_ref().map(|e| &e.1),
        ]
        .into_iter()
        .flatten()
        {
            f.check_inside(info, rows, pixels)?;
        }
        Ok(Shard {
            path: path.to_path_buf(),
            layout: layout.clone(),
            rows,
            pixels,
            file_len: f.file_len,
            flux,
            error,
            noisy,
            mask,
            params,
            wave,
        })
    }

    /// The path the shard was opened with, as given to [`Shard::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Rows (spectra).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Pixels per spectrum.
    pub fn pixels(&self) -> usize {
        self.pixels
    }
    /// File size in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }
    /// The wavelength grid (Å).
    pub fn wave(&self) -> &[f64] {
        &self.wave
    }
    /// The params table.
    pub fn params(&self) -> &ParamsTable {
        &self.params
    }
    /// The arrays present: flux, then error, noisy and mask when present.
    pub fn arrays(&self) -> Vec<&ArrayInfo> {
        [
            Some(&self.flux.1),
            self.error.as_ref().map(|e| &e.1),
            self.noisy.as_ref().map(|e| &e.1),
            self.mask.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
    /// Whether a stored `noisy` array is present.
    pub fn has_noisy(&self) -> bool {
        self.noisy.is_some()
    }

    /// A reader of this shard, recording `shard_index` in its chunks.
    pub fn reader(&self, shard_index: u64, options: &ReadOptions) -> Result<ShardReader> {
        let array =
            |entry: Option<&(hdf5::Dataset, ArrayInfo)>, name: &str| -> Result<ArrayReader> {
                let (ds, info) = entry.ok_or_else(|| Error::MissingDataset {
                    path: self.path.clone(),
                    dataset: name.to_string(),
                    found: String::new(),
                })?;
                match (options.path, &info.zero_copy, info.float, &info.storage) {
                    (
                        ReadPath::Auto,
                        Ok(()),
                        Some(float),
                        Storage::Contiguous {
                            offset: Some(offset),
                        },
                    ) => {
                        let map = MappedFile::open(&self.path)?;
                        Ok(ArrayReader::Mapped(RawArray::new(
                            map,
                            *offset,
                            self.rows,
                            self.pixels,
                            float,
                        )?))
                    }
                    _ => Ok(ArrayReader::Hdf5(ds.clone())),
                }
            };
        let (flux, error, flux_name) = match options.spectra {
            Spectra::FluxError | Spectra::NoisyWithFluxError => (
                array(Some(&self.flux), &self.layout.flux)?,
                Some(array(self.error.as_ref(), &self.layout.error)?),
                self.layout.flux.clone(),
            ),
            Spectra::Noisy => (
                array(self.noisy.as_ref(), &self.layout.noisy)?,
                None,
                self.layout.noisy.clone(),
            ),
        };
        let noisy = match options.spectra {
            Spectra::NoisyWithFluxError => Some(array(self.noisy.as_ref(), &self.layout.noisy)?),
            _ => None,
        };
        let cols = options
            .columns
            .iter()
            .map(|c| self.params.column_index(c))
            .collect::<Result<Vec<_>>>()?;
        Ok(ShardReader {
            path: self.path.clone(),
            checks: RowChecks {
                path: self.path.clone(),
                flux: flux_name,
                error: self.layout.error.clone(),
                noisy: self.layout.noisy.clone(),
                params: self.layout.params.clone(),
                columns: options.columns.clone(),
                policy: options.non_finite,
                lenient_params: false,
            },
            index: shard_index,
            rows: self.rows,
            pixels: self.pixels,
            flux,
            error,
            noisy,
            params: self.params.clone(),
            cols,
            scratch: Vec::new(),
        })
    }
}

#[derive(Debug)]
enum ArrayReader {
    Mapped(RawArray<MappedFile>),
    Hdf5(hdf5::Dataset),
}

impl ArrayReader {
    fn is_mapped(&self) -> bool {
        matches!(self, ArrayReader::Mapped(_))
    }
}

/// Reads chunks of one shard (see [`Shard::reader`]).
#[derive(Debug)]
pub struct ShardReader {
    path: PathBuf,
    /// The names errors give (flux, error, noisy, params datasets and columns).
    checks: RowChecks,
    index: u64,
    rows: usize,
    pixels: usize,
    flux: ArrayReader,
    error: Option<ArrayReader>,
    noisy: Option<ArrayReader>,
    params: ParamsTable,
    cols: Vec<usize>,
    scratch: Vec<u8>,
}

impl ShardReader {
    /// Passes non-finite params values through instead of applying the
    /// policy: predict still predicts a row of unknown log g.
    pub(crate) fn lenient_params(mut self) -> Self {
        self.checks.lenient_params = true;
        self
    }

    /// Whether the flux (and error) are read through the memory map.
    pub fn zero_copy(&self) -> bool {
        self.flux.is_mapped()
            && self.error.as_ref().is_none_or(ArrayReader::is_mapped)
            && self.noisy.as_ref().is_none_or(ArrayReader::is_mapped)
    }

    fn read_array(
        &self,
        which: &ArrayReader,
        name: &str,
        rows: Range<usize>,
        out: &mut [f64],
    ) -> Result<()> {
        match which {
            ArrayReader::Mapped(raw) => {
                raw.populate_rows(rows.clone());
                raw.read_rows(rows.clone(), out)?;
                raw.release_rows(rows);
                Ok(())
            }
            ArrayReader::Hdf5(ds) => {
                crate::h5raw::read_rows_into(ds, rows.clone(), self.pixels, out).map_err(|e| {
                    Error::hdf5(
                        &self.path,
                        format!("reading {name} rows {}..{}", rows.start, rows.end),
                        e,
                    )
                })
            }
        }
    }
}

impl ChunkSource for ShardReader {
    fn rows(&self) -> usize {
        self.rows
    }
    fn pixels(&self) -> usize {
        self.pixels
    }
    fn shard_index(&self) -> u64 {
        self.index
    }
    fn origin(&self) -> PathBuf {
        self.path.clone()
    }
    fn read_chunk(&mut self, rows: Range<usize>, chunk: &mut Chunk) -> Result<()> {
        if rows.start > rows.end || rows.end > self.rows {
            return Err(Error::shape(
                format!("{}: rows", self.path.display()),
                format!("a range within 0..{}", self.rows),
                format!("{}..{}", rows.start, rows.end),
            ));
        }
        chunk.reset(
            self.index,
            rows.clone(),
            self.pixels,
            self.cols.len(),
            self.error.is_some(),
            self.noisy.is_some(),
        );
        self.read_array(&self.flux, &self.checks.flux, rows.clone(), &mut chunk.flux)?;
        if let Some(error) = &self.error {
            self.read_array(error, &self.checks.error, rows.clone(), &mut chunk.error)?;
        }
        if let Some(noisy) = &self.noisy {
            self.read_array(noisy, &self.checks.noisy, rows.clone(), &mut chunk.noisy)?;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self
            .params
            .read(rows, &self.cols, &mut chunk.params, &mut scratch);
        self.scratch = scratch;
        result?;
        self.checks.check(chunk)
    }
}
