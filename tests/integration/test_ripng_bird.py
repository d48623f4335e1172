"""vrouter-ripd runs RIPng in two vnets from one process against unmodified BIRD 2.

    hb ── b1 (BIRD) ── [red] ══ epair ══ [blue] ── b2 (BIRD) ── hc
  2001:db8:a::/64  2001:db8:1::/64  2001:db8:ff::/64  2001:db8:2::/64  2001:db8:b::/64

The same shape as test_rip_bird.py over IPv6 (RFC 2080): every RIPng packet
comes from a link-local address with hop limit 255 (BIRD runs with ``ttl
security on`` and drops anything else), so every learned route has a
link-local next hop and must be installed with its interface.  No vnet
and no BIRD router has a static route.  Timers are short (update 2 s,
timeout 6 s).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from birdlab import BirdLab, wait
from harness import Vrouterd, run

pytestmark = pytest.mark.integration

TOPOLOGY = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"

[vnets.red.interfaces.{p}r]
type = "tap"
addresses = ["2001:db8:1::1/64"]
host = {{ netns = "{p}b1", addresses = ["2001:db8:1::2/64"] }}

[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["2001:db8:ff::1/64"]

[vnets.blue.interfaces.{p}b]
type = "tap"
addresses = ["2001:db8:2::1/64"]
host = {{ netns = "{p}b2", addresses = ["2001:db8:2::2/64"] }}

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["2001:db8:ff::2/64"]
"""

BIRD = """
router id {router_id};
protocol device {{ scan time 1; }}
protocol direct {{ ipv6; interface "{stub}"; }}
protocol kernel {{ ipv6 {{ import none; export where source = RTS_RIP; }}; scan time 1; }}
protocol rip ng {{
  ipv6 {{ import all; export all; }};
  interface "{tap}" {{ update time 2; timeout time 6; ttl security on; }};
}}
"""

RIPD = """
socket = "{socket}"
[[instance]]
vnet = "red"
family = "inet6"
interfaces = ["{p}r", "ep0"]
update = 2
timeout = 6
garbage = 4
[[instance]]
vnet = "blue"
family = "inet6"
interfaces = ["{p}b", "ep0"]
update = 2
timeout = 6
garbage = 4
"""


def _routes(daemon: Vrouterd, vnet: str) -> dict[str, tuple[str | None, str | None]]:
    """Return the vnet's installed IPv6 routes: prefix -> (gateway, interface)."""
    return {
        r["prefix"]: (r["gateway"], r.get("interface"))
        for r in daemon.call("route.show", vnet=vnet, family="inet6")
        if r["state"] == "installed"
    }


def _link_local(daemon: Vrouterd, vnet: str, ifname: str) -> str:
    for ifp in daemon.call("ifconfig", vnet=vnet):
        if ifp["name"] == ifname:
            return next(a["address"].split("/")[0] for a in ifp["inet6"] if a["scope"] == "link")
    raise AssertionError(f"no {ifname} in {vnet}")


def _host_link_local(daemon: Vrouterd, host: str, ifname: str) -> str:
    out = daemon.exec(host, "ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "link")
    return out.stdout.split("inet6 ")[1].split("/")[0]


@pytest.fixture(scope="module")
def ripng_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BirdLab]:
    daemon = Vrouterd(tmp_path_factory.mktemp("vrouterd"), TOPOLOGY)
    lab = BirdLab(daemon, 6)
    try:
        daemon.start()
        daemon.wait_ipv6()
        s1 = lab.stub("b1", "hb", "2001:db8:a::1/64", "2001:db8:a::2/64")
        s2 = lab.stub("b2", "hc", "2001:db8:b::1/64", "2001:db8:b::2/64")
        lab.bird("b1", BIRD, router_id="192.0.2.1", stub=s1, tap=daemon.tap("r"))
        lab.bird("b2", BIRD, router_id="192.0.2.2", stub=s2, tap=daemon.tap("b"))
        lab.ripd(RIPD)
        yield lab
    finally:
        lab.stop()
        daemon.close()


def test_vnets_and_bird_learn_each_others_networks(ripng_lab: BirdLab) -> None:
    d = ripng_lab.d
    b1 = _host_link_local(d, "b1", d.tap("r"))
    blue_ep = _link_local(d, "blue", "ep0")
    red_ep = _link_local(d, "red", "ep0")
    # Every next hop is the neighbour's link-local address, with the interface.
    wait(
        "red to learn BIRD's stub and blue's side",
        lambda: (
            {
                "2001:db8:a::/64": (b1, d.tap("r")),
                "2001:db8:b::/64": (blue_ep, "ep0"),
                "2001:db8:2::/64": (blue_ep, "ep0"),
            }.items()
            <= _routes(d, "red").items()
        ),
    )
    wait(
        "blue to learn the far stub",
        lambda: _routes(d, "blue").get("2001:db8:a::/64") == (red_ep, "ep0"),
    )
    red_tap = _link_local(d, "red", d.tap("r"))
    wait(
        "BIRD b1 to install the far stub via red's link-local address",
        lambda: (
            f"2001:db8:b::/64 via {red_tap} dev {d.tap('r')}"
            in d.exec("b1", "ip", "-6", "route", "show").stdout
        ),
    )
    assert ipaddress.IPv6Address(b1).is_link_local


def test_hosts_behind_bird_reach_each_other_on_learned_routes(ripng_lab: BirdLab) -> None:
    d = ripng_lab.d
    wait(
        "the whole path",
        lambda: (
            "1 received"
            in d.exec("hb", "ping", "-6", "-c", "1", "-W", "1", "2001:db8:b::2", check=False).stdout
        ),
    )
    result = d.exec("hb", "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:db8:b::2")
    assert "3 received" in result.stdout
    assert "ttl=60" in result.stdout  # b1, red, blue, b2
    back = d.exec("hc", "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "2001:db8:a::2")
    assert "2 received" in back.stdout


def test_a_route_bird_withdraws_leaves_the_vnets(ripng_lab: BirdLab) -> None:
    d = ripng_lab.d
    wait("red to have the stub", lambda: "2001:db8:a::/64" in _routes(d, "red"))
    run("ip", "-n", d.ns("b1"), "link", "set", f"{d.prefix}b1s", "down")
    started = time.monotonic()
    wait("red to drop the stub", lambda: "2001:db8:a::/64" not in _routes(d, "red"), 20)
    wait("blue to drop the stub", lambda: "2001:db8:a::/64" not in _routes(d, "blue"), 20)
    assert time.monotonic() - started < 15  # triggered update, or at worst the 6 s timeout
    log = Path(d.dir / "ripd.log").read_text()
    assert "red/ripng: delete 2001:db8:a::/64" in log
