"""The control server: a Unix socket answering the operations of :mod:`vrouter.api.operations`.

Every request line is decoded, looked up in the operations table, its
arguments checked against the operation's schema, the caller's rights
checked against its rule, and its handler run as the table says: views and
descriptor-passing requests at once, changes under the daemon's lock,
``tcp.connect`` awaited outside it.  An error reply names what was wrong;
an internal error means a bug and is logged with its traceback.

A handler may answer with a :class:`~vrouter.api.passing.PassFd`: the
reply line then carries a file descriptor on the same connection.

Permissions (:mod:`vrouter.core.perms`): each connection's caller is
identified by ``SO_PEERCRED``/``SO_PEERGROUPS``.  Views are open to anyone
who can connect; a refusal is an error reply ("permission denied: uid 1000
may not manage vnet red") and a log line with the uid and pid; the
connection goes on.  The socket file is mode 0666 when the policy names
any non-root principal, else 0660.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from vrouter.api import execs, manage, passing, views
from vrouter.api.connection import (
    Replies,
    Rows,
    peer_cred,
    send_with_fd,
    serve_lines,
    write_rows,
)
from vrouter.api.host import Host
from vrouter.api.operations import TABLE, Operation, lookup, refusal
from vrouter.api.passing import CapturePass, PassFd
from vrouter.api.protocol import MAX_LINE, ApiError, caller_of, decode_request, encode
from vrouter.core import gcpause, perms
from vrouter.core.errors import OpError
from vrouter.core.perms import Cred, Policy

log = logging.getLogger("vrouter.api")

CAPTURE_SWEEP = 1.0
"""Seconds between checks that each capture's interface still exists."""

_MODULES: Final[Mapping[str, ModuleType]] = {
    "views": views,
    "manage": manage,
    "passing": passing,
    "execs": execs,
}


def _bind(op: Operation) -> Callable[..., Any]:
    module, _, name = op.handler.partition(".")
    handler = getattr(_MODULES[module], name, None)
    if not callable(handler):
        raise ImportError(f"operation {op.name}: no handler {op.handler}")
    is_coroutine = asyncio.iscoroutinefunction(handler)
    if is_coroutine != (op.runs != "call"):
        raise ImportError(f"operation {op.name}: handler {op.handler} does not fit runs={op.runs}")
    return handler  # type: ignore[no-any-return]


HANDLERS: Final[Mapping[str, Callable[..., Any]]] = {name: _bind(op) for name, op in TABLE.items()}
"""The handler of every operation, bound once at import (a misnamed one fails here)."""


def _failed(err: Exception) -> dict[str, Any]:
    """Return the error reply for a handler that raised ``err`` (a bug is logged)."""
    if isinstance(err, ApiError):
        return err.reply()
    if isinstance(err, OpError):
        return ApiError(str(err)).reply()
    log.exception("control request failed")
    return {"ok": False, "error": f"internal error: {err}"}


def _succeeded(result: Any) -> tuple[dict[str, Any], PassFd | None]:
    """Return the reply for ``result``, and the descriptor riding with it, if any."""
    if isinstance(result, PassFd):
        return {"ok": True, "result": result.result}, result
    return {"ok": True, "result": result}, None


class ControlServer:
    """Serves the control protocol on a Unix socket."""

    def __init__(self, daemon: Host) -> None:
        self.daemon = daemon
        self._server: asyncio.AbstractServer | None = None
        self._path: Path | None = None
        self.captures: set[CapturePass] = set()
        """Captures running, each until its reader or its interface goes away."""
        self._sweeper: asyncio.TimerHandle | None = None
        self._burst = gcpause.Burst(self._vnets)
        """Holds the cyclic collector while requests keep coming (:mod:`vrouter.core.gcpause`)."""

    def _vnets(self) -> int:
        tree = self.daemon.tree
        return 0 if tree is None else len(tree)

    async def start(self, path: str) -> None:
        """Listen on ``path``, replacing a stale socket file.

        The config's permissions are put in force on the vnets first
        (:meth:`follow_policy`), so the first request is already checked.
        """
        sock_path = Path(path)
        sock_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path, limit=MAX_LINE)
        self._path = sock_path
        self.follow_policy()

    def policy(self) -> Policy:
        """Return the rights in force."""
        tree = self.daemon.tree
        return tree.policy if tree is not None else Policy()

    def follow_policy(self) -> None:
        """Install the config's rights on the vnets; set the socket's mode to match.

        Mode 0666 when any non-root principal is granted something (it must
        be able to connect; every request is checked), else 0660; a worker's
        socket is 0600 (its front is the only client).
        """
        config = getattr(self.daemon, "config", None)
        tree = self.daemon.tree
        if config is not None and tree is not None:
            tree.set_policy(config.policy())
        if self._path is not None:
            if getattr(self.daemon, "spec", None) is not None:
                mode = 0o600  # a worker's: only its front connects
            else:
                mode = 0o666 if self.policy().non_root() else 0o660
            os.chmod(self._path, mode)
            log.info("control socket %s: mode %04o", self._path, mode)

    async def close(self) -> None:
        """Stop listening, end every capture and remove the socket file."""
        for running in list(self.captures):
            running.close("daemon stopping")
        execs.stop_all()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._burst.end()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
            self._path = None

    def _from_front(self, cred: Cred) -> bool:
        """Return True if ``cred`` is this worker's front (its requests name their caller)."""
        spec = getattr(self.daemon, "spec", None)
        return spec is not None and cred.pid == spec.front and cred.uid == 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = peer_cred(writer.get_extra_info("socket"))
        except (OSError, struct.error) as err:
            log.warning("control connection refused: cannot identify the caller: %s", err)
            writer.close()
            return
        trusted = self._from_front(peer)

        async def respond(line: bytes, replies: Replies) -> None:
            self._burst.request()
            cred = (caller_of(line) or peer) if trusted else peer
            reply, passing = await self.answer(line, cred, trusted)
            result = reply.get("result")
            if passing is None and not isinstance(result, Rows):
                replies.write(encode(reply))
                return
            replies.flush()
            if isinstance(result, Rows):
                try:
                    await write_rows(writer, result)
                except (ConnectionError, asyncio.CancelledError):
                    raise
                except Exception as err:  # a bug: the reply is cut short, the client sees it
                    log.exception("control request failed while its view was written")
                    raise ConnectionError("view cut short") from err
            elif passing is not None:
                await self._pass_fd(writer, encode(reply), passing)

        await serve_lines(reader, writer, respond)

    async def _pass_fd(self, writer: asyncio.StreamWriter, line: bytes, passing: PassFd) -> None:
        """Send ``line`` with ``passing.sock`` attached, after every earlier byte."""
        try:
            await send_with_fd(writer, line, passing.sock.fileno())
        except ConnectionError:
            passing.failed()
            raise
        finally:
            passing.sock.close()
        passing.passed(self)

    def sweep_captures_soon(self) -> None:
        """Check the captures' interfaces every CAPTURE_SWEEP seconds while any run."""
        if self._sweeper is None and self.captures:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(CAPTURE_SWEEP, self._sweep_captures)

    def _sweep_captures(self) -> None:
        self._sweeper = None
        for running in list(self.captures):
            if not running.alive(self.daemon):
                running.close("interface gone")
        self.sweep_captures_soon()

    def check(self, op: str, args: Mapping[str, Any], cred: Cred | None) -> str | None:
        """Return why ``cred`` may not make request ``op`` with ``args`` (None: it may).

        ``cred`` None is the daemon itself: everything is allowed.  A refusal is logged.
        """
        if cred is None or perms.superuser(cred):
            return None  # every right is a superuser's: no rule to evaluate
        operation = lookup(op)
        if operation.rights is None:
            return None
        why = refusal(self.policy(), cred, operation.rights(self.daemon, args))
        if why is not None:
            log.warning("%s (%s, request %s)", why, cred.describe(), op)
        return why

    def admit(
        self, op: str, args: Mapping[str, Any], cred: Cred | None, trusted: bool = False
    ) -> tuple[Operation, dict[str, Any]]:
        """Return the operation and its checked arguments; ApiError if it may not run.

        Arguments starting with ``_`` are the daemon's: a caller's are
        dropped (but a front's, ``trusted``, and the daemon's own, ``cred``
        None), and an operation that binds ports gets ``_privileged`` (may
        bind below 1024) from the caller's rights.
        """
        operation = lookup(op)
        if cred is not None and not trusted:
            args = {k: v for k, v in args.items() if not k.startswith("_")}
        checked = operation.check(args)
        why = self.check(op, checked, cred)
        if why is not None:
            raise ApiError(why, errno.EACCES)
        if operation.binds and cred is not None:
            tree = self.daemon.tree
            name = checked["vnet"]
            if tree is not None and name in tree:
                checked["_privileged"] = perms.may_bind_privileged(tree.get(name), cred)
        return operation, checked

    async def answer(
        self, line: bytes, cred: Cred | None = None, trusted: bool = False
    ) -> tuple[dict[str, Any], PassFd | None]:
        """Answer one request line; the second item, if any, rides with the reply.

        ``cred`` is the caller (None: the daemon itself, nothing is checked);
        ``trusted``: the line comes from this worker's front.
        """
        try:
            op, args = decode_request(line)
            operation, checked = self.admit(op, args, cred, trusted)
        except ApiError as err:
            return err.reply(), None
        token = perms.set_caller(cred or perms.ROOT)
        try:
            result = await self._run(operation, checked)
        except Exception as err:
            return _failed(err), None
        finally:
            perms.reset_caller(token)
        return _succeeded(result)

    async def _run(self, operation: Operation, args: dict[str, Any]) -> Any:
        handler = HANDLERS[operation.name]
        if operation.runs == "call":
            return handler(self.daemon, args)
        if operation.runs == "await":
            return await handler(self.daemon, args)
        async with self.daemon.lock:
            return await handler(self.daemon, args)
