#!/usr/bin/env bash
# Seed 002 on generated data: examples/configs/002_per_bin_expert_sweep.toml
# end to end (the pass keeping each bin's rows, Ridge from the statistics,
# LightGBM per bin, the validation choice, the hybrid on the test shard),
# with the peak RSS of the whole run from /usr/bin/time.
#
#   benches/experts/run_002.sh DIR [ROWS_PER_SHARD] [BUDGET]
#
# DIR/data/bosz gets 5 training shards of ROWS_PER_SHARD (default 20000)
# rows and a 10,000-row test shard at 4096 pixels (generated once, ~7.6 GB
# at the default), DIR/examples/configs the config (its relative paths then
# point at DIR/data/bosz), DIR/results the experiment, DIR/time.txt the
# measurements. Needs a release build with LightGBM:
#   cargo build --release --features lightgbm
set -euo pipefail
dir=${1:?usage: run_002.sh DIR [ROWS_PER_SHARD] [BUDGET]}
rows=${2:-20000}
budget=${3:-8GiB}
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${GRAMSTREAM:-$repo/target/release/gramstream}
mkdir -p "$dir/examples/configs"
if [ ! -f "$dir/data/bosz/test/dataset.h5" ]; then
  "$bin" generate --out "$dir/data/bosz" --train-shards 5 --rows "$rows" \
    --test-rows 10000 --pixels 4096 --seed 42
fi
cfg="$dir/examples/configs/002_per_bin_expert_sweep.toml"
sed "s/^mem_budget = .*/mem_budget = \"$budget\"/" \
  "$repo/examples/configs/002_per_bin_expert_sweep.toml" > "$cfg"
/usr/bin/time -v "$bin" experiment "$cfg" --force 2> >(tee "$dir/time.txt" >&2)
grep -E "Maximum resident|Elapsed" "$dir/time.txt"
