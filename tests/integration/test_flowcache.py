"""The firewall's flow cache with real traffic: iperf3 and a TCP stream through a
firewalled vnet pass from the cache; a ruleset load keeps the flow (states are
kept, pf's ``pfctl -f``), a load followed by a flush stops it at once."""

from __future__ import annotations

import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import DEMO_LIKE, Vrouterd, python

pytestmark = pytest.mark.integration

RULES = """
[vnets.red.firewall]
default = "block"
[[vnets.red.firewall.rules]]
action = "pass"
direction = "in"
interface = "{p}r"
proto = "tcp"
to = ["198.51.100.2", "2001:db8:2::2"]
to_port = [5201, 5202]
label = "streams"
[[vnets.red.firewall.rules]]
action = "pass"
direction = "in"
interface = "{p}r"
proto = "icmp"
icmp_type = "echo-request"
"""

BLOCK_ALL = 'default = "block"\n'

SINK = textwrap.dedent(
    """
    import socket, sys, time
    out = sys.argv[1]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.51.100.2", 5202))
    s.listen(1)
    s.settimeout(30)
    conn, _ = s.accept()
    conn.settimeout(1.0)
    total, written = 0, 0.0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            data = conn.recv(65536)
        except TimeoutError:
            data = b"-"
        if not data:
            break
        if data != b"-":
            total += len(data)
        if time.monotonic() - written > 0.05:
            with open(out + ".tmp", "w") as f:
                f.write(str(total))
            import os
            os.replace(out + ".tmp", out)
            written = time.monotonic()
    """
)

SOURCE = textwrap.dedent(
    """
    import socket, time
    s = socket.create_connection(("198.51.100.2", 5202), timeout=5)
    s.settimeout(1.0)
    chunk = bytes(65536)
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        try:
            s.send(chunk)
        except TimeoutError:
            pass
        except OSError:
            break
    """
)


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Vrouterd]:
    daemon = Vrouterd(tmp_path, DEMO_LIKE + RULES)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.close()


def _flows(daemon: Vrouterd) -> dict[str, int]:
    return dict(daemon.call("firewall.show", vnet="red")["flows"])


def _spawn(daemon: Vrouterd, host: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ip", "netns", "exec", daemon.ns(host), *python(*args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _received(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _wait_received(path: Path, at_least: int, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = _received(path)
        if got >= at_least:
            return got
        time.sleep(0.1)
    raise AssertionError(f"only {_received(path)} bytes arrived, wanted {at_least}")


def _wait_stable(path: Path, timeout: float = 15) -> int:
    """Wait until the count has not moved for 1.5 s (the sink writes it every second at
    least); return it."""
    deadline = time.monotonic() + timeout
    last, since = _received(path), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = _received(path)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 1.5:
            return now
    raise AssertionError(f"the stream never stopped: {_received(path)} bytes and counting")


@pytest.mark.parametrize("target", ["198.51.100.2", "2001:db8:2::2"])
def test_iperf3_through_the_firewall_passes_from_the_cache(edge: Vrouterd, target: str) -> None:
    edge.wait_ipv6()
    server = subprocess.Popen(
        ["ip", "netns", "exec", edge.ns("h2"), "iperf3", "-s", "-1", "-B", target, "-p", "5201"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        before = _flows(edge)["hits"]
        for _ in range(50):  # the server listens
            result = edge.exec(
                "h1", "iperf3", "-c", target, "-p", "5201", "-t", "2", "--connect-timeout", "2000",
                check=False, timeout=30,
            )  # fmt: skip
            if result.returncode == 0:
                break
            time.sleep(0.2)
        assert result.returncode == 0, result.stderr
        assert "receiver" in result.stdout
        flows = _flows(edge)
        assert flows["hits"] - before > 100, flows  # the stream's segments took the cache
        assert flows["learned"] >= 2, flows  # both directions of data and control
    finally:
        server.kill()
        server.wait(10)


def test_a_ruleset_load_keeps_the_flow_and_a_flush_stops_it(edge: Vrouterd, tmp_path: Path) -> None:
    count = tmp_path / "received"
    sink = _spawn(edge, "h2", "-c", SINK, str(count))
    source: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(50):
            if "198.51.100.2:5202" in edge.exec("h2", "ss", "-ltnH").stdout:
                break
            time.sleep(0.1)
        source = _spawn(edge, "h1", "-c", SOURCE)
        _wait_received(count, 1 << 20)
        learned = _flows(edge)["learned"]
        assert _flows(edge)["hits"] > 0
        edge.call("firewall.load", vnet="red", text=BLOCK_ALL, source="block.toml")
        got = _received(count)
        _wait_received(count, got + (1 << 20))  # states are kept: the stream goes on
        assert _flows(edge)["learned"] > learned  # the load emptied the cache: learned again
        assert edge.call("firewall.flush", vnet="red")["flushed"] >= 1
        stopped = _wait_stable(count)  # what was in flight arrives, then nothing
        time.sleep(2.0)
        assert _received(count) == stopped  # blocked from the flush on
        default = edge.call("firewall.show", vnet="red")["rules"][-1]
        assert default["text"] == "block all" and default["packets"] > 0  # retransmissions
    finally:
        for proc in (source, sink):
            if proc is not None:
                proc.kill()
                proc.wait(10)
