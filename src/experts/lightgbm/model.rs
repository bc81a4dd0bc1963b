//! A LightGBM expert as stored: LightGBM's model text with the boundaries
//! its inputs are coded with. Readable without the `lightgbm` feature (a
//! models file can be checked and listed anywhere); predicting needs it.

use serde::{Deserialize, Serialize};

use crate::experts::binning::PixelBins;

/// A trained LightGBM expert in storable form. The model's features are
/// the codes of [`Self::bins`] (0…254 as numbers), not raw flux: LightGBM
/// (or Python's `lightgbm.Booster(model_str=…)`) gives the expert's
/// predictions only for rows coded with these boundaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedLightGbm {
    /// The boundaries the model's inputs are coded with.
    pub bins: PixelBins,
    /// LightGBM's model text (`LGBM_BoosterSaveModelToString`).
    pub model: String,
}
