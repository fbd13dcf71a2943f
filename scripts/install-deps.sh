#!/bin/sh
# Installs the Debian 12 packages crossdock builds, tests and benchmarks with.
# Idempotent and quick when everything is present: dpkg is asked first and
# apt-get runs only for what is missing. Needs root when something is missing.
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev
libmicrohttpd-dev libcurl4-openssl-dev libjq-dev libyaml-dev libcsv-dev
libssl-dev libgnutls28-dev libgmp-dev libcmocka-dev libcjson-dev libsqlite3-dev sqlite3
libpq-dev postgresql-15
python3 curl wrk nginx-light time bc chromium nodejs
libnats-dev nats-server"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
# npm: a Node.js from elsewhere (NodeSource) brings its own and only "provides"
# the package, so ask for the command rather than the package.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: need root to install:$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# nginx-light's package starts a default server on port 80; we only use the binary.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
# nats-server's package starts a default server on 4222 too; the tests start their own cluster.
case "$missing" in *nats-server*)
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nats-server >/dev/null 2>&1 || true; fi ;;
esac
pkill -x nginx 2>/dev/null || true
