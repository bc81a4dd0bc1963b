"""Predictions from Python equal ``gramstream predict`` bit for bit.

The models (with a gate) come from an experiment run through the bindings
on shards from ``gramstream generate``; the test shard has a stored
``noisy`` array, which the CLI predicts by default and which h5py reads
here. The CLI writes every number in Rust's shortest round-trip form
(src/predict.rs ``csv_line``), so parsing its CSV gives the exact float64.
"""

import csv

import numpy as np
import pytest

import gramstream
from conftest import read_shard

ROUTINGS = [
    ("global", None, "global"),
    ("oracle", "teff_mh", "oracle"),
    ("oracle", "snr", "oracle"),
    ("hard", None, "hard_gate"),
    ("soft", None, "soft_gate"),
]


@pytest.fixture(scope="module")
def models(experiment):
    return gramstream.Models.open(experiment["models"])


@pytest.fixture(scope="module")
def test_rows(generated, models):
    flux, error, params, noisy = read_shard(generated["test"])
    assert noisy is not None
    return {
        "x": noisy,
        "teff": params["T_eff"],
        "mh": params["M_H"],
        "snr": gramstream.snr(flux, error, models.noise_level),
    }


def cli_predict(gramstream_bin, models, shard, out, cli_routing, partition):
    args = ["predict", "--model", models.path, "--out", out, "--routing", cli_routing, shard]
    if partition is not None:
        args[1:1] = ["--partition", partition]
    gramstream_bin(*args)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    return np.array([float(r["prediction"]) for r in rows]), [r["bin"] for r in rows]


def bin_names(models, partition):
    names = {p["name"]: p["bins"] for p in models.partitions}
    return names[partition] if partition else []


@pytest.mark.parametrize("cli_routing,partition,routing", ROUTINGS)
def test_predict_equals_the_cli_bit_for_bit(gramstream_bin, generated, models, test_rows, tmp_path, cli_routing, partition, routing):
    want, want_bins = cli_predict(gramstream_bin, models, generated["test"], tmp_path / "p.csv", cli_routing, partition)
    got, bins = models.predict(
        test_rows["x"],
        routing=routing,
        partition=partition,
        teff=test_rows["teff"],
        mh=test_rows["mh"],
        snr=test_rows["snr"],
        return_bins=True,
    )
    assert got.dtype == np.float64 and got.shape == want.shape
    assert np.array_equal(got, want), np.max(np.abs(got - want))
    names = bin_names(models, partition or (models.gate_partition if "gate" in routing else None))
    assert [names[b] if b >= 0 else "global" for b in bins] == want_bins
    # the same through the streaming path, and on one thread
    streamed = models.predict_shards([generated["test"]], routing=routing, partition=partition)
    assert np.array_equal(streamed["prediction"], want)
    assert np.array_equal(streamed["bin"], bins)
    assert streamed["summary"]["rows"] == len(want)
    one = models.predict(test_rows["x"], routing=routing, partition=partition, teff=test_rows["teff"],
                         mh=test_rows["mh"], snr=test_rows["snr"], threads=1)
    assert np.array_equal(one, got)


def test_one_row_and_other_dtypes(models, test_rows):
    x = test_rows["x"]
    all_rows = models.predict(x)
    assert models.predict(x[3]) == all_rows[3]
    assert np.array_equal(models.predict(x.astype(np.float32)), models.predict(x.astype(np.float32).astype(np.float64)))
    assert np.array_equal(models.predict(np.asfortranarray(x)), all_rows)
    assert np.array_equal(models.predict(x[::2]), all_rows[::2])


def test_experts_are_the_saved_ones(models, test_rows):
    g = models.expert()
    x = test_rows["x"]
    np.testing.assert_allclose(models.predict(x), g["intercept"] + x @ g["w"], rtol=1e-12)
    assert models.expert("global")["alpha"] == g["alpha"]
    cool = models.expert(("teff_mh", "Cool Poor"))
    assert cool is None or cool["w"].shape == (models.pixels,)
    assert models.provenance["rows"] == 1000


def test_packed_structured_fields_are_read_as_values(models, generated, test_rows):
    """Regression: a field of a packed structured array (h5py's params
    table, stride 129 bytes) was read with a stride of 16 elements by
    rust-numpy's view, routing nearly every row outside the bins. Arrays
    now go through numpy.require(dtype=float64, "CA") first."""
    _, _, params, _ = read_shard(generated["test"])
    assert params["T_eff"].strides[0] % 8 != 0
    strided = models.predict(test_rows["x"], routing="oracle", teff=params["T_eff"], mh=params["M_H"], return_bins=True)
    copied = models.predict(test_rows["x"], routing="oracle", teff=np.array(params["T_eff"]),
                            mh=np.array(params["M_H"]), return_bins=True)
    assert np.array_equal(strided[0], copied[0]) and np.array_equal(strided[1], copied[1])
    assert np.mean(copied[1] >= 0) > 0.8
