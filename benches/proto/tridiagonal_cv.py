"""Prototype for issue 12, item 1: exact K-fold CV per fold by a reduction to
tridiagonal form instead of a full eigendecomposition.

For a fold's complement C (P × P, centred) and c: C = Q T Qᵀ (LAPACK dsytrd),
then for every α the tridiagonal system (T + αI) u = Qᵀc (dptsv, O(P)), and
one back-transform W = Q U of all the α's solutions (dormqr on dsytrd's
reflectors, which is what dormtr does for a lower reduction). Compared here
with dsyevd, as the sweep's `--cv eigh` uses it, on one thread, and the
weights checked against the eigendecomposition's.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benches/proto/tridiagonal_cv.py
"""
import time

import numpy as np
import scipy.linalg as sl
from scipy.linalg import lapack

rng = np.random.default_rng(0)
for p in (1024, 2048):
    X = rng.standard_normal((3 * p, p))
    C = X.T @ X
    c = X.T @ rng.standard_normal(3 * p)
    alphas = np.logspace(-1, 6, 50)

    t = time.perf_counter()
    lam, V = sl.eigh(C, driver="evd")
    t_evd = time.perf_counter() - t
    z = V.T @ c
    W_evd = V @ (z[:, None] / (lam[:, None] + alphas[None, :]))

    t = time.perf_counter()
    a, d, e, tau, info = lapack.dsytrd(C, lower=1)
    t_trd = time.perf_counter() - t

    def apply_q(trans, B):
        """Q·B or Qᵀ·B: dormqr on the reflectors below the subdiagonal."""
        out = B.copy()
        sub, _, info = lapack.dormqr("L", trans, a[1:, :-1], tau, B[1:].copy(), max(1, B.shape[1]) * p * 64)
        out[1:] = sub
        return out

    t = time.perf_counter()
    qc = apply_q("T", c[:, None])[:, 0]
    U = np.empty((p, len(alphas)))
    for k, al in enumerate(alphas):
        _, _, U[:, k], info = lapack.dptsv(d + al, e.copy(), qc.copy())
    W = apply_q("N", U)
    t_rest = time.perf_counter() - t

    err = np.max(np.abs(W - W_evd)) / np.max(np.abs(W_evd))
    print(f"P={p}: dsyevd {t_evd:.2f} s; dsytrd {t_trd:.2f} s + 50 solves and the back-transform "
          f"{t_rest:.2f} s = {t_trd + t_rest:.2f} s ({t_evd / (t_trd + t_rest):.1f}x); max rel diff of W {err:.1e}")
