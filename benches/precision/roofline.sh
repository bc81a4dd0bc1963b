#!/usr/bin/env bash
# The pass against this machine's dsyrk roofline (issue 12, items 2 and 3;
# README, "Performance"), f64 and --precision mixed, per bin and cells:
#
#   benches/precision/roofline.sh SHARD...
#
# e.g. on 2 × 20,000 generated rows × 4096 pixels (f32 files, 1.3 GB):
#   gramstream generate --out rf --train-shards 2 --rows 20000 --test-rows 0 --dtype f32
#   benches/precision/roofline.sh rf/train_*/dataset.h5
# Each run: ../shared/bench/roofline (dsyrk before and after, the command's
# wall including the statistics' write, its peak RSS). ROWS defaults to the
# shards' total; BUDGET_PER_BIN (2GiB) and BUDGET_CELLS (6GiB) as in the
# README's earlier figures; FOLDS (1). Run on a quiet machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/release/gramstream"
roofline="${ROOFLINE:-$root/../shared/bench/roofline}"
rows="${ROWS:-$("$bin" inspect "$@" 2>/dev/null | awk '$1 == "spectra" {s += $2} END {print s}')}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for mode in per-bin cells; do
  budget="${BUDGET_PER_BIN:-2GiB}"
  [ "$mode" = cells ] && budget="${BUDGET_CELLS:-6GiB}"
  for precision in f64 mixed; do
    echo "== $mode, $precision, $rows rows, --mem-budget $budget, --folds ${FOLDS:-1}"
    "$roofline" --rows "$rows" --pixels 4096 --partitions 2 -- \
      "$bin" accumulate --out "$out/stats.h5" --mode "$mode" --mem-budget "$budget" \
      --folds "${FOLDS:-1}" --precision "$precision" "$@" 2>/dev/null | grep -E "wall|peak|roofline|achieved|ratio"
    rm -f "$out/stats.h5"
  done
done
