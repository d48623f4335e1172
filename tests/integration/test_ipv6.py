"""IPv6 through vrouterd with real Linux hosts: ping6, SLAAC, ND tools, traceroute6."""

from __future__ import annotations

import re
import subprocess
import time

import pytest
from harness import Vrouterd

pytestmark = pytest.mark.integration


def _received(result: subprocess.CompletedProcess[str]) -> int:
    match = re.search(r"(\d+) received", result.stdout)
    assert match, result.stdout + result.stderr
    return int(match.group(1))


def _ping6(
    demo: Vrouterd, host: str, target: str, count: int = 3, *extra: str
) -> subprocess.CompletedProcess[str]:
    return demo.exec(
        host,
        "ping",
        "-6",
        "-c",
        str(count),
        "-i",
        "0.2",
        "-W",
        "2",
        *extra,
        target,
        check=False,
        timeout=60,
    )


def _link_local(demo: Vrouterd, vnet: str, ifname: str) -> str:
    for ifp in demo.call("ifconfig", vnet=vnet):
        if ifp["name"] == ifname:
            return next(a["address"].split("/")[0] for a in ifp["inet6"] if a["scope"] == "link")
    raise AssertionError(f"no {ifname} in {vnet}")


def _slaac_address(demo: Vrouterd, timeout: float = 20) -> str:
    """Wait for vr-h4 to configure an address from 2001:db8:3::/64; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = demo.exec("h4", "ip", "-6", "-o", "addr", "show", "scope", "global").stdout
        match = re.search(r"inet6 (2001:db8:3:0:[0-9a-f:]+)/64", out)
        if match and "tentative" not in out:
            return match.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no SLAAC address on vr-h4:\n{out}")


def test_ping6_across_two_vnets(demo: Vrouterd) -> None:
    result = _ping6(demo, "h1", "2001:db8:2::2")
    assert _received(result) == 3, result.stdout
    assert "ttl=62" in result.stdout  # hop limit 64 minus two routers
    assert _received(_ping6(demo, "h2", "2001:db8:1::2")) == 3


@pytest.mark.parametrize("address", ["2001:db8:1::1", "2001:db8:ff::1", "2001:db8:ff::2"])
def test_ping6_router_global_addresses(demo: Vrouterd, address: str) -> None:
    result = _ping6(demo, "h1", address, 2)
    assert _received(result) == 2, result.stdout


def test_ping6_router_link_local(demo: Vrouterd) -> None:
    ll = _link_local(demo, "red", demo.tap("r"))
    result = _ping6(demo, "h1", f"{ll}%{demo.tap('r')}", 2)
    assert _received(result) == 2, result.stdout


def test_slaac_host_gets_address_and_default_route_and_reaches_far_host(demo: Vrouterd) -> None:
    address = _slaac_address(demo)
    routes = demo.exec("h4", "ip", "-6", "route", "show", "default").stdout
    ll = _link_local(demo, "red", demo.tap("s"))
    assert f"default via {ll} dev {demo.tap('s')} proto ra" in routes, routes
    result = _ping6(demo, "h4", "2001:db8:2::2")
    assert _received(result) == 3, result.stdout
    # The router learnt the host's new address through ND.
    entries = {e["address"]: e for e in demo.call("ndp.show", vnet="red")}
    assert address in entries and entries[address]["interface"] == demo.tap("s")


def test_rdisc6_sees_the_configured_advertisement(demo: Vrouterd) -> None:
    _slaac_address(demo)  # the host's own link-local has passed DAD by then
    result = demo.exec("h4", "rdisc6", "-1", "-w", "3000", demo.tap("s"), timeout=30)
    out = result.stdout
    assert re.search(r"Prefix\s*:\s*2001:db8:3::/64", out), out
    assert re.search(r"Recursive DNS server\s*:\s*2001:db8:3::53", out), out
    assert re.search(r"MTU\s*:\s*1500", out), out
    assert re.search(r"Router lifetime\s*:\s*1800", out), out
    assert re.search(r"Autonomous address conf\.\s*:\s*Yes", out), out
    mac = next(i["mac"] for i in demo.call("ifconfig", vnet="red") if i["name"] == demo.tap("s"))
    assert re.search(r"Source link-layer address\s*:\s*" + mac.upper(), out), out


def test_ndisc6_resolves_the_router(demo: Vrouterd) -> None:
    result = demo.exec(
        "h1", "ndisc6", "-1", "-w", "2000", "2001:db8:1::1", demo.tap("r"), timeout=30
    )
    mac = next(i["mac"] for i in demo.call("ifconfig", vnet="red") if i["name"] == demo.tap("r"))
    assert re.search(r"Target link-layer address:\s*" + mac.upper(), result.stdout), result.stdout


@pytest.mark.parametrize("mode", [[], ["-I"]], ids=["udp", "icmp"])
def test_traceroute6_lists_router_hops(demo: Vrouterd, mode: list[str]) -> None:
    result = demo.exec(
        "h1",
        "traceroute",
        "-6",
        *mode,
        "-n",
        "-q",
        "1",
        "-w",
        "2",
        "-m",
        "6",
        "2001:db8:2::2",
        timeout=60,
    )
    hops = re.findall(r"^\s*\d+\s+(\S+)", result.stdout, re.MULTILINE)
    assert hops == ["2001:db8:1::1", "2001:db8:ff::2", "2001:db8:2::2"], result.stdout


@pytest.mark.parametrize(
    ("family", "address"), [("-4", "192.0.2.1"), ("-6", "2001:db8:1::1")], ids=["ipv4", "ipv6"]
)
def test_large_pings_to_the_router_are_reassembled_and_answered(
    demo: Vrouterd, family: str, address: str
) -> None:
    result = demo.exec(
        "h1",
        "ping",
        family,
        "-c",
        "3",
        "-i",
        "0.2",
        "-W",
        "2",
        "-s",
        "4000",
        address,
        check=False,
        timeout=60,
    )
    assert _received(result) == 3, result.stdout
    assert "4008 bytes from" in result.stdout
    stats = demo.call("netstat", vnet="red")
    reass = stats["ip_reass" if family == "-4" else "ip6_reass"]
    assert reass["reassembled"] >= 3


def test_overlapping_ipv6_space_is_isolated(demo: Vrouterd) -> None:
    assert _received(_ping6(demo, "h3", "2001:db8:1::1", 2)) == 2
    far = _ping6(demo, "h3", "2001:db8:2::2", 2)
    assert _received(far) == 0
    assert "unreachable" in far.stdout.lower()


def test_ifconfig_and_route_show_include_ipv6(demo: Vrouterd) -> None:
    red = {i["name"]: i for i in demo.call("ifconfig", vnet="red")}
    tap = red[demo.tap("r")]
    assert {"address": "2001:db8:1::1/64", "state": "preferred", "scope": "global"} in tap["inet6"]
    assert any(a["scope"] == "link" and a["address"].startswith("fe80::") for a in tap["inet6"])
    assert red[demo.tap("s")]["ra"] is True
    routes = demo.call("route.show", vnet="red", family="inet6")
    assert {(r["prefix"], r["gateway"]) for r in routes} >= {
        ("2001:db8:2::/64", "2001:db8:ff::2"),
        ("2001:db8:1::/64", None),
    }
    assert all(":" in r["prefix"] for r in routes)
