"""A multicast group over a vnet underlay, and an underlay vnet that comes back.

Vnet ``core`` has a TAP to namespace ``PREFIXlx`` (198.51.100.0/24), where a
Linux ``vxlan`` device joined to group 239.1.1.42 on that TAP and a bridge
(192.0.2.20) sit.  Vnet ``lab`` bridges host ``h1`` (192.0.2.11) with a
vxlan interface in the same group whose underlay is ``core``: broadcasts
from either side reach the other through the group, which the vnet joins
(and reports, so the kernel's snooping would forward it) on its TAP.
Then ``core`` is destroyed and made again by hand: the overlay resumes
without the vxlan interface being touched.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator

import pytest
from harness import Vrouterd, run, wait_listening
from vxlanlab import LINUX_HOST, UNDERLAY_CONFIG, linux_vtep, vxlan_seen
from vxlanlab import ping as _ping

pytestmark = pytest.mark.integration

GROUP = "239.1.1.42"
CONFIG = UNDERLAY_CONFIG.replace('remotes = ["198.51.100.2"]', f'group = "{GROUP}"')

DAEMON_HOST = "192.0.2.11"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    daemon = Vrouterd(tmp_path_factory.mktemp("ugroup"), CONFIG)
    try:
        daemon.start()
        linux_vtep(daemon.ns("lx"), f"{daemon.prefix}u", "198.51.100.2", ("group", GROUP))
        yield daemon
    finally:
        daemon.close()


def test_the_linux_side_finds_the_vnet_host_through_the_group(lab: Vrouterd) -> None:
    p = lab.prefix
    # Linux first: its ARP request for the vnet's host can only arrive through the group.
    # Only Linux's datagrams: the vnet's own MLD reports go to the group too, at times of
    # their own.
    out = vxlan_seen(lab.ns("lx"), f"{p}u", lambda: None if _ping(lab, "lx", DAEMON_HOST) == 3
                     else pytest.fail("no answer from the vnet's host"), count=3,
                     src="198.51.100.2")  # fmt: skip
    request = rf"198\.51\.100\.2\.\d+ > {GROUP}\.4789: VXLAN.*vni 42\nARP, Request"
    assert re.search(request, out), out
    assert _ping(lab, "h1", LINUX_HOST) == 3
    (vx,) = lab.call("vxlan.show", vnet="lab")
    assert vx["underlay"] == "vnet core" and vx["group"] == GROUP
    (vtep,) = [v for v in vx["vteps"] if v["address"] == "198.51.100.2"]
    assert vtep["rx_packets"] > 0


def test_broadcasts_from_the_vnet_go_to_the_group_with_ttl_1(lab: Vrouterd) -> None:
    p = lab.prefix
    run("ip", "-n", lab.ns("lx"), "neigh", "flush", "dev", "br0")
    run("ip", "-n", lab.ns("h1"), "neigh", "flush", "all")
    dump = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns("lx"), "tcpdump", "-n", "-l", "-v", "-c", "1", "-i",
         f"{p}u", "udp", "port", "4789", "and", "dst", GROUP, "and", "src", "198.51.100.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_listening(dump)
        assert _ping(lab, "h1", LINUX_HOST) == 3
        out, _ = dump.communicate(timeout=15)
    finally:
        if dump.poll() is None:
            dump.kill()
            dump.wait(10)
    assert f"198.51.100.1.4789 > {GROUP}.4789" in out and "ttl 1," in out, out


def test_the_underlay_vnet_holds_a_socket_of_the_group(lab: Vrouterd) -> None:
    sockets = lab.call("sockstat", vnet="core")["sockets"]
    bound = sorted(s["local"] for s in sockets)
    assert bound == ["198.51.100.1:4789", f"{GROUP}:4789"], sockets
    assert lab.proc is not None
    host = run("ss", "-uanp", "sport", "=", ":4789").stdout
    assert f"pid={lab.proc.pid}," not in host, host


def test_the_overlay_resumes_when_its_underlay_vnet_is_made_again(lab: Vrouterd) -> None:
    p = lab.prefix
    assert lab.ctl("vnet", "destroy", "core").returncode == 0
    assert _ping(lab, "h1", LINUX_HOST) == 0
    (vx,) = lab.call("vxlan.show", vnet="lab")
    assert vx["drops"]["vxlan_underlay"] > 0, vx  # counted; the interface stays
    assert lab.ctl("vnet", "create", "core").returncode == 0
    made = lab.ctl("tap", "create", "core", f"{p}u", "198.51.100.1/24")
    assert made.returncode == 0, made.stdout + made.stderr
    ns = lab.ns("lx2")
    run("ip", "netns", "add", ns)
    run("ip", "link", "set", f"{p}u", "netns", ns)
    for cmd in (("addr", "add", "198.51.100.2/24", "dev", f"{p}u"), ("link", "set", f"{p}u", "up"),
                ("link", "set", "lo", "up")):  # fmt: skip
        run("ip", "-n", ns, *cmd)
    linux_vtep(ns, f"{p}u", "198.51.100.2", ("group", GROUP))
    run("ip", "-n", lab.ns("h1"), "neigh", "flush", "all")  # the Linux bridge's MAC is new
    deadline = time.monotonic() + 15  # the vnet sees the TAP's carrier come up first
    while _ping(lab, "h1", LINUX_HOST) < 3:
        assert time.monotonic() < deadline, "the overlay did not resume"
    assert _ping(lab, "h1", LINUX_HOST) == 3
    assert "underlay vnet core is back" in lab.logtext()
