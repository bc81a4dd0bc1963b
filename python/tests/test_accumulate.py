"""The pass from Python: the same statistics as ``gramstream accumulate``,
in memory or in a file, split and merged, with progress reports."""

import time

import numpy as np
import pytest

import gramstream


def same_sums(a, b, groups):
    for g in groups:
        sa, sb = a.raw_sums(None if g == "global" else g), b.raw_sums(None if g == "global" else g)
        for k in ("n", "sum_y", "sum_yy"):
            assert sa[k] == sb[k], (g, k)
        for k in ("sum_x", "xty", "xtx", "shift_x"):
            assert np.array_equal(sa[k], sb[k]), (g, k)


def test_memory_file_and_cli_give_the_same_bits(h5py_shards, gramstream_bin, tmp_path):
    shards = h5py_shards["train"]
    opts = dict(noise=1.0, seed=3, folds=2, gate_sample=50)
    memory = gramstream.accumulate(shards, **opts)
    filed = gramstream.accumulate(shards, out=tmp_path / "py.h5", threads=1, **opts)
    gramstream_bin("accumulate", "--out", tmp_path / "cli.h5", "--noise", 1, "--seed", 3, "--folds", 2,
                   "--gate-sample", 50, *shards)
    cli = gramstream.Statistics.open(tmp_path / "cli.h5")
    assert memory.path is None and filed.path == str(tmp_path / "py.h5")
    assert memory.rows == filed.rows == cli.rows == 1350
    groups = cli.groups()
    same_sums(memory, cli, groups)
    same_sums(filed, cli, groups)
    for k in ("x", "teff", "log_g", "snr", "shard", "row"):
        assert np.array_equal(memory.gate_sample()[k], cli.gate_sample()[k])
    assert memory.summary["rows"] == 1350 and cli.summary is None
    # saved from memory = written by the pass
    memory.save(tmp_path / "saved.h5")
    same_sums(gramstream.Statistics.open(tmp_path / "saved.h5"), cli, groups)


def test_mixed_precision_is_asked_for_and_equals_the_cli(h5py_shards, gramstream_bin, tmp_path):
    shards = h5py_shards["train"]
    f64 = gramstream.accumulate(shards, noise=1.0, seed=3, folds=2)
    mixed = gramstream.accumulate(shards, noise=1.0, seed=3, folds=2, precision="mixed")
    gramstream_bin("accumulate", "--out", tmp_path / "cli.h5", "--noise", 1, "--seed", 3, "--folds", 2,
                   "--precision", "mixed", *shards)
    cli = gramstream.Statistics.open(tmp_path / "cli.h5")
    assert (f64.precision, mixed.precision, cli.precision) == ("f64", "mixed", "mixed")
    same_sums(mixed, cli, cli.groups())
    # f32 products: the sums move, by no more than f32 rounding of the
    # shifted rows' products allows.
    a, b = f64.raw_sums(None), mixed.raw_sums(None)
    assert a["n"] == b["n"] and a["sum_y"] == b["sum_y"]
    scale = np.max(np.abs(a["xtx"]))
    moved = np.max(np.abs(a["xtx"] - b["xtx"]))
    assert 0 < moved <= 1e-5 * scale, moved / scale
    # The numpy-fed pass takes the option too.
    acc = gramstream.Accumulator(f64.pixels, noise=0.0, precision="mixed")
    assert acc.finish().precision == "mixed"


def test_split_runs_merge_to_the_single_run(h5py_shards, tmp_path):
    a, b = h5py_shards["train"]
    whole = gramstream.accumulate([a, b], noise=1.0, folds=2)
    gramstream.accumulate([a], out=tmp_path / "a.h5", noise=1.0, folds=2)
    gramstream.accumulate([b], out=tmp_path / "b.h5", noise=1.0, folds=2, first_shard_index=1)
    merged = gramstream.merge([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "ab.h5")
    assert merged.rows == whole.rows
    for g in (None, ("teff_mh", 4), ("snr", "M")):
        w1, b1 = whole.ridge(g).coefficients(1.0)
        w2, b2 = merged.ridge(g).coefficients(1.0)
        assert np.max(np.abs(w1 - w2)) <= 1e-10 * np.max(np.abs(w1))
        assert abs(b1 - b2) <= 1e-10 * (1 + abs(b1))
    with pytest.raises(gramstream.IncompatibleError) as e:
        gramstream.merge([tmp_path / "a.h5", tmp_path / "a.h5"], tmp_path / "aa.h5")
    assert e.value.path.endswith("a.h5")


def test_progress_is_reported_and_throttled(h5py_shards):
    calls = []
    gramstream.accumulate(h5py_shards["train"], chunk_rows=16, progress=lambda d, t: calls.append((time.monotonic(), d, t)))
    assert calls, "no progress report"
    assert calls[-1][1:] == (1350, 1350)
    assert all(t == 1350 for _, _, t in calls)
    assert [d for _, d, _ in calls] == sorted(d for _, d, _ in calls)
    gaps = np.diff([c[0] for c in calls[:-1]])
    assert np.all(gaps >= 0.09), gaps


def test_an_exception_in_progress_is_raised_after_the_pass(h5py_shards):
    def boom(done, total):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        gramstream.accumulate(h5py_shards["train"], progress=boom)


def test_options_are_checked_like_the_cli(h5py_shards):
    shards = h5py_shards["train"]
    cases = [
        (dict(noise=-1.0), "noise"),
        (dict(noise=float("nan")), "noise"),
        (dict(folds=0), "folds"),
        (dict(partitions=["colour"]), "partition"),
        (dict(mode="diagonal"), "mode"),
        (dict(precision="f32"), "precision"),
        (dict(mem_budget="lots"), "mem_budget"),
        (dict(mem_budget=0), "mem_budget"),
        (dict(chunk_rows=0), "chunk_rows"),
        (dict(columns={"gravity": "logg"}), "column"),
        (dict(read_path="mmap"), "read_path"),
        (dict(checkpoint="ck.h5"), "checkpoint"),
        (dict(mem_budget="1MiB"), "mem-budget"),
    ]
    for kwargs, name in cases:
        with pytest.raises(gramstream.InvalidParameterError) as e:
            gramstream.accumulate(shards, **kwargs)
        assert e.value.name == name, (kwargs, e.value)
        assert isinstance(e.value, ValueError)
        assert str(e.value).startswith(f"invalid parameter {name}"), str(e.value)


def test_columns_are_renamed(h5py_shards, tmp_path):
    import h5py
    from conftest import read_shard, write_shard

    flux, error, params, _ = read_shard(h5py_shards["train"][0])
    renamed = params.copy()
    renamed.dtype.names = ["T_eff", "M_H", "logg", "id"]
    with h5py.File(h5py_shards["train"][0], "r") as f:
        wave = f["spectrumdataset/wave"][...]
    write_shard(tmp_path / "logg.h5", wave, flux, error, renamed)
    a = gramstream.accumulate([tmp_path / "logg.h5"], columns={"log_g": "logg"}, noise=0.0)
    b = gramstream.accumulate([h5py_shards["train"][0]], noise=0.0)
    assert a.mean()[1] == b.mean()[1]


def test_a_shift_the_default_json_parser_rounds_reopens(h5py_shards, tmp_path):
    """Regression: serde_json's default float parser read header_json's
    shift_y 2.9008093585545414 back as 2.900809358554542 (1 ulp), and the
    file this pass wrote was refused on open ("attribute shift_y: expected
    … (as in header_json)"). Fixed by serde_json's float_roundtrip."""
    shard = h5py_shards["train"][1]
    memory = gramstream.accumulate([shard], noise=1.0, folds=2, first_shard_index=1)
    assert memory.shift[1] == 2.9008093585545414
    filed = gramstream.accumulate([shard], out=tmp_path / "b.h5", noise=1.0, folds=2, first_shard_index=1)
    assert gramstream.Statistics.open(tmp_path / "b.h5").shift[1] == filed.shift[1] == memory.shift[1]


def test_the_gil_is_released_during_the_pass(generated):
    """Another Python thread runs while the pass works (it would not run at
    all if the pass held the GIL)."""
    import threading

    done = threading.Event()
    ticks = []

    def count():
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    start = time.monotonic()
    try:
        gramstream.accumulate(generated["train"], folds=2, threads=1)
    finally:
        end = time.monotonic()
        done.set()
        t.join()
    during = [x for x in ticks if start < x < end]
    # ~1 tick per ms while the pass runs; none if it held the GIL
    assert end - start > 0.05 and len(during) >= 10, (len(during), end - start)
