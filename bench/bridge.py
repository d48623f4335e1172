#!/usr/bin/env python3
"""Bridge benchmark: a vnet bridge against the Linux kernel bridge, 64-byte frames.

Two hosts on one subnet (h1 198.51.100.3/24, h2 198.51.100.2/24), each in a
network namespace of its own, joined by a bridge.  Both cases are up at once:

  kernel-bridge        h1 -veth- [netns: Linux bridge over both veths] -veth- h2
  vrouterd-bridge      h1 -TAP- [vrouterd, one vnet: bridge br0 over both TAPs] -TAP- h2
  vrouterd-bridge-stp  the same with ``stp = true`` (802.1D; shortest timers, so it
                       forwards 8 s after start): what the spanning tree costs a flow

The vnet's bridge has no address (nothing in the vnet routes); it learns h1's
and h2's MACs from the first ARP exchange and then forwards each frame to one
port, as the kernel bridge does.

Measurements, each ``--runs`` times, cases round-robin (each round starting
one case later):

  udp   bench/udpflood.c on h1 to h2 for ``--seconds`` (18-byte payloads: 60-byte
        frames, 64 with the FCS): frames counted on h2's interface over the
        sender's duration, and the daemon's CPU seconds per million frames
  tcp   iperf3 -P 1 h1 -> h2: the receiver's bits/s

The report gives min/median/max and the ratio vrouterd-bridge / kernel-bridge
of the medians and per round, against the target of 0.6 for frames/s, the
ratio vrouterd-bridge-stp / vrouterd-bridge (STP on / off, same run), and
writes the "bridge" section of bench/RESULTS.md.

Usage (as root):  .venv/bin/python bench/bridge.py [--runs 3] [--seconds 5] [--no-write]

Everything created (namespaces, veths, the kernel bridge, TAPs via the
daemon, the daemon, iperf3 servers, UDP sinks) is removed in ``finally``
blocks, also on Ctrl-C, SIGTERM or failure; the script then checks for
leftovers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from forwarding import (
    FLOOD_PAYLOAD,
    H2_ADDR,
    VRD_HEADER,
    BenchError,
    Case,
    Lab,
    check_args,
    lab_parser,
    mmm,
    run,
    run_lab,
    start_servers,
    tcp_once,
    udp_once,
    wait_reachable,
)
from report import fmt_ratio, loadavg, machine

CASE_NAMES = ("kernel-bridge", "vrouterd-bridge", "vrouterd-bridge-stp")
TARGET = 0.6
"""vrouterd-bridge frames/s over kernel-bridge frames/s that the project aims for."""
H1_ADDR = "198.51.100.3"
"""h1 sits in h2's subnet (:data:`forwarding.H2_ADDR`): bridged, not routed."""


def vrd_bridge(p: str) -> str:
    """Config of vrouterd-bridge: one vnet, a bridge over the TAPs to h1 and h2."""
    return VRD_HEADER + f"""
[vnets.lab.interfaces.{p}a]
type = "tap"
host = {{ netns = "{p}h1", addresses = ["{H1_ADDR}/24"] }}

[vnets.lab.interfaces.{p}b]
type = "tap"
host = {{ netns = "{p}h2", addresses = ["{H2_ADDR}/24"] }}

[vnets.lab.interfaces.br0]
type = "bridge"
members = ["{p}a", "{p}b"]
"""


def vrd_bridge_stp(p: str) -> str:
    """Config of vrouterd-bridge-stp: vrouterd-bridge with the spanning tree on."""
    return vrd_bridge(p) + "stp = true\nhello_time = 1\nmax_age = 6\nforward_delay = 4\n"


def kernel_bridge(lab: Lab) -> Case:
    """h1 -veth- a namespace with a Linux bridge over both veths -veth- h2."""
    p = f"{lab.prefix}kb"
    h1, b, h2 = lab.netns(f"{p}h1"), lab.netns(f"{p}br"), lab.netns(f"{p}h2")
    lab.veth(h1, f"{p}a", b, f"{p}ra")
    lab.veth(b, f"{p}rb", h2, f"{p}b")
    run("ip", "-n", b, "link", "add", f"{p}br", "type", "bridge")
    for port in (f"{p}ra", f"{p}rb"):
        run("ip", "-n", b, "link", "set", port, "master", f"{p}br")
    run("ip", "-n", b, "link", "set", f"{p}br", "up")
    lab.addr(h1, f"{p}a", f"{H1_ADDR}/24")
    lab.addr(h2, f"{p}b", f"{H2_ADDR}/24")
    return Case("kernel-bridge", 0, h1, h2, f"{p}a", f"{p}b", [(b, f"{p}ra"), (b, f"{p}rb")])


def build(lab: Lab, names: list[str]) -> list[Case]:
    """Create the cases in ``names`` (registered with ``lab`` for clean-up)."""
    cases = []
    for name in names:
        if name == "kernel-bridge":
            case = kernel_bridge(lab)
            lab.cases.append(case)
        elif name == "vrouterd-bridge-stp":
            case = lab.vrouterd(name, 0, "vs", vrd_bridge_stp)
        else:
            case = lab.vrouterd(name, 0, "vb", vrd_bridge)
        cases.append(case)
    return cases


def measure(lab: Lab, args: argparse.Namespace) -> list[Case]:
    """Build the cases, then run every measurement ``--runs`` times, round-robin."""
    cases = build(lab, args.cases)
    flood = lab.build_flood()
    if flood is None:
        raise BenchError("no C compiler (cc): the 64-byte sender bench/udpflood.c needs one")
    for case in cases:
        wait_reachable(case)
        start_servers(case)
    for round_ in range(args.runs):
        order = cases[round_ % len(cases) :] + cases[: round_ % len(cases)]
        for case in order:
            print(f"round {round_ + 1}/{args.runs}: {case.name} udp", file=sys.stderr)
            udp_once(case, args.seconds, flood)
            if args.no_tcp:
                continue
            print(f"round {round_ + 1}/{args.runs}: {case.name} tcp", file=sys.stderr)
            tcp_once(case, 1, args.seconds)
            time.sleep(0.5)
    return cases


class Report:
    """Renders the ``bridge`` section of RESULTS.md."""

    def __init__(self, cases: list[Case], args: argparse.Namespace) -> None:
        self.cases = {case.name: case for case in cases}
        self.args = args

    def _ratio(
        self, values: dict[str, list[float]], over: str = "kernel-bridge",
        case: str = "vrouterd-bridge",
    ) -> tuple[float | None, list[float]]:  # fmt: skip
        """Return the ratio of the medians ``case``/``over`` and the per-round ratios."""
        kernel, ours = values.get(over), values.get(case)
        if not kernel or not ours:
            return None, []
        rounds = [o / k for o, k in zip(ours, kernel, strict=False) if k > 0]
        median_k = statistics.median(kernel)
        return (statistics.median(ours) / median_k if median_k > 0 else None), rounds

    def udp_table(self) -> list[str]:
        rows = [
            "| case | received kframes/s (min / median / max) | offered kframes/s (median) "
            "| daemon CPU s per Mframe (median) | frames per daemon CPU-second |",
            "|---|---|---|---|---|",
        ]
        rates: dict[str, list[float]] = {}
        for name, case in self.cases.items():
            rx = [u.rx_pps for u in case.udp]
            rates[name] = rx
            lo, mid, hi = mmm([r / 1000 for r in rx])
            offered = statistics.median(u.sent_pps for u in case.udp) / 1000
            per_m = [u.cpu_s / (u.received / 1e6) for u in case.udp if u.cpu_s and u.received]
            cpu = f"{statistics.median(per_m):.2f}" if per_m else "-"
            fps = f"{1e6 / statistics.median(per_m):,.0f}" if per_m else "-"
            rows.append(f"| {name} | {lo} / {mid} / {hi} | {offered:.1f} | {cpu} | {fps} |")
        ratio, rounds = self._ratio(rates)
        verdict = "n/a" if ratio is None else ("met" if ratio >= TARGET else "not met")
        per_round = ", ".join(f"{r:.2f}" for r in rounds) or "n/a"
        stp, stp_rounds = self._ratio(rates, "vrouterd-bridge", "vrouterd-bridge-stp")
        stp_per_round = ", ".join(f"{r:.2f}" for r in stp_rounds) or "n/a"
        cpu = {
            name: [u.cpu_s / (u.received / 1e6) for u in case.udp if u.cpu_s and u.received]
            for name, case in self.cases.items()
        }
        stp_cpu, stp_cpu_rounds = self._ratio(cpu, "vrouterd-bridge", "vrouterd-bridge-stp")
        stp_cpu_per_round = ", ".join(f"{r:.2f}" for r in stp_cpu_rounds) or "n/a"
        return [
            *rows,
            "",
            f"**vrouterd-bridge / kernel-bridge, frames/s: {fmt_ratio(ratio)}** "
            f"(median over median; per round: {per_round}). Target >= {TARGET}: {verdict}.",
            "",
            f"**STP on / off (vrouterd-bridge-stp / vrouterd-bridge), frames/s: "
            f"{fmt_ratio(stp)}** (per round: {stp_per_round}); daemon CPU per frame: "
            f"{fmt_ratio(stp_cpu)} (per round: {stp_cpu_per_round}).",
        ]

    def tcp_table(self) -> list[str]:
        rows = [
            "| case | Mbit/s (min / median / max) | retransmits (median) |",
            "|---|---|---|",
        ]
        rates: dict[str, list[float]] = {}
        for name, case in self.cases.items():
            bps = [t.bps for t in case.tcp[1]]
            rates[name] = bps
            lo, mid, hi = mmm([b / 1e6 for b in bps], ".0f")
            retrans = statistics.median(t.retransmits for t in case.tcp[1]) if bps else 0
            rows.append(f"| {name} | {lo} / {mid} / {hi} | {retrans:.0f} |")
        ratio, _ = self._ratio(rates)
        stp, _ = self._ratio(rates, "vrouterd-bridge", "vrouterd-bridge-stp")
        return [
            *rows,
            "",
            f"vrouterd-bridge / kernel-bridge, TCP: {fmt_ratio(ratio)}; STP on / off: "
            f"{fmt_ratio(stp)}.",
        ]

    def render(self, host: list[str], load_before: str, load_after: str) -> str:
        a = self.args
        return "\n".join([
            "## Bridge: a vnet bridge against the Linux kernel bridge",
            "",
            f"`.venv/bin/python bench/bridge.py --runs {a.runs} --seconds {a.seconds}`: "
            "h1 and h2 on one subnet, joined by a Linux bridge in a namespace (veths) or by a "
            "vnet's bridge (TAPs, default offloads). Runs round-robin; each round starts one "
            "case later.",
            "",
            *host,
            f"- load average before / after: {load_before} / {load_after}",
            "",
            f"### 64-byte frames, h1 -> h2 (bench/udpflood.c, {FLOOD_PAYLOAD}-byte payloads)",
            "",
            "Received = frames counted on h2's interface over the sender's duration. The "
            "kernel bridge's work runs in the sender's softirq and is charged to no process; "
            "the daemon's is its own utime+stime.",
            "",
            *self.udp_table(),
            "",
            "### TCP, iperf3 1 stream h1 -> h2",
            "",
            *self.tcp_table(),
            "",
        ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = lab_parser(__doc__, CASE_NAMES, "flood / iperf3 run")
    parser.add_argument("--no-tcp", action="store_true",
                        help="the 64-byte floods only (a quick look at the cost per frame)")
    args = parser.parse_args(argv)
    check_args(parser, args, CASE_NAMES)

    def render(lab: Lab) -> str:
        cases = measure(lab, args)
        host = machine((("iperf3", "--version"), ("cc", "--version")))
        return Report(cases, args).render(host, load_before, loadavg())

    load_before = loadavg()
    return run_lab("bridge", f"b{os.getpid() % 100000:05d}", Lab, render, args.no_write)


if __name__ == "__main__":
    sys.exit(main())
