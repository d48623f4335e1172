"""Permissions and limits on a running vrouterd, with vrouterctl run as other users.

The daemon's config grants ``manage`` on vnet ``blue`` to uid 65534
(nobody) and makes uid 4001 a daemon admin.  vrouterctl runs under those
uids through ``setpriv --reuid … --clear-groups`` (no account needed for
4001).  nobody is refused every changing command on ``red`` (exit 1,
"permission denied", nothing changed, a log line with its uid and pid),
may make them on ``blue``, and may use every view.  A child vnet cannot
exceed its parent's limits: not in the config, not at run time; a route
beyond the limit is refused with the message and counted.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import PYTHON, Vrouterd, run, vrouterctl, vrouterd

pytestmark = pytest.mark.integration

NOBODY = 65534
ADMIN = 4001

TEMPLATE = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
log_level = "debug"
admins = ["uid:4001"]

[vnets.red]
[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["203.0.113.1/30"]

[[vnets.red.routes]]
to = "198.51.100.0/24"
via = "203.0.113.2"

[vnets.blue.permissions]
manage = ["user:nobody"]

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["203.0.113.2/30"]

[vnets.lab.limits]
routes = 4
interfaces = 3

[vnets."lab/r1"]
[vnets."lab/r1".limits]
routes = 2
"""


@pytest.fixture(scope="module")
def daemon(open_workdir: Path) -> Iterator[Vrouterd]:
    d = Vrouterd(open_workdir, template=TEMPLATE)
    d.dir.chmod(0o755)
    try:
        d.start()
        yield d
    finally:
        d.close()


def as_user(uid: int, *cmd: str) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *cmd]


def ctl_as(daemon: Vrouterd, uid: int, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = vrouterctl("--socket", daemon.socket, *args)
    return run(*as_user(uid, *cmd), timeout=60, check=False)


def ok_as(daemon: Vrouterd, uid: int, *args: str) -> str:
    result = ctl_as(daemon, uid, *args)
    assert result.returncode == 0, f"uid {uid}: vrouterctl {' '.join(args)}: {result.stderr}"
    return result.stdout


def snapshot(daemon: Vrouterd) -> dict[str, object]:
    """Return what a refused command must not have changed."""
    return {
        "vnets": sorted(v["name"] for v in daemon.call("vnet.list")),
        "red": [(i["name"], sorted(i["addresses"])) for i in daemon.call("ifconfig", vnet="red")],
        "routes": daemon.call("route.show", vnet="red"),
        "ttl": daemon.call("sysctl.get", vnet="red", names=["net.inet.ip.ttl"])[0]["value"],
        "rules": daemon.call("firewall.show", vnet="red")["rules"],
        "modules": [m["name"] for m in daemon.call("module.list")["modules"] if m["loaded"]],
    }


def test_the_socket_is_open_to_all_because_non_root_principals_are_configured(
    daemon: Vrouterd,
) -> None:
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o666
    status = json.loads(ok_as(daemon, NOBODY, "status", "--json"))
    assert status["caller"]["uid"] == NOBODY
    assert status["caller"]["admin"] is False
    assert json.loads(ok_as(daemon, ADMIN, "status", "--json"))["caller"]["admin"] is True


def test_nobody_is_refused_every_changing_command_on_red(daemon: Vrouterd) -> None:
    rules = daemon.dir / "rules.toml"
    rules.write_text('default = "block"\n')
    rules.chmod(0o644)
    p = daemon.prefix
    refused = [
        ("vnet", "create", "red/x"),
        ("vnet", "destroy", "red"),
        ("vnet", "destroy", "red", "-r"),
        ("vnet", "create", "green"),
        ("epair", "create", "red:p0", "blue:p0"),
        ("tap", "create", "red", f"{p}tr"),
        ("interface", "move", "red", "ep0", "blue"),
        ("ifconfig", "red", "ep0", "vnet", "blue"),
        ("interface", "destroy", "red", "ep0"),
        ("interface", "destroy", "blue", "ep0"),  # its other end is red's
        ("ifconfig", "red", "ep0", "destroy"),
        ("address", "add", "red", "ep0", "203.0.113.129/25"),
        ("address", "del", "red", "ep0", "203.0.113.1/30"),
        ("route", "add", "red", "192.0.2.0/24", "blackhole"),
        ("route", "del", "red", "198.51.100.0/24"),
        ("sysctl", "red", "net.inet.ip.ttl=9"),
        ("sysctl", "blue", "vnet.limits.routes=5"),  # blue's own limits: admins only
        ("firewall", "red", "load", str(rules)),
        ("firewall", "red", "flush"),
        ("capture", "red", "ep0", "-c", "1"),
        ("reload",),
        ("module", "load", "firewall"),
        ("module", "unload", "firewall"),
    ]
    before = snapshot(daemon)
    for args in refused:
        result = ctl_as(daemon, NOBODY, *args)
        assert result.returncode == 1, (
            f"{args}: {result.returncode} {result.stdout} {result.stderr}"
        )
        assert "permission denied: uid 65534 may not" in result.stderr, (args, result.stderr)
    assert snapshot(daemon) == before
    log = daemon.logtext()
    assert "permission denied: uid 65534 may not manage vnet red (uid 65534 (nobody)" in log
    assert "request route.add" in log and "request capture" in log
    assert "may not reload the configuration (daemon admins only)" in log
    assert f"{p}tr" not in run("ip", "-o", "link", "show").stdout


def test_a_refusal_leaves_the_connection_usable(daemon: Vrouterd) -> None:
    script = (
        "import sys\n"
        "from vrouter.api.client import ControlClient\n"
        "from vrouter.api.protocol import ApiError\n"
        f"c = ControlClient({daemon.socket!r})\n"
        "try:\n"
        "    c.call('route.add', vnet='red', prefix='192.0.2.0/24', type='blackhole')\n"
        "except ApiError as err:\n"
        "    print('refused:', err)\n"
        "print('routes:', len(c.call('route.show', vnet='blue')))\n"
        "added = c.call('route.add', vnet='blue', prefix='192.0.2.0/24', type='blackhole')\n"
        "print(added['prefix'])\n"
        "c.call('route.del', vnet='blue', prefix='192.0.2.0/24')\n"
    )
    out = run(*as_user(NOBODY, PYTHON, "-c", script), timeout=30).stdout
    assert out.splitlines() == [
        "refused: permission denied: uid 65534 may not manage vnet red",
        "routes: 1",
        "192.0.2.0/24",
    ]
    assert daemon.call("status")["vnets"] == 4, "the daemon serves others as before"


def test_nobody_may_manage_blue_and_what_it_holds(daemon: Vrouterd) -> None:
    p = daemon.prefix
    rules = daemon.dir / "rules-blue.toml"
    rules.write_text('default = "pass"\n[[rules]]\naction = "block"\nproto = "udp"\n')
    rules.chmod(0o644)
    steps = [
        ("vnet", "create", "blue/x"),
        ("epair", "create", "blue:p1", "blue/x:p1"),
        ("address", "add", "blue", "p1", "203.0.113.69/30"),
        ("address", "add", "blue/x", "p1", "203.0.113.70/30"),
        ("route", "add", "blue/x", "192.0.2.0/24", "via", "203.0.113.69"),
        ("route", "del", "blue/x", "192.0.2.0/24"),
        ("address", "del", "blue/x", "p1", "203.0.113.70/30"),
        ("sysctl", "blue/x", "net.inet.ip.ttl=9"),
        ("sysctl", "blue/x", "vnet.limits.routes=50"),  # a child's limits: its parent's managers
        ("firewall", "blue", "load", str(rules)),
        ("firewall", "blue", "flush"),
        ("tap", "create", "blue", f"{p}tb", "203.0.113.129/25"),
        ("interface", "move", "blue", f"{p}tb", "blue/x"),
        ("interface", "destroy", "blue/x", f"{p}tb"),
        ("interface", "destroy", "blue", "p1"),
        ("vnet", "destroy", "blue/x"),
    ]
    for args in steps:
        ok_as(daemon, NOBODY, *args)
    assert "blue/x" not in [v["name"] for v in daemon.call("vnet.list")]
    assert f"{p}tb" not in run("ip", "-o", "link", "show").stdout
    shown = daemon.call("firewall.show", vnet="blue")
    assert (shown["default"], len(shown["rules"])) == ("pass", 2), shown  # with the default
    daemon.call("firewall.load", vnet="blue", text="", source="reset")

    # capture is a right of blue's managers too: it starts and streams
    cmd = vrouterctl("--socket", daemon.socket)
    capture = subprocess.Popen(
        as_user(NOBODY, *cmd, "capture", "blue", "ep0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = capture.stderr.readline() if capture.stderr is not None else ""
        assert "listening on blue ep0" in line, line
    finally:
        capture.send_signal(signal.SIGTERM)
        capture.wait(10)


def test_views_work_for_anyone(daemon: Vrouterd) -> None:
    views = [
        ("status",),
        ("vnet", "list"),
        ("vnet", "tree"),
        ("vnet", "show", "red"),
        ("ifconfig", "red"),
        ("route", "show", "red"),
        ("arp", "show", "red"),
        ("ndp", "show", "red"),
        ("netstat", "red"),
        ("sysctl", "red", "-a"),
        ("firewall", "red", "show"),
        ("firewall", "red", "states"),
        ("module", "list"),
    ]
    for args in views:
        ok_as(daemon, NOBODY, *args)
        ok_as(daemon, NOBODY, *args, "--json")
    shown = ok_as(daemon, NOBODY, "vnet", "show", "blue")
    assert "manage: uid:4001 (daemon admins), user:nobody (blue)" in shown
    assert "sockets: uid:4001 (daemon admins), user:nobody (blue)" in shown
    assert "you (uid 65534): manage yes, sockets yes, change its limits no" in shown
    red = json.loads(ok_as(daemon, NOBODY, "vnet", "show", "red", "--json"))
    assert red["caller"] == {"uid": NOBODY, "manage": False, "sockets": False, "limits": False}


def test_a_daemon_admin_may_reload_and_change_modules(daemon: Vrouterd) -> None:
    assert "reloaded, no changes" in ok_as(daemon, ADMIN, "reload")
    ok_as(daemon, ADMIN, "module", "unload", "firewall")
    ok_as(daemon, ADMIN, "module", "load", "firewall")
    ok_as(daemon, ADMIN, "vnet", "create", "green")
    ok_as(daemon, ADMIN, "sysctl", "green", "vnet.limits.routes=7")
    ok_as(daemon, ADMIN, "vnet", "destroy", "green")


# -- limits -------------------------------------------------------------------------------


def test_a_child_cannot_exceed_its_parents_limits_at_run_time(daemon: Vrouterd) -> None:
    refused = daemon.ctl("sysctl", "lab/r1", "vnet.limits.routes=5")
    assert refused.returncode == 1
    assert (
        "vnet lab/r1: route limit 5 is above the route limit of its parent vnet lab (4)"
        in refused.stderr
    )
    assert daemon.ctl("vnet", "create", "lab/r1/x").returncode == 0
    refused = daemon.ctl("sysctl", "lab/r1/x", "vnet.limits.interfaces=4")
    assert refused.returncode == 1
    assert "above the interface limit of its parent vnet lab/r1 (3, set on lab)" in refused.stderr
    assert daemon.ctl("vnet", "destroy", "lab/r1/x").returncode == 0


def test_routes_beyond_the_limit_are_refused_and_counted(daemon: Vrouterd) -> None:
    for n in range(2):
        result = daemon.ctl("route", "add", "lab/r1", f"192.0.{n}.0/24", "blackhole")
        assert result.returncode == 0, result.stderr
    for n in range(2, 5):
        result = daemon.ctl("route", "add", "lab/r1", f"192.0.{n}.0/24", "blackhole")
        assert result.returncode == 1
        assert result.stderr.strip() == "vrouterctl: vnet lab/r1: route limit 2 reached"
    netstat = json.loads(daemon.ctl("netstat", "lab/r1", "--json").stdout)
    assert netstat["limits"]["routes_refused"] == 3
    assert "\t3 routes refused" in daemon.ctl("netstat", "lab/r1").stdout
    shown = json.loads(daemon.ctl("vnet", "show", "lab/r1", "--json").stdout)
    assert shown["limits"]["routes"] == {
        "own": 2,
        "effective": 2,
        "set_on": "lab/r1",
        "refused": 3,
        "in_use": 2,
    }
    assert shown["limits"]["interfaces"]["effective"] == 3
    assert shown["limits"]["interfaces"]["set_on"] == "lab"
    listed = {v["name"]: v["limits"] for v in daemon.call("vnet.list")}
    assert listed["lab/r1"]["routes"] == 2 and listed["red"]["routes"] is None
    for n in range(2):
        daemon.ctl("route", "del", "lab/r1", f"192.0.{n}.0/24")
    assert "vnet lab/r1: route limit 2 reached" in daemon.logtext()


def test_a_config_with_a_child_above_its_parent_is_refused(daemon: Vrouterd) -> None:
    bad = daemon.config.read_text().replace("routes = 2\n", "routes = 9\n")
    check = daemon.dir / "bad.toml"
    check.write_text(bad)
    result = run(*vrouterd("--check", "-c", str(check)), check=False)
    assert result.returncode == 2
    assert (
        "vnets.lab/r1.limits.routes: route limit 9 of vnet lab/r1 is above the route limit "
        "of its parent vnet lab (4)" in result.stderr
    )
    original = daemon.config.read_text()
    daemon.config.write_text(bad)
    try:
        reload = daemon.ctl("reload")
    finally:
        daemon.config.write_text(original)
    assert reload.returncode == 1
    assert "route limit 9 of vnet lab/r1 is above" in reload.stderr
    shown = json.loads(daemon.ctl("vnet", "show", "lab/r1", "--json").stdout)
    assert shown["limits"]["routes"]["effective"] == 2, "the running limits are kept"


def test_sockets_only_where_the_uid_has_rights(daemon: Vrouterd) -> None:
    script = (
        "import socket\n"
        "from vrouter.client import Client\n"
        "from vrouter.api.protocol import ApiError\n"
        f"c = Client({daemon.socket!r})\n"
        "try:\n"
        "    c.socket('red', socket.AF_INET, socket.SOCK_DGRAM)\n"
        "except ApiError as err:\n"
        "    print('red:', err)\n"
        "s = c.socket('blue', socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind(('0.0.0.0', 520))\n"
        "print('blue:', s.getsockname())\n"
        "try:\n"
        "    c.route_socket('red')\n"
        "except ApiError as err:\n"
        "    print('red routes:', err)\n"
    )
    out = run(*as_user(NOBODY, PYTHON, "-c", script), timeout=30).stdout.splitlines()
    assert out[0].startswith("red: permission denied: uid 65534 may not")
    assert out[1] == "blue: ('0.0.0.0', 520)"  # manage on blue grants ports below 1024
    assert out[2].startswith("red routes: permission denied")
