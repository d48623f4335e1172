"""FRR routers (zebra and routing daemons) in a vrouterd's host namespaces.

Each router is an FRR instance of its own: pathspace ``-N NAMESPACE`` puts
its vty sockets, configs and pid files under ``/var/run/frr/NAMESPACE/``
(owned by the ``frr`` user, which the daemons run as), so it needs nothing
of the Debian package's default instance, running or not.  Logs go to the
test's directory.  :meth:`FrrLab.stop` kills every daemon by its pid file
and removes the run directories; the harness's cleanup kills whatever is
left in the namespaces.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from harness import Vrouterd, run

FRR_BIN = Path("/usr/lib/frr")
RUN_DIR = Path("/var/run/frr")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class FrrLab:
    """FRR instances around ``daemon``, one per host namespace."""

    def __init__(self, daemon: Vrouterd) -> None:
        self.d = daemon
        self.pidfiles: list[Path] = []
        self.rundirs: list[Path] = []

    def rundir(self, router: str) -> Path:
        """Return the run directory of ``router``'s instance."""
        return RUN_DIR / self.d.ns(router)

    def start(self, router: str, daemon: str, config: str) -> None:
        """Start zebra and ``daemon`` (``ripd``...) in ``router``'s namespace on ``config``."""
        self.start_daemons(router, {daemon: config})

    def start_daemons(self, router: str, configs: dict[str, str]) -> None:
        """Start zebra, then each daemon of ``configs`` (name: config) in ``router``'s namespace."""
        rundir = self.rundir(router)
        rundir.mkdir(parents=True, exist_ok=True)
        self.rundirs.append(rundir)
        shutil.chown(rundir, "frr", "frr")
        (self.d.dir / f"frr-{router}.conf").write_text("\n".join(configs.values()))
        for name, text in {"zebra": f"hostname {router}\n", **configs}.items():
            conf = rundir / f"{name}.conf"
            conf.write_text(text)
            shutil.chown(conf, "frr", "frr")
            pidfile = rundir / f"{name}.pid"
            self.pidfiles.append(pidfile)
            # -d: the command returns once the daemon is up (zebra's socket ready for ripd).
            run(
                "ip",
                "netns",
                "exec",
                self.d.ns(router),
                str(FRR_BIN / name),
                "-d",
                "-N",
                self.d.ns(router),
                "-f",
                str(conf),
                "-i",
                str(pidfile),
                "--log",
                f"file:{self.d.dir / f'frr-{router}-{name}.log'}",
                timeout=20,
            )

    def vtysh(self, router: str, command: str) -> str:
        """Return what ``vtysh -c command`` prints for ``router``'s instance."""
        return self.d.exec(router, "vtysh", "-N", self.d.ns(router), "-c", command).stdout

    def stop(self) -> None:
        """Kill every daemon by its pid file (TERM, then KILL after 5 s); remove run dirs."""
        pids = []
        for pidfile in reversed(self.pidfiles):
            try:
                pid = int(pidfile.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for rundir in self.rundirs:
            shutil.rmtree(rundir, ignore_errors=True)
