"""The pass fed with numpy chunks: the statistics of ``accumulate`` over the
same rows in files, bit for bit; rows checked as a shard's are."""

import numpy as np
import pytest

import gramstream
from conftest import read_shard
from test_accumulate import same_sums


def feed(acc, paths, sizes, dtype=np.float64):
    """Adds each shard's rows, as h5py reads them, in chunks of the given sizes (cycled)."""
    for i, path in enumerate(paths):
        if i:
            acc.next_shard()
        flux, error, params, _ = read_shard(path)
        r, k = 0, 0
        while r < len(flux):
            n = min(sizes[k % len(sizes)], len(flux) - r)
            sl = slice(r, r + n)
            cast = dtype if callable(dtype) and not isinstance(dtype, type) else (lambda x: x.astype(dtype))
            acc.add(cast(flux[sl]), cast(error[sl]), teff=params["T_eff"][sl],
                    mh=params["M_H"][sl], log_g=params["log_g"][sl])
            r, k = r + n, k + 1


@pytest.mark.parametrize("mode,sizes", [("cells", [1, 97, 300]), ("per_bin", [700])])
def test_numpy_fed_statistics_equal_file_fed_bitwise(h5py_shards, mode, sizes, tmp_path):
    shards = h5py_shards["train"]
    opts = dict(noise=1.0, seed=5, folds=3, gate_sample=40, mode=mode, first_shard_index=2)
    files = gramstream.accumulate(shards, **opts)
    acc = gramstream.Accumulator(16, **opts)
    feed(acc, shards, sizes)
    pushed = acc.finish()
    assert pushed.rows == files.rows == 1350
    assert [s["rows"] for s in pushed.shards] == [700, 650]
    assert [s["index"] for s in pushed.shards] == [2, 3]
    same_sums(pushed, files, files.groups())
    shift_p, shift_f = pushed.shift, files.shift
    assert np.array_equal(shift_p[0], shift_f[0]) and shift_p[1] == shift_f[1]
    for k in ("x", "teff", "log_g", "snr", "shard", "row"):
        assert np.array_equal(pushed.gate_sample()[k], files.gate_sample()[k]), k
    # and so is everything solved from them
    for g in (None, ("teff_mh", 4)):
        assert np.array_equal(pushed.ridge(g).cv_mse([0.1, 10.0]), files.ridge(g).cv_mse([0.1, 10.0]))
    pushed.save(tmp_path / "pushed.h5")
    same_sums(gramstream.Statistics.open(tmp_path / "pushed.h5"), files, files.groups())


def test_float32_chunks_are_widened_exactly(h5py_shards):
    """Spectra handed over in float32 give the statistics of the same
    float32 values widened to f64 (as the reader widens a float32 shard)."""
    shards = h5py_shards["train"][:1]
    a = gramstream.Accumulator(16, noise=1.0, partitions=["teff_mh"])
    feed(a, shards, [128], dtype=np.float32)
    b = gramstream.Accumulator(16, noise=1.0, partitions=["teff_mh"])
    feed(b, shards, [700], dtype=lambda x: x.astype(np.float32).astype(np.float64))
    c = gramstream.Accumulator(16, noise=1.0, partitions=["teff_mh"])
    feed(c, shards, [700])
    a, b, c = a.finish(), b.finish(), c.finish()
    same_sums(a, b, a.groups())
    assert not np.array_equal(a.raw_sums()["xtx"], c.raw_sums()["xtx"]), "float32 rounding is visible"


def test_pushed_rows_are_checked_and_errors_name_the_row(h5py_shards):
    flux, error, params, _ = read_shard(h5py_shards["train"][0])
    keys = dict(teff=params["T_eff"][:10], mh=params["M_H"][:10], log_g=params["log_g"][:10])
    acc = gramstream.Accumulator(16, noise=1.0)
    bad = flux[:10].copy()
    bad[7, 3] = np.inf
    with pytest.raises(gramstream.DataError) as e:
        acc.add(bad, error[:10], **keys)
    assert str(e.value) == "<pushed rows, shard 0>: flux: row 7, column pixel 3: non-finite flux inf"
    assert e.value.row == 7
    with pytest.raises(gramstream.InvalidParameterError, match="error"):
        acc.add(flux[:10], None, **keys)
    with pytest.raises(gramstream.ShapeError):
        acc.add(flux[:10, :15], error[:10, :15], **keys)
    with pytest.raises(gramstream.ShapeError):
        acc.add(flux[:10], error[:10], teff=params["T_eff"][:9], mh=keys["mh"], log_g=keys["log_g"])
    acc.add(flux[:10], error[:10], **keys)
    stats = acc.finish()
    assert stats.rows == 10
    with pytest.raises(gramstream.InvalidParameterError, match="finished"):
        acc.add(flux[:10], error[:10], **keys)
    with pytest.raises(gramstream.InvalidParameterError):
        gramstream.Accumulator(0)
