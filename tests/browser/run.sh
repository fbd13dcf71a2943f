#!/bin/sh
# ctest's entry to the browser tests (CMakeLists.txt): installs playwright-core
# from the committed lockfile when node_modules is missing (a fresh clone),
# then runs the test. The browser is Debian's chromium (scripts/install-deps.sh),
# never one downloaded by a test tool. Exit 77 (skipped) only without chromium.
set -eu
cd "$(dirname "$0")"
if [ ! -x "${XD_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "SKIP: ${XD_CHROMIUM:-/usr/bin/chromium} is absent (Debian package chromium; run scripts/install-deps.sh as root)"
  exit 77
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "FAIL: $tool is missing (Debian packages nodejs and npm; run scripts/install-deps.sh as root)" >&2
    exit 1
  fi
done
if [ ! -d node_modules/playwright-core ]; then
  # Two builds' test runs may start here at once: one installs, the other waits.
  flock .npm-ci.lock sh -c '[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --loglevel=error'
fi
exec node test_dashboard.js
