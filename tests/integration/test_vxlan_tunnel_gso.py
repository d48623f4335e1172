"""VXLAN with ``tunnel_gso``: TCP super-frames leave whole through a TAP whose
virtio-net header carries UDP-tunnel GSO, and the kernel segments them.

The daemon runs in a network namespace of its own (VTEP 198.51.100.1 on a
veth underlay) beside a Linux VTEP (``PREFIXlx``, 198.51.100.2) with vx42 in
a bridge holding 192.0.2.20, as in test_vxlan.py.  This kernel (6.17 or
later) takes the offload; with strict reverse-path filtering in the
daemon's namespace the interface falls back to the socket alone, and the
overlay works the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, assert_download_intact
from vxlanlab import LINUX_HOST, beside_linux, daemon_config
from vxlanlab import ping as _ping
from vxlanlab import vx_shown as _vx

pytestmark = pytest.mark.integration

CONFIG = daemon_config(11, 1, 2, 1).replace(
    'remotes = ["198.51.100.2"]\n', 'remotes = ["198.51.100.2"]\ntunnel_gso = true\n'
)

DAEMON_HOST = "192.0.2.11"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    with beside_linux(tmp_path_factory.mktemp("tunnelgso"), CONFIG) as daemon:
        yield daemon


def _tap_rx_packets(daemon: Vrouterd, name: str) -> int:
    shown = daemon.exec("d", "ip", "-s", "-j", "link", "show", name).stdout
    packets: int = json.loads(shown)[0]["stats64"]["rx"]["packets"]
    return packets


def test_ping_both_ways_and_the_offload_is_in_use(lab: Vrouterd) -> None:
    assert _ping(lab, "h1", LINUX_HOST) == 3
    assert _ping(lab, "lx", DAEMON_HOST) == 3
    vx = _vx(lab)
    assert str(vx["tunnel_gso"]).startswith("vxgso"), vx["tunnel_gso"]
    shown = lab.ctl("vxlan", "show", "lab")
    assert shown.returncode == 0 and "tunnel_gso: vxgso" in shown.stdout, shown.stdout


@pytest.mark.parametrize(("server", "client", "address"), [
    ("h1", "lx", DAEMON_HOST), ("lx", "h1", LINUX_HOST),
])  # fmt: skip
def test_a_10mb_download_arrives_intact(
    lab: Vrouterd, tmp_path: Path, server: str, client: str, address: str
) -> None:
    tap = str(_vx(lab)["tunnel_gso"])
    before = _tap_rx_packets(lab, tap)
    whole = dict(_vx(lab)["stats"])["whole"]  # type: ignore[call-overload]
    assert_download_intact(lab, tmp_path, server, client, address, 10 * 1024 * 1024)
    if server == "h1":  # the daemon encapsulates: super-frames went whole to the kernel
        assert dict(_vx(lab)["stats"])["whole"] > whole  # type: ignore[call-overload]
        assert _tap_rx_packets(lab, tap) > before


def test_strict_rp_filter_falls_back_to_the_socket(tmp_path: Path) -> None:
    with beside_linux(tmp_path, CONFIG, "net.ipv4.conf.all.rp_filter=1") as daemon:
        vx = _vx(daemon)
        assert "not in use" in str(vx["tunnel_gso"]) and "rp_filter" in str(vx["tunnel_gso"])
        assert "vxgso" not in daemon.exec("d", "ip", "link", "show").stdout
        assert _ping(daemon, "h1", LINUX_HOST) == 3
        assert_download_intact(daemon, tmp_path, "h1", "lx", DAEMON_HOST, 2 * 1024 * 1024)
        assert dict(_vx(daemon)["stats"])["whole"] == 0  # type: ignore[call-overload]


def test_loose_rp_filter_keeps_the_offload(tmp_path: Path) -> None:
    """systemd sets net.ipv4.conf.all.rp_filter = 2: the TAP holds local as a /32, so the
    loose filter passes the encapsulated packets."""
    with beside_linux(tmp_path, CONFIG, "net.ipv4.conf.all.rp_filter=2") as daemon:
        assert str(_vx(daemon)["tunnel_gso"]).startswith("vxgso")
        assert_download_intact(daemon, tmp_path, "h1", "lx", DAEMON_HOST, 2 * 1024 * 1024)
        assert dict(_vx(daemon)["stats"])["whole"] > 0  # type: ignore[call-overload]


def test_destroying_the_interface_removes_its_tap(tmp_path: Path) -> None:
    with beside_linux(tmp_path, CONFIG) as daemon:
        assert "vxgso" in daemon.exec("d", "ip", "link", "show").stdout
        assert daemon.ctl("ifconfig", "lab", "vx42", "destroy").returncode == 0
        assert "vxgso" not in daemon.exec("d", "ip", "link", "show").stdout
        assert _ping(daemon, "h1", LINUX_HOST) == 0

