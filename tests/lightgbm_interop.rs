//! gramstream's LightGBM expert against Python's `lightgbm`
//! (tests/interop/check_lightgbm.py; feature `lightgbm`).
//!
//! A generated shard (12,000 spectra of 512 pixels), read by the pass with
//! noise 0 (its reservoir keeps every row); the rows of one T_eff × [M/H]
//! bin (the most populated), split by `fold_of` into 3/4 training and 1/4
//! test rows. gramstream codes the
//! training rows with boundaries from all of them, keeps them in an
//! `ExpertDataset` (cap = all) and trains its expert with the seed's
//! parameters; `lightgbm.LGBMRegressor` trains on the same raw rows in the
//! same order with the same parameters and its own binning. The two must
//! give test R² within 0.01 and predictions correlated ≥ 0.99.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use gramstream::eval::Scores;
use gramstream::experts::binning::{PixelBins, MAX_CODES};
use gramstream::experts::dataset::ExpertDataset;
use gramstream::experts::lightgbm::{self, LightGbmParams};
use gramstream::noise::NoiseModel;
use gramstream::partition::{fold_of, Partition, PartitionSet, RowKeys};
use gramstream::stats::pass::{accumulate, AccumulateOptions};
use gramstream::stats::{Mode, Reservoir};
use gramstream::synth::{write_shard, ShardSpec};
use gramstream::threads::Cancel;
use gramstream::Threads;

const P: usize = 512;
const ROWS: usize = 12_000;
const SEED: u64 = 23;

/// The shard's rows as the pass sees them with noise 0.
fn rows_without_noise(dir: &Path) -> Reservoir {
    let path = dir.join("shard.h5");
    write_shard(&path, &ShardSpec::new(ROWS, P, SEED, 0), &|_| {}).unwrap();
    let opts = AccumulateOptions {
        partitions: PartitionSet::new(vec![Partition::teff_mh()], 1).unwrap(),
        noise: NoiseModel::new(0.0, SEED).unwrap(),
        mode: Some(Mode::PerBin),
        threads: Threads::ONE,
        gate_sample: ROWS,
        mem_budget: Some(1 << 30),
        ..Default::default()
    };
    let out = accumulate(std::slice::from_ref(&path), &opts, None, &|_| {}).unwrap();
    assert_eq!(out.reservoir.len(), ROWS, "the reservoir keeps every row");
    out.reservoir
}

fn write_f64(path: &Path, v: &[f64]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn lightgbm_expert_agrees_with_python_lightgbm() {
    let Some(python) = common::python_with_lightgbm() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let all = rows_without_noise(dir.path());
    eprintln!("shard and pass: {:.1} s", start.elapsed().as_secs_f64());
    let row = |i: usize| &all.x[i * P..(i + 1) * P];
    // One bin's rows, as one bin's expert sees them.
    let part = Partition::teff_mh();
    let bin_of = |i: usize| {
        let [teff, mh, _, snr] = all.params[i];
        part.bin(&RowKeys { teff, mh, snr })
    };
    let mut counts = vec![0usize; part.bins()];
    for b in (0..all.len()).filter_map(bin_of) {
        counts[b] += 1;
    }
    let bin = (0..counts.len()).max_by_key(|&b| counts[b]).unwrap();
    eprintln!("bin {bin} ({}): {} rows", part.bin_names[bin], counts[bin]);
    let (train, test): (Vec<usize>, Vec<usize>) = (0..all.len())
        .filter(|&i| bin_of(i) == Some(bin))
        .partition(|&i| {
            let (shard, r) = all.origin[i];
            fold_of(SEED, shard, r, 4) != 0
        });
    let train_x: Vec<f64> = train.iter().flat_map(|&i| row(i).to_vec()).collect();
    let bins = Arc::new(PixelBins::fit(&train_x, P, MAX_CODES).unwrap());
    let mut data = ExpertDataset::new(bins, train.len(), SEED);
    for &i in &train {
        let (shard, r) = all.origin[i];
        assert!(data.offer(shard, r, row(i), all.params[i][2]).unwrap());
    }
    let coded = data.into_rows();
    let params = LightGbmParams {
        threads: Threads::new(2),
        seed: SEED,
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let expert = lightgbm::train(&coded, &params, &Cancel::default()).unwrap();
    eprintln!(
        "gramstream's training: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(expert.trees(), params.n_estimators);
    let test_x: Vec<f64> = test.iter().flat_map(|&i| row(i).to_vec()).collect();
    let test_y: Vec<f64> = test.iter().map(|&i| all.params[i][2]).collect();
    let pred = expert.predict(&test_x).unwrap();
    let mut scores = Scores::around(test_y[0]);
    for (&y, &f) in test_y.iter().zip(&pred) {
        scores.add(y, f);
    }
    let rust_r2 = scores.metrics().unwrap().r2;

    // Python gets the raw training rows in the expert's row order.
    let index: std::collections::HashMap<(u64, u64), usize> = all
        .origin
        .iter()
        .enumerate()
        .map(|(i, &o)| (o, i))
        .collect();
    let order: Vec<usize> = coded.origin().iter().map(|o| index[o]).collect();
    let ordered_x: Vec<f64> = order.iter().flat_map(|&i| row(i).to_vec()).collect();
    assert_eq!(
        coded.targets(),
        order.iter().map(|&i| all.params[i][2]).collect::<Vec<_>>()
    );
    write_f64(&dir.path().join("train_x.f64"), &ordered_x);
    write_f64(&dir.path().join("train_y.f64"), coded.targets());
    write_f64(&dir.path().join("test_x.f64"), &test_x);
    write_f64(&dir.path().join("test_y.f64"), &test_y);
    write_f64(&dir.path().join("rust_pred.f64"), &pred);
    let meta = serde_json::json!({ "pixels": P, "params": params });
    std::fs::write(dir.path().join("meta.json"), meta.to_string()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/check_lightgbm.py");
    let start = std::time::Instant::now();
    let out = Command::new(&python)
        .arg(&script)
        .arg(dir.path())
        .output()
        .unwrap();
    eprintln!("Python: {:.1} s", start.elapsed().as_secs_f64());
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("result.json"))
            .expect("check_lightgbm.py wrote no result"),
    )
    .unwrap();
    let (py_r2, corr) = (
        result["python_r2"].as_f64().unwrap(),
        result["correlation"].as_f64().unwrap(),
    );
    println!(
        "LightGBM test R²: gramstream {rust_r2:.4}, Python lightgbm {} {py_r2:.4}; correlation {corr:.4} ({} training, {} test rows)",
        result["version"],
        train.len(),
        test.len()
    );
    assert!(
        (result["rust_r2"].as_f64().unwrap() - rust_r2).abs() < 1e-9,
        "Python's R² of gramstream's predictions {} vs ours {rust_r2}",
        result["rust_r2"]
    );
    assert!(
        (rust_r2 - py_r2).abs() <= 0.01,
        "test R² {rust_r2} vs Python {py_r2}"
    );
    assert!(corr >= 0.99, "correlation {corr}");
    assert!(out.status.success(), "check_lightgbm.py failed");
    // Trees must have learned something from noiseless spectra.
    assert!(rust_r2 > 0.5, "R² {rust_r2}");
}
