#!/bin/sh
# crossdock on PostgreSQL: intake and end-to-end throughput with one node and
# with two nodes on one database. See bench/README.md ("PostgreSQL").
#
#   sh bench/pg.sh                  every scenario, 1 and 2 nodes
#   PG_SECONDS=30 PG_NODES=2 sh bench/pg.sh e2e
#
# A private PostgreSQL cluster (tests/integration/xdpg.py, fsync on: every
# 202 is a durable commit, as with SQLite's synchronous=FULL) runs on
# loopback for the whole script, with a fresh database per scenario. Each
# node is a `crossdock serve` with store.driver postgres; wrk (bench/intake.lua)
# drives all nodes at once, its connections split between them, and the
# figures are the sums.
#
# Scenarios:
#   single    one event per request, PG_CONNS connections in all
#   batch     PG_BATCH events per request, PG_CONNS connections
#   e2e       batches for PG_SECONDS, each event mapped and delivered to two
#             HTTP targets in turn (erp, then billing: nginx answering 200);
#             then the backlog drained. End to end = events delivered to both
#             targets / (load + drain time).
#
# Environment: PG_SECONDS (10), PG_NODES ("1 2"), PG_CONNS (16), PG_BATCH (100),
# PG_KEEP=1 keeps the folder, CROSSDOCK_BIN (build/crossdock), NGINX.
# Everything runs on this machine (cluster, nodes, wrk, nginx): the figures
# are for comparing drivers and node counts here, not a capacity of PostgreSQL.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CROSSDOCK_BIN:-$ROOT/build/crossdock}
SECS=${PG_SECONDS:-10}
NODES=${PG_NODES:-1 2}
CONNS=${PG_CONNS:-16}
BATCH=${PG_BATCH:-100}
NGINX=${NGINX:-/usr/sbin/nginx}
XDPG=$ROOT/tests/integration/xdpg.py
if [ $# -gt 0 ]; then SCENARIOS=$*; else SCENARIOS="single batch e2e"; fi

die() { echo "pg-bench: $*" >&2; exit 2; }
for tool in wrk curl awk python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (sh scripts/install-deps.sh)"
done
[ -x "$BIN" ] || die "$BIN not found: build it first (make build)"
[ -x "$NGINX" ] || die "nginx not found at $NGINX (Debian package nginx-light)"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$PGBIN" ] && [ -x "$PGBIN/psql" ] || die "PostgreSQL not found (apt-get install postgresql-15)"

base=${TMPDIR:-/tmp}
case $(stat -f -c %T "$base" 2>/dev/null || echo unknown) in tmpfs | ramfs) base=$ROOT/build ;; esac
WORK=$(mktemp -d "$base/crossdock-pg.XXXXXX")
chmod 755 "$WORK"
HUB_PIDS="" NGINX_PID="" CLUSTER=0
cleanup() {
    for p in $HUB_PIDS; do kill -TERM "$p" 2>/dev/null || true; done
    [ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID" 2>/dev/null || true
    [ "$CLUSTER" = 1 ] && python3 "$XDPG" stop "$WORK/pg" >/dev/null 2>&1 || true
    sleep 1
    if [ "${PG_KEEP:-0}" = 1 ]; then echo "pg-bench: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kv() { sed -n "s/^XDBENCH.* $2=\([^ ]*\).*/\1/p" "$1" | head -n 1; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# The cluster (fsync on), and nginx for the targets.
URL=$(python3 "$XDPG" start "$WORK/pg" --fsync) || die "the PostgreSQL cluster did not start ($WORK/pg/keeper.log)"
CLUSTER=1
ADMIN=${URL%/*}/postgres
psql_q() { "$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

. "$ROOT/bench/nginx.sh"
start_nginx "$WORK/nginx"

# Starts N nodes on database DB; routes to nginx when ROUTES=1. Sets PORTS, HUB_PIDS.
start_nodes() { # n db routes dir
    PORTS="" HUB_PIDS=""
    k=1
    while [ $k -le "$1" ]; do
        port=$(free_port)
        cfg=$4/node$k.yaml
        cat >"$cfg" <<YAML
server: {listen: "127.0.0.1:$port", max_batch: 1000}
store: {driver: postgres, url: "${URL%/*}/$2"}
log: {level: warn}
YAML
        if [ "$3" = 1 ]; then
            cat >>"$cfg" <<YAML
xref:
  plant: {DC1: "1000", DC2: "2000", DC3: "3000"}
targets:
  erp: {type: http, url: "http://127.0.0.1:$NPORT/erp/goods-issue", timeout_ms: 5000}
  billing: {type: http, url: "http://127.0.0.1:$NPORT/billing/usage", timeout_ms: 5000}
routes:
  - name: shipments
    on: [shipment.confirmed]
    steps:
      - deliver: erp
        map: '{delivery: .data.shipment_id, plant: \$xref.plant[.data.warehouse], customer: .data.customer, items: [.data.lines[] | {material: .sku, quantity: .qty, uom: .uom}]}'
      - deliver: billing
        map: '{account: .data.customer, reference: .data.shipment_id, lines: (.data.lines | length), units: ([.data.lines[].qty] | add)}'
YAML
        fi
        "$BIN" serve -c "$cfg" 2>"$4/node$k.log" &
        HUB_PIDS="$HUB_PIDS $!"
        PORTS="$PORTS $port"
        i=0
        until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
            i=$((i + 1)); [ $i -gt 300 ] && die "node $k did not start: $(tail -n 5 "$4/node$k.log")"
            sleep 0.1
        done
        k=$((k + 1))
    done
}

stop_nodes() {
    for p in $HUB_PIDS; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $HUB_PIDS; do wait "$p" 2>/dev/null || echo "   WARNING: node $p did not exit 0"; done
    HUB_PIDS=""
}

# wrk against every node at once, CONNS split evenly; waits for all. Outputs in DIR/wrkK.out.
load() { # dir batch
    nn=$(echo $PORTS | wc -w)
    c=$((CONNS / nn)); [ $c -lt 1 ] && c=1
    t=2; [ $t -gt $c ] && t=$c
    k=1 pids=""
    for port in $PORTS; do
        wrk -t$t -c$c -d"${SECS}s" --timeout 10s -s "$ROOT/bench/intake.lua" "http://127.0.0.1:$port" \
            -- batch="$2" run="pg$$n${nn}k$k$(date +%s)" >"$1/wrk$k.out" 2>&1 &
        pids="$pids $!"
        k=$((k + 1))
    done
    for p in $pids; do wait "$p" || true; done
}

# Sums KEY over the wrk outputs of DIR.
sum() { for f in "$1"/wrk*.out; do kv "$f" "$2"; done | awk '{ s += $1 } END { printf "%.0f", s }'; }
maxv() { for f in "$1"/wrk*.out; do kv "$f" "$2"; done | awk '$1 > m { m = $1 } END { printf "%.2f", m / 1000 }'; }
rss_all() { for p in $HUB_PIDS; do hwm "$p"; done | awk '{ printf "%s%.0f", (NR > 1 ? "+" : ""), $1 / 1024 }'; }

SUMMARY=$WORK/summary
: >"$SUMMARY"
echo "crossdock on PostgreSQL: $(nproc) cores, $("$PGBIN/postgres" --version), fsync on, ${SECS}s per run"
echo "  everything on this machine (cluster, nodes, wrk, nginx); load avg $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo
for sc in $SCENARIOS; do
    for n in $NODES; do
        dir=$WORK/$sc-$n
        mkdir -p "$dir"
        db=b_${sc}_$n
        psql_q "$ADMIN" "CREATE DATABASE $db" || die "cannot create database $db"
        case $sc in
        single | batch)
            b=1; [ "$sc" = batch ] && b=$BATCH
            start_nodes "$n" "$db" 0 "$dir"
            load "$dir" "$b"
            rss=$(rss_all)
            stop_nodes
            stored=$(psql_q "${URL%/*}/$db" "SELECT count(*) FROM events")
            acked=$(sum "$dir" events); non202=$(sum "$dir" non202)
            verdict=ok
            [ "$stored" -ge "$acked" ] || verdict="LOST EVENTS ($stored stored < $acked acknowledged)"
            [ "$non202" = 0 ] || verdict="$verdict; $non202 answers not 202"
            printf '%-7s %d node(s): %s req/s, %s events/s intake; worst p99 %s ms; %s acknowledged, %s stored; peak RSS %s MiB; %s\n' \
                "$sc" "$n" "$(sum "$dir" rps)" "$(sum "$dir" eps)" "$(maxv "$dir" p99_us)" "$acked" "$stored" "$rss" "$verdict" |
                tee -a "$SUMMARY"
            ;;
        e2e)
            start_nodes "$n" "$db" 1 "$dir"
            t0=$(date +%s.%N)
            load "$dir" 50
            t1=$(date +%s.%N)
            i=0
            while [ "$(psql_q "${URL%/*}/$db" "SELECT count(*) FROM deliveries WHERE state = 0")" != 0 ]; do
                i=$((i + 1)); [ $i -gt 6000 ] && { echo "   the backlog did not drain in 10 minutes"; break; }
                sleep 0.2
            done
            t2=$(date +%s.%N)
            rss=$(rss_all)
            stop_nodes
            events=$(psql_q "${URL%/*}/$db" "SELECT count(*) FROM events")
            both=$(psql_q "${URL%/*}/$db" "SELECT count(*) FROM deliveries WHERE step = 1 AND state = 1")
            dead=$(psql_q "${URL%/*}/$db" "SELECT count(*) FROM deliveries WHERE state = 2")
            awk -v n="$n" -v e="$events" -v b="$both" -v d="$dead" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v rss="$rss" 'BEGIN {
                load = t1 - t0; total = t2 - t0
                printf "e2e     %d node(s): %d events in %.1f s load + %.1f s drain: intake %.0f events/s, end to end %.0f events/s (both targets), dead %d; peak RSS %s MiB\n",
                    n, e, load, t2 - t1, e / load, b / total, d, rss }' | tee -a "$SUMMARY"
            ;;
        *) die "unknown scenario $sc (single, batch, e2e)" ;;
        esac
    done
done
echo
echo "Summary (PostgreSQL; the machine is shared: compare runs taken together):"
sed 's/^/  /' "$SUMMARY"
