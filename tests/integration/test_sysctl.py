"""sysctl knobs changed at run time take effect on real traffic at once."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from harness import Vrouterd, vrouterctl

pytestmark = pytest.mark.integration


def _ctl(demo: Vrouterd, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        vrouterctl(*args),
        env={**os.environ, "VROUTER_SOCKET": demo.socket},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_sysctl_lists_knobs_with_values_and_descriptions(demo: Vrouterd) -> None:
    result = _ctl(demo, "sysctl", "red", "-a")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^net\.inet\.ip\.ttl: 64\t# TTL of IPv4 packets", result.stdout, re.M)
    assert re.search(r"^net\.inet6\.ip6\.forwarding: 1\t# ", result.stdout, re.M)


def test_ttl_change_shows_in_replies(demo: Vrouterd) -> None:
    result = _ctl(demo, "sysctl", "red", "net.inet.ip.ttl=32", "net.inet6.ip6.hlim=33")
    assert result.returncode == 0, result.stderr
    assert "net.inet.ip.ttl: 64 -> 32" in result.stdout
    try:
        ping = demo.exec("h1", "ping", "-c", "1", "-W", "2", "192.0.2.1")
        assert "ttl=32" in ping.stdout
        ping6 = demo.exec("h1", "ping", "-6", "-c", "1", "-W", "2", "2001:db8:1::1")
        assert "ttl=33" in ping6.stdout
    finally:
        _ctl(demo, "sysctl", "red", "net.inet.ip.ttl=64", "net.inet6.ip6.hlim=64")


def test_bad_value_is_refused_and_nothing_changes(demo: Vrouterd) -> None:
    result = _ctl(demo, "sysctl", "red", "net.inet.ip.ttl=16", "net.inet.ip.forwarding=2")
    assert result.returncode == 1
    assert "net.inet.ip.forwarding: expected a boolean" in result.stderr
    [ttl] = demo.call("sysctl.get", vnet="red", names=["net.inet.ip.ttl"])
    assert ttl["value"] == 64  # the good half was not applied either


def test_forwarding_off_stops_transit_and_traceroute_shows_where(demo: Vrouterd) -> None:
    before = demo.call("netstat", vnet="blue")["ip"]["cantforward"]
    assert _ctl(demo, "sysctl", "blue", "net.inet.ip.forwarding=0").returncode == 0
    try:
        trace = demo.exec(
            "h1", "traceroute", "-n", "-q", "1", "-w", "1", "-m", "4", "198.51.100.2", timeout=60
        )
        hops = re.findall(r"^\s*\d+\s+(\S+)", trace.stdout, re.M)
        assert hops == ["192.0.2.1", "*", "*", "*"], trace.stdout
        ping = demo.exec(
            "h1", "ping", "-c", "2", "-i", "0.2", "-W", "1", "198.51.100.2", check=False
        )
        assert "0 received" in ping.stdout
        assert demo.call("netstat", vnet="blue")["ip"]["cantforward"] - before >= 5
        # Blue still answers for itself: it is a host now, not a router.
        own = demo.exec("h1", "ping", "-c", "1", "-W", "2", "203.0.113.2", check=False)
        assert "1 received" in own.stdout
    finally:
        _ctl(demo, "sysctl", "blue", "net.inet.ip.forwarding=1")
    ping = demo.exec("h1", "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.2")
    assert "2 received" in ping.stdout
