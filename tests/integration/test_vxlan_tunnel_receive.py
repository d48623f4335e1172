"""VXLAN with ``tunnel_gso``, receiving: a Linux VTEP's TCP super-frames reach the
daemon whole.

The daemon runs in a network namespace of its own beside a Linux VTEP, as in
test_vxlan_tunnel_gso.py, but the Linux VTEP's underlay veth keeps tx checksum
offload (its default): the kernel there hands the veth 64 KiB tunnel
super-frames whose inner checksums are partial.  A tc filter on the daemon's
underlay device redirects the VXLAN datagrams to the interface's TAP, which
takes them whole (UDP-tunnel GSO with the outer checksum); the daemon strips
the outer headers and passes each inner super-frame on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, assert_download_intact
from vxlanlab import LINUX_HOST, beside_linux, daemon_config, iperf3, over_ipv6
from vxlanlab import ping as _ping
from vxlanlab import vx_shown as _vx

pytestmark = pytest.mark.integration

CONFIG = daemon_config(11, 1, 2, 1).replace(
    'remotes = ["198.51.100.2"]\n', 'remotes = ["198.51.100.2"]\ntunnel_gso = true\n'
)
DAEMON_HOST = "192.0.2.11"


@pytest.fixture(scope="module", params=["ipv4", "ipv6"])
def lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Vrouterd]:
    ipv6 = request.param == "ipv6"
    config = over_ipv6(CONFIG) if ipv6 else CONFIG
    workdir = tmp_path_factory.mktemp(f"tunnelrx{request.param}")
    with beside_linux(workdir, config, ipv6=ipv6, tx_csum=True) as daemon:
        yield daemon


def _stat(daemon: Vrouterd, name: str) -> int:
    value: int = dict(_vx(daemon)["stats"])[name]  # type: ignore[call-overload]
    return value


def _ingress_filters(daemon: Vrouterd) -> str:
    return daemon.exec("d", "tc", "filter", "show", "dev", f"{daemon.prefix}u", "ingress").stdout


def test_the_underlay_redirects_to_the_tap(lab: Vrouterd) -> None:
    vx = _vx(lab)
    tap = str(vx["tunnel_gso"])
    assert tap.startswith("vxgso"), tap
    assert vx["tunnel_receive"] == f"{lab.prefix}u", vx["tunnel_receive"]
    filters = _ingress_filters(lab)
    assert "mirred" in filters and tap in filters, filters
    shown = lab.ctl("vxlan", "show", "lab")
    assert f"received whole through {tap} (redirected from {lab.prefix}u)" in shown.stdout, (
        shown.stdout
    )
    assert _ping(lab, "lx", DAEMON_HOST) == 3
    assert _ping(lab, "h1", LINUX_HOST) == 3


def test_iperf3_from_linux_arrives_in_super_frames(lab: Vrouterd) -> None:
    whole = _stat(lab, "received_whole")
    assert iperf3(lab, True) > 10_000_000
    received = _stat(lab, "received_whole") - whole
    # 2 s of bulk TCP: most of it came as super-frames of several segments.
    assert received > 100, received
    drops = dict(_vx(lab)["drops"])  # type: ignore[call-overload]
    assert not [k for k in drops if k.startswith("vxlan_tunnel")], drops


@pytest.mark.parametrize(("server", "client", "address"), [
    ("lx", "h1", LINUX_HOST), ("h1", "lx", DAEMON_HOST),
])  # fmt: skip
def test_a_10mb_download_arrives_intact(
    lab: Vrouterd, tmp_path: Path, server: str, client: str, address: str
) -> None:
    whole, sent = _stat(lab, "received_whole"), _stat(lab, "whole")
    assert_download_intact(lab, tmp_path, server, client, address, 10 * 1024 * 1024)
    if server == "lx":
        assert _stat(lab, "received_whole") > whole
    else:
        assert _stat(lab, "whole") > sent


def test_destroying_the_interface_removes_the_redirect(tmp_path: Path) -> None:
    with beside_linux(tmp_path, CONFIG, tx_csum=True) as daemon:
        assert "mirred" in _ingress_filters(daemon)
        assert daemon.ctl("ifconfig", "lab", "vx42", "destroy").returncode == 0
        assert _ingress_filters(daemon).strip() == ""
        qdiscs = daemon.exec("d", "tc", "qdisc", "show", "dev", f"{daemon.prefix}u").stdout
        assert "clsact" not in qdiscs, qdiscs


def _leave_filter(daemon: Vrouterd, pref: int, target: str, gone: bool, port: int = 4789) -> None:
    """Add a redirect of UDP to ``port`` to ``target`` (a veth made here, deleted again
    with ``gone``: what a killed daemon leaves) at ``pref`` on the underlay's ingress."""
    device = f"{daemon.prefix}u"
    daemon.exec("d", "tc", "qdisc", "add", "dev", device, "clsact")
    daemon.exec("d", "ip", "link", "add", target, "type", "veth", "peer", "name", f"{target}p")
    daemon.exec(
        "d", "tc", "filter", "add", "dev", device, "ingress", "pref", str(pref),
        "protocol", "ip", "u32", "match", "ip", "dport", str(port), "0xffff",
        "action", "mirred", "egress", "redirect", "dev", target,
    )  # fmt: skip
    if gone:
        daemon.exec("d", "ip", "link", "del", target)


def _create_vx42(daemon: Vrouterd, tunnel_gso: bool = True) -> None:
    made = daemon.ctl(
        "vxlan", "create", "lab", "vx42", "--vni", "42", "--local", "198.51.100.1",
        "--remote", "198.51.100.2", *(["--tunnel-gso"] if tunnel_gso else []),
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert daemon.ctl("bridge", "add", "lab", "br0", "vx42").returncode == 0


def test_a_leftover_filter_of_the_same_preference_is_replaced(tmp_path: Path) -> None:
    """A daemon killed with its filter in place leaves it behind; the next interface that
    gets the same TAP name (and so the same preference) replaces it."""
    with beside_linux(tmp_path, CONFIG, tx_csum=True) as daemon:
        assert daemon.ctl("ifconfig", "lab", "vx42", "destroy").returncode == 0
        assert _ingress_filters(daemon).strip() == ""
        # What a killed daemon leaves: a redirect to a TAP that is gone (the kernel drops
        # what it matches).  A veth stands for the TAP here.
        _leave_filter(daemon, 0x7000, f"{daemon.prefix}z", True)
        _create_vx42(daemon)
        assert _vx(daemon)["tunnel_gso"] == "vxgso0"
        filters = _ingress_filters(daemon)
        assert filters.count("mirred") == 1 and "vxgso0" in filters, filters
        assert _ping(daemon, "lx", DAEMON_HOST) == 3


def test_a_leftover_filter_of_another_preference_is_removed(tmp_path: Path) -> None:
    """A killed daemon's TAP had another number (so its filter another preference): the
    next interface on the device removes it all the same, or it would drop first."""
    with beside_linux(tmp_path, CONFIG, tx_csum=True) as daemon:
        assert daemon.ctl("ifconfig", "lab", "vx42", "destroy").returncode == 0
        _leave_filter(daemon, 0x7003, f"{daemon.prefix}z", True)
        _create_vx42(daemon)
        filters = _ingress_filters(daemon)
        assert filters.count("mirred") == 1 and "vxgso0" in filters, filters
        assert _ping(daemon, "lx", DAEMON_HOST) == 3


def test_a_leftover_filter_is_removed_by_an_interface_without_tunnel_gso(tmp_path: Path) -> None:
    """Restarted without ``tunnel_gso`` after a daemon was killed with it: the interface
    receives on its socket, which the leftover filter would starve."""
    with beside_linux(tmp_path, CONFIG, tx_csum=True) as daemon:
        assert daemon.ctl("ifconfig", "lab", "vx42", "destroy").returncode == 0
        _leave_filter(daemon, 0x7000, f"{daemon.prefix}z", True)
        _create_vx42(daemon, tunnel_gso=False)
        assert "mirred" not in _ingress_filters(daemon)
        assert _vx(daemon)["tunnel_receive"] in ("", None), _vx(daemon)
        assert _ping(daemon, "lx", DAEMON_HOST) == 3


def test_a_live_filter_of_the_same_preference_is_left_alone(tmp_path: Path) -> None:
    """A filter at the interface's preference whose target exists is not the daemon's
    leftover: it stays, and the interface receives on the socket."""
    with beside_linux(tmp_path, CONFIG, tx_csum=True) as daemon:
        assert daemon.ctl("ifconfig", "lab", "vx42", "destroy").returncode == 0
        kept = f"{daemon.prefix}k"
        _leave_filter(daemon, 0x7000, kept, False, port=9)
        try:
            _create_vx42(daemon)
            filters = _ingress_filters(daemon)
            assert filters.count("mirred") == 1 and kept in filters, filters
            assert str(_vx(daemon)["tunnel_receive"]).startswith("socket only"), _vx(daemon)
            assert _ping(daemon, "lx", DAEMON_HOST) == 3
        finally:
            daemon.exec("d", "ip", "link", "del", kept)
