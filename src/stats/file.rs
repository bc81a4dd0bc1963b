//! The statistics file (HDF5): complete statistics or a checkpoint.
//!
//! One file holds a [`StatsHeader`], one [`SuffStats`] per accumulator, the
//! gate's [`Reservoir`] and, for an unfinished pass, the [`Cursor`]. It is
//! written atomically by [`write_stats`] (temporary file, fsync, rename,
//! fsync of the directory) one accumulator at a time, and opened by
//! [`StatsFile::open`], which validates everything it can without reading
//! the big arrays; accumulators are then read one at a time.
//!
//! Every dataset that holds data (numbers and shard paths) is chunked with
//! HDF5's **Fletcher32** filter, so libhdf5 verifies a checksum on every
//! read; the file is written with the 1.10 object formats, whose superblock,
//! object headers (and so the attributes) and chunk indices carry checksums
//! of their own. A flipped byte is thus an error, or lands where nothing is
//! read (free space, padding) — never a silently different number; the
//! tests flip bytes across a whole file to pin this.
//!
//! # Format (version [`FORMAT_VERSION`])
//!
//! A = [`StatsHeader::accumulators`], P = pixels, L = P(P+1)/2, S = shards,
//! N = reservoir rows. Strings are **fixed-length** UTF-8, NUL-padded, sized
//! to their content: variable-length strings would live in libhdf5's global
//! heap, which has no checksum (a flipped byte there can crash libhdf5), while
//! fixed-length ones sit in the checksummed object headers and chunks. h5py
//! reads them as `bytes`: `f.attrs["kind"].decode()`.
//!
//! | object | type, shape | content |
//! |---|---|---|
//! | `/` attr `format` | string | `"gramstream.stats"` |
//! | `/` attr `format_version` | u32 | [`FORMAT_VERSION`]; a larger one is refused ("written by a newer gramstream") |
//! | `/` attr `kind` | string | `"statistics"` (complete) or `"checkpoint"` (unfinished pass, has `/cursor`) |
//! | `/` attr `pixels` | u64 | P |
//! | `/` attr `accumulators` | u64 | A |
//! | `/` attr `rows`, `skipped` | u64 | rows accumulated, rows skipped |
//! | `/` attr `noise_level`, `seed` | f64, u64 | the noise model |
//! | `/` attr `folds` | u64 | folds |
//! | `/` attr `mode` | string | `"cells"` or `"per_bin"` ([`Mode`]) |
//! | `/` attr `precision` | string | `"mixed"` when block products were f32 ([`super::Precision`]); absent for f64 (the default, and every file written before the option) |
//! | `/` attr `partitions` | string | the [`PartitionSet`] as JSON (names, edges, bin names, folds) |
//! | `/` attr `layout` | string | the shards' [`Layout`] as JSON |
//! | `/` attr `shift_y` | f64 | y₀ |
//! | `/` attr `created_by` | string | `"gramstream <version>"` |
//! | `/` attr `header_json` | string | the [`StatsHeader`] as JSON **without** `shift_x` and `shards` (which are the datasets below); the source of truth, the plain attributes must agree with it |
//! | `/shift_x` | f64 (P,) | x₀ |
//! | `/shards/path` | string (S,) | shard paths (canonical when written), fixed width = the longest |
//! | `/shards/rows`, `bytes`, `index` | u64 (S,) | rows, file size, shard index (noise and fold stream number) |
//! | `/shards/mtime_ns` | i64 (S,) | modification time, ns since the epoch (0 = unknown) |
//! | `/accumulators/n` | u64 (A,) | rows of each accumulator |
//! | `/accumulators/sum_y`, `sum_yy` | f64 (A,) | Σ(y−y₀), Σ(y−y₀)² |
//! | `/accumulators/sum_x`, `xty` | f64 (A, P) | Σ(x−x₀), Σ(x−x₀)(y−y₀); chunks (1, P) |
//! | `/accumulators/xtx` | f64 (A, L) | Σ(x−x₀)(x−x₀)ᵀ **packed lower triangle, row-major**: (i, j), i ≥ j, at i(i+1)/2 + j; chunks (1, min(L, 131072)): 1 MiB |
//! | `/reservoir` attrs `capacity`, `pixels` | u64 | maximum rows kept; pixels per row (P, or 0 for an empty sample) |
//! | `/reservoir/keys` | u64 (N,) | priority keys, ascending |
//! | `/reservoir/origin` | u64 (N, 2) | (shard index, row) |
//! | `/reservoir/x` | f64 (N, P) | noisy flux |
//! | `/reservoir/params` | f64 (N, 4) | T_eff, [M/H], log g, SNR |
//! | `/cursor` attrs `source`, `row`, `block_rows` | u64 | checkpoint only: next shard position, next row, staging block |
//! | `/cursor` attr `range_rows` | u64 | checkpoint of a ranged pass only (`--range-rows`, MPI): the range size; absent for the ordinary pass |
//! | `/cursor/staged_x_<a>`, `staged_y_<a>` | f64 (s, P), (s,) | checkpoint only: the s > 0 staged (shifted) rows of accumulator a; absent when s = 0 |
//!
//! Invariants checked on open: Σ n (plus the staged rows of a checkpoint)
//! equals `rows` in [`Mode::Cells`] and `rows` × partitions in
//! [`Mode::PerBin`] (each partition's slots hold every row once); shard
//! indices are unique; for complete statistics `rows + skipped` ≤ Σ shard rows;
//! staged rows per accumulator < `block_rows`; the shift and Σy, Σy² are
//! finite. Each accumulator's Σx, Xᵀy and XᵀX are checked finite when it is
//! read ([`StatsFile::accumulator`]), the gate sample's flux and labels when
//! it is read (the SNR may be infinite: a zero error), a checkpoint's staged
//! rows likewise: an overflow in the pass never reaches a solver unnamed.
//!
//! In Python: `xtx = f["accumulators/xtx"][a]; G = np.zeros((P, P));
//! G[np.tril_indices(P)] = xtx; G = G + np.tril(G, -1).T`.

use std::path::{Path, PathBuf};

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use hdf5::{Dataset, Group};

use super::{
    packed_len, Cursor, Mode, Reservoir, ShardFingerprint, StatsHeader, SuffStats, Sums,
    FORMAT_VERSION,
};
use crate::h5check::Check;
use crate::h5write::{create_array, json, write_array, write_attr, write_str_attr, write_strings};
use crate::output::Staged;
use crate::partition::PartitionSet;
use crate::{Error, Layout, Result};

/// The value of the root attribute `format`.
pub(crate) const FORMAT_NAME: &str = "gramstream.stats";
const KIND_STATS: &str = "statistics";
const KIND_CHECKPOINT: &str = "checkpoint";
const CREATED_BY: &str = concat!("gramstream ", env!("CARGO_PKG_VERSION"));
const PACKING: &str = "lower triangle, row-major: (i, j), i >= j, at i*(i+1)/2 + j";

/// Writes a complete statistics file atomically: to `<path>.tmp` in the same
/// directory, fsync, rename over `path`, fsync the directory. On any error the
/// temporary file is removed and `path` is untouched.
///
/// `accumulators` must yield exactly [`StatsHeader::accumulators`] items in
/// accumulator order; each is written and dropped before the next is asked
/// for, so memory stays at about one accumulator. A `cursor` of `Some` marks
/// the file as a checkpoint (its `staged` holds one entry per accumulator);
/// `None` marks complete statistics.
pub fn write_stats<'a>(
    path: &Path,
    header: &StatsHeader,
    accumulators: &mut dyn Iterator<Item = Result<Sums<'a>>>,
    reservoir: &Reservoir,
    cursor: Option<&Cursor>,
) -> Result<()> {
    check_for_write(header, reservoir, cursor)?;
    let staged = Staged::file(path)?;
    write_file(staged.path(), path, header, accumulators, reservoir, cursor)?;
    staged.commit()
}

/// Consistency of what the caller hands in (before anything is created).
fn check_for_write(
    header: &StatsHeader,
    reservoir: &Reservoir,
    cursor: Option<&Cursor>,
) -> Result<()> {
    let p = header.pixels;
    let bad = |what: &str, expected: String, found: String| {
        Err(Error::shape(
            format!("writing statistics: {what}"),
            expected,
            found,
        ))
    };
    if p == 0 {
        return bad("pixels", "at least 1".into(), "0".into());
    }
    if header.shift_x.len() != p {
        return bad(
            "shift_x",
            format!("{p} values"),
            header.shift_x.len().to_string(),
        );
    }
    if !header.shift_y.is_finite() || header.shift_x.iter().any(|v| !v.is_finite()) {
        return bad(
            "the shift",
            "finite values".into(),
            "a non-finite value".into(),
        );
    }
    let n = reservoir.keys.len();
    if reservoir.origin.len() != n
        || reservoir.params.len() != n
        || reservoir.x.len() != n * reservoir.pixels
        || n > reservoir.capacity
        || !(reservoir.pixels == p || (n == 0 && reservoir.pixels == 0))
        || reservoir.keys.windows(2).any(|w| w[0] > w[1])
    {
        return bad(
            "the reservoir",
            format!(
                "{n} origins, params and rows of {p} pixels, at most {} rows, keys ascending",
                reservoir.capacity
            ),
            format!(
                "{n} keys, {} origins, {} params, {} values of {} pixels",
                reservoir.origin.len(),
                reservoir.params.len(),
                reservoir.x.len(),
                reservoir.pixels
            ),
        );
    }
    if let Some(c) = cursor {
        let a = header.accumulators();
        if c.staged.len() != a {
            return bad(
                "the cursor",
                format!("staged rows for {a} accumulators"),
                format!("{}", c.staged.len()),
            );
        }
        for (i, (x, y)) in c.staged.iter().enumerate() {
            if x.len() != y.len() * p || y.len() >= c.block_rows.max(1) {
                return bad(
                    &format!("the cursor's accumulator {i}"),
                    format!(
                        "fewer staged rows than a block of {}, of {p} values each",
                        c.block_rows
                    ),
                    format!("{} staged values for {} staged rows", x.len(), y.len()),
                );
            }
        }
    }
    Ok(())
}

fn header_json(header: &StatsHeader) -> Result<String> {
    let mut v = serde_json::to_value(header).map_err(|source| Error::Json {
        what: "statistics header".into(),
        source,
    })?;
    if let Some(o) = v.as_object_mut() {
        o.remove("shift_x");
        o.remove("shards");
    }
    Ok(v.to_string())
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Cells => "cells",
        Mode::PerBin => "per_bin",
    }
}

fn write_file<'a>(
    tmp: &Path,
    path: &Path,
    header: &StatsHeader,
    accumulators: &mut dyn Iterator<Item = Result<Sums<'a>>>,
    reservoir: &Reservoir,
    cursor: Option<&Cursor>,
) -> Result<()> {
    let file = hdf5::File::with_options()
        .with_fapl(|f| f.libver_v110())
        .create(tmp)
        .map_err(|e| Error::hdf5(tmp, "creating", e))?;
    let root: &Group = &file;
    write_root_attrs(root, path, header, cursor.is_some())?;
    write_array(root, path, "shift_x", &[header.pixels], &header.shift_x)?;
    write_shards(root, path, &header.shards)?;
    write_accumulators(root, path, header, accumulators)?;
    write_reservoir(root, path, reservoir)?;
    if let Some(c) = cursor {
        write_cursor(root, path, c, header.pixels)?;
    }
    file.close().map_err(|e| Error::hdf5(tmp, "closing", e))
}

/// The root's attributes: the format, the header as JSON, and the same
/// values as plain attributes for h5py users (checked against the JSON on
/// open).
fn write_root_attrs(
    loc: &hdf5::Location,
    path: &Path,
    header: &StatsHeader,
    checkpoint: bool,
) -> Result<()> {
    write_str_attr(loc, path, "format", FORMAT_NAME)?;
    write_attr(loc, path, "format_version", FORMAT_VERSION)?;
    let kind = if checkpoint {
        KIND_CHECKPOINT
    } else {
        KIND_STATS
    };
    write_str_attr(loc, path, "kind", kind)?;
    write_attr(loc, path, "pixels", header.pixels as u64)?;
    write_attr(loc, path, "accumulators", header.accumulators() as u64)?;
    write_attr(loc, path, "rows", header.rows)?;
    write_attr(loc, path, "skipped", header.skipped)?;
    write_attr(loc, path, "noise_level", header.noise.level)?;
    write_attr(loc, path, "seed", header.noise.seed)?;
    write_attr(loc, path, "folds", header.partitions.folds as u64)?;
    write_str_attr(loc, path, "mode", mode_name(header.mode))?;
    if !header.precision.is_f64() {
        write_str_attr(loc, path, "precision", header.precision.name())?;
    }
    let partitions = json("partitions", &header.partitions)?;
    write_str_attr(loc, path, "partitions", &partitions)?;
    write_str_attr(loc, path, "layout", &json("layout", &header.layout)?)?;
    write_attr(loc, path, "shift_y", header.shift_y)?;
    write_str_attr(loc, path, "created_by", CREATED_BY)?;
    write_str_attr(loc, path, "header_json", &header_json(header)?)
}

/// `/shards`: one column per fingerprint field.
fn write_shards(root: &Group, path: &Path, fingerprints: &[ShardFingerprint]) -> Result<()> {
    let shards = root
        .create_group("shards")
        .map_err(|e| Error::hdf5(path, "creating /shards", e))?;
    let s = fingerprints.len();
    let paths: Vec<&str> = fingerprints.iter().map(|f| f.path.as_str()).collect();
    write_strings(&shards, path, "path", "/shards/path", &paths)?;
    let col = |f: fn(&ShardFingerprint) -> u64| fingerprints.iter().map(f).collect::<Vec<u64>>();
    write_array(&shards, path, "rows", &[s], &col(|f| f.rows))?;
    write_array(&shards, path, "bytes", &[s], &col(|f| f.bytes))?;
    write_array(&shards, path, "index", &[s], &col(|f| f.index))?;
    let mtime: Vec<i64> = fingerprints.iter().map(|f| f.mtime_ns).collect();
    write_array(&shards, path, "mtime_ns", &[s], &mtime)?;
    Ok(())
}

/// `/accumulators`, one accumulator at a time as the iterator finishes
/// them (memory does not double); exactly the header's count, each of P.
fn write_accumulators<'a>(
    root: &Group,
    path: &Path,
    header: &StatsHeader,
    accumulators: &mut dyn Iterator<Item = Result<Sums<'a>>>,
) -> Result<()> {
    let p = header.pixels;
    let a_count = header.accumulators();
    let l = packed_len(p);
    let acc = root
        .create_group("accumulators")
        .map_err(|e| Error::hdf5(path, "creating /accumulators", e))?;
    let sum_x = create_array::<f64>(&acc, path, "sum_x", &[a_count, p], &[1, p])?;
    let xty = create_array::<f64>(&acc, path, "xty", &[a_count, p], &[1, p])?;
    // 1 MiB chunks, as elsewhere: one chunk per accumulator (67 MB at P =
    // 4096) made libhdf5 allocate, fault in and copy a chunk-sized buffer
    // per accumulator on every write and read.
    let xtx_chunk = (crate::h5write::CHUNK_BYTES / 8).min(l);
    let xtx = create_array::<f64>(&acc, path, "xtx", &[a_count, l], &[1, xtx_chunk])?;
    write_str_attr(&xtx, path, "packing", PACKING)?;
    let mut buffers: Option<[Vec<f64>; 2]> = None;
    let (mut n, mut sum_y, mut sum_yy) = (
        Vec::with_capacity(a_count),
        Vec::with_capacity(a_count),
        Vec::with_capacity(a_count),
    );
    for a in 0..a_count {
        let st = match accumulators.next() {
            Some(r) => r?,
            None => {
                return Err(Error::shape(
                    format!("writing {}: accumulators", path.display()),
                    a_count,
                    a,
                ))
            }
        };
        if st.p() != p || st.sum_x().len() != p || st.xty().len() != p || st.xtx_len() != l {
            return Err(Error::shape(
                format!("writing {}: accumulator {a}", path.display()),
                format!("p = {p} ({p} + {p} + {l} values)"),
                format!(
                    "p = {} ({} + {} + {} values)",
                    st.p(),
                    st.sum_x().len(),
                    st.xty().len(),
                    st.xtx_len()
                ),
            ));
        }
        let write = |ds: &Dataset, name: &str, v: &[f64], at: usize| {
            ds.write_slice(v, (a, at..at + v.len()))
                .map_err(|e| Error::hdf5(path, format!("writing /accumulators/{name} row {a}"), e))
        };
        write(&sum_x, "sum_x", st.sum_x(), 0)?;
        write(&xty, "xty", st.xty(), 0)?;
        match st.packed_xtx() {
            Some(x) => write(&xtx, "xtx", x, 0)?,
            None => {
                // Whole chunks at a time, the next slice packed on another
                // thread while libhdf5 takes this one (two buffers, reused).
                let step = (8 * xtx_chunk).min(l);
                let [now, next] = buffers.get_or_insert_with(|| [vec![0.0; step], vec![0.0; step]]);
                st.xtx_range(0, &mut now[..step]);
                for at in (0..l).step_by(step) {
                    let (len, after) = (step.min(l - at), at + step);
                    let (written, ()) = rayon::join(
                        || write(&xtx, "xtx", &now[..len], at),
                        || {
                            if after < l {
                                st.xtx_range(after, &mut next[..step.min(l - after)]);
                            }
                        },
                    );
                    written?;
                    std::mem::swap(now, next);
                }
            }
        }
        n.push(st.n());
        sum_y.push(st.sum_y());
        sum_yy.push(st.sum_yy());
    }
    if accumulators.next().is_some() {
        return Err(Error::shape(
            format!("writing {}: accumulators", path.display()),
            a_count,
            format!("more than {a_count}"),
        ));
    }
    write_array(&acc, path, "n", &[a_count], &n)?;
    write_array(&acc, path, "sum_y", &[a_count], &sum_y)?;
    write_array(&acc, path, "sum_yy", &[a_count], &sum_yy)?;
    Ok(())
}

/// `/reservoir`: the gate sample's keys, origins, spectra and params.
fn write_reservoir(root: &Group, path: &Path, reservoir: &Reservoir) -> Result<()> {
    let res = root
        .create_group("reservoir")
        .map_err(|e| Error::hdf5(path, "creating /reservoir", e))?;
    write_attr(&res, path, "capacity", reservoir.capacity as u64)?;
    write_attr(&res, path, "pixels", reservoir.pixels as u64)?;
    let rn = reservoir.len();
    write_array(&res, path, "keys", &[rn], &reservoir.keys)?;
    let origin: Vec<u64> = reservoir.origin.iter().flat_map(|&(s, r)| [s, r]).collect();
    write_array(&res, path, "origin", &[rn, 2], &origin)?;
    write_array(&res, path, "x", &[rn, reservoir.pixels], &reservoir.x)?;
    let params: Vec<f64> = reservoir.params.iter().flatten().copied().collect();
    write_array(&res, path, "params", &[rn, 4], &params)?;
    Ok(())
}

/// `/cursor` of a checkpoint: where the pass resumes, and each
/// accumulator's rows staged but not yet in its sums.
fn write_cursor(root: &Group, path: &Path, c: &Cursor, p: usize) -> Result<()> {
    let g = root
        .create_group("cursor")
        .map_err(|e| Error::hdf5(path, "creating /cursor", e))?;
    write_attr(&g, path, "source", c.source as u64)?;
    write_attr(&g, path, "row", c.row as u64)?;
    write_attr(&g, path, "block_rows", c.block_rows as u64)?;
    if c.range_rows > 0 {
        write_attr(&g, path, "range_rows", c.range_rows as u64)?;
    }
    for (a, (x, y)) in c.staged.iter().enumerate() {
        if !y.is_empty() {
            write_array(&g, path, &format!("staged_x_{a}"), &[y.len(), p], x)?;
            write_array(&g, path, &format!("staged_y_{a}"), &[y.len()], y)?;
        }
    }
    Ok(())
}

/// An opened, validated statistics file; accumulators are read lazily.
#[derive(Debug)]
pub struct StatsFile {
    path: PathBuf,
    header: StatsHeader,
    checkpoint: bool,
    arrays: AccumulatorArrays,
    file: hdf5::File,
}

const F64: TypeDescriptor = TypeDescriptor::Float(FloatSize::U8);
const U64: TypeDescriptor = TypeDescriptor::Unsigned(IntSize::U8);
const I64: TypeDescriptor = TypeDescriptor::Integer(IntSize::U8);

/// (i, j), i ≥ j, of position `k` in a packed lower triangle (row-major).
fn unpack(k: usize) -> (usize, usize) {
    let mut i = (((8.0 * k as f64 + 1.0).sqrt() - 1.0) / 2.0) as usize;
    while i * (i + 1) / 2 > k {
        i -= 1;
    }
    while (i + 1) * (i + 2) / 2 <= k {
        i += 1;
    }
    (i, k - i * (i + 1) / 2)
}

/// Number of accumulators of a header without overflow.
fn accumulators_checked(set: &PartitionSet, mode: Mode) -> Option<usize> {
    let mut slots = set.partitions.iter().map(|p| p.slots());
    let base = match mode {
        Mode::Cells => slots.try_fold(1usize, |a, s| a.checked_mul(s))?,
        Mode::PerBin => slots.try_fold(0usize, |a, s| a.checked_add(s))?,
    };
    base.checked_mul(set.folds)
}

/// `/ attribute kind`: complete statistics or a checkpoint.
fn read_kind(ck: &Check<'_>, root: &Group) -> Result<bool> {
    match ck.str_attr(root, "/", "kind")?.as_str() {
        KIND_STATS => Ok(false),
        KIND_CHECKPOINT => Ok(true),
        other => Err(ck.bad(
            "/ attribute kind",
            format!("{KIND_STATS:?} or {KIND_CHECKPOINT:?}"),
            format!("{other:?}"),
        )),
    }
}

/// The header from `header_json` (without `shift_x` and the shards, which
/// are datasets and are read after the shapes are known).
fn read_header(ck: &Check<'_>, root: &Group) -> Result<StatsHeader> {
    let hj = ck.str_attr(root, "/", "header_json")?;
    let not_header = |e: serde_json::Error| {
        ck.bad(
            "/ attribute header_json",
            "a statistics header as JSON",
            e.to_string(),
        )
    };
    let mut value: serde_json::Value = serde_json::from_str(&hj).map_err(not_header)?;
    let obj = value.as_object_mut().ok_or_else(|| {
        ck.bad(
            "/ attribute header_json",
            "a JSON object",
            "another JSON value",
        )
    })?;
    obj.insert("shift_x".into(), serde_json::Value::Array(Vec::new()));
    obj.insert("shards".into(), serde_json::Value::Array(Vec::new()));
    serde_json::from_value(value).map_err(not_header)
}

/// The plain root attributes (written for h5py users) must agree with the
/// header, and the partitions must be valid; returns the accumulator count.
fn attributes_agree(ck: &Check<'_>, root: &Group, header: &StatsHeader) -> Result<usize> {
    let agree = |name: &str, ok: bool, want: String, found: String| -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(ck.bad(
                &format!("/ attribute {name}"),
                format!("{want} (as in header_json)"),
                found,
            ))
        }
    };
    let count = |name: &str, want: u64| -> Result<()> {
        let v = ck.num_attr::<u64>(root, "/", name)?;
        agree(name, v == want, want.to_string(), v.to_string())
    };
    let real = |name: &str, want: f64| -> Result<()> {
        let v = ck.num_attr::<f64>(root, "/", name)?;
        agree(
            name,
            v.to_bits() == want.to_bits(),
            want.to_string(),
            v.to_string(),
        )
    };
    let p = header.pixels;
    count("pixels", p as u64)?;
    if p == 0 {
        return Err(ck.bad("/ attribute pixels", "at least 1", "0"));
    }
    count("rows", header.rows)?;
    count("skipped", header.skipped)?;
    real("noise_level", header.noise.level)?;
    count("seed", header.noise.seed)?;
    count("folds", header.partitions.folds as u64)?;
    let v = ck.str_attr(root, "/", "mode")?;
    agree(
        "mode",
        v == mode_name(header.mode),
        mode_name(header.mode).into(),
        format!("{v:?}"),
    )?;
    let has_precision = root
        .attr_names()
        .map_err(|e| Error::hdf5(ck.path, "reading the root group's attributes", e))?
        .iter()
        .any(|n| n == "precision");
    let v = if has_precision {
        ck.str_attr(root, "/", "precision")?
    } else {
        "f64".into()
    };
    agree(
        "precision",
        v == header.precision.name(),
        header.precision.name().into(),
        format!("{v:?}"),
    )?;
    let v = ck.str_attr(root, "/", "partitions")?;
    let parts: PartitionSet = serde_json::from_str(&v).map_err(|e| {
        ck.bad(
            "/ attribute partitions",
            "partitions as JSON",
            e.to_string(),
        )
    })?;
    agree(
        "partitions",
        parts == header.partitions,
        "the same partitions".into(),
        v,
    )?;
    PartitionSet::new(parts.partitions.clone(), parts.folds)
        .map_err(|e| ck.bad("/ attribute partitions", "valid partitions", e.to_string()))?;
    let v = ck.str_attr(root, "/", "layout")?;
    let layout: Layout = serde_json::from_str(&v)
        .map_err(|e| ck.bad("/ attribute layout", "a layout as JSON", e.to_string()))?;
    agree(
        "layout",
        layout == header.layout,
        "the same layout".into(),
        v,
    )?;
    real("shift_y", header.shift_y)?;
    let a_count = accumulators_checked(&header.partitions, header.mode).ok_or_else(|| {
        ck.bad(
            "/ attribute partitions",
            "a countable number of accumulators",
            "an overflow",
        )
    })?;
    count("accumulators", a_count as u64)?;
    Ok(a_count)
}

/// `/shift_x` (P values), and the shift finite.
fn read_shift(ck: &Check<'_>, root: &Group, header: &StatsHeader) -> Result<Vec<f64>> {
    let ds = ck.dataset(root, "/shift_x", &F64, &[header.pixels])?;
    let shift_x: Vec<f64> = ck.read(&ds, "/shift_x")?;
    ck.finite("/shift_x", &shift_x, |i| format!("pixel {i}"))?;
    ck.finite("/ attribute shift_y", &[header.shift_y], |_| "y₀".into())?;
    Ok(shift_x)
}

/// The shard table: one fingerprint per shard, unique indices, and (for
/// complete statistics) at least the rows the header counts.
fn read_shards(
    ck: &Check<'_>,
    root: &Group,
    header: &StatsHeader,
    checkpoint: bool,
) -> Result<Vec<ShardFingerprint>> {
    let paths = ck.strings(root, "/shards/path", None)?;
    let s = paths.len();
    let read_u64 = |name: &str| -> Result<Vec<u64>> {
        let ds = ck.dataset(root, name, &U64, &[s])?;
        ck.read(&ds, name)
    };
    let rows = read_u64("/shards/rows")?;
    let bytes = read_u64("/shards/bytes")?;
    let index = read_u64("/shards/index")?;
    let ds = ck.dataset(root, "/shards/mtime_ns", &I64, &[s])?;
    let mtime: Vec<i64> = ck.read(&ds, "/shards/mtime_ns")?;
    let mut sorted = index.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(ck.bad(
            "/shards/index",
            "unique shard indices",
            format!("index {} twice", w[0]),
        ));
    }
    let shard_rows = rows.iter().try_fold(0u64, |a, &r| a.checked_add(r));
    let counted = u128::from(header.rows) + u128::from(header.skipped);
    if !checkpoint && shard_rows.is_none_or(|t| counted > u128::from(t)) {
        return Err(ck.bad(
            "/shards/rows",
            format!("at least rows + skipped = {counted} rows in all"),
            format!("{shard_rows:?}"),
        ));
    }
    Ok((0..s)
        .map(|i| ShardFingerprint {
            path: paths[i].clone(),
            rows: rows[i],
            bytes: bytes[i],
            mtime_ns: mtime[i],
            index: index[i],
        })
        .collect())
}

/// The accumulators' arrays: the per-accumulator scalars read (and
/// finite), the P- and P²-sized rows only opened, read one accumulator at
/// a time by [`StatsFile::accumulator`].
#[derive(Debug)]
struct AccumulatorArrays {
    n: Vec<u64>,
    sum_y: Vec<f64>,
    sum_yy: Vec<f64>,
    sum_x: Dataset,
    xty: Dataset,
    xtx: Dataset,
}

fn open_accumulators(
    ck: &Check<'_>,
    root: &Group,
    p: usize,
    a_count: usize,
) -> Result<AccumulatorArrays> {
    let n = ck.read_checked(root, "/accumulators/n", &U64, &[a_count])?;
    let sum_y: Vec<f64> = ck.read_checked(root, "/accumulators/sum_y", &F64, &[a_count])?;
    let sum_yy: Vec<f64> = ck.read_checked(root, "/accumulators/sum_yy", &F64, &[a_count])?;
    let accumulator = |a: usize| format!("accumulator {a}");
    ck.finite("/accumulators/sum_y", &sum_y, accumulator)?;
    ck.finite("/accumulators/sum_yy", &sum_yy, accumulator)?;
    Ok(AccumulatorArrays {
        n,
        sum_y,
        sum_yy,
        sum_x: ck.dataset(root, "/accumulators/sum_x", &F64, &[a_count, p])?,
        xty: ck.dataset(root, "/accumulators/xty", &F64, &[a_count, p])?,
        xtx: ck.dataset(root, "/accumulators/xtx", &F64, &[a_count, packed_len(p)])?,
    })
}

/// The reservoir's shapes (its values are read by [`StatsFile::reservoir`]):
/// at most `capacity` rows of P pixels (0 pixels when empty).
fn check_reservoir(ck: &Check<'_>, root: &Group, p: usize) -> Result<()> {
    let res = root.group("reservoir").map_err(|_| Error::MissingDataset {
        path: ck.path.to_path_buf(),
        dataset: "/reservoir".into(),
        found: String::new(),
    })?;
    let capacity = ck.usize_attr(&res, "/reservoir", "capacity")?;
    let rp = ck.usize_attr(&res, "/reservoir", "pixels")?;
    let (_, rn) = ck.dataset_rows(root, "/reservoir/keys", &U64, &[])?;
    if rn > capacity {
        return Err(ck.bad(
            "/reservoir/keys",
            format!("at most capacity = {capacity} rows"),
            rn.to_string(),
        ));
    }
    if !(rp == p || (rn == 0 && rp == 0)) {
        return Err(ck.bad(
            "/reservoir attribute pixels",
            format!("{p}"),
            rp.to_string(),
        ));
    }
    ck.dataset(root, "/reservoir/origin", &U64, &[rn, 2])?;
    ck.dataset(root, "/reservoir/x", &F64, &[rn, rp])?;
    ck.dataset(root, "/reservoir/params", &F64, &[rn, 4])?;
    Ok(())
}

/// A checkpoint has a cursor and complete statistics none; the cursor's
/// attributes, and each accumulator's staged rows (x and y both or
/// neither, fewer than a block). Returns how many rows are staged in all.
fn check_cursor(
    ck: &Check<'_>,
    root: &Group,
    checkpoint: bool,
    a_count: usize,
    p: usize,
) -> Result<u128> {
    let has_cursor = root.link_exists("cursor");
    if has_cursor != checkpoint {
        return Err(ck.bad(
            "/cursor",
            if checkpoint {
                "a cursor (the file is a checkpoint)"
            } else {
                "no cursor (complete statistics)"
            },
            if has_cursor { "a cursor" } else { "none" },
        ));
    }
    if !checkpoint {
        return Ok(0);
    }
    let g = root
        .group("cursor")
        .map_err(|e| Error::hdf5(ck.path, "opening /cursor", e))?;
    let block = ck.usize_attr(&g, "/cursor", "block_rows")?;
    ck.usize_attr(&g, "/cursor", "source")?;
    ck.usize_attr(&g, "/cursor", "row")?;
    let mut staged_total = 0u128;
    for a in 0..a_count {
        let (xn, yn) = (
            format!("/cursor/staged_x_{a}"),
            format!("/cursor/staged_y_{a}"),
        );
        match (root.link_exists(&xn), root.link_exists(&yn)) {
            (false, false) => {}
            (true, true) => {
                let (_, s) = ck.dataset_rows(root, &yn, &F64, &[])?;
                ck.dataset(root, &xn, &F64, &[s, p])?;
                if s == 0 || s >= block.max(1) {
                    return Err(ck.bad(
                        &yn,
                        format!("1…{} staged rows (block_rows − 1)", block.max(1) - 1),
                        s.to_string(),
                    ));
                }
                staged_total += s as u128;
            }
            (x, _) => {
                return Err(Error::MissingDataset {
                    path: ck.path.to_path_buf(),
                    dataset: if x { yn } else { xn },
                    found: String::new(),
                })
            }
        }
    }
    Ok(staged_total)
}

/// The accumulators' rows (with a checkpoint's staged rows) add up to the
/// header's rows, once per partition in per-bin mode.
fn check_row_total(
    ck: &Check<'_>,
    header: &StatsHeader,
    checkpoint: bool,
    n: &[u64],
    staged: u128,
) -> Result<()> {
    let per_row: u128 = match header.mode {
        Mode::Cells => 1,
        Mode::PerBin => header.partitions.partitions.len() as u128,
    };
    let total: u128 = n.iter().map(|&v| u128::from(v)).sum::<u128>() + staged;
    let want = u128::from(header.rows) * per_row;
    if total == want {
        return Ok(());
    }
    Err(ck.bad(
        "/accumulators/n",
        format!(
            "rows{} summing to {want} (rows = {}{})",
            if checkpoint {
                " (with the staged rows)"
            } else {
                ""
            },
            header.rows,
            if per_row > 1 {
                format!(" × {per_row} partitions")
            } else {
                String::new()
            }
        ),
        format!("a sum of {total}"),
    ))
}

impl StatsFile {
    /// Opens and validates a statistics file or checkpoint: format and
    /// version, kind, the header against the plain attributes, partitions,
    /// every array's type, shape and checksum filter, the shard table, and
    /// that the accumulators' rows add up to the header's.
    pub fn open(path: &Path) -> Result<Self> {
        let ck = Check { path };
        let file = ck.open(FORMAT_NAME, "a gramstream statistics file", FORMAT_VERSION)?;
        let root: &Group = &file;
        let checkpoint = read_kind(&ck, root)?;
        let mut header = read_header(&ck, root)?;
        let a_count = attributes_agree(&ck, root, &header)?;
        header.shift_x = read_shift(&ck, root, &header)?;
        header.shards = read_shards(&ck, root, &header, checkpoint)?;
        let arrays = open_accumulators(&ck, root, header.pixels, a_count)?;
        check_reservoir(&ck, root, header.pixels)?;
        let staged = check_cursor(&ck, root, checkpoint, a_count, header.pixels)?;
        check_row_total(&ck, &header, checkpoint, &arrays.n, staged)?;
        Ok(StatsFile {
            path: path.to_path_buf(),
            header,
            checkpoint,
            arrays,
            file,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header (configuration, provenance, shift).
    pub fn header(&self) -> &StatsHeader {
        &self.header
    }

    /// Refuses a checkpoint: its sums cover only the rows read before it was
    /// written, so a model or a merge from them would be silently partial.
    pub fn require_complete(&self) -> Result<()> {
        if self.is_checkpoint() {
            return Err(Error::Unfinished {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Whether the file is a checkpoint of an unfinished pass.
    pub fn is_checkpoint(&self) -> bool {
        self.checkpoint
    }

    /// Reads accumulator `a` (checksums verified by libhdf5); a non-finite
    /// value is an error naming the dataset, the accumulator and the element.
    pub fn accumulator(&self, a: usize) -> Result<SuffStats> {
        let count = self.arrays.n.len();
        if a >= count {
            return Err(Error::shape(
                format!("{}: accumulator index", self.path.display()),
                format!("< {count}"),
                a,
            ));
        }
        let p = self.header.pixels;
        let row = |ds: &Dataset, name: &str, len: usize| -> Result<Vec<f64>> {
            let mut v = vec![0.0; len];
            crate::h5raw::read_rows_into(ds, a..a + 1, len, &mut v).map_err(|e| {
                Error::hdf5(
                    &self.path,
                    format!("reading /accumulators/{name} row {a}"),
                    e,
                )
            })?;
            Ok(v)
        };
        let ck = Check { path: &self.path };
        let pixel = |i: usize| format!("accumulator {a}, pixel {i}");
        let sum_x = row(&self.arrays.sum_x, "sum_x", p)?;
        ck.finite("/accumulators/sum_x", &sum_x, pixel)?;
        let xty = row(&self.arrays.xty, "xty", p)?;
        ck.finite("/accumulators/xty", &xty, pixel)?;
        let xtx = row(&self.arrays.xtx, "xtx", packed_len(p))?;
        ck.finite("/accumulators/xtx", &xtx, |k| {
            let (i, j) = unpack(k);
            format!("accumulator {a}, element {k} (pixels {i}, {j})")
        })?;
        Ok(SuffStats {
            p,
            n: self.arrays.n[a],
            sum_x,
            sum_y: self.arrays.sum_y[a],
            sum_yy: self.arrays.sum_yy[a],
            xty,
            xtx,
        })
    }

    /// Reads the reservoir sample.
    pub fn reservoir(&self) -> Result<Reservoir> {
        let ck = Check { path: &self.path };
        let root: &Group = &self.file;
        let res = root
            .group("reservoir")
            .map_err(|e| Error::hdf5(&self.path, "opening /reservoir", e))?;
        let capacity = ck.usize_attr(&res, "/reservoir", "capacity")?;
        let pixels = ck.usize_attr(&res, "/reservoir", "pixels")?;
        let (ds, n) = ck.dataset_rows(root, "/reservoir/keys", &U64, &[])?;
        let keys: Vec<u64> = ck.read(&ds, "/reservoir/keys")?;
        if keys.windows(2).any(|w| w[0] > w[1]) {
            return Err(ck.bad("/reservoir/keys", "ascending keys", "keys out of order"));
        }
        let ds = ck.dataset(root, "/reservoir/origin", &U64, &[n, 2])?;
        let origin: Vec<u64> = ck.read(&ds, "/reservoir/origin")?;
        let ds = ck.dataset(root, "/reservoir/x", &F64, &[n, pixels])?;
        let x: Vec<f64> = ck.read(&ds, "/reservoir/x")?;
        let ds = ck.dataset(root, "/reservoir/params", &F64, &[n, 4])?;
        let params: Vec<f64> = ck.read(&ds, "/reservoir/params")?;
        if pixels > 0 {
            ck.finite("/reservoir/x", &x, |i| {
                format!("row {}, pixel {}", i / pixels, i % pixels)
            })?;
        }
        // T_eff, [M/H] and log g must be finite; the SNR may be infinite (zero error).
        let labels: Vec<f64> = params
            .chunks_exact(4)
            .flat_map(|c| [c[0], c[1], c[2]])
            .collect();
        ck.finite("/reservoir/params", &labels, |i| {
            format!("row {}, column {}", i / 3, ["T_eff", "M_H", "log_g"][i % 3])
        })?;
        Ok(Reservoir {
            capacity,
            pixels,
            keys,
            origin: origin.chunks_exact(2).map(|c| (c[0], c[1])).collect(),
            x,
            params: params
                .chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect(),
        })
    }

    /// Reads the cursor of a checkpoint (`None` for complete statistics).
    pub fn cursor(&self) -> Result<Option<Cursor>> {
        if !self.checkpoint {
            return Ok(None);
        }
        let ck = Check { path: &self.path };
        let root: &Group = &self.file;
        let g = root
            .group("cursor")
            .map_err(|e| Error::hdf5(&self.path, "opening /cursor", e))?;
        let p = self.header.pixels;
        let mut staged = Vec::with_capacity(self.arrays.n.len());
        for a in 0..self.arrays.n.len() {
            let (xn, yn) = (
                format!("/cursor/staged_x_{a}"),
                format!("/cursor/staged_y_{a}"),
            );
            if root.link_exists(&yn) {
                let (ds, s) = ck.dataset_rows(root, &yn, &F64, &[])?;
                let y: Vec<f64> = ck.read(&ds, &yn)?;
                let ds = ck.dataset(root, &xn, &F64, &[s, p])?;
                let x: Vec<f64> = ck.read(&ds, &xn)?;
                ck.finite(&yn, &y, |i| format!("staged row {i}"))?;
                ck.finite(&xn, &x, |i| {
                    format!("staged row {}, pixel {}", i / p, i % p)
                })?;
                staged.push((x, y));
            } else {
                staged.push((Vec::new(), Vec::new()));
            }
        }
        Ok(Some(Cursor {
            source: ck.usize_attr(&g, "/cursor", "source")?,
            row: ck.usize_attr(&g, "/cursor", "row")?,
            staged,
            block_rows: ck.usize_attr(&g, "/cursor", "block_rows")?,
            range_rows: if g.attr("range_rows").is_ok() {
                ck.usize_attr(&g, "/cursor", "range_rows")?
            } else {
                0
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Partition;

    /// header_json is the source of truth that the plain attributes must
    /// agree with bit for bit: every f64 must parse back to its bits. With
    /// serde_json's default parser 2.9008093585545414 came back as
    /// 2.900809358554542 and a file was refused by the run that wrote it
    /// (found by the Python tests); `float_roundtrip` fixes it.
    #[test]
    fn header_json_floats_parse_back_to_their_bits() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let mut values = vec![2.9008093585545414, 0.1 + 0.2, 5e-324, f64::MAX, -1.0 / 3.0];
        values.extend(
            (0..2000)
                .map(|_| rng.random_range(-10.0..10.0) * 10f64.powi(rng.random_range(-30..30))),
        );
        for v in values {
            let header = StatsHeader {
                pixels: 1,
                noise: crate::NoiseModel {
                    level: v.abs(),
                    seed: 1,
                },
                partitions: PartitionSet::new(vec![Partition::teff_mh()], 1).unwrap(),
                mode: Mode::Cells,
                layout: crate::Layout::default(),
                shards: Vec::new(),
                shift_x: vec![v],
                shift_y: v,
                rows: 0,
                skipped: 0,
                precision: Default::default(),
            };
            let json = header_json(&header).unwrap();
            let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
            let obj = value.as_object_mut().unwrap();
            obj.insert("shift_x".into(), serde_json::Value::Array(Vec::new()));
            obj.insert("shards".into(), serde_json::Value::Array(Vec::new()));
            let back: StatsHeader = serde_json::from_value(value).unwrap();
            assert_eq!(back.shift_y.to_bits(), v.to_bits(), "{v:e}: {json}");
            assert_eq!(back.noise.level.to_bits(), v.abs().to_bits(), "{v:e}");
        }
    }

    #[test]
    fn accumulator_count_does_not_overflow() {
        let set = PartitionSet::new(vec![Partition::teff_mh(), Partition::snr()], 3).unwrap();
        assert_eq!(accumulators_checked(&set, Mode::Cells), Some(set.cells()));
        assert_eq!(
            accumulators_checked(&set, Mode::PerBin),
            Some(set.per_bin_accumulators())
        );
        let huge = PartitionSet {
            partitions: (0..40)
                .map(|i| Partition {
                    name: format!("p{i}"),
                    ..Partition::snr()
                })
                .collect(),
            folds: 64,
        };
        assert_eq!(accumulators_checked(&huge, Mode::Cells), None);
    }
}
