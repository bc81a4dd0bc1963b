#!/usr/bin/env bash
# Mixed precision's effect on every reference config (issue 12, item 3;
# README, "Mixed precision"):
#
#   benches/precision/configs.sh [DATA_DIR]
#
# Generates the configs' stand-in data set once (the command their headers
# give: 5 × 20,000 training rows + 2,000 test rows × 4096 pixels, f32, 3.3 GB),
# runs every examples/configs/*.toml twice — [stats] precision = "f64" and
# "mixed", paths rewritten to DATA_DIR — and compares the two with
# compare.py: |ΔR²| per model and bin, the α each group selects, the CV MSE
# (or GCV) of every (group, α). Tables into DATA_DIR/delta_r2.md.
# CONFIGS="a.toml b.toml" runs a subset. The data set is kept; delete it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${1:-$root/target/precision-data}"
bin="$root/target/release/gramstream"
py="${GRAMSTREAM_PYTHON:-$root/.venv/bin/python}"
mkdir -p "$data"
if [ ! -f "$data/bosz/test/dataset.h5" ]; then
  "$bin" generate --out "$data/bosz" --train-shards 5 --rows 20000 --test-rows 2000 \
    --pixels 4096 --dtype f32 >/dev/null
fi
configs="${CONFIGS:-$(ls "$root"/examples/configs/*.toml)}"
: > "$data/delta_r2.md"
for cfg in $configs; do
  name="$(basename "$cfg" .toml)"
  for precision in f64 mixed; do
    out="$data/$name.$precision"
    [ -f "$out/results.json" ] && continue
    sed -e "s#\.\./\.\./data/bosz#$data/bosz#g" \
        -e "s#^\[stats\]#[stats]\nprecision = \"$precision\"#" "$cfg" > "$data/$name.$precision.toml"
    echo "== $name ($precision)" >&2
    /usr/bin/time -f "$name $precision: %e s, peak %M KiB" \
      "$bin" experiment --force --out "$out" "$data/$name.$precision.toml" >"$out.log" 2>&1 \
      || { tail -5 "$out.log" >&2; exit 1; }
    tail -1 "$out.log" >&2
  done
  "$py" "$root/benches/precision/compare.py" "$name" "$data/$name.f64" "$data/$name.mixed" \
    | tee -a "$data/delta_r2.md"
done
