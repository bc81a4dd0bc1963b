//! The params table, in the two layouts gramstream reads.
//!
//! * [`ParamsFormat::Pandas`]: byte-for-byte what
//!   `DataFrame.to_hdf(key="dataset/params", format="table")` writes with
//!   pandas 3.1 / PyTables 3.11 (checked attribute by attribute against a
//!   pandas-written file by `tests/interop/check_generated.py`): a PyTables
//!   table with fields `index` (i64), `values_block_0` (f64[k]),
//!   `values_block_1` (i64[m]), `values_block_2` (S1[1]); block column names
//!   pickled (protocol 0) in `values_block_K_kind`; the pandas storer
//!   attributes on the group. Two differences, both ignored by readers: the
//!   PyTables index on the `index` column (`_i_table`) is not written, and the
//!   `S1` member is NUL-padded rather than NUL-terminated. The group also
//!   carries `pandas_version = "0.15.2"` as pandas 1.x wrote (the real pfsspec
//!   files).
//! * [`ParamsFormat::Fields`]: a plain compound, one scalar field per column.

use std::path::Path;

use hdf5::types::{CompoundField, CompoundType, FloatSize, IntSize, TypeDescriptor};
use hdf5::{Dataset, Datatype, Group, Location};

use super::h5util::{attr_bool, attr_empty_str, attr_scalar, attr_str, write_records_raw, Cset};
use super::model::Star;
use super::ParamsFormat;
use crate::{Error, Result};

/// The float columns (pandas block 0), in order. All-NaN columns mimic the
/// real files' unused ones.
pub(crate) const FLOAT_COLUMNS: [&str; 14] = [
    "T_eff",
    "M_H",
    "log_g",
    "a_M",
    "C_M",
    "v_turb",
    "mag",
    "seeing",
    "exp_time",
    "snr",
    "redshift",
    "rv",
    "ext",
    "target_zenith_angle",
];
/// The integer columns (pandas block 1).
pub(crate) const INT_COLUMNS: [&str; 2] = ["id", "exp_count"];
/// The one-byte string columns (pandas block 2).
pub(crate) const BYTES_COLUMNS: [&str; 1] = ["arm"];

/// Exposure: 12 × 900 s.
const EXP_COUNT: i64 = 12;
const EXP_TIME: f64 = 900.0;
/// The spectrograph arm, stored in the bytes column.
const ARM: u8 = b'm';

/// One row of the params table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ParamsRow {
    pub star: Star,
    pub snr: f64,
    pub id: i64,
}

impl ParamsRow {
    fn floats(&self) -> [f64; FLOAT_COLUMNS.len()] {
        let s = &self.star;
        let nan = f64::NAN;
        [
            s.teff, s.m_h, s.log_g, s.a_m, s.c_m, s.vturb, s.mag, s.seeing, EXP_TIME, self.snr,
            0.0, nan, nan, nan,
        ]
    }

    fn ints(&self) -> [i64; INT_COLUMNS.len()] {
        [self.id, EXP_COUNT]
    }
}

/// The record type of the table and how to serialise rows into it.
pub(crate) struct TableType {
    format: ParamsFormat,
    dtype: Datatype,
    size: usize,
}

fn f64_t() -> TypeDescriptor {
    TypeDescriptor::Float(FloatSize::U8)
}
fn i64_t() -> TypeDescriptor {
    TypeDescriptor::Integer(IntSize::U8)
}

impl TableType {
    pub(crate) fn new(format: ParamsFormat) -> hdf5::Result<TableType> {
        let mut fields = Vec::new();
        let mut offset = 0;
        let mut push = |name: &str, ty: TypeDescriptor, size: usize| {
            let index = fields.len();
            fields.push(CompoundField {
                name: name.to_string(),
                ty,
                offset,
                index,
            });
            offset += size;
        };
        match format {
            ParamsFormat::Pandas => {
                push("index", i64_t(), 8);
                push(
                    "values_block_0",
                    TypeDescriptor::FixedArray(Box::new(f64_t()), FLOAT_COLUMNS.len()),
                    8 * FLOAT_COLUMNS.len(),
                );
                push(
                    "values_block_1",
                    TypeDescriptor::FixedArray(Box::new(i64_t()), INT_COLUMNS.len()),
                    8 * INT_COLUMNS.len(),
                );
                push(
                    "values_block_2",
                    TypeDescriptor::FixedArray(
                        Box::new(TypeDescriptor::FixedAscii(1)),
                        BYTES_COLUMNS.len(),
                    ),
                    BYTES_COLUMNS.len(),
                );
            }
            ParamsFormat::Fields => {
                for c in FLOAT_COLUMNS {
                    push(c, f64_t(), 8);
                }
                for c in INT_COLUMNS {
                    push(c, i64_t(), 8);
                }
                for c in BYTES_COLUMNS {
                    push(c, TypeDescriptor::FixedAscii(1), 1);
                }
            }
        }
        let size = offset;
        let dtype =
            Datatype::from_descriptor(&TypeDescriptor::Compound(CompoundType { fields, size }))?;
        Ok(TableType {
            format,
            dtype,
            size,
        })
    }

    /// Appends the records of `rows` (row indices starting at `first`) to
    /// `out` in the native (little-endian) record layout.
    pub(crate) fn encode(&self, first: usize, rows: &[ParamsRow], out: &mut Vec<u8>) {
        out.clear();
        out.reserve(rows.len() * self.size);
        for (i, r) in rows.iter().enumerate() {
            if self.format == ParamsFormat::Pandas {
                out.extend_from_slice(&((first + i) as i64).to_ne_bytes());
            }
            for v in r.floats() {
                out.extend_from_slice(&v.to_ne_bytes());
            }
            for v in r.ints() {
                out.extend_from_slice(&v.to_ne_bytes());
            }
            out.push(ARM);
        }
    }

    /// Creates the table dataset (and, for pandas, its groups' and its own
    /// attributes) for `n` rows.
    pub(crate) fn create(&self, file: &hdf5::File, path: &Path, n: usize) -> Result<Dataset> {
        let what = |w: &str| format!("writing /dataset/params/table: {w}");
        let params = file
            .group("dataset")
            .and_then(|g| g.create_group("params"))
            .map_err(|e| Error::hdf5(path, what("creating the group"), e))?;
        // PyTables' chunk shape for small tables: ~64 KiB of rows.
        let chunk = (65536 / self.size).clamp(1, n.max(1));
        let ds = params
            .new_dataset_builder()
            .chunk(chunk)
            .empty_as(&self.dtype)
            .shape(hdf5::SimpleExtents::resizable([n]))
            .create("table")
            .map_err(|e| Error::hdf5(path, what("creating the dataset"), e))?;
        if self.format == ParamsFormat::Pandas {
            pandas_attrs(file, &params, &ds, n)
                .map_err(|e| Error::hdf5(path, what("attributes"), e))?;
        }
        Ok(ds)
    }

    /// Writes records `first..first + rows.len()` from bytes made by
    /// [`TableType::encode`].
    pub(crate) fn write(
        &self,
        ds: &Dataset,
        first: usize,
        nrows: usize,
        bytes: &[u8],
    ) -> hdf5::Result<()> {
        write_records_raw(ds, &self.dtype, first..first + nrows, bytes)
    }
}

/// A protocol-0 pickle of a list of str, as pandas/PyTables write it,
/// starting the memo at `memo` (returns the next free memo index).
fn pickle_names(out: &mut Vec<u8>, names: &[&str], memo: &mut usize) {
    out.extend_from_slice(format!("(lp{}\n", *memo).as_bytes());
    *memo += 1;
    for n in names {
        out.extend_from_slice(format!("V{}\np{}\na", n, *memo).as_bytes());
        *memo += 1;
    }
}

fn pickled_list(names: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut memo = 0;
    pickle_names(&mut out, names, &mut memo);
    out.push(b'.');
    out
}

/// The PyTables "GROUP" attributes.
fn group_attrs(loc: &Location) -> hdf5::Result<()> {
    attr_str(loc, "CLASS", b"GROUP", Cset::Utf8)?;
    attr_empty_str(loc, "TITLE")?;
    attr_str(loc, "VERSION", b"1.0", Cset::Utf8)
}

fn pandas_attrs(file: &hdf5::File, params: &Group, table: &Dataset, n: usize) -> hdf5::Result<()> {
    let root: &Location = file;
    attr_str(root, "CLASS", b"GROUP", Cset::Utf8)?;
    attr_str(root, "PYTABLES_FORMAT_VERSION", b"2.1", Cset::Utf8)?;
    attr_empty_str(root, "TITLE")?;
    attr_str(root, "VERSION", b"1.0", Cset::Utf8)?;
    let dataset = file.group("dataset")?;
    group_attrs(&dataset)?;
    group_attrs(params)?;

    let blocks: [(&str, &[&str], &str, &[u8]); 3] = [
        ("values_block_0", &FLOAT_COLUMNS, "float64", b"N."),
        ("values_block_1", &INT_COLUMNS, "int64", b"N."),
        ("values_block_2", &BYTES_COLUMNS, "bytes8", b"str"),
    ];
    // Group (pandas storer) attributes.
    let p: &Location = params;
    attr_bool(p, "data_col_nan_rep", true)?;
    attr_str(p, "data_columns", b"(lp0\n.", Cset::Ascii)?;
    attr_str(p, "encoding", b"UTF-8", Cset::Utf8)?;
    attr_str(p, "errors", b"strict", Cset::Utf8)?;
    attr_str(
        p,
        "index_cols",
        b"(lp0\n(I0\nVindex\np1\ntp2\na.",
        Cset::Ascii,
    )?;
    let mut info =
        b"(dp0\nI1\n(dp1\nVnames\np2\n(lp3\nNasVtype\np4\nVIndex\np5\nssVindex\np6\n(dp7\ns"
            .to_vec();
    let mut memo = 8;
    for (name, ..) in &blocks {
        info.extend_from_slice(format!("V{}\np{}\n(dp{}\ns", name, memo, memo + 1).as_bytes());
        memo += 2;
    }
    info.push(b'.');
    attr_str(p, "info", &info, Cset::Ascii)?;
    attr_scalar(p, "levels", 1i64)?;
    attr_bool(p, "mi_level_nan_rep", false)?;
    attr_str(p, "nan_rep", b"N.", Cset::Ascii)?;
    let all: Vec<&str> = blocks.iter().flat_map(|b| b.1.iter().copied()).collect();
    let mut axes = b"(lp0\n(I1\n".to_vec();
    let mut memo = 1;
    pickle_names(&mut axes, &all, &mut memo);
    axes.extend_from_slice(format!("tp{memo}\na.").as_bytes());
    attr_str(p, "non_index_axes", &axes, Cset::Ascii)?;
    attr_str(p, "pandas_type", b"frame_table", Cset::Utf8)?;
    attr_str(p, "pandas_version", b"0.15.2", Cset::Utf8)?;
    attr_str(p, "table_type", b"appendable_frame", Cset::Utf8)?;
    let names: Vec<&str> = blocks.iter().map(|b| b.0).collect();
    attr_str(p, "values_cols", &pickled_list(&names), Cset::Ascii)?;

    // Table (PyTables + pandas) attributes.
    let t: &Location = table;
    attr_str(t, "CLASS", b"TABLE", Cset::Utf8)?;
    attr_scalar(t, "FIELD_0_FILL", 0i64)?;
    attr_str(t, "FIELD_0_NAME", b"index", Cset::Utf8)?;
    attr_scalar(t, "FIELD_1_FILL", 0f64)?;
    attr_str(t, "FIELD_1_NAME", b"values_block_0", Cset::Utf8)?;
    attr_scalar(t, "FIELD_2_FILL", 0i64)?;
    attr_str(t, "FIELD_2_NAME", b"values_block_1", Cset::Utf8)?;
    attr_str(t, "FIELD_3_FILL", b"", Cset::Ascii)?;
    attr_str(t, "FIELD_3_NAME", b"values_block_2", Cset::Utf8)?;
    attr_scalar(t, "NROWS", n as i64)?;
    attr_empty_str(t, "TITLE")?;
    attr_str(t, "VERSION", b"2.7", Cset::Utf8)?;
    attr_str(t, "index_kind", b"integer", Cset::Utf8)?;
    for (name, cols, dtype, meta) in &blocks {
        attr_str(t, &format!("{name}_dtype"), dtype.as_bytes(), Cset::Utf8)?;
        attr_str(t, &format!("{name}_kind"), &pickled_list(cols), Cset::Ascii)?;
        let cs = if *meta == b"N." {
            Cset::Ascii
        } else {
            Cset::Utf8
        };
        attr_str(t, &format!("{name}_meta"), meta, cs)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickles_match_pandas_bytes() {
        assert_eq!(
            pickled_list(&["id", "interp_param"]),
            b"(lp0\nVid\np1\naVinterp_param\np2\na.".to_vec()
        );
        let decoded = crate::params::pickle::decode_string_list(&pickled_list(&FLOAT_COLUMNS));
        assert_eq!(
            decoded.ok(),
            Some(
                FLOAT_COLUMNS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
            )
        );
    }
}
