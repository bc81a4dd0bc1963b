//! The pass's statistics at noise 0 on files written by h5py and pandas agree
//! with numpy on the same rows (tests/interop/check_stats_numpy.py).

use crate::common;

use gramstream::noise::NoiseModel;
use gramstream::stats::pass::{accumulate, AccumulateOptions};
use gramstream::stats::Mode;

#[test]
fn statistics_agree_with_numpy_on_h5py_and_pandas_files() {
    let files = require_interop!();
    let python = common::find_python().expect("python");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/check_stats_numpy.py");
    let dir = tempfile::tempdir().unwrap();
    // A 3000-row shard written by h5py alone, rows in every bin.
    let big = dir.path().join("big.h5");
    let status = std::process::Command::new(&python)
        .arg(&script)
        .arg("--write")
        .arg(&big)
        .status()
        .unwrap();
    assert!(status.success(), "writing the h5py shard");
    let mut shards: Vec<(String, std::path::PathBuf)> = vec![("h5py_3000_rows".into(), big)];
    for name in ["f64_contiguous", "f32_contiguous", "f64_big_endian"] {
        let entry = files.good_file(name);
        shards.push((
            name.into(),
            files.path(entry["file"].as_str().expect("file")),
        ));
    }
    for (name, shard) in shards {
        let opts = AccumulateOptions {
            noise: NoiseModel::new(0.0, 3).unwrap(),
            mode: Some(Mode::Cells),
            block_rows: Some(7),
            mem_budget: Some(1 << 30),
            ..Default::default()
        };
        let stats = dir.path().join(format!("{name}.stats.h5"));
        accumulate(&[shard.clone()], &opts, None, &|_| {})
            .unwrap()
            .write(&stats, gramstream::Threads::new(2))
            .unwrap();
        let out = std::process::Command::new(&python)
            .arg(&script)
            .arg(&shard)
            .arg(&stats)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{name}: {}", text.trim());
        assert!(out.status.success(), "{name}: numpy disagrees: {text}");
    }
}
