"""OSPF across a VXLAN overlay between two daemons, each vnet's FRR in its mirror.

    h1 ── {a}1 [lab, daemon a] br0 ─ vx42 ══ underlay veth ══ vx42 ─ br0 [lab, daemon b] {b}1 ── h1
     192.0.2.0/26         203.0.113.1/24  198.51.100.1  .2  203.0.113.2/24         192.0.2.64/26

Each daemon runs in a network namespace of its own.  The overlay is an OSPF
broadcast network: the hellos and the DR election's packets (224.0.0.5 and
224.0.0.6) are bridged into the VXLAN interface and replicated to the remote
VTEP.  Each vnet learns the other's LAN with source ``ospf``, and the hosts
behind the two daemons reach each other through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from birdlab import wait
from frrlab import FrrLab
from harness import Vrouterd
from vxlanlab import ping, start_pair

pytestmark = pytest.mark.integration

CONFIG = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}"
log_level = "info"

[vnets.lab.interfaces.{p}1]
type = "tap"
addresses = ["192.0.2.@GW@/26"]
host = {{ netns = "{p}h1", addresses = ["192.0.2.@HOST@/26"], gateway = "192.0.2.@GW@" }}

[vnets.lab.interfaces.vx42]
type = "vxlan"
vni = 42
local = "198.51.100.@LOCAL@"
remotes = ["198.51.100.@REMOTE@"]

[vnets.lab.interfaces.br0]
type = "bridge"
members = ["vx42"]
mtu = 1450
mac = "02:00:5e:00:53:0@LOCAL@"
addresses = ["203.0.113.@LOCAL@/24"]

[vnets.lab.mirror]
netns = "{p}m"
"""

OSPFD = """
hostname m
interface br0
 ip ospf hello-interval 1
 ip ospf dead-interval 4
 ip ospf priority {priority}
router ospf
 ospf router-id 203.0.113.{local}
 passive-interface {lan}
 network 203.0.113.0/24 area 0
 network {net} area 0
"""

SIDES = {
    # local VTEP/overlay address, remote, LAN gateway, host, LAN, OSPF priority
    "a": (1, 2, 1, 2, "192.0.2.0/26", 10),
    "b": (2, 1, 65, 66, "192.0.2.64/26", 1),
}


def _config(side: str) -> str:
    local, remote, gw, host, _, _ = SIDES[side]
    return (
        CONFIG.replace("@LOCAL@", str(local))
        .replace("@REMOTE@", str(remote))
        .replace("@GW@", str(gw))
        .replace("@HOST@", str(host))
    )


def _ospf_routes(d: Vrouterd) -> dict[str, str | None]:
    return {r["prefix"]: r.get("gateway") for r in d.call("route.show", vnet="lab", source="ospf")}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Vrouterd, FrrLab]]]:
    work = tmp_path_factory.mktemp("vxospf")
    daemons = {side: Vrouterd(Path(work) / side, _config(side)) for side in SIDES}
    labs = {side: FrrLab(d) for side, d in daemons.items()}
    try:
        start_pair(daemons["a"], daemons["b"])
        for side, d in daemons.items():
            local, _, _, _, net, priority = SIDES[side]
            labs[side].start("m", "ospfd", OSPFD.format(
                priority=priority, local=local, lan=f"{d.prefix}1", net=net))  # fmt: skip
        yield {side: (daemons[side], labs[side]) for side in SIDES}
    finally:
        for side in ("b", "a"):
            try:
                labs[side].stop()
            finally:
                daemons[side].close()


def test_ospf_forms_a_full_adjacency_with_a_dr_across_the_overlay(
    pair: dict[str, tuple[Vrouterd, FrrLab]],
) -> None:
    _, frr_a = pair["a"]

    def neighbour() -> str:
        return frr_a.vtysh("m", "show ip ospf neighbor")

    wait("a full adjacency", lambda: "Full/" in neighbour(), timeout=60)
    # a (priority 10) is the DR, so it sees b as the backup; b's entry is its router id.
    row = next(line for line in neighbour().splitlines() if line.startswith("203.0.113.2"))
    assert re.search(r"Full/Backup", row), row
    _, frr_b = pair["b"]
    row = next(
        line for line in frr_b.vtysh("m", "show ip ospf neighbor").splitlines()
        if line.startswith("203.0.113.1")
    )  # fmt: skip
    assert re.search(r"Full/DR", row), row


def test_each_vnet_learns_the_other_lan_and_the_hosts_reach_each_other(
    pair: dict[str, tuple[Vrouterd, FrrLab]],
) -> None:
    a, _ = pair["a"]
    b, _ = pair["b"]
    wait(
        "the OSPF routes in both daemons",
        lambda: _ospf_routes(a).get("192.0.2.64/26") == "203.0.113.2"
        and _ospf_routes(b).get("192.0.2.0/26") == "203.0.113.1",
        timeout=60,
    )
    assert ping(a, "h1", "192.0.2.66") == 3
    assert ping(b, "h1", "192.0.2.2") == 3
    # The multicast hellos crossed the overlay: the VXLAN interface counted datagrams out.
    assert a.counters("lab", "vx42")["tx_packets"] > 0


def test_stopping_one_side_withdraws_its_lan_from_the_other(
    pair: dict[str, tuple[Vrouterd, FrrLab]],
) -> None:
    a, _ = pair["a"]
    b, _ = pair["b"]
    wait("b's LAN in a", lambda: "192.0.2.64/26" in _ospf_routes(a), timeout=60)
    assert b.stop() == 0
    # Dead interval 4 s: a's ospfd drops b, zebra withdraws, the sync removes the route.
    wait("b's LAN withdrawn from a", lambda: "192.0.2.64/26" not in _ospf_routes(a), timeout=20)
    assert ping(a, "h1", "192.0.2.66") == 0
