//! Reading the params table.
//!
//! Two on-disk forms are understood:
//!
//! * **fields** — a 1-D compound dataset with one named scalar field per
//!   column (what `h5py` writes from a numpy structured array);
//! * **pandas** — what `DataFrame.to_hdf(format="table")` writes without data
//!   columns (the real pfsspec files): fields `index`, `values_block_K`
//!   (fixed-size arrays, one per dtype), with the names of block K's columns
//!   pickled in the table attribute `values_block_K_kind` ([`pickle`]).
//!
//! Columns are read by name into f64 (integers and booleans converted);
//! string columns are listed but cannot be read as numbers. The table is read
//! in row ranges, as raw records in native byte order, and decoded here.

pub mod pickle;

use std::ops::Range;
use std::path::{Path, PathBuf};

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};

use crate::{Error, Result};

/// Which on-disk form the table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// One named compound field per column.
    Fields,
    /// pandas/PyTables `values_block_K` blocks with pickled names.
    PandasBlocks,
}

impl std::fmt::Display for TableFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TableFormat::Fields => "compound fields",
            TableFormat::PandasBlocks => "pandas table (values_block_K, pickled names)",
        })
    }
}

/// The largest params record accepted (bytes per row): 2^17 f64 columns.
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 20;

/// The scalar type of one column in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// IEEE float of 4 or 8 bytes.
    Float(usize),
    /// Signed integer of 1, 2, 4 or 8 bytes.
    Int(usize),
    /// Unsigned integer of 1, 2, 4 or 8 bytes.
    Uint(usize),
    /// Boolean (one byte).
    Bool,
    /// Anything else (strings, nested types): listed, not readable as a number.
    Other,
}

impl ColumnKind {
    fn from_descriptor(t: &TypeDescriptor) -> Self {
        let int = |s: &IntSize| match s {
            IntSize::U1 => 1,
            IntSize::U2 => 2,
            IntSize::U4 => 4,
            IntSize::U8 => 8,
        };
        match t {
            TypeDescriptor::Float(FloatSize::U4) => ColumnKind::Float(4),
            TypeDescriptor::Float(FloatSize::U8) => ColumnKind::Float(8),
            TypeDescriptor::Integer(s) => ColumnKind::Int(int(s)),
            TypeDescriptor::Unsigned(s) => ColumnKind::Uint(int(s)),
            TypeDescriptor::Boolean => ColumnKind::Bool,
            _ => ColumnKind::Other,
        }
    }

    fn size(t: &TypeDescriptor) -> usize {
        t.size()
    }

    /// Decodes one value from native-endian bytes (`bytes` is exactly the
    /// value's size). Returns `None` for [`ColumnKind::Other`].
    fn decode(self, bytes: &[u8]) -> Option<f64> {
        fn arr<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
            b.get(..N)?.try_into().ok()
        }
        Some(match self {
            ColumnKind::Float(4) => f32::from_ne_bytes(arr(bytes)?) as f64,
            ColumnKind::Float(8) => f64::from_ne_bytes(arr(bytes)?),
            ColumnKind::Int(1) => i8::from_ne_bytes(arr(bytes)?) as f64,
            ColumnKind::Int(2) => i16::from_ne_bytes(arr(bytes)?) as f64,
            ColumnKind::Int(4) => i32::from_ne_bytes(arr(bytes)?) as f64,
            ColumnKind::Int(8) => i64::from_ne_bytes(arr(bytes)?) as f64,
            ColumnKind::Uint(1) | ColumnKind::Bool => *bytes.first()? as f64,
            ColumnKind::Uint(2) => u16::from_ne_bytes(arr(bytes)?) as f64,
            ColumnKind::Uint(4) => u32::from_ne_bytes(arr(bytes)?) as f64,
            ColumnKind::Uint(8) => u64::from_ne_bytes(arr(bytes)?) as f64,
            _ => return None,
        })
    }
}

/// One column: its name, where it sits in a native record, and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name as the file spells it.
    pub name: String,
    /// Byte offset in the native record.
    pub offset: usize,
    /// Its scalar type on disk; every kind but [`ColumnKind::Other`] is read as f64.
    pub kind: ColumnKind,
}

/// The columns of a table, decoded from its compound type (and, for pandas
/// tables, the pickled names). Pure: usable on any descriptor, so tests and
/// fuzzers need no file.
pub(crate) fn columns_from_descriptor(
    desc: &TypeDescriptor,
    mut block_names: impl FnMut(&str) -> Option<std::result::Result<Vec<String>, String>>,
) -> std::result::Result<(TableFormat, Vec<Column>), String> {
    let TypeDescriptor::Compound(compound) = desc else {
        return Err(format!("a compound table, found {desc:?}"));
    };
    let is_block = |name: &str| {
        name.strip_prefix("values_block_")
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
    };
    let pandas = compound.fields.iter().any(|f| is_block(&f.name));
    let mut columns = Vec::new();
    for field in &compound.fields {
        if pandas && is_block(&field.name) {
            let names = match block_names(&field.name) {
                Some(Ok(names)) => names,
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(format!(
                        "attribute {}_kind with the column names",
                        field.name
                    ))
                }
            };
            let (elem, count) = match &field.ty {
                TypeDescriptor::FixedArray(elem, n) => (elem.as_ref(), *n),
                other => (other, 1),
            };
            if names.len() != count {
                return Err(format!(
                    "{} names in {}_kind for a block of {} values",
                    names.len(),
                    field.name,
                    count
                ));
            }
            let kind = ColumnKind::from_descriptor(elem);
            let size = ColumnKind::size(elem);
            for (i, name) in names.into_iter().enumerate() {
                columns.push(Column {
                    name,
                    offset: field.offset + i * size,
                    kind,
                });
            }
        } else if pandas && field.name == "index" {
            continue;
        } else {
            columns.push(Column {
                name: field.name.clone(),
                offset: field.offset,
                kind: ColumnKind::from_descriptor(&field.ty),
            });
        }
    }
    let format = if pandas {
        TableFormat::PandasBlocks
    } else {
        TableFormat::Fields
    };
    Ok((format, columns))
}

/// An open params table: its columns and a row-range reader.
#[derive(Debug, Clone)]
pub struct ParamsTable {
    path: PathBuf,
    dataset_name: String,
    dataset: hdf5::Dataset,
    mem_type: hdf5::Datatype,
    record: usize,
    rows: usize,
    format: TableFormat,
    columns: Vec<Column>,
}

impl ParamsTable {
    /// Opens the table `dataset` of `file` (whose path is `path`, for errors).
    pub fn open(file: &hdf5::File, path: &Path, dataset: &str) -> Result<Self> {
        let ds = file.dataset(dataset).map_err(|_| Error::MissingDataset {
            path: path.to_path_buf(),
            dataset: dataset.to_string(),
            found: String::new(),
        })?;
        let layout_err = |expected: &str, found: String| Error::Layout {
            path: path.to_path_buf(),
            dataset: dataset.to_string(),
            expected: expected.to_string(),
            found,
        };
        let shape = ds.shape();
        if shape.len() != 1 {
            return Err(layout_err("a 1-D table", format!("shape {shape:?}")));
        }
        let (desc, mem_type) = crate::h5raw::native_record_type(&ds)
            .map_err(|e| layout_err("a compound table of fixed-size fields", e.to_string()))?;
        // Real tables hold tens of columns; a damaged type can declare a
        // record of gigabytes, which every chunk read would allocate.
        if mem_type.size() > MAX_RECORD_BYTES {
            return Err(layout_err(
                "a record of at most 1 MiB per row",
                format!("{} bytes per row", mem_type.size()),
            ));
        }
        let (format, columns) = columns_from_descriptor(&desc, |block| {
            let attr_name = format!("{block}_kind");
            let attr = ds.attr(&attr_name).ok()?;
            Some(match crate::h5raw::read_fixed_string_attr(&attr) {
                Ok(bytes) => {
                    pickle::decode_string_list(&bytes).map_err(|e| format!("{attr_name}: {e}"))
                }
                Err(e) => Err(format!("{attr_name}: {e}")),
            })
        })
        .map_err(|found| layout_err("a params table (compound fields or pandas blocks)", found))?;
        Ok(ParamsTable {
            path: path.to_path_buf(),
            dataset_name: dataset.to_string(),
            dataset: ds,
            record: mem_type.size(),
            mem_type,
            rows: shape[0],
            format,
            columns,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The table's on-disk form.
    pub fn format(&self) -> TableFormat {
        self.format
    }

    /// All columns, in file order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Index of the column `name`, or an error listing the columns that exist.
    pub(crate) fn column_index(&self, name: &str) -> Result<usize> {
        let i = self
            .columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| Error::MissingColumn {
                path: self.path.clone(),
                dataset: self.dataset_name.clone(),
                column: name.to_string(),
                available: self
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        if self.columns[i].kind == ColumnKind::Other {
            return Err(Error::Layout {
                path: self.path.clone(),
                dataset: self.dataset_name.clone(),
                expected: format!("a numeric column {name:?}"),
                found: "a non-numeric column".into(),
            });
        }
        Ok(i)
    }

    /// Reads `rows` of the columns `cols` (indices from `column_index`)
    /// into `out`, row-major (`rows.len() × cols.len()`), as f64. `scratch`
    /// holds the raw records and is reused between calls.
    pub fn read(
        &self,
        rows: Range<usize>,
        cols: &[usize],
        out: &mut [f64],
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        let n = rows.end.saturating_sub(rows.start);
        if rows.end > self.rows || out.len() != n * cols.len() {
            return Err(Error::shape(
                format!("params rows {}..{}", rows.start, rows.end),
                format!(
                    "rows within the table's {} and a buffer of {} values ({} columns)",
                    self.rows,
                    n * cols.len(),
                    cols.len()
                ),
                format!("a buffer of {} values", out.len()),
            ));
        }
        crate::h5raw::read_records_raw(&self.dataset, &self.mem_type, rows.clone(), scratch)
            .map_err(|e| {
                Error::hdf5(
                    &self.path,
                    format!(
                        "reading {} rows {}..{}",
                        self.dataset_name, rows.start, rows.end
                    ),
                    e,
                )
            })?;
        for (r, record) in scratch.chunks_exact(self.record).enumerate() {
            for (j, &c) in cols.iter().enumerate() {
                let col = self.columns.get(c).ok_or_else(|| {
                    Error::shape(
                        "params column index",
                        format!("< {}", self.columns.len()),
                        c,
                    )
                })?;
                let value = record
                    .get(col.offset..)
                    .and_then(|b| col.kind.decode(b))
                    .ok_or_else(|| Error::Layout {
                        path: self.path.clone(),
                        dataset: self.dataset_name.clone(),
                        expected: format!("a numeric column {:?}", col.name),
                        found: "an undecodable value".into(),
                    })?;
                out[r * cols.len() + j] = value;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdf5::types::{CompoundField, CompoundType};

    fn field(name: &str, ty: TypeDescriptor, offset: usize, index: usize) -> CompoundField {
        CompoundField {
            name: name.into(),
            ty,
            offset,
            index,
        }
    }

    #[test]
    fn plain_fields() {
        let desc = TypeDescriptor::Compound(CompoundType {
            fields: vec![
                field("T_eff", TypeDescriptor::Float(FloatSize::U8), 0, 0),
                field("id", TypeDescriptor::Integer(IntSize::U8), 8, 1),
            ],
            size: 16,
        });
        let (fmt, cols) = columns_from_descriptor(&desc, |_| None).unwrap();
        assert_eq!(fmt, TableFormat::Fields);
        assert_eq!(
            cols[1],
            Column {
                name: "id".into(),
                offset: 8,
                kind: ColumnKind::Int(8)
            }
        );
    }

    #[test]
    fn pandas_blocks_expand_with_names() {
        let desc = TypeDescriptor::Compound(CompoundType {
            fields: vec![
                field("index", TypeDescriptor::Integer(IntSize::U8), 0, 0),
                field(
                    "values_block_0",
                    TypeDescriptor::FixedArray(Box::new(TypeDescriptor::Float(FloatSize::U8)), 2),
                    8,
                    1,
                ),
                field(
                    "values_block_1",
                    TypeDescriptor::FixedArray(Box::new(TypeDescriptor::Integer(IntSize::U8)), 1),
                    24,
                    2,
                ),
            ],
            size: 32,
        });
        let (fmt, cols) = columns_from_descriptor(&desc, |b| {
            Some(Ok(match b {
                "values_block_0" => vec!["T_eff".into(), "log_g".into()],
                _ => vec!["id".into()],
            }))
        })
        .unwrap();
        assert_eq!(fmt, TableFormat::PandasBlocks);
        let names: Vec<_> = cols.iter().map(|c| (c.name.as_str(), c.offset)).collect();
        assert_eq!(names, [("T_eff", 8), ("log_g", 16), ("id", 24)]);
        // A name count that disagrees with the block is an error.
        let bad = columns_from_descriptor(&desc, |_| Some(Ok(vec!["x".into()])));
        assert!(bad.unwrap_err().contains("1 names"));
        assert!(columns_from_descriptor(&desc, |_| None).is_err());
    }

    #[test]
    fn decode_kinds() {
        assert_eq!(
            ColumnKind::Int(2).decode(&(-3i16).to_ne_bytes()),
            Some(-3.0)
        );
        assert_eq!(
            ColumnKind::Float(4).decode(&1.5f32.to_ne_bytes()),
            Some(1.5)
        );
        assert_eq!(ColumnKind::Float(8).decode(&[0u8; 3]), None);
        assert_eq!(ColumnKind::Other.decode(&[0u8; 8]), None);
    }
}
