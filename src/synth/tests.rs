use super::*;

fn read_rows(path: &Path, name: &str, p: usize) -> Vec<f64> {
    let f = hdf5::File::open(path).unwrap();
    let ds = f.dataset(name).unwrap();
    let n = ds.shape()[0];
    let mut out = vec![0.0; n * p];
    crate::h5raw::read_rows_into(&ds, 0..n, p, &mut out).unwrap();
    out
}

fn quiet(_: u64) {}

#[test]
fn rows_do_not_depend_on_threads_or_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ShardSpec::new(BLOCK_ROWS + 37, 128, 7, 3);
    spec.noisy = Some(1.0);
    let mut files = Vec::new();
    for threads in [1, 2] {
        let path = dir.path().join(format!("t{threads}.h5"));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| write_shard(&path, &spec, &quiet)).unwrap();
        files.push(path);
    }
    for name in [
        "/dataset/arrays/flux/value",
        "/dataset/arrays/error/value",
        "/dataset/arrays/noisy/value",
    ] {
        let a = read_rows(&files[0], name, 128);
        let b = read_rows(&files[1], name, 128);
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name} differs"
        );
    }
    // One row computed alone equals the same row inside a block.
    let model = SpectrumModel::new(128);
    let tt = TableType::new(ParamsFormat::Pandas).unwrap();
    let flux = read_rows(&files[0], "/dataset/arrays/flux/value", 128);
    for row in [0, 1, BLOCK_ROWS - 1, BLOCK_ROWS, BLOCK_ROWS + 36] {
        let mut b = Block {
            first: row,
            n: 1,
            flux: vec![],
            error: vec![],
            noisy: vec![],
            params: vec![],
            table: vec![],
        };
        compute_block(&model, &spec, &tt, &mut b);
        assert_eq!(&b.flux[..], &flux[row * 128..(row + 1) * 128]);
    }
}

#[test]
fn rows_depend_on_seed_shard_and_row() {
    let a = star_of(1, 0, 5);
    assert_eq!(a, star_of(1, 0, 5));
    assert_ne!(a, star_of(2, 0, 5));
    assert_ne!(a, star_of(1, 1, 5));
    assert_ne!(a, star_of(1, 0, 6));
    let (mut z1, mut z2) = (vec![0.0; 16], vec![0.0; 16]);
    test_noise_row(1, 5, &mut z1);
    test_noise_row(1, 5, &mut z2);
    assert_eq!(z1, z2);
    test_noise_row(1, 6, &mut z2);
    assert_ne!(z1, z2);
}

#[test]
fn parameters_cover_the_grid() {
    let stars: Vec<Star> = (0..4000).map(|r| star_of(42, 0, r)).collect();
    let frac = |f: &dyn Fn(&Star) -> bool| {
        stars.iter().filter(|s| f(s)).count() as f64 / stars.len() as f64
    };
    assert!(stars
        .iter()
        .all(|s| (3750.0..=6000.0).contains(&s.teff) && (1.0..=5.0).contains(&s.log_g)));
    assert!(stars
        .iter()
        .all(|s| (-2.5..=0.75).contains(&s.m_h) && (20.5..=22.5).contains(&s.mag)));
    let poor = frac(&|s| (-2.0..-1.0).contains(&s.m_h));
    let solar = frac(&|s| (-1.0..0.0).contains(&s.m_h));
    let rich = frac(&|s| (0.0..=0.5).contains(&s.m_h));
    eprintln!("[M/H] bins: poor {poor:.3} solar {solar:.3} rich {rich:.3}");
    assert!(poor > 0.12 && solar > poor && rich > 0.15);
}

#[test]
fn snr_distribution_matches_the_real_data() {
    let model = SpectrumModel::new(4096);
    let n = 2000;
    let mut snr: Vec<f64> = (0..n as u64)
        .into_par_iter()
        .map_init(
            || (model.scratch(), vec![0.0; 4096], vec![0.0; 4096]),
            |(sc, f, e), r| model.synthesize(&star_of(42, 0, r), sc, f, e),
        )
        .collect();
    snr.sort_by(f64::total_cmp);
    let (median, max) = (snr[n / 2], snr[n - 1]);
    eprintln!("SNR median {median:.3}, max {max:.3}, min {:.3}", snr[0]);
    assert!((2.6..=3.2).contains(&median), "median SNR {median}");
    assert!((7.0..=11.0).contains(&max), "max SNR {max}");
}

#[test]
fn files_have_the_layout_shapes_types_and_storage() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (Dtype::F64, None, None, ParamsFormat::Pandas),
        (Dtype::F32, Some(100), None, ParamsFormat::Fields),
        (Dtype::F64, None, Some(4), ParamsFormat::Pandas),
    ];
    for (k, (dtype, chunk, gzip, pf)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("c{k}.h5"));
        let mut spec = ShardSpec::new(300, 64, 1, 0);
        spec.dtype = dtype;
        spec.chunk_rows = chunk;
        spec.gzip = gzip;
        spec.params_format = pf;
        spec.id_offset = 1000;
        let done = std::sync::atomic::AtomicU64::new(0);
        let bytes = write_shard(&path, &spec, &|n| {
            done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(done.into_inner(), 300);
        assert!(bytes > 0);
        let f = hdf5::File::open(&path).unwrap();
        for name in ["/dataset/arrays/flux/value", "/dataset/arrays/error/value"] {
            let ds = f.dataset(name).unwrap();
            assert_eq!(ds.shape(), vec![300, 64]);
            let size = ds.dtype().unwrap().size();
            assert_eq!(size, if dtype == Dtype::F32 { 4 } else { 8 });
            match (chunk, gzip) {
                (Some(c), _) => assert_eq!(ds.chunk(), Some(vec![c, 64])),
                (None, Some(_)) => assert!(ds.chunk().is_some() && ds.filters().len() == 1),
                (None, None) => assert_eq!(ds.chunk(), None),
            }
        }
        assert!(f.dataset("/dataset/arrays/noisy/value").is_err());
        let wave: Vec<f64> = f
            .dataset("/spectrumdataset/wave")
            .unwrap()
            .read_raw()
            .unwrap();
        assert_eq!(wave.len(), 64);
        assert_eq!((wave[0], wave[63]), (7100.0, 8850.0));
        let edges: Vec<f64> = f
            .dataset("/spectrumdataset/wave_edges")
            .unwrap()
            .read_raw()
            .unwrap();
        assert_eq!(edges.len(), 65);
        let table = f.dataset("/dataset/params/table").unwrap();
        assert_eq!(table.shape(), vec![300]);
        let desc = table.dtype().unwrap().to_descriptor().unwrap();
        let hdf5::types::TypeDescriptor::Compound(c) = desc else {
            panic!("not a compound")
        };
        let names: Vec<&str> = c.fields.iter().map(|f| f.name.as_str()).collect();
        match pf {
            ParamsFormat::Pandas => {
                assert_eq!(
                    names,
                    [
                        "index",
                        "values_block_0",
                        "values_block_1",
                        "values_block_2"
                    ]
                );
                let attr = table.attr("values_block_0_kind").unwrap();
                let bytes = crate::h5raw::read_fixed_string_attr(&attr).unwrap();
                let cols = crate::params::pickle::decode_string_list(&bytes).unwrap();
                assert_eq!(cols, table::FLOAT_COLUMNS);
                let nrows: i64 = table.attr("NROWS").unwrap().read_scalar().unwrap();
                assert_eq!(nrows, 300);
            }
            ParamsFormat::Fields => {
                let expect: Vec<&str> = table::FLOAT_COLUMNS
                    .iter()
                    .chain(&table::INT_COLUMNS)
                    .chain(&table::BYTES_COLUMNS)
                    .copied()
                    .collect();
                assert_eq!(names, expect);
            }
        }
    }
}

#[test]
fn generate_writes_train_and_test_files() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = GenerateConfig {
        out: dir.path().join("out"),
        train_shards: 2,
        rows_per_shard: 20,
        test_rows: 10,
        pixels: 32,
        ..GenerateConfig::default()
    };
    let s = generate(&cfg, &quiet).unwrap();
    assert_eq!(s.rows, 50);
    assert_eq!(s.files.len(), 3);
    assert!(s.files[2].ends_with("test/dataset.h5"));
    let noisy = read_rows(&s.files[2], "/dataset/arrays/noisy/value", 32);
    let flux = read_rows(&s.files[2], "/dataset/arrays/flux/value", 32);
    assert!(noisy.iter().all(|&x| x >= 0.0));
    assert!(noisy.iter().zip(&flux).any(|(a, b)| a != b));
    // Shard 1 differs from shard 0.
    assert_ne!(
        read_rows(&s.files[0], "/dataset/arrays/flux/value", 32),
        read_rows(&s.files[1], "/dataset/arrays/flux/value", 32)
    );
}

#[test]
fn bad_configurations_are_refused_with_the_option_named() {
    let ok = GenerateConfig::default();
    assert!(ok.check().is_ok());
    let cases: [(GenerateConfig, &str); 5] = [
        (
            GenerateConfig {
                pixels: 8,
                ..ok.clone()
            },
            "pixels",
        ),
        (
            GenerateConfig {
                gzip: Some(12),
                ..ok.clone()
            },
            "gzip",
        ),
        (
            GenerateConfig {
                chunk_rows: Some(0),
                ..ok.clone()
            },
            "chunked",
        ),
        (
            GenerateConfig {
                test_noise: f64::NAN,
                ..ok.clone()
            },
            "test-noise",
        ),
        (
            GenerateConfig {
                rows_per_shard: 0,
                ..ok.clone()
            },
            "rows",
        ),
    ];
    for (cfg, name) in cases {
        match cfg.check() {
            Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
}
