"""Exceptions of gramstream, by the kind of the library's error.

Every exception is a ``GramstreamError``; its message is the library's
one-line text (what the ``gramstream`` command prints after ``error:``),
naming the file, dataset, row and column where they apply. The positions
are also attributes (None when the error has none):

==============  ============================================================
``kind``        the library's error variant (``"MissingColumn"``,
                ``"BadValue"``, ``"TooFewRows"`` …)
``path``        the file (for ``ConfigError`` the configuration file; for
                ``IncompatibleError`` the file that does not fit ``first``)
``dataset``     the HDF5 dataset inside it (``/dataset/params/table``)
``row``         the 0-based row within the shard
``column``      the pixel index or params column
``name``        the parameter, as the CLI and the configs spell it
``line``        the line of a configuration file
==============  ============================================================

Classes (the library's ``Error`` variants they stand for):

* ``DataError``: a shard or statistics file that cannot be read as asked —
  ``Io`` (missing file, permissions; ``errno``), ``Hdf5`` (not HDF5,
  truncated, damaged; ``what``), ``MissingDataset``, ``Layout``,
  ``MissingColumn`` (``available`` lists the columns), ``BadValue``,
  ``Pickle``.
* ``InvalidParameterError`` (also a ``ValueError``): an argument out of
  range or not fitting the others.
* ``ShapeError`` (also a ``ValueError``): arrays that do not fit together.
* ``ConfigError``: an experiment configuration that is not valid.
* ``FitError``: a model the statistics cannot give (too few rows, singular
  at α = 0, no folds for CV, no convergence); ``rows`` and ``need`` where known.
* ``UnfinishedError``: a checkpoint given where statistics are needed.
* ``IncompatibleError``: statistics files that cannot be merged.
* ``OutputError``: an output that would overwrite an input, or exists.
"""

__all__ = [
    "GramstreamError",
    "DataError",
    "InvalidParameterError",
    "ShapeError",
    "ConfigError",
    "FitError",
    "UnfinishedError",
    "IncompatibleError",
    "OutputError",
]


class GramstreamError(Exception):
    """Base class of gramstream's errors; see the module docs for the attributes."""

    kind = None
    path = None
    dataset = None
    row = None
    column = None
    name = None
    line = None


class DataError(GramstreamError):
    """A shard or statistics file cannot be read as asked (I/O, HDF5, layout, values)."""


class InvalidParameterError(GramstreamError, ValueError):
    """An argument is out of range or does not fit the others; ``name`` is the parameter."""


class ShapeError(GramstreamError, ValueError):
    """Arrays given to a function do not fit together."""


class ConfigError(GramstreamError):
    """An experiment configuration is not valid TOML or not runnable; ``path``, ``line``."""


class FitError(GramstreamError):
    """A model cannot be fitted from these statistics (too few rows, singular, no folds)."""


class UnfinishedError(GramstreamError):
    """A checkpoint of an unfinished pass was given where statistics are needed."""


class IncompatibleError(GramstreamError):
    """Statistics files that cannot be merged (configuration, shards, checkpoint)."""


class OutputError(GramstreamError):
    """An output would overwrite an input, or exists already."""


def _invalid(name, problem):
    """An ``InvalidParameterError`` worded as the library words its own."""
    e = InvalidParameterError(f"invalid parameter {name}: {problem}")
    e.kind = "InvalidParameter"
    e.name = name
    return e
