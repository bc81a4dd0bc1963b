"""The Dask recipe (python/examples/dask_accumulate.py) on a LocalCluster:
one task per shard, merged in shard order, against the single-process run."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

import gramstream

try:
    import distributed
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("no dask.distributed (pip install 'dask[distributed]')", allow_module_level=True)

RECIPE = Path(__file__).resolve().parents[1] / "examples" / "dask_accumulate.py"


def recipe():
    spec = importlib.util.spec_from_file_location("dask_accumulate", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tasks_per_shard_merge_to_the_single_run(h5py_shards, tmp_path):
    shards = [*h5py_shards["train"], h5py_shards["test"]]
    options = dict(noise=1.0, seed=9, folds=3, gate_sample=200, threads=1)
    single = gramstream.accumulate(shards, **options)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        merged = recipe().dask_accumulate(client, shards, tmp_path / "all.h5", tmp_path / "parts", **options)
    assert merged.rows == single.rows and merged.shards == single.shards
    assert [s["index"] for s in merged.shards] == [0, 1, 2]
    # the gate sample merges exactly; the sums to rounding (re-expressed
    # around the first part's shift, which is the single run's)
    for k in ("x", "log_g", "shard", "row"):
        assert np.array_equal(merged.gate_sample()[k], single.gate_sample()[k])
    for group in single.groups():
        g = None if group == "global" else group
        for fold in range(3):
            a, b = merged.raw_sums(g, fold=fold), single.raw_sums(g, fold=fold)
            assert a["n"] == b["n"]
            scale = max(1.0, np.max(np.abs(b["xtx"])))
            assert np.max(np.abs(a["xtx"] - b["xtx"])) <= 1e-12 * scale, (group, fold)
            assert np.max(np.abs(a["xty"] - b["xty"])) <= 1e-12 * max(1.0, np.max(np.abs(b["xty"])))
    w1, b1 = single.ridge().coefficients(1.0)
    w2, b2 = merged.ridge().coefficients(1.0)
    assert np.max(np.abs(w1 - w2)) <= 1e-10 * np.max(np.abs(w1)) and abs(b1 - b2) <= 1e-10 * abs(b1)
