#!/usr/bin/env python3
"""Fairness benchmark: one vnet flooded or scanned, another vnet's ping meanwhile.

One vrouterd with ``workers = 1`` holds two vnets, each a path between two
host namespaces (as in bench/workers.py), and vnet ``a`` has a third TAP
whose network is the benchmarking range 198.18.0.0/15 and 2001:db8:5ca::/64:

  path A   hA1 -TAP- [vnet a] -TAP- hA2        (+ hA3 on 198.18.0.0/15)
  path B   hB1 -TAP- [vnet b] -TAP- hB2

Steps, each ``--runs`` times:

  idle      ping -c 100 -i 0.01 hB1 -> hB2 (the other vnet) and hA1 -> hA2
  flood     bench/udpflood.c hA1 -> hA2 (64-byte frames) for ``--seconds``;
            after 1 s, ping hB1 -> hB2: the other vnet on the same worker
  arp scan  hA1 sends UDP to random addresses of 198.18.0.0/15 (on-link at
            vnet a, nobody answers) at ``--scan-rate`` per second for
            ``--seconds``; after 1 s, ping hA1 -> hA2: forwarding through the
            scanned vnet to a resolved neighbour
  nd scan   the same to random addresses of 2001:db8:5ca::/64, ping6 hA1 -> hA2

For each: ping p50/p99 and the ratio of p50 to the idle p50 of the same run
(target: at most 3), frames the flood delivered to hA2, the daemon's CPU,
drops at vnet a's ingress (the interface's ``rx_overload``: what the kernel
dropped from the TAP queue past the interface's quantum), the daemon's RSS
before, at peak and after each scan, and the neighbour counters.

Usage (as root):  .venv/bin/python bench/fairness.py [--runs 3] [--seconds 5] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forwarding import (
    CLK_TCK,
    FLOOD_PAYLOAD,
    FLOOD_PORT,
    H2_ADDR,
    VRD_HEADER,
    BenchError,
    Case,
    Daemon,
    Lab,
    check_args,
    nsrun,
    percentile,
    run_lab,
    rx_packets,
    start_servers,
    wait_reachable,
)
from report import loadavg, machine

TARGET = 3.0
"""Largest p50 under load over idle p50 the project accepts."""
PING_COUNT = 100
PING_INTERVAL = "0.01"
LEAD = 1.0
"""Seconds the load runs before the ping series starts."""
H2_ADDR6 = "2001:db8:b::2"
SCAN4 = "198.18.0.0/15"
SCAN6 = "2001:db8:5ca::/64"

SCANNER = r"""
import random, socket, sys, time
family, net, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
six = family == "6"
s = socket.socket(socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_DGRAM)
if six:
    base = int.from_bytes(socket.inet_pton(socket.AF_INET6, net), "big")
    make = lambda: socket.inet_ntop(
        socket.AF_INET6, (base | random.getrandbits(64)).to_bytes(16, "big"))
else:
    base = int.from_bytes(socket.inet_aton(net), "big")
    make = lambda: socket.inet_ntoa((base | random.getrandbits(17)).to_bytes(4, "big"))
sent = errors = 0
start = time.monotonic()
while True:
    now = time.monotonic() - start
    if now >= seconds:
        break
    due = int(now * rate) - sent
    for _ in range(min(due, 256)):
        try:
            s.sendto(b"scan", (make(), 9))
        except OSError:
            errors += 1
        sent += 1
    if due <= 0:
        time.sleep(0.0005)
print('{"sent": %d, "errors": %d, "seconds": %.3f}' % (sent, errors, time.monotonic() - start))
"""
"""Sends UDP to random addresses of a prefix at a paced rate for a bounded time."""


def vrd_config(p: str, workers: int) -> str:
    """vnets ``a`` and ``b``, each with two TAP hosts; ``a`` a third.

    With two workers, ``a`` runs on worker 0 and ``b`` on worker 1.
    """
    parts = [VRD_HEADER, f"workers = {workers}\n"]
    for index, vnet in enumerate(("a", "b")):
        host = f"{p}{vnet.upper()}"
        pin = f"worker = {index}\n" if workers > 1 else ""
        parts.append(f"""
[vnets.{vnet}]
forwarding = true
{pin}
[vnets.{vnet}.interfaces.{p}{vnet}1]
type = "tap"
addresses = ["192.0.2.1/24", "2001:db8:a::1/64"]
host = {{ netns = "{host}1", addresses = ["192.0.2.2/24", "2001:db8:a::2/64"], gateway = "192.0.2.1", gateway6 = "2001:db8:a::1" }}

[vnets.{vnet}.interfaces.{p}{vnet}2]
type = "tap"
addresses = ["198.51.100.1/24", "2001:db8:b::1/64"]
host = {{ netns = "{host}2", addresses = ["198.51.100.2/24", "2001:db8:b::2/64"], gateway = "198.51.100.1", gateway6 = "2001:db8:b::1" }}
""")  # noqa: E501
    parts.append(f"""
[vnets.a.interfaces.{p}a3]
type = "tap"
addresses = ["198.18.0.1/15", "2001:db8:5ca::1/64"]
host = {{ netns = "{p}A3", addresses = ["198.18.0.2/15", "2001:db8:5ca::2/64"] }}
""")
    return "".join(parts)


@dataclass
class Step:
    """One measured step of one run."""

    kind: str
    setup: str
    rtts: list[float]
    idle_p50: float
    cpu_s: float = 0.0
    delivered: int = 0
    seconds: float = 0.0
    offered: int = 0
    overload: int = 0
    rss: tuple[int, int, int] = (0, 0, 0)  # before, peak, after (KiB)
    neighbours: dict[str, int] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return percentile(self.rtts, 50) if self.rtts else float("nan")

    @property
    def ratio(self) -> float:
        return self.p50 / self.idle_p50 if self.rtts else float("inf")


@dataclass
class Bench:
    """One daemon and its paths."""

    name: str
    daemon: Daemon
    a: Case
    b: Case
    p: str
    steps: list[Step] = field(default_factory=list)
    idle: dict[str, list[float]] = field(default_factory=lambda: {"a": [], "b": []})


def ping(ns: str, target: str, six: bool = False) -> list[float]:
    """ping -c PING_COUNT -i PING_INTERVAL; return the RTTs in ms."""
    cmd = ["ping", "-6" if six else "-4", "-n", "-c", str(PING_COUNT), "-i", PING_INTERVAL,
           "-W", "1", target]  # fmt: skip
    out = nsrun(ns, *cmd, timeout=60, check=False).stdout
    return [float(part.split("=")[1]) for part in out.split() if part.startswith("time=")]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def overload(bench: Bench) -> int:
    stats = bench.daemon.call("netstat", vnet="a")
    assert isinstance(stats, dict)
    return int(stats["drops"].get("rx_overload", 0))


def neighbour_counters(bench: Bench) -> dict[str, int]:
    stats = bench.daemon.call("netstat", vnet="a")
    assert isinstance(stats, dict)
    found: dict[str, int] = {}
    for section in ("arp", "icmp6"):
        for key, value in dict(stats.get(section, {})).items():
            if any(w in key for w in ("ns", "request", "incomplete", "hold", "full", "limit")):
                found[f"{section}.{key}"] = int(value)
    return found


def with_load(
    bench: Bench, kind: str, load: list[str], ping_ns: str, target: str, six: bool,
    idle_p50: float,
) -> Step:  # fmt: skip
    """Run ``load`` (argv in hA1) and, after LEAD, a ping series; sample CPU and RSS."""
    pid = bench.daemon.pid
    rx0 = rx_packets(bench.a.h2, bench.a.h2_if)
    ovl0 = overload(bench)
    cpu0 = bench.daemon.cpu_ticks()
    rss0 = rss_kib(pid)
    peak = [rss0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], rss_kib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    proc = subprocess.Popen(["ip", "netns", "exec", bench.a.h1, *load], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    bench.a.procs.append(proc)
    try:
        time.sleep(LEAD)
        rtts = ping(ping_ns, target, six)
        out, err = proc.communicate(timeout=120)
    finally:
        done.set()
        sampler.join()
        bench.a.procs.remove(proc)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    if proc.returncode != 0:
        raise BenchError(f"{kind}: the load exited {proc.returncode}: {err.strip()}")
    report = json.loads(out)
    time.sleep(0.3)
    step = Step(kind, bench.name, rtts, idle_p50)
    step.cpu_s = (bench.daemon.cpu_ticks() - cpu0) / CLK_TCK
    step.delivered = rx_packets(bench.a.h2, bench.a.h2_if) - rx0
    step.seconds = float(report["seconds"])
    step.offered = int(report["sent"])
    step.overload = overload(bench) - ovl0
    time.sleep(3.5)  # incomplete entries of the scan expire
    step.rss = (rss0, peak[0], rss_kib(pid))
    step.neighbours = neighbour_counters(bench)
    return step


def setup(lab: Lab, name: str, workers: int) -> Bench:
    """Start a daemon with ``workers`` workers and wait until both paths forward."""
    p = f"{lab.prefix}f{workers}"
    daemon = Daemon(lab.workdir, name, vrd_config(p, workers))
    a = Case("a", 1, f"{p}A1", f"{p}A2", f"{p}a1", f"{p}a2", daemon=daemon)
    b = Case("b", 1, f"{p}B1", f"{p}B2", f"{p}b1", f"{p}b2", daemon=daemon)
    lab.cases += [a, b]  # registered before start: clean-up must see them
    daemon.start()
    for path in (a, b):
        wait_reachable(path)
        start_servers(path)
    nsrun(a.h1, "ping", "-6", "-c", "2", "-W", "2", H2_ADDR6, timeout=20, check=False)
    return Bench(name, daemon, a, b, p)


def measure(lab: Lab, args: argparse.Namespace) -> list[Bench]:
    flood = lab.build_flood()
    if flood is None:
        raise BenchError("a C compiler (cc or gcc) is needed for bench/udpflood.c")
    one = setup(lab, "1 worker", 1)
    two = setup(lab, "2 workers", 2)
    seconds = str(args.seconds)
    scan = [sys.executable, "-c", SCANNER]
    flood_cmd = [str(flood), H2_ADDR, str(FLOOD_PORT), seconds, str(FLOOD_PAYLOAD)]
    steps: list[tuple[str, Bench, Callable[[float, float], Step]]] = [
        ("flood", one, lambda ib, ia: with_load(one, "flood", flood_cmd, one.b.h1, H2_ADDR,
                                                False, ib)),
        ("flood", two, lambda ib, ia: with_load(two, "flood", flood_cmd, two.b.h1, H2_ADDR,
                                                False, ib)),
        ("arp scan", one, lambda ib, ia: with_load(
            one, "arp scan", [*scan, "4", "198.18.0.0", str(args.scan_rate), seconds],
            one.a.h1, H2_ADDR, False, ia)),
        ("nd scan", one, lambda ib, ia: with_load(
            one, "nd scan", [*scan, "6", "2001:db8:5ca::", str(args.scan_rate), seconds],
            one.a.h1, H2_ADDR6, True, ia)),
    ]  # fmt: skip
    for i in range(args.runs):
        for kind, bench, step in steps:
            idle_b = ping(bench.b.h1, H2_ADDR)
            six = kind == "nd scan"
            idle_a = ping(bench.a.h1, H2_ADDR6 if six else H2_ADDR, six)
            print(f"run {i + 1}/{args.runs} {kind:9s} {bench.name:9s}", end="", flush=True)
            result = step(percentile(idle_b, 50), percentile(idle_a, 50))
            bench.steps.append(result)
            print(f" idle p50 {result.idle_p50:.3f} ms, loaded p50 {result.p50:.3f} ms "
                  f"({result.ratio:.1f}x), rss {result.rss[0] // 1024}/{result.rss[1] // 1024}/"
                  f"{result.rss[2] // 1024} MiB, cpu {result.cpu_s:.1f} s", flush=True)  # fmt: skip
    return [one, two]


def _mmm(values: list[float], fmt: str) -> str:
    if not values:
        return "n/a"
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values),
                                                max(values)))  # fmt: skip


def render(benches: list[Bench], args: argparse.Namespace, before: str) -> str:
    lines = ["## Fairness: one vnet flooded or scanned, forwarding elsewhere meanwhile", ""]
    lines += machine((("cc", "--version"),))
    lines += [f"- load average before: {before}, after: {loadavg()}",
              f"- {args.runs} runs x {args.seconds} s, scan rate {args.scan_rate}/s, "
              f"ping -c {PING_COUNT} -i {PING_INTERVAL}", ""]  # fmt: skip
    lines += ["| step | daemon | ping | idle p50 ms | loaded p50 ms | p99 ms | ratio (<= 3) | "
              "daemon CPU s | offered/s | delivered/s | rx_overload | RSS before/peak/after MiB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    rows = [("flood", "vnet b", b) for b in benches]
    rows += [("arp scan", "vnet a", benches[0]), ("nd scan", "vnet a (v6)", benches[0])]
    for kind, who, bench in rows:
        steps = [s for s in bench.steps if s.kind == kind]
        if not steps:
            continue
        cpu = _mmm([s.cpu_s for s in steps], ".1f") if bench.name == "1 worker" else "-"
        rss = [s.rss for s in steps]
        delivered = _mmm([s.delivered / s.seconds for s in steps], ",.0f")
        lines.append(
            f"| {kind} | {bench.name} | {who} | {_mmm([s.idle_p50 for s in steps], '.3f')} "
            f"| {_mmm([s.p50 for s in steps], '.3f')} "
            f"| {_mmm([percentile(s.rtts, 99) for s in steps if s.rtts], '.3f')} "
            f"| {_mmm([s.ratio for s in steps], '.2f')} "
            f"| {cpu} "
            f"| {_mmm([s.offered / s.seconds for s in steps], ',.0f')} "
            f"| {delivered if kind == 'flood' else '-'} "
            f"| {_mmm([float(s.overload) for s in steps], ',.0f')} "
            f"| {', '.join(f'{r[0] // 1024}/{r[1] // 1024}/{r[2] // 1024}' for r in rss)} |"
        )  # fmt: skip
    lines.append("")
    last = {s.kind: s.neighbours for s in benches[0].steps}
    for kind in ("arp scan", "nd scan"):
        if last.get(kind):
            shown = ", ".join(f"{k} {v}" for k, v in sorted(last[kind].items()))
            lines.append(f"- vnet a's neighbour counters after the last {kind}: {shown}")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--scan-rate", type=int, default=20000, help="scan packets per second")
    parser.add_argument("--cases", default="vrouterd", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args(argv)
    check_args(parser, args, ("vrouterd",))
    before = loadavg()

    def make_report(lab: Lab) -> str:
        return render(measure(lab, args), args, before)

    os.nice(0)
    return run_lab("fairness", f"b{os.getpid() % 100000:05d}", Lab, make_report, args.no_write)


if __name__ == "__main__":
    sys.exit(main())
