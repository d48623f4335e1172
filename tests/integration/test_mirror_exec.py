"""``vrouterctl exec`` for a caller who is not root: vrouterd starts the program as the caller.

    h1 ── {p}r [red] ── mirror {p}mr      {p}b [blue] ── mirror {p}mb
          192.0.2.0/28                       198.51.100.0/24

uid 65534 (nobody) may manage ``red`` and not ``blue``.  Its programs run in
red's mirror as itself, with its own stdin, stdout and stderr, environment
and working directory; the exit status comes back; an HTTP server it starts
there (iperf3) is reached from h1 through the punt path; Ctrl-C (SIGINT to vrouterctl)
ends the program; ``blue`` refuses it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, run, vrouterctl

pytestmark = pytest.mark.integration

NOBODY = 65534

TOPOLOGY = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"

[vnets.red.permissions]
manage = ["user:nobody"]

[vnets.red.interfaces.{p}r]
type = "tap"
addresses = ["192.0.2.1/28"]
host = {{ netns = "{p}h1", addresses = ["192.0.2.2/28"], gateway = "192.0.2.1" }}

[vnets.red.mirror]
netns = "{p}mr"

[vnets.blue.interfaces.{p}b]
type = "tap"
addresses = ["198.51.100.1/24"]

[vnets.blue.mirror]
netns = "{p}mb"
"""


@pytest.fixture(scope="module")
def lab(open_workdir: Path) -> Iterator[Vrouterd]:
    d = Vrouterd(open_workdir, TOPOLOGY)
    d.dir.chmod(0o755)  # nobody reaches the control socket in it
    try:
        d.start()
        yield d
    finally:
        d.close()


def as_nobody(d: Vrouterd, *args: str) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            *vrouterctl("--socket", d.socket, *args)]  # fmt: skip


def nobody(
    d: Vrouterd, *args: str, stdin: str | None = None, cwd: str = "/"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        as_nobody(d, *args), input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd,
        check=False,
    )  # fmt: skip


def test_a_program_runs_in_the_mirror_as_the_caller(lab: Vrouterd) -> None:
    p = lab.prefix
    done = nobody(lab, "exec", "red", "--", "sh", "-c", f"id -u; ip -br addr show dev {p}r")
    assert done.returncode == 0, done.stderr
    uid, addresses = done.stdout.splitlines()[:2]
    assert uid == str(NOBODY)
    assert "192.0.2.1/28" in addresses  # red's representor: the mirror's view


def test_stdio_environment_directory_and_exit_status_are_the_callers(lab: Vrouterd) -> None:
    done = nobody(
        lab, "exec", "red", "--", "sh", "-c",
        'read line; echo "got $line in $(pwd) as $VROUTER_PROBE"; echo oops >&2; exit 7',
        stdin="hello\n", cwd="/tmp",
    )  # fmt: skip
    assert done.returncode == 7
    assert done.stdout == "got hello in /tmp as \n"  # the test's own environment has no probe
    assert done.stderr == "oops\n"
    probe = subprocess.run(
        ["env", "VROUTER_PROBE=set", *as_nobody(lab, "exec", "red", "--", "sh", "-c",
                                                 'echo "$VROUTER_PROBE"')],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert probe.stdout == "set\n", probe.stderr


def test_another_vnet_refuses_the_caller(lab: Vrouterd) -> None:
    done = nobody(lab, "exec", "blue", "--", "true")
    assert done.returncode == 1
    assert "may not manage vnet blue" in done.stderr


def test_a_server_started_with_exec_is_reached_and_ctrl_c_ends_it(lab: Vrouterd) -> None:
    server = subprocess.Popen(
        as_nobody(lab, "exec", "red", "--", "iperf3", "-s", "-B", "192.0.2.1", "-p", "5201"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            got = lab.exec("h1", "iperf3", "-c", "192.0.2.1", "-p", "5201", "-t", "1", "-J",
                           timeout=60, check=False)  # fmt: skip
            if '"error"' not in got.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert got.returncode == 0, got.stdout[-500:] + got.stderr
        if '"error"' in got.stdout:
            server.kill()
            out, err = server.communicate(timeout=10)
            raise AssertionError(f"{got.stdout[-300:]}; the server said: {out} {err}")
        assert json.loads(got.stdout)["end"]["sum_received"]["bytes"] > 0
        server.send_signal(signal.SIGINT)  # the terminal's Ctrl-C, passed on
        out, err = server.communicate(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    assert "Server listening on 5201" in out, err
    assert "interrupt" in out + err  # iperf3 itself got the SIGINT
    pids = run("ip", "netns", "pids", lab.ns("mr")).stdout.split()
    assert pids == [], "the server is gone from the mirror"
