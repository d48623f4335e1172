"""One FRR for many vnets: a single zebra and ospfd run OSPF for two vnets' mirrors.

    h1 ── {p}r [red] e0 ══ epair ══ e0 [blue] {p}b ── h2
           192.0.2.0/28   198.51.100.0/30    192.0.2.32/28
         mirror {p}mr                          mirror {p}mb
              └──── VRFs {p}mr and {p}mb of one FRR ────┘
                    (zebra -n and ospfd in namespace {p}fz)

zebra's netns-VRF backend (``-n``) makes each namespace in its
``/run/netns`` a VRF of that name.  Both mirrors have ``vrf_dir``: vrouterd
binds their namespaces into that directory, and the FRR takes it as its
``/run/netns`` (a mount namespace of its own), so it serves the mirrors and
sees no other namespace of the machine.  ``router ospf vrf {p}mr`` speaks
for red through red's mirror, ``router ospf vrf {p}mb`` for blue; zebra
installs each VRF's routes in its mirror's table, where each vnet's sync
finds them.  Both vnets learn the other's LAN with source ``ospf``, h1 pings
h2 through them, and stopping that one FRR withdraws them from both.  A
mirror added or removed by a reload comes and goes as a VRF; a stopped
vrouterd leaves nothing in the directory, and a killed one's binds are
taken out by its next start.  One zebra and one bgpd do the same with an
eBGP session between the two VRFs.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from birdlab import wait
from frrlab import FrrLab, unmount_vrf_dir
from harness import Vrouterd, netns_list, ping_received, run

from vrouter.mirror.vrfdir import is_mount_point

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
vrf_dir = "{dir}/vrfs"

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
vrf_dir = "{dir}/vrfs"
"""

GREEN = """
[vnets.green.mirror]
netns = "{p}mg"
vrf_dir = "{dir}/vrfs"
"""

FRR_CONF = """\
hostname fz
interface e0 vrf {mr}
 ip ospf network point-to-point
 ip ospf hello-interval 1
 ip ospf dead-interval 4
exit
interface e0 vrf {mb}
 ip ospf network point-to-point
 ip ospf hello-interval 1
 ip ospf dead-interval 4
exit
router ospf vrf {mr}
 ospf router-id 198.51.100.1
 passive-interface {p}r
 network 198.51.100.0/30 area 0
 network 192.0.2.0/28 area 0
exit
router ospf vrf {mb}
 ospf router-id 198.51.100.2
 passive-interface {p}b
 network 198.51.100.0/30 area 0
 network 192.0.2.32/28 area 0
exit
"""


def _ospf_routes(d: Vrouterd, vnet: str) -> dict[str, str | None]:
    rows = d.call("route.show", vnet=vnet, source="ospf")
    return {r["prefix"]: r.get("gateway") for r in rows}


def _frr_processes(d: Vrouterd) -> list[str]:
    """Return the names of the running FRR daemons of namespace ``{p}fz``'s instance."""
    names = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if d.ns("fz").encode() in argv and argv[0].startswith(b"/usr/lib/frr/"):
            names.append(os.path.basename(argv[0].decode()))
    return sorted(names)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vrouterd, FrrLab]]:
    d = Vrouterd(tmp_path_factory.mktemp("vrouterd"), TOPOLOGY)
    frr = FrrLab(d)
    try:
        d.start()
        run("ip", "netns", "add", d.ns("fz"))  # removed with the prefix's namespaces
        run("ip", "-n", d.ns("fz"), "link", "set", "lo", "up")
        conf = FRR_CONF.format(mr=d.ns("mr"), mb=d.ns("mb"), p=d.prefix)
        frr.start_vrfs("fz", d.dir / "vrfs", ("ospfd",), conf, {d.ns("mr"), d.ns("mb")})
        yield d, frr
    finally:
        try:
            frr.stop()
        finally:
            try:
                d.close()
            finally:
                unmount_vrf_dir(d.dir / "vrfs")


def test_one_frr_serves_both_vnets(lab: tuple[Vrouterd, FrrLab]) -> None:
    d, frr = lab
    assert frr.vrfs("fz") == {d.ns("mr"), d.ns("mb")}  # the mirrors, no other namespace
    assert d.call("mirror.show", vnet="red")["vrf_dir"] == str(d.dir / "vrfs")
    assert _frr_processes(d) == ["ospfd", "zebra"]
    for mirror in ("mr", "mb"):  # no routing daemon of their own
        assert not run("ip", "netns", "pids", d.ns(mirror)).stdout.split()
    running = frr.vtysh("fz", "show running-config")
    for mirror in ("mr", "mb"):
        assert f"interface e0 vrf {d.ns(mirror)}" in running, running
    wait(
        "the OSPF routes in both vnets",
        lambda: (
            _ospf_routes(d, "red").get("192.0.2.32/28") == "198.51.100.2"
            and _ospf_routes(d, "blue").get("192.0.2.0/28") == "198.51.100.1"
        ),
        timeout=60,
    )
    for vnet, prefix in (("red", "192.0.2.32/28"), ("blue", "192.0.2.0/28")):
        shown = d.ctl("route", "show", vnet)
        assert shown.returncode == 0, shown.stderr
        assert [line.split() for line in shown.stdout.splitlines() if prefix in line], shown
        assert any("ospf" in line for line in shown.stdout.splitlines() if prefix in line)
    neighbours = frr.vtysh("fz", "show ip ospf vrf all neighbor")
    assert neighbours.count("Full") == 2, neighbours
    ping = d.exec("h1", "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.34", check=False)
    assert ping_received(ping.stdout) == 3, ping.stdout + ping.stderr


def _reload(d: Vrouterd, text: str) -> None:
    d.write_config(text.format(dir=d.dir, p=d.prefix))
    done = d.ctl("reload")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_mirror_added_or_removed_by_a_reload_comes_and_goes_as_a_vrf(
    lab: tuple[Vrouterd, FrrLab],
) -> None:
    d, frr = lab
    _reload(d, TOPOLOGY + GREEN)
    assert is_mount_point(d.dir / "vrfs" / d.ns("mg"))
    wait("VRF green in zebra", lambda: d.ns("mg") in frr.vrfs("fz"), timeout=10)
    _reload(d, TOPOLOGY)
    assert not (d.dir / "vrfs" / d.ns("mg")).exists()
    wait("VRF green gone", lambda: d.ns("mg") not in frr.vrfs("fz"), timeout=10)
    assert frr.vrfs("fz") == {d.ns("mr"), d.ns("mb")}
    wait("the OSPF routes still in red", lambda: "192.0.2.32/28" in _ospf_routes(d, "red"),
         timeout=30)  # fmt: skip


def test_stopping_the_one_frr_withdraws_both_vnets_routes(
    lab: tuple[Vrouterd, FrrLab],
) -> None:
    d, frr = lab
    wait("the OSPF routes", lambda: "192.0.2.32/28" in _ospf_routes(d, "red"), timeout=60)
    frr.stop()
    assert _frr_processes(d) == []
    wait(
        "the OSPF routes withdrawn from both vnets",
        lambda: not _ospf_routes(d, "red") and not _ospf_routes(d, "blue"),
        timeout=15,
    )
    for mirror in ("mr", "mb"):
        assert "proto ospf" not in run("ip", "-n", d.ns(mirror), "route").stdout
    ping = d.exec("h1", "ping", "-c", "2", "-i", "0.2", "-W", "1", "192.0.2.34", check=False)
    assert ping_received(ping.stdout) == 0


def test_a_stopped_daemon_leaves_no_mirror_in_the_vrf_dir(lab: tuple[Vrouterd, FrrLab]) -> None:
    d, _ = lab
    assert d.stop() == 0
    assert not list((d.dir / "vrfs").iterdir())
    assert not {d.ns("mr"), d.ns("mb")} & netns_list()


def test_what_a_killed_daemon_left_in_the_vrf_dir_goes_at_the_next_start(
    lab: tuple[Vrouterd, FrrLab],
) -> None:
    d, _ = lab
    vrf_dir = d.dir / "vrfs"
    mirrors = {d.ns("mr"), d.ns("mb")}
    d.start()
    assert {p.name for p in vrf_dir.iterdir() if is_mount_point(p)} == mirrors
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    assert {p.name for p in vrf_dir.iterdir() if is_mount_point(p)} == mirrors  # left behind
    d.start()
    assert "left by a previous run" in d.logtext()
    mounts = Path("/proc/self/mountinfo").read_text().split("\n")
    for ns in mirrors:  # bound once: the old bind taken out, not covered by the new
        assert sum(f" {vrf_dir / ns} " in line for line in mounts) == 1, ns
    assert d.stop() == 0
    assert not list(vrf_dir.iterdir())


BGP_CONF = """\
hostname fz
router bgp 64496 vrf {mr}
 bgp router-id 198.51.100.1
 no bgp ebgp-requires-policy
 timers bgp 1 3
 neighbor 198.51.100.2 remote-as 64497
 neighbor 198.51.100.2 timers connect 1
 address-family ipv4 unicast
  network 192.0.2.0/28
 exit-address-family
exit
router bgp 64497 vrf {mb}
 bgp router-id 198.51.100.2
 no bgp ebgp-requires-policy
 timers bgp 1 3
 neighbor 198.51.100.1 remote-as 64496
 neighbor 198.51.100.1 timers connect 1
 address-family ipv4 unicast
  network 192.0.2.32/28
 exit-address-family
exit
"""


def _bgp_routes(d: Vrouterd, vnet: str) -> dict[str, str | None]:
    rows = d.call("route.show", vnet=vnet, source="bgp")
    return {r["prefix"]: r.get("gateway") for r in rows}


def test_one_bgpd_serves_both_vnets(tmp_path: Path) -> None:
    """The same with BGP: one zebra and one bgpd, an eBGP session between the VRFs."""
    d = Vrouterd(tmp_path, TOPOLOGY)
    frr = FrrLab(d)
    try:
        d.start()
        run("ip", "netns", "add", d.ns("fz"))
        run("ip", "-n", d.ns("fz"), "link", "set", "lo", "up")
        conf = BGP_CONF.format(mr=d.ns("mr"), mb=d.ns("mb"))
        frr.start_vrfs("fz", d.dir / "vrfs", ("bgpd",), conf, {d.ns("mr"), d.ns("mb")})
        assert _frr_processes(d) == ["bgpd", "zebra"]
        wait(
            "the BGP routes in both vnets",
            lambda: (
                _bgp_routes(d, "red").get("192.0.2.32/28") == "198.51.100.2"
                and _bgp_routes(d, "blue").get("192.0.2.0/28") == "198.51.100.1"
            ),
            timeout=60,
        )
        ping = d.exec("h1", "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.34", check=False)
        assert ping_received(ping.stdout) == 3, ping.stdout + ping.stderr
        frr.stop()
        wait(
            "the BGP routes withdrawn from both vnets",
            lambda: not _bgp_routes(d, "red") and not _bgp_routes(d, "blue"),
            timeout=15,
        )
    finally:
        try:
            frr.stop()
        finally:
            try:
                d.close()
            finally:
                unmount_vrf_dir(d.dir / "vrfs")
