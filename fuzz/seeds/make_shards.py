"""Writes the small valid shard files that seed the `open_shard` fuzz target.

Run from the repository root with a Python that has h5py, numpy, pandas and
PyTables:

    python fuzz/seeds/make_shards.py fuzz/corpus/open_shard

Each file follows the pfsspec layout the reader expects (DESIGN §3):
/dataset/arrays/{flux,error}/value (N, P), /dataset/params/table (N,),
/spectrumdataset/wave (P,). Files are kept to a few KB so libFuzzer can
mutate them; the variants cover the reader's code paths:

* seed_contiguous.h5   contiguous f64 arrays (zero-copy path), h5py compound params
* seed_chunked_gzip.h5 chunked + gzip f32 arrays (libhdf5 path), plus a noisy array
* seed_pandas.h5       pandas to_hdf(format="table") params (pickled block names)
* seed_pandas_compact.h5 the same params table, contiguous, rebuilt with h5py
* seed_bigendian.h5    contiguous big-endian f64 (libhdf5 path), int/bool params
"""

import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

N, P = 4, 6


def arrays(rng, dtype):
    wave = np.linspace(4000.0, 4005.0, P)
    flux = rng.uniform(0.5, 1.5, (N, P)).astype(dtype)
    error = rng.uniform(0.01, 0.1, (N, P)).astype(dtype)
    return wave, flux, error


def params_struct(rng, extra=False):
    fields = [("T_eff", "<f8"), ("M_H", "<f8"), ("log_g", "<f8")]
    if extra:
        fields += [("id", "<i4"), ("ok", "?"), ("kind", "S3")]
    t = np.zeros(N, dtype=fields)
    t["T_eff"] = rng.uniform(3500, 8000, N)
    t["M_H"] = rng.uniform(-2, 0.5, N)
    t["log_g"] = rng.uniform(0, 5, N)
    if extra:
        t["id"] = np.arange(N)
        t["ok"] = True
        t["kind"] = b"abc"
    return t


def write(path, dtype, chunked=False, pandas_params=False, extra=False, noisy=False):
    rng = np.random.default_rng(len(str(path)))
    wave, flux, error = arrays(rng, dtype)
    kw = dict(chunks=(2, P), compression="gzip", compression_opts=4, shuffle=True) if chunked else {}
    with h5py.File(path, "w") as f:
        f.create_dataset("/spectrumdataset/wave", data=wave)
        f.create_dataset("/dataset/arrays/flux/value", data=flux, **kw)
        f.create_dataset("/dataset/arrays/error/value", data=error, **kw)
        if noisy:
            f.create_dataset("/dataset/arrays/noisy/value", data=flux + error, **kw)
        if not pandas_params:
            f.create_dataset("/dataset/params/table", data=params_struct(rng, extra))
    if pandas_params:
        t = params_struct(rng)
        df = pd.DataFrame({k: t[k] for k in t.dtype.names})
        df["id"] = np.arange(N, dtype=np.int64)
        # What df.to_hdf(path, key="dataset/params", format="table") writes,
        # with a small chunk shape (expectedrows) and no PyTables index
        # (index=False) to keep the seed small.
        with pd.HDFStore(path, mode="a") as store:
            store.append("dataset/params", df, format="table", expectedrows=N, index=False)


def compact_copy(src, dst):
    """The pandas seed rebuilt with h5py: the same table dtype and every
    PyTables/pandas attribute (the pickled values_block_K_kind names
    included), stored contiguously, so the file is a few KB instead of ~70."""
    with h5py.File(src, "r") as s, h5py.File(dst, "w") as d:
        for name in ["/spectrumdataset/wave", "/dataset/arrays/flux/value", "/dataset/arrays/error/value"]:
            d.create_dataset(name, data=s[name][()])
        sg, dg = s["/dataset/params"], d.require_group("/dataset/params")
        st = sg["table"]
        dt = dg.create_dataset("table", data=st[()])
        for obj_s, obj_d in [(sg, dg), (st, dt)]:
            for k in obj_s.attrs:
                obj_d.attrs.create(k, obj_s.attrs[k], dtype=obj_s.attrs.get_id(k).dtype)


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write(out / "seed_contiguous.h5", "<f8")
    write(out / "seed_chunked_gzip.h5", "<f4", chunked=True, noisy=True)
    write(out / "seed_pandas.h5", "<f8", pandas_params=True)
    write(out / "seed_bigendian.h5", ">f8", extra=True)
    compact_copy(out / "seed_pandas.h5", out / "seed_pandas_compact.h5")
    for p in sorted(out.glob("seed_*.h5")):
        print(p, p.stat().st_size)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/open_shard")
