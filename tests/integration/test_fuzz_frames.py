"""20,000 mutated frames from a host namespace at a running daemon; it counts them and forwards on.

The frames are the fuzz harness's seeds (tests/fuzzlab.py: the unit tests'
captures and frames aimed at the lab's addresses, which are the demo's on
the red side) mutated by its mutator, addressed to red's MAC (most of them)
with checksums fixed (half of them), and sent from h1 through an AF_PACKET
socket on its TAP, so they take the path a broken or hostile host's frames
would.  Afterwards the daemon is alive, has counted drops, has no
``internal_error`` drop, its log has no traceback, and h1 still reaches h2
(after h1 re-resolves the router: some mutated frames are ARP and ND
announcements that legitimately change what red knows of h1).
"""

from __future__ import annotations

import random
import struct
import textwrap
from pathlib import Path
from typing import Any

import fuzzlab
import pytest
from harness import Vrouterd

from vrouter.wire import ethernet

pytestmark = pytest.mark.integration

FRAMES = 20_000
SENDER = textwrap.dedent(
    """
    import socket, struct, sys, time
    data = open(sys.argv[2], "rb").read()
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((sys.argv[1], 0))
    sent = refused = i = 0
    deadline = time.monotonic() + 120
    while i < len(data) and time.monotonic() < deadline:
        (n,) = struct.unpack_from("!H", data, i)
        frame = data[i + 2 : i + 2 + n]
        i += 2 + n
        try:
            s.send(frame)
            sent += 1
        except OSError:
            refused += 1
        if (sent + refused) % 200 == 0:
            time.sleep(0.005)
    print(sent, refused)
    """
)


def _frames(router_mac: bytes, host_mac: bytes, count: int, seed: int = 14) -> list[bytes]:
    rng = random.Random(seed)
    pool = fuzzlab.seeds().frames
    out = []
    while len(out) < count:
        frame = bytearray(fuzzlab.mutate(rng, rng.choice(pool), pool, max_len=1514))
        if len(frame) < 14:
            continue
        if rng.random() < 0.9:
            frame[0:6] = router_mac if rng.random() < 0.9 else b"\xff" * 6
        frame[6:12] = host_mac
        if rng.random() < 0.5 and frame[12:14] in (b"\x08\x00", b"\x86\xdd"):
            payload = frame[14:]
            fuzzlab.fix_checksums(payload, header=True, upper=True)
            frame[14:] = payload
        out.append(bytes(frame))
    return out


def test_mutated_frames_are_counted_and_forwarding_goes_on(demo: Vrouterd, tmp_path: Path) -> None:
    tap = demo.tap("r")
    router_mac = next(i["mac"] for i in demo.call("ifconfig", vnet="red") if i["name"] == tap)
    host_mac = demo.exec("h1", "cat", f"/sys/class/net/{tap}/address").stdout.strip()
    demo.exec("h1", "ping", "-c", "1", "-W", "2", "198.51.100.2")
    before = demo.counters("red", tap)
    frames = _frames(ethernet.mac_from_str(router_mac), ethernet.mac_from_str(host_mac), FRAMES)
    blob = tmp_path / "frames.bin"
    blob.write_bytes(b"".join(struct.pack("!H", len(f)) + f for f in frames))
    script = tmp_path / "sender.py"
    script.write_text(SENDER)
    out = demo.python("h1", str(script), tap, str(blob), timeout=180)
    sent, refused = map(int, out.stdout.split())
    assert sent >= FRAMES * 0.9, (sent, refused)

    def overload(counters: dict[str, Any]) -> int:
        return int(counters["rx_drops"].get("rx_overload", 0))

    def accounted(counters: dict[str, Any]) -> int:
        # Read by the daemon, or left in the TAP's queue past its turn (rx_overload).
        return counters["rx_packets"] + overload(counters) - before["rx_packets"] - overload(before)

    after = demo.counters("red", tap)
    for _ in range(50):  # the last frames are in flight for a moment
        if accounted(after) >= sent * 0.9:
            break
        demo.exec("h1", "sleep", "0.1")
        after = demo.counters("red", tap)
    assert demo.proc is not None and demo.proc.poll() is None, demo.logtext()[-3000:]
    received = after["rx_packets"] - before["rx_packets"]
    dropped = sum(after["rx_drops"].values()) - sum(before["rx_drops"].values())
    assert accounted(after) >= sent * 0.9, (received, overload(after), sent)
    assert received >= sent // 2, (received, sent)
    assert dropped >= sent // 4, (dropped, after["rx_drops"])
    assert "internal_error" not in after["rx_drops"], after["rx_drops"]
    assert "Traceback" not in demo.logtext()
    top = sorted(after["rx_drops"].items(), key=lambda kv: -kv[1])[:8]
    print(f"sent {sent} (refused {refused}), received {received}, dropped {dropped}: {top}")

    demo.exec("h1", "ip", "neigh", "flush", "dev", tap)
    demo.exec("h1", "ping", "-c", "1", "-W", "2", "192.0.2.1", check=False)  # red learns h1 again
    result = demo.exec("h1", "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.2")
    assert "3 received" in result.stdout
