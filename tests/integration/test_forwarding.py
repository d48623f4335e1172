"""Real traffic through vrouterd: Linux hosts in namespaces, TAPs, two vnets."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from harness import Vrouterd, ping_received, python, vrouterctl

pytestmark = pytest.mark.integration


def _ping(
    demo: Vrouterd, host: str, target: str, count: int = 3
) -> subprocess.CompletedProcess[str]:
    return demo.exec(
        host, "ping", "-c", str(count), "-i", "0.2", "-W", "2", target, check=False, timeout=30
    )


def _received(result: subprocess.CompletedProcess[str]) -> int:
    return ping_received(result.stdout + result.stderr)


def test_ping_across_two_vnets(demo: Vrouterd) -> None:
    result = _ping(demo, "h1", "198.51.100.2")
    assert _received(result) == 3, result.stdout
    # Two routers on the way: the reply left h2 with TTL 64.
    assert "ttl=62" in result.stdout
    back = _ping(demo, "h2", "192.0.2.2")
    assert _received(back) == 3, back.stdout


@pytest.mark.parametrize(
    ("host", "address"),
    [("h1", "192.0.2.1"), ("h1", "203.0.113.1"), ("h1", "203.0.113.2"), ("h2", "198.51.100.1")],
)
def test_ping_router_addresses(demo: Vrouterd, host: str, address: str) -> None:
    result = _ping(demo, host, address, count=2)
    assert _received(result) == 2, result.stdout
    assert f"from {address}" in result.stdout


@pytest.mark.parametrize("mode", [[], ["-I"]], ids=["udp", "icmp"])
def test_traceroute_lists_router_hops(demo: Vrouterd, mode: list[str]) -> None:
    result = demo.exec(
        "h1",
        "traceroute",
        *mode,
        "-n",
        "-q",
        "1",
        "-w",
        "2",
        "-m",
        "6",
        "198.51.100.2",
        timeout=60,
    )
    hops = re.findall(r"^\s*\d+\s+(\S+)", result.stdout, re.MULTILINE)
    assert hops == ["192.0.2.1", "203.0.113.2", "198.51.100.2"], result.stdout


def test_iperf3_tcp(demo: Vrouterd) -> None:
    server = subprocess.Popen(
        ["ip", "netns", "exec", demo.ns("h2"), "iperf3", "-s", "-1", "-B", "198.51.100.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        result = demo.exec(
            "h1", "iperf3", "-c", "198.51.100.2", "-t", "3", "--json", timeout=60, check=False
        )
        report = json.loads(result.stdout)
        assert "error" not in report, report.get("error")
        assert result.returncode == 0
        received = report["end"]["sum_received"]
        mbits = received["bits_per_second"] / 1e6
        print(f"iperf3 through two vnets: {mbits:.0f} Mbit/s")
        assert received["bytes"] > 0
        assert mbits > 10, f"only {mbits:.1f} Mbit/s"
    finally:
        server.kill()
        server.wait(10)


def test_curl_10mb_download(demo: Vrouterd, tmp_path: Path) -> None:
    served = tmp_path / "www"
    served.mkdir()
    blob = os.urandom(10 * 1024 * 1024)
    (served / "blob.bin").write_bytes(blob)
    server = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            demo.ns("h2"),
            *python("-m", "http.server", "8080"),
            "--bind",
            "198.51.100.2",
            "--directory",
            str(served),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        out = tmp_path / "got.bin"
        for _ in range(50):  # the server needs a moment to bind
            probe = demo.exec(
                "h1",
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://198.51.100.2:8080/",
                check=False,
                timeout=10,
            )
            if probe.stdout == "200":
                break
            time.sleep(0.1)
        demo.exec(
            "h1",
            "curl",
            "-sS",
            "--fail",
            "-o",
            str(out),
            "http://198.51.100.2:8080/blob.bin",
            timeout=120,
        )
        assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(blob).hexdigest()
    finally:
        server.kill()
        server.wait(10)


def test_overlapping_addresses_are_isolated(demo: Vrouterd) -> None:
    red_before = demo.counters("red", demo.tap("r"))["rx_packets"]
    own_gateway = _ping(demo, "h3", "192.0.2.1")
    assert _received(own_gateway) == 3, own_gateway.stdout
    far = _ping(demo, "h3", "198.51.100.2", count=2)
    assert _received(far) == 0
    assert "Unreachable" in far.stdout
    green = demo.counters("green", demo.tap("g"))
    assert green["rx_packets"] >= 5
    # Nothing vr-h3 sent reached vnet red, though it uses red's addresses.
    assert demo.counters("red", demo.tap("r"))["rx_packets"] - red_before < 3


def test_vrouterctl_views(demo: Vrouterd) -> None:
    env = {**os.environ, "VROUTER_SOCKET": demo.socket}
    cmd = vrouterctl()
    vnets = json.loads(
        subprocess.run(
            [*cmd, "vnet", "list", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    )
    assert {v["name"] for v in vnets} == {"red", "blue", "green"}
    routes = json.loads(
        subprocess.run(
            [*cmd, "route", "show", "red", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    )
    static = [r for r in routes if r["prefix"] == "198.51.100.0/24"]
    assert static == [
        {
            "prefix": "198.51.100.0/24",
            "type": "unicast",
            "gateway": "203.0.113.2",
            "interface": "ep0",
            "source": "static",
            "distance": 1,
            "state": "installed",
            "use": static[0]["use"],
        }
    ]
    _ping(demo, "h1", "192.0.2.1", count=1)
    arp = subprocess.run(
        [*cmd, "arp", "show", "red"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert re.search(r"192\.0\.2\.2\s+\S+\s+" + demo.tap("r") + r"\s+reachable", arp), arp
    ifconfig = subprocess.run(
        [*cmd, "ifconfig", "blue"], env=env, capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert "inet 198.51.100.1/24" in ifconfig and "inet 203.0.113.2/30" in ifconfig
    bad = subprocess.run(
        [*cmd, "ifconfig", "nosuch"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bad.returncode == 1 and "no vnet named 'nosuch'" in bad.stderr


def test_bad_control_requests_get_errors(demo: Vrouterd) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(demo.socket)
        f = sock.makefile("rb")
        for bad in (b"not json\n", b"[1,2]\n", b'{"op": "nosuch"}\n', b'{"op": "ifconfig"}\n'):
            sock.sendall(bad)
            reply = json.loads(f.readline())
            assert reply["ok"] is False and reply["error"]
        # The same connection still serves a good request.
        sock.sendall(b'{"op": "vnet.list"}\n')
        assert json.loads(f.readline())["ok"] is True


def test_closed_tcp_port_on_router_refuses_at_once(demo: Vrouterd) -> None:
    result = demo.exec(
        "h1", "curl", "-sS", "--max-time", "5", "http://192.0.2.1:80/", check=False, timeout=30
    )
    assert result.returncode == 7, result.stderr  # curl: could not connect
    assert "Connection refused" in result.stderr or "Couldn't connect" in result.stderr
