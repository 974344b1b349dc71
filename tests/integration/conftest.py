"""Fixtures for Ringgate's real-binary tests. The helpers themselves live in rgtest.py."""
from __future__ import annotations

import pytest

import rgtest
from rgtest import Gateway


def pytest_report_header(config):
    return f"ringgate I/O backend: {rgtest.IO_BACKEND or 'the binary default (auto)'} (RINGGATE_TEST_IO)"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    rgtest.TEST_GATEWAYS.clear()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of every involved gateway's stderr to the report."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    gws = list(dict.fromkeys(list(rgtest.TEST_GATEWAYS) + sorted(rgtest.LIVE_GATEWAYS, key=lambda g: g.name)))
    for gw in gws:
        rep.sections.append((f"ringgate stderr tail [{gw.name}] {gw.stderr_path}", gw.stderr_tail()))


@pytest.fixture(scope="session")
def ringgate_bin():
    path = rgtest.binary_path()
    if not path.is_file():
        pytest.skip(f"no ringgate binary at {path} (build it, or set RINGGATE_BIN)")
    return path


@pytest.fixture
def gateway(ringgate_bin, tmp_path, request):
    """Factory: gateway("--heartbeat", "1s", workers=2, data_dir=None) -> a started Gateway.

    Ephemeral log unless data_dir is given. Every gateway is torn down after the test
    (SIGTERM, 10 s, then SIGKILL of its process group), whatever the outcome.
    """
    started: list[Gateway] = []

    def start(*flags: str, workers: int = 2, data_dir=None, name: str | None = None, prefix=()) -> Gateway:
        gw = Gateway(flags, workers=workers, data_dir=data_dir, log_dir=tmp_path,
                     name=name or f"{request.node.name[:40]}-{len(started)}", binary=ringgate_bin,
                     prefix=prefix)
        started.append(gw)
        rgtest.TEST_GATEWAYS.append(gw)
        return gw.start()

    yield start
    for gw in started:
        gw.close()


def pytest_sessionfinish(session, exitstatus):
    """Safety net: nothing started by this suite outlives it."""
    for gw in list(rgtest.LIVE_GATEWAYS):
        gw.close()


# =============================================================================
# Slow, stalled, half-open and hostile clients (fixtures for test_slow_*.py).
# Additions only: nothing above this line depends on anything below it.
# =============================================================================

@pytest.fixture
def netns_peer():
    """A network namespace + veth pair with a private /30 (10.213.7.1 host, 10.213.7.2 inside).

    Fails (does not skip) when namespaces cannot be created: these tests run as root.
    Always removed afterwards, whatever the outcome.
    """
    peer = rgtest.NetnsPeer()
    try:
        peer.setup()
    except (OSError, FileNotFoundError) as e:
        peer.close()
        pytest.fail(f"cannot create a network namespace + veth pair ({e}); this test needs root with "
                    f"CAP_SYS_ADMIN (ip netns add) and CAP_NET_ADMIN (veth, addresses, link state), "
                    f"and the `ip` tool from iproute2", pytrace=False)
    try:
        yield peer
    finally:
        peer.close()
