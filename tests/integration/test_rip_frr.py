"""vrouter-ripd exchanges keyed-MD5 RIPv2 with FRR's ripd, in both of FRR's auth lengths.

    f1 (FRR, md5 auth-length rfc, key chain: key 3)  ── [red]  vrouter-ripd md5, key 3,
    f3 (FRR, md5 auth-length rfc, key 3, wrong key)  ── [red]  auth_length = 16
    f2 (FRR, md5 auth-length old-ripd, string: key 1) ── [blue] vrouter-ripd md5, key 1,
                                                               auth_length 20 (default)

FRR writes 16 (``rfc``) or 20 (``old-ripd``, its default) in the MD5 Auth Data
Len field; each vnet sends the same length as its good peer.  Each FRR router
advertises one RIP route; red has 198.51.100.240/28 on its tap to f1 and blue
198.51.100.192/27 on its tap to f2, which FRR must learn from the vnets.
FRR's timers are its shortest (update 5 s), vrouter-ripd's update 2 s.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from birdlab import BirdLab, wait
from frrlab import FrrLab
from harness import Vrouterd

pytestmark = pytest.mark.integration

TOPOLOGY = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"

[vnets.red.interfaces.{p}r]
type = "tap"
addresses = ["192.0.2.1/28", "198.51.100.241/28"]
host = {{ netns = "{p}f1", addresses = ["192.0.2.2/28"] }}

[vnets.red.interfaces.{p}w]
type = "tap"
addresses = ["192.0.2.17/28"]
host = {{ netns = "{p}f3", addresses = ["192.0.2.18/28"] }}

[vnets.blue.interfaces.{p}b]
type = "tap"
addresses = ["192.0.2.33/28", "198.51.100.193/27"]
host = {{ netns = "{p}f2", addresses = ["192.0.2.34/28"] }}
"""

# router, its tap, auth-length, how the key is given (key chain: key id 3; string: 1),
# the key, and the RIP route it advertises
ROUTERS = (
    ("f1", "r", "rfc", "key-chain", "rip-md5-key", "198.51.100.0/26"),
    ("f3", "w", "rfc", "key-chain", "wrong-key", "198.51.100.64/26"),
    ("f2", "b", "old-ripd", "string", "rip-md5-key", "198.51.100.128/26"),
)
KEY_CHAIN = """
key chain vr
 key 3
  key-string {key}
"""
FRR_RIPD = """
hostname {router}
{keys}
interface {tap}
 ip rip authentication mode md5 auth-length {length}
 ip rip authentication {key}
router rip
 version 2
 timers basic 5 15 10
 network {tap}
 route {route}
"""

RIPD = """
hostname {router}
{auth}
interface {tap}
 ip rip authentication mode md5 auth-length {length}
router rip
 version 2
 timers basic 5 15 10
 network {tap}
 route {stub}
"""

RIPD = """
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
auth_length = 16
[[instance]]
vnet = "blue"
interfaces = ["{p}b"]
update = 2
timeout = 6
garbage = 4
auth = "md5"
password = "rip-md5-key"
key_id = 1
"""


def _routes(daemon: Vrouterd, vnet: str) -> dict[str, str | None]:
    return {r["prefix"]: r["gateway"] for r in daemon.call("route.show", vnet=vnet, family="inet")}


def _kernel_route(daemon: Vrouterd, router: str, prefix: str, gateway: str) -> bool:
    """True when zebra installed ``prefix`` via ``gateway`` as a RIP route."""
    out = daemon.exec(router, "ip", "-4", "route", "show", prefix).stdout
    return f"via {gateway}" in out and "proto rip" in out


@pytest.fixture(scope="module")
def frr_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BirdLab, FrrLab]]:
    daemon = Vrouterd(tmp_path_factory.mktemp("vrouterd"), TOPOLOGY)
    ripd = BirdLab(daemon, 4)
    frr = FrrLab(daemon)
    try:
        daemon.start()
        for router, tap, length, how, key, route in ROUTERS:
            chain = how == "key-chain"
            config = FRR_RIPD.format(
                router=router,
                keys=KEY_CHAIN.format(key=key) if chain else "",
                tap=f"{daemon.prefix}{tap}",
                length=length,
                key="key-chain vr" if chain else f"string {key}",
                route=route,
            )
            frr.start(router, "ripd", config)
        ripd.ripd(RIPD)
        yield ripd, frr
    finally:
        try:
            ripd.stop()
            frr.stop()
        finally:
            daemon.close()


def test_routes_are_learnt_both_ways_with_frrs_rfc_auth_length(
    frr_lab: tuple[BirdLab, FrrLab],
) -> None:
    lab, frr = frr_lab
    d = lab.d
    wait(
        "red to learn f1's route (Auth Data Len 16)",
        lambda: _routes(d, "red").get("198.51.100.0/26") == "192.0.2.2",
    )
    wait(
        "f1 to install red's network (we send 16 too)",
        lambda: _kernel_route(d, "f1", "198.51.100.240/28", "192.0.2.1"),
    )
    assert "auth-length rfc" in frr.vtysh("f1", "show running-config")
    assert "dropped from 192.0.2.2: rip_auth_digest" not in Path(d.dir / "ripd.log").read_text()


def test_routes_are_learnt_both_ways_with_frrs_old_ripd_auth_length(
    frr_lab: tuple[BirdLab, FrrLab],
) -> None:
    lab, _ = frr_lab
    d = lab.d
    wait(
        "blue to learn f2's route (Auth Data Len 20)",
        lambda: _routes(d, "blue").get("198.51.100.128/26") == "192.0.2.34",
    )
    wait(
        "f2 to install blue's network (we send 20)",
        lambda: _kernel_route(d, "f2", "198.51.100.192/27", "192.0.2.33"),
    )
    log = Path(d.dir / "ripd.log").read_text()
    assert "dropped from 192.0.2.34: rip_auth_digest" not in log
    assert "rip_badauthlen" not in log


def _bad_packets(frr: FrrLab, router: str, gateway: str) -> int:
    """Return the BadPackets FRR counts from ``gateway`` (0 if it lists no such source)."""
    for line in frr.vtysh(router, "show ip rip status").splitlines():
        fields = line.split()
        if fields[:1] == [gateway]:
            return int(fields[1])
    return 0


def test_a_wrong_key_is_refused_and_counted_both_ways(frr_lab: tuple[BirdLab, FrrLab]) -> None:
    lab, frr = frr_lab
    d = lab.d
    log = Path(d.dir / "ripd.log")
    wait("red to hear f1", lambda: "198.51.100.0/26" in _routes(d, "red"))
    drops = re.compile(r"red/rip: \S+: dropped from 192\.0\.2\.18: rip_auth_digest")
    wait("ripd to drop two of f3's updates", lambda: len(drops.findall(log.read_text())) >= 2)
    wait("f3 to count red's packets as bad", lambda: _bad_packets(frr, "f3", "192.0.2.17") >= 2)
    time.sleep(2)  # one more update period of ripd's
    assert "198.51.100.64/26" not in _routes(d, "red")
    assert "proto rip" not in d.exec("f3", "ip", "-4", "route").stdout  # f3 learnt nothing
    assert "192.0.2.17" not in frr.vtysh("f3", "show ip rip")
