#!/usr/bin/env bash
# Crash under load: kill -9 the server while `callgate load` keeps it busy, restart it, repeat; then check
# that no acknowledged ALLOW was lost and that the calls counted without an acknowledgement are no more
# than the requests in flight at the kills.
#   scripts/crash-under-load.sh [cycles=20]
# Per cycle: `callgate load` (8 connections × depth 16, or $CONNECTIONS × $DEPTH; closed loop, no warm-up so every answer counts)
# starts against `callgated --durability commit`, the server gets SIGKILL after a random 0.5–3 s, the load
# generator reports the ALLOWs it received (JSON `decisions.ALLOW`) and its errors (only
# CONNECTION_CLOSED is accepted), and the server restarts on the same data directory and port.
# At the end the server stops cleanly and the sum of today's stored counters is compared with the sum of
# acknowledged ALLOWs:  0 ≤ stored − acknowledged ≤ cycles × connections × depth.
# DURABILITY=async runs the same against --durability async (a negative control: it may lose acks).
# Binaries: $CALLGATE_BIN_DIR (default .build/release; build them first with `swift build -c release`).
# Installs sqlite3 and jq when missing and builds the release binaries (unless CALLGATE_BIN_DIR names
# them). Exits 1 on a violation.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-20}
bin_dir=${CALLGATE_BIN_DIR:-.build/release}
server_bin="$bin_dir/callgated"
client_bin="$bin_dir/callgate"
durability=${DURABILITY:-commit}
connections=${CONNECTIONS:-8}
depth=${DEPTH:-16}
agents=200
scripts/bootstrap.sh
for tool in sqlite3 jq; do
    if ! command -v "$tool" >/dev/null; then
        sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo apt-get install -y -q "$tool" >/dev/null
    fi
done
if [[ -z "${CALLGATE_BIN_DIR:-}" ]]; then
    swift build -c release --product callgated >/dev/null
    swift build -c release --product callgate >/dev/null
fi
for tool in "$server_bin" "$client_bin"; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/callgate-crash.XXXXXX")
data="$work/data"
key="$data/admin.key"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then kill -9 "$server_pid" 2>/dev/null || true; fi
    if [[ -z "${KEEP:-}" ]]; then rm -rf "$work"; else echo "kept: $work" >&2; fi
}
trap cleanup EXIT

port=0
starts=0
# Starts the server and waits (up to 30 s) for its "listening" line; sets server_pid and port.
start_server() {
    starts=$((starts + 1))
    local log="$work/server-$starts.log"
    "$server_bin" --durability "$durability" --data-dir "$data" --host 127.0.0.1 --port "$port" --metrics-port off \
        >"$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 300); do
        if grep -q "callgated listening" "$log"; then
            port=$(sed -n 's/.*address=127\.0\.0\.1:\([0-9]*\) .*callgated listening.*/\1/p' "$log" | head -1)
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "FAIL: server start #$starts did not come up:" >&2
    cat "$log" >&2
    return 1
}

stored_today() {
    sqlite3 "$data/callgate.sqlite" \
        "SELECT COALESCE(SUM(count), 0) FROM counters WHERE day_key = (SELECT MAX(day_key) FROM counters)"
}

violations=0
fail() {
    echo "VIOLATION: $*"
    violations=$((violations + 1))
}

# Seed once: agents and numbers, one measured request (its ALLOW counts as acknowledged).
start_server
echo "data: $data  port: $port"
"$client_bin" load --port "$port" --key-file "$key" --seed "agents=$agents,numbers-per-agent=2,limit=1000000" \
    --requests 1 --warmup 0 --connections 1 --depth 1 --json --quiet >"$work/seed.json"
acknowledged=$(jq '.decisions.ALLOW // 0' "$work/seed.json")
echo "seed: $(jq -r '.seed | "\(.agents // "?") agents"' "$work/seed.json" 2>/dev/null || echo done), ALLOWs $acknowledged"

total_errors_closed=0
total_requests=0
for cycle in $(seq "$cycles"); do
    report="$work/load-$cycle.json"
    "$client_bin" load --port "$port" --key-file "$key" --agent-count "$agents" \
        --connections "$connections" --depth "$depth" --duration 30 --warmup 0 --json --quiet \
        >"$report" 2>"$work/load-$cycle.err" &
    load_pid=$!
    delay=$(awk -v seed="$RANDOM" 'BEGIN { srand(seed); printf "%.2f", 0.5 + rand() * 2.5 }')
    sleep "$delay"
    kill -9 "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    load_rc=0
    wait "$load_pid" || load_rc=$?

    allows=0
    requests=0
    closed=0
    other="none"
    if [[ -s "$report" ]] && jq -e . "$report" >/dev/null 2>&1; then
        allows=$(jq '.decisions.ALLOW // 0' "$report")
        requests=$(jq '.requests' "$report")
        closed=$(jq '.errors.CONNECTION_CLOSED // 0' "$report")
        other=$(jq -r '[.errors | to_entries[] | select(.key != "CONNECTION_CLOSED") | "\(.key)=\(.value)"] | if length == 0 then "none" else join(",") end' "$report")
        [[ "$other" == "none" ]] || fail "cycle $cycle: errors other than CONNECTION_CLOSED: $other"
        nonallow=$(jq -r '[.decisions | to_entries[] | select(.key != "ALLOW") | "\(.key)=\(.value)"] | join(",")' "$report")
        [[ -z "$nonallow" ]] || fail "cycle $cycle: unexpected decisions: $nonallow"
    else
        # No report: the load generator could not connect before the kill (refused); nothing acknowledged.
        if grep -qi "refused\|closed the connection\|connect" "$work/load-$cycle.err"; then
            other="no report (connect failed: $(head -c 120 "$work/load-$cycle.err" | tr '\n' ' '))"
        else
            fail "cycle $cycle: load generator exited $load_rc without a report: $(head -c 300 "$work/load-$cycle.err")"
        fi
    fi
    acknowledged=$((acknowledged + allows))
    total_errors_closed=$((total_errors_closed + closed))
    total_requests=$((total_requests + requests))

    restart="ok"
    if ! start_server; then
        restart="FAILED"
        fail "cycle $cycle: restart failed"
        break
    fi
    printf 'cycle %2d: killed after %ss  answered %7d  ALLOW %7d  connection-closed %3d  other errors %s  load rc %d  restart %s\n' \
        "$cycle" "$delay" "$requests" "$allows" "$closed" "$other" "$load_rc" "$restart"
done

# Stop cleanly, then read the database.
if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || fail "clean stop: server exited $?"
fi
server_pid=""
stored=$(stored_today)
bound=$((cycles * connections * depth))
surplus=$((stored - acknowledged))
echo "stored today: $stored  acknowledged ALLOWs: $acknowledged  stored - acknowledged: $surplus  bound: $bound" \
    "(answered requests $total_requests, connection-closed $total_errors_closed, server starts $starts)"
((stored >= acknowledged)) || fail "stored ($stored) < acknowledged ($acknowledged): acknowledged calls lost"
((surplus <= bound)) || fail "stored - acknowledged ($surplus) > cycles × connections × depth ($bound)"
if ((violations > 0)); then
    echo "VERDICT: FAIL ($violations violations)"
    exit 1
fi
echo "VERDICT: PASS ($cycles kill -9 cycles, no acknowledged call lost, over-count $surplus ≤ $bound)"
