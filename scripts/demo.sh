#!/bin/sh
# make demo, first version: starts the hub on the example config in a fresh
# folder, posts sample warehouse events the way a WMS would, shows what the
# hub answers and what it stored, then stops the hub cleanly.
# Routing, rating and the simulated WMS grow this into the full demo.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/build/crossdock"
port=${DEMO_PORT:-8080}
work=$(mktemp -d /tmp/crossdock-demo.XXXXXX)
export CROSSDOCK_KEY_WMS=demo-wms-secret CROSSDOCK_KEY_OPS=demo-ops-secret
sed "s/127.0.0.1:8080/127.0.0.1:$port/" "$top/examples/crossdock.yaml" > "$work/crossdock.yaml"
url="http://127.0.0.1:$port"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { # METHOD PATH [KEY] [BODY-FILE]
  printf '$ curl -X %s %s%s\n' "$1" "$url" "$2"
  if [ -n "${4:-}" ]; then
    curl -sS -X "$1" "$url$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' \
      --data-binary "@$4" -w '\n-> HTTP %{http_code}\n'
  else
    curl -sS -X "$1" "$url$2" -H "Authorization: Bearer ${3:-}" -w '\n-> HTTP %{http_code}\n'
  fi
}

say "crossdock check"
"$bin" check -c "$work/crossdock.yaml"

say "starting the hub on $url (store: $work/crossdock.db)"
( cd "$work" && exec "$bin" serve -c crossdock.yaml ) 2>"$work/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT INT TERM
i=0
until curl -sf "$url/healthz" >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -gt 100 ] && { cat "$work/serve.log"; exit 1; }
  sleep 0.1
done

say "the WMS posts one event of each type"
for f in "$top"/tests/data/events/*.json; do
  show POST /v1/events "$CROSSDOCK_KEY_WMS" "$f"
done

say "a batch of three shipments, committed atomically"
cat > "$work/batch.json" <<JSON
{"events": [
 {"event_id":"demo-b1","type":"shipment.confirmed","occurred_at":"2026-11-28T15:00:00Z","data":{"warehouse":"DC2","shipment_id":"SHP-2001","order_id":"SO-77","customer":"GLOBEX","lines":[{"sku":"GX-100","qty":4}]}},
 {"event_id":"demo-b2","type":"shipment.confirmed","occurred_at":"2026-11-28T15:01:00Z","data":{"warehouse":"DC2","shipment_id":"SHP-2002","order_id":"SO-78","customer":"GLOBEX","lines":[{"sku":"GX-200","qty":1},{"sku":"GX-300","qty":12}]}},
 {"event_id":"demo-b3","type":"goods.received","occurred_at":"2026-11-28T15:02:00Z","data":{"warehouse":"DC2","receipt_id":"RCV-9","customer":"GLOBEX","pallets":2,"lines":[{"sku":"GX-100","qty":96}]}}
]}
JSON
show POST /v1/events "$CROSSDOCK_KEY_WMS" "$work/batch.json"

say "the WMS retries the same batch: acknowledged as duplicates, stored once"
show POST /v1/events "$CROSSDOCK_KEY_WMS" "$work/batch.json"

say "a batch with two mistakes: every error named by its path, nothing stored"
cat > "$work/bad.json" <<JSON
{"events": [
 {"event_id":"demo-c1","type":"shipment.confirmed","occurred_at":"2026-11-28T16:00:00Z","data":{"warehouse":"DC1","shipment_id":"SHP-3001","order_id":"SO-90","customer":"ACME","lines":[{"sku":"A-1","qty":2}]}},
 {"event_id":"demo-c2","type":"shipment.confirmed","occurred_at":"2026-11-31T16:00:00Z","data":{"warehouse":"DC1","shipment_id":"SHP-3002","order_id":"SO-91","customer":"ACME","lines":[{"sku":"A-1","qty":0}]}}
]}
JSON
show POST /v1/events "$CROSSDOCK_KEY_WMS" "$work/bad.json"
show GET /v1/events/demo-c1 "$CROSSDOCK_KEY_OPS"

say "a key without events:write cannot post"
show POST /v1/events "$CROSSDOCK_KEY_OPS" "$work/batch.json"

say "what the hub stored for demo-b2"
show GET /v1/events/demo-b2 "$CROSSDOCK_KEY_OPS"

say "stopping the hub (SIGTERM drains and exits 0)"
kill -TERM $pid
wait $pid && echo "hub stopped cleanly"
trap - EXIT INT TERM
n=$(sqlite3 "$work/crossdock.db" 'SELECT count(*) FROM events' 2>/dev/null || echo '?')
say "summary: $n events in the journal at $work/crossdock.db"
