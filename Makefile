# Ringgate: `make run` starts the gateway, `make test` runs every test.
SWIFT ?= swift
RELEASE_BIN := .build/release/ringgate
STRESS_RECORDS ?= 10000000

.PHONY: all build release dist check-dist run test unit stress integration conformance fuzz bench bench-fsync bench-ingest bench-scale cluster clean

all: release

build:
	@scripts/ensure-deps.sh build
	$(SWIFT) build

# Every product, with the Swift runtime linked in: the binary needs only liburing2 and
# libhiredis0.14 (deploy/runtime-packages.txt) besides libc/libstdc++/libgcc_s.
release:
	@scripts/ensure-deps.sh build
	$(SWIFT) build -c release --static-swift-stdlib

# dist/ringgate-<version>-linux-<arch>.tar.gz: the binary, deploy/ringgate.service, README.md,
# LICENSE; the version is what the built binary's --version prints.
dist: release
	scripts/dist.sh $(RELEASE_BIN)

# The tarball on a bare Debian (debootstrap minbase + deploy/runtime-packages.txt, cached in
# .build/dist-root/): ldd, a publish -> SSE -> history round trip, `ringgate health`. Root only.
check-dist: release
	scripts/check-dist.sh "$$(scripts/dist.sh $(RELEASE_BIN))"

run: release
	$(RELEASE_BIN) serve $(ARGS)

# Unit tests (Swift Testing), the release tarball on a bare Debian (check-dist: its first run
# makes a debootstrap root, about a minute; later runs reuse it), the multi-process log
# stress, then the real binary on loopback with real clients (curl, httpx, httpx-sse).
test: release
	@scripts/ensure-deps.sh test
	$(SWIFT) test --disable-xctest
	scripts/check-dist.sh "$$(scripts/dist.sh $(RELEASE_BIN))"
	.build/release/ringlog-stress --records $(STRESS_RECORDS) --readers 2
	RINGGATE_TEST_IO=io_uring RINGGATE_BIN=$(abspath $(RELEASE_BIN)) .venv/bin/python -m pytest tests/integration -q
	RINGGATE_TEST_IO=epoll RINGGATE_BIN=$(abspath $(RELEASE_BIN)) .venv/bin/python -m pytest tests/integration -q

unit:
	@scripts/ensure-deps.sh build
	$(SWIFT) test --disable-xctest

stress: release
	.build/release/ringlog-stress --records $(STRESS_RECORDS) --readers 2

integration: release
	@scripts/ensure-deps.sh test
	RINGGATE_TEST_IO=io_uring RINGGATE_BIN=$(abspath $(RELEASE_BIN)) .venv/bin/python -m pytest tests/integration -q
	RINGGATE_TEST_IO=epoll RINGGATE_BIN=$(abspath $(RELEASE_BIN)) .venv/bin/python -m pytest tests/integration -q

# Autobahn WebSocket conformance (cases 1-11) against ringgate-wsecho, a test-only echo
# server built on the gateway's frame codec; prints the summary, fails on any FAILED case.
conformance:
	@scripts/ensure-deps.sh build
	conformance/run.sh

# libFuzzer on the WebSocket frame decoder and the HTTP request parser, FUZZ_SECONDS each.
FUZZ_SECONDS ?= 120
fuzz:
	@scripts/ensure-deps.sh build
	Fuzz/run.sh $(FUZZ_SECONDS)

# Ringgate side by side with nginx + nchan (installed from Debian when missing): every
# scenario, alternating, 3 repetitions; table on stdout, raw JSON + chart in bench/results/.
# ARGS=--quick runs each once with smaller N.
bench:
	bench/run.sh $(ARGS)

# Publish rate per --fsync setting (none, interval, always) on a file-backed log in /tmp.
bench-fsync: release
	bench/fsync.sh

# C100k on loopback: 100,000 SSE subscribers from 8 load processes (source addresses 127.0.0.2…9)
# on Ringgate and on nginx + nchan, 8 workers each; connect time, memory, idle CPU, one broadcast,
# a burst, and the same with 10 % stopped readers. ARGS go to bench/scale.py (--subs 20000, …).
bench-scale: release
	@command -v nginx >/dev/null && [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || bench/run.sh --deps-only
	python3 bench/scale.py $(ARGS)

# Instructions per single publish in the ingest (callgrind: stable on a shared machine), with
# the functions that cost most; installs valgrind when missing (as root).
bench-ingest: release
	bench/ingest/callgrind.sh

# A cluster on loopback: Redis, two `ringgate serve --upstream` hosts, haproxy in front
# (deploy/haproxy/haproxy.cfg); prints the URLs; Ctrl-C stops everything. ARGS go to both hosts.
cluster: release
	scripts/cluster.sh $(ARGS)

clean:
	rm -rf .build .venv
