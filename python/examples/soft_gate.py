# %% [markdown]
# # The soft-gate mixture of experts from Python (report 004)
#
# Nine Ridge experts, one per T_eff × [M/H] bin, and a learned gate
# (37 features: 10 PCA + 27 line features; multinomial logistic
# regression on a sample of the pass) that mixes them, soft (Σ pₖ ŷₖ) or
# hard (argmax), against the oracle that knows each star's bin.
#
# Cells (`# %%`) run in Jupyter/VS Code, or the whole file with
# `python soft_gate.py [OUT]`. Data: synthetic BOSZ-like shards made by
# `gramstream generate` (the binary: `GRAMSTREAM_BIN` or on `PATH`), at
# `ROWS` rows per training shard (default 20,000, as report 004's stand-in;
# the tests run it at 1,500 × 1024 pixels). Point `DATA` at real shards to
# use them instead.

# %%
import os
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib  # Python ≥ 3.11
except ImportError:  # pragma: no cover
    import tomli as tomllib

import matplotlib

matplotlib.use("Agg")  # files, not windows: also runs headless
import matplotlib.pyplot as plt
import numpy as np

import gramstream

OUT = Path(sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "soft_gate_out")
ROWS = int(os.environ.get("ROWS", 20_000))
PIXELS = int(os.environ.get("PIXELS", 4096))
REPO = Path(__file__).resolve().parents[2]

# %% [markdown]
# ## Data: five training shards and a test shard

# %%
data = Path(os.environ.get("DATA", OUT / "data"))
if not (data / "test" / "dataset.h5").exists():
    binary = os.environ.get("GRAMSTREAM_BIN") or shutil.which("gramstream")
    subprocess.run(
        [binary, "generate", "--out", str(data), "--train-shards", "5", "--rows", str(ROWS),
         "--test-rows", str(max(ROWS // 10, 300)), "--pixels", str(PIXELS)],
        check=True,
    )

# %% [markdown]
# ## The experiment: report 004's configuration, this data

# %%
with open(REPO / "examples" / "configs" / "004_soft_gate_noise1.toml", "rb") as f:
    config = tomllib.load(f)
config["data"]["train"] = [str(data / f"train_{i}" / "dataset.h5") for i in range(5)]
config["data"]["test"] = str(data / "test" / "dataset.h5")
config["gate"]["sample"] = min(config["gate"]["sample"], 5 * ROWS)
config.setdefault("output", {})["plots"] = False  # this notebook draws its own

results = gramstream.run_experiment(config, out=OUT / "results", force=True, progress=print)
run = results["runs"][0]
moe = run["moe"]["teff_mh"]
print(f"global Ridge   R² = {run['global']['r2']:.3f}")
for name in ("oracle", "soft_gate", "hard_gate"):
    print(f"{name:14s} R² = {moe[name]['r2']:.3f}")
print(f"ρ (soft gate's share of the oracle's gain) = {moe['soft_gate']['rho']:.2f}")

# %% [markdown]
# ## Per bin: which experts the gate keeps

# %%
per_bin = gramstream.per_bin(OUT / "results")
bins = per_bin[per_bin["partition"] == "teff_mh"].reset_index(drop=True)
print(bins[["name", "n_test", "r2_global", "r2", "r2_soft", "r2_hard", "routing_accuracy"]].to_string())

# %%
fig, ax = plt.subplots(figsize=(9, 4))
x = np.arange(len(bins))
series = (("r2_global", "global Ridge"), ("r2", "oracle expert"), ("r2_soft", "soft gate"), ("r2_hard", "hard gate"))
width = 0.8 / len(series)
for k, (column, label) in enumerate(series):
    ax.bar(x + (k - 1.5) * width, bins[column], width, label=label)
ax.set_xticks(x, bins["name"], rotation=30, ha="right")
ax.set_ylabel("test R² (log g)")
ax.set_title(f"Soft-gate mixture of experts, noise 1: oracle {moe['oracle']['r2']:.3f}, "
             f"soft gate {moe['soft_gate']['r2']:.3f} (ρ = {moe['soft_gate']['rho']:.2f})")
ax.axhline(0, color="black", linewidth=0.5)
ax.legend(ncol=4, fontsize=8)
fig.tight_layout()
figure = OUT / "soft_gate_r2_per_bin.png"
fig.savefig(figure, dpi=120)
print(f"wrote {figure}")
