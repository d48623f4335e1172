"""The stateless DHCPv6 server of a vnet interface, asked by ISC dhclient (-6 -S) in a netns.

::

    [vnet lan] 2001:db8:6::1/64 ==TAP== {p}c: dhclient -6 -S (its own lease, pid, script)
      ra (O flag), dhcp6 = { dns, domains }

The client's script writes what it was given to a file of the test; the
machine's own resolv.conf is never touched (the namespace gets its own
/etc/netns/NS/resolv.conf).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, run

pytestmark = pytest.mark.integration

CONFIG = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
log_level = "debug"

[vnets.lan.interfaces.{p}d]
type = "tap"
addresses = ["2001:db8:6::1/64"]
ra = {{ interval = 30 }}
host = {{ netns = "{p}c", slaac = true }}

[vnets.lan.interfaces.{p}d.dhcp6]
dns = ["2001:db8:6::53", "2001:db8:6::54"]
domains = ["example.com", "lab.example.org"]
"""

SCRIPT = """#!/bin/sh
echo "$reason dns=$new_dhcp6_name_servers search=$new_dhcp6_domain_search" >> {out}
"""

GARBAGE = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", 546))
index = socket.if_nametoindex(sys.argv[1])
for data in (bytes.fromhex(h) for h in sys.argv[2:]):
    s.sendto(data, ("ff02::1:2", 547, 0, index))
"""


@pytest.fixture
def lan(tmp_path: Path) -> Iterator[Vrouterd]:
    daemon = Vrouterd(tmp_path, CONFIG)
    etc = Path("/etc/netns") / daemon.ns("c")
    try:
        daemon.start()
        daemon.wait_ipv6()
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("")
        deadline = time.monotonic() + 20  # dhclient binds the link-local address: DAD first
        while time.monotonic() < deadline:
            out = daemon.exec("c", "ip", "-6", "-o", "addr", "show", "scope", "link").stdout
            if "fe80::" in out and "tentative" not in out:
                break
            time.sleep(0.2)
        yield daemon
    finally:
        daemon.close()
        shutil.rmtree(etc, ignore_errors=True)


def _dhclient(daemon: Vrouterd, tag: str) -> str:
    """Run one information-request exchange; return the line the client's script wrote."""
    out = daemon.dir / f"dhclient-{tag}.out"
    script = daemon.dir / "dhclient-script"
    script.write_text(SCRIPT.format(out=out))
    os.chmod(script, 0o755)
    pidfile = daemon.dir / f"dhclient-{tag}.pid"
    result = daemon.exec(
        "c", "dhclient", "-6", "-S", "-1", "-v",
        "-lf", str(daemon.dir / f"dhclient-{tag}.leases"), "-pf", str(pidfile),
        "-sf", str(script), daemon.tap("d"),
        timeout=60, check=False,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not out.exists():
            time.sleep(0.2)
        assert out.exists(), f"dhclient got no reply:\n{result.stdout}\n{result.stderr}"
        return out.read_text()
    finally:
        deadline = time.monotonic() + 5  # a daemonized client may write its pid a moment late
        while time.monotonic() < deadline:
            pid = pidfile.read_text().strip() if pidfile.exists() else ""
            if pid.isdigit():
                run("kill", pid, check=False)
                break
            time.sleep(0.1)


def test_dhclient_information_request_gets_dns_servers_and_search_list(lan: Vrouterd) -> None:
    text = _dhclient(lan, "a")
    # dhclient's script is told RENEW6 or INFORM6 (by version) with the new values.
    assert re.search(r"\b(INFORM6|RENEW6) dns=2001:db8:6::53 2001:db8:6::54 "
                     r"search=example\.com\.? lab\.example\.org\.?$", text, re.M), text  # fmt: skip
    stats = lan.call("netstat", vnet="lan")["dhcp6"]
    assert stats["information_requests"] >= 1 and stats["replies"] >= 1
    # The machine's resolver configuration stayed as it was: the client had a script.
    assert (Path("/etc/netns") / lan.ns("c") / "resolv.conf").read_text() == ""


def test_router_advertisement_carries_the_o_flag(lan: Vrouterd) -> None:
    result = lan.exec("c", "rdisc6", "-1", "-w", "3000", lan.tap("d"), timeout=30)
    assert re.search(r"Stateful other conf\.\s*:\s*Yes", result.stdout), result.stdout
    assert re.search(r"Stateful address conf\.\s*:\s*No", result.stdout), result.stdout


def test_malformed_dhcp6_is_dropped_and_counted_and_the_server_still_answers(
    lan: Vrouterd,
) -> None:
    garbage = [
        "0b",  # shorter than a header
        "0b000001000100ff",  # an option running past the end
        "0b00000100060003000000",  # an option request of odd length
        "0b00000100030004" + "00000000",  # an IA_NA in an information-request
        "01000001",  # a Solicit: no addresses here
    ]
    lan.python("c", "-c", GARBAGE, lan.tap("d"), *garbage)
    deadline = time.monotonic() + 10
    stats = lan.call("netstat", vnet="lan")["dhcp6"]
    while time.monotonic() < deadline and stats["bad"] + stats["ignored"] < len(garbage):
        time.sleep(0.2)
        stats = lan.call("netstat", vnet="lan")["dhcp6"]
    assert stats["bad"] == 4 and stats["ignored"] == 1, stats
    assert stats["replies"] == 0
    drops = lan.counters("lan", lan.tap("d"))
    assert drops["rx_drops"].get("dhcp6_badopt") == 2, drops
    assert "dns=2001:db8:6::53 2001:db8:6::54" in _dhclient(lan, "b")


def test_reload_without_dhcp6_stops_the_server_and_clears_the_o_flag(lan: Vrouterd) -> None:
    text = lan.config.read_text()
    lan.config.write_text(text.split(f"[vnets.lan.interfaces.{lan.tap('d')}.dhcp6]")[0])
    assert ".dhcp6]" not in lan.config.read_text()
    result = lan.ctl("reload")
    assert result.returncode == 0, result.stdout + result.stderr
    ra = lan.exec("c", "rdisc6", "-1", "-w", "3000", lan.tap("d"), timeout=30).stdout
    assert re.search(r"Stateful other conf\.\s*:\s*No", ra), ra
    before = lan.call("netstat", vnet="lan")["dhcp6"]["received"]
    lan.python("c", "-c", GARBAGE, lan.tap("d"), "0b000001")
    time.sleep(0.5)
    assert lan.call("netstat", vnet="lan")["dhcp6"]["received"] == before
