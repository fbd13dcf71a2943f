#!/bin/sh
# make demo: runs `crossdock demo` (docs/demo.md): the hub with its store in
# a temporary folder, a simulated WMS posting a day of activity, and
# reference ERP and billing endpoints in the same process; progress, then a
# summary and a reconciliation.
#
# Interactive (stdin is a terminal) the hub keeps serving after the summary
# until Ctrl-C, so the API (and the dashboard, once built) can be explored.
# Otherwise (CI, a pipe, DEMO_ONCE=1) it passes --once: the demo exits after
# its summary, 0 when the reconciliation is clean.
#
#   DEMO_PORT=8080     the hub's port (a free one is picked when it is busy)
#   DEMO_EVENTS=2000   events the simulated WMS posts
#   DEMO_ONCE=1        exit after the summary even on a terminal
#   DEMO_KEEP=DIR      keep the store in DIR instead of a temporary folder
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/build/crossdock"
set -- --port "${DEMO_PORT:-8080}" --events "${DEMO_EVENTS:-2000}"
if [ -n "${DEMO_KEEP:-}" ]; then
  set -- "$@" --keep "$DEMO_KEEP"
fi
if [ "${DEMO_ONCE:-0}" = 1 ] || [ ! -t 0 ]; then
  set -- "$@" --once
fi
exec "$bin" demo "$@"
