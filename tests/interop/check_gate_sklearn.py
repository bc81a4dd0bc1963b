"""The gate's logistic regression against scikit-learn.

    python check_gate_sklearn.py DIR

DIR holds (written by tests/gate_sklearn.rs) raw little-endian f64 files:
train_x.f64, test_x.f64 (row-major n × d gate features, unstandardised),
train_y.f64, test_y.f64 (bin labels), rust_proba.f64 (gramstream's test
probabilities, n_test × classes), and meta.json (features, classes, c,
rust_accuracy).

Fits StandardScaler (population std) + LogisticRegression(C=c,
max_iter=10000, tol=1e-10) (lbfgs, multinomial) on the training rows and
writes DIR/result.json with scikit-learn's test accuracy and the largest
|Δp| against gramstream's probabilities (classes absent from the training
labels: scikit-learn has no column for them, gramstream must give 0).
Exit 0 when the accuracies agree within 1 percentage point and |Δp| ≤ 1e-4;
1 otherwise.
"""
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def main():
    d = Path(sys.argv[1])
    meta = json.loads((d / "meta.json").read_text())
    nf, k = meta["features"], meta["classes"]

    def load(name, cols):
        v = np.fromfile(d / name, dtype="<f8")
        return v.reshape(-1, cols) if cols > 1 else v

    xtr, xte = load("train_x.f64", nf), load("test_x.f64", nf)
    ytr = load("train_y.f64", 1).astype(np.int64)
    yte = load("test_y.f64", 1).astype(np.int64)
    rust = load("rust_proba.f64", k)
    assert rust.shape == (len(yte), k), rust.shape

    scaler = StandardScaler().fit(xtr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LogisticRegression(C=meta["c"], max_iter=10000, tol=1e-10)
        model.fit(scaler.transform(xtr), ytr)
    for w in caught:
        print(f"scikit-learn warning: {w.message}")
    proba = np.zeros((len(yte), k))
    proba[:, model.classes_] = model.predict_proba(scaler.transform(xte))
    acc = float(np.mean(np.argmax(proba, axis=1) == yte))
    dp = float(np.max(np.abs(proba - rust)))
    rust_acc = meta["rust_accuracy"]
    print(
        f"scikit-learn {__import__('sklearn').__version__}: {model.n_iter_} lbfgs iterations, "
        f"test accuracy {100 * acc:.2f} %, gramstream {100 * rust_acc:.2f} %, max |dp| {dp:.3e}"
    )
    (d / "result.json").write_text(
        json.dumps({"sklearn_accuracy": acc, "max_abs_proba_diff": dp})
    )
    ok = abs(acc - rust_acc) <= 0.01 and dp <= 1e-4
    if not ok:
        print("DISAGREE: accuracy gap or probabilities beyond tolerance")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
