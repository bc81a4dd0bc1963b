//! Training, prediction, storage and reproducibility of LightGBM experts.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{train, LightGbmExpert, LightGbmParams, SavedLightGbm};
use crate::experts::binning::{PixelBins, MAX_CODES};
use crate::experts::dataset::{CodedRows, ExpertDataset};
use crate::threads::Cancel;
use crate::{Error, FitError, Threads};

/// Rows with a nonlinear target: a step in pixel 0, a square in pixel 1,
/// an interaction of pixels 2 and 3; the other pixels are noise.
fn rows(n: usize, pixels: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let x: Vec<f64> = (0..n * pixels)
        .map(|_| rng.random::<f64>() * 2.0 - 1.0)
        .collect();
    let y = x
        .chunks_exact(pixels)
        .map(|r| f64::from(u8::from(r[0] > 0.2)) + r[1] * r[1] + r[2] * r[3])
        .collect();
    (x, y)
}

fn coded(x: &[f64], y: &[f64], pixels: usize, cap: usize) -> CodedRows {
    let bins = Arc::new(PixelBins::fit(x, pixels, MAX_CODES).unwrap());
    let mut d = ExpertDataset::new(bins, cap, 9);
    for (i, (row, &t)) in x.chunks_exact(pixels).zip(y).enumerate() {
        d.offer(0, i as u64, row, t).unwrap();
    }
    d.into_rows()
}

fn r2(y: &[f64], f: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let sst: f64 = y.iter().map(|v| (v - mean) * (v - mean)).sum();
    let sse: f64 = y.iter().zip(f).map(|(a, b)| (a - b) * (a - b)).sum();
    1.0 - sse / sst
}

fn small(threads: usize) -> LightGbmParams {
    LightGbmParams {
        n_estimators: 120,
        threads: Threads::new(threads),
        seed: 3,
        ..Default::default()
    }
}

#[test]
fn learns_a_nonlinear_target_from_codes_and_predicts_raw_rows_alike() {
    for (n, p) in [(3000, 8), (1200, 40)] {
        let (x, y) = rows(n, p, n as u64);
        let data = coded(&x, &y, p, n);
        let expert = train(&data, &small(2), &Cancel::default()).unwrap();
        assert_eq!((expert.pixels(), expert.trees()), (p, 120));
        let (xt, yt) = rows(1000, p, 77);
        let pred = expert.predict(&xt).unwrap();
        let fit = r2(&yt, &pred);
        // Var y ≈ 0.24 + 0.089 + 0.111; a linear model can explain only
        // the step's linear part (0.24² / (1/3) = 0.173): R² ≤ 0.39.
        eprintln!("{n} × {p}: test R² {fit}");
        assert!(fit > 0.6, "{n} × {p}: test R² {fit}");
        let mut codes = vec![0; xt.len()];
        expert.bins().encode(&xt, &mut codes).unwrap();
        assert_eq!(expert.predict_codes(&codes).unwrap(), pred);
    }
}

#[test]
fn a_saved_expert_predicts_the_same_bits_and_is_checked_on_load() {
    let (x, y) = rows(2000, 6, 1);
    let expert = train(&coded(&x, &y, 6, 2000), &small(2), &Cancel::default()).unwrap();
    let json = serde_json::to_string(&expert.save()).unwrap();
    let saved: SavedLightGbm = serde_json::from_str(&json).unwrap();
    assert_eq!(saved.bins, *expert.bins());
    let loaded = LightGbmExpert::load(saved.clone(), Threads::ONE).unwrap();
    let pred = expert.predict(&x).unwrap();
    let again = loaded.predict(&x).unwrap();
    assert!(pred
        .iter()
        .zip(&again)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(loaded.model_text(), expert.model_text());

    let other_bins = PixelBins::fit(&x[..600], 3, MAX_CODES).unwrap();
    let err = LightGbmExpert::load(
        SavedLightGbm {
            bins: other_bins,
            ..saved.clone()
        },
        Threads::ONE,
    );
    assert!(matches!(err, Err(Error::LightGbm { .. })), "{err:?}");
    let garbage = SavedLightGbm {
        model: "tree\nnot a model".into(),
        ..saved
    };
    let err = LightGbmExpert::load(garbage, Threads::ONE);
    assert!(matches!(err, Err(Error::LightGbm { .. })), "{err:?}");
}

/// The model text without its `parameters:` section (which records
/// `num_threads`).
fn trees_of(text: &str) -> &str {
    text.split("\nparameters:").next().unwrap()
}

#[test]
fn training_is_reproducible_and_the_same_for_one_and_two_threads() {
    let (x, y) = rows(2500, 30, 5);
    let data = coded(&x, &y, 30, 2500);
    let a = train(&data, &small(2), &Cancel::default()).unwrap();
    let b = train(&data, &small(2), &Cancel::default()).unwrap();
    assert_eq!(a.model_text(), b.model_text());
    let one = train(&data, &small(1), &Cancel::default()).unwrap();
    assert_eq!(trees_of(one.model_text()), trees_of(a.model_text()));
    let (pa, p1) = (a.predict(&x).unwrap(), one.predict(&x).unwrap());
    assert!(pa.iter().zip(&p1).all(|(u, v)| u.to_bits() == v.to_bits()));
    // Another seed draws other features per tree.
    let other = LightGbmParams {
        seed: 4,
        ..small(2)
    };
    let c = train(&data, &other, &Cancel::default()).unwrap();
    assert_ne!(trees_of(c.model_text()), trees_of(a.model_text()));
}

#[test]
fn empty_tiny_and_cancelled_trainings_end_without_a_panic() {
    let (x, y) = rows(40, 4, 2);
    let bins = Arc::new(PixelBins::fit(&x, 4, MAX_CODES).unwrap());
    let empty = ExpertDataset::new(bins, 10, 1).into_rows();
    match train(&empty, &small(1), &Cancel::default()) {
        Err(Error::Fit(FitError::TooFewRows { rows: 0, .. })) => {}
        other => panic!("{other:?}"),
    }
    // 40 rows, 50 per leaf: no split; the model predicts the mean.
    let tiny = coded(&x, &y, 4, 40);
    let expert = train(&tiny, &small(1), &Cancel::default()).unwrap();
    let mean = y.iter().sum::<f64>() / 40.0;
    for v in expert.predict(&x).unwrap() {
        assert!((v - mean).abs() < 1e-6, "{v} vs mean {mean}");
    }
    let one_row = coded(&x[..4], &y[..1], 4, 1);
    assert!(train(&one_row, &small(1), &Cancel::default()).is_ok());
    let cancel = Cancel::default();
    cancel.cancel();
    assert!(matches!(
        train(&tiny, &small(1), &cancel),
        Err(Error::Cancelled)
    ));
    let bad = LightGbmParams {
        num_leaves: 1,
        ..small(1)
    };
    assert!(matches!(
        train(&tiny, &bad, &Cancel::default()),
        Err(Error::InvalidParameter {
            name: "num_leaves",
            ..
        })
    ));
    let err = expert.predict(&[0.0, f64::NAN, 0.0, 0.0]);
    assert!(
        matches!(err, Err(Error::NonFinite { row: 0, .. })),
        "{err:?}"
    );
}

#[test]
fn every_code_is_a_bin_of_its_own_even_when_rare() {
    // Pixel 0 takes each code once; the target steps between codes 100 and
    // 101. One split of one tree finds the step only if LightGBM keeps
    // every code apart (its default would merge codes seen fewer than
    // 3 times); pixel 1 is noise.
    let x: Vec<f64> = (0..255)
        .flat_map(|k| [f64::from(k), f64::from((k * 37) % 255)])
        .collect();
    let y: Vec<f64> = (0..255).map(|k| f64::from(u8::from(k > 100))).collect();
    let data = coded(&x, &y, 2, 255);
    assert_eq!(data.bins().bounds(0).len(), 254);
    let params = LightGbmParams {
        n_estimators: 1,
        num_leaves: 2,
        learning_rate: 1.0,
        min_child_samples: 1,
        feature_fraction: 1.0,
        reg_alpha: 0.0,
        reg_lambda: 0.0,
        threads: Threads::ONE,
        ..Default::default()
    };
    let pred = train(&data, &params, &Cancel::default())
        .unwrap()
        .predict(&x)
        .unwrap();
    for (k, (&p, &t)) in pred.iter().zip(&y).enumerate() {
        assert!((p - t).abs() < 1e-6, "code {k}: prediction {p}, target {t}");
    }
}
