"""The peer: scikit-learn on the same 50k-row shard, in memory.

    python sklearn_side_by_side.py SHARD.h5 perbin|ridgecv

perbin:  Ridge(alpha=1e5) on each T_eff × [M/H] bin (9) and SNR bin (4), as
         the reports fitted their experts (one α).
ridgecv: RidgeCV with 7 α (1 … 1e6, efficient leave-one-out), global.
Noise: max(flux + error·z, 0), z ~ N(0, 1) from numpy (seed 42): the same
distribution as gramstream's noise, not the same draws. Prints one JSON line
with seconds per stage and the peak RSS (ru_maxrss) of this process.
"""
import json
import resource
import sys
import time

import h5py
import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge, RidgeCV

path, mode = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
with h5py.File(path, "r") as f:
    x = f["dataset/arrays/flux/value"][:]
    error = f["dataset/arrays/error/value"][:]
params = pd.read_hdf(path, "dataset/params")
snr = np.linalg.norm(x, axis=1) / np.linalg.norm(error, axis=1)
# Noise in place, 1000 rows at a time: the peak is flux + error, not three arrays.
rng = np.random.default_rng(42)
for a in range(0, x.shape[0], 1000):
    b = min(a + 1000, x.shape[0])
    x[a:b] += error[a:b] * rng.standard_normal((b - a, x.shape[1]))
np.maximum(x, 0, out=x)
del error
y = params["log_g"].to_numpy()
t_load = time.perf_counter() - t0

out = {"mode": mode, "rows": int(x.shape[0]), "pixels": int(x.shape[1]), "load_s": t_load}
t0 = time.perf_counter()
if mode == "perbin":
    teff, mh = params["T_eff"].to_numpy(), params["M_H"].to_numpy()
    t_bin = np.digitize(teff, [4500, 5250])
    m_bin = np.digitize(mh, [-1.0, 0.0])
    inside = (teff >= 3750) & (teff <= 6000) & (mh >= -2.0) & (mh <= 0.5)
    fits = 0
    for b in range(9):
        rows = inside & (3 * t_bin + m_bin == b)
        Ridge(alpha=1e5).fit(x[rows], y[rows])
        fits += 1
    s_bin = np.digitize(snr, [2, 4, 7], right=True)
    for b in range(4):
        rows = s_bin == b
        Ridge(alpha=1e5).fit(x[rows], y[rows])
        fits += 1
    out["fits"] = fits
elif mode == "ridgecv":
    m = RidgeCV(alphas=np.logspace(0, 6, 7)).fit(x, y)
    out["alpha"] = float(m.alpha_)
else:
    sys.exit(f"unknown mode {mode}")
out["fit_s"] = time.perf_counter() - t0
out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps(out))
