"""Real-traffic fixtures: a vrouterd with TAP hosts in network namespaces.

Teardown stops the daemon and removes any namespace or interface with the
run's prefix, even when a test failed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, running

TOOLS = (
    "ip",
    "ping",
    "traceroute",
    "traceroute6",
    "tracepath",
    "iperf3",
    "curl",
    "rdisc6",
    "ndisc6",
    "bird",
    "vtysh",
    "tcpdump",
    "ethtool",
    "nsenter",
)


@pytest.fixture(scope="session", autouse=True)
def _need_root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces and TAP devices)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"integration tests need {', '.join(missing)}: run the README's test command")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    """One daemon on the demo topology, shared by a module's tests."""
    yield from running(Vrouterd(tmp_path_factory.mktemp("vrouterd")))


@pytest.fixture
def fresh_daemon(tmp_path: Path) -> Iterator[Vrouterd]:
    """A daemon (not started) for lifecycle tests, cleaned up afterwards."""
    daemon = Vrouterd(tmp_path)
    try:
        yield daemon
    finally:
        daemon.cleanup()


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    """The demo topology with a 1280-byte MTU on the epair between the vnets."""
    yield from running(Vrouterd(tmp_path_factory.mktemp("vrouterd"), epair_mtu=1280))


@pytest.fixture(scope="module")
def open_workdir() -> Iterator[Path]:
    """A directory other users can traverse (pytest's own tmp dirs are 0700), for a daemon
    whose control socket tests reach as other users."""
    path = Path(tempfile.mkdtemp(prefix="vrouter-open-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
