//! `gramstream experiment` end to end on small generated shards: every
//! output is written, the numbers agree with an independent recomputation
//! (numpy / scikit-learn on `predictions.csv`) and with `predict` on the
//! saved experts, a run is reproducible, and bad configurations fail
//! without leaving output behind.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use gramstream::experiment::{self, Event};
use gramstream::experts::ExpertKind;
use gramstream::models::ModelSet;
use gramstream::noise::NoiseModel;
use gramstream::predict::{predict, PredictOptions, Routing, SpectraChoice};
use gramstream::sweep::test_eval::TEST_SHARD_INDEX;
use gramstream::synth::{write_shard, ShardSpec, TEST_SHARD};

const P: usize = 1024;

fn data(dir: &Path) {
    for i in 0..2u64 {
        let path = dir.join(format!("train_{i}.h5"));
        write_shard(&path, &ShardSpec::new(1500, P, 5, i), &|_| {}).unwrap();
    }
    let spec = ShardSpec {
        id_offset: 100_000,
        ..ShardSpec::new(700, P, 5, TEST_SHARD)
    };
    write_shard(&dir.join("test.h5"), &spec, &|_| {}).unwrap();
}

fn config(seeds: &str, extra: &str) -> String {
    format!(
        r#"name = "check"
description = "integration test"
[data]
train = ["train_0.h5", "train_1.h5"]
test = "test.h5"
[noise]
levels = [1.0]
seeds = [{seeds}]
[stats]
folds = 2
threads = 1
[ridge]
alphas = "1:1e5:6"
[gate]
sample = 2000
{extra}"#
    )
}

fn run(
    dir: &Path,
    name: &str,
    text: &str,
    force: bool,
) -> gramstream::Result<experiment::Experiment> {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let plan = experiment::plan_file(&path, Some(&dir.join(name.replace(".toml", ""))))?;
    experiment::execute(plan, force, &|_: Event<'_>| {})
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn an_experiment_writes_its_report_and_its_numbers_check_out() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    data(dir);
    let exp = run(dir, "two.toml", &config("42, 123", ""), false).unwrap();
    let out = dir.join("two");
    for f in [
        "results.json",
        "per_bin.csv",
        "predictions.csv",
        "report.md",
        "models.h5",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for run in ["noise1_seed42", "noise1_seed123"] {
        assert!(out.join("runs").join(run).join("sweep.csv").is_file());
        assert!(
            !out.join("runs").join(run).join("stats.h5").exists(),
            "stats not kept by default"
        );
    }
    let pngs = std::fs::read_dir(out.join("plots")).unwrap().count();
    assert!(pngs >= 15, "{pngs} plots");
    let leftovers: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // results.json: the DESIGN §8 contract, and the summary over seeds.
    let r = json(&out.join("results.json"));
    assert_eq!(r["schema"], "gramstream.results/1");
    assert_eq!(r["data"]["train_rows"], 3000);
    assert_eq!(r["data"]["test_rows"], 700);
    assert_eq!(r["data"]["pixels"], P);
    assert_eq!(r["data"]["seed"], 42);
    for key in ["accumulate", "solve", "total"] {
        assert!(r["timing_s"][key].as_f64().unwrap() > 0.0, "{key}");
    }
    let tm = &r["moe"]["teff_mh"];
    for k in ["r2", "mae", "rmse", "delta_r2"] {
        assert!(tm["oracle"][k].is_number(), "oracle {k}");
    }
    for k in ["r2", "rho", "routing_accuracy"] {
        assert!(
            tm["soft_gate"][k].is_number() && tm["hard_gate"][k].is_number(),
            "{k}"
        );
    }
    assert_eq!(tm["bins"].as_array().unwrap().len(), 9);
    assert_eq!(r["moe"]["snr"]["bins"].as_array().unwrap().len(), 4);
    assert!(
        r["moe"]["snr"].get("soft_gate").is_none(),
        "the gate routes teff_mh only"
    );
    let b0 = &tm["bins"][0];
    for k in [
        "id",
        "name",
        "alpha",
        "n_train",
        "n_test",
        "r2",
        "r2_global",
        "delta_r2",
        "mae",
    ] {
        assert!(!b0[k].is_null(), "bin field {k}");
    }
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_ne!(
        runs[0]["global"]["r2"], runs[1]["global"]["r2"],
        "seeds draw different noise"
    );
    let s = &r["summary"][0]["metrics"]["moe.teff_mh.oracle.delta_r2"];
    let (a, b) = (
        runs[0]["moe"]["teff_mh"]["oracle"]["delta_r2"]
            .as_f64()
            .unwrap(),
        runs[1]["moe"]["teff_mh"]["oracle"]["delta_r2"]
            .as_f64()
            .unwrap(),
    );
    assert!((s["mean"].as_f64().unwrap() - (a + b) / 2.0).abs() < 1e-12);
    assert_eq!(exp.runs.len(), 2);

    // per_bin.csv: one line per run × (9 + 4) bins.
    let csv = std::fs::read_to_string(out.join("per_bin.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 13);
    assert!(csv.starts_with(experiment::report::PER_BIN_HEADER));

    // report.md: the tables and the checked findings.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for want in [
        "| global Ridge |",
        "| oracle MoE, teff_mh |",
        "| soft gate MoE, teff_mh |",
        "### Per bin: teff_mh",
        "Metal-poor bins hardest",
        "Soft gate beats hard",
        "Confusion matrix",
        "](plots/gate_probabilities.png)",
    ] {
        assert!(md.contains(want), "report.md lacks {want:?}");
    }

    // The saved experts predict the same numbers through `predict`, on the
    // same drawn test noise (the experiment's test shard index and seed).
    let models = ModelSet::open(&out.join("models.h5")).unwrap();
    let preds = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    let header: Vec<&str> = preds.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<String>> = preds
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(
        models.gate.as_ref().map(|g| g.partition),
        Some(0),
        "the gate is saved"
    );
    for (routing, column) in [
        (Routing::Global, "global"),
        (Routing::Oracle { partition: 0 }, "oracle_teff_mh"),
        (Routing::Gate { soft: true }, "soft"),
        (Routing::Gate { soft: false }, "hard"),
    ] {
        let opts = PredictOptions {
            routing,
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
        assert_eq!(got.len(), rows.len());
        for (i, g) in got.iter().enumerate() {
            let want: f64 = rows[i][col(column)].parse().unwrap();
            assert_eq!(
                g.to_bits(),
                want.to_bits(),
                "{column} row {i}: predict {g}, experiment {want}"
            );
        }
    }

    // The same seed alone reproduces the first run bit for bit.
    run(dir, "one.toml", &config("42", ""), false).unwrap();
    let one = json(&dir.join("one").join("results.json"));
    for part in ["global", "moe", "data"] {
        let mut x = one[part].clone();
        let mut y = r[part].clone();
        for v in [&mut x, &mut y] {
            if let Some(o) = v.as_object_mut() {
                o.remove("train_shards");
                o.remove("test");
            }
        }
        assert_eq!(
            x, y,
            "{part} differs between the two-seed and one-seed runs"
        );
    }

    // An independent recomputation with numpy and scikit-learn.
    if let Some(py) = common::python_with_sklearn() {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/check_experiment.py");
        let o = Command::new(py).arg(script).arg(&out).output().unwrap();
        assert!(
            o.status.success(),
            "check_experiment.py:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    // An existing experiment is not overwritten without force, and is with it.
    let e = run(dir, "two.toml", &config("42, 123", ""), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exists") && e.contains("--force"), "{e}");
    let before = std::fs::metadata(out.join("results.json"))
        .unwrap()
        .modified()
        .unwrap();
    run(dir, "two.toml", &config("42", ""), true).unwrap();
    let after = json(&out.join("results.json"));
    assert_eq!(after["runs"].as_array().unwrap().len(), 1);
    assert!(
        std::fs::metadata(out.join("results.json"))
            .unwrap()
            .modified()
            .unwrap()
            >= before
    );
}

#[test]
fn a_failing_experiment_leaves_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    data(dir);
    // A test shard with other pixels: fails after the pass, in the sweep.
    write_shard(
        &dir.join("narrow.h5"),
        &ShardSpec::new(50, 512, 5, TEST_SHARD),
        &|_| {},
    )
    .unwrap();
    let text = config("42", "").replace("test = \"test.h5\"", "test = \"narrow.h5\"");
    let e = run(dir, "bad.toml", &text, false).unwrap_err().to_string();
    assert!(e.contains("narrow.h5") && e.contains("pixels"), "{e}");
    let entries: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".h5") && !n.ends_with(".toml"))
        .collect();
    assert!(entries.is_empty(), "left behind: {entries:?}");
    // Configuration errors name the file and the key.
    let e = run(
        dir,
        "typo.toml",
        &config("42", "[output]\nplotz = true\n"),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("typo.toml") && e.contains("line 17") && e.contains("plotz"),
        "{e}"
    );
    let e = run(
        dir,
        "nogate.toml",
        &config("42", "").replace("[gate]", "[stats]\npartitions = [\"snr\"]\n[gate]"),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("nogate.toml"), "{e}");

    // The command line: exit 1 with one line, nothing written.
    let cli = |args: &[&str]| {
        // Without HDF5 file locking: see tests/sweep.rs, `bin`.
        Command::new(env!("CARGO_BIN_EXE_gramstream"))
            .env("HDF5_USE_FILE_LOCKING", "FALSE")
            .arg("experiment")
            .args(args)
            .output()
            .unwrap()
    };
    let cfg = dir.join("cli.toml");
    std::fs::write(&cfg, config("42", "")).unwrap();
    let out = dir.join("cli-out");
    let o = cli(&[
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--mem-budget",
        "1MiB",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("mem-budget"), "{err}");
    assert!(!out.exists());
    let o = cli(&[dir.join("absent.toml").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("absent.toml"), "{err}");
}

#[test]
fn the_example_configs_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("examples/configs");
    std::fs::create_dir_all(&base).unwrap();
    let mut dirs = vec!["test".to_string()];
    dirs.extend((0..5).map(|i| format!("train_{i}")));
    for d in dirs {
        let d = tmp.path().join("data/bosz").join(d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("dataset.h5"), b"").unwrap();
    }
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&configs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = experiment::Config::load(&path).unwrap();
            let name = config.name.clone();
            let needs_lightgbm = config.experts.kinds.contains(&ExpertKind::LightGbm);
            let plan = match config.plan(Some(&path), &base, None) {
                Err(e) if needs_lightgbm && !gramstream::experts::lightgbm::AVAILABLE => {
                    assert!(e.to_string().contains("no LightGBM"), "{e}");
                    n += 1;
                    continue;
                }
                other => other.unwrap(),
            };
            assert_eq!(plan.train.len(), 5, "{}", path.display());
            assert_eq!(plan.out, base.join("results").join(&name));
            assert_eq!(
                path.file_stem().unwrap().to_string_lossy(),
                name,
                "file named after the experiment"
            );
            n += 1;
        }
    }
    assert_eq!(n, 6);
}

/// `[data] stats`: the experiment solved from statistics accumulated
/// beforehand (no pass, the training shards not even present) gives the
/// same tables as the experiment that ran the same pass itself; statistics
/// of another seed or without the gate's sample are refused; the given
/// file is left in place.
#[test]
fn an_experiment_solves_from_a_statistics_file_it_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    data(dir);
    run(dir, "own.toml", &config("42", ""), false).unwrap();
    let shards = [dir.join("train_0.h5"), dir.join("train_1.h5")];
    let accumulate_with = |seed: u64, gate_sample: usize, out: &str, precision| {
        let opts = gramstream::AccumulateOptions {
            partitions: gramstream::PartitionSet::new(
                vec![
                    gramstream::Partition::teff_mh(),
                    gramstream::Partition::snr(),
                ],
                2,
            )
            .unwrap(),
            noise: NoiseModel::new(1.0, seed).unwrap(),
            gate_sample,
            precision,
            ..Default::default()
        };
        gramstream::stats::pass::accumulate_to_file(&dir.join(out), &shards, &opts, None, &|_| {})
            .unwrap();
    };
    use gramstream::stats::Precision;
    let accumulate =
        |seed, gate_sample, out| accumulate_with(seed, gate_sample, out, Precision::F64);
    accumulate_with(42, 2000, "mixed.h5", Precision::Mixed);
    accumulate(42, 2000, "s42.h5");
    accumulate(43, 2000, "s43.h5");
    accumulate(42, 0, "nogate.h5");
    let given = |stats: &str| {
        config("42", "").replace(
            "train = [\"train_0.h5\", \"train_1.h5\"]",
            &format!("stats = \"{stats}\""),
        )
    };
    // The shards are not read: move them away.
    for s in &shards {
        std::fs::rename(s, s.with_extension("moved")).unwrap();
    }
    let exp = run(dir, "given.toml", &given("s42.h5"), false).unwrap();
    assert_eq!(exp.runs[0].timing_s.accumulate, 0.0);
    assert_eq!(
        std::fs::read_to_string(dir.join("own/per_bin.csv")).unwrap(),
        std::fs::read_to_string(dir.join("given/per_bin.csv")).unwrap(),
        "per_bin.csv: the given statistics are the pass's, bit for bit"
    );
    let r = json(&dir.join("given/results.json"));
    assert_eq!(r["data"]["train_rows"], 3000);
    assert!(r["data"].get("precision").is_none(), "f64 is not announced");
    assert!(r["data"]["train_shards"][0]
        .as_str()
        .unwrap()
        .ends_with("train_0.h5"));
    assert!(dir.join("s42.h5").is_file(), "the given statistics stay");
    for (file, says) in [
        ("s43.h5", "noise level and seed"),
        ("nogate.h5", "gate sample"),
    ] {
        let e = run(dir, "bad.toml", &given(file), false).unwrap_err();
        assert!(
            matches!(&e, gramstream::Error::Config { .. }) && e.to_string().contains(says),
            "{file}: {e}"
        );
    }
    // Mixed-precision statistics: refused unless the config says so, then
    // the same tables to within 1e-6 in R².
    let e = run(dir, "bad.toml", &given("mixed.h5"), false).unwrap_err();
    assert!(e.to_string().contains("block products in mixed"), "{e}");
    let mixed = given("mixed.h5").replace("threads = 1", "threads = 1\nprecision = \"mixed\"");
    run(dir, "mixed.toml", &mixed, false).unwrap();
    let m = json(&dir.join("mixed/results.json"));
    assert_eq!(m["data"]["precision"], "mixed");
    let r2 = |v: &serde_json::Value| v["runs"][0]["global"]["r2"].as_f64().unwrap();
    let (own, mixed_r2) = (r2(&json(&dir.join("own/results.json"))), r2(&m));
    assert!(
        (own - mixed_r2).abs() <= 1e-6,
        "global R²: f64 {own}, mixed {mixed_r2}"
    );
    let two_seeds = given("s42.h5").replace("seeds = [42]", "seeds = [42, 43]");
    let e = run(dir, "two.toml", &two_seeds, false).unwrap_err();
    assert!(e.to_string().contains("one noise level and seed"), "{e}");
}
