//! Each bin's expert chosen on a held-out fold, never on the test rows
//! (issue 13, DESIGN §11).
//!
//! The validation share of a bin is one of the pass's folds (the rows with
//! [`crate::partition::fold_of`] equal to it). Ridge at the bin's selected
//! α is refitted on the bin's other folds and scored on that fold from the
//! statistics alone — every row of the fold, exactly; the tree expert is
//! trained on its kept rows outside the fold and scored on its kept rows
//! inside it. Both are then estimates of the same per-row error (the kept
//! rows are a key-hashed random sample of the bin's rows) of a model that
//! did not see the fold. The smaller validation MSE wins; a tie or a
//! missing tree model keeps Ridge.
//!
//! Ridge's α was chosen by CV over all folds, so its validation score has
//! seen the fold through α alone: a slight advantage to Ridge, which makes
//! the hybrid's choice conservative.

#[cfg(feature = "lightgbm")]
use std::time::Instant;

use super::dataset::CodedRows;
use super::lightgbm::{LightGbmParams, SavedLightGbm};
use super::ExpertKind;
use crate::partition::fold_of;
use crate::stats::SuffStats;
use crate::threads::Cancel;
use crate::{Error, Result};

/// A bin's kept rows cut at the validation fold: (training, validation).
pub fn split(
    rows: &CodedRows,
    seed: u64,
    folds: usize,
    fold: usize,
) -> Result<(CodedRows, CodedRows)> {
    let (validation, train): (Vec<usize>, Vec<usize>) = (0..rows.len()).partition(|&i| {
        let (shard, row) = rows.origin()[i];
        fold_of(seed, shard, row, folds) == fold
    });
    Ok((subset(rows, &train)?, subset(rows, &validation)?))
}

/// Rows `idx` of `rows`, in that order.
fn subset(rows: &CodedRows, idx: &[usize]) -> Result<CodedRows> {
    let p = rows.pixels();
    CodedRows::new(
        std::sync::Arc::clone(rows.bins()),
        idx.iter().map(|&i| rows.origin()[i]).collect(),
        idx.iter()
            .flat_map(|&i| rows.codes()[i * p..(i + 1) * p].iter().copied())
            .collect(),
        idx.iter().map(|&i| rows.targets()[i]).collect(),
    )
}

/// Ridge at `alpha` refitted without fold `fold` of a bin (`folds`: the
/// bin's sums per fold) and scored on that fold: (MSE, rows), or None when
/// the fold or its complement is too small.
pub fn ridge_validation(
    folds: &[SuffStats],
    fold: usize,
    alpha: f64,
    shift_x: &[f64],
    shift_y: f64,
    par: faer::Par,
) -> Result<Option<(f64, u64)>> {
    let Some(val) = folds.get(fold) else {
        return Err(Error::InvalidParameter {
            name: "validation_fold",
            problem: format!("fold {fold} of {}", folds.len()),
        });
    };
    let p = val.p;
    let mut train = SuffStats::zeros(p);
    for (k, f) in folds.iter().enumerate() {
        if k != fold {
            train.add(f)?;
        }
    }
    if val.n == 0 || train.n < 2 {
        return Ok(None);
    }
    let model = crate::ridge::fit_at(&train, shift_x, shift_y, alpha, par)?;
    let sse = crate::ridge::sse_from_stats(&model, val, shift_x, shift_y);
    Ok(Some((sse / val.n as f64, val.n)))
}

/// The kind with the smaller validation MSE (Ridge on a tie or when the
/// other has none).
pub fn choose(ridge_mse: Option<f64>, lightgbm_mse: Option<f64>) -> ExpertKind {
    match (ridge_mse, lightgbm_mse) {
        (Some(r), Some(l)) if l < r => ExpertKind::LightGbm,
        (None, Some(l)) if l.is_finite() => ExpertKind::LightGbm,
        _ => ExpertKind::Ridge,
    }
}

/// One bin's tree expert and its validation.
#[derive(Debug, Clone)]
pub struct TreeExpert {
    /// The model (trained on the kept rows outside the validation fold).
    pub model: SavedLightGbm,
    /// Rows it was trained on.
    pub train_rows: usize,
    /// Kept rows of the validation fold it was scored on.
    pub validation_rows: usize,
    /// Its MSE on them (None without validation rows).
    pub validation_mse: Option<f64>,
    /// Training time (s).
    pub seconds: f64,
}

/// Trains LightGBM on a bin's kept rows outside the validation fold and
/// scores it on those inside; None when there is no training row.
#[cfg(feature = "lightgbm")]
pub fn train_tree(
    train: &CodedRows,
    validation: &CodedRows,
    params: &LightGbmParams,
    cancel: &Cancel,
) -> Result<Option<TreeExpert>> {
    if train.is_empty() {
        return Ok(None);
    }
    let t = Instant::now();
    let expert = super::lightgbm::train(train, params, cancel)?;
    let seconds = t.elapsed().as_secs_f64();
    let validation_mse = if validation.is_empty() {
        None
    } else {
        let pred = expert.predict_codes(validation.codes())?;
        let sse: f64 = pred
            .iter()
            .zip(validation.targets())
            .map(|(p, y)| (p - y) * (p - y))
            .sum();
        Some(sse / validation.len() as f64)
    };
    Ok(Some(TreeExpert {
        model: expert.save(),
        train_rows: train.len(),
        validation_rows: validation.len(),
        validation_mse,
        seconds,
    }))
}

/// Without LightGBM in the build: refused (configurations asking for it
/// are refused before the pass; this is the backstop).
#[cfg(not(feature = "lightgbm"))]
pub fn train_tree(
    _train: &CodedRows,
    _validation: &CodedRows,
    _params: &LightGbmParams,
    _cancel: &Cancel,
) -> Result<Option<TreeExpert>> {
    Err(super::lightgbm::NOT_BUILT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experts::binning::PixelBins;
    use std::sync::Arc;

    #[test]
    fn ties_and_missing_models_keep_ridge() {
        assert_eq!(choose(Some(1.0), Some(0.5)), ExpertKind::LightGbm);
        assert_eq!(choose(Some(0.5), Some(1.0)), ExpertKind::Ridge);
        assert_eq!(choose(Some(1.0), Some(1.0)), ExpertKind::Ridge);
        assert_eq!(choose(Some(1.0), None), ExpertKind::Ridge);
        assert_eq!(choose(None, Some(1.0)), ExpertKind::LightGbm);
        assert_eq!(choose(None, None), ExpertKind::Ridge);
        assert_eq!(choose(Some(1.0), Some(f64::NAN)), ExpertKind::Ridge);
    }

    #[test]
    fn split_follows_the_folds_and_keeps_every_row_once() {
        let p = 3;
        let bins = Arc::new(PixelBins::fit(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], p, 255).unwrap());
        let n = 200;
        let origin: Vec<(u64, u64)> = (0..n).map(|i| (i % 2, i)).collect();
        let codes: Vec<u8> = (0..n * p as u64).map(|v| (v % 2) as u8).collect();
        let targets: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let rows = CodedRows::new(bins, origin, codes, targets).unwrap();
        let (train, val) = split(&rows, 7, 5, 2).unwrap();
        assert_eq!(train.len() + val.len(), n as usize);
        assert!(
            val.len() > 10 && train.len() > 100,
            "{} / {}",
            val.len(),
            train.len()
        );
        for (i, &(s, r)) in val.origin().iter().enumerate() {
            assert_eq!(fold_of(7, s, r, 5), 2);
            assert_eq!(val.targets()[i], r as f64);
            assert_eq!(
                &val.codes()[i * p..(i + 1) * p],
                &rows.codes()[r as usize * p..(r as usize + 1) * p]
            );
        }
        assert!(train
            .origin()
            .iter()
            .all(|&(s, r)| fold_of(7, s, r, 5) != 2));
    }

    #[test]
    fn ridge_validation_scores_the_held_out_fold() {
        // Rows y = 2x + 1 exactly, in two folds: a tiny α fits the line,
        // so the held-out fold's MSE is ~0; an empty fold gives None.
        let p = 1;
        let mut folds = vec![
            SuffStats::zeros(p),
            SuffStats::zeros(p),
            SuffStats::zeros(p),
        ];
        for i in 0..40 {
            let x = i as f64 * 0.1;
            let f = &mut folds[i % 2];
            f.n += 1;
            f.sum_x[0] += x;
            f.xtx[0] += x * x;
            f.xty[0] += x * (2.0 * x + 1.0);
            f.sum_y += 2.0 * x + 1.0;
            f.sum_yy += (2.0 * x + 1.0).powi(2);
        }
        let (mse, rows) = ridge_validation(&folds, 1, 1e-9, &[0.0], 0.0, faer::Par::Seq)
            .unwrap()
            .unwrap();
        assert_eq!(rows, 20);
        assert!(mse < 1e-12, "{mse}");
        // A large α shrinks the slope: a real error.
        let (big, _) = ridge_validation(&folds, 1, 1e3, &[0.0], 0.0, faer::Par::Seq)
            .unwrap()
            .unwrap();
        assert!(big > 0.1, "{big}");
        assert!(
            ridge_validation(&folds, 2, 1.0, &[0.0], 0.0, faer::Par::Seq)
                .unwrap()
                .is_none()
        );
        assert!(ridge_validation(&folds, 3, 1.0, &[0.0], 0.0, faer::Par::Seq).is_err());
    }
}
