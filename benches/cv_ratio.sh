#!/usr/bin/env bash
# What exact K-fold CV costs against the GCV sweep (issue 12): generates
# training rows, accumulates them with 5 folds and the T_eff × [M/H]
# partition, then times, in one run, the sweep of 50 α from 0.1 to 1e6 with
# `--cv none --select gcv`, `--cv eigh`, `--cv pcg` and `--cv auto`, and
# prints each one's wall and CPU seconds and its ratio to the GCV sweep.
#
#     benches/cv_ratio.sh [GRAMSTREAM] [small|large]
#
# small (default): 60k rows × 2048 pixels (2 shards); large: 100k × 4096
# (4 shards; several minutes per CV method). METHODS (default "none eigh pcg
# auto") picks the sweeps; the first is the base of the ratios, so keep
# none first. GRAMSTREAM defaults to
# target/release/gramstream. Data under /tmp, deleted at the end. Run it on a
# quiet machine: the sweeps use every core.
set -euo pipefail
G=$(realpath "${1:-target/release/gramstream}")
case "${2:-small}" in
small) shards=2 rows=30000 pixels=2048 ;;
large) shards=4 rows=25000 pixels=4096 ;;
*)
    echo "usage: $0 [GRAMSTREAM] [small|large]" >&2
    exit 2
    ;;
esac
W=$(mktemp -d /tmp/cv_ratio.XXXXXX)
trap 'rm -rf "$W"' EXIT

echo "generate: $shards × $rows rows × $pixels pixels"
"$G" generate --out "$W/g" --train-shards "$shards" --rows "$rows" --test-rows 0 \
    --pixels "$pixels" --dtype f32 | tail -1
"$G" accumulate --folds 5 --partition teff-mh --out "$W/stats.h5" "$W"/g/train_*/dataset.h5 | tail -1
rm -rf "$W/g"

printf '\n| sweep | wall (s) | CPU (s) | wall / GCV | CPU / GCV | load average before |\n|---|---|---|---|---|---|\n'
base_wall='' base_cpu=''
for cv in ${METHODS:-none eigh pcg auto}; do
    select=()
    [ "$cv" = none ] && select=(--select gcv)
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    /usr/bin/time -f '%e %U %S' -o "$W/time_$cv" \
        "$G" sweep "$W/stats.h5" --alphas 1e-1:1e6:50 --cv "$cv" "${select[@]}" --out "$W/sweep_$cv" >/dev/null
    read -r wall user sys <"$W/time_$cv"
    cpu=$(echo "$user + $sys" | bc -l)
    if [ -z "$base_wall" ]; then base_wall=$wall base_cpu=$cpu; fi
    printf '| `--cv %s%s` | %.1f | %.1f | %.2f× | %.2f× | %s |\n' "$cv" "${select[*]:+ ${select[*]}}" \
        "$wall" "$cpu" "$(echo "$wall / $base_wall" | bc -l)" "$(echo "$cpu / $base_cpu" | bc -l)" "$load"
done

if [ -f "$W/sweep_auto/sweep.json" ]; then
    echo
    echo "--cv auto, how the folds were solved (groups):"
    grep -o '"CV folds: [^"]*"' "$W/sweep_auto/sweep.json" | sort | uniq -c
fi
