#!/bin/sh
# The dashboard's API under a large store: 100,000 events, 10,000 dead
# letters (with their open exceptions), 90,000 delivered, 100,000 charges
# of today. Times each call the page makes (bench/README.md, "Dashboard").
# `make bench` runs it after the intake and end-to-end benchmarks.
#
#   sh bench/ui.sh
#   UI_EVENTS=200000 UI_DEAD=20000 UI_RUNS=50 sh bench/ui.sh
#
# The store is filled the way a hub fills it: the events through
# `crossdock ingest` (validation, normalisation, one delivery planned per
# event by the route), then the deliveries' outcomes, their exceptions and
# the charges are written with the sqlite3 CLI (what a day of delivering
# would have left: only the volume matters here). The hub is then started on
# that store and each call is made UI_RUNS times with curl over loopback, one
# connection each, as a browser tab polling the page would; min, median, p95
# and max of curl's time_total are printed. A report only: nothing is
# asserted, nothing fails on a slow figure.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CROSSDOCK_BIN:-$ROOT/build/crossdock}
EVENTS=${UI_EVENTS:-100000}
DEAD=${UI_DEAD:-10000}
RUNS=${UI_RUNS:-20}
die() { echo "bench/ui: $*" >&2; exit 2; }
for tool in curl sqlite3 awk sort; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (sh scripts/install-deps.sh)"
done
[ -x "$BIN" ] || die "$BIN not found: build it first (make build)"
[ "$DEAD" -le "$EVENTS" ] || die "UI_DEAD must not exceed UI_EVENTS"

base=${BENCH_DIR:-${TMPDIR:-/tmp}}
WORK=$(mktemp -d "$base/xd-bench-ui-XXXXXX")
HUB_PID=""
cleanup() {
    [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null && wait "$HUB_PID" 2>/dev/null
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

PORT=$(awk 'BEGIN { srand(); print 20000 + int(rand() * 20000) }')
KEY=bench-ui-viewer
cat >"$WORK/crossdock.yaml" <<EOF
server: {listen: "127.0.0.1:$PORT"}
store: {driver: sqlite, path: "$WORK/crossdock.db"}
log: {level: warn}
auth:
  keys:
    - {id: viewer, secret_env: XD_BENCH_UI_KEY, scopes: [read]}
targets:
  erp: {type: http, url: "http://127.0.0.1:9/erp"}
routes:
  - name: shipments
    on: [shipment.confirmed]
    steps: [{deliver: erp}]
EOF
export XD_BENCH_UI_KEY=$KEY

echo "== dashboard API: $EVENTS events, $DEAD dead letters, store in $WORK"
t0=$(date +%s)
files=10
per=$(( (EVENTS + files - 1) / files ))
i=0
while [ $i -lt $files ]; do
    awk -v from=$(( i * per )) -v n=$per -v total="$EVENTS" 'BEGIN {
        split("ACME GLOBEX INITECH UMBRELLA", cust, " ");
        for (k = from; k < from + n && k < total; k++) {
            printf "{\"event_id\":\"ui-%07d\",\"type\":\"shipment.confirmed\",\"occurred_at\":\"2026-11-28T%02d:%02d:%02dZ\",", k, (k / 3600) % 24, (k / 60) % 60, k % 60;
            printf "\"source\":\"wms-bench\",\"data\":{\"warehouse\":\"DC%d\",\"shipment_id\":\"SHP-%d\",\"order_id\":\"SO-%d\",", k % 3 + 1, k, k;
            printf "\"customer\":\"%s\",\"lines\":[{\"sku\":\"SKU-%d\",\"qty\":%d},{\"sku\":\"SKU-%d\",\"qty\":1}]}}\n", cust[k % 4 + 1], k % 500, k % 7 + 1, k % 311;
        }
    }' >"$WORK/events-$i.jsonl"
    i=$((i + 1))
done
"$BIN" ingest -c "$WORK/crossdock.yaml" "$WORK"/events-*.jsonl >/dev/null
rm -f "$WORK"/events-*.jsonl
today=$(date -u +%Y-%m-%d)
now_ms=$(( $(date +%s) * 1000 ))
# Every DELIVERED/DEAD split by id: the last $DEAD deliveries are dead (one
# attempt, a 400 kept as the last error, an open exception each), the rest
# done (one attempt); one charge of today per event.
sqlite3 "$WORK/crossdock.db" >/dev/null <<EOF
PRAGMA busy_timeout = 10000;
BEGIN;
UPDATE deliveries SET state = 1, attempts = 1, last_status = 200, error_class = 'ok',
    updated_ms = $now_ms - (id % 3600) * 1000
  WHERE id <= (SELECT max(id) FROM deliveries) - $DEAD;
UPDATE deliveries SET state = 2, attempts = 1, last_status = 400, error_class = 'http_4xx',
    last_error = 'HTTP 400: {"error":"unknown material SKU-' || (id % 97) || '"}',
    payload = '{"delivery":"SHP-' || id || '"}', updated_ms = $now_ms - (id % 3600) * 1000
  WHERE id > (SELECT max(id) FROM deliveries) - $DEAD;
INSERT INTO attempts (delivery_id, at_ms, status, latency_us, outcome, error)
  SELECT id, updated_ms, last_status, 1500 + id % 5000,
         CASE state WHEN 1 THEN 'ok' ELSE 'fail' END, last_error FROM deliveries;
INSERT INTO exceptions (category, event_id, delivery_id, target, reason, created_ms, updated_ms)
  SELECT 'dead_letter', e.event_id, d.id, d.target, d.last_error, d.updated_ms, d.updated_ms
  FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.state = 2;
INSERT INTO charges (charge_id, event_seq, event_id, customer, code, unit, warehouse, reference,
    currency, service_date, quantity, unit_price, amount, source, band, occurred_us, created_ms,
    json)
  SELECT 'chg-' || seq, seq, event_id, json_extract(body, '\$.data.customer'), 'PICK_UNIT', 'unit',
         json_extract(body, '\$.data.warehouse'), json_extract(body, '\$.data.shipment_id'), 'USD',
         '$today', '3', '0.35', '1.05', 0, 0, 0, $now_ms, '{}'
  FROM events;
COMMIT;
EOF
load_s=$(( $(date +%s) - t0 ))
counts=$(sqlite3 "$WORK/crossdock.db" "SELECT (SELECT count(*) FROM events) || ' events, ' ||
  (SELECT count(*) FROM deliveries WHERE state = 2) || ' dead, ' ||
  (SELECT count(*) FROM deliveries WHERE state = 1) || ' done, ' ||
  (SELECT count(*) FROM exceptions WHERE state = 'open') || ' open exceptions, ' ||
  (SELECT count(*) FROM charges) || ' charges'")
echo "   store: $counts ($(du -h "$WORK/crossdock.db" | cut -f1)), loaded in ${load_s} s"

"$BIN" serve -c "$WORK/crossdock.yaml" >"$WORK/serve.log" 2>&1 &
HUB_PID=$!
URL="http://127.0.0.1:$PORT"
n=0
until curl -fs "$URL/healthz" >/dev/null 2>&1; do
    n=$((n + 1))
    [ $n -lt 300 ] || { cat "$WORK/serve.log" >&2; die "the hub did not start"; }
    sleep 0.1
done

mid=$(sqlite3 "$WORK/crossdock.db" "SELECT id FROM deliveries WHERE state = 2 ORDER BY id LIMIT 1 OFFSET $((DEAD / 2))")
eid=$(sqlite3 "$WORK/crossdock.db" "SELECT e.event_id FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.state = 2 LIMIT 1")
last_exc=$(sqlite3 "$WORK/crossdock.db" "SELECT id FROM exceptions ORDER BY id LIMIT 1 OFFSET $((DEAD / 2))")

# One call, RUNS times: "min median p95 max" in ms, and the answer's size.
measure() {
    label=$1
    path=$2
    out=$WORK/times
    : >"$out"
    r=0
    while [ $r -lt "$RUNS" ]; do
        curl -s -o "$WORK/body" -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $KEY" \
            "$URL$path" >>"$out"
        r=$((r + 1))
    done
    bytes=$(wc -c <"$WORK/body")
    bad=$(awk '$1 != 200' "$out" | wc -l)
    sort -k2 -n "$out" | awk -v runs="$RUNS" -v path="$label" -v bytes="$bytes" -v bad="$bad" '
        { t[NR] = $2 * 1000 }
        END {
            p50 = t[int((NR + 1) / 2)]; p95 = t[int(NR * 0.95 + 0.999)];
            printf "   %-44s %7.2f %7.2f %7.2f %7.2f  %8d B%s\n", path, t[1], p50, p95, t[NR], bytes,
                   bad ? "  (" bad " not 200)" : "";
        }'
}

# The first /v1/stats pays for the KPIs (revenue of today, backlog by
# warehouse: cached 10 s); later ones within the cache read the ring buffer,
# the per-target counts, the exception counts and count(*) of the events.
first=$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $KEY" "$URL/v1/stats")
printf '   %-44s %7s %7s %7s %7s\n' "call (ms, $RUNS runs, one connection each)" min median p95 max
printf '   %-44s %7.2f\n' "stats, first call (KPIs computed)" "$(echo "$first * 1000" | bc)"
measure "stats (KPIs cached)" "/v1/stats"
measure "dead letters, first page of 25" "/v1/deliveries?state=dead&limit=25"
measure "dead letters, a page in the middle" "/v1/deliveries?state=dead&limit=25&after=$mid"
measure "  ... filtered by target and error class" \
    "/v1/deliveries?state=dead&target=erp&error_class=http_4xx&limit=25&after=$mid"
measure "dead letters, count" "/v1/deliveries/count?state=dead"
measure "  ... filtered (bulk replay confirmation)" \
    "/v1/deliveries/count?state=dead&target=erp&error_class=http_4xx"
measure "open exceptions, first page of 25" "/v1/exceptions?state=open&limit=25"
measure "open exceptions, a page in the middle" "/v1/exceptions?state=open&limit=25&after=$last_exc"
measure "an event's timeline" "/v1/events/$eid"
measure "/metrics" "/metrics"
measure "/ui (the page)" "/ui"
# One refresh of the page as it polls: stats, a page of dead letters with its
# count, a page of exceptions (the page makes these every 2-4 s).
t1=$(date +%s%N)
r=0
while [ $r -lt "$RUNS" ]; do
    for p in "/v1/stats" "/v1/deliveries?state=dead&limit=25" "/v1/deliveries/count?state=dead" \
        "/v1/exceptions?state=open&limit=25"; do
        curl -s -o /dev/null -H "Authorization: Bearer $KEY" "$URL$p"
    done
    r=$((r + 1))
done
t2=$(date +%s%N)
printf '   %-44s %7.2f ms per refresh (mean of %d, curl starts included)\n' "one page refresh (4 calls in a row)" \
    "$(echo "($t2 - $t1) / 1000000 / $RUNS" | bc -l)" "$RUNS"
rss=$(awk '/VmHWM/ { print $2 / 1024 }' "/proc/$HUB_PID/status")
printf '   hub peak RSS (VmHWM): %.1f MiB\n' "$rss"
kill "$HUB_PID"
wait "$HUB_PID" || die "the hub did not stop cleanly"
HUB_PID=""
