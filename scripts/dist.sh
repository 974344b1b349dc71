#!/usr/bin/env bash
# make dist: dist/ringgate-<version>-linux-<arch>.tar.gz from the release build.
#   scripts/dist.sh [BINARY]    (default .build/release/ringgate)
# The version is what the built binary prints for --version, so it is written down once
# (Sources/ringgate/Ringgate.swift). Inside: one folder, ringgate-<version>-linux-<arch>/, with
# the binary, ringgate.service, README.md and LICENSE. Prints the tarball's path last.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release/ringgate}
[ -x "$bin" ] || { echo "dist: no release binary at $bin (run: make release)" >&2; exit 1; }
version=$("$bin" --version)
case "$version" in
  [0-9]*.[0-9]*.[0-9]*) ;;
  *) echo "dist: '$bin --version' printed '$version', not a version" >&2; exit 1 ;;
esac
arch=$(uname -m)   # x86_64, aarch64: the names Debian's multiarch triplets and Swift use
name="ringgate-$version-linux-$arch"
for f in deploy/ringgate.service README.md LICENSE; do
  [ -f "$f" ] || { echo "dist: $f is missing" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
install -m 0755 "$bin" "$stage/$name/ringgate"
install -m 0644 deploy/ringgate.service README.md LICENSE "$stage/$name/"
# Same inputs, same bytes: sorted names, fixed owner, the commit's time, no gzip timestamp.
mtime=$(git log -1 --format=%ct 2>/dev/null || echo 0)
mkdir -p dist
out="dist/$name.tar.gz"
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
    -cf - "$name" | gzip -n > "$out.tmp"
mv "$out.tmp" "$out"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "dist: $out ($(du -h "$out" | cut -f1), ringgate $version, commit $commit)" >&2
echo "$out"
