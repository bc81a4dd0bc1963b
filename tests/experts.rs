//! Tree experts per bin in an experiment (issue 13): the pass keeps each
//! bin's rows, LightGBM is trained per bin, Ridge and LightGBM are
//! compared on the validation fold, and the oracle-hybrid is scored — its
//! numbers consistent with the per-bin choice, reproducible on any thread
//! count, and configurations it cannot serve refused up front.

use std::path::Path;

use gramstream::experiment::{self, Event};
use gramstream::synth::{write_shard, ShardSpec, TEST_SHARD};
#[cfg(feature = "lightgbm")]
use gramstream::{
    noise::NoiseModel,
    predict::{predict, PredictOptions, Routing, SpectraChoice},
    sweep::test_eval::TEST_SHARD_INDEX,
};

const P: usize = 256;

fn data(dir: &Path) {
    for i in 0..2u64 {
        let path = dir.join(format!("train_{i}.h5"));
        write_shard(&path, &ShardSpec::new(1500, P, 7, i), &|_| {}).unwrap();
    }
    let spec = ShardSpec {
        id_offset: 100_000,
        ..ShardSpec::new(600, P, 7, TEST_SHARD)
    };
    write_shard(&dir.join("test.h5"), &spec, &|_| {}).unwrap();
}

fn config(threads: usize, experts: &str) -> String {
    format!(
        r#"name = "trees"
[data]
train = ["train_0.h5", "train_1.h5"]
test = "test.h5"
[stats]
partitions = ["teff_mh"]
folds = 3
threads = {threads}
mem_budget = "1GiB"
[ridge]
alphas = "1e-1:1e4:6"
[gate]
enabled = false
{experts}"#
    )
}

const TREES: &str = r#"[experts]
kinds = ["ridge", "lightgbm"]
rows_per_bin = 300
boundary_rows = 500
validation_fold = 1
[experts.lightgbm]
n_estimators = 40
min_child_samples = 10
"#;

fn run(dir: &Path, name: &str, text: &str) -> gramstream::Result<experiment::Experiment> {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let plan = experiment::plan_file(&path, Some(&dir.join(name.replace(".toml", ""))))?;
    experiment::execute(plan, false, &|_: Event<'_>| {})
}

#[cfg(feature = "lightgbm")]
fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[cfg(feature = "lightgbm")]
#[test]
fn the_hybrid_uses_each_bins_validated_choice_and_is_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    data(dir);
    run(
        dir,
        "one.toml",
        &config(
            1,
            &TREES.replace("[experts.lightgbm]", "[experts.lightgbm]\nthreads = 1"),
        ),
    )
    .unwrap();
    let r = json(&dir.join("one/results.json"));
    let part = &r["moe"]["teff_mh"];
    let bins = part["bins"].as_array().unwrap();
    assert_eq!(r["data"]["expert_rows_per_bin"], 300);
    let mut lightgbm_bins = 0;
    for b in bins {
        let e = &b["experts"];
        let kept = e["kept_rows"].as_u64().unwrap();
        assert!(kept <= 300, "{b}");
        let (train, val) = (
            e["lightgbm_train_rows"].as_u64().unwrap(),
            e["lightgbm_validation_rows"].as_u64().unwrap(),
        );
        assert_eq!(train + val, kept);
        // Fold 1 of 3 holds about a third of the bin's rows for Ridge.
        let n = b["n_train"].as_u64().unwrap() as f64;
        let rv = e["ridge_validation_rows"].as_u64().unwrap() as f64;
        assert!((rv / n - 1.0 / 3.0).abs() < 0.1, "{rv} of {n}");
        let (mr, ml) = (
            e["ridge_validation_mse"].as_f64().unwrap(),
            e["lightgbm_validation_mse"].as_f64().unwrap(),
        );
        // The choice follows the validation MSEs, and the hybrid's score in
        // the bin is the chosen kind's own.
        let chosen = e["chosen"].as_str().unwrap();
        assert_eq!(chosen, if ml < mr { "lightgbm" } else { "ridge" }, "{b}");
        let own = if chosen == "lightgbm" {
            lightgbm_bins += 1;
            e["lightgbm_r2"].as_f64().unwrap()
        } else {
            b["r2"].as_f64().unwrap()
        };
        assert_eq!(e["hybrid_r2"].as_f64().unwrap(), own, "{b}");
        // LightGBM learns something on these rows.
        assert!(e["lightgbm_r2"].as_f64().unwrap() > -0.5, "{b}");
    }
    let h = &part["hybrid"];
    assert_eq!(h["chosen"]["lightgbm"].as_u64().unwrap_or(0), lightgbm_bins);
    let (hr, or) = (
        h["r2"].as_f64().unwrap(),
        part["oracle"]["r2"].as_f64().unwrap(),
    );
    assert!((h["delta_r2_vs_oracle"].as_f64().unwrap() - (hr - or)).abs() < 1e-12);
    // Choosing on the test rows is at least as good as any one choice.
    assert!(h["chosen_on_test_r2"].as_f64().unwrap() >= hr.max(or) - 1e-12);
    assert!(r["runs"][0]["timing_s"]["experts"].as_f64().unwrap() > 0.0);
    let csv = std::fs::read_to_string(dir.join("one/per_bin.csv")).unwrap();
    assert!(
        csv.lines().next().unwrap().ends_with(",lightgbm_seconds"),
        "{csv}"
    );
    let md = std::fs::read_to_string(dir.join("one/report.md")).unwrap();
    for needle in [
        "Table 1 — experts per bin",
        "Table 2 — overall",
        "oracle-hybrid",
        "Oracle-hybrid ≥ 0.7",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}");
    }
    // Seed 002's five figures, drawn and linked from report.md.
    for stem in [
        "perbin_expert_comparison",
        "expert_selection_heatmap",
        "oracle_hybrid_vs_baseline",
        "perbin_delta_r2",
        "hybrid_pred_vs_true",
    ] {
        let file = format!("plots/ceiling_{stem}_teff_mh.png");
        let png = std::fs::read(dir.join("one").join(&file)).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{file}");
        assert!(png.len() > 5000, "{file}: {} bytes", png.len());
        assert!(md.contains(&format!("]({file})")), "report.md lacks {file}");
    }

    // models.h5 holds the choice and the LightGBM models: `predict` with
    // oracle routing on the test shard (its noise) is the experiment's
    // hybrid, row for row, bit for bit.
    let models = gramstream::models::ModelSet::open(&dir.join("one/models.h5")).unwrap();
    let saved = models.bin_experts.as_ref().expect("the choice is saved");
    assert_eq!(
        saved
            .chosen
            .iter()
            .filter(|k| **k == gramstream::experts::ExpertKind::LightGbm)
            .count() as u64,
        lightgbm_bins
    );
    let preds = std::fs::read_to_string(dir.join("one/predictions.csv")).unwrap();
    let header: Vec<&str> = preds.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "hybrid_teff_mh").unwrap();
    let want: Vec<f64> = preds
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect();
    let opts = PredictOptions {
        routing: Routing::Oracle { partition: 0 },
        spectra: SpectraChoice::Noise(NoiseModel::new(1.0, 42).unwrap()),
        first_shard_index: TEST_SHARD_INDEX,
        ..PredictOptions::new(&models)
    };
    let mut got = Vec::new();
    predict(
        &models,
        &[dir.join("test.h5")],
        &opts,
        &mut |row| {
            got.push(row.prediction);
            Ok(())
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "row {i}: predict {g}, experiment {w}"
        );
    }

    // Two threads for the pass, the solve and LightGBM: the same numbers.
    run(
        dir,
        "two.toml",
        &config(
            2,
            &TREES.replace("[experts.lightgbm]", "[experts.lightgbm]\nthreads = 2"),
        ),
    )
    .unwrap();
    let two = json(&dir.join("two/results.json"));
    assert_eq!(
        without_seconds(&two["moe"]),
        without_seconds(&r["moe"]),
        "1 and 2 threads"
    );
}

/// `v` without its training times (the only numbers that may differ).
#[cfg(feature = "lightgbm")]
fn without_seconds(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .filter(|(k, _)| k.as_str() != "lightgbm_seconds")
            .map(|(k, v)| (k.clone(), without_seconds(v)))
            .collect(),
        serde_json::Value::Array(a) => a.iter().map(without_seconds).collect(),
        other => other.clone(),
    }
}

#[test]
fn configurations_tree_experts_cannot_serve_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    data(dir);
    let plan = |text: String| {
        let path = dir.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        experiment::plan_file(&path, None)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    if !gramstream::experts::lightgbm::AVAILABLE {
        let e = plan(config(1, TREES));
        assert!(e.contains("this build has no LightGBM"), "{e}");
        return;
    }
    for (change, says) in [
        (
            ("validation_fold = 1", "validation_fold = 3"),
            "validation_fold = 3",
        ),
        (
            (
                "kinds = [\"ridge\", \"lightgbm\"]",
                "kinds = [\"lightgbm\"]",
            ),
            "list \"ridge\"",
        ),
        (
            (
                "rows_per_bin = 300",
                "rows_per_bin = 300\npartition = \"snr\"",
            ),
            "not in [stats] partitions",
        ),
        (
            ("n_estimators = 40", "n_estimators = 40\nlearning_rate = -1"),
            "[experts.lightgbm]",
        ),
        (
            ("n_estimators = 40", "n_estimators = 40\nlearnig_rate = 1"),
            "learnig_rate",
        ),
    ] {
        let e = plan(config(1, TREES).replace(change.0, change.1));
        assert!(e.contains(says), "{change:?}: {e}");
    }
    let e = plan(
        config(1, TREES)
            .replace("folds = 3", "folds = 1")
            .replace("[ridge]", "[ridge]\nselect = \"gcv\""),
    );
    assert!(e.contains("validation fold"), "{e}");
    std::fs::write(dir.join("s.h5"), b"").unwrap();
    let e = plan(config(1, TREES).replace(
        "train = [\"train_0.h5\", \"train_1.h5\"]",
        "stats = \"s.h5\"",
    ));
    assert!(e.contains("drop [data] stats"), "{e}");
    // A budget that cannot hold the asked rows: refused with the arithmetic.
    let e = run(
        dir,
        "small.toml",
        &config(
            1,
            &TREES.replace("rows_per_bin = 300", "rows_per_bin = 100000000"),
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("tree experts' rows") && e.contains("9 bins × 100000000 rows"),
        "{e}"
    );
    assert!(!dir.join("small").exists(), "no output after a refusal");
}
