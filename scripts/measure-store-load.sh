#!/usr/bin/env bash
# Measures how long Store.open takes on a large database and how much memory the loaded engine holds.
#   scripts/measure-store-load.sh [numbers] [agents]      default: 1,000,000 numbers, 200,000 agents
# The database is built once through the public API (callgate-crashtest --build-db: 3.2M changes, about
# 4 minutes on a 2-core VM, most of it the writer encoding audit JSON) and kept at $CALLGATE_LOAD_DB
# (default: $TMPDIR/callgate-load-<numbers>-<agents>.sqlite). Each measurement is a fresh process
# (callgate-crashtest --load-test), so the builder's heap does not count. SCRATCH_PATH selects SwiftPM's
# build directory (default .build); RUNS the number of measurements (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
numbers=${1:-1000000}
agents=${2:-200000}
runs=${RUNS:-3}
scratch=${SCRATCH_PATH:-.build}
db=${CALLGATE_LOAD_DB:-${TMPDIR:-/tmp}/callgate-load-$numbers-$agents.sqlite}

swift build -c release --scratch-path "$scratch" --product callgate-crashtest >&2
bin="$(swift build -c release --scratch-path "$scratch" --show-bin-path)/callgate-crashtest"

"$bin" --build-db "$db" "$numbers" "$agents"
echo "database: $db, $(du -h "$db" | cut -f1)"
for _ in $(seq "$runs"); do
    "$bin" --load-test "$db"
done
