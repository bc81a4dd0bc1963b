//! A human-readable account of a shard: what `gramstream inspect` prints.
//!
//! Inspection opens the file exactly as a run would ([`Shard::open`]), so a
//! file it accepts is a file the pass can read, and a file it refuses is
//! refused with the same error the pass would give. It also requires the
//! params columns every run reads (T_eff, [M/H] and log g, as named by the
//! layout) to exist and be numeric: a shard without them cannot serve.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::params::{ColumnKind, TableFormat};
use crate::source::{ArrayInfo, Shard};
use crate::{Layout, Result};

/// What `inspect` reports about one shard.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The shard's path as given to [`inspect`].
    pub path: PathBuf,
    /// File size in bytes.
    pub file_bytes: u64,
    /// Rows (spectra).
    pub rows: usize,
    /// Pixels per spectrum.
    pub pixels: usize,
    /// First and last wavelength (Å).
    pub wave_range: (f64, f64),
    /// The arrays: flux, error, noisy and mask when present.
    pub arrays: Vec<ArrayInfo>,
    /// The params table's form.
    pub params_format: TableFormat,
    /// The params columns and their types.
    pub columns: Vec<(String, ColumnKind)>,
}

impl Inspection {
    /// Whether every spectra array can take the zero-copy path.
    pub fn zero_copy(&self) -> bool {
        self.arrays
            .iter()
            .filter(|a| !a.name.contains("mask"))
            .all(|a| a.zero_copy.is_ok())
    }
}

/// Opens and validates `path` with `layout`, checks that the T_eff, [M/H]
/// and log g columns are there and numeric, and describes it.
pub fn inspect(path: impl AsRef<Path>, layout: &Layout) -> Result<Inspection> {
    let shard = Shard::open(path, layout)?;
    let cols = &layout.columns;
    for name in [&cols.teff, &cols.mh, &cols.log_g] {
        shard.params().column_index(name)?;
    }
    let wave = shard.wave();
    Ok(Inspection {
        path: shard.path().to_path_buf(),
        file_bytes: shard.file_len(),
        rows: shard.rows(),
        pixels: shard.pixels(),
        wave_range: (wave[0], wave[wave.len() - 1]),
        arrays: shard.arrays().into_iter().cloned().collect(),
        params_format: shard.params().format(),
        columns: shard
            .params()
            .columns()
            .iter()
            .map(|c| (c.name.clone(), c.kind))
            .collect(),
    })
}

fn kind_name(k: ColumnKind) -> String {
    match k {
        ColumnKind::Float(n) => format!("float{}", n * 8),
        ColumnKind::Int(n) => format!("int{}", n * 8),
        ColumnKind::Uint(n) => format!("uint{}", n * 8),
        ColumnKind::Bool => "bool".into(),
        ColumnKind::Other => "other".into(),
    }
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.path.display())?;
        writeln!(
            f,
            "  size        {:.3} GB ({} bytes)",
            self.file_bytes as f64 / 1e9,
            self.file_bytes
        )?;
        writeln!(
            f,
            "  spectra     {} rows × {} pixels",
            self.rows, self.pixels
        )?;
        writeln!(
            f,
            "  wavelength  {:.2} … {:.2} Å",
            self.wave_range.0, self.wave_range.1
        )?;
        for a in &self.arrays {
            writeln!(f, "  {}", a.name)?;
            writeln!(f, "      {:?} {}, {}", a.shape, a.dtype, a.storage)?;
            match &a.zero_copy {
                Ok(()) => writeln!(f, "      zero-copy read: yes")?,
                Err(why) => writeln!(f, "      zero-copy read: no ({why}); libhdf5 path")?,
            }
        }
        writeln!(
            f,
            "  params      {} columns, {}",
            self.columns.len(),
            self.params_format
        )?;
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|(n, k)| format!("{n} ({})", kind_name(*k)))
            .collect();
        for line in cols.chunks(6) {
            writeln!(f, "      {}", line.join(", "))?;
        }
        write!(
            f,
            "  read path   {}",
            if self.zero_copy() {
                "zero-copy (memory map)"
            } else {
                "libhdf5 hyperslabs"
            }
        )
    }
}
