"""VXLAN with real peers: a Linux kernel vxlan device, and a second vrouterd.

Every daemon runs in a network namespace of its own, joined to its peer by
a veth underlay (198.51.100.0/24); otherwise the kernel would deliver the
underlay traffic locally and never use the veth.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, assert_download_intact, run, wait_listening
from vxlanlab import LINUX_HOST, LINUX_MAC, beside_linux, iperf3, start_pair, vxlan_seen
from vxlanlab import daemon_config as _config
from vxlanlab import linux_peer as _linux_vtep
from vxlanlab import ping as _ping
from vxlanlab import start_in_netns as _start_in_netns
from vxlanlab import vx_shown as _vx

pytestmark = pytest.mark.integration

DAEMON_HOST = "192.0.2.11"


@pytest.fixture(scope="module")
def linux(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    """A daemon (VTEP 198.51.100.1) and a Linux netns ``PREFIXlx`` (VTEP .2) with vx42 in a
    Linux bridge holding 192.0.2.20."""
    with beside_linux(tmp_path_factory.mktemp("vxlan"), _config(11, 1, 2, 1)) as daemon:
        yield daemon


def test_ping_both_ways_and_the_underlay_carries_valid_vxlan(linux: Vrouterd) -> None:
    p = linux.prefix

    def pings() -> None:
        assert _ping(linux, "h1", LINUX_HOST) == 3
        assert _ping(linux, "lx", DAEMON_HOST) == 3

    out = vxlan_seen(f"{p}lx", f"{p}v", pings)
    assert "VXLAN, flags [I] (0x08), vni 42" in out, out
    assert "198.51.100.1.4789 > 198.51.100.2.4789" in out or "198.51.100.2.4789" in out, out
    # The remote VTEP and the MAC behind it (the Linux bridge's own).
    bridge_mac = json.loads(linux.exec("lx", "ip", "-j", "link", "show", "br0").stdout)[0][
        "address"
    ]
    vx = _vx(linux)
    (vtep,) = vx["vteps"]  # type: ignore[misc]
    assert vtep["address"] == "198.51.100.2" and vtep["static"]
    assert bridge_mac in [m["mac"] for m in vtep["macs"]]
    assert vx["mtu"] == 1450 and vx["underlay_mtu"] == 1500
    shown = linux.ctl("vxlan", "show", "lab")
    assert shown.returncode == 0, shown.stderr
    assert "198.51.100.2" in shown.stdout and bridge_mac in shown.stdout, shown.stdout
    as_json = json.loads(linux.ctl("vxlan", "show", "lab", "vx42", "-j").stdout)
    assert as_json[0]["vni"] == 42


@pytest.mark.parametrize("reverse", [False, True], ids=["daemon-to-linux", "linux-to-daemon"])
def test_iperf3_across_the_overlay(linux: Vrouterd, reverse: bool) -> None:
    assert iperf3(linux, reverse) > 1_000_000


def test_a_tcp_burst_leaves_as_valid_vxlan_datagrams_of_the_underlay_mtu(linux: Vrouterd) -> None:
    """The TAP's TSO super-frames leave as UDP_SEGMENT sends; with the underlay veth
    segmenting and checksumming in software (as a NIC does on the wire), every outer
    packet fits the underlay's MTU and tcpdump finds the outer UDP and inner TCP
    checksums right."""
    p = linux.prefix
    software = ("ip", "netns", "exec", f"{p}d", "ethtool", "-K", f"{p}u")
    run(*software, "tx-udp-segmentation", "off", "tx", "off")
    server = subprocess.Popen(
        ["ip", "netns", "exec", linux.ns("lx"), "iperf3", "-s", "-1", "-B", LINUX_HOST],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    dump = subprocess.Popen(
        ["ip", "netns", "exec", f"{p}lx", "tcpdump", "-n", "-vv", "-l", "-c", "300", "-i",
         f"{p}v", "udp", "port", "4789", "and", "greater", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_listening(dump)
        time.sleep(1.0)  # iperf3 is listening
        linux.exec("h1", "iperf3", "-c", LINUX_HOST, "-t", "2", timeout=60, check=False)
        time.sleep(0.5)
        dump.terminate()
        out, _ = dump.communicate(timeout=15)
    finally:
        for proc in (server, dump):
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        run(*software, "tx-udp-segmentation", "on", "tx", "on")
    outer = [int(n) for n in re.findall(r"proto UDP \(17\), length (\d+)", out)]
    assert len(outer) >= 100, out[-2000:]
    assert max(outer) <= 1500, sorted(set(outer))[-5:]
    # Every packet but maybe the last (cut short by terminate) decoded and checked.
    assert out.count("VXLAN, flags [I] (0x08), vni 42") >= len(outer) - 1
    assert out.count("[udp sum ok]") >= len(outer) - 1, out[-2000:]
    assert out.count("(correct)") >= len(outer) - 1, out[-2000:]  # the inner TCP checksums
    assert "incorrect" not in out and "bad udp cksum" not in out, out[-2000:]


@pytest.mark.parametrize(("server", "client", "address"), [
    ("lx", "h1", LINUX_HOST), ("h1", "lx", DAEMON_HOST),
])  # fmt: skip
def test_10mb_download_arrives_intact(
    linux: Vrouterd, tmp_path: Path, server: str, client: str, address: str
) -> None:
    assert_download_intact(linux, tmp_path, server, client, address, 10 * 1024 * 1024)


def test_malformed_datagrams_are_dropped_and_counted(linux: Vrouterd) -> None:
    before = linux.counters("lab", "vx42")["rx_drops"]
    script = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "inner = bytes.fromhex('ffffffffffff0200000000aa88b5') + bytes(46)\n"
        "for d in (b'\\x08\\x00', bytes(8) + inner,\n"
        "          bytes.fromhex('0800000000002b00') + inner):\n"
        "    s.sendto(d, ('198.51.100.1', 4789))\n"
    )
    linux.python("lx", "-c", script)
    time.sleep(0.5)
    after = linux.counters("lab", "vx42")["rx_drops"]
    for reason in ("vxlan_truncated", "vxlan_bad_flags", "vxlan_unknown_vni"):
        assert after.get(reason, 0) == before.get(reason, 0) + 1, (reason, after)
    assert _ping(linux, "h1", LINUX_HOST) == 3  # and the daemon runs on


def test_an_outer_packet_too_big_for_the_underlay_is_dropped_and_counted(linux: Vrouterd) -> None:
    p = linux.prefix
    ns = f"{p}d"
    before = linux.counters("lab", "vx42")["tx_drops"].get("vxlan_too_big", 0)
    run("ip", "-n", ns, "link", "set", f"{p}u", "mtu", "1400")
    try:
        # 1400 bytes of ICMP in 1450 of inner MTU: 1486 outer bytes, no fragment leaves.
        assert _ping(linux, "h1", LINUX_HOST, "-M", "do", "-s", "1400") == 0
        assert _ping(linux, "h1", LINUX_HOST, "-s", "1000") == 3
    finally:
        run("ip", "-n", ns, "link", "set", f"{p}u", "mtu", "1500")
    after = linux.counters("lab", "vx42")["tx_drops"].get("vxlan_too_big", 0)
    assert after >= before + 3


def test_destroyed_and_created_again_at_run_time(linux: Vrouterd) -> None:
    p = linux.prefix
    assert linux.ctl("ifconfig", "lab", "vx42", "destroy").returncode == 0
    assert not any("198.51.100.1:4789" in line for line in _udp_sockets(linux))
    assert _ping(linux, "h1", LINUX_HOST) == 0
    made = linux.ctl(
        "vxlan", "create", "lab", "vx42", "--vni", "42", "--local", "198.51.100.1",
        "--remote", "198.51.100.2",
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert "VNI 42, mtu 1450" in made.stdout, made.stdout
    assert any("198.51.100.1:4789" in line for line in _udp_sockets(linux))
    joined = linux.ctl("bridge", "add", "lab", "br0", "vx42")
    assert joined.returncode == 0, joined.stdout + joined.stderr
    assert _ping(linux, "h1", LINUX_HOST) == 3
    (br,) = linux.call("bridge.show", vnet="lab")
    assert sorted(port["name"] for port in br["ports"]) == sorted([f"{p}1", "vx42"])


def _udp_sockets(daemon: Vrouterd) -> list[str]:
    out = run("ip", "netns", "exec", f"{daemon.prefix}d", "ss", "-uanp").stdout
    assert daemon.proc is not None
    return [line for line in out.splitlines() if f"pid={daemon.proc.pid}," in line]


def test_destroy_and_sigterm_free_the_socket(tmp_path: Path) -> None:
    daemon = Vrouterd(tmp_path, _config(11, 1, 2, 1))
    try:
        _start_in_netns(daemon, "198.51.100.1")
        assert any("198.51.100.1:4789" in line for line in _udp_sockets(daemon))
        assert daemon.call("vxlan.show", vnet="lab")
        destroyed = daemon.ctl("ifconfig", "lab", "vx42", "destroy")
        assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
        assert not any("198.51.100.1:4789" in line for line in _udp_sockets(daemon))
        assert daemon.call("vxlan.show", vnet="lab") == []
        (br,) = daemon.call("bridge.show", vnet="lab")
        assert [port["name"] for port in br["ports"]] == [f"{daemon.prefix}1"]
        assert daemon.stop() == 0
        assert f"{daemon.prefix}h1" not in run("ip", "netns", "list").stdout
    finally:
        daemon.close()


def test_sigterm_with_a_live_vxlan_leaves_nothing(tmp_path: Path) -> None:
    daemon = Vrouterd(tmp_path, _config(11, 1, 2, 1))
    try:
        _start_in_netns(daemon, "198.51.100.1")
        assert daemon.proc is not None
        fds = os.listdir(f"/proc/{daemon.proc.pid}/fd")
        assert fds
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.logtext()
        assert f"{daemon.prefix}h1" not in run("ip", "netns", "list").stdout
    finally:
        daemon.close()


def test_two_daemons_join_their_hosts_over_vxlan(tmp_path: Path) -> None:
    a = Vrouterd(tmp_path / "a", _config(31, 1, 2, 1))
    b = Vrouterd(tmp_path / "b", _config(32, 2, 1, 2))
    try:
        start_pair(a, b)
        assert _ping(a, "h1", "192.0.2.32") == 3
        assert _ping(b, "h1", "192.0.2.31") == 3
        assert _ping(a, "h1", "192.0.2.2") == 3  # b's bridge address, across the overlay
        mac_b = json.loads(b.exec("h1", "ip", "-j", "link", "show", f"{b.prefix}1").stdout)[0][
            "address"
        ]
        (vtep,) = _vx(a)["vteps"]  # type: ignore[misc]
        assert mac_b in [m["mac"] for m in vtep["macs"]]
    finally:
        b.close()
        a.close()


def test_a_multicast_group_instead_of_remotes(tmp_path: Path) -> None:
    config = _config(11, 1, 2, 1).replace('remotes = ["198.51.100.2"]', 'group = "239.1.1.42"')
    daemon = Vrouterd(tmp_path, config)
    try:
        _start_in_netns(daemon, "198.51.100.1")
        _linux_vtep(daemon, mac=None, peer=("group", "239.1.1.42"))
        assert _ping(daemon, "h1", LINUX_HOST) == 3
        assert _ping(daemon, "lx", DAEMON_HOST) == 3
        vx = _vx(daemon)
        assert vx["group"] == "239.1.1.42"
        learnt = {v["address"]: v for v in vx["vteps"]}  # type: ignore[attr-defined]
        assert not learnt["198.51.100.2"]["static"] and learnt["198.51.100.2"]["macs"]
        assert vx["stats"]["flooded"] >= 1  # type: ignore[index]
    finally:
        daemon.close()


def test_an_ipv6_underlay_gives_up_70_bytes(tmp_path: Path) -> None:
    config = (
        _config(11, 1, 2, 1)
        .replace('local = "198.51.100.1"', 'local = "2001:db8:42::1"')
        .replace('remotes = ["198.51.100.2"]', 'remotes = ["2001:db8:42::2"]')
        .replace("mtu = 1450", "mtu = 1430")
    )
    daemon = Vrouterd(tmp_path, config)
    try:
        p = daemon.prefix
        ns = f"{p}d"
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", f"{p}u", "type", "veth", "peer", "name", f"{p}v")
        run("ip", "link", "set", f"{p}u", "netns", ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "addr", "add", "2001:db8:42::1/64", "dev", f"{p}u", "nodad")
        run("ip", "-n", ns, "link", "set", f"{p}u", "up")
        _linux_vtep(daemon, mac=None, peer=("remote", "2001:db8:42::1"), local="2001:db8:42::2/64")
        daemon.start(netns=ns)
        daemon.wait_ipv6()
        vx = _vx(daemon)
        assert (vx["mtu"], vx["underlay_mtu"]) == (1430, 1500)
        assert _ping(daemon, "h1", LINUX_HOST) == 3
        assert _ping(daemon, "lx", DAEMON_HOST, "-s", "1402") == 3  # 1430 inner: fits
        vx = _vx(daemon)
        (vtep,) = vx["vteps"]  # type: ignore[misc]
        assert vtep["address"] == "2001:db8:42::2" and vtep["macs"]
    finally:
        daemon.close()


def _ping_fresh(daemon: Vrouterd) -> int:
    """Ping the daemon's host from the Linux side with no neighbour left of a failed try."""
    run("ip", "-n", daemon.ns("lx"), "neigh", "flush", "dev", "br0")
    return _ping(daemon, "lx", DAEMON_HOST)


def test_a_vtep_reached_only_through_a_static_per_mac_entry(tmp_path: Path) -> None:
    # No remotes and no learning: the daemon sends to the Linux VTEP only what the
    # static entry for the Linux bridge's MAC sends there.
    config = _config(11, 1, 2, 1).replace('remotes = ["198.51.100.2"]', "learning = false")
    daemon = Vrouterd(tmp_path, config)
    try:
        _start_in_netns(daemon, "198.51.100.1")
        _linux_vtep(daemon)
        assert _ping_fresh(daemon) == 0
        before = linux_drops = daemon.counters("lab", "vx42")["tx_drops"]
        assert linux_drops.get("vxlan_no_remote", 0) >= 1, before
        added = daemon.ctl("bridge", "fdb", "lab", "add", LINUX_MAC, "vx42", "dst", "198.51.100.2")
        assert added.returncode == 0, added.stdout + added.stderr
        assert "static 02:00:5e:00:53:20 on vx42 dst 198.51.100.2 added" in added.stdout
        assert _ping_fresh(daemon) == 3
        fdb = daemon.ctl("bridge", "fdb", "lab")
        assert fdb.returncode == 0, fdb.stderr
        (row,) = [line for line in fdb.stdout.splitlines() if LINUX_MAC in line]
        assert row.split()[-3:] == ["vx42", "static", "198.51.100.2"], fdb.stdout
        (vtep,) = _vx(daemon)["vteps"]  # type: ignore[misc]
        assert vtep["address"] == "198.51.100.2" and not vtep["static"]
        assert [(m["mac"], m["static"]) for m in vtep["macs"]] == [(LINUX_MAC, True)]
        dump = daemon.ctl("config", "dump")
        assert 'dst = "198.51.100.2"' in dump.stdout, dump.stdout
        # A bad request changes nothing and says why.
        bad = daemon.ctl("bridge", "fdb", "lab", "add", LINUX_MAC, "vx42", "dst", "2001:db8::2")
        assert bad.returncode != 0 and "not a remote unicast address" in bad.stderr, bad
        assert _ping_fresh(daemon) == 3
        removed = daemon.ctl("bridge", "fdb", "lab", "del", LINUX_MAC, "vx42")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert _ping_fresh(daemon) == 0
        assert all(v["macs"] == [] for v in _vx(daemon)["vteps"])  # type: ignore[attr-defined]
        # The same entry in the config file: a reload re-creates the bridge with it.
        daemon.config.write_text(
            daemon.config.read_text()
            + f'\n[[vnets.lab.interfaces.br0.fdb]]\nmac = "{LINUX_MAC}"\nport = "vx42"\n'
            'dst = "198.51.100.2"\n'
        )
        reloaded = daemon.ctl("reload")
        assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
        assert _ping_fresh(daemon) == 3
        assert daemon.ctl("reload").returncode == 0  # unchanged: kept as it is
        assert _ping_fresh(daemon) == 3
    finally:
        daemon.close()


def test_a_host_sending_too_big_with_df_is_told_the_overlay_mtu(tmp_path: Path) -> None:
    # The host's link (the TAP) carries 1500 bytes, the overlay 1450: the bridge drops
    # what does not fit and tells the host, from its own address, with ICMP.
    config = (
        _config(11, 1, 2, 1)
        .replace("mtu = 1450\nhost = {", "mtu = 1500\nhost = {", 1)
        .replace(
            'addresses = ["192.0.2.11/24"]', 'addresses = ["192.0.2.11/24", "2001:db8:42::11/64"]'
        )
        .replace(
            'addresses = ["192.0.2.1/24"]', 'addresses = ["192.0.2.1/24", "2001:db8:42::1/64"]'
        )
    )
    daemon = Vrouterd(tmp_path, config)
    try:
        _start_in_netns(daemon, "198.51.100.1")
        lx = _linux_vtep(daemon)
        run("ip", "-n", lx, "addr", "add", "2001:db8:42::20/64", "dev", "br0", "nodad")
        assert _ping(daemon, "h1", LINUX_HOST) == 3
        assert _ping(daemon, "h1", "2001:db8:42::20") == 3
        too_big = _ping(daemon, "h1", LINUX_HOST, "-M", "do", "-s", "1472")
        result = daemon.exec("h1", "ip", "route", "get", LINUX_HOST)
        assert "mtu 1450" in result.stdout, (too_big, result.stdout)
        shown = daemon.exec(
            "h1", "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1472", LINUX_HOST, check=False
        )
        assert "mtu=1450" in shown.stdout + shown.stderr, shown.stdout + shown.stderr
        assert _ping(daemon, "h1", LINUX_HOST, "-M", "do", "-s", "1422") == 3  # 1450: fits
        # IPv6: Packet Too Big from the bridge's address; the host caches the path MTU.
        _ping(daemon, "h1", "2001:db8:42::20", "-M", "do", "-s", "1452")
        result6 = daemon.exec("h1", "ip", "-6", "route", "get", "2001:db8:42::20")
        assert "mtu 1450" in result6.stdout, result6.stdout
        (br,) = daemon.call("bridge.show", vnet="lab")
        assert br["stats"]["too_big"] >= 2, br["stats"]
        (vxport,) = [p for p in br["ports"] if p["name"] == "vx42"]
        assert vxport["counters"]["drops"]["mtu_exceeded"] >= 2, vxport
    finally:
        daemon.close()


def _bridge_mac(daemon: Vrouterd) -> str:
    (br,) = daemon.call("bridge.show", vnet="lab")
    return str(br["mac"])


def test_two_daemons_of_one_config_get_their_own_macs_and_talk(tmp_path: Path) -> None:
    # No mac in the config: both bridges are lab's br0, their MACs derived from names
    # and each installation's seed (its data_dir).
    def config(host: int, local: int, remote: int, bridge: int) -> str:
        return "\n".join(
            line
            for line in _config(host, local, remote, bridge).splitlines()
            if not line.startswith("mac = ")
        )

    a = Vrouterd(tmp_path / "a", config(31, 1, 2, 1))
    b = Vrouterd(tmp_path / "b", config(32, 2, 1, 2))
    try:
        ns_b = start_pair(a, b)
        mac_a, mac_b = _bridge_mac(a), _bridge_mac(b)
        assert mac_a != mac_b
        assert (a.dir / "data" / "mac-seed").exists() and (b.dir / "data" / "mac-seed").exists()
        # Each host reaches the other daemon's bridge across the overlay, and the other host.
        assert _ping(a, "h1", "192.0.2.2") == 3
        assert _ping(b, "h1", "192.0.2.1") == 3
        assert _ping(a, "h1", "192.0.2.32") == 3
        arp = a.exec("h1", "ip", "neigh", "show", "192.0.2.2").stdout
        assert mac_b in arp, arp
        # A restart keeps the MAC (the seed is kept in data_dir).
        assert b.stop() == 0
        b.start(netns=ns_b)
        b.wait_ipv6()
        assert _bridge_mac(b) == mac_b
        assert _ping(a, "h1", "192.0.2.2") == 3
    finally:
        b.close()
        a.close()
