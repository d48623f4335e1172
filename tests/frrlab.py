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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import Vrouterd, run

from vrouter.mirror.vrfdir import is_mount_point

FRR_BIN = Path("/usr/lib/frr")
RUN_DIR = Path("/var/run/frr")


TWO_PATHS = """
[daemon]
control_socket = "{{dir}}/control.sock"
state_dir = "{{dir}}/state"

[vnets.red.interfaces.{{p}}r]
type = "tap"
addresses = ["{red_lan}"]
host = {{{{ netns = "{{p}}h1", addresses = ["{h1}"], {gateway} = "{red_gw}" }}}}

[vnets.red.interfaces.e0]
type = "epair"
peer = "blue:e0"
addresses = ["{red_e0}"]

[vnets.red.interfaces.e1]
type = "epair"
peer = "blue:e1"
addresses = ["{red_e1}"]

[vnets.red.mirror]
netns = "{{p}}mr"

[vnets.blue.interfaces.{{p}}b]
type = "tap"
addresses = ["{blue_lan}"]
host = {{{{ netns = "{{p}}h2", addresses = ["{h2}"], {gateway} = "{blue_gw}" }}}}

[vnets.blue.interfaces.e0]
type = "epair"
peer = "red:e0"
addresses = ["{blue_e0}"]

[vnets.blue.interfaces.e1]
type = "epair"
peer = "red:e1"
addresses = ["{blue_e1}"]

[vnets.blue.mirror]
netns = "{{p}}mb"
"""


def two_paths(
    lans: tuple[str, str], hosts: tuple[str, str], e0: tuple[str, str], e1: tuple[str, str]
) -> str:
    """Return the topology of two vnets joined by two epairs, each with a mirror::

        h1 ── {p}r [red] e0 ══ epair ══ e0 [blue] {p}b ── h2
                         e1 ══ epair ══ e1
               mirror {p}mr                 mirror {p}mb

    ``lans`` are red's and blue's LAN addresses (ADDR/LEN, the hosts' gateways),
    ``hosts`` h1's and h2's, ``e0`` and ``e1`` red's and blue's ends of each epair.
    """
    gateway = "gateway6" if ":" in lans[0] else "gateway"
    return TWO_PATHS.format(
        red_lan=lans[0], blue_lan=lans[1], h1=hosts[0], h2=hosts[1], gateway=gateway,
        red_gw=lans[0].split("/")[0], blue_gw=lans[1].split("/")[0],
        red_e0=e0[0], blue_e0=e0[1], red_e1=e1[0], blue_e1=e1[1],
    )  # fmt: skip


def two_paths_v4() -> str:
    """Return :func:`two_paths` with red's LAN 192.0.2.0/28, blue's 192.0.2.32/28, and the
    epairs on 198.51.100.0/30 (e0) and 198.51.100.4/30 (e1)."""
    return two_paths(
        ("192.0.2.1/28", "192.0.2.33/28"),
        ("192.0.2.2/28", "192.0.2.34/28"),
        ("198.51.100.1/30", "198.51.100.2/30"),
        ("198.51.100.5/30", "198.51.100.6/30"),
    )


@contextmanager
def routers(d: Vrouterd, configs: dict[str, dict[str, str]]) -> Iterator[FrrLab]:
    """Start ``d``, then each router's FRR daemons (router: {daemon: config}); stop all after."""
    frr = FrrLab(d)
    try:
        d.start()
        for router, daemons in configs.items():
            frr.start_daemons(router, daemons)
        yield frr
    finally:
        try:
            frr.stop()
        finally:
            d.close()


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

    def start_vrfs(
        self, router: str, vrf_dir: Path, daemons: tuple[str, ...], config: str, vrfs: set[str]
    ) -> None:
        """Start one FRR in ``router``'s namespace that serves each namespace in ``vrf_dir``
        as a VRF: ``zebra -n`` and ``daemons`` (``ospfd``...), each in a mount namespace of
        its own whose ``/run/netns`` is ``vrf_dir`` (a copy that follows it), then load
        ``config`` through vtysh once zebra knows ``vrfs``.  (A daemon that reads
        ``interface X vrf V`` from its own config file at start, before zebra told it of
        V, puts X in its default VRF.)"""
        ns = self.d.ns(router)
        rundir = self.rundir(router)
        rundir.mkdir(parents=True, exist_ok=True)
        self.rundirs.append(rundir)
        shutil.chown(rundir, "frr", "frr")
        empty = rundir / "empty.conf"
        empty.write_text(f"hostname {router}\n")
        shutil.chown(empty, "frr", "frr")
        for name in ("zebra", *daemons):
            pidfile = rundir / f"{name}.pid"
            self.pidfiles.append(pidfile)
            run(
                "ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "slave",
                "sh", "-c", 'mount --rbind "$0" /run/netns && exec "$@"', str(vrf_dir),
                str(FRR_BIN / name), "-d", *(["-n"] if name == "zebra" else []), "-N", ns,
                "-f", str(empty), "-i", str(pidfile),
                "--log", f"file:{self.d.dir / f'frr-{router}-{name}.log'}",
                timeout=20,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while not vrfs <= self.vrfs(router):
            if time.monotonic() > deadline:
                raise AssertionError(f"zebra knows VRFs {self.vrfs(router)}, not {vrfs}")
            time.sleep(0.2)
        conf = rundir / "frr.conf"
        conf.write_text(config)
        shutil.chown(conf, "frr", "frr")
        (self.d.dir / f"frr-{router}.conf").write_text(config)
        done = self.d.exec(router, "vtysh", "-N", ns, "-f", str(conf), check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    def vrfs(self, router: str) -> set[str]:
        """Return the VRFs ``router``'s zebra knows (``show vrf``)."""
        out = self.vtysh(router, "show vrf")
        return {line.split()[1] for line in out.splitlines() if line.startswith("vrf ")}

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


def unmount_vrf_dir(path: Path) -> None:
    """Unmount a mirrors' ``vrf_dir`` and whatever vrouterd left bound in it."""
    if not path.is_dir():
        return
    for entry in path.iterdir():
        if is_mount_point(entry):
            run("umount", "--lazy", str(entry), check=False)
    for _ in range(8):  # bound onto itself, once or (after a failure) more
        if not is_mount_point(path):
            break
        run("umount", "--lazy", str(path), check=False)
