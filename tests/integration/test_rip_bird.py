"""vrouter-ripd runs RIP in two vnets from one process against unmodified BIRD 2.

    hb ── b1 (BIRD) ── [red] ══ epair ══ [blue] ── b2 (BIRD) ── hc
  203.0.113.0/26   192.0.2.0/26   198.51.100.0/30   192.0.2.64/26   203.0.113.64/26

No vnet and no BIRD router has a static route: hb reaches hc only through
routes RIP taught everyone.  Timers are short (update 2 s, timeout 6 s).
"""

from __future__ import annotations

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
addresses = ["192.0.2.1/26"]
host = {{ netns = "{p}b1", addresses = ["192.0.2.2/26"] }}

[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["198.51.100.1/30"]

[vnets.blue.interfaces.{p}b]
type = "tap"
addresses = ["192.0.2.65/26"]
host = {{ netns = "{p}b2", addresses = ["192.0.2.66/26"] }}

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["198.51.100.2/30"]
"""

BIRD = """
router id {router_id};
protocol device {{ scan time 1; }}
protocol direct {{ ipv4; interface "{stub}"; }}
protocol kernel {{ ipv4 {{ import none; export where source = RTS_RIP; }}; scan time 1; }}
protocol rip {{
  ipv4 {{ import all; export all; }};
  interface "{tap}" {{ version 2; update time 2; timeout time 6; }};
}}
"""

RIPD = """
socket = "{socket}"
[[instance]]
vnet = "red"
interfaces = ["{p}r", "ep0"]
update = 2
timeout = 6
garbage = 4
[[instance]]
vnet = "blue"
interfaces = ["{p}b", "ep0"]
update = 2
timeout = 6
garbage = 4
"""


def _routes(daemon: Vrouterd, vnet: str) -> dict[str, str | None]:
    """Return the vnet's installed IPv4 routes: prefix -> gateway."""
    shown = daemon.call("route.show", vnet=vnet, family="inet")
    return {r["prefix"]: r["gateway"] for r in shown if r["state"] == "installed"}


@pytest.fixture(scope="module")
def rip_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BirdLab]:
    daemon = Vrouterd(tmp_path_factory.mktemp("vrouterd"), TOPOLOGY)
    lab = BirdLab(daemon, 4)
    try:
        daemon.start()
        s1 = lab.stub("b1", "hb", "203.0.113.1/26", "203.0.113.2/26")
        s2 = lab.stub("b2", "hc", "203.0.113.65/26", "203.0.113.66/26")
        lab.bird("b1", BIRD, router_id="192.0.2.2", stub=s1, tap=daemon.tap("r"))
        lab.bird("b2", BIRD, router_id="192.0.2.66", stub=s2, tap=daemon.tap("b"))
        lab.ripd(RIPD)
        yield lab
    finally:
        lab.stop()
        daemon.close()


def test_vnets_and_bird_learn_each_others_networks(rip_lab: BirdLab) -> None:
    d = rip_lab.d
    wait(
        "red to learn BIRD's stub and blue's side",
        lambda: (
            {
                "203.0.113.0/26": "192.0.2.2",
                "203.0.113.64/26": "198.51.100.2",
                "192.0.2.64/26": "198.51.100.2",
            }.items()
            <= _routes(d, "red").items()
        ),
    )
    wait(
        "blue to learn the far stub",
        lambda: _routes(d, "blue").get("203.0.113.0/26") == "198.51.100.1",
    )
    wait(
        "BIRD b1 to install the far stub",
        lambda: "203.0.113.64/26 via 192.0.2.1" in d.exec("b1", "ip", "route", "show").stdout,
    )


def test_hosts_behind_bird_reach_each_other_on_learned_routes(rip_lab: BirdLab) -> None:
    d = rip_lab.d
    wait(
        "the whole path",
        lambda: (
            "1 received"
            in d.exec("hb", "ping", "-c", "1", "-W", "1", "203.0.113.66", check=False).stdout
        ),
    )
    result = d.exec("hb", "ping", "-c", "3", "-i", "0.2", "-W", "2", "203.0.113.66")
    assert "3 received" in result.stdout
    assert "ttl=60" in result.stdout  # b1, red, blue, b2


def test_a_route_bird_withdraws_leaves_the_vnets(rip_lab: BirdLab) -> None:
    d = rip_lab.d
    wait("red to have the stub", lambda: "203.0.113.0/26" in _routes(d, "red"))
    run("ip", "-n", d.ns("b1"), "link", "set", f"{d.prefix}b1s", "down")
    started = time.monotonic()
    wait("red to drop the stub", lambda: "203.0.113.0/26" not in _routes(d, "red"), 20)
    wait("blue to drop the stub", lambda: "203.0.113.0/26" not in _routes(d, "blue"), 20)
    assert time.monotonic() - started < 15  # triggered update, or at worst the 6 s timeout
    log = Path(d.dir / "ripd.log").read_text()
    assert "red/rip: delete 203.0.113.0/26" in log


# -- authentication against BIRD ------------------------------------------------------
#
#   b1 (BIRD, MD5 "rip-md5-key")   ── [red]  ── b2 (BIRD, MD5 "wrong-key")
#   b3 (BIRD, plaintext "rip-plain") ── [blue]
#
# red's instance uses keyed MD5 (key id 3, password rip-md5-key), blue's plaintext.
# Each BIRD exports one static route; red also has 198.51.100.240/28 on its tap to b1.

AUTH_TOPOLOGY = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"

[vnets.red.interfaces.{p}r]
type = "tap"
addresses = ["192.0.2.1/28", "198.51.100.241/28"]
host = {{ netns = "{p}b1", addresses = ["192.0.2.2/28"] }}

[vnets.red.interfaces.{p}w]
type = "tap"
addresses = ["192.0.2.17/28"]
host = {{ netns = "{p}b2", addresses = ["192.0.2.18/28"] }}

[vnets.blue.interfaces.{p}b]
type = "tap"
addresses = ["192.0.2.33/28", "198.51.100.193/27"]
host = {{ netns = "{p}b3", addresses = ["192.0.2.34/28"] }}
"""

BIRD_AUTH = """
log stderr all;
router id {router_id};
protocol device {{ scan time 1; }}
protocol static {{ ipv4; route {stub} blackhole; }}
protocol kernel {{ ipv4 {{ import none; export where source = RTS_RIP; }}; scan time 1; }}
protocol rip {{
  ipv4 {{ import all; export all; }};
  interface "{tap}" {{ version 2; update time 2; timeout time 6; {auth} }};
}}
"""

MD5_GOOD = 'authentication cryptographic; password "rip-md5-key" { id 3; algorithm keyed md5; };'
MD5_WRONG = 'authentication cryptographic; password "wrong-key" { id 3; algorithm keyed md5; };'
PLAIN = 'authentication plaintext; password "rip-plain";'

RIPD_AUTH = """
socket = "{socket}"
[[instance]]
vnet = "red"
interfaces = ["{p}r", "{p}w"]
update = 2
timeout = 6
garbage = 4
auth = "md5"
password = "rip-md5-key"
key_id = 3
[[instance]]
vnet = "blue"
interfaces = ["{p}b"]
update = 2
timeout = 6
garbage = 4
auth = "plain"
password = "rip-plain"
"""


@pytest.fixture(scope="module")
def auth_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BirdLab]:
    daemon = Vrouterd(tmp_path_factory.mktemp("vrouterd"), AUTH_TOPOLOGY)
    lab = BirdLab(daemon, 4)
    try:
        daemon.start()
        p = daemon.prefix
        for router, router_id, stub, tap, auth in (
            ("b1", "192.0.2.2", "198.51.100.0/26", f"{p}r", MD5_GOOD),
            ("b2", "192.0.2.18", "198.51.100.64/26", f"{p}w", MD5_WRONG),
            ("b3", "192.0.2.34", "198.51.100.128/26", f"{p}b", PLAIN),
        ):
            lab.bird(router, BIRD_AUTH, router_id=router_id, stub=stub, tap=tap, auth=auth)
        lab.ripd(RIPD_AUTH)
        yield lab
    finally:
        lab.stop()
        daemon.close()


def test_md5_and_plaintext_authenticated_routes_are_exchanged_with_bird(auth_lab: BirdLab) -> None:
    d = auth_lab.d
    wait(
        "red to learn b1's route (keyed MD5)",
        lambda: _routes(d, "red").get("198.51.100.0/26") == "192.0.2.2",
    )
    wait(
        "blue to learn b3's route (plaintext)",
        lambda: _routes(d, "blue").get("198.51.100.128/26") == "192.0.2.34",
    )
    # BIRD accepts what vrouter-ripd signs: it installs the vnets' networks.
    wait(
        "b1 to accept red's MD5 updates",
        lambda: "198.51.100.240/28 via 192.0.2.1" in d.exec("b1", "ip", "route").stdout,
    )
    wait(
        "b3 to accept blue's plaintext updates",
        lambda: "198.51.100.192/27 via 192.0.2.33" in d.exec("b3", "ip", "route").stdout,
    )
    for router in ("b1", "b3"):
        assert "Authentication failed" not in Path(d.dir / f"bird-{router}.log").read_text()
    assert "dropped from 192.0.2.2:" not in Path(d.dir / "ripd.log").read_text()


def test_a_wrong_md5_password_is_refused_both_ways(auth_lab: BirdLab) -> None:
    d = auth_lab.d
    wait("red to hear b1", lambda: "198.51.100.0/26" in _routes(d, "red"))
    log = Path(d.dir / "ripd.log")
    wait("ripd to drop b2's packets", lambda: "rip_auth_digest" in log.read_text())
    time.sleep(5)  # two more update periods of b2's
    assert "198.51.100.64/26" not in _routes(d, "red")
    assert "dropped from 192.0.2.18" in log.read_text()
    assert "192.0.2.1 " not in d.exec("b2", "ip", "route").stdout  # b2 learned nothing
    assert "198.51.100.240/28" not in d.exec("b2", "ip", "route").stdout
    assert "uthentication failed" in Path(d.dir / "bird-b2.log").read_text()
