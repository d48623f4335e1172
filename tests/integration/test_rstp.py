"""Rapid spanning tree with real traffic: two vnet bridges looped by two epairs, with a
host namespace behind a TAP of each; and a vnet bridge running RSTP against a Linux bridge
(stp_state 1, 802.1D STP only), which it must fall back to STP for."""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from collections.abc import Iterator

import pytest
from harness import Vrouterd, run
from integration.test_stp import FORWARD_DELAY, LOOP, MAX_AGE, Peer, _ours, _wait

pytestmark = pytest.mark.integration

RING = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}"
log_level = "info"

[vnets.ra.interfaces.{p}ta]
type = "tap"
host = {{ netns = "{p}ha", addresses = ["192.0.2.10/24"] }}

[vnets.ra.interfaces.x0]
type = "epair"
peer = "rb:x0"

[vnets.ra.interfaces.x1]
type = "epair"
peer = "rb:x1"

[vnets.ra.interfaces.br0]
type = "bridge"
members = ["{p}ta", "x0", "x1"]
stp = true
stp_protocol = "PROTOCOL"
priority = 4096
hello_time = 1
max_age = 6
forward_delay = 4

[vnets.ra.interfaces.br0.ports.{p}ta]
edge = true

[vnets.rb.interfaces.{p}tb]
type = "tap"
host = {{ netns = "{p}hb", addresses = ["192.0.2.20/24"] }}

[vnets.rb.interfaces.x0]
type = "epair"
peer = "ra:x0"

[vnets.rb.interfaces.x1]
type = "epair"
peer = "ra:x1"

[vnets.rb.interfaces.br0]
type = "bridge"
members = ["{p}tb", "x0", "x1"]
stp = true
stp_protocol = "PROTOCOL"
hello_time = 1
max_age = 6
forward_delay = 4

[vnets.rb.interfaces.br0.ports.{p}tb]
edge = true
"""


def _states(daemon: Vrouterd) -> dict[str, str]:
    """Return every looped port's state as ``vnet/port``."""
    out = {}
    for vnet in ("ra", "rb"):
        (bridge,) = daemon.call("bridge.show", vnet=vnet, bridge="br0")
        for port in bridge["ports"]:
            if port["name"] in ("x0", "x1"):
                out[f"{vnet}/{port['name']}"] = port["stp"]["state"]
    return out


def _one_blocks(daemon: Vrouterd) -> bool:
    states = sorted(_states(daemon).values())
    return len(states) == 4 and states.count("forwarding") == 3 and states[0] != "forwarding"


def _outage(daemon: Vrouterd, cut: list[str], seconds: float) -> tuple[float, int]:
    """Ping hb from ha every 20 ms for ``seconds``, run ``vrouterctl cut`` after one second;
    return the longest gap between two replies (s) and how many replies came."""
    ping = subprocess.Popen(
        ["ip", "netns", "exec", f"{daemon.prefix}ha", "ping", "-D", "-i", "0.02", "-W", "1",
         "-w", str(seconds), "192.0.2.20"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        time.sleep(1)
        done = daemon.ctl(*cut)
        assert done.returncode == 0, done.stdout + done.stderr
        out, _ = ping.communicate(timeout=seconds + 15)
    finally:
        if ping.poll() is None:
            ping.kill()
            ping.wait(10)
    stamps = [float(s) for s in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", out, re.M)]
    assert len(stamps) > 10, out[-2000:]
    gap = max(b - a for a, b in itertools.pairwise(stamps))
    return gap, len(stamps)


@pytest.fixture
def ring(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    Vrouterd
]:
    protocol = request.param
    daemon = Vrouterd(tmp_path_factory.mktemp("rstp"), RING.replace("PROTOCOL", protocol))
    try:
        yield daemon
    finally:
        daemon.close()


@pytest.mark.parametrize("ring", ["rstp"], indirect=True)
def test_two_vnet_bridges_in_a_loop_one_port_discards_and_a_cut_link_recovers_fast(
    ring: Vrouterd,
) -> None:
    daemon = ring
    started = time.monotonic()
    daemon.start()
    took = _wait("one port discarding", lambda: _one_blocks(daemon), 5)
    print(f"\nRSTP: one port discarding, three forwarding {time.monotonic() - started:.2f} s "
          f"after the daemon was started ({took:.2f} s after it answered)")  # fmt: skip
    states = _states(daemon)
    assert states["rb/x1"] == "discarding", states  # ra is root; rb's x1 is the alternate
    (rb,) = daemon.call("bridge.show", vnet="rb", bridge="br0")
    ports = {p["name"]: p["stp"] for p in rb["ports"]}
    assert ports["x0"]["role"] == "root" and ports["x1"]["role"] == "alternate"
    assert ports[f"{daemon.prefix}tb"]["edge"] is True
    assert all(p["protocol"] == "rstp" for p in ports.values())
    show = daemon.ctl("bridge", "show", "rb", "br0")
    assert "alternate" in show.stdout and "discarding" in show.stdout, show.stdout
    run("ip", "netns", "exec", f"{daemon.prefix}ha", "ping", "-c", "3", "-i", "0.2", "-W", "1",
        "192.0.2.20", timeout=30)  # fmt: skip
    # The forwarding link goes: rb's alternate port becomes root port and forwards at once.
    gap, replies = _outage(daemon, ["interface", "destroy", "ra", "x0"], 5)
    print(f"RSTP: longest gap between replies after the forwarding epair was destroyed: "
          f"{gap:.3f} s ({replies} replies at 20 ms)")  # fmt: skip
    assert gap < 2.0
    states = _states(daemon)
    assert states == {"ra/x1": "forwarding", "rb/x1": "forwarding"}, states
    (rb,) = daemon.call("bridge.show", vnet="rb", bridge="br0")
    assert rb["stp"]["root_port"] == "x1" and rb["stp"]["topology_changes"] >= 1
    assert "Traceback" not in daemon.logtext()


@pytest.mark.parametrize("ring", ["stp"], indirect=True)
def test_the_same_loop_under_stp_waits_two_forward_delays(ring: Vrouterd) -> None:
    """The figures RSTP is compared with (bench/RESULTS.md): the same topology and times."""
    daemon = ring
    started = time.monotonic()
    daemon.start()
    _wait("one port blocking", lambda: _one_blocks(daemon), 2 * FORWARD_DELAY + 10)
    since = time.monotonic() - started
    print(f"\nSTP: one port blocking, three forwarding {since:.2f} s after the daemon started")
    assert since >= 2 * FORWARD_DELAY
    gap, replies = _outage(daemon, ["interface", "destroy", "ra", "x0"], 14)
    print(f"STP: longest gap between replies after the forwarding epair was destroyed: "
          f"{gap:.3f} s ({replies} replies at 20 ms)")  # fmt: skip
    assert gap >= 2 * FORWARD_DELAY - 1


def _converged(daemon: Vrouterd, peer: Peer, we_are_root: bool) -> bool:
    """One of the four looped ports blocks (Linux) or discards (ours), on the loser's side."""
    ours = {n: s["stp"]["state"] for n, s in ((p["name"], p) for p in _ours(daemon)["ports"])}  # type: ignore[attr-defined]
    theirs = peer.states()
    looped = sorted([*ours.values(), *theirs.values()])
    if looped.count("forwarding") != 4 or not {"blocking", "discarding"} & set(looped):
        return False
    blocked_here = "discarding" in ours.values()
    return blocked_here != we_are_root


RSTP_LOOP = LOOP.replace("stp = true\n", 'stp = true\nstp_protocol = "rstp"\n')


@pytest.fixture
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    vrouterd = Vrouterd(tmp_path_factory.mktemp("rstpl"), RSTP_LOOP)
    try:
        yield vrouterd
    finally:
        vrouterd.close()


def test_rstp_falls_back_to_stp_against_a_linux_bridge_and_blocks_the_loop(
    daemon: Vrouterd,
) -> None:
    p = daemon.prefix
    daemon.start()
    peer = Peer(daemon, priority=32768)
    try:
        # We are root (4096): the Linux bridge, which drops RST BPDUs, blocks one port.
        took = _wait("convergence, vnet root", lambda: _converged(daemon, peer, True),
                     2 * FORWARD_DELAY + 10)  # fmt: skip
        print(f"\nRSTP against Linux STP: converged {took:.1f} s after the Linux bridge's start "
              "(vnet root)")  # fmt: skip
        bridge = _ours(daemon)
        assert bridge["stp"]["protocol"] == "rstp"  # type: ignore[index]
        assert peer.ping() == 3
        # Now the Linux bridge is the root: both of our ports hear its Configuration BPDUs.
        peer.ip("link", "set", peer.br, "type", "bridge", "priority", "4096")
        changed = daemon.ctl("bridge", "stp", "lab", "br0", "--priority", "40960")
        assert changed.returncode == 0, changed.stderr
        took = _wait("convergence, Linux root", lambda: _converged(daemon, peer, False),
                     2 * FORWARD_DELAY + MAX_AGE + 10)  # fmt: skip
        print(f"RSTP against Linux STP: converged {took:.1f} s after the priority change "
              "(Linux root)")  # fmt: skip
        bridge = _ours(daemon)
        ports = {pp["name"]: pp["stp"] for pp in bridge["ports"]}  # type: ignore[attr-defined]
        assert {n: s["protocol"] for n, s in ports.items()} == {f"{p}a": "stp", f"{p}b": "stp"}
        assert all(s["migrations"] >= 1 for s in ports.values())
        roles = sorted(s["role"] for s in ports.values())
        assert roles == ["alternate", "root"], ports
        blocked = [s for s in ports.values() if s["state"] == "discarding"]
        assert len(blocked) == 1 and blocked[0]["role"] == "alternate"
        assert not bridge["stp"]["is_root"]  # type: ignore[index]
        # Traffic crosses, and a broadcast does not storm.
        assert peer.ping() == 3
        # mcheck: the port tries RSTP, hears STP again and falls back.
        root = next(n for n, s in ports.items() if s["role"] == "root")
        before = ports[root]["migrations"]
        mcheck = daemon.ctl("bridge", "port-stp", "lab", "br0", root, "--mcheck")
        assert mcheck.returncode == 0, mcheck.stdout + mcheck.stderr
        assert "speaks rstp" in mcheck.stdout, mcheck.stdout

        def back_on_stp() -> bool:
            sp = next(pp["stp"] for pp in _ours(daemon)["ports"] if pp["name"] == root)  # type: ignore[attr-defined]
            return bool(sp["protocol"] == "stp" and sp["migrations"] == before + 2)

        _wait("fallback after mcheck", back_on_stp, 10)
        assert peer.ping() == 3
        assert "Traceback" not in daemon.logtext()
    finally:
        peer.close()
