"""IPv6 ECMP from the mirror: two equal-cost OSPFv3 paths between two vnets carry flows.

    h1 ── {p}r [red] e0 ══ epair ══ e0 [blue] {p}b ── h2
       2001:db8:1::/64  e1 ══ epair ══ e1  2001:db8:2::/64
           mirror {p}mr: zebra + ospf6d      mirror {p}mb: zebra + ospf6d

FRR's ospf6d runs point-to-point on both epairs (hello 1 s, dead 4 s, the
same cost), speaking from the representors' link-local addresses to
ff02::5, so zebra installs each LAN's route with two link-local next hops
(a nexthop group), which the sync makes an ECMP vnet route of source
``ospf6``.  UDP flows from h1 to h2 with 32 source ports are counted on
red's e0 and e1: both carry some, and each path's packet counter agrees.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from birdlab import wait
from frrlab import FrrLab, routers, two_paths
from harness import Vrouterd

pytestmark = pytest.mark.integration

TOPOLOGY = two_paths(
    ("2001:db8:1::1/64", "2001:db8:2::1/64"),
    ("2001:db8:1::2/64", "2001:db8:2::2/64"),
    ("2001:db8:ff::1/64", "2001:db8:ff::2/64"),
    ("2001:db8:fe::1/64", "2001:db8:fe::2/64"),
)

OSPF6D = """
hostname {router}
interface e0
 ipv6 ospf6 area 0.0.0.0
 ipv6 ospf6 network point-to-point
 ipv6 ospf6 hello-interval 1
 ipv6 ospf6 dead-interval 4
 ipv6 ospf6 cost 10
interface e1
 ipv6 ospf6 area 0.0.0.0
 ipv6 ospf6 network point-to-point
 ipv6 ospf6 hello-interval 1
 ipv6 ospf6 dead-interval 4
 ipv6 ospf6 cost 10
interface {lan}
 ipv6 ospf6 area 0.0.0.0
 ipv6 ospf6 passive
router ospf6
 ospf6 router-id {rid}
"""

FLOWS = """
import socket
for port in range(41000, 41032):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("2001:db8:1::2", port))
    for _ in range(10):
        s.sendto(bytes(32), ("2001:db8:2::2", 9))
    s.close()
"""


def _ospf6(d: Vrouterd, vnet: str, prefix: str) -> dict[str, object] | None:
    rows = d.call("route.show", vnet=vnet, family="inet6", source="ospf6")
    return next((r for r in rows if r["prefix"] == prefix), None)


def _paths(row: dict[str, object] | None) -> dict[str, int]:
    """Return the packets each path (by interface) of a multipath row forwarded."""
    nexthops = row.get("nexthops") if row is not None else None
    if not isinstance(nexthops, list):
        return {}
    return {str(n["interface"]): int(n["use"]) for n in nexthops}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vrouterd, FrrLab]]:
    d = Vrouterd(tmp_path_factory.mktemp("vrouterd"), TOPOLOGY)
    configs = {
        router: {"ospf6d": OSPF6D.format(router=router, rid=rid, lan=f"{d.prefix}{lan}")}
        for router, rid, lan in (("mr", "198.51.100.1", "r"), ("mb", "198.51.100.2", "b"))
    }
    with routers(d, configs) as frr:
        yield d, frr


def test_equal_cost_ospfv3_paths_become_ecmp_and_both_carry_flows(
    lab: tuple[Vrouterd, FrrLab],
) -> None:
    d, _ = lab
    wait(
        "both vnets' OSPFv3 routes over two paths",
        lambda: set(_paths(_ospf6(d, "red", "2001:db8:2::/64"))) == {"e0", "e1"}
        and set(_paths(_ospf6(d, "blue", "2001:db8:1::/64"))) == {"e0", "e1"},
        timeout=60,
    )
    row = _ospf6(d, "red", "2001:db8:2::/64")
    assert row is not None and all(
        str(n["gateway"]).startswith("fe80:") for n in row["nexthops"]  # type: ignore[attr-defined]
    ), row
    ping = d.exec("h1", "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "2001:db8:2::2",
                  check=False)  # fmt: skip
    assert ping.returncode == 0, ping.stdout + ping.stderr

    def tx() -> dict[str, int]:
        return {name: d.counters("red", name)["tx_packets"] for name in ("e0", "e1")}

    before, counted = tx(), _paths(_ospf6(d, "red", "2001:db8:2::/64"))
    d.python("h1", "-c", FLOWS)
    wait(
        "the flows forwarded",
        lambda: sum(_paths(_ospf6(d, "red", "2001:db8:2::/64")).values())
        >= sum(counted.values()) + 320,
        timeout=10,
    )
    after = _paths(_ospf6(d, "red", "2001:db8:2::/64"))
    per_path = {name: after[name] - counted[name] for name in after}
    assert min(per_path.values()) >= 60, per_path  # each path carries flows
    sent = {name: count - before[name] for name, count in tx().items()}
    for name in ("e0", "e1"):  # the interfaces agree (OSPF hellos and ND come on top)
        assert sent[name] >= per_path[name], (sent, per_path)
