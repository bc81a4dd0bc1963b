"""Reads a gramstream statistics file with h5py and checks the documented layout.

Usage: read_stats.py STATS_FILE EXPECT_JSON

EXPECT_JSON (written by tests/stats_file.rs) holds values the file must
contain, among them one accumulator's X^T X as a full symmetric matrix, which
is rebuilt here from the packed lower triangle exactly as the module docs of
src/stats/file.rs tell users to. Prints "ok" on success; exits non-zero with
the reason otherwise.
"""

import json
import sys

import h5py
import numpy as np


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def text(value):
    """Fixed-length string attributes come back as bytes."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def main():
    path, expect_path = sys.argv[1], sys.argv[2]
    with open(expect_path) as f:
        want = json.load(f)
    p = want["pixels"]
    a_count = want["accumulators"]
    length = p * (p + 1) // 2

    with h5py.File(path, "r") as f:
        attrs = {k: (text(v) if isinstance(v, (bytes, str)) else v) for k, v in f.attrs.items()}
        check(isinstance(f.attrs["kind"], bytes), "strings are fixed-length (read as bytes)")
        check(attrs["format"] == "gramstream.stats", f"format {attrs['format']!r}")
        check(int(attrs["format_version"]) == want["format_version"], "format_version")
        check(attrs["kind"] == want["kind"], f"kind {attrs['kind']!r}")
        check(int(attrs["pixels"]) == p, "pixels")
        check(int(attrs["accumulators"]) == a_count, "accumulators")
        check(int(attrs["rows"]) == want["rows"], "rows")
        check(attrs["mode"] == want["mode"], "mode")
        check(int(attrs["folds"]) == want["folds"], "folds")
        check(attrs["created_by"].startswith("gramstream "), "created_by")

        header = json.loads(attrs["header_json"])
        check("shift_x" not in header and "shards" not in header, "header_json holds no arrays")
        check(header["pixels"] == p and header["rows"] == want["rows"], "header_json agrees")
        check(header["noise"]["seed"] == int(attrs["seed"]), "seed agrees")
        check(header["noise"]["level"] == float(attrs["noise_level"]), "noise level agrees")
        check(header["shift_y"] == float(attrs["shift_y"]), "shift_y agrees")
        partitions = json.loads(attrs["partitions"])
        check(partitions == header["partitions"], "partitions agree")
        check(partitions["folds"] == want["folds"], "folds in partitions")
        check(json.loads(attrs["layout"]) == header["layout"], "layout agrees")

        shift_x = f["shift_x"][()]
        check(shift_x.shape == (p,) and shift_x.dtype == np.float64, "shift_x shape")
        check(shift_x.tolist() == want["shift_x"], "shift_x values")

        paths = [s.decode() if isinstance(s, bytes) else s for s in f["shards/path"][()]]
        check(paths == want["shards"], f"shard paths {paths}")
        check(f["shards/index"][()].tolist() == want["shard_index"], "shard indices")
        s = len(paths)
        for name in ["rows", "bytes", "index", "mtime_ns"]:
            check(f["shards/" + name].shape == (s,), f"shards/{name} shape")

        xtx_ds = f["accumulators/xtx"]
        check(text(xtx_ds.attrs["packing"]).startswith("lower triangle, row-major"), "packing")
        check(f["shards/path"].fletcher32, "shard paths are checksummed")

        acc = f["accumulators"]
        shapes = {
            "n": (a_count,),
            "sum_y": (a_count,),
            "sum_yy": (a_count,),
            "sum_x": (a_count, p),
            "xty": (a_count, p),
            "xtx": (a_count, length),
        }
        for name, shape in shapes.items():
            ds = acc[name]
            check(ds.shape == shape, f"accumulators/{name} shape {ds.shape} != {shape}")
            check(ds.fletcher32, f"accumulators/{name} has no Fletcher32 checksum")
        check(acc["n"].dtype == np.uint64, "n is u64")
        check(xtx_ds.chunks == (1, length), f"xtx chunks {xtx_ds.chunks}")
        check(int(acc["n"][()].sum()) > 0, "rows in accumulators")

        a = want["accumulator"]
        check(int(acc["n"][a]) == want["n"], "n of the accumulator")
        packed = xtx_ds[a]
        g = np.zeros((p, p))
        g[np.tril_indices(p)] = packed
        g = g + np.tril(g, -1).T
        full = np.array(want["xtx_full"])
        check(np.array_equal(g, g.T), "reconstruction is symmetric")
        check(np.array_equal(g, full), "X^T X rebuilt from the packed triangle")
        check(acc["xty"][a].tolist() == want["xty"], "xty")

        res = f["reservoir"]
        keys = res["keys"][()]
        n = len(keys)
        check(keys.tolist() == want["reservoir_keys"], "reservoir keys")
        check(np.all(np.diff(keys.astype(np.float64)) >= 0), "keys ascend")
        check(res["origin"].shape == (n, 2), "origin shape")
        check(res["x"].shape == (n, p), "reservoir x shape")
        check(res["params"].shape == (n, 4), "params shape")
        check(int(res.attrs["capacity"]) >= n, "capacity")

        if want["kind"] == "checkpoint":
            cur = f["cursor"]
            for k in ["source", "row", "block_rows"]:
                check(k in cur.attrs, f"cursor attribute {k}")
            for i, s_rows in enumerate(want["staged_rows"]):
                if s_rows == 0:
                    check(f"staged_y_{i}" not in cur, f"staged_y_{i} absent when empty")
                else:
                    check(cur[f"staged_x_{i}"].shape == (s_rows, p), f"staged_x_{i} shape")
                    check(cur[f"staged_y_{i}"].shape == (s_rows,), f"staged_y_{i} shape")
        else:
            check("cursor" not in f, "no cursor in complete statistics")
    print("ok")


if __name__ == "__main__":
    main()
