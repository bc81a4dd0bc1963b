//! Nonlinear per-bin experts (DESIGN §11).
//!
//! Ridge experts come from the pass's statistics; tree experts need the
//! rows themselves. Each bin's rows are kept, during the same pass
//! ([`feed`]), in a bounded form: one byte per pixel ([`binning`]: per-pixel
//! quantile boundaries from a sample spread over the shards, ≤ 255 codes),
//! at most a planned number of rows per bin chosen by priority sampling on
//! (seed, shard, row) ([`dataset`]). [`lightgbm`] trains LightGBM on such a
//! set and predicts with it; [`choice`] compares it with the bin's Ridge
//! expert on a validation fold. The experiment runs them
//! ([`crate::experiment`]), `models.h5` stores the choice
//! ([`crate::models::BinExperts`]) and the router applies it
//! ([`crate::route::Router::hybrid`]).

pub mod binning;
pub mod choice;
pub mod dataset;
pub mod feed;
pub mod lightgbm;

use serde::{Deserialize, Serialize};

/// What kind of model a bin's expert is. A new kind (the 1D-CNN of seed
/// 002) is a new variant, trained from the same bounded rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpertKind {
    /// Ridge from the bin's sufficient statistics.
    #[serde(rename = "ridge")]
    Ridge,
    /// LightGBM on the bin's coded rows ([`lightgbm`]).
    #[serde(rename = "lightgbm")]
    LightGbm,
}

impl ExpertKind {
    /// Its name in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            ExpertKind::Ridge => "ridge",
            ExpertKind::LightGbm => "lightgbm",
        }
    }

    /// Whether it is trained on rows kept during the pass (every kind but
    /// Ridge, which needs only the statistics).
    pub fn needs_rows(self) -> bool {
        !matches!(self, ExpertKind::Ridge)
    }
}

impl std::fmt::Display for ExpertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::ExpertKind;

    #[test]
    fn kinds_are_named_as_in_configs() {
        for kind in [ExpertKind::Ridge, ExpertKind::LightGbm] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<ExpertKind>(&json).unwrap(), kind);
        }
        assert!(ExpertKind::LightGbm.needs_rows() && !ExpertKind::Ridge.needs_rows());
    }
}
