"""BFD from the mirror: a silent failure of one of two paths is noticed within 3 s.

    h1 ── {p}r [red] e0 ══ epair ══ e0 [blue] {p}b ── h2
           192.0.2.0/28  e1 ══ epair ══ e1   192.0.2.32/28
           mirror {p}mr: zebra + ospfd + bfdd    mirror {p}mb: the same

OSPF runs point-to-point on both epairs, e0 at cost 10 and e1 at cost 20, so
traffic between the LANs takes e0.  Its dead interval is 12 s, too long for
the 3 s the test allows, but each adjacency has a BFD session (bfdd, single
hop: UDP 3784 at TTL 255, 100 ms timers, three missed packets), whose
packets go through the vnets' punt path and out again through the vnets'
own output.  Blue's firewall then blocks everything on its e0, which
neither end's link state shows: BFD tells ospfd, both sides move to e1 and
h1 reaches h2 again within 3 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from birdlab import wait
from frrlab import FrrLab, routers, two_paths_v4
from harness import Vrouterd

pytestmark = pytest.mark.integration

TOPOLOGY = two_paths_v4()

DEAD_INTERVAL = 12
"""OSPF's own detection time, longer than the test allows: only BFD can pass it."""

OSPFD = """
hostname {router}
interface e0
 ip ospf network point-to-point
 ip ospf hello-interval 1
 ip ospf dead-interval 12
 ip ospf cost 10
 ip ospf bfd
 ip ospf bfd profile fast
interface e1
 ip ospf network point-to-point
 ip ospf hello-interval 1
 ip ospf dead-interval 12
 ip ospf cost 20
 ip ospf bfd
 ip ospf bfd profile fast
router ospf
 ospf router-id {rid}
 passive-interface {lan}
 network 198.51.100.0/29 area 0
 network {net} area 0
"""

BFDD = """
hostname {router}
bfd
 profile fast
  detect-multiplier 3
  receive-interval 100
  transmit-interval 100
"""

BLOCK_E0 = """
default = "pass"
[[rules]]
action = "block"
interface = "e0"
"""


def _ospf_paths(d: Vrouterd, vnet: str, prefix: str) -> set[str]:
    rows = d.call("route.show", vnet=vnet, source="ospf")
    row = next((r for r in rows if r["prefix"] == prefix), None)
    if row is None:
        return set()
    return {str(n["interface"]) for n in row.get("nexthops") or [row]}


def _bfd_up(frr: FrrLab, router: str) -> int:
    """Return how many of ``router``'s BFD sessions are up."""
    return sum(
        " up " in f" {line} " for line in frr.vtysh(router, "show bfd peers brief").splitlines()
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vrouterd, FrrLab]]:
    d = Vrouterd(tmp_path_factory.mktemp("vrouterd"), TOPOLOGY)
    configs = {
        router: {
            "bfdd": BFDD.format(router=router),
            "ospfd": OSPFD.format(router=router, rid=rid, lan=f"{d.prefix}{lan}", net=net),
        }
        for router, rid, lan, net in (
            ("mr", "198.51.100.1", "r", "192.0.2.0/28"),
            ("mb", "198.51.100.2", "b", "192.0.2.32/28"),
        )
    }
    with routers(d, configs) as frr:
        yield d, frr


def _reaches(d: Vrouterd) -> bool:
    ping = d.exec("h1", "ping", "-c", "1", "-W", "0.2", "192.0.2.34", check=False)
    return ping.returncode == 0


def test_bfd_sessions_run_through_the_punt_path(lab: tuple[Vrouterd, FrrLab]) -> None:
    d, frr = lab
    wait("both BFD sessions up on both sides",
         lambda: _bfd_up(frr, "mr") == 2 and _bfd_up(frr, "mb") == 2, timeout=60)  # fmt: skip
    wait("red's OSPF route over e0",
         lambda: _ospf_paths(d, "red", "192.0.2.32/28") == {"e0"}, timeout=60)  # fmt: skip
    punted = d.call("mirror.show", vnet="red")["punt"]
    peers = frr.vtysh("mr", "show bfd peers")
    assert "peer 198.51.100.2" in peers and "peer 198.51.100.6" in peers, peers
    assert punted["punted"] > 0 and punted["out"] > 0, punted


def test_a_silent_failure_moves_traffic_within_3_s(lab: tuple[Vrouterd, FrrLab]) -> None:
    d, frr = lab
    wait("BFD up and the route over e0",
         lambda: _bfd_up(frr, "mr") == 2 and _ospf_paths(d, "red", "192.0.2.32/28") == {"e0"},
         timeout=60)  # fmt: skip
    wait("h1 reaching h2", lambda: _reaches(d), timeout=10)  # neighbours resolved
    loaded = d.call("firewall.load", vnet="blue", text=BLOCK_E0, source="block-e0.toml")
    assert loaded["rules"] == 1, loaded
    assert d.ctl("sysctl", "blue", "net.pf.enable=1").returncode == 0
    blocked = time.monotonic()
    try:
        deadline = blocked + DEAD_INTERVAL
        while not _reaches(d) and time.monotonic() < deadline:
            pass
        moved = time.monotonic() - blocked
        assert moved < 3, f"h2 reached again after {moved:.1f} s"
        assert _ospf_paths(d, "red", "192.0.2.32/28") == {"e1"}
        assert _ospf_paths(d, "blue", "192.0.2.0/28") == {"e1"}
        assert _bfd_up(frr, "mr") == 1
    finally:
        unblocked = d.ctl("sysctl", "blue", "net.pf.enable=0")
    assert unblocked.returncode == 0, unblocked.stderr
    wait("back over e0", lambda: _ospf_paths(d, "red", "192.0.2.32/28") == {"e0"}, timeout=30)
