"""Static routes and vrouter-ripd's routes to the same prefixes, side by side (route sources).

    h1 ── [red] ── b1 (BIRD) ── hs   198.51.100.0/25 and 198.51.100.128/25
  192.0.2.0/26   192.0.2.64/26

red has a static route to 198.51.100.0/25 via b1 and a floating static
route (distance 200) to 198.51.100.128/25 via b1, while vrouter-ripd learns
both networks from BIRD on b1.  RIP's route to the first is held under the
static route; its route to the second is installed over the floating one.
When the neighbour goes away (BIRD killed: RIP's timeout) and when ripd stops, RIP withdraws
only its own routes: the static route stays, the floating one takes over,
and h1 reaches hs all along.  A reload that removes the static route hands
the prefix to RIP's held route.  Timers are short (update 2 s, timeout 6 s).
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from birdlab import BirdLab, wait
from harness import Vrouterd, run

pytestmark = pytest.mark.integration

STATIC = """
[[vnets.red.routes]]
to = "198.51.100.0/25"
via = "192.0.2.66"
"""
TOPOLOGY = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"

[vnets.red.interfaces.{p}r]
type = "tap"
addresses = ["192.0.2.1/26"]
host = {{ netns = "{p}h1", addresses = ["192.0.2.2/26"], gateway = "192.0.2.1" }}

[vnets.red.interfaces.{p}n]
type = "tap"
addresses = ["192.0.2.65/26"]
host = {{ netns = "{p}b1", addresses = ["192.0.2.66/26"] }}

[[vnets.red.routes]]
to = "198.51.100.128/25"
via = "192.0.2.66"
distance = 200
"""

BIRD = """
router id 192.0.2.66;
protocol device {{ scan time 1; }}
protocol direct {{ ipv4; interface "{stub}"; }}
protocol rip {{
  ipv4 {{ import none; export all; }};
  interface "{tap}" {{ version 2; update time 2; timeout time 6; }};
}}
"""

RIPD = """
socket = "{socket}"
[[instance]]
vnet = "red"
interfaces = ["{p}n"]
update = 2
timeout = 6
garbage = 4
"""

LOW, HIGH = "198.51.100.0/25", "198.51.100.128/25"


def _routes(d: Vrouterd) -> dict[tuple[str, str], str]:
    """Return (prefix, source) -> state of red's IPv4 routes to the two stub networks."""
    return {
        (r["prefix"], r["source"]): r["state"]
        for r in d.call("route.show", vnet="red", family="inet")
        if r["prefix"] in (LOW, HIGH)
    }


def _reaches(d: Vrouterd, address: str) -> bool:
    out = d.exec("h1", "ping", "-c", "1", "-W", "2", address, check=False).stdout
    return "1 received" in out


def _start_bird(lab: BirdLab) -> subprocess.Popen[bytes]:
    d = lab.d
    lab.bird("b1", BIRD, stub=f"{d.prefix}b1s", tap=d.tap("n"))
    return lab.procs[-1]


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BirdLab]:
    daemon = Vrouterd(tmp_path_factory.mktemp("vrouterd"), TOPOLOGY + STATIC)
    lab = BirdLab(daemon, 4)
    try:
        daemon.start()
        lab.stub("b1", "hs", "198.51.100.1/25", "198.51.100.2/25")
        p = daemon.prefix
        # The second stub network on the same link; b1 routes h1's network back to red
        # by a kernel route of its own, so it still does when BIRD is gone.
        run("ip", "-n", daemon.ns("b1"), "addr", "add", "198.51.100.129/25", "dev", f"{p}b1s")
        run("ip", "-n", daemon.ns("hs"), "addr", "add", "198.51.100.130/25", "dev", "eth0")
        run("ip", "-n", daemon.ns("b1"), "route", "add", "192.0.2.0/26", "via", "192.0.2.65")
        yield lab
    finally:
        lab.stop()
        daemon.close()


def test_rip_withdraws_only_its_own_routes_and_static_ones_stay(lab: BirdLab) -> None:
    d = lab.d
    bird = _start_bird(lab)
    lab.ripd(RIPD)
    ripd = lab.procs[-1]
    learnt = {
        (LOW, "static"): "installed",
        (LOW, "rip"): "held",
        (HIGH, "rip"): "installed",
        (HIGH, "static"): "held",
    }
    wait("red to learn both stub networks from BIRD", lambda: _routes(d) == learnt)
    assert _reaches(d, "198.51.100.2") and _reaches(d, "198.51.100.130")
    shown = d.ctl("route", "show", "red", "--source", "rip").stdout
    assert "Source" in shown and "rip" in shown and "static" not in shown

    # The neighbour goes away without a word (killed): RIP's routes time out and are
    # withdrawn; the static route stays and the floating one takes over.
    _stop(bird, signal.SIGKILL)
    (d.dir / "bird-b1.ctl").unlink(missing_ok=True)
    static_only = {(LOW, "static"): "installed", (HIGH, "static"): "installed"}
    wait("RIP's routes to time out", lambda: _routes(d) == static_only, 30)
    assert _reaches(d, "198.51.100.2") and _reaches(d, "198.51.100.130")

    # The neighbour is back; a reload removing the static route hands its prefix to RIP.
    _start_bird(lab)
    wait("red to learn the networks again", lambda: _routes(d) == learnt)
    d.config.write_text(d.config.read_text().replace(STATIC, ""))
    result = d.ctl("reload")
    assert result.returncode == 0, result.stderr
    assert _routes(d) == {
        (LOW, "rip"): "installed",
        (HIGH, "rip"): "installed",
        (HIGH, "static"): "held",
    }
    assert _reaches(d, "198.51.100.2")
    d.config.write_text(d.config.read_text() + STATIC)
    assert d.ctl("reload").returncode == 0
    assert _routes(d) == learnt

    # ripd stops: it withdraws its own routes, installed and held; the static ones stay.
    _stop(ripd)
    assert _routes(d) == static_only
    assert _reaches(d, "198.51.100.2") and _reaches(d, "198.51.100.130")
    log = Path(d.dir / "ripd.log").read_text()
    assert "red/rip: add 198.51.100.0/25 via 192.0.2.66: held" in log
    assert "cannot" not in log and "refused" not in log, log
