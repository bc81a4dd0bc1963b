#!/usr/bin/env bash
# The 1M-row experiment, in parts (issue 12, item 4; README, Performance):
#
#   benches/scale/million.sh [DATA_DIR]
#
# 1M generated rows × 4096 pixels do not fit this disk at once, so PARTS
# parts (default 5) of 2 shards × ROWS rows (default 100,000; f32 flux and
# error, 6.6 GB a part) are each generated, accumulated and deleted — shard
# indices 2k, 2k + 1 for part k, so noise, folds and the gate sample are
# those of one run over all the shards — the parts' statistics are merged
# as they come, and the soft-gate experiment (teff_mh + snr experts, 50 α by exact
# 5-fold CV, the gate on a 20,000-row reservoir, a 2,000-row test shard)
# solves from the merged file ([data] stats). Every stage under
# /usr/bin/time -v: wall time and peak RSS, into DATA_DIR/summary.txt.
# BUDGET (default 8GiB) is each pass's --mem-budget; PRECISION (default f64)
# its --precision (mixed: f32 block products, README "Mixed precision").
# Run on a quiet machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${1:-$root/target/million-data}"
parts="${PARTS:-5}"
rows="${ROWS:-100000}"
budget="${BUDGET:-8GiB}"
precision="${PRECISION:-f64}"
bin="$root/target/release/gramstream"
mkdir -p "$data"
summary="$data/summary.txt"
: > "$summary"
TIMED_DIR="$data" TIMED_SUMMARY="$summary"
source "$root/benches/scale/timed.sh"
for ((k = 0; k < parts; k++)); do
  part="$data/part$k"
  test_rows=0
  [ "$k" -eq 0 ] && test_rows=2000
  echo "== part $k: generate 2 × $rows rows" | tee -a "$summary"
  timed "generate$k" "$bin" generate --out "$part" --train-shards 2 --rows "$rows" \
    --test-rows "$test_rows" --pixels 4096 --seed $((100 + k)) --dtype f32 >/dev/null
  [ "$k" -eq 0 ] && mv "$part/test/dataset.h5" "$data/test.h5"
  timed "accumulate$k" "$bin" accumulate --out "$data/stats$k.h5" --noise 1 --seed 42 \
    --folds 5 --gate-sample 20000 --mem-budget "$budget" --first-shard-index $((2 * k)) \
    --precision "$precision" \
    "$part"/train_0/dataset.h5 "$part"/train_1/dataset.h5 >"$data/accumulate$k.log"
  rm -rf "$part"
  # Merged as they come (the same sums as one merge of all, in order): the
  # disk then holds a part, its statistics and the running total (4.7 GB
  # each per bin with 5 folds), not every part's statistics.
  if [ "$k" -eq 0 ]; then
    mv "$data/stats0.h5" "$data/all.h5"
  else
    timed "merge$k" "$bin" merge --out "$data/all.next.h5" "$data/all.h5" "$data/stats$k.h5" >/dev/null
    mv "$data/all.next.h5" "$data/all.h5"
    rm -f "$data/stats$k.h5"
  fi
done
cat > "$data/million.toml" <<TOML
name = "million"
description = "$((parts * 2 * rows)) generated rows × 4096 pixels in $parts parts, merged: teff_mh + snr experts, 50 α by exact 5-fold CV, the soft gate."
[data]
stats = "all.h5"
test = "test.h5"
[noise]
levels = [1.0]
seeds = [42]
[stats]
partitions = ["teff_mh", "snr"]
folds = 5
precision = "$precision"
[ridge]
alphas = "1:1e6:50"
select = "cv"
[gate]
sample = 20000
[output]
dir = "experiment"
TOML
timed experiment "$bin" experiment "$data/million.toml" --force >"$data/experiment.log"
grep -E '^    |^\| (global|oracle|soft|hard)' "$data/experiment.log"
cat "$summary"
# The generated data are gone already; the merged statistics (4.7 GB) stay
# for a rerun of the experiment (MILLION_KEEP=0 removes them).
[ "${MILLION_KEEP:-1}" = 1 ] || rm -f "$data/all.h5"
