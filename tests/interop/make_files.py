#!/usr/bin/env python3
"""Writes shards with real writers (h5py, pandas/PyTables) for the Rust tests.

Usage: make_files.py OUTDIR

Nothing here uses gramstream. Every file is written by h5py or by
``DataFrame.to_hdf(format="table")`` the way pfsspec and users write them, and
the values the reader must return are written next to them:

* ``OUTDIR/expected.json`` — a manifest: for every good file its shape, dtype,
  storage, whether the zero-copy path must apply, the params columns and the
  names of the raw expected arrays; for every bad file the (row, column) of
  the defect the reader must report.
* ``OUTDIR/*.f64`` — expected values as raw little-endian float64 (f32 data
  already widened to f64 exactly, like the reader does), so the comparison in
  Rust is bit for bit with no decimal round trip.

The script checks its own claims (e.g. that at least one file has its flux
at an offset that is not a multiple of 8) and fails loudly if a writer
changed behaviour, rather than silently testing less.
"""

import json
import os
import pickle
import sys

import h5py
import numpy as np
import pandas as pd

N = 37  # rows: prime, so chunk sizes 1, 7, N, > N all cut differently
P = 50  # pixels

FLUX = "/dataset/arrays/flux/value"
ERROR = "/dataset/arrays/error/value"
NOISY = "/dataset/arrays/noisy/value"
PARAMS_GROUP = "dataset/params"
PARAMS = "/dataset/params/table"
WAVE = "/spectrumdataset/wave"

OUT = None
MANIFEST = {"rows": N, "pixels": P, "good": [], "bad": {}}


def raw(name, values):
    """Writes values as little-endian f64 to OUT/name and returns name."""
    np.ascontiguousarray(values, dtype="<f8").tofile(os.path.join(OUT, name))
    return name


def make_data(seed):
    rng = np.random.default_rng(seed)
    wave = np.linspace(3000.0, 9000.0, P)
    # Values with full 52-bit mantissas, so a lossy conversion anywhere shows.
    flux = rng.uniform(0.5, 2.0, size=(N, P))
    error = rng.uniform(0.01, 0.2, size=(N, P))
    noisy = np.maximum(flux + error * rng.standard_normal((N, P)), 0.0)
    params = {
        "T_eff": rng.uniform(3500.0, 6500.0, N),
        "M_H": rng.uniform(-2.5, 0.75, N),
        "log_g": rng.uniform(0.0, 5.0, N),
        "snr": rng.uniform(1.0, 60.0, N),
        "a_M": rng.uniform(-0.25, 0.5, N).astype(np.float32),
        "id": (np.arange(N, dtype=np.int64) * 1_000_003 + seed * 10**12),
        "n_lines": rng.integers(-30000, 30000, N).astype(np.int32),
    }
    return wave, flux, error, noisy, params


def structured(params, rename=None):
    rename = rename or {}
    names = list(params)
    dtype = [(rename.get(n, n), params[n].dtype) for n in names]
    table = np.empty(N, dtype=dtype)
    for n in names:
        table[rename.get(n, n)] = params[n]
    return table


def write_arrays(f, flux, error, noisy=None, dtype="<f8", **kw):
    for name, a in ((FLUX, flux), (ERROR, error), (NOISY, noisy)):
        if a is not None:
            f.create_dataset(name, data=a.astype(dtype), dtype=dtype, **kw)


def good(name, *, dtype="<f8", storage, zero_copy, params="fields", seed,
         noisy=False, rename=None, userblock=0, pad=0, kw=None):
    """Writes one good shard and records what the reader must return."""
    kw = kw or {}
    path = os.path.join(OUT, name + ".h5")
    wave, flux, error, noisy_v, pv = make_data(seed)
    if params == "pandas":
        df = pd.DataFrame(pv)
        # Extra columns a reader must list but skip: strings, all-NaN, bools.
        df["name"] = [f"star{i:05d}" for i in range(N)]
        df["all_nan"] = np.nan
        df["flag"] = np.arange(N) % 3 == 0
        df = df.rename(columns=rename or {})
        df.to_hdf(path, key=PARAMS_GROUP, format="table", mode="w")
        mode = "a"
    else:
        mode = "w"
    with h5py.File(path, mode, userblock_size=userblock if mode == "w" else None) as f:
        if pad:
            f.create_dataset("pad", data=np.arange(pad, dtype=np.uint8))
        write_arrays(f, flux, error, noisy_v if noisy else None, dtype=dtype, **kw)
        if params == "fields":
            f.create_dataset(PARAMS, data=structured(pv, rename))
        f.create_dataset(WAVE, data=wave)
        offsets = {k: f[k].id.get_offset() for k in (FLUX, ERROR)}
        stored = {k: f[k].dtype.str for k in (FLUX, ERROR)}
    # Read back with h5py: what a real reader sees, widened to f64.
    with h5py.File(path, "r") as f:
        rflux = f[FLUX][...].astype(np.float64)
        rerr = f[ERROR][...].astype(np.float64)
        rnoisy = f[NOISY][...].astype(np.float64) if noisy else None
        columns = table_columns(f[PARAMS])
    exp_params = {}
    for col, values in pv.items():
        out_col = (rename or {}).get(col, col)
        exp_params[out_col] = raw(f"{name}.param.{out_col}.f64", values.astype(np.float64))
    entry = {
        "name": name,
        "file": name + ".h5",
        "dtype": stored[FLUX],
        "storage": storage,
        "zero_copy": zero_copy,
        "params_format": params,
        "offsets": offsets,
        "columns": columns,
        "flux": raw(f"{name}.flux.f64", rflux),
        "error": raw(f"{name}.error.f64", rerr),
        "noisy": raw(f"{name}.noisy.f64", rnoisy) if noisy else None,
        "wave": raw(f"{name}.wave.f64", wave),
        "params": exp_params,
    }
    # The write → read round trip is exact (f32 widened exactly).
    assert np.array_equal(rflux, flux.astype(dtype).astype(np.float64)), name
    MANIFEST["good"].append(entry)
    return entry


def table_columns(ds):
    """The column names of a params table in file order, as a reader must list them."""
    names = []
    for field in ds.dtype.names:
        if field.startswith("values_block_"):
            kind = ds.attrs[field + "_kind"]
            if isinstance(kind, np.ndarray):
                kind = kind.tobytes()
            if isinstance(kind, str):
                kind = kind.encode("latin-1")
            names.extend(str(n) for n in pickle.loads(kind))
        elif field == "index" and any(f.startswith("values_block_") for f in ds.dtype.names):
            continue
        else:
            names.append(field)
    return names


def make_good():
    good("f64_contiguous", storage="contiguous", zero_copy=True, seed=1)
    good("f32_contiguous", dtype="<f4", storage="contiguous", zero_copy=True, params="pandas", seed=2)
    good("f64_gzip", storage="chunked", zero_copy=False, seed=3,
         kw={"chunks": (5, P), "compression": "gzip", "compression_opts": 4})
    good("f32_gzip_shuffle", dtype="<f4", storage="chunked", zero_copy=False, params="pandas", seed=4,
         kw={"chunks": (8, 16), "compression": "gzip", "shuffle": True})
    good("f64_chunked_plain", storage="chunked", zero_copy=False, seed=5, kw={"chunks": (3, 7)})
    good("f64_big_endian", dtype=">f8", storage="contiguous", zero_copy=False, seed=6)
    good("f32_big_endian", dtype=">f4", storage="contiguous", zero_copy=False, params="pandas", seed=7)
    good("f64_userblock", storage="contiguous", zero_copy=True, seed=8, userblock=512)
    good("f32_pandas_noisy", dtype="<f4", storage="contiguous", zero_copy=True, params="pandas", seed=9,
         noisy=True)
    good("f64_fields_noisy_gzip", storage="chunked", zero_copy=False, seed=10, noisy=True,
         kw={"chunks": (10, P), "compression": "gzip"})
    good("pandas_renamed_logg", storage="contiguous", zero_copy=True, params="pandas", seed=11,
         rename={"log_g": "logg"})
    good("fields_renamed_logg", storage="contiguous", zero_copy=True, seed=12, rename={"log_g": "logg"})
    # pandas/PyTables files put the arrays h5py adds at odd offsets; for a
    # pure h5py file, an odd-sized dataset larger than libhdf5's 2 KiB
    # small-data block, written first, does the same.
    for pad in (2051, 4099, 2053, 2055):
        e = good("f64_unaligned", storage="contiguous", zero_copy=True, seed=13, pad=pad)
        if e["offsets"][FLUX] % 8 != 0:
            break
        MANIFEST["good"].pop()
    unaligned = [e["name"] for e in MANIFEST["good"]
                 if e["storage"] == "contiguous" and e["offsets"][FLUX] % 8 != 0]
    assert "f64_unaligned" in unaligned, "h5py no longer writes an unaligned contiguous dataset"
    MANIFEST["unaligned"] = unaligned
    pandas = [e for e in MANIFEST["good"] if e["params_format"] == "pandas"]
    assert all(len(e["columns"]) > 9 for e in pandas)


# ---------------------------------------------------------------- bad files


def bad(name, **info):
    MANIFEST["bad"][name] = dict(info, file=name + ".h5")
    return os.path.join(OUT, name + ".h5")


def base_file(path, *, flux=None, error=None, params=None, wave=None, skip=(), **kw):
    """A shard with any part replaced (or, in skip, left out)."""
    w, fl, er, _, pv = make_data(99)
    parts = {
        FLUX: fl if flux is None else flux,
        ERROR: er if error is None else error,
        PARAMS: structured(pv) if params is None else params,
        WAVE: w if wave is None else wave,
    }
    with h5py.File(path, "w") as f:
        for k, v in parts.items():
            if k not in skip:
                f.create_dataset(k, data=v, **(kw if k in (FLUX, ERROR) else {}))
    return fl, er, pv


def patch_eof(path, new_len):
    """Truncates path to new_len bytes and makes its superblock (version 0)
    agree, the way a copy cut short by a tool that rewrote the superblock
    would look: libhdf5 opens it, and only reads past the end fail."""
    with open(path, "r+b") as fh:
        head = fh.read(64)
        assert head[:8] == b"\x89HDF\r\n\x1a\n" and head[8] == 0, "expected superblock version 0"
        assert head[13] == 8, "expected 8-byte addresses"
        fh.seek(40)  # end-of-file address of a version-0 superblock
        fh.write(int(new_len).to_bytes(8, "little"))
        fh.truncate(new_len)


def make_bad():
    w, fl, er, _, pv = make_data(99)
    base_file(bad("missing_flux", dataset=FLUX), skip=(FLUX,))
    base_file(bad("missing_params", dataset=PARAMS), skip=(PARAMS,))
    base_file(bad("missing_wave", dataset=WAVE), skip=(WAVE,))
    base_file(bad("error_shape", dataset=ERROR), error=er[:, :-1])
    base_file(bad("error_rows", dataset=ERROR), error=er[:-2])
    base_file(bad("params_rows", dataset=PARAMS), params=structured(pv)[:-1])
    base_file(bad("wave_len", dataset=WAVE), wave=w[:-1])
    base_file(bad("flux_1d", dataset=FLUX), flux=fl[0], error=er[0], params=structured(pv)[:1])
    base_file(bad("flux_int", dataset=FLUX), flux=(fl * 1000).astype(np.int32))
    base_file(bad("flux_3d", dataset=FLUX), flux=fl.reshape(N, 5, 10), error=er.reshape(N, 5, 10))
    with h5py.File(bad("zero_rows", dataset=FLUX), "w") as f:
        f.create_dataset(FLUX, shape=(0, P), dtype="<f8")
        f.create_dataset(ERROR, shape=(0, P), dtype="<f8")
        f.create_dataset(PARAMS, data=structured(pv)[:0])
        f.create_dataset(WAVE, data=w)
    p = bad("params_not_compound", dataset=PARAMS)
    base_file(p, params=pv["log_g"])
    with h5py.File(p, "a") as f:
        assert f[PARAMS].dtype.names is None

    # Truncated to 60 %: libhdf5's end-of-file check refuses it at open.
    p = bad("truncated_60", dataset=None)
    base_file(p)
    size = os.path.getsize(p)
    with open(p, "r+b") as fh:
        fh.truncate(int(size * 0.6))

    # Contiguous error array cut in the middle (superblock patched): libhdf5
    # opens the file, the reader must see that the data lie past the end.
    p = bad("truncated_error_contiguous", dataset=ERROR)
    base_file(p, skip=(FLUX, ERROR))
    with h5py.File(p, "a") as f:
        f.create_dataset(FLUX, data=fl)
        e = f.create_dataset(ERROR, data=er)
        err_off = e.id.get_offset()
    size = os.path.getsize(p)
    assert err_off + er.nbytes == size, "the error array is not at the end of the file"
    patch_eof(p, err_off + er.nbytes // 2)
    with h5py.File(p, "r") as f:  # h5py itself opens it and reads flux
        assert np.array_equal(f[FLUX][...], fl)

    # Chunked error, the last chunks cut off: opens, early rows read, later
    # rows fail at read time with an error naming the dataset and rows.
    p = bad("truncated_error_chunked", dataset=ERROR, chunk_rows=4)
    base_file(p, skip=(FLUX, ERROR))
    with h5py.File(p, "a") as f:
        f.create_dataset(FLUX, data=fl)
        e = f.create_dataset(ERROR, data=er, chunks=(4, P))
        chunks = [e.id.get_chunk_info(i) for i in range(e.id.get_num_chunks())]
    size = os.path.getsize(p)
    last = max(chunks, key=lambda c: c.byte_offset)
    assert last.byte_offset + last.size == size, "the error chunks are not at the end of the file"
    # Keep every chunk whose data ends before the cut: the cut falls inside
    # the chunk holding rows 20..24.
    cut_chunk = next(c for c in chunks if c.chunk_offset[0] == 20)
    cut = cut_chunk.byte_offset + cut_chunk.size // 2
    intact = sorted(c.chunk_offset[0] for c in chunks if c.byte_offset + c.size <= cut)
    broken = sorted(c.chunk_offset[0] for c in chunks if c.byte_offset + c.size > cut)
    patch_eof(p, cut)
    with h5py.File(p, "r") as f:
        for r in intact:
            assert np.array_equal(f[ERROR][r:r + 4], er[r:r + 4])
        for r in broken:
            try:
                f[ERROR][r:r + 4]
            except OSError:
                continue
            raise AssertionError(f"h5py read rows {r}.. of a cut-off chunk")
    MANIFEST["bad"]["truncated_error_chunked"].update(intact=intact, broken=broken)

    # Bad values at known places.
    def with_value(name, dataset, row, col, value):
        f2, e2, pv2 = fl.copy(), er.copy(), {k: v.copy() for k, v in pv.items()}
        if dataset == FLUX:
            f2[row, col] = value
        elif dataset == ERROR:
            e2[row, col] = value
        else:
            pv2[col][row] = value
        base_file(bad(name, dataset=dataset, row=row, column=col, value=repr(value)),
                  flux=f2, error=e2, params=structured(pv2))

    with_value("flux_nan", FLUX, 5, 17, np.nan)
    with_value("flux_inf", FLUX, 22, 3, np.inf)
    with_value("flux_neg_inf", FLUX, 36, 49, -np.inf)
    with_value("error_negative", ERROR, 13, 0, -0.25)
    with_value("error_nan", ERROR, 30, 41, np.nan)
    with_value("log_g_nan", PARAMS, 8, "log_g", np.nan)
    with_value("teff_inf", PARAMS, 0, "T_eff", np.inf)

    # Several bad rows (and a NaN in a column nobody asks for) in one gzip
    # file, read through libhdf5, for NonFinitePolicy::SkipRow.
    f2, e2, pv2 = fl.copy(), er.copy(), {k: v.copy() for k, v in pv.items()}
    f2[2, 0] = np.nan
    f2[9, 49] = np.inf
    f2[9, 10] = np.nan  # two defects in one row: still one skipped row
    e2[14, 7] = -1e-300
    e2[15, 8] = np.inf
    pv2["log_g"][20] = np.nan
    pv2["M_H"][21] = -np.inf
    pv2["snr"][3] = np.nan  # not a column the reader asks for
    f2[N - 1, P - 1] = np.nan
    base_file(bad("many_bad_rows", dataset=None, bad_rows=[2, 9, 14, 15, 20, 21, N - 1],
                  clean_nan_column="snr", clean_nan_row=3),
              flux=f2, error=e2, params=structured(pv2), chunks=(6, P), compression="gzip")
    raw("many_bad_rows.flux.f64", f2)
    raw("many_bad_rows.log_g.f64", pv2["log_g"])

    # Not HDF5 at all, with an .h5 name.
    with open(bad("not_hdf5", dataset=None), "w") as fh:
        fh.write("T_eff,M_H,log_g\n5000,0.0,4.5\n" * 40)
    # Starts like HDF5 (signature) and then garbage.
    with open(bad("signature_only", dataset=None), "wb") as fh:
        fh.write(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    # Empty file.
    open(bad("empty", dataset=None), "wb").close()


def main():
    global OUT
    if len(sys.argv) != 2:
        sys.exit("usage: make_files.py OUTDIR")
    OUT = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    make_good()
    make_bad()
    MANIFEST["versions"] = {
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    with open(os.path.join(OUT, "expected.json"), "w") as fh:
        json.dump(MANIFEST, fh, indent=1)


if __name__ == "__main__":
    main()
