#!/usr/bin/env python3
"""VXLAN benchmark: TCP through a vnet's VXLAN overlay against kernel-to-kernel VXLAN.

Two hosts on one overlay subnet (h1 198.51.100.3/24, h2 198.51.100.2/24),
VNI 42, UDP port 4789, over a veth underlay 203.0.113.0/24.  Both cases are
up at once:

  kernel-vxlan    h1 [Linux bridge + vxlan] -veth underlay- [Linux vxlan + bridge] h2
  vrouterd-vxlan  h1 -TAP- [vrouterd in its own netns: bridge over the TAP and a
                  vxlan interface] -veth underlay- [Linux vxlan + bridge] h2
  vrouterd-vxlan-nooffload   the same, the TAP without offloads
  vrouterd-vxlan-tunnelgso   the same with tunnel_gso = true (TCP super-frames
                  leave whole through a TAP with UDP-tunnel GSO, Linux 6.17+, and
                  arrive whole through it, redirected from the underlay veth)
  kernel-vxlan6, vrouterd-vxlan6, vrouterd-vxlan6-tunnelgso   kernel-vxlan,
                  vrouterd-vxlan and vrouterd-vxlan-tunnelgso over an IPv6 underlay
                  (2001:db8:203::/64; overlay MTU 1430), compared with kernel-vxlan6

The daemon runs in a network namespace of its own (its VTEP address is on
the underlay veth there, with GRO turned on as a NIC has it).  On the Linux
VTEP facing the daemon, tx checksum offload of the underlay veth is off:
otherwise the kernel leaves the inner checksums for a NIC to finish and the
daemon's UDP socket receives them unfinished (see the README's VXLAN
section).  The kernel-to-kernel case and the tunnel_gso cases keep the veth
defaults: with tunnel_gso the daemon receives the Linux VTEP's super-frames
through its TAP, whose header says which inner checksums are partial.

Measurements, each ``--runs`` times, cases round-robin (each round starting
one case later):

  tcp    iperf3 -P 1 h1 -> h2: the receiver's bits/s, the daemon's CPU seconds
  tcp-r  iperf3 -P 1 -R (h2 -> h1)

The report gives min/median/max and the ratio vrouterd-vxlan / kernel-vxlan
of the medians against the target of 0.5, and writes the "vxlan" section of
bench/RESULTS.md.

Usage (as root):  .venv/bin/python bench/vxlan.py [--runs 3] [--seconds 5] [--no-write]

Everything created (namespaces, veths, TAPs via the daemon, the daemon,
iperf3 servers) is removed in ``finally`` blocks, also on Ctrl-C, SIGTERM
or failure; the script then checks for leftovers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time

from forwarding import (
    H2_ADDR,
    VRD_HEADER,
    Case,
    Daemon,
    Lab,
    TcpRun,
    check_args,
    iperf,
    lab_parser,
    mmm,
    nsrun,
    run,
    run_lab,
    start_servers,
    tcp_once,
    wait_reachable,
)
from report import fmt_ratio, kept_by_hand, loadavg, machine

CASE_NAMES = (
    "kernel-vxlan", "vrouterd-vxlan", "vrouterd-vxlan-nooffload", "vrouterd-vxlan-tunnelgso",
    "kernel-vxlan6", "vrouterd-vxlan6", "vrouterd-vxlan6-tunnelgso",
)  # fmt: skip
TARGET = 0.5
LEVERS = "### Levers (kept by hand)"
"""The heading of the part of the section a run keeps: what each change did, with numbers."""
"""vrouterd-vxlan TCP bits/s over kernel-vxlan TCP bits/s that the project aims for."""
H1_ADDR = "198.51.100.3"
VNI = 42
UNDERLAY_A, UNDERLAY_B = "203.0.113.1", "203.0.113.2"
UNDERLAY6_A, UNDERLAY6_B = "2001:db8:203::1", "2001:db8:203::2"
MTU, MTU6 = 1450, 1430
"""The overlay's MTU over an IPv4 underlay (50 bytes of headers) and over IPv6 (70)."""


def baseline(name: str) -> str:
    """Return the kernel-to-kernel case that case ``name`` is compared with."""
    return "kernel-vxlan6" if "vxlan6" in name else "kernel-vxlan"


def underlay(ipv6: bool) -> tuple[str, str, int]:
    """Return the two VTEP addresses and the prefix length of an underlay."""
    return (UNDERLAY6_A, UNDERLAY6_B, 64) if ipv6 else (UNDERLAY_A, UNDERLAY_B, 24)


def vrd_vxlan(
    p: str, offload: bool = True, tunnel_gso: bool = False, ipv6: bool = False
) -> str:
    """Config of vrouterd-vxlan: a bridge over the TAP to h1 and a vxlan to h2's VTEP."""
    offload = "true" if offload else "false"
    tunnel = "true" if tunnel_gso else "false"
    local, remote, _ = underlay(ipv6)
    mtu = MTU6 if ipv6 else MTU
    return VRD_HEADER + f"""
[vnets.lab.interfaces.{p}a]
type = "tap"
mtu = {mtu}
offload = {offload}
host = {{ netns = "{p}h1", addresses = ["{H1_ADDR}/24"] }}

[vnets.lab.interfaces.vx{VNI}]
type = "vxlan"
vni = {VNI}
local = "{local}"
remotes = ["{remote}"]
tunnel_gso = {tunnel}

[vnets.lab.interfaces.br0]
type = "bridge"
members = ["{p}a", "vx{VNI}"]
mtu = {mtu}
"""


def linux_vtep(ns: str, underlay: str, local: str, remote: str, address: str) -> None:
    """Give ``ns`` a vxlan device to ``remote`` in a bridge holding ``address``/24."""
    for cmd in (
        ("link", "add", "vx", "type", "vxlan", "id", str(VNI), "dstport", "4789",
         "remote", remote, "local", local, "dev", underlay),
        ("link", "add", "ovl", "type", "bridge"),
        ("link", "set", "vx", "master", "ovl"),
        ("link", "set", "vx", "up"),
        ("addr", "add", f"{address}/24", "dev", "ovl"),
        ("link", "set", "ovl", "up"),
    ):  # fmt: skip
        run("ip", "-n", ns, *cmd)


class VxlanLab(Lab):
    """The two overlays of this benchmark."""

    def kernel_vxlan(self, name: str, tag: str, ipv6: bool = False) -> Case:
        """Two namespaces, each a Linux VTEP with its host address on its bridge."""
        p = f"{self.prefix}{tag}"
        local, remote, plen = underlay(ipv6)
        h1, h2 = self.netns(f"{p}h1"), self.netns(f"{p}h2")
        self.veth(h1, f"{p}a", h2, f"{p}b")
        self.addr(h1, f"{p}a", f"{local}/{plen}")
        self.addr(h2, f"{p}b", f"{remote}/{plen}")
        linux_vtep(h1, f"{p}a", local, remote, H1_ADDR)
        linux_vtep(h2, f"{p}b", remote, local, H2_ADDR)
        case = Case(name, 0, h1, h2, "ovl", "ovl", [(h1, f"{p}a"), (h2, f"{p}b")])
        self.cases.append(case)
        return case

    def vrouterd_vxlan(
        self, name: str, tag: str, offload: bool, tunnel_gso: bool = False, ipv6: bool = False
    ) -> Case:
        """The daemon in namespace ``d`` with a TAP host h1; a Linux VTEP h2."""
        p = f"{self.prefix}{tag}"
        local, remote, plen = underlay(ipv6)
        d, h2 = self.netns(f"{p}d"), self.netns(f"{p}h2")
        self.veth(d, f"{p}u", h2, f"{p}b")
        self.addr(d, f"{p}u", f"{local}/{plen}")
        self.addr(h2, f"{p}b", f"{remote}/{plen}")
        if not tunnel_gso:
            nsrun(h2, "ethtool", "-K", f"{p}b", "tx", "off")
        # A veth does no GRO unless asked (a NIC does by default): without it the
        # daemon's UDP_GRO socket gets its datagrams one by one.
        nsrun(d, "ethtool", "-K", f"{p}u", "gro", "on")
        linux_vtep(h2, f"{p}b", remote, local, H2_ADDR)
        case = Case(name, 0, f"{p}h1", h2, f"{p}a", "ovl", [(d, f"{p}u")])
        config = vrd_vxlan(p, offload, tunnel_gso, ipv6)
        case.daemon = Daemon(self.workdir, case.name, config, netns=d)
        self.cases.append(case)  # registered before start: cleanup must see it
        case.daemon.start()
        return case


def reverse_once(case: Case, seconds: int, runs: dict[str, list[TcpRun]]) -> None:
    """One iperf3 -R run (h2 sends to h1); the receiver's bits/s."""
    before = case.cpu_s()
    report = iperf(case, seconds, "-R")
    after = case.cpu_s()
    received, sent = report["end"]["sum_received"], report["end"]["sum_sent"]
    cpu = None if before is None or after is None else after - before
    runs.setdefault(case.name, []).append(
        TcpRun(
            float(received["bits_per_second"]),
            int(received["bytes"]),
            float(received["seconds"]),
            int(sent.get("retransmits", 0)),
            cpu,
        )
    )


def measure(
    lab: VxlanLab, args: argparse.Namespace
) -> tuple[list[Case], dict[str, list[TcpRun]], dict[str, object]]:
    """Build the cases, run every measurement ``--runs`` times, round-robin."""
    cases: list[Case] = []
    if "kernel-vxlan" in args.cases:
        cases.append(lab.kernel_vxlan("kernel-vxlan", "kx"))
    if "vrouterd-vxlan" in args.cases:
        cases.append(lab.vrouterd_vxlan("vrouterd-vxlan", "vx", True))
    if "vrouterd-vxlan-nooffload" in args.cases:
        cases.append(lab.vrouterd_vxlan("vrouterd-vxlan-nooffload", "vn", False))
    if "vrouterd-vxlan-tunnelgso" in args.cases:
        cases.append(lab.vrouterd_vxlan("vrouterd-vxlan-tunnelgso", "vt", True, True))
    if "kernel-vxlan6" in args.cases:
        cases.append(lab.kernel_vxlan("kernel-vxlan6", "k6", ipv6=True))
    if "vrouterd-vxlan6" in args.cases:
        cases.append(lab.vrouterd_vxlan("vrouterd-vxlan6", "v6", True, ipv6=True))
    if "vrouterd-vxlan6-tunnelgso" in args.cases:
        cases.append(lab.vrouterd_vxlan("vrouterd-vxlan6-tunnelgso", "t6", True, True, True))
    for case in cases:
        wait_reachable(case)
        start_servers(case)
    reverse: dict[str, list[TcpRun]] = {}
    for round_ in range(args.runs):
        order = cases[round_ % len(cases) :] + cases[: round_ % len(cases)]
        for case in order:
            print(f"round {round_ + 1}/{args.runs}: {case.name} tcp", file=sys.stderr)
            tcp_once(case, 1, args.seconds)
            print(f"round {round_ + 1}/{args.runs}: {case.name} tcp -R", file=sys.stderr)
            reverse_once(case, args.seconds, reverse)
            time.sleep(0.5)
    shown: dict[str, object] = {}
    for case in cases:
        if case.daemon is not None:
            (vx,) = case.daemon.call("vxlan.show", vnet="lab")  # type: ignore[misc]
            stats = vx["stats"]
            shown[case.name] = (
                f"drops {vx['drops'] or 'none'}, batched reads {stats['batches']}, "
                f"segments coalesced {stats['coalesced']}, small datagrams sent "
                f"{stats.get('small_datagrams', '-')} in {stats.get('small_sends', '-')} sends"
                + (f", tunnel_gso {vx['tunnel_gso']}, super-frames sent whole "
                   f"{stats['whole']}, received whole {stats.get('received_whole', '-')} "
                   f"(frames through the TAP {stats.get('received_tunnel', '-')}, redirected "
                   f"from {vx.get('tunnel_receive') or '-'})" if vx.get("tunnel_gso") else "")
            )  # fmt: skip
    return cases, reverse, shown


class Report:
    """Renders the ``vxlan`` section of RESULTS.md."""

    def __init__(
        self,
        cases: list[Case],
        reverse: dict[str, list[TcpRun]],
        shown: dict[str, object],
        args: argparse.Namespace,
    ) -> None:
        self.cases = {case.name: case for case in cases}
        self.reverse = reverse
        self.shown = shown
        self.args = args

    def table(self, title: str, runs: dict[str, list[TcpRun]]) -> list[str]:
        rows = [
            f"| case | {title} Mbit/s (min / median / max) | retransmits (median) "
            "| daemon CPU s per GB (median) |",
            "|---|---|---|---|",
        ]
        rates: dict[str, list[float]] = {}
        for name, tcp in runs.items():
            bps = [t.bps for t in tcp]
            rates[name] = bps
            lo, mid, hi = mmm([b / 1e6 for b in bps], ".0f")
            retrans = statistics.median(t.retransmits for t in tcp) if tcp else 0
            per_gb = [t.cpu_s / (t.bytes / 1e9) for t in tcp if t.cpu_s and t.bytes]
            cpu = f"{statistics.median(per_gb):.2f}" if per_gb else "-"
            rows.append(f"| {name} | {lo} / {mid} / {hi} | {retrans:.0f} | {cpu} |")
        lines = [*rows, ""]
        for name in CASE_NAMES:
            ours, base = rates.get(name), baseline(name)
            kernel = rates.get(base)
            if name == base or not kernel or not ours or statistics.median(kernel) <= 0:
                continue
            ratio = statistics.median(ours) / statistics.median(kernel)
            rounds = [o / k for o, k in zip(ours, kernel, strict=False) if k > 0]
            verdict = "met" if ratio >= TARGET else "not met"
            per_round = ", ".join(f"{r:.2f}" for r in rounds) or "n/a"
            lines.append(
                f"**{name} / {base}, {title}: {fmt_ratio(ratio)}** (median over "
                f"median; per round: {per_round}). Target >= {TARGET}: {verdict}."
            )
            lines.append("")
        return lines

    def render(self, host: list[str], load_before: str, load_after: str) -> str:
        a = self.args
        forward = {name: case.tcp[1] for name, case in self.cases.items()}
        drops = "; ".join(f"{name}: {d}" for name, d in self.shown.items()) or "n/a"
        return "\n".join([
            "## VXLAN: TCP through a vnet's overlay against kernel-to-kernel VXLAN",
            "",
            f"`.venv/bin/python bench/vxlan.py --runs {a.runs} --seconds {a.seconds}`: "
            "h1 and h2 on one overlay subnet, VNI 42 over a veth underlay. kernel-vxlan: both "
            "ends Linux vxlan devices in bridges. vrouterd-vxlan: h1 on a TAP (default "
            "offloads, MTU 1450) bridged in a vnet with a vxlan interface (host UDP socket "
            "with UDP_GRO, super-frames segmented and sent with UDP_SEGMENT); h2 a Linux "
            "vxlan (its underlay veth with tx checksum offload off). vrouterd-vxlan-nooffload: "
            "the same with offload = false on the TAP (h1's kernel segments and checksums "
            "what it sends). vrouterd-vxlan-tunnelgso: the same as vrouterd-vxlan with "
            "tunnel_gso = true (TCP super-frames written whole to a TAP with UDP-tunnel GSO, "
            "the kernel segments them; h2's veth keeps tx checksum offload, and its tunnel "
            "super-frames are redirected whole from the underlay veth to that TAP by a tc "
            "filter). kernel-vxlan6, "
            "vrouterd-vxlan6 and vrouterd-vxlan6-tunnelgso: the same over an IPv6 underlay "
            "(overlay MTU 1430), each compared with kernel-vxlan6. Runs round-robin.",
            "",
            *host,
            f"- load average before / after: {load_before} / {load_after}",
            f"- the daemons' vxlan interfaces at the end: {drops}",
            "",
            "### TCP, iperf3 1 stream h1 -> h2 (the daemon encapsulates)",
            "",
            *self.table("h1 -> h2", forward),
            "",
            "### TCP, iperf3 1 stream h2 -> h1 (-R: the daemon decapsulates)",
            "",
            *self.table("h2 -> h1", self.reverse),
            "",
            *kept_by_hand("vxlan", LEVERS),
        ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = lab_parser(__doc__, CASE_NAMES, "iperf3 run")
    args = parser.parse_args(argv)
    check_args(parser, args, CASE_NAMES)
    for tool in ("ethtool", "nsenter"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed")

    def render(lab: VxlanLab) -> str:
        cases, reverse, shown = measure(lab, args)
        host = machine((("iperf3", "--version"),))
        return Report(cases, reverse, shown, args).render(host, load_before, loadavg())

    load_before = loadavg()
    return run_lab("vxlan", f"x{os.getpid() % 100000:05d}", VxlanLab, render, args.no_write)


if __name__ == "__main__":
    sys.exit(main())
