"""gramstream's LightGBM expert against Python's lightgbm.

    python check_lightgbm.py DIR

DIR holds (written by tests/lightgbm_interop.rs) raw little-endian f64
files: train_x.f64, test_x.f64 (row-major n × pixels noisy flux, the raw
values, not gramstream's codes), train_y.f64, test_y.f64 (log g),
rust_pred.f64 (gramstream's test predictions), and meta.json (pixels,
params: gramstream's LightGbmParams as JSON).

Trains lightgbm.LGBMRegressor with the same parameters on the same
training rows, in the same order, with LightGBM's own binning of the raw
values, predicts the test rows, and writes DIR/result.json: both test R²
and the correlation of the two sets of predictions. Exit 0 when the R²
agree within 0.01 and the correlation is ≥ 0.99; 1 otherwise.
"""
import json
import sys
from pathlib import Path

import lightgbm
import numpy as np


def r2(y, pred):
    return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - np.mean(y)) ** 2))


def main():
    d = Path(sys.argv[1])
    meta = json.loads((d / "meta.json").read_text())
    p, prm = meta["pixels"], meta["params"]

    def load(name, cols):
        v = np.fromfile(d / name, dtype="<f8")
        return v.reshape(-1, cols) if cols > 1 else v

    xtr, xte = load("train_x.f64", p), load("test_x.f64", p)
    ytr, yte = load("train_y.f64", 1), load("test_y.f64", 1)
    rust = load("rust_pred.f64", 1)
    assert len(xtr) == len(ytr) and len(xte) == len(yte) == len(rust)

    hist = {"col_wise": {"force_col_wise": True}, "row_wise": {"force_row_wise": True}}
    model = lightgbm.LGBMRegressor(
        n_estimators=prm["n_estimators"],
        max_depth=prm["max_depth"],
        learning_rate=prm["learning_rate"],
        num_leaves=prm["num_leaves"],
        colsample_bytree=prm["feature_fraction"],
        subsample=prm["bagging_fraction"],
        subsample_freq=prm["bagging_freq"],
        min_child_samples=prm["min_child_samples"],
        reg_alpha=prm["reg_alpha"],
        reg_lambda=prm["reg_lambda"],
        random_state=prm["seed"],
        n_jobs=prm["threads"] or None,
        deterministic=prm["deterministic"],
        verbose=-1,
        **hist[prm["histogram"]],
    )
    model.fit(xtr, ytr)
    pred = model.predict(xte)
    py_r2, rust_r2 = r2(yte, pred), r2(yte, rust)
    corr = float(np.corrcoef(pred, rust)[0, 1])
    print(
        f"lightgbm {lightgbm.__version__}: {len(ytr)} training rows, {len(yte)} test rows, "
        f"{p} pixels; test R² Python {py_r2:.4f}, gramstream {rust_r2:.4f}; "
        f"correlation of predictions {corr:.4f}"
    )
    (d / "result.json").write_text(
        json.dumps(
            {"python_r2": py_r2, "rust_r2": rust_r2, "correlation": corr, "version": lightgbm.__version__}
        )
    )
    ok = abs(py_r2 - rust_r2) <= 0.01 and corr >= 0.99
    if not ok:
        print("DISAGREE: R² gap above 0.01 or correlation below 0.99")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
