#!/usr/bin/env bash
# `make cluster`: a Ringgate cluster on loopback — Redis, two `ringgate serve --upstream` hosts
# and haproxy in front (deploy/haproxy/haproxy.cfg) — until Ctrl-C or SIGTERM, which stop all.
#
#   CLUSTER_BASE_PORT (8080)  haproxy: subscribe BASE, publish BASE+1, stats BASE+2;
#                             host1 BASE+10/BASE+11, host2 BASE+20/BASE+21, Redis BASE+30
#   CLUSTER_DIR (./ringgate-cluster)  the hosts' data dirs, Redis's AOF, every log
#   CLUSTER_KEY (ringgate)    the Redis stream's key (`?key=` of --upstream)
#   RINGGATE_BIN (.build/release/ringgate)
# Extra arguments go to both hosts' `ringgate serve` (make cluster ARGS="--heartbeat 5s").
set -uo pipefail
cd "$(dirname "$0")/.."

base=${CLUSTER_BASE_PORT:-8080}
dir=${CLUSTER_DIR:-ringgate-cluster}
key=${CLUSTER_KEY:-ringgate}
bin=${RINGGATE_BIN:-.build/release/ringgate}
cfg=deploy/haproxy/haproxy.cfg
sub=$base pub=$((base + 1)) stats=$((base + 2)) redis_port=$((base + 30))
host_sub=($((base + 10)) $((base + 20)))
host_pub=($((base + 11)) $((base + 21)))

die() { echo "cluster: $*" >&2; exit 1; }

missing=()
for tool in redis-server redis-cli haproxy curl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  die "missing ${missing[*]}: run scripts/ensure-deps.sh test (Debian: apt-get install redis-server redis-tools haproxy curl)"
fi
[ -x "$bin" ] || die "no ringgate binary at $bin: run make release (or set RINGGATE_BIN)"
for port in $sub $pub $stats $redis_port "${host_sub[@]}" "${host_pub[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port on 127.0.0.1 is in use; stop what holds it or set CLUSTER_BASE_PORT"
  fi
done

mkdir -p "$dir/logs" "$dir/redis" || die "cannot create $dir"
dir=$(cd "$dir" && pwd)
pids=() names=()

stop_all() {
  trap - INT TERM EXIT
  echo "cluster: stopping" >&2
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null
  done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[$i]}
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "cluster: ${names[$i]} did not stop within 10 s, killing it" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  done
  echo "cluster: stopped" >&2
}
on_signal() { stop_all; exit 0; }
on_exit() { local rc=$?; stop_all; exit "$rc"; }
trap on_signal INT TERM
trap on_exit EXIT

started() { pids+=("$1"); names+=("$2"); }
log_tail() { echo "--- $1 (last lines) ---" >&2; tail -n 20 "$1" >&2; }

# Redis: AOF (fsync every second) in $dir/redis, so a restart keeps the cluster's epoch and events.
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
  --dir "$dir/redis" --daemonize no --logfile "" >"$dir/logs/redis.log" 2>&1 &
started $! redis
for _ in $(seq 100); do
  [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { log_tail "$dir/logs/redis.log"; die "redis-server exited at start-up"; }
  sleep 0.1
done
[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] || die "redis-server did not answer PING within 10 s"

upstream="redis://127.0.0.1:$redis_port?key=$key"
for i in 0 1; do
  n=$((i + 1))
  mkdir -p "$dir/host$n"
  "$bin" serve --listen "127.0.0.1:${host_sub[$i]}" --publish-listen "127.0.0.1:${host_pub[$i]}" \
    --workers 2 --data-dir "$dir/host$n" --upstream "$upstream" "$@" \
    >"$dir/logs/host$n.out" 2>"$dir/logs/host$n.log" &
  started $! "host$n"
done
for i in 0 1; do
  n=$((i + 1)) pid=${pids[$((i + 1))]}
  for _ in $(seq 200); do
    grep -q '^ringgate ready ' "$dir/logs/host$n.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { log_tail "$dir/logs/host$n.log"; die "host$n (ringgate serve) exited at start-up"; }
    sleep 0.1
  done
  grep -q '^ringgate ready ' "$dir/logs/host$n.out" || { log_tail "$dir/logs/host$n.log"; die "host$n printed no ready line within 20 s"; }
done

RG_SUBSCRIBE_BIND=127.0.0.1:$sub RG_PUBLISH_BIND=127.0.0.1:$pub RG_STATS_BIND=127.0.0.1:$stats \
RG_HOST1_SUBSCRIBE=127.0.0.1:${host_sub[0]} RG_HOST1_PUBLISH=127.0.0.1:${host_pub[0]} \
RG_HOST2_SUBSCRIBE=127.0.0.1:${host_sub[1]} RG_HOST2_PUBLISH=127.0.0.1:${host_pub[1]} \
  haproxy -db -f "$cfg" >"$dir/logs/haproxy.log" 2>&1 &
started $! haproxy
for _ in $(seq 100); do
  up=$(curl -s "http://127.0.0.1:$stats/stats;csv" 2>/dev/null | grep -c '^ringgate_subscribe,host[12],.*,UP')
  [ "$up" = 2 ] && break
  kill -0 "${pids[3]}" 2>/dev/null || { log_tail "$dir/logs/haproxy.log"; die "haproxy exited at start-up"; }
  sleep 0.1
done
[ "$up" = 2 ] || { log_tail "$dir/logs/haproxy.log"; die "haproxy does not see both hosts up (/readyz) within 10 s"; }

cat <<EOF
ringgate cluster ready: Redis 127.0.0.1:$redis_port (key $key), 2 hosts, haproxy in front
  subscribe (haproxy): http://127.0.0.1:$sub
  publish (haproxy): http://127.0.0.1:$pub
  host1: subscribe http://127.0.0.1:${host_sub[0]} publish http://127.0.0.1:${host_pub[0]}
  host2: subscribe http://127.0.0.1:${host_sub[1]} publish http://127.0.0.1:${host_pub[1]}
  haproxy stats: http://127.0.0.1:$stats/stats
try, in another shell:
  curl -N http://127.0.0.1:$sub/v1/slots/news/stream
  curl -s -X POST --data-binary 'hello' http://127.0.0.1:$pub/v1/slots/news/events
  curl -s -X POST --data-binary 'hi from host2' http://127.0.0.1:${host_pub[1]}/v1/slots/news/events
logs in $dir/logs; Ctrl-C stops everything
EOF

# Until a signal, or until one of them dies (then stop the rest and fail).
wait -n "${pids[@]}"
rc=$?
for i in "${!pids[@]}"; do
  kill -0 "${pids[$i]}" 2>/dev/null || echo "cluster: ${names[$i]} exited (status $rc); stopping the others" >&2
done
exit 1
