# Ringgate: `make run` starts the gateway, `make test` runs every test.
SWIFT ?= swift
RELEASE_BIN := .build/release/ringgate
STRESS_RECORDS ?= 10000000

.PHONY: all build release run test unit stress integration clean

all: release

build:
	@scripts/ensure-deps.sh build
	$(SWIFT) build

release:
	@scripts/ensure-deps.sh build
	$(SWIFT) build -c release

run: release
	$(RELEASE_BIN) serve $(ARGS)

# Unit tests (Swift Testing), the multi-process log stress, then the real binary on loopback
# with real clients (curl, httpx, httpx-sse).
test: release
	@scripts/ensure-deps.sh test
	$(SWIFT) test --disable-xctest
	.build/release/ringlog-stress --records $(STRESS_RECORDS) --readers 2
	RINGGATE_BIN=$(abspath $(RELEASE_BIN)) .venv/bin/python -m pytest tests/integration -q

unit:
	@scripts/ensure-deps.sh build
	$(SWIFT) test --disable-xctest

stress: release
	.build/release/ringlog-stress --records $(STRESS_RECORDS) --readers 2

integration: release
	@scripts/ensure-deps.sh test
	RINGGATE_BIN=$(abspath $(RELEASE_BIN)) .venv/bin/python -m pytest tests/integration -q

clean:
	rm -rf .build .venv
