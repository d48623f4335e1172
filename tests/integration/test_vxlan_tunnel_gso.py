"""VXLAN with ``tunnel_gso``: TCP super-frames leave whole through a TAP whose
virtio-net header carries UDP-tunnel GSO, and the kernel segments them.

The daemon runs in a network namespace of its own (VTEP 198.51.100.1 on a
veth underlay) beside a Linux VTEP (``PREFIXlx``, 198.51.100.2) with vx42 in
a bridge holding 192.0.2.20, as in test_vxlan.py; the IPv6 cases put both
VTEPs on 2001:db8:42::/64 instead.  This kernel (6.17 or later) takes the
offload; with strict reverse-path filtering in the daemon's namespace the
interface falls back to the socket alone, and the overlay works the same.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, assert_download_intact, run, wait_listening
from vxlanlab import LINUX_HOST, UNDERLAY6, beside_linux, daemon_config, iperf3, over_ipv6
from vxlanlab import ping as _ping
from vxlanlab import vx_shown as _vx

pytestmark = pytest.mark.integration

CONFIG_CHANGE = ('remotes = ["198.51.100.2"]\n', 'remotes = ["198.51.100.2"]\ntunnel_gso = true\n')
"""What turns tunnel_gso on in :func:`daemon_config`'s text."""
CONFIG = daemon_config(11, 1, 2, 1).replace(*CONFIG_CHANGE)

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
    assert shown.returncode == 0 and "tunnel_gso: in use through vxgso" in shown.stdout, (
        shown.stdout
    )


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
        shown = daemon.ctl("vxlan", "show", "lab").stdout
        assert "tunnel_gso: not in use: net.ipv4.conf.all.rp_filter is 1" in shown, shown
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


# -- over an IPv6 underlay ----------------------------------------------------------------

CONFIG6 = over_ipv6(CONFIG)


@pytest.fixture(scope="module")
def lab6(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    with beside_linux(tmp_path_factory.mktemp("tunnelgso6"), CONFIG6, ipv6=True) as daemon:
        yield daemon


def test_over_ipv6_the_offload_is_in_use_and_ping_works(lab6: Vrouterd) -> None:
    assert _ping(lab6, "h1", LINUX_HOST) == 3
    assert _ping(lab6, "lx", DAEMON_HOST, "-s", "1402") == 3  # 1430 inner: fits
    vx = _vx(lab6)
    assert (vx["mtu"], vx["underlay_mtu"]) == (1430, 1500)
    assert str(vx["tunnel_gso"]).startswith("vxgso"), vx["tunnel_gso"]
    (vtep,) = vx["vteps"]  # type: ignore[misc]
    assert vtep["address"] == UNDERLAY6[1] and vtep["macs"]
    shown = lab6.ctl("vxlan", "show", "lab")
    assert shown.returncode == 0 and "tunnel_gso: in use" in shown.stdout, shown.stdout
    # The TAP holds local as a /128 and forwards; it has no link-local address.
    tap = str(vx["tunnel_gso"])
    addresses = lab6.exec("d", "ip", "-6", "-o", "addr", "show", "dev", tap).stdout
    assert f"{UNDERLAY6[0]}/128" in addresses and "fe80" not in addresses, addresses


@pytest.mark.parametrize("reverse", [False, True], ids=["daemon-to-linux", "linux-to-daemon"])
def test_over_ipv6_iperf3_across_the_overlay(lab6: Vrouterd, reverse: bool) -> None:
    whole = dict(_vx(lab6)["stats"])["whole"]  # type: ignore[call-overload]
    tap = str(_vx(lab6)["tunnel_gso"])
    before = _tap_rx_packets(lab6, tap)
    assert iperf3(lab6, reverse) > 10_000_000
    if not reverse:  # the daemon encapsulates: super-frames went whole to the kernel
        assert dict(_vx(lab6)["stats"])["whole"] > whole  # type: ignore[call-overload]
        assert _tap_rx_packets(lab6, tap) > before


@pytest.mark.parametrize(("server", "client", "address"), [
    ("h1", "lx", DAEMON_HOST), ("lx", "h1", LINUX_HOST),
])  # fmt: skip
def test_over_ipv6_a_10mb_download_arrives_intact(
    lab6: Vrouterd, tmp_path: Path, server: str, client: str, address: str
) -> None:
    whole = dict(_vx(lab6)["stats"])["whole"]  # type: ignore[call-overload]
    assert_download_intact(lab6, tmp_path, server, client, address, 10 * 1024 * 1024)
    if server == "h1":
        assert dict(_vx(lab6)["stats"])["whole"] > whole  # type: ignore[call-overload]


def test_over_ipv6_the_underlay_carries_valid_vxlan(lab6: Vrouterd) -> None:
    """With the daemon's underlay veth segmenting and checksumming in software (as a NIC
    does on the wire), the super-frames the kernel cut leave as IPv6 VXLAN datagrams of
    the underlay's MTU whose outer UDP and inner TCP checksums tcpdump finds right."""
    p = lab6.prefix
    software = ("ip", "netns", "exec", f"{p}d", "ethtool", "-K", f"{p}u")
    run(*software, "tx", "off")
    whole = dict(_vx(lab6)["stats"])["whole"]  # type: ignore[call-overload]
    server = subprocess.Popen(
        ["ip", "netns", "exec", lab6.ns("lx"), "iperf3", "-s", "-1", "-B", LINUX_HOST],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    dump = subprocess.Popen(
        ["ip", "netns", "exec", f"{p}lx", "tcpdump", "-n", "-vv", "-l", "-c", "300", "-i",
         f"{p}v", "ip6", "and", "udp", "port", "4789", "and", "greater", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_listening(dump)
        time.sleep(1.0)  # iperf3 is listening
        lab6.exec("h1", "iperf3", "-c", LINUX_HOST, "-t", "2", timeout=60, check=False)
        time.sleep(0.5)
        dump.terminate()
        out, _ = dump.communicate(timeout=15)
    finally:
        for proc in (server, dump):
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        run(*software, "tx", "on")
    assert dict(_vx(lab6)["stats"])["whole"] > whole  # type: ignore[call-overload]
    outer = [int(n) for n in re.findall(r"next-header UDP \(17\) payload length: (\d+)", out)]
    assert len(outer) >= 100, out[-2000:]
    assert max(outer) + 40 <= 1500, sorted(set(outer))[-5:]
    assert f"{UNDERLAY6[0]}.4789 > {UNDERLAY6[1]}.4789" in out, out[-2000:]
    # Every packet but maybe the last (cut short by terminate) decoded and checked.
    assert out.count("VXLAN, flags [I] (0x08), vni 42") >= len(outer) - 1
    assert out.count("[udp sum ok]") >= len(outer) - 1, out[-2000:]
    assert out.count("(correct)") >= len(outer) - 1, out[-2000:]  # the inner TCP checksums
    assert "incorrect" not in out and "bad udp cksum" not in out, out[-2000:]


def test_over_ipv6_destroying_the_interface_removes_its_tap_and_local_stays(
    tmp_path: Path,
) -> None:
    with beside_linux(tmp_path, CONFIG6, ipv6=True) as daemon:
        tap = str(_vx(daemon)["tunnel_gso"])
        assert tap.startswith("vxgso")
        assert daemon.ctl("ifconfig", "lab", "vx42", "destroy").returncode == 0
        assert tap not in daemon.exec("d", "ip", "link", "show").stdout
        # The underlay keeps local: the Linux VTEP still reaches it.
        assert UNDERLAY6[0] in daemon.exec("d", "ip", "-6", "addr", "show").stdout
        reached = daemon.exec("lx", "ping", "-c", "1", "-W", "2", UNDERLAY6[0], check=False)
        assert reached.returncode == 0, reached.stdout


# -- at run time and through a reload -----------------------------------------------------


def test_created_at_run_time_with_tunnel_gso(tmp_path: Path) -> None:
    with beside_linux(tmp_path, daemon_config(11, 1, 2, 1)) as daemon:
        assert _vx(daemon)["tunnel_gso"] == ""  # not asked for
        assert "vxgso" not in daemon.exec("d", "ip", "link", "show").stdout
        assert daemon.ctl("ifconfig", "lab", "vx42", "destroy").returncode == 0
        made = daemon.ctl(
            "vxlan", "create", "lab", "vx42", "--vni", "42", "--local", "198.51.100.1",
            "--remote", "198.51.100.2", "--tunnel-gso",
        )  # fmt: skip
        assert made.returncode == 0, made.stdout + made.stderr
        assert "tunnel_gso in use through vxgso" in made.stdout, made.stdout
        joined = daemon.ctl("bridge", "add", "lab", "br0", "vx42")
        assert joined.returncode == 0, joined.stdout + joined.stderr
        assert str(_vx(daemon)["tunnel_gso"]).startswith("vxgso")
        assert "vxgso" in daemon.exec("d", "ip", "link", "show").stdout
        assert _ping(daemon, "h1", LINUX_HOST) == 3
        assert_download_intact(daemon, tmp_path, "h1", "lx", DAEMON_HOST, 2 * 1024 * 1024)
        assert dict(_vx(daemon)["stats"])["whole"] > 0  # type: ignore[call-overload]
        assert "tunnel_gso = true" in daemon.ctl("config", "dump").stdout
        # Over a vnet's UDP there is no host kernel to hand super-frames to: refused.
        bad = daemon.ctl(
            "vxlan", "create", "lab", "vx43", "--vni", "43", "--local", "198.51.100.1",
            "--underlay", "lab", "--tunnel-gso",
        )  # fmt: skip
        assert bad.returncode != 0 and "a vnet underlay has none" in bad.stderr, bad


def test_a_reload_turns_tunnel_gso_on_and_off(tmp_path: Path) -> None:
    with beside_linux(tmp_path, daemon_config(11, 1, 2, 1)) as daemon:
        plain = daemon.config.read_text()
        daemon.config.write_text(plain.replace(*CONFIG_CHANGE))
        reloaded = daemon.ctl("reload")
        assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
        assert str(_vx(daemon)["tunnel_gso"]).startswith("vxgso")
        assert_download_intact(daemon, tmp_path, "h1", "lx", DAEMON_HOST, 2 * 1024 * 1024)
        assert dict(_vx(daemon)["stats"])["whole"] > 0  # type: ignore[call-overload]
        daemon.config.write_text(plain)
        reloaded = daemon.ctl("reload")
        assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
        assert _vx(daemon)["tunnel_gso"] == ""
        assert "vxgso" not in daemon.exec("d", "ip", "link", "show").stdout
        assert _ping(daemon, "h1", LINUX_HOST) == 3
