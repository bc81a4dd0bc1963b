"""Checks gramstream's statistics of one shard (noise 0, partitions teff_mh + snr,
cells mode, 1 fold) against numpy on the same rows, read with h5py.

    python check_stats_numpy.py SHARD.h5 STATS.h5
    python check_stats_numpy.py --write SHARD.h5   # writes a 3000-row shard with h5py
                                                    # whose rows fill every bin

Exit 0 when every accumulator's n, Σx, Σy, Σy², Xᵀy and XᵀX (around the stored
shift) agree to 1e-12 relative to the array's largest value; 1 otherwise.
"""
import sys

import h5py
import numpy as np
import pandas as pd


def params(path, n):
    with h5py.File(path, "r") as f:
        table = f["dataset/params/table"]
        names = table.dtype.names
    if any(nm.startswith("values_block_") for nm in names):
        df = pd.read_hdf(path, "dataset/params")
        return {c: df[c].to_numpy(dtype=np.float64) for c in ("T_eff", "M_H", "log_g")}
    with h5py.File(path, "r") as f:
        t = f["dataset/params/table"][:]
    return {c: t[c].astype(np.float64) for c in ("T_eff", "M_H", "log_g")}


def closed_bin(v, edges):
    if not (edges[0] <= v <= edges[-1]):
        return None
    return int(np.searchsorted(edges[1:-1], v, side="right"))


def write(path, n=3000, p=48, seed=5):
    """A pfsspec-layout shard written by h5py alone: parameters spread over
    every T_eff × [M/H] bin and beyond, SNR over all four SNR bins, flux
    correlated with the parameters and far from zero mean."""
    rng = np.random.default_rng(seed)
    teff = rng.uniform(3600, 6150, n)
    mh = rng.uniform(-2.4, 0.7, n)
    logg = rng.uniform(1, 5, n)
    wave = np.linspace(7100, 8850, p)
    base = 1.0 + 0.2 * np.sin(wave / 90.0)
    flux = base[None, :] * (1 + 0.05 * (teff[:, None] - 4800) / 1000) - 0.03 * logg[:, None] * np.cos(wave / 60.0)[None, :]
    flux += 0.01 * rng.standard_normal((n, p))
    snr_target = rng.uniform(0.8, 10.0, n)
    err = np.abs(flux) / snr_target[:, None] * (1 + 0.3 * rng.random((n, p)))
    params = np.zeros(n, dtype=[("T_eff", "<f8"), ("M_H", "<f8"), ("log_g", "<f8"), ("id", "<i8")])
    params["T_eff"], params["M_H"], params["log_g"], params["id"] = teff, mh, logg, np.arange(n)
    with h5py.File(path, "w") as f:
        f.create_dataset("dataset/arrays/flux/value", data=flux)
        f.create_dataset("dataset/arrays/error/value", data=err, chunks=(128, p), compression="gzip")
        f.create_dataset("dataset/params/table", data=params)
        f.create_dataset("spectrumdataset/wave", data=wave)
    return 0


def main():
    if sys.argv[1] == "--write":
        return write(sys.argv[2])
    shard, stats = sys.argv[1], sys.argv[2]
    with h5py.File(shard, "r") as f:
        flux = f["dataset/arrays/flux/value"][:].astype(np.float64)
        err = f["dataset/arrays/error/value"][:].astype(np.float64)
    n_rows, p = flux.shape
    prm = params(shard, n_rows)
    with h5py.File(stats, "r") as s:
        mode = s.attrs["mode"]
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        assert mode == "cells", mode
        assert int(s.attrs["pixels"]) == p and float(s.attrs["noise_level"]) == 0.0
        shift = s["shift_x"][:]
        shift_y = float(s.attrs["shift_y"])
        acc = {k: s["accumulators"][k][:] for k in ("n", "sum_x", "sum_y", "sum_yy", "xty", "xtx")}
    teff_e, mh_e, snr_e = [3750, 4500, 5250, 6000], [-2.0, -1.0, 0.0, 0.5], [2.0, 4.0, 7.0]
    snr = np.linalg.norm(flux, axis=1) / np.linalg.norm(err, axis=1)
    cells = np.empty(n_rows, dtype=int)
    for r in range(n_rows):
        t, m = closed_bin(prm["T_eff"][r], teff_e), closed_bin(prm["M_H"][r], mh_e)
        tm = 9 if t is None or m is None else 3 * t + m
        cells[r] = tm * 4 + int(np.searchsorted(snr_e, snr[r], side="left"))
    x = flux - shift
    y = prm["log_g"] - shift_y
    tril = np.tril_indices(p)
    worst = 0.0
    for c in range(len(acc["n"])):
        rows = cells == c
        xs, ys = x[rows], y[rows]
        want = {
            "n": rows.sum(),
            "sum_x": xs.sum(axis=0),
            "sum_y": ys.sum(),
            "sum_yy": (ys * ys).sum(),
            "xty": xs.T @ ys,
            "xtx": (xs.T @ xs)[tril],
        }
        if acc["n"][c] != want["n"]:
            print(f"cell {c}: n {acc['n'][c]} != {want['n']}")
            return 1
        for k in ("sum_x", "sum_y", "sum_yy", "xty", "xtx"):
            got, exp = np.atleast_1d(acc[k][c]), np.atleast_1d(want[k])
            scale = max(np.abs(exp).max(), 1e-300)
            err_rel = np.abs(got - exp).max() / scale
            worst = max(worst, err_rel)
            if err_rel > 1e-12:
                print(f"cell {c} {k}: relative difference {err_rel:.3e}")
                return 1
    filled = int((acc["n"] > 0).sum())
    print(f"{len(acc['n'])} accumulators ({filled} non-empty), {n_rows} rows, {p} pixels: worst relative difference {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
