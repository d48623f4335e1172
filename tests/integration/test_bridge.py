"""Real traffic over bridges and 802.1Q: Linux hosts on a vnet bridge, a VLAN trunk to a host."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness import Vrouterd, python, run, running, vrouterctl, vrouterd, wait_listening

pytestmark = pytest.mark.integration

SEGMENT = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}"
log_level = "info"

[vnets.lab.interfaces.{p}1]
type = "tap"
host = {{ netns = "{p}h1", addresses = ["192.0.2.11/24"], gateway = "192.0.2.1" }}

[vnets.lab.interfaces.{p}2]
type = "tap"
host = {{ netns = "{p}h2", addresses = ["192.0.2.12/24"], gateway = "192.0.2.1" }}

[vnets.lab.interfaces.{p}3]
type = "tap"
host = {{ netns = "{p}h3", addresses = ["192.0.2.13/24"], gateway = "192.0.2.1" }}

[vnets.lab.interfaces.br0]
type = "bridge"
members = ["{p}1", "{p}2", "{p}3"]
addresses = ["192.0.2.1/24"]

[vnets.lab.interfaces.{p}t]
type = "tap"

[vnets.lab.interfaces.v10]
type = "vlan"
parent = "{p}t"
vid = 10
addresses = ["198.51.100.1/24"]

[vnets.lab.interfaces.v20]
type = "vlan"
parent = "{p}t"
vid = 20
addresses = ["203.0.113.1/24"]
"""


@pytest.fixture(scope="module")
def seg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    daemon = Vrouterd(tmp_path_factory.mktemp("bridge"), SEGMENT)
    for _ in running(daemon):
        # The trunk's host: the TAP moves into a namespace of the test's own
        # (cleanup removes the prefix's netns and links).
        p, ns = daemon.prefix, f"{daemon.prefix}ht"
        run("ip", "netns", "add", ns)
        run("ip", "link", "set", f"{p}t", "netns", ns)
        run("ip", "-n", ns, "link", "set", f"{p}t", "up")
        yield daemon


def _ping(daemon: Vrouterd, host: str, target: str, *extra: str) -> int:
    result = daemon.exec(
        host, "ping", "-c", "3", "-i", "0.2", "-W", "2", *extra, target, check=False, timeout=30
    )
    match = re.search(r"(\d+) received", result.stdout)
    assert match, result.stdout + result.stderr
    return int(match.group(1))


def _mac(daemon: Vrouterd, host: str, dev: str) -> str:
    info = json.loads(daemon.exec(host, "ip", "-j", "link", "show", dev).stdout)
    return str(info[0]["address"])


def test_hosts_on_one_bridge_reach_each_other_with_their_own_arp(seg: Vrouterd) -> None:
    p = seg.prefix
    for src, dst in (("h1", "192.0.2.12"), ("h2", "192.0.2.13"), ("h3", "192.0.2.11")):
        assert _ping(seg, src, dst) == 3, (src, dst)
    # h1 learnt h2's own MAC: ARP went host to host, the vnet did not answer for it.
    neigh = json.loads(seg.exec("h1", "ip", "-j", "neigh", "show", "192.0.2.12").stdout)
    assert neigh and neigh[0]["lladdr"] == _mac(seg, "h2", f"{p}2")
    fdb = {e["mac"]: e["port"] for e in seg.call("bridge.fdb", vnet="lab")}
    for n in (1, 2, 3):
        assert fdb[_mac(seg, f"h{n}", f"{p}{n}")] == f"{p}{n}"
    # And the vnet routes for the segment through the bridge's address.
    assert _ping(seg, "h1", "192.0.2.1") == 3
    show = seg.ctl("bridge", "show", "lab")
    assert show.returncode == 0 and f"{p}3" in show.stdout, show.stdout + show.stderr


def test_a_host_moved_to_another_port_is_relearnt(seg: Vrouterd) -> None:
    p = seg.prefix
    mac3 = _mac(seg, "h3", f"{p}3")
    assert _ping(seg, "h3", "192.0.2.1") == 3
    old = _mac(seg, "h1", f"{p}1")
    try:
        seg.exec("h3", "ip", "link", "set", f"{p}3", "down")
        seg.exec("h1", "ip", "link", "set", f"{p}1", "address", mac3)
        assert _ping(seg, "h1", "192.0.2.12") == 3
        fdb = {e["mac"]: e["port"] for e in seg.call("bridge.fdb", vnet="lab")}
        assert fdb[mac3] == f"{p}1"
        moved = seg.call("bridge.show", vnet="lab")[0]["stats"]["moved"]
        assert moved >= 1
    finally:
        seg.exec("h1", "ip", "link", "set", f"{p}1", "address", old, check=False)
        seg.exec("h3", "ip", "link", "set", f"{p}3", "up", check=False)


def test_iperf3_between_two_bridged_hosts(seg: Vrouterd) -> None:
    server = subprocess.Popen(
        ["ip", "netns", "exec", seg.ns("h2"), "iperf3", "-s", "-1", "-B", "192.0.2.12"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        result = seg.exec(
            "h1", "iperf3", "-c", "192.0.2.12", "-t", "2", "-J", timeout=60, check=False
        )
        report = json.loads(result.stdout)
        assert "error" not in report, report.get("error")
        assert report["end"]["sum_received"]["bytes"] > 1_000_000
    finally:
        server.kill()
        server.wait(10)


# The trunk host speaks 802.1Q from an AF_PACKET socket: this kernel has no
# VLAN devices (CONFIG_VLAN_8021Q), so ``ip link add ... type vlan`` is not
# available.  It sends tagged ARP requests and reports the replies with the
# VLAN the kernel saw on them (PACKET_AUXDATA).
TRUNK_HOST = r"""
import json, socket, struct, sys, time
dev, mac, asks = sys.argv[1], bytes.fromhex(sys.argv[2]), json.loads(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((dev, 0))
s.setsockopt(263, 8, 1)  # SOL_PACKET, PACKET_AUXDATA
answers = []
for vid, spa, tpa in asks:
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, socket.inet_aton(spa),
                      bytes(6), socket.inet_aton(tpa))
    s.send(b"\xff" * 6 + mac + struct.pack("!HHH", 0x8100, vid, 0x0806) + arp)
    got = None
    deadline = time.monotonic() + 1.5
    while got is None and time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, anc, _, _ = s.recvmsg(2048, 256)
        except TimeoutError:
            break
        tci = None
        for level, kind, value in anc:
            if level == 263 and kind == 8:
                status, _, _, _, _, vlan_tci, _ = struct.unpack_from("IIIHHHH", value)
                tci = vlan_tci if status & 0x10 else None
        if data[12:14] == b"\x81\x00":  # left in line
            tci, data = int.from_bytes(data[14:16], "big"), data[:12] + data[16:]
        if data[12:14] == b"\x08\x06" and data[20:22] == b"\x00\x02" and data[38:42] == \
                socket.inet_aton(spa):
            got = [tci & 0xFFF if tci is not None else None, socket.inet_ntoa(data[28:32])]
    answers.append(got)
print(json.dumps(answers))
"""


def test_a_vlan_trunk_reaches_two_subnets_and_keeps_them_apart(seg: Vrouterd) -> None:
    p = seg.prefix
    ns = f"{p}ht"
    mac = _mac_in(ns, f"{p}t").replace(":", "")
    asks = [
        (10, "198.51.100.2", "198.51.100.1"),
        (20, "203.0.113.2", "203.0.113.1"),
        (20, "198.51.100.3", "198.51.100.1"),  # VLAN 10's address, asked in VLAN 20
        (30, "198.18.0.2", "198.18.0.1"),  # a VLAN the vnet does not have
    ]
    v10_before = seg.counters("lab", "v10")["rx_packets"]
    result = run(
        "ip", "netns", "exec", ns, *python("-c", TRUNK_HOST, f"{p}t", mac, json.dumps(asks)),
        timeout=30,
    )  # fmt: skip
    answers = json.loads(result.stdout)
    assert answers == [[10, "198.51.100.1"], [20, "203.0.113.1"], None, None]
    assert seg.counters("lab", "v10")["rx_packets"] == v10_before + 1
    trunk = seg.counters("lab", f"{p}t")
    assert trunk["rx_drops"].get("vlan_unknown") == 1
    # Routed from the bridge's segment into VLAN 10: the vnet asks the trunk host.
    assert _ping(seg, "h1", "198.51.100.1") == 3


def _ctl_ok(daemon: Vrouterd, *args: str) -> str:
    result = daemon.ctl(*args)
    assert result.returncode == 0, (args, result.stdout + result.stderr)
    return result.stdout


def test_bridges_ports_and_vlans_change_at_run_time_through_vrouterctl(seg: Vrouterd) -> None:
    p = seg.prefix
    ns = f"{p}ht"
    mac = _mac_in(ns, f"{p}t").replace(":", "")
    try:
        # h3 leaves br0 for a new bridge br1 with a subnet of its own.
        out = _ctl_ok(seg, "bridge", "create", "lab", "br1", "--address", "198.18.1.1/24")
        assert "bridge br1 created (no members)" in out
        _ctl_ok(seg, "bridge", "del", "lab", "br0", f"{p}3")
        _ctl_ok(seg, "bridge", "add", "lab", "br1", f"{p}3", "--storm-pps", "100")
        seg.exec("h3", "ip", "addr", "add", "198.18.1.3/24", "dev", f"{p}3")
        assert _ping(seg, "h3", "198.18.1.1") == 3
        assert _ping(seg, "h3", "192.0.2.11", "-c", "1") == 0, "h1 is on another segment now"
        fdb = {e["mac"]: e["bridge"] for e in seg.call("bridge.fdb", vnet="lab")}
        assert fdb[_mac(seg, "h3", f"{p}3")] == "br1"
        # A VLAN made at run time answers on the trunk; destroyed, it is gone again.
        out = _ctl_ok(seg, "vlan", "create", "lab", f"{p}t", "30", "198.18.0.1/24")
        assert f"{p}t.30 created, VLAN 30 on {p}t" in out
        asks = json.dumps([(30, "198.18.0.2", "198.18.0.1")])
        result = run(
            "ip", "netns", "exec", ns, *python("-c", TRUNK_HOST, f"{p}t", mac, asks), timeout=30
        )  # fmt: skip
        assert json.loads(result.stdout) == [[30, "198.18.0.1"]]
        refused = seg.ctl("bridge", "add", "lab", "br1", f"{p}t")
        assert refused.returncode == 1 and "parent of VLAN interfaces" in refused.stderr
    finally:
        seg.ctl("interface", "destroy", "lab", f"{p}t.30")
        seg.exec("h3", "ip", "addr", "del", "198.18.1.3/24", "dev", f"{p}3", check=False)
        seg.ctl("interface", "destroy", "lab", "br1")
        seg.ctl("bridge", "add", "lab", "br0", f"{p}3")
    # Back on br0, traffic resumes within seconds (the first pings right after the
    # move may be lost while the segment relearns h3).
    deadline = time.monotonic() + 10
    while _ping(seg, "h3", "192.0.2.11", "-c", "1") != 1:
        assert time.monotonic() < deadline, "h3 does not reach h1 back on br0"
    assert _ping(seg, "h3", "192.0.2.11") == 3, "back on br0"
    assert [b["name"] for b in seg.call("bridge.show", vnet="lab")] == ["br0"]


@contextmanager
def _capturing(daemon: Vrouterd, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``vrouterctl capture ARGS`` until it says it listens; kill it on the way out."""
    proc = subprocess.Popen(
        vrouterctl("--socket", daemon.socket, "capture", *args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def _read_pcap(path: Path) -> list[str]:
    out = run("tcpdump", "-n", "-e", "-r", str(path)).stdout
    return [line for line in out.splitlines() if line.strip()]


def test_capture_on_a_port_sees_bridged_frames_and_on_the_bridge_only_its_own(
    seg: Vrouterd, tmp_path: Path
) -> None:
    p = seg.prefix
    port_pcap, bridge_pcap = tmp_path / "port.pcap", tmp_path / "bridge.pcap"
    with (
        _capturing(seg, "lab", f"{p}2", "-c", "2", "-w", str(port_pcap), "icmp") as port,
        _capturing(seg, "lab", "br0", "-c", "2", "-w", str(bridge_pcap), "icmp") as bridge,
    ):
        assert _ping(seg, "h1", "192.0.2.12", "-c", "1") == 1  # bridged: h1 -> p1 -> p2 -> h2
        assert _ping(seg, "h1", "192.0.2.1", "-c", "1") == 1  # to the bridge's own address
        assert port.wait(15) == 0 and bridge.wait(15) == 0
    mac1, mac2 = _mac(seg, "h1", f"{p}1"), _mac(seg, "h2", f"{p}2")
    lines = _read_pcap(port_pcap)
    assert len(lines) == 2, lines
    assert f"{mac1} > {mac2}" in lines[0], lines
    assert "192.0.2.11 > 192.0.2.12: ICMP echo request" in lines[0], lines
    assert f"{mac2} > {mac1}" in lines[1], lines
    assert "192.0.2.12 > 192.0.2.11: ICMP echo reply" in lines[1], lines
    lines = _read_pcap(bridge_pcap)
    assert len(lines) == 2, lines
    assert "192.0.2.11 > 192.0.2.1: ICMP echo request" in lines[0]
    assert "192.0.2.1 > 192.0.2.11: ICMP echo reply" in lines[1]


def test_a_vlan_parent_cannot_be_a_bridge_member(tmp_path: Path) -> None:
    daemon = Vrouterd(tmp_path, SEGMENT.replace('members = ["{p}1"', 'members = ["{p}t"'))
    result = run(
        *vrouterd("--check", "-c", str(daemon.config)), check=False, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert "is a member of bridge br0" in result.stdout + result.stderr


def _mac_in(ns: str, dev: str) -> str:
    return str(json.loads(run("ip", "-n", ns, "-j", "link", "show", dev).stdout)[0]["address"])
