#!/usr/bin/env bash
# Rows/s of the pass under MPI (README, "Performance", MPI): 1, 2 and 4 ranks
# × threads on ROWS generated rows × 4096 pixels, against the ordinary pass,
# each run's peak RSS (the largest rank's) from its summary.
#   benches/mpi/scaling.sh [ROWS]      (default 40000; data in $TMPDIR, deleted after)
# Needs `cargo build --release --features mpi` and Open MPI's mpiexec.
# `--bind-to none`: Open MPI binds each of ≤ 2 ranks to one core by default,
# which would leave a rank's second thread without a core of its own. On a
# machine with fewer cores than ranks × threads the ranks share cores
# (oversubscribed): the figure then shows the cost of the ranges and the
# messages, not a speed-up.
set -euo pipefail
rows=${1:-40000}
repo="$(cd "$(dirname "$0")/../.." && pwd)"
G="$repo/target/release/gramstream"
dir="$(mktemp -d "${TMPDIR:-/tmp}/gramstream-mpi.XXXX")"
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
"$G" generate --out "$dir/data" --train-shards 2 --rows $((rows / 2)) --test-rows 0 --pixels 4096 >/dev/null
shards=("$dir"/data/train_*/dataset.h5)
# Per bin (14 accumulators, 2 Gram updates per row), ranges of 10,000 rows:
# 4 ranges, so 4 ranks have one each. Budget 3 GiB per rank: the plan fits.
common=(--mode per-bin --mem-budget 3GiB --block-rows 256)
run() {
  local label=$1; shift
  local line
  line=$("$@" | grep '^accumulated')
  printf '%-34s %s\n' "$label" "$(echo "$line" | sed -E 's/.* in ([0-9.]+) s: ([0-9]+) rows\/s.*peak RSS ([0-9.]+ GiB).*/\1 s  \2 rows\/s  peak RSS \3/')"
}
echo "== $rows rows × 4096 pixels, per-bin (2 updates per row), $(nproc) cores"
run "ordinary pass, 2 threads" "$G" accumulate --out "$dir/o.h5" "${common[@]}" --threads 2 "${shards[@]}"
run "one process in ranges, 2 threads" "$G" accumulate --out "$dir/r.h5" "${common[@]}" --threads 2 --range-rows 10000 "${shards[@]}"
for spec in "1 2" "1 1" "2 1" "4 1"; do
  set -- $spec
  rm -f "$dir/m.h5"
  run "mpiexec -n $1, $2 thread(s) each" mpiexec --bind-to none -n "$1" "$G" accumulate --out "$dir/m.h5" "${common[@]}" --threads "$2" --range-rows 10000 "${shards[@]}"
  same=$("$repo/.venv/bin/python" - "$dir/m.h5" "$dir/r.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
print("same bits" if all(np.array_equal(a[n][()], b[n][()]) for n in names) else "DIFFERENT BITS")
PY
)
  echo "   statistics vs one process in ranges: $same"
done
