"""compare.py NAME F64_DIR MIXED_DIR: one experiment run with [stats] precision
"f64" and "mixed" (benches/precision/configs.sh), compared. Prints a markdown
block: per model (global, each partition's oracle, soft and hard gate, the
worst bin) the largest |ΔR²| over runs; per run's sweep.csv (every group × α)
the largest |Δ test R²|, the largest relative ΔCV MSE and ΔGCV, and whether
every group selected the same α."""
import csv, json, os, sys

name, a_dir, b_dir = sys.argv[1:4]
ra, rb = (json.load(open(os.path.join(d, "results.json"))) for d in (a_dir, b_dir))
worst = {}


def note(model, x, y):
    if x is None or y is None:
        return
    worst[model] = max(worst.get(model, 0.0), abs(x - y))


for run_a, run_b in zip(ra["runs"], rb["runs"], strict=True):
    note("global", run_a["global"]["r2"], run_b["global"]["r2"])
    for part, ma in run_a["moe"].items():
        mb = run_b["moe"][part]
        for kind in ("oracle", "soft_gate", "hard_gate"):
            if kind in ma:
                note(f"{part} {kind}", ma[kind]["r2"], mb[kind]["r2"])
        for ba, bb in zip(ma["bins"], mb["bins"], strict=True):
            note(f"{part} bins (worst)", ba["r2"], bb["r2"])

sweep = {"test_r2": 0.0, "cv_mse": 0.0, "gcv": 0.0}
where = ""
groups = same = 0
runs = sorted(os.listdir(os.path.join(a_dir, "runs")))
for run in runs:
    rows = [list(csv.DictReader(open(os.path.join(d, "runs", run, "sweep.csv")))) for d in (a_dir, b_dir)]
    sel = [{}, {}]
    for side, table in enumerate(rows):
        for r in table:
            if r["selected"] == "1":
                sel[side][(r["partition"], r["bin"])] = r["alpha"]
    for ra_, rb_ in zip(*rows, strict=True):
        for col in sweep:
            if ra_[col] and rb_[col]:
                x, y = float(ra_[col]), float(rb_[col])
                d = abs(x - y) if col == "test_r2" else abs(x - y) / max(abs(x), 1e-300)
                if col == "test_r2" and d > sweep[col]:
                    where = f"{ra_['partition']} bin {ra_['bin']}, α {float(ra_['alpha']):.3g}, {ra_['n_train']} training rows"
                sweep[col] = max(sweep[col], d)
    groups += len(sel[0])
    same += sum(sel[0][g] == sel[1].get(g) for g in sel[0])

print(f"### {name} ({len(ra['runs'])} run(s))\n")
print("| model | max \\|ΔR²\\| mixed − f64 |\n|---|---|")
for model, d in worst.items():
    print(f"| {model} | {d:.1e} |")
print(
    f"\nsweep.csv, every (group, α) of every run: max |Δ test R²| {sweep['test_r2']:.1e} ({where}), "
    f"max rel. Δ CV MSE {sweep['cv_mse']:.1e}, max rel. Δ GCV {sweep['gcv']:.1e}; "
    f"same α selected in {same} of {groups} groups\n"
)
