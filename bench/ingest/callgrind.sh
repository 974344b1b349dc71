#!/usr/bin/env bash
# Instructions per single publish in the ingest, from callgrind (stable on shared machines).
# Usage: bench/ingest/callgrind.sh [BIN] [COUNT]   (BIN: .build/release/ringgate; COUNT: 20000)
# Starts `ringgate serve --workers 1` under valgrind (the worker not traced), warms the ingest
# up with 2000 pipelined publishes, zeroes its counters, sends COUNT more (4 keep-alive
# connections x 32 pipelined, the bench's publish-single shape), dumps, and prints
# instructions per publish and the top functions. Needs valgrind (apt-get install valgrind).
# BATCH=N: COUNT NDJSON batches of N events each (4 connections x 8 pipelined); the figures
# are then per event.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/.build/release/ringgate}
COUNT=${2:-20000}
if ! command -v valgrind >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null 2>&1 || {
      apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null; }
  else
    echo "valgrind is needed: apt-get install -y valgrind (as root)" >&2; exit 1
  fi
fi
TMP=$(mktemp -d /tmp/ringgate-callgrind.XXXXXX)
# valgrind 3.19 cannot read the static binary's DWARF 5: profile a copy without debug info
# (the symbol table stays, so functions keep their names).
cp "$BIN" "$TMP/ringgate"; [ -n "${KEEP_DEBUG:-}" ] || strip --strip-debug "$TMP/ringgate"
valgrind --tool=callgrind --trace-children=yes --trace-children-skip-by-arg=worker \
  --callgrind-out-file="$TMP/cg.%p" "$TMP/ringgate" serve --workers 1 --ephemeral --watchdog-timeout 0 \
  --listen 127.0.0.1:0 --publish-listen 127.0.0.1:0 --io "${IO:-io_uring}" ${ARGS:-} > "$TMP/out" 2> "$TMP/err" &
VG=$!
trap 'kill -TERM $VG 2>/dev/null; wait $VG 2>/dev/null; [ -n "${KEEP:-}" ] && cp "$TMP"/cg.* "$KEEP"/ ; rm -rf "$TMP"' EXIT
for _ in $(seq 300); do grep -q '^ringgate ready' "$TMP/out" && break; sleep 0.2; done
PUB=$(sed -n 's/.* publish=\([^ ]*\).*/\1/p' "$TMP/out")
[ -n "$PUB" ] || { cat "$TMP/err" >&2; echo "ringgate did not start under valgrind" >&2; exit 1; }
INGEST=$(pgrep -f "$TMP/ringgate ingest" | head -1)
SHAPE=(); EVENTS=$COUNT
if [ -n "${BATCH:-}" ]; then SHAPE=(--batch "$BATCH" --depth 8); EVENTS=$((COUNT * BATCH)); fi
python3 "$ROOT/bench/ingest/pipelined_publish.py" "$PUB" "${WARM:-2000}" "${SHAPE[@]}" ${TOKEN:+--token "$TOKEN"} >/dev/null 2>&1
callgrind_control -z "$INGEST" >/dev/null 2>&1
STATUS=$(python3 "$ROOT/bench/ingest/pipelined_publish.py" "$PUB" "$COUNT" "${SHAPE[@]}" ${TOKEN:+--token "$TOKEN"})
callgrind_control -d "$INGEST" >/dev/null 2>&1
sleep 0.5
OUT=$(ls "$TMP"/cg."$INGEST".* | head -1)
TOTAL=$(callgrind_annotate "$OUT" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "answers: $STATUS"
if [ -n "${BATCH:-}" ]; then
  echo "ingest instructions: $TOTAL for $COUNT batches of $BATCH = $((TOTAL / EVENTS)) per event"
else
  echo "ingest instructions: $TOTAL for $COUNT publishes = $((TOTAL / COUNT)) per publish"
fi
# Exclusive cost per function (the file:function lines of callgrind_annotate), per publish;
# the loop's callers (main, run, 100 %) are left out.
callgrind_annotate --inclusive=no --threshold=100 "$OUT" 2>/dev/null | awk -v n="$EVENTS" -v top="${TOP:-25}" '
  /PROGRAM TOTALS/ || /\((100\.0|99\.[0-9])%\)/ { next }
  /^ *[0-9,]+ +\(/ && shown < top { c = $1; gsub(",", "", c); $1 = ""; $2 = ""; sub(/^ +/, "");
    sub(/ \[[^]]*\]$/, ""); printf "%8.0f per event  %s\n", c / n, substr($0, 1, 150); shown++ }'
