"""vrouterd as systemd runs it: notifications, watchdog, reload, stop, and the unit file.

The daemon is started the way ``systemd/vrouterd.service`` starts it, as far
as that can be done without a service manager: ``$NOTIFY_SOCKET`` names a
datagram socket this test listens on, ``$WATCHDOG_USEC``/``$WATCHDOG_PID``
are set, and the process runs with the unit's capability bounding set
(CAP_NET_ADMIN alone), ``NoNewPrivileges=`` and write-xor-execute
memory (``PR_SET_MDWE``, what ``MemoryDenyWriteExecute=`` enforces), and
creates a TAP device under them.  ``systemd-analyze verify`` checks the unit
file and the drop-ins docs/systemd.md gives.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import BIN, PYTHON, Vrouterd, links, vrouterd

from vrouter.api.client import ControlClient
from vrouter.client import Client

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "vrouterd.service"
RIPD_UNIT = ROOT / "systemd" / "vrouter-ripd.service"

# What the hardened unit serves: TAPs without host namespaces, and epairs.
CONFIG = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
log_level = "debug"

[vnets.red.interfaces.{p}r]
type = "tap"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]

[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
mtu = {epair_mtu}
addresses = ["203.0.113.1/30"]

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["203.0.113.2/30"]
"""

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1

# As the unit: WATCHDOG_PID is the daemon's own pid (exec keeps it), the
# bounding set holds CAP_NET_ADMIN only, no new privileges.
SANDBOX = 'WATCHDOG_PID=$$ exec setpriv --bounding-set=-all,+net_admin --no-new-privs "$@"'


def _deny_write_execute() -> None:
    """In the child before exec: refuse memory that is or becomes writable and executable."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


class Manager:
    """The service manager's side: a notify socket and the messages received on it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[tuple[float, dict[str, str]]] = []
        """Every datagram so far, with the time it was read, oldest first."""

    def expect(self, key: str, value: str = "1", timeout: float = 20) -> dict[str, str]:
        """Return the next message (after those already seen) that sets ``key=value``."""
        seen = len(self.messages)
        deadline = time.monotonic() + timeout
        while True:
            for _, message in self.messages[seen:]:
                if message.get(key) == value:
                    return message
            seen = len(self.messages)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key}={value} within {timeout}s: {self.messages}")
            self.read(left)

    def read(self, timeout: float) -> None:
        """Wait at most ``timeout`` seconds for one datagram and record it."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return
        pairs = (line.split("=", 1) for line in data.decode().split("\n") if line)
        self.messages.append((time.monotonic(), dict(pairs)))

    def collect(self, seconds: float) -> None:
        """Record everything that arrives during the next ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.read(left)

    def count(self, key: str, since: float) -> int:
        """Return how many messages set ``key=1`` at or after ``since``."""
        return sum(1 for t, m in self.messages if t >= since and m.get(key) == "1")


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    """A notify socket in the test's temporary directory."""
    manager = Manager(tmp_path / "notify.sock")
    try:
        yield manager
    finally:
        manager.sock.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Vrouterd]:
    """A daemon on CONFIG (not started); killed and cleaned up afterwards."""
    daemon = Vrouterd(tmp_path, template=CONFIG)
    try:
        yield daemon
    finally:
        daemon.cleanup()


def _start(daemon: Vrouterd, manager: Manager, watchdog_usec: int = 2_000_000) -> None:
    env = dict(os.environ, NOTIFY_SOCKET=str(manager.path), WATCHDOG_USEC=str(watchdog_usec))
    env.pop("WATCHDOG_PID", None)
    cmd = vrouterd("-c", str(daemon.config))
    with daemon.log.open("ab") as log:
        daemon.proc = subprocess.Popen(
            ["sh", "-c", SANDBOX, "sh", *cmd],
            env=env,
            stdout=log,
            stderr=log,
            preexec_fn=_deny_write_execute,
        )


def test_the_sandbox_is_real(tmp_path: Path) -> None:
    """The emulated unit settings do bind: otherwise the test below proves nothing."""
    probe = (
        "import mmap, os\n"
        "print(open('/proc/self/status').read())\n"
        "try:\n"
        "    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "except PermissionError:\n"
        "    print('W^X refused')\n"
        "print('watchdog pid', os.environ['WATCHDOG_PID'] == str(os.getpid()))\n"
    )
    result = subprocess.run(
        ["sh", "-c", SANDBOX, "sh", PYTHON, "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        preexec_fn=_deny_write_execute,
    )
    status = dict(line.split(":\t", 1) for line in result.stdout.splitlines() if ":\t" in line)
    net_admin = 1 << 12
    assert int(status["CapBnd"], 16) == net_admin
    assert int(status["CapEff"], 16) == net_admin
    assert status["NoNewPrivs"].strip() == "1"
    assert "W^X refused" in result.stdout
    assert "watchdog pid True" in result.stdout


def test_ready_watchdog_reload_stop(daemon: Vrouterd, manager: Manager) -> None:
    _start(daemon, manager)
    assert daemon.proc is not None

    ready = manager.expect("READY")
    ready_at = manager.messages[-1][0]
    assert ready["STATUS"] == f"2 vnets, 3 interfaces; control socket {daemon.socket}", ready
    assert daemon.call("status"), "the control socket answers once READY=1 is sent"
    assert daemon.tap("r") in links(), "the TAP exists under CAP_NET_ADMIN alone"

    # WATCHDOG_USEC=2 s: a keep-alive every second, from the event loop.
    manager.collect(3.2)
    assert manager.count("WATCHDOG", since=ready_at) >= 2, manager.messages

    # SIGHUP: RELOADING=1 stamped with CLOCK_MONOTONIC, then READY=1 again.
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    daemon.proc.send_signal(signal.SIGHUP)
    reloading = manager.expect("RELOADING")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert before <= int(reloading["MONOTONIC_USEC"]) <= after, reloading
    again = manager.expect("READY")
    assert again["STATUS"] == ready["STATUS"]
    assert f"reloaded {daemon.config}: no changes" in daemon.logtext()
    assert daemon.proc.poll() is None, "SIGHUP must not stop the daemon"

    # SIGTERM: STOPPING=1, then a clean exit that removed the TAP.
    daemon.proc.send_signal(signal.SIGTERM)
    manager.expect("STOPPING")
    assert daemon.proc.wait(20) == 0, daemon.logtext()
    assert daemon.tap("r") not in links()
    assert not Path(daemon.socket).exists()


def test_watchdog_pid_of_another_process_disables_keepalives(
    daemon: Vrouterd, manager: Manager
) -> None:
    env = dict(
        os.environ, NOTIFY_SOCKET=str(manager.path), WATCHDOG_USEC="200000", WATCHDOG_PID="1"
    )
    cmd = vrouterd("-c", str(daemon.config))
    with daemon.log.open("ab") as log:
        daemon.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    manager.expect("READY")
    manager.collect(1.0)  # five keep-alives, were the watchdog ours
    assert manager.count("WATCHDOG", since=0) == 0, manager.messages
    assert daemon.stop() == 0


def test_failed_start_reports_status_not_ready(daemon: Vrouterd, manager: Manager) -> None:
    blocker = daemon.dir / "not-a-directory"
    blocker.write_text("")
    daemon.config.write_text(
        daemon.config.read_text().replace(
            f'control_socket = "{daemon.dir}/control.sock"',
            f'control_socket = "{blocker}/control.sock"',
        )
    )
    _start(daemon, manager)
    assert daemon.proc is not None
    assert daemon.proc.wait(20) == 1, daemon.logtext()
    manager.collect(0.2)
    messages = [m for _, m in manager.messages]
    assert not [m for m in messages if "READY" in m], messages
    failed = [m["STATUS"] for m in messages if "STATUS" in m]
    assert failed, messages
    assert failed[-1].startswith("start-up failed: "), failed
    assert daemon.tap("r") not in links(), "nothing left behind"


# The unit file.


def _systemd_analyze() -> str:
    """Return a systemd-analyze that knows Type=notify-reload (systemd 253 or newer)."""
    candidates = [BIN / "systemd-analyze"]
    found = shutil.which("systemd-analyze")
    if found:
        candidates.append(Path(found))
    versions = []
    for path in candidates:
        if not path.exists():
            continue
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
        match = re.match(r"systemd (\d+)", out)
        versions.append(f"{path}: {out.splitlines()[0] if out else 'no version'}")
        if match and int(match.group(1)) >= 253:
            return str(path)
    pytest.fail(
        "systemd-analyze 253 or newer is needed to verify a Type=notify-reload unit; "
        f"found {versions or 'none'}. scripts/install.sh --test installs one."
    )


def _vrouterd() -> str:
    path = BIN / "vrouterd"
    found = str(path) if path.exists() else shutil.which("vrouterd")
    assert found, "vrouterd is not installed (pip install -e .)"
    return found


def _verify(unit: Path, analyze: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``systemd-analyze verify`` where /usr/local/bin/vrouterd exists, as installed.

    A private mount namespace puts a tmpfs on /usr/local/bin holding a link
    to this checkout's vrouterd; the machine's own /usr/local/bin is untouched.
    """
    script = (
        'mount -t tmpfs tmpfs /usr/local/bin && ln -s "$1" /usr/local/bin/vrouterd '
        '&& exec "$2" verify "$3"'
    )
    args = [_vrouterd(), analyze or _systemd_analyze(), str(unit)]
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_unit_verifies_clean() -> None:
    result = _verify(UNIT)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_ripd_unit_verifies_clean_beside_vrouterd(tmp_path: Path) -> None:
    """vrouter-ripd's unit, next to vrouterd's (it is ordered after it and bound to it)."""
    units = tmp_path / "units"
    units.mkdir()
    shutil.copy(UNIT, units / "vrouterd.service")
    shutil.copy(RIPD_UNIT, units / "vrouter-ripd.service")
    script = (
        'mount -t tmpfs tmpfs /usr/local/bin && ln -s "$1" /usr/local/bin/vrouterd '
        '&& ln -s "$2" /usr/local/bin/vrouter-ripd && exec "$3" verify "$4" "$5"'
    )
    ripd = str(Path(_vrouterd()).with_name("vrouter-ripd"))
    args = [_vrouterd(), ripd, _systemd_analyze(), str(units / "vrouterd.service"),
            str(units / "vrouter-ripd.service")]  # fmt: skip
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    text = RIPD_UNIT.read_text()
    assert "After=vrouterd.service" in text and "RestrictAddressFamilies=AF_UNIX\n" in text


def _readme_dropins() -> dict[str, str]:
    """Return the drop-ins of docs/systemd.md: code blocks whose first line names their path."""
    readme = (ROOT / "docs" / "systemd.md").read_text()
    blocks = re.findall(r"```ini\n(.*?)```", readme, re.S)
    dropins = {}
    for block in blocks:
        first = block.splitlines()[0]
        match = re.fullmatch(r"# (/etc/systemd/system/vrouterd\.service\.d/[\w.-]+\.conf)", first)
        if match:
            dropins[match.group(1)] = block
    return dropins


def test_readme_dropins_verify_clean(tmp_path: Path) -> None:
    dropins = _readme_dropins()
    assert "/etc/systemd/system/vrouterd.service.d/hosts.conf" in dropins, dropins.keys()
    for path, text in dropins.items():
        unit_dir = tmp_path / Path(path).parent.parent.name / Path(path).stem
        (unit_dir / "vrouterd.service.d").mkdir(parents=True)
        shutil.copy(UNIT, unit_dir / "vrouterd.service")
        (unit_dir / "vrouterd.service.d" / Path(path).name).write_text(text)
        result = _verify(unit_dir / "vrouterd.service")
        assert (result.returncode, result.stdout + result.stderr) == (0, ""), path
        # A typo in a drop-in would only warn: make sure this one was read at all.
        (unit_dir / "vrouterd.service.d" / Path(path).name).write_text(text + "NoSuchKey=1\n")
        assert "NoSuchKey" in _verify(unit_dir / "vrouterd.service").stderr, path


def test_systemd_252_dropin_with_the_machines_systemd(tmp_path: Path) -> None:
    """The Debian 12 drop-in, checked by this machine's own systemd-analyze.

    systemd 252 names the one line it cannot parse (Type=notify-reload) and
    nothing else; a newer one finds the unit and drop-in clean.
    """
    analyze = "/usr/bin/systemd-analyze"
    assert Path(analyze).exists(), "the systemd package provides systemd-analyze"
    version = subprocess.run(
        [analyze, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    match = re.match(r"systemd (\d+)", version)
    assert match, version
    dropin = _readme_dropins()["/etc/systemd/system/vrouterd.service.d/systemd-252.conf"]
    (tmp_path / "vrouterd.service.d").mkdir()
    shutil.copy(UNIT, tmp_path / "vrouterd.service")
    (tmp_path / "vrouterd.service.d" / "systemd-252.conf").write_text(dropin)
    result = _verify(tmp_path / "vrouterd.service", analyze)
    output = (result.stdout + result.stderr).splitlines()
    if int(match.group(1)) >= 253:
        assert (result.returncode, output) == (0, [])
    else:
        assert result.returncode == 0, output
        assert len(output) == 1, output
        assert re.fullmatch(
            rf"{tmp_path}/vrouterd\.service:\d+: "
            "Failed to parse service type, ignoring: notify-reload",
            output[0],
        ), output


# The system-call filter.

def _syscall_groups(analyze: str) -> dict[str, set[str]]:
    """Return systemd's system-call groups (``@name`` -> members, nested groups unexpanded)."""
    out = subprocess.run(
        [analyze, "syscall-filter"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    groups: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), set())
        elif current is not None and line.startswith("    ") and not line.strip().startswith("#"):
            current.add(line.strip())
    return groups


def _expand(groups: dict[str, set[str]], name: str) -> set[str]:
    found: set[str] = set()
    for member in groups[name]:
        found |= _expand(groups, member) if member.startswith("@") else {member}
    return found


def _calls(trace: Path) -> set[str]:
    """Return the names of the system calls in an ``strace -f`` log."""
    called = set()
    for line in trace.read_text(errors="replace").splitlines():
        match = re.match(r"\d+\s+([a-z_0-9]+)\(", line)
        if match:
            called.add(match.group(1))
    return called


def test_every_system_call_is_in_the_units_filter(tmp_path: Path) -> None:
    """Trace a daemon through what it does in service and check each call against
    ``SystemCallFilter=@system-service``: a call outside it would fail with EPERM."""
    analyze = _systemd_analyze()
    unit = UNIT.read_text()
    assert "SystemCallFilter=@system-service\n" in unit
    allowed = _expand(_syscall_groups(analyze), "@system-service")
    assert {"ioctl", "read", "write", "epoll_wait", "setns"} <= allowed

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    daemon = Vrouterd(tmp_path, template=CONFIG.replace(
        'log_level = "debug"', f'log_level = "debug"\nmetrics = "127.0.0.1:{port}"'))  # fmt: skip
    trace = tmp_path / "syscalls.trace"
    ns = f"{daemon.prefix}h"
    try:
        with daemon.log.open("ab") as log:
            daemon.proc = subprocess.Popen(
                ["strace", "-f", "-qq", "-o", str(trace), *vrouterd("-c", str(daemon.config))],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                pid = int(daemon.call("status")["pid"])
                break
            except OSError:
                assert time.monotonic() < deadline, daemon.logtext()
                assert daemon.proc.poll() is None, daemon.logtext()
                time.sleep(0.2)
        # Traffic: the TAP's kernel side in a namespace of the test's, pinged through.
        tap = daemon.tap("r")
        subprocess.run(["ip", "netns", "add", ns], check=True, timeout=30)
        subprocess.run(["ip", "link", "set", tap, "netns", ns], check=True, timeout=30)
        for cmd in (["ip", "addr", "add", "192.0.2.2/24", "dev", tap],
                    ["ip", "link", "set", tap, "up"],
                    ["ping", "-c", "3", "-i", "0.2", "-W", "5", "192.0.2.1"]):  # fmt: skip
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, timeout=60)
        # API requests: views, a change, a capture and a program socket; a scrape.
        assert daemon.call("route.add", vnet="red", prefix="198.51.100.0/24", via="192.0.2.2")
        assert daemon.call("route.show", vnet="red")
        assert daemon.ctl("netstat", "red").returncode == 0
        with ControlClient(daemon.socket) as client:
            _, fd = client.call_fd("capture", vnet="red", interface=tap)
            os.close(fd)
        with Client(daemon.socket) as client, client.socket("red") as sock:
            sock.bind(("192.0.2.1", 7))
            sock.sendto(b"traced", ("192.0.2.2", 9))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as page:
            assert b"vrouter_build_info" in page.read()
        os.kill(pid, signal.SIGHUP)
        time.sleep(1.0)
        os.kill(pid, signal.SIGTERM)
        assert daemon.proc.wait(60) == 0, daemon.logtext()
    finally:
        daemon.cleanup()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
    called = _calls(trace)
    assert {"ioctl", "sendmsg"} <= called and called & {"epoll_wait", "epoll_pwait"}, called
    assert called - allowed == set(), f"outside @system-service: {sorted(called - allowed)}"
