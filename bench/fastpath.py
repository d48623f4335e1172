#!/usr/bin/env python3
"""The forwarding paths in process: frames per CPU-second of each path, no TAP, no loop.

One vnet ``red`` forwards between two test interfaces (t1: 192.0.2.1/24 and
2001:db8:1::1/64; t2: 198.51.100.1/24 and 2001:db8:2::1/64), neighbours
resolved.  Each case hands the same prepared 64-byte frames (Ethernet + IP +
UDP, a TCP pure ACK of an established connection, or ICMP echo requests of
h1 and replies of h2 in turn) to ``ether.input`` in a loop; the interfaces'
transmit does nothing.  CPU seconds are this process's
(``time.process_time``), so a busy machine changes them less than it changes
wall-clock figures, and the system calls of a real TAP are not in them: the
numbers are what the Python forwarding path costs, the ratios between cases
what a lever gains.

  ipv4               UDP, the IPv4 fast path
  ipv4-full          UDP, the IPv4 full path (fast path bypassed)
  ipv4-fw            UDP through the 20-rule firewall of bench/forwarding.py, flow cache on
  ipv4-fw-nocache    the same, net.pf.flowcache = 0
  ipv4-tcp-fw        TCP ACKs of an established connection through the firewall, cache on
  ipv4-tcp-fw-nocache  the same, cache off
  ipv4-ping-fw       ICMP echo requests (h1) and replies (h2), alternating, through the firewall
  ipv4-ping-fw-nocache  the same, cache off
  ipv6               UDP, the IPv6 fast path
  ipv6-full          UDP, the IPv6 full path (the only path before the fast path existed)
  ipv6-fw            UDP through the firewall, flow cache on
  ipv6-fw-nocache    the same, cache off

Usage: .venv/bin/python bench/fastpath.py [--frames 200000] [--runs 3] [--no-write]
Results go to the "fastpath" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import struct
import time
import tomllib
from collections.abc import Callable

from forwarding import firewall_toml
from report import loadavg, machine, write_section

from vrouter.core.vnet import Vnet
from vrouter.daemon import build
from vrouter.daemon.config.model import InterfaceConfig
from vrouter.firewall import subsystem as firewall
from vrouter.firewall.ruleparse import parse_ruleset
from vrouter.link import ether
from vrouter.link.ifnet import Ifnet
from vrouter.link.lltable import REACHABLE
from vrouter.stack import new_tree
from vrouter.wire.checksum import checksum

NOW = 1000.0
H1_MAC = bytes.fromhex("020000000101")
H2_MAC = bytes.fromhex("020000000202")
H1, H2 = bytes([192, 0, 2, 2]), bytes([198, 51, 100, 2])
H1_6 = ipaddress.IPv6Address("2001:db8:1::2").packed
H2_6 = ipaddress.IPv6Address("2001:db8:2::2").packed
CASES = (
    "ipv4", "ipv4-full", "ipv4-fw", "ipv4-fw-nocache", "ipv4-tcp-fw", "ipv4-tcp-fw-nocache",
    "ipv4-ping-fw", "ipv4-ping-fw-nocache", "ipv6", "ipv6-full", "ipv6-fw", "ipv6-fw-nocache",
)  # fmt: skip


def _iface(vnet: Vnet, name: str, addresses: tuple[str, ...]) -> Ifnet:
    icfg = InterfaceConfig(
        name=name,
        type="test",
        addresses=tuple(ipaddress.ip_interface(a) for a in addresses),
        mtu=1500,
        mac=None,
        up=True,
        host=None,
        peer=None,
    )
    ifp = build.add_interface(vnet, icfg, NOW)
    build.bring_up(vnet, [icfg], NOW)
    return ifp


def router() -> tuple[Vnet, Ifnet, Ifnet]:
    """Return vnet red with t1 and t2 up, addresses usable, h1 and h2 reachable."""
    vnet = new_tree().create("red")
    vnet.inet6.dad_transmits = 0
    t1 = _iface(vnet, "t1", ("192.0.2.1/24", "2001:db8:1::1/64"))
    t2 = _iface(vnet, "t2", ("198.51.100.1/24", "2001:db8:2::1/64"))
    for ifp in (t1, t2):
        ifp.transmit = lambda frame: None
    for table, ifp, ip, mac in (
        (vnet.inet.arp, t1, H1, H1_MAC),
        (vnet.inet.arp, t2, H2, H2_MAC),
        (vnet.inet6.nd, t1, H1_6, H1_MAC),
        (vnet.inet6.nd, t2, H2_6, H2_MAC),
    ):
        entry = table.add(vnet.timers, ifp, ip, REACHABLE, NOW)
        assert entry is not None
        table.confirm(entry, mac, REACHABLE, NOW)
    return vnet, t1, t2


def with_firewall(vnet: Vnet, cache: bool) -> None:
    """Put the 20-rule ruleset of bench/forwarding.py on red (interface t1), enabled."""
    doc = tomllib.loads(firewall_toml("t1"))
    firewall.replace_ruleset(vnet, parse_ruleset(doc["vnets"]["red"]["firewall"]))
    firewall.set_enabled(vnet, True)
    vnet.firewall.flows.enabled = cache


def udp4(src: bytes, dst: bytes, sport: int, dport: int, dst_mac: bytes, src_mac: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + 18, 0) + bytes(18)
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                                   src, dst))  # fmt: skip
    header[10:12] = struct.pack("!H", checksum(bytes(header)))
    return dst_mac + src_mac + b"\x08\x00" + bytes(header) + udp


def tcp4(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
         dst_mac: bytes, src_mac: bytes) -> bytes:  # fmt: skip
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 1, 0, 64, 6, 0,
                                   src, dst))  # fmt: skip
    header[10:12] = struct.pack("!H", checksum(bytes(header)))
    return dst_mac + src_mac + b"\x08\x00" + bytes(header) + segment + bytes(6)


def udp6(src: bytes, dst: bytes, sport: int, dport: int, dst_mac: bytes, src_mac: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + 2, 0xFFFF) + bytes(2)
    header = struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64, src, dst)
    return dst_mac + src_mac + b"\x86\xdd" + header + udp


def icmp4(src: bytes, dst: bytes, type_: int, dst_mac: bytes, src_mac: bytes) -> bytes:
    body = bytearray(struct.pack("!BBHHH", type_, 0, 0, 0x4242, 1) + bytes(10))
    body[2:4] = struct.pack("!H", checksum(bytes(body)))
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0, 64, 1, 0,
                                   src, dst))  # fmt: skip
    header[10:12] = struct.pack("!H", checksum(bytes(header)))
    return dst_mac + src_mac + b"\x08\x00" + bytes(header) + bytes(body)


SYN, ACK = 0x02, 0x10


def prepare(case: str) -> tuple[Callable[[], None], int]:
    """Return (one pass over the prepared frames, frames per pass) for ``case``."""
    vnet, t1, t2 = router()
    if "fw" in case:
        with_firewall(vnet, "nocache" not in case)
    if case.endswith("-full"):
        # The full path only: a frame class the fast paths do not take (a bytearray).
        wrap: Callable[[bytes], bytes | bytearray] = bytearray
    else:
        wrap = bytes
    if case.startswith("ipv6"):
        frame = udp6(H1_6, H2_6, 40000, 5202, t1.mac, H1_MAC)
        reply = udp6(H2_6, H1_6, 5202, 40000, t2.mac, H2_MAC)
    elif "ping" in case:
        frame = icmp4(H1, H2, 8, t1.mac, H1_MAC)
        reply = icmp4(H2, H1, 0, t2.mac, H2_MAC)
    elif "tcp" in case:
        ether.input(t1, tcp4(H1, H2, 40001, 5201, 1000, 0, SYN, t1.mac, H1_MAC), NOW)
        ether.input(t2, tcp4(H2, H1, 5201, 40001, 5000, 1001, SYN | ACK, t2.mac, H2_MAC), NOW)
        frame = tcp4(H1, H2, 40001, 5201, 1001, 5001, ACK, t1.mac, H1_MAC)
        reply = frame
    else:
        frame = udp4(H1, H2, 40000, 5202, t1.mac, H1_MAC)
        reply = udp4(H2, H1, 5202, 40000, t2.mac, H2_MAC)
    # Warm up: create the state, see both directions, learn the flow and the destinations.
    ether.input(t1, frame, NOW)
    if reply is not frame:
        ether.input(t2, reply, NOW)
    for _ in range(3):
        ether.input(t1, frame, NOW)
    if "ping" in case:
        ether.input(t2, reply, NOW)
    forwarded = vnet.inet.stats.forward + vnet.inet6.stats.forward
    if "ping" in case:
        frames = [(t1, wrap(frame)), (t2, wrap(reply))] * 500
    else:
        frames = [(t1, wrap(frame))] * 1000
    receive = ether.input

    def one_pass() -> None:
        for ifp, f in frames:
            receive(ifp, f, NOW)

    one_pass()
    got = vnet.inet.stats.forward + vnet.inet6.stats.forward - forwarded
    if got < 1000:
        raise SystemExit(f"{case}: only {got} of 1000 frames were forwarded")
    if "fw" in case and "nocache" not in case and vnet.firewall.flows.hits < 1000:
        raise SystemExit(f"{case}: the flow cache passed {vnet.firewall.flows.hits} frames")
    return one_pass, len(frames)


def measure(case: str, frames: int) -> float:
    """Return frames per CPU-second of one run of ``case``."""
    return timed(*prepare(case), frames)


def timed(one_pass: Callable[[], None], per_pass: int, frames: int) -> float:
    """Return frames per CPU-second of ``one_pass`` repeated for about ``frames`` frames."""
    passes = max(1, frames // per_pass)
    start = time.process_time()
    for _ in range(passes):
        one_pass()
    return passes * per_pass / (time.process_time() - start)


def run_cases(
    cases: list[str], runs: int, measure: Callable[[str], float]
) -> dict[str, list[float]]:
    """Return the frames per CPU-second of ``runs`` rounds over ``cases``, printed as they come."""
    results: dict[str, list[float]] = {c: [] for c in cases}
    for run in range(runs):
        for case in cases:
            results[case].append(measure(case))
            print(f"run {run + 1}/{runs} {case:20s} {results[case][-1]:10,.0f} frames/CPU-s",
                  flush=True)  # fmt: skip
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000, help="frames per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    cases = [c for c in CASES if c in args.cases.split(",")]
    load_before = loadavg()
    results = run_cases(cases, args.runs, lambda case: measure(case, args.frames))
    median = {c: statistics.median(v) for c, v in results.items()}

    def vs(case: str, base: str) -> str:
        return f"{median[case] / median[base]:.2f}" if case in median and base in median else ""

    bases = {
        "ipv4-full": "ipv4", "ipv4-fw": "ipv4", "ipv4-fw-nocache": "ipv4",
        "ipv4-tcp-fw": "ipv4", "ipv4-tcp-fw-nocache": "ipv4",
        "ipv4-ping-fw": "ipv4", "ipv4-ping-fw-nocache": "ipv4",
        "ipv6": "ipv4", "ipv6-full": "ipv6", "ipv6-fw": "ipv6", "ipv6-fw-nocache": "ipv6",
    }  # fmt: skip
    cache = {"ipv4-fw": "ipv4-fw-nocache", "ipv4-tcp-fw": "ipv4-tcp-fw-nocache",
             "ipv4-ping-fw": "ipv4-ping-fw-nocache",
             "ipv6-fw": "ipv6-fw-nocache", "ipv6": "ipv6-full"}  # fmt: skip
    lines = [
        "## Forwarding paths in process",
        "",
        f"`.venv/bin/python bench/fastpath.py --frames {args.frames} --runs {args.runs}` "
        "(the cases are described in the script): 64-byte frames handed to `ether.input` "
        "in a loop, no TAP and no event loop, so these are the Python path's own costs, "
        "upper bounds of what the daemon reaches with its system calls.",
        "",
        *machine(),
        f"- Load average (1/5/15 min) at start: {load_before}; at end: {loadavg()}",
        "",
        "| case | frames per CPU-second min | median | max | / its base (base) | "
        "/ without the lever (lever) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        v = results[case]
        base = bases.get(case, "")
        lever = cache.get(case, "")
        lines.append(
            f"| {case} | {min(v):,.0f} | {median[case]:,.0f} | {max(v):,.0f} "
            f"| {vs(case, base)} ({base or '-'}) | {vs(case, lever)} ({lever or '-'}) |"
        )
    lines.append("")
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("fastpath", report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
