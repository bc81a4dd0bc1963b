"""gramstream: one-pass, bounded-memory Ridge regression and mixtures of Ridge
experts on stellar spectra stored in HDF5 shards.

The Rust library does the work, with the GIL released; this package is its
Python face:

* :func:`accumulate` — the pass over shard files: per-bin sufficient
  statistics (a :class:`Statistics`), in memory or written to a file;
  :func:`merge` sums the statistics of disjoint shard sets;
* :class:`Statistics` — open, save; rows, means and covariances of any group
  of rows (global, a bin, a fold); :meth:`Statistics.ridge` gives a
  :class:`Ridge`: weights and intercept for any α (scikit-learn's
  ``Ridge(alpha)``), training R², GCV and the exact K-fold CV MSE;
* :class:`Models` — saved experts (``models.h5``) and predictions through
  the library's router (global, oracle, hard and soft gate);
* :func:`run_experiment` — an experiment from a TOML file or a dict, its
  ``results.json`` as a dict; :func:`per_bin` its ``per_bin.csv`` as a
  DataFrame;
* :func:`folds_of`, :func:`add_noise`, :func:`snr` — the pass's fold, noise
  and SNR of rows held in numpy;
* :mod:`gramstream.errors` — the library's errors as exceptions.

* :class:`Accumulator` — the same pass fed with numpy chunks (flux, error,
  T_eff, [M/H], log g) from any loader: the same statistics, bit for bit,
  as :func:`accumulate` over the same rows in files.

Ctrl-C stops :func:`accumulate` and :func:`run_experiment` at their next
chunk or group and raises ``KeyboardInterrupt``; nothing is written.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any, Callable, Mapping, Sequence, Union

from . import _gramstream as _ext
from ._gramstream import (
    Accumulator,
    Models,
    Ridge,
    Statistics,
    __version__,
    add_noise,
    folds_of,
    merge,
    snr,
)
from .errors import (
    ConfigError,
    DataError,
    FitError,
    GramstreamError,
    IncompatibleError,
    InvalidParameterError,
    OutputError,
    ShapeError,
    UnfinishedError,
    _invalid,
)
from .errors import __all__ as _error_names

__all__ = [
    "accumulate",
    "Accumulator",
    "merge",
    "Statistics",
    "Ridge",
    "Models",
    "run_experiment",
    "read_results",
    "per_bin",
    "folds_of",
    "add_noise",
    "snr",
    *_error_names,
    "__version__",
]


def _paths(shards):
    if isinstance(shards, (str, bytes, os.PathLike)):
        return [os.fspath(shards)]
    return [os.fspath(s) for s in shards]


def _progress(progress, desc):
    """The callable ``(done, total)`` for the extension, and what to call at the end."""
    if progress is None or progress is False:
        return None, lambda: None
    if progress is True:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            warnings.warn("progress=True needs tqdm (pip install tqdm): no progress bar", stacklevel=3)
            return None, lambda: None
        bar = {}

        def update(done, total):
            if "bar" not in bar:
                bar["bar"] = tqdm(total=total, desc=desc, unit="rows", unit_scale=True)
            b = bar["bar"]
            b.update(done - b.n)

        def close():
            if "bar" in bar:
                bar["bar"].close()

        return update, close
    if callable(progress):
        return progress, lambda: None
    raise _invalid("progress", f"{progress!r}: give None, True (a tqdm bar) or a callable(done, total)")


_Path = Union[str, "os.PathLike[str]"]


def accumulate(
    shards: _Path | Sequence[_Path],
    *,
    out: _Path | None = None,
    noise: float = 1.0,
    seed: int = 42,
    partitions: str | Sequence[str] = ("teff_mh", "snr"),
    folds: int = 1,
    mode: str | None = None,
    mem_budget: int | str | None = None,
    threads: int = 0,
    first_shard_index: int = 0,
    gate_sample: int = 0,
    chunk_rows: int | None = None,
    block_rows: int | None = None,
    skip_bad_rows: bool = False,
    precision: str = "f64",
    columns: Mapping[str, str] | None = None,
    read_path: str = "auto",
    checkpoint: _Path | None = None,
    checkpoint_every: float = 60.0,
    resume: bool = False,
    progress: bool | Callable[[int, int], Any] | None = None,
) -> Statistics:
    """The pass over shard files: per-bin sufficient statistics, as
    ``gramstream accumulate`` computes them (same options, same defaults,
    the same bits).

    Parameters
    ----------
    shards : path or sequence of paths
        Shard files (HDF5, pfsspec layout); the shard index of each (its
        noise and fold streams) is ``first_shard_index`` + its position.
    out : path, optional
        Write the statistics file there (atomically; never over a shard) and
        return it opened. Without ``out`` the statistics stay in memory
        (``Statistics.save`` writes them later).
    noise : float
        Noise level L (0: the flux as stored; at most 1e6).
    seed : int
        Seed of the noise, the folds and the gate sample.
    partitions : sequence of str
        ``"teff_mh"`` (3 × 3 T_eff × [M/H] bins) and/or ``"snr"`` (X, L, M, H).
    folds : int
        Folds for exact K-fold CV (1: none; at most 64).
    mode : None, "cells" or "per_bin"
        Accumulator keying; None chooses cells when they fit the budget.
    mem_budget : int (bytes) or str ("8GiB"), optional
        Peak-memory budget (default 80 % of available memory); the pass is
        planned within it or refused with the arithmetic.
    threads : int
        Threads, 0 = all cores. The statistics do not depend on it.
    first_shard_index : int
        Shard index of the first shard, for a run split over processes
        (then :func:`merge` the parts).
    gate_sample : int
        Rows kept (priority sample) for training the gate.
    chunk_rows, block_rows : int, optional
        Rows per chunk read; rows staged per Gram update.
    skip_bad_rows : bool
        Skip rows with non-finite values (counted) instead of failing.
    precision : "f64" or "mixed"
        ``"mixed"`` forms each block's products in f32 and adds them into
        the f64 sums (the CLI's ``--precision mixed``: faster, and safe for
        noisy spectra; README "Mixed precision"). The default ``"f64"`` is
        the one for ill-conditioned data.
    columns : dict, optional
        Params column names: ``{"log_g": "logg"}`` (roles teff, mh, log_g).
    read_path : "auto" or "hdf5"
        Memory map where it applies, or always libhdf5.
    checkpoint, checkpoint_every, resume :
        Checkpointing of a pass written to ``out`` (as the CLI's flags).
    progress : None, True or callable
        ``True``: a tqdm bar (if tqdm is installed); a callable is called
        with ``(rows_done, rows_total)`` at most 10 times a second and once
        at the end. An exception it raises is re-raised when the pass ends.

    Returns
    -------
    Statistics

    The GIL is released during the pass; Ctrl-C takes effect when it returns.
    """
    update, close = _progress(progress, "accumulate")
    if isinstance(partitions, str):
        partitions = [partitions]
    try:
        return _ext.accumulate(
            _paths(shards),
            out=None if out is None else os.fspath(out),
            noise=noise,
            seed=seed,
            partitions=list(partitions),
            folds=folds,
            mode=mode,
            mem_budget=mem_budget,
            threads=threads,
            first_shard_index=first_shard_index,
            gate_sample=gate_sample,
            chunk_rows=chunk_rows,
            block_rows=block_rows,
            skip_bad_rows=skip_bad_rows,
            precision=precision,
            columns=None if columns is None else list(dict(columns).items()),
            read_path=read_path,
            checkpoint=None if checkpoint is None else os.fspath(checkpoint),
            checkpoint_every=checkpoint_every,
            resume=resume,
            progress=update,
        )
    finally:
        close()


def run_experiment(
    config: _Path | Mapping[str, Any],
    *,
    out: _Path | None = None,
    force: bool = False,
    mem_budget: int | str | None = None,
    progress: bool | Callable[[str], Any] | None = None,
) -> dict:
    """Runs an experiment as ``gramstream experiment`` does and returns its
    ``results.json`` as a dict.

    Parameters
    ----------
    config : path or dict
        A TOML configuration file (relative paths in it are relative to its
        directory), or the same configuration as a dict — ``{"name": ...,
        "data": {"train": [...], "test": ...}, "stats": {...}, ...}`` —
        whose relative paths are relative to the current directory. The
        format is the README's ("Experiments"); unknown keys are errors.
    out : path, optional
        Output directory (default: the config's ``[output] dir``, else
        ``results/<name>`` beside the config, or in the current directory
        for a dict).
    force : bool
        Replace an existing output directory that holds an experiment.
    mem_budget : int or str, optional
        Peak-memory budget of each pass (overrides ``[stats] mem_budget``).
    progress : None, True or callable
        ``True`` prints each stage's line to stderr; a callable receives it.

    Returns
    -------
    dict
        ``results.json``: ``data``, ``global``, ``moe.<partition>.{oracle,
        soft_gate, hard_gate, bins}``, ``gate``, ``timing_s``, ``runs``,
        ``summary``, … (schema ``gramstream.results/1``).
    """
    if progress is True:
        def progress(line):
            print(line, file=sys.stderr, flush=True)
    elif progress is not None and progress is not False and not callable(progress):
        raise _invalid("progress", f"{progress!r}: give None, True or a callable(line)")
    elif progress is False:
        progress = None
    kwargs = dict(
        out=None if out is None else os.fspath(out),
        force=force,
        mem_budget=mem_budget,
        progress=progress,
    )
    if isinstance(config, Mapping):
        from ._toml import dumps

        directory = _ext.run_experiment(config_text=dumps(dict(config)), base=os.getcwd(), **kwargs)
    elif isinstance(config, (str, os.PathLike)):
        directory = _ext.run_experiment(config_path=os.fspath(config), **kwargs)
    else:
        raise _invalid("config", f"{type(config).__name__}: give a TOML file's path or a dict")
    return read_results(directory)


def read_results(out: _Path) -> dict:
    """``results.json`` of an experiment's output directory, as a dict."""
    with open(os.path.join(os.fspath(out), "results.json"), encoding="utf-8") as f:
        return json.load(f)


def per_bin(out: _Path) -> "pandas.DataFrame":  # noqa: F821
    """``per_bin.csv`` of an experiment's output directory as a pandas
    DataFrame: one row per (noise level, seed, partition, bin) with α,
    training and test rows, R² of the expert and of the global model, ΔR²,
    MAE, RMSE, soft- and hard-gate R² and routing accuracy."""
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError("per_bin needs pandas (pip install pandas)") from e
    return pd.read_csv(os.path.join(os.fspath(out), "per_bin.csv"))
