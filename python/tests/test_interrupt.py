"""Ctrl-C in a running pass or experiment: KeyboardInterrupt, no output left."""

import os
import signal

import numpy as np
import pytest

import gramstream
from conftest import spectra, write_shard


@pytest.fixture(scope="module")
def big_shard(tmp_path_factory):
    """One shard large enough that the pass takes a few seconds."""
    d = tmp_path_factory.mktemp("big")
    wave, flux, error, params = spectra(np.random.default_rng(3), 6000, 1024)
    write_shard(d / "big.h5", wave, flux, error, params)
    return d / "big.h5"


def test_ctrl_c_stops_a_pass_and_writes_nothing(big_shard, tmp_path):
    out = tmp_path / "stats.h5"
    seen = []

    def progress(done, total):
        # Ctrl-C at the first report (after ~0.1 s), as a user would press
        # it: SIGINT to the process, handled by Python on the main thread.
        if not seen:
            os.kill(os.getpid(), signal.SIGINT)
        seen.append(done)

    with pytest.raises(KeyboardInterrupt):
        # Five copies of the shard: the pass runs far longer than 0.1 s.
        gramstream.accumulate([big_shard] * 5, out=out, noise=1.0, threads=1, chunk_rows=64,
                              progress=progress)
    assert seen and seen[-1] < 5 * 6000, f"stopped before the end: {seen}"
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [], "no scratch left"
    # The interpreter and the library are fine afterwards.
    assert gramstream.accumulate([big_shard], noise=0.0, partitions=["teff_mh"]).rows == 6000


def test_ctrl_c_or_a_failing_callback_stops_an_experiment(generated, tmp_path):
    from conftest import experiment_config

    config = experiment_config(generated)
    for name, action, error in (
        ("sigint", lambda: os.kill(os.getpid(), signal.SIGINT), KeyboardInterrupt),
        ("raises", lambda: (_ for _ in ()).throw(RuntimeError("stop")), RuntimeError),
    ):
        out = tmp_path / name
        lines = []

        def progress(line):
            lines.append(line)
            if len(lines) == 1:
                action()

        with pytest.raises(error):
            gramstream.run_experiment(config, out=out, progress=progress)
        assert not out.exists(), name
    assert [p.name for p in tmp_path.iterdir()] == [], "no scratch left"
