"""A Linux VTEP for the VXLAN tests: vx42 in a Linux bridge, and what its underlay carries."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable

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
    ns: str, dev: str, local: str, peer: tuple[str, ...], mac: str | None = None
) -> None:
    """Add vx42 (VTEP ``local`` on ``dev``, sending to ``peer``: ``remote ADDR`` or
    ``group ADDR``) in a Linux bridge br0 (of MAC ``mac``; None: the kernel's) holding
    :data:`LINUX_HOST` to namespace ``ns``."""
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
    run("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off")


def ping(daemon: Vrouterd, host: str, target: str, *extra: str) -> int:
    """Send 3 pings from ``host`` to ``target``; return how many were answered."""
    result = daemon.exec(
        host, "ping", "-c", "3", "-i", "0.2", "-W", "2", *extra, target, check=False, timeout=30
    )
    match = re.search(r"(\d+) received", result.stdout)
    assert match, result.stdout + result.stderr
    return int(match.group(1))


def vxlan_seen(ns: str, dev: str, act: Callable[[], None], count: int = 4) -> str:
    """Return what tcpdump decodes of the first ``count`` VXLAN datagrams on ``dev`` in
    ``ns`` while ``act`` runs."""
    dump = subprocess.Popen(
        ["ip", "netns", "exec", ns, "tcpdump", "-n", "-l", "-c", str(count), "-i", dev,
         "udp", "port", "4789"],
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
