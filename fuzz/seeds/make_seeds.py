"""Writes the seed corpora of the plan_memory, zero_copy and pickle_names fuzz
targets (the open_shard seeds come from make_shards.py).

    python fuzz/seeds/make_seeds.py fuzz/corpus

The input formats are those the checks in fuzz/checks/mod.rs decode with
their `Bytes` reader (little-endian, zeros past the end).
"""

import pickle
import struct
import sys
from pathlib import Path


def plan_memory(out):
    # flags, nshards-1, chunk mode, chunk arg..., depth, seed u64, then per shard
    # rows u16, pixels-1, ncols, with_error.
    def seed(flags, nshards, mode, chunk, depth, shards):
        b = bytes([flags, nshards - 1, mode])
        b += struct.pack("<H", chunk) if mode == 1 else bytes([chunk])
        b += bytes([depth]) + struct.pack("<Q", 0x1234_5678_9ABC_DEF0)
        for rows, pixels, ncols, err in shards:
            b += struct.pack("<H", rows) + bytes([pixels - 1, ncols, err])
        return b

    seeds = {
        "one_shard": seed(0x10, 1, 3, 6, 2, [(10, 3, 3, 1)]),
        "three_shards_empty_middle": seed(0x00, 3, 1, 4, 1, [(10, 3, 1, 0), (0, 5, 2, 1), (7, 64, 4, 1)]),
        "chunk_zero": seed(0x20, 2, 0, 0, 0, [(5, 2, 0, 0), (5, 2, 0, 0)]),
        "huge_chunk_early_drop": seed(0x41, 4, 2, 0, 3, [(3000, 2, 1, 1), (1, 1, 0, 0), (2, 2, 2, 0), (9, 9, 1, 1)]),
        "chunk_one": seed(0x00, 1, 1, 1, 4, [(33, 1, 1, 1)]),
    }
    for name, data in seeds.items():
        (out / name).write_bytes(data)


def zero_copy(out):
    # dtype, nreads, then offset/rows/cols each as (selector 0, u8) padded to a
    # 27-byte block, then nreads × 20 bytes of (start, end, delta, wrong), then the bytes.
    def seed(dtype, offset, rows, cols, reads, payload):
        h = bytes([dtype, len(reads)])
        sizes = b"".join(bytes([0, v]) for v in (offset, rows, cols))
        h += sizes + bytes(27 - len(sizes))
        for start, end in reads:
            r = bytes([0, start, 0, end, 0, 0])
            h += r + bytes(20 - len(r))
        return h + payload

    f64 = b"".join(struct.pack("<d", x) for x in [1.0, -2.5, float("nan"), float("inf"), 5e-324, 3.0, 7.0, 8.0])
    f32 = b"".join(struct.pack("<f", x) for x in [1.0, -2.5, float("nan"), float("-inf"), 1e-45, 3.0, 7.0, 8.0])
    seeds = {
        "f64_aligned": seed(0, 0, 4, 2, [(0, 4), (1, 3), (2, 2)], f64),
        "f64_unaligned": seed(0, 3, 2, 3, [(0, 2), (1, 2)], b"\xaa\xbb\xcc" + f64),
        "f32": seed(1, 1, 2, 4, [(0, 2), (1, 2), (2, 1)], b"\x00" + f32),
        "does_not_fit": seed(0, 9, 8, 1, [(0, 1)], f64),
        "zero_cols": seed(1, 0, 200, 0, [(0, 200), (5, 9)], b""),
    }
    for name, data in seeds.items():
        (out / name).write_bytes(data)


def pickle_names(out):
    lists = {
        "pfsspec": ["T_eff", "M_H", "log_g"],
        "one": ["id"],
        "empty": [],
        "tricky": ["a\\b", "new\nline", "tab\t", "\x1a", "\x00", "Ångström", "σ", "🙂", "it's", 'say "hi"', ""],
        "repeated": ["x", "y", "x", "x"],
    }
    for name, names in lists.items():
        for proto in range(0, 6):
            (out / f"py_{name}_list_p{proto}").write_bytes(pickle.dumps(names, proto))
        (out / f"py_{name}_tuple_p2").write_bytes(pickle.dumps(tuple(names), 2))
    many = [f"c{i}" for i in range(300)]  # LONG_BINPUT/LONG_BINGET range
    (out / "py_many_list_p2").write_bytes(pickle.dumps(many + many[:3], 2))
    # Name mode: first byte (low bit: Latin-1), names separated by 0xFF.
    (out / "names_utf8").write_bytes(b"\x00T_eff\xffM_H\xfflog_g\xff\xff\xc3\x85\\u00e9\n")
    (out / "names_latin1").write_bytes(b"\x01a'b\xff\x00\x80\xfe\xff\"q\"")
    (out / "not_a_list").write_bytes(pickle.dumps({"a": 1}, 2))
    (out / "nested_list").write_bytes(pickle.dumps([["a"], "b"], 0))


def main(root):
    root = Path(root)
    for target in (plan_memory, zero_copy, pickle_names):
        out = root / target.__name__
        out.mkdir(parents=True, exist_ok=True)
        target(out)
        print(out, len(list(out.iterdir())), "files")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus")
