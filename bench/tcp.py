#!/usr/bin/env python3
"""TCP benchmark: vrouterd's own TCP against the Linux kernel's, same run, same machine.

Downloads of one large body with curl, each case made of the same programs:

  vnet-socket     an HTTP server program (``tcp.py serve``) listening on a vnet TCP
                  socket through the client library; curl in a host namespace
                  attached to that vnet by a TAP downloads from it
  kernel-socket   the same program listening on a kernel socket in namespace ks;
                  curl in namespace kc, joined to ks by a veth pair
  vnet-socks      curl --socks5-hostname to the daemon's SOCKS5 gateway into the
                  vnet; the gateway connects from the vnet to ``python3 -m
                  http.server`` in the host namespace
  kernel-socks    the same curl to a Python SOCKS5 relay on kernel sockets
                  (``tcp.py socks``, a thread per direction) in ks, which connects
                  over the veth to the same http.server in kc
  kernel-direct   curl in ks straight to that http.server (no relay): the ceiling

Every download is made ``--runs`` times, cases round-robin (each round starts
one case later) so drift of a shared machine hits every case alike; the
tables give min/median/max and the ratio of the vnet case's median to its
kernel counterpart's. After the measured runs, one extra download per vnet
case under py-spy lists where the daemon spends its time.

Results go to the "tcp" section of bench/RESULTS.md and stdout.

Usage (as root):  .venv/bin/python bench/tcp.py [--runs 3] [--size-mb 200] [--cases a,b]

Everything created (namespaces, the veth, the daemon's TAP and host namespace,
servers, relays) is removed in ``finally`` blocks, also on Ctrl-C, SIGTERM or
failure; the script then checks ``ip netns list`` for leftovers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from forwarding import (
    _BORING,
    CLK_TCK,
    VRD_HEADER,
    BenchError,
    Daemon,
    _frame_name,
    kill_group,
    mmm,
    netns_list,
    nsrun,
    root_links,
    run,
    run_lab,
)
from report import fmt_ratio, loadavg, machine

VNET = "blue"
VNET_ADDR, HOST_ADDR = "198.51.100.1", "198.51.100.2"  # the vnet and its TAP host
KS_ADDR, KC_ADDR = "192.0.2.1", "192.0.2.2"  # the kernel pair: ks (server side), kc
SERVE_PORT = 8080  # the server program
HTTP_PORT = 8081  # python3 -m http.server
RELAY_PORT = 1080  # the kernel SOCKS5 relay, on ks's loopback
BODY = "body.bin"
CASE_NAMES = ("vnet-socket", "kernel-socket", "vnet-socks", "kernel-socks", "kernel-direct")
BASE = {"vnet-socket": "kernel-socket", "vnet-socks": "kernel-socks"}
"""The kernel case each vnet case is compared with."""
CHUNK = 256 * 1024


# --------------------------------------------------------------------------- programs


def serve(args: argparse.Namespace) -> int:
    """``tcp.py serve``: answer every HTTP GET with the body, one connection at a time.

    With ``--control`` it listens on a vnet TCP socket (the client library),
    else on a kernel socket; either way it writes with ``sendfile``.
    """
    body = Path(args.body)
    size = body.stat().st_size
    header = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size
    if args.control:
        from vrouter.client import Client

        listener = Client(args.control).listen(args.vnet, (args.bind, args.port))
    else:
        listener = socket.create_server((args.bind, args.port), backlog=16)
    print("listening", flush=True)
    while True:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as request:
            while request.readline() not in (b"\r\n", b""):
                pass
            conn.sendall(header)
            with body.open("rb") as f:
                conn.sendfile(f)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    try:
        while n := src.recv_into(buf):
            dst.sendall(view[:n])
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _socks_session(client: socket.socket) -> None:
    """One SOCKS5 CONNECT (no authentication; IPv4 or a name), then relay both ways."""
    with client:
        f = client.makefile("rb")
        ver, nmethods = f.read(2)
        f.read(nmethods)
        client.sendall(b"\x05\x00")
        _, cmd, _, atyp = f.read(4)
        if ver != 5 or cmd != 1:
            return
        if atyp == 1:
            host = socket.inet_ntoa(f.read(4))
        elif atyp == 3:
            host = f.read(f.read(1)[0]).decode()
        else:
            client.sendall(b"\x05\x08\x00\x01" + bytes(6))
            return
        port = int.from_bytes(f.read(2), "big")
        try:
            upstream = socket.create_connection((host, port), timeout=10)
        except OSError:
            client.sendall(b"\x05\x05\x00\x01" + bytes(6))
            return
        with upstream:
            upstream.settimeout(None)
            client.sendall(b"\x05\x00\x00\x01" + bytes(6))
            back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            back.start()
            _pump(client, upstream)
            back.join()


def socks(args: argparse.Namespace) -> int:
    """``tcp.py socks``: a SOCKS5 relay on kernel sockets, a thread per direction."""
    listener = socket.create_server((args.bind, args.port), backlog=16)
    print("listening", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_socks_session, args=(conn,), daemon=True).start()


# --------------------------------------------------------------------------- the lab


@dataclass
class Download:
    """One curl download."""

    bytes: int
    seconds: float
    cpu_s: float | None  # daemon utime+stime over the download; None for kernel cases
    tcp: dict[str, int] = field(default_factory=dict)  # the vnet's TCP counters moved
    sys_s: float = 0.0  # of cpu_s, the daemon's time in the kernel (stime)

    @property
    def bps(self) -> float:
        return self.bytes * 8 / self.seconds


@dataclass
class Case:
    """One way of downloading the body."""

    name: str
    ns: str | None  # where curl runs (None: the root namespace)
    url: str
    socks: str | None = None  # host:port for --socks5-hostname
    daemon: Daemon | None = None
    runs: list[Download] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)


def vrd_config(p: str, socks_port: int, sysctl: list[str]) -> str:
    """One host vnet with a TAP to host namespace ``{p}h`` and a SOCKS5 gateway."""
    knobs = "".join(f'"{k}" = {v}\n' for k, _, v in (s.partition("=") for s in sysctl))
    return (
        VRD_HEADER
        + f"""
[[daemon.socks]]
vnet = "{VNET}"
listen = "127.0.0.1:{socks_port}"

[vnets.{VNET}]

[vnets.{VNET}.interfaces.{p}t]
type = "tap"
addresses = ["{VNET_ADDR}/24"]
host = {{ netns = "{p}h", addresses = ["{HOST_ADDR}/24"], gateway = "{VNET_ADDR}" }}
"""
        + (f"\n[vnets.{VNET}.sysctl]\n{knobs}" if knobs else "")
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """Owns every name and process this run creates; ``cleanup`` removes all of them."""

    def __init__(self, prefix: str, size: int, sysctl: list[str]) -> None:
        self.prefix = prefix
        self.workdir = Path(tempfile.mkdtemp(prefix=f"vrouter-bench-{prefix}-"))
        self.body = self.workdir / "www" / BODY
        self.body.parent.mkdir()
        with self.body.open("wb") as f:
            for _ in range(0, size, 1 << 20):
                f.write(os.urandom(1 << 20))
        self.size = self.body.stat().st_size
        self.sysctl = sysctl
        self.procs: list[subprocess.Popen[str]] = []
        self.daemon: Daemon | None = None
        self.cases: list[Case] = []

    def spawn(self, ns: str | None, *cmd: str, wait_for: str = "") -> subprocess.Popen[str]:
        """Start a long-lived process (in ``ns``); wait for ``wait_for`` on its stdout."""
        argv = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, start_new_session=True)  # fmt: skip
        self.procs.append(proc)
        if wait_for:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # the programs print it once they listen
            if wait_for not in line:
                raise BenchError(f"{' '.join(cmd[:4])} did not start (exit {proc.poll()})")
        return proc

    def netns(self, name: str) -> str:
        assert name.startswith(self.prefix) and len(name) <= 15
        run("ip", "netns", "add", name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def build(self, names: list[str]) -> None:
        p = self.prefix
        me = Path(__file__).resolve()
        py = sys.executable
        www = str(self.body.parent)
        if any(n.startswith("kernel") for n in names):
            ks, kc = self.netns(f"{p}ks"), self.netns(f"{p}kc")
            run("ip", "link", "add", f"{p}s", "netns", ks, "type", "veth", "peer", "name",
                f"{p}c", "netns", kc)  # fmt: skip
            for ns, ifname, addr in ((ks, f"{p}s", KS_ADDR), (kc, f"{p}c", KC_ADDR)):
                run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
                run("ip", "-n", ns, "link", "set", ifname, "up")
            self.spawn(ks, py, str(me), "serve", "--bind", KS_ADDR, "--port", str(SERVE_PORT),
                       "--body", str(self.body), wait_for="listening")  # fmt: skip
            self.spawn(ks, py, str(me), "socks", "--bind", "127.0.0.1", "--port",
                       str(RELAY_PORT), wait_for="listening")  # fmt: skip
            self.spawn(kc, py, "-u", "-m", "http.server", str(HTTP_PORT), "--bind", KC_ADDR,
                       "--directory", www)  # fmt: skip
            wait_http(kc, f"http://{KC_ADDR}:{HTTP_PORT}/")
        socks_port = 0
        if any(n.startswith("vnet") for n in names):
            socks_port = _free_port()
            self.daemon = Daemon(self.workdir, "vrouterd", vrd_config(p, socks_port, self.sysctl))
            self.daemon.start()
            host = f"{p}h"
            self.spawn(None, py, str(me), "serve", "--control", self.daemon.socket,
                       "--vnet", VNET, "--bind", "0.0.0.0", "--port", str(SERVE_PORT),
                       "--body", str(self.body), wait_for="listening")  # fmt: skip
            self.spawn(host, py, "-u", "-m", "http.server", str(HTTP_PORT), "--bind",
                       HOST_ADDR, "--directory", www)  # fmt: skip
            wait_http(host, f"http://{HOST_ADDR}:{HTTP_PORT}/")
        url_http = f"/{BODY}"
        known = {
            "vnet-socket": Case("vnet-socket", f"{p}h", f"http://{VNET_ADDR}:{SERVE_PORT}/"),
            "kernel-socket": Case("kernel-socket", f"{p}kc", f"http://{KS_ADDR}:{SERVE_PORT}/"),
            "vnet-socks": Case("vnet-socks", None, f"http://{HOST_ADDR}:{HTTP_PORT}{url_http}"),
            "kernel-socks": Case("kernel-socks", f"{p}ks",
                                 f"http://{KC_ADDR}:{HTTP_PORT}{url_http}",
                                 socks=f"127.0.0.1:{RELAY_PORT}"),
            "kernel-direct": Case("kernel-direct", f"{p}ks",
                                  f"http://{KC_ADDR}:{HTTP_PORT}{url_http}"),
        }  # fmt: skip
        if self.daemon is not None:
            known["vnet-socks"].socks = f"127.0.0.1:{socks_port}"
            known["vnet-socket"].daemon = known["vnet-socks"].daemon = self.daemon
        self.cases = [known[n] for n in names]

    def daemons(self) -> list[tuple[str, Daemon]]:
        """Return the vrouterd of the vnet cases, if it runs."""
        return [("vnet", self.daemon)] if self.daemon is not None else []

    def cleanup(self) -> list[str]:
        """Stop everything, remove everything with our prefix; return what is left."""
        for proc in self.procs:
            kill_group(proc)
        if self.daemon is not None:
            try:
                self.daemon.stop()
            except Exception as err:
                print(f"warning: stopping vrouterd: {err}", file=sys.stderr)
        for name in sorted(n for n in netns_list() if n.startswith(self.prefix)):
            for pid in run("ip", "netns", "pids", name, timeout=10, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            run("ip", "netns", "del", name, timeout=10, check=False)
        for name in sorted(n for n in root_links() if n.startswith(self.prefix)):
            run("ip", "link", "del", name, timeout=10, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)
        left = [n for n in netns_list() if n.startswith(self.prefix)]
        return left + [n for n in root_links() if n.startswith(self.prefix)]


def wait_http(ns: str, url: str, timeout: float = 20) -> None:
    """Poll ``url`` from ``ns`` until it answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = nsrun(ns, "curl", "-s", "-o", "/dev/null", url, timeout=10, check=False)
        if probe.returncode == 0:
            return
        time.sleep(0.2)
    raise BenchError(f"{url} did not answer from {ns} within {timeout}s")


# --------------------------------------------------------------------------- measurement


def tcp_counters(daemon: Daemon) -> dict[str, int]:
    """Return the TCP counters of the daemon's vnet (what ``vrouterctl netstat`` shows)."""
    reply = daemon.call("netstat", vnet=VNET)
    assert isinstance(reply, dict)
    counters: dict[str, int] = reply["tcp"]
    return counters


def download(case: Case, max_time: int) -> Download:
    """One curl download to /dev/null; the daemon's CPU time and the vnet's TCP counters
    are sampled around it."""
    cmd = ["curl", "-sS", "--fail", "--max-time", str(max_time), "-o", "/dev/null",
           "-w", "%{size_download} %{time_total}"]  # fmt: skip
    if case.socks:
        cmd += ["--socks5-hostname", case.socks]
    cmd.append(case.url)
    tcp0 = tcp_counters(case.daemon) if case.daemon is not None else {}
    cpu0 = _cpu(case)
    sys0 = _stime(case)
    if case.ns:
        result = nsrun(case.ns, *cmd, timeout=max_time + 30)
    else:
        result = run(*cmd, timeout=max_time + 30)
    cpu1 = _cpu(case)
    sys1 = _stime(case)
    moved = {}
    if case.daemon is not None:
        moved = {k: v - tcp0.get(k, 0) for k, v in tcp_counters(case.daemon).items()}
    size, took = result.stdout.split()
    cpu = None if cpu0 is None else cpu1 - cpu0  # type: ignore[operator]
    return Download(int(size), float(took), cpu, moved, sys1 - sys0)


def _cpu(case: Case) -> float | None:
    return case.daemon.cpu_ticks() / CLK_TCK if case.daemon is not None else None


def _stime(case: Case) -> float:
    """Return the daemon's system time (stime) in seconds; 0 for kernel cases."""
    if case.daemon is None:
        return 0.0
    stat = Path(f"/proc/{case.daemon.pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[12]) / CLK_TCK


def py_spy() -> str | None:
    """Return py-spy's path: on PATH or beside this interpreter."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def profile(case: Case, max_time: int, workdir: Path, spy: str) -> None:
    """One more download with py-spy sampling the daemon; keep the top functions (and
    py-spy's raw stacks in ``workdir``)."""
    assert case.daemon is not None
    raw = workdir / f"{case.name}.pyspy.txt"
    proc = subprocess.Popen(
        [spy, "record", "--nonblocking", "-r", "250", "-f", "raw", "-o", str(raw),
         "-p", str(case.daemon.pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        done = download(case, max_time)
    finally:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    if not raw.exists():
        case.profile = ["(py-spy wrote nothing)"]
        return
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [_frame_name(f) for f in stack.split(";") if f.strip()]
        if not frames or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for name in set(frames):
            if not _BORING.search(name):
                total[name] = total.get(name, 0) + count
    lines = [
        f"{case.name}: {samples} samples over a {done.bps / 1e6:.0f} Mbit/s download "
        "(with the sampler running).",
        "",
        "| self % | function | | on the stack % | function |",
        "|---:|---|---|---:|---|",
    ]
    top_own = sorted(own.items(), key=lambda kv: -kv[1])[:15]
    top_total = sorted(total.items(), key=lambda kv: -kv[1])[:15]
    for (fo, no), (ft, nt) in zip(top_own, top_total, strict=False):
        lines.append(f"| {100 * no / samples:.1f} | `{fo}` | | {100 * nt / samples:.1f} | `{ft}` |")
    case.profile = lines


def measure(lab: Lab, args: argparse.Namespace) -> None:
    """Download ``--runs`` times per case, round-robin; then profile the vnet cases."""
    cases = lab.cases
    for i in range(args.runs):
        for case in cases[i % len(cases) :] + cases[: i % len(cases)]:
            print(f"run {i + 1}/{args.runs} {case.name:14s}", end="", flush=True)
            got = download(case, args.max_time)
            if got.bytes != lab.size:
                raise BenchError(f"{case.name}: got {got.bytes} of {lab.size} bytes")
            case.runs.append(got)
            cpu = f", daemon CPU {got.cpu_s:.1f} s" if got.cpu_s is not None else ""
            print(f" {got.bps / 1e6:8.0f} Mbit/s in {got.seconds:.1f} s{cpu}", flush=True)
    spy = py_spy()
    for case in cases:
        if case.daemon is not None and args.profile:
            if spy is None:
                case.profile = ["(py-spy not installed)"]
                continue
            print(f"profile (py-spy) {case.name}", flush=True)
            profile(case, args.max_time, Path(args.profile_dir or lab.workdir), spy)


# --------------------------------------------------------------------------- report


def median_bps(case: Case | None) -> float | None:
    return statistics.median(r.bps for r in case.runs) if case and case.runs else None


COUNTERS = (
    ("sndtotal", "segments sent"),
    ("sndsuper", "of them super-segments (TSO)"),
    ("sndacks", "pure ACKs sent"),
    ("rcvtotal", "segments received"),
    ("rcvpack", "with data in order"),
    ("rcvackpack", "ACKs of new data"),
    ("sndrexmitpack", "segments resent"),
)
"""The vnet's TCP counters shown per GB (``vrouterctl netstat``)."""


def counter_rows(lab: Lab) -> list[str]:
    """Return the table of the vnet's TCP counters per GB downloaded, per vnet case."""
    cases = [c for c in lab.cases if c.daemon is not None and c.runs]
    if not cases:
        return []
    rows = [
        "| counter (per GB downloaded) | " + " | ".join(c.name for c in cases) + " |",
        "|---|" + "---:|" * len(cases),
    ]
    for key, text in COUNTERS:
        cells = []
        for c in cases:
            gb = sum(r.bytes for r in c.runs) / 1e9
            cells.append(f"{sum(r.tcp.get(key, 0) for r in c.runs) / gb:,.0f}")
        rows.append(f"| {text} (`{key}`) | " + " | ".join(cells) + " |")
    return ["", "The vnet's TCP over the measured runs (`vrouterctl netstat`):", "", *rows]


def render(lab: Lab, args: argparse.Namespace, load_before: str) -> str:
    by_name = {c.name: c for c in lab.cases}
    rows = [
        "| case | Mbit/s min | median | max | median / kernel | daemon CPU s/GB "
        "| of it in the kernel | daemon CPU % of a core | per run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in lab.cases:
        lo, med, hi = mmm([r.bps / 1e6 for r in c.runs], ".0f")
        base = by_name.get(BASE.get(c.name, ""))
        mine, theirs = median_bps(c), median_bps(base)
        if c.daemon is None:
            ratio = "1 (base)" if c.name in BASE.values() else "-"
            cpu_gb = cpu_sys = cpu_pct = "n/a (kernel)"
        else:
            ratio = fmt_ratio(mine / theirs if mine and theirs else None, 3)
            cpu = sum(r.cpu_s or 0.0 for r in c.runs)
            secs = sum(r.seconds for r in c.runs)
            nbytes = sum(r.bytes for r in c.runs)
            cpu_gb = f"{cpu / (nbytes / 1e9):.2f}"
            cpu_sys = f"{100 * sum(r.sys_s for r in c.runs) / cpu:.0f}%" if cpu else "-"
            cpu_pct = f"{100 * cpu / secs:.0f}%"
        per_run = ", ".join(f"{r.bps / 1e6:.0f}" for r in c.runs)
        rows.append(f"| {c.name} | {lo} | {med} | {hi} | {ratio} | {cpu_gb} | {cpu_sys} "
                    f"| {cpu_pct} | {per_run} |")  # fmt: skip
    profiles: list[str] = []
    for c in lab.cases:
        if c.profile:
            profiles += ["", *c.profile]
    host = machine((("curl", "--version"),))
    return "\n".join([
        "## TCP",
        "",
        f"`.venv/bin/python bench/tcp.py --runs {args.runs} --size-mb {args.size_mb}`"
        + (f" `--cases {','.join(args.cases)}`" if args.cases != list(CASE_NAMES) else "")
        + " (see bench/README.md for the cases).",
        "",
        "### Machine",
        "",
        *host,
        f"- Load average (1/5/15 min) at start: {load_before}; at end: {loadavg()}",
        "",
        f"### Downloads of {lab.size / 1e6:.0f} MB with curl",
        "",
        "Throughput = bytes / curl's `time_total` (connection set-up included). "
        "Ratio = the vnet case's median / the median of its kernel counterpart "
        "(vnet-socket / kernel-socket, vnet-socks / kernel-socks). Daemon CPU = "
        "utime+stime of vrouterd over the runs; in the kernel: its stime share (system calls: "
        "the TAP, the program's socket, and the host's TCP work done in the daemon's context).",
        "",
        *rows,
        *counter_rows(lab),
        "",
        "### Profile of the daemon",
        "",
        "py-spy (`record --nonblocking -r 250 -f raw`) during one extra download per vnet "
        "case, after the measured runs. Self = the function on top of the stack; on the "
        "stack = inclusive.",
        *(profiles or ["", "(not profiled)"]),
        "",
    ])  # fmt: skip


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    p_serve = sub.add_parser("serve", help="(internal) the HTTP server program")
    p_serve.add_argument("--control")
    p_serve.add_argument("--vnet")
    p_serve.add_argument("--bind", required=True)
    p_serve.add_argument("--port", type=int, required=True)
    p_serve.add_argument("--body", required=True)
    p_socks = sub.add_parser("socks", help="(internal) the kernel-socket SOCKS5 relay")
    p_socks.add_argument("--bind", required=True)
    p_socks.add_argument("--port", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3, help="downloads per case (default 3)")
    parser.add_argument("--size-mb", type=int, default=500, help="body size, MB (default 500)")
    parser.add_argument("--max-time", type=int, default=120,
                        help="curl --max-time per download (default 120 s)")  # fmt: skip
    parser.add_argument("--cases", default=",".join(CASE_NAMES),
                        help=f"comma-separated subset of: {', '.join(CASE_NAMES)}")  # fmt: skip
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the py-spy downloads")  # fmt: skip
    parser.add_argument("--profile-dir", help="keep py-spy's raw stacks (CASE.pyspy.txt) here")
    parser.add_argument("--sysctl", action="append", default=[], metavar="KNOB=VALUE",
                        help="set a sysctl of the vnet (repeatable), e.g. "
                             "net.inet.tcp.sendspace=1048576")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "socks":
        return socks(args)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in args.cases if c not in CASE_NAMES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASE_NAMES)}")
    args.cases = [c for c in CASE_NAMES if c in args.cases]
    if args.runs < 1 or args.size_mb < 1 or not args.cases:
        parser.error("--runs and --size-mb must be at least 1, --cases not empty")
    if os.geteuid() != 0:
        parser.error("must run as root (creates network namespaces and TAP devices)")
    for tool in ("ip", "curl"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed")

    def make(prefix: str) -> Lab:
        return Lab(prefix, args.size_mb * 1_000_000, args.sysctl)

    def report(lab: Lab) -> str:
        lab.build(args.cases)
        measure(lab, args)
        return render(lab, args, load_before)

    load_before = loadavg()
    prefix = f"tb{os.getpid() % 100000:05d}x"  # the x ends it: no other run's prefix
    return run_lab("tcp", prefix, make, report, args.no_write)


if __name__ == "__main__":
    sys.exit(main())
