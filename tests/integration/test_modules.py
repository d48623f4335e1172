"""Subsystems loaded and unloaded at run time, under real traffic (``vrouterctl module``).

The demo topology with a Prometheus listener, and a third-party subsystem
package on the daemon's path: a directory with a module and a ``.dist-info``
declaring it in the ``vrouter.subsystems`` entry-point group (plus a broken
entry point, reported and skipped).  Unloading the firewall takes its knobs,
metrics and filtering away and lets traffic it blocked through; loading it
back gives every vnet a fresh, disabled firewall; what another loaded
subsystem needs is never unloaded.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import DEMO_LIKE, Vrouterd, ping_received, running

pytestmark = pytest.mark.integration

EXTENSION = '''
"""A third-party vrouter subsystem for the tests: a per-vnet counter and one knob."""

from dataclasses import dataclass

from vrouter.core.registry import Subsystem
from vrouter.core.sysctl import field_knob


@dataclass
class CounterState:
    enabled: bool = True
    detached: bool = False


def _attach(vnet):
    return CounterState()


def _detach(vnet):
    vnet.counter.detached = True


SUBSYSTEM = Subsystem(
    "counter",
    _attach,
    _detach,
    depends=("inet",),
    knobs=(field_knob("net.counter.enable", bool, "Count things", "counter.enabled"),),
)


def make():
    return SUBSYSTEM
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    ext = tmp_path_factory.mktemp("ext")
    (ext / "vrtest_counter.py").write_text(EXTENSION)
    info = ext / "vrtest_counter-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vrtest-counter\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[vrouter.subsystems]\ncounter = vrtest_counter:make\nbroken = vrtest_counter:missing\n"
    )
    port = free_port()
    template = DEMO_LIKE.replace(
        'log_level = "debug"', f'log_level = "debug"\nmetrics = "127.0.0.1:{port}"'
    )
    d = Vrouterd(tmp_path_factory.mktemp("vrouterd"), template=template)
    d.metrics = f"http://127.0.0.1:{port}/metrics"  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", str(ext))
        yield from running(d)


def ok(daemon: Vrouterd, *args: str) -> str:
    result = daemon.ctl(*args)
    assert result.returncode == 0, f"vrouterctl {' '.join(args)}: {result.stderr}"
    return result.stdout


def refused(daemon: Vrouterd, *args: str) -> str:
    result = daemon.ctl(*args)
    assert result.returncode == 1, f"vrouterctl {' '.join(args)}: {result.stdout}"
    return result.stderr


def pings(daemon: Vrouterd) -> int:
    out = daemon.exec(
        "h1", "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.2", check=False
    ).stdout
    return ping_received(out)


def scrape(daemon: Vrouterd) -> str:
    with urllib.request.urlopen(daemon.metrics, timeout=10) as response:  # type: ignore[attr-defined]
        return str(response.read().decode())


def modules(daemon: Vrouterd) -> dict[str, dict[str, object]]:
    listed = json.loads(ok(daemon, "module", "list", "--json"))
    return {m["name"]: m for m in listed["modules"]}


def test_module_list_shows_the_loaded_in_order_and_what_can_be_loaded(daemon: Vrouterd) -> None:
    listed = json.loads(ok(daemon, "module", "list", "--json"))
    loaded = [m["name"] for m in listed["modules"] if m["loaded"]]
    assert loaded == [
        "link", "route", "inet", "inet6", "firewall", "transport", "tcp", "mirror", "dhcp"
    ]  # fmt: skip
    by_name = {m["name"]: m for m in listed["modules"]}
    assert by_name["firewall"]["depends"] == ["inet", "inet6"]
    assert by_name["inet"]["needed_by"] == ["firewall", "transport", "tcp", "mirror", "dhcp"]
    assert by_name["inet"]["essential"] is True
    assert by_name["counter"]["loaded"] is False
    assert "entry point counter = vrtest_counter:make (vrtest-counter 0.1)" in str(
        by_name["counter"]["source"]
    )
    assert any("entry point broken" in p for p in listed["problems"])
    text = ok(daemon, "module", "list")
    assert re.search(r"firewall\s+loaded\s+inet, inet6\s+-\s+builtin", text), text


def test_what_a_loaded_subsystem_needs_is_not_unloaded(daemon: Vrouterd) -> None:
    needs = (
        "firewall needs inet, transport needs inet, tcp needs inet, mirror needs inet, "
        "dhcp needs inet"
    )
    assert f"cannot unload inet: {needs}" in refused(daemon, "module", "unload", "inet")
    assert "firewall needs inet6" in refused(daemon, "module", "unload", "inet6")
    assert "route needs link" in refused(daemon, "module", "unload", "link")
    assert "already loaded" in refused(daemon, "module", "load", "firewall")
    assert "no subsystem named 'pf'" in refused(daemon, "module", "load", "pf")


def test_the_firewall_unloads_and_loads_back_fresh_and_disabled(
    daemon: Vrouterd, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('default = "pass"\n[[rules]]\naction = "block"\nproto = "icmp"\n')
    ok(daemon, "firewall", "red", "load", str(rules))
    ok(daemon, "sysctl", "red", "net.pf.enable=1")
    assert pings(daemon) == 0, "the firewall blocks ICMP"
    assert 'vrouter_pf_enabled{vnet="red"} 1\n' in scrape(daemon)

    assert "firewall unloaded from 3 vnets" in ok(daemon, "module", "unload", "firewall")
    assert pings(daemon) == 3, "without the firewall nothing filters"
    assert "net.pf." not in ok(daemon, "sysctl", "red", "-a")
    assert "unknown sysctl 'net.pf.enable'" in refused(daemon, "sysctl", "red", "net.pf.enable=1")
    assert "the firewall subsystem is not loaded" in refused(daemon, "firewall", "red", "show")
    netstat = json.loads(ok(daemon, "netstat", "red", "--json"))
    assert "pf" not in netstat and "ip" in netstat and "limits" in netstat
    assert not re.search(r"^vrouter_pf_", scrape(daemon), re.MULTILINE), "no pf samples"
    assert "firewall" not in json.loads(ok(daemon, "vnet", "show", "red", "--json"))["subsystems"]
    assert modules(daemon)["firewall"]["loaded"] is False
    assert "cannot unload inet: transport needs inet, tcp needs inet, mirror needs inet" in refused(
        daemon, "module", "unload", "inet"
    )

    assert "firewall loaded into 3 vnets" in ok(daemon, "module", "load", "firewall")
    for vnet in ("red", "blue", "green"):
        shown = json.loads(ok(daemon, "firewall", vnet, "show", "--json"))
        assert shown["enabled"] is False
        assert [r["text"] for r in shown["rules"] if r["index"] >= 0] == []
        assert shown["states"] == 0
    assert pings(daemon) == 3
    assert 'vrouter_pf_enabled{vnet="red"} 0\n' in scrape(daemon)
    assert "net.pf.enable: 0" in ok(daemon, "sysctl", "red", "net.pf.enable")
    message = refused(daemon, "module", "unload", "inet")
    needs = (
        "transport needs inet, tcp needs inet, mirror needs inet, dhcp needs inet, "
        "firewall needs inet"
    )
    assert f"cannot unload inet: {needs}" in message
    loaded = [name for name, m in modules(daemon).items() if m["loaded"]]
    assert loaded == [
        "link", "route", "inet", "inet6", "transport", "tcp", "mirror", "dhcp", "firewall"
    ]  # fmt: skip
    log = daemon.logtext()
    assert "subsystem firewall unloaded from 3 vnets" in log
    assert "subsystem firewall loaded (builtin) into 3 vnets" in log


def test_a_third_party_subsystem_loads_from_its_entry_point(daemon: Vrouterd) -> None:
    assert "counter loaded into 3 vnets" in ok(daemon, "module", "load", "counter")
    assert "net.counter.enable: 1" in ok(daemon, "sysctl", "blue", "net.counter.enable")
    ok(daemon, "sysctl", "blue", "net.counter.enable=0")
    assert "counter" in json.loads(ok(daemon, "vnet", "show", "blue", "--json"))["subsystems"]
    ok(daemon, "vnet", "create", "blue/kid")
    assert "net.counter.enable: 0" in ok(daemon, "sysctl", "blue/kid", "net.counter.enable")
    assert "counter needs inet" in refused(daemon, "module", "unload", "inet")
    assert modules(daemon)["counter"]["loaded"] is True
    ok(daemon, "module", "unload", "counter")
    assert "unknown sysctl" in refused(daemon, "sysctl", "blue", "net.counter.enable")
    ok(daemon, "vnet", "destroy", "blue/kid")
    assert pings(daemon) == 3
