#!/usr/bin/env bash
# The cluster rows of `make bench` (issue 12), on loopback: one redis-server (no persistence),
# two `ringgate serve --upstream` hosts A and B, one single-host gateway for the latency baseline.
# Usage: bench/cluster.sh [--quick] [--bin DIR] [--ringgate PATH] [--raw DIR] [--reps N] [--no-report]
#   --bin DIR   where ringgate and ringgate-bench are (default .build/release)
#   --ringgate PATH  another gateway binary than DIR/ringgate (ringgate-bench stays DIR's)
#   --raw DIR   where the raw JSON goes (default bench/results/raw); run.sh passes its own
#   --reps N    repetitions, fresh Redis and hosts each (default 3; --quick: 1)
#   --no-report run.sh reports everything at the end; alone, the cluster table is printed
#               (and written to RAW/../cluster-table.md)
# Rows (raw names cluster-<row>.<server>.<rep>.json; bench/report.py prints them):
#   redis-xadd, redis-eval1, redis-eval100   redis-benchmark: Redis's own ceiling
#   publish-single, publish-batch            publishers split over A's and B's --publish-listen
#   latency (cluster: publish at A, receive at B; ringgate: the single-host gateway, same load)
#   fanout                                   subscribers split over A and B, publish at A
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/.build/release
RAW=$ROOT/bench/results/raw
QUICK=0
REPS=3
REPORT=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; REPS=1 ;;
    --bin) BIN=$2; shift ;;
    --ringgate) RINGGATE=$2; shift ;;
    --raw) RAW=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --no-report) REPORT=0 ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "cluster.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
RINGGATE=${RINGGATE:-$BIN/ringgate}
START=$(date +%s)
# The whole block stays under ~4 minutes; past this, runs are skipped (and say so).
budget_s=$((QUICK == 1 ? 90 : 240))
log() { printf '[cluster %4ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }

for c in redis-server redis-cli redis-benchmark python3; do
  command -v "$c" >/dev/null || { echo "cluster.sh: $c is missing (scripts/ensure-deps.sh installs redis)" >&2; exit 1; }
done
[ -x "$RINGGATE" ] && [ -x "$BIN/ringgate-bench" ] || { echo "cluster.sh: no $RINGGATE or no $BIN/ringgate-bench" >&2; exit 1; }
mkdir -p "$RAW"; rm -f "$RAW"/cluster-*.json

if [ $QUICK = 1 ]; then PUB_S=2; LAT_S=3; FAN_S=2; FAN_N=200; EVENTS=200000
else PUB_S=3; LAT_S=6; FAN_S=4; FAN_N=1000; EVENTS=600000; fi
LAT_N=100; LAT_RATE=10000   # 100 events/s to 100 subscribers: the hop, not the fan-out, dominates

TMP=$(mktemp -d /tmp/ringgate-cluster-bench.XXXXXX)
REDIS_PID="" A_PID="" B_PID="" S_PID=""

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

stop_one() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 70); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_all() {
  stop_one "$A_PID"; A_PID=""
  stop_one "$B_PID"; B_PID=""
  stop_one "$S_PID"; S_PID=""
  stop_one "$REDIS_PID"; REDIS_PID=""
}
trap 'stop_all; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

start_redis() {
  REDIS_PORT=$(free_port)
  rm -rf "$TMP/redis"; mkdir -p "$TMP/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis" \
    --logfile "$TMP/redis/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
  cat "$TMP/redis/redis.log" >&2; echo "cluster.sh: redis-server did not answer PING" >&2; exit 1
}

# start_host VAR [serve args...]: sets VAR_PID, VAR_SUB, VAR_PUB; returns 1 (with VAR_ERR) if
# the gateway did not print its ready line (e.g. a build without cluster mode).
start_host() {
  local var=$1; shift
  mkdir -p "$TMP/$var"
  "$RINGGATE" serve --listen 127.0.0.1:0 --publish-listen 127.0.0.1:0 --data-dir "$TMP/$var" "$@" \
    > "$TMP/$var.out" 2> "$TMP/$var.err" &
  local pid=$!
  for _ in $(seq 100); do
    grep -q '^ringgate ready' "$TMP/$var.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  local line; line=$(grep '^ringgate ready' "$TMP/$var.out" || true)
  if [ -z "$line" ]; then
    printf -v "${var}_ERR" '%s' "$(head -c 300 "$TMP/$var.err" | tr '"\n' "' ")"
    stop_one "$pid"
    return 1
  fi
  printf -v "${var}_PID" '%s' "$pid"
  printf -v "${var}_SUB" '%s' "$(sed -n 's/.* subscribe=\([^ ]*\).*/\1/p' <<<"$line")"
  printf -v "${var}_PUB" '%s' "$(sed -n 's/.* publish=\([^ ]*\).*/\1/p' <<<"$line")"
  log "$var pid $pid: $line"
}

redis_cpu() { python3 -c "import os,sys; f=open('/proc/$REDIS_PID/stat').read().rsplit(')',1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'))"; }

fail_row() {  # row server rep message
  printf '{"error":"%s","label":"cluster-%s/%s/%s"}\n' "$4" "$1" "$2" "$3" > "$RAW/cluster-$1.$2.$3.json"
  log "cluster-$1 $2 rep $3: $4"
}

# run_row row server rep mode loadgen-args...: one ringgate-bench run, with Redis's CPU over it.
run_row() {
  local row=$1 server=$2 rep=$3 mode=$4; shift 4
  local outf="$RAW/cluster-$row.$server.$rep.json"
  if [ $(( $(date +%s) - START )) -gt $budget_s ]; then fail_row "$row" "$server" "$rep" "skipped: cluster time budget spent"; return 0; fi
  local c0 t0; c0=$(redis_cpu); t0=$(date +%s.%N)
  if timeout 90 "$BIN/ringgate-bench" "$mode" --label "cluster-$row/$server/$rep" "$@" > "$outf.tmp" 2> "$TMP/bench.err"; then
    local c1 t1; c1=$(redis_cpu); t1=$(date +%s.%N)
    python3 - "$outf.tmp" "$c0" "$c1" "$t0" "$t1" > "$outf" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); c0, c1, t0, t1 = map(float, sys.argv[2:6])
d["redis_cpu_s"] = c1 - c0; d["redis_cpu_util"] = (c1 - c0) / (t1 - t0)
print(json.dumps(d))
EOF
    rm -f "$outf.tmp"
    log "cluster-$row $server rep $rep: $(python3 "$ROOT/bench/report.py" --one "$outf")"
  else
    rm -f "$outf.tmp"
    fail_row "$row" "$server" "$rep" "$(tail -n 3 "$TMP/bench.err" | tr '"\n' "' ")"
  fi
  sleep 1
}

url_args() {  # subscriber / publisher / batch URLs of one host
  local sub=$1 pub=$2
  echo "--sub-url http://$sub/v1/slots/{slot}/stream --pub-url http://$pub/v1/slots/{slot}/events --batch-url http://$pub/v1/events"
}

ROWS_CLUSTER="publish-single publish-batch latency fanout"
for rep in $(seq "$REPS"); do
  log "repetition $rep of $REPS: fresh Redis and hosts"
  stop_all
  start_redis
  python3 "$ROOT/bench/cluster/redis_rows.py" --port "$REDIS_PORT" --pid "$REDIS_PID" --raw "$RAW" --rep "$rep" \
    --batches 1,100 --events "$EVENTS" | while read -r l; do log "redis: $l"; done
  start_host S --workers 2 || fail_row latency ringgate "$rep" "single host did not start: $S_ERR"
  key="bench$rep-$$"
  UP="redis://127.0.0.1:$REDIS_PORT?key=$key"
  CLUSTER=1
  if ! start_host A --workers 1 --upstream "$UP"; then
    CLUSTER=0; for r in $ROWS_CLUSTER; do fail_row "$r" cluster "$rep" "host A did not start: $A_ERR"; done
  elif ! start_host B --workers 1 --upstream "$UP"; then
    CLUSTER=0; for r in $ROWS_CLUSTER; do fail_row "$r" cluster "$rep" "host B did not start: $B_ERR"; done
  fi
  sleep 1
  PIDS="--pid-tree ${A_PID:-0} --pid-tree ${B_PID:-0}"
  # shellcheck disable=SC2046,SC2086
  if [ $CLUSTER = 1 ]; then
    A=$(url_args "$A_SUB" "$A_PUB"); B=$(url_args "$B_SUB" "$B_PUB")
    run_row publish-single cluster "$rep" publish $A $B $PIDS --pub-conns 4 --depth 32 --duration "$PUB_S"
    run_row publish-batch cluster "$rep" publish $A $B $PIDS --pub-conns 4 --depth 8 --batch 1000 --duration "$PUB_S"
    # Publish at A, receive at B (B's --sub-url; A's --pub-url).
    run_row latency cluster "$rep" latency --sub-url "http://$B_SUB/v1/slots/{slot}/stream" \
      --pub-url "http://$A_PUB/v1/slots/{slot}/events" $PIDS --subs $LAT_N --rate $LAT_RATE --duration "$LAT_S"
    # Subscribers dealt alternately to A and B; one publisher connection at A keeps n in order.
    run_row fanout cluster "$rep" fanout --sub-url "http://$A_SUB/v1/slots/{slot}/stream" \
      --sub-url "http://$B_SUB/v1/slots/{slot}/stream" --pub-url "http://$A_PUB/v1/slots/{slot}/events" $PIDS \
      --subs $FAN_N --duration "$FAN_S"
  fi
  # The single-host baseline under the same load (and the same machine state).
  # shellcheck disable=SC2046
  if [ -n "$S_PID" ]; then
    run_row latency ringgate "$rep" latency $(url_args "$S_SUB" "$S_PUB") --pid-tree "$S_PID" \
      --subs $LAT_N --rate $LAT_RATE --duration "$LAT_S"
    run_row fanout ringgate "$rep" fanout $(url_args "$S_SUB" "$S_PUB") --pid-tree "$S_PID" --subs $FAN_N --duration "$FAN_S"
  fi
  stop_all
done
log "done in $(( $(date +%s) - START )) s"
if [ $REPORT = 1 ]; then python3 "$ROOT/bench/report.py" --results "$(dirname "$RAW")" --cluster-only; fi
