#!/bin/sh
# crossdock intake benchmark: POST /v1/events with wrk (bench/intake.lua).
# See bench/README.md. `make bench` runs this after building build/crossdock.
#
#   sh bench/run.sh                     every scenario (default set below)
#   sh bench/run.sh single-16           one scenario
#   BENCH_SECONDS=30 sh bench/run.sh batch-100
#
# Scenarios: single-C (one event per request, C connections) and batch-B or
# batch-B-C (B events per request, C connections, default BENCH_BATCH_CONNS).
# Each scenario gets a fresh hub and a fresh store, in a temporary folder on a
# real disk, with the default store settings (synchronous=FULL): every 202 is
# a durable commit.
#
# Environment:
#   BENCH_SECONDS      length of each scenario's wrk run (10)
#   BENCH_SCENARIOS    scenarios when none are given ("single-16 single-64 batch-100")
#   BENCH_BATCH_CONNS  connections for batch-B scenarios (16)
#   BENCH_WRK_THREADS  wrk threads (2, at most the connection count)
#   BENCH_DIR          where the temporary folder goes ($TMPDIR or /tmp; build/
#                      when that is a tmpfs)
#   BENCH_KEEP=1       keep the temporary folder (config, logs, wrk output, store)
#   BENCH_PERF=1       perf record the hub during each run (dwarf call graphs);
#                      top symbols printed, perf.data and reports kept
#   BENCH_PERF_CALLGRAPH, BENCH_PERF_FREQ   perf record's --call-graph (dwarf,16384)
#                      and -F (499)
#   BENCH_STRICT=1     exit 1 when a target is missed, not only when a run failed
#   CROSSDOCK_BIN      the hub binary (build/crossdock)
#
# Exit status: 0 when every run was clean (only 202s, no socket errors, no
# duplicates, every acknowledged event found in the store, clean shutdown);
# 1 otherwise. Targets missed are reported as MISS (exit 1 only with
# BENCH_STRICT=1).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CROSSDOCK_BIN:-$ROOT/build/crossdock}
LUA=$ROOT/bench/intake.lua
SECS=${BENCH_SECONDS:-10}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
BATCH_CONNS=${BENCH_BATCH_CONNS:-16}
if [ $# -gt 0 ]; then SCENARIOS=$*; else SCENARIOS=${BENCH_SCENARIOS:-single-16 single-64 batch-100}; fi

# Targets (contract, on a 2-core machine with wrk on the same machine).
TARGET_RPS=30000     # single-event requests/s, at 16 and 64 connections
TARGET_EPS=200000    # events/s in batches of 100
TARGET_P99_MS=5      # p99 latency, single events at 16 connections

die() { echo "bench: $*" >&2; exit 2; }

for tool in wrk curl sqlite3 awk; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (sh scripts/install-deps.sh)"
done
[ -x "$BIN" ] || die "$BIN not found: build it first (make build)"
case $SECS in '' | *[!0-9]*) die "BENCH_SECONDS must be a whole number of seconds" ;; esac

# The store must be on a real disk: an fsync on tmpfs is free and would flatter us.
base=${BENCH_DIR:-${TMPDIR:-/tmp}}
fstype=$(stat -f -c %T "$base" 2>/dev/null || echo unknown)
case $fstype in
tmpfs | ramfs)
    [ -n "${BENCH_DIR:-}" ] && die "BENCH_DIR $base is a $fstype: the store must be on a real disk"
    base=$ROOT/build
    fstype=$(stat -f -c %T "$base" 2>/dev/null || echo unknown)
    ;;
esac
WORK=$(mktemp -d "$base/crossdock-bench.XXXXXX")

HUB_PID=""
PERF_PID=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    for p in $PERF_PID; do
        if kill -0 "$p" 2>/dev/null; then kill -INT "$p" 2>/dev/null || true; fi
    done
    if [ -n "$HUB_PID" ] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill -TERM "$HUB_PID" 2>/dev/null || true
        sleep 2
        kill -KILL "$HUB_PID" 2>/dev/null || true
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ "${BENCH_PERF:-0}" = 1 ] || [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "bench: files kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port (the same way tests/integration/xdtest.py picks one).
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        awk 'BEGIN { srand(); print 20000 + int(rand() * 30000) }'
    fi
}

# VALUE of KEY=VALUE on the XDBENCH line of a wrk output file.
kv() { sed -n "s/^XDBENCH.* $2=\([^ ]*\).*/\1/p" "$1" | head -n 1; }
# The hub's committed transactions so far (GET /metrics), or nothing.
store_commits() {
    curl -fsS --max-time 5 -H "Authorization: Bearer $KEY" "http://127.0.0.1:$1/metrics" 2>/dev/null |
        awk '$1 == "crossdock_store_commits_total{result=\"ok\"}" { print $2; exit }'
}
# A field of /proc/PID/status in kB.
proc_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
# CPU ticks the process used so far (user + system).
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
# Ticks of the whole machine: "total idle" (idle includes iowait).
sys_ticks() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6; exit }' /proc/stat; }
# CPU seconds of this shell's reaped children (line 2 of `times`), from a file.
child_secs() {
    awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] }; print t }' "$1"
}
# CPU ticks of the kernel's own threads (children of kthreadd): I/O completion,
# journaling, writeback; the hub's fsyncs cause much of it.
kthread_ticks() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk '{ sub(/^[0-9]+ \(.*\) /, ""); if ($2 == 2) t += $12 + $13 } END { print t + 0 }'
}
# CPU ticks of each of a process's threads, summed by thread name: "name ticks" lines.
thread_ticks() {
    cat "/proc/$1/task/"*/stat 2>/dev/null | awk '{
        name = $0; sub(/^[0-9]+ \(/, "", name); sub(/\) .*/, "", name); gsub(/ /, "_", name)
        rest = $0; sub(/^[0-9]+ \(.*\) /, "", rest); split(rest, f, " ")
        t[name] += f[12] + f[13] }
        END { for (n in t) print n, t[n] }'
}
mib() { if [ -z "${1:-}" ]; then echo "?"; else awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; fi; }

cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
KEY="bench-$$-$(date +%s)"
RUN=$(date +%H%M%S)

echo "crossdock intake benchmark"
echo "  machine   $cores cores${model:+ ($model)}, $(uname -sr)"
echo "  load      wrk $WRK_THREADS threads on the same machine, ${SECS}s per scenario, loopback"
echo "  hub       $BIN (threads = cores), store sqlite synchronous=FULL (default) on $fstype"
echo "  events    shipment.confirmed, 3-5 lines, unique event_id each; auth on (Bearer key)"
echo "  scenarios $SCENARIOS"
echo "  load avg  $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo

SUMMARY=$WORK/summary
: >"$SUMMARY"
failed=0
missed=0
noisy=0

run_scenario() {
    name=$1
    case $name in
    single-*) batch=1; conns=${name#single-} ;;
    batch-*-*) rest=${name#batch-}; batch=${rest%%-*}; conns=${rest#*-} ;;
    batch-*) batch=${name#batch-}; conns=$BATCH_CONNS ;;
    *) die "unknown scenario '$name' (single-C, batch-B or batch-B-C)" ;;
    esac
    case "$batch$conns" in '' | *[!0-9]*) die "unknown scenario '$name'" ;; esac
    threads=$WRK_THREADS
    [ "$threads" -gt "$conns" ] && threads=$conns

    dir=$WORK/$name
    mkdir -p "$dir"
    port=$(free_port)
    cat >"$dir/crossdock.yaml" <<EOF
server:
  listen: "127.0.0.1:$port"
store:
  driver: sqlite
  path: "$dir/crossdock.db"
auth:
  keys:
    - {id: bench, secret_env: XD_BENCH_KEY, scopes: ["events:write", "read"]}
EOF

    echo "== $name: $batch event(s) per request, $conns connections, ${SECS}s"
    XD_BENCH_KEY=$KEY "$BIN" serve -c "$dir/crossdock.yaml" >"$dir/serve.log" 2>&1 &
    HUB_PID=$!
    i=0
    until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/healthz" 2>/dev/null; do
        if ! kill -0 "$HUB_PID" 2>/dev/null; then
            echo "   FAILED: the hub exited at startup:"; sed 's/^/   | /' "$dir/serve.log" | tail -n 20
            HUB_PID=""; failed=1; KEEP_WORK=1
            printf '%s|%s|%s|-|-|-|-|-|-|-|-|-|-|-|FAIL (no start)\n' "$name" "$conns" "$batch" >>"$SUMMARY"
            return 0
        fi
        i=$((i + 1))
        [ $i -gt 300 ] && die "the hub did not answer /healthz within 30 s (log: $dir/serve.log)"
        sleep 0.1
    done
    hwm_idle=$(proc_kb "$HUB_PID" VmHWM)

    if [ "${BENCH_PERF:-0}" = 1 ]; then
        # dwarf: libc, libsqlite3 and libcjson have no frame pointers, so -g alone
        # loses every caller above them.
        perf record -q --call-graph "${BENCH_PERF_CALLGRAPH:-dwarf,16384}" -F "${BENCH_PERF_FREQ:-499}" \
            -p "$HUB_PID" -o "$dir/perf.data" -- sleep "$SECS" >"$dir/perf.log" 2>&1 &
        PERF_PID=$!
    fi
    # Is anything else using the CPU? (The hub is idle now.) Numbers taken on
    # a busy machine say little; warn, so they are not compared with clean ones.
    sys_a=$(sys_ticks); sleep 1; sys_b=$(sys_ticks)
    pre_busy=$(echo "$sys_a $sys_b" | awk '{ d = $3 - $1; if (d <= 0) print 0; else printf "%.0f\n", 100 * (d - ($4 - $2)) / d }')
    if [ "$pre_busy" -gt 10 ]; then
        echo "   WARNING: the machine was ${pre_busy}% busy before the run (other processes): numbers are noisy"
        noisy=1
    fi
    # The store's commits (one fsync each), from the hub's own counters: tracing
    # its syscalls instead (perf stat) cost it 3-4% of its throughput.
    commits0=$(store_commits "$port")
    hub_t0=$(proc_ticks "$HUB_PID"); sys_t0=$(sys_ticks); kt0=$(kthread_ticks)
    thread_ticks "$HUB_PID" >"$dir/threads0"
    times >"$dir/times0"
    wrk_rc=0
    wrk -t"$threads" -c"$conns" -d"${SECS}s" --timeout 10s --latency -s "$LUA" \
        "http://127.0.0.1:$port" -- "batch=$batch" "run=$RUN" "key=$KEY" >"$dir/wrk.out" 2>&1 || wrk_rc=$?
    hub_t1=$(proc_ticks "$HUB_PID"); sys_t1=$(sys_ticks); kt1=$(kthread_ticks)
    times >"$dir/times1"
    thread_ticks "$HUB_PID" >"$dir/threads1"
    wrk_secs=$(awk -v a="$(child_secs "$dir/times0")" -v b="$(child_secs "$dir/times1")" 'BEGIN { print b - a }')
    hwm=$(proc_kb "$HUB_PID" VmHWM)
    # In cores (1.0 = one core busy): the hub, wrk, the kernel's threads, and
    # everything else (other processes, interrupts: noise when large).
    [ -n "$hub_t1" ] || hub_t1=$hub_t0 # the hub is gone: its CPU is unknown
    cpu=$(echo "$hub_t0 $hub_t1 $sys_t0 $sys_t1 $kt0 $kt1" | awk -v n="$cores" -v w="$wrk_secs" \
        -v hz="$(getconf CLK_TCK)" '{
        wall = ($5 - $3) / n; busy = ($5 - $3) - ($6 - $4)
        if (wall <= 0) { print "? ? ? ? 0"; exit }
        hub = ($2 - $1) / wall; wrk = w * hz / wall
        kt = ($8 - $7) / wall; if (kt < 0) kt = 0   # kernel threads that exited
        other = busy / wall - hub - wrk - kt
        printf "%.2f %.2f %.2f %.2f %d\n", hub, wrk, kt, (other < 0 ? 0 : other), (other > 0.2) }')
    hub_cores=$(echo "$cpu" | cut -d' ' -f1); wrk_cores=$(echo "$cpu" | cut -d' ' -f2)
    kt_cores=$(echo "$cpu" | cut -d' ' -f3); other_cores=$(echo "$cpu" | cut -d' ' -f4)
    if [ "$(echo "$cpu" | cut -d' ' -f5)" = 1 ]; then
        echo "   WARNING: something else used $other_cores cores during the run: numbers are noisy"
        noisy=1
    fi
    rss=$(proc_kb "$HUB_PID" VmRSS)
    if [ -n "$PERF_PID" ]; then wait "$PERF_PID" || true; PERF_PID=""; fi
    commits=""
    commits1=$(store_commits "$port")
    if [ -n "$commits0" ] && [ -n "$commits1" ]; then commits=$((commits1 - commits0)); fi

    # Stop: SIGTERM drains the requests in flight; the exit code must be 0.
    hub_alive=0
    kill -0 "$HUB_PID" 2>/dev/null && hub_alive=1
    kill -TERM "$HUB_PID" 2>/dev/null || true # it may have died already
    i=0
    while kill -0 "$HUB_PID" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    hub_rc=0
    if kill -0 "$HUB_PID" 2>/dev/null; then
        kill -KILL "$HUB_PID" 2>/dev/null || true
        hub_rc=killed
    fi
    if wait "$HUB_PID" 2>/dev/null; then :; else st=$?; [ "$hub_rc" = killed ] || hub_rc=$st; fi
    HUB_PID=""

    stored=$(sqlite3 "$dir/crossdock.db" 'SELECT count(*) FROM events' 2>"$dir/sqlite.err" || echo "?")

    out=$dir/wrk.out
    reqs=$(kv "$out" requests); ok=$(kv "$out" ok); non202=$(kv "$out" non202); dup=$(kv "$out" dup)
    events=$(kv "$out" events); rps=$(kv "$out" rps); eps=$(kv "$out" eps)
    p50=$(kv "$out" p50_us); p99=$(kv "$out" p99_us); p999=$(kv "$out" p999_us); pmax=$(kv "$out" max_us)
    e_conn=$(kv "$out" err_connect); e_read=$(kv "$out" err_read)
    e_write=$(kv "$out" err_write); e_tmo=$(kv "$out" err_timeout)
    sockerr=$(awk -v a="$e_conn" -v b="$e_read" -v c="$e_write" -v d="$e_tmo" 'BEGIN { print a + b + c + d }')
    evavg=$(kv "$out" event_avg)

    why=""
    [ "$wrk_rc" = 0 ] || why="$why wrk exited $wrk_rc;"
    if [ -z "$reqs" ]; then
        why="$why no results from wrk;"
        reqs=0 ok=0 non202=0 dup=0 events=0 rps=0 eps=0 p50=0 p99=0 p999=0 pmax=0
    fi
    [ "$reqs" -gt 0 ] || why="$why no requests completed;"
    [ "$non202" = 0 ] || why="$why $non202 answers not 202;"
    [ "$dup" = 0 ] || why="$why $dup answers listed duplicates;"
    [ "$sockerr" = 0 ] || why="$why $sockerr socket errors/timeouts;"
    if [ "$hub_alive" = 0 ]; then
        why="$why the hub died during the run (exit $hub_rc);"
    elif [ "$hub_rc" != 0 ]; then
        why="$why hub exit $hub_rc on SIGTERM;"
    fi
    # Every acknowledged event must be in the store; a few more may be (requests
    # in flight when wrk stopped, committed but never counted).
    slack=$((conns * batch))
    case $stored in
    '' | *[!0-9]*) why="$why cannot count the store ($(head -c 200 "$dir/sqlite.err"));" ;;
    *)
        [ "$stored" -ge "$events" ] || why="$why stored $stored < acknowledged $events: LOST EVENTS;"
        [ "$stored" -le $((events + slack)) ] || why="$why stored $stored > acknowledged $events + $slack in flight;"
        ;;
    esac
    if grep -q -E 'AddressSanitizer|runtime error:|LeakSanitizer' "$dir/serve.log"; then
        why="$why sanitizer report in the hub log;"
    fi

    miss=""
    case $name in
    single-*)
        awk -v r="$rps" -v t="$TARGET_RPS" 'BEGIN { exit !(r < t) }' && miss="$miss req/s < $TARGET_RPS;"
        if [ "$conns" = 16 ]; then
            awk -v p="$p99" -v t="$TARGET_P99_MS" 'BEGIN { exit !(p >= t * 1000) }' && miss="$miss p99 >= ${TARGET_P99_MS} ms;"
        fi
        ;;
    batch-*)
        awk -v r="$eps" -v t="$TARGET_EPS" 'BEGIN { exit !(r < t) }' && miss="$miss events/s < $TARGET_EPS;"
        ;;
    esac

    if [ -n "$why" ]; then
        verdict="FAIL"; failed=1; KEEP_WORK=1
    elif [ -n "$miss" ]; then
        verdict="MISS"; missed=1
    else
        verdict="PASS"
    fi

    ms() { awk -v u="${1:-0}" 'BEGIN { printf "%.2f", u / 1000 }'; }
    printf '   %s req/s, %s events/s; latency p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms\n' \
        "$rps" "$eps" "$(ms "$p50")" "$(ms "$p99")" "$(ms "$p999")" "$(ms "$pmax")"
    printf '   answers: %s requests, %s x 202, %s not 202, %s with duplicates, %s socket errors%s\n' \
        "$reqs" "$ok" "$non202" "$dup" "$sockerr" \
        "$([ "$sockerr" = 0 ] || echo " (connect ${e_conn:-?}, read ${e_read:-?}, write ${e_write:-?}, timeout ${e_tmo:-?})")"
    printf '   events: %s acknowledged (202), %s in the store (SELECT count(*) FROM events); ~%s bytes each\n' \
        "$events" "$stored" "$evavg"
    printf '   hub memory: peak RSS (VmHWM) %s MiB (%s MiB idle), RSS at end %s MiB\n' \
        "$(mib "$hwm")" "$(mib "$hwm_idle")" "$(mib "$rss")"
    printf '   CPU (cores of %s): hub %s, wrk %s, kernel threads %s, other %s\n' \
        "$cores" "$hub_cores" "$wrk_cores" "$kt_cores" "$other_cores"
    # Per thread: a serial stage (the committer) near 1.00 is the bottleneck.
    awk -v wall="$(echo "$sys_t0 $sys_t1" | awk -v n="$cores" '{ print ($3 - $1) / n }')" '
        NR == FNR { t0[$1] = $2; next }
        { d = $2 - t0[$1]; if (wall > 0 && d > 0) out = out sprintf("%s %s %.2f", (out ? "," : ""), $1, d / wall) }
        END { if (out) print "   hub threads (cores):" out }' "$dir/threads0" "$dir/threads1"
    if [ -n "$commits" ] && [ "$commits" -gt 0 ]; then
        awk -v f="$commits" -v e="$events" -v r="$reqs" -v t="$SECS" 'BEGIN {
            printf "   store: %d commits (%.0f/s, one fsync each): %.1f requests, %.1f events per commit\n", f, f / t, r / f, e / f }'
    fi
    sed -n 's/^XDBENCH_ERR /   sample answer: /p' "$out" | head -n 3
    [ -z "$why" ] || echo "   FAILED:$why"
    [ -z "$miss" ] || echo "   below target:$miss"
    if [ -n "$why" ]; then
        echo "   hub log (last lines):"; tail -n 10 "$dir/serve.log" | sed 's/^/   | /'
    fi
    if [ "${BENCH_PERF:-0}" = 1 ] && [ -s "$dir/perf.data" ]; then
        perf report -i "$dir/perf.data" --stdio --no-children -g none --percent-limit 0.8 \
            -F overhead,dso,sym 2>/dev/null >"$dir/perf-self.txt" || true
        perf report -i "$dir/perf.data" --stdio --children -g none --percent-limit 2 \
            --sort dso,sym 2>/dev/null >"$dir/perf-children.txt" || true
        perf report -i "$dir/perf.data" --stdio --no-children -g caller,0.5,callee --percent-limit 1 \
            2>/dev/null >"$dir/perf-callers.txt" || true
        echo "   perf, hub, self time (more: $dir/perf-{self,children,callers}.txt):"
        grep -E '^ +[0-9]' "$dir/perf-self.txt" | head -n 20 | sed 's/^/   /'
    fi
    echo

    # The store can be large (GBs for batches); keep it only when asked or failed.
    if [ "${BENCH_KEEP:-0}" != 1 ] && [ -z "$why" ]; then
        rm -f "$dir/crossdock.db" "$dir/crossdock.db-wal" "$dir/crossdock.db-shm"
    fi

    evfs="-"
    if [ -n "$commits" ] && [ "$commits" -gt 0 ]; then evfs=$(awk -v f="$commits" -v e="$events" 'BEGIN { printf "%.1f", e / f }'); fi
    # name conns batch req/s events/s p50 p99 RSS hubCPU ev/commit non202 sockerr acked stored result
    printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$name" "$conns" "$batch" \
        "$(awk -v r="$rps" 'BEGIN { printf "%.0f", r }')" "$(awk -v r="$eps" 'BEGIN { printf "%.0f", r }')" \
        "$(ms "$p50")" "$(ms "$p99")" "$(mib "$hwm")" "$hub_cores" "$evfs" \
        "$non202" "$sockerr" "$events" "$stored" "$verdict" >>"$SUMMARY"
}

for s in $SCENARIOS; do
    run_scenario "$s"
done

echo "Summary: $cores cores${model:+ ($model)}, ${SECS}s per scenario, wrk on the same machine"
echo "  RSS = the hub's peak RSS (VmHWM) in that scenario; hubCPU = cores the hub used;"
echo "  ev/commit = events per commit (group commit, one fsync each); 202d = events acknowledged (202); stored = count(*) after"
awk -F'|' '
BEGIN {
    fmt = "%-12s %5s %5s %8s %9s %6s %6s %7s %6s %8s %6s %7s %9s %9s  %s\n"
    printf fmt, "scenario", "conns", "batch", "req/s", "events/s", "p50ms", "p99ms", "RSS MiB", "hubCPU", "ev/commit", "non202", "sockerr", "202d", "stored", "result"
}
{ printf fmt, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 }
' "$SUMMARY"
echo "Targets: >= $TARGET_RPS req/s single events (16 and 64 connections), p99 < $TARGET_P99_MS ms at 16,"
echo "         >= $TARGET_EPS events/s in batches of 100; every 202 durable (synchronous=FULL)."

[ "$noisy" = 0 ] || echo "WARNING: other processes used the CPU during this benchmark; rerun on a quiet machine."

if [ "$failed" = 1 ]; then
    echo "bench: FAILED: a run had errors (see above)" >&2
    exit 1
fi
if [ "$missed" = 1 ]; then
    if [ "${BENCH_STRICT:-0}" = 1 ]; then
        echo "bench: a target was missed (BENCH_STRICT=1)" >&2
        exit 1
    fi
    echo "bench: every run clean; a target was missed (MISS above)"
fi
exit 0
