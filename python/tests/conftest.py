"""Shared fixtures: shards written by h5py alone, shards and an experiment
from the ``gramstream`` binary, and the bins of rows computed in numpy.

The ``gramstream`` binary is ``$GRAMSTREAM_BIN``, else the newest of the
repository's ``target/{release,debug}/gramstream``. Tests that need it are
skipped without one, except under ``CI`` where that is a failure (like the
Rust interop tests without Python).
"""

import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

FLUX = "dataset/arrays/flux/value"
ERROR = "dataset/arrays/error/value"
NOISY = "dataset/arrays/noisy/value"
PARAMS = "dataset/params/table"
WAVE = "spectrumdataset/wave"

# The library's default partitions (src/partition.rs).
TEFF_EDGES = [3750.0, 4500.0, 5250.0, 6000.0]
MH_EDGES = [-2.0, -1.0, 0.0, 0.5]
SNR_EDGES = [2.0, 4.0, 7.0]


def closed_bin(v, edges):
    """Bins [e0, e1), …, [e_{n-1}, e_n]; -1 outside (NaN too)."""
    v = np.asarray(v, dtype=float)
    inside = (v >= edges[0]) & (v <= edges[-1])
    b = np.searchsorted(edges[1:-1], v, side="right")
    return np.where(inside, b, -1)


def teff_mh_slot(teff, mh):
    """Slot of the 3 × 3 grid: 3·t + m, or 9 for rows outside every bin."""
    t, m = closed_bin(teff, TEFF_EDGES), closed_bin(mh, MH_EDGES)
    return np.where((t >= 0) & (m >= 0), 3 * t + m, 9)


def snr_slot(snr):
    """X (≤ 2), L (2, 4], M (4, 7], H (> 7)."""
    return np.searchsorted(SNR_EDGES, np.asarray(snr, dtype=float), side="left")


def spectra(rng, n, p):
    """Spectra whose log g is linear-ish in the flux, with T_eff, [M/H] and
    SNR spread over every bin and some rows outside the T_eff × [M/H] grid."""
    wave = np.linspace(7100.0, 8850.0, p)
    teff = rng.uniform(3600.0, 6150.0, n)
    mh = rng.uniform(-2.4, 0.7, n)
    logg = rng.uniform(1.0, 5.0, n)
    base = 1.0 + 0.2 * np.sin(wave / 90.0)
    flux = base[None, :] * (1 + 0.05 * (teff[:, None] - 4800) / 1000)
    flux -= 0.03 * logg[:, None] * np.cos(wave / 60.0)[None, :] * (1 + 0.2 * mh[:, None])
    flux += 0.01 * rng.standard_normal((n, p))
    snr_target = rng.uniform(0.8, 10.0, n)
    error = np.abs(flux) / snr_target[:, None] * (1 + 0.3 * rng.random((n, p)))
    params = np.zeros(n, dtype=[("T_eff", "<f8"), ("M_H", "<f8"), ("log_g", "<f8"), ("id", "<i8")])
    params["T_eff"], params["M_H"], params["log_g"], params["id"] = teff, mh, logg, np.arange(n)
    return wave, flux, error, params


def write_shard(path, wave, flux, error, params, noisy=None, drop=()):
    """A pfsspec-layout shard written by h5py (params as compound fields)."""
    with h5py.File(path, "w") as f:
        f.create_dataset(FLUX, data=flux)
        f.create_dataset(ERROR, data=error)
        if noisy is not None:
            f.create_dataset(NOISY, data=noisy)
        names = [n for n in params.dtype.names if n not in drop]
        table = np.zeros(len(params), dtype=[(n, params.dtype[n]) for n in names])
        for n in names:
            table[n] = params[n]
        f.create_dataset(PARAMS, data=table)
        f.create_dataset(WAVE, data=wave)


def read_shard(path):
    """flux, error, params (structured) and noisy (or None) as h5py reads them, in f64."""
    with h5py.File(path, "r") as f:
        flux = f[FLUX][...].astype(np.float64)
        error = f[ERROR][...].astype(np.float64)
        noisy = f[NOISY][...].astype(np.float64) if NOISY in f else None
        params = f[PARAMS][...]
    return flux, error, params, noisy


@pytest.fixture(scope="session")
def h5py_shards(tmp_path_factory):
    """Two training shards (700 rows × 16 pixels) and a test shard with a
    stored noisy array, written by h5py alone."""
    d = tmp_path_factory.mktemp("h5py")
    rng = np.random.default_rng(11)
    paths = []
    for name, n in (("train_0.h5", 700), ("train_1.h5", 650)):
        wave, flux, error, params = spectra(rng, n, 16)
        write_shard(d / name, wave, flux, error, params)
        paths.append(d / name)
    wave, flux, error, params = spectra(rng, 300, 16)
    noisy = np.maximum(flux + error * rng.standard_normal(flux.shape), 0.0)
    write_shard(d / "test.h5", wave, flux, error, params, noisy=noisy)
    return {"train": paths, "test": d / "test.h5", "dir": d}


def _find_binary():
    env = os.environ.get("GRAMSTREAM_BIN")
    if env:
        return Path(env) if Path(env).is_file() else None
    found = [REPO / "target" / p / "gramstream" for p in ("release", "debug")]
    found = [p for p in found if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


@pytest.fixture(scope="session")
def gramstream_bin():
    """The ``gramstream`` command-line tool, or skip (fail under CI)."""
    path = _find_binary()
    if path is None:
        msg = "no gramstream binary: set GRAMSTREAM_BIN or build it (cargo build --release)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)

    def run(*args, check=True):
        r = subprocess.run([str(path), *map(str, args)], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError(f"gramstream {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr}")
        return r

    return run


@pytest.fixture(scope="session")
def generated(tmp_path_factory, gramstream_bin):
    """Synthetic BOSZ-like shards from ``gramstream generate``: 2 × 500
    training rows and a 300-row test shard (stored noisy array), 1024
    pixels (the gate's line windows need ~1.7 Å pixels), params as compound
    fields (readable by h5py)."""
    d = tmp_path_factory.mktemp("generated")
    gramstream_bin(
        "generate", "--out", d, "--train-shards", 2, "--rows", 500, "--test-rows", 300,
        "--pixels", 1024, "--params-format", "fields",
    )
    return {
        "train": [d / "train_0" / "dataset.h5", d / "train_1" / "dataset.h5"],
        "test": d / "test" / "dataset.h5",
        "dir": d,
    }


def experiment_config(generated, **overrides):
    """A small experiment on the generated shards: one seed, no folds (α by
    GCV: one decomposition per group), the gate, no plots."""
    config = {
        "name": "pytest",
        "data": {
            "train": [str(p) for p in generated["train"]],
            "test": str(generated["test"]),
            "test_spectra": "stored",
        },
        "noise": {"levels": [1.0], "seeds": [42]},
        "stats": {"partitions": ["teff_mh", "snr"], "folds": 1, "threads": 0},
        "ridge": {"alphas": "1e-1:1e4:6", "select": "gcv"},
        "gate": {"sample": 600, "c": 1.0},
        "output": {"plots": False},
    }
    for k, v in overrides.items():
        config[k] = v
    return config


@pytest.fixture(scope="session")
def experiment(tmp_path_factory, generated):
    """An experiment run through the bindings: its output directory and results."""
    import gramstream

    out = tmp_path_factory.mktemp("experiment") / "out"
    results = gramstream.run_experiment(experiment_config(generated), out=out)
    return {"out": out, "results": results, "models": out / "models.h5"}
