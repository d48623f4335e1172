"""The front process of a daemon with workers (``[daemon] workers = N``, N > 1).

The front starts N worker processes (``vrouterd --worker SPEC``, see
:mod:`vrouter.daemon.workers`), each over its share of the vnets, and keeps
what must stay in one place:

- the **control socket**: a request naming a vnet goes to the worker that
  runs it, on a connection of the client's own (so a descriptor a worker
  passes, a capture or a socket, is passed on to the client as it came);
  the request carries the caller, and the worker checks its rights as if
  the caller had asked it directly.  Where each request goes is the
  operations table's ``route`` (:mod:`vrouter.api.operations`): ``vnet.list``,
  ``vnet.tree`` and the module requests go to every worker and the answers
  are joined; ``status``, ``reload`` and vnet placement are the front's own.
  The connections are :mod:`vrouter.daemon.channel`'s.
- the **config and its reloads**: the front reads the file once, refuses
  what cannot change live (a vnet moving between workers, a wire added or
  removed, any ``[daemon]`` setting but ``log_level`` and ``admins``), asks
  every worker to check its share, then to apply it; if a worker fails,
  the workers that had applied the new text are given the old one back.
- the **metrics exporter**: each scrape asks every worker for its metrics
  (``metrics.scrape``) and serves them as one target, with per-worker CPU
  time, memory and liveness (``vrouter_worker_*``; :mod:`vrouter.daemon.workers_metrics`).
- **systemd**: READY=1 once every worker is ready, reload brackets,
  watchdog keep-alives.

A worker that exits on its own takes the daemon down (exit 1) so the
service manager restarts the whole; a worker whose front dies gets SIGTERM
(``PR_SET_PDEATHSIG``) and removes what it created.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from vrouter import __version__
from vrouter.api.connection import Replies, peer_cred, send_with_fd, serve_lines
from vrouter.api.operations import Operation, lookup
from vrouter.api.protocol import MAX_LINE, ApiError, decode_request, encode
from vrouter.core import gcpause
from vrouter.core.errors import OpError
from vrouter.daemon import dump, hostns, logs, metrics, systemd
from vrouter.daemon.channel import Answer, Session, WorkerProcess
from vrouter.daemon.config import Config, ConfigError, parse, read
from vrouter.daemon.reload import ReloadError, ReloadRecord, daemon_refusals, recreates
from vrouter.daemon.workers import (
    Spec,
    Wire,
    assign,
    config_fd,
    end_key,
    root_of,
    wires,
    worker_socket,
)
from vrouter.daemon.workers_metrics import WorkersScrape

log = logging.getLogger("vrouter.front")

READY_TIMEOUT = 120.0
"""Seconds a worker has to report that it started."""
STOP_TIMEOUT = 20.0
"""Seconds workers have to exit after SIGTERM before they are killed."""
SCRAPE_TIMEOUT = 60.0
"""Seconds a worker has to answer a metrics scrape (built a slice per loop pass, one
of 10,000 vnets takes seconds)."""
SCRAPE_LIMIT = 256 << 20
"""Longest metrics text taken from a worker (thousands of vnets' series)."""


FrontHandler = Callable[[Session, dict[str, Any]], Awaitable[Any]]
"""A front's own handler of an operation (:attr:`~vrouter.api.operations.Operation.front`)."""


class Front:
    """The front of a daemon with workers."""

    def __init__(
        self,
        config: Config,
        text: str,
        log_level: str,
        log_level_fixed: bool = False,
        log_format: str = logs.DEFAULT_FORMAT,
    ) -> None:
        self.config = config
        self.text = text
        """The config file's text the workers run."""
        self.log_level = log_level
        self.log_level_fixed = log_level_fixed
        """``--log-level`` was given: a reload leaves the level alone."""
        self.log_format = log_format
        """How the workers log (the front's own ``--log-format`` or the config's)."""
        self.started = time.time()
        count = config.daemon.workers
        state_dir = config.daemon.state_dir
        self.workers = [WorkerProcess(k, worker_socket(state_dir, k)) for k in range(count)]
        self.placed: dict[str, int] = assign(config, count)
        """The worker of every top-level vnet, from the config or made through the API."""
        self.wires: list[Wire] = wires(config, self.placed)
        self.ownership = hostns.Ownership(Path(state_dir))
        self.lock = asyncio.Lock()
        """Serializes start-up, reloads, vnet creation and shutdown."""
        self.reloads: dict[str, int] = {"success": 0, "failure": 0}
        self.last_reload_success: float | None = None
        self.last_reload: ReloadRecord | None = None
        self.failure: str | None = None
        """Why the daemon stops on its own (a worker exited)."""
        self._server: asyncio.AbstractServer | None = None
        self._exporter: metrics.MetricsServer | None = None
        self._watchers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._stop = asyncio.Event()

    # -- start and stop ------------------------------------------------------

    async def start(self) -> None:
        """Start every worker, then serve; undo it all if any step fails."""
        try:
            await self._start()
        except BaseException:
            await self.shutdown()
            raise
        gcpause.settle()  # later full collections walk only what comes after start-up

    async def _start(self) -> None:
        cfg = self.config.daemon
        state_dir = Path(cfg.state_dir)
        self.ownership = await asyncio.to_thread(hostns.claim, state_dir)
        self.ownership.save()
        await asyncio.to_thread(hostns.claim_workers, state_dir)
        ends: dict[int, dict[str, socket.socket]] = {k: {} for k in range(len(self.workers))}
        for wire in self.wires:
            one, other = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            ends[self.placed[root_of(wire.a[0])]][end_key(*wire.a)] = one
            ends[self.placed[root_of(wire.b[0])]][end_key(*wire.b)] = other
            log.info("wire %s between workers", wire)
        try:
            readiness = [await self._spawn(worker, ends[worker.index]) for worker in self.workers]
        finally:
            for mine in ends.values():
                for sock in mine.values():
                    sock.close()
        for worker, ready in zip(self.workers, readiness, strict=True):
            message = await ready
            if message != "ready":
                raise RuntimeError(f"worker {worker.index}: {message}")
            log.info(
                "worker %d (pid %s) ready: %s",
                worker.index,
                worker.pid,
                ", ".join(self.tops(worker.index)) or "no vnets",
            )
        for worker in self.workers:
            task = asyncio.get_running_loop().create_task(self._watch(worker))
            self._watchers.add(task)
            task.add_done_callback(self._watchers.discard)
        if cfg.metrics is not None:
            self._exporter = metrics.MetricsServer(self.scrape, self.metrics_selection)
            await self._exporter.start(*cfg.metrics)
        path = Path(cfg.control_socket)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, str(path), limit=MAX_LINE)
        self.follow_policy()

    def follow_policy(self) -> None:
        """Set the control socket's mode for the config's rights (as a single daemon does):
        0666 when any non-root principal is granted something, else 0660."""
        path = self.config.daemon.control_socket
        mode = 0o666 if self.config.policy().non_root() else 0o660
        os.chmod(path, mode)
        log.info("control socket %s: mode %04o", path, mode)

    def tops(self, index: int) -> list[str]:
        """Return the top-level vnets worker ``index`` runs."""
        return sorted(name for name, k in self.placed.items() if k == index)

    async def _spawn(
        self, worker: WorkerProcess, ends: dict[str, socket.socket]
    ) -> asyncio.Task[str]:
        """Start ``worker``; return a task that ends with its first word (``ready`` or why not)."""
        read_end, write_end = os.pipe()
        text_fd = config_fd(self.text)
        spec = Spec(
            index=worker.index,
            front=os.getpid(),
            tops=tuple(self.tops(worker.index)),
            wires={key: sock.fileno() for key, sock in ends.items()},
            ready=write_end,
            config=text_fd,
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS")
        }
        try:
            worker.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "vrouter.daemon.main",
                "--config",
                self.config.path,
                "--log-level",
                self.log_level,
                "--log-format",
                self.log_format,
                "--worker",
                spec.encode(),
                pass_fds=[write_end, text_fd, *spec.wires.values()],
                env=env,
                start_new_session=True,
            )
        finally:
            os.close(write_end)
            os.close(text_fd)
        log.info("worker %d started (pid %d)", worker.index, worker.process.pid)
        return asyncio.get_running_loop().create_task(self._readiness(worker, read_end))

    async def _readiness(self, worker: WorkerProcess, fd: int) -> str:
        def wait() -> str:
            with os.fdopen(fd, "rb") as pipe:
                return pipe.read(4096).decode(errors="replace").strip()

        try:
            message = await asyncio.wait_for(asyncio.to_thread(wait), READY_TIMEOUT)
        except TimeoutError:
            return f"not ready after {READY_TIMEOUT:.0f} s"
        if not message:
            process = worker.process
            code = await process.wait() if process is not None else None
            return f"exited with code {code} during start-up"
        return message

    async def _watch(self, worker: WorkerProcess) -> None:
        process = worker.process
        assert process is not None
        code = await process.wait()
        if self._stopping:
            return
        self.failure = f"worker {worker.index} (pid {process.pid}) exited with code {code}"
        log.error("%s; stopping the daemon", self.failure)
        self._stop.set()

    def request_stop(self, signame: str) -> None:
        """Begin an orderly shutdown."""
        log.info("%s received, shutting down", signame)
        self._stop.set()

    async def run(self) -> None:
        """Serve until a stop is requested or a worker exits."""
        await self._stop.wait()

    async def shutdown(self) -> None:
        """Stop serving, stop every worker (each removes what it created), remove our files."""
        self._stopping = True
        if self._exporter is not None:
            await self._exporter.close()
            self._exporter = None
        if self._server is not None:
            self._server.close()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                Path(self.config.daemon.control_socket).unlink()
        running = [w.process for w in self.workers if w.process is not None]
        for worker in self.workers:
            worker.forget()
        for process in running:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        if running:
            waiting = asyncio.gather(*(p.wait() for p in running))
            try:
                await asyncio.wait_for(asyncio.shield(waiting), STOP_TIMEOUT)
            except TimeoutError:
                for process in running:
                    if process.returncode is None:
                        log.error("worker pid %d did not stop in time: killed", process.pid)
                        with contextlib.suppress(ProcessLookupError):
                            process.kill()
                await waiting
        self.ownership.remove()

    # -- the control socket --------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            cred = peer_cred(writer.get_extra_info("socket"))
        except (OSError, struct.error) as err:
            log.warning("control connection refused: cannot identify the caller: %s", err)
            writer.close()
            return
        session = Session(self, cred)

        async def respond(line: bytes, replies: Replies) -> None:
            reply, fd = await self.answer(session, line)
            if fd is None:
                replies.write(reply)
                return
            replies.flush()
            try:
                await send_with_fd(writer, reply, fd)
            finally:
                os.close(fd)

        try:
            await serve_lines(reader, writer, respond)
        finally:
            session.close()

    async def answer(self, session: Session, line: bytes) -> Answer:
        """Answer one client request: the front's own, or routed to the workers as the
        operations table says (:attr:`~vrouter.api.operations.Operation.route`)."""
        try:
            name, raw = decode_request(line)
            op = lookup(name)
            # The daemon's own arguments (``_…``): a worker believes them from us only.
            args = op.check({k: v for k, v in raw.items() if not k.startswith("_")})
        except ApiError as err:
            return encode(err.reply()), None
        try:
            if op.front is not None:
                handler: FrontHandler = getattr(self, op.front)
                result = await handler(session, args)
            else:
                result = await self._route(session, op, args)
        except ApiError as err:
            return encode(err.reply()), None
        except Exception as err:
            log.exception("control request failed")
            return encode({"ok": False, "error": f"internal error: {err}"}), None
        if isinstance(result, tuple):
            return result
        return encode({"ok": True, "result": result}), None

    async def _route(self, session: Session, op: Operation, args: dict[str, Any]) -> Any:
        """Send ``op`` where its route says; return its answer or result."""
        route = op.route
        if route.kind == "vnet":
            name = args.get(route.keys[0]) if route.keys else None
            return await session.forward(self.worker_of(name), op.name, args)
        if route.kind == "together":
            names = [str(args[key]).partition(":")[0] for key in route.keys]
            return await session.forward(self._same_worker(names), op.name, args)
        if route.kind == "every":
            return (await session.results(op.name, args))[0]
        return await session.joined(op.name, args)

    def worker_of(self, vnet: object) -> int:
        """Return the worker running vnet ``vnet`` (worker 0 if it names none known)."""
        if isinstance(vnet, str):
            return self.placed.get(root_of(vnet), 0)
        return 0

    def _same_worker(self, names: list[str]) -> int:
        """Return the worker running every vnet of ``names``; ApiError if they differ."""
        where = {self.worker_of(name) for name in names}
        if len(where) > 1:
            a, b = names
            raise ApiError(
                f"vnets {a} and {b} run in different workers ({self.worker_of(a)} and "
                f"{self.worker_of(b)}); an epair between workers comes from the "
                "config file at start",
                errno=errno.EXDEV,
            )
        return where.pop() if where else 0

    # -- the front's own requests --------------------------------------------

    async def _status(self, session: Session, args: dict[str, Any]) -> Any:
        counts = await session.results("status", {})
        last = self.last_reload
        cred = session.cred
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started, 1),
            "config": self.config.path,
            "vnets": sum(int(c.get("vnets", 0)) for c in counts),
            "reloads": dict(self.reloads),
            "last_reload": None if last is None else last.describe(),
            "last_reload_success": self.last_reload_success,
            "caller": {
                "uid": cred.uid,
                "gid": cred.gid,
                "pid": cred.pid,
                "admin": self.config.policy().is_admin(cred),
            },
            "workers": [
                {"index": w.index, "pid": w.pid, "vnets": self.tops(w.index)} for w in self.workers
            ],
        }

    def _admin_only(self, session: Session, what: str) -> None:
        if not self.config.policy().is_admin(session.cred):
            raise ApiError(f"permission denied: {session.cred} may not {what} (daemon admins only)")

    async def _config_dump(self, session: Session, args: dict[str, Any]) -> Any:
        self._admin_only(session, "read the running configuration")
        vnets = await session.joined("config.vnets", {})
        return await asyncio.to_thread(dump.dump_reply, self.config, vnets)

    async def _config_diff(self, session: Session, args: dict[str, Any]) -> Any:
        self._admin_only(session, "read the running configuration")
        vnets = await session.joined("config.vnets", {})
        try:
            return await asyncio.to_thread(
                dump.diff_reply, self.config, vnets, args.get("text"), args["source"]
            )
        except OpError as err:
            raise ApiError(str(err)) from None

    async def _vnet_tree(self, session: Session, args: dict[str, Any]) -> Any:
        name = args["name"]
        if name:
            return await session.forward(self.worker_of(name), "vnet.tree", args)
        return await session.joined("vnet.tree", args)

    async def _vnet_create(self, session: Session, args: dict[str, Any]) -> Any:
        name = args["name"]
        if "/" in name or name in self.placed:
            return await session.forward(self.worker_of(name), "vnet.create", args)
        async with self.lock:
            if name in self.placed:  # made meanwhile by another request: its worker says so
                return await session.forward(self.worker_of(name), "vnet.create", args)
            load = [len(self.tops(k)) for k in range(len(self.workers))]
            index = min(range(len(self.workers)), key=lambda k: (load[k], k))
            line, fd = await session.forward(index, "vnet.create", args)
            if json.loads(line).get("ok"):
                self.placed[name] = index
                log.info("vnet %s: created in worker %d", name, index)
            return line, fd

    async def _vnet_destroy(self, session: Session, args: dict[str, Any]) -> Any:
        name = args["name"]
        line, fd = await session.forward(self.worker_of(name), "vnet.destroy", args)
        if "/" not in name and json.loads(line).get("ok"):
            self.placed.pop(name, None)
        return line, fd

    async def _reload_request(self, session: Session, args: dict[str, Any]) -> Any:
        if not self.config.policy().is_admin(session.cred):
            raise ApiError(
                f"permission denied: {session.cred} may not reload the configuration "
                "(daemon admins only)"
            )
        try:
            changes = await self.reload()
        except ReloadError as err:
            raise ApiError(f"reload failed, the running configuration is kept:\n{err}") from None
        return {"config": self.config.path, "changes": changes}

    # -- reload --------------------------------------------------------------

    async def reload(self) -> list[str]:
        """Re-read the config file and have every worker apply its share; ReloadError if not."""
        path = self.config.path
        started = time.time()
        log.info("reloading %s", path)
        async with self.lock:
            systemd.reloading("reloading")
            try:
                changes = await self._reload()
            except ReloadError as err:
                self.reloads["failure"] += 1
                self.last_reload = ReloadRecord(started, "failure", str(err))
                log.error("reload of %s failed, the running configuration is kept:\n%s", path, err)
                raise
            finally:
                systemd.ready(self.status_line())
        self.reloads["success"] += 1
        self.last_reload_success = time.time()
        self.last_reload = ReloadRecord(started, "success", None, len(changes))
        log.info("reloaded %s: %s", path, f"{len(changes)} changes" if changes else "no changes")
        return changes

    async def _reload(self) -> list[str]:
        path = self.config.path
        try:
            text = await asyncio.to_thread(read, path)
            new = parse(text, path)
        except ConfigError as err:
            raise ReloadError(str(err)) from None
        placed, reasons = self.replan(new)
        if reasons:
            raise ReloadError("\n".join(f"{path}: {reason}" for reason in reasons))
        count = len(self.workers)
        tops = {k: sorted(n for n, w in placed.items() if w == k) for k in range(count)}
        old_tops = {k: self.tops(k) for k in range(count)}
        for worker in self.workers:
            args = {"_text": text, "_tops": tops[worker.index], "_check": True}
            try:
                await worker.ask("reload", args)
            except ApiError as err:
                raise ReloadError(f"worker {worker.index}: {err}") from None
        changes: list[str] = []
        done: list[WorkerProcess] = []
        for worker in self.workers:
            try:
                result = await worker.ask("reload", {"_text": text, "_tops": tops[worker.index]})
            except ApiError as err:
                await self._roll_back(done, old_tops)
                raise ReloadError(f"worker {worker.index}: {err}") from None
            done.append(worker)
            changes.extend(result.get("changes", []))
        self.config, self.text, self.placed = new, text, placed
        self.follow_policy()
        if not self.log_level_fixed:
            logging.getLogger().setLevel(new.daemon.log_level.upper())
        return changes

    def replan(self, new: Config) -> tuple[dict[str, int], list[str]]:
        """Return where ``new``'s top-level vnets run, and why ``new`` cannot be run live."""
        count = len(self.workers)
        reasons = daemon_refusals(self.config.daemon, new.daemon)
        placed = assign(new, count, self.placed)
        for name, index in placed.items():
            was = self.placed.get(name)
            if was is not None and was != index:
                reasons.append(
                    f"vnets.{name}.worker: vnet {name} runs in worker {was}; moving it to "
                    f"worker {index} needs a restart"
                )
        in_config = {v.name for v in self.config.vnets}
        for name, index in self.placed.items():
            if name not in in_config and name not in placed:
                placed[name] = index  # made through the API: stays where it is
        now = set(wires(new, placed))
        for wire in sorted(now ^ set(self.wires)):
            verb = "added" if wire in now else "removed"
            reasons.append(
                f"epair {wire} {verb} between two workers: wires between workers are made "
                "at start; restart vrouterd to apply it"
            )
        for wire in sorted(now & set(self.wires)):
            for vnet, ifname in (wire.a, wire.b):
                before, after = self.config.interface(vnet, ifname), new.interface(vnet, ifname)
                if before is not None and after is not None and recreates(before, after):
                    reasons.append(
                        f"vnets.{vnet}.interfaces.{ifname}: an epair between workers is only "
                        "changed in place (addresses, mtu, ra); restart vrouterd to apply it"
                    )
        return placed, reasons

    async def _roll_back(self, done: list[WorkerProcess], tops: dict[int, list[str]]) -> None:
        for worker in done:
            try:
                await worker.ask("reload", {"_text": self.text, "_tops": tops[worker.index]})
            except ApiError as err:
                log.error(
                    "worker %d: cannot go back to the running configuration: %s", worker.index, err
                )

    def status_line(self) -> str:
        """Return the one-line status systemd shows."""
        return (
            f"{len(self.workers)} workers, {len(self.placed)} top-level vnets; "
            f"control socket {self.config.daemon.control_socket}"
        )

    # -- metrics -------------------------------------------------------------

    def metrics_selection(self) -> metrics.Selection:
        """Return what the config lets a scrape hold."""
        cfg = self.config.daemon
        return metrics.Selection(enabled=cfg.metrics_collectors, exclude=cfg.metrics_exclude)

    async def scrape(self, query: metrics.Query) -> Iterable[str]:
        """Fetch every worker's metrics at once; return the steps of their merge.

        A worker always gives its daemon-wide and process families (the
        front reads its vnets, CPU time and memory there); a worker that
        does not answer is ``vrouter_worker_up`` 0.  The text comes packed
        (zlib, base64): a tenth of the bytes, and no JSON escapes to write
        on the worker nor to read here.
        """
        args = {
            "collect": sorted(query.sources | {metrics.DAEMON, metrics.PROCESS}),
            "exclude": list(query.exclude),
            "openmetrics": query.openmetrics,
            "packed": True,
        }
        answers = await asyncio.gather(*(self._scrape(worker, args) for worker in self.workers))
        texts = [(worker.index, text) for worker, text in zip(self.workers, answers, strict=True)]
        return WorkersScrape(self, texts).steps(query)

    async def _scrape(self, worker: WorkerProcess, args: dict[str, Any]) -> str | None:
        try:
            pieces = await worker.ask(
                "metrics.scrape",
                args,
                purpose="metrics",
                timeout=SCRAPE_TIMEOUT,
                limit=SCRAPE_LIMIT,
            )
        except ApiError as err:
            log.warning("worker %d: metrics not scraped: %s", worker.index, err)
            return None
        if not isinstance(pieces, list):
            return None
        try:
            return "".join(zlib.decompress(base64.b64decode(piece)).decode() for piece in pieces)
        except (ValueError, TypeError, zlib.error) as err:
            log.warning("worker %d: metrics not scraped: %s", worker.index, err)
            return None


async def serve(
    config: Config,
    text: str,
    log_level: str,
    log_level_fixed: bool = False,
    log_format: str = logs.DEFAULT_FORMAT,
) -> int:
    """Run the front on ``config`` (parsed from ``text``) until SIGTERM/SIGINT or a worker's
    exit; return the exit code."""
    loop = asyncio.get_running_loop()
    front = Front(config, text, log_level, log_level_fixed, log_format)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, front.request_stop, signal.Signals(signum).name)
    reloads: set[asyncio.Task[None]] = set()

    async def sighup() -> None:
        with contextlib.suppress(ReloadError):  # logged and recorded; the daemon runs on
            await front.reload()

    def on_sighup() -> None:
        task = loop.create_task(sighup())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)  # a reload waits for start-up
    keepalive = systemd.Watchdog.start(loop)
    async with front.lock:
        try:
            await front.start()
        except Exception as err:
            log.debug("start-up failure", exc_info=True)
            log.error("start-up failed, nothing left behind: %s", err)
            systemd.status(f"start-up failed: {err}")
            return 1
    log.info(
        "vrouterd %s ready (pid %d), %d workers, %d top-level vnets",
        __version__,
        os.getpid(),
        len(front.workers),
        len(front.placed),
    )
    systemd.ready(front.status_line())
    try:
        await front.run()
    finally:
        async with front.lock:
            systemd.stopping("shutting down")
            await front.shutdown()
        if keepalive is not None:
            keepalive.cancel()
        log.info("stopped")
    return 1 if front.failure is not None else 0
