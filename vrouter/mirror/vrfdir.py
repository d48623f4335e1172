"""A mirror's namespace bound into a ``vrf_dir``, for a routing daemon with netns VRFs.

FRR's ``zebra -n`` makes every namespace in its ``/run/netns`` a VRF named after
it.  Run in a mount namespace whose ``/run/netns`` is a copy of a ``vrf_dir``
(``mount --rbind VRF_DIR /run/netns``), it serves the mirrors bound there and
no other namespace of the host.  The directory is made a shared mount point,
so a namespace bound into it later reaches that copy, and one unbound leaves
it (zebra sees the file come and go, and adds or drops the VRF).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from vrouter.core import command


class VrfDirError(Exception):
    """A namespace could not be bound into, or taken out of, a ``vrf_dir``."""


def _run(*cmd: str) -> None:
    """Run ``mount`` or ``umount``; a failure or no answer in 30 s is a VrfDirError."""
    command.run(cmd, VrfDirError)


def _mount(*args: str) -> None:
    _run("mount", *args)


def mount_points() -> set[str]:
    """Return the mount points of this mount namespace (``/proc/self/mountinfo``).

    ``os.path.ismount`` cannot tell a directory bound onto itself: its device is
    its parent's.
    """
    points = set()
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as info:
        for line in info:
            fields = line.split(" ")
            if len(fields) > 4:
                points.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4]))
    return points


def is_mount_point(path: str | Path) -> bool:
    """Return True if ``path`` is a mount point in this mount namespace."""
    return os.path.realpath(path) in mount_points()


def publish(ns: str, vrf_dir: str) -> str:
    """Bind namespace ``ns`` into ``vrf_dir`` (made a shared mount point first, so that
    what is bound there later reaches the mount namespaces that took a copy of it);
    return the path it has there."""
    directory = Path(vrf_dir)
    directory.mkdir(parents=True, exist_ok=True)
    if not is_mount_point(directory):
        _mount("--bind", vrf_dir, vrf_dir)
    _mount("--make-shared", vrf_dir)
    target = directory / ns
    target.touch()
    _mount("--bind", f"/run/netns/{ns}", str(target))
    return str(target)


def unpublish(path: str) -> None:
    """Take a namespace bound by :func:`publish` out of its directory (a no-op if gone).

    The unmount is lazy: a daemon that opened the namespace through its copy of
    the directory does not hold it up, and sees it go (the file is deleted).
    The directory stays a mount point, so a daemon's copy keeps following it.
    """
    if is_mount_point(path):
        _run("umount", "--lazy", path)
    if os.path.isfile(path) and os.path.getsize(path) == 0:  # what publish made
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
