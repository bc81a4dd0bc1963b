"""Ridge from statistics against scikit-learn and numpy on the same rows.

The shards are written by h5py (conftest.h5py_shards). With ``noise=0`` the
rows the pass sees are the flux as stored, so scikit-learn is fitted on the
flux h5py reads; the noisy case draws the pass's noise with
``gramstream.add_noise`` (checked here to be the pass's: the global model
on those rows agrees as well).
"""

import numpy as np
import pytest
from sklearn.linear_model import Ridge as SkRidge

import gramstream
from conftest import read_shard, snr_slot, teff_mh_slot

ALPHAS = [1e-3, 0.1, 10.0, 1e3]


def rows_of(shards, noise=0.0, seed=42):
    """Every row as the pass sees it, with its shard index, row and slots."""
    xs, ys, shard, row, tm, sn = [], [], [], [], [], []
    for i, path in enumerate(shards):
        flux, error, params, _ = read_shard(path)
        x = gramstream.add_noise(flux, error, noise=noise, seed=seed, shard_index=i) if noise else flux
        xs.append(x)
        ys.append(params["log_g"])
        shard.append(np.full(len(x), i))
        row.append(np.arange(len(x)))
        tm.append(teff_mh_slot(params["T_eff"], params["M_H"]))
        sn.append(snr_slot(gramstream.snr(flux, error, noise)))
    cat = np.concatenate
    return dict(x=cat(xs), y=cat(ys), shard=cat(shard), row=cat(row), teff_mh=cat(tm), snr=cat(sn))


@pytest.fixture(scope="module")
def stats(h5py_shards):
    return gramstream.accumulate(h5py_shards["train"], noise=0.0, folds=3)


@pytest.fixture(scope="module")
def rows(h5py_shards):
    return rows_of(h5py_shards["train"])


def groups(rows):
    """(group, mask) for the global model and every slot with rows."""
    yield None, np.ones(len(rows["y"]), bool)
    for name in ("teff_mh", "snr"):
        for slot in np.unique(rows[name]):
            yield (name, int(slot)), rows[name] == slot


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300)


def test_weights_and_intercepts_match_sklearn(stats, rows):
    checked = 0
    for group, mask in groups(rows):
        x, y = rows["x"][mask], rows["y"][mask]
        if len(y) < 20:
            continue
        ridge = stats.ridge(group)
        assert ridge.n == len(y) == stats.n(group)
        for alpha in ALPHAS:
            w, b = ridge.coefficients(alpha)
            sk = SkRidge(alpha=alpha, fit_intercept=True, solver="svd").fit(x, y)
            assert rel(w, sk.coef_) <= 1e-8, (group, alpha, rel(w, sk.coef_))
            assert abs(b - sk.intercept_) / (1 + abs(sk.intercept_)) <= 1e-8, (group, alpha)
            np.testing.assert_allclose(ridge.predict(x, alpha), sk.predict(x), rtol=0, atol=1e-8)
            np.testing.assert_allclose(ridge.train_r2(alpha), sk.score(x, y), rtol=0, atol=1e-10)
            checked += 1
    # global + 9 T_eff × [M/H] bins + outside + 4 SNR bins, each at 4 α
    assert checked >= 14 * len(ALPHAS)


def test_noisy_rows_match_sklearn(h5py_shards):
    stats = gramstream.accumulate(h5py_shards["train"], noise=1.0, seed=7, partitions=["snr"])
    r = rows_of(h5py_shards["train"], noise=1.0, seed=7)
    ridge = stats.ridge()
    for alpha in (0.1, 100.0):
        w, b = ridge.coefficients(alpha)
        sk = SkRidge(alpha=alpha, solver="svd").fit(r["x"], r["y"])
        assert rel(w, sk.coef_) <= 1e-8
        assert abs(b - sk.intercept_) <= 1e-8 * (1 + abs(b))
    # the SNR bins are the pass's: counts per bin agree
    for slot in range(4):
        assert stats.n(("snr", slot)) == np.sum(r["snr"] == slot)


def test_means_and_covariances_match_numpy(stats, rows):
    for group, mask in [(None, slice(None)), (("teff_mh", "Mid Solar"), rows["teff_mh"] == 4), (("snr", "H"), rows["snr"] == 3)]:
        x, y = rows["x"][mask], rows["y"][mask]
        xm, ym = stats.mean(group)
        np.testing.assert_allclose(xm, x.mean(axis=0), rtol=1e-12)
        assert abs(ym - y.mean()) <= 1e-12 * abs(y.mean())
        for ddof in (0, 1):
            c = stats.covariance(group, ddof=ddof)
            ref = np.cov(x, rowvar=False, ddof=ddof)
            assert rel(c, ref) <= 1e-10, (group, ddof)
        np.testing.assert_array_equal(stats.covariance(group), stats.covariance(group, ddof=1))


def test_folds_partition_each_group(stats, rows):
    folds = gramstream.folds_of(rows["row"], seed=42, shard_index=0, folds=3)
    folds = np.where(rows["shard"] == 0, folds, gramstream.folds_of(rows["row"], seed=42, shard_index=1, folds=3))
    for k in range(3):
        assert stats.n(fold=k) == np.sum(folds == k)
        mask = (folds == k) & (rows["teff_mh"] == 4)
        xm, _ = stats.mean(("teff_mh", 4), fold=k)
        np.testing.assert_allclose(xm, rows["x"][mask].mean(axis=0), rtol=1e-12)


def test_groups_and_names(stats):
    groups = stats.groups()
    assert groups[0] == "global"
    assert ("teff_mh", 9) in groups and ("snr", 3) in groups and len(groups) == 1 + 10 + 4
    assert stats.group_name(("teff_mh", 9)) == "teff_mh/outside bins"
    assert stats.group_name(("teff_mh", "outside bins")) == "teff_mh/outside bins"
    assert stats.group_name(("snr", "H")) == "snr/H"
    assert stats.group_name(("snr", 3)) == "snr/H"
    assert stats.n(("teff_mh", "Cool Poor")) == stats.n(("teff_mh", 0))
    total = sum(stats.n(("teff_mh", s)) for s in range(10))
    assert total == stats.n() == stats.rows
    assert [p["name"] for p in stats.partitions] == ["teff_mh", "snr"]
    assert stats.partitions[1]["bins"] == ["X", "L", "M", "H"]


def test_raw_sums_are_the_shifted_sums(stats, rows):
    s = stats.raw_sums()
    u = rows["x"] - s["shift_x"]
    v = rows["y"] - s["shift_y"]
    assert s["n"] == len(v)
    np.testing.assert_allclose(s["sum_x"], u.sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s["xtx"], u.T @ u, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s["xty"], u.T @ v, rtol=1e-12, atol=1e-12)
