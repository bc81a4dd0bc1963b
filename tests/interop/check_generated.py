#!/usr/bin/env python3
"""Checks a shard written by `gramstream generate` with the Python stack.

    python tests/interop/check_generated.py FILE.h5 [FILE.h5 ...]

Exit status 0 when every check passes, 1 otherwise (one line per failure).

* h5py sees flux/error (and noisy, if present) as (N, P) float arrays, the
  wavelength grid as (P,) and its edges as (P + 1,).
* The params table: for the pandas layout, `pandas.read_hdf(FILE,
  "dataset/params")` returns exactly the columns named by the pickled
  `values_block_K_kind` attributes, with the values of the compound (NaN
  where NaN), and the index equals the `index` field; every attribute of the
  group and of the table matches, in value, type, size, character set,
  padding and dataspace, what pandas itself writes for the same DataFrame
  (known extra on ours: `pandas_version`; known absent: the `_i_table`
  index). For the plain-fields layout, the T_eff, M_H, log_g fields exist.
* The `snr` column equals ||flux|| / ||error|| per row; `noisy` >= 0.
"""

import os
import pickle
import sys
import tempfile
import warnings

import h5py
import numpy as np
import pandas as pd

FAILURES = []


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
    return cond


def attr_signature(obj, name):
    """Value and the HDF5 type details of one attribute."""
    aid = h5py.h5a.open(obj.id, name.encode())
    t = aid.get_type()
    space = aid.get_space().get_simple_extent_type()
    sig = {"class": t.get_class(), "size": t.get_size(), "space": space}
    if isinstance(t, h5py.h5t.TypeStringID):
        sig["cset"] = t.get_cset()
        sig["strpad"] = t.get_strpad()
    value = obj.attrs[name]
    if isinstance(value, h5py.Empty):
        sig["value"] = "<empty>"
    elif isinstance(value, np.ndarray):
        sig["value"] = value.tolist()
    else:
        sig["value"] = value.item() if hasattr(value, "item") else value
    return sig


def compare_attrs(ours, ref, where, extra_ok=()):
    a, b = set(ours.attrs.keys()), set(ref.attrs.keys())
    check(a - set(extra_ok) == b, f"{where}: attributes differ: ours only {sorted(a - b)}, pandas only {sorted(b - a)}")
    for k in sorted(a & b):
        sa, sb = attr_signature(ours, k), attr_signature(ref, k)
        check(sa == sb, f"{where}: attribute {k}: ours {sa} != pandas {sb}")


def check_file(path):
    with h5py.File(path, "r") as f:
        flux = f["dataset/arrays/flux/value"]
        error = f["dataset/arrays/error/value"]
        check(flux.ndim == 2 and flux.dtype.kind == "f", f"flux: {flux.shape} {flux.dtype}")
        check(error.shape == flux.shape and error.dtype == flux.dtype, f"error: {error.shape} {error.dtype}")
        n, p = flux.shape
        wave = f["spectrumdataset/wave"][:]
        check(wave.shape == (p,), f"wave shape {wave.shape}")
        check(np.isclose(wave[0], 7100) and np.isclose(wave[-1], 8850), f"wave range {wave[0]} … {wave[-1]}")
        check(f["spectrumdataset/wave_edges"].shape == (p + 1,), "wave_edges shape")
        m = min(n, 256)
        fl = flux[:m].astype(np.float64)
        er = error[:m].astype(np.float64)
        check(np.all(np.isfinite(fl)) and np.all(fl >= 0), "flux has negative or non-finite values")
        check(np.all(er > 0), "error has non-positive values")
        check(np.allclose(np.median(fl, axis=1), 1.0, rtol=1e-3), "flux rows are not median-normalised")
        if "dataset/arrays/noisy" in f:
            noisy = f["dataset/arrays/noisy/value"]
            check(noisy.shape == flux.shape, f"noisy shape {noisy.shape}")
            check(np.all(noisy[:m] >= 0), "noisy has negative values")
        table = f["dataset/params/table"]
        check(table.shape == (n,), f"params table has {table.shape} rows for {n} spectra")
        rec = table[:]
        names = rec.dtype.names
        snr_from_arrays = np.linalg.norm(fl, axis=1) / np.linalg.norm(er, axis=1)
        if "values_block_0" in names:
            columns, blocks = [], []
            k = 0
            while f"values_block_{k}" in names:
                kind = pickle.loads(table.attrs[f"values_block_{k}_kind"])
                columns += kind
                blocks.append((f"values_block_{k}", len(kind)))
                k += 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                df = pd.read_hdf(path, "dataset/params")
            check(list(df.columns) == columns, f"pandas columns {list(df.columns)} != pickled {columns}")
            check(len(df) == n, f"pandas read {len(df)} rows, expected {n}")
            check(np.array_equal(df.index.to_numpy(), rec["index"]), "pandas index != the index field")
            c = 0
            for name, width in blocks:
                block = rec[name]
                for j in range(width):
                    col = columns[c]
                    got = df[col].to_numpy()
                    want = block[:, j]
                    if want.dtype.kind == "S":
                        want = np.array([w.decode() for w in want])
                        ok = np.array_equal(got.astype(str), want)
                    elif want.dtype.kind == "f":
                        ok = np.array_equal(got, want, equal_nan=True)
                    else:
                        ok = np.array_equal(got, want)
                    check(ok, f"column {col}: pandas values differ from the compound")
                    c += 1
            if check("snr" in df.columns, "no snr column"):
                check(np.allclose(df["snr"].to_numpy()[:m], snr_from_arrays, rtol=1e-5), "snr != ||flux||/||error||")
            for col in ("T_eff", "M_H", "log_g", "id"):
                check(col in df.columns, f"column {col} missing")
            # Attribute-by-attribute comparison with what pandas writes.
            with tempfile.TemporaryDirectory() as tmp:
                ref_path = os.path.join(tmp, "ref.h5")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    df.to_hdf(ref_path, key="dataset/params", format="table")
                with h5py.File(ref_path, "r") as r:
                    compare_attrs(f["dataset/params"], r["dataset/params"], "group /dataset/params", ["pandas_version"])
                    compare_attrs(table, r["dataset/params/table"], "table /dataset/params/table")
                    compare_attrs(f["dataset"], r["dataset"], "group /dataset")
                    compare_attrs(f["/"], r["/"], "root group")
                    check(rec.dtype == r["dataset/params/table"].dtype,
                          f"table dtype {rec.dtype} != pandas {r['dataset/params/table'].dtype}")
        else:
            for col in ("T_eff", "M_H", "log_g", "snr", "id"):
                check(col in names, f"field {col} missing from {names}")
            if "snr" in names:
                check(np.allclose(rec["snr"][:m], snr_from_arrays, rtol=1e-5), "snr != ||flux||/||error||")


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 1
    for path in argv[1:]:
        before = len(FAILURES)
        try:
            check_file(path)
        except Exception as e:  # a missing dataset, an unreadable file …
            FAILURES.append(f"{type(e).__name__}: {e}")
        for msg in FAILURES[before:]:
            print(f"{path}: {msg}", file=sys.stderr)
    if FAILURES:
        return 1
    print(f"ok: {len(argv) - 1} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
