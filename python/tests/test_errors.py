"""Bad input raises the exception of its kind, with the library's one-line
message naming the file (and dataset, row, column), never a panic; the
interpreter carries on."""

import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

import gramstream
from conftest import read_shard, write_shard


def wave_of(path):
    with h5py.File(path, "r") as f:
        return f["spectrumdataset/wave"][...]


@pytest.fixture(scope="module")
def stats(h5py_shards):
    return gramstream.accumulate(h5py_shards["train"], noise=0.0, folds=2)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.h5"
    for call in (lambda: gramstream.accumulate([path]), lambda: gramstream.Statistics.open(path),
                 lambda: gramstream.Models.open(path)):
        with pytest.raises(gramstream.DataError) as e:
            call()
        assert e.value.kind == "Io" and e.value.path == str(path) and e.value.errno == 2
        assert str(e.value).startswith(str(path))


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("not HDF5\n")
    with pytest.raises(gramstream.DataError) as e:
        gramstream.accumulate([path])
    assert e.value.kind == "Hdf5" and e.value.path == str(path)
    assert str(path) in str(e.value) and "not an HDF5 file" in str(e.value)


def test_missing_column(h5py_shards, tmp_path):
    flux, error, params, _ = read_shard(h5py_shards["train"][0])
    path = tmp_path / "no_logg.h5"
    write_shard(path, wave_of(h5py_shards["train"][0]), flux, error, params, drop=("log_g",))
    with pytest.raises(gramstream.DataError) as e:
        gramstream.accumulate([path])
    v = e.value
    assert v.kind == "MissingColumn" and v.column == "log_g" and v.path == str(path)
    assert v.dataset == "/dataset/params/table" and "T_eff" in v.available
    assert str(v).startswith(f"{path}: /dataset/params/table: column \"log_g\" not found")


def test_bad_value_names_row_and_column(h5py_shards, tmp_path):
    flux, error, params, _ = read_shard(h5py_shards["train"][0])
    flux[17, 5] = np.nan
    path = tmp_path / "nan.h5"
    write_shard(path, wave_of(h5py_shards["train"][0]), flux, error, params)
    with pytest.raises(gramstream.DataError) as e:
        gramstream.accumulate([path])
    v = e.value
    assert (v.kind, v.row, v.column, v.path) == ("BadValue", 17, "pixel 5", str(path))
    # skipped and counted instead
    s = gramstream.accumulate([path], skip_bad_rows=True)
    assert (s.rows, s.skipped) == (699, 1)


def test_bad_alpha(stats):
    ridge = stats.ridge()
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(gramstream.InvalidParameterError) as e:
            ridge.coefficients(bad)
        assert e.value.name == "alpha" and isinstance(e.value, ValueError)
        with pytest.raises(gramstream.InvalidParameterError):
            ridge.gcv([1.0, bad])
        with pytest.raises(gramstream.InvalidParameterError):
            ridge.cv_mse(bad)
    with pytest.raises(gramstream.InvalidParameterError, match="alpha"):
        ridge.gcv("ten")


def test_too_few_rows_and_singular(h5py_shards, tmp_path):
    flux, error, params, _ = read_shard(h5py_shards["train"][0])
    path = tmp_path / "few.h5"
    keep = slice(0, 8)  # 8 rows < 16 pixels: singular covariance
    write_shard(path, wave_of(h5py_shards["train"][0]), flux[keep], error[keep], params[keep])
    s = gramstream.accumulate([path], noise=0.0)
    ridge = s.ridge()
    ridge.coefficients(1.0)
    with pytest.raises(gramstream.FitError) as e:
        ridge.coefficients(0.0)
    assert e.value.kind == "Singular" and e.value.rows == 8
    empty = next(g for g in s.groups()[1:] if s.n(g) < 2)
    with pytest.raises(gramstream.FitError) as e:
        s.ridge(empty)
    assert e.value.kind == "TooFewRows" and e.value.need == 2


def test_bad_groups(stats):
    for bad, name in ((("colour", 1), "partition"), (("teff_mh", 10), "group"), (("snr", "outside bins"), "group"),
                      (("snr", "Q"), "group"), ("everything", "group"), (("snr",), "group")):
        with pytest.raises(gramstream.InvalidParameterError) as e:
            stats.n(bad)
        assert e.value.name == name, bad
    with pytest.raises(gramstream.InvalidParameterError) as e:
        stats.n(fold=2)
    assert e.value.name == "fold"


def test_bad_routing_and_shapes(experiment, generated):
    models = gramstream.Models.open(experiment["models"])
    x = np.ones((3, models.pixels))
    with pytest.raises(gramstream.InvalidParameterError) as e:
        models.predict(x, routing="nearest")
    assert e.value.name == "routing"
    with pytest.raises(gramstream.InvalidParameterError) as e:
        models.predict(x, routing="oracle", partition="colour")
    assert e.value.name == "partition"
    with pytest.raises(gramstream.InvalidParameterError, match="needs teff and mh"):
        models.predict(x, routing="oracle")
    with pytest.raises(gramstream.InvalidParameterError) as e:
        models.predict(x, routing="soft_gate", partition="snr")
    assert e.value.name == "partition"
    with pytest.raises(gramstream.ShapeError):
        models.predict(np.ones((3, models.pixels + 1)))
    with pytest.raises(gramstream.ShapeError):
        models.predict(x, routing="oracle", teff=[5000.0], mh=[0.0, 0.0, 0.0])
    x[1, 2] = np.inf
    with pytest.raises(gramstream.InvalidParameterError, match="row 1, pixel 2"):
        models.predict(x)
    with pytest.raises(gramstream.InvalidParameterError, match="flux"):
        models.predict("spectra")


def test_outputs_never_overwrite_inputs(h5py_shards, stats, tmp_path):
    shard = h5py_shards["train"][0]
    before = shard.read_bytes()
    with pytest.raises(gramstream.OutputError) as e:
        gramstream.accumulate([shard], out=shard)
    assert e.value.path == str(shard)
    with pytest.raises(gramstream.OutputError):
        stats.save(shard)
    assert shard.read_bytes() == before
    stats.save(tmp_path / "s.h5")
    saved = gramstream.Statistics.open(tmp_path / "s.h5")
    with pytest.raises(gramstream.OutputError):
        saved.save(tmp_path / "s.h5")


def test_statistics_file_is_not_models(experiment, stats, tmp_path):
    stats.save(tmp_path / "s.h5")
    with pytest.raises(gramstream.DataError) as e:
        gramstream.Models.open(tmp_path / "s.h5")
    assert str(tmp_path / "s.h5") in str(e.value)
    with pytest.raises(gramstream.DataError):
        gramstream.Statistics.open(experiment["models"])


def test_config_errors(generated, tmp_path):
    from conftest import experiment_config

    with pytest.raises(gramstream.ConfigError, match="unknown field `colour`"):
        gramstream.run_experiment(dict(experiment_config(generated), colour="red"), out=tmp_path / "x")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[data]\ntrain = ["a.h5"\n')
    with pytest.raises(gramstream.ConfigError) as e:
        gramstream.run_experiment(bad)
    assert e.value.path == str(bad) and e.value.line is not None
    with pytest.raises(gramstream.ConfigError, match="no such file"):
        gramstream.run_experiment({"name": "x", "data": {"train": ["missing.h5"], "test": "missing.h5"}})


def test_the_interpreter_survives_bad_calls(tmp_path):
    """Bad calls in a fresh interpreter: each raises, none aborts, and the
    process ends normally."""
    script = textwrap.dedent(f"""
        import numpy as np, gramstream
        bad = [
            lambda: gramstream.accumulate([]),
            lambda: gramstream.accumulate(["{tmp_path}/none.h5"]),
            lambda: gramstream.Statistics.open("/"),
            lambda: gramstream.merge([], "{tmp_path}/m.h5"),
            lambda: gramstream.folds_of([1, 2], seed=1, shard_index=0, folds=0),
            lambda: gramstream.add_noise(np.ones((2, 3)), np.ones((3, 2)), noise=1, seed=1, shard_index=0),
            lambda: gramstream.add_noise(np.ones((2, 3)), np.ones((2, 3)), noise=-1, seed=1, shard_index=0),
            lambda: gramstream.snr(np.ones((2, 3)), np.ones((2, 4))),
            lambda: gramstream.run_experiment(42),
            lambda: gramstream.accumulate(["x.h5"], progress="yes"),
        ]
        kinds = []
        for call in bad:
            try:
                call()
            except gramstream.GramstreamError as e:
                kinds.append(type(e).__name__)
        print(",".join(kinds))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().split(",") == [
        "InvalidParameterError", "DataError", "DataError", "InvalidParameterError", "InvalidParameterError",
        "ShapeError", "InvalidParameterError", "ShapeError", "InvalidParameterError", "InvalidParameterError",
    ], r.stdout
    assert "panicked" not in r.stderr
