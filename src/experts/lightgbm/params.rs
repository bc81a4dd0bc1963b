//! LightGBM's parameters as a config section (`[experts.lightgbm]`): the
//! seed's values by default, every one settable, checked once.

use serde::{Deserialize, Serialize};

use crate::{Error, Result, Threads};

/// How LightGBM builds its histograms. Forcing one makes training
/// reproducible (LightGBM otherwise times both on the data and picks);
/// column-wise needs no second copy of the binned rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Histogram {
    /// `force_col_wise`: threads split the features.
    #[default]
    ColWise,
    /// `force_row_wise`: threads split the rows; LightGBM keeps a row-wise
    /// copy of the binned rows.
    RowWise,
}

/// The parameters of a LightGBM expert. Defaults are seed 002's (DESIGN
/// §11); names follow its config (scikit-learn's where LightGBM has two).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LightGbmParams {
    /// Boosting rounds (trees); LightGBM's `num_iterations`. 500.
    pub n_estimators: usize,
    /// Tree depth limit; ≤ 0: none. 5.
    pub max_depth: i32,
    /// Shrinkage. 0.05.
    pub learning_rate: f64,
    /// Leaves per tree at most (2 … 131072). 20.
    pub num_leaves: usize,
    /// Share of the pixels each tree may split on, in (0, 1]. 0.3.
    pub feature_fraction: f64,
    /// Share of the rows each bagging round draws, in (0, 1]. 0.7. As in
    /// LightGBM, it acts only with `bagging_freq` > 0.
    pub bagging_fraction: f64,
    /// Redraw the bagged rows every this many trees; 0 (the seed's, which
    /// set none): no bagging, `bagging_fraction` unused.
    pub bagging_freq: usize,
    /// Rows per leaf at least; LightGBM's `min_data_in_leaf`. 50.
    pub min_child_samples: usize,
    /// L1 penalty on leaf values; LightGBM's `lambda_l1`. 1.
    pub reg_alpha: f64,
    /// L2 penalty on leaf values; LightGBM's `lambda_l2`. 1.
    pub reg_lambda: f64,
    /// LightGBM's `seed` (from which it draws its feature, bagging and
    /// data seeds); at most 2³¹ − 1. 0.
    pub seed: u64,
    /// Threads for training and prediction (0 = all cores).
    pub threads: Threads,
    /// LightGBM's `deterministic`: the same model for the same rows and
    /// parameters. true.
    pub deterministic: bool,
    /// Histogram layout (forced, for reproducibility). Column-wise.
    pub histogram: Histogram,
}

impl Default for LightGbmParams {
    fn default() -> Self {
        LightGbmParams {
            n_estimators: 500,
            max_depth: 5,
            learning_rate: 0.05,
            num_leaves: 20,
            feature_fraction: 0.3,
            bagging_fraction: 0.7,
            bagging_freq: 0,
            min_child_samples: 50,
            reg_alpha: 1.0,
            reg_lambda: 1.0,
            seed: 0,
            threads: Threads::All,
            deterministic: true,
            histogram: Histogram::ColWise,
        }
    }
}

/// LightGBM's integer parameters are C `int`s.
const INT_MAX: u64 = i32::MAX as u64;

impl LightGbmParams {
    /// Checks every value against LightGBM's own limits, so that a bad
    /// one is refused here by name, not deep inside a run.
    pub fn check(&self) -> Result<()> {
        let bad =
            |name: &'static str, problem: String| Err(Error::InvalidParameter { name, problem });
        let unit = |v: f64| v > 0.0 && v <= 1.0;
        if self.n_estimators == 0 || self.n_estimators as u64 > INT_MAX {
            return bad(
                "n_estimators",
                format!("{}: must be 1 to {INT_MAX}", self.n_estimators),
            );
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(
                "learning_rate",
                format!("{}: must be finite and > 0", self.learning_rate),
            );
        }
        if !(2..=131_072).contains(&self.num_leaves) {
            return bad(
                "num_leaves",
                format!("{}: must be 2 to 131072", self.num_leaves),
            );
        }
        if !unit(self.feature_fraction) {
            return bad(
                "feature_fraction",
                format!("{}: must be in (0, 1]", self.feature_fraction),
            );
        }
        if !unit(self.bagging_fraction) {
            return bad(
                "bagging_fraction",
                format!("{}: must be in (0, 1]", self.bagging_fraction),
            );
        }
        for (name, v) in [
            ("bagging_freq", self.bagging_freq as u64),
            ("min_child_samples", self.min_child_samples as u64),
            ("seed", self.seed),
        ] {
            if v > INT_MAX {
                return bad(name, format!("{v}: must be at most {INT_MAX}"));
            }
        }
        for (name, v) in [
            ("reg_alpha", self.reg_alpha),
            ("reg_lambda", self.reg_lambda),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(name, format!("{v}: must be finite and ≥ 0"));
            }
        }
        Ok(())
    }

    /// The parameter string LightGBM reads, for the dataset and the
    /// booster alike (LightGBM refuses a booster whose dataset parameters
    /// differ from its dataset's).
    ///
    /// Besides the model's parameters: the dataset's bins are exactly the
    /// codes (`max_bin` 255, `min_data_in_bin` 1, see
    /// `train`); the bin mappers come from the codes each pixel
    /// takes rather than from a row sample, so the two options that read
    /// the sample's counts are off (`feature_pre_filter`, `enable_bundle`);
    /// LightGBM prints nothing (`verbosity` −1; its errors still come back
    /// as [`Error::LightGbm`]).
    #[cfg_attr(not(feature = "lightgbm"), allow(dead_code))]
    pub(crate) fn to_lightgbm(&self) -> String {
        let histogram = match self.histogram {
            Histogram::ColWise => "force_col_wise=true",
            Histogram::RowWise => "force_row_wise=true",
        };
        [
            "objective=regression".to_string(),
            format!("max_depth={}", self.max_depth),
            format!("learning_rate={}", self.learning_rate),
            format!("num_leaves={}", self.num_leaves),
            format!("feature_fraction={}", self.feature_fraction),
            format!("bagging_fraction={}", self.bagging_fraction),
            format!("bagging_freq={}", self.bagging_freq),
            format!("min_data_in_leaf={}", self.min_child_samples),
            format!("lambda_l1={}", self.reg_alpha),
            format!("lambda_l2={}", self.reg_lambda),
            format!("seed={}", self.seed),
            format!("num_threads={}", self.threads.get()),
            format!("deterministic={}", self.deterministic),
            histogram.to_string(),
            format!("max_bin={}", super::super::binning::MAX_CODES),
            "min_data_in_bin=1".to_string(),
            "feature_pre_filter=false".to_string(),
            "enable_bundle=false".to_string(),
            "verbosity=-1".to_string(),
        ]
        .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds_and_a_config_section_overrides_them() {
        let p: LightGbmParams = toml::from_str("").unwrap();
        assert_eq!(p, LightGbmParams::default());
        assert_eq!(
            (p.n_estimators, p.max_depth, p.learning_rate, p.num_leaves),
            (500, 5, 0.05, 20)
        );
        assert_eq!(
            (p.feature_fraction, p.bagging_fraction, p.min_child_samples),
            (0.3, 0.7, 50)
        );
        assert_eq!((p.reg_alpha, p.reg_lambda), (1.0, 1.0));
        assert!(p.deterministic);
        p.check().unwrap();
        let p: LightGbmParams =
            toml::from_str("n_estimators = 40\nthreads = 1\nhistogram = \"row_wise\"\nseed = 7")
                .unwrap();
        assert_eq!(
            (p.n_estimators, p.threads, p.histogram, p.seed),
            (40, Threads::ONE, Histogram::RowWise, 7)
        );
        let s = p.to_lightgbm();
        for want in [
            "num_threads=1",
            "force_row_wise=true",
            "seed=7",
            "learning_rate=0.05",
            "min_data_in_leaf=50",
            "lambda_l1=1",
        ] {
            assert!(s.split(' ').any(|kv| kv == want), "{want} in {s}");
        }
        let err = toml::from_str::<LightGbmParams>("n_estimator = 40").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_refused_by_name() {
        type Spoil = fn(&mut LightGbmParams);
        let cases: [(&str, Spoil); 9] = [
            ("n_estimators", |p| p.n_estimators = 0),
            ("learning_rate", |p| p.learning_rate = f64::NAN),
            ("num_leaves", |p| p.num_leaves = 1),
            ("feature_fraction", |p| p.feature_fraction = 0.0),
            ("bagging_fraction", |p| p.bagging_fraction = 1.5),
            ("min_child_samples", |p| p.min_child_samples = 1 << 40),
            ("seed", |p| p.seed = 1 << 31),
            ("reg_alpha", |p| p.reg_alpha = -1.0),
            ("reg_lambda", |p| p.reg_lambda = f64::INFINITY),
        ];
        for (name, spoil) in cases {
            let mut p = LightGbmParams::default();
            spoil(&mut p);
            match p.check() {
                Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
