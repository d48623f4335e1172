#!/usr/bin/env python3
"""ECMP and the punt path in process: what a multipath route, weights, per-path counters
and a mirror cost the forwarding path, in frames per CPU-second (no TAP, no loop).

The vnet and frames are bench/fastpath.py's (red forwarding t1 -> t2, 64-byte
UDP, neighbours resolved); 64 flows (source ports) to 198.18.0.9 in turn:

  route         a static route of one path (via 198.51.100.2): the baseline
  ecmp          a multipath route of two paths (198.51.100.2 and .3 on t2)
  ecmp-weighted the same with weights 3 and 1 (the hash picks among 4 entries)
  connected     to h2 itself (198.51.100.2, the connected route), no mirror
  mirror        the same with red's punt path on (``vrouter.mirror.punt.enable``):
                forwarded traffic never meets it, so the ratio should be 1

The ratios ecmp / route and ecmp-weighted / route (the median of each run's
ratio: a run measures the cases back to back) are what multipath and its
per-path counters cost; mirror / connected is what a mirror costs transit
traffic (issue 15's target >= 0.95).  CPU seconds are this process's, so a
busy machine moves them less than wall-clock figures.

Usage: .venv/bin/python bench/ecmp.py [--frames 200000] [--runs 5] [--no-write]
Results go to the "ecmp" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
from collections.abc import Callable

from fastpath import H1, H1_MAC, H2, NOW, router, run_cases, timed, udp4
from report import loadavg, machine, write_section

from vrouter.link import ether
from vrouter.link.lltable import REACHABLE
from vrouter.mirror import punt
from vrouter.route import state as route_state

CASES = ("route", "ecmp", "ecmp-weighted", "connected", "mirror")
BASES = {"ecmp": "route", "ecmp-weighted": "route", "mirror": "connected"}
FAR = bytes([198, 18, 0, 9])
H3 = bytes([198, 51, 100, 3])
H3_MAC = bytes.fromhex("020000000303")
FLOWS = 64


def prepare(case: str) -> tuple[Callable[[], None], int]:
    """Return (one pass over the prepared frames, frames per pass) for ``case``."""
    vnet, t1, t2 = router()
    entry = vnet.inet.arp.add(vnet.timers, t2, H3, REACHABLE, NOW)
    assert entry is not None
    vnet.inet.arp.confirm(entry, H3_MAC, REACHABLE, NOW)
    far = ipaddress.ip_network("198.18.0.0/24")
    vias = [(ipaddress.ip_address(H2), None), (ipaddress.ip_address(H3), None)]
    if case == "route":
        vnet.route.fib.add(route_state.resolve(vnet, far, via=vias[0][0]))
    elif case.startswith("ecmp"):
        weights = (3, 1) if case == "ecmp-weighted" else ()
        vnet.route.fib.add(route_state.resolve_multipath(vnet, far, vias, weights=weights))
    elif case == "mirror":
        punt.enable(vnet)
    dst = H2 if case in ("connected", "mirror") else FAR
    frames = [(t1, udp4(H1, dst, 40000 + n, 5202, t1.mac, H1_MAC)) for n in range(FLOWS)]
    for ifp, frame in frames * 2:  # warm up: the destination cache
        ether.input(ifp, frame, NOW)
    frames = frames * (1024 // FLOWS)
    forwarded = vnet.inet.stats.forward
    receive = ether.input

    def one_pass() -> None:
        for ifp, f in frames:
            receive(ifp, f, NOW)

    one_pass()
    if vnet.inet.stats.forward - forwarded < len(frames):
        raise SystemExit(f"{case}: only {vnet.inet.stats.forward - forwarded} forwarded")
    return one_pass, len(frames)


def measure(case: str, frames: int) -> float:
    """Return frames per CPU-second of one run of ``case``."""
    return timed(*prepare(case), frames)


def _paired(values: list[float], bases: list[float]) -> str:
    """Return the median and range of each run's ratio of ``values`` to ``bases``: a run
    measures every case back to back, so its ratio is less moved by other work than
    the ratio of the medians."""
    ratios = [v / b for v, b in zip(values, bases, strict=True)]
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000, help="frames per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load_before = loadavg()
    results = run_cases(list(CASES), args.runs, lambda case: measure(case, args.frames))
    median = {c: statistics.median(v) for c, v in results.items()}
    lines = [
        "## ECMP, weights, per-path counters and the punt path, in process",
        "",
        f"`.venv/bin/python bench/ecmp.py --frames {args.frames} --runs {args.runs}` "
        "(the cases are described in the script): 64-byte UDP frames of 64 flows handed to "
        "`ether.input` in a loop, no TAP and no event loop.",
        "",
        *machine(),
        f"- Load average (1/5/15 min) at start: {load_before}; at end: {loadavg()}",
        "",
        "| case | frames per CPU-second min | median | max | / its base (base), "
        "median of the runs' ratios (min-max) |",
        "|---|---:|---:|---:|---:|",
    ]
    for case in CASES:
        v = results[case]
        base = BASES.get(case)
        ratio = f"{_paired(v, results[base])} ({base})" if base else "-"
        lines.append(f"| {case} | {min(v):,.0f} | {median[case]:,.0f} | {max(v):,.0f} | {ratio} |")
    lines.append("")
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("ecmp", report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
