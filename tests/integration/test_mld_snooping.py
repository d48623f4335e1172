"""A vnet behind a snooping Linux bridge: its MLD and IGMP reports keep its groups there.

::

    [vnet red] 2001:db8:1::1/64 ==TAP== {p}sw: bridge {p}br ==veth== {p}h 2001:db8:1::2/64
     forwarding on                      mcast_snooping 1, mcast_querier 1,
                                        membership interval 5 s, queries every 2 s

The bridge forwards a group's traffic only to the ports that reported it,
and forgets a port that stops reporting after the membership interval.
The vnet's groups (its solicited-node groups, all-routers) must stay in
``bridge mdb show`` past that interval, answered query after query, and a
host on the bridge still resolves and pings the vnet, also at its
Subnet-Router anycast address (RFC 4291 2.6.1).  An IPv4 group a socket of
the vnet joins is reported by IGMP the same way, and left when the socket
closes.  The bridge's querier speaks MLDv2 and IGMPv3, or MLDv1 and IGMPv2.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, run

from vrouter.client import Client

pytestmark = pytest.mark.integration

CONFIG = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
log_level = "debug"

[vnets.red.interfaces.{p}r]
type = "tap"
addresses = ["2001:db8:1::1/64", "2001:db8:2::1/64"]
host = {{ netns = "{p}sw", addresses = ["192.0.2.250/24"] }}
"""

MEMBERSHIP_INTERVAL = 5.0


@pytest.fixture(params=[2, 1], ids=["mldv2", "mldv1"])
def lan(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Vrouterd]:
    daemon = Vrouterd(tmp_path, CONFIG)
    try:
        daemon.start()
        daemon.wait_ipv6()
        sw, host = daemon.ns("sw"), daemon.ns("h")
        br, tap, ha, hb = daemon.tap("br"), daemon.tap("r"), daemon.tap("ha"), daemon.tap("hb")
        run("ip", "netns", "add", host)
        # Timers in centiseconds: membership 5 s, a query every 2 s answered within 1 s.
        run(
            "ip", "-n", sw, "link", "add", br, "type", "bridge", "mcast_snooping", "1",
            "mcast_querier", "1", "mcast_mld_version", str(request.param),
            "mcast_igmp_version", str(request.param + 1),
            "mcast_membership_interval", str(int(MEMBERSHIP_INTERVAL * 100)),
            "mcast_query_interval", "200", "mcast_query_response_interval", "100",
            "mcast_startup_query_interval", "100",
        )  # fmt: skip
        run("ip", "link", "add", ha, "type", "veth", "peer", hb)
        run("ip", "link", "set", ha, "netns", sw)
        run("ip", "link", "set", hb, "netns", host)
        run("ip", "-n", sw, "link", "set", tap, "master", br)
        run("ip", "-n", sw, "link", "set", ha, "master", br)
        for ifname in (br, ha):
            run("ip", "-n", sw, "link", "set", ifname, "up")
        run("ip", "-n", host, "addr", "add", "2001:db8:1::2/64", "dev", hb, "nodad")
        run("ip", "-n", host, "link", "set", hb, "up")
        yield daemon
    finally:
        daemon.close()


def _wait_for(daemon: Vrouterd, present: bool, *groups: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (set(groups) <= _groups(daemon)) != present:
        time.sleep(0.3)
    assert (set(groups) <= _groups(daemon)) == present, run(
        "bridge", "-n", daemon.ns("sw"), "mdb", "show"
    ).stdout


def _groups(daemon: Vrouterd) -> set[str]:
    """Return the groups the bridge's MDB holds for the vnet's port."""
    out = run("bridge", "-n", daemon.ns("sw"), "mdb", "show").stdout
    port = daemon.tap("r")
    return set(re.findall(rf"port {re.escape(port)} grp (\S+)", out))


def _ping(daemon: Vrouterd, target: str) -> str:
    result = daemon.exec(
        "h", "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", target, timeout=60, check=False
    )
    match = re.search(r"(\d+) received", result.stdout)
    assert match and match.group(1) == "3", result.stdout + result.stderr
    return result.stdout


def test_bridge_mdb_keeps_the_vnets_groups_and_nd_keeps_working(lan: Vrouterd) -> None:
    wanted = {"ff02::1:ff00:1", "ff02::2"}  # 2001:db8:1::1, 2001:db8:2::1; all-routers
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not wanted <= _groups(lan):
        time.sleep(0.3)
    assert wanted <= _groups(lan), run("bridge", "-n", lan.ns("sw"), "mdb", "show").stdout
    # Past the membership interval the entries are there only if refreshed.
    time.sleep(MEMBERSHIP_INTERVAL + 2)
    assert wanted <= _groups(lan), run("bridge", "-n", lan.ns("sw"), "mdb", "show").stdout
    lan.exec("h", "ip", "-6", "neigh", "flush", "all")  # resolve afresh: an NS to the group
    _ping(lan, "2001:db8:1::1")
    stats = lan.call("netstat", vnet="red")["icmp6"]
    assert stats["in_mld_queries"] >= 2 and stats["out_mld_reports"] >= 2, stats
    assert stats["mld_bad"] == 0


def test_subnet_router_anycast_answers_ping6(lan: Vrouterd) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "ff02::1:ff00:0" not in _groups(lan):
        time.sleep(0.3)
    assert "ff02::1:ff00:0" in _groups(lan)  # the anycast address's solicited-node group
    out = _ping(lan, "2001:db8:1::")
    assert "from 2001:db8:1::" in out, out
    neigh = lan.exec("h", "ip", "-6", "neigh", "show", "2001:db8:1::").stdout
    mac = next(i["mac"] for i in lan.call("ifconfig", vnet="red") if i["name"] == lan.tap("r"))
    assert mac.lower() in neigh.lower(), neigh


def test_ipv4_group_a_socket_joins_is_reported_and_left_on_close(lan: Vrouterd) -> None:
    with Client(lan.socket) as client:
        sock = client.socket("red", socket.AF_INET)
        sock.bind(("0.0.0.0", 5000))
        sock.join_group("239.1.2.3", lan.tap("r"))
        _wait_for(lan, True, "239.1.2.3")
        time.sleep(MEMBERSHIP_INTERVAL + 2)  # kept only by answering the queries
        _wait_for(lan, True, "239.1.2.3", timeout=1)
        sock.close()
        _wait_for(lan, False, "239.1.2.3", timeout=15)
    stats = lan.call("netstat", vnet="red")["igmp"]
    assert stats["rcv_queries"] >= 2 and stats["snd_reports"] >= 3, stats
    assert stats["rcv_bad"] == 0
