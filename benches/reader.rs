//! Reader throughput (both read paths, next to `cat FILE > /dev/null` in the
//! same run) and the noise generation rate.
//!
//! The shard (≥ 2 GB: 32,768 rows × 4,096 pixels of f64 flux + error) is
//! generated once into `target/bench-data/` (or taken from
//! `GRAMSTREAM_BENCH_SHARD`) and reused; delete it after use. The page cache
//! is warm after generation, so these are warm-cache figures: the reader's
//! own cost, not the disk's.
//!
//!     cargo bench --bench reader

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gramstream::noise::NoiseModel;
use gramstream::source::{Chunk, ChunkSource, ReadOptions, ReadPath, Shard};
use gramstream::Layout;

const ROWS: usize = 32_768;
const PIXELS: usize = 4096;

fn shard_path() -> PathBuf {
    if let Ok(p) = std::env::var("GRAMSTREAM_BENCH_SHARD") {
        return PathBuf::from(p);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/reader");
    let path = dir.join("train_0/dataset.h5");
    if !path.exists() {
        let cfg = gramstream::synth::GenerateConfig {
            out: dir,
            train_shards: 1,
            rows_per_shard: ROWS,
            test_rows: 0,
            pixels: PIXELS,
            ..Default::default()
        };
        eprintln!(
            "generating {} ({} rows × {} pixels)…",
            path.display(),
            ROWS,
            PIXELS
        );
        gramstream::synth::generate(&cfg, &|_| {}).expect("generate the benchmark shard");
    }
    path
}

fn read_all(shard: &Shard, path: ReadPath, chunk_rows: usize) -> f64 {
    let opts = ReadOptions {
        path,
        columns: vec!["log_g".into()],
        ..Default::default()
    };
    let mut reader = shard.reader(0, &opts).expect("reader");
    assert_eq!(reader.zero_copy(), path == ReadPath::Auto);
    let mut chunk = Chunk::default();
    let mut check = 0.0;
    for task in gramstream::source::plan(&[shard.rows()], chunk_rows).expect("plan") {
        reader.read_chunk(task.rows, &mut chunk).expect("read");
        check += chunk.flux[0] + chunk.error[chunk.error.len() - 1];
    }
    check
}

fn reader(c: &mut Criterion) {
    let path = shard_path();
    let shard = Shard::open(&path, &Layout::default()).expect("open");
    let spectra_bytes = (shard.rows() * shard.pixels() * 16) as u64;
    let file_bytes = shard.file_len();
    let mut g = c.benchmark_group("reader");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Bytes(file_bytes));
    g.bench_function("cat_to_dev_null", |b| {
        b.iter(|| {
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("cat '{}' > /dev/null", path.display()))
                .status()
                .expect("cat");
            assert!(status.success());
        })
    });
    g.throughput(Throughput::Bytes(spectra_bytes));
    for chunk_rows in [256, 1024] {
        g.bench_function(format!("zero_copy/chunk{chunk_rows}"), |b| {
            b.iter(|| read_all(&shard, ReadPath::Auto, chunk_rows))
        });
        g.bench_function(format!("libhdf5/chunk{chunk_rows}"), |b| {
            b.iter(|| read_all(&shard, ReadPath::Hdf5, chunk_rows))
        });
    }
    g.finish();
}

fn noise(c: &mut Criterion) {
    let rows = 256;
    let flux = vec![1.0; rows * PIXELS];
    let error = vec![0.3; rows * PIXELS];
    let model = NoiseModel::new(1.0, 42).expect("model");
    let mut g = c.benchmark_group("noise");
    g.throughput(Throughput::Elements((rows * PIXELS) as u64));
    for parallel in [false, true] {
        let mut buf = flux.clone();
        g.bench_function(if parallel { "2_threads" } else { "1_thread" }, |b| {
            b.iter(|| {
                buf.copy_from_slice(&flux);
                model.apply_rows(0, 0, PIXELS, &mut buf, &error, parallel);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, reader, noise);
criterion_main!(benches);
