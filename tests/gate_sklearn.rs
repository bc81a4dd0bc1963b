//! The gate's logistic regression against scikit-learn
//! (tests/interop/check_gate_sklearn.py).
//!
//! Synthetic shards (1024 pixels over 7100–8850 Å), noise 1.0 added by the
//! pass, which keeps every row in its reservoir; PCA of the training rows by
//! an eigendecomposition of their covariance; the 37 gate features in Rust
//! for a training and a test split; the gate trained on the training
//! reservoir. scikit-learn's `LogisticRegression(C=1, max_iter=10000,
//! tol=1e-10)` on the same features (standardised by `StandardScaler`) must
//! reach a test accuracy within 1 percentage point of the gate's, and the
//! two must give the same test probabilities to ≤ 1e-4.

use crate::common;

use std::path::Path;

use faer::{Mat, Par};
use gramstream::gate::{features, Gate};
use gramstream::noise::NoiseModel;
use gramstream::partition::{Partition, PartitionSet, RowKeys};
use gramstream::stats::pass::{accumulate, AccumulateOptions};
use gramstream::stats::{Mode, Reservoir};
use gramstream::synth::{write_shard, ShardSpec};

const P: usize = 1024;
const SEED: u64 = 17;
const TRAIN_ROWS: usize = 3000;
const TEST_ROWS: usize = 1000;

/// Writes a shard and returns the reservoir of a pass over it with noise 1
/// that keeps every row, and the shard's wavelength grid.
fn noisy_rows(dir: &Path, name: &str, rows: usize, shard: u64) -> (Reservoir, Vec<f64>) {
    let path = dir.join(name);
    write_shard(&path, &ShardSpec::new(rows, P, SEED, shard), &|_| {}).unwrap();
    let opts = AccumulateOptions {
        partitions: PartitionSet::new(vec![Partition::teff_mh()], 1).unwrap(),
        noise: NoiseModel::new(1.0, SEED).unwrap(),
        mode: Some(Mode::PerBin),
        threads: gramstream::Threads::ONE,
        gate_sample: rows,
        mem_budget: Some(1 << 30),
        first_shard_index: shard,
        ..Default::default()
    };
    let out = accumulate(std::slice::from_ref(&path), &opts, None, &|_| {}).unwrap();
    assert_eq!(out.reservoir.len(), rows, "the reservoir keeps every row");
    let wave = gramstream::source::Shard::open(&path, &opts.layout)
        .unwrap()
        .wave()
        .to_vec();
    (out.reservoir, wave)
}

/// Mean and the 10 leading eigenvectors of the covariance of the rows.
fn pca(r: &Reservoir) -> (Vec<f64>, Mat<f64>) {
    let n = r.len();
    let mut mean = vec![0.0; P];
    for row in r.x.chunks_exact(P) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n as f64;
        }
    }
    let xc = Mat::from_fn(n, P, |i, j| r.x[i * P + j] - mean[j]);
    let cov = xc.transpose() * &xc;
    let (lambda, v) = gramstream::linalg::eigh(&cov, Par::Seq).unwrap();
    features::leading_components(&mean, &lambda, v.as_ref(), features::PCA_COMPONENTS).unwrap()
}

/// Features and labels of the binned rows.
fn labelled(gate: &Gate, r: &Reservoir) -> (Vec<f64>, Vec<usize>) {
    let (mut x, mut y) = (vec![], vec![]);
    for (row, prm) in r.x.chunks_exact(P).zip(&r.params) {
        let keys = RowKeys {
            teff: prm[0],
            mh: prm[1],
            snr: prm[3],
        };
        if let Some(bin) = gate.partition.bin(&keys) {
            let mut f = vec![0.0; features::N_FEATURES];
            gate.features.compute(row, &mut f);
            x.extend_from_slice(&f);
            y.push(bin);
        }
    }
    (x, y)
}

fn write_f64(path: &Path, v: &[f64]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn gate_agrees_with_scikit_learn_logistic_regression() {
    let Some(python) = common::python_with_sklearn() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (train, wave) = noisy_rows(dir.path(), "train.h5", TRAIN_ROWS, 0);
    let (test, test_wave) = noisy_rows(dir.path(), "test.h5", TEST_ROWS, 1);
    assert_eq!(wave, test_wave);
    let (mean, comps) = pca(&train);
    let partition = Partition::teff_mh();
    let (gate, report) = Gate::train(&train, &wave, mean, comps, &partition, 1.0).unwrap();
    eprintln!("gate training: {report:?}");
    assert!(report.gradient_norm <= 1e-10, "{report:?}");

    let (xtr, ytr) = labelled(&gate, &train);
    let (xte, yte) = labelled(&gate, &test);
    assert_eq!(ytr.len(), report.rows);
    let d = features::N_FEATURES;
    let k = partition.bins();
    let mut proba = Vec::with_capacity(yte.len() * k);
    let mut correct = 0;
    for (row, &l) in xte.chunks_exact(d).zip(&yte) {
        let p = gate.model.predict_proba(row);
        correct += usize::from(gramstream::gate::logistic::argmax(&p) == l);
        proba.extend_from_slice(&p);
    }
    let accuracy = correct as f64 / yte.len() as f64;
    // The gate's own path (spectrum → features → probabilities) is the same.
    let first = test
        .params
        .iter()
        .position(|prm| {
            partition
                .bin(&RowKeys {
                    teff: prm[0],
                    mh: prm[1],
                    snr: prm[3],
                })
                .is_some()
        })
        .unwrap();
    assert_eq!(
        gate.probabilities(&test.x[first * P..(first + 1) * P]),
        proba[..k]
    );

    let as_f64 = |v: &[usize]| v.iter().map(|&l| l as f64).collect::<Vec<_>>();
    write_f64(&dir.path().join("train_x.f64"), &xtr);
    write_f64(&dir.path().join("train_y.f64"), &as_f64(&ytr));
    write_f64(&dir.path().join("test_x.f64"), &xte);
    write_f64(&dir.path().join("test_y.f64"), &as_f64(&yte));
    write_f64(&dir.path().join("rust_proba.f64"), &proba);
    let meta = serde_json::json!({
        "features": d,
        "classes": k,
        "c": 1.0,
        "rust_accuracy": accuracy,
    });
    std::fs::write(dir.path().join("meta.json"), meta.to_string()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/check_gate_sklearn.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "check_gate_sklearn.py failed");
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("result.json")).unwrap())
            .unwrap();
    let sk = result["sklearn_accuracy"].as_f64().unwrap();
    let dp = result["max_abs_proba_diff"].as_f64().unwrap();
    println!(
        "gate test accuracy: gramstream {:.2} %, scikit-learn {:.2} % ({} test rows, {} training rows); max |Δp| = {dp:.2e}",
        100.0 * accuracy,
        100.0 * sk,
        yte.len(),
        ytr.len()
    );
    assert!(
        (accuracy - sk).abs() <= 0.01,
        "test accuracy {accuracy} vs scikit-learn {sk}"
    );
    assert!(dp <= 1e-4, "probabilities differ by {dp}");
    // The gate must route better than chance over 9 bins.
    assert!(accuracy > 0.3, "accuracy {accuracy}");
}
