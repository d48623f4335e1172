"""The control-plane mirror: FRR's OSPF in two vnets' mirrors, routes synced into the vnets.

    h1 ── {p}r [red] e0 ══ epair ══ e0 [blue] {p}b ── h2
           192.0.2.0/28   198.51.100.0/30    192.0.2.32/28
           mirror {p}mr: zebra + ospfd       mirror {p}mb: zebra + ospfd

OSPF runs point-to-point on the epair with hello 1 s and dead 4 s.  Each
vnet learns the other's LAN with source ``ospf`` over netlink, and h1 pings
h2 through them.  Destroying the epair withdraws the routes; a stopped
daemon leaves no mirror namespace, representor or FRR process behind.
With ``net.mirror.sync_grace``, red's routes outlive a restart of its FRR
and go once the grace is over when FRR stays away.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from birdlab import wait
from frrlab import FrrLab
from harness import Vrouterd, links, netns_list

pytestmark = pytest.mark.integration

TOPOLOGY = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"

[vnets.red.interfaces.{p}r]
type = "tap"
addresses = ["192.0.2.1/28"]
host = {{ netns = "{p}h1", addresses = ["192.0.2.2/28"], gateway = "192.0.2.1" }}

[vnets.red.interfaces.e0]
type = "epair"
peer = "blue:e0"
addresses = ["198.51.100.1/30"]

[vnets.red.mirror]
netns = "{p}mr"

[vnets.blue.interfaces.{p}b]
type = "tap"
addresses = ["192.0.2.33/28"]
host = {{ netns = "{p}h2", addresses = ["192.0.2.34/28"], gateway = "192.0.2.33" }}

[vnets.blue.interfaces.e0]
type = "epair"
peer = "red:e0"
addresses = ["198.51.100.2/30"]

[vnets.blue.mirror]
netns = "{p}mb"
"""

OSPFD = """
hostname {router}
interface e0
 ip ospf network point-to-point
 ip ospf hello-interval 1
 ip ospf dead-interval 4
router ospf
 ospf router-id {rid}
 passive-interface {lan}
 network 198.51.100.0/30 area 0
 network {net} area 0
"""


def _ospf_routes(d: Vrouterd, vnet: str) -> dict[str, str | None]:
    rows = d.call("route.show", vnet=vnet, source="ospf")
    return {r["prefix"]: r.get("gateway") for r in rows}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vrouterd, FrrLab]]:
    d = Vrouterd(tmp_path_factory.mktemp("vrouterd"), TOPOLOGY)
    frr = FrrLab(d)
    try:
        d.start()
        for router, rid, lan, net in (
            ("mr", "198.51.100.1", f"{d.prefix}r", "192.0.2.0/28"),
            ("mb", "198.51.100.2", f"{d.prefix}b", "192.0.2.32/28"),
        ):
            frr.start(router, "ospfd", OSPFD.format(router=router, rid=rid, lan=lan, net=net))
        yield d, frr
    finally:
        try:
            frr.stop()
        finally:
            d.close()


def test_the_mirror_shows_the_vnets_interfaces_through_exec(
    lab: tuple[Vrouterd, FrrLab],
) -> None:
    d, _ = lab
    done = d.ctl("exec", "red", "--", "ip", "-br", "addr", "show", "dev", "e0")
    assert done.returncode == 0, done.stderr
    assert "198.51.100.1/30" in done.stdout
    shown = d.call("mirror.show", vnet="red")
    assert shown["netns"] == d.ns("mr")
    assert set(shown["representors"]) == {f"{d.prefix}r", "e0"}


def test_ospf_routes_are_synced_and_carry_traffic(lab: tuple[Vrouterd, FrrLab]) -> None:
    d, _ = lab
    wait(
        "the OSPF routes in both vnets",
        lambda: _ospf_routes(d, "red").get("192.0.2.32/28") == "198.51.100.2"
        and _ospf_routes(d, "blue").get("192.0.2.0/28") == "198.51.100.1",
        timeout=60,
    )
    rows = d.call("route.show", vnet="red", source="ospf")
    assert [r["distance"] for r in rows if r["prefix"] == "192.0.2.32/28"] == [110]
    shown = d.ctl("route", "show", "red")
    assert "ospf" in shown.stdout
    ping = d.exec("h1", "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.34", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert d.call("mirror.show", vnet="blue")["punt"]["punted"] > 0


def _stop_frr(frr: FrrLab, router: str) -> None:
    """Stop ``router``'s zebra and ospfd (zebra takes its routes out of the kernel)."""
    for name in ("ospfd", "zebra"):
        pid = int((frr.rundir(router) / f"{name}.pid").read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        wait(f"{name} gone", lambda pid=pid: not Path(f"/proc/{pid}").exists(), timeout=10)


def test_a_restarting_daemons_routes_stay_for_the_grace_period(
    lab: tuple[Vrouterd, FrrLab],
) -> None:
    d, frr = lab
    wait("the OSPF routes", lambda: "192.0.2.32/28" in _ospf_routes(d, "red"), timeout=60)
    for vnet in ("red", "blue"):  # blue's ospfd withdraws red's LAN meanwhile: kept too
        assert d.ctl("sysctl", vnet, "net.mirror.sync_grace=8").returncode == 0
    _stop_frr(frr, "mr")
    wait("zebra's routes out of the mirror",
         lambda: "proto ospf" not in d.exec("mr", "ip", "route").stdout, timeout=10)  # fmt: skip
    time.sleep(2)
    assert "192.0.2.32/28" in _ospf_routes(d, "red")  # stale, kept
    ping = d.exec("h1", "ping", "-c", "2", "-i", "0.2", "-W", "2", "192.0.2.34", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    frr.start("mr", "ospfd", OSPFD.format(router="mr", rid="198.51.100.1",
                                          lan=f"{d.prefix}r", net="192.0.2.0/28"))  # fmt: skip
    wait("the route back in the mirror",
         lambda: "192.0.2.32/28" in d.exec("mr", "ip", "route").stdout, timeout=30)  # fmt: skip
    time.sleep(8)  # past the grace: refreshed, so it stays
    assert "192.0.2.32/28" in _ospf_routes(d, "red")
    # Stopped for good: gone once the grace is over.
    _stop_frr(frr, "mr")
    time.sleep(2)
    assert "192.0.2.32/28" in _ospf_routes(d, "red")
    wait("the stale route removed", lambda: "192.0.2.32/28" not in _ospf_routes(d, "red"),
         timeout=8 + 4)  # fmt: skip
    frr.start("mr", "ospfd", OSPFD.format(router="mr", rid="198.51.100.1",
                                          lan=f"{d.prefix}r", net="192.0.2.0/28"))  # fmt: skip
    for vnet in ("red", "blue"):
        assert d.ctl("sysctl", vnet, "net.mirror.sync_grace=0").returncode == 0


def test_destroying_the_epair_withdraws_the_routes(lab: tuple[Vrouterd, FrrLab]) -> None:
    d, _ = lab
    wait("the OSPF routes", lambda: "192.0.2.32/28" in _ospf_routes(d, "red"), timeout=60)
    done = d.ctl("interface", "destroy", "red", "e0")
    assert done.returncode == 0, done.stderr
    wait(
        "the OSPF routes withdrawn",
        lambda: not _ospf_routes(d, "red") and not _ospf_routes(d, "blue"),
        timeout=20,
    )
    assert "e0" not in d.call("mirror.show", vnet="red")["representors"]


def test_a_stopped_daemon_leaves_no_mirror_behind(lab: tuple[Vrouterd, FrrLab]) -> None:
    d, _ = lab
    assert d.stop() == 0
    assert not {d.ns("mr"), d.ns("mb")} & netns_list()
    assert not [name for name in links() if name.startswith("vrm")]
