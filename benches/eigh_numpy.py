"""numpy.linalg.eigh timing for benches/eigh.rs, on the same matrix.

    python eigh_numpy.py P MATRIX.f64 [REPEATS]

MATRIX.f64 holds the P x P symmetric matrix as raw little-endian float64
(column-major; symmetric, so the order does not matter), written by the Rust
bench. Prints one JSON line: the BLAS numpy uses, its thread setting, and the
seconds of each repeat (the first call included).
"""

import json
import os
import sys
import time

import numpy as np


def main():
    p = int(sys.argv[1])
    a = np.fromfile(sys.argv[2], dtype="<f8").reshape(p, p)
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        w, v = np.linalg.eigh(a)
        times.append(time.perf_counter() - t)
    res = np.linalg.norm(a @ v - v * w) / np.linalg.norm(a)
    orth = np.linalg.norm(v.T @ v - np.eye(p))
    cfg = {}
    try:
        info = np.show_config(mode="dicts")
        cfg = info.get("Build Dependencies", {}).get("blas", {})
    except Exception:  # older numpy: no dict mode
        pass
    print(
        json.dumps(
            {
                "p": p,
                "numpy": np.__version__,
                "blas": cfg.get("name", "?") + " " + str(cfg.get("version", "")),
                "threads_env": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
                "seconds": times,
                "residual": res,
                "orthogonality": orth,
            }
        )
    )


if __name__ == "__main__":
    main()
