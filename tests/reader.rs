//! The shard reader against files written by real writers (h5py, pandas), and
//! the noise contract (DESIGN §4) through the reader.
//!
//! The interop files and the values they must read as come from
//! `tests/interop/make_files.py` (see `common::interop`).

use crate::common;

use std::path::Path;

use common::{assert_bits_eq, read_all, read_prefetched, read_range_with, Rows};
use gramstream::noise::{row_stream, NoiseModel};
use gramstream::params::TableFormat;
use gramstream::source::{
    ChunkSource, NonFinitePolicy, ReadOptions, ReadPath, Shard, Spectra, Storage,
};
use gramstream::{Error, Layout};

const PATHS: [ReadPath; 2] = [ReadPath::Auto, ReadPath::Hdf5];

fn options(spectra: Spectra, columns: &[&str], path: ReadPath) -> ReadOptions {
    ReadOptions {
        spectra,
        columns: columns.iter().map(|c| c.to_string()).collect(),
        path,
        non_finite: NonFinitePolicy::Error,
    }
}

/// The numeric columns a good file's manifest entry has expected values for,
/// sorted (not the file order), and those values row-major.
fn expected_params(files: &common::Interop, entry: &serde_json::Value) -> (Vec<String>, Vec<f64>) {
    let map = entry["params"].as_object().expect("params");
    let mut names: Vec<String> = map.keys().cloned().collect();
    names.sort();
    let cols: Vec<Vec<f64>> = names
        .iter()
        .map(|n| files.values(map[n].as_str().unwrap()))
        .collect();
    let n = files.rows();
    let mut out = Vec::with_capacity(n * names.len());
    for r in 0..n {
        for c in &cols {
            out.push(c[r]);
        }
    }
    (names, out)
}

fn open(path: &Path) -> Shard {
    Shard::open(path, &Layout::default())
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

fn check_rows(rows: &Rows, shard: u64, n: usize, what: &str) {
    assert_eq!(rows.row, (0..n).collect::<Vec<_>>(), "{what}: row indices");
    assert!(
        rows.shard.iter().all(|&s| s == shard),
        "{what}: shard index"
    );
    assert!(
        rows.skip.iter().all(|&s| !s),
        "{what}: no row of a good file is skipped"
    );
}

/// Every good file, both read paths, chunk sizes 1, 7, N and > N, flux+error
/// and (where stored) noisy, every numeric params column: bit-exact.
#[test]
fn interop_files_read_exactly_on_both_paths_and_all_chunk_sizes() {
    let files = require_interop!();
    let n = files.rows();
    let p = files.pixels();
    assert!(
        files.good().len() >= 12,
        "the script writes the whole set of good files"
    );
    for entry in files.good() {
        let name = entry["name"].as_str().unwrap();
        let shard = open(&files.path(entry["file"].as_str().unwrap()));
        assert_eq!((shard.rows(), shard.pixels()), (n, p), "{name}: shape");
        assert_bits_eq(
            shard.wave(),
            &files.values(entry["wave"].as_str().unwrap()),
            p,
            &format!("{name}: wave"),
        );
        let format = match entry["params_format"].as_str().unwrap() {
            "pandas" => TableFormat::PandasBlocks,
            _ => TableFormat::Fields,
        };
        assert_eq!(shard.params().format(), format, "{name}: params format");
        assert_eq!(
            shard.has_noisy(),
            !entry["noisy"].is_null(),
            "{name}: noisy present"
        );

        let (columns, params) = expected_params(files, entry);
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let flux = files.values(entry["flux"].as_str().unwrap());
        let error = files.values(entry["error"].as_str().unwrap());
        let mut cases = vec![(Spectra::FluxError, flux, Some(error))];
        if let Some(noisy) = entry["noisy"].as_str() {
            cases.push((Spectra::Noisy, files.values(noisy), None));
        }
        for (spectra, want_flux, want_error) in &cases {
            for path in PATHS {
                let mut reader = shard.reader(3, &options(*spectra, &columns, path)).unwrap();
                assert_eq!(reader.shard_index(), 3);
                for chunk in [1, 7, n, n + 5] {
                    let what = format!("{name} {spectra:?} {path:?} chunk {chunk}");
                    let rows =
                        read_all(&mut reader, chunk).unwrap_or_else(|e| panic!("{what}: {e}"));
                    check_rows(&rows, 3, n, &what);
                    assert_bits_eq(&rows.flux, want_flux, p, &format!("{what}: flux"));
                    match want_error {
                        Some(e) => assert_bits_eq(&rows.error, e, p, &format!("{what}: error")),
                        None => assert!(
                            rows.error.is_empty(),
                            "{what}: no error read with stored noisy"
                        ),
                    }
                    assert_bits_eq(
                        &rows.params,
                        &params,
                        columns.len(),
                        &format!("{what}: params {columns:?}"),
                    );
                }
            }
        }
    }
}

/// The zero-copy path is taken exactly for contiguous little-endian files
/// (including h5py's unaligned offsets and a 512-byte user block), and the
/// storage the reader reports is what h5py says.
#[test]
fn zero_copy_exactly_for_contiguous_little_endian_files() {
    let files = require_interop!();
    let unaligned: Vec<&str> = files.manifest["unaligned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        unaligned.contains(&"f64_unaligned"),
        "an h5py-only file at an unaligned offset"
    );
    let mut seen = [0usize; 2];
    for entry in files.good() {
        let name = entry["name"].as_str().unwrap();
        let contiguous = entry["storage"] == "contiguous";
        let little = entry["dtype"].as_str().unwrap().starts_with('<');
        assert_eq!(
            entry["zero_copy"].as_bool().unwrap(),
            contiguous && little,
            "{name}: manifest"
        );
        let zero_copy = contiguous && little;
        seen[zero_copy as usize] += 1;
        let shard = open(&files.path(entry["file"].as_str().unwrap()));
        for spectra in [Spectra::FluxError, Spectra::Noisy] {
            if spectra == Spectra::Noisy && !shard.has_noisy() {
                continue;
            }
            let auto = shard
                .reader(0, &options(spectra, &["T_eff"], ReadPath::Auto))
                .unwrap();
            assert_eq!(
                auto.zero_copy(),
                zero_copy,
                "{name} {spectra:?}: zero_copy() on ReadPath::Auto"
            );
            let hdf5 = shard
                .reader(0, &options(spectra, &["T_eff"], ReadPath::Hdf5))
                .unwrap();
            assert!(!hdf5.zero_copy(), "{name}: ReadPath::Hdf5 never maps");
        }
        for info in shard.arrays().into_iter().take(2) {
            let offset = &entry["offsets"][&info.name];
            match &info.storage {
                Storage::Contiguous { offset: Some(o) } => {
                    assert!(contiguous, "{name}: {} reported contiguous", info.name);
                    assert_eq!(
                        Some(*o),
                        offset.as_u64(),
                        "{name}: {} offset as h5py reports it",
                        info.name
                    );
                }
                Storage::Chunked { filters, .. } => {
                    assert!(!contiguous, "{name}: {} reported chunked", info.name);
                    let gzip = name.contains("gzip");
                    assert_eq!(
                        filters.iter().any(|f| f.contains("deflate")),
                        gzip,
                        "{name}: filters {filters:?}"
                    );
                    assert_eq!(
                        filters.iter().any(|f| f.contains("shuffle")),
                        name.contains("shuffle"),
                        "{name}"
                    );
                }
                other => panic!("{name}: {}: unexpected storage {other}", info.name),
            }
            assert_eq!(
                info.zero_copy.is_ok(),
                zero_copy,
                "{name}: {}: {:?}",
                info.name,
                info.zero_copy
            );
        }
    }
    assert!(
        seen[0] >= 4 && seen[1] >= 4,
        "both kinds of files are covered: {seen:?}"
    );
}

/// The Prefetcher over two readers of each file delivers every row of both,
/// in order, with their shard indices, identical to the expected values.
#[test]
fn prefetcher_delivers_the_same_rows() {
    let files = require_interop!();
    let n = files.rows();
    let p = files.pixels();
    for entry in files.good() {
        let name = entry["name"].as_str().unwrap();
        let shard = open(&files.path(entry["file"].as_str().unwrap()));
        let (columns, params) = expected_params(files, entry);
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let flux = files.values(entry["flux"].as_str().unwrap());
        let error = files.values(entry["error"].as_str().unwrap());
        for path in PATHS {
            for (chunk, depth) in [(1, 1), (7, 2), (n + 1, 3)] {
                let what = format!("{name} {path:?} chunk {chunk} depth {depth}");
                let readers = vec![
                    shard
                        .reader(4, &options(Spectra::FluxError, &columns, path))
                        .unwrap(),
                    shard
                        .reader(9, &options(Spectra::FluxError, &columns, path))
                        .unwrap(),
                ];
                let rows = read_prefetched(readers, chunk, depth, |_| {})
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let mut want_shards = vec![4u64; n];
                want_shards.extend(vec![9u64; n]);
                assert_eq!(rows.shard, want_shards, "{what}: shard of each row");
                assert_eq!(
                    rows.row,
                    (0..n).chain(0..n).collect::<Vec<_>>(),
                    "{what}: rows in order"
                );
                let twice = |v: &[f64]| [v, v].concat();
                assert_bits_eq(&rows.flux, &twice(&flux), p, &format!("{what}: flux"));
                assert_bits_eq(&rows.error, &twice(&error), p, &format!("{what}: error"));
                assert_bits_eq(
                    &rows.params,
                    &twice(&params),
                    columns.len(),
                    &format!("{what}: params"),
                );
            }
        }
    }
}

/// Columns are listed in file order (pandas blocks expanded with their
/// pickled names, `index` left out) and read by name in any order.
#[test]
fn params_columns_are_listed_in_file_order_and_read_by_name() {
    let files = require_interop!();
    for name in [
        "f64_contiguous",
        "f32_contiguous",
        "f32_gzip_shuffle",
        "f64_big_endian",
        "f32_big_endian",
    ] {
        let entry = files.good_file(name);
        let shard = open(&files.path(entry["file"].as_str().unwrap()));
        let listed: Vec<&str> = shard
            .params()
            .columns()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let want: Vec<&str> = entry["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(listed, want, "{name}: columns");
        // A different order, a repeated column, ints of two widths, an f32 column.
        let ask = ["n_lines", "log_g", "id", "T_eff", "log_g", "a_M", "M_H"];
        let mut reader = shard
            .reader(0, &options(Spectra::FluxError, &ask, ReadPath::Hdf5))
            .unwrap();
        let rows = read_all(&mut reader, 10).unwrap();
        let cols: Vec<Vec<f64>> = ask
            .iter()
            .map(|c| files.values(entry["params"][*c].as_str().unwrap()))
            .collect();
        let want: Vec<f64> = (0..files.rows())
            .flat_map(|r| cols.iter().map(move |c| c[r]))
            .collect();
        assert_bits_eq(
            &rows.params,
            &want,
            ask.len(),
            &format!("{name}: params by name"),
        );
        // The id column holds values beyond 2^32 (seed · 10^12 + …): exact as f64.
        assert!(
            want.chunks(ask.len()).any(|r| r[2] > 4.0e9),
            "{name}: large ids exercised"
        );
    }
}

/// pandas extras: the bool column reads as 0/1, the string column is listed
/// but refused as a number, the all-NaN column is a bad value unless rows
/// are skipped.
#[test]
fn pandas_bool_string_and_all_nan_columns() {
    let files = require_interop!();
    let entry = files.good_file("f32_contiguous");
    let path = files.path(entry["file"].as_str().unwrap());
    let shard = open(&path);
    let n = files.rows();

    let mut reader = shard
        .reader(0, &options(Spectra::FluxError, &["flag"], ReadPath::Auto))
        .unwrap();
    let rows = read_all(&mut reader, 8).unwrap();
    let want: Vec<f64> = (0..n).map(|i| if i % 3 == 0 { 1.0 } else { 0.0 }).collect();
    assert_eq!(rows.params, want, "bool column flag");

    match shard.reader(
        0,
        &options(Spectra::FluxError, &["log_g", "name"], ReadPath::Auto),
    ) {
        Err(Error::Layout {
            path: p,
            dataset,
            expected,
            ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(dataset, "/dataset/params/table");
            assert!(expected.contains("\"name\""), "{expected}");
        }
        other => panic!("string column: {other:?}"),
    }

    let mut reader = shard
        .reader(
            0,
            &options(Spectra::FluxError, &["log_g", "all_nan"], ReadPath::Auto),
        )
        .unwrap();
    match read_all(&mut reader, 5) {
        Err(Error::BadValue {
            path: p,
            dataset,
            row,
            column,
            problem,
        }) => {
            assert_eq!(p, path);
            assert_eq!(dataset, "/dataset/params/table");
            assert_eq!((row, column.as_str()), (0, "all_nan"));
            assert!(problem.contains("NaN"), "{problem}");
        }
        other => panic!("all-NaN column: {other:?}"),
    }
    let mut opts = options(Spectra::FluxError, &["log_g", "all_nan"], ReadPath::Auto);
    opts.non_finite = NonFinitePolicy::SkipRow;
    let mut reader = shard.reader(0, &opts).unwrap();
    let rows = read_all(&mut reader, 5).unwrap();
    assert!(
        rows.skip.iter().all(|&s| s),
        "every row has a NaN in all_nan"
    );
    assert!(rows
        .params
        .chunks(2)
        .all(|r| r[0].is_finite() && r[1].is_nan()));
}

/// A missing column's error names it, the file and the table, and lists
/// every column that exists; renaming log_g → logg reads the renamed file.
#[test]
fn missing_and_renamed_columns() {
    let files = require_interop!();
    for name in [
        "f64_contiguous",
        "f32_contiguous",
        "pandas_renamed_logg",
        "fields_renamed_logg",
    ] {
        let entry = files.good_file(name);
        let path = files.path(entry["file"].as_str().unwrap());
        let shard = open(&path);
        let existing: Vec<&str> = entry["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let renamed = name.contains("renamed");
        let missing = if renamed { "log_g" } else { "logG" };
        let err = shard
            .reader(
                0,
                &options(Spectra::FluxError, &["T_eff", missing], ReadPath::Auto),
            )
            .unwrap_err();
        let message = err.to_string();
        match err {
            Error::MissingColumn {
                path: p,
                dataset,
                column,
                available,
            } => {
                assert_eq!(p, path, "{name}");
                assert_eq!(dataset, "/dataset/params/table");
                assert_eq!(column, missing);
                let listed: Vec<&str> = available.split(", ").collect();
                assert_eq!(listed, existing, "{name}: the columns listed");
                assert!(
                    message.contains(&path.display().to_string()) && message.contains(missing),
                    "{message}"
                );
                assert!(message.contains(&available), "{message}");
            }
            other => panic!("{name}: {other:?}"),
        }
        if !renamed {
            continue;
        }
        let mut layout = Layout::default();
        layout.columns.apply_renames(["log_g=logg"]).unwrap();
        let shard = Shard::open(&path, &layout).unwrap();
        let columns = layout.columns.names();
        assert_eq!(columns, ["T_eff", "M_H", "logg"]);
        let mut reader = shard
            .reader(0, &options(Spectra::FluxError, &columns, ReadPath::Auto))
            .unwrap();
        let rows = read_all(&mut reader, 6).unwrap();
        let log_g = files.values(entry["params"]["logg"].as_str().unwrap());
        let got: Vec<f64> = rows.params.chunks(3).map(|r| r[2]).collect();
        assert_bits_eq(&got, &log_g, 1, &format!("{name}: logg"));
    }
}

// ------------------------------------------------------------------ noise

const NOISE_ROWS: usize = 150;
const NOISE_PIXELS: usize = 64;

/// Two shards written with the hdf5 crate: shard 0 contiguous (zero-copy),
/// shard 1 chunked (libhdf5 path). Shard 2 is shard 0's data again.
struct NoiseShards {
    _dir: tempfile::TempDir,
    shards: Vec<Shard>,
}

fn noise_shards() -> NoiseShards {
    let dir = tempfile::tempdir().unwrap();
    let mut shards = Vec::new();
    for (i, (salt, chunk)) in [(11u64, None), (12, Some(16)), (11, Some(7))]
        .into_iter()
        .enumerate()
    {
        let (flux, error, params) = common::synthetic(NOISE_ROWS, NOISE_PIXELS, salt);
        let path = dir.path().join(format!("shard{i}.h5"));
        common::write_shard(&path, NOISE_PIXELS, &flux, &error, &params, chunk);
        shards.push(open(&path));
    }
    assert!(shards[0]
        .reader(0, &ReadOptions::default())
        .unwrap()
        .zero_copy());
    assert!(!shards[1]
        .reader(1, &ReadOptions::default())
        .unwrap()
        .zero_copy());
    NoiseShards { _dir: dir, shards }
}

fn noise_options() -> ReadOptions {
    options(Spectra::FluxError, &["log_g"], ReadPath::Auto)
}

fn model() -> NoiseModel {
    NoiseModel::new(1.5, 20240611).unwrap()
}

/// Noise applied to a chunk the way the pass does: the chunk's shard index
/// and first row.
fn add_noise(model: NoiseModel, parallel: bool) -> impl FnMut(&mut gramstream::source::Chunk) {
    move |c| {
        model.apply_rows(
            c.shard,
            c.start as u64,
            c.pixels,
            &mut c.flux,
            &c.error,
            parallel,
        )
    }
}

/// The reference: whole shard in one chunk, sequential. Checked against
/// DESIGN §4 computed here from the row stream directly.
fn reference(shard: &Shard, index: u64) -> Rows {
    let mut reader = shard.reader(index, &noise_options()).unwrap();
    let noiseless = read_all(&mut reader, NOISE_ROWS).unwrap();
    let rows = read_range_with(
        &mut reader,
        0..NOISE_ROWS,
        NOISE_ROWS,
        add_noise(model(), false),
    )
    .unwrap();
    use rand::Rng;
    for r in [0, 1, 77, NOISE_ROWS - 1] {
        let mut rng = row_stream(model().seed, index, r as u64);
        for i in 0..NOISE_PIXELS {
            let k = r * NOISE_PIXELS + i;
            let z: f64 = rng.sample(rand_distr::StandardNormal);
            let want = (noiseless.flux[k] + model().level * noiseless.error[k] * z).max(0.0);
            assert_eq!(
                rows.flux[k].to_bits(),
                want.to_bits(),
                "shard {index} row {r} pixel {i}: DESIGN §4"
            );
        }
    }
    let changed = rows
        .flux
        .iter()
        .zip(&noiseless.flux)
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        changed > rows.flux.len() * 9 / 10,
        "noise changes almost every pixel ({changed})"
    );
    rows
}

#[test]
fn noisy_rows_are_identical_for_any_chunking_prefetch_and_thread_count() {
    let set = noise_shards();
    let refs: Vec<Rows> = set.shards[..2]
        .iter()
        .enumerate()
        .map(|(i, s)| reference(s, i as u64))
        .collect();
    let mut both = refs[0].clone();
    for (field, extra) in [
        (&mut both.flux, &refs[1].flux),
        (&mut both.error, &refs[1].error),
    ] {
        field.extend_from_slice(extra);
    }
    both.params.extend_from_slice(&refs[1].params);
    both.shard.extend_from_slice(&refs[1].shard);
    both.row.extend_from_slice(&refs[1].row);
    both.skip.extend_from_slice(&refs[1].skip);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            for chunk in [1, 5, 64, NOISE_ROWS] {
                for parallel in [false, true] {
                    let what = format!("{threads} threads, chunk {chunk}, parallel {parallel}");
                    for (i, shard) in set.shards[..2].iter().enumerate() {
                        let mut reader = shard.reader(i as u64, &noise_options()).unwrap();
                        let rows = read_range_with(
                            &mut reader,
                            0..NOISE_ROWS,
                            chunk,
                            add_noise(model(), parallel),
                        )
                        .unwrap();
                        assert_bits_eq(
                            &rows.flux,
                            &refs[i].flux,
                            NOISE_PIXELS,
                            &format!("{what}, shard {i}"),
                        );
                    }
                    let readers: Vec<_> = (0..2)
                        .map(|i| set.shards[i].reader(i as u64, &noise_options()).unwrap())
                        .collect();
                    let rows =
                        read_prefetched(readers, chunk, 2, add_noise(model(), parallel)).unwrap();
                    assert_eq!(rows.shard, both.shard, "{what}: prefetched shards");
                    assert_bits_eq(
                        &rows.flux,
                        &both.flux,
                        NOISE_PIXELS,
                        &format!("{what}, prefetched"),
                    );
                }
            }
        });
    }
}

#[test]
fn resuming_at_a_later_row_gives_the_same_rows() {
    let set = noise_shards();
    for (i, shard) in set.shards[..2].iter().enumerate() {
        let full = reference(shard, i as u64);
        for start in [1, 37, 64, NOISE_ROWS - 1] {
            for chunk in [1, 5, 64] {
                let mut reader = shard.reader(i as u64, &noise_options()).unwrap();
                let rows = read_range_with(
                    &mut reader,
                    start..NOISE_ROWS,
                    chunk,
                    add_noise(model(), true),
                )
                .unwrap();
                assert_eq!(rows.row, (start..NOISE_ROWS).collect::<Vec<_>>());
                let want = &full.flux[start * NOISE_PIXELS..];
                assert_bits_eq(
                    &rows.flux,
                    want,
                    NOISE_PIXELS,
                    &format!("shard {i} resumed at {start}, chunk {chunk}"),
                );
            }
        }
    }
}

#[test]
fn a_shard_subset_gets_the_same_noise_and_shards_get_their_own() {
    let set = noise_shards();
    let readers = |indices: &[usize]| -> Vec<_> {
        indices
            .iter()
            .map(|&i| set.shards[i].reader(i as u64, &noise_options()).unwrap())
            .collect()
    };
    let both = read_prefetched(readers(&[0, 1]), 13, 2, add_noise(model(), true)).unwrap();
    let only1 = read_prefetched(readers(&[1]), 13, 2, add_noise(model(), true)).unwrap();
    assert!(only1.shard.iter().all(|&s| s == 1));
    let k = NOISE_ROWS * NOISE_PIXELS;
    assert_bits_eq(
        &only1.flux,
        &both.flux[k..],
        NOISE_PIXELS,
        "shard 1 alone vs after shard 0",
    );
    let only0 = read_prefetched(readers(&[0]), 64, 1, add_noise(model(), false)).unwrap();
    assert_bits_eq(&only0.flux, &both.flux[..k], NOISE_PIXELS, "shard 0 alone");

    // Shard 2 holds shard 0's data: its index, not its data, chooses its noise.
    let mut r0 = set.shards[0].reader(0, &noise_options()).unwrap();
    let mut r2 = set.shards[2].reader(2, &noise_options()).unwrap();
    let clean0 = read_all(&mut r0, 50).unwrap();
    let clean2 = read_all(&mut r2, 50).unwrap();
    assert_bits_eq(
        &clean0.flux,
        &clean2.flux,
        NOISE_PIXELS,
        "shard 2 is a copy of shard 0",
    );
    let noisy0 = read_range_with(&mut r0, 0..NOISE_ROWS, 50, add_noise(model(), true)).unwrap();
    let noisy2 = read_range_with(&mut r2, 0..NOISE_ROWS, 50, add_noise(model(), true)).unwrap();
    let same = noisy0
        .flux
        .iter()
        .zip(&noisy2.flux)
        .filter(|(a, b)| a == b)
        .count();
    assert!(
        same < k / 10,
        "shards 0 and 2 share {same} of {k} noisy values"
    );
    // Read as shard 0, the copy gets shard 0's noise exactly.
    let mut r2_as_0 = set.shards[2].reader(0, &noise_options()).unwrap();
    let noisy2_as_0 =
        read_range_with(&mut r2_as_0, 0..NOISE_ROWS, 9, add_noise(model(), true)).unwrap();
    assert_bits_eq(
        &noisy2_as_0.flux,
        &noisy0.flux,
        NOISE_PIXELS,
        "same data, same index, same noise",
    );
}
