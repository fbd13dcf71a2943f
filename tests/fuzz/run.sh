#!/bin/sh
# Runs every fuzz target in BUILD_DIR for SECONDS each, starting from the
# checked-in seed corpus (tests/fuzz/corpus/<target>/). Findings are written
# to tests/fuzz/findings/ and make the run fail.
set -eu
build=$1
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/findings"
status=0
for bin in "$build"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  seeds="$here/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null || true
  echo "fuzz: $name for ${seconds}s"
  if ! "$bin" -max_total_time="$seconds" -artifact_prefix="$here/findings/$name-" \
       -print_final_stats=1 "$work" 2>"$work.log"; then
    tail -n 30 "$work.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|Done" "$work.log" | tail -n 2 || true
  fi
  rm -rf "$work" "$work.log"
done
exit $status
