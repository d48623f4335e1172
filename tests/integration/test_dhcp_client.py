"""A vnet interface that takes its address by DHCP from a real server (dnsmasq).

Vnet ``edge`` has ``{p}w`` (``dhcp = true``), whose TAP the test moves into
namespace ``{p}wan`` where dnsmasq serves 203.0.113.0/24 with T1 = 4 s and
T2 = 7 s, and ``{p}l`` to the LAN host h1 (192.0.2.2), masqueraded out of
``{p}w``.  A UDP echo in ``{p}wan`` answers with the source address it saw.
When dnsmasq is restarted with another range, the renewal is NAKed, the
client starts over, and the masquerade follows the new address.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, python, run

pytestmark = pytest.mark.integration

CONFIG = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
data_dir = "{dir}/data"
log_level = "debug"

[vnets.edge.interfaces.{p}w]
type = "tap"
dhcp = true

[vnets.edge.interfaces.{p}l]
type = "tap"
addresses = ["192.0.2.1/24"]
host = {{ netns = "{p}h1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.1" }}

[vnets.edge.firewall]
default = "pass"

[[vnets.edge.firewall.nat]]
action = "nat"
interface = "{p}w"
from = "192.0.2.0/24"
"""

ECHO = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("203.0.113.1", 7000))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(peer[0].encode(), peer)
"""

ASK = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
for _ in range(10):
    s.sendto(b"who am I", ("203.0.113.1", 7000))
    try:
        print(s.recvfrom(2048)[0].decode())
        sys.exit(0)
    except socket.timeout:
        continue
sys.exit(1)
"""


class Wan:
    """The upstream namespace: dnsmasq on the vnet's TAP, and the UDP echo."""

    def __init__(self, daemon: Vrouterd) -> None:
        self.daemon = daemon
        self.ns = f"{daemon.prefix}wan"
        self.tap = daemon.tap("w")
        self.dir = daemon.dir / "wan"
        self.dir.mkdir()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.dnsmasq: subprocess.Popen[bytes] | None = None
        run("ip", "netns", "add", self.ns)
        run("ip", "-n", self.ns, "link", "set", "lo", "up")
        run("ip", "link", "set", self.tap, "netns", self.ns)
        run("ip", "-n", self.ns, "addr", "add", "203.0.113.1/24", "dev", self.tap)
        run("ip", "-n", self.ns, "link", "set", self.tap, "up")
        echo = self.dir / "echo.py"
        echo.write_text(ECHO)
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns, *python(str(echo))]))

    def serve(self, first: str, last: str, run_name: str) -> None:
        """(Re)start dnsmasq handing out ``first``..``last``, with a fresh lease file."""
        self.stop_dnsmasq()
        self.dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "dnsmasq", "--keep-in-foreground",
             "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--port=0",
             f"--interface={self.tap}", "--bind-interfaces", "--dhcp-authoritative",
             f"--dhcp-range={first},{last},255.255.255.0,2m",
             "--dhcp-option=option:router,203.0.113.1",
             "--dhcp-option=option:T1,4", "--dhcp-option=option:T2,7",
             f"--dhcp-leasefile={self.dir / (run_name + '.leases')}",
             f"--pid-file={self.dir / (run_name + '.pid')}",
             "--user=root", "--group=root", "--log-dhcp",
             f"--log-facility={self.dir / (run_name + '.log')}"],
        )  # fmt: skip
        self.procs.append(self.dnsmasq)

    def stop_dnsmasq(self) -> None:
        if self.dnsmasq is not None and self.dnsmasq.poll() is None:
            self.dnsmasq.terminate()
            self.dnsmasq.wait(10)

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        run("ip", "netns", "del", self.ns, check=False)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vrouterd, Wan]]:
    daemon = Vrouterd(tmp_path_factory.mktemp("dhcpc"), CONFIG)
    wan = None
    try:
        daemon.start()
        wan = Wan(daemon)
        yield daemon, wan
    finally:
        if wan is not None:
            wan.close()
        daemon.close()


def _client(daemon: Vrouterd) -> dict[str, object]:
    clients = daemon.call("dhcp.leases", vnet="edge")["clients"]
    found: dict[str, object] = clients[daemon.tap("w")]
    return found


def _wait_address(daemon: Vrouterd, address: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ifp in daemon.call("ifconfig", vnet="edge"):
            if ifp["name"] == daemon.tap("w") and f"{address}/24" in ifp["addresses"]:
                return
        time.sleep(0.3)
    raise AssertionError(f"no {address} on the dhcp interface: {_client(daemon)}\n"
                         f"{daemon.logtext()[-3000:]}")  # fmt: skip


def _seen_from(daemon: Vrouterd, script: Path) -> str:
    return daemon.python("h1", str(script), timeout=30).stdout.strip()


def test_address_and_default_route_from_dnsmasq_and_masquerade_follows(
    edge: tuple[Vrouterd, Wan],
) -> None:
    daemon, wan = edge
    wan.serve("203.0.113.10", "203.0.113.10", "first")
    _wait_address(daemon, "203.0.113.10")
    routes = daemon.call("route.show", vnet="edge", family="inet")
    default = [r for r in routes if r["prefix"] == "0.0.0.0/0"]
    assert default and default[0]["gateway"] == "203.0.113.1", routes
    assert default[0]["source"] == "dhcp"
    client = _client(daemon)
    assert client["state"] == "bound" and client["server"] == "203.0.113.1"
    ask = daemon.dir / "ask.py"
    ask.write_text(ASK)
    assert _seen_from(daemon, ask) == "203.0.113.10"  # h1 masqueraded behind the lease
    # Renewals (T1 = 4 s) are ACKed by the same server: the address stays.
    acks = int(str(client["acks"]))
    deadline = time.monotonic() + 20
    while int(str(_client(daemon)["acks"])) <= acks and time.monotonic() < deadline:
        time.sleep(0.5)
    assert int(str(_client(daemon)["acks"])) > acks, _client(daemon)
    # Another range upstream: the renewal is NAKed, the client starts over.
    wan.serve("203.0.113.20", "203.0.113.20", "second")
    _wait_address(daemon, "203.0.113.20", timeout=60)
    [ifp] = [i for i in daemon.call("ifconfig", vnet="edge") if i["name"] == daemon.tap("w")]
    assert [a for a in ifp["addresses"] if ":" not in a] == ["203.0.113.20/24"]
    assert int(str(_client(daemon)["naks"])) >= 1
    assert _seen_from(daemon, ask) == "203.0.113.20"  # the masquerade followed
