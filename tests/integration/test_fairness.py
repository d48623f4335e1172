"""One vnet under a flood or a neighbour scan; forwarding elsewhere stays prompt.

One daemon, one worker, two vnets: ``a`` between hosts a1 and a2 (and a3 on
198.18.0.0/15 and 2001:db8:5ca::/64, where nobody answers ARP or ND beyond
a3 itself), ``b`` between b1 and b2 with the same addresses.  Every load is
bounded in count and time, and runs in the hosts' own namespaces.
"""

from __future__ import annotations

import re
import statistics
import subprocess
from collections.abc import Iterator

import pytest
from harness import Vrouterd, python, running

pytestmark = pytest.mark.integration

TEMPLATE = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
log_level = "info"

[vnets.a.interfaces.{p}a1]
type = "tap"
addresses = ["192.0.2.1/24", "2001:db8:a::1/64"]
host = {{ netns = "{p}a1", addresses = ["192.0.2.2/24", "2001:db8:a::2/64"], \
gateway = "192.0.2.1", gateway6 = "2001:db8:a::1" }}

[vnets.a.interfaces.{p}a2]
type = "tap"
addresses = ["198.51.100.1/24", "2001:db8:b::1/64"]
host = {{ netns = "{p}a2", addresses = ["198.51.100.2/24", "2001:db8:b::2/64"], \
gateway = "198.51.100.1", gateway6 = "2001:db8:b::1" }}

[vnets.a.interfaces.{p}a3]
type = "tap"
addresses = ["198.18.0.1/15", "2001:db8:5ca::1/64"]
host = {{ netns = "{p}a3", addresses = ["198.18.0.2/15", "2001:db8:5ca::2/64"] }}

[vnets.b.interfaces.{p}b1]
type = "tap"
addresses = ["192.0.2.1/24"]
host = {{ netns = "{p}b1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.1" }}

[vnets.b.interfaces.{p}b2]
type = "tap"
addresses = ["198.51.100.1/24"]
host = {{ netns = "{p}b2", addresses = ["198.51.100.2/24"], gateway = "198.51.100.1" }}
"""

FLOOD = r"""
import socket, sys, time
limit, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("198.51.100.2", 9))
payload = bytes(18)
sent = 0
end = time.monotonic() + seconds
while sent < limit and time.monotonic() < end:
    for _ in range(256):
        try:
            s.send(payload)
        except OSError:
            pass
    sent += 256
print(sent)
"""
"""64-byte frames as fast as one Python loop sends them, bounded in count and time."""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    yield from running(Vrouterd(tmp_path_factory.mktemp("vrouterd"), TEMPLATE))


def _rtts(result: subprocess.CompletedProcess[str]) -> list[float]:
    return [float(m) for m in re.findall(r"time=([\d.]+) ms", result.stdout)]


def _ping(lab: Vrouterd, host: str, target: str, count: int = 40) -> list[float]:
    result = lab.exec(host, "ping", "-n", "-c", str(count), "-i", "0.02", "-W", "1", target,
                      check=False, timeout=60)  # fmt: skip
    return _rtts(result)


def _load(lab: Vrouterd, host: str, script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", lab.ns(host), *python("-c", script, *args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    return out


def test_a_flood_into_one_vnet_leaves_another_vnets_ping_prompt(lab: Vrouterd) -> None:
    assert len(_ping(lab, "b1", "198.51.100.2", count=3)) == 3
    assert len(_ping(lab, "a1", "198.51.100.2", count=3)) == 3
    idle = statistics.median(_ping(lab, "b1", "198.51.100.2"))
    before = lab.counters("a", lab.tap("a1"))
    flood = _load(lab, "a1", FLOOD, "5000000", "8")
    series: list[list[float]] = []
    try:
        # Up to three series of 40 pings while the flood lasts: a busy test
        # machine can take the one worker's CPU away for milliseconds, which
        # no scheduling inside it can help; the best series shows its own.
        for _ in range(3):
            series.append(_ping(lab, "b1", "198.51.100.2"))
            if statistics.median(series[-1] or [float("inf")]) <= max(5 * idle, 2.0):
                break
    finally:
        sent = int(_finish(flood))
    after = lab.counters("a", lab.tap("a1"))
    read = after["rx_packets"] - before["rx_packets"]
    overload = after["rx_drops"].get("rx_overload", 0) - before["rx_drops"].get("rx_overload", 0)
    p50s = [statistics.median(s) if s else float("inf") for s in series]
    print(f"flood: {sent} sent, {read} read by vnet a, {overload} dropped by the kernel "
          f"(rx_overload); vnet b ping p50 idle {idle:.3f} ms, flooded "
          f"{', '.join(f'{p:.3f}' for p in p50s)} ms")  # fmt: skip
    best = min(range(len(series)), key=lambda i: p50s[i])
    assert len(series[best]) >= 36, "vnet b lost its pings during the flood"
    # One worker's share of a flood is one 100 us quantum per loop pass;
    # the old 256-frame batches held vnet b for 4-8 ms each.
    assert p50s[best] <= max(5 * idle, 2.0)
    assert read > 0
    assert read + overload <= sent


SCAN = r"""
import random, socket, sys, time
six, count, seconds = sys.argv[1] == "6", int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_DGRAM)
rng = random.Random(14)
sent = 0
end = time.monotonic() + seconds
while sent < count and time.monotonic() < end:
    if six:
        host = rng.getrandbits(64).to_bytes(8, "big")
        dst = socket.inet_ntop(socket.AF_INET6, bytes.fromhex("20010db805ca0000") + host)
    else:
        dst = socket.inet_ntoa((0xC6120000 | rng.getrandbits(17)).to_bytes(4, "big"))
    try:
        s.sendto(b"scan", (dst, 9))
    except OSError:
        pass
    sent += 1
    if sent % 100 == 0:
        time.sleep(0.01)  # about 10,000 a second at most
print(sent)
"""
"""UDP to random addresses of 198.18.0.0/15 or 2001:db8:5ca::/64, bounded in count and time."""


@pytest.mark.parametrize(
    ("family", "target", "table", "settings"),
    [
        # the rate limit off: the cap on incomplete entries is what holds
        ("4", "198.51.100.2", "arp",
         {"net.link.ether.inet.request_rate": 0, "net.link.ether.inet.max_incomplete": 64}),
        # the defaults: the solicitation rate is what holds
        ("6", "2001:db8:b::2", "ndp", {}),
    ],
    ids=["arp", "nd"],
)  # fmt: skip
def test_a_neighbour_scan_leaves_resolved_neighbours_forwarding(
    lab: Vrouterd, family: str, target: str, table: str, settings: dict[str, int]
) -> None:
    flag = f"-{family}"
    assert lab.exec("a1", "ping", flag, "-c", "2", "-W", "2", target, check=False).returncode == 0
    idle = statistics.median(_ping(lab, "a1", target) or [float("inf")])
    prefix = "net.link.ether.inet" if family == "4" else "net.inet6.nd6"
    names = [f"{prefix}.max_incomplete", *settings]
    saved = {k["name"]: k["value"] for k in lab.call("sysctl.get", vnet="a", names=names)}
    if settings:
        lab.call("sysctl.set", vnet="a", settings=settings)
    cap = int(settings.get(f"{prefix}.max_incomplete", saved[f"{prefix}.max_incomplete"]))
    scan = _load(lab, "a1", SCAN, family, "40000", "5")
    peak = 0
    try:
        loaded = lab.exec("a1", "ping", flag, "-n", "-c", "40", "-i", "0.02", "-W", "1", target,
                          check=False, timeout=60)  # fmt: skip
        shown = lab.call(f"{table}.show", vnet="a")
        resolving = [e for e in shown if e["state"] == "incomplete"]
        peak = len(resolving)
    finally:
        sent = int(_finish(scan))
        lab.call("sysctl.set", vnet="a", settings=saved)
    rtts = _rtts(loaded)
    stats = lab.call("netstat", vnet="a")
    counters = stats["arp"] if family == "4" else stats["icmp6"]
    refused = {k: v for k, v in counters.items() if "full" in k or "ratelimited" in k}
    p50 = statistics.median(rtts) if rtts else float("inf")
    print(f"{table} scan: {sent} sent, {peak} incomplete seen (cap {cap}), refused {refused}; "
          f"ping p50 idle {idle:.3f} ms, scanned {p50:.3f} ms")  # fmt: skip
    assert len(rtts) >= 36, "the resolved neighbour stopped answering during the scan"
    assert p50 <= max(5 * idle, 4.0)
    assert peak <= cap
    assert sum(refused.values()) > 0
