//! `models.h5` (round trip, validation) and prediction (library and CLI):
//! predictions equal `Coefficients::predict` on rows read independently,
//! oracle bins equal `Partition::bin` of the true keys, the CSV does not
//! depend on the chunk size, and failures leave no output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gramstream::models::{write_models, Expert, ModelSet, PartitionModels, Provenance};
use gramstream::noise::NoiseModel;
use gramstream::partition::{Partition, PartitionSet, RowKeys};
use gramstream::predict::{
    predict, predict_csv, PredictOptions, PredictedRow, Route, Routing, SpectraChoice,
};
use gramstream::ridge::{Coefficients, RidgePath};
use gramstream::source::{Chunk, ChunkSource, ReadOptions, Shard, Spectra};
use gramstream::stats::derive::{members, sum, Group};
use gramstream::stats::pass::{accumulate, AccumulateOptions};
use gramstream::stats::ShardFingerprint;
use gramstream::synth::{write_shard, ShardSpec, TEST_SHARD};
use gramstream::{Error, Layout};
use rand::{Rng, SeedableRng};

// Children run without HDF5 file locking: see tests/sweep.rs, `bin`.
const BIN: &str = env!("CARGO_BIN_EXE_gramstream");
const P: usize = 24;

/// A training shard, a test shard with a stored noisy array, and experts
/// fitted on the training shard's statistics (α = 10; bins under 30 rows
/// get no expert).
struct Fixture {
    _dir: tempfile::TempDir,
    train: PathBuf,
    test: PathBuf,
    models_path: PathBuf,
    models: ModelSet,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let train = dir.path().join("train.h5");
        write_shard(&train, &ShardSpec::new(600, P, 7, 0), &|_| {}).unwrap();
        let test = dir.path().join("test.h5");
        let spec = ShardSpec {
            noisy: Some(1.0),
            id_offset: 5000,
            ..ShardSpec::new(300, P, 7, TEST_SHARD)
        };
        write_shard(&test, &spec, &|_| {}).unwrap();
        let models = fit(&train);
        let models_path = dir.path().join("models.h5");
        write_models(&models_path, &models).unwrap();
        Fixture {
            _dir: dir,
            train,
            test,
            models_path,
            models,
        }
    })
}

/// The pass, then one RidgePath per group (the recipe of the `models` docs).
fn fit(train: &Path) -> ModelSet {
    let opts = AccumulateOptions {
        partitions: PartitionSet::new(PartitionSet::default().partitions, 1).unwrap(),
        noise: NoiseModel::new(1.0, 11).unwrap(),
        threads: gramstream::Threads::ONE,
        chunk_rows: Some(64),
        mem_budget: Some(1 << 30),
        ..Default::default()
    };
    let (h, stats, _) = accumulate(&[train.to_path_buf()], &opts, None, &|_| {})
        .unwrap()
        .into_stats(gramstream::Threads::ONE);
    let expert = |group: Group| -> Option<Expert> {
        let s = sum(P, &members(&h, group, None).unwrap(), |a| {
            Ok(stats[a].clone())
        })
        .unwrap();
        if s.n < 30 {
            return None;
        }
        let path = RidgePath::new(&s, &h.shift_x, h.shift_y, faer::Par::Seq).unwrap();
        Some(Expert {
            coefficients: path.coefficients(10.0).unwrap(),
            n_train: s.n,
            selected_by: "fixed".into(),
        })
    };
    let partitions = h
        .partitions
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| PartitionModels {
            partition: p.clone(),
            experts: (0..p.slots())
                .map(|slot| expert(Group::Bin { partition: i, slot }))
                .collect(),
        })
        .collect();
    ModelSet {
        pixels: P,
        layout: h.layout.clone(),
        noise_level: h.noise.level,
        seed: h.noise.seed,
        global: expert(Group::Global).unwrap(),
        partitions,
        provenance: Provenance::new("stats.h5", h.rows, h.shards.clone(), "test fit, α = 10"),
        gate: None,
        bin_experts: None,
    }
}

fn random_expert(rng: &mut impl Rng, p: usize, selected_by: &str) -> Expert {
    Expert {
        coefficients: Coefficients {
            alpha: 10f64.powf(rng.random_range(-3.0..6.0)),
            // Values of every magnitude and sign, including subnormals and −0.
            w: (0..p)
                .map(|i| match i % 5 {
                    0 => -0.0,
                    1 => f64::MIN_POSITIVE / 3.0,
                    _ => rng.random_range(-1.0..1.0) * 10f64.powi(rng.random_range(-200..200)),
                })
                .collect(),
            intercept: rng.random_range(-10.0..10.0),
        },
        n_train: rng.random_range(0..1u64 << 40),
        selected_by: selected_by.into(),
    }
}

fn random_models(seed: u64) -> ModelSet {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let p = 13;
    let partitions = [Partition::teff_mh(), Partition::snr()]
        .into_iter()
        .map(|partition| PartitionModels {
            experts: (0..partition.slots())
                .map(|s| (s % 3 != 1).then(|| random_expert(&mut rng, p, ["cv", "gcv"][s % 2])))
                .collect(),
            partition,
        })
        .collect();
    ModelSet {
        pixels: p,
        layout: Layout::default(),
        noise_level: 0.75,
        seed: 99,
        global: random_expert(&mut rng, p, "fixed"),
        partitions,
        provenance: Provenance::new(
            "/data/stats.h5",
            123_456,
            vec![ShardFingerprint {
                path: "/data/train_0/dataset.h5".into(),
                rows: 123_456,
                bytes: 1 << 33,
                mtime_ns: 1_700_000_000_123_456_789,
                index: 0,
            }],
            "random weights, «unicode» note",
        ),
        gate: None,
        bin_experts: None,
    }
}

fn weight_bits(m: &ModelSet) -> Vec<u64> {
    m.experts()
        .flat_map(|(_, e)| {
            let c = &e.coefficients;
            [c.alpha.to_bits(), c.intercept.to_bits(), e.n_train]
                .into_iter()
                .chain(c.w.iter().map(|v| v.to_bits()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn models_round_trip_bitwise() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    for seed in [1, 2, 3] {
        let m = random_models(seed);
        let path = dir.path().join(format!("m{seed}.h5"));
        write_models(&path, &m).unwrap();
        let back = ModelSet::open(&path).unwrap();
        assert_eq!(back, m);
        assert_eq!(weight_bits(&back), weight_bits(&m));
        assert!(back.partitions[0].experts[1].is_none());
        assert!(!dir.path().join(format!("m{seed}.h5.tmp")).exists());
    }
    // The fitted set too.
    let f = fixture();
    let back = ModelSet::open(&f.models_path).unwrap();
    assert_eq!(back, f.models);
    assert_eq!(weight_bits(&back), weight_bits(&f.models));
}

fn assert_names(err: &Error, path: &Path, object: &str) -> String {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains(object),
        "{msg:?} should name {} and {object}",
        path.display()
    );
    msg
}

/// Rewrites a root attribute of an existing file.
/// The tests of this binary run one at a time: with several test threads
/// opening and rewriting HDF5 files, libhdf5 rarely (~1 run in 5) refused to
/// open a just-rewritten file ("unable to lock file", EAGAIN), as if a handle
/// from another thread still held it. Not understood yet (README, known
/// issues); serialising the tests removes it.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens a file read-write to damage it. Under the parallel test threads
/// libhdf5 has, rarely (~1 run in 5), refused with "unable to lock file"
/// (EAGAIN) right after the file was rewritten; retried briefly here. The
/// cause is not understood yet (see README, known issues).
fn open_rw(path: &Path) -> hdf5::File {
    let mut last = None;
    for _ in 0..40 {
        match hdf5::File::open_rw(path) {
            Ok(f) => return f,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{}: {:?}", path.display(), last);
}

fn set_attr<T: hdf5::H5Type>(path: &Path, name: &str, value: T) {
    let f = open_rw(path);
    f.delete_attr(name).unwrap();
    f.new_attr::<T>()
        .create(name)
        .unwrap()
        .write_scalar(&value)
        .unwrap();
}

#[test]
fn damaged_or_foreign_models_files_are_refused_naming_the_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let m = random_models(4);
    let path = dir.path().join("m.h5");

    let missing = dir.path().join("nope.h5");
    let err = ModelSet::open(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_names(&err, &missing, "");

    // Truncated.
    write_models(&path, &m).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_names(&ModelSet::open(&path).unwrap_err(), &path, "");

    // A statistics file is not a models file; nor is a newer version.
    write_models(&path, &m).unwrap();
    set_attr(
        &path,
        "format",
        "gramstream.stats"
            .parse::<hdf5::types::VarLenUnicode>()
            .unwrap(),
    );
    let msg = assert_names(&ModelSet::open(&path).unwrap_err(), &path, "format");
    assert!(msg.contains("gramstream.models"), "{msg}");
    write_models(&path, &m).unwrap();
    set_attr(
        &path,
        "format_version",
        gramstream::models::FORMAT_VERSION + 1,
    );
    let msg = assert_names(&ModelSet::open(&path).unwrap_err(), &path, "format_version");
    assert!(msg.contains("newer gramstream"), "{msg}");

    // Shapes, a missing dataset, a weight that is not finite, a bad expert table.
    write_models(&path, &m).unwrap();
    {
        let f = open_rw(&path);
        f.unlink("experts/w").unwrap();
        f.new_dataset::<f64>()
            .chunk(vec![1, P])
            .fletcher32()
            .shape(vec![1, P])
            .create("experts/w")
            .unwrap();
    }
    assert_names(&ModelSet::open(&path).unwrap_err(), &path, "/experts/w");
    write_models(&path, &m).unwrap();
    open_rw(&path).unlink("experts/alpha").unwrap();
    assert_names(&ModelSet::open(&path).unwrap_err(), &path, "/experts/alpha");
    write_models(&path, &m).unwrap();
    {
        let f = open_rw(&path);
        let ds = f.dataset("experts/w").unwrap();
        let mut w = ds.read_raw::<f64>().unwrap();
        w[2 * m.pixels + 5] = f64::NAN;
        ds.write_raw(&w).unwrap();
    }
    let err = ModelSet::open(&path).unwrap_err();
    assert!(matches!(err, Error::BadValue { row: 2, .. }), "{err:?}");
    assert_names(&err, &path, "/experts/w");
    write_models(&path, &m).unwrap();
    {
        let f = open_rw(&path);
        let ds = f.dataset("experts/slot").unwrap();
        let mut s = ds.read_raw::<u64>().unwrap();
        s[2] = s[1]; // two experts for one (partition, slot)
        ds.write_raw(&s).unwrap();
    }
    assert_names(&ModelSet::open(&path).unwrap_err(), &path, "/experts/slot");

    // An inconsistent set is not written at all.
    let mut bad = m.clone();
    bad.partitions[1].experts.pop();
    let out = dir.path().join("bad.h5");
    assert!(write_models(&out, &bad).is_err());
    let mut bad = m.clone();
    bad.global.coefficients.w[0] = f64::INFINITY;
    assert!(write_models(&out, &bad).is_err());
    assert!(!out.exists() && !dir.path().join("bad.h5.tmp").exists());
}

/// Every row of a shard read in one go: spectra (stored noisy, or flux with
/// `noise`), the SNR of the noiseless flux, T_eff, [M/H], log g, id.
struct Truth {
    x: Vec<f64>,
    snr: Vec<f64>,
    params: Vec<[f64; 4]>,
}

fn truth(path: &Path, index: u64, noise: Option<NoiseModel>, level: f64) -> Truth {
    let layout = Layout::default();
    let shard = Shard::open(path, &layout).unwrap();
    let n = shard.rows();
    let cols = ["T_eff", "M_H", "log_g", "id"].map(String::from).to_vec();
    let mut fe = Chunk::default();
    let opts = ReadOptions {
        columns: cols.clone(),
        ..Default::default()
    };
    shard
        .reader(index, &opts)
        .unwrap()
        .read_chunk(0..n, &mut fe)
        .unwrap();
    let snr = (0..n)
        .map(|r| {
            let e = &fe.error[r * P..(r + 1) * P];
            let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
            norm(fe.flux_row(r)) / (level * norm(e))
        })
        .collect();
    let x = match noise {
        Some(m) => {
            let mut x = fe.flux.clone();
            for r in 0..n {
                let e = &fe.error[r * P..(r + 1) * P];
                m.apply_row(index, r as u64, &mut x[r * P..(r + 1) * P], e);
            }
            x
        }
        None => {
            let opts = ReadOptions {
                spectra: Spectra::Noisy,
                ..Default::default()
            };
            let mut c = Chunk::default();
            shard
                .reader(index, &opts)
                .unwrap()
                .read_chunk(0..n, &mut c)
                .unwrap();
            c.flux
        }
    };
    let params = (0..n)
        .map(|r| {
            let p = fe.params_row(r);
            [p[0], p[1], p[2], p[3]]
        })
        .collect();
    Truth { x, snr, params }
}

fn run(
    models: &ModelSet,
    shards: &[PathBuf],
    opts: &PredictOptions,
) -> (Vec<PredictedRow>, gramstream::predict::PredictSummary) {
    let mut rows = Vec::new();
    let s = predict(
        models,
        shards,
        opts,
        &mut |r: &PredictedRow| {
            rows.push(*r);
            Ok(())
        },
        &|_| {},
    )
    .unwrap();
    (rows, s)
}

#[test]
fn predictions_equal_the_experts_on_independently_read_rows() {
    let _serial = serial();
    let f = fixture();
    let mut models = f.models.clone();
    // A bin without an expert: its rows go to the global expert.
    models.partitions[0].experts[4] = None;
    let t = truth(&f.test, 0, None, models.noise_level);
    let n = t.params.len();

    let mut opts = PredictOptions::new(&models);
    opts.chunk_rows = 37;
    let (rows, s) = run(&models, std::slice::from_ref(&f.test), &opts);
    assert_eq!((rows.len(), s.rows, s.global_rows), (n, n as u64, n as u64));
    for (r, row) in rows.iter().enumerate() {
        let want = models.global.coefficients.predict(&t.x[r * P..(r + 1) * P]);
        assert_eq!(row.prediction.to_bits(), want.to_bits(), "row {r}");
        assert_eq!((row.shard, row.row, row.route), (0, r, Route::Global));
        assert_eq!(row.id, Some(t.params[r][3]));
        assert_eq!(row.id, Some(5000.0 + r as f64));
        assert_eq!(row.log_g, Some(t.params[r][2]));
    }
    // The scores, by hand.
    let m = s.metrics.unwrap();
    let y: Vec<f64> = t.params.iter().map(|p| p[2]).collect();
    let mean = y.iter().sum::<f64>() / n as f64;
    let sse: f64 = rows
        .iter()
        .zip(&y)
        .map(|(r, y)| (y - r.prediction).powi(2))
        .sum();
    let syy: f64 = y.iter().map(|y| (y - mean).powi(2)).sum();
    let mae = rows
        .iter()
        .zip(&y)
        .map(|(r, y)| (y - r.prediction).abs())
        .sum::<f64>()
        / n as f64;
    assert_eq!(m.n, n as u64);
    for (got, want) in [
        (m.r2, 1.0 - sse / syy),
        (m.mae, mae),
        (m.rmse, (sse / n as f64).sqrt()),
    ] {
        assert!(
            (got - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{m:?}: {got} vs {want}"
        );
    }

    for (k, name) in [(0, "teff_mh"), (1, "snr")] {
        let part = &models.partitions[k];
        opts.routing = Routing::Oracle { partition: k };
        let (rows, s) = run(&models, std::slice::from_ref(&f.test), &opts);
        assert_eq!(s.partition.as_deref(), Some(name));
        let (mut unbinned, mut no_expert) = (0, 0);
        for (r, row) in rows.iter().enumerate() {
            let keys = RowKeys {
                teff: t.params[r][0],
                mh: t.params[r][1],
                snr: t.snr[r],
            };
            let (route, expert) = match part.partition.bin(&keys) {
                None => (Route::Unbinned, &models.global),
                Some(b) => match &part.experts[b] {
                    Some(e) => (Route::Bin(b), e),
                    None => (Route::NoExpert(b), &models.global),
                },
            };
            unbinned += usize::from(route == Route::Unbinned);
            no_expert += usize::from(matches!(route, Route::NoExpert(_)));
            assert_eq!(row.route, route, "{name} row {r}");
            let want = expert.coefficients.predict(&t.x[r * P..(r + 1) * P]);
            assert_eq!(row.prediction.to_bits(), want.to_bits(), "{name} row {r}");
        }
        assert_eq!(
            (s.unbinned, s.no_expert),
            (unbinned as u64, no_expert as u64)
        );
        let binned: u64 = s.bins.iter().map(|b| b.rows).sum();
        assert_eq!(binned + s.global_rows, n as u64);
        if k == 0 {
            // [M/H] spans −2.5…0.75 against edges −2…0.5: some rows are outside.
            assert!(unbinned > 0 && no_expert > 0, "{unbinned} {no_expert}");
            assert_eq!(s.bins[4].rows, 0);
        } else {
            assert_eq!(unbinned, 0);
            assert!(s.bins.iter().filter(|b| b.rows > 0).count() >= 2, "{s:?}");
        }
    }
}

#[test]
fn added_noise_matches_the_noise_streams_and_the_flux_is_used_without_noisy() {
    let _serial = serial();
    let f = fixture();
    let models = &f.models;
    let mut opts = PredictOptions::new(models);
    opts.chunk_rows = 50;
    opts.first_shard_index = 3;
    opts.routing = Routing::Oracle { partition: 1 };
    let noise = NoiseModel::new(2.0, 17).unwrap();
    opts.spectra = SpectraChoice::Noise(noise);
    let t = truth(&f.train, 3, Some(noise), 2.0);
    let (rows, _) = run(models, std::slice::from_ref(&f.train), &opts);
    let snr = &models.partitions[1];
    for (r, row) in rows.iter().enumerate() {
        let b = snr
            .partition
            .bin(&RowKeys {
                teff: 0.0,
                mh: 0.0,
                snr: t.snr[r],
            })
            .unwrap();
        assert_eq!(
            row.route.expert_bin(),
            Some(b).filter(|&b| snr.experts[b].is_some())
        );
        let e = snr.experts[b].as_ref().unwrap_or(&models.global);
        let want = e.coefficients.predict(&t.x[r * P..(r + 1) * P]);
        assert_eq!(row.prediction.to_bits(), want.to_bits(), "row {r}");
    }

    // No noisy array, no --noise: the flux as stored.
    opts.spectra = SpectraChoice::Auto;
    opts.routing = Routing::Global;
    let t = truth(&f.train, 0, Some(NoiseModel::new(0.0, 0).unwrap()), 1.0);
    let (rows, _) = run(models, std::slice::from_ref(&f.train), &opts);
    for (r, row) in rows.iter().enumerate() {
        let want = models.global.coefficients.predict(&t.x[r * P..(r + 1) * P]);
        assert_eq!(row.prediction.to_bits(), want.to_bits(), "row {r}");
    }
    // Asking for the stored noisy array of a shard without one fails.
    opts.spectra = SpectraChoice::StoredNoisy;
    let err = predict(
        models,
        std::slice::from_ref(&f.train),
        &opts,
        &mut |_| Ok(()),
        &|_| {},
    )
    .unwrap_err();
    assert_names(&err, &f.train, "noisy");
}

#[test]
fn chunk_size_does_not_change_the_csv() {
    let _serial = serial();
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let shards = [f.test.clone(), f.train.clone()];
    for routing in [
        Routing::Global,
        Routing::Oracle { partition: 0 },
        Routing::Oracle { partition: 1 },
    ] {
        let csv = |chunk: usize| {
            let mut opts = PredictOptions::new(&f.models);
            opts.routing = routing;
            opts.chunk_rows = chunk;
            let out = dir.path().join(format!("pred_{chunk}.csv"));
            predict_csv(&f.models, &shards, &opts, &out, &|_| {}).unwrap();
            std::fs::read_to_string(out).unwrap()
        };
        let a = csv(7);
        assert_eq!(a, csv(1000), "{routing:?}");
        let lines: Vec<&str> = a.lines().collect();
        assert_eq!(lines[0], "id,log_g,prediction,bin");
        assert_eq!(lines.len(), 1 + 300 + 600);
        assert!(lines[1].starts_with("5000,"), "{}", lines[1]);
        let bins: std::collections::BTreeSet<&str> = lines[1..]
            .iter()
            .map(|l| l.rsplit(',').next().unwrap())
            .collect();
        match routing {
            Routing::Global => assert_eq!(bins.len(), 1),
            // Some rows are outside the T_eff × [M/H] grid; every SNR is binned.
            Routing::Oracle { partition: 0 } => {
                assert!(bins.len() > 2 && bins.contains("global"), "{bins:?}")
            }
            Routing::Oracle { .. } => assert!(bins.len() > 2, "{bins:?}"),
            Routing::Gate { .. } => unreachable!("these models have no gate"),
        }
    }
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .env("HDF5_USE_FILE_LOCKING", "FALSE")
        .arg("predict")
        .args(args)
        .output()
        .unwrap()
}

fn one_line(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr).to_string();
    assert_eq!(s.trim_end().lines().count(), 1, "{s:?}");
    s
}

#[test]
fn cli_predicts_like_the_library_and_fails_cleanly() {
    let _serial = serial();
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pred.csv");
    let s = |p: &Path| p.display().to_string();
    let (model, test, train) = (s(&f.models_path), s(&f.test), s(&f.train));
    let o = s(&out);

    let ok = cli(&[
        "--model",
        &model,
        "--routing",
        "oracle",
        "--partition",
        "snr",
        "--chunk-rows",
        "9",
        "--out",
        &o,
        &test,
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        stdout.contains("predicted 300 rows") && stdout.contains("R²"),
        "{stdout}"
    );
    let lib = dir.path().join("lib.csv");
    let mut opts = PredictOptions::new(&f.models);
    opts.routing = Routing::Oracle { partition: 1 };
    predict_csv(
        &f.models,
        std::slice::from_ref(&f.test),
        &opts,
        &lib,
        &|_| {},
    )
    .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&lib).unwrap());
    std::fs::remove_file(&out).unwrap();

    // Missing model file: exit 1, one line naming it, no output.
    let nope = s(&dir.path().join("nope.h5"));
    let r = cli(&["--model", &nope, "--out", &o, &test]);
    assert_eq!(r.status.code(), Some(1));
    assert!(one_line(&r.stderr).contains("nope.h5"));
    assert!(!out.exists());

    // Models without a gate: gate routing is a runtime error naming the
    // file; an unknown routing is a usage error.
    for routing in ["soft", "hard"] {
        let r = cli(&["--model", &model, "--routing", routing, "--out", &o, &test]);
        assert_eq!(r.status.code(), Some(1), "{routing}");
        let line = one_line(&r.stderr);
        assert!(
            line.contains("gate") && line.contains("models.h5"),
            "{line}"
        );
        assert!(!out.exists());
    }
    let r = cli(&[
        "--model",
        &model,
        "--routing",
        "psychic",
        "--out",
        &o,
        &test,
    ]);
    assert_eq!(r.status.code(), Some(2));
    let r = cli(&["--model", &model, "--partition", "snr", "--out", &o, &test]);
    assert_eq!(r.status.code(), Some(2));
    let r = cli(&[
        "--model",
        &model,
        "--noise",
        "1",
        "--stored-noisy",
        "--out",
        &o,
        &test,
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(!out.exists());

    // A failure after rows were written (the second shard has no noisy
    // array): no PRED.csv, no temporary file.
    let r = cli(&[
        "--model",
        &model,
        "--stored-noisy",
        "--out",
        &o,
        &test,
        &train,
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(one_line(&r.stderr).contains("noisy"));
    // Pixels that do not match the models.
    let other = dir.path().join("other.h5");
    write_shard(&other, &ShardSpec::new(20, P + 8, 7, 0), &|_| {}).unwrap();
    let r = cli(&["--model", &model, "--out", &o, &test, &s(&other)]);
    assert_eq!(r.status.code(), Some(1));
    assert!(one_line(&r.stderr).contains("other.h5"));
    // An unknown partition.
    let r = cli(&[
        "--model",
        &model,
        "--routing",
        "oracle",
        "--partition",
        "colour",
        "--out",
        &o,
        &test,
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(one_line(&r.stderr).contains("teff_mh"));
    assert!(!out.exists() && !dir.path().join("pred.csv.tmp").exists());
}

/// The oracle-hybrid (issue 13): the fixture's models with per-bin experts
/// on T_eff × [M/H], LightGBM experts trained here on each bin's rows.
#[cfg(feature = "lightgbm")]
mod hybrid {
    use super::*;

    use std::sync::Arc;

    use gramstream::experts::binning::{PixelBins, MAX_CODES};
    use gramstream::experts::dataset::ExpertDataset;
    use gramstream::experts::lightgbm::{self, LightGbmExpert, LightGbmParams};
    use gramstream::experts::ExpertKind;
    use gramstream::models::BinExperts;
    use gramstream::route::{LoadedExperts, Router};
    use gramstream::{Cancel, Threads};

    struct Hybrid {
        _dir: tempfile::TempDir,
        path: PathBuf,
        models: ModelSet,
    }

    /// A LightGBM expert for every bin with at least 40 training rows
    /// (trained on them, 30 small trees), chosen in every other such bin:
    /// Ridge elsewhere, so some bins that chose Ridge have a model too.
    fn hybrid() -> &'static Hybrid {
        static H: OnceLock<Hybrid> = OnceLock::new();
        H.get_or_init(|| {
            let f = fixture();
            let t = truth(&f.train, 0, Some(NoiseModel::new(1.0, 11).unwrap()), 1.0);
            let part = &f.models.partitions[0].partition;
            let mut rows_of = vec![Vec::new(); part.bins()];
            for (r, prm) in t.params.iter().enumerate() {
                let keys = RowKeys {
                    teff: prm[0],
                    mh: prm[1],
                    snr: t.snr[r],
                };
                if let Some(b) = part.bin(&keys) {
                    rows_of[b].push(r);
                }
            }
            let params = LightGbmParams {
                n_estimators: 30,
                num_leaves: 8,
                min_child_samples: 5,
                threads: Threads::ONE,
                seed: 5,
                ..Default::default()
            };
            let lightgbm: Vec<_> = rows_of
                .iter()
                .map(|rows| {
                    (rows.len() >= 40).then(|| {
                        let x: Vec<f64> = rows
                            .iter()
                            .flat_map(|&r| t.x[r * P..(r + 1) * P].iter().copied())
                            .collect();
                        let bins = Arc::new(PixelBins::fit(&x, P, MAX_CODES).unwrap());
                        let mut d = ExpertDataset::new(bins, rows.len(), 3);
                        for (&r, row) in rows.iter().zip(x.chunks_exact(P)) {
                            d.offer(0, r as u64, row, t.params[r][2]).unwrap();
                        }
                        lightgbm::train(&d.into_rows(), &params, &Cancel::default())
                            .unwrap()
                            .save()
                    })
                })
                .collect();
            let mut trained = 0;
            let chosen: Vec<ExpertKind> = lightgbm
                .iter()
                .map(|m| {
                    trained += usize::from(m.is_some());
                    match m {
                        Some(_) if trained % 2 == 1 => ExpertKind::LightGbm,
                        _ => ExpertKind::Ridge,
                    }
                })
                .collect();
            assert!(trained >= 3, "{trained} bins with 40 rows: {rows_of:?}");
            let mut models = f.models.clone();
            models.bin_experts = Some(BinExperts {
                partition: 0,
                chosen,
                lightgbm,
            });
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hybrid.h5");
            write_models(&path, &models).unwrap();
            Hybrid {
                _dir: dir,
                path,
                models,
            }
        })
    }

    fn experts(m: &ModelSet) -> &BinExperts {
        m.bin_experts.as_ref().unwrap()
    }

    /// The bins that chose `kind` and have a LightGBM model.
    fn bins_with_model(m: &ModelSet, kind: ExpertKind) -> Vec<usize> {
        let be = experts(m);
        (0..be.chosen.len())
            .filter(|&b| be.chosen[b] == kind && be.lightgbm[b].is_some())
            .collect()
    }

    #[test]
    fn hybrid_models_round_trip_and_damage_is_named() {
        let _serial = serial();
        let h = hybrid();
        assert_eq!(ModelSet::open(&h.path).unwrap(), h.models);
        let version = |path: &Path| {
            hdf5::File::open(path)
                .unwrap()
                .attr("format_version")
                .unwrap()
                .read_scalar::<u32>()
                .unwrap()
        };
        assert_eq!((version(&h.path), version(&fixture().models_path)), (2, 1));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.h5");
        let lgbm = bins_with_model(&h.models, ExpertKind::LightGbm)[0];
        let ridge = bins_with_model(&h.models, ExpertKind::Ridge)[0];
        let bins = experts(&h.models).chosen.len();
        let refused = |damage: &dyn Fn(&hdf5::File), object: &str, says: &str| {
            write_models(&path, &h.models).unwrap();
            damage(&open_rw(&path));
            let err = ModelSet::open(&path).unwrap_err();
            let msg = assert_names(&err, &path, object);
            assert!(msg.contains(says), "{msg:?} should say {says:?}");
        };
        let chosen = |names: Vec<&'static str>| {
            move |f: &hdf5::File| {
                use hdf5::types::FixedUnicode;
                f.unlink("bin_experts/chosen").unwrap();
                let v: Vec<FixedUnicode<8>> = names
                    .iter()
                    .map(|s| s.parse::<FixedUnicode<8>>().unwrap())
                    .collect();
                f.new_dataset::<FixedUnicode<8>>()
                    .chunk(vec![v.len()])
                    .fletcher32()
                    .shape(vec![v.len()])
                    .create("bin_experts/chosen")
                    .unwrap()
                    .write_raw(&v)
                    .unwrap();
            }
        };
        let mut names = vec!["ridge"; bins];
        names[ridge] = "cnn";
        refused(&chosen(names), "/bin_experts/chosen", "\"cnn\"");
        refused(
            &chosen(vec!["ridge"; bins - 1]),
            "/bin_experts/chosen",
            "shape",
        );
        refused(
            &|f| f.unlink("bin_experts/chosen").unwrap(),
            "/bin_experts/chosen",
            "missing",
        );
        // The model of a bin that chose LightGBM is gone.
        refused(
            &|f| f.unlink(&format!("bin_experts/lightgbm/{lgbm}")).unwrap(),
            "/bin_experts/chosen",
            "no LightGBM model",
        );
        // Boundaries for fewer pixels than the set's.
        refused(
            &|f| {
                let name = format!("bin_experts/lightgbm/{ridge}/bound_counts");
                f.unlink(&name).unwrap();
                f.new_dataset::<u8>()
                    .chunk(vec![P - 1])
                    .fletcher32()
                    .shape(vec![P - 1])
                    .create(name.as_str())
                    .unwrap()
                    .write_raw(&vec![0u8; P - 1])
                    .unwrap();
            },
            &format!("/bin_experts/lightgbm/{ridge}/bound_counts"),
            "shape",
        );
        // A model text that is not UTF-8; one for other features.
        let model = |bytes: Vec<u8>| {
            move |f: &hdf5::File| {
                let name = format!("bin_experts/lightgbm/{lgbm}/model");
                f.unlink(&name).unwrap();
                f.new_dataset::<u8>()
                    .chunk(vec![bytes.len()])
                    .fletcher32()
                    .shape(vec![bytes.len()])
                    .create(name.as_str())
                    .unwrap()
                    .write_raw(&bytes)
                    .unwrap();
            }
        };
        let object = format!("/bin_experts/lightgbm/{lgbm}/model");
        refused(&model(vec![b'a', 0xff, b'b']), &object, "UTF-8");
        let text = experts(&h.models).lightgbm[lgbm]
            .as_ref()
            .unwrap()
            .model
            .clone();
        let other = text.replace(
            &format!("max_feature_idx={}", P - 1),
            &format!("max_feature_idx={}", P),
        );
        assert_ne!(other, text);
        refused(&model(other.into_bytes()), &object, "features");
        // A partition that is not the set's; a member that is not a bin.
        refused(
            &|f| {
                let g = f.group("bin_experts").unwrap();
                g.delete_attr("partition").unwrap();
                g.new_attr::<u64>()
                    .create("partition")
                    .unwrap()
                    .write_scalar(&7u64)
                    .unwrap();
            },
            "/bin_experts attribute partition",
            "7",
        );
        refused(
            &|f| {
                f.create_group(&format!("bin_experts/lightgbm/{bins}"))
                    .unwrap();
            },
            "/bin_experts/lightgbm",
            &format!("\"{bins}\""),
        );
        // Bin experts in a file that says version 1 (an old reader would
        // have ignored them).
        refused(
            &|f| {
                f.delete_attr("format_version").unwrap();
                f.new_attr::<u32>()
                    .create("format_version")
                    .unwrap()
                    .write_scalar(&1u32)
                    .unwrap();
            },
            "/bin_experts",
            "version 1",
        );
    }

    /// Each test row's keys, by the row.
    fn keys_of(t: &Truth) -> Vec<RowKeys> {
        t.params
            .iter()
            .zip(&t.snr)
            .map(|(p, &snr)| RowKeys {
                teff: p[0],
                mh: p[1],
                snr,
            })
            .collect()
    }

    #[test]
    fn the_router_predicts_each_bin_with_its_chosen_expert() {
        let _serial = serial();
        let f = fixture();
        let m = &hybrid().models;
        let be = experts(m);
        let loaded = LoadedExperts::load(be, Threads::ONE).unwrap();
        let router = Router::new(m).with_experts(Some(&loaded)).unwrap();
        let lightgbm: Vec<Option<LightGbmExpert>> = be
            .lightgbm
            .iter()
            .map(|s| {
                s.clone()
                    .map(|s| LightGbmExpert::load(s, Threads::ONE).unwrap())
            })
            .collect();
        let t = truth(&f.test, 0, None, m.noise_level);
        let keys = keys_of(&t);
        let part = &m.partitions[0].partition;
        let (mut by_lightgbm, mut by_ridge, mut differ) = (0, 0, 0);
        let (mut ridge_all, mut routes_all, mut hybrid_all) = (Vec::new(), Vec::new(), Vec::new());
        for (r, k) in keys.iter().enumerate() {
            let x = &t.x[r * P..(r + 1) * P];
            let (ridge, oracle_route) = router.oracle(0, k, x, router.global(x));
            let (y, route) = router.hybrid(0, k, x, ridge).unwrap();
            ridge_all.push(ridge);
            routes_all.push(oracle_route);
            hybrid_all.push((y, route));
            let bin = part.bin(k);
            if let Some(b) = bin {
                let own = lightgbm[b].as_ref().map(|e| e.predict(x).unwrap()[0]);
                assert_eq!(
                    loaded.lightgbm(b, x).unwrap().map(f64::to_bits),
                    own.map(f64::to_bits),
                    "row {r}"
                );
            }
            match bin.filter(|&b| be.chosen[b] == ExpertKind::LightGbm) {
                Some(b) => {
                    let want = lightgbm[b].as_ref().unwrap().predict(x).unwrap()[0];
                    assert_eq!((y.to_bits(), route), (want.to_bits(), Route::LightGbm(b)));
                    by_lightgbm += 1;
                    differ += usize::from(y != ridge);
                }
                None => {
                    assert_eq!((y.to_bits(), route), (ridge.to_bits(), oracle_route));
                    by_ridge += usize::from(matches!(route, Route::Bin(_)));
                }
            }
            // Another partition: the oracle's routing.
            let x_snr = router.oracle(1, k, x, router.global(x));
            assert_eq!(router.hybrid(1, k, x, x_snr.0).unwrap(), x_snr);
        }
        assert!(
            by_lightgbm > 10 && by_ridge > 10,
            "{by_lightgbm} {by_ridge}"
        );
        assert!(differ > 0);
        // All rows at once: the same bits and routes.
        let mut routes = routes_all.clone();
        router
            .hybrid_rows(0, &keys, &t.x, &mut ridge_all, &mut routes)
            .unwrap();
        let rows: Vec<(f64, Route)> = ridge_all.into_iter().zip(routes).collect();
        assert_eq!(
            rows.iter()
                .map(|(y, r)| (y.to_bits(), *r))
                .collect::<Vec<_>>(),
            hybrid_all
                .iter()
                .map(|(y, r)| (y.to_bits(), *r))
                .collect::<Vec<_>>()
        );
        // Without the experts, the router is the Ridge oracle.
        let plain = Router::new(m);
        let x = &t.x[..P];
        let ridge = plain.oracle(0, &keys[0], x, plain.global(x));
        assert_eq!(plain.hybrid(0, &keys[0], x, ridge.0).unwrap(), ridge);
        // A bin without a model has no LightGBM prediction.
        let none = (0..be.chosen.len()).find(|&b| be.lightgbm[b].is_none());
        if let Some(b) = none {
            assert_eq!(loaded.lightgbm(b, x).unwrap(), None);
            assert!(loaded.lightgbm_rows(b, x).is_err());
        }
    }

    #[test]
    fn predict_routes_the_oracle_hybrid_and_says_so() {
        let _serial = serial();
        let f = fixture();
        let h = hybrid();
        let m = &h.models;
        let be = experts(m);
        let t = truth(&f.test, 0, None, m.noise_level);
        let keys = keys_of(&t);
        let loaded = LoadedExperts::load(be, Threads::ONE).unwrap();
        let router = Router::new(m).with_experts(Some(&loaded)).unwrap();

        let mut opts = PredictOptions::new(m);
        opts.routing = Routing::Oracle { partition: 0 };
        opts.chunk_rows = 37;
        let (rows, s) = run(m, std::slice::from_ref(&f.test), &opts);
        let mut lightgbm_rows = 0;
        for (r, row) in rows.iter().enumerate() {
            let x = &t.x[r * P..(r + 1) * P];
            let ridge = router.oracle(0, &keys[r], x, router.global(x)).0;
            let (y, route) = router.hybrid(0, &keys[r], x, ridge).unwrap();
            assert_eq!(
                (row.prediction.to_bits(), row.route),
                (y.to_bits(), route),
                "row {r}"
            );
            lightgbm_rows += usize::from(matches!(route, Route::LightGbm(_)));
        }
        assert!(lightgbm_rows > 0);
        let names = &m.partitions[0].partition.bin_names;
        let lgbm: Vec<&str> = bins_with_model(m, ExpertKind::LightGbm)
            .into_iter()
            .map(|b| names[b].as_str())
            .collect();
        assert!(
            s.routing.starts_with("oracle (hybrid: ridge in bins ")
                && s.routing
                    .ends_with(&format!("; lightgbm in bins {})", lgbm.join(", "))),
            "{}",
            s.routing
        );
        assert_eq!(s.rows, rows.len() as u64);
        // Another partition, or global routing: as without bin experts.
        for routing in [Routing::Oracle { partition: 1 }, Routing::Global] {
            opts.routing = routing;
            let (a, sa) = run(m, std::slice::from_ref(&f.test), &opts);
            let (b, sb) = run(&f.models, std::slice::from_ref(&f.test), &opts);
            assert_eq!(a, b);
            assert_eq!(sa.routing, sb.routing);
        }

        // The CSV: an expert column, the same for any chunk size.
        let dir = tempfile::tempdir().unwrap();
        let shards = [f.test.clone(), f.train.clone()];
        let csv = |chunk: usize| {
            let mut opts = PredictOptions::new(m);
            opts.routing = Routing::Oracle { partition: 0 };
            opts.chunk_rows = chunk;
            let out = dir.path().join(format!("pred_{chunk}.csv"));
            predict_csv(m, &shards, &opts, &out, &|_| {}).unwrap();
            std::fs::read_to_string(out).unwrap()
        };
        let a = csv(7);
        assert_eq!(a, csv(1000));
        let lines: Vec<&str> = a.lines().collect();
        assert_eq!(lines[0], "id,log_g,prediction,bin,expert");
        let kind_count = |kind: &str| lines[1..].iter().filter(|l| l.ends_with(kind)).count();
        assert!(kind_count(",lightgbm") >= lightgbm_rows, "{a}");
        assert!(kind_count(",ridge") > 0 && kind_count(",global") > 0);
        assert_eq!(
            kind_count(",lightgbm") + kind_count(",ridge") + kind_count(",global"),
            900
        );

        // The CLI: the same CSV, on one thread or two, and says so.
        let lib = dir.path().join("lib.csv");
        let mut opts = PredictOptions::new(m);
        opts.routing = Routing::Oracle { partition: 0 };
        predict_csv(m, std::slice::from_ref(&f.test), &opts, &lib, &|_| {}).unwrap();
        for threads in ["1", "2"] {
            let out = dir.path().join(format!("cli_{threads}.csv"));
            let r = cli(&[
                "--model",
                &h.path.display().to_string(),
                "--routing",
                "oracle",
                "--threads",
                threads,
                "--out",
                &out.display().to_string(),
                &f.test.display().to_string(),
            ]);
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
            let stdout = String::from_utf8_lossy(&r.stdout);
            assert!(
                stdout.contains("oracle (hybrid: ridge in bins ")
                    && stdout.contains("lightgbm in bins"),
                "{stdout}"
            );
            assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&lib).unwrap());
        }
    }
}

/// A build without LightGBM reads models with LightGBM experts but refuses
/// to predict with them, in one line; other routings are unaffected.
#[cfg(not(feature = "lightgbm"))]
#[test]
fn without_lightgbm_the_hybrid_is_refused_in_one_line() {
    use gramstream::experts::binning::{PixelBins, MAX_CODES};
    use gramstream::experts::lightgbm::SavedLightGbm;
    use gramstream::experts::ExpertKind;
    use gramstream::models::BinExperts;

    let _serial = serial();
    let f = fixture();
    let mut m = f.models.clone();
    let bins = m.partitions[0].partition.bins();
    let saved = SavedLightGbm {
        bins: PixelBins::fit(
            &(0..4 * P).map(|v| v as f64).collect::<Vec<_>>(),
            P,
            MAX_CODES,
        )
        .unwrap(),
        model: format!("tree\nversion=v4\nmax_feature_idx={}\n", P - 1),
    };
    let mut chosen = vec![ExpertKind::Ridge; bins];
    chosen[0] = ExpertKind::LightGbm;
    let mut lightgbm = vec![None; bins];
    lightgbm[0] = Some(saved);
    m.bin_experts = Some(BinExperts {
        partition: 0,
        chosen,
        lightgbm,
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hybrid.h5");
    write_models(&path, &m).unwrap();
    assert_eq!(ModelSet::open(&path).unwrap(), m);
    let out = dir.path().join("pred.csv");
    let s = |p: &Path| p.display().to_string();
    let r = cli(&[
        "--model",
        &s(&path),
        "--routing",
        "oracle",
        "--out",
        &s(&out),
        &s(&f.test),
    ]);
    assert_eq!(r.status.code(), Some(1));
    let line = one_line(&r.stderr);
    assert!(
        line.contains("this build has no LightGBM: rebuild with --features lightgbm"),
        "{line}"
    );
    assert!(!out.exists());
    for routing in [["--routing", "global"], ["--routing", "oracle"]] {
        let mut args = vec!["--model".to_string(), s(&path)];
        args.extend(routing.iter().map(|a| a.to_string()));
        if routing[1] == "oracle" {
            args.extend(["--partition".to_string(), "snr".to_string()]);
        }
        args.extend(["--out".to_string(), s(&out), s(&f.test)]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = cli(&args);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        std::fs::remove_file(&out).unwrap();
    }
}
