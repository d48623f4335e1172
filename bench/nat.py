#!/usr/bin/env python3
"""NAT benchmark: TCP and 64-byte UDP through a masquerading vnet and the same vnet without.

The topology is ``vrouterd-2vnet`` of ``forwarding.py`` (h1 -TAP- [red]
=epair= [blue] -TAP- h2), one daemon per case, all up at once:

  plain   no firewall on red (the forwarding fast path)
  fw      red's firewall on, ``default = "pass"``, no rules, no translation:
          the same vnet without NAT
  nat     as ``fw`` plus ``[[nat]] action = "nat"`` on the epair (masquerade
          to 203.0.113.1); blue has no route back to 192.0.2.0/24, so only
          translated traffic gets through

Measurements, ``--runs`` times, cases round-robin (each round starting one
case later): iperf3 TCP h1 -> h2 with one stream for ``--seconds`` (the
receiver's bits/s) and the 64-byte UDP flood of ``forwarding.py`` (frames
counted on h2's interface).  The report gives min/median/max, the ratios
nat/fw (targets: TCP >= 0.8, UDP >= 0.7) and nat/plain, the NAT counters
and the mappings made, and writes the "nat" section of bench/RESULTS.md.

Usage (as root):  .venv/bin/python bench/nat.py [--runs 3] [--seconds 5] [--no-write]

Everything created is removed in ``finally`` blocks (``forwarding.run_lab``),
also on Ctrl-C, SIGTERM or failure; the script then checks for leftovers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from forwarding import (
    Case,
    Lab,
    check_args,
    lab_parser,
    mmm,
    run_lab,
    start_servers,
    tcp_once,
    udp_once,
    vrd_2vnet,
    wait_reachable,
)
from report import fmt_ratio, loadavg, machine

CASE_NAMES = ("plain", "fw", "nat")
TCP_TARGET = 0.8
UDP_TARGET = 0.7
FIREWALL = '\n[vnets.red.firewall]\ndefault = "pass"\n'
NAT = '\n[[vnets.red.firewall.nat]]\naction = "nat"\ninterface = "ep0"\nfrom = "192.0.2.0/24"\n'
BLUE_ROUTE_BACK = '[[vnets.blue.routes]]\nto = "192.0.2.0/24"\nvia = "203.0.113.1"\n'


def config(case: str, p: str) -> str:
    """Return the config of ``case`` with names starting with ``p``."""
    if case == "plain":
        return vrd_2vnet(p)
    if case == "fw":
        return vrd_2vnet(p, FIREWALL)
    text = vrd_2vnet(p, FIREWALL + NAT)
    assert BLUE_ROUTE_BACK in text
    return text.replace(BLUE_ROUTE_BACK, "")


def measure(lab: Lab, args: argparse.Namespace) -> list[Case]:
    """Build the cases and measure them; return them in ``CASE_NAMES`` order."""
    flood = lab.build_flood()
    cases = []
    for i, name in enumerate(args.cases):
        case = lab.vrouterd(name, 2, f"n{i}", lambda p, name=name: config(name, p))
        wait_reachable(case)
        start_servers(case)
        cases.append(case)
    for run in range(args.runs):
        order = cases[run % len(cases) :] + cases[: run % len(cases)]
        for label in ("tcp", "udp"):
            for case in order:
                print(f"run {run + 1}/{args.runs} {label} {case.name:6s}", end="", flush=True)
                if label == "tcp":
                    tcp_once(case, 1, args.seconds)
                    print(f" {case.tcp[1][-1].bps / 1e6:.0f} Mbit/s", flush=True)
                else:
                    udp_once(case, args.seconds, flood)
                    print(f" received {case.udp[-1].rx_pps / 1e3:.1f} kpps", flush=True)
    return cases


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def render(cases: list[Case], args: argparse.Namespace, host: list[str], load: str) -> str:
    """Return the Markdown section of the results."""
    by_name = {c.name: c for c in cases}
    tcp = {c.name: [r.bps / 1e6 for r in c.tcp[1]] for c in cases}
    udp = {c.name: [r.rx_pps / 1e3 for r in c.udp] for c in cases}
    # Work per CPU-second of the daemon: steadier than rates on a shared machine.
    tcp_cpu = {c.name: [r.bytes / 1e6 / r.cpu_s for r in c.tcp[1] if r.cpu_s] for c in cases}
    udp_cpu = {c.name: [r.received / 1e3 / r.cpu_s for r in c.udp if r.cpu_s] for c in cases}
    lines = [
        "## NAT: a masquerading vnet against the same vnet without NAT",
        "",
        f"`.venv/bin/python bench/nat.py --runs {args.runs} --seconds {args.seconds}`; "
        "topology vrouterd-2vnet, one daemon per case, all up at once.",
        "",
        *host,
        f"- load average at the end: {load}",
        "",
        "Min / median / max of each; per CPU-second: of the daemon's CPU time over the run.",
        "",
        "| case | TCP 1 stream, Mbit/s | TCP, MB per CPU-s | 64-byte UDP received, kpps "
        "| UDP, kframes per CPU-s |",
        "|---|---|---|---|---|",
    ]

    def cell(values: list[float], fmt: str) -> str:
        return " / ".join(mmm(values, fmt)) if values else "-"

    for name in args.cases:
        lines.append(
            f"| {name} | {cell(tcp[name], '.0f')} | {cell(tcp_cpu[name], '.0f')} "
            f"| {cell(udp[name], '.1f')} | {cell(udp_cpu[name], '.1f')} |"
        )
    lines += [
        "",
        "| ratio of medians | TCP | TCP per CPU-s | UDP | UDP per CPU-s | target |",
        "|---|---|---|---|---|---|",
    ]
    if "nat" in by_name:
        for base in ("fw", "plain"):
            if base not in by_name:
                continue
            ratios = " | ".join(
                fmt_ratio(_ratio(_median(values["nat"]), _median(values[base])))
                for values in (tcp, tcp_cpu, udp, udp_cpu)
            )
            target = (
                f"TCP >= {TCP_TARGET}, UDP >= {UDP_TARGET}" if base == "fw" else "(information)"
            )
            lines.append(f"| nat / {base} | {ratios} | {target} |")
        daemon = by_name["nat"].daemon
        if daemon is not None:
            shown = daemon.call("firewall.show", vnet="red")
            assert isinstance(shown, dict)
            entry = shown["nat"][0]
            lines += [
                "",
                f"nat case: `{entry['text']}` translated {entry['packets']} packets first "
                f"and made {entry['mappings']} mappings.",
            ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = lab_parser(__doc__, CASE_NAMES, "iperf3/UDP run")
    args = parser.parse_args(argv)
    check_args(parser, args, CASE_NAMES)

    def run_all(lab: Lab) -> str:
        cases = measure(lab, args)
        host = machine((("iperf3", "--version"), ("cc", "--version")))
        return render(cases, args, host, loadavg())

    return run_lab("nat", f"b{os.getpid() % 100000:05d}", Lab, run_all, args.no_write)


if __name__ == "__main__":
    sys.exit(main())
