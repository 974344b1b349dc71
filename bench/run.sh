#!/usr/bin/env bash
# Ringgate vs nginx + nchan, side by side, on loopback. Usage: bench/run.sh [--quick] [--deps-only]
#   --quick   each scenario once, smaller N, shorter runs (a fast check, ~2 min)
#   --deps-only  install what is missing (as root) and stop (make bench-scale uses it)
# Environment: SWIFT (swift), BENCH_SCRATCH (swift --scratch-path; default .build),
#   NCHAN_SUB_PORT / NCHAN_PUB_PORT (18180 / 18181), BENCH_REPS (3), BENCH_CLUSTER (1; 0 skips
#   the cluster rows of bench/cluster.sh), LAT_PROCS (2: load processes of each latency row,
#   ringgate-bench latency --procs; 1 = the single-threaded client alone).
# Raw results: bench/results/raw/*.json; table: bench/results/table.md; chart: bench/results/chart.png
set -euo pipefail

QUICK=0
DEPS_ONLY=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --deps-only) DEPS_ONLY=1 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SWIFT=${SWIFT:-swift}
SCRATCH=${BENCH_SCRATCH:-$ROOT/.build}
RESULTS=$ROOT/bench/results
NCHAN_SUB_PORT=${NCHAN_SUB_PORT:-18180}
NCHAN_PUB_PORT=${NCHAN_PUB_PORT:-18181}
START=$(date +%s)
deadline_s=$((20 * 60))

log() { printf '[bench %4ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }

# ---- dependencies ------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || missing+=(libnginx-mod-nchan)
command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
[ -f /usr/include/liburing.h ] || missing+=(liburing-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
      apt-get update -q >/dev/null 2>&1
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
    }
  else
    echo "missing packages: ${missing[*]} (install them as root: apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
fi
command -v python3 >/dev/null || { echo "python3 is needed for the report" >&2; exit 1; }
[ $DEPS_ONLY = 1 ] && exit 0

# ---- build -------------------------------------------------------------------------------
log "building release (ringgate, ringgate-bench), static Swift runtime as make release ships it"
(cd "$ROOT" && "$SWIFT" build -c release --static-swift-stdlib --scratch-path "$SCRATCH" 2>&1 | tail -n 3) >&2
BIN=$SCRATCH/release
[ -x "$BIN/ringgate" ] && [ -x "$BIN/ringgate-bench" ] || { echo "build did not produce ringgate and ringgate-bench" >&2; exit 1; }

ulimit -n "$(ulimit -Hn)"
log "ulimit -n $(ulimit -n)"

# ---- servers -----------------------------------------------------------------------------
for port in "$NCHAN_SUB_PORT" "$NCHAN_PUB_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "bench: 127.0.0.1:$port is already in use (another nginx?): stop it, or set NCHAN_SUB_PORT / NCHAN_PUB_PORT" >&2
    exit 1
  fi
done
TMP=$(mktemp -d /tmp/ringgate-bench.XXXXXX)
RG_PID=""
RGE_PID=""
NGINX_PIDFILE=$TMP/nginx/nginx.pid

start_nchan() {
  rm -rf "$TMP/nginx"; mkdir -p "$TMP/nginx/logs" "$TMP/nginx/tmp"
  sed -e "s/127.0.0.1:18180/127.0.0.1:$NCHAN_SUB_PORT/" -e "s/127.0.0.1:18181/127.0.0.1:$NCHAN_PUB_PORT/" \
    "$ROOT/bench/nchan.conf" > "$TMP/nginx/nchan.conf"
  nginx -c "$TMP/nginx/nchan.conf" -p "$TMP/nginx/" -g "daemon on; pid $NGINX_PIDFILE;"
  for _ in $(seq 50); do [ -s "$NGINX_PIDFILE" ] && break; sleep 0.1; done
  [ -s "$NGINX_PIDFILE" ] || { cat "$TMP/nginx/logs/error.log" >&2; echo "nginx did not start" >&2; exit 1; }
  NGINX_PID=$(cat "$NGINX_PIDFILE")
}

stop_nchan() {
  if [ -s "$NGINX_PIDFILE" ]; then
    local p; p=$(cat "$NGINX_PIDFILE")
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    rm -f "$NGINX_PIDFILE"
  fi
}

# start_ringgate BACKEND VAR: starts a gateway on --io BACKEND; sets VAR_PID, VAR_SUB, VAR_PUB.
start_ringgate() {
  local backend=$1 var=$2
  "$BIN/ringgate" serve --listen 127.0.0.1:0 --publish-listen 127.0.0.1:0 --workers 2 --ephemeral --io "$backend" \
    > "$TMP/$var.out" 2> "$TMP/$var.err" &
  local pid=$!
  for _ in $(seq 100); do grep -q '^ringgate ready' "$TMP/$var.out" 2>/dev/null && break; sleep 0.1; done
  local line; line=$(grep '^ringgate ready' "$TMP/$var.out" || true)
  [ -n "$line" ] || { cat "$TMP/$var.err" >&2; echo "ringgate --io $backend did not print its ready line" >&2; exit 1; }
  grep -q " io=$backend " <<<"$line" || { echo "ringgate --io $backend: ready line says otherwise: $line" >&2; exit 1; }
  printf -v "${var}_PID" '%s' "$pid"
  printf -v "${var}_SUB" '%s' "$(sed -n 's/.* subscribe=\([^ ]*\).*/\1/p' <<<"$line")"
  printf -v "${var}_PUB" '%s' "$(sed -n 's/.* publish=\([^ ]*\).*/\1/p' <<<"$line")"
  log "ringgate --io $backend pid $pid: $line"
}

stop_one() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 70); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_ringgate() {
  stop_one "$RG_PID"; RG_PID=""
  stop_one "$RGE_PID"; RGE_PID=""
}

cleanup() {
  stop_ringgate
  stop_nchan
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- scenarios ---------------------------------------------------------------------------
if [ $QUICK = 1 ]; then
  REPS=1; NS="200 1000"; IDLE_N=1000; FAN_S=2; LAT_S=3; STOP_N=500; STOP_S=3; PUB_S=2
  SIZES=1000,100000; QUERIES=50
else
  REPS=${BENCH_REPS:-3}; NS="1000 5000"; IDLE_N=5000; FAN_S=5; LAT_S=8; STOP_N=1000; STOP_S=8; PUB_S=3
  SIZES=1000,100000,1000000; QUERIES=200
fi
read -r N1 N2 <<<"$NS"
rm -rf "$RESULTS/raw"; mkdir -p "$RESULTS/raw"

args_for() {  # server [ws] → URLs and pids; ringgate-epoll is the same build on --io epoll
  local sub pub pid ws=${2:-}
  case "$1" in
    ringgate) sub=$RG_SUB pub=$RG_PUB pid=$RG_PID ;;
    ringgate-epoll) sub=$RGE_SUB pub=$RGE_PUB pid=$RGE_PID ;;
  esac
  if [ "$1" = nchan ]; then
    local route=sub; [ -n "$ws" ] && route=ws
    echo "--sub-url http://127.0.0.1:$NCHAN_SUB_PORT/$route/{slot} --pub-url http://127.0.0.1:$NCHAN_PUB_PORT/pub/{slot}" \
         "--pub-method POST --pid-tree $NGINX_PID"
  else
    local leaf=stream; [ -n "$ws" ] && leaf=ws
    echo "--sub-url http://$sub/v1/slots/{slot}/$leaf --pub-url http://$pub/v1/slots/{slot}/events" \
         "--batch-url http://$pub/v1/events --history-url http://$sub/v1/slots/{slot}/events --pid-tree $pid"
  fi
}

run_one() {  # server scenario rep mode args...   (WS=1: WebSocket subscribers)
  local server=$1 scenario=$2 rep=$3 mode=$4; shift 4
  local transport=(); [ -n "${WS:-}" ] && transport=(--transport ws)
  local outf="$RESULTS/raw/$scenario.$server.$rep.json"
  if [ $(( $(date +%s) - START )) -gt $deadline_s ]; then
    log "time budget spent: skipping $scenario/$server/$rep"; return 0
  fi
  # shellcheck disable=SC2046
  if timeout 150 "$BIN/ringgate-bench" "$mode" $(args_for "$server" "${WS:-}") "${transport[@]}" --label "$scenario/$server/$rep" "$@" \
       > "$outf.tmp" 2> "$TMP/bench.err"; then
    mv "$outf.tmp" "$outf"
  else
    local msg; msg=$(tail -n 3 "$TMP/bench.err" | tr '"\n' "' ")
    printf '{"error":"%s","label":"%s/%s/%s"}\n' "$msg" "$scenario" "$server" "$rep" > "$outf"; rm -f "$outf.tmp"
    log "FAILED $scenario/$server/$rep: $msg"
  fi
  log "$scenario $server rep $rep: $(python3 "$ROOT/bench/report.py" --one "$outf")"
  sleep 1
}

for rep in $(seq "$REPS"); do
  log "repetition $rep of $REPS: fresh servers"
  stop_ringgate; stop_nchan
  start_ringgate io_uring RG; start_ringgate epoll RGE; start_nchan
  sleep 1
  if [ $((rep % 2)) = 1 ]; then ORDER="ringgate nchan"; else ORDER="nchan ringgate"; fi
  # The fan-out, latency and CPU-per-delivery scenarios also run on the epoll backend.
  if [ $((rep % 2)) = 1 ]; then ORDER3="ringgate ringgate-epoll nchan"; else ORDER3="nchan ringgate-epoll ringgate"; fi
  for s in $ORDER; do run_one "$s" idle-memory "$rep" idle-memory --subs "$IDLE_N"; done
  for n in $N1 $N2; do
    for s in $ORDER3; do run_one "$s" "fanout-$n" "$rep" fanout --subs "$n" --duration "$FAN_S"; done
  done
  for n in $N1 $N2; do
    for s in $ORDER3; do run_one "$s" "latency-$n" "$rep" latency --subs "$n" --rate 50000 --duration "$LAT_S" --procs "${LAT_PROCS:-2}"; done
  done
  # WebSocket subscribers (issue 15): the same fan-out against nchan's WebSocket endpoint.
  for n in $N1 $N2; do
    for s in $ORDER; do WS=1 run_one "$s" "ws-fanout-$n" "$rep" fanout --subs "$n" --duration "$FAN_S"; done
  done
  for s in $ORDER; do
    run_one "$s" stopped-baseline "$rep" stopped-readers --subs "$STOP_N" --stopped-fraction 0 --rate 20000 --payload 8192 --duration "$STOP_S"
    run_one "$s" stopped-10pct "$rep" stopped-readers --subs "$STOP_N" --stopped-fraction 0.1 --rate 20000 --payload 8192 --duration "$STOP_S"
  done
  RG_INGEST=$(pgrep -P "$RG_PID" -f "ringgate ingest" | head -1)
  for s in $ORDER; do
    if [ "$s" = ringgate ]; then
      run_one "$s" publish-single "$rep" publish --pub-conns 4 --depth 32 --duration "$PUB_S" --ingest-pid "$RG_INGEST"
    else
      run_one "$s" publish-single "$rep" publish --pub-conns 4 --depth 32 --duration "$PUB_S"
    fi
  done
  run_one ringgate publish-batch "$rep" publish --pub-conns 4 --depth 8 --batch 1000 --duration "$PUB_S" --ingest-pid "$RG_INGEST"
  run_one nchan publish-batch "$rep" publish --batch 1000 --duration "$PUB_S"
  run_one ringgate history "$rep" history --sizes "$SIZES" --queries "$QUERIES"
  run_one nchan history "$rep" history
done

stop_ringgate; stop_nchan

# ---- cluster (issue 12) --------------------------------------------------------------------
# Redis, two `serve --upstream` hosts and a single-host reference, fresh per repetition; its
# rows land in the same raw dir and report.py prints them as a table of their own.
# BENCH_CLUSTER=0 skips it.
if [ "${BENCH_CLUSTER:-1}" = 1 ]; then
  cluster_args=(--bin "$BIN" --raw "$RESULTS/raw" --reps "$REPS" --no-report)
  [ $QUICK = 1 ] && cluster_args+=(--quick)
  "$ROOT/bench/cluster.sh" "${cluster_args[@]}" || log "cluster block failed (its rows say why)"
fi

MACHINE="$(nproc) cores, kernel $(uname -r), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
python3 "$ROOT/bench/report.py" --results "$RESULTS" --machine "$MACHINE" --elapsed "$(( $(date +%s) - START ))" \
  --quick "$QUICK"
log "done in $(( $(date +%s) - START )) s; raw results in $RESULTS/raw, table in $RESULTS/table.md"
