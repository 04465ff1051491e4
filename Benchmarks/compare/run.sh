#!/usr/bin/env bash
# Benchmarks/compare/run.sh: Callgate (commit and async durability) side by side with Redis + Lua,
# PostgreSQL (one UPDATE per call) and a do-nothing C server (the loopback floor), on this machine, in one
# run, with the same data (10,000 agents × 5 numbers, countries US, CA, GB) and the same shapes
# (50 connections × 16 pipelined, closed loop; 1 connection, no pipelining). See README.md.
#
#   Benchmarks/compare/run.sh [--quick] [--only echo,commit,async,redis,postgres] [--no-build]
#
# Environment: SCRATCH (swift build scratch path, default .build-compare, relative to the repo root),
# DURATION / WARMUP (seconds; default 10 / 2, --quick 3 / 1), ROUNDS (default 1: how many times the
# whole sequence runs; the table then shows medians and each round's ratio).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QUICK=0
BUILD=1
ONLY="echo,commit,async,redis,postgres"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --no-build) BUILD=0 ;;
        --only) ONLY="$2"; shift ;;
        --only=*) ONLY="${1#--only=}" ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then DURATION=${DURATION:-3}; WARMUP=${WARMUP:-1}; else DURATION=${DURATION:-10}; WARMUP=${WARMUP:-2}; fi
SCRATCH=${SCRATCH:-.build-compare}
ROUNDS=${ROUNDS:-1}
case "$ROUNDS" in '' | *[!0-9]* | 0) echo "run.sh: ROUNDS must be a positive integer" >&2; exit 2 ;; esac
ROUND=1
case "$SCRATCH" in /*) ;; *) SCRATCH="$ROOT/$SCRATCH" ;; esac
wants() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

AGENTS=10000
PER_AGENT=5
LIMIT=1000000
# "connections depth" per shape.
SHAPES=("50 16" "1 1")

RAW=$(mktemp -d "${TMPDIR:-/tmp}/callgate-compare.XXXXXX")
DATA=$(mktemp -d "${TMPDIR:-/tmp}/callgate-compare-data.XXXXXX")
chmod 755 "$DATA"
RESULTS="$RAW/results.tsv"
: > "$RESULTS"
log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------------
# Processes this script started, and only those, are stopped at exit.
PIDS=()
PG_STARTED=""
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
stop_started() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    PIDS=()
    if [ -n "$PG_STARTED" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$PG_STARTED" -m fast -w stop >/dev/null 2>&1 || true
        PG_STARTED=""
    fi
}
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_started
    rm -rf "$DATA"
    log "raw outputs: $RAW"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------
# Tools: installed with apt-get only when missing.
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
missing=()
command -v gcc >/dev/null || missing+=(gcc)
command -v jq >/dev/null || missing+=(jq)
if wants redis; then
    command -v redis-server >/dev/null || missing+=(redis-server)
    { command -v redis-cli && command -v redis-benchmark; } >/dev/null || missing+=(redis-tools)
fi
if wants postgres; then
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
    command -v pgbench >/dev/null || ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || missing+=(postgresql-contrib)
fi
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >"$RAW/apt.log" 2>&1 \
        || { $SUDO apt-get update >>"$RAW/apt.log" 2>&1 \
            && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >>"$RAW/apt.log" 2>&1; } \
        || die "apt-get install ${missing[*]} failed (see $RAW/apt.log)"
fi

# A port nothing listens on (and that this run has not handed out).
USED_PORTS=" "
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        case "$USED_PORTS" in *" $port "*) continue ;; esac
        ss -Htln "sport = :$port" 2>/dev/null | grep -q . && continue
        USED_PORTS="$USED_PORTS$port "
        echo "$port"
        return
    done
}
wait_port() { # port pid what
    local i
    for i in $(seq 1 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || die "$3 exited before listening"
        sleep 0.1
    done
    die "$3 did not listen on port $1 within 60 s"
}

# result SYSTEM CONNECTIONS DEPTH THROUGHPUT P50_US P99_US ERRORS NOTE
result() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ROUND" "$@" >> "$RESULTS"; }

# ---------------------------------------------------------------------------------------------------
# Callgate and the floor, both driven by `callgate load`.
CALLGATE=""
if wants echo || wants commit || wants async; then
    if [ "$BUILD" = 1 ]; then
        log "swift build -c release (scratch $SCRATCH)"
        # One --product per invocation: swift build keeps only the last --product it is given.
        for product in callgated callgate; do
            (cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" --product "$product") \
                >>"$RAW/build.log" 2>&1 || die "swift build --product $product failed (see $RAW/build.log)"
        done
    fi
    BIN=$(cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" --show-bin-path)
    CALLGATE="$BIN/callgate"
    [ -x "$CALLGATE" ] && [ -x "$BIN/callgated" ] || die "no callgate/callgated in $BIN"
fi

# callgate_load NAME FILE PORT KEY-ARGS... -- runs both shapes; NAME is the system's label, FILE names
# the raw outputs.
callgate_load() {
    local name=$1 file=$2 port=$3 shape c d out
    shift 3
    for shape in "${SHAPES[@]}"; do
        read -r c d <<<"$shape"
        out="$RR/$file-${c}x$d.json"
        log "$name: $c connections × depth $d, ${DURATION}s (+${WARMUP}s warm-up)"
        "$CALLGATE" load --host 127.0.0.1 --port "$port" "$@" --connections "$c" --depth "$d" \
            --duration "$DURATION" --warmup "$WARMUP" --agent-count "$AGENTS" --json --quiet \
            >"$out" 2>"${out%.json}.err" || die "$name load failed (see $out and .err)"
        local errors
        errors=$(jq -r '.errorCount' "$out")
        [ "$errors" = 0 ] || log "warning: $name ${c}x$d: $errors errors: $(jq -c '.errors' "$out")"
        result "$name" "$c" "$d" "$(jq -r '.throughput' "$out")" \
            "$(jq -r '.latencyMicroseconds.p50' "$out")" "$(jq -r '.latencyMicroseconds.p99' "$out")" \
            "$(jq -r 'if .errorCount == 0 then "0" else
                ([.errors | to_entries[] | "\(.value) \(.key)"] | join(", ")) + " (\(.errorCount * 1000 / .requests | floor / 10)%)" end' "$out")" \
            "callgate load; decisions $(jq -c '.decisions' "$out")"
    done
}

# One round: every system in turn, each started, measured at every shape and stopped. With ROUNDS > 1
# the rounds repeat the whole sequence, so each system is measured at several moments of the machine's
# load, and the table reports medians (the ratio: the median of each round's own ratio).
measure_round() {
if wants echo; then
    gcc -O2 -o "$RR/echo" "$HERE/echo.c" || die "gcc echo.c failed"
    port=$(free_port)
    "$RR/echo" "$port" 2>"$RR/echo.log" &
    pid=$!; PIDS+=("$pid")
    wait_port "$port" "$pid" echo
    callgate_load "floor: C echo, callgate load" echo-callgate-load "$port" --key unused
    gcc -O2 -o "$RR/echo-load" "$HERE/echo-load.c" || die "gcc echo-load.c failed"
    for shape in "${SHAPES[@]}"; do
        read -r c d <<<"$shape"
        out="$RR/echo-load-${c}x$d.txt"
        log "floor, C client: $c connections × depth $d, ${DURATION}s (+${WARMUP}s warm-up)"
        "$RR/echo-load" "$port" "$c" "$d" "$DURATION" "$WARMUP" >"$out" 2>&1 || die "echo-load failed (see $out)"
        kv() { tr ' ' '\n' <"$out" | sed -n "s/^$1=//p"; }
        result "floor: C echo, C client" "$c" "$d" "$(kv throughput)" "$(kv p50_us)" "$(kv p99_us)" 0 "echo-load.c"
    done
    stop_started
fi

if wants commit || wants async; then
    dir="$DATA/r$ROUND/callgate"
    seeded=0
    for durability in commit async; do
        wants "$durability" || continue
        port=$(free_port)
        "$BIN/callgated" --data-dir "$dir" --port "$port" --metrics-port off --durability "$durability" \
            >"$RR/callgated-$durability.log" 2>&1 &
        pid=$!; PIDS+=("$pid")
        wait_port "$port" "$pid" callgated
        if [ "$seeded" = 0 ]; then
            log "callgate: seeding $AGENTS agents × $PER_AGENT numbers"
            "$CALLGATE" load --host 127.0.0.1 --port "$port" --key-file "$dir/admin.key" \
                --seed "agents=$AGENTS,numbers-per-agent=$PER_AGENT,limit=$LIMIT,countries=US+CA+GB" \
                --connections 1 --depth 1 --duration 0.5 --warmup 0 --json --quiet \
                >"$RR/callgate-seed.json" 2>"$RR/callgate-seed.err" || die "callgate seeding failed"
            log "callgate: $(jq -r '.seed | "\(.agents) agents, \(.numbersAdded + .numbersExisting) numbers, \(.assigned + .alreadyAssigned) assignments in \(.seconds) s"' "$RR/callgate-seed.json")"
            seeded=1
        fi
        # Not measured: the seed leaves a large WAL that the checkpointer copies during the first
        # seconds of load (a run right after seeding measured a third of the settled rate), and each
        # server start opens a cold page cache. Redis gets its probe run, PostgreSQL its warm-up run.
        "$CALLGATE" load --host 127.0.0.1 --port "$port" --key-file "$dir/admin.key" --agent-count "$AGENTS" \
            --connections 50 --depth 16 --duration 3 --warmup 0 --json --quiet \
            >"$RR/callgate-settle-$durability.json" 2>&1 || die "callgate settle run failed"
        callgate_load "Callgate $durability" "callgate-$durability" "$port" --key-file "$dir/admin.key"
        stop_started
    done
fi

# ---------------------------------------------------------------------------------------------------
# Redis 7 + Lua, AOF on with appendfsync everysec.
if wants redis; then
    dir="$DATA/r$ROUND/redis"
    mkdir -p "$dir"
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync everysec \
        --save "" --daemonize no --protected-mode yes --logfile "$RR/redis.log" &
    pid=$!; PIDS+=("$pid")
    wait_port "$port" "$pid" redis-server
    rcli() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }
    log "redis: seeding $AGENTS agents × $PER_AGENT numbers (redis-cli --pipe)"
    # Agent a:<12 digits> (redis-benchmark's __rand_int__ form) lists its numbers n:<agent>:<k>.
    awk -v agents="$AGENTS" -v per="$PER_AGENT" -v limit="$LIMIT" -v day="$(($(date +%s) / 86400))" '
        function bulk(s) { return "$" length(s) "\r\n" s "\r\n" }
        BEGIN {
            for (a = 0; a < agents; a++) {
                agent = sprintf("a:%012d", a)
                list = "*" (2 + per) "\r\n" bulk("RPUSH") bulk(agent)
                for (k = 0; k < per; k++) {
                    key = sprintf("n:%012d:%d", a, k)
                    printf "*10\r\n%s%s%s%s%s%s%s%s%s%s", bulk("HSET"), bulk(key), bulk("limit"), bulk(limit), \
                        bulk("count"), bulk("0"), bulk("day"), bulk(day), bulk("countries"), bulk(",US,CA,GB,")
                    list = list bulk(key)
                }
                printf "%s", list
            }
        }' | rcli --pipe >"$RR/redis-seed.log" 2>&1 || die "redis seeding failed (see $RR/redis-seed.log)"
    sha=$(rcli SCRIPT LOAD "$(cat "$HERE/authorize.lua")")
    check=$(rcli EVALSHA "$sha" 1 a:000000000000 US | tr '\n' ' ')
    log "redis: keys $(rcli DBSIZE), script $sha, one call answers: $check"
    for shape in "${SHAPES[@]}"; do
        read -r c d <<<"$shape"
        base="$RR/redis-${c}x$d"
        # A short probe (also the warm-up) sizes the request count to about DURATION seconds.
        probe=$((c * d * 50)); [ "$probe" -lt 10000 ] && probe=10000
        redis-benchmark -h 127.0.0.1 -p "$port" -c "$c" -P "$d" -n "$probe" -r "$AGENTS" --csv --precision 3 \
            EVALSHA "$sha" 1 'a:__rand_int__' US >"$base-probe.csv" 2>"$base-probe.err" || die "redis-benchmark failed"
        rps=$(awk -F'","' 'NR == 2 { print $2 + 0 }' "$base-probe.csv")
        n=$(awk -v r="$rps" -v s="$DURATION" 'BEGIN { n = int(r * s); if (n < 1000) n = 1000; print n }')
        log "redis: $c connections × pipeline $d, $n requests (~${DURATION}s at the probe's $rps/s)"
        redis-benchmark -h 127.0.0.1 -p "$port" -c "$c" -P "$d" -n "$n" -r "$AGENTS" --csv --precision 3 \
            EVALSHA "$sha" 1 'a:__rand_int__' US >"$base.csv" 2>"$base.err" || die "redis-benchmark failed"
        errors=0
        if grep -qi "error" "$base.err" "$base.csv"; then
            errors="yes (see redis-${c}x$d.err)"
            log "warning: redis ${c}x$d reported errors: $(head -c 300 "$base.err")"
        fi
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        IFS=$'\t' read -r rps p50 p99 < <(awk -F'","' 'NR == 2 { gsub(/"/, "", $8); printf "%s\t%.1f\t%.1f\n", $2, $5 * 1000, $7 * 1000 }' "$base.csv")
        result "Redis + Lua" "$c" "$d" "$rps" "$p50" "$p99" "$errors" "redis-benchmark EVALSHA, $n requests"
    done
    log "redis: allowed calls counted: $(rcli EVAL "local s = 0 for _, k in ipairs(redis.call('KEYS', 'n:*')) do s = s + tonumber(redis.call('HGET', k, 'count')) end return s" 0)"
    stop_started
fi

# ---------------------------------------------------------------------------------------------------
# PostgreSQL: a private cluster, the one-statement UPDATE, pgbench (one transaction in flight per client).
if wants postgres; then
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -x "$PGBIN/initdb" ] || die "no initdb under /usr/lib/postgresql"
    PGBENCH=$(command -v pgbench || echo "$PGBIN/pgbench")
    if [ "$(id -u)" = 0 ]; then
        PGUSER_OS=cgbench
        id "$PGUSER_OS" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
        as_pg() { runuser -u "$PGUSER_OS" -- "$@"; }
    else
        PGUSER_OS=$(id -un)
        as_pg() { "$@"; }
    fi
    dir="$DATA/r$ROUND/postgres"
    mkdir -p "$dir"
    chown "$PGUSER_OS" "$dir"
    port=$(free_port)
    as_pg "$PGBIN/initdb" -D "$dir/cluster" -U cgbench --auth=trust -E UTF8 --no-locale >"$RR/initdb.log" 2>&1 \
        || die "initdb failed (see $RR/initdb.log)"
    PG_STARTED="$dir/cluster"
    as_pg "$PGBIN/pg_ctl" -D "$dir/cluster" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=120" start >"$RR/pg_ctl.log" 2>&1 \
        || die "postgres did not start (see $RR/pg_ctl.log)"
    psqlc() { psql -h 127.0.0.1 -p "$port" -U cgbench -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
    log "postgres: seeding $AGENTS agents × $PER_AGENT numbers"
    psqlc >"$RR/postgres-seed.log" 2>&1 <<SQL || die "postgres seeding failed (see $RR/postgres-seed.log)"
CREATE TABLE numbers (
    id          serial PRIMARY KEY,
    agent       integer NOT NULL,
    daily_limit integer NOT NULL,
    count       integer NOT NULL,
    day         date    NOT NULL,
    countries   text[]  NOT NULL
);
INSERT INTO numbers (agent, daily_limit, count, day, countries)
SELECT a, $LIMIT, 0, current_date, ARRAY['US', 'CA', 'GB']
  FROM generate_series(0, $AGENTS - 1) AS a, generate_series(1, $PER_AGENT) AS k
 ORDER BY a, k;
CREATE INDEX numbers_agent ON numbers (agent, id);
VACUUM ANALYZE numbers;
SQL
    log "postgres: $(psqlc -c 'SELECT count(*) FROM numbers') numbers"
    # synchronous_commit=on (the default: every commit waits for its WAL fsync, group commit across
    # backends) and off (WAL flushed by the WAL writer within ~0.6 s: no fsync on the call's path, like
    # Callgate's --sync normal and Redis's appendfsync everysec).
    for sc in on off; do
    for shape in "${SHAPES[@]}"; do
        read -r c d <<<"$shape"
        base="$RR/postgres-sync-$sc-${c}clients"
        j=$((c < 2 ? c : 2))
        [ "$(PGOPTIONS="-c synchronous_commit=$sc" psqlc -c 'SHOW synchronous_commit')" = "$sc" ] \
            || die "PGOPTIONS did not set synchronous_commit"
        pgb() { PGOPTIONS="-c synchronous_commit=$sc" "$PGBENCH" -h 127.0.0.1 -p "$port" -U cgbench -n -M prepared -f "$HERE/authorize.sql" -D country=US \
            -c "$c" -j "$j" "$@" postgres; }
        log "postgres: synchronous_commit=$sc, $c clients (no pipelining), ${DURATION}s (+${WARMUP}s warm-up)"
        pgb -T "$WARMUP" >"$base-warmup.txt" 2>&1 || die "pgbench failed (see $base-warmup.txt)"
        pgb -T "$DURATION" -l --log-prefix "$base-log" >"$base.txt" 2>&1 || die "pgbench failed (see $base.txt)"
        tps=$(awk '/^tps = / { print $3; exit }' "$base.txt")
        failed=$(awk '/number of failed transactions/ { print $5 }' "$base.txt")
        [ "${failed:-0}" = 0 ] || log "warning: postgres ${c}x$d: $failed failed transactions"
        # Per-transaction log: client, transaction, latency (µs), script, epoch s, µs.
        IFS=$'\t' read -r p50 p99 < <(cat "$base-log".* | awk '{ print $3 }' | sort -n | awk '
            { v[NR] = $1 } END { i50 = int(NR * 0.50); i99 = int(NR * 0.99); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
                                 printf "%.1f\t%.1f\n", v[i50], v[i99] }')
        result "PostgreSQL UPDATE, synchronous_commit=$sc" "$c" 1 "$tps" "$p50" "$p99" "${failed:-0}" \
            "pgbench -M prepared, $c clients, one transaction in flight each"
    done
    done
    log "postgres: allowed calls counted: $(psqlc -c 'SELECT sum(count) FROM numbers')"
    stop_started
fi

}

for ROUND in $(seq 1 "$ROUNDS"); do
    RR="$RAW/round-$ROUND"
    mkdir -p "$RR" "$DATA/r$ROUND"
    [ "$ROUNDS" = 1 ] || log "round $ROUND of $ROUNDS"
    measure_round
    rm -rf "${DATA:?}/r$ROUND"
done

# ---------------------------------------------------------------------------------------------------
# The table: one row per system and shape; the ratio is Callgate (commit)'s throughput over the row's.
{
    echo "# Callgate side by side"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(uname -sr), $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg);"
    echo "${DURATION} s per measurement$([ "$ROUNDS" = 1 ] || echo ", $ROUNDS rounds (each system measured once per round, in turn): medians over the rounds"); agents $AGENTS × $PER_AGENT numbers, countries US CA GB, limit $LIMIT/day."
    echo "Raw outputs: \`$RAW\`. Caveats: Benchmarks/compare/README.md."
    echo
    if [ "$ROUNDS" = 1 ]; then
        echo "| system | shape | throughput (req/s) | p50 | p99 | errors | Callgate commit ÷ this |"
        echo "| --- | --- | ---: | ---: | ---: | --- | ---: |"
    else
        echo "| system | shape | throughput (req/s) | p50 | p99 | errors | Callgate commit ÷ this | ÷ per round |"
        echo "| --- | --- | ---: | ---: | ---: | --- | ---: | --- |"
    fi
    awk -F'\t' -v rounds="$ROUNDS" '
        function group(n,   s) { n = sprintf("%d", n + 0.5); s = ""
                                  while (length(n) > 3) { s = "," substr(n, length(n) - 2) s; n = substr(n, 1, length(n) - 3) }
                                  return n s }
        function us(x) { return x >= 1000 ? sprintf("%.2f ms", x / 1000) : sprintf("%.0f µs", x) }
        function shape(c, d) { return d == 1 ? c " conn × 1" : c " conn × " d " pipelined" }
        # The median of the space-separated numbers in list.
        function median(list,   v, n, i, j, t) {
            n = split(list, v, " ")
            for (i = 2; i <= n; i++) { t = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
            return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }
        # Columns: round, system, connections, depth, throughput, p50, p99, errors, note.
        { r[NR] = $1; sys[NR] = $2; c[NR] = $3; d[NR] = $4; tp[NR] = $5; p50[NR] = $6; p99[NR] = $7; err[NR] = $8
          if ($2 == "Callgate commit") ref[$1, $3] = $5 }
        END {
            # One line per system and shape, in the order of the first round.
            for (i = 1; i <= NR; i++) {
                k = sys[i] SUBSEP c[i] SUBSEP d[i]
                if (!(k in first)) { first[k] = i; order[++keys] = k }
                tps[k] = tps[k] " " tp[i]; p50s[k] = p50s[k] " " p50[i]; p99s[k] = p99s[k] " " p99[i]
                if (err[i] != "0") { if (k in errs) errs[k] = errs[k] "; " err[i]; else errs[k] = err[i] }
                if (((r[i], c[i]) in ref) && tp[i] > 0) {
                    q = ref[r[i], c[i]] / tp[i]
                    ratios[k] = ratios[k] " " q
                    if (k in shown) shown[k] = shown[k] ", " sprintf("%.2f×", q); else shown[k] = sprintf("%.2f×", q)
                }
            }
            for (s = 1; s <= 2; s++) for (o = 1; o <= keys; o++) {
                k = order[o]; i = first[k]
                if ((s == 1) != (c[i] > 1)) continue
                label = shape(c[i], d[i])
                if (sys[i] ~ /^PostgreSQL/ && c[i] > 1) label = c[i] " clients × 1 (no pipelining in pgbench)"
                ratio = (k in ratios) ? sprintf("%.2f×", median(ratios[k])) : "–"
                line = sprintf("| %s | %s | %s | %s | %s | %s | %s |", sys[i], label, group(median(tps[k])),
                               us(median(p50s[k])), us(median(p99s[k])), (k in errs) ? errs[k] : "0", ratio)
                if (rounds > 1) line = line " " ((k in shown) ? shown[k] : "–") " |"
                print line
            }
        }' "$RESULTS"
} > "$RAW/results.md"
cp "$RAW/results.md" "$HERE/results.md"
cat "$RAW/results.md"
