"""Host namespaces: Linux network namespaces the daemon creates for TAP hosts.

A TAP interface may name a host: the daemon creates the namespace, moves the
kernel side of the TAP into it and configures addresses, MTU, link state and
default route with iproute2.  Every namespace is recorded in the state file
*before* it is created, so a crashed run's leftovers can be found and removed
by the next start, and nothing that was not ours is ever touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from vrouter.core import command
from vrouter.daemon.config import HostConfig
from vrouter.mirror import manager as mirror_manager
from vrouter.mirror import vrfdir

log = logging.getLogger("vrouter.hostns")

STATE_FILE = "owned.json"
NETNS_DIR = Path("/run/netns")


class HostError(Exception):
    """A host namespace could not be set up or removed."""


def _ip(*args: str) -> None:
    command.run(["ip", *args], HostError)


def netns_exists(name: str) -> bool:
    """Return True if a named network namespace ``name`` exists."""
    return (NETNS_DIR / name).exists()


@dataclass
class Ownership:
    """What this daemon created, persisted in ``STATE_DIR/owned.json``."""

    state_dir: Path
    netns: list[str] = field(default_factory=list)
    mirrors: list[str] = field(default_factory=list)
    """Control-plane mirror namespaces (:mod:`vrouter.mirror.manager`): their processes
    are ended before they are removed."""
    published: list[str] = field(default_factory=list)
    """The mirror namespaces' bind mounts in ``vrf_dir`` directories."""

    @property
    def path(self) -> Path:
        """Return the state file's path."""
        return self.state_dir / STATE_FILE

    def save(self) -> None:
        """Write the record atomically."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        record = {"pid": os.getpid(), "netns": self.netns, "mirrors": self.mirrors,
                  "published": self.published}  # fmt: skip
        tmp.write_text(json.dumps(record))
        tmp.replace(self.path)

    def remove(self) -> None:
        """Delete the record (clean shutdown)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def claim(state_dir: Path) -> Ownership:
    """Take over ``state_dir``: remove a crashed run's namespaces, refuse a live one."""
    ownership = Ownership(state_dir)
    try:
        previous = json.loads(ownership.path.read_text())
    except FileNotFoundError:
        return ownership
    except (OSError, ValueError) as err:
        raise HostError(f"{ownership.path}: unreadable state file: {err}") from err
    pid = previous.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and _alive(pid):
        raise HostError(f"another vrouterd (pid {pid}) owns {state_dir}")
    for name in previous.get("netns", []):
        if isinstance(name, str) and netns_exists(name):
            log.info("removing netns %s left by a previous run (pid %s)", name, pid)
            delete(name)
    for path in previous.get("published", []):
        if isinstance(path, str):
            log.info("unbinding mirror netns %s left by a previous run (pid %s)", path, pid)
            try:
                vrfdir.unpublish(path)
            except vrfdir.VrfDirError as err:
                raise HostError(str(err)) from err
    for name in previous.get("mirrors", []):
        if isinstance(name, str) and netns_exists(name):
            log.info("removing mirror netns %s left by a previous run (pid %s)", name, pid)
            try:
                mirror_manager.delete_netns(name)
            except mirror_manager.MirrorError as err:
                raise HostError(str(err)) from err
    ownership.remove()
    return ownership


def claim_workers(state_dir: Path) -> None:
    """Take over what a previous run's workers left in ``state_dir``: the namespaces a
    crashed worker recorded in its ``worker-N/`` directory, then the directory itself
    (an empty one stays behind a clean stop or a worker that cleaned up after its front
    was killed), and a killed worker's control socket ``worker-N.sock``.  Anything else
    is left alone.  Call it once ``state_dir`` is claimed: no live run uses them."""
    for leftover in sorted(state_dir.glob("worker-*")):  # workers.worker_dir, worker_socket
        if leftover.is_dir():
            claim(leftover)
            try:
                leftover.rmdir()
            except OSError as err:
                log.warning("keeping %s: %s", leftover, err.strerror)
                continue
        elif leftover.is_socket():
            leftover.unlink()
        else:
            continue
        log.info("removed %s left by a previous run", leftover)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        comm = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"vrouterd" in comm or b"vrouter.daemon" in comm


def create(ownership: Ownership, host: HostConfig) -> None:
    """Create the namespace of ``host``; refuse one that exists and is not ours."""
    if netns_exists(host.netns):
        raise HostError(f"netns {host.netns} already exists and was not created by this vrouterd")
    ownership.netns.append(host.netns)
    ownership.save()
    _ip("netns", "add", host.netns)
    _ip("-n", host.netns, "link", "set", "lo", "up")


def _sysctl(ns: str, path: str, value: str) -> None:
    command.run(["ip", "netns", "exec", ns, "sh", "-c", f"echo {value} > /proc/sys/{path}"],
                HostError, f"netns {ns}: cannot set {path}")  # fmt: skip


def configure(host: HostConfig, ifname: str, mtu: int) -> None:
    """Move TAP ``ifname`` into the host's namespace and configure it.

    Static addresses skip the host's DAD (the vnet is the only other node on
    the link); a SLAAC host accepts router advertisements, others ignore them.
    """
    ns = host.netns
    _ip("link", "set", ifname, "netns", ns)
    _ip("-n", ns, "link", "set", ifname, "mtu", str(mtu))
    _sysctl(ns, f"net/ipv6/conf/{ifname}/accept_ra", "2" if host.slaac else "0")
    _sysctl(ns, f"net/ipv6/conf/{ifname}/autoconf", "1" if host.slaac else "0")
    for address in host.addresses:
        extra = ["nodad"] if address.version == 6 else []
        _ip("-n", ns, "addr", "add", str(address), "dev", ifname, *extra)
    _ip("-n", ns, "link", "set", ifname, "up")
    if host.gateway is not None:
        _ip("-n", ns, "route", "add", "default", "via", str(host.gateway), "dev", ifname)
    if host.gateway6 is not None:
        _ip("-n", ns, "-6", "route", "add", "default", "via", str(host.gateway6), "dev", ifname)


def set_qdisc(ns: str | None, ifname: str, kind: str) -> None:
    """Give the host side of TAP ``ifname`` (in namespace ``ns``; None: the daemon's)
    the root qdisc ``kind`` (``[daemon] tap_qdisc``; ``kernel`` leaves the default,
    ``auto`` is fq_codel if the kernel has it, else the default).

    Set after the TAP moved: moving an interface to another namespace resets
    its qdisc to the default.
    """
    if kind == "kernel":
        return
    where = ["-n", ns] if ns is not None else []
    result = subprocess.run(
        ["tc", *where, "qdisc", "replace", "dev", ifname, "root",
         "fq_codel" if kind == "auto" else kind],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        if kind == "auto":
            log.debug("%s: no fq_codel in this kernel, the default qdisc stays", ifname)
            return
        raise HostError(f"tc qdisc replace dev {ifname} root {kind}: {result.stderr.strip()}")


def set_mtu(ns: str, ifname: str, mtu: int) -> None:
    """Set the MTU of the host side of TAP ``ifname`` in namespace ``ns``."""
    _ip("-n", ns, "link", "set", ifname, "mtu", str(mtu))


def delete(name: str) -> None:
    """Delete namespace ``name`` (its processes keep running; its interfaces go)."""
    _ip("netns", "del", name)
