"""TCP super-frames from a host: forwarded whole where the egress takes them, cut where not.

h1's TAP (red) has offloads on, so h1's kernel hands vrouterd TSO super-frames
with partial checksums; h2's TAP (blue) is configured with `offload = false`,
so vrouterd must deliver ordinary segments with complete checksums to h2.
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
from harness import DEMO_LIKE, Vrouterd, iperf3_server, python, vrouterctl

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    template = DEMO_LIKE.replace(
        '[vnets.blue.interfaces.{p}b]\ntype = "tap"\n',
        '[vnets.blue.interfaces.{p}b]\ntype = "tap"\noffload = false\n',
    )
    assert template != DEMO_LIKE
    daemon = Vrouterd(tmp_path_factory.mktemp("vrouterd"), template)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.close()


def _iperf(daemon: Vrouterd, seconds: int = 3) -> dict[str, object]:
    with iperf3_server(daemon):
        result = daemon.exec(
            "h1", "iperf3", "-c", "198.51.100.2", "-t", str(seconds), "--json", timeout=60
        )
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_superframes_arrive_and_leave_as_valid_segments(mixed: Vrouterd, tmp_path: Path) -> None:
    pcap = tmp_path / "h2.pcap"
    ingress = subprocess.Popen(
        vrouterctl(
            "capture",
            "red",
            mixed.tap("r"),
            "-c",
            "20",
            "-w",
            str(tmp_path / "red.pcap"),
            "tcp and greater 3000",
        ),
        env={**os.environ, "VROUTER_SOCKET": mixed.socket},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    egress = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            mixed.ns("h2"),
            "tcpdump",
            "-i",
            mixed.tap("b"),
            "-nn",
            "-c",
            "300",
            "-w",
            str(pcap),
            "tcp and src 192.0.2.2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        report = _iperf(mixed)
        assert "error" not in report
        egress.wait(30)
        ingress.wait(30)
    finally:
        for proc in (egress, ingress):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    # h1 really sent super-frames (more than 3000 bytes in one frame) into red.
    big = subprocess.run(
        ["tcpdump", "-nn", "-r", str(tmp_path / "red.pcap")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    lengths = [int(n) for n in re.findall(r"length (\d+)", big)]
    assert lengths and max(lengths) > 3000, big
    # h2 got ordinary segments, each with a correct TCP checksum.
    shown = subprocess.run(
        ["tcpdump", "-nn", "-vv", "-r", str(pcap)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    ip_lengths = [int(n) for n in re.findall(r", length (\d+)\)", shown)]
    assert len(ip_lengths) >= 100
    assert max(ip_lengths) <= 1500
    assert "incorrect" not in shown
    assert shown.count("(correct)") == len(ip_lengths)  # every segment checked, all correct


def test_tcp_through_each_kind_of_hop_with_offloads(mixed: Vrouterd, tmp_path: Path) -> None:
    report = _iperf(mixed, 2)
    received = report["end"]["sum_received"]  # type: ignore[index]
    assert received["bytes"] > 0
    served = tmp_path / "www"
    served.mkdir()
    blob = os.urandom(4 * 1024 * 1024)
    (served / "blob").write_bytes(blob)
    server = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            mixed.ns("h1"),
            *python("-m", "http.server", "8080"),
            "--bind",
            "::",
            "--directory",
            str(served),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        out = tmp_path / "got"
        for family, url in (
            ("-4", "http://192.0.2.2:8080/blob"),
            ("-6", "http://[2001:db8:1::2]:8080/blob"),
        ):
            for _ in range(50):
                if (
                    mixed.exec(
                        "h2", "curl", family, "-s", "-o", "/dev/null", url, check=False, timeout=20
                    ).returncode
                    == 0
                ):
                    break
                time.sleep(0.2)
            mixed.exec(
                "h2",
                "curl",
                family,
                "-sS",
                "--fail",
                "--max-time",
                "60",
                "-o",
                str(out),
                url,
                timeout=90,
            )
            assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(blob).digest()
    finally:
        server.kill()
        server.wait(10)
