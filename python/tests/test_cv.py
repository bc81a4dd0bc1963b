"""Exact K-fold CV and GCV from statistics, against explicit refits on the
rows (numpy, scikit-learn) and against ``gramstream sweep`` on the same
statistics file.

The fold of each row is the pass's (``gramstream.folds_of``, the library's
``fold_of``): what is checked is the CV computed from the statistics, as in
the Rust test tests/sklearn_agreement.rs.
"""

import csv
import math

import numpy as np
import pytest
from sklearn.linear_model import Ridge as SkRidge

import gramstream
from test_ridge import rows_of

ALPHAS = [0.01, 1.0, 30.0, 1e3]
K = 3


@pytest.fixture(scope="module")
def data(h5py_shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("cv") / "stats.h5"
    stats = gramstream.accumulate(h5py_shards["train"], out=out, noise=0.0, folds=K, seed=5)
    rows = rows_of(h5py_shards["train"])
    folds = np.empty(len(rows["y"]), dtype=int)
    for i in range(len(h5py_shards["train"])):
        m = rows["shard"] == i
        folds[m] = gramstream.folds_of(rows["row"][m], seed=5, shard_index=i, folds=K)
    return stats, rows, folds


def explicit_cv(x, y, folds, alpha):
    sse, n = 0.0, 0
    for k in range(K):
        val = folds == k
        if not val.any():
            continue
        m = SkRidge(alpha=alpha, solver="svd").fit(x[~val], y[~val])
        sse += float(np.sum((y[val] - m.predict(x[val])) ** 2))
        n += int(val.sum())
    return sse / n


@pytest.mark.parametrize("group", [None, ("teff_mh", "Mid Solar"), ("teff_mh", "outside bins"), ("snr", "L")])
def test_cv_mse_matches_refits_per_fold(data, group):
    stats, rows, folds = data
    if group is None:
        mask = np.ones(len(rows["y"]), bool)
    elif group[0] == "teff_mh":
        mask = rows["teff_mh"] == (4 if group[1] == "Mid Solar" else 9)
    else:
        mask = rows["snr"] == 1
    ridge = stats.ridge(group)
    got = ridge.cv_mse(ALPHAS)
    for a, alpha in enumerate(ALPHAS):
        ref = explicit_cv(rows["x"][mask], rows["y"][mask], folds[mask], alpha)
        assert abs(got[a] - ref) <= 1e-9 * ref, (group, alpha, got[a], ref)
    assert ridge.cv_mse(ALPHAS[1]) == got[1]


def test_gcv_and_dof_match_their_definitions(data):
    stats, rows, _ = data
    x, y = rows["x"], rows["y"]
    ridge = stats.ridge()
    lam = np.linalg.eigvalsh(np.cov(x, rowvar=False, ddof=0) * len(y))
    for alpha in ALPHAS:
        dof = np.sum(lam / (lam + alpha))
        rss = np.sum((y - SkRidge(alpha=alpha, solver="svd").fit(x, y).predict(x)) ** 2)
        gcv = len(y) * rss / (len(y) - 1 - dof) ** 2
        assert abs(ridge.dof(alpha) - dof) <= 1e-9 * dof
        assert abs(ridge.gcv(alpha) - gcv) <= 1e-8 * gcv
    np.testing.assert_array_equal(ridge.gcv(ALPHAS), [ridge.gcv(a) for a in ALPHAS])


def test_cv_mse_equals_the_sweep_bit_for_bit(data, gramstream_bin, tmp_path):
    stats, _, _ = data
    grid = [0.0, 0.01, 0.5, 30.0, 1e3]
    # Ridge.cv_mse solves every fold by its own eigendecomposition: the
    # sweep's `--cv eigh` (its default `auto` agrees to ~1e-9, tested in Rust).
    gramstream_bin(
        "sweep", stats.path, "--out", tmp_path / "sweep", "--alphas", ",".join(map(repr, grid)),
        "--threads", 1, "--cv", "eigh",
    )
    with open(tmp_path / "sweep" / "sweep.csv", newline="") as f:
        table = list(csv.DictReader(f))
    compared = 0
    for group in stats.groups():
        spec = None if group == "global" else group
        name = "global" if group == "global" else group[0]
        bin_ = "all" if group == "global" else str(group[1])
        lines = [r for r in table if r["partition"] == name and r["bin"] == bin_]
        assert [float(r["alpha"]) for r in lines] == grid
        if stats.n(spec) < 10:
            continue
        ridge = stats.ridge(spec, threads=1)
        cv = ridge.cv_mse(grid)
        gcv = ridge.gcv(grid)
        r2 = ridge.train_r2(grid)
        for a, line in enumerate(lines):
            if line["cv_mse"] == "":
                assert math.isnan(cv[a]) and grid[a] == 0.0
            else:
                assert cv[a] == float(line["cv_mse"]), (group, grid[a])
                compared += 1
            if line["gcv"] != "":
                assert gcv[a] == float(line["gcv"]), (group, grid[a])
            if line["train_r2"] != "":
                assert r2[a] == float(line["train_r2"]), (group, grid[a])
    assert compared >= 4 * 10


def test_cv_needs_folds(h5py_shards):
    stats = gramstream.accumulate(h5py_shards["train"], noise=0.0, partitions=["snr"])
    with pytest.raises(gramstream.FitError, match="folds ≥ 2") as e:
        stats.ridge().cv_mse([1.0])
    assert e.value.kind == "NoFolds"
