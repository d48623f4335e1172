"""``vrouterctl capture`` on the demo topology, read back by tcpdump.

The captures watch red's TAP to h1.  h1 pings red's address and sends UDP to
its subnet's broadcast address (red answers no ICMP error to a broadcast, so
the only ICMP on the link is the pings).  Every process is bounded by a
timeout and killed on the way out.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness import Vrouterd, run, vrouterctl, wait_listening

pytestmark = pytest.mark.integration

CTL = tuple(vrouterctl())
UDP_TO_BROADCAST = (
    "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); "
    "[s.sendto(b'u' * 20, ('192.0.2.255', 9)) for _ in range({n})]"
)


def ctl(daemon: Vrouterd, *args: str) -> list[str]:
    return [*CTL, "--socket", daemon.socket, *args]


@contextmanager
def capturing(
    daemon: Vrouterd, *args: str, stdout: int | None = subprocess.PIPE
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``vrouterctl capture ARGS`` until it listens; kill it on the way out."""
    proc = subprocess.Popen(ctl(daemon, "capture", *args), stdout=stdout, stderr=subprocess.PIPE)
    try:
        wait_listening(proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def ping(daemon: Vrouterd, count: int = 2) -> None:
    daemon.exec("h1", "ping", "-n", "-c", str(count), "-i", "0.2", "-W", "2", "192.0.2.1")


def udp_broadcast(daemon: Vrouterd, count: int = 3) -> None:
    daemon.python("h1", "-c", UDP_TO_BROADCAST.format(n=count))


def tcpdump_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_pipe_into_tcpdump_shows_pings_and_no_udp(demo: Vrouterd, tmp_path: Path) -> None:
    tap = demo.tap("r")
    udp_file = tmp_path / "udp.pcap"
    icmp = subprocess.Popen(
        ctl(demo, "capture", "red", tap, "-c", "4", "-w", "-", "icmp"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert icmp.stdout is not None
    dump = subprocess.Popen(
        ["tcpdump", "-n", "-r", "-"],
        stdin=icmp.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    icmp.stdout.close()
    try:
        wait_listening(icmp)
        # A second capture on the same interface proves the UDP did cross it.
        with capturing(demo, "red", tap, "-c", "3", "-w", str(udp_file), "udp") as udp:
            udp_broadcast(demo, 3)
            ping(demo, 2)
            assert udp.wait(15) == 0
        out, err = dump.communicate(timeout=20)
        assert icmp.wait(10) == 0
    finally:
        for proc in (icmp, dump):
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        assert icmp.stderr is not None
        icmp.stderr.close()
    assert dump.returncode == 0, err
    lines = tcpdump_lines(out)
    assert len(lines) == 4, out
    assert sum("192.0.2.2 > 192.0.2.1: ICMP echo request" in line for line in lines) == 2, out
    assert sum("192.0.2.1 > 192.0.2.2: ICMP echo reply" in line for line in lines) == 2, out
    assert "UDP" not in out

    udp_lines = tcpdump_lines(run("tcpdump", "-n", "-r", str(udp_file)).stdout)
    assert len(udp_lines) == 3
    assert all("> 192.0.2.255.9: UDP, length 20" in line for line in udp_lines), udp_lines


def test_write_file_reads_back_and_lines_without_w(demo: Vrouterd, tmp_path: Path) -> None:
    tap = demo.tap("r")
    pcap = tmp_path / "ping.pcap"
    with (
        capturing(demo, "red", tap, "-c", "2", "-w", str(pcap), "icmp") as to_file,
        capturing(demo, "red", tap, "-c", "2", "icmp") as to_lines,
    ):
        ping(demo, 1)
        assert to_file.wait(15) == 0
        out, _ = to_lines.communicate(timeout=15)
        assert to_lines.returncode == 0
    lines = tcpdump_lines(run("tcpdump", "-n", "-r", str(pcap)).stdout)
    assert len(lines) == 2
    assert "ICMP echo request, id" in lines[0]
    assert "ICMP echo reply, id" in lines[1]
    printed = tcpdump_lines(out.decode())
    assert len(printed) == 2, printed
    assert "In  IP 192.0.2.2 > 192.0.2.1: ICMP echo request, id" in printed[0]
    assert "Out IP 192.0.2.1 > 192.0.2.2: ICMP echo reply, id" in printed[1]


def test_direction_in_shows_only_requests(demo: Vrouterd) -> None:
    args = ("red", demo.tap("r"), "--direction", "in", "-c", "2", "-w", "-", "icmp")
    with capturing(demo, *args) as cap:
        ping(demo, 2)
        assert cap.stdout is not None
        data, _ = cap.communicate(timeout=15)
        assert cap.returncode == 0
    dump = subprocess.run(
        ["tcpdump", "-n", "-r", "-"], input=data, capture_output=True, timeout=20, check=True
    )
    lines = tcpdump_lines(dump.stdout.decode())
    assert len(lines) == 2
    assert all("ICMP echo request" in line for line in lines), lines


def test_snaplen_cuts_frames(demo: Vrouterd, tmp_path: Path) -> None:
    pcap = tmp_path / "short.pcap"
    args = ("red", demo.tap("r"), "-s", "60", "-c", "1", "-w", str(pcap), "icmp")
    with capturing(demo, *args) as cap:
        demo.exec("h1", "ping", "-n", "-c", "1", "-s", "400", "-W", "2", "192.0.2.1")
        assert cap.wait(15) == 0
    raw = pcap.read_bytes()
    assert int.from_bytes(raw[16:20], sys.byteorder) == 60  # snaplen in the file header
    incl = int.from_bytes(raw[24 + 8 : 24 + 12], sys.byteorder)
    orig = int.from_bytes(raw[24 + 12 : 24 + 16], sys.byteorder)
    assert (incl, orig) == (60, 14 + 20 + 8 + 400)
    assert len(raw) == 24 + 16 + 60


def test_refusals_exit_1_with_the_reason(demo: Vrouterd) -> None:
    tap = demo.tap("r")
    bad_filter = run(*ctl(demo, "capture", "red", tap, "bogus", "(("), check=False, timeout=15)
    assert bad_filter.returncode == 1
    assert "syntax error" in bad_filter.stderr
    assert "bogus ((" in bad_filter.stderr
    bad_iface = run(*ctl(demo, "capture", "red", "nosuch0", "icmp"), check=False, timeout=15)
    assert bad_iface.returncode == 1
    assert "no interface 'nosuch0'" in bad_iface.stderr
    bad_vnet = run(*ctl(demo, "capture", "purple", tap), check=False, timeout=15)
    assert bad_vnet.returncode == 1
    assert "purple" in bad_vnet.stderr
    bad_snaplen = run(*ctl(demo, "capture", "red", tap, "-s", "-5"), check=False, timeout=15)
    assert bad_snaplen.returncode == 1
    assert "snaplen" in bad_snaplen.stderr


def test_unreachable_daemon_exits_2(tmp_path: Path) -> None:
    result = run(*CTL, "--socket", str(tmp_path / "none.sock"), "capture", "red", "x", check=False)
    assert result.returncode == 2
    assert "cannot reach vrouterd" in result.stderr


def test_ctrl_c_ends_cleanly_and_the_daemon_drops_the_tap(demo: Vrouterd, tmp_path: Path) -> None:
    pcap = tmp_path / "none.pcap"
    with capturing(demo, "red", demo.tap("r"), "-w", str(pcap), "tcp port 7") as cap:
        cap.send_signal(signal.SIGINT)
        _, err = cap.communicate(timeout=15)
        assert cap.returncode == 0, err
    assert b"0 packets captured" in err
    assert run("tcpdump", "-n", "-r", str(pcap)).stdout == ""
    deadline = time.monotonic() + 10
    while "filter 'tcp port 7'" not in demo.logtext() or not _ended_after_start(demo):
        assert time.monotonic() < deadline, demo.logtext()[-2000:]
        time.sleep(0.1)


def _ended_after_start(daemon: Vrouterd) -> bool:
    log = daemon.logtext()
    start = log.rfind("filter 'tcp port 7'")
    return "capture ended (reader closed)" in log[start:]


def test_capture_ends_when_the_daemon_stops(fresh_daemon: Vrouterd) -> None:
    fresh_daemon.start()
    with capturing(fresh_daemon, "red", fresh_daemon.tap("r"), "-w", "-") as cap:
        assert fresh_daemon.stop() == 0
        out, err = cap.communicate(timeout=15)
        assert cap.returncode == 0, err
    assert b"capture ended by vrouterd" in err
    assert len(out) >= 24  # the pcap header, and whatever crossed before the end
