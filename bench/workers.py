#!/usr/bin/env python3
"""Workers benchmark: two independent vnet paths with one worker and with two.

Two paths, each host in a network namespace of its own, both loaded at the
same time:

  path A   hA1 -TAP- [vnet a] -TAP- hA2
  path B   hB1 -TAP- [vnet b] -TAP- hB2

Both paths use the same addresses (192.0.2.2/24 -> 198.51.100.2/24, gateways
.1): every host and every vnet is a stack of its own.  Three cases, all up at
once:

  1-worker   one vrouterd, ``workers = 1``: both vnets in one process
  2-workers  one vrouterd, ``workers = 2``: ``a`` pinned to worker 0, ``b`` to 1
  kernel     two Linux router namespaces (ip_forward=1), one per path, veths

Measurements, each ``--runs`` times, cases round-robin (each round starting
one case later):

  udp   bench/udpflood.c on hA1 and hB1 at the same time for ``--seconds``
        (64-byte frames): frames counted on hA2's and hB2's interfaces,
        CPU seconds of the daemon's process tree (front + workers), of each
        of its processes, of the two senders, and of the whole machine
  tcp   iperf3 -P 1 hA1 -> hA2 and hB1 -> hB2 at the same time: the sum of
        the receivers' bits/s, with the same CPU accounting

The report gives min/median/max and the ratio 2-workers / 1-worker of the
aggregate frames/s, frames per daemon CPU-second and TCP throughput, both as
the ratio of the medians and per round (runs of the same round are seconds
apart), and writes the "workers" section of bench/RESULTS.md.

Usage (as root):  .venv/bin/python bench/workers.py [--runs 3] [--seconds 5] [--no-write]

Everything created (namespaces, veths, TAPs via the daemons, daemons, iperf3
servers, UDP sinks, senders) is removed in ``finally`` blocks, also on
Ctrl-C, SIGTERM or failure; the script then checks for leftovers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    iperf,
    lab_parser,
    mmm,
    run_lab,
    rx_packets,
    start_servers,
    wait_reachable,
)
from report import fmt_ratio, loadavg, machine

CASE_NAMES = ("1-worker", "2-workers", "kernel")
PATHS = ("a", "b")
TARGET = 1.3
"""Aggregate of two workers over one worker that the project aims for."""
SATURATED = 0.90
"""Share of the machine's cores busy from which the report calls them saturated."""
NOISY = 1.3
"""Spread (largest / smallest) of the per-round ratios from which the report calls them noisy."""


# --------------------------------------------------------------------------- CPU accounting


def _stat_fields(pid: int) -> list[str] | None:
    """Return /proc/PID/stat from field 3 (state) on; None if the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def _descendants(root: int) -> list[int]:
    """Return ``root`` and every process below it (by parent pid)."""
    parent: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parent[int(entry.name)] = int(fields[1])
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += [child for child, ppid in parent.items() if ppid == pid]
    return found


def _role(pid: int, root: int) -> str:
    """Name a process of a daemon's tree: ``daemon``/``front``, ``worker K`` or ``other``."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "other"
    if b"--worker" in argv:
        spec = argv[argv.index(b"--worker") + 1].decode(errors="replace")
        with_index = spec.partition('"index": ')[2]
        return f"worker {with_index.partition(',')[0]}"
    return "daemon" if pid == root else "other"


def ksoftirqd_ticks() -> int:
    """Return utime+stime of the kernel's ksoftirqd threads: softirq work deferred to them."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if Path(entry.path, "comm").read_text().startswith("ksoftirqd"):
                fields = _stat_fields(int(entry.name))
                if fields is not None:
                    total += int(fields[11]) + int(fields[12])
    return total


def tree_ticks(root: int) -> dict[str, int]:
    """Return utime+stime (clock ticks) of the daemon's processes, summed by role."""
    pids = _descendants(root)
    roles = {pid: _role(pid, root) for pid in pids}
    if any(role.startswith("worker") for role in roles.values()):
        roles[root] = "front"
    ticks: dict[str, int] = {}
    for pid, role in roles.items():
        fields = _stat_fields(pid)
        if fields is not None:
            # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
            ticks[role] = ticks.get(role, 0) + int(fields[11]) + int(fields[12])
    return ticks


@dataclass
class Machine:
    """Core-seconds the whole machine spent over an interval (/proc/stat)."""

    busy: float
    softirq: float
    steal: float
    wall: float
    ksoftirqd: float
    """CPU seconds of the ksoftirqd threads (part of ``busy``)."""

    @property
    def busy_share(self) -> float:
        """Busy share of all the machine's cores (1.0: every core busy all the time)."""
        return self.busy / (self.wall * (os.cpu_count() or 1))


def _cpu_line() -> list[int]:
    line = Path("/proc/stat").read_text().splitlines()[0]
    return [int(x) for x in line.split()[1:]]


@dataclass
class Snapshot:
    """CPU counters at one moment: the daemon's processes by role and the machine's."""

    when: float
    roles: dict[str, int]
    machine: list[int]
    ksoftirqd: int

    @classmethod
    def take(cls, daemon: Daemon | None) -> Snapshot:
        roles = tree_ticks(daemon.pid) if daemon is not None else {}
        return cls(time.monotonic(), roles, _cpu_line(), ksoftirqd_ticks())

    def until(self, later: Snapshot) -> tuple[dict[str, float], Machine]:
        """Return CPU seconds by role and the machine's core-seconds from here to ``later``."""
        roles = {
            role: (ticks - self.roles.get(role, 0)) / CLK_TCK for role, ticks in later.roles.items()
        }
        # user nice system idle iowait irq softirq steal guest guest_nice
        delta = [b - a for a, b in zip(self.machine, later.machine, strict=True)]
        total = sum(delta[:8])
        busy = total - delta[3] - delta[4]
        return roles, Machine(
            busy / CLK_TCK,
            delta[6] / CLK_TCK,
            delta[7] / CLK_TCK,
            later.when - self.when,
            (later.ksoftirqd - self.ksoftirqd) / CLK_TCK,
        )


# --------------------------------------------------------------------------- results


@dataclass
class Run:
    """One measurement of both paths at once."""

    bps_or_fps: list[float]
    """Per path: frames/s received (UDP) or receiver bits/s (TCP)."""
    roles: dict[str, float]
    """Daemon CPU seconds by process role over the run."""
    machine: Machine
    received: list[int] = field(default_factory=list)
    """UDP: frames counted on each far host's interface."""
    sent_pps: list[float] = field(default_factory=list)
    """UDP: each sender's rate."""
    sender_cpu: list[float] = field(default_factory=list)
    """CPU seconds of each path's endpoints: the UDP sender's own (getrusage), or
    iperf3's client + server (its ``cpu_utilization_percent`` x the test's duration)."""
    retransmits: list[int] = field(default_factory=list)

    @property
    def total(self) -> float:
        """Return the aggregate of both paths."""
        return sum(self.bps_or_fps)

    @property
    def daemon_s(self) -> float:
        """Return the daemon's CPU seconds (every process of it) over the run."""
        return sum(self.roles.values())

    @property
    def rest_share(self) -> float:
        """Return the machine's busy time not charged to the daemon, the endpoints or
        ksoftirqd, in cores: other processes, and softirq work charged to no process."""
        charged = self.daemon_s + sum(self.sender_cpu) + self.machine.ksoftirqd
        return (self.machine.busy - charged) / self.machine.wall

    def share(self, role: str) -> float | None:
        """Return ``role``'s CPU as a share of one core over the run."""
        got = self.roles.get(role)
        return None if got is None else got / self.machine.wall


@dataclass
class Setup:
    """One case: a daemon (or none, for the kernel) and its two paths."""

    name: str
    paths: list[Case]
    daemon: Daemon | None = None
    udp: list[Run] = field(default_factory=list)
    tcp: list[Run] = field(default_factory=list)

    def fps_per_cpu(self, run: Run) -> float | None:
        """Return frames delivered per CPU-second of the daemon in ``run``."""
        if self.daemon is None or run.daemon_s <= 0:
            return None
        return sum(run.received) / run.daemon_s


# --------------------------------------------------------------------------- topology


def vrd_config(p: str, workers: int) -> str:
    """Config of a vrouterd case: vnets ``a`` and ``b``, each with two TAPs to its hosts.

    With ``workers`` > 1, ``a`` is pinned to worker 0 and ``b`` to worker 1.
    """
    parts = [VRD_HEADER, f"workers = {workers}\n"]
    for index, vnet in enumerate(PATHS):
        host = f"{p}{vnet.upper()}"
        pin = f"worker = {index}\n" if workers > 1 else ""
        parts.append(f"""
[vnets.{vnet}]
forwarding = true
{pin}
[vnets.{vnet}.interfaces.{p}{vnet}1]
type = "tap"
addresses = ["192.0.2.1/24"]
host = {{ netns = "{host}1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.1" }}

[vnets.{vnet}.interfaces.{p}{vnet}2]
type = "tap"
addresses = ["198.51.100.1/24"]
host = {{ netns = "{host}2", addresses = ["198.51.100.2/24"], gateway = "198.51.100.1" }}
""")
    return "".join(parts)


def build(lab: Lab, names: list[str]) -> list[Setup]:
    """Create the cases in ``names``; their paths are registered with ``lab`` for clean-up."""
    setups = []
    for name in names:
        if name == "kernel":
            paths = [lab.kernel_1hop(f"k{v.upper()}", f"kernel/{v}") for v in PATHS]
            lab.cases += paths
            setups.append(Setup(name, paths))
            continue
        workers = 1 if name == "1-worker" else 2
        p = f"{lab.prefix}w{workers}"
        daemon = Daemon(lab.workdir, name, vrd_config(p, workers))
        paths = []
        for vnet in PATHS:
            host = f"{p}{vnet.upper()}"
            path = Case(f"{name}/{vnet}", 1, f"{host}1", f"{host}2", f"{p}{vnet}1", f"{p}{vnet}2")
            path.daemon = daemon
            paths.append(path)
        lab.cases += paths  # registered before start: clean-up must see them
        daemon.start()
        setups.append(Setup(name, paths, daemon))
    return setups


# --------------------------------------------------------------------------- measurement


def udp_once(setup: Setup, seconds: int, flood: Path) -> None:
    """Flood both paths at once with 64-byte frames; count them at the far hosts."""
    rx0 = [rx_packets(c.h2, c.h2_if) for c in setup.paths]
    before = Snapshot.take(setup.daemon)
    procs = []
    for path in setup.paths:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", path.h1, str(flood), H2_ADDR, str(FLOOD_PORT),
             str(seconds), str(FLOOD_PAYLOAD)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        path.procs.append(proc)  # killed at clean-up if we are interrupted
        procs.append(proc)
    outputs = []
    for path, proc in zip(setup.paths, procs, strict=True):
        try:
            out, err = proc.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{path.name}: the UDP sender did not finish") from exc
        path.procs.remove(proc)
        if proc.returncode != 0:
            raise BenchError(f"{path.name}: the UDP sender exited {proc.returncode}: {err}")
        outputs.append(json_line(out))
    time.sleep(0.2)  # the last frames queued in the router arrive
    after = Snapshot.take(setup.daemon)
    rx1 = [rx_packets(c.h2, c.h2_if) for c in setup.paths]
    roles, mach = before.until(after)
    received = [b - a for a, b in zip(rx0, rx1, strict=True)]
    took = [float(o["seconds"]) for o in outputs]
    setup.udp.append(
        Run(
            [r / s for r, s in zip(received, took, strict=True)],
            roles,
            mach,
            received=received,
            sent_pps=[int(o["sent"]) / float(o["seconds"]) for o in outputs],
            sender_cpu=[float(o["cpu_s"]) for o in outputs],
        )
    )
    time.sleep(0.5)  # let queues drain before the next case


def json_line(text: str) -> dict:
    """Parse the sender's one JSON line."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise BenchError(f"the UDP sender printed {text!r}") from err
    if "cpu_s" not in data:
        raise BenchError("the UDP sender does not report its CPU time (old bench/udpflood.c?)")
    return data


def tcp_once(setup: Setup, seconds: int) -> None:
    """One iperf3 TCP stream on each path at the same time."""
    before = Snapshot.take(setup.daemon)
    with ThreadPoolExecutor(len(setup.paths)) as pool:
        futures = [pool.submit(iperf, path, seconds, "-P", "1") for path in setup.paths]
        reports = [f.result() for f in futures]
    after = Snapshot.take(setup.daemon)
    roles, mach = before.until(after)
    setup.tcp.append(
        Run(
            [float(r["end"]["sum_received"]["bits_per_second"]) for r in reports],
            roles,
            mach,
            retransmits=[int(r["end"]["sum_sent"].get("retransmits", 0)) for r in reports],
            sender_cpu=[
                (
                    float(r["end"]["cpu_utilization_percent"]["host_total"])
                    + float(r["end"]["cpu_utilization_percent"]["remote_total"])
                )
                / 100
                * float(r["end"]["sum_received"]["seconds"])
                for r in reports
            ],
        )
    )
    time.sleep(0.5)


def measure(lab: Lab, args: argparse.Namespace) -> list[Setup]:
    """Build the cases and measure them round-robin."""
    flood = lab.build_flood()
    if flood is None:
        raise BenchError("a C compiler (cc or gcc) is needed for bench/udpflood.c")
    setups = build(lab, args.cases)
    for setup in setups:
        for path in setup.paths:
            wait_reachable(path)
            start_servers(path)
    steps: list[tuple[str, Callable[[Setup], None]]] = [
        ("udp 64 B", lambda s: udp_once(s, args.seconds, flood)),
        ("tcp 1+1", lambda s: tcp_once(s, args.seconds)),
    ]
    for i in range(args.runs):
        order = setups[i % len(setups) :] + setups[: i % len(setups)]
        for label, step in steps:
            for setup in order:
                print(f"run {i + 1}/{args.runs} {label:9s} {setup.name:10s}", end="", flush=True)
                step(setup)
                print(f" {_progress(setup, label)}", flush=True)
    return setups


def _progress(setup: Setup, label: str) -> str:
    run = (setup.udp if label.startswith("udp") else setup.tcp)[-1]
    cpu = ", ".join(f"{role} {100 * (run.share(role) or 0):.0f}%" for role in sorted(run.roles))
    busy = f"machine {100 * run.machine.busy_share:.0f}% busy"
    if label.startswith("udp"):
        paths = " + ".join(f"{x / 1e3:.0f}" for x in run.bps_or_fps)
        senders = " + ".join(f"{100 * c / run.machine.wall:.0f}%" for c in run.sender_cpu)
        return (
            f"{paths} = {run.total / 1e3:.0f} kpps (sent "
            f"{sum(run.sent_pps) / 1e3:.0f}); {cpu or 'no daemon'}; senders {senders}; {busy}"
        )
    paths = " + ".join(f"{x / 1e9:.2f}" for x in run.bps_or_fps)
    return f"{paths} = {run.total / 1e9:.2f} Gbit/s; {cpu or 'no daemon'}; {busy}"


# --------------------------------------------------------------------------- report


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(mine: float | None, base: float | None) -> float | None:
    return None if mine is None or not base else mine / base


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _cell(values: list[float], scale: float, fmt: str) -> str:
    return "n/a" if not values else format(statistics.median(values) / scale, fmt)


def _verdict(got: float | None) -> str:
    if got is None:
        return "not measured"
    if got >= TARGET:
        return f"**met** ({got:.2f} x one worker)"
    return f"**missed** ({got:.2f} x one worker, {100 * got / TARGET:.0f}% of the target)"


class Report:
    """Renders the ``workers`` section of RESULTS.md."""

    def __init__(self, setups: list[Setup], args: argparse.Namespace) -> None:
        self.setups = {s.name: s for s in setups}
        self.args = args
        self.cores = os.cpu_count() or 1

    # ---- metrics: (label, runs of a setup, value of one run)

    def metrics(self) -> list[tuple[str, str, Callable[[Setup, Run], float | None], float, str]]:
        return [
            ("64-byte UDP, aggregate frames/s at hA2 + hB2", "udp",
             lambda s, r: r.total, 1e3, "kpps"),
            ("64-byte UDP, frames per CPU-second of the daemon (front + workers)", "udp",
             lambda s, r: s.fps_per_cpu(r), 1, "frames/CPU-s"),
            ("TCP, 1 stream per path, aggregate receiver throughput", "tcp",
             lambda s, r: r.total, 1e9, "Gbit/s"),
        ]  # fmt: skip

    def values(self, name: str, kind: str, value: Callable[[Setup, Run], float | None]) -> list:
        setup = self.setups.get(name)
        if setup is None:
            return []
        runs = setup.udp if kind == "udp" else setup.tcp
        return [value(setup, r) for r in runs]

    def ratios(self) -> list[str]:
        rows = [
            "| metric | 1 worker (median) | 2 workers (median) | 2 / 1 (medians) "
            "| 2 / 1 per round: min | median | max | kernel (median) | target >= 1.3 x |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for label, kind, value, scale, unit in self.metrics():
            one = [v for v in self.values("1-worker", kind, value) if v is not None]
            two = [v for v in self.values("2-workers", kind, value) if v is not None]
            kern = [v for v in self.values("kernel", kind, value) if v is not None]
            rounds = [b / a for a, b in zip(one, two, strict=False) if a]
            lo, med, hi = mmm(rounds, ".2f")
            ratio = _ratio(_median(two), _median(one))
            fmt = ",.0f" if scale == 1 else ".2f" if scale == 1e9 else ".0f"
            one_s, two_s = _cell(one, scale, fmt), _cell(two, scale, fmt)
            kern_s = _cell(kern, scale, fmt) if kern else "n/a (no daemon)"
            rows.append(
                f"| {label} ({unit}) | {one_s} | {two_s} | {fmt_ratio(ratio)} "
                f"| {lo} | {med} | {hi} | {kern_s} "
                f"| {_verdict(ratio)} |"
            )
        return rows

    def roles(self) -> list[str]:
        found = set()
        for setup in self.setups.values():
            for run in setup.udp + setup.tcp:
                found |= {r for r in run.roles if r != "other"}
        return sorted(found, key=lambda r: (r.startswith("worker"), r))

    def udp_table(self) -> list[str]:
        roles = self.roles()
        rows = [
            "| case | sent kpps A+B (median) | received kpps A+B min | median | max "
            "| path A / path B (median) | daemon frames per CPU-s "
            "| daemon CPU % of a core | "
            + " | ".join(roles)
            + " | sender A / sender B | ksoftirqd | rest | machine busy (of "
            f"{self.cores} cores) | softirq | steal | per run (kpps) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"
            + "---:|" * len(roles)
            + "---:|---:|---:|---:|---:|---:|---|",
        ]
        for setup in self.setups.values():
            runs = setup.udp
            if not runs:
                continue
            lo, med, hi = mmm([r.total / 1e3 for r in runs], ".0f")
            sent = statistics.median(sum(r.sent_pps) for r in runs) / 1e3
            per_path = " / ".join(
                f"{statistics.median(r.bps_or_fps[k] for r in runs) / 1e3:.0f}"
                for k in range(len(PATHS))
            )
            fpc = "n/a (kernel)"
            daemon = "n/a (kernel)"
            if setup.daemon is not None:
                cpu = sum(r.daemon_s for r in runs)
                frames = sum(sum(r.received) for r in runs)
                fpc = f"{frames / cpu:,.0f}" if cpu else "n/a"
                daemon = _pct(_median([r.daemon_s / r.machine.wall for r in runs]))
            cells = [self.role_cell(runs, role) for role in roles]
            senders = " / ".join(
                _pct(statistics.median(r.sender_cpu[k] / r.machine.wall for r in runs))
                for k in range(len(PATHS))
            )
            per_run = ", ".join(f"{r.total / 1e3:.0f}" for r in runs)
            rows.append(
                f"| {setup.name} | {sent:.0f} | {lo} | {med} | {hi} | {per_path} | {fpc} "
                f"| {daemon} | {' | '.join(cells)}{' | ' if cells else ''}{senders} "
                f"| {self.machine_cells(runs)} | {per_run} |"
            )
        return rows

    def tcp_table(self) -> list[str]:
        roles = self.roles()
        rows = [
            "| case | Gbit/s A+B min | median | max | path A / path B (median) "
            "| retransmits A+B (median) | daemon CPU % of a core | "
            + " | ".join(roles)
            + " | iperf3 A / B (client + server) | ksoftirqd | rest "
            f"| machine busy (of {self.cores} cores) | softirq | steal | per run (Gbit/s) |",
            "|---|---:|---:|---:|---:|---:|---:|"
            + "---:|" * len(roles)
            + "---:|---:|---:|---:|---:|---:|---|",
        ]
        for setup in self.setups.values():
            runs = setup.tcp
            if not runs:
                continue
            lo, med, hi = mmm([r.total / 1e9 for r in runs], ".2f")
            per_path = " / ".join(
                f"{statistics.median(r.bps_or_fps[k] for r in runs) / 1e9:.2f}"
                for k in range(len(PATHS))
            )
            retrans = statistics.median(sum(r.retransmits) for r in runs)
            daemon = (
                _pct(_median([r.daemon_s / r.machine.wall for r in runs]))
                if setup.daemon is not None
                else "n/a (kernel)"
            )
            cells = [self.role_cell(runs, role) for role in roles]
            iperfs = " / ".join(
                _pct(statistics.median(r.sender_cpu[k] / r.machine.wall for r in runs))
                for k in range(len(PATHS))
            )
            per_run = ", ".join(f"{r.total / 1e9:.2f}" for r in runs)
            rows.append(
                f"| {setup.name} | {lo} | {med} | {hi} | {per_path} | {retrans:.0f} | {daemon} "
                f"| {' | '.join(cells)}{' | ' if cells else ''}{iperfs} "
                f"| {self.machine_cells(runs)} | {per_run} |"
            )
        return rows

    @staticmethod
    def role_cell(runs: list[Run], role: str) -> str:
        shares = [r.share(role) for r in runs]
        got = [s for s in shares if s is not None]
        return _pct(_median(got)) if got else "-"

    def machine_cells(self, runs: list[Run]) -> str:
        rest = _median([r.rest_share for r in runs])
        ksoft = _median([r.machine.ksoftirqd / r.machine.wall for r in runs])
        busy = _median([r.machine.busy_share for r in runs])
        soft = _median([r.machine.softirq / (r.machine.wall * self.cores) for r in runs])
        steal = _median([r.machine.steal / (r.machine.wall * self.cores) for r in runs])
        return f"{_pct(ksoft)} | {_pct(rest)} | {_pct(busy)} | {_pct(soft)} | {_pct(steal)}"

    # ---- what limits the scaling, from the numbers

    def analysis(self) -> list[str]:
        one, two = self.setups.get("1-worker"), self.setups.get("2-workers")
        if one is None or two is None:
            return ["(needs both vrouterd cases)", ""]
        lines = []
        med = statistics.median
        for kind, label in (("udp", "64-byte UDP"), ("tcp", "TCP")):
            r1, r2 = (one.udp, two.udp) if kind == "udp" else (one.tcp, two.tcp)
            if not r1 or not r2:
                continue
            agg = _ratio(med([r.total for r in r2]), med([r.total for r in r1]))
            d1 = med([r.daemon_s / r.machine.wall for r in r1])
            d2 = med([r.daemon_s / r.machine.wall for r in r2])
            w = [self.role_cell(r2, f"worker {k}") for k in range(len(PATHS))]
            e1 = med([sum(r.sender_cpu) / r.machine.wall for r in r1])
            e2 = med([sum(r.sender_cpu) / r.machine.wall for r in r2])
            o1, o2 = med([r.rest_share for r in r1]), med([r.rest_share for r in r2])
            k1 = med([r.machine.ksoftirqd / r.machine.wall for r in r1])
            k2 = med([r.machine.ksoftirqd / r.machine.wall for r in r2])
            rounds = [b.total / a.total for a, b in zip(r1, r2, strict=False) if a.total]
            b1 = med([r.machine.busy_share for r in r1])
            b2 = med([r.machine.busy_share for r in r2])
            ends = "the two senders" if kind == "udp" else "the iperf3 clients and servers"
            text = (
                f"**{label}**: two workers deliver {fmt_ratio(agg)} x the aggregate of one. "
                f"CPU in shares of one core, 1 worker -> 2 workers: the daemon "
                f"{_pct(d1)} -> {_pct(d2)} (worker 0 {w[0]}, worker 1 {w[1]}), {ends} "
                f"{_pct(e1)} -> {_pct(e2)}, ksoftirqd {_pct(k1)} -> {_pct(k2)}, the rest of the "
                f"machine (other processes, softirq work charged to no process) {_pct(o1)} -> "
                f"{_pct(o2)}; the machine was {_pct(b1)} -> {_pct(b2)} busy (of its "
                f"{self.cores} cores). "
            )
            if rounds and max(rounds) / min(rounds) > NOISY:
                text += (
                    f"The per-round ratios range from {min(rounds):.2f} to {max(rounds):.2f}: "
                    "noisy, other work on the machine changed between rounds. "
                )
            if b1 >= SATURATED and b2 >= SATURATED:
                text += (
                    f"The {self.cores} cores were saturated in both cases, so what each "
                    "case forwards is decided by the CPU its processes get when they "
                    "compete for the cores"
                    + (
                        f", and the one worker did not get a whole core ({_pct(d1)}): "
                        "it was not at its own single-core limit. "
                        if d1 < SATURATED
                        else ". "
                    )
                    + f"Two runnable workers get {fmt_ratio(_ratio(d2, d1))} x the CPU of "
                    "one (the scheduler shares the cores among runnable threads). "
                )
            elif d1 >= SATURATED:
                text += "One worker is CPU-bound: a single-threaded process at a whole core. "
            if kind == "udp":
                f1 = _ratio(sum(sum(r.received) for r in r1), sum(r.daemon_s for r in r1))
                f2 = _ratio(sum(sum(r.received) for r in r2), sum(r.daemon_s for r in r2))
                same = f1 is not None and f2 is not None and 0.85 <= f2 / f1 <= 1.15
                text += (
                    f"Frames per daemon CPU-second: {f1 or 0:,.0f} -> {f2 or 0:,.0f} "
                    f"({fmt_ratio(_ratio(f2, f1))} x)"
                    + (
                        ": the cost per frame does not change with workers, so the "
                        "aggregate grows only by the extra CPU the second worker gets."
                        if same
                        else "."
                    )
                )
            lines += [text, ""]
        return lines

    def render(self, host: list[str], load_before: str, load_after: str) -> str:
        a = self.args
        cases = f" --cases {','.join(a.cases)}" if a.cases != list(CASE_NAMES) else ""
        return "\n".join([
            "## Workers",
            "",
            f"`.venv/bin/python bench/workers.py --runs {a.runs} --seconds {a.seconds}{cases}` "
            "(see bench/README.md). Two independent paths, hA1 -TAP- vnet `a` -TAP- hA2 and "
            "hB1 -TAP- vnet `b` -TAP- hB2, loaded at the same time; `1-worker` runs both "
            "vnets in one process (`workers = 1`), `2-workers` pins `a` to worker 0 and `b` "
            "to worker 1 (`workers = 2`), `kernel` is two Linux router namespaces.",
            "",
            "### Machine",
            "",
            *host,
            f"- Load average (1/5/15 min) at start: {load_before}; at end: {load_after} "
            "(other work on the machine shows here)",
            "",
            "### 2 workers / 1 worker",
            "",
            f"{a.runs} runs x {a.seconds} s per case and measurement, cases round-robin. "
            "\"Per round\" divides the 2-workers run by the 1-worker run of the same round "
            "(seconds apart), which cancels slow drift of a shared machine.",
            "",
            *self.ratios(),
            "",
            "### What limits it",
            "",
            *self.analysis(),
            "### UDP, 64-byte frames, both paths at once",
            "",
            "Sender: `bench/udpflood.c` on hA1 and on hB1 at the same time (`sendmmsg`, "
            "64 per call); received = frames counted on hA2's and hB2's interfaces "
            "(`ip -s link`) / each sender's duration, summed. CPU columns are medians over "
            "the runs, as a share of one core over the run: the daemon = utime+stime of its "
            "whole process tree (/proc/PID/stat), then per process (`daemon` is the single "
            "process of `workers = 1`; `front`, `worker 0` (vnet a) and `worker 1` (vnet b) "
            "with workers); senders = each flooder's own getrusage; machine = /proc/stat, "
            "busy share of all cores (softirq and steal are parts of it; kernel forwarding "
            "and TAP work in softirq is not charged to any process).",
            "",
            *self.udp_table(),
            "",
            "### TCP, iperf3 1 stream per path, both paths at once",
            "",
            "Receiver bits/s of `iperf3 -P 1` hA1 -> hA2 plus hB1 -> hB2, started together. "
            "iperf3's CPU is its own report (`cpu_utilization_percent`, client host_total + "
            "server remote_total).",
            "",
            *self.tcp_table(),
            "",
        ])  # fmt: skip


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = lab_parser(__doc__, CASE_NAMES, "flood / iperf3 run")
    args = parser.parse_args(argv)
    check_args(parser, args, CASE_NAMES)

    def render(lab: Lab) -> str:
        setups = measure(lab, args)
        host = machine((("iperf3", "--version"), ("cc", "--version")))
        return Report(setups, args).render(host, load_before, loadavg())

    load_before = loadavg()
    return run_lab("workers", f"b{os.getpid() % 100000:05d}", Lab, render, args.no_write)


if __name__ == "__main__":
    sys.exit(main())
