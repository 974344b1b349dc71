#!/usr/bin/env bash
# make check-dist: the release tarball works on a bare Debian with only the packages of
# deploy/runtime-packages.txt added.
#   scripts/check-dist.sh [TARBALL]   (default: the newest dist/ringgate-*.tar.gz)
# A `debootstrap --variant=minbase bookworm` root (with --include of runtime-packages.txt) is
# cached under .build/dist-root/, keyed by the package list, suite and mirror, so a changed list
# makes a new one. In it: the tarball unpacked, `ldd` run with nothing "not found" and every
# library owned by an allowed package, `ringgate serve` run with chroot (with /proc mounted:
# the supervisor spawns its children through /proc/self/exe), a publish -> SSE -> history round
# trip with curl from outside (the chroot shares the network), `ringgate health` inside (0 while
# it serves, 1 after it stopped), then SIGTERM and exit status 0.
# Environment: DIST_MIRROR (default: the host apt's Debian mirror, else deb.debian.org),
# DIST_SUITE (bookworm).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "check-dist: $*" >&2; exit 1; }
t0=$(date +%s.%N)
step_t=$t0
step() {   # prints the time the previous step took, then names the next
  local now; now=$(date +%s.%N)
  [ -n "${step_name:-}" ] && printf 'check-dist: %-44s %6.1f s\n' "$step_name" "$(echo "$now - $step_t" | bc)"
  step_t=$now; step_name=$1
}

[ "$(id -u)" = 0 ] || fail "must run as root (debootstrap, chroot and mount need it); try: sudo make check-dist"
command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install debootstrap; or: scripts/ensure-deps.sh test)"
for c in curl bc tar chroot mount umount; do
  command -v "$c" >/dev/null || fail "'$c' is not installed"
done

tarball=${1:-$(ls -t dist/ringgate-*.tar.gz 2>/dev/null | head -1 || true)}
[ -n "$tarball" ] && [ -f "$tarball" ] || fail "no tarball${1:+ at $1} (run: make dist)"

mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' deploy/runtime-packages.txt | grep -v '^$')
[ ${#packages[@]} -gt 0 ] || fail "deploy/runtime-packages.txt lists no package"

suite=${DIST_SUITE:-bookworm}
# The host's Debian mirror (deb822 .sources or one-line sources.list), else deb.debian.org.
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
      END { if (uri != "" && ok) print uri }' "$f"
  done
  if [ -f /etc/apt/sources.list ]; then
    awk -v suite="$suite" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i+1) == suite) print $i; break } }' /etc/apt/sources.list
  fi
}
mirror=${DIST_MIRROR:-$(host_mirror | head -1)}
mirror=${mirror:-http://deb.debian.org/debian}

key=$(printf '%s\n' "$suite" "$mirror" "${packages[@]}" | sha256sum | cut -c1-12)
cache=.build/dist-root
root=$cache/$suite-minbase-$key
include=$(IFS=,; echo "${packages[*]}")

step "debootstrap root"
if [ -f "$root/.ringgate-complete" ]; then
  echo "check-dist: cached root $root ($suite, +$include)"
else
  echo "check-dist: making $root: debootstrap --variant=minbase --include=$include $suite from $mirror"
  # Roots made for an older package list go: only the current one is kept.
  for old in "$cache"/*; do
    [ -e "$old" ] || continue
    if mountpoint -q "$old/proc"; then umount "$old/proc" || fail "cannot unmount $old/proc"; fi
    rm -rf --one-file-system "$old"
  done
  mkdir -p "$cache"
  tmp=$root.partial
  if ! debootstrap --variant=minbase --include="$include" "$suite" "$tmp" "$mirror" > "$cache/debootstrap.log" 2>&1; then
    tail -20 "$cache/debootstrap.log" >&2
    fail "debootstrap failed (log: $cache/debootstrap.log); set DIST_MIRROR to a reachable Debian mirror"
  fi
  rm -rf "$tmp"/var/cache/apt/archives/*.deb
  mv "$tmp" "$root"
  touch "$root/.ringgate-complete"
fi
for p in "${packages[@]}"; do
  chroot "$root" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || fail "package $p is not installed in $root (delete $cache and retry)"
done

step "unpack tarball"
name=$(basename "$tarball" .tar.gz)
mapfile -t entries < <(tar -tzf "$tarball")
for e in "${entries[@]}"; do
  case "$e" in "$name"/*) ;; *) fail "$tarball: entry '$e' is outside the top-level folder $name/" ;; esac
done
for f in ringgate ringgate.service README.md LICENSE; do
  printf '%s\n' "${entries[@]}" | grep -qx "$name/$f" || fail "$tarball has no $name/$f"
done
rm -rf "${root:?}/opt/$name" "$root/var/lib/ringgate-check"
mkdir -p "$root/opt" "$root/var/lib/ringgate-check"
tar -xzf "$tarball" -C "$root/opt"
bin=/opt/$name/ringgate

step "ldd inside the root"
libs=$(chroot "$root" ldd "$bin") || fail "ldd $bin failed inside the root"
if grep -q 'not found' <<<"$libs"; then
  echo "$libs" >&2
  fail "the binary needs libraries the root does not have (add their packages to deploy/runtime-packages.txt)"
fi
# Every library it loads comes from a base package or a listed one.
allowed=" libc6 libstdc++6 libgcc-s1 ${packages[*]} "
while read -r path; do
  owner=$(chroot "$root" dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1) || true
  if [ -z "$owner" ]; then   # /lib is a symlink to /usr/lib on bookworm: ask for the other name
    owner=$(chroot "$root" dpkg -S "$(chroot "$root" readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1) || true
  fi
  [ -n "$owner" ] || fail "no package owns $path"
  case "$allowed" in *" $owner "*) ;; *) fail "$path comes from $owner, which is neither in the base set nor in deploy/runtime-packages.txt" ;; esac
  echo "check-dist:   $path ($owner)"
done < <(awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }' <<<"$libs" | sort -u)

step "serve inside the root"
work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  [ -n "${curl_pid:-}" ] && kill "$curl_pid" 2>/dev/null || true
  if mountpoint -q "$root/proc"; then umount "$root/proc" || umount -l "$root/proc" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mount -t proc proc "$root/proc"
chroot "$root" "$bin" serve --listen 127.0.0.1:0 --publish-listen 127.0.0.1:0 --workers 2 \
  --data-dir /var/lib/ringgate-check --log-capacity 16MiB --drain-delay 0s \
  > "$work/stdout" 2> "$work/stderr" &
pid=$!   # chroot execs the binary: this is the supervisor
ready=""
for _ in $(seq 200); do
  ready=$(grep -m1 '^ringgate ready ' "$work/stdout" || true)
  [ -n "$ready" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/stderr" >&2; fail "ringgate serve exited before its ready line"; }
  sleep 0.1
done
[ -n "$ready" ] || { tail -20 "$work/stderr" >&2; fail "no ready line within 20 s"; }
echo "check-dist: $ready"
sport=$(sed -E 's/.* subscribe=[^ ]*:([0-9]+) .*/\1/' <<<"$ready")
pport=$(sed -E 's/.* publish=[^ ]*:([0-9]+) .*/\1/' <<<"$ready")
sub=http://127.0.0.1:$sport
pub=http://127.0.0.1:$pport

step "publish -> SSE -> history round trip"
id_of() { sed -nE 's/.*"id":"([^"]+)".*/\1/p'; }
first=$(curl -sS --fail-with-body --max-time 5 -X POST --data-binary 'first' "$pub/v1/slots/dist-check/events?type=t") \
  || fail "publish failed: $first"
first_id=$(id_of <<<"$first")
[ -n "$first_id" ] || fail "publish answered without an id: $first"
# The stream resumes after the first event, so the second arrives whether the stream was
# subscribed before it was published or not.
curl -sS -N --max-time 10 "$sub/v1/slots/dist-check/stream?after=$first_id" > "$work/sse" 2>&1 &
curl_pid=$!
second=$(curl -sS --fail-with-body --max-time 5 -X POST --data-binary 'second, from outside the root' "$pub/v1/slots/dist-check/events?type=t") \
  || fail "publish failed: $second"
second_id=$(id_of <<<"$second")
for _ in $(seq 100); do grep -q "^id: $second_id" "$work/sse" && break; sleep 0.05; done
kill "$curl_pid" 2>/dev/null || true; wait "$curl_pid" 2>/dev/null || true; curl_pid=""
grep -q "^id: $second_id" "$work/sse" && grep -q '^data: second, from outside the root' "$work/sse" \
  || { cat "$work/sse" >&2; fail "the SSE stream did not deliver $second_id"; }
history=$(curl -sS --fail-with-body --max-time 5 "$sub/v1/slots/dist-check/events?limit=10") || fail "history failed: $history"
grep -q "\"id\":\"$first_id\"" <<<"$history" && grep -q "\"id\":\"$second_id\"" <<<"$history" \
  || fail "history lacks $first_id or $second_id: $history"
echo "check-dist:   published $first_id and $second_id; SSE delivered $second_id; history has both"

step "ringgate health inside the root"
chroot "$root" "$bin" health --url "$sub" --timeout 3s >/dev/null || fail "ringgate health (inside the root) failed against a serving gateway"
chroot "$root" "$bin" health --url "$sub" --path /healthz --timeout 3s >/dev/null || fail "ringgate health --path /healthz failed"

step "SIGTERM -> exit 0"
kill -TERM "$pid"
status=""
for _ in $(seq 150); do   # --drain-delay 0s: the 5 s stop plus margin
  if ! kill -0 "$pid" 2>/dev/null; then wait "$pid" && status=0 || status=$?; break; fi
  sleep 0.1
done
[ -n "$status" ] || fail "ringgate serve did not exit within 15 s of SIGTERM"
pid=""
[ "$status" = 0 ] || { tail -20 "$work/stderr" >&2; fail "ringgate serve exited with $status after SIGTERM"; }

step "ringgate health after the stop"
rc=0
chroot "$root" "$bin" health --url "$sub" --timeout 1s >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "ringgate health exited $rc against the stopped gateway (expected 1)"
step ""
printf 'check-dist: OK %s on %s minbase + %s in %.1f s\n' "$name" "$suite" "$include" "$(echo "$(date +%s.%N) - $t0" | bc)"
