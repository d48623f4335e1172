"""VXLAN with real peers: a Linux kernel vxlan device, and a second vrouterd.

Every daemon runs in a network namespace of its own, joined to its peer by
a veth underlay (198.51.100.0/24); otherwise the kernel would deliver the
underlay traffic locally and never use the veth.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, python, run, wait_listening

pytestmark = pytest.mark.integration

DAEMON = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}"
log_level = "info"

[vnets.lab.interfaces.{p}1]
type = "tap"
mtu = 1450
host = {{ netns = "{p}h1", addresses = ["192.0.2.{host}/24"] }}

[vnets.lab.interfaces.vx42]
type = "vxlan"
vni = 42
local = "198.51.100.{local}"
remotes = ["198.51.100.{remote}"]

[vnets.lab.interfaces.br0]
type = "bridge"
members = ["{p}1", "vx42"]
mtu = 1450
mac = "02:00:5e:00:53:{bridge:02d}"
addresses = ["192.0.2.{bridge}/24"]
"""

LINUX_HOST = "192.0.2.20"
DAEMON_HOST = "192.0.2.11"


def _config(host: int, local: int, remote: int, bridge: int) -> str:
    # MACs derived from vnet and interface names are the same in two daemons of one
    # config: each bridge gets its own.
    return (
        DAEMON.replace("{host}", str(host))
        .replace("{local}", str(local))
        .replace("{remote}", str(remote))
        .replace("{bridge:02d}", f"{bridge:02d}")
        .replace("{bridge}", str(bridge))
    )


def _start_in_netns(daemon: Vrouterd, address: str) -> str:
    """Create the daemon's namespace with underlay veth ``PREFIXu`` (its peer stays
    in the root namespace, to be moved by the caller); start the daemon there."""
    p = daemon.prefix
    ns = f"{p}d"
    run("ip", "netns", "add", ns)
    run("ip", "link", "add", f"{p}u", "type", "veth", "peer", "name", f"{p}v")
    run("ip", "link", "set", f"{p}u", "netns", ns)
    run("ip", "-n", ns, "link", "set", "lo", "up")
    run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", f"{p}u")
    run("ip", "-n", ns, "link", "set", f"{p}u", "up")
    daemon.start(netns=ns)
    daemon.wait_ipv6()
    return ns


@pytest.fixture(scope="module")
def linux(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    """A daemon (VTEP 198.51.100.1) and a Linux netns ``PREFIXlx`` (VTEP .2) with vx42 in a
    Linux bridge holding 192.0.2.20."""
    daemon = Vrouterd(tmp_path_factory.mktemp("vxlan"), _config(11, 1, 2, 1))
    try:
        _start_in_netns(daemon, "198.51.100.1")
        p = daemon.prefix
        lx = f"{p}lx"
        run("ip", "netns", "add", lx)
        run("ip", "link", "set", f"{p}v", "netns", lx)
        for cmd in (
            ("link", "set", "lo", "up"),
            ("addr", "add", "198.51.100.2/24", "dev", f"{p}v"),
            ("link", "set", f"{p}v", "up"),
            ("link", "add", "vx42", "type", "vxlan", "id", "42", "dstport", "4789",
             "remote", "198.51.100.1", "local", "198.51.100.2", "dev", f"{p}v"),
            ("link", "add", "br0", "type", "bridge"),
            ("link", "set", "vx42", "master", "br0"),
            ("link", "set", "vx42", "up"),
            ("addr", "add", f"{LINUX_HOST}/24", "dev", "br0"),
            ("link", "set", "br0", "up"),
        ):  # fmt: skip
            run("ip", "-n", lx, *cmd)
        # Over a veth the kernel leaves the inner TCP/UDP checksums of what its vxlan
        # sends unfinished (offloaded to a NIC that is not there); a UDP socket at the
        # other end gets them so.  Finished in software here, as a real NIC would.
        run("ip", "netns", "exec", lx, "ethtool", "-K", f"{p}v", "tx", "off")
        yield daemon
    finally:
        daemon.close()


def _ping(daemon: Vrouterd, host: str, target: str, *extra: str) -> int:
    result = daemon.exec(
        host, "ping", "-c", "3", "-i", "0.2", "-W", "2", *extra, target, check=False, timeout=30
    )
    match = re.search(r"(\d+) received", result.stdout)
    assert match, result.stdout + result.stderr
    return int(match.group(1))


def _vx(daemon: Vrouterd) -> dict[str, object]:
    (vx,) = daemon.call("vxlan.show", vnet="lab")
    return dict(vx)


def test_ping_both_ways_and_the_underlay_carries_valid_vxlan(linux: Vrouterd) -> None:
    p = linux.prefix
    dump = subprocess.Popen(
        ["ip", "netns", "exec", f"{p}lx", "tcpdump", "-n", "-l", "-c", "4", "-i", f"{p}v",
         "udp", "port", "4789"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_listening(dump)
        assert _ping(linux, "h1", LINUX_HOST) == 3
        assert _ping(linux, "lx", DAEMON_HOST) == 3
        out, _ = dump.communicate(timeout=15)
    finally:
        if dump.poll() is None:
            dump.kill()
            dump.wait(10)
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
    server = subprocess.Popen(
        ["ip", "netns", "exec", linux.ns("lx"), "iperf3", "-s", "-1", "-B", LINUX_HOST],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        result = linux.exec(
            "h1", "iperf3", "-c", LINUX_HOST, "-t", "2", "-J", "--connect-timeout", "5000",
            *(["-R"] if reverse else []),
            timeout=60, check=False,
        )  # fmt: skip
        report = json.loads(result.stdout)
        assert "error" not in report, report.get("error")
        assert report["end"]["sum_received"]["bytes"] > 1_000_000
    finally:
        server.kill()
        server.wait(10)


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
    data = os.urandom(10 * 1024 * 1024)
    (tmp_path / "blob").write_bytes(data)
    httpd = subprocess.Popen(
        [
            "ip", "netns", "exec", linux.ns(server),
            *python("-m", "http.server", "8080", "--bind", address, "--directory", str(tmp_path)),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        got = None
        for _ in range(50):
            time.sleep(0.2)
            result = linux.exec(
                client, "curl", "-sS", "--max-time", "60", "-o", str(tmp_path / "got"),
                f"http://{address}:8080/blob", check=False, timeout=90,
            )  # fmt: skip
            if result.returncode == 0:
                got = (tmp_path / "got").read_bytes()
                break
        assert got is not None, "curl never succeeded"
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        httpd.kill()
        httpd.wait(10)


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
        _start_in_netns(a, "198.51.100.1")
        # b's namespace gets a's peer end as its underlay instead of a veth of its own.
        ns_b = f"{b.prefix}d"
        run("ip", "netns", "add", ns_b)
        run("ip", "link", "set", f"{a.prefix}v", "netns", ns_b)
        run("ip", "-n", ns_b, "link", "set", "lo", "up")
        run("ip", "-n", ns_b, "addr", "add", "198.51.100.2/24", "dev", f"{a.prefix}v")
        run("ip", "-n", ns_b, "link", "set", f"{a.prefix}v", "up")
        b.start(netns=ns_b)
        b.wait_ipv6()
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
        p = daemon.prefix
        lx = f"{p}lx"
        run("ip", "netns", "add", lx)
        run("ip", "link", "set", f"{p}v", "netns", lx)
        for cmd in (
            ("link", "set", "lo", "up"),
            ("addr", "add", "198.51.100.2/24", "dev", f"{p}v"),
            ("link", "set", f"{p}v", "up"),
            ("link", "add", "vx42", "type", "vxlan", "id", "42", "dstport", "4789",
             "group", "239.1.1.42", "local", "198.51.100.2", "dev", f"{p}v"),
            ("link", "add", "br0", "type", "bridge"),
            ("link", "set", "vx42", "master", "br0"),
            ("link", "set", "vx42", "up"),
            ("addr", "add", f"{LINUX_HOST}/24", "dev", "br0"),
            ("link", "set", "br0", "up"),
        ):  # fmt: skip
            run("ip", "-n", lx, *cmd)
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
        lx = f"{p}lx"
        run("ip", "netns", "add", lx)
        run("ip", "link", "set", f"{p}v", "netns", lx)
        for cmd in (
            ("link", "set", "lo", "up"),
            ("addr", "add", "2001:db8:42::2/64", "dev", f"{p}v", "nodad"),
            ("link", "set", f"{p}v", "up"),
            ("link", "add", "vx42", "type", "vxlan", "id", "42", "dstport", "4789",
             "remote", "2001:db8:42::1", "local", "2001:db8:42::2", "dev", f"{p}v"),
            ("link", "add", "br0", "type", "bridge"),
            ("link", "set", "vx42", "master", "br0"),
            ("link", "set", "vx42", "up"),
            ("addr", "add", f"{LINUX_HOST}/24", "dev", "br0"),
            ("link", "set", "br0", "up"),
        ):  # fmt: skip
            run("ip", "-n", lx, *cmd)
        run("ip", "netns", "exec", lx, "ethtool", "-K", f"{p}v", "tx", "off")
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
