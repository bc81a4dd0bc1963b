//! The sweep against scikit-learn and numpy (tests/interop/check_ridge_sklearn.py):
//! on files written by h5py (training flux at noise 0, a test shard with a
//! stored `noisy` array), every (group, α) model's weights and intercept,
//! test R² and exact K-fold CV MSE.

use crate::common;

use gramstream::noise::NoiseModel;
use gramstream::partition::{fold_of, PartitionSet};
use gramstream::stats::pass::{accumulate, AccumulateOptions};
use gramstream::stats::{Mode, StatsFile};
use gramstream::sweep::{self, CvMethod, SweepOptions, TestSpec};

const SEED: u64 = 7;
const FOLDS: usize = 3;

#[test]
fn every_bin_and_alpha_agrees_with_scikit_learn() {
    let Some(python) = common::python_with_sklearn() else {
        return;
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop/check_ridge_sklearn.py");
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("train.h5"), dir.path().join("test.h5"));
    let status = std::process::Command::new(&python)
        .arg(&script)
        .args(["--write"])
        .args([&train, &test])
        .status()
        .unwrap();
    assert!(status.success(), "writing the h5py shards");

    // Both accumulator layouts; CV by per-fold eigendecompositions, by PCG
    // and by the cheapest solver per fold (the band reduction at this size).
    for (mode, cv) in [
        (Mode::Cells, CvMethod::Eigh),
        (Mode::PerBin, CvMethod::Pcg),
        (Mode::Cells, CvMethod::Auto),
    ] {
        let opts = AccumulateOptions {
            partitions: PartitionSet::new(PartitionSet::default().partitions, FOLDS).unwrap(),
            noise: NoiseModel::new(0.0, SEED).unwrap(),
            mode: Some(mode),
            block_rows: Some(13),
            mem_budget: Some(1 << 30),
            ..Default::default()
        };
        let stats = dir.path().join("stats.h5");
        accumulate(&[train.clone()], &opts, None, &|_| {})
            .unwrap()
            .write(&stats, gramstream::Threads::new(2))
            .unwrap();
        let file = StatsFile::open(&stats).unwrap();
        let alphas: Vec<f64> = (-2..=6).map(|e| 10f64.powi(e)).collect();
        let result = sweep::run(
            &file,
            &SweepOptions {
                alphas: alphas.clone(),
                select: None,
                cv,
                test: Some(TestSpec {
                    path: test.clone(),
                    noise: None,
                    chunk_rows: 97,
                }),
                threads: gramstream::Threads::ONE,
                fixed_alpha: None,
                pca_components: 0,
                cancel: Default::default(),
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(result.groups.len(), 1 + 10 + 4);
        let groups: Vec<serde_json::Value> = result
            .groups
            .iter()
            .zip(&result.models)
            .map(|(g, m)| {
                let models: Vec<serde_json::Value> = alphas
                    .iter()
                    .enumerate()
                    .map(|(a, &alpha)| {
                        assert!(m.valid[a], "{} α={alpha}", g.name);
                        let c = m.coefficients(alpha, a);
                        let pt = &g.points[a];
                        serde_json::json!({
                            "alpha": alpha, "w": c.w, "intercept": c.intercept,
                            "test_r2": pt.test.expect("test metrics").r2,
                            "cv_mse": pt.cv_mse.expect("cv"),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "partition": g.id.partition, "slot": g.id.slot, "name": g.name,
                    "n_train": g.n_train, "n_test": g.n_test, "models": models,
                })
            })
            .collect();
        let json = dir.path().join("sweep.json");
        std::fs::write(
            &json,
            serde_json::to_string(&serde_json::json!({ "groups": groups })).unwrap(),
        )
        .unwrap();
        let rows = gramstream::source::Shard::open(&train, &gramstream::Layout::default())
            .unwrap()
            .rows();
        let folds: String = (0..rows as u64)
            .map(|r| format!("{}\n", fold_of(SEED, 0, r, FOLDS)))
            .collect();
        let folds_txt = dir.path().join("folds.txt");
        std::fs::write(&folds_txt, folds).unwrap();
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args([&train, &test, &json, &folds_txt])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{mode:?}, CV by {cv:?}: {}", text.trim());
        assert!(
            out.status.success(),
            "{mode:?}: scikit-learn disagrees: {text}"
        );
    }
}
