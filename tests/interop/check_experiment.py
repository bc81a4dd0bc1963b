"""Recompute an experiment's headline numbers from its predictions.csv with
numpy and scikit-learn, independently of gramstream's metric code, and
compare with results.json. Exits non-zero (with the differences) on any
mismatch beyond 1e-9.

    python check_experiment.py RESULTS_DIR
"""
import json
import sys

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, mean_absolute_error, mean_squared_error, r2_score

d = sys.argv[1]
res = json.load(open(f"{d}/results.json"))
pred = pd.read_csv(f"{d}/predictions.csv")
y = pred["log_g"].to_numpy()
bad = []


def close(what, got, want, tol=1e-9):
    if want is None or not np.isfinite(got) or abs(got - want) > tol * max(1.0, abs(got)):
        bad.append(f"{what}: recomputed {got!r}, results.json {want!r}")


assert res["schema"] == "gramstream.results/1", res["schema"]
assert res["data"]["test_rows"] == len(pred), (res["data"]["test_rows"], len(pred))
g = pred["global"].to_numpy()
r2g = r2_score(y, g)
close("global r2", r2g, res["global"]["r2"])
close("global mae", mean_absolute_error(y, g), res["global"]["mae"])
close("global rmse", np.sqrt(mean_squared_error(y, g)), res["global"]["rmse"])
for name, part in res["moe"].items():
    o = pred[f"oracle_{name}"].to_numpy()
    r2o = r2_score(y, o)
    close(f"{name} oracle r2", r2o, part["oracle"]["r2"])
    close(f"{name} oracle delta_r2", r2o - r2g, part["oracle"]["delta_r2"])
    bins = pred[f"bin_{name}"]
    close(f"{name} coverage", bins.notna().mean(), part["oracle"]["coverage"])
    for b in part["bins"]:
        rows = (bins == b["id"]).to_numpy()
        assert rows.sum() == b["n_test"], (name, b["id"], rows.sum(), b["n_test"])
        if rows.sum() >= 2:
            close(f"{name} bin {b['id']} r2", r2_score(y[rows], o[rows]), b["r2"])
            close(f"{name} bin {b['id']} r2_global", r2_score(y[rows], g[rows]), b["r2_global"])
            close(f"{name} bin {b['id']} mae", mean_absolute_error(y[rows], o[rows]), b["mae"])
    if "soft_gate" in part:
        k = len(part["bins"])
        p = pred[[f"p_{i}" for i in range(k)]].to_numpy()
        close(f"{name} probabilities sum to 1", float(np.abs(p.sum(axis=1) - 1).max()) + 1.0, 1.0)
        routed = pred["routed"].to_numpy()
        if not (routed == p.argmax(axis=1)).all():
            bad.append(f"{name}: routed is not the argmax of the probabilities")
        inside = bins.notna().to_numpy()
        acc = (routed[inside] == bins[inside].astype(int).to_numpy()).mean()
        cm = confusion_matrix(bins[inside].astype(int), routed[inside], labels=list(range(k)))
        if cm.tolist() != res["gate"]["confusion"]:
            bad.append(f"{name}: confusion matrix differs")
        for kind, col in [("soft_gate", "soft"), ("hard_gate", "hard")]:
            x = pred[col].to_numpy()
            r2x = r2_score(y, x)
            close(f"{name} {kind} r2", r2x, part[kind]["r2"])
            close(f"{name} {kind} rho", (r2x - r2g) / (r2o - r2g), part[kind]["rho"])
            close(f"{name} {kind} routing accuracy", acc, part[kind]["routing_accuracy"])
# The summary's mean and std over seeds, for one metric.
for lvl in res["summary"]:
    vals = [r["global"]["r2"] for r in res["runs"] if r["data"]["noise"] == lvl["noise"]]
    s = lvl["metrics"]["global.r2"]
    close("summary mean", float(np.mean(vals)), s["mean"])
    close("summary std", float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, s["std"])
if bad:
    print("\n".join(bad))
    sys.exit(1)
print(f"ok: {len(pred)} rows, {len(res['moe'])} partitions, {len(res['runs'])} runs")
