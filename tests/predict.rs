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
