"""A reload adds and removes a vnet's mirror, and its representors follow the interfaces.

    [red] e0 ══ epair ══ e0 [blue]        198.51.100.0/30 (e1: .4/30, added by a reload)

red starts without a mirror.  A reload adds one (namespace {p}mr with a
representor per interface, addresses and all), the next adds the epair e1
(its representor appears), the next removes e1 (its representor goes),
and the last removes the mirror: its namespace is gone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from birdlab import wait
from harness import Vrouterd, netns_list

pytestmark = pytest.mark.integration

BASE = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"

[vnets.red.interfaces.e0]
type = "epair"
peer = "blue:e0"
addresses = ["198.51.100.1/30"]

[vnets.blue.interfaces.e0]
type = "epair"
peer = "red:e0"
addresses = ["198.51.100.2/30"]
"""
MIRROR = '\n[vnets.red.mirror]\nnetns = "{p}mr"\n'
E1 = """
[vnets.red.interfaces.e1]
type = "epair"
peer = "blue:e1"
addresses = ["198.51.100.5/30"]

[vnets.blue.interfaces.e1]
type = "epair"
peer = "red:e1"
addresses = ["198.51.100.6/30"]
"""


@pytest.fixture
def daemon(tmp_path: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    d = Vrouterd(tmp_path, BASE)  # type: ignore[arg-type]
    try:
        d.start()
        yield d
    finally:
        d.close()


def _reload(d: Vrouterd, text: str) -> None:
    d.write_config(text.format(dir=d.dir, p=d.prefix))
    done = d.ctl("reload")
    assert done.returncode == 0, done.stdout + done.stderr


def _addresses(d: Vrouterd, ifname: str) -> str:
    return d.exec("mr", "ip", "-br", "addr", "show", "dev", ifname, check=False).stdout


def test_a_reload_adds_and_removes_the_mirror_and_its_representors(daemon: Vrouterd) -> None:
    d = daemon
    assert "has no mirror" in d.ctl("mirror", "show", "red").stderr
    _reload(d, BASE + MIRROR)
    assert d.call("mirror.show", vnet="red")["netns"] == d.ns("mr")
    wait("e0's representor", lambda: "198.51.100.1/30" in _addresses(d, "e0"), timeout=10)
    _reload(d, BASE + MIRROR + E1)
    wait("e1's representor", lambda: "198.51.100.5/30" in _addresses(d, "e1"), timeout=10)
    assert set(d.call("mirror.show", vnet="red")["representors"]) == {"e0", "e1"}
    _reload(d, BASE + MIRROR)
    wait("e1's representor gone", lambda: not _addresses(d, "e1"), timeout=10)
    assert set(d.call("mirror.show", vnet="red")["representors"]) == {"e0"}
    _reload(d, BASE)
    wait("the mirror gone", lambda: d.ns("mr") not in netns_list(), timeout=10)
    assert "has no mirror" in d.ctl("mirror", "show", "red").stderr
