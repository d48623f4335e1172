"""``mirror.exec``: a program run in a vnet's mirror for a caller with the vnet's manage right.

Entering a namespace needs privileges a caller may not have, so the daemon
starts the program (``ip netns exec``), as the caller: its uid, gid and
supplementary groups (``setpriv``), its environment and working directory
(``env -i -C``, run as the caller, so the directory is checked with the
caller's rights).  The program uses the caller's own standard input,
output and error, passed to the daemon, so a terminal stays a terminal
and nothing is copied through the daemon.

The reply carries one end of a SOCK_SEQPACKET pair, the *session*:

1. the client sends one message, ``stdio``, with three descriptors
   (SCM_RIGHTS): its standard input, output and error;
2. the daemon starts the program and sends ``{"pid": N}`` (or
   ``{"error": "..."}`` and closes);
3. the client may send ``{"signal": N}`` (its Ctrl-C, SIGTERM …): the
   program's process group gets it;
4. when the program ends the daemon sends ``{"exit": CODE}`` or
   ``{"signal": N}`` and closes the session;
5. a session the client closes first (it died) ends the program: SIGHUP
   to its process group, SIGKILL :data:`KILL_GRACE` seconds later.

At most :data:`RUNNING_MAX` programs run at once.  A mirror removed with
its vnet ends the programs in it (their session reports the signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

from vrouter.api.host import Host, ops_of, vnet_of
from vrouter.api.passing import CaptureHome, PassFd
from vrouter.api.protocol import ApiError
from vrouter.core import perms
from vrouter.core.errors import OpError

log = logging.getLogger("vrouter.api")

RUNNING_MAX = 64
"""Programs started through ``mirror.exec`` running at once."""
STDIO_WAIT = 10.0
"""Seconds the daemon waits for the client's descriptors."""
KILL_GRACE = 2.0
"""Seconds between SIGHUP and SIGKILL for a program whose client went away."""
MESSAGE_MAX = 4096

_running: set[Session] = set()


class Session(PassFd):
    """One program and the session socket its client holds the other end of."""

    def __init__(self, result: dict[str, Any], theirs: socket.socket, ours: socket.socket,
                 command: list[str], vnet: str) -> None:  # fmt: skip
        super().__init__(result, theirs)
        self.ours = ours
        self.command = command
        self.vnet = vnet
        self.cred = perms.caller()
        self.proc: subprocess.Popen[bytes] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pidfd = -1
        self.waiting: asyncio.TimerHandle | None = None
        self.ended = False

    def passed(self, server: CaptureHome) -> None:
        _running.add(self)
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.ours.fileno(), self._readable)
        self.waiting = self.loop.call_later(STDIO_WAIT, self._end, "no descriptors came")

    def failed(self) -> None:
        self.ours.close()

    def _readable(self) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(self.ours, MESSAGE_MAX, 3)
        except OSError:
            data, fds = b"", []
        if self.proc is None:
            self._start(data, fds)
        else:
            for fd in fds:  # none expected any more
                os.close(fd)
            self._message(data)

    def _start(self, data: bytes, fds: list[int]) -> None:
        if self.waiting is not None:
            self.waiting.cancel()
        try:
            if data != b"stdio" or len(fds) != 3:
                self._end("the client sent no stdin, stdout and stderr")
                return
            try:
                self.proc = subprocess.Popen(
                    self.command, stdin=fds[0], stdout=fds[1], stderr=fds[2],
                    start_new_session=True, close_fds=True, env=_daemon_env(),
                )  # fmt: skip
            except OSError as err:
                self._end(f"cannot start: {err}")
                return
        finally:
            for fd in fds:
                os.close(fd)
        self.pidfd = os.pidfd_open(self.proc.pid)
        assert self.loop is not None
        self.loop.add_reader(self.pidfd, self._exited)
        self._send({"pid": self.proc.pid})
        log.info("vnet %s: exec pid %d for %s: %s", self.vnet, self.proc.pid,
                 self.cred, " ".join(self.command))  # fmt: skip

    def _message(self, data: bytes) -> None:
        if not data:  # the client is gone: end the program
            self._signal(signal.SIGHUP)
            assert self.loop is not None
            self.loop.remove_reader(self.ours.fileno())
            self.waiting = self.loop.call_later(KILL_GRACE, self._signal, signal.SIGKILL)
            return
        try:
            number = json.loads(data)["signal"]
            self._signal(signal.Signals(number))
        except (ValueError, KeyError, TypeError):
            log.debug("vnet %s: exec: a message that is no signal: %r", self.vnet, data[:80])

    def _signal(self, number: signal.Signals) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, number)

    def _exited(self) -> None:
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            return
        self._send({"exit": code} if code >= 0 else {"signal": -code})
        self._end(f"exited with {code}")

    def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.ours.send(json.dumps(message).encode(), socket.MSG_DONTWAIT)

    def _end(self, why: str) -> None:
        """Report ``why`` if nothing started, and release the session (idempotent)."""
        if self.ended:
            return
        self.ended = True
        _running.discard(self)
        if self.proc is None:
            self._send({"error": why})
        if self.waiting is not None:
            self.waiting.cancel()
        if self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(self.ours.fileno())
            if self.pidfd >= 0:
                self.loop.remove_reader(self.pidfd)
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        self.ours.close()
        log.info("vnet %s: exec ended: %s", self.vnet, why)

    def stop(self) -> None:
        """End the program now (the daemon stops)."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(1)
        self._end("the daemon stopped")


def stop_all() -> None:
    """End every program started through ``mirror.exec`` (at shutdown)."""
    for session in list(_running):
        session.stop()


def _daemon_env() -> dict[str, str]:
    """The environment of the privileged wrappers: the daemon's PATH only."""
    return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C"}


def command_for(ns: str, cred: perms.Cred, argv: list[str], env: dict[str, str],
                cwd: str) -> list[str]:  # fmt: skip
    """Return the command line that runs ``argv`` in namespace ``ns`` as ``cred``."""
    inner = ["env", "-i", "-C", cwd, *(f"{k}={v}" for k, v in sorted(env.items())), *argv]
    if cred.uid == 0:
        return ["ip", "netns", "exec", ns, *inner]
    groups = sorted(cred.groups)
    drop = ["setpriv", f"--reuid={cred.uid}", f"--regid={cred.gid}"]
    drop.append(f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups")
    return ["ip", "netns", "exec", ns, *drop, "--", *inner]


def exec_start(host: Host, args: dict[str, Any]) -> PassFd:
    """Start ``argv`` in the vnet's mirror for the caller (see the module's text)."""
    vnet = vnet_of(host, args)
    argv: list[str] = args["argv"]
    if not argv or not argv[0] or "=" in argv[0] or "\0" in "".join(argv):
        raise ApiError("'argv' must name a program (no '=' in its name, no NUL anywhere)")
    env = {str(k): str(v) for k, v in args.get("env", {}).items()}
    if any(not k or "=" in k or "\0" in k + v for k, v in env.items()):
        raise ApiError("'env' names must be non-empty, without '=' or NUL")
    cwd = str(args.get("cwd") or "/")
    if not Path(cwd).is_absolute() or "\0" in cwd:
        raise ApiError("'cwd' must be an absolute path")
    mirrors = ops_of(host).mirrors
    found = mirrors.describe(vnet.name) if mirrors is not None else None
    if found is None:
        raise OpError(f"vnet {vnet.name} has no mirror")
    if len(_running) >= RUNNING_MAX:
        raise ApiError(f"{RUNNING_MAX} programs run through exec already", errno.EAGAIN)
    cred = perms.caller()
    command = command_for(str(found["netns"]), cred, argv, env, cwd)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    result = {"vnet": vnet.name, "netns": found["netns"], "uid": cred.uid, "argv": argv}
    return Session(result, theirs, ours, command, vnet.name)
