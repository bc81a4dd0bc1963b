//! `gramstream sweep` end to end: the CSV contract, selection, plots, the
//! failure paths (exit status, one line, no complete-looking output).

use std::path::{Path, PathBuf};
use std::process::Command;

use gramstream::synth::{write_shard, ShardSpec, TEST_SHARD};

const P: usize = 32;

// libhdf5 locks every file it opens (flock). A child spawned by another test
// thread while this process has an HDF5 file open inherits that descriptor,
// and with it the lock, for its whole life; a later `gramstream` opening the
// file then failed with "unable to lock file" (EAGAIN) about one run in five.
// The children run without locking.
fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gramstream"));
    cmd.env("HDF5_USE_FILE_LOCKING", "FALSE");
    cmd
}

/// Runs the command, asserts success (showing stderr), returns stdout.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two training shards, a test shard with stored noisy flux, and statistics
/// with `folds` folds.
fn setup(dir: &Path, folds: usize) -> (PathBuf, PathBuf) {
    let mut shards = vec![];
    for i in 0..2u64 {
        let path = dir.join(format!("train_{i}.h5"));
        write_shard(&path, &ShardSpec::new(1500, P, 5, i), &|_| {}).unwrap();
        shards.push(path);
    }
    let test = dir.join("test.h5");
    let mut spec = ShardSpec::new(600, P, 5, TEST_SHARD);
    spec.noisy = Some(1.0);
    write_shard(&test, &spec, &|_| {}).unwrap();
    let stats = dir.join(format!("stats_{folds}.h5"));
    run_ok(
        &mut bin()
            .args(["accumulate", "--folds", &folds.to_string(), "--out"])
            .arg(&stats)
            .args(&shards),
    );
    (stats, test)
}

fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn sweep_writes_the_contract_table_plots_and_selects_by_cv() {
    let dir = tempfile::tempdir().unwrap();
    let (stats, test) = setup(dir.path(), 3);
    let out_dir = dir.path().join("sweep");
    let stdout = run_ok(
        &mut bin()
            .args(["sweep", "--alphas", "1e-1:1e5:7", "--test"])
            .arg(&test)
            .arg("--out")
            .arg(&out_dir)
            .arg(&stats),
    );
    assert!(
        stdout.contains("Cool Poor") && stdout.contains("exact K-fold CV"),
        "{stdout}"
    );
    let (header, rows) = parse_csv(&std::fs::read_to_string(out_dir.join("sweep.csv")).unwrap());
    let contract =
        "partition,bin,alpha,n_train,train_r2,dof,gcv,cv_mse,n_test,test_r2,test_mae,test_rmse";
    assert_eq!(header[..12].join(","), contract);
    // global + 10 teff_mh slots + 4 SNR bins, 7 α each
    assert_eq!(rows.len(), 15 * 7);
    assert_eq!(
        (rows[0][0].as_str(), rows[0][1].as_str()),
        ("global", "all")
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let n_train_global: u64 = rows[0][col("n_train")].parse().unwrap();
    assert_eq!(n_train_global, 3000);
    let n_test_global: u64 = rows[0][col("n_test")].parse().unwrap();
    assert_eq!(n_test_global, 600);
    // Per group: one selected row, at the smallest CV MSE; bins' rows sum to the total.
    let mut teff_rows = 0u64;
    for g in rows.chunks(7) {
        let sel: Vec<&Vec<String>> = g.iter().filter(|r| r[col("selected")] == "1").collect();
        assert_eq!(sel.len(), 1, "{:?}", g[0]);
        let cv = |r: &Vec<String>| r[col("cv_mse")].parse::<f64>().unwrap();
        let best = g.iter().map(cv).fold(f64::INFINITY, f64::min);
        assert_eq!(cv(sel[0]), best);
        for r in g {
            let r2: f64 = r[col("test_r2")].parse().unwrap();
            assert!(r2.is_finite() && r2 < 1.0);
            let dof: f64 = r[col("dof")].parse().unwrap();
            assert!(dof > 0.0 && dof <= P as f64);
        }
        if g[0][0] == "teff_mh" {
            teff_rows += g[0][col("n_train")].parse::<u64>().unwrap();
        }
    }
    assert_eq!(teff_rows, 3000);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("sweep.json")).unwrap())
            .unwrap();
    assert_eq!(json["schema"], "gramstream.sweep/1");
    assert_eq!(json["groups"].as_array().unwrap().len(), 15);
    for name in ["global", "teff_mh", "snr"] {
        let png = std::fs::read(out_dir.join(format!("plots/sweep_{name}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}");
        assert!(png.len() > 10_000, "{name}: {} bytes", png.len());
    }
    // The selected experts are saved; predicting the test shard with the
    // global expert reproduces the sweep's global test R² at the selected α.
    let models = gramstream::models::ModelSet::open(&out_dir.join("models.h5")).unwrap();
    let sel_global = rows[..7]
        .iter()
        .find(|r| r[col("selected")] == "1")
        .unwrap();
    assert_eq!(
        models.global.coefficients.alpha,
        sel_global[col("alpha")].parse::<f64>().unwrap()
    );
    assert_eq!(models.partitions.len(), 2);
    assert_eq!(models.partitions[0].experts.len(), 10);
    let pred = dir.path().join("pred.csv");
    run_ok(
        &mut bin()
            .args(["predict", "--routing", "global", "--model"])
            .arg(out_dir.join("models.h5"))
            .arg("--out")
            .arg(&pred)
            .arg(&test),
    );
    let (ph, prow) = parse_csv(&std::fs::read_to_string(&pred).unwrap());
    let (iy, ip) = (
        ph.iter().position(|h| h == "log_g").unwrap(),
        ph.iter().position(|h| h == "prediction").unwrap(),
    );
    let yp: Vec<(f64, f64)> = prow
        .iter()
        .map(|r| (r[iy].parse().unwrap(), r[ip].parse().unwrap()))
        .collect();
    let mean = yp.iter().map(|p| p.0).sum::<f64>() / yp.len() as f64;
    let sst: f64 = yp.iter().map(|p| (p.0 - mean).powi(2)).sum();
    let sse: f64 = yp.iter().map(|p| (p.0 - p.1).powi(2)).sum();
    let want: f64 = sel_global[col("test_r2")].parse().unwrap();
    assert!(
        ((1.0 - sse / sst) - want).abs() < 1e-9,
        "{} vs {want}",
        1.0 - sse / sst
    );
    // No scratch left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn gcv_without_folds_and_clear_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (stats, _) = setup(dir.path(), 1);
    // One fold: GCV by default, CV refused with a reason.
    let out_dir = dir.path().join("gcv");
    let stdout = run_ok(
        &mut bin()
            .args(["sweep", "--no-plots", "--alphas", "1,10,100", "--out"])
            .arg(&out_dir)
            .arg(&stats),
    );
    let (header, rows) = parse_csv(&std::fs::read_to_string(out_dir.join("sweep.csv")).unwrap());
    let cv = header.iter().position(|h| h == "cv_mse").unwrap();
    let n_test = header.iter().position(|h| h == "n_test").unwrap();
    assert!(rows
        .iter()
        .all(|r| r[cv].is_empty() && r[n_test].is_empty()));
    assert!(stdout.contains("α chosen by GCV"));

    let fail = |args: &[&str], dest: &Path| {
        let out = bin()
            .args(args)
            .arg("--out")
            .arg(dest)
            .arg(&stats)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code(), err)
    };
    let (code, err) = fail(&["sweep", "--select", "cv"], &dir.path().join("a"));
    assert_eq!(code, Some(1));
    assert!(err.contains("--folds") && err.lines().count() == 1, "{err}");
    assert!(!dir.path().join("a/sweep.csv").exists());
    let (code, err) = fail(&["sweep", "--alphas", "1:2"], &dir.path().join("b"));
    assert_eq!(code, Some(1));
    assert!(err.contains("LO:HI:N"), "{err}");
    let (code, _) = fail(&["sweep", "--select", "best"], &dir.path().join("c"));
    assert_eq!(code, Some(2));

    // A test shard with other pixels: exit 1 naming the file, no sweep.csv.
    let other = dir.path().join("other.h5");
    let mut spec = ShardSpec::new(50, P + 8, 5, TEST_SHARD);
    spec.noisy = Some(1.0);
    write_shard(&other, &spec, &|_| {}).unwrap();
    let dest = dir.path().join("d");
    let out = bin()
        .args(["sweep", "--test"])
        .arg(&other)
        .arg("--out")
        .arg(&dest)
        .arg(&stats)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("other.h5") && err.contains("pixels"), "{err}");
    assert!(!dest.join("sweep.csv").exists() && !dest.join("sweep.json").exists());
    // A training shard as test set without --test-noise: no stored noisy array.
    let out = bin()
        .args(["sweep", "--test"])
        .arg(dir.path().join("train_0.h5"))
        .arg("--out")
        .arg(dir.path().join("e"))
        .arg(&stats)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("noisy") && err.contains("--test-noise"),
        "{err}"
    );
}

#[test]
fn small_bins_and_least_squares_are_reported_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    // 120 rows over 14 bins at 32 pixels: every bin is singular, some nearly empty.
    let shard = dir.path().join("small.h5");
    write_shard(&shard, &ShardSpec::new(120, P, 9, 0), &|_| {}).unwrap();
    let stats = dir.path().join("small_stats.h5");
    run_ok(&mut bin().args(["accumulate", "--out"]).arg(&stats).arg(&shard));
    let out_dir = dir.path().join("s");
    let stdout = run_ok(
        &mut bin()
            .args(["sweep", "--no-plots", "--alphas", "0,1,100", "--out"])
            .arg(&out_dir)
            .arg(&stats),
    );
    // Global: 120 rows > 32 pixels, α = 0 is least squares and exists.
    let (header, rows) = parse_csv(&std::fs::read_to_string(out_dir.join("sweep.csv")).unwrap());
    assert_eq!(rows.len(), 15 * 3, "every group is listed");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(
        (rows[0][0].as_str(), rows[0][col("alpha")].as_str()),
        ("global", "0")
    );
    assert!(rows[0][col("train_r2")].parse::<f64>().unwrap().is_finite());
    // A bin with fewer rows than pixels: α = 0 empty, α > 0 solved, and a note naming the bin.
    let singular = rows
        .chunks(3)
        .find(|g| {
            let n: u64 = g[0][col("n_train")].parse().unwrap();
            (2..=P as u64).contains(&n)
        })
        .expect("a singular bin");
    assert!(singular[0][col("train_r2")].is_empty());
    assert!(!singular[1][col("train_r2")].is_empty());
    let name = &singular[0][col("bin_name")];
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(name.as_str()) && l.contains("α = 0 (least squares) skipped")),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("sweep.json")).unwrap())
            .unwrap();
    let groups = json["groups"].as_array().unwrap();
    assert!(groups
        .iter()
        .all(|g| g["points"].as_array().unwrap().len() == 3));
    // A bin with < 2 rows has no model and says why (when the draw produced one).
    for g in groups.iter().filter(|g| g["n_train"].as_u64().unwrap() < 2) {
        let notes = g["notes"].to_string();
        assert!(notes.contains("needs at least 2"), "{notes}");
        assert!(g["selected"].is_null());
    }
}

/// The sweep's numbers do not depend on its threads: one thread (the
/// single-threaded path) and two give the same CSV and the same weights,
/// bit for bit, with CV by every method (folds in parallel; with auto,
/// groups too) and without (groups in parallel).
#[test]
fn sweep_is_bitwise_identical_for_one_and_two_threads() {
    use gramstream::stats::StatsFile;
    use gramstream::sweep::{self, CvMethod, SweepOptions, TestSpec};
    use gramstream::Threads;

    let dir = tempfile::tempdir().unwrap();
    let runs = [
        (3, CvMethod::Auto),
        (3, CvMethod::Eigh),
        (3, CvMethod::Pcg),
        (1, CvMethod::Auto),
    ];
    for (folds, cv) in runs {
        let (stats, test) = setup(dir.path(), folds);
        let file = StatsFile::open(&stats).unwrap();
        let run = |threads: Threads| {
            let mut opts = SweepOptions::new(sweep::log_grid(1e-2, 1e5, 8).unwrap());
            opts.cv = cv;
            opts.threads = threads;
            opts.test = Some(TestSpec {
                path: test.clone(),
                noise: None,
                chunk_rows: 100,
            });
            let sw = sweep::run(&file, &opts, |_| {}).unwrap();
            let mut csv = Vec::new();
            sweep::report::write_csv(&sw, &mut csv).unwrap();
            let bits: Vec<u64> = sw
                .models
                .iter()
                .flat_map(|m| {
                    let w =
                        m.w.col_iter()
                            .flat_map(|c| c.iter().copied().collect::<Vec<_>>());
                    w.chain(m.intercept.iter().copied())
                        .map(f64::to_bits)
                        .collect::<Vec<_>>()
                })
                .collect();
            (String::from_utf8(csv).unwrap(), bits)
        };
        let (csv1, w1) = run(Threads::ONE);
        let (csv2, w2) = run(Threads::new(2));
        assert!(!w1.is_empty());
        assert_eq!(csv1, csv2, "sweep.csv, {folds} fold(s), {cv:?}");
        assert!(
            w1 == w2,
            "weights differ between 1 and 2 threads, {folds} fold(s), {cv:?}"
        );
    }
}

/// `--cv auto` (the default) selects the α that `--cv eigh` selects in
/// every group, with the same CV MSE to 1e-9 relative. Groups whose folds
/// all take the band reduction solve their own models by one too: GCV,
/// dof, training R² and every weight within rounding of eigh's (which
/// decomposes every group); the others keep eigh's models bit for bit.
#[test]
fn auto_cv_selects_what_eigh_selects() {
    use gramstream::stats::StatsFile;
    use gramstream::sweep::{self, CvMethod, SweepOptions};

    let dir = tempfile::tempdir().unwrap();
    let (stats, _) = setup(dir.path(), 5);
    let file = StatsFile::open(&stats).unwrap();
    let run = |cv| {
        let mut opts = SweepOptions::new(sweep::log_grid(1e-3, 1e6, 30).unwrap());
        opts.cv = cv;
        sweep::run(&file, &opts, |_| {}).unwrap()
    };
    assert_eq!(SweepOptions::new(vec![1.0]).cv, CvMethod::Auto);
    let (auto, eigh) = (run(CvMethod::Auto), run(CvMethod::Eigh));
    let mut compared = 0;
    for (a, e) in auto.groups.iter().zip(&eigh.groups) {
        let what = format!("{} {}", a.partition, a.name);
        assert_eq!(a.selected, e.selected, "{what}");
        assert_eq!(a.selected_by, e.selected_by, "{what}");
        for (pa, pe) in a.points.iter().zip(&e.points) {
            match (pa.cv_mse, pe.cv_mse) {
                (Some(x), Some(y)) => {
                    assert!(
                        (x - y).abs() <= 1e-9 * y.abs(),
                        "{what} α={}: {x} vs {y}",
                        pa.alpha
                    );
                    compared += 1;
                }
                (x, y) => assert_eq!(x.is_some(), y.is_some(), "{what}"),
            }
            let rel = |x: f64, y: f64| (x - y).abs() / y.abs();
            assert!(
                rel(pa.gcv, pe.gcv) <= 1e-9,
                "{what}: GCV {} vs {}",
                pa.gcv,
                pe.gcv
            );
            assert!(
                rel(pa.dof, pe.dof) <= 1e-9,
                "{what}: dof {} vs {}",
                pa.dof,
                pe.dof
            );
            assert!((pa.train_r2 - pe.train_r2).abs() <= 1e-9, "{what}");
        }
        if e.points.iter().any(|p| p.cv_mse.is_some()) {
            assert!(
                a.notes.iter().any(|n| n.starts_with("CV folds:")),
                "{what}: {:?}",
                a.notes
            );
        }
    }
    assert!(compared > 0);
    let mut by_band = 0;
    for ((ma, me), g) in auto.models.iter().zip(&eigh.models).zip(&auto.groups) {
        let band = g
            .notes
            .iter()
            .any(|n| n.starts_with("models: band reduction"));
        by_band += usize::from(band);
        let scale =
            me.w.col_iter()
                .flat_map(|c| c.iter().copied().collect::<Vec<_>>());
        let scale = scale.fold(0.0f64, |m, v| m.max(v.abs()));
        for j in 0..me.w.ncols() {
            for i in 0..me.w.nrows() {
                let (a, e) = (ma.w[(i, j)], me.w[(i, j)]);
                match band {
                    true => assert!((a - e).abs() <= 1e-9 * scale, "{}: {a} vs {e}", g.name),
                    false => assert_eq!(a.to_bits(), e.to_bits(), "{}", g.name),
                }
            }
        }
    }
    assert!(by_band > 0, "no group solved by its band reduction");
}
