"""VXLAN whose underlay is a vnet: the outer packets are that vnet's UDP, not the host's.

Vnet ``core`` has a TAP to namespace ``PREFIXlx`` (198.51.100.0/24), where a
Linux ``vxlan`` device and a bridge (192.0.2.20) sit.  Vnet ``lab`` bridges
host ``h1`` (192.0.2.11) with a vxlan interface whose underlay is ``core``:
the two ends share one L2 segment through a vnet's own routing, neighbours
and TAP, and the daemon opens no UDP socket of the host's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, assert_download_intact, run
from vxlanlab import LINUX_HOST, UNDERLAY_CONFIG, linux_vtep, vxlan_seen
from vxlanlab import ping as _ping

pytestmark = pytest.mark.integration


DAEMON_HOST = "192.0.2.11"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    daemon = Vrouterd(tmp_path_factory.mktemp("underlay"), UNDERLAY_CONFIG)
    try:
        daemon.start()
        linux_vtep(daemon.ns("lx"), f"{daemon.prefix}u", "198.51.100.2", ("remote", "198.51.100.1"))
        yield daemon
    finally:
        daemon.close()


def test_ping_both_ways_over_the_vnet_underlay(lab: Vrouterd) -> None:
    p = lab.prefix

    def pings() -> None:
        assert _ping(lab, "h1", LINUX_HOST) == 3
        assert _ping(lab, "lx", DAEMON_HOST) == 3

    out = vxlan_seen(lab.ns("lx"), f"{p}u", pings)
    assert "VXLAN, flags [I] (0x08), vni 42" in out, out
    assert "198.51.100.1.4789 > 198.51.100.2.4789" in out, out


def test_the_vnet_holds_the_socket_and_the_host_none(lab: Vrouterd) -> None:
    assert _ping(lab, "h1", LINUX_HOST) == 3
    (vx,) = lab.call("vxlan.show", vnet="lab")
    assert vx["underlay"] == "vnet core"
    assert (vx["mtu"], vx["underlay_mtu"]) == (1450, 1500)
    bridge_mac = json.loads(lab.exec("lx", "ip", "-j", "link", "show", "br0").stdout)[0]["address"]
    (vtep,) = vx["vteps"]
    assert vtep["address"] == "198.51.100.2" and vtep["rx_packets"] > 0
    assert bridge_mac in [m["mac"] for m in vtep["macs"]]
    shown = lab.ctl("vxlan", "show", "lab")
    assert shown.returncode == 0 and "over vnet core" in shown.stdout, shown.stdout + shown.stderr
    sockets = lab.call("sockstat", vnet="core")["sockets"]
    assert any(s["local"] == "198.51.100.1:4789" for s in sockets), sockets
    assert lab.proc is not None
    host = run("ss", "-uanp", "sport", "=", ":4789").stdout
    assert f"pid={lab.proc.pid}," not in host, host


@pytest.mark.parametrize(("server", "client", "address"), [
    ("lx", "h1", LINUX_HOST), ("h1", "lx", DAEMON_HOST),
])  # fmt: skip
def test_a_download_across_the_overlay_arrives_intact(
    lab: Vrouterd, tmp_path: Path, server: str, client: str, address: str
) -> None:
    assert_download_intact(lab, tmp_path, server, client, address, 4 * 1024 * 1024)


def test_destroyed_and_created_again_over_the_vnet(lab: Vrouterd) -> None:
    assert lab.ctl("ifconfig", "lab", "vx42", "destroy").returncode == 0
    sockets = lab.call("sockstat", vnet="core")["sockets"]
    assert not any(s["local"].endswith(":4789") for s in sockets), sockets
    assert _ping(lab, "h1", LINUX_HOST) == 0
    made = lab.ctl(
        "vxlan", "create", "lab", "vx42", "--vni", "42", "--local", "198.51.100.1",
        "--remote", "198.51.100.2", "--underlay", "core",
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert lab.ctl("bridge", "add", "lab", "br0", "vx42").returncode == 0
    assert _ping(lab, "h1", LINUX_HOST) == 3
    bad = lab.ctl(
        "vxlan", "create", "lab", "vx43", "--vni", "43", "--local", "203.0.113.9",
        "--remote", "198.51.100.2", "--underlay", "core",
    )  # fmt: skip
    assert bad.returncode != 0 and "not an address of vnet core" in bad.stderr, bad.stderr
