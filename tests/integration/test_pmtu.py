"""Path MTU across a 1280-byte epair: tracepath, TCP downloads, IPv4 fragmentation."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from harness import Vrouterd, python

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("family", "target"), [("-4", "198.51.100.2"), ("-6", "2001:db8:2::2")], ids=["ipv4", "ipv6"]
)
def test_tracepath_reports_pmtu_1280(narrow: Vrouterd, family: str, target: str) -> None:
    result = narrow.exec(
        "h1", "tracepath", family, "-n", "-m", "6", target, timeout=90, check=False
    )
    assert re.search(r"pmtu 1280", result.stdout), result.stdout
    assert re.search(r"Resume: pmtu 1280 hops 3", result.stdout), result.stdout


@pytest.mark.parametrize(
    ("bind", "url_host"),
    [("198.51.100.2", "198.51.100.2"), ("2001:db8:2::2", "[2001:db8:2::2]")],
    ids=["ipv4", "ipv6"],
)
def test_curl_10mb_across_the_narrow_link(
    narrow: Vrouterd, tmp_path: Path, bind: str, url_host: str
) -> None:
    served = tmp_path / "www"
    served.mkdir()
    blob = os.urandom(10 * 1024 * 1024)
    (served / "blob.bin").write_bytes(blob)
    server = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            narrow.ns("h2"),
            *python("-m", "http.server", "8080"),
            "--bind",
            bind,
            "--directory",
            str(served),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://{url_host}:8080/blob.bin"
        for _ in range(50):
            probe = narrow.exec(
                "h1",
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                f"http://{url_host}:8080/",
                check=False,
                timeout=10,
            )
            if probe.stdout == "200":
                break
            time.sleep(0.1)
        out = tmp_path / "got.bin"
        narrow.exec(
            "h1", "curl", "-sS", "--fail", "--max-time", "120", "-o", str(out), url, timeout=150
        )
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(blob).digest()
    finally:
        server.kill()
        server.wait(10)
    stats = narrow.call("netstat", vnet="red")
    if ":" in bind:
        assert stats["ip6"]["toobig"] >= 1  # PTB told the server's side to shrink
    else:
        assert stats["ip"]["toolong"] + narrow.call("netstat", vnet="blue")["ip"]["toolong"] >= 1


def _fragmented(narrow: Vrouterd) -> int:
    return sum(narrow.call("netstat", vnet=v)["ip"]["fragmented"] for v in ("red", "blue"))


def test_ipv4_without_df_is_fragmented_across_the_narrow_link(narrow: Vrouterd) -> None:
    # Forget what tracepath taught the hosts, so the routers must fragment.
    for host in ("h1", "h2"):
        narrow.exec(host, "ip", "-4", "route", "flush", "cache")
    before = _fragmented(narrow)
    result = narrow.exec(
        "h1",
        "ping",
        "-4",
        "-M",
        "dont",
        "-c",
        "3",
        "-i",
        "0.2",
        "-W",
        "2",
        "-s",
        "1400",
        "198.51.100.2",
        check=False,
        timeout=60,
    )
    assert "3 received" in result.stdout, result.stdout
    assert "1408 bytes from 198.51.100.2" in result.stdout
    # Requests fragmented by red, replies by blue.
    assert _fragmented(narrow) - before >= 6
