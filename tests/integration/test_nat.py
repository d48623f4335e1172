"""NAT44 and NPTv6 at the edge, against real hosts and tools.

Vnet ``edge`` has two inside hosts, h1 (192.0.2.2, behind ``{p}a``) and h2
(192.0.2.66, behind ``{p}b``), and reaches vnet ``wan`` over a 1400-byte
epair (203.0.113.1 <-> 203.0.113.2).  The outside host h3 (198.51.100.2) sits
behind ``wan``, which has no route back to 192.0.2.0/24: only the
masquerade address 203.0.113.1 is reachable from there.  Port 8080-8089 of
that address is forwarded to h2, ports 18080-18089.  IPv6: edge translates
h1's 2001:db8:1::/64 to 2001:db8:5::/64 (NPTv6) on the epair.

The filter blocks by default and lets in what comes from inside and, on the
epair, TCP to h2 port 18080-18088 (18089 is rejected): it sees the
destination after ``rdr``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import PYTHON, Vrouterd, running

from vrouter.wire.checksum import ones_sum

pytestmark = pytest.mark.integration

CONFIG = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
log_level = "debug"

[vnets.edge.interfaces.{p}a]
type = "tap"
addresses = ["192.0.2.1/26", "2001:db8:1::1/64"]
host = {{ netns = "{p}h1", addresses = ["192.0.2.2/26", "2001:db8:1::2/64"], \
gateway = "192.0.2.1", gateway6 = "2001:db8:1::1" }}

[vnets.edge.interfaces.{p}b]
type = "tap"
addresses = ["192.0.2.65/26"]
host = {{ netns = "{p}h2", addresses = ["192.0.2.66/26"], gateway = "192.0.2.65" }}

[vnets.edge.interfaces.ep0]
type = "epair"
peer = "wan:ep0"
mtu = 1400
addresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]

[[vnets.edge.routes]]
to = "0.0.0.0/0"
via = "203.0.113.2"

[[vnets.edge.routes]]
to = "2001:db8:2::/64"
via = "2001:db8:ff::2"

[vnets.edge.firewall]
default = "block"

[vnets.edge.firewall.tables]
inside = ["192.0.2.0/24", "2001:db8:1::/64"]

[[vnets.edge.firewall.rules]]
action = "pass"
direction = "in"
from = "<inside>"
label = "inside"

[[vnets.edge.firewall.rules]]
action = "reject"
direction = "in"
interface = "ep0"
proto = "tcp"
to = "192.0.2.66"
to_port = 18089
label = "closed"

[[vnets.edge.firewall.rules]]
action = "pass"
direction = "in"
interface = "ep0"
proto = "tcp"
to = "192.0.2.66"
to_port = "18080-18089"
label = "forwarded"

[[vnets.edge.firewall.rules]]
action = "pass"
direction = "out"
label = "out"

[[vnets.edge.firewall.nat]]
action = "nat"
interface = "ep0"
from = "192.0.2.0/24"
label = "masquerade"

[[vnets.edge.firewall.nat]]
action = "rdr"
interface = "ep0"
proto = "tcp"
to_port = "8080-8089"
target = "192.0.2.66"
target_port = 18080
label = "web"

[[vnets.edge.firewall.nat]]
action = "nptv6"
interface = "ep0"
from = "2001:db8:1::/64"
address = "2001:db8:5::/64"

[vnets.wan.interfaces.ep0]
type = "epair"
peer = "edge:ep0"
mtu = 1400
addresses = ["203.0.113.2/30", "2001:db8:ff::2/64"]

[vnets.wan.interfaces.{p}o]
type = "tap"
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]
host = {{ netns = "{p}h3", addresses = ["198.51.100.2/24", "2001:db8:2::2/64"], \
gateway = "198.51.100.1", gateway6 = "2001:db8:2::1" }}

[[vnets.wan.routes]]
to = "2001:db8:5::/64"
via = "2001:db8:ff::1"
"""

PUBLIC = "203.0.113.1"
OUTSIDE = "198.51.100.2"

UDP_ECHO = textwrap.dedent(
    """
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 9999))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data + b" from %s:%d" % (peer[0].encode(), peer[1]), peer)
    """
)

UDP_ASK = textwrap.dedent(
    """
    import socket, sys
    target, sport, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    padding = b"x" * int(sys.argv[4]) if len(sys.argv) > 4 else b""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", sport))
    s.settimeout(1.0)
    got = []
    for i in range(count):
        s.sendto(b"probe %d" % i + padding, (target, 9999))
        try:
            got.append(s.recvfrom(65535)[0].decode())
        except TimeoutError:
            pass
    print("\\n".join(got))
    """
)


def _serve(
    daemon: Vrouterd, host: str, port: int, bind: str, root: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                daemon.ns(host),
                PYTHON,
                "-m",
                "http.server",
                str(port),
                "--bind",
                bind,
                "--directory",
                str(root),
            ],
            stdout=out,
            stderr=out,
        )


def _wait_http(daemon: Vrouterd, host: str, url: str) -> None:
    for _ in range(100):
        probe = daemon.exec(
            host,
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "2",
            url,
            check=False,
            timeout=10,
        )
        if probe.stdout == "200":
            return
        time.sleep(0.1)
    raise AssertionError(f"{url} not reachable from {host}")


@pytest.fixture(scope="module")
def www(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("www")
    blob = os.urandom(10 * 1024 * 1024)
    (root / "blob.bin").write_bytes(blob)
    (root / "index.html").write_text("hello from behind the NAT\n")
    return root, hashlib.sha256(blob).hexdigest()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, www: tuple[Path, str]) -> Iterator[Vrouterd]:
    daemon = Vrouterd(tmp_path_factory.mktemp("vrouterd"), CONFIG)
    root, _ = www
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for started in running(daemon):
            servers.append(_serve(daemon, "h3", 8080, "::", root, daemon.dir / "h3.log"))
            servers.append(_serve(daemon, "h2", 18081, "0.0.0.0", root, daemon.dir / "h2.log"))
            servers.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", daemon.ns("h3"), PYTHON, "-c", UDP_ECHO],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            _wait_http(daemon, "h1", f"http://{OUTSIDE}:8080/")
            yield started
    finally:
        for server in servers:
            server.kill()
            server.wait(10)


def _at_once(daemon: Vrouterd, commands: list[tuple[str, list[str]]], timeout: float) -> list[str]:
    """Run each (host, argv) at the same time; return their outputs (all must succeed)."""
    procs = [
        subprocess.Popen(
            ["ip", "netns", "exec", daemon.ns(host), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for host, argv in commands
    ]
    outputs = []
    try:
        for proc, (host, argv) in zip(procs, commands, strict=True):
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, f"{host}: {' '.join(argv)}: {proc.returncode}\n{err}"
            outputs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return outputs


def test_two_hosts_download_10mb_at_once_from_one_source_port(
    edge: Vrouterd, www: tuple[Path, str], tmp_path: Path
) -> None:
    _, digest = www
    files = {host: tmp_path / f"{host}.bin" for host in ("h1", "h2")}
    _at_once(
        edge,
        [
            (
                host,
                [
                    "curl",
                    "-sS",
                    "--fail",
                    "--max-time",
                    "120",
                    "--local-port",
                    "45000",
                    "-o",
                    str(path),
                    f"http://{OUTSIDE}:8080/blob.bin",
                ],
            )
            for host, path in files.items()
        ],
        timeout=150,
    )
    for path in files.values():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    # Both came from the public address, from two different ports.
    log = (edge.dir / "h3.log").read_text()
    peers = re.findall(r"^(\S+) - - .*GET /blob.bin", log, re.MULTILINE)
    assert peers[-2:] == [f"::ffff:{PUBLIC}"] * 2, log
    mappings = [
        m
        for m in edge.call("firewall.states", vnet="edge")
        if m.get("kind") == "nat" and m["inside"].endswith(":45000") and m["proto"] == "tcp"
    ]
    assert {m["inside"] for m in mappings} == {"192.0.2.2:45000", "192.0.2.66:45000"}
    outside = {m["outside"] for m in mappings}
    assert len(outside) == 2 and all(o.startswith(f"{PUBLIC}:") for o in outside)
    assert f"{PUBLIC}:45000" in outside  # one of them kept its port


def test_udp_and_ping_from_both_hosts_at_once(edge: Vrouterd) -> None:
    ask = [PYTHON, "-c", UDP_ASK, OUTSIDE, "5000", "3"]
    ping = ["ping", "-c", "3", "-i", "0.2", "-W", "2", OUTSIDE]
    outputs = _at_once(edge, [("h1", ask), ("h2", ask), ("h1", ping), ("h2", ping)], timeout=60)
    for answers in outputs[:2]:
        lines = answers.split()
        assert answers.count("probe") >= 2, answers
        assert all(p.startswith(PUBLIC) for p in lines if p.count(".") == 3 and ":" in p)
    seen = {line.split(" from ")[1] for out in outputs[:2] for line in out.splitlines()}
    assert len(seen) == 2 and f"{PUBLIC}:5000" in seen, seen  # two mappings, one kept 5000
    for out in outputs[2:]:
        assert " 0% packet loss" in out, out
    states = edge.ctl("firewall", "edge", "states")
    assert "192.0.2.2:5000" in states.stdout and "NAT ep0" in states.stdout, states.stdout


def test_fragmented_udp_through_masquerade(edge: Vrouterd) -> None:
    # 4000 bytes each way: fragments from h1 (1500), cut again for the 1400-byte
    # epair, and the answer's fragments translated after their first.
    ask = edge.exec("h1", PYTHON, "-c", UDP_ASK, OUTSIDE, "5001", "3", "4000")
    answers = [line for line in ask.stdout.splitlines() if "x" * 4000 in line]
    assert len(answers) >= 2, ask.stdout[:300]
    assert all(line.endswith(f" from {PUBLIC}:5001") for line in answers)


def test_port_forward_from_outside_and_by_hairpin_from_inside(edge: Vrouterd) -> None:
    url = f"http://{PUBLIC}:8081/"
    for host in ("h3", "h1", "h2"):
        result = edge.exec(host, "curl", "-sS", "--fail", "--max-time", "5", url, timeout=30)
        assert "hello from behind the NAT" in result.stdout, host
    log = (edge.dir / "h2.log").read_text()
    peers = re.findall(r"^(\S+) - - ", log, re.MULTILINE)
    # h3 itself, then h1 and h2 hairpinned: the server saw the vnet's own addresses.
    assert peers[-3:] == [OUTSIDE, "192.0.2.65", "192.0.2.65"], log
    shown = edge.call("firewall.show", vnet="edge")
    web = next(n for n in shown["nat"] if "label web" in n["text"])
    assert web["mappings"] >= 3
    forwarded = next(r for r in shown["rules"] if "label forwarded" in r["text"])
    assert forwarded["packets"] >= 1  # the filter saw the redirected destination
    # A forwarded port the filter rejects: the reset comes from the public end.
    started = time.monotonic()
    refused = edge.exec(
        "h3", "curl", "-sS", "--max-time", "3", f"http://{PUBLIC}:8089/", check=False, timeout=30
    )
    assert refused.returncode == 7, refused.stderr  # connection refused
    assert time.monotonic() - started < 2
    # Outside the forwarded range nothing answers.
    other = edge.exec(
        "h3", "curl", "-sS", "--max-time", "3", f"http://{PUBLIC}:8090/", check=False, timeout=30
    )
    assert other.returncode != 0


UDP_PEER = textwrap.dedent(
    """
    import select, socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(sys.argv[1])))
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "send":
            s.sendto(command[3].encode(), (command[1], int(command[2])))
            print("sent", flush=True)
        else:
            readable, _, _ = select.select([s], [], [], float(command[1]))
            if readable:
                data, peer = s.recvfrom(2048)
                print("got", data.decode(), peer[0], peer[1], flush=True)
            else:
                print("none", flush=True)
    """
)


class _Peer:
    """A UDP socket in a host namespace, told what to do line by line."""

    def __init__(self, daemon: Vrouterd, host: str, port: int) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", daemon.ns(host), PYTHON, "-c", UDP_PEER, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.ask("") == "ready"

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def test_nat_hairpin_lets_inside_hosts_meet_at_their_outside_mappings(edge: Vrouterd) -> None:
    """RFC 4787 REQ-9: h1 and h2 reach each other at their masquerade mappings, as
    two hosts behind one NAT that learnt those from a rendezvous server would."""
    h1 = _Peer(edge, "h1", 6100)
    h2 = _Peer(edge, "h2", 7100)
    try:
        for peer in (h1, h2):  # each gets its mapping, the source port kept
            assert peer.ask(f"send {OUTSIDE} 9 rendezvous") == "sent"
        assert h1.ask(f"send {PUBLIC} 7100 early") == "sent"
        assert h2.ask("recv 1") == "none"  # h2 never sent to that address: filtered
        assert h2.ask(f"send {PUBLIC} 6100 punch") == "sent"
        assert h1.ask("recv 3") == f"got punch {PUBLIC} 7100"
        assert h1.ask(f"send {PUBLIC} 7100 hello") == "sent"
        assert h2.ask("recv 3") == f"got hello {PUBLIC} 6100"
    finally:
        h1.close()
        h2.close()
    states = edge.call("firewall.states", vnet="edge")
    text = json.dumps(states)
    assert f"{PUBLIC}:6100" in text and f"{PUBLIC}:7100" in text


@pytest.mark.parametrize("mode", [[], ["-I"]], ids=["udp", "icmp"])
def test_traceroute_from_inside_lists_every_hop(edge: Vrouterd, mode: list[str]) -> None:
    result = edge.exec(
        "h1", "traceroute", "-n", *mode, "-w", "1", "-q", "1", "-m", "6", OUTSIDE, timeout=60
    )
    hops = re.findall(r"^\s*(\d+)\s+(\S+)", result.stdout, re.MULTILINE)
    assert [ip for _, ip in hops[:3]] == ["192.0.2.1", "203.0.113.2", OUTSIDE], result.stdout


def test_tracepath_from_inside_lists_hops_and_the_path_mtu(edge: Vrouterd) -> None:
    result = edge.exec("h1", "tracepath", "-4", "-n", "-m", "6", OUTSIDE, timeout=90, check=False)
    assert "pmtu 1400" in result.stdout, result.stdout
    assert "203.0.113.2" in result.stdout, result.stdout
    assert re.search(r"Resume: pmtu 1400 hops 3", result.stdout), result.stdout


def test_iperf3_through_nat_survives_a_ruleset_reload(edge: Vrouterd, tmp_path: Path) -> None:
    server = subprocess.Popen(
        ["ip", "netns", "exec", edge.ns("h3"), "iperf3", "-s", "-1", "-B", OUTSIDE],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        client = subprocess.Popen(
            ["ip", "netns", "exec", edge.ns("h1"), "iperf3", "-c", OUTSIDE, "-t", "6", "-J"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(2.5)
            before = _outside_of(edge, "192.0.2.2:")
            rules = tmp_path / "rules.toml"
            text = CONFIG.split("[vnets.edge.firewall]")[1].split("[vnets.wan")[0]
            rules.write_text(_standalone(text))
            loaded = edge.ctl("firewall", "edge", "load", str(rules))
            assert loaded.returncode == 0, loaded.stderr
            out, err = client.communicate(timeout=60)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait(10)
        assert client.returncode == 0, err
        report = json.loads(out)
        intervals = [i["sum"]["bytes"] for i in report["intervals"]]
        assert len(intervals) >= 5 and all(b > 0 for b in intervals), intervals
        after = _outside_of(edge, "192.0.2.2:")
        assert before and set(before) <= set(after)
    finally:
        server.kill()
        server.wait(10)


def _outside_of(daemon: Vrouterd, inside: str) -> list[str]:
    """Return the outside ends of the vnet edge's nat mappings whose inside starts so."""
    return [
        m["outside"]
        for m in daemon.call("firewall.states", vnet="edge")
        if m.get("kind") == "nat" and m["inside"].startswith(inside)
    ]


def _standalone(section: str) -> str:
    """Return the edge firewall section of CONFIG as a ruleset file for ``firewall load``."""
    return section.replace("[vnets.edge.firewall.tables]", "[tables]").replace(
        "[[vnets.edge.firewall.", "[["
    )


def test_nptv6_ping_and_curl_with_a_checksum_neutral_address(edge: Vrouterd) -> None:
    ping = edge.exec("h1", "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:db8:2::2")
    assert " 0% packet loss" in ping.stdout, ping.stdout
    result = edge.exec(
        "h1", "curl", "-sS", "--fail", "--max-time", "5", "http://[2001:db8:2::2]:8080/"
    )
    assert "hello from behind the NAT" in result.stdout
    log = (edge.dir / "h3.log").read_text()
    peer = ipaddress.IPv6Address(re.findall(r"^(\S+) - - .*GET / ", log, re.MULTILINE)[-1])
    inside = ipaddress.IPv6Address("2001:db8:1::2")
    assert peer in ipaddress.IPv6Network("2001:db8:5::/64"), peer
    assert peer != ipaddress.IPv6Address("2001:db8:5::2")  # a word of the IID absorbed the change
    assert ones_sum(peer.packed) == ones_sum(inside.packed)
