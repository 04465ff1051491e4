#!/usr/bin/env bash
# Runs the libFuzzer targets for a bounded time each and reports executions and findings.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      TARGET: wire (frames, decoding, dispatch), import (CSV
#                                              importer, number parser); default: both, 60 s each
#
# Builds `callgate-fuzz` with libFuzzer and AddressSanitizer in .build-fuzz (CALLGATE_FUZZ=1 adds the
# target to Package.swift), starts each target from its seed corpus (FuzzSeeds) plus what earlier runs
# found interesting (.build-fuzz/corpus/<target>, kept between runs), and stops at the first crash. A
# crashing input is written to .build-fuzz/findings/<target>/; copy it to
# Tests/CallgateFuzzTests/Regressions/<target>/ with a descriptive name once fixed, so the tests replay
# it. Exit status: 0 when no target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(wire import)
SCRATCH="${FUZZ_SCRATCH:-.build-fuzz}"

scripts/bootstrap.sh >/dev/null

# swiftc keeps only the last -sanitize= flag it is given, and SwiftPM passes one per --sanitize: so
# libFuzzer's coverage and ASan go together in one -Xswiftc flag (two --sanitize would lose coverage).
BUILD=(swift build --scratch-path "$SCRATCH" --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address)
echo "== build callgate-fuzz (libFuzzer + AddressSanitizer) in $SCRATCH"
CALLGATE_FUZZ=1 "${BUILD[@]}" --product callgate-fuzz 2>&1 | grep -v "ld.gold: warning: Cannot export local symbol" | tail -3
BIN="$(CALLGATE_FUZZ=1 "${BUILD[@]}" --show-bin-path)/callgate-fuzz"

# libFuzzer handles crashes itself; Swift's backtracer would hold the process.
export SWIFT_BACKTRACE=enable=no
# Reports leaks at exit of the dispatcher's long-lived store are not findings.
export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"

status=0
summary=()
for target in "${TARGETS[@]}"; do
    corpus="$SCRATCH/corpus/$target"
    findings="$SCRATCH/findings/$target"
    seeds="$SCRATCH/seeds/$target"
    mkdir -p "$corpus" "$findings"
    rm -rf "$seeds"
    log="$SCRATCH/fuzz-$target.log"
    echo "== $target: ${SECONDS_EACH}s"
    set +e
    CALLGATE_FUZZ_TARGET="$target" CALLGATE_FUZZ_WRITE_SEEDS="$seeds" "$BIN" \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=4096 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$findings/" \
        "$corpus" "$seeds" "Tests/CallgateFuzzTests/Regressions/$target" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
    corpus_size=$(find "$corpus" -type f | wc -l)
    if [ $rc -eq 0 ]; then
        result="no crash"
    else
        status=1
        result="CRASH (exit $rc): $(ls -t "$findings" | head -1) — see $log"
        grep -E "ERROR|Fatal error|precondition|SUMMARY" "$log" | head -5 || true
    fi
    summary+=("$target: ${SECONDS_EACH}s, $execs executions, coverage $cov edges, corpus $corpus_size inputs: $result")
done

echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
exit $status
