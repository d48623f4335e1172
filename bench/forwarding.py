#!/usr/bin/env python3
"""Forwarding benchmark: vrouterd against the Linux kernel, same run, same machine.

Four topologies carry iperf3 TCP (one stream) and ping between two host
namespaces h1 (192.0.2.2/24, gw 192.0.2.1) and h2 (198.51.100.2/24,
gw 198.51.100.1):

  kernel-1hop     h1 -veth- [router netns, ip_forward=1] -veth- h2
  kernel-2hop     h1 -veth- [r1] -veth 203.0.113.0/30- [r2] -veth- h2
  vrouterd-1vnet  h1 -TAP- [vrouterd: one vnet] -TAP- h2
  vrouterd-2vnet  h1 -TAP- [vnet red] =epair 203.0.113.0/30= [vnet blue] -TAP- h2

All four are built at once under one unique name prefix and measured
round-robin (run 1 of every case, then run 2, ...) so slow drift of a shared
machine hits every case alike.  Results go to bench/RESULTS.md and stdout.

Usage (as root):  python3 bench/forwarding.py [--runs 3] [--seconds 5]

Everything created (namespaces, veths, TAPs via the daemon, daemons, iperf3
servers) is removed in ``finally`` blocks, also on Ctrl-C, SIGTERM or
failure; the script then checks ``ip netns list`` for leftovers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from vrouter.api.client import Client

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"

H1_ADDR, H1_GW = "192.0.2.2", "192.0.2.1"
H2_ADDR, H2_GW = "198.51.100.2", "198.51.100.1"
IPERF_PORT = 5201
PING_COUNT = 50
OFFLOAD_FEATURES = (
    "rx-checksumming",
    "tx-checksumming",
    "scatter-gather",
    "tcp-segmentation-offload",
    "generic-segmentation-offload",
    "generic-receive-offload",
)
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The benchmark could not set up or measure a case."""


# --------------------------------------------------------------------------- commands


def run(*cmd: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` with a bound on time; raise BenchError if ``check`` and it fails."""
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise BenchError(f"{' '.join(cmd)}: no answer within {timeout}s") from err
    if check and result.returncode != 0:
        raise BenchError(
            f"{' '.join(cmd)} exited {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()}"
        )
    return result


def nsrun(
    ns: str, *cmd: str, timeout: float = 30, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` inside network namespace ``ns``."""
    return run("ip", "netns", "exec", ns, *cmd, timeout=timeout, check=check)


def netns_list() -> set[str]:
    """Return the names of the named network namespaces."""
    out = run("ip", "netns", "list", timeout=10).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def root_links() -> set[str]:
    """Return the interface names in the root namespace."""
    out = run("ip", "-o", "link", "show", timeout=10).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


# --------------------------------------------------------------------------- topologies


@dataclass
class Case:
    """One topology under test."""

    name: str
    hops: int
    h1: str  # namespace of host h1 (iperf3 client, ping source)
    h2: str  # namespace of host h2 (iperf3 server)
    h1_if: str  # h1's interface (offload report)
    router_ifs: list[tuple[str, str]] = field(default_factory=list)  # (netns, ifname)
    daemon: Daemon | None = None
    server: subprocess.Popen[bytes] | None = None
    bps: list[float] = field(default_factory=list)
    bytes_rx: int = 0
    seconds: float = 0.0
    cpu_ticks: int = 0
    rtts: list[float] = field(default_factory=list)
    ping_interval: str = ""
    ping_sent: int = 0
    offload: dict[str, dict[str, str]] = field(default_factory=dict)


class Daemon:
    """A vrouterd process on a generated config in its own work directory."""

    def __init__(self, workdir: Path, name: str, config: str) -> None:
        self.dir = workdir / name
        (self.dir / "state").mkdir(parents=True)
        self.config = self.dir / "vrouter.toml"
        self.config.write_text(config.format(dir=self.dir))
        self.socket = str(self.dir / "control.sock")
        self.log = self.dir / "vrouterd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        """Start the daemon; wait until its control socket answers (hosts are then up)."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vrouter.daemon.main", "-c", str(self.config)],
                stdout=log,
                stderr=log,
                start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"vrouterd exited {self.proc.returncode}:\n{self.logtext()}")
            try:
                with Client(self.socket, timeout=2) as client:
                    client.call("status")
                return
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"vrouterd did not become ready in {timeout}s:\n{self.logtext()}")

    @property
    def pid(self) -> int:
        """Return the daemon's process id."""
        assert self.proc is not None
        return self.proc.pid

    def cpu_ticks(self) -> int:
        """Return utime + stime of the daemon (all its threads), in clock ticks."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        return int(fields[11]) + int(fields[12])

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the daemon (it removes its TAPs and namespaces); kill it if it hangs."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"warning: vrouterd {self.proc.pid} ignored SIGTERM, killing", file=sys.stderr)
            self.proc.kill()
            self.proc.wait(10)

    def logtext(self) -> str:
        """Return the tail of what the daemon logged."""
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


VRD_HEADER = """\
[daemon]
control_socket = "{{dir}}/control.sock"
state_dir = "{{dir}}/state"
log_level = "warning"
"""

VRD_1VNET = (
    VRD_HEADER
    + """
[vnets.core]
forwarding = true

[vnets.core.interfaces.{p}v1a]
type = "tap"
addresses = ["192.0.2.1/24"]
host = {{{{ netns = "{p}v1h1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.1" }}}}

[vnets.core.interfaces.{p}v1b]
type = "tap"
addresses = ["198.51.100.1/24"]
host = {{{{ netns = "{p}v1h2", addresses = ["198.51.100.2/24"], gateway = "198.51.100.1" }}}}
"""
)

VRD_2VNET = (
    VRD_HEADER
    + """
[vnets.red]
forwarding = true

[vnets.red.interfaces.{p}v2r]
type = "tap"
addresses = ["192.0.2.1/24"]
host = {{{{ netns = "{p}v2h1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.1" }}}}

[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["203.0.113.1/30"]

[[vnets.red.routes]]
to = "198.51.100.0/24"
via = "203.0.113.2"

[vnets.blue]
forwarding = true

[vnets.blue.interfaces.{p}v2b]
type = "tap"
addresses = ["198.51.100.1/24"]
host = {{{{ netns = "{p}v2h2", addresses = ["198.51.100.2/24"], gateway = "198.51.100.1" }}}}

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["203.0.113.2/30"]

[[vnets.blue.routes]]
to = "192.0.2.0/24"
via = "203.0.113.1"
"""
)


class Lab:
    """Owns every name this run creates; ``cleanup`` removes all of them."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.workdir = Path(tempfile.mkdtemp(prefix=f"vrouter-bench-{prefix}-"))
        self.cases: list[Case] = []

    # ---- building blocks

    def netns(self, name: str) -> str:
        """Create namespace ``name`` (must carry our prefix) with lo up."""
        assert name.startswith(self.prefix) and len(name) <= 15
        run("ip", "netns", "add", name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        """Create a veth pair directly between two of our namespaces and bring it up."""
        for ifname in (if_a, if_b):
            assert ifname.startswith(self.prefix) and len(ifname) <= 15, ifname
        run("ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b,
            "netns", ns_b)  # fmt: skip
        run("ip", "-n", ns_a, "link", "set", if_a, "up")
        run("ip", "-n", ns_b, "link", "set", if_b, "up")

    @staticmethod
    def addr(ns: str, ifname: str, cidr: str) -> None:
        """Add an address."""
        run("ip", "-n", ns, "addr", "add", cidr, "dev", ifname)

    @staticmethod
    def route(ns: str, to: str, via: str) -> None:
        """Add a static route."""
        run("ip", "-n", ns, "route", "add", to, "via", via)

    @staticmethod
    def forwarding(ns: str) -> None:
        """Turn on IPv4 forwarding in a router namespace (and nothing else)."""
        nsrun(ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

    # ---- the four cases

    def kernel_1hop(self) -> Case:
        p = f"{self.prefix}k1"
        h1, r, h2 = self.netns(f"{p}h1"), self.netns(f"{p}r"), self.netns(f"{p}h2")
        self.veth(h1, f"{p}a", r, f"{p}ra")
        self.veth(r, f"{p}rb", h2, f"{p}b")
        self.addr(h1, f"{p}a", "192.0.2.2/24")
        self.addr(r, f"{p}ra", "192.0.2.1/24")
        self.addr(r, f"{p}rb", "198.51.100.1/24")
        self.addr(h2, f"{p}b", "198.51.100.2/24")
        self.route(h1, "default", H1_GW)
        self.route(h2, "default", H2_GW)
        self.forwarding(r)
        return Case("kernel-1hop", 1, h1, h2, f"{p}a", [(r, f"{p}ra"), (r, f"{p}rb")])

    def kernel_2hop(self) -> Case:
        p = f"{self.prefix}k2"
        h1, r1 = self.netns(f"{p}h1"), self.netns(f"{p}r1")
        r2, h2 = self.netns(f"{p}r2"), self.netns(f"{p}h2")
        self.veth(h1, f"{p}a", r1, f"{p}ra")
        self.veth(r1, f"{p}x1", r2, f"{p}x2")
        self.veth(r2, f"{p}rb", h2, f"{p}b")
        self.addr(h1, f"{p}a", "192.0.2.2/24")
        self.addr(r1, f"{p}ra", "192.0.2.1/24")
        self.addr(r1, f"{p}x1", "203.0.113.1/30")
        self.addr(r2, f"{p}x2", "203.0.113.2/30")
        self.addr(r2, f"{p}rb", "198.51.100.1/24")
        self.addr(h2, f"{p}b", "198.51.100.2/24")
        self.route(h1, "default", H1_GW)
        self.route(h2, "default", H2_GW)
        self.route(r1, "198.51.100.0/24", "203.0.113.2")
        self.route(r2, "192.0.2.0/24", "203.0.113.1")
        self.forwarding(r1)
        self.forwarding(r2)
        return Case(
            "kernel-2hop", 2, h1, h2, f"{p}a",
            [(r1, f"{p}ra"), (r1, f"{p}x1"), (r2, f"{p}x2"), (r2, f"{p}rb")],
        )  # fmt: skip

    def vrouterd(self, name: str, hops: int, tag: str, template: str, taps: str) -> Case:
        p = f"{self.prefix}{tag}"
        case = Case(name, hops, f"{p}h1", f"{p}h2", f"{p}{taps[0]}")
        case.daemon = Daemon(self.workdir, name, template.format(p=self.prefix))
        self.cases.append(case)  # registered before start: cleanup must see it
        case.daemon.start()
        case.router_ifs = [(case.h2, f"{p}{taps[1]}")]
        return case

    def build(self) -> None:
        """Create all four topologies."""
        for make in (self.kernel_1hop, self.kernel_2hop):
            self.cases.append(make())
        self.vrouterd("vrouterd-1vnet", 1, "v1", VRD_1VNET, "ab")
        self.vrouterd("vrouterd-2vnet", 2, "v2", VRD_2VNET, "rb")

    # ---- teardown

    def cleanup(self) -> list[str]:
        """Remove everything with our prefix; return what could not be removed."""
        for case in self.cases:
            if case.server is not None:
                with contextlib.suppress(OSError):
                    case.server.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    case.server.wait(10)
        for case in self.cases:
            if case.daemon is not None:
                try:
                    case.daemon.stop()
                except Exception as err:
                    print(f"warning: stopping {case.name}: {err}", file=sys.stderr)
        for name in sorted(n for n in _safe(netns_list) if n.startswith(self.prefix)):
            pids = run("ip", "netns", "pids", name, timeout=10, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            run("ip", "netns", "del", name, timeout=10, check=False)
        for name in sorted(n for n in _safe(root_links) if n.startswith(self.prefix)):
            run("ip", "link", "del", name, timeout=10, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)
        left = [n for n in _safe(netns_list) if n.startswith(self.prefix)]
        left += [n for n in _safe(root_links) if n.startswith(self.prefix)]
        return left


def _safe(fn: Callable[[], set[str]]) -> set[str]:
    try:
        return fn()
    except BenchError as err:
        print(f"warning: {err}", file=sys.stderr)
        return set()


# --------------------------------------------------------------------------- measurement


def wait_reachable(case: Case, timeout: float = 20) -> None:
    """Ping h2 from h1 until it answers (resolves ARP on every hop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = nsrun(case.h1, "ping", "-c", "1", "-W", "1", H2_ADDR, timeout=5, check=False)
        if probe.returncode == 0:
            return
        time.sleep(0.2)
    raise BenchError(f"{case.name}: {H2_ADDR} not reachable from h1 within {timeout}s")


def start_server(case: Case, timeout: float = 10) -> None:
    """Start a persistent iperf3 server in h2 and wait until it listens."""
    case.server = subprocess.Popen(
        ["ip", "netns", "exec", case.h2, "iperf3", "-s", "-B", H2_ADDR, "-p", str(IPERF_PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if case.server.poll() is not None:
            raise BenchError(f"{case.name}: iperf3 server exited {case.server.returncode}")
        out = nsrun(case.h2, "ss", "-ltnH", timeout=5, check=False).stdout
        if f"{H2_ADDR}:{IPERF_PORT}" in out:
            return
        time.sleep(0.1)
    raise BenchError(f"{case.name}: iperf3 server did not listen within {timeout}s")


def iperf_once(case: Case, seconds: int) -> None:
    """One iperf3 TCP run h1 -> h2; sample the daemon's CPU time around it."""
    before = case.daemon.cpu_ticks() if case.daemon else 0
    result = nsrun(
        case.h1,
        "iperf3", "-c", H2_ADDR, "-p", str(IPERF_PORT), "-t", str(seconds), "-P", "1", "--json",
        timeout=seconds + 60,
        check=False,
    )  # fmt: skip
    after = case.daemon.cpu_ticks() if case.daemon else 0
    try:
        report = json.loads(result.stdout)
    except ValueError as err:
        raise BenchError(f"{case.name}: iperf3 printed no JSON: {result.stderr.strip()}") from err
    if "error" in report or result.returncode != 0:
        raise BenchError(f"{case.name}: iperf3: {report.get('error', result.returncode)}")
    received = report["end"]["sum_received"]
    case.bps.append(float(received["bits_per_second"]))
    case.bytes_rx += int(received["bytes"])
    case.seconds += float(received["seconds"])
    case.cpu_ticks += after - before


def ping_idle(case: Case) -> None:
    """ping -c 50 -i 0.01 (or -i 0.05 if refused) with nothing else running; keep RTTs."""
    for interval in ("0.01", "0.05"):
        result = nsrun(
            case.h1, "ping", "-n", "-c", str(PING_COUNT), "-i", interval, "-W", "1", H2_ADDR,
            timeout=60, check=False,
        )  # fmt: skip
        rtts = [float(m) for m in re.findall(r"time=([\d.]+) ms", result.stdout)]
        if rtts:
            case.rtts, case.ping_interval, case.ping_sent = rtts, interval, PING_COUNT
            return
    raise BenchError(f"{case.name}: ping failed: {(result.stderr or result.stdout).strip()}")


def offload_state(ns: str, ifname: str) -> dict[str, str]:
    """Return the interesting ``ethtool -k`` features of an interface."""
    if shutil.which("ethtool") is None:
        return {"(ethtool not installed)": "unknown"}
    result = nsrun(ns, "ethtool", "-k", ifname, timeout=10, check=False)
    if result.returncode != 0:
        return {"(ethtool -k failed)": result.stderr.strip() or str(result.returncode)}
    state = {}
    for line in result.stdout.splitlines():
        key, _, value = line.strip().partition(":")
        if key in OFFLOAD_FEATURES:
            state[key] = value.strip()
    return state


# --------------------------------------------------------------------------- report


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def machine() -> list[str]:
    """Describe the machine this ran on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except OSError:
        usable = os.cpu_count() or 0
    versions = []
    for tool in (("iperf3", "--version"), ("ping", "-V")):
        out = run(*tool, timeout=10, check=False)
        first = (out.stdout or out.stderr).strip().splitlines()
        versions.append(first[0] if first else f"{tool[0]} (unknown)")
    try:
        uvloop = importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        uvloop = "not installed"
    commit = run("git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD",
                 timeout=10, check=False).stdout.strip() or "unknown"  # fmt: skip
    dirty = run("git", "-C", str(HERE.parent), "status", "--porcelain", "--", "vrouter",
                timeout=10, check=False).stdout.strip()  # fmt: skip
    if dirty:
        commit += " + uncommitted changes in vrouter/"
    return [
        f"- CPU: {model}, {os.cpu_count()} logical cores ({usable} usable by this process)",
        f"- Kernel: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- Python: {platform.python_version()} ({sys.executable}), uvloop {uvloop}",
        f"- vrouter: {importlib.metadata.version('vrouter')}, git {commit}",
        f"- Tools: {versions[0]}; {versions[1]}",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}",
    ]


def render(cases: list[Case], runs: int, seconds: int, host_lines: list[str]) -> str:
    """Return the markdown report."""
    base = {c.hops: c for c in cases if c.daemon is None}
    rows = [
        "| case | hops | TCP Mbit/s min | median | max | median / kernel "
        "| RTT p50 ms | RTT p99 ms | p50 / kernel | vrouterd CPU s/GB | vrouterd CPU % of a core |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        mbps = [b / 1e6 for b in c.bps]
        med = statistics.median(mbps)
        p50, p99 = percentile(c.rtts, 50), percentile(c.rtts, 99)
        kernel = base[c.hops]
        if c.daemon is None:
            tput_ratio = rtt_ratio = "1 (base)"
            cpu_gb = cpu_pct = "n/a (kernel)"
        else:
            k_med = statistics.median(kernel.bps) / 1e6
            tput_ratio = f"{med / k_med:.3f}"
            rtt_ratio = f"{p50 / percentile(kernel.rtts, 50):.1f}"
            cpu_s = c.cpu_ticks / CLK_TCK
            cpu_gb = f"{cpu_s / (c.bytes_rx / 1e9):.1f}" if c.bytes_rx else "n/a"
            cpu_pct = f"{100 * cpu_s / c.seconds:.0f}%" if c.seconds else "n/a"
        rows.append(
            f"| {c.name} | {c.hops} | {min(mbps):.1f} | {med:.1f} | {max(mbps):.1f} "
            f"| {tput_ratio} | {p50:.3f} | {p99:.3f} | {rtt_ratio} | {cpu_gb} | {cpu_pct} |"
        )
    per_run = ["| case | " + " | ".join(f"run {i + 1}" for i in range(runs)) + " |",
               "|---|" + "---:|" * runs]  # fmt: skip
    for c in cases:
        per_run.append(f"| {c.name} | " + " | ".join(f"{b / 1e6:.1f}" for b in c.bps) + " |")
    pings = []
    for c in cases:
        loss = 100 * (c.ping_sent - len(c.rtts)) / c.ping_sent
        pings.append(
            f"- {c.name}: {len(c.rtts)}/{c.ping_sent} replies ({loss:.0f}% loss), "
            f"interval {c.ping_interval}s, min {min(c.rtts):.3f} / max {max(c.rtts):.3f} ms"
        )
    offload = []
    for c in cases:
        for where, state in c.offload.items():
            text = ", ".join(f"{k} {v}" for k, v in state.items()) or "(no features reported)"
            offload.append(f"- {c.name} `{where}`: {text}")
    return "\n".join(
        [
            "# Forwarding benchmark results",
            "",
            "Generated by `python3 bench/forwarding.py "
            f"--runs {runs} --seconds {seconds}` (see bench/README.md). "
            "Absolute numbers on a shared machine are noise; the ratios are the point.",
            "",
            "## Machine",
            "",
            *host_lines,
            "",
            "## Results",
            "",
            f"iperf3 TCP, 1 stream, h1 -> h2, {runs} runs x {seconds} s per case, receiver "
            "bits_per_second, cases measured round-robin. RTT: "
            f"`ping -c {PING_COUNT}` h1 -> h2 with no other traffic (nearest-rank percentiles). "
            "Ratios compare each vrouterd case with the kernel case of the same hop count "
            "(vrouterd-1vnet / kernel-1hop, vrouterd-2vnet / kernel-2hop): throughput ratio < 1 "
            "and RTT ratio > 1 mean vrouterd is slower. vrouterd CPU = utime+stime of the "
            "daemon process (/proc/PID/stat) summed over its iperf3 runs, per 10^9 bytes "
            "received by iperf3; the kernel's forwarding cost is softirq time not attributable "
            "to a process.",
            "",
            *rows,
            "",
            "### Throughput per run (Mbit/s)",
            "",
            *per_run,
            "",
            "### Ping",
            "",
            *pings,
            "",
            "### Offload state (ethtool -k, nothing was changed)",
            "",
            *offload,
            "",
        ]
    )


# --------------------------------------------------------------------------- main


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt so ``finally`` blocks run."""
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def measure(lab: Lab, runs: int, seconds: int) -> None:
    """Build the topologies and measure every case."""
    lab.build()
    for case in lab.cases:
        wait_reachable(case)
        case.offload[f"{case.h1}/{case.h1_if}"] = offload_state(case.h1, case.h1_if)
        for ns, ifname in case.router_ifs:
            case.offload[f"{ns}/{ifname}"] = offload_state(ns, ifname)
        start_server(case)
    for case in lab.cases:
        print(f"{case.name}: ping", flush=True)
        ping_idle(case)
    for i in range(runs):
        order = lab.cases[i % len(lab.cases) :] + lab.cases[: i % len(lab.cases)]
        for case in order:
            print(f"{case.name}: iperf3 run {i + 1}/{runs}", end="", flush=True)
            iperf_once(case, seconds)
            print(f": {case.bps[-1] / 1e6:.1f} Mbit/s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="iperf3 runs per case (default 3)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per iperf3 run (default 5)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.seconds < 1:
        parser.error("--runs and --seconds must be at least 1")
    if os.geteuid() != 0:
        parser.error("must run as root (creates network namespaces and TAP devices)")
    for tool in ("ip", "iperf3", "ping", "ss", "sysctl"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed")

    prefix = f"b{os.getpid() % 100000:05d}"
    taken = [n for n in netns_list() | root_links() if n.startswith(prefix)]
    if taken:
        print(f"names with prefix {prefix} already exist ({', '.join(taken)}); "
              "not touching them, try again", file=sys.stderr)  # fmt: skip
        return 1

    lab = Lab(prefix)
    report = ""
    status = 0
    left: list[str] = []
    with signals_raise():
        try:
            measure(lab, args.runs, args.seconds)
            report = render(lab.cases, args.runs, args.seconds, machine())
        except KeyboardInterrupt:
            print("\ninterrupted, cleaning up", file=sys.stderr)
            status = 130
        except BenchError as err:
            print(f"\nerror: {err}", file=sys.stderr)
            for case in lab.cases:
                if case.daemon is not None and case.daemon.logtext():
                    print(f"--- {case.name} vrouterd log tail:\n{case.daemon.logtext()}",
                          file=sys.stderr)  # fmt: skip
            status = 1
        finally:
            # No second Ctrl-C half-way through the teardown.
            old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                left = lab.cleanup()
            finally:
                signal.signal(signal.SIGINT, old_int)
    ours = [n for n in netns_list() if n.startswith(prefix)]
    if left or ours:
        print(f"error: left behind: {', '.join(sorted(set(left + ours)))}", file=sys.stderr)
        status = status or 1
    else:
        print(f"clean-up OK: no namespace or link with prefix {prefix} left (ip netns list)")
    if report:
        RESULTS.write_text(report)
        print(f"\n{report}")
        print(f"written to {RESULTS}")
    return status


if __name__ == "__main__":
    sys.exit(main())
