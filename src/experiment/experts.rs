//! The experts stage of a run (issue 13): per bin of the experts'
//! partition, a LightGBM expert trained on the rows the pass kept, Ridge
//! and LightGBM compared on the validation fold, and the kind the
//! oracle-hybrid uses chosen ([`crate::experts::choice`]).

use serde::Serialize;

use super::config::ExpertsPlan;
use super::{Event, Run};
use crate::experts::choice::{choose, ridge_validation, split, train_tree, TreeExpert};
use crate::experts::feed::ExpertRows;
use crate::experts::lightgbm::SavedLightGbm;
use crate::experts::ExpertKind;
use crate::models::ModelSet;
use crate::stats::derive::Group;
use crate::stats::StatsFile;
use crate::Result;

/// One bin's experts on the validation fold, and the choice.
#[derive(Debug, Clone, Serialize)]
pub struct BinChoice {
    /// Rows the pass kept for the tree expert.
    pub kept_rows: usize,
    /// Ridge (the bin's selected α, refitted without the fold) on every
    /// row of the fold: MSE (null: no Ridge expert or an empty fold).
    pub ridge_validation_mse: Option<f64>,
    /// Rows of the fold Ridge was scored on.
    pub ridge_validation_rows: u64,
    /// LightGBM on the kept rows of the fold: MSE (null: none).
    pub lightgbm_validation_mse: Option<f64>,
    /// Kept rows of the fold LightGBM was scored on.
    pub lightgbm_validation_rows: usize,
    /// Kept rows outside the fold LightGBM was trained on.
    pub lightgbm_train_rows: usize,
    /// LightGBM's training time (s).
    pub lightgbm_seconds: f64,
    /// The kind the oracle-hybrid uses in this bin.
    pub chosen: ExpertKind,
    /// The LightGBM model until it moves into the models
    /// ([`crate::models::BinExperts`]; not in results.json).
    #[serde(skip)]
    pub model: Option<SavedLightGbm>,
}

/// Trains and chooses, bin after bin, from the pass's kept `rows` and the
/// statistics `file` the Ridge experts `models` came from.
pub(super) fn train_and_choose(
    r: &Run<'_>,
    plan: &ExpertsPlan,
    rows: ExpertRows,
    file: &StatsFile,
    models: &ModelSet,
) -> Result<Vec<BinChoice>> {
    let header = file.header();
    let (seed, folds) = (header.noise.seed, header.partitions.folds);
    let partition = &r.plan.partitions[plan.partition];
    let bins = rows.datasets.len();
    r.stage(
        "experts",
        &format!(
            "LightGBM ({} trees, {} leaves) per {} bin on {} kept rows; Ridge vs LightGBM on fold {}",
            plan.lightgbm.n_estimators,
            plan.lightgbm.num_leaves,
            partition.name,
            rows.rows(),
            plan.validation_fold
        ),
        bins as u64,
    );
    let mut out = Vec::with_capacity(bins);
    for (b, coded) in rows.into_rows().into_iter().enumerate() {
        let kept_rows = coded.len();
        let (train, validation) = split(&coded, seed, folds, plan.validation_fold)?;
        drop(coded);
        let tree = train_tree(&train, &validation, &plan.lightgbm, &r.plan.cancel)?;
        drop((train, validation));
        let ridge = match models.partitions[plan.partition]
            .experts
            .get(b)
            .and_then(Option::as_ref)
        {
            Some(e) => {
                let group = Group::Bin {
                    partition: plan.partition,
                    slot: b,
                };
                let sums =
                    crate::sweep::group_fold_sums(header, group, &mut |a| file.accumulator(a))?;
                ridge_validation(
                    &sums,
                    plan.validation_fold,
                    e.coefficients.alpha,
                    &header.shift_x,
                    header.shift_y,
                    r.plan.config.stats.threads.par(),
                )?
            }
            None => None,
        };
        let choice = bin_choice(kept_rows, ridge, tree);
        (r.progress)(Event::Advance(1));
        (r.progress)(Event::Done(&format!(
            "bin {b} ({}): {} kept rows, validation MSE Ridge {} LightGBM {} → {} ({:.1} s)",
            partition.bin_names.get(b).map_or("", String::as_str),
            kept_rows,
            fmt_mse(choice.ridge_validation_mse),
            fmt_mse(choice.lightgbm_validation_mse),
            choice.chosen,
            choice.lightgbm_seconds
        )));
        out.push(choice);
    }
    Ok(out)
}

fn fmt_mse(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.4}"))
}

fn bin_choice(kept_rows: usize, ridge: Option<(f64, u64)>, tree: Option<TreeExpert>) -> BinChoice {
    let ridge_mse = ridge.map(|(m, _)| m);
    let tree_mse = tree.as_ref().and_then(|t| t.validation_mse);
    BinChoice {
        kept_rows,
        ridge_validation_mse: ridge_mse,
        ridge_validation_rows: ridge.map_or(0, |(_, n)| n),
        lightgbm_validation_mse: tree_mse,
        lightgbm_validation_rows: tree.as_ref().map_or(0, |t| t.validation_rows),
        lightgbm_train_rows: tree.as_ref().map_or(0, |t| t.train_rows),
        lightgbm_seconds: tree.as_ref().map_or(0.0, |t| t.seconds),
        chosen: choose(ridge_mse, tree_mse),
        model: tree.map(|t| t.model),
    }
}
