"""BGP between FRR and BIRD in two vnets' mirrors: 10,000 prefixes learnt each way.

    [red] e0 ══ epair ══ e0 [blue]        198.51.100.0/30
    mirror {p}mr: zebra + bgpd (AS 65001)   mirror {p}mb: BIRD (AS 65002)

FRR originates 10,000 /30s of 198.18.0.0/16 (``network`` statements), BIRD
10,000 of 198.19.0.0/16 (a static protocol exported to BGP only).  Each side
installs what it learns in its mirror's kernel table (zebra as ``proto bgp``,
BIRD as ``proto bird``), and the route sync makes them the vnets' routes:
red's of source ``bgp``, blue's of source ``bird``, 10,000 each, as
``vrouterctl route show -j`` lists them.  BGP timers are 1 s keepalive, 3 s
hold and 1 s connect retry.  Disabling BIRD's session withdraws them all on
both sides.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from birdlab import BirdLab, wait
from frrlab import FrrLab
from harness import Vrouterd, run

pytestmark = pytest.mark.integration

PREFIXES = 10_000

TOPOLOGY = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"

[vnets.red.interfaces.e0]
type = "epair"
peer = "blue:e0"
addresses = ["198.51.100.1/30"]

[vnets.red.mirror]
netns = "{p}mr"

[vnets.blue.interfaces.e0]
type = "epair"
peer = "red:e0"
addresses = ["198.51.100.2/30"]

[vnets.blue.mirror]
netns = "{p}mb"
"""

BGPD = """
hostname mr
router bgp 65001
 bgp router-id 198.51.100.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 1 3
 neighbor 198.51.100.2 remote-as 65002
 neighbor 198.51.100.2 timers connect 1
 address-family ipv4 unicast
{networks}
 exit-address-family
"""

BIRD = """
router id 198.51.100.2;
protocol device {{ scan time 10; }}
protocol kernel {{
  ipv4 {{ import none; export where source = RTS_BGP; }};
}}
protocol static feed {{
  ipv4;
{routes}
}}
protocol bgp frr {{
  local 198.51.100.2 as 65002;
  neighbor 198.51.100.1 as 65001;
  hold time 3; keepalive time 1; connect retry time 1; connect delay time 1;
  error wait time 1, 2;
  ipv4 {{ import all; export where source = RTS_STATIC; }};
}}
"""


def _prefixes(second: int) -> list[str]:
    """The first PREFIXES /30s of 198.<second>.0.0/16."""
    return [f"198.{second}.{n >> 6}.{(n & 63) << 2}/30" for n in range(PREFIXES)]


def _count(d: Vrouterd, vnet: str, source: str) -> int:
    done = d.ctl("route", "show", vnet, "--source", source, "-j")
    if done.returncode == 1 and f"no route source {source!r}" in done.stderr:
        return 0  # a source is known once it has had a route
    assert done.returncode == 0, done.stderr
    return len(json.loads(done.stdout))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vrouterd, BirdLab]]:
    d = Vrouterd(tmp_path_factory.mktemp("vrouterd"), TOPOLOGY)
    frr = FrrLab(d)
    bird = BirdLab(d, 4)
    try:
        d.start()
        networks = "\n".join(f"  network {p}" for p in _prefixes(18))
        frr.start("mr", "bgpd", BGPD.format(networks=networks))
        routes = "\n".join(f"  route {p} blackhole;" for p in _prefixes(19))
        bird.bird("mb", BIRD, routes=routes)
        yield d, bird
    finally:
        try:
            bird.stop()
            frr.stop()
        finally:
            d.close()


def test_ten_thousand_prefixes_are_learnt_each_way(lab: tuple[Vrouterd, BirdLab]) -> None:
    d, _ = lab
    wait(
        f"{PREFIXES} BGP routes in each vnet",
        lambda: _count(d, "red", "bgp") == PREFIXES and _count(d, "blue", "bird") == PREFIXES,
        timeout=90,
    )
    rows = d.call("route.show", vnet="red", source="bgp", limit=3)
    assert {r["gateway"] for r in rows} == {"198.51.100.2"} and rows[0]["distance"] == 20
    rows = d.call("route.show", vnet="blue", prefix="198.18.0.0/16", source="bird")
    assert len(rows) == PREFIXES and {r["interface"] for r in rows} == {"e0"}
    assert {r["gateway"] for r in rows} == {"198.51.100.1"}


def test_the_routes_are_withdrawn_when_the_session_drops(lab: tuple[Vrouterd, BirdLab]) -> None:
    d, _ = lab
    wait("the BGP routes", lambda: _count(d, "red", "bgp") == PREFIXES, timeout=90)
    run("birdc", "-s", str(d.dir / "bird-mb.ctl"), "disable", "frr")
    wait(
        "the BGP routes withdrawn in both vnets",
        lambda: _count(d, "red", "bgp") == 0 and _count(d, "blue", "bird") == 0,
        timeout=30,
    )
