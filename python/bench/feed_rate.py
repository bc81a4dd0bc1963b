"""Rows/s of the pass fed three ways on the same shard (one run each, in
this order, same process): from the file (accumulate), from h5py chunks
(read + Accumulator.add), from arrays already in memory (Accumulator.add)."""
import sys, time
import h5py, numpy as np
import gramstream

path = sys.argv[1]
chunk = 1024
opts = dict(noise=1.0, seed=42, folds=5, mem_budget="8GiB", threads=0)
with h5py.File(path) as f:
    n, p = f["/dataset/arrays/flux/value"].shape

def fed(acc, source):
    for r in range(0, n, chunk):
        flux, error, prm = source(r, min(r + chunk, n))
        acc.add(flux, error, teff=prm["T_eff"], mh=prm["M_H"], log_g=prm["log_g"])
    return acc.finish()

t = time.perf_counter(); a = gramstream.accumulate([path], **opts); t_file = time.perf_counter() - t

f = h5py.File(path)
F, E, P = f["/dataset/arrays/flux/value"], f["/dataset/arrays/error/value"], f["/dataset/params/table"]
t = time.perf_counter(); b = fed(gramstream.Accumulator(p, **opts), lambda r, s: (F[r:s], E[r:s], P[r:s])); t_h5 = time.perf_counter() - t

flux, error, prm = F[...], E[...], P[...]
t = time.perf_counter(); c = fed(gramstream.Accumulator(p, **opts), lambda r, s: (flux[r:s], error[r:s], prm[r:s])); t_mem = time.perf_counter() - t

for s in (b, c):
    for g in (None, ("teff_mh", 4)):
        assert np.array_equal(s.raw_sums(g)["xtx"], a.raw_sums(g)["xtx"])
print(f"rows {n} x {p}, chunks of {chunk}, mode {a.mode}")
for name, t in (("accumulate(file)", t_file), ("h5py chunks -> Accumulator", t_h5), ("numpy in memory -> Accumulator", t_mem)):
    print(f"{name:32s} {t:6.2f} s  {n / t:7.0f} rows/s  ({t / t_file:.2f}x the file pass)")
