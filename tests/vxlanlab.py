"""A Linux VTEP for the VXLAN tests: vx42 in a Linux bridge, and what its underlay carries."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from harness import Vrouterd, run, wait_listening

LINUX_HOST = "192.0.2.20"
"""The Linux bridge's address on the overlay."""

UNDERLAY_CONFIG = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}"
log_level = "info"

[vnets.core.interfaces.{p}u]
type = "tap"
addresses = ["198.51.100.1/24"]
host = {{ netns = "{p}lx", addresses = ["198.51.100.2/24"] }}

[vnets.lab.interfaces.{p}1]
type = "tap"
mtu = 1450
host = {{ netns = "{p}h1", addresses = ["192.0.2.11/24"] }}

[vnets.lab.interfaces.vx42]
type = "vxlan"
vni = 42
local = "198.51.100.1"
remotes = ["198.51.100.2"]
underlay = "core"

[vnets.lab.interfaces.br0]
type = "bridge"
members = ["{p}1", "vx42"]
mtu = 1450
addresses = ["192.0.2.1/24"]
"""
"""Vnet ``core`` has a TAP to namespace ``PREFIXlx`` (198.51.100.0/24, for
:func:`linux_vtep`); vnet ``lab`` bridges host ``h1`` (192.0.2.11) with vx42, whose
underlay is ``core``."""


def linux_vtep(
    ns: str,
    dev: str,
    local: str,
    peer: tuple[str, ...],
    mac: str | None = None,
    tx_csum: bool = False,
) -> None:
    """Add vx42 (VTEP ``local`` on ``dev``, sending to ``peer``: ``remote ADDR`` or
    ``group ADDR``) in a Linux bridge br0 (of MAC ``mac``; None: the kernel's) holding
    :data:`LINUX_HOST` to namespace ``ns``.  With ``tx_csum`` the underlay device keeps
    tx checksum offload: TCP super-frames leave it whole, their inner checksums partial."""
    for cmd in (
        ("link", "add", "vx42", "type", "vxlan", "id", "42", "dstport", "4789",
         *peer, "local", local, "dev", dev),
        ("link", "add", "br0", *(("address", mac) if mac else ()), "type", "bridge"),
        ("link", "set", "vx42", "master", "br0"),
        ("link", "set", "vx42", "up"),
        ("addr", "add", f"{LINUX_HOST}/24", "dev", "br0"),
        ("link", "set", "br0", "up"),
    ):  # fmt: skip
        run("ip", "-n", ns, *cmd)
    # The kernel would leave the inner checksums it sends for the underlay device's
    # "hardware" to finish (a veth or a TAP has none): finished in software here.
    if not tx_csum:
        run("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off")


def ping(daemon: Vrouterd, host: str, target: str, *extra: str) -> int:
    """Send 3 pings from ``host`` to ``target``; return how many were answered."""
    result = daemon.exec(
        host, "ping", "-c", "3", "-i", "0.2", "-W", "2", *extra, target, check=False, timeout=30
    )
    match = re.search(r"(\d+) received", result.stdout)
    assert match, result.stdout + result.stderr
    return int(match.group(1))


def iperf3(daemon: Vrouterd, reverse: bool) -> int:
    """Run iperf3 from h1 to the Linux host for 2 s (``reverse``: the host sends); return
    the bytes received."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", daemon.ns("lx"), "iperf3", "-s", "-1", "-B", LINUX_HOST],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        result = daemon.exec(
            "h1", "iperf3", "-c", LINUX_HOST, "-t", "2", "-J", "--connect-timeout", "5000",
            *(["-R"] if reverse else []),
            timeout=60, check=False,
        )  # fmt: skip
        report = json.loads(result.stdout)
        assert "error" not in report, report.get("error")
        received: int = report["end"]["sum_received"]["bytes"]
        return received
    finally:
        server.kill()
        server.wait(10)


def vxlan_seen(
    ns: str, dev: str, act: Callable[[], None], count: int = 4, src: str | None = None
) -> str:
    """Return what tcpdump decodes of the first ``count`` VXLAN datagrams on ``dev`` in
    ``ns`` (only those from ``src``, if given) while ``act`` runs."""
    only = ("and", "src", "host", src) if src is not None else ()
    dump = subprocess.Popen(
        ["ip", "netns", "exec", ns, "tcpdump", "-n", "-l", "-c", str(count), "-i", dev,
         "udp", "port", "4789", *only],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_listening(dump)
        act()
        out, _ = dump.communicate(timeout=15)
        return out
    finally:
        if dump.poll() is None:
            dump.kill()
            dump.wait(10)


def start_in_netns(daemon: Vrouterd, address: str, *sysctls: str, prefix: int = 24) -> str:
    """Create the daemon's namespace with underlay veth ``PREFIXu`` holding
    ``address``/``prefix`` (its peer stays in the root namespace, to be moved by the
    caller) and ``sysctls`` (``KEY=VALUE``) set; start the daemon there."""
    p = daemon.prefix
    ns = f"{p}d"
    run("ip", "netns", "add", ns)
    run("ip", "link", "add", f"{p}u", "type", "veth", "peer", "name", f"{p}v")
    run("ip", "link", "set", f"{p}u", "netns", ns)
    run("ip", "-n", ns, "link", "set", "lo", "up")
    nodad = ("nodad",) if ":" in address else ()
    run("ip", "-n", ns, "addr", "add", f"{address}/{prefix}", "dev", f"{p}u", *nodad)
    run("ip", "-n", ns, "link", "set", f"{p}u", "up")
    for setting in sysctls:
        run("ip", "netns", "exec", ns, "sysctl", "-qw", setting)
    daemon.start(netns=ns)
    daemon.wait_ipv6()
    return ns


def start_pair(a: Vrouterd, b: Vrouterd) -> str:
    """Start ``a`` (VTEP 198.51.100.1) and ``b`` (.2) in namespaces of their own, b's
    underlay being a's veth peer; return b's namespace."""
    start_in_netns(a, "198.51.100.1")
    ns_b = f"{b.prefix}d"
    run("ip", "netns", "add", ns_b)
    run("ip", "link", "set", f"{a.prefix}v", "netns", ns_b)
    run("ip", "-n", ns_b, "link", "set", "lo", "up")
    run("ip", "-n", ns_b, "addr", "add", "198.51.100.2/24", "dev", f"{a.prefix}v")
    run("ip", "-n", ns_b, "link", "set", f"{a.prefix}v", "up")
    b.start(netns=ns_b)
    b.wait_ipv6()
    return ns_b


LINUX_MAC = "02:00:5e:00:53:20"


def linux_peer(
    daemon: Vrouterd,
    mac: str | None = LINUX_MAC,
    peer: tuple[str, str] = ("remote", "198.51.100.1"),
    local: str = "198.51.100.2/24",
    tx_csum: bool = False,
) -> str:
    """Make netns ``PREFIXlx`` (VTEP ``local``, on the daemon's underlay peer) with vx42
    (sending to ``peer``: remote or group) in a Linux bridge (of MAC ``mac``; None: the
    kernel's) holding 192.0.2.20; return its name."""
    p = daemon.prefix
    lx = f"{p}lx"
    run("ip", "netns", "add", lx)
    run("ip", "link", "set", f"{p}v", "netns", lx)
    for cmd in (
        ("link", "set", "lo", "up"),
        ("addr", "add", local, "dev", f"{p}v", "nodad"),
        ("link", "set", f"{p}v", "up"),
    ):
        run("ip", "-n", lx, *cmd)
    linux_vtep(lx, f"{p}v", local.split("/")[0], peer, mac, tx_csum)
    return lx


DAEMON_CONFIG = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}"
log_level = "info"

[vnets.lab.interfaces.{p}1]
type = "tap"
mtu = 1450
host = {{ netns = "{p}h1", addresses = ["192.0.2.{host}/24"] }}

[vnets.lab.interfaces.vx42]
type = "vxlan"
vni = 42
local = "198.51.100.{local}"
remotes = ["198.51.100.{remote}"]

[vnets.lab.interfaces.br0]
type = "bridge"
members = ["{p}1", "vx42"]
mtu = 1450
mac = "02:00:5e:00:53:{bridge:02d}"
addresses = ["192.0.2.{bridge}/24"]
"""
"""A daemon with a TAP host and a vxlan interface in one bridge (see :func:`daemon_config`)."""


def daemon_config(host: int, local: int, remote: int, bridge: int) -> str:
    """Return :data:`DAEMON_CONFIG` for host 192.0.2.HOST, VTEPs 198.51.100.LOCAL and
    .REMOTE, and the bridge's address and MAC numbered BRIDGE."""
    # MACs derived from vnet and interface names are the same in two daemons of one
    # config: each bridge gets its own.
    return (
        DAEMON_CONFIG.replace("{host}", str(host))
        .replace("{local}", str(local))
        .replace("{remote}", str(remote))
        .replace("{bridge:02d}", f"{bridge:02d}")
        .replace("{bridge}", str(bridge))
    )


UNDERLAY6 = ("2001:db8:42::1", "2001:db8:42::2")
"""The daemon's and the Linux VTEP's addresses over an IPv6 underlay (a /64)."""


@contextlib.contextmanager
def beside_linux(
    workdir: Path, config: str, *sysctls: str, ipv6: bool = False, tx_csum: bool = False
) -> Iterator[Vrouterd]:
    """Run a daemon of ``config`` in its own namespace (VTEP 198.51.100.1, ``sysctls``
    set there) beside a Linux VTEP (:func:`linux_peer`, .2, ``tx_csum`` as there); with
    ``ipv6`` the underlay is :data:`UNDERLAY6` instead.  Close it on the way out."""
    daemon = Vrouterd(workdir, config)
    try:
        if ipv6:
            local, remote = UNDERLAY6
            start_in_netns(daemon, local, *sysctls, prefix=64)
            linux_peer(
                daemon, mac=None, peer=("remote", local), local=f"{remote}/64", tx_csum=tx_csum
            )
        else:
            start_in_netns(daemon, "198.51.100.1", *sysctls)
            linux_peer(daemon, mac=None, tx_csum=tx_csum)
        yield daemon
    finally:
        daemon.close()


def over_ipv6(config: str) -> str:
    """Return :data:`DAEMON_CONFIG` text ``config`` with its VTEPs on :data:`UNDERLAY6`
    and its MTUs 20 bytes lower (an IPv6 outer header is 20 bytes longer)."""
    local, remote = UNDERLAY6
    return (
        config.replace('local = "198.51.100.1"', f'local = "{local}"')
        .replace('remotes = ["198.51.100.2"]', f'remotes = ["{remote}"]')
        .replace("mtu = 1450", "mtu = 1430")
    )


def vx_shown(daemon: Vrouterd) -> dict[str, object]:
    """Return what ``vxlan.show`` says of the one vxlan interface of vnet lab."""
    (vx,) = daemon.call("vxlan.show", vnet="lab")
    return dict(vx)
