#!/usr/bin/env python3
"""Mirror benchmark: route sync of a large feed, and the punt path beside the fast path.

The topology is ``vrouterd-2vnet`` of ``forwarding.py`` (h1 -TAP- [red]
=epair= [blue] -TAP- h2), one daemon per case, all up at once, beside the
kernel doing the same forwarding:

  kernel-2hop  two router namespaces joined by a veth (the Linux baseline)
  plain        no mirror
  mirror       red and blue each with a control-plane mirror (netns mode)

UDP: the 64-byte flood of ``forwarding.py`` h1 -> h2, ``--runs`` times for
``--seconds``, cases round-robin; frames counted on h2's interface.  Target:
mirror / plain >= 0.95 (the punt path costs forwarding nothing).

Route sync (the mirror case, after the floods): ``--routes`` IPv4 /32 routes
(default 1,000,000, of 100.64.0.0/10: the documentation ranges hold too few,
and these routes carry no traffic) are added in red's mirror as ``proto bgp``
via blue's epair address, as a BGP daemon's data plane installs them: in
netlink batches (``routefeed.py``; ``--feed ip-batch``: ``ip -batch``, a
route and its answer at a time, three times slower in the kernel itself);
the sync makes them red's ``bgp`` routes.  Measured: the kernel's own
install time (the feeder returning), the time until red's FIB holds them
all (``mirror.show``'s ``synced_routes``, polled every 0.25 s), and a ping
h1 -> h2 every 10 ms meanwhile (p50, p99, max, loss).  Target: < 20 s with
p99 < 50 ms.  Then the same routes deleted the same way and the time until
they are gone from the FIB, and the daemon's resident memory at the peak.

Usage (as root):  .venv/bin/python bench/mirror.py [--runs 3] [--seconds 5]
                  [--routes 1000000] [--feed netlink|ip-batch] [--no-write]

Everything created is removed in ``finally`` blocks (``forwarding.run_lab``),
also on Ctrl-C, SIGTERM or failure; the script then checks for leftovers.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from forwarding import (
    H2_ADDR,
    BenchError,
    Case,
    Lab,
    check_args,
    kill_group,
    lab_parser,
    mmm,
    percentile,
    ping_series,
    run,
    run_lab,
    start_servers,
    udp_once,
    vrd_2vnet,
    wait_reachable,
)
from report import fmt_ratio, kept_by_hand, loadavg, machine

CASE_NAMES = ("kernel-2hop", "plain", "mirror")
UDP_TARGET = 0.95
LEVERS = "### Levers (kept by hand)"
SYNC_TARGET_S = 20.0
PING_P99_TARGET_MS = 50.0
FEED_BASE = 0x64400000  # 100.64.0.0
FEED_VIA = "203.0.113.2"  # blue's end of the epair, on red's representor ep0
FEED_PROTO = 186  # bgp
FEEDER = Path(__file__).resolve().parent / "routefeed.py"
SYNC_TIMEOUT = 300.0


def config(case: str, p: str) -> str:
    """Return the config of ``case`` with names starting with ``p``."""
    text = vrd_2vnet(p)
    if case == "mirror":
        text += f'\n[vnets.red.mirror]\nnetns = "{p}mr"\n\n[vnets.blue.mirror]\nnetns = "{p}mb"\n'
    return text


@dataclass
class Sync:
    """One route-sync run."""

    routes: int
    kernel_s: float = 0.0
    """``ip -batch`` in the mirror, start to return."""
    synced_s: float | None = None
    """Start of the feed until the vnet holds every route (None: not within the timeout)."""
    synced: int = 0
    flushed_s: float | None = None
    rss_mib: float = 0.0
    cpu_s: float | None = None
    """The daemon's CPU time (user + system) from the start of the feed until synced."""
    counters: dict[str, object] = field(default_factory=dict)
    """The sync's counters (``mirror.show``'s ``sync``) once synced: more messages than
    routes means the socket overran and the sync started again from a dump."""
    rtts: list[float] = field(default_factory=list)
    pings: int = 0
    idle: list[float] = field(default_factory=list)
    """Ping RTTs before the feed, for comparison."""


def _synced(case: Case) -> int:
    assert case.daemon is not None
    shown = case.daemon.call("mirror.show", vnet="red", timeout=30)
    assert isinstance(shown, dict)
    return int(shown["synced_routes"])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _wait_synced(case: Case, want: int, start: float, sync: Sync) -> float | None:
    """Poll until red's synced routes are ``want``; return the seconds since ``start``."""
    assert case.daemon is not None
    while time.monotonic() - start < SYNC_TIMEOUT:
        sync.synced = _synced(case)
        sync.rss_mib = max(sync.rss_mib, _rss_mib(case.daemon.pid))
        if sync.synced == want:
            return time.monotonic() - start
        time.sleep(0.25)
    return None


def _feed(lab: Lab, mirror: str, routes: int, verb: str, how: str) -> None:
    """Add or delete (``verb``) the feed's routes in namespace ``mirror``, ``how`` says how."""
    if how == "netlink":
        first = f"{FEED_BASE >> 24}.{FEED_BASE >> 16 & 255}.{FEED_BASE >> 8 & 255}.0"
        run("ip", "netns", "exec", mirror, sys.executable, str(FEEDER), verb, first, str(routes),
            FEED_VIA, "ep0", str(FEED_PROTO), timeout=SYNC_TIMEOUT)  # fmt: skip
        return
    if verb == "del":
        run("ip", "-n", mirror, "route", "flush", "proto", "bgp", timeout=SYNC_TIMEOUT)
        return
    batch = lab.workdir / "feed.batch"
    with batch.open("w") as out:
        for n in range(routes):
            a = FEED_BASE + n
            out.write(f"route add {a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}/32 "
                      f"via {FEED_VIA} dev ep0 proto bgp\n")  # fmt: skip
    run("ip", "-n", mirror, "-batch", str(batch), timeout=SYNC_TIMEOUT)
    batch.unlink()


def sync_once(lab: Lab, case: Case, routes: int, how: str) -> Sync:
    """Feed ``routes`` routes into red's mirror and measure (see the module docstring)."""
    sync = Sync(routes)
    sync.idle = ping_series(case).rtts
    mirror = f"{case.h1[:-2]}mr"  # the config's netns: prefix + tag + "mr"
    ping = subprocess.Popen(
        ["ip", "netns", "exec", case.h1, "ping", "-n", "-i", "0.01", "-W", "1", H2_ADDR],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        cpu = case.cpu_s()
        start = time.monotonic()
        _feed(lab, mirror, routes, "add", how)
        sync.kernel_s = time.monotonic() - start
        sync.synced_s = _wait_synced(case, routes, start, sync)
        after = case.cpu_s()
        sync.cpu_s = after - cpu if after is not None and cpu is not None else None
        assert case.daemon is not None
        shown = case.daemon.call("mirror.show", vnet="red", timeout=30)
        assert isinstance(shown, dict) and isinstance(shown["sync"], dict)
        sync.counters = shown["sync"]
        time.sleep(0.5)
    finally:
        ping.send_signal(signal.SIGINT)
        try:
            out, _ = ping.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(ping)
            out = ""
    sync.rtts = [float(m) for m in re.findall(r"time=([\d.]+) ms", out)]
    sent = re.search(r"(\d+) packets transmitted", out)
    sync.pings = int(sent.group(1)) if sent else len(sync.rtts)
    start = time.monotonic()
    _feed(lab, mirror, routes, "del", how)
    sync.flushed_s = _wait_synced(case, 0, start, Sync(routes))
    return sync


def measure(lab: Lab, args: argparse.Namespace) -> tuple[list[Case], Sync | None]:
    """Build the cases and measure them; return them in ``CASE_NAMES`` order, and the sync."""
    flood = lab.build_flood()
    cases = []
    for i, name in enumerate(args.cases):
        if name == "kernel-2hop":
            case = lab.kernel_2hop()
            lab.cases.append(case)
        else:
            case = lab.vrouterd(name, 2, f"n{i}", lambda p, name=name: config(name, p))
        wait_reachable(case)
        start_servers(case)
        cases.append(case)
    for run_ in range(args.runs):
        order = cases[run_ % len(cases) :] + cases[: run_ % len(cases)]
        for case in order:
            print(f"run {run_ + 1}/{args.runs} udp {case.name:12s}", end="", flush=True)
            udp_once(case, args.seconds, flood)
            print(f" received {case.udp[-1].rx_pps / 1e3:.1f} kpps", flush=True)
    sync = None
    mirrored = [c for c in cases if c.name == "mirror"]
    if mirrored and args.routes:
        print(f"route sync of {args.routes} routes", end="", flush=True)
        sync = sync_once(lab, mirrored[0], args.routes, args.feed)
        if sync.synced_s is None:
            print(f" not done in {SYNC_TIMEOUT:.0f} s ({sync.synced} synced)", flush=True)
        else:
            print(f" {sync.synced_s:.1f} s", flush=True)
    return cases, sync


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _counters(counters: dict[str, object]) -> str:
    """Return the sync's counters as text."""
    numbers = {name: value for name, value in counters.items() if isinstance(value, int)}
    return ", ".join(f"{name} {value:,}" for name, value in numbers.items())


def render(
    cases: list[Case], sync: Sync | None, args: argparse.Namespace, host: list[str], load: str
) -> str:
    """Return the Markdown section of the results."""
    udp = {c.name: [r.rx_pps / 1e3 for r in c.udp] for c in cases}
    udp_cpu = {c.name: [r.received / 1e3 / r.cpu_s for r in c.udp if r.cpu_s] for c in cases}
    lines = [
        "## Mirror: route sync of a large feed, and forwarding beside the punt path",
        "",
        f"`.venv/bin/python bench/mirror.py --runs {args.runs} --seconds {args.seconds} "
        f"--routes {args.routes} --feed {args.feed}`; topology vrouterd-2vnet, one daemon per "
        "case, all up at once, and the kernel's kernel-2hop.",
        "",
        *host,
        f"- load average at the end: {load}",
        "",
        "64-byte UDP flood h1 -> h2, min / median / max; per CPU-second: of the daemon's CPU "
        "time over the run.",
        "",
        "| case | received, kpps | kframes per CPU-s |",
        "|---|---|---|",
    ]

    def cell(values: list[float], fmt: str) -> str:
        return " / ".join(mmm(values, fmt)) if values else "-"

    for name in args.cases:
        lines.append(f"| {name} | {cell(udp[name], '.1f')} | {cell(udp_cpu[name], '.1f')} |")
    lines += ["", "| ratio of medians | UDP | UDP per CPU-s | target |", "|---|---|---|---|"]
    for top, base, target in (
        ("mirror", "plain", f">= {UDP_TARGET}"),
        ("plain", "kernel-2hop", "(information)"),
        ("mirror", "kernel-2hop", "(information)"),
    ):
        if top in udp and base in udp:
            ratios = " | ".join(
                fmt_ratio(_ratio(_median(values[top]), _median(values[base])))
                for values in (udp, udp_cpu)
            )
            per_cpu = "-" if base == "kernel-2hop" else ratios.split(" | ")[1]
            lines.append(f"| {top} / {base} | {ratios.split(' | ')[0]} | {per_cpu} | {target} |")
    if sync is not None:
        rtts = sync.rtts
        loss = 100 * (sync.pings - len(rtts)) / sync.pings if sync.pings else 100.0
        done = f"{sync.synced_s:.1f}" if sync.synced_s is not None else f"not done ({sync.synced})"
        flushed = f"{sync.flushed_s:.1f}" if sync.flushed_s is not None else "not done"
        p99 = f"{percentile(rtts, 99):.1f}" if rtts else "-"
        idle = sync.idle
        before = (
            f"{percentile(idle, 50):.1f} / {percentile(idle, 99):.1f} / {max(idle):.1f}"
            if idle else "-"
        )
        lines += [
            "",
            f"Route sync: {sync.routes:,} IPv4 routes added in red's mirror "
            + ("in netlink batches" if args.feed == "netlink" else "by `ip -batch`")
            + " (`proto bgp`), synced into red's FIB as source `bgp`.",
            "",
            "| kernel install, s | in the vnet's FIB, s (target < "
            f"{SYNC_TARGET_S:.0f}) | ping p50 / p99 / max, ms (p99 target < "
            f"{PING_P99_TARGET_MS:.0f}) | ping loss | flushed from the FIB, s | daemon RSS, MiB "
            "| daemon CPU until synced, s |",
            "|---|---|---|---|---|---|---|",
            f"| {sync.kernel_s:.1f} | {done} | "
            + (f"{percentile(rtts, 50):.1f} / {p99} / {max(rtts):.1f}" if rtts else "-")
            + f" | {loss:.1f}% of {sync.pings} | {flushed} | {sync.rss_mib:.0f} | "
            + (f"{sync.cpu_s:.1f} |" if sync.cpu_s is not None else "- |"),
            "",
            f"Ping p50 / p99 / max before the feed, ms: {before}.",
            "",
            f"The sync's counters once synced: {_counters(sync.counters)}.",
        ]
    return "\n".join([*lines, *_kept_levers()])


def _kept_levers() -> list[str]:
    kept = kept_by_hand("mirror", LEVERS)
    return ["", *kept] if kept else []


def main(argv: list[str] | None = None) -> int:
    parser = lab_parser(__doc__, CASE_NAMES, "UDP flood")
    parser.add_argument(
        "--routes", type=int, default=1_000_000,
        help="routes of the sync feed (default 1000000; 0: no sync run)",
    )  # fmt: skip
    parser.add_argument(
        "--feed", choices=("netlink", "ip-batch"), default="netlink",
        help="how the routes are added in the mirror (default: netlink batches)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    check_args(parser, args, CASE_NAMES)
    if not 0 <= args.routes <= 4_000_000:
        parser.error("--routes must be 0..4000000 (100.64.0.0/10 as /32s)")

    def run_all(lab: Lab) -> str:
        cases, sync = measure(lab, args)
        host = machine((("cc", "--version"),))
        return render(cases, sync, args, host, loadavg())

    try:
        return run_lab("mirror", f"b{os.getpid() % 100000:05d}", Lab, run_all, args.no_write)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
