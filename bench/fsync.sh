#!/usr/bin/env bash
# Publish rate per --fsync setting (issue 10 item 15): a file-backed log in a temp dir (on the
# disk /tmp is on), 1 worker, for each setting N seconds of single POSTs (4 keep-alive conns x 32
# pipelined) and N seconds of NDJSON batches of 1000 (4 conns x 8). Prints events/s and the
# flushes the gateway counted. Bounded: 3 settings x 2 runs x FSYNC_BENCH_SECONDS (default 3).
# Usage: bench/fsync.sh [RINGGATE_BIN_DIR]   (default .build/release, needs ringgate-bench)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/.build/release}
SECONDS_EACH=${FSYNC_BENCH_SECONDS:-3}
TMP=$(mktemp -d /tmp/ringgate-fsync-bench.XXXXXX)
PID=""
stop() {
  if [ -n "$PID" ]; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 70); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
  fi
}
trap 'stop; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

rate() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); r=d.get("events_per_s") or d.get("rate") or d; print(f"{r:.0f}" if isinstance(r, (int, float)) else json.dumps(r))' "$1"; }

printf '%-9s %-22s %14s %10s\n' fsync scenario events/s fsyncs
for mode in none interval always; do
  rm -rf "$TMP/data"; mkdir -p "$TMP/data"
  "$BIN/ringgate" serve --listen 127.0.0.1:0 --publish-listen 127.0.0.1:0 --workers 1 \
    --data-dir "$TMP/data" --log-capacity 64MiB --max-slots 1024 --fsync "$mode" \
    > "$TMP/out" 2> "$TMP/err" &
  PID=$!
  for _ in $(seq 150); do grep -q '^ringgate ready' "$TMP/out" 2>/dev/null && break; sleep 0.1; done
  line=$(grep '^ringgate ready' "$TMP/out") || { cat "$TMP/err"; exit 1; }
  SUB=$(sed -n 's/.* subscribe=\([^ ]*\).*/\1/p' <<<"$line")
  PUB=$(sed -n 's/.* publish=\([^ ]*\).*/\1/p' <<<"$line")
  urls=(--sub-url "http://$SUB/v1/slots/{slot}/stream" --pub-url "http://$PUB/v1/slots/{slot}/events"
        --batch-url "http://$PUB/v1/events" --pid-tree "$PID")
  timeout 120 "$BIN/ringgate-bench" publish "${urls[@]}" --pub-conns 4 --depth 32 --duration "$SECONDS_EACH" > "$TMP/single.json"
  timeout 120 "$BIN/ringgate-bench" publish "${urls[@]}" --pub-conns 4 --depth 8 --batch 1000 --duration "$SECONDS_EACH" > "$TMP/batch.json"
  fsyncs=$(curl -s "http://$SUB/metrics" | sed -n 's/^ringgate_log_fsyncs_total //p')
  printf '%-9s %-22s %14s %10s\n' "$mode" "single POSTs 4x32" "$(rate "$TMP/single.json")" "$fsyncs"
  printf '%-9s %-22s %14s %10s\n' "$mode" "NDJSON batches of 1000" "$(rate "$TMP/batch.json")" ""
  cp "$TMP/single.json" "$TMP/batch.json" "${FSYNC_BENCH_KEEP:-$TMP}/" 2>/dev/null || true
  stop
done
