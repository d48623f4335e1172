"""Spanning tree against a Linux bridge (stp_state 1): two TAPs of one vnet bridge are both
ports of a Linux bridge in a namespace, a loop that STP must break on whichever side loses."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from harness import Vrouterd, run

pytestmark = pytest.mark.integration

HELLO, MAX_AGE, FORWARD_DELAY = 1, 6, 4
"""Linux's shortest timers (seconds)."""

LOOP = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}"
log_level = "info"

[vnets.lab.interfaces.{p}a]
type = "tap"

[vnets.lab.interfaces.{p}b]
type = "tap"

[vnets.lab.interfaces.br0]
type = "bridge"
members = ["{p}a", "{p}b"]
addresses = ["192.0.2.1/24"]
stp = true
priority = 4096
hello_time = 1
max_age = 6
forward_delay = 4
"""


class Peer:
    """A namespace ``{p}ls`` with Linux bridge ``{p}lbr`` over the host ends of the vnet's
    TAPs ``{p}a`` and ``{p}b``, and a host namespace ``{p}lh`` (192.0.2.3) behind it."""

    def __init__(self, daemon: Vrouterd, priority: int) -> None:
        p = self.p = daemon.prefix
        self.ns, self.host, self.br = f"{p}ls", f"{p}lh", f"{p}lbr"
        run("ip", "netns", "add", self.ns)
        run("ip", "netns", "add", self.host)
        # Timers in centiseconds (the kernel's clock_t for IFLA_BR_*).
        self.ip("link", "add", self.br, "type", "bridge", "stp_state", "1",
                "forward_delay", str(FORWARD_DELAY * 100), "hello_time", str(HELLO * 100),
                "max_age", str(MAX_AGE * 100), "priority", str(priority))  # fmt: skip
        for tap in (f"{p}a", f"{p}b"):
            run("ip", "link", "set", tap, "netns", self.ns)
            self.ip("link", "set", tap, "master", self.br)
            self.ip("link", "set", tap, "up")
        self.ip("link", "add", f"{p}v0", "type", "veth", "peer", "name", f"{p}v1")
        self.ip("link", "set", f"{p}v0", "master", self.br)
        self.ip("link", "set", f"{p}v0", "up")
        self.ip("link", "set", f"{p}v1", "netns", self.host)
        self.hostip("addr", "add", "192.0.2.3/24", "dev", f"{p}v1")
        self.hostip("link", "set", f"{p}v1", "up")
        self.ip("link", "set", self.br, "up")

    def ip(self, *args: str) -> str:
        return run("ip", "-n", self.ns, *args).stdout

    def hostip(self, *args: str) -> str:
        return run("ip", "-n", self.host, *args).stdout

    def states(self) -> dict[str, str]:
        """Return the Linux bridge's port states by TAP (``bridge -d link show``)."""
        out = json.loads(run("ip", "netns", "exec", self.ns, "bridge", "-j", "link", "show").stdout)
        return {e["ifname"]: e["state"] for e in out if e["ifname"].startswith(self.p)}

    def info(self) -> dict[str, object]:
        """Return the Linux bridge's STP view (``ip -d link show``)."""
        out = json.loads(self.ip("-j", "-d", "link", "show", self.br))
        return dict(out[0]["linkinfo"]["info_data"])

    def ping(self, count: int = 3) -> int:
        out = run("ip", "netns", "exec", self.host, "ping", "-c", str(count), "-i", "0.2", "-W",
                  "1", "192.0.2.1", check=False, timeout=30).stdout  # fmt: skip
        found = re.search(r"(\d+) received", out)
        return int(found.group(1)) if found else 0

    def close(self) -> None:
        for ns in (self.host, self.ns):
            run("ip", "netns", "del", ns, check=False)


def _ours(daemon: Vrouterd) -> dict[str, object]:
    (bridge,) = daemon.call("bridge.show", vnet="lab", bridge="br0")
    return dict(bridge)


def _port_states(bridge: dict[str, object]) -> dict[str, str]:
    return {p["name"]: p["stp"]["state"] for p in bridge["ports"]}  # type: ignore[attr-defined,index]


def _wait(what: str, check: object, limit: float) -> float:
    """Poll ``check()`` every 0.2 s until true; return the seconds it took (fail past
    ``limit``)."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if check():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {limit} s")


def _id(text: str) -> tuple[int, bytes]:
    """Return a bridge id as Linux (``8000.2:0:0:0:0:1``) or we write it, as values."""
    priority, mac = text.split(".")
    return int(priority, 16), bytes(int(x, 16) for x in mac.split(":"))


def _frames(daemon: Vrouterd) -> int:
    return sum(
        ifp["counters"]["rx_packets"] + ifp["counters"]["tx_packets"]
        for ifp in daemon.call("ifconfig", vnet="lab")
        if ifp["name"] != "br0"
    )


@pytest.fixture
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    vrouterd = Vrouterd(tmp_path_factory.mktemp("stp"), LOOP)
    try:
        yield vrouterd
    finally:
        vrouterd.close()


def _converged(daemon: Vrouterd, peer: Peer, we_are_root: bool) -> bool:
    ours = _port_states(_ours(daemon))
    theirs = peer.states()
    looped = [*ours.values(), *theirs.values()]
    if sorted(looped) != ["blocking", "forwarding", "forwarding", "forwarding", "forwarding"]:
        return False
    blocked_here = "blocking" in ours.values()
    return blocked_here != we_are_root


def test_the_loser_blocks_one_port_and_a_failed_link_recovers(daemon: Vrouterd) -> None:
    p = daemon.prefix
    daemon.start()
    started = time.monotonic()
    peer = Peer(daemon, priority=32768)
    try:
        # 1. We are root (4096 < 32768): the Linux bridge blocks one of its two ports.
        took = _wait("convergence, vnet root",
                     lambda: _converged(daemon, peer, True), 2 * FORWARD_DELAY + 10)  # fmt: skip
        since_start = time.monotonic() - started
        ours = _ours(daemon)["stp"]
        info = peer.info()
        assert ours["is_root"]  # type: ignore[index]
        # The Linux bridge has a root port towards us (its root_id attribute shows its own id).
        assert info["root_port"] != 0 and int(str(info["root_path_cost"])) > 0, info
        print(f"\nconvergence after start (vnet root): {since_start:.1f} s from start, "
              f"{took:.1f} s from the Linux bridge's start")  # fmt: skip
        # 2. A broadcast does not storm: frames on the two TAPs stay bounded.
        before = _frames(daemon)
        run("ip", "netns", "exec", peer.host, "ping", "-b", "-c", "10", "-i", "0.2",
            "192.0.2.255", check=False, timeout=30)  # fmt: skip
        time.sleep(1)
        seen = _frames(daemon) - before
        assert seen < 200, f"{seen} frames in 3 s: a storm"
        # 3. The host behind the Linux bridge reaches the vnet's bridge address.
        assert peer.ping() == 3
        # 4. The Linux side's forwarding looped port goes down: its other port takes over.
        theirs = peer.states()
        up = next(n for n in (f"{p}a", f"{p}b") if theirs[n] == "forwarding")
        peer.ip("link", "set", up, "down")
        failed = time.monotonic()
        took = _wait("ping after the link failure (Linux fails over)",
                     lambda: peer.ping(1) == 1, 2 * FORWARD_DELAY + 6)  # fmt: skip
        print(f"recovery after link failure seen by Linux: {time.monotonic() - failed:.1f} s")
        assert took <= 2 * FORWARD_DELAY + 6
        peer.ip("link", "set", up, "up")

        # 5. Linux becomes root (4096 < 40960, set at run time): the vnet blocks.
        peer.ip("link", "set", peer.br, "type", "bridge", "priority", "4096")
        changed = daemon.ctl("bridge", "stp", "lab", "br0", "--priority", "40960")
        assert changed.returncode == 0, changed.stderr
        limit = 2 * FORWARD_DELAY + MAX_AGE + 10
        took = _wait("convergence, Linux root", lambda: _converged(daemon, peer, False), limit)
        print(f"convergence after the priority change (Linux root): {took:.1f} s")
        bridge = _ours(daemon)
        ours = bridge["stp"]
        assert not ours["is_root"] and ours["root_cost"] == 100  # type: ignore[index]
        assert _id(ours["root_id"]) == _id(str(peer.info()["bridge_id"]))  # type: ignore[index]
        blocked = [pp for pp in bridge["ports"] if pp["stp"]["state"] == "blocking"]  # type: ignore[attr-defined,index]
        assert len(blocked) == 1 and blocked[0]["stp"]["role"] == "blocked"
        assert blocked[0]["stp"]["bpdu_in"] > 0
        show = daemon.ctl("bridge", "show", "lab", "br0")
        assert "root " in show.stdout and "blocked" in show.stdout, show.stdout
        # Our blocked port was forwarding before: the Linux bridge still sends to our MAC
        # there (it ages its FDB only when its sweep comes round), but the bridge announced
        # its address out of the new path when the ports moved.
        assert peer.ping() == 3
        # 6. Our root port's link goes down on the far side: only silence tells us.
        root_port = ours["root_port"]  # type: ignore[index]
        peer.ip("link", "set", root_port, "down")
        failed = time.monotonic()
        bound = MAX_AGE + 2 * FORWARD_DELAY + 2 * HELLO + 3
        took = _wait("ping after the link failure (vnet fails over)",
                     lambda: peer.ping(1) == 1, bound)  # fmt: skip
        print(f"recovery after link failure seen by the vnet: {time.monotonic() - failed:.1f} s "
              f"(bound {bound} s)")  # fmt: skip
        ours = _ours(daemon)["stp"]
        assert ours["root_port"] != root_port and ours["topology_changes"] >= 1  # type: ignore[index]
        # 7. SIGTERM: the daemon exits cleanly, its TAPs go with it.
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.logtext()
        left = peer.ip("-o", "link", "show")
        assert f"{p}a" not in left and f"{p}b" not in left, left
    finally:
        peer.close()


def test_reload_turns_stp_off_and_on(daemon: Vrouterd) -> None:
    daemon.start()
    peer = Peer(daemon, priority=32768)
    try:
        _wait("convergence", lambda: _converged(daemon, peer, True), 2 * FORWARD_DELAY + 10)
        off = daemon.config.read_text().replace("stp = true\npriority = 4096\nhello_time = 1\n"
                                                "max_age = 6\nforward_delay = 4\n", "")  # fmt: skip
        assert "stp = true" not in off
        daemon.config.write_text(off)
        result = daemon.ctl("reload")
        assert result.returncode == 0, result.stdout + result.stderr
        bridge = _ours(daemon)
        assert bridge["stp"] is None
        assert all(pp["stp"] is None for pp in bridge["ports"])  # type: ignore[attr-defined]
        # The Linux bridge now hears itself across our bridge and breaks the loop alone.
        _wait("Linux alone blocks", lambda: sorted(peer.states().values()).count("blocking") == 1,
              2 * FORWARD_DELAY + MAX_AGE + 10)  # fmt: skip
        assert peer.ping() == 3
        daemon.write_config(LOOP.format(dir=daemon.dir, p=daemon.prefix))
        result = daemon.ctl("reload")
        assert result.returncode == 0, result.stdout + result.stderr
        states = _port_states(_ours(daemon))
        assert set(states.values()) <= {"listening", "blocking"}, states
        _wait("convergence again", lambda: _converged(daemon, peer, True), 2 * FORWARD_DELAY + 10)
        assert peer.ping() == 3
        # A member's path cost and priority change at run time, through vrouterctl.
        p = daemon.prefix
        result = daemon.ctl("bridge", "port-stp", "lab", "br0", f"{p}a", "--path-cost", "500",
                            "--port-priority", "16")  # fmt: skip
        assert result.returncode == 0 and "path cost 500 port priority 16" in result.stdout, (
            result.stdout + result.stderr
        )
        port = next(pp for pp in _ours(daemon)["ports"] if pp["name"] == f"{p}a")  # type: ignore[attr-defined]
        assert port["stp"]["path_cost"] == 500 and port["stp"]["port_id"] == "4001"
        bad = daemon.ctl("bridge", "port-stp", "lab", "br0", f"{p}a", "--path-cost", "0")
        assert bad.returncode != 0 and "path_cost" in bad.stderr, bad.stdout + bad.stderr
    finally:
        peer.close()


def test_a_bridge_created_at_run_time_with_stp_breaks_the_loop(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    taps_only = LOOP[: LOOP.index("[vnets.lab.interfaces.br0]")]
    daemon = Vrouterd(tmp_path_factory.mktemp("stprt"), taps_only)
    peer = None
    try:
        daemon.start()
        p = daemon.prefix
        create = ("bridge", "create", "lab", "br0", f"{p}a", f"{p}b", "--address", "192.0.2.1/24",
                  "--stp", "--priority", "4096")  # fmt: skip
        # Alone from the default times, forward_delay 4 breaks 802.1D's relation: refused.
        bad = daemon.ctl(*create, "--forward-delay", "4")
        assert bad.returncode != 0 and "max_age 20 is more than 2 x (forward_delay 4 - 1)" in (
            bad.stderr
        ), bad.stdout + bad.stderr
        assert not daemon.call("bridge.show", vnet="lab")
        made = daemon.ctl(*create, "--hello-time", "1", "--max-age", "6", "--forward-delay", "4")
        assert made.returncode == 0 and "spanning tree on" in made.stdout, made.stdout + made.stderr
        peer = Peer(daemon, priority=32768)
        _wait("convergence, vnet root", lambda: _converged(daemon, peer, True),
              2 * FORWARD_DELAY + 10)  # fmt: skip
        assert _ours(daemon)["stp"]["is_root"]  # type: ignore[index]
        assert peer.ping() == 3
        dump = daemon.ctl("config", "dump")
        assert dump.returncode == 0, dump.stderr
        table = dump.stdout[dump.stdout.index("[vnets.lab.interfaces.br0]"):]
        for line in ("stp = true", "priority = 4096", "hello_time = 1", "max_age = 6",
                     "forward_delay = 4"):  # fmt: skip
            assert f"\n{line}\n" in table, table
    finally:
        if peer is not None:
            peer.close()
        daemon.close()
