#!/usr/bin/env bash
# Runs the commands whose outputs a redesign must keep bit for bit.
#   scripts/bitwise/run.sh BIN DATA OUTDIR
# BIN: a gramstream binary; DATA: a directory from `gramstream demo` or
# `gramstream generate` (train_0, train_1, test with a stored noisy array);
# MODELS=PATH (optional): a models.h5 with a gate (the demo's
# results/models.h5) for the gated predictions.
# Compare two OUTDIRs with scripts/bitwise/compare.py.
set -euo pipefail
G=$(realpath "$1"); D=$(realpath "$2"); O=$3
mkdir -p "$O"; cd "$O"
$G accumulate --out stats2.h5 --folds 3 "$D"/train_*/dataset.h5 | tail -1
$G accumulate --out stats_pb.h5 --mode per-bin --gate-sample 500 --threads 1 "$D"/train_*/dataset.h5 | tail -1
$G sweep stats2.h5 --test "$D/test/dataset.h5" --out sweep2 --cv eigh | tail -1
$G sweep stats_pb.h5 --test "$D/test/dataset.h5" --test-noise 1 --test-seed 5 --out sweep_pb --cv none | tail -1
M=${MODELS:-sweep2/models.h5}
routings="global"; [ -n "${MODELS:-}" ] && routings="global soft hard"
for r in $routings; do $G predict --model "$M" --routing "$r" --out "pred_$r.csv" "$D/test/dataset.h5" | tail -1; done
$G predict --model "$M" --routing oracle --partition snr --noise 1 --seed 7 --out pred_snr.csv "$D/test/dataset.h5" | tail -1
$G predict --model "$M" --routing oracle --partition snr --out pred_snr_stored.csv "$D/test/dataset.h5" | tail -1
$G predict --model "$M" --routing oracle --partition teff_mh --out pred_tm.csv "$D/test/dataset.h5" | tail -1
$G scan "$D"/train_*/dataset.h5 --json | grep -v seconds > scan.json
$G scan "$D/test/dataset.h5" --stored-noisy --json | grep -v seconds > scan_stored.json
