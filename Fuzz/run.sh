#!/usr/bin/env bash
# Builds the libFuzzer targets (debug: release drops the bounds checks that catch the bugs)
# and runs each for SECONDS (default 120) over its corpus in Fuzz/corpus/<name>/.
#
#   Fuzz/run.sh [seconds]
#
# Committed seeds are corpus/<name>/seed-*; what libFuzzer adds there is git-ignored. A crash
# leaves its input in Fuzz/artifacts/ and makes this script exit non-zero.
set -uo pipefail

cd "$(dirname "$0")"
SECONDS_PER_TARGET=${1:-120}

# SWIFT_BACKTRACE is set for the fuzzers only: in the build's environment it makes SwiftPM
# rebuild everything (swift-crypto included) on each run.
swift build --sanitize=fuzzer --sanitize=address || exit 2
BIN=$(swift build --sanitize=fuzzer --sanitize=address --show-bin-path)
mkdir -p artifacts

status=0
for name in websocket-decoder http-parser; do
    mkdir -p "corpus/$name"
    log="artifacts/$name.log"
    echo "== fuzz-$name for ${SECONDS_PER_TARGET}s"
    SWIFT_BACKTRACE=enable=no "$BIN/fuzz-$name" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
        -artifact_prefix="artifacts/$name-" -max_len=4096 "corpus/$name" > "$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    echo "fuzz-$name: exit $rc, ${execs:-?} executions, corpus $(ls "corpus/$name" | wc -l) inputs"
    if [ $rc -ne 0 ]; then
        status=1
        grep -E 'ERROR|Fatal error|SUMMARY|Test unit written' "$log" | head -10
    fi
done
exit $status
