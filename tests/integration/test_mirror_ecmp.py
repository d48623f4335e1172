"""ECMP from the mirror: two equal-cost OSPF paths between two vnets carry flows both ways.

    h1 ── {p}r [red] e0 ══ epair ══ e0 [blue] {p}b ── h2
           192.0.2.0/28  e1 ══ epair ══ e1   192.0.2.32/28
           mirror {p}mr: zebra + ospfd       mirror {p}mb: zebra + ospfd

OSPF runs point-to-point on both epairs (198.51.100.0/30 and .4/30) with
hello 1 s and dead 4 s, at the same cost, so zebra installs each LAN's route
with a nexthop group of two paths, which the sync makes an ECMP vnet route.
UDP flows from h1 to h2 with 32 source ports are counted on red's e0 and e1:
both carry some.  When blue's OSPF falls silent on e1, red drops that path
within the dead interval and the flows keep to e0; destroying e1 does the
same at once.

Weights: routes a user adds in red's mirror with ``ip route ... nexthop ...
weight 3`` and with a weighted nexthop group (``group 901/902,3``) are synced
with their weights, shown by ``route show`` and followed: three flows in
four take the heavier path, as each path's own packet counter shows.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from birdlab import wait
from frrlab import FrrLab, routers, two_paths_v4
from harness import Vrouterd

pytestmark = pytest.mark.integration

TOPOLOGY = two_paths_v4()

OSPFD = """
hostname {router}
interface e0
 ip ospf network point-to-point
 ip ospf hello-interval 1
 ip ospf dead-interval 4
 ip ospf cost 10
interface e1
 ip ospf network point-to-point
 ip ospf hello-interval 1
 ip ospf dead-interval 4
 ip ospf cost 10
router ospf
 ospf router-id {rid}
 passive-interface {lan}
 network 198.51.100.0/29 area 0
 network {net} area 0
"""

FLOWS = """
import socket
for port in range(41000, 41032):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("192.0.2.2", port))
    for _ in range(10):
        s.sendto(bytes(32), ("192.0.2.34", 9))
    s.close()
"""


def _ospf(d: Vrouterd, vnet: str, prefix: str) -> dict[str, object] | None:
    rows = d.call("route.show", vnet=vnet, source="ospf")
    return next((r for r in rows if r["prefix"] == prefix), None)


def _paths(row: dict[str, object] | None) -> set[str]:
    if row is None:
        return set()
    nexthops = row.get("nexthops")
    if isinstance(nexthops, list):
        return {str(n["interface"]) for n in nexthops}
    return {str(row["interface"])}


def _sent(d: Vrouterd, names: tuple[str, ...]) -> dict[str, int]:
    """Send the flows from h1; return the frames red sent on ``names`` meanwhile."""

    def tx() -> dict[str, int]:
        return {name: d.counters("red", name)["tx_packets"] for name in names}

    before = tx()
    d.python("h1", "-c", FLOWS)
    sent: dict[str, int] = {}

    def forwarded() -> bool:
        sent.update((name, count - before[name]) for name, count in tx().items())
        return sum(sent.values()) >= 320  # the datagrams; ARP and OSPF frames come on top

    wait("the flows forwarded", forwarded, timeout=10)
    return sent


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vrouterd, FrrLab]]:
    d = Vrouterd(tmp_path_factory.mktemp("vrouterd"), TOPOLOGY)
    configs = {
        router: {"ospfd": OSPFD.format(router=router, rid=rid, lan=f"{d.prefix}{lan}", net=net)}
        for router, rid, lan, net in (
            ("mr", "198.51.100.1", "r", "192.0.2.0/28"),
            ("mb", "198.51.100.2", "b", "192.0.2.32/28"),
        )
    }
    with routers(d, configs) as frr:
        yield d, frr


def test_equal_cost_ospf_paths_become_ecmp_and_both_carry_flows(
    lab: tuple[Vrouterd, FrrLab],
) -> None:
    d, _ = lab
    wait(
        "both vnets' OSPF routes over two paths",
        lambda: _paths(_ospf(d, "red", "192.0.2.32/28")) == {"e0", "e1"}
        and _paths(_ospf(d, "blue", "192.0.2.0/28")) == {"e0", "e1"},
        timeout=60,
    )
    shown = d.ctl("route", "show", "red")
    assert "198.51.100.2" in shown.stdout and "198.51.100.6" in shown.stdout, shown.stdout
    ping = d.exec("h1", "ping", "-c", "2", "-i", "0.2", "-W", "2", "192.0.2.34", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    sent = _sent(d, ("e0", "e1"))
    assert min(sent.values()) >= 60, sent  # each path carries flows


WEIGHTED_FLOWS = """
import socket
for port in range(42000, 42128):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("192.0.2.2", port))
    for dst in ("203.0.113.9", "203.0.113.137"):
        s.sendto(bytes(32), (dst, 9))
    s.close()
"""


def _path_use(d: Vrouterd, prefix: str) -> dict[str, tuple[int, int]]:
    """Return the (weight, packets) of each path of red's bird route to ``prefix``."""
    rows = d.call("route.show", vnet="red", source="bird")
    row = next((r for r in rows if r["prefix"] == prefix), None)
    if row is None or not row.get("nexthops"):
        return {}
    return {str(n["interface"]): (int(n["weight"]), int(n["use"])) for n in row["nexthops"]}


def test_weighted_paths_from_the_mirror_share_flows_by_weight(
    lab: tuple[Vrouterd, FrrLab],
) -> None:
    d, _ = lab
    wait("the LAN routes over two paths",
         lambda: _paths(_ospf(d, "red", "192.0.2.32/28")) == {"e0", "e1"}, timeout=60)  # fmt: skip
    # Inline weights (rtnh_hops) for one half, a weighted nexthop group for the other.
    d.exec("mr", "ip", "route", "add", "203.0.113.0/25", "proto", "bird",
           "nexthop", "via", "198.51.100.2", "dev", "e0", "weight", "3",
           "nexthop", "via", "198.51.100.6", "dev", "e1", "weight", "1")  # fmt: skip
    d.exec("mr", "ip", "nexthop", "add", "id", "901", "via", "198.51.100.2", "dev", "e0")
    d.exec("mr", "ip", "nexthop", "add", "id", "902", "via", "198.51.100.6", "dev", "e1")
    d.exec("mr", "ip", "nexthop", "add", "id", "903", "group", "901/902,3")
    d.exec("mr", "ip", "route", "add", "203.0.113.128/25", "proto", "bird", "nhid", "903")
    try:
        wait("both weighted routes synced",
             lambda: _path_use(d, "203.0.113.0/25") and _path_use(d, "203.0.113.128/25"),
             timeout=10)  # fmt: skip
        assert {n: w for n, (w, _) in _path_use(d, "203.0.113.0/25").items()} == {"e0": 3, "e1": 1}
        assert {n: w for n, (w, _) in _path_use(d, "203.0.113.128/25").items()} == {
            "e0": 1, "e1": 3}  # fmt: skip
        shown = d.ctl("route", "show", "red")
        assert "Weight" in shown.stdout and "multipath" in shown.stdout, shown.stdout
        d.python("h1", "-c", WEIGHTED_FLOWS)

        def counted() -> bool:
            return all(sum(u for _, u in _path_use(d, p).values()) >= 128
                       for p in ("203.0.113.0/25", "203.0.113.128/25"))  # fmt: skip

        wait("the flows forwarded and counted per path", counted, timeout=10)
        low = _path_use(d, "203.0.113.0/25")
        high = _path_use(d, "203.0.113.128/25")
        assert 0.6 <= low["e0"][1] / 128 <= 0.9, low  # three flows in four
        assert 0.6 <= high["e1"][1] / 128 <= 0.9, high
    finally:
        d.exec("mr", "ip", "route", "flush", "proto", "bird", check=False)
        for nh in ("903", "902", "901"):
            d.exec("mr", "ip", "nexthop", "del", "id", nh, check=False)


def _ospf_config(d: Vrouterd, router: str, line: str) -> None:
    d.exec(router, "vtysh", "-N", d.ns(router), "-c", "configure terminal",
           "-c", "router ospf", "-c", line)  # fmt: skip


def test_a_silent_path_is_dropped_within_the_dead_interval(lab: tuple[Vrouterd, FrrLab]) -> None:
    d, _ = lab
    wait("ECMP", lambda: _paths(_ospf(d, "red", "192.0.2.32/28")) == {"e0", "e1"}, timeout=60)
    _ospf_config(d, "mb", "passive-interface e1")  # blue's hellos on e1 stop: red must notice
    try:
        wait(
            "red's OSPF route over e0 alone",
            lambda: _paths(_ospf(d, "red", "192.0.2.32/28")) == {"e0"},
            timeout=4 + 3,  # the dead interval, SPF and the sync
        )
        sent = _sent(d, ("e0", "e1"))
        assert sent["e1"] <= 10, sent  # red's own OSPF hellos only
    finally:
        _ospf_config(d, "mb", "no passive-interface e1")


def test_a_path_taken_away_moves_the_flows_to_the_other(lab: tuple[Vrouterd, FrrLab]) -> None:
    d, frr = lab
    wait("ECMP", lambda: _paths(_ospf(d, "red", "192.0.2.32/28")) == {"e0", "e1"}, timeout=60)
    done = d.ctl("interface", "destroy", "red", "e1")
    assert done.returncode == 0, done.stderr
    wait(
        "the OSPF route over e0 alone",
        lambda: _paths(_ospf(d, "red", "192.0.2.32/28")) == {"e0"}
        and _paths(_ospf(d, "blue", "192.0.2.0/28")) == {"e0"},
        timeout=4 + 4,  # the dead interval, and the sync's reaction
    )
    assert _sent(d, ("e0",))["e0"] >= 320
    assert "e1" not in frr.vtysh("mr", "show ip route 192.0.2.32/28")
