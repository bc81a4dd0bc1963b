"""Type stubs of the Rust extension ``gramstream._gramstream``.

``gramstream`` re-exports these classes and functions; ``accumulate`` and
``run_experiment`` are wrapped there (``progress=True``, dict configs).
"""

from os import PathLike
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str
INTERVAL_S: float

_Path = Union[str, PathLike]
# None or "global", or (partition, bin): partition by name or index, bin by
# index or name ("Cool Poor", "H", "outside bins").
Group = Union[None, str, Tuple[Union[str, int], Union[str, int]]]
_Array1 = npt.NDArray[np.float64]
_Array2 = npt.NDArray[np.float64]
_ArrayLike = npt.ArrayLike
Progress = Optional[Callable[[int, int], Any]]

class Statistics:
    """Per-bin sufficient statistics of one pass (a file, or in memory)."""

    @staticmethod
    def open(path: _Path) -> "Statistics":
        """Opens and validates a statistics file or a checkpoint."""
    def save(self, path: _Path) -> None:
        """Writes the statistics (atomically; never over a shard or the file read)."""
    @property
    def path(self) -> Optional[str]: ...
    @property
    def pixels(self) -> int: ...
    @property
    def rows(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def noise_level(self) -> float: ...
    @property
    def seed(self) -> int: ...
    @property
    def folds(self) -> int: ...
    @property
    def precision(self) -> str:
        """``"f64"`` or ``"mixed"`` (f32 block products into f64 sums)."""
    @property
    def mode(self) -> str:
        """``"cells"`` or ``"per_bin"``."""
    @property
    def accumulators(self) -> int: ...
    @property
    def is_checkpoint(self) -> bool: ...
    @property
    def partitions(self) -> List[Dict[str, Any]]:
        """Per partition: ``name``, ``bins`` (names), ``slots``, ``definition``."""
    @property
    def shift(self) -> Tuple[_Array1, float]:
        """(x₀, y₀): the shift every sum is taken around."""
    @property
    def shards(self) -> List[Dict[str, Any]]:
        """Per shard read: ``path``, ``rows``, ``bytes``, ``mtime_ns``, ``index``."""
    @property
    def summary(self) -> Optional[Dict[str, Any]]:
        """What the pass did, for statistics made by ``accumulate`` in this process."""
    def groups(self) -> List[Union[str, Tuple[str, int]]]:
        """``"global"``, then ``(partition, slot)`` for every slot."""
    def group_name(self, group: Group = None) -> str: ...
    def n(self, group: Group = None, *, fold: Optional[int] = None) -> int:
        """Rows of a group (of one fold)."""
    def mean(self, group: Group = None, *, fold: Optional[int] = None) -> Tuple[_Array1, float]:
        """(x̄, ȳ) of a group."""
    def covariance(self, group: Group = None, *, fold: Optional[int] = None, ddof: int = 1) -> _Array2:
        """``numpy.cov(X, rowvar=False, ddof=ddof)`` of the group's rows (P × P)."""
    def raw_sums(self, group: Group = None, *, fold: Optional[int] = None) -> Dict[str, Any]:
        """``n``, ``sum_x``, ``sum_y``, ``sum_yy``, ``xty``, ``xtx`` (full), ``shift_x``, ``shift_y``."""
    def ridge(self, group: Group = None, *, threads: int = 0) -> "Ridge":
        """Every Ridge model of a group (one eigendecomposition)."""
    def gate_sample(self) -> Dict[str, npt.NDArray[Any]]:
        """The pass's gate sample: ``x`` (N × P), ``teff``, ``mh``, ``log_g``, ``snr``, ``shard``, ``row``."""

class Ridge:
    """Every Ridge model of one group: scikit-learn's ``Ridge(alpha, fit_intercept=True)`` for any α."""

    @property
    def n(self) -> int: ...
    @property
    def group(self) -> str: ...
    @property
    def folds(self) -> int:
        """Folds with rows."""
    @property
    def eigenvalues(self) -> _Array1: ...
    @property
    def syy(self) -> float: ...
    def coefficients(self, alpha: float) -> Tuple[_Array1, float]:
        """(w, intercept) at α."""
    def predict(self, x: _ArrayLike, alpha: float) -> _Array1: ...
    @overload
    def train_r2(self, alpha: float) -> float: ...
    @overload
    def train_r2(self, alpha: Sequence[float]) -> _Array1: ...
    @overload
    def dof(self, alphas: float) -> float: ...
    @overload
    def dof(self, alphas: Sequence[float]) -> _Array1: ...
    @overload
    def gcv(self, alphas: float) -> float: ...
    @overload
    def gcv(self, alphas: Sequence[float]) -> _Array1: ...
    @overload
    def cv_mse(self, alphas: float) -> float: ...
    @overload
    def cv_mse(self, alphas: Sequence[float]) -> _Array1:
        """Exact K-fold CV MSE as ``gramstream sweep --cv eigh`` computes it (NaN at α = 0)."""

class Models:
    """Saved experts (``models.h5``) and prediction through the library's router."""

    @staticmethod
    def open(path: _Path) -> "Models": ...
    @property
    def path(self) -> str: ...
    @property
    def pixels(self) -> int: ...
    @property
    def noise_level(self) -> float: ...
    @property
    def seed(self) -> int: ...
    @property
    def partitions(self) -> List[Dict[str, Any]]: ...
    @property
    def gate_partition(self) -> Optional[str]: ...
    @property
    def provenance(self) -> Dict[str, Any]: ...
    def expert(self, group: Group = None) -> Optional[Dict[str, Any]]:
        """``w``, ``intercept``, ``alpha``, ``n_train``, ``selected_by`` (None: no expert)."""
    def predict(
        self,
        flux: _ArrayLike,
        *,
        routing: str = "global",
        partition: Union[None, str, int] = None,
        teff: Optional[_ArrayLike] = None,
        mh: Optional[_ArrayLike] = None,
        snr: Optional[_ArrayLike] = None,
        return_bins: bool = False,
        threads: int = 0,
    ) -> Any:
        """Predictions (N,) — a float for one row; with ``return_bins`` also the bins (−1: global).
        ``routing``: ``"global"``, ``"oracle"``, ``"hard_gate"``, ``"soft_gate"``."""
    def predict_shards(
        self,
        shards: Sequence[_Path],
        *,
        routing: str = "global",
        partition: Union[None, str, int] = None,
        noise: Optional[float] = None,
        seed: Optional[int] = None,
        stored_noisy: bool = False,
        chunk_rows: int = 256,
        first_shard_index: int = 0,
        columns: Optional[Sequence[Tuple[str, str]]] = None,
        read_path: str = "auto",
        progress: Progress = None,
    ) -> Dict[str, Any]:
        """``shard``, ``row``, ``id``, ``log_g``, ``prediction``, ``bin`` arrays and a ``summary`` dict."""

def accumulate(
    shards: Sequence[_Path],
    *,
    out: Optional[_Path] = None,
    noise: float = 1.0,
    seed: int = 42,
    partitions: Sequence[str] = ("teff_mh", "snr"),
    folds: int = 1,
    mode: Optional[str] = None,
    mem_budget: Union[None, int, str] = None,
    threads: int = 0,
    first_shard_index: int = 0,
    gate_sample: int = 0,
    chunk_rows: Optional[int] = None,
    block_rows: Optional[int] = None,
    skip_bad_rows: bool = False,
    precision: str = "f64",
    columns: Optional[Sequence[Tuple[str, str]]] = None,
    read_path: str = "auto",
    checkpoint: Optional[_Path] = None,
    checkpoint_every: float = 60.0,
    resume: bool = False,
    progress: Progress = None,
) -> Statistics: ...
def merge(inputs: Sequence[_Path], out: _Path) -> Statistics: ...
def run_experiment(
    *,
    config_path: Optional[_Path] = None,
    config_text: Optional[str] = None,
    base: Optional[_Path] = None,
    out: Optional[_Path] = None,
    force: bool = False,
    mem_budget: Union[None, int, str] = None,
    progress: Optional[Callable[[str], Any]] = None,
) -> str: ...
def folds_of(rows: _ArrayLike, *, seed: int, shard_index: int, folds: int) -> npt.NDArray[np.int64]: ...
def add_noise(
    flux: _ArrayLike, error: _ArrayLike, *, noise: float, seed: int, shard_index: int, first_row: int = 0
) -> _Array2: ...
def snr(flux: _ArrayLike, error: _ArrayLike, noise: float = 1.0) -> _Array1: ...

class Accumulator:
    """The pass fed with numpy chunks (rows in file order) instead of shard files."""
    def __init__(
        self,
        pixels: int,
        *,
        noise: float = 1.0,
        seed: int = 42,
        partitions: Sequence[str] = ("teff_mh", "snr"),
        folds: int = 1,
        mode: Optional[str] = None,
        mem_budget: Union[None, int, str] = None,
        threads: int = 0,
        first_shard_index: int = 0,
        gate_sample: int = 0,
        block_rows: Optional[int] = None,
        skip_bad_rows: bool = False,
        precision: str = "f64",
    ) -> None: ...
    def add(
        self,
        flux: _ArrayLike,
        error: Optional[_ArrayLike] = None,
        *,
        teff: _ArrayLike,
        mh: _ArrayLike,
        log_g: _ArrayLike,
    ) -> None: ...
    def next_shard(self) -> None: ...
    def finish(self) -> Statistics: ...
    @property
    def pixels(self) -> int: ...
