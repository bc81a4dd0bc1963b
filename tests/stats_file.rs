//! The statistics file: round trips, refusals, atomicity, merge, and the
//! documented layout as h5py sees it.

use std::path::{Path, PathBuf};

use faer::Par;
use gramstream::noise::NoiseModel;
use gramstream::partition::{fold_of, Partition, PartitionSet, RowKeys};
use gramstream::stats::{
    merge, packed_index, write_stats, Accumulator, Cursor, Mode, Reservoir, ShardFingerprint,
    StatsFile, StatsHeader, SuffStats, Sums, FORMAT_VERSION,
};
use gramstream::{Error, Layout};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// One synthetic row as the pass would see it.
#[derive(Clone)]
struct Row {
    shard: u64,
    row: u64,
    x: Vec<f64>,
    y: f64,
    keys: RowKeys,
}

/// `per_shard` rows for each shard of `shards`, x around `offset`; every
/// 17th row has a non-finite SNR (skipped).
fn make_rows(
    p: usize,
    shards: std::ops::Range<u64>,
    per_shard: u64,
    offset: f64,
    seed: u64,
) -> Vec<Row> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut out = Vec::new();
    for shard in shards {
        for row in 0..per_shard {
            let x = (0..p).map(|_| offset + rng.random::<f64>()).collect();
            let snr = if (shard * per_shard + row) % 17 == 5 {
                f64::NAN
            } else {
                rng.random::<f64>() * 10.0
            };
            out.push(Row {
                shard,
                row,
                x,
                y: 4.0 + rng.random::<f64>(),
                keys: RowKeys {
                    teff: 3500.0 + 3000.0 * rng.random::<f64>(),
                    mh: -2.5 + 3.5 * rng.random::<f64>(),
                    snr,
                },
            });
        }
    }
    out
}

struct Run {
    header: StatsHeader,
    stats: Vec<SuffStats>,
    reservoir: Reservoir,
    cursor: Option<Cursor>,
}

fn partition_set(folds: usize) -> PartitionSet {
    PartitionSet::new(vec![Partition::teff_mh(), Partition::snr()], folds).unwrap()
}

fn fingerprint(shard: u64, rows: u64) -> ShardFingerprint {
    ShardFingerprint {
        path: format!("/data/run/shard_{shard:03}.h5"),
        rows,
        bytes: 10_000 + shard,
        mtime_ns: 1_700_000_000_000_000_000 + shard as i64,
        index: shard,
    }
}

/// Accumulates `rows` like the pass does (shift = mean of the first 16
/// accepted rows unless given). With `checkpoint`, keeps staged rows and
/// returns a cursor.
#[allow(clippy::too_many_arguments)]
fn run(
    p: usize,
    set: &PartitionSet,
    mode: Mode,
    seed: u64,
    rows: &[Row],
    per_shard: u64,
    shift: Option<(Vec<f64>, f64)>,
    capacity: usize,
    checkpoint: bool,
) -> Run {
    let mut slots = vec![0; set.partitions.len()];
    let accepted: Vec<&Row> = rows
        .iter()
        .filter(|r| set.slots_of(&r.keys, &mut slots).is_ok())
        .collect();
    let (shift_x, shift_y) = shift.unwrap_or_else(|| {
        let k = accepted.len().min(16);
        let mut sx = vec![0.0; p];
        let mut sy = 0.0;
        for r in &accepted[..k] {
            for (s, v) in sx.iter_mut().zip(&r.x) {
                *s += v / k as f64;
            }
            sy += r.y / k as f64;
        }
        (sx, sy)
    });
    let header0 = StatsHeader {
        pixels: p,
        noise: NoiseModel::new(0.5, seed).unwrap(),
        partitions: set.clone(),
        mode,
        layout: Layout::default(),
        shards: Vec::new(),
        shift_x: shift_x.clone(),
        shift_y,
        rows: 0,
        skipped: 0,
        precision: Default::default(),
    };
    let block = 5;
    let mut accs: Vec<Accumulator> = (0..header0.accumulators())
        .map(|_| Accumulator::new(p, block))
        .collect();
    let mut header = header0;
    let mut shards: Vec<u64> = Vec::new();
    let mut keyed = Vec::new();
    for r in rows {
        if !shards.contains(&r.shard) {
            shards.push(r.shard);
        }
        if set.slots_of(&r.keys, &mut slots).is_err() {
            header.skipped += 1;
            continue;
        }
        let fold = fold_of(seed, r.shard, r.row, set.folds);
        let x: Vec<f64> = r.x.iter().zip(&shift_x).map(|(a, b)| a - b).collect();
        let y = r.y - shift_y;
        match mode {
            Mode::Cells => accs[set.cell(&slots, fold)].push(&x, y, Par::Seq),
            Mode::PerBin => {
                for (i, &s) in slots.iter().enumerate() {
                    accs[set.per_bin_index(i, s, fold)].push(&x, y, Par::Seq);
                }
            }
        }
        keyed.push((Reservoir::key(seed, r.shard, r.row), r));
        header.rows += 1;
    }
    header.shards = shards.iter().map(|&s| fingerprint(s, per_shard)).collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.truncate(capacity);
    let reservoir = Reservoir {
        capacity,
        pixels: p,
        keys: keyed.iter().map(|(k, _)| *k).collect(),
        origin: keyed.iter().map(|(_, r)| (r.shard, r.row)).collect(),
        x: keyed
            .iter()
            .flat_map(|(_, r)| r.x.iter().copied())
            .collect(),
        params: keyed
            .iter()
            .map(|(_, r)| [r.keys.teff, r.keys.mh, r.y, r.keys.snr])
            .collect(),
    };
    let (stats, cursor) = if checkpoint {
        let (stats, staged): (Vec<_>, Vec<_>) = accs
            .iter()
            .map(|a| {
                let (s, x, y) = a.snapshot();
                (s, (x, y))
            })
            .unzip();
        (
            stats,
            Some(Cursor {
                source: 1,
                row: 3,
                staged,
                block_rows: block,
                range_rows: 0,
            }),
        )
    } else {
        (accs.iter_mut().map(|a| a.finish(Par::Seq)).collect(), None)
    };
    Run {
        header,
        stats,
        reservoir,
        cursor,
    }
}

fn write(path: &Path, r: &Run) {
    let mut it = r.stats.iter().map(|s| Ok(Sums::PackedRef(s)));
    write_stats(path, &r.header, &mut it, &r.reservoir, r.cursor.as_ref()).unwrap();
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn assert_bitwise(a: &SuffStats, b: &SuffStats, what: &str) {
    assert_eq!((a.p, a.n), (b.p, b.n), "{what}");
    assert_eq!(
        (a.sum_y.to_bits(), a.sum_yy.to_bits()),
        (b.sum_y.to_bits(), b.sum_yy.to_bits()),
        "{what}"
    );
    assert_eq!(bits(&a.sum_x), bits(&b.sum_x), "{what}");
    assert_eq!(bits(&a.xty), bits(&b.xty), "{what}");
    assert_eq!(bits(&a.xtx), bits(&b.xtx), "{what}");
}

fn small_run(seed: u64, checkpoint: bool) -> Run {
    let rows = make_rows(7, 0..2, 40, 1.0, seed);
    run(
        7,
        &partition_set(1),
        Mode::Cells,
        42,
        &rows,
        40,
        None,
        12,
        checkpoint,
    )
}

#[test]
fn round_trip_is_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    let mut case = 0;
    for p in [7, 33] {
        for folds in [1, 3] {
            for mode in [Mode::Cells, Mode::PerBin] {
                for checkpoint in [false, true] {
                    case += 1;
                    let rows = make_rows(p, 0..3, 50, 2.0, case);
                    let r = run(
                        p,
                        &partition_set(folds),
                        mode,
                        7 + case,
                        &rows,
                        50,
                        None,
                        20,
                        checkpoint,
                    );
                    assert!(r.header.skipped > 0 && r.stats.iter().filter(|s| s.n > 0).count() > 3);
                    if checkpoint {
                        assert!(r
                            .cursor
                            .as_ref()
                            .unwrap()
                            .staged
                            .iter()
                            .any(|(_, y)| !y.is_empty()));
                    }
                    let path = dir.path().join(format!("case{case}.stats.h5"));
                    write(&path, &r);
                    let what = format!("p={p} folds={folds} {mode:?} checkpoint={checkpoint}");
                    let f = StatsFile::open(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(f.header(), &r.header, "{what}");
                    assert_eq!(bits(&f.header().shift_x), bits(&r.header.shift_x));
                    assert_eq!(f.header().shift_y.to_bits(), r.header.shift_y.to_bits());
                    assert_eq!(f.is_checkpoint(), checkpoint);
                    for (a, want) in r.stats.iter().enumerate() {
                        assert_bitwise(
                            &f.accumulator(a).unwrap(),
                            want,
                            &format!("{what} accumulator {a}"),
                        );
                    }
                    assert!(f.accumulator(r.stats.len()).is_err());
                    let res = f.reservoir().unwrap();
                    assert_eq!(res, r.reservoir);
                    assert_eq!(bits(&res.x), bits(&r.reservoir.x));
                    assert_eq!(f.cursor().unwrap(), r.cursor, "{what}");
                    assert!(!dir.path().join(format!("case{case}.stats.h5.tmp")).exists());
                }
            }
        }
    }
}

#[test]
fn empty_reservoir_and_shards_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = small_run(3, false);
    r.reservoir = Reservoir::default();
    let path = dir.path().join("s.h5");
    write(&path, &r);
    assert_eq!(
        StatsFile::open(&path).unwrap().reservoir().unwrap(),
        Reservoir::default()
    );
}

fn expect_layout(err: Error, object: &str) -> String {
    let msg = err.to_string();
    match &err {
        Error::Layout { dataset, .. } | Error::MissingDataset { dataset, .. } => {
            assert!(dataset.contains(object), "{msg}")
        }
        other => panic!("expected a layout error naming {object}, got {other:?}"),
    }
    msg
}

/// Rewrites a root attribute of an existing file.
fn set_attr<T: hdf5::H5Type>(path: &Path, name: &str, value: T) {
    let f = hdf5::File::open_rw(path).unwrap();
    f.delete_attr(name).unwrap();
    f.new_attr::<T>()
        .create(name)
        .unwrap()
        .write_scalar(&value)
        .unwrap();
}

#[test]
fn loading_refuses_missing_and_non_hdf5_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.h5");
    let err = StatsFile::open(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.h5"));
    let text = dir.path().join("text.h5");
    std::fs::write(&text, "not an HDF5 file at all\n".repeat(100)).unwrap();
    let err = StatsFile::open(&text).unwrap_err();
    assert!(matches!(err, Error::Hdf5 { .. }), "{err:?}");
    assert!(err.to_string().contains("text.h5"));
}

#[test]
fn loading_refuses_wrong_format_and_newer_version() {
    let dir = tempfile::tempdir().unwrap();
    let r = small_run(1, false);
    let path = dir.path().join("s.h5");

    write(&path, &r);
    set_attr(
        &path,
        "format",
        "something.else"
            .parse::<hdf5::types::VarLenUnicode>()
            .unwrap(),
    );
    let msg = expect_layout(StatsFile::open(&path).unwrap_err(), "format");
    assert!(
        msg.contains("s.h5") && msg.contains("something.else"),
        "{msg}"
    );

    write(&path, &r);
    set_attr(&path, "format_version", FORMAT_VERSION + 1);
    let msg = expect_layout(StatsFile::open(&path).unwrap_err(), "format_version");
    assert!(msg.contains("newer gramstream"), "{msg}");

    write(&path, &r);
    set_attr(
        &path,
        "kind",
        "finished".parse::<hdf5::types::VarLenUnicode>().unwrap(),
    );
    expect_layout(StatsFile::open(&path).unwrap_err(), "kind");

    // A plain attribute that disagrees with header_json.
    write(&path, &r);
    set_attr(&path, "seed", 43u64);
    let msg = expect_layout(StatsFile::open(&path).unwrap_err(), "seed");
    assert!(msg.contains("header_json"), "{msg}");

    // A string attribute that disagrees with header_json.
    write(&path, &r);
    set_attr(
        &path,
        "mode",
        "per_bin".parse::<hdf5::types::VarLenUnicode>().unwrap(),
    );
    expect_layout(StatsFile::open(&path).unwrap_err(), "mode");

    write(&path, &r);
    StatsFile::open(&path).unwrap();
}

#[test]
fn loading_refuses_shape_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let r = small_run(2, false);
    let a = r.stats.len();
    let path = dir.path().join("s.h5");
    let replace = |name: &str, shape: Vec<usize>| {
        write(&path, &r);
        let f = hdf5::File::open_rw(&path).unwrap();
        f.unlink(name).unwrap();
        f.new_dataset::<f64>()
            .chunk(shape.clone())
            .fletcher32()
            .shape(shape)
            .create(name)
            .unwrap();
    };
    replace("accumulators/sum_x", vec![a, 8]);
    let msg = expect_layout(StatsFile::open(&path).unwrap_err(), "/accumulators/sum_x");
    assert!(
        msg.contains(&format!("[{a}, 7]")) && msg.contains(&format!("[{a}, 8]")),
        "{msg}"
    );
    replace("accumulators/xtx", vec![a + 1, 28]);
    expect_layout(StatsFile::open(&path).unwrap_err(), "/accumulators/xtx");
    replace("shift_x", vec![6]);
    expect_layout(StatsFile::open(&path).unwrap_err(), "/shift_x");
    replace("reservoir/x", vec![12, 6]);
    expect_layout(StatsFile::open(&path).unwrap_err(), "/reservoir/x");

    // Wrong dtype, missing dataset, no checksum filter.
    write(&path, &r);
    {
        let f = hdf5::File::open_rw(&path).unwrap();
        f.unlink("accumulators/n").unwrap();
        f.new_dataset::<f64>()
            .shape(vec![a])
            .create("accumulators/n")
            .unwrap();
    }
    expect_layout(StatsFile::open(&path).unwrap_err(), "/accumulators/n");
    write(&path, &r);
    hdf5::File::open_rw(&path)
        .unwrap()
        .unlink("accumulators/xty")
        .unwrap();
    expect_layout(StatsFile::open(&path).unwrap_err(), "/accumulators/xty");
    write(&path, &r);
    {
        let f = hdf5::File::open_rw(&path).unwrap();
        f.unlink("accumulators/sum_x").unwrap();
        f.new_dataset::<f64>()
            .shape(vec![a, 7])
            .create("accumulators/sum_x")
            .unwrap();
    }
    let msg = expect_layout(StatsFile::open(&path).unwrap_err(), "/accumulators/sum_x");
    assert!(msg.contains("Fletcher32"), "{msg}");

    // Counts that do not add up.
    write(&path, &r);
    {
        let f = hdf5::File::open_rw(&path).unwrap();
        let ds = f.dataset("accumulators/n").unwrap();
        let mut n: Vec<u64> = ds.read_raw().unwrap();
        n[0] += 1;
        ds.write_raw(&n).unwrap();
    }
    expect_layout(StatsFile::open(&path).unwrap_err(), "/accumulators/n");
}

/// A file whose accumulator 0 holds a planted value at xtx[0], and the
/// offset of its bytes in the file.
fn planted(dir: &Path) -> (PathBuf, Run, usize) {
    let mut r = small_run(5, false);
    let marker = f64::from_bits(0x4123_4567_89ab_cdef);
    r.stats[0].xtx[0] = marker;
    let path = dir.join("planted.h5");
    write(&path, &r);
    let bytes = std::fs::read(&path).unwrap();
    let pat = marker.to_le_bytes();
    let hits: Vec<usize> = bytes
        .windows(8)
        .enumerate()
        .filter(|(_, w)| *w == pat)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "the planted value occurs once");
    // The same place as libhdf5 reports for the first xtx chunk.
    let f = hdf5::File::open(&path).unwrap();
    let info = f
        .dataset("accumulators/xtx")
        .unwrap()
        .chunk_info(0)
        .unwrap();
    assert_eq!(info.addr as usize, hits[0]);
    (path, r, hits[0])
}

#[test]
fn a_flipped_byte_in_a_data_chunk_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, r, at) = planted(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at + 3] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let f = StatsFile::open(&path).unwrap();
    let err = f.accumulator(0).unwrap_err();
    assert!(matches!(err, Error::Hdf5 { .. }), "{err:?}");
    assert!(err.to_string().contains("/accumulators/xtx"), "{err}");
    // Other accumulators are intact.
    assert_bitwise(&f.accumulator(1).unwrap(), &r.stats[1], "accumulator 1");
}

#[test]
fn a_truncated_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = small_run(6, true);
    let path = dir.path().join("t.h5");
    write(&path, &r);
    let len = std::fs::metadata(&path).unwrap().len();
    for keep in [len - 1, len / 2, 600, 10] {
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(keep).unwrap();
        drop(f);
        assert!(
            StatsFile::open(&path).is_err(),
            "truncated to {keep} of {len} bytes"
        );
    }
}

/// Opens and reads everything; returns the contents or the first error.
#[allow(clippy::type_complexity)]
fn read_all(
    path: &Path,
) -> gramstream::Result<(StatsHeader, Vec<SuffStats>, Reservoir, Option<Cursor>)> {
    let f = StatsFile::open(path)?;
    let stats = (0..f.header().accumulators())
        .map(|a| f.accumulator(a))
        .collect::<gramstream::Result<Vec<_>>>()?;
    Ok((f.header().clone(), stats, f.reservoir()?, f.cursor()?))
}

/// A flipped byte anywhere — data, object headers, indices, the heap of
/// strings — is either an error or changes nothing that is read.
#[test]
fn a_flipped_byte_anywhere_is_an_error_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let r = small_run(8, true);
    let path = dir.path().join("f.h5");
    write(&path, &r);
    let original = std::fs::read(&path).unwrap();
    let want = read_all(&path).unwrap();
    let bad = dir.path().join("bad.h5");
    let (mut errors, mut harmless) = (0, 0);
    // GRAMSTREAM_FLIP_STEP=1 flips every byte (minutes); the default ~600 places.
    let step = std::env::var("GRAMSTREAM_FLIP_STEP")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(original.len() / 600)
        .max(1);
    for at in (0..original.len())
        .step_by(step)
        .chain([original.len() - 1])
    {
        let mut bytes = original.clone();
        bytes[at] ^= 0x04;
        std::fs::write(&bad, &bytes).unwrap();
        match read_all(&bad) {
            Err(_) => errors += 1,
            Ok(got) => {
                assert_eq!(got.0, want.0, "byte {at}: header changed silently");
                for (a, (g, w)) in got.1.iter().zip(&want.1).enumerate() {
                    assert_bitwise(g, w, &format!("byte {at}, accumulator {a}"));
                }
                assert_eq!(got.2, want.2, "byte {at}: reservoir changed silently");
                assert_eq!(got.3, want.3, "byte {at}: cursor changed silently");
                harmless += 1;
            }
        }
    }
    eprintln!(
        "{} bytes: {errors} flips refused, {harmless} harmless",
        original.len()
    );
    assert!(
        errors > harmless / 4,
        "{errors} errors, {harmless} harmless"
    );
}

/// Yields `ok` accumulators, then an error.
fn failing(r: &Run, ok: usize) -> impl Iterator<Item = gramstream::Result<Sums<'_>>> + '_ {
    r.stats.iter().enumerate().map(move |(a, s)| {
        if a < ok {
            Ok(Sums::PackedRef(s))
        } else {
            Err(Error::Shape {
                what: "the pass failed".into(),
                expected: "success".into(),
                found: "a failure".into(),
            })
        }
    })
}

#[test]
fn a_failed_write_leaves_nothing_behind_and_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let r = small_run(9, false);
    let path = dir.path().join("out.h5");
    let tmp = dir.path().join("out.h5.tmp");

    let err = write_stats(&path, &r.header, &mut failing(&r, 3), &r.reservoir, None).unwrap_err();
    assert!(err.to_string().contains("the pass failed"), "{err}");
    assert!(!path.exists() && !tmp.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no scratch left"
    );

    write(&path, &r);
    let before = std::fs::read(&path).unwrap();
    let other = small_run(10, true);
    let err = write_stats(
        &path,
        &other.header,
        &mut failing(&other, 7),
        &other.reservoir,
        other.cursor.as_ref(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the old file is untouched"
    );
    assert!(!tmp.exists());
    // Too few accumulators is an error too, with the same guarantees.
    let mut short = r.stats.iter().take(2).map(|s| Ok(Sums::PackedRef(s)));
    assert!(write_stats(&path, &r.header, &mut short, &r.reservoir, None).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(!tmp.exists());
    // A stale temporary file from a crash is replaced. (Scratch names are
    // unique per run since issue 11: a crashed run's is that of a process
    // that no longer exists.)
    let tmp = gramstream::output::scratch_path(&path, u32::MAX, 0);
    std::fs::write(&tmp, b"stale").unwrap();
    write(&path, &other);
    assert!(!tmp.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("out.h5")],
        "no scratch left"
    );
    assert!(StatsFile::open(&path).unwrap().is_checkpoint());
}

/// A checkpoint's sums cover part of the shards: the sweep refuses it with
/// the error kind a caller can act on (finish the pass). (Merge refuses it
/// as `Incompatible`, naming both files: `merge_refuses_incompatible_…`.)
#[test]
fn checkpoints_are_refused_as_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.h5");
    write(&path, &small_run(9, true));
    let file = StatsFile::open(&path).unwrap();
    assert!(file.is_checkpoint());
    match gramstream::sweep::run(&file, &gramstream::SweepOptions::new(vec![1.0]), |_| ()) {
        Err(gramstream::Error::Unfinished { path: p }) => assert_eq!(p, path),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// A sweep whose token is cancelled stops before its first group.
#[test]
fn a_cancelled_sweep_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.h5");
    write(&path, &small_run(9, false));
    let file = StatsFile::open(&path).unwrap();
    let opts = gramstream::SweepOptions::new(vec![1.0, 10.0]);
    assert!(gramstream::sweep::run(&file, &opts, |_| ()).is_ok());
    opts.cancel.cancel();
    match gramstream::sweep::run(&file, &opts, |_| ()) {
        Err(gramstream::Error::Cancelled) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
}

fn rel_close(got: &[f64], want: &[f64], what: &str) {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-12 * scale, "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn merge_equals_a_single_run() {
    let dir = tempfile::tempdir().unwrap();
    for (p, folds, mode) in [
        (7, 1, Mode::Cells),
        (7, 3, Mode::PerBin),
        (33, 3, Mode::Cells),
    ] {
        let set = partition_set(folds);
        let seed = 11;
        let a_rows = make_rows(p, 0..2, 60, 1.0, 100 + p as u64);
        let b_rows = make_rows(p, 2..5, 45, 1.3, 200 + p as u64);
        let a = run(p, &set, mode, seed, &a_rows, 60, None, 25, false);
        let b = run(p, &set, mode, seed, &b_rows, 45, None, 25, false);
        assert_ne!(bits(&a.header.shift_x), bits(&b.header.shift_x));
        let all: Vec<Row> = a_rows.iter().chain(&b_rows).cloned().collect();
        let mut single = run(
            p,
            &set,
            mode,
            seed,
            &all,
            0,
            Some((a.header.shift_x.clone(), a.header.shift_y)),
            25,
            false,
        );
        single.header.shards = a
            .header
            .shards
            .iter()
            .chain(&b.header.shards)
            .cloned()
            .collect();

        let (pa, pb, out) = (
            dir.path().join("a.h5"),
            dir.path().join("b.h5"),
            dir.path().join("ab.h5"),
        );
        write(&pa, &a);
        write(&pb, &b);
        let calls = std::cell::RefCell::new(Vec::new());
        let summary = merge(&[pa.clone(), pb.clone()], &out, &|k| {
            calls.borrow_mut().push(k)
        })
        .unwrap();
        let count = single.stats.len();
        assert_eq!(*calls.borrow(), (1..=count).collect::<Vec<_>>());
        assert_eq!(
            (summary.inputs, summary.shards, summary.accumulators),
            (2, 5, count)
        );
        assert_eq!(
            (summary.rows, summary.skipped),
            (single.header.rows, single.header.skipped)
        );

        let m = StatsFile::open(&out).unwrap();
        assert!(!m.is_checkpoint());
        assert_eq!(m.header(), &single.header);
        for (k, want) in single.stats.iter().enumerate() {
            let got = m.accumulator(k).unwrap();
            let what = format!("p={p} {mode:?} accumulator {k}");
            assert_eq!(got.n, want.n, "{what}");
            rel_close(&got.xtx, &want.xtx, &format!("{what} xtx"));
            rel_close(&got.xty, &want.xty, &format!("{what} xty"));
            rel_close(&got.sum_x, &want.sum_x, &format!("{what} sum_x"));
            rel_close(
                &[got.sum_y, got.sum_yy],
                &[want.sum_y, want.sum_yy],
                &format!("{what} y"),
            );
        }
        // The reservoir is the top 25 of the union: exactly the single run's.
        let res = m.reservoir().unwrap();
        assert_eq!(res, single.reservoir);
        assert_eq!(summary.reservoir, 25);

        // Deterministic: merging again gives the same bytes of every array.
        let again = dir.path().join("ab2.h5");
        merge(&[pa.clone(), pb.clone()], &again, &|_| {}).unwrap();
        let m2 = StatsFile::open(&again).unwrap();
        for k in 0..count {
            assert_bitwise(
                &m2.accumulator(k).unwrap(),
                &m.accumulator(k).unwrap(),
                "re-merge",
            );
        }
    }
}

#[test]
fn merge_refuses_incompatible_inputs_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = 7;
    let set = partition_set(1);
    let a_rows = make_rows(p, 0..2, 30, 1.0, 1);
    let a = run(p, &set, Mode::Cells, 5, &a_rows, 30, None, 10, false);
    let pa = dir.path().join("first.h5");
    write(&pa, &a);
    let out = dir.path().join("out.h5");
    let refuse = |name: &str, b: Run, needle: &str| {
        let pb = dir.path().join(name);
        write(&pb, &b);
        let err = merge(&[pa.clone(), pb.clone()], &out, &|_| {}).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Incompatible { .. }), "{name}: {err:?}");
        assert!(msg.contains("first.h5") && msg.contains(name), "{msg}");
        assert!(msg.contains(needle), "{name}: {msg}");
        assert!(!out.exists());
    };
    let other =
        |p: usize, shards: std::ops::Range<u64>, set: &PartitionSet, mode: Mode, seed: u64| {
            let rows = make_rows(p, shards, 30, 1.0, 2);
            run(p, set, mode, seed, &rows, 30, None, 10, false)
        };
    refuse(
        "overlap.h5",
        other(p, 1..3, &set, Mode::Cells, 5),
        "shard index 1",
    );
    let mut same_path = other(p, 2..4, &set, Mode::Cells, 5);
    same_path.header.shards[1].path = a.header.shards[0].path.clone();
    refuse("same_path.h5", same_path, "is in both");
    refuse("seed.h5", other(p, 2..4, &set, Mode::Cells, 6), "seed");
    refuse("pixels.h5", other(8, 2..4, &set, Mode::Cells, 5), "pixels");
    refuse(
        "folds.h5",
        other(p, 2..4, &partition_set(3), Mode::Cells, 5),
        "folds",
    );
    let mut edges = Partition::snr();
    edges.kind = gramstream::partition::PartitionKind::Snr {
        snr: gramstream::partition::Axis::RightClosedOpenEnds {
            edges: vec![2.0, 4.0, 8.0],
        },
    };
    let set2 = PartitionSet::new(vec![Partition::teff_mh(), edges], 1).unwrap();
    refuse(
        "edges.h5",
        other(p, 2..4, &set2, Mode::Cells, 5),
        "partitions",
    );
    refuse("mode.h5", other(p, 2..4, &set, Mode::PerBin, 5), "keyed");
    let mut noise = other(p, 2..4, &set, Mode::Cells, 5);
    noise.header.noise.level = 0.25;
    refuse("noise.h5", noise, "noise level");
    let mut layout = other(p, 2..4, &set, Mode::Cells, 5);
    layout.header.layout.columns.log_g = "logg".into();
    refuse("layout.h5", layout, "layout");
    let rows = make_rows(p, 2..4, 30, 1.0, 2);
    refuse(
        "checkpoint.h5",
        run(p, &set, Mode::Cells, 5, &rows, 30, None, 10, true),
        "checkpoint",
    );
    // A checkpoint first is refused as well.
    let err = merge(
        &[dir.path().join("checkpoint.h5"), pa.clone()],
        &out,
        &|_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("checkpoint"), "{err}");
    // And a compatible one is accepted.
    let pb = dir.path().join("ok.h5");
    write(&pb, &other(p, 2..4, &set, Mode::Cells, 5));
    merge(&[pa.clone(), pb.clone()], &out, &|_| {}).unwrap();
    // An overlap between the second and third inputs names those two.
    let pc = dir.path().join("third.h5");
    write(&pc, &other(p, 3..5, &set, Mode::Cells, 5));
    let err = merge(&[pa.clone(), pb.clone(), pc], &out, &|_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("ok.h5") && msg.contains("third.h5") && !msg.contains("first.h5"),
        "{msg}"
    );
    assert!(msg.contains("shard index 3"), "{msg}");
}

/// The python interpreter for interop tests, or None to skip.
fn python() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("GRAMSTREAM_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/root/.cache/gs-venv/bin/python")])
        .collect();
    for py in candidates {
        let ok = std::process::Command::new(&py)
            .args(["-c", "import h5py, numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but no python with h5py and numpy (set GRAMSTREAM_PYTHON)");
    }
    None
}

#[test]
fn h5py_reads_the_documented_layout() {
    let Some(py) = python() else {
        eprintln!("skipping h5py_reads_the_documented_layout: no python with h5py (set GRAMSTREAM_PYTHON)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (mode, checkpoint) in [(Mode::PerBin, false), (Mode::Cells, true)] {
        let rows = make_rows(7, 0..3, 40, 1.0, 77);
        let r = run(
            7,
            &partition_set(3),
            mode,
            13,
            &rows,
            40,
            None,
            9,
            checkpoint,
        );
        let path = dir.path().join("interop.h5");
        write(&path, &r);
        // The busiest accumulator, as a full symmetric matrix.
        let a = (0..r.stats.len()).max_by_key(|&a| r.stats[a].n).unwrap();
        let p = 7;
        let full: Vec<Vec<f64>> = (0..p)
            .map(|i| {
                (0..p)
                    .map(|j| r.stats[a].xtx[packed_index(i.max(j), i.min(j))])
                    .collect()
            })
            .collect();
        let expect = serde_json::json!({
            "pixels": p,
            "accumulators": r.stats.len(),
            "kind": if checkpoint { "checkpoint" } else { "statistics" },
            "format_version": FORMAT_VERSION,
            "accumulator": a,
            "n": r.stats[a].n,
            "xtx_full": full,
            "xty": r.stats[a].xty,
            "shift_x": r.header.shift_x,
            "rows": r.header.rows,
            "shards": r.header.shards.iter().map(|s| &s.path).collect::<Vec<_>>(),
            "shard_index": r.header.shards.iter().map(|s| s.index).collect::<Vec<_>>(),
            "reservoir_keys": r.reservoir.keys,
            "staged_rows": r.cursor.as_ref().map(|c| c.staged.iter().map(|(_, y)| y.len()).collect::<Vec<_>>()),
            "mode": if mode == Mode::Cells { "cells" } else { "per_bin" },
            "folds": 3,
        });
        let json = dir.path().join("expect.json");
        std::fs::write(&json, expect.to_string()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/read_stats.py");
        let out = std::process::Command::new(&py)
            .arg(&script)
            .arg(&path)
            .arg(&json)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "read_stats.py failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
    }
}
