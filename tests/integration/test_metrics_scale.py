"""A scrape of a daemon with thousands of vnets leaves forwarding running.

The daemon holds ``VNETS`` vnets: ``core`` forwards between two TAP hosts
(192.0.2.0/24 and 198.51.100.0/24), the others are pairs joined by epairs.
A ping crosses ``core`` every 10 ms while the exporter is scraped
``SCRAPES`` times: no request may be lost and the worst RTT stays bounded
(built in one go, such a scrape stalled the loop for seconds).  Everything
is bounded in time; the daemon and its namespaces are removed at the end.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest
from harness import Vrouterd

pytestmark = pytest.mark.integration

VNETS = 3000
SCRAPES = 3
WORST_RTT_MS = 250.0
"""Far below the seconds an unpaced scrape of this many vnets holds the loop, far
above what a busy shared machine adds by itself."""

HEAD = """\
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
log_level = "info"
metrics = "127.0.0.1:@PORT@"

[vnets.core]
forwarding = true

[vnets.core.interfaces.{p}a]
type = "tap"
addresses = ["192.0.2.1/24"]
host = {{ netns = "{p}h1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.1" }}

[vnets.core.interfaces.{p}b]
type = "tap"
addresses = ["198.51.100.1/24"]
host = {{ netns = "{p}h2", addresses = ["198.51.100.2/24"], gateway = "198.51.100.1" }}
"""
PAIR = """
[vnets.s{a}.interfaces.ep0]
type = "epair"
peer = "s{b}:ep0"
addresses = ["203.0.113.1/30"]

[vnets.s{b}.interfaces.ep0]
type = "epair"
peer = "s{a}:ep0"
addresses = ["203.0.113.2/30"]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def template(port: int) -> str:
    pairs = "".join(PAIR.format(a=f"{i:05d}", b=f"{i + 1:05d}") for i in range(0, VNETS - 2, 2))
    return HEAD.replace("@PORT@", str(port)) + pairs + "\n[vnets.lone]\n"


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vrouterd, int]]:
    port = free_port()
    daemon = Vrouterd(tmp_path_factory.mktemp("vrouterd"), template=template(port))
    try:
        daemon.start(timeout=300)
        yield daemon, port
    finally:
        try:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.stop(timeout=120)
        finally:
            daemon.cleanup()


def scrape(port: int, gzip: bool = False) -> bytes:
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=120) as reply:
        assert reply.status == 200
        return bytes(reply.read())


def test_pings_through_a_vnet_keep_their_rtt_during_scrapes(big: tuple[Vrouterd, int]) -> None:
    daemon, port = big
    deadline = time.monotonic() + 60
    while daemon.exec("h1", "ping", "-c", "1", "-W", "1", "198.51.100.2", check=False).returncode:
        assert time.monotonic() < deadline, "198.51.100.2 not reachable through vnet core"
    ping = subprocess.Popen(
        ["ip", "netns", "exec", daemon.ns("h1"), "ping", "-n", "-i", "0.01", "-W", "1",
         "-w", "300", "198.51.100.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        sizes = [len(scrape(port, gzip=i % 2 == 1)) for i in range(SCRAPES)]
        time.sleep(0.5)
    finally:
        ping.send_signal(signal.SIGINT)
        out, _ = ping.communicate(timeout=30)
    rtts = {int(s): float(t) for s, t in re.findall(r"icmp_seq=(\d+) ttl=\d+ time=([\d.]+)", out)}
    assert rtts, out
    lost = [seq for seq in range(1, max(rtts)) if seq not in rtts]
    assert not lost, f"{len(lost)} of {max(rtts)} pings lost during the scrapes"
    assert max(rtts.values()) < WORST_RTT_MS, sorted(rtts.values())[-10:]
    assert sizes[0] > 100 * VNETS * 50  # ~200 series of ~50 bytes per vnet
    assert sizes[1] * 5 < sizes[0]  # gzip
    # The exporter says how it paced the last one, and that it took many loop passes.
    text = scrape(port).decode()
    passes = re.search(r"^vrouter_scrape_loop_passes (\S+)$", text, re.M)
    assert passes is not None and float(passes.group(1)) > 50
    assert f"vrouter_vnets {VNETS}.0" in text


def test_the_scrape_checks_clean(big: tuple[Vrouterd, int]) -> None:
    _, port = big
    text = scrape(port).decode()
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
