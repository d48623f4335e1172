#!/usr/bin/env python3
"""Forwarding benchmark: vrouterd against the Linux kernel, same run, same machine.

Five topologies carry traffic between two host namespaces h1 (192.0.2.2/24,
gw 192.0.2.1) and h2 (198.51.100.2/24, gw 198.51.100.1):

  kernel-1hop        h1 -veth- [router netns, ip_forward=1] -veth- h2
  kernel-2hop        h1 -veth- [r1] -veth 203.0.113.0/30- [r2] -veth- h2
  vrouterd-1vnet     h1 -TAP- [vrouterd: one vnet] -TAP- h2
  vrouterd-2vnet     h1 -TAP- [vnet red] =epair 203.0.113.0/30= [vnet blue] -TAP- h2
  vrouterd-2vnet-fw  vrouterd-2vnet with a 20-rule stateful firewall on red, default block
  vrouterd-2vnet-fw-nocache  the same with the flow cache off (net.pf.flowcache = 0)
  vrouterd-2vnet-fifo  vrouterd-2vnet with sparse_first = false: every queue in order
                     (only with --cases: what small frames first does to ping)

Measurements, each ``--runs`` times, cases round-robin (run 1 of every case,
then run 2, ..., each round starting one case later) so slow drift of a
shared machine hits every case alike:

  tcp1, tcp4  iperf3 TCP h1 -> h2 with 1 and 4 streams (receiver bits/s)
  udp         a bounded flood of 64-byte frames (18-byte UDP payload) from h1
              (bench/udpflood.c, sendmmsg, built with cc; iperf3 -u -l 18 -b 0
              without a compiler): frames per second arriving at h2's
              interface, and the daemon's CPU seconds per million of them
  ping        ping -c 50 -i 0.01 h1 -> h2, idle and during an iperf3 TCP
              transfer: p50/p99 RTT
  profile     py-spy on the daemon during one extra, unrecorded flood of the
              cases in --profile (if py-spy is installed)

``--steps`` picks a subset of the measurements (e.g. ``udp-64-B`` alone for a
quick look at the per-frame cost); what is not measured shows as empty.

Results go to the "forwarding" section of bench/RESULTS.md and stdout.

Usage (as root):  .venv/bin/python bench/forwarding.py [--runs 3] [--seconds 5] [--cases a,b]

Everything created (namespaces, veths, TAPs via the daemons, daemons, iperf3
servers, UDP sinks) is removed in ``finally`` blocks, also on Ctrl-C, SIGTERM
or failure; the script then checks ``ip netns list`` for leftovers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
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
from typing import Any, Protocol, TypeVar

from report import fmt_ratio, loadavg, machine, write_section

from vrouter.api.client import ControlClient

HERE = Path(__file__).resolve().parent
FLOOD_SOURCE = HERE / "udpflood.c"

H1_ADDR, H1_GW = "192.0.2.2", "192.0.2.1"
H2_ADDR, H2_GW = "198.51.100.2", "198.51.100.1"
H1_ADDR6, H1_GW6 = "2001:db8:1::2", "2001:db8:1::1"
H2_ADDR6, H2_GW6 = "2001:db8:2::2", "2001:db8:2::1"
FLOOD_PAYLOAD6 = 0  # 14 Ethernet + 40 IPv6 + 8 UDP = 62 bytes, 66 with the FCS: the least
IPERF_PORT = 5201
FLOOD_PORT = 5202
FLOOD_PAYLOAD = 18  # 14 Ethernet + 20 IPv4 + 8 UDP + 18 = 60 bytes, 64 with the FCS
PING_COUNT = 50
PING_INTERVAL = "0.01"
LOAD_SECONDS = 4  # iperf3 transfer during the loaded ping; ping starts after LOAD_LEAD
LOAD_LEAD = 1.0
OFFLOAD_FEATURES = (
    "rx-checksumming",
    "tx-checksumming",
    "scatter-gather",
    "tcp-segmentation-offload",
    "generic-segmentation-offload",
    "generic-receive-offload",
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
CASE_NAMES = (
    "kernel-1hop", "kernel-2hop", "vrouterd-1vnet", "vrouterd-2vnet", "vrouterd-2vnet-fw",
    "vrouterd-2vnet-fw-nocache", "vrouterd-2vnet-fifo",
)  # fmt: skip
DEFAULT_CASES = CASE_NAMES[:-1]
"""What runs without --cases (vrouterd-2vnet-fifo only when asked for)."""


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


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """Kill ``proc``'s process group (started with ``start_new_session``) and reap it."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


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


def rx_packets(ns: str, ifname: str) -> int:
    """Return the frames interface ``ifname`` in ``ns`` has received."""
    out = run("ip", "-n", ns, "-s", "-j", "link", "show", "dev", ifname, timeout=10).stdout
    info = json.loads(out)[0]
    stats = info.get("stats64") or info["stats"]
    return int(stats["rx"]["packets"])


# --------------------------------------------------------------------------- results


@dataclass
class TcpRun:
    """One iperf3 TCP run."""

    bps: float
    bytes: int
    seconds: float
    retransmits: int
    cpu_s: float | None  # daemon utime+stime over the run; None for the kernel


@dataclass
class UdpRun:
    """One 64-byte UDP flood."""

    sent: int
    seconds: float
    received: int  # frames counted on h2's interface
    errors: int
    cpu_s: float | None

    @property
    def sent_pps(self) -> float:
        return self.sent / self.seconds

    @property
    def rx_pps(self) -> float:
        return self.received / self.seconds


@dataclass
class PingRun:
    """One ping series."""

    rtts: list[float]
    sent: int
    interval: str
    load_bps: float | None = None  # throughput of the concurrent iperf3 transfer

    @property
    def loss(self) -> float:
        return 100 * (self.sent - len(self.rtts)) / self.sent


# --------------------------------------------------------------------------- topologies


@dataclass
class Case:
    """One topology under test."""

    name: str
    hops: int
    h1: str  # namespace of host h1 (senders, ping source)
    h2: str  # namespace of host h2 (iperf3 server, UDP sink)
    h1_if: str
    h2_if: str
    router_ifs: list[tuple[str, str]] = field(default_factory=list)  # (netns, ifname)
    daemon: Daemon | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    tcp: dict[int, list[TcpRun]] = field(default_factory=lambda: {1: [], 4: []})
    udp: list[UdpRun] = field(default_factory=list)
    ping: dict[str, list[PingRun]] = field(default_factory=lambda: {"idle": [], "load": []})
    offload: dict[str, dict[str, str]] = field(default_factory=dict)
    firewall: dict[str, object] | None = None
    profile: Profile | None = None

    def cpu_s(self) -> float | None:
        """Return the daemon's CPU seconds so far (None for a kernel case)."""
        return self.daemon.cpu_ticks() / CLK_TCK if self.daemon is not None else None


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


class Daemon:
    """A vrouterd process on a generated config in its own work directory."""

    def __init__(self, workdir: Path, name: str, config: str, netns: str | None = None) -> None:
        self.netns = netns
        """The network namespace it runs in (None: ours); entered with nsenter, so it
        shares our mount namespace and the host namespaces it creates are seen."""
        self.dir = workdir / name
        (self.dir / "state").mkdir(parents=True)
        self.config = self.dir / "vrouter.toml"
        self.config.write_text(config.replace("@DIR@", str(self.dir)))
        self.socket = str(self.dir / "control.sock")
        self.log = self.dir / "vrouterd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        """Start the daemon; wait until its control socket answers (hosts are then up)."""
        with self.log.open("ab") as log:
            inside = [] if self.netns is None else ["nsenter", f"--net=/run/netns/{self.netns}"]
            self.proc = subprocess.Popen(
                [*inside, sys.executable, "-m", "vrouter.daemon.main", "-c", str(self.config)],
                stdout=log,
                stderr=log,
                start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"vrouterd exited {self.proc.returncode}:\n{self.logtext()}")
            try:
                self.call("status", timeout=2)
                return
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"vrouterd did not become ready in {timeout}s:\n{self.logtext()}")

    def call(self, op: str, timeout: float = 10, **args: object) -> object:
        """Make one control request."""
        with ControlClient(self.socket, timeout=timeout) as client:
            return client.call(op, **args)

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
control_socket = "@DIR@/control.sock"
state_dir = "@DIR@/state"
log_level = "warning"
"""


@dataclass
class Traffic:
    """What the measurements send to: h2's address of one family (``--family``)."""

    family: int = 4
    daemon_settings: tuple[str, ...] = ()
    """Extra ``[daemon]`` lines of every vrouterd case (``--daemon-setting``)."""

    @property
    def target(self) -> str:
        return H2_ADDR if self.family == 4 else H2_ADDR6

    @property
    def payload(self) -> int:
        return FLOOD_PAYLOAD if self.family == 4 else FLOOD_PAYLOAD6


TRAFFIC = Traffic()
"""Set once by ``main`` before anything is built."""


def vrd_header() -> str:
    """``[daemon]`` of every vrouterd case, with the ``--daemon-setting`` lines."""
    return VRD_HEADER + "".join(f"{line}\n" for line in TRAFFIC.daemon_settings)


def vrd_1vnet(p: str) -> str:
    """Config of vrouterd-1vnet: one vnet holding both TAPs (``p`` = prefix + tag)."""
    return (
        vrd_header()
        + f"""
[vnets.core]
forwarding = true

[vnets.core.interfaces.{p}a]
type = "tap"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
host = {{ netns = "{p}h1", addresses = ["192.0.2.2/24", "2001:db8:1::2/64"], \
gateway = "192.0.2.1", gateway6 = "2001:db8:1::1" }}

[vnets.core.interfaces.{p}b]
type = "tap"
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]
host = {{ netns = "{p}h2", addresses = ["198.51.100.2/24", "2001:db8:2::2/64"], \
gateway = "198.51.100.1", gateway6 = "2001:db8:2::1" }}
"""
    )


def vrd_2vnet(p: str, firewall: str = "") -> str:
    """Config of vrouterd-2vnet (the demo's red/blue), with ``firewall`` TOML on red."""
    return (
        vrd_header()
        + f"""
[vnets.red]
forwarding = true

[vnets.red.interfaces.{p}a]
type = "tap"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
host = {{ netns = "{p}h1", addresses = ["192.0.2.2/24", "2001:db8:1::2/64"], \
gateway = "192.0.2.1", gateway6 = "2001:db8:1::1" }}

[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]

[[vnets.red.routes]]
to = "198.51.100.0/24"
via = "203.0.113.2"

[[vnets.red.routes]]
to = "2001:db8:2::/64"
via = "2001:db8:ff::2"
{firewall}
[vnets.blue]
forwarding = true

[vnets.blue.interfaces.{p}b]
type = "tap"
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]
host = {{ netns = "{p}h2", addresses = ["198.51.100.2/24", "2001:db8:2::2/64"], \
gateway = "198.51.100.1", gateway6 = "2001:db8:2::1" }}

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["203.0.113.2/30", "2001:db8:ff::2/64"]

[[vnets.blue.routes]]
to = "192.0.2.0/24"
via = "203.0.113.1"

[[vnets.blue.routes]]
to = "2001:db8:1::/64"
via = "2001:db8:ff::1"
"""
    )


# (action, extra TOML lines) of the 20 rules on red; TAP stands for h1's TAP.
FW_RULES: list[tuple[str, str]] = [
    ("block", 'direction = "in"\ninterface = "TAP"\nfrom = "<blocked>"\nlabel = "blocked-src"'),
    ("block", 'direction = "in"\ninterface = "TAP"\nfrom = ["!192.0.2.0/24", "!2001:db8:1::/64"]\n'
              'label = "antispoof"'),
    ("block", 'direction = "in"\ninterface = "ep0"\nto = "<blocked>"\nlabel = "blocked-dst"'),
    ("reject", 'direction = "in"\ninterface = "TAP"\nproto = "tcp"\nto_port = 23\n'
               'label = "telnet"'),
    ("block", 'direction = "in"\ninterface = "TAP"\nproto = "tcp"\n'
              'to_port = [135, "137-139", 445]\nlabel = "smb"'),
    ("block", 'direction = "in"\ninterface = "TAP"\nproto = "udp"\n'
              'to_port = ["137-138", "161-162", 1900]\nlabel = "netbios-snmp-ssdp"'),
    ("block", 'proto = "icmp"\nicmp_type = ["redirect", "squench", "timereq"]\n'
              'label = "icmp-junk"'),
    ("pass", 'direction = "in"\ninterface = "TAP"\nproto = "udp"\nfrom = "<lan>"\n'
             'to = "<dns>"\nto_port = 53\nlabel = "dns"'),
    ("pass", 'direction = "in"\ninterface = "TAP"\nproto = "tcp"\nfrom = "<lan>"\n'
             'to = "<dns>"\nto_port = 53\nlabel = "dns-tcp"'),
    ("pass", 'direction = "in"\ninterface = "TAP"\nproto = "tcp"\nfrom = "<mgmt>"\n'
             'to_port = 22\nlabel = "ssh-mgmt"'),
    ("reject", 'direction = "in"\ninterface = "TAP"\nproto = "tcp"\nto_port = 22\n'
               'label = "ssh-others"'),
    ("pass", 'direction = "in"\ninterface = "TAP"\nproto = "tcp"\nfrom = "<lan>"\n'
             'to = "<servers>"\nto_port = [80, 443]\nlabel = "web"'),
    ("pass", 'direction = "in"\ninterface = "TAP"\nproto = "tcp"\nfrom = "<lan>"\n'
             'to = "<servers>"\nto_port = "8000-8099"\nflags = "S/SA"\nlabel = "web-alt"'),
    ("pass", 'direction = "in"\ninterface = "TAP"\nproto = "udp"\nfrom = "<lan>"\n'
             'to_port = 123\nlabel = "ntp"'),
    ("block", 'direction = "in"\ninterface = "TAP"\nproto = "udp"\n'
              'to_port = "33434-33534"\nlabel = "traceroute"'),
    ("pass", 'direction = "in"\ninterface = "TAP"\nproto = "icmp6"\nfrom = "<lan>"\n'
             'icmp_type = "echo-request"\nlabel = "ping6"'),
    ("pass", 'direction = "in"\ninterface = "TAP"\nproto = "icmp"\nfrom = "<lan>"\n'
             'icmp_type = "echo-request"\nlabel = "ping"'),
    ("block", 'direction = "in"\ninterface = "TAP"\nproto = "tcp"\nto_port = "6000-6063"\n'
              'label = "x11"'),
    ("pass", 'direction = "in"\ninterface = "TAP"\nproto = "tcp"\nfrom = "<lan>"\n'
             'to = "<servers>"\nto_port = 5201\nlabel = "iperf3-tcp"'),
    ("pass", 'direction = "in"\ninterface = "TAP"\nproto = "udp"\nfrom = "<lan>"\n'
             'to = "<servers>"\nto_port = "5201-5202"\nlabel = "iperf3-udp"'),
]  # fmt: skip

FW_TABLES = """\
[vnets.red.firewall.tables]
lan = ["192.0.2.0/24", "2001:db8:1::/64"]
servers = ["198.51.100.2", "198.51.100.10", "198.51.100.20", "2001:db8:2::2"]
dns = ["198.51.100.53", "2001:db8:2::53"]
mgmt = ["192.0.2.250", "2001:db8:1::250"]
blocked = ["192.0.2.128/25", "203.0.113.64/26", "2001:db8:dead::/48"]
"""


def vrd_2vnet_fifo(p: str) -> str:
    """Config of vrouterd-2vnet-fifo: vrouterd-2vnet with ``sparse_first = false``."""
    return vrd_2vnet(p).replace("[daemon]\n", "[daemon]\nsparse_first = false\n", 1)


NO_FLOW_CACHE = '\n[vnets.red.sysctl]\n"net.pf.flowcache" = false\n'
"""Red's flow cache off: what every firewalled packet costs without it."""


def firewall_toml(tap: str) -> str:
    """Return red's ``[vnets.red.firewall]``: 20 rules, pass rules keep state, default block."""
    parts = ['\n[vnets.red.firewall]\ndefault = "block"\n', FW_TABLES]
    for action, body in FW_RULES:
        parts.append(
            f'[[vnets.red.firewall.rules]]\naction = "{action}"\n'
            + body.replace('"TAP"', f'"{tap}"')
            + "\n"
        )
    return "\n".join(parts)


class Lab:
    """Owns every name this run creates; ``cleanup`` removes all of them."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.workdir = Path(tempfile.mkdtemp(prefix=f"vrouter-bench-{prefix}-"))
        self.cases: list[Case] = []
        self.flood: Path | None = None  # the compiled UDP sender, if any

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
        """Add an address (IPv6 without DAD: nothing else is on the link)."""
        nodad = ("nodad",) if ":" in cidr else ()
        run("ip", "-n", ns, "addr", "add", cidr, "dev", ifname, *nodad)

    @staticmethod
    def route(ns: str, to: str, via: str) -> None:
        """Add a static route."""
        run("ip", "-n", ns, "route", "add", to, "via", via)

    @staticmethod
    def forwarding(ns: str) -> None:
        """Turn on IPv4 and IPv6 forwarding in a router namespace (and nothing else)."""
        nsrun(ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        nsrun(ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")

    # ---- the cases

    def kernel_1hop(self, tag: str = "k1", name: str = "kernel-1hop") -> Case:
        """h1 -veth- one router namespace -veth- h2, names ``prefix + tag + ...``."""
        p = f"{self.prefix}{tag}"
        h1, r, h2 = self.netns(f"{p}h1"), self.netns(f"{p}r"), self.netns(f"{p}h2")
        self.veth(h1, f"{p}a", r, f"{p}ra")
        self.veth(r, f"{p}rb", h2, f"{p}b")
        self.addr(h1, f"{p}a", "192.0.2.2/24")
        self.addr(r, f"{p}ra", "192.0.2.1/24")
        self.addr(r, f"{p}rb", "198.51.100.1/24")
        self.addr(h2, f"{p}b", "198.51.100.2/24")
        self.addr(h1, f"{p}a", "2001:db8:1::2/64")
        self.addr(r, f"{p}ra", "2001:db8:1::1/64")
        self.addr(r, f"{p}rb", "2001:db8:2::1/64")
        self.addr(h2, f"{p}b", "2001:db8:2::2/64")
        self.route(h1, "default", H1_GW)
        self.route(h2, "default", H2_GW)
        self.route(h1, "default", H1_GW6)
        self.route(h2, "default", H2_GW6)
        self.forwarding(r)
        return Case(name, 1, h1, h2, f"{p}a", f"{p}b",
                    [(r, f"{p}ra"), (r, f"{p}rb")])  # fmt: skip

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
        self.addr(h1, f"{p}a", "2001:db8:1::2/64")
        self.addr(r1, f"{p}ra", "2001:db8:1::1/64")
        self.addr(r1, f"{p}x1", "2001:db8:ff::1/64")
        self.addr(r2, f"{p}x2", "2001:db8:ff::2/64")
        self.addr(r2, f"{p}rb", "2001:db8:2::1/64")
        self.addr(h2, f"{p}b", "2001:db8:2::2/64")
        self.route(h1, "default", H1_GW6)
        self.route(h2, "default", H2_GW6)
        self.route(r1, "2001:db8:2::/64", "2001:db8:ff::2")
        self.route(r2, "2001:db8:1::/64", "2001:db8:ff::1")
        self.forwarding(r1)
        self.forwarding(r2)
        return Case(
            "kernel-2hop", 2, h1, h2, f"{p}a", f"{p}b",
            [(r1, f"{p}ra"), (r1, f"{p}x1"), (r2, f"{p}x2"), (r2, f"{p}rb")],
        )  # fmt: skip

    def vrouterd(self, name: str, hops: int, tag: str, make: Callable[[str], str]) -> Case:
        p = f"{self.prefix}{tag}"
        case = Case(name, hops, f"{p}h1", f"{p}h2", f"{p}a", f"{p}b")
        case.daemon = Daemon(self.workdir, name, make(p))
        self.cases.append(case)  # registered before start: cleanup must see it
        case.daemon.start()
        case.router_ifs = [(case.h2, f"{p}b")]
        return case

    def build(self, names: list[str]) -> None:
        """Create the topologies in ``names``."""
        if "kernel-1hop" in names:
            self.cases.append(self.kernel_1hop())
        if "kernel-2hop" in names:
            self.cases.append(self.kernel_2hop())
        if "vrouterd-1vnet" in names:
            self.vrouterd("vrouterd-1vnet", 1, "v1", vrd_1vnet)
        if "vrouterd-2vnet" in names:
            self.vrouterd("vrouterd-2vnet", 2, "v2", vrd_2vnet)
        if "vrouterd-2vnet-fw" in names:
            self.vrouterd("vrouterd-2vnet-fw", 2, "v3",
                          lambda p: vrd_2vnet(p, firewall_toml(f"{p}a")))  # fmt: skip
        if "vrouterd-2vnet-fw-nocache" in names:
            self.vrouterd(
                "vrouterd-2vnet-fw-nocache", 2, "v4",
                lambda p: vrd_2vnet(p, firewall_toml(f"{p}a") + NO_FLOW_CACHE),
            )  # fmt: skip
        if "vrouterd-2vnet-fifo" in names:
            self.vrouterd("vrouterd-2vnet-fifo", 2, "v5", vrd_2vnet_fifo)

    def build_flood(self) -> Path | None:
        """Compile bench/udpflood.c into the work directory; None without a compiler."""
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            return None
        out = self.workdir / "udpflood"
        run(cc, "-O2", "-o", str(out), str(FLOOD_SOURCE), timeout=120)
        self.flood = out
        return out

    # ---- teardown

    def daemons(self) -> list[tuple[str, Daemon]]:
        """Return each vrouterd once, named by the first case that uses it."""
        seen: dict[int, tuple[str, Daemon]] = {}
        for case in self.cases:
            if case.daemon is not None:
                seen.setdefault(id(case.daemon), (case.name, case.daemon))
        return list(seen.values())

    def cleanup(self) -> list[str]:
        """Remove everything with our prefix; return what could not be removed."""
        for case in self.cases:
            for proc in case.procs:
                kill_group(proc)
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
        probe = nsrun(case.h1, "ping", "-c", "1", "-W", "1", TRAFFIC.target, timeout=5,
                      check=False)  # fmt: skip
        if probe.returncode == 0:
            return
        time.sleep(0.2)
    raise BenchError(f"{case.name}: {TRAFFIC.target} not reachable from h1 within {timeout}s")


def _spawn(case: Case, ns: str, *cmd: str) -> subprocess.Popen[bytes]:
    """Start a long-lived process in ``ns``, owned by ``case`` (killed at clean-up)."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    case.procs.append(proc)
    return proc


def sink() -> str:
    """A UDP port that never reads: the flood is counted on h2's interface, the socket
    only keeps h2 from answering every frame with an ICMP port unreachable."""
    family = "AF_INET" if TRAFFIC.family == 4 else "AF_INET6"
    return (
        "import socket, time\n"
        f"s = socket.socket(socket.{family}, socket.SOCK_DGRAM)\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)\n"
        f"s.bind(('{TRAFFIC.target}', {FLOOD_PORT}))\n"
        "time.sleep(86400)\n"
    )


def start_servers(case: Case, timeout: float = 10) -> None:
    """Start a persistent iperf3 server and a UDP sink in h2; wait until both listen."""
    target = TRAFFIC.target
    server = _spawn(case, case.h2, "iperf3", "-s", "-B", target, "-p", str(IPERF_PORT))
    sink_proc = _spawn(case, case.h2, sys.executable, "-c", sink())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc, what in ((server, "iperf3 server"), (sink_proc, "UDP sink")):
            if proc.poll() is not None:
                raise BenchError(f"{case.name}: {what} exited {proc.returncode}")
        tcp = nsrun(case.h2, "ss", "-ltnH", timeout=5, check=False).stdout
        udp = nsrun(case.h2, "ss", "-lunH", timeout=5, check=False).stdout
        shown = f"[{target}]" if ":" in target else target  # as ss prints it
        if f"{shown}:{IPERF_PORT}" in tcp and f"{shown}:{FLOOD_PORT}" in udp:
            return
        time.sleep(0.1)
    raise BenchError(f"{case.name}: iperf3 server or UDP sink did not listen within {timeout}s")


def iperf(case: Case, seconds: int, *args: str) -> dict:
    """Run one iperf3 client test h1 -> h2 and return its JSON report (retry if busy)."""
    for attempt in range(3):
        result = nsrun(
            case.h1,
            "iperf3", "-c", TRAFFIC.target, "-p", str(IPERF_PORT), "-t", str(seconds), "--json",
            *args,
            timeout=seconds + 60,
            check=False,
        )  # fmt: skip
        try:
            report = json.loads(result.stdout)
        except ValueError as err:
            raise BenchError(
                f"{case.name}: iperf3 printed no JSON: {result.stderr.strip()}"
            ) from err
        error = report.get("error")
        if error and "busy" in error and attempt < 2:
            time.sleep(1)
            continue
        if error or result.returncode != 0:
            raise BenchError(f"{case.name}: iperf3 {' '.join(args)}: {error or result.returncode}")
        return report
    raise AssertionError("unreachable")


def tcp_once(case: Case, streams: int, seconds: int) -> None:
    """One iperf3 TCP run with ``streams`` streams; sample the daemon's CPU time around it."""
    before = case.cpu_s()
    report = iperf(case, seconds, "-P", str(streams))
    after = case.cpu_s()
    received = report["end"]["sum_received"]
    sent = report["end"]["sum_sent"]
    case.tcp[streams].append(
        TcpRun(
            float(received["bits_per_second"]),
            int(received["bytes"]),
            float(received["seconds"]),
            int(sent.get("retransmits", 0)),
            _delta(before, after),
        )
    )


def udp_once(case: Case, seconds: int, flood: Path | None) -> None:
    """Flood h2 with 64-byte frames for ``seconds``; count them on h2's interface."""
    rx0 = rx_packets(case.h2, case.h2_if)
    cpu0 = case.cpu_s()
    if flood is not None:
        result = nsrun(case.h1, str(flood), TRAFFIC.target, str(FLOOD_PORT), str(seconds),
                       str(TRAFFIC.payload), timeout=seconds + 30)  # fmt: skip
        data = json.loads(result.stdout)
        sent, took, errors = int(data["sent"]), float(data["seconds"]), int(data["errors"])
    else:
        report = iperf(case, seconds, "-u", "-l", str(max(TRAFFIC.payload, 1)), "-b", "0")
        total = report["end"].get("sum_sent") or report["end"]["sum"]
        sent, took, errors = int(total["packets"]), float(total["seconds"]), 0
    time.sleep(0.2)  # the last frames queued in the router arrive
    cpu1 = case.cpu_s()
    rx1 = rx_packets(case.h2, case.h2_if)
    case.udp.append(UdpRun(sent, took, rx1 - rx0, errors, _delta(cpu0, cpu1)))
    time.sleep(0.5)  # let queues drain before the next case


def ping_series(case: Case) -> PingRun:
    """ping -c 50 -i 0.01 (or -i 0.05 if refused) h1 -> h2; return the RTTs."""
    for interval in (PING_INTERVAL, "0.05"):
        result = nsrun(
            case.h1, "ping", "-n", "-c", str(PING_COUNT), "-i", interval, "-W", "1", TRAFFIC.target,
            timeout=60, check=False,
        )  # fmt: skip
        rtts = [float(m) for m in re.findall(r"time=([\d.]+) ms", result.stdout)]
        if rtts:
            return PingRun(rtts, PING_COUNT, interval)
        if "sent" in result.stdout and "0 received" in result.stdout:
            return PingRun([], PING_COUNT, interval)  # all lost: no retry at another interval
    raise BenchError(f"{case.name}: ping failed: {(result.stderr or result.stdout).strip()}")


def ping_idle_once(case: Case) -> None:
    """One ping series with nothing else running."""
    case.ping["idle"].append(ping_series(case))


def ping_load_once(case: Case) -> None:
    """One ping series during a 1-stream iperf3 TCP transfer h1 -> h2."""
    cmd = ["ip", "netns", "exec", case.h1, "iperf3", "-c", TRAFFIC.target, "-p", str(IPERF_PORT),
           "-t", str(LOAD_SECONDS), "--json"]  # fmt: skip
    load = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        time.sleep(LOAD_LEAD)
        series = ping_series(case)
        try:
            out, err = load.communicate(timeout=LOAD_SECONDS + 60)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{case.name}: iperf3 load did not finish") from exc
    finally:
        kill_group(load)
    try:
        report = json.loads(out)
        series.load_bps = float(report["end"]["sum_received"]["bits_per_second"])
    except (ValueError, KeyError) as exc:
        raise BenchError(f"{case.name}: iperf3 load failed: {err.strip() or out[-300:]}") from exc
    case.ping["load"].append(series)


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


@dataclass
class Profile:
    """py-spy samples of the daemon during one extra (unrecorded) UDP flood."""

    samples: int
    own: list[tuple[str, int]]  # (function (file), samples where it was on top)
    total: list[tuple[str, int]]  # (function (file), samples where it was on the stack)
    pps: float
    note: str = ""


_BORING = re.compile(r"<frozen runpy>|^<module> |\(runners\.py\)|^run \(__init__\.py\)|^main \(")
"""Frames on every stack (start-up, the loop's entry), left out of "on the stack"."""


def _frame_name(frame: str) -> str:
    """``func (path/file.py:12)`` -> ``func (file.py)``."""
    match = re.match(r"(.*) \((.*?):\d+\)$", frame.strip())
    if not match:
        return frame.strip()
    func, path = match.groups()
    if "/vrouter/" in path:
        path = "vrouter/" + path.rsplit("/vrouter/", 1)[1]
    else:
        path = path.rsplit("/", 1)[-1]
    return f"{func} ({path})"


def profile_udp(case: Case, seconds: int, flood: Path | None, workdir: Path) -> None:
    """Run one more UDP flood with py-spy sampling the daemon; keep the top functions."""
    assert case.daemon is not None
    raw = workdir / f"{case.name}.pyspy.txt"
    spy = subprocess.Popen(
        ["py-spy", "record", "--nonblocking", "-r", "250", "-d", str(seconds), "-f", "raw",
         "-o", str(raw), "-p", str(case.daemon.pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        udp_once(case, seconds, flood)
        run_ = case.udp.pop()  # not one of the measured runs
        try:
            _, err = spy.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{case.name}: py-spy did not finish") from exc
    finally:
        kill_group(spy)
    if not raw.exists():
        case.profile = Profile(0, [], [], run_.rx_pps, f"py-spy failed: {err.strip()[-200:]}")
        return
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        samples += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for name in set(frames):
            if not _BORING.search(name):
                total[name] = total.get(name, 0) + count
    top_own = sorted(own.items(), key=lambda kv: -kv[1])[:15]
    top_total = sorted(total.items(), key=lambda kv: -kv[1])[:15]
    case.profile = Profile(samples, top_own, top_total, run_.rx_pps)


# --------------------------------------------------------------------------- report


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def mmm(values: list[float], fmt: str = ".1f") -> tuple[str, str, str]:
    """Return min, median, max formatted."""
    if not values:
        return ("n/a",) * 3  # type: ignore[return-value]
    return (format(min(values), fmt), format(statistics.median(values), fmt),
            format(max(values), fmt))  # fmt: skip


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def tcp_median(case: Case, streams: int) -> float | None:
    return median_or_none([r.bps for r in case.tcp[streams]])


def udp_median(case: Case) -> float | None:
    return median_or_none([r.rx_pps for r in case.udp])


def ping_p50(case: Case, kind: str) -> float | None:
    return median_or_none([percentile(r.rtts, 50) for r in case.ping[kind] if r.rtts])


def fps_per_cpu(case: Case) -> float | None:
    """Frames delivered to h2 per CPU-second of the daemon over all UDP runs."""
    cpu = sum(r.cpu_s or 0.0 for r in case.udp)
    frames = sum(r.received for r in case.udp)
    return frames / cpu if case.daemon is not None and cpu > 0 else None


class Report:
    """Renders the measured cases as the ``forwarding`` section of RESULTS.md."""

    def __init__(self, cases: list[Case], args: argparse.Namespace, sender: str) -> None:
        self.cases = cases
        self.args = args
        self.sender = sender
        self.kernel = {c.hops: c for c in cases if c.daemon is None}

    def ratio(self, case: Case, value: Callable[[Case], float | None]) -> float | None:
        base = self.kernel.get(case.hops)
        if base is None:
            return None
        mine, theirs = value(case), value(base)
        return None if mine is None or not theirs else mine / theirs

    def ratio_text(self, case: Case, value: Callable[[Case], float | None], digits: int = 2) -> str:
        if case.daemon is None:
            return "1 (base)"
        return fmt_ratio(self.ratio(case, value), digits)

    def summary(self) -> list[str]:
        rows = [
            "| case | hops | TCP 1 stream Gbit/s | / kernel | TCP 4 streams Gbit/s | / kernel "
            "| UDP 64 B kpps at h2 | / kernel | daemon frames per CPU-s "
            "| ping idle p50 ms | / kernel | ping loaded p50 ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in self.cases:
            t1, t4, u = tcp_median(c, 1), tcp_median(c, 4), udp_median(c)
            p_idle, p_load = ping_p50(c, "idle"), ping_p50(c, "load")
            fpc = fps_per_cpu(c)
            rows.append(
                f"| {c.name} | {c.hops} "
                f"| {_num(t1, 1e9, '.2f')} | {self.ratio_text(c, lambda x: tcp_median(x, 1))} "
                f"| {_num(t4, 1e9, '.2f')} | {self.ratio_text(c, lambda x: tcp_median(x, 4))} "
                f"| {_num(u, 1e3, '.0f')} | {self.ratio_text(c, udp_median)} "
                f"| {_num(fpc, 1, ',.0f') if c.daemon else 'n/a (kernel)'} "
                f"| {_num(p_idle, 1, '.3f')} "
                f"| {self.ratio_text(c, lambda x: ping_p50(x, 'idle'), 1)} "
                f"| {_num(p_load, 1, '.3f')} |"
            )
        return rows

    def tcp_table(self) -> list[str]:
        rows = [
            "| case | streams | Mbit/s min | median | max | median / kernel "
            "| retransmits (median) | daemon CPU s/GB | daemon CPU % of a core | per run |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for streams in (1, 4):
            for c in self.cases:
                runs = c.tcp[streams]
                if not runs:
                    continue
                lo, med, hi = mmm([r.bps / 1e6 for r in runs])
                retrans = statistics.median([r.retransmits for r in runs])
                cpu_gb = cpu_pct = "n/a (kernel)"
                if c.daemon is not None:
                    cpu = sum(r.cpu_s or 0.0 for r in runs)
                    nbytes = sum(r.bytes for r in runs)
                    secs = sum(r.seconds for r in runs)
                    cpu_gb = f"{cpu / (nbytes / 1e9):.2f}" if nbytes else "n/a"
                    cpu_pct = f"{100 * cpu / secs:.0f}%" if secs else "n/a"
                per_run = ", ".join(f"{r.bps / 1e6:.0f}" for r in runs)
                rows.append(
                    f"| {c.name} | {streams} | {lo} | {med} | {hi} "
                    f"| {self.ratio_text(c, lambda x, s=streams: tcp_median(x, s))} "
                    f"| {retrans:.0f} | {cpu_gb} | {cpu_pct} | {per_run} |"
                )
        return rows

    def udp_table(self) -> list[str]:
        rows = [
            "| case | sent kpps (h1, median) | received kpps at h2 min | median | max "
            "| median / kernel | delivered % of sent | daemon CPU s per 10^6 frames "
            "| daemon frames per CPU-s | daemon CPU % of a core | per run (kpps) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for c in self.cases:
            if not c.udp:
                continue
            lo, med, hi = mmm([r.rx_pps / 1e3 for r in c.udp], ".0f")
            sent = statistics.median([r.sent_pps / 1e3 for r in c.udp])
            delivered = 100 * sum(r.received for r in c.udp) / max(1, sum(r.sent for r in c.udp))
            per_mpkt = fpc = pct = "n/a (kernel)"
            if c.daemon is not None:
                cpu = sum(r.cpu_s or 0.0 for r in c.udp)
                frames = sum(r.received for r in c.udp)
                secs = sum(r.seconds for r in c.udp)
                per_mpkt = f"{cpu / (frames / 1e6):.2f}" if frames else "n/a"
                fpc = f"{frames / cpu:,.0f}" if cpu else "n/a"
                pct = f"{100 * cpu / secs:.0f}%" if secs else "n/a"
            per_run = ", ".join(f"{r.rx_pps / 1e3:.0f}" for r in c.udp)
            rows.append(
                f"| {c.name} | {sent:.0f} | {lo} | {med} | {hi} "
                f"| {self.ratio_text(c, udp_median)} | {delivered:.0f}% | {per_mpkt} | {fpc} "
                f"| {pct} | {per_run} |"
            )
        return rows

    def ping_table(self) -> list[str]:
        rows = [
            "| case | traffic | p50 ms min | median | max | p99 ms min | median | max "
            "| p50 / kernel | loss | iperf3 during ping, Mbit/s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for kind in ("idle", "load"):
            for c in self.cases:
                series = [r for r in c.ping[kind] if r.rtts]
                if not c.ping[kind]:
                    continue
                p50 = mmm([percentile(r.rtts, 50) for r in series], ".3f")
                p99 = mmm([percentile(r.rtts, 99) for r in series], ".3f")
                loss = statistics.mean(r.loss for r in c.ping[kind])
                load = (
                    ""
                    if kind == "idle"
                    else f"{statistics.median(r.load_bps or 0 for r in c.ping[kind]) / 1e6:.0f}"
                )
                rows.append(
                    f"| {c.name} | {kind} | {' | '.join(p50)} | {' | '.join(p99)} "
                    f"| {self.ratio_text(c, lambda x, k=kind: ping_p50(x, k), 1)} "
                    f"| {loss:.0f}% | {load} |"
                )
        return rows

    def targets(self) -> list[str]:
        by = {c.name: c for c in self.cases}
        rows = ["| target | measured | verdict |", "|---|---:|---|"]

        def ratio_row(label: str, name: str, value: Callable[[Case], float | None],
                      goal: float) -> None:  # fmt: skip
            case = by.get(name)
            got = self.ratio(case, value) if case else None
            rows.append(f"| {label} | {fmt_ratio(got)} | {_verdict(got, goal, True)} |")

        ratio_row(
            "TCP through two vnets (GSO passthrough), 1 stream, >= 0.90 x kernel-2hop",
            "vrouterd-2vnet",
            lambda x: tcp_median(x, 1),
            0.90,
        )
        ratio_row(
            "TCP through two vnets, 4 streams, >= 0.90 x kernel-2hop",
            "vrouterd-2vnet",
            lambda x: tcp_median(x, 4),
            0.90,
        )
        ratio_row(
            "TCP two vnets + 20-rule stateful firewall, 1 stream, >= 0.80 x kernel-2hop",
            "vrouterd-2vnet-fw",
            lambda x: tcp_median(x, 1),
            0.80,
        )
        for streams in (1, 4):
            fw, plain = by.get("vrouterd-2vnet-fw"), by.get("vrouterd-2vnet")
            a = tcp_median(fw, streams) if fw else None
            b = tcp_median(plain, streams) if plain else None
            got = a / b if a and b else None
            rows.append(
                f"| TCP two vnets + firewall, {streams} stream{'s' if streams > 1 else ''}, "
                f">= 0.80 x the same without firewall (vrouterd-2vnet) | {fmt_ratio(got)} "
                f"| {_verdict(got, 0.8, True)} |"
            )
        ratio_row(
            "TCP two vnets + firewall, 4 streams, >= 0.80 x kernel-2hop",
            "vrouterd-2vnet-fw",
            lambda x: tcp_median(x, 4),
            0.80,
        )
        ratio_row(
            "64-byte UDP, one worker, one vnet: >= 0.60 x kernel-1hop frames/s at h2",
            "vrouterd-1vnet",
            udp_median,
            0.60,
        )
        ratio_row(
            "64-byte UDP, two vnets: >= 0.60 x kernel-2hop frames/s at h2",
            "vrouterd-2vnet",
            udp_median,
            0.60,
        )
        for name, goal in (
            ("vrouterd-1vnet", 200_000),
            ("vrouterd-2vnet", 150_000),
            ("vrouterd-2vnet-fw", 120_000),
            ("vrouterd-2vnet-fw-nocache", 120_000),
        ):
            case = by.get(name)
            got = fps_per_cpu(case) if case else None
            rows.append(
                f"| {name}: >= {goal:,} forwarded frames per CPU-second of the daemon "
                f"| {_num(got, 1, ',.0f')} | {_verdict(got, goal, True)} |"
            )
        for name in ("vrouterd-2vnet", "vrouterd-2vnet-fw", "vrouterd-2vnet-fifo"):
            case = by.get(name)
            if case is None and name == "vrouterd-2vnet-fifo":
                continue
            got = ping_p50(case, "idle") if case else None
            rows.append(
                f"| ping RTT through two vnets ({name}), idle, p50 <= 0.2 ms "
                f"| {_num(got, 1, '.3f')} ms | {_verdict(got, 0.2, False)} |"
            )
            got = ping_p50(case, "load") if case else None
            rows.append(
                f"| ping RTT through two vnets ({name}) under a TCP stream, p50 <= 0.5 ms "
                f"| {_num(got, 1, '.3f')} ms | {_verdict(got, 0.5, False)} |"
            )
        rows.append(
            "| 2 workers, 2 independent paths: >= 1.3 x one worker | not measured here "
            "| see `bench/workers.py` (section workers) |"
        )
        return rows

    def firewall_lines(self) -> list[str]:
        lines = []
        for c in self.cases:
            if not c.firewall:
                continue
            rules = c.firewall.get("rules", [])
            assert isinstance(rules, list)
            lines.append(
                f"{c.name}: vnet red, {len(rules) - 1} rules, default "
                f"{c.firewall.get('default')}, {c.firewall.get('states')} states left at the "
                "end. Rules that decided packets over the whole run (states pass the rest):"
            )
            flows = c.firewall.get("flows")
            if isinstance(flows, dict):
                lines[-1] += (
                    f" Flow cache: {flows.get('hits', 0):,} packets passed from it, "
                    f"{flows.get('learned', 0):,} flow directions learned."
                )
            lines.append("")
            lines.append("| # | rule | evaluations | packets | states created |")
            lines.append("|---:|---|---:|---:|---:|")
            for rule in rules:
                if rule["packets"] or rule["states"] or rule["index"] in (18, 19, -1):
                    lines.append(
                        f"| {rule['index'] + 1 if rule['index'] >= 0 else 'default'} "
                        f"| `{rule['text']}` | {rule['evaluations']:,} | {rule['packets']:,} "
                        f"| {rule['states']:,} |"
                    )
        return lines

    def profile_lines(self) -> list[str]:
        lines = []
        for c in self.cases:
            p = c.profile
            if p is None:
                continue
            lines += ["", f"**{c.name}** ({p.samples:,} samples, {p.pps / 1e3:.0f} kpps "
                      "delivered during the profiled flood) " + p.note, ""]  # fmt: skip
            if not p.samples:
                continue
            lines += ["| function (self) | % of samples | function (on the stack) | % |",
                      "|---|---:|---|---:|"]  # fmt: skip
            for i in range(max(len(p.own), len(p.total))):
                own = p.own[i] if i < len(p.own) else ("", 0)
                tot = p.total[i] if i < len(p.total) else ("", 0)
                lines.append(
                    f"| `{own[0]}` | {100 * own[1] / p.samples:.1f} "
                    f"| `{tot[0]}` | {100 * tot[1] / p.samples:.1f} |"
                )
        return lines

    def render(self, host: list[str], load_before: str, load_after: str) -> str:
        a = self.args
        pings = []
        for c in self.cases:
            for kind, series in c.ping.items():
                got = sum(len(r.rtts) for r in series)
                sent = sum(r.sent for r in series)
                if sent:
                    allr = [x for r in series for x in r.rtts]
                    rng = f"min {min(allr):.3f} / max {max(allr):.3f} ms" if allr else "no reply"
                    pings.append(f"- {c.name}, {kind}: {got}/{sent} replies over {len(series)} "
                                 f"series, interval {series[0].interval}s, {rng}")  # fmt: skip
        offload = []
        for c in self.cases:
            for where, state in c.offload.items():
                text = ", ".join(f"{k} {v}" for k, v in state.items()) or "(none reported)"
                offload.append(f"- {c.name} `{where}`: {text}")
        sender = (
            "`bench/udpflood.c` (C, `sendmmsg` in batches of 64, one socket, one core), "
            "chosen because it saturates best: on this machine it sends about twice the "
            "frames per second of `iperf3 -u -l 18 -b 0` (one `send` per datagram)"
            if self.sender == "c"
            else "`iperf3 -u -l 18 -b 0` (no C compiler found for bench/udpflood.c)"
        )
        return "\n".join([
            "## Forwarding" if TRAFFIC.family == 4 else "## Forwarding, IPv6",
            "",
            f"`.venv/bin/python bench/forwarding.py --runs {a.runs} --seconds {a.seconds}"
            + (f" --cases {','.join(a.cases)}" if a.cases != list(CASE_NAMES) else "")
            + (" --family 6" if TRAFFIC.family == 6 else "")
            + "".join(f" --daemon-setting '{x}'" for x in TRAFFIC.daemon_settings)
            + "` (see bench/README.md for what every case and column means)."
            + (
                " IPv6: the same topologies, h1 2001:db8:1::2 to h2 2001:db8:2::2; the "
                "smallest UDP frame is 62 bytes (66 with the FCS, no payload)."
                if TRAFFIC.family == 6
                else ""
            ),
            "",
            "### Machine",
            "",
            *host,
            f"- Load average (1/5/15 min) at start: {load_before}; at end: {load_after} "
            "(other work on the machine shows here)",
            "",
            "### Summary (medians of the runs)",
            "",
            "Ratios compare each vrouterd case with the kernel case of the same hop count "
            "(1 vnet / kernel-1hop, 2 vnets with or without firewall / kernel-2hop): "
            "throughput ratio < 1 and RTT ratio > 1 mean vrouterd is slower.",
            "",
            *self.summary(),
            "",
            "### Targets",
            "",
            *self.targets(),
            "",
            "### TCP (iperf3, h1 -> h2)",
            "",
            f"{a.runs} runs x {a.seconds} s per case and stream count, receiver "
            "bits_per_second. Daemon CPU = utime+stime of the vrouterd process "
            "(/proc/PID/stat, all threads) over the runs, per 10^9 bytes received; the kernel's "
            "forwarding runs in softirq context and is charged to no process.",
            "",
            *self.tcp_table(),
            "",
            "### UDP, 64-byte frames (18-byte payload), h1 -> h2",
            "",
            f"Sender: {sender}; {a.runs} runs x {a.seconds} s per case. Received = frames "
            "counted on h2's interface (`ip -s link`, rx packets) over the run / the sender's "
            "duration: what the router delivered to the far host. The sink in h2 is a UDP "
            "socket that never reads (no reply traffic, no receiver CPU). Daemon CPU seconds "
            "per million frames = the daemon's utime+stime delta over the run / frames "
            "received at h2.",
            "",
            *self.udp_table(),
            "",
            "### Ping RTT h1 -> h2",
            "",
            f"`ping -c {PING_COUNT} -i {PING_INTERVAL}` per series, {a.runs} series per case "
            "idle and under load (a 1-stream iperf3 TCP transfer h1 -> h2 that started "
            f"{LOAD_LEAD:.0f} s earlier); p50/p99 by nearest rank within a series (with 50 "
            "samples p99 is the worst but one), then min/median/max over the series.",
            "",
            *self.ping_table(),
            "",
            *pings,
            "",
            "### Profile of the daemon during the 64-byte flood",
            "",
            "py-spy (`record --nonblocking -r 250 -f raw`) on the daemon during one extra "
            "UDP flood per profiled case, after the measured runs (the sampler takes CPU on "
            "this small machine, so these floods are not in the tables above). Self = the "
            "function on top of the stack; on the stack = inclusive.",
            *(self.profile_lines() or ["", "(no case profiled: py-spy missing or --profile '')"]),
            "",
            "### Firewall (vrouterd-2vnet-fw)",
            "",
            *(self.firewall_lines() or ["(case not run)"]),
            "",
            "### Offload state (ethtool -k, nothing was changed)",
            "",
            *offload,
            "",
        ])  # fmt: skip


def _num(value: float | None, scale: float, fmt: str) -> str:
    return "n/a" if value is None else format(value / scale, fmt)


def _verdict(got: float | None, goal: float, higher_better: bool) -> str:
    if got is None:
        return "not measured"
    if (got >= goal) if higher_better else (got <= goal):
        return f"**met** ({got / goal:.2f} x the target)"
    gap = f"{abs(goal - got):,.0f}" if goal >= 1000 else f"{abs(goal - got):.3g}"
    if higher_better:
        return f"**missed** by {gap} (reaches {100 * got / goal:.0f}% of the target)"
    return f"**missed** by {gap} ({got / goal:.1f} x the limit)"


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


STEPS = ("ping-idle", "tcp-1-stream", "tcp-4-streams", "udp-64-B", "ping-loaded")
"""The measurements of each run, in order (``--steps``)."""


def measure(lab: Lab, args: argparse.Namespace) -> str:
    """Build the topologies, measure every case; return the UDP sender used."""
    flood = None if args.udp_sender == "iperf3" else lab.build_flood()
    if args.udp_sender == "c" and flood is None:
        raise BenchError("--udp-sender c needs a C compiler (cc or gcc)")
    lab.build(args.cases)
    for case in lab.cases:
        wait_reachable(case)
        case.offload[f"{case.h1}/{case.h1_if}"] = offload_state(case.h1, case.h1_if)
        for ns, ifname in case.router_ifs:
            case.offload[f"{ns}/{ifname}"] = offload_state(ns, ifname)
        start_servers(case)
    seconds = args.seconds
    steps: list[tuple[str, Callable[[Case], None]]] = [
        ("ping idle", ping_idle_once),
        ("tcp 1 stream", lambda c: tcp_once(c, 1, seconds)),
        ("tcp 4 streams", lambda c: tcp_once(c, 4, seconds)),
        ("udp 64 B", lambda c: udp_once(c, seconds, flood)),
        ("ping loaded", ping_load_once),
    ]
    steps = [(label, step) for label, step in steps if label.replace(" ", "-") in args.steps]
    for i in range(args.runs):
        order = lab.cases[i % len(lab.cases) :] + lab.cases[: i % len(lab.cases)]
        for label, step in steps:
            for case in order:
                print(f"run {i + 1}/{args.runs} {label:13s} {case.name:18s}", end="", flush=True)
                step(case)
                print(f" {_progress(case, label)}", flush=True)
    if shutil.which("py-spy") is not None:
        for case in lab.cases:
            if case.name in args.profile and case.daemon is not None:
                print(f"profile (py-spy) udp 64 B {case.name}", flush=True)
                profile_udp(case, seconds, flood, lab.workdir)
    elif args.profile:
        print("py-spy not installed: no profile", file=sys.stderr)
    for case in lab.cases:
        if case.name == "vrouterd-2vnet-fw" and case.daemon is not None:
            shown = case.daemon.call("firewall.show", vnet="red")
            assert isinstance(shown, dict)
            case.firewall = shown
    return "c" if flood is not None else "iperf3"


def _progress(case: Case, label: str) -> str:
    if label.startswith("tcp"):
        r = case.tcp[1 if "1" in label else 4][-1]
        return f"{r.bps / 1e6:.0f} Mbit/s, {r.retransmits} retransmits"
    if label.startswith("udp"):
        u = case.udp[-1]
        return f"sent {u.sent_pps / 1e3:.0f} kpps, received {u.rx_pps / 1e3:.0f} kpps"
    p = case.ping["idle" if "idle" in label else "load"][-1]
    if not p.rtts:
        return "all lost"
    return f"p50 {percentile(p.rtts, 50):.3f} ms, p99 {percentile(p.rtts, 99):.3f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = lab_parser(__doc__, CASE_NAMES, "iperf3/UDP run", DEFAULT_CASES)
    parser.add_argument("--udp-sender", choices=("auto", "c", "iperf3"), default="auto",
                        help="64-byte sender: bench/udpflood.c (needs cc) or iperf3 -u; "
                             "auto = C if a compiler exists")  # fmt: skip
    parser.add_argument("--profile", default="vrouterd-1vnet,vrouterd-2vnet-fw",
                        help="vrouterd cases to profile with py-spy during an extra UDP flood "
                             "('' for none)")  # fmt: skip
    parser.add_argument("--family", type=int, choices=(4, 6), default=4,
                        help="the address family measured (default 4; 6 writes the section "
                             "forwarding6)")  # fmt: skip
    parser.add_argument("--steps", default=",".join(STEPS),
                        help="comma-separated subset of the measurements: "
                             f"{', '.join(STEPS)} (default all)")  # fmt: skip
    parser.add_argument("--daemon-setting", action="append", default=[], metavar="LINE",
                        help="a [daemon] line for every vrouterd case, e.g. "
                             "'tap_txqueuelen = 64' (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    args.profile = [c.strip() for c in args.profile.split(",") if c.strip()]
    args.steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    if not args.steps or any(s not in STEPS for s in args.steps):
        parser.error(f"--steps: a comma-separated subset of {', '.join(STEPS)}")
    check_args(parser, args, CASE_NAMES)
    TRAFFIC.family = args.family
    TRAFFIC.daemon_settings = tuple(args.daemon_setting)

    def render(lab: Lab) -> str:
        sender = measure(lab, args)
        host = machine((("iperf3", "--version"), ("ping", "-V"), ("cc", "--version")))
        return Report(lab.cases, args, sender).render(host, load_before, loadavg())

    load_before = loadavg()
    section = "forwarding" if args.family == 4 else "forwarding6"
    return run_lab(section, f"b{os.getpid() % 100000:05d}", Lab, render, args.no_write)


def lab_parser(
    doc: str, cases: tuple[str, ...], seconds: str, default: tuple[str, ...] | None = None
) -> argparse.ArgumentParser:
    """Return a bench script's parser with the options every lab shares: ``--runs``,
    ``--seconds`` (``seconds`` says what they time), ``--cases`` (``default``: the cases
    run without it, all if None) and ``--no-write``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--seconds", type=int, default=5, help=f"seconds per {seconds} (default 5)")
    parser.add_argument("--cases", default=",".join(cases if default is None else default),
                        help=f"comma-separated subset of: {', '.join(cases)}")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    return parser


def check_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace, known: tuple[str, ...]
) -> None:
    """Check ``--runs``, ``--seconds`` and ``--cases`` (kept in ``known``'s order), root, tools."""
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in args.cases if c not in known]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(known)}")
    args.cases = [c for c in known if c in args.cases]  # fixed order
    if args.runs < 1 or args.seconds < 1 or not args.cases:
        parser.error("--runs and --seconds must be at least 1, --cases not empty")
    if os.geteuid() != 0:
        parser.error("must run as root (creates network namespaces and TAP devices)")
    for tool in ("ip", "iperf3", "ping", "ss", "sysctl"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed")


class Bench(Protocol):
    """What :func:`run_lab` needs of a benchmark's lab."""

    def cleanup(self) -> list[str]:
        """Remove everything the lab made; return what could not be removed."""
        ...

    def daemons(self) -> list[tuple[str, Daemon]]:
        """Return the vrouterd processes (by case name) whose logs explain a failure."""
        ...


LabT = TypeVar("LabT", bound=Bench)


def run_lab(
    section: str,
    prefix: str,
    make: Callable[[str], LabT],
    render: Callable[[LabT], str],
    no_write: bool,
) -> int:
    """``make`` a lab with names starting with ``prefix``, ``render`` the report from it,
    always clean up, and write the report into RESULTS.md's ``section``; return the exit
    status."""
    taken = [n for n in netns_list() | root_links() if n.startswith(prefix)]
    if taken:
        print(f"names with prefix {prefix} already exist ({', '.join(taken)}); "
              "not touching them, try again", file=sys.stderr)  # fmt: skip
        return 1

    lab: LabT | None = None
    report = ""
    status = 0
    left: list[str] = []
    started = time.monotonic()
    with signals_raise():
        try:
            lab = make(prefix)
            report = render(lab)
        except KeyboardInterrupt:
            print("\ninterrupted, cleaning up", file=sys.stderr)
            status = 130
        except BenchError as err:
            print(f"\nerror: {err}", file=sys.stderr)
            for name, daemon in lab.daemons() if lab is not None else []:
                if daemon.logtext():
                    print(f"--- {name} vrouterd log tail:\n{daemon.logtext()}", file=sys.stderr)
            status = 1
        finally:
            # No second Ctrl-C half-way through the teardown.
            old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                if lab is not None:
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
        print(f"\n{report}")
        print(f"took {time.monotonic() - started:.0f} s")
        if not no_write:
            write_section(section, report)
            print(f"written to bench/RESULTS.md (section {section})")
    return status


if __name__ == "__main__":
    sys.exit(main())
