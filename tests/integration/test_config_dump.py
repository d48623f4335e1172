"""vrouterctl config dump and config diff against a running daemon (one process, and workers).

A daemon starts from a config with many kinds of objects; vrouterctl adds
vnets, an epair, a TAP, routes, a knob and a ruleset at run time.  ``config
diff`` shows exactly those, ``config dump`` writes a file ``vrouterd
--check`` accepts, and a second daemon started from that file (after the
first stops: same TAPs, socket and host) dumps the same text and finds
nothing to report against its own file.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, run, vrouterctl, vrouterd

pytestmark = pytest.mark.integration

TEMPLATE = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
log_level = "debug"
metrics = "127.0.0.1:PORT"
workers = WORKERS
[[daemon.socks]]
vnet = "blue"
listen = "127.0.0.1:SOCKS"

[vnets.red]
worker = 0
[vnets.red.limits]
routes = 1000
[vnets.red.sysctl]
"net.inet.ip.ttl" = 32
[vnets.red.permissions]
manage = ["uid:65534"]
[vnets.red.interfaces.{p}r]
type = "tap"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
host = {{ netns = "{p}h1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.1" }}
ra = {{ interval = 30, rdnss = ["2001:db8:1::53"] }}
[vnets.red.interfaces.{p}m1]
type = "tap"
offload = false
[vnets.red.interfaces.{p}m2]
type = "tap"
[vnets.red.interfaces.br0]
type = "bridge"
members = ["{p}m1", "{p}m2"]
vlan_filtering = true
addresses = ["198.18.0.1/24"]
[vnets.red.interfaces.br0.ports.{p}m2]
tagged = [10]
[vnets.red.interfaces."br0.10"]
type = "vlan"
parent = "br0"
vid = 10
addresses = ["198.18.10.1/24"]
[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["203.0.113.1/30"]
[[vnets.red.routes]]
to = "198.51.100.0/24"
via = "203.0.113.2"
[[vnets.red.routes]]
to = "2001:db8:99::/48"
type = "blackhole"
[vnets.red.firewall]
enable = true
default = "pass"
[vnets.red.firewall.tables]
inside = ["192.0.2.0/24"]
[[vnets.red.firewall.rules]]
action = "block"
direction = "in"
proto = "udp"
to_port = 9
[[vnets.red.firewall.nat]]
action = "nat"
interface = "ep0"
from = "<inside>"

[vnets.blue]
worker = 0
[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["203.0.113.2/30"]
[vnets.blue.interfaces.{p}b]
type = "tap"
addresses = ["198.51.100.1/24"]
"""

RULES = """
default = "block"
[[rules]]
action = "pass"
proto = "icmp"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def daemon(request: pytest.FixtureRequest) -> Iterator[Vrouterd]:
    template = (
        TEMPLATE.replace("PORT", str(_free_port()))
        .replace("SOCKS", str(_free_port()))
        .replace("WORKERS", str(request.param))
    )
    workdir = Path(tempfile.mkdtemp(prefix="vrouter-dump-"))
    workdir.chmod(0o755)  # uid 65534 reaches the control socket (pytest's tmp dirs are 0700)
    d = Vrouterd(workdir, template=template)
    d.dir.chmod(0o755)
    try:
        d.start(timeout=40)
        yield d
    finally:
        d.close()
        shutil.rmtree(workdir, ignore_errors=True)


def ok(daemon: Vrouterd, *args: str) -> str:
    done = daemon.ctl(*args)
    assert done.returncode == 0, f"vrouterctl {' '.join(args)}: {done.stderr}"
    return done.stdout


def test_dump_diff_and_a_second_daemon_from_the_dump(daemon: Vrouterd, tmp_path: Path) -> None:
    p = daemon.prefix
    same = daemon.ctl("config", "diff")
    assert (same.returncode, same.stdout, same.stderr) == (0, "", "")

    ok(daemon, "vnet", "create", "lab")
    ok(daemon, "vnet", "create", "lab/kid")
    ok(daemon, "epair", "create", "lab:up0", "lab/kid:e0")
    ok(daemon, "address", "add", "lab", "up0", "198.18.1.1/30")
    ok(daemon, "address", "add", "lab/kid", "e0", "198.18.1.2/30")
    ok(daemon, "route", "add", "lab/kid", "0.0.0.0/0", "via", "198.18.1.1")
    ok(daemon, "tap", "create", "red", f"{p}x", "198.18.2.1/24")
    ok(daemon, "route", "add", "red", "198.18.100.0/24", "via", "198.18.2.2", "distance", "50")
    ok(daemon, "sysctl", "red", "net.inet.ip.ttl=33")
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    ok(daemon, "firewall", "blue", "load", str(rules))

    differs = daemon.ctl("config", "diff")
    assert differs.returncode == 1, differs.stderr
    lines = differs.stdout.splitlines()
    assert "+ vnets.lab.forwarding = true" in lines
    assert '+ vnets.lab.interfaces.up0.peer = "lab/kid:e0"' in lines
    assert "+ vnets.lab/kid.routes[0.0.0.0/0] = " + (
        '{ to = "0.0.0.0/0", via = "198.18.1.1", interface = "e0" }'
    ) in lines
    assert f'+ vnets.red.interfaces.{p}x.addresses = ["198.18.2.1/24"]' in lines
    assert "+ vnets.red.routes[198.18.100.0/24] = " + (
        '{ to = "198.18.100.0/24", via = "198.18.2.2", interface = "' + p + 'x", distance = 50 }'
    ) in lines
    assert '~ vnets.red.sysctl."net.inet.ip.ttl" = 32 -> 33' in lines
    assert '+ vnets.blue.firewall.default = "block"' in lines
    assert all(line[:2] in ("+ ", "~ ") for line in lines), lines

    dumped = ok(daemon, "config", "dump")
    config2 = daemon.dir / "dumped.toml"
    config2.write_text(dumped)
    checked = run(*vrouterd("--check", "-c", str(config2)), check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    against = daemon.ctl("config", "diff", str(config2))
    assert (against.returncode, against.stdout) == (0, ""), against.stdout + against.stderr
    raw = daemon.ctl("config", "dump", "-j")
    assert '"document"' in raw.stdout and raw.returncode == 0

    # The second daemon: the same devices, socket and host, so the first goes first.
    assert daemon.stop() == 0
    daemon.config.write_text(dumped)
    daemon.start(timeout=40)
    assert ok(daemon, "config", "dump") == dumped
    again = daemon.ctl("config", "diff")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


def test_a_caller_who_is_no_admin_is_refused(daemon: Vrouterd) -> None:
    nobody = run(
        "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
        *vrouterctl("--socket", daemon.socket, "config", "dump"), check=False,
    )  # fmt: skip
    assert nobody.returncode == 1
    assert "may not read the running configuration (daemon admins only)" in nobody.stderr

