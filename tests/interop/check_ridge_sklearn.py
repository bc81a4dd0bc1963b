"""gramstream's Ridge sweep against scikit-learn and numpy, on files written by h5py.

    python check_ridge_sklearn.py --write TRAIN.h5 TEST.h5
        writes a training shard (noise-free flux, rows in every bin) and a test
        shard with a stored `noisy` array, both with h5py alone
    python check_ridge_sklearn.py TRAIN.h5 TEST.h5 SWEEP.json FOLDS.txt
        SWEEP.json: gramstream's models for every (group, α) with CV MSE and
        test metrics (written by tests/sklearn_agreement.rs); FOLDS.txt: the
        fold of each training row (gramstream's fold assignment is an input
        here: what is checked is the CV computed from the statistics).

Checks, per group (global, each T_eff × [M/H] slot, each SNR bin) and α:
  * weights and intercept equal scikit-learn Ridge(alpha, fit_intercept=True,
    solver="svd") on the group's training rows to ≤ 1e-8 relative
    (max |Δw| / max |w|; |Δb| / (1 + |b|));
  * test R² on the group's test rows (routed by true T_eff, [M/H], SNR) equals
    sklearn.metrics.r2_score of the sklearn model's predictions to ≤ 1e-10;
  * the K-fold CV MSE equals an explicit numpy refit per fold (train on the
    other folds, predict the fold) to ≤ 1e-9 relative.
Exit 0 when everything agrees; 1 with the worst cases otherwise.
"""
import json
import sys

import h5py
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

TEFF_E = [3750.0, 4500.0, 5250.0, 6000.0]
MH_E = [-2.0, -1.0, 0.0, 0.5]
SNR_E = [2.0, 4.0, 7.0]


def spectra(rng, n, p, wave):
    teff = rng.uniform(3600, 6150, n)
    mh = rng.uniform(-2.4, 0.7, n)
    logg = rng.uniform(1, 5, n)
    base = 1.0 + 0.2 * np.sin(wave / 90.0)
    flux = base[None, :] * (1 + 0.05 * (teff[:, None] - 4800) / 1000)
    flux -= 0.03 * logg[:, None] * np.cos(wave / 60.0)[None, :] * (1 + 0.2 * mh[:, None])
    flux += 0.01 * rng.standard_normal((n, p))
    snr_target = rng.uniform(0.8, 10.0, n)
    err = np.abs(flux) / snr_target[:, None] * (1 + 0.3 * rng.random((n, p)))
    params = np.zeros(n, dtype=[("T_eff", "<f8"), ("M_H", "<f8"), ("log_g", "<f8"), ("id", "<i8")])
    params["T_eff"], params["M_H"], params["log_g"], params["id"] = teff, mh, logg, np.arange(n)
    return flux, err, params


def write(train, test, p=32):
    rng = np.random.default_rng(11)
    wave = np.linspace(7100, 8850, p)
    for path, n, noisy in ((train, 4000, False), (test, 1500, True)):
        flux, err, params = spectra(rng, n, p, wave)
        with h5py.File(path, "w") as f:
            f.create_dataset("dataset/arrays/flux/value", data=flux)
            f.create_dataset("dataset/arrays/error/value", data=err)
            if noisy:
                f.create_dataset(
                    "dataset/arrays/noisy/value",
                    data=flux + 0.3 * err * rng.standard_normal(flux.shape),
                )
            f.create_dataset("dataset/params/table", data=params)
            f.create_dataset("spectrumdataset/wave", data=wave)
    return 0


def closed_bin(v, edges):
    if not (edges[0] <= v <= edges[-1]):
        return None
    return int(np.searchsorted(edges[1:-1], v, side="right"))


def snr_bin(v):
    # right-closed bins with open ends: (-inf, 2], (2, 4], (4, 7], (7, inf)
    return int(np.searchsorted(SNR_E, v, side="left"))


def load(path, noisy=False):
    with h5py.File(path, "r") as f:
        flux = f["dataset/arrays/flux/value"][:]
        err = f["dataset/arrays/error/value"][:]
        x = f["dataset/arrays/noisy/value"][:] if noisy else flux
        t = f["dataset/params/table"][:]
    snr = np.linalg.norm(flux, axis=1) / np.linalg.norm(err, axis=1)  # noise level 0 → L = 1
    teff_mh = []
    for te, mh in zip(t["T_eff"], t["M_H"]):
        a, b = closed_bin(te, TEFF_E), closed_bin(mh, MH_E)
        teff_mh.append(9 if a is None or b is None else 3 * a + b)
    return x, t["log_g"].astype(np.float64), np.array(teff_mh), np.array([snr_bin(s) for s in snr])


def rows_of(group, teff_mh, snr):
    part, slot = group["partition"], group["slot"]
    if part is None:
        return np.ones(len(teff_mh), dtype=bool)
    return (teff_mh if part == 0 else snr) == slot


def main():
    if sys.argv[1] == "--write":
        return write(sys.argv[2], sys.argv[3])
    train, test, sweep_json, folds_txt = sys.argv[1:5]
    x, y, tm, sn = load(train)
    xt, yt, tmt, snt = load(test, noisy=True)
    folds = np.loadtxt(folds_txt, dtype=int)
    sweep = json.load(open(sweep_json))
    worst = {"w": (0.0, ""), "b": (0.0, ""), "r2": (0.0, ""), "cv": (0.0, "")}
    checked = 0

    def note(kind, err, where):
        if err > worst[kind][0] or not np.isfinite(err):
            worst[kind] = (err, where)

    for g in sweep["groups"]:
        rows, trows = rows_of(g, tm, sn), rows_of(g, tmt, snt)
        assert rows.sum() == g["n_train"], (g["name"], rows.sum(), g["n_train"])
        assert trows.sum() == g["n_test"], (g["name"], trows.sum(), g["n_test"])
        k = int(folds.max()) + 1
        for m in g["models"]:
            alpha, where = m["alpha"], f"{g['name']} α={m['alpha']:g}"
            ref = Ridge(alpha=alpha, fit_intercept=True, solver="svd").fit(x[rows], y[rows])
            w = np.array(m["w"])
            note("w", np.max(np.abs(w - ref.coef_)) / np.max(np.abs(ref.coef_)), where)
            note("b", abs(m["intercept"] - ref.intercept_) / (1 + abs(ref.intercept_)), where)
            r2 = r2_score(yt[trows], ref.predict(xt[trows]))
            note("r2", abs(m["test_r2"] - r2), where)
            sse = 0.0
            for f in range(k):
                tr, va = rows & (folds != f), rows & (folds == f)
                if va.sum() == 0:
                    continue
                xm, ym = x[tr].mean(axis=0), y[tr].mean()
                xc = x[tr] - xm
                wf = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y[tr] - ym))
                sse += np.sum((y[va] - (ym + (x[va] - xm) @ wf)) ** 2)
            cv = sse / rows.sum()
            note("cv", abs(m["cv_mse"] - cv) / cv, where)
            checked += 1
    limits = {"w": 1e-8, "b": 1e-8, "r2": 1e-10, "cv": 1e-9}
    print(f"checked {checked} (group, α) models; worst: " + "; ".join(
        f"{k} {v[0]:.2e} ({v[1]})" for k, v in worst.items()))
    bad = [k for k, v in worst.items() if not (v[0] <= limits[k])]
    if bad:
        print("DISAGREE: " + ", ".join(f"{k} > {limits[k]:g}" for k in bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
