#!/usr/bin/env bash
# Scale and the peer, side by side (README, Performance → "The experiment at scale").
#
#   benches/scale/run.sh [DATA_DIR]
#
# 1. generates SCALE_SHARDS × SCALE_ROWS training rows × 4096 pixels (default
#    4 × 50,000 = 200k rows, 13 GB) and a 2,000-row test shard in DATA_DIR;
# 2. runs the full experiment (teff_mh + snr experts, 50 α by exact 5-fold CV,
#    the gate on a 20,000-row reservoir) with a memory budget of 8 GiB,
#    under /usr/bin/time -v (wall, peak RSS);
# 3. on the first shard alone (50k rows): scikit-learn Ridge per bin and
#    RidgeCV (7 α, global), in memory, against gramstream accumulate + sweep
#    (all bins, 50 α, exact 5-fold CV; and without folds, α by GCV), each
#    under /usr/bin/time -v;
# 4. deletes the data (SCALE_KEEP=1 keeps it).
# Needs a Python with numpy, h5py, pandas, tables and scikit-learn
# (GRAMSTREAM_PYTHON, default .venv/bin/python from scripts/setup.sh).
# Run it on a quiet machine: every figure is a wall time.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${1:-$root/target/scale-data}"
shards="${SCALE_SHARDS:-4}"
rows="${SCALE_ROWS:-50000}"
py="${GRAMSTREAM_PYTHON:-$root/.venv/bin/python}"
out="$data/out"
bin="$root/target/release/gramstream"
(cd "$root" && cargo build --release --quiet)
mkdir -p "$out"
TIMED_DIR="$out" TIMED_SUMMARY="$out/summary.txt"
source "$root/benches/scale/timed.sh"
echo "== generate $shards × $rows rows × 4096 pixels → $data"
timed generate "$bin" generate --out "$data" --train-shards "$shards" --rows "$rows" \
  --test-rows 2000 --pixels 4096 --seed 42
du -sh "$data" | tee -a "$out/summary.txt"
train=""
for ((i = 0; i < shards; i++)); do train="$train\"train_$i/dataset.h5\", "; done
cat > "$data/scale.toml" <<TOML
name = "scale"
description = "$((shards * rows)) rows × 4096 pixels: teff_mh + snr experts, 50 α by exact 5-fold CV, the gate, under an 8 GiB budget."
[data]
train = [$train]
test = "test/dataset.h5"
[noise]
levels = [1.0]
seeds = [42]
[stats]
partitions = ["teff_mh", "snr"]
folds = 5
mem_budget = "8GiB"
[ridge]
alphas = "1:1e6:50"
select = "cv"
[gate]
sample = 20000
[output]
dir = "out/experiment"
TOML
echo "== experiment (full) on $((shards * rows)) rows"
timed experiment "$bin" experiment "$data/scale.toml" --force | tee "$out/experiment.log"
echo "== side by side on train_0 ($rows rows)"
one="$data/train_0/dataset.h5"
timed sklearn_perbin "$py" "$root/benches/scale/sklearn_side_by_side.py" "$one" perbin | tee -a "$out/summary.txt"
timed sklearn_ridgecv "$py" "$root/benches/scale/sklearn_side_by_side.py" "$one" ridgecv | tee -a "$out/summary.txt"
timed gs_accumulate "$bin" accumulate --folds 5 --mem-budget 8GiB --out "$out/one.stats.h5" "$one"
timed gs_sweep "$bin" sweep "$out/one.stats.h5" --alphas 1:1e6:50 --test "$data/test/dataset.h5" \
  --test-noise 1 --test-seed 42 --no-plots --out "$out/one_sweep" | tail -20
rm -f "$out/one.stats.h5"
# The like-for-like with RidgeCV's efficient leave-one-out: no folds, α by GCV.
timed gs_accumulate_f1 "$bin" accumulate --folds 1 --mem-budget 8GiB --out "$out/one1.stats.h5" "$one"
timed gs_sweep_gcv "$bin" sweep "$out/one1.stats.h5" --alphas 1:1e6:50 --select gcv --cv none \
  --test "$data/test/dataset.h5" --test-noise 1 --test-seed 42 --no-plots --out "$out/one_sweep_gcv" | tail -20
rm -f "$out/one1.stats.h5"
cat "$out/summary.txt"
if [ "${SCALE_KEEP:-0}" != 1 ]; then
  find "$data" -name dataset.h5 -delete
  echo "deleted the generated shards (results kept in $out)"
fi
