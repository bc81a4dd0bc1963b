//! Where things live in a shard.
//!
//! The default is the layout pfsspec writes (DESIGN §3): flux, error, an
//! optional stored `noisy` and `mask` under `/dataset/arrays/*/value`, the
//! params table at `/dataset/params/table`, the wavelength grid at
//! `/spectrumdataset/wave`. Everything is configurable so that files from
//! other pipelines can be read without conversion.

use serde::{Deserialize, Serialize};

/// Dataset paths and params column names of a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Layout {
    /// Noiseless flux, (N, P).
    pub flux: String,
    /// Per-pixel 1σ error, (N, P).
    pub error: String,
    /// Optional pre-noised flux, (N, P) (test files).
    pub noisy: String,
    /// Optional mask, (N, P); unused by default.
    pub mask: String,
    /// Params table, (N,) compound.
    pub params: String,
    /// Wavelength grid, (P,).
    pub wave: String,
    /// Names of the params columns the library uses.
    pub columns: Columns,
}

/// Names of the params columns gramstream needs, as spelled in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Columns {
    /// Effective temperature (K).
    pub teff: String,
    /// Metallicity [M/H] (dex).
    pub mh: String,
    /// Surface gravity log g (dex): the regression target.
    pub log_g: String,
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            teff: "T_eff".into(),
            mh: "M_H".into(),
            log_g: "log_g".into(),
        }
    }
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            flux: "/dataset/arrays/flux/value".into(),
            error: "/dataset/arrays/error/value".into(),
            noisy: "/dataset/arrays/noisy/value".into(),
            mask: "/dataset/arrays/mask/value".into(),
            params: "/dataset/params/table".into(),
            wave: "/spectrumdataset/wave".into(),
            columns: Columns::default(),
        }
    }
}

impl Columns {
    /// The three columns in the order [teff, mh, log_g].
    pub fn names(&self) -> [&str; 3] {
        [&self.teff, &self.mh, &self.log_g]
    }

    /// Applies renames given as `canonical=file_name` pairs, where canonical is
    /// one of `teff`/`T_eff`, `mh`/`M_H`, `log_g`.
    pub fn apply_renames<'a>(
        &mut self,
        renames: impl IntoIterator<Item = &'a str>,
    ) -> crate::Result<()> {
        for spec in renames {
            let (key, value) =
                spec.split_once('=')
                    .ok_or_else(|| crate::Error::InvalidParameter {
                        name: "column",
                        problem: format!(
                            "{spec:?} is not of the form NAME=COLUMN (e.g. log_g=logg)"
                        ),
                    })?;
            let slot = match key.trim() {
                "teff" | "T_eff" => &mut self.teff,
                "mh" | "M_H" => &mut self.mh,
                "log_g" | "logg" => &mut self.log_g,
                other => {
                    return Err(crate::Error::InvalidParameter {
                        name: "column",
                        problem: format!("unknown column role {other:?}; use teff, mh or log_g"),
                    })
                }
            };
            *slot = value.trim().to_string();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_apply_and_reject_unknown_roles() {
        let mut c = Columns::default();
        c.apply_renames(["log_g=logg", "teff=Teff"]).unwrap();
        assert_eq!(c.names(), ["Teff", "M_H", "logg"]);
        assert!(c.apply_renames(["colour=x"]).is_err());
        assert!(c.apply_renames(["log_g"]).is_err());
    }
}
