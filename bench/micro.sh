#!/bin/sh
# The single-core micro-benchmarks of `make bench`: rating, X12 and CSV
# parsing, jq mappings, validation. Each prints its own figures; the peak RSS
# of each run is printed after it (GNU time).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
cmake --build "$BUILD" --target benches -j "$(nproc)" >/dev/null
TIME=""
[ -x /usr/bin/time ] && TIME="/usr/bin/time -f   peak-RSS=%MkB"
cd "$ROOT"
echo "== micro-benchmarks ($(nproc) cores; one thread each)"
for b in rating x12 csv transform validate; do
    echo "-- bench_$b"
    # shellcheck disable=SC2086
    $TIME "$BUILD/bench_$b" || echo "bench_$b: failed (exit $?)"
done
