"""vnets, epairs, addresses and routes changed at run time with vrouterctl, under real traffic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, links, netns_list, running
from harness import ping_received as received

pytestmark = pytest.mark.integration


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Vrouterd]:
    """The demo topology, started for one test (the test changes it)."""
    d = Vrouterd(tmp_path)
    yield from running(d)


def ok(daemon: Vrouterd, *args: str) -> str:
    result = daemon.ctl(*args)
    assert result.returncode == 0, f"vrouterctl {' '.join(args)}: {result.stderr}"
    return result.stdout


def ping(daemon: Vrouterd, host: str, target: str, count: int = 3) -> str:
    return daemon.exec(
        host, "ping", "-c", str(count), "-i", "0.2", "-W", "2", target, check=False, timeout=30
    ).stdout


def test_vnets_and_an_epair_made_with_vrouterctl_carry_traffic(daemon: Vrouterd) -> None:
    assert ok(daemon, "vnet", "create", "lab") == "vnet lab created\n"
    assert ok(daemon, "vnet", "create", "lab/r1") == "vnet lab/r1 created (child of lab)\n"
    refused = daemon.ctl("vnet", "create", "nope/x")
    assert refused.returncode == 1
    assert "parent 'nope' does not exist" in refused.stderr
    ok(daemon, "epair", "create", "red:lab0", "lab:up0")
    ok(daemon, "address", "add", "red", "lab0", "203.0.113.65/30")
    ok(daemon, "address", "add", "lab", "up0", "203.0.113.66/30")
    ok(daemon, "epair", "create", "lab:down0", "lab/r1:up0")
    ok(daemon, "address", "add", "lab", "down0", "203.0.113.69/30")
    ok(daemon, "address", "add", "lab/r1", "up0", "203.0.113.70/30")
    ok(daemon, "route", "add", "lab", "192.0.2.0/24", "via", "203.0.113.65")
    ok(daemon, "route", "add", "lab/r1", "0.0.0.0/0", "via", "203.0.113.69")
    ok(daemon, "route", "add", "red", "203.0.113.68/30", "via", "203.0.113.66")
    tap = f"{daemon.prefix}k"
    ok(daemon, "tap", "create", "lab/r1", tap, "203.0.113.129/25")
    assert tap in links()

    # h1 -> red -> lab -> lab/r1, and back through lab and red.
    out = ping(daemon, "h1", "203.0.113.70")
    assert received(out) == 3, out
    assert "ttl=62" in out, "lab/r1 answers (TTL 64) through lab and red"
    tree = json.loads(ok(daemon, "vnet", "tree", "--json"))
    lab = next(n for n in tree if n["name"] == "lab")
    assert lab["interfaces"] == ["down0", "up0"]
    assert [c["name"] for c in lab["children"]] == ["lab/r1"]
    assert lab["children"][0]["interfaces"] == sorted([tap, "up0"])
    text = ok(daemon, "vnet", "tree", "lab")
    assert text.splitlines() == [
        "lab  (down0, up0)",
        f"`-- lab/r1  ({', '.join(sorted([tap, 'up0']))})",
    ]

    refused = daemon.ctl("vnet", "destroy", "lab")
    assert refused.returncode == 1
    assert "vnet lab has children (lab/r1)" in refused.stderr
    assert ok(daemon, "vnet", "destroy", "lab", "-r") == "destroyed: lab/r1, lab\n"
    assert tap not in links(), "the TAP went with its vnet"
    red = {i["name"] for i in daemon.call("ifconfig", vnet="red")}
    assert "lab0" not in red, "the epair's other end went too"
    assert "vnet red: lab0: gone with its epair peer lab:up0" in daemon.logtext()
    red_routes = {r["prefix"] for r in daemon.call("route.show", vnet="red")}
    assert "203.0.113.68/30" not in red_routes and "203.0.113.64/30" not in red_routes
    assert received(ping(daemon, "h1", "203.0.113.70", count=1)) == 0
    assert received(ping(daemon, "h1", "198.51.100.2")) == 3, "the rest forwards as before"


def test_destroying_a_vnet_removes_its_taps_and_host_namespaces(daemon: Vrouterd) -> None:
    ns, tap = daemon.ns("h3"), daemon.tap("g")
    assert ns in netns_list()
    result = json.loads(ok(daemon, "vnet", "destroy", "green", "--json"))
    assert result == {"destroyed": ["green"]}
    assert ns not in netns_list()
    assert tap not in links()
    assert "green" not in {v["name"] for v in daemon.call("vnet.list")}
    assert daemon.ctl("ifconfig", "green").returncode == 1
    # The other vnets do not notice.
    assert received(ping(daemon, "h1", "198.51.100.2")) == 3
    assert daemon.stop() == 0
    assert not {n for n in netns_list() if n.startswith(daemon.prefix)}


def test_a_moved_tap_takes_its_host_into_the_new_vnets_routing(daemon: Vrouterd) -> None:
    tap = daemon.tap("r")
    out = ping(daemon, "h1", "198.51.100.2")
    assert received(out) == 3 and "ttl=62" in out, "through red and blue"

    moved = json.loads(ok(daemon, "ifconfig", "red", tap, "vnet", "blue", "--json"))
    assert moved["from"] == "red" and moved["to"] == "blue"
    assert tap not in {i["name"] for i in daemon.call("ifconfig", vnet="red")}
    assert "192.0.2.0/24" not in {r["prefix"] for r in daemon.call("route.show", vnet="red")}
    arrived = {i["name"]: i for i in daemon.call("ifconfig", vnet="blue")}[tap]
    assert arrived["up"]
    assert [a["scope"] for a in arrived["inet6"]] == ["link"], "no addresses but a link-local"
    assert not [a for a in arrived["addresses"] if ":" not in a]

    # blue reaches 192.0.2.0/24 through red by a static route: the address's connected
    # route outranks it (distance 0 against 1), and the static route is held until it goes.
    ok(daemon, "address", "add", "blue", tap, "192.0.2.1/24")
    sources = {
        (r["source"], r["state"])
        for r in daemon.call("route.show", vnet="blue")
        if r["prefix"] == "192.0.2.0/24"
    }
    assert sources == {("connected", "installed"), ("static", "held")}
    ok(daemon, "route", "del", "blue", "192.0.2.0/24")
    out = ping(daemon, "h1", "198.51.100.2")
    assert received(out) == 3, out
    assert "ttl=63" in out, "one router now: blue"

    # And back, FreeBSD style: the host follows red again.
    ok(daemon, "interface", "move", "blue", tap, "red")
    ok(daemon, "address", "add", "red", tap, "192.0.2.1/24")
    ok(daemon, "route", "add", "blue", "192.0.2.0/24", "via", "203.0.113.1")
    out = ping(daemon, "h1", "198.51.100.2")
    assert received(out) == 3, out
    assert "ttl=62" in out


def test_vrouterctl_refusals_exit_1_with_the_reason(daemon: Vrouterd) -> None:
    cases = [
        (("interface", "move", "red", "nope", "blue"), "vnet red has no interface 'nope'"),
        (("route", "del", "red", "203.0.113.192/26"), "vnet red has no route to 203.0.113.192/26"),
        (
            ("route", "add", "red", "203.0.113.192/26", "via", "198.51.100.200"),
            "not on a connected network",
        ),
        (("address", "del", "red", "ep0", "203.0.113.9/30"), "vnet red: ep0 has no address"),
        (("epair", "create", "red:ep0", "blue:zz"), "vnet red already has an interface 'ep0'"),
        (("interface", "destroy", "nowhere", "x"), "no vnet named 'nowhere'"),
    ]
    for args, reason in cases:
        result = daemon.ctl(*args)
        assert result.returncode == 1, args
        assert reason in result.stderr, (args, result.stderr)
    usage = daemon.ctl("route", "add", "red", "203.0.113.192/26", "sideways")
    assert usage.returncode == 2
    real = daemon.socket
    daemon.socket = str(Path(real).with_name("missing.sock"))
    try:
        assert daemon.ctl("vnet", "list").returncode == 2
    finally:
        daemon.socket = real
