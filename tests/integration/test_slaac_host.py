"""A host vnet configuring itself from a Linux router's radvd (SLAAC, default router, DNS).

::

    [vnet host] ==TAP== {p}rt: Linux router, radvd ==veth== {p}far 2001:db8:77::2
     forwarding off      2001:db8:5::1/64                  (default via the router)
     accept_rtadv on

The vnet takes an address in 2001:db8:5::/64, the router as its default
route, the RDNSS and DNSSL options and the MTU from radvd's advertisements;
a ping from the far host reaches it (its replies leave by the learnt
default route), and the vnet's own echo request (a raw ICMPv6 socket of the
vnet) reaches the far host.  radvd stopping sends router lifetime 0: the route goes.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Vrouterd, ping_received, run

from vrouter.client import Client

pytestmark = pytest.mark.integration

CONFIG = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
log_level = "debug"

[vnets.host]
forwarding = false

[vnets.host.sysctl]
"net.inet6.ip6.accept_rtadv" = true

[vnets.host.interfaces.{p}h]
type = "tap"
addresses = ["192.0.2.10/24"]
host = {{ netns = "{p}rt", addresses = ["192.0.2.1/24", "2001:db8:5::1/64"] }}
"""

RADVD = """
interface {tap} {{
    AdvSendAdvert on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 4;
    AdvDefaultLifetime 600;
    AdvLinkMTU 1400;
    prefix 2001:db8:5::/64 {{
        AdvOnLink on;
        AdvAutonomous on;
        AdvValidLifetime 3600;
        AdvPreferredLifetime 1800;
    }};
    RDNSS 2001:db8:5::53 {{ AdvRDNSSLifetime 600; }};
    DNSSL example.com lab.example.org {{ AdvDNSSLLifetime 600; }};
}};
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Vrouterd, subprocess.Popen[bytes]]]:
    daemon = Vrouterd(tmp_path, CONFIG)
    radvd: subprocess.Popen[bytes] | None = None
    try:
        daemon.start()
        daemon.wait_ipv6()
        rt, far, tap = daemon.ns("rt"), daemon.ns("far"), daemon.tap("h")
        run("ip", "netns", "add", far)
        run("ip", "link", "add", daemon.tap("v0"), "type", "veth", "peer", daemon.tap("v1"))
        run("ip", "link", "set", daemon.tap("v0"), "netns", rt)
        run("ip", "link", "set", daemon.tap("v1"), "netns", far)
        run("ip", "netns", "exec", rt, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        for ns, ifname, address in (
            (rt, daemon.tap("v0"), "2001:db8:77::1/64"),
            (far, daemon.tap("v1"), "2001:db8:77::2/64"),
        ):
            run("ip", "-n", ns, "addr", "add", address, "dev", ifname, "nodad")
            run("ip", "-n", ns, "link", "set", ifname, "up")
        run("ip", "-n", far, "link", "set", "lo", "up")
        run("ip", "-n", far, "-6", "route", "add", "default", "via", "2001:db8:77::1")
        conf = daemon.dir / "radvd.conf"
        conf.write_text(RADVD.format(tap=tap))
        with (daemon.dir / "radvd.log").open("ab") as log:
            radvd = subprocess.Popen(
                [
                    "ip", "netns", "exec", rt, "radvd", "-n", "-m", "stderr", "-d", "1",
                    "-C", str(conf), "-p", str(daemon.dir / "radvd.pid"),
                ],
                stdout=log,
                stderr=log,
            )  # fmt: skip
        yield daemon, radvd
    finally:
        if radvd is not None and radvd.poll() is None:
            radvd.kill()
            radvd.wait(10)
        daemon.close()


def _learnt(daemon: Vrouterd, ready: Any, what: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        shown = daemon.call("rtadv.show", vnet="host")
        if ready(shown):
            return shown
        time.sleep(0.2)
    radvd_log = (daemon.dir / "radvd.log").read_text(errors="replace")
    raise AssertionError(f"no {what}: {shown}\nradvd:\n{radvd_log}")


def _received(result: subprocess.CompletedProcess[str]) -> int:
    return ping_received(result.stdout + result.stderr)


def _ping_from_far(daemon: Vrouterd, address: str, count: int = 3) -> int:
    result = run(
        "ip", "netns", "exec", daemon.ns("far"), "ping", "-6", "-c", str(count), "-i", "0.2",
        "-W", "2", address, timeout=60, check=False,
    )  # fmt: skip
    return _received(result)


def _ping_from_vnet(daemon: Vrouterd, target: str) -> str:
    """Send an echo request from the vnet by a raw ICMPv6 socket; return the reply's
    destination (the vnet's source address)."""
    request = bytes([128, 0, 0, 0, 0x12, 0x34, 0, 1]) + b"ping from a vnet"
    with (
        Client(daemon.socket) as client,
        client.socket("host", socket.AF_INET6, socket.SOCK_RAW, 58) as sock,
    ):
        sock.settimeout(5)
        for _ in range(3):
            sock.sendto(request, target)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    data, address, info = sock.recvmsg_info()
                except TimeoutError:
                    break
                if data[0] == 129 and data[4:] == request[4:]:
                    assert address[0] == target
                    return info.dst
    raise AssertionError(f"no echo reply from {target}")


def test_host_vnet_autoconfigures_from_radvd_and_is_reached_through_its_default_router(
    lab: tuple[Vrouterd, subprocess.Popen[bytes]],
) -> None:
    daemon, radvd = lab
    shown = _learnt(
        daemon,
        lambda s: any(a["state"] == "preferred" for a in s["addresses"]) and s["routers"],
        "preferred address and router",
    )
    [addr] = shown["addresses"]
    assert addr["address"].startswith("2001:db8:5:0:") and addr["address"].endswith("/64")
    assert 3500 < addr["expires"] <= 3600 and 1700 < addr["preferred"] <= 1800
    [router] = shown["routers"]
    assert router["address"].startswith("fe80::") and router["default"] is True
    assert [d["address"] for d in shown["dns"]] == ["2001:db8:5::53"]
    assert [d["domain"] for d in shown["search"]] == ["example.com", "lab.example.org"]
    assert shown["mtu"] == {daemon.tap("h"): 1400}
    routes = daemon.call("route.show", vnet="host", family="inet6")
    assert {"prefix": "::/0", "gateway": router["address"], "source": "ra"}.items() <= next(
        r for r in routes if r["prefix"] == "::/0"
    ).items()
    text = daemon.ctl("rtadv", "show", "host").stdout
    assert "2001:db8:5::53" in text and "example.com" in text and router["address"] in text
    address = addr["address"].split("/")[0]
    ifaces = {i["name"]: i for i in daemon.call("ifconfig", vnet="host")}
    assert {"address": addr["address"], "state": "preferred", "scope": "global"} in ifaces[
        daemon.tap("h")
    ]["inet6"]
    # The far host's ping crosses the router; the vnet's replies go by the learnt route.
    assert _ping_from_far(daemon, address) == 3
    assert _ping_from_vnet(daemon, "2001:db8:77::2") == address
    # radvd stopping advertises router lifetime 0 (RFC 4861 6.2.5): the route goes.
    radvd.send_signal(signal.SIGTERM)
    radvd.wait(15)
    _learnt(daemon, lambda s: not s["routers"], "router removal", timeout=15)
    routes = daemon.call("route.show", vnet="host", family="inet6")
    assert all(r["prefix"] != "::/0" for r in routes), routes
    assert _ping_from_far(daemon, address, 2) == 0
    stats = daemon.call("netstat", vnet="host")["icmp6"]
    assert stats["ra_routers"] == 1 and stats["ra_router_expired"] == 1
    assert stats["slaac_addresses"] == 1 and stats["out_rs"] >= 1
