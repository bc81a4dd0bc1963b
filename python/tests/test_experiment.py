"""An experiment from Python: a dict or a TOML file in, results.json as a dict out."""

import json

import gramstream
from conftest import experiment_config

PER_BIN_COLUMNS = (
    "noise,seed,partition,bin,name,alpha,selected_by,n_train,n_test,r2,r2_global,delta_r2,"
    "mae,mae_global,rmse,r2_soft,r2_hard,routing_accuracy"
).split(",")


def test_results_have_the_documented_keys(experiment):
    r = experiment["results"]
    assert r["schema"] == "gramstream.results/1"
    for key in ("data", "global", "moe", "gate", "timing_s", "runs", "summary"):
        assert key in r, key
    assert set(r["moe"]) == {"teff_mh", "snr"}
    for key in ("oracle", "soft_gate", "hard_gate", "bins"):
        assert key in r["moe"]["teff_mh"], key
    assert len(r["runs"]) == 1
    assert 0.0 < r["global"]["r2"] < 1.0
    with open(experiment["out"] / "results.json") as f:
        assert json.load(f) == r
    assert gramstream.read_results(experiment["out"]) == r


def test_per_bin_is_a_dataframe(experiment):
    df = gramstream.per_bin(experiment["out"])
    assert list(df.columns) == PER_BIN_COLUMNS
    assert set(df["partition"]) == {"teff_mh", "snr"}
    assert (df["seed"] == 42).all()


def test_a_toml_file_and_force(generated, experiment, tmp_path):
    config = experiment_config(generated, name="from_file")
    lines = [
        'name = "from_file"',
        "[data]",
        "train = [" + ", ".join(json.dumps(str(p)) for p in generated["train"]) + "]",
        f"test = {json.dumps(str(generated['test']))}",
        'test_spectra = "stored"',
        "[noise]",
        "seeds = [42]",
        "[stats]",
        "folds = 1",
        "[ridge]",
        'alphas = "1e-1:1e4:6"',
        'select = "gcv"',
        "[gate]",
        "sample = 600",
        "[output]",
        "plots = false",
    ]
    path = tmp_path / "exp.toml"
    path.write_text("\n".join(lines) + "\n")
    lines_seen = []
    r = gramstream.run_experiment(path, progress=lines_seen.append)
    assert (tmp_path / "results" / "from_file" / "results.json").exists()
    assert any(line.startswith("[run 1/1] accumulate") for line in lines_seen)
    # same configuration as the dict: the same numbers
    assert r["global"] == experiment["results"]["global"]
    try:
        gramstream.run_experiment(path)
        raise AssertionError("an existing output was replaced without force")
    except gramstream.OutputError as e:
        assert "--force replaces it" in str(e)
    gramstream.run_experiment(path, force=True)
    assert config["name"] == "from_file"


def test_dict_paths_are_relative_to_the_current_directory(generated, tmp_path, monkeypatch):
    monkeypatch.chdir(generated["dir"])
    config = experiment_config(generated, name="relative")
    config["data"]["train"] = ["train_0/dataset.h5", "train_1/dataset.h5"]
    config["data"]["test"] = "test/dataset.h5"
    config["gate"] = {"enabled": False}
    config["stats"]["partitions"] = ["snr"]
    r = gramstream.run_experiment(config, out=tmp_path / "rel")
    assert r["data"]["train_rows"] == 1000
