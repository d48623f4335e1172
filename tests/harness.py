"""Helpers for real-traffic tests: run commands, drive a vrouterd process.

Every helper process runs under :data:`PYTHON`, the interpreter running the
tests (the venv's, with the project's dependencies), never a bare
``python3``: on a fresh machine that is the system's, which has none of
them.  :func:`forbid_bare_python` (installed for the whole session by the
suite's ``conftest.py``) makes any other start of an interpreter fail.

Every name (TAP, namespace, control socket) carries a per-run prefix so runs
never collide; only documentation addresses are used, and only inside the
namespaces the daemon creates.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vrouter.api.client import ControlClient

PYTHON = sys.executable
"""The interpreter every helper process runs under (inside host namespaces too)."""
BIN = Path(PYTHON).parent
"""The venv's ``bin``: the console scripts (``vrouterd``, ``vrouterctl``) and the
tools ``scripts/install.sh`` puts there."""

_serial = itertools.count()


def python(*args: str) -> list[str]:
    """Return the command line running :data:`PYTHON` with ``args``."""
    return [PYTHON, *args]


def vrouterd(*args: str) -> list[str]:
    """Return the command line running ``vrouterd ARGS``."""
    return python("-m", "vrouter.daemon.main", *args)


def vrouterctl(*args: str) -> list[str]:
    """Return the command line running ``vrouterctl ARGS``."""
    return python("-m", "vrouter.cli.vrouterctl", *args)


_INTERPRETER = re.compile(r"python[0-9.]*")


def bare_python(argv: object) -> str | None:
    """Return the word of ``argv`` naming an interpreter other than :data:`PYTHON`, if any.

    ``argv`` is what ``subprocess`` was given: a command line (a list) or a
    shell command (a string).  Every word is checked, not just the first, so
    ``ip netns exec NS python3`` and ``sh -c "python3 ..."`` are caught too.
    """
    if isinstance(argv, str | bytes | os.PathLike):
        argv = [argv]
    if not isinstance(argv, list | tuple):
        return None
    for arg in argv:
        text = os.fsdecode(arg)
        if text == PYTHON:
            continue
        for word in text.split():
            if _INTERPRETER.fullmatch(os.path.basename(word)):
                return word
    return None


def forbid_bare_python() -> None:
    """Make every start of an interpreter other than :data:`PYTHON` fail, from now on.

    An audit hook sees each ``subprocess.Popen``, ``os.exec*`` and
    ``os.posix_spawn`` of this process before it happens and raises instead.
    """

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "subprocess.Popen":  # (executable, args, cwd, env)
            word = bare_python(args[1])
        elif event in ("os.exec", "os.posix_spawn"):  # (path, argv, env)
            word = bare_python([args[0], *args[1]])
        else:
            return
        if word is not None:
            raise RuntimeError(
                f"a test started {word!r}: run helper processes under harness.PYTHON "
                "(python(), vrouterctl(), vrouterd()), which has the project's dependencies"
            )

    sys.addaudithook(hook)


def _prefix() -> str:
    return f"t{os.getpid() % 100000:05d}{next(_serial)}"


def run(*cmd: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` with a bound on time; return the completed process."""
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def ping_received(output: str) -> int:
    """The number of replies ``ping`` counted in its summary (``N received``)."""
    match = re.search(r"(\d+) received", output)
    assert match, output
    return int(match.group(1))


def wait_listening(proc: subprocess.Popen[Any], timeout: float = 15) -> bytes:
    """Wait until ``proc`` (tcpdump, ``vrouterctl capture``) says on its stderr pipe that
    it listens; return what it wrote so far."""
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while b"listening on" not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"{proc.args!r} did not start listening: {seen!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            proc.wait(5)
            raise AssertionError(f"{proc.args!r} exited {proc.returncode}: {seen.decode()}")
        seen += chunk
    return seen


def assert_download_intact(
    daemon: Vrouterd, workdir: Path, server: str, client: str, address: str, size: int
) -> None:
    """Serve ``size`` random bytes over HTTP from host ``server`` on ``address``:8080 and
    fetch them with curl from host ``client``; assert the sha256 of what arrived."""
    data = os.urandom(size)
    (workdir / "blob").write_bytes(data)
    httpd = subprocess.Popen(
        [
            "ip", "netns", "exec", daemon.ns(server),
            *python("-m", "http.server", "8080", "--bind", address, "--directory", str(workdir)),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        got = None
        for _ in range(50):
            time.sleep(0.2)
            result = daemon.exec(
                client, "curl", "-sS", "--max-time", "60", "-o", str(workdir / "got"),
                f"http://{address}:8080/blob", check=False, timeout=90,
            )  # fmt: skip
            if result.returncode == 0:
                got = (workdir / "got").read_bytes()
                break
        assert got is not None, "curl never succeeded"
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        httpd.kill()
        httpd.wait(10)


def netns_list() -> set[str]:
    """Return the names of the named network namespaces."""
    out = run("ip", "netns", "list").stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def links() -> set[str]:
    """Return the names of the interfaces in the root namespace."""
    out = run("ip", "-o", "link", "show").stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


DEMO_LIKE = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
log_level = "debug"

[vnets.red.interfaces.{p}r]
type = "tap"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
host = {{ netns = "{p}h1", addresses = ["192.0.2.2/24", "2001:db8:1::2/64"], \
gateway = "192.0.2.1", gateway6 = "2001:db8:1::1" }}

[vnets.red.interfaces.{p}s]
type = "tap"
addresses = ["2001:db8:3::1/64"]
ra = {{ interval = 30, lifetime = 1800, mtu = true, rdnss = ["2001:db8:3::53"] }}
host = {{ netns = "{p}h4", slaac = true }}

[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
mtu = {epair_mtu}
addresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]

[[vnets.red.routes]]
to = "198.51.100.0/24"
via = "203.0.113.2"

[[vnets.red.routes]]
to = "2001:db8:2::/64"
via = "2001:db8:ff::2"

[vnets.blue.interfaces.{p}b]
type = "tap"
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]
host = {{ netns = "{p}h2", addresses = ["198.51.100.2/24", "2001:db8:2::2/64"], \
gateway = "198.51.100.1", gateway6 = "2001:db8:2::1" }}

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
mtu = {epair_mtu}
addresses = ["203.0.113.2/30", "2001:db8:ff::2/64"]

[[vnets.blue.routes]]
to = "192.0.2.0/24"
via = "203.0.113.1"

[[vnets.blue.routes]]
to = "2001:db8:1::/64"
via = "2001:db8:ff::1"

[[vnets.blue.routes]]
to = "2001:db8:3::/64"
via = "2001:db8:ff::1"

[vnets.green.interfaces.{p}g]
type = "tap"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
host = {{ netns = "{p}h3", addresses = ["192.0.2.2/24", "2001:db8:1::2/64"], \
gateway = "192.0.2.1", gateway6 = "2001:db8:1::1" }}
"""


class Vrouterd:
    """A vrouterd process started on a generated config."""

    def __init__(self, workdir: Path, template: str = DEMO_LIKE, epair_mtu: int = 1500) -> None:
        self.prefix = _prefix()
        self.dir = workdir / self.prefix
        self.dir.mkdir(parents=True)
        self.config = self.dir / "vrouter.toml"
        self.write_config(template.format(dir=self.dir, p=self.prefix, epair_mtu=epair_mtu))
        self.socket = str(self.dir / "control.sock")
        self.log = self.dir / "vrouterd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self, text: str) -> None:
        """Write ``text`` as the daemon's config file; without a ``data_dir`` it gets one in
        the test's directory, so the MAC seed and leases stay there (and a reload of a
        rewritten file does not try to move it)."""
        if "data_dir" not in text:
            text = text.replace("[daemon]\n", f'[daemon]\ndata_dir = "{self.dir}/data"\n', 1)
        self.config.write_text(text)

    def ns(self, host: str) -> str:
        """Return the namespace name of demo host ``h1``/``h2``/``h3``."""
        return f"{self.prefix}{host}"

    def tap(self, color: str) -> str:
        """Return the TAP name of vnet ``r``/``b``/``g``."""
        return f"{self.prefix}{color}"

    def start(
        self,
        *args: str,
        timeout: float = 20,
        env: dict[str, str] | None = None,
        netns: str | None = None,
    ) -> None:
        """Start the daemon (``env`` added to ours, ``args`` after ``-c CONFIG``) and wait
        until its control socket answers.

        ``netns``: run it inside that (existing) network namespace, whose
        name must start with the prefix so cleanup removes it.
        """
        # nsenter, not "ip netns exec": the daemon must share our mount namespace, or the
        # host namespaces it creates (bind mounts in /run/netns) would not be seen here.
        inside = [] if netns is None else ["nsenter", f"--net=/run/netns/{netns}"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*inside, *vrouterd("-c", str(self.config), *args)],
                stdout=log,
                stderr=log,
                env=None if env is None else {**os.environ, **env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"vrouterd exited {self.proc.returncode}:\n{self.logtext()}")
            try:
                with ControlClient(self.socket, timeout=2) as client:
                    client.call("status")
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"vrouterd did not become ready:\n{self.logtext()}")

    def wait_ipv6(self, timeout: float = 15) -> None:
        """Wait until every IPv6 address of every vnet has passed DAD."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = [
                a["address"]
                for vnet in self.call("vnet.list")
                for ifp in self.call("ifconfig", vnet=vnet["name"])
                for a in ifp["inet6"]
                if a["state"] != "preferred"
            ]
            if not pending:
                return
            time.sleep(0.2)
        raise AssertionError(f"IPv6 addresses still tentative: {pending}")

    def call(self, op: str, **args: Any) -> Any:
        """Make one control request."""
        with ControlClient(self.socket, timeout=10) as client:
            return client.call(op, **args)

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``vrouterctl ARGS`` against this daemon (never raises on its exit status)."""
        return run(*vrouterctl("--socket", self.socket, *args), timeout=timeout, check=False)

    def exec(
        self, host: str, *cmd: str, timeout: float = 30, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside host ``host``'s namespace."""
        return run("ip", "netns", "exec", self.ns(host), *cmd, timeout=timeout, check=check)

    def python(
        self, host: str, *args: str, timeout: float = 30, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run :data:`PYTHON` with ``args`` inside host ``host``'s namespace."""
        return self.exec(host, *python(*args), timeout=timeout, check=check)

    def counters(self, vnet: str, ifname: str) -> dict[str, Any]:
        """Return the counters of one interface."""
        for ifp in self.call("ifconfig", vnet=vnet):
            if ifp["name"] == ifname:
                return dict(ifp["counters"])
        raise AssertionError(f"no interface {ifname} in vnet {vnet}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signal the daemon and wait for it; return its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"vrouterd ignored signal {sig}:\n{self.logtext()}") from None

    def logtext(self) -> str:
        """Return what the daemon logged."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self) -> None:
        """Stop the daemon if it runs (SIGTERM, as a user would), then :meth:`cleanup`."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.stop()
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        """Kill the daemon if it still runs and remove anything with our prefix."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        # Workers (``workers = N``) name our config on their command line.
        subprocess.run(["pkill", "-KILL", "-f", str(self.config)], capture_output=True, timeout=10)
        for name in netns_list():
            if name.startswith(self.prefix):
                subprocess.run(["ip", "netns", "pids", name], capture_output=True, timeout=10)
                for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
                    subprocess.run(["kill", "-9", pid], capture_output=True, timeout=10)
                run("ip", "netns", "del", name, check=False)
        for name in links():
            if name.startswith(self.prefix):
                run("ip", "link", "del", name, check=False)


def running(daemon: Vrouterd) -> Iterator[Vrouterd]:
    """Start ``daemon``, wait for IPv6 DAD, yield it; always stop and clean up."""
    try:
        daemon.start()
        daemon.wait_ipv6()
        yield daemon
    finally:
        daemon.close()


@contextlib.contextmanager
def iperf3_server(daemon: Vrouterd, host: str = "h2", bind: str = "198.51.100.2") -> Iterator[None]:
    """Run a one-shot iperf3 server in demo host ``host``, bound to ``bind``, while the
    block runs (it has half a second to listen); kill it after."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", daemon.ns(host), "iperf3", "-s", "-1", "-B", bind],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        yield
    finally:
        server.kill()
        server.wait(10)
