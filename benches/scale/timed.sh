# Sourced by the scale benchmarks. `timed NAME CMD...` runs CMD under
# /usr/bin/time -v (its report in $TIMED_DIR/NAME.time) and appends its wall
# time and peak RSS as one line to $TIMED_SUMMARY (and prints it).
timed() {
  local name="$1"; shift
  /usr/bin/time -v -o "$TIMED_DIR/$name.time" "$@"
  awk -v n="$name" -F': ' '/Elapsed \(wall/ {w=$2} /Maximum resident/ {r=$2}
    END {printf "%-22s wall %s  peak RSS %.2f GiB\n", n, w, r/1048576}' "$TIMED_DIR/$name.time" | tee -a "$TIMED_SUMMARY"
}
