"""The vnet DHCP server against real clients: dhclient, udhcpc and dhcpcd.

Vnet ``lan`` has three TAPs, each the only router of its own /26 and each
with a pool.  Every client runs in a namespace of its own on one TAP, with
its own script (``-sf``/``-s``/``-c``), config, pid and lease files in the
test's directory, and ``/etc/netns/NS/resolv.conf`` in place, so nothing
touches the machine's network configuration.  The scripts record what the
client was given; dhclient's and udhcpc's also configure the interface
(address, classless static routes), dhcpcd configures it itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import textwrap
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

[vnets.lan]
forwarding = true

[vnets.lan.interfaces.{p}d]
type = "tap"
addresses = ["192.0.2.1/26"]

[vnets.lan.interfaces.{p}u]
type = "tap"
addresses = ["192.0.2.65/26"]

[vnets.lan.interfaces.{p}c]
type = "tap"
addresses = ["192.0.2.129/26"]

[vnets.lan.dhcp]
lease_time = 600

[vnets.lan.dhcp.pools."192.0.2.0/26"]
range = ["192.0.2.10", "192.0.2.50"]
router = "192.0.2.1"
dns = ["192.0.2.53", "198.51.100.53"]
domain = "lan.example"
mtu = 1400
routes = [{{ to = "198.51.100.0/24", via = "192.0.2.1" }}]

[vnets.lan.dhcp.pools."192.0.2.64/26"]
range = ["192.0.2.74", "192.0.2.110"]
router = "192.0.2.65"
dns = ["192.0.2.53"]
domain = "lan.example"
routes = [{{ to = "198.51.100.0/24", via = "192.0.2.65" }}]
static = [{{ mac = "02:00:5e:00:53:aa", address = "192.0.2.120", hostname = "printer" }}]

[vnets.lan.dhcp.pools."192.0.2.128/26"]
range = ["192.0.2.138", "192.0.2.180"]
router = "192.0.2.129"
dns = ["192.0.2.53"]
domain = "lan.example"
routes = [{{ to = "198.51.100.0/24", via = "192.0.2.129" }}]
"""

RELAY = """
[vnets.lan.interfaces.ep0]
type = "epair"
peer = "edge:ep0"
addresses = ["203.0.113.2/30"]

[[vnets.lan.routes]]
to = "198.18.0.0/24"
via = "203.0.113.1"

[vnets.lan.dhcp.pools."198.18.0.0/24"]
range = ["198.18.0.100", "198.18.0.150"]
router = "198.18.0.1"
dns = ["192.0.2.53"]

[vnets.edge.interfaces.{p}r]
type = "tap"
addresses = ["198.18.0.1/24"]

[vnets.edge.interfaces.ep0]
type = "epair"
peer = "lan:ep0"
addresses = ["203.0.113.1/30"]

[vnets.edge.dhcp.relay.{p}r]
servers = ["203.0.113.2"]
remote_id = "edge-1"
"""

STATIC_MAC = "02:00:5e:00:53:aa"

DHCLIENT_CONF = """\
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers,
        interface-mtu, rfc3442-classless-static-routes;
timeout 20;
retry 1;
"""

# dhclient: record the environment, then configure the interface (a -sf script of our own).
DHCLIENT_SCRIPT = """\
#!/bin/sh
env | grep -E '^(reason|interface|new_|old_)' | sort > "{out}/dhclient.$reason.env"
echo "$reason" >> "{out}/dhclient.reasons"
case "$reason" in
BOUND|RENEW|REBIND|REBOOT)
    ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    set -- $new_rfc3442_classless_static_routes
    while [ $# -ge 5 ]; do
        width=$1; shift
        net=""
        for i in 1 2 3 4; do
            if [ $(( (width + 7) / 8 )) -ge $i ]; then octet=$1; shift; else octet=0; fi
            net="$net${{net:+.}}$octet"
        done
        ip route replace "$net/$width" via "$1.$2.$3.$4" dev "$interface"
        shift 4
    done
    ;;
RELEASE|EXPIRE|FAIL|STOP)
    ip addr flush dev "$interface"
    ;;
esac
exit 0
"""

# udhcpc: $1 is the event, options arrive as variables.
UDHCPC_SCRIPT = """\
#!/bin/sh
env | grep -E '^(interface|ip|subnet|router|dns|domain|staticroutes|mtu|lease|serverid)=' \
    | sort > "{out}/udhcpc.$1.env"
echo "$1 $ip" >> "{out}/udhcpc.events"
case "$1" in
bound|renew)
    ip addr replace "$ip/$subnet" dev "$interface"
    set -- $staticroutes
    while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    ;;
deconfig)
    ip addr flush dev "$interface"
    ;;
esac
exit 0
"""

# dhcpcd configures the interface itself; the script (instead of its hooks) only records.
DHCPCD_CONF = """\
option domain_name_servers, domain_name, classless_static_routes, interface_mtu
clientid
noipv4ll
ipv4only
nohook resolv.conf
"""

DHCPCD_SCRIPT = """\
#!/bin/sh
env | grep -E '^(reason|interface|new_)' | sort > "{out}/dhcpcd.$reason.env"
echo "$reason" >> "{out}/dhcpcd.reasons"
exit 0
"""


class Lan:
    """The daemon and the client namespaces of the test."""

    def __init__(self, daemon: Vrouterd) -> None:
        self.daemon = daemon
        self.out = daemon.dir / "clients"
        self.out.mkdir()
        self.namespaces: list[str] = []
        self.pids: list[int] = []

    def ns(self, side: str) -> str:
        return f"{self.daemon.prefix}n{side}"

    def attach(self, side: str, mac: str) -> str:
        """Put TAP ``{p}SIDE`` into its own namespace (made once) with ``mac``; return the ns."""
        ns = self.ns(side)
        tap = self.daemon.tap(side)
        if ns not in self.namespaces:
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text("# the test's namespace\n")
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
            self.namespaces.append(ns)
        run("ip", "link", "set", tap, "netns", ns)
        self.set_mac(side, mac)
        run("ip", "-n", ns, "link", "set", tap, "up")
        return ns

    def set_mac(self, side: str, mac: str) -> None:
        ns, tap = self.ns(side), self.daemon.tap(side)
        run("ip", "-n", ns, "addr", "flush", "dev", tap)
        run("ip", "-n", ns, "link", "set", tap, "address", mac)

    def script(self, name: str, text: str) -> str:
        path = self.out / name
        path.write_text(text.format(out=self.out))
        path.chmod(0o755)
        return str(path)

    def env(self, name: str) -> dict[str, str]:
        """Return the variables a client script recorded in ``name``."""
        lines = (self.out / name).read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def wait_file(self, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.out / name).exists():
                return
            time.sleep(0.2)
        raise AssertionError(f"no {name} after {timeout}s:\n{self.daemon.logtext()[-3000:]}")

    def pid(self, name: str, timeout: float = 10) -> int:
        """Return the pid a daemonized client wrote to ``name`` (it may write it just
        after its foreground process exits)."""
        deadline = time.monotonic() + timeout
        while True:
            path = self.out / name
            text = path.read_text().strip() if path.exists() else ""
            if text:
                return int(text)
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} still empty after {timeout}s")
            time.sleep(0.1)

    def leases(self) -> dict[str, object]:
        result: dict[str, object] = self.daemon.call("dhcp.leases", vnet="lan")
        return result

    def lease_of(self, address: str) -> dict[str, object]:
        rows = self.leases()["leases"]
        assert isinstance(rows, list)
        for row in rows:
            if row["address"] == address:
                return dict(row)
        raise AssertionError(f"no lease for {address}: {rows}")

    def udhcpc(self, side: str, *extra: str, timeout: float = 40) -> str:
        """Run udhcpc once to a lease (-q) and return the address it got."""
        ns, tap = self.ns(side), self.daemon.tap(side)
        script = self.script("udhcpc.sh", UDHCPC_SCRIPT)
        result = run(
            "ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", tap, "-s", script,
            "-p", str(self.out / "udhcpc.pid"), "-f", "-q", "-n", "-t", "5", "-T", "2",
            "-O", "staticroutes", "-O", "dns", "-O", "domain", *extra,
            timeout=timeout,
        )  # fmt: skip
        bound = [line for line in result.stderr.splitlines() if "obtained" in line]
        assert bound, result.stderr
        return self.env("udhcpc.bound.env")["ip"]

    def close(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for ns in self.namespaces:
            for pid in run("ip", "netns", "pids", ns, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            run("ip", "netns", "del", ns, check=False)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        for leftover in Path("/var/lib/dhcpcd").glob(f"{self.daemon.prefix}*"):
            leftover.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lan]:
    daemon = Vrouterd(tmp_path_factory.mktemp("dhcp"), CONFIG + RELAY)
    setup = None
    try:
        daemon.start()
        setup = Lan(daemon)
        yield setup
    finally:
        if setup is not None:
            setup.close()
        daemon.close()


def _kernel(ns: str, *args: str) -> str:
    return run("ip", "-n", ns, *args).stdout


def test_dhclient_gets_address_routes_and_dns(lan: Lan) -> None:
    ns = lan.attach("d", "02:00:5e:00:53:d1")
    tap = lan.daemon.tap("d")
    script = lan.script("dhclient.sh", DHCLIENT_SCRIPT)
    conf = lan.out / "dhclient.conf"
    conf.write_text(DHCLIENT_CONF)
    files = ["-pf", str(lan.out / "dhclient.pid"), "-lf", str(lan.out / "dhclient.leases")]
    run("ip", "netns", "exec", ns, "dhclient", "-4", "-1", "-v", "-sf", script, "-cf", str(conf),
        *files, tap, timeout=60)  # fmt: skip
    lan.pids.append(lan.pid("dhclient.pid"))
    got = lan.env("dhclient.BOUND.env")
    address = got["new_ip_address"]
    assert re.fullmatch(r"192\.0\.2\.(1\d|[2-4]\d|50)", address), got
    assert got["new_subnet_mask"] == "255.255.255.192"
    assert got["new_domain_name_servers"] == "192.0.2.53 198.51.100.53"
    assert got["new_domain_name"] == "lan.example"
    assert got["new_interface_mtu"] == "1400"
    assert got["new_dhcp_lease_time"] == "600"
    assert f"{address}/26" in _kernel(ns, "-4", "addr", "show", "dev", tap)
    routes = _kernel(ns, "-4", "route")
    assert "198.51.100.0/24 via 192.0.2.1" in routes, routes
    assert "default via 192.0.2.1" in routes, routes  # in option 121 with the router
    run("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", "192.0.2.1")
    lease = lan.lease_of(address)
    assert lease["state"] == "bound" and lease["mac"] == "02:00:5e:00:53:d1"
    shown = lan.daemon.ctl("dhcp", "lan", "leases")
    assert shown.returncode == 0 and address in shown.stdout and "bound" in shown.stdout
    as_json = json.loads(lan.daemon.ctl("dhcp", "lan", "leases", "-j").stdout)
    assert as_json["active"] >= 1
    scraped = "".join(lan.daemon.call("metrics.scrape", collect=["dhcp"]))
    assert re.search(r'^vrouter_dhcp_leases\{vnet="lan"\} [1-9]', scraped, re.M), scraped
    assert re.search(r'^vrouter_dhcp_sent_messages_total\{vnet="lan",type="ack"\} [1-9]',
                     scraped, re.M), scraped  # fmt: skip
    # Release: the address is given back (and the same client gets it again later).
    run("ip", "netns", "exec", ns, "dhclient", "-4", "-r", "-sf", script, "-cf", str(conf),
        *files, tap, timeout=30)  # fmt: skip
    deadline = time.monotonic() + 10
    while lan.lease_of(address)["state"] != "released" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lan.lease_of(address)["state"] == "released"
    assert lan.leases()["received"]["release"] >= 1  # type: ignore[index]


def test_udhcpc_static_lease_broadcast_and_restart(lan: Lan) -> None:
    ns = lan.attach("u", STATIC_MAC)
    tap = lan.daemon.tap("u")
    # A static lease by MAC, asked for with broadcast replies (-B).
    assert lan.udhcpc("u", "-B") == "192.0.2.120"
    got = lan.env("udhcpc.bound.env")
    assert got["router"] == "192.0.2.65" and got["dns"] == "192.0.2.53"
    assert got["domain"] == "lan.example"
    assert "198.51.100.0/24 192.0.2.65" in got["staticroutes"]
    assert "198.51.100.0/24 via 192.0.2.65" in _kernel(ns, "-4", "route")
    assert lan.lease_of("192.0.2.120")["hostname"] == "printer"
    # A dynamic client (unicast replies to its MAC, without ARP).
    lan.set_mac("u", "02:00:5e:00:53:01")
    first = lan.udhcpc("u")
    assert first != "192.0.2.120"
    lease_file = lan.daemon.dir / "data" / "dhcp" / "lan.leases"
    stored = [json.loads(line) for line in lease_file.read_text().splitlines()[1:]]
    assert first in {row["address"] for row in stored if row["state"] == "bound"}
    # Restart: the leases come back from the file.
    lan.daemon.stop()
    lan.daemon.start()
    lan.attach("u", "02:00:5e:00:53:02")
    other = lan.udhcpc("u")
    assert other != first, "a new client got an address leased before the restart"
    # The first client gets its address again, and a renewal (USR1) is ACKed.
    lan.set_mac("u", "02:00:5e:00:53:01")
    events = lan.out / "udhcpc.events"
    events.write_text("")
    script = lan.out / "udhcpc.sh"
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", tap, "-s", str(script), "-f",
         "-t", "5", "-T", "2", "-O", "staticroutes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    lan.pids.append(proc.pid)
    try:
        deadline = time.monotonic() + 30
        while "bound" not in events.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"bound {first}" in events.read_text(), events.read_text()
        acks = lan.leases()["sent"]["ack"]  # type: ignore[index]
        pid = int(run("ip", "netns", "pids", ns).stdout.split()[0])
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + 20
        while "renew" not in events.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"renew {first}" in events.read_text(), events.read_text()
        assert lan.leases()["sent"]["ack"] > acks  # type: ignore[index,operator]
    finally:
        proc.kill()
        proc.wait(10)


def test_dhcpcd_configures_itself(lan: Lan) -> None:
    ns = lan.attach("c", "02:00:5e:00:53:c1")
    tap = lan.daemon.tap("c")
    script = lan.script("dhcpcd.sh", DHCPCD_SCRIPT)
    conf = lan.out / "dhcpcd.conf"
    conf.write_text(DHCPCD_CONF)
    run("ip", "netns", "exec", ns, "dhcpcd", "-f", str(conf), "-c", script, "-4", "-1",
        "--persistent", "-t", "30", tap, timeout=60)  # fmt: skip
    got = lan.env("dhcpcd.BOUND.env")
    address = got["new_ip_address"]
    assert re.fullmatch(r"192\.0\.2\.1[3-8]\d", address), got
    assert got["new_domain_name_servers"] == "192.0.2.53"
    assert "198.51.100.0/24 192.0.2.129" in got["new_classless_static_routes"]
    assert f"{address}/26" in _kernel(ns, "-4", "addr", "show", "dev", tap)
    routes = _kernel(ns, "-4", "route")
    assert re.search(r"198\.51\.100\.0/24 via 192\.0\.2\.129", routes), routes
    assert lan.lease_of(address)["state"] == "bound"


def test_relay_in_one_vnet_to_the_server_of_another(lan: Lan) -> None:
    """udhcpc -- [edge: relay on {p}r] == epair == [lan: server, pool 198.18.0.0/24]."""
    ns = lan.attach("r", "02:00:5e:00:53:71")
    address = lan.udhcpc("r")
    assert address.startswith("198.18.0.1"), address
    got = lan.env("udhcpc.bound.env")
    assert got["router"] == "198.18.0.1" and got["subnet"] == "255.255.255.0"
    run("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", "198.18.0.1")
    lease = lan.lease_of(address)
    assert lease["state"] == "bound" and lease["circuit"] == lan.daemon.tap("r")
    edge = lan.daemon.call("dhcp.leases", vnet="edge")
    assert edge["relayed"]["to_server"] >= 2 and edge["relayed"]["to_client"] >= 2
    assert edge["relays"][lan.daemon.tap("r")]["servers"] == ["203.0.113.2"]
    assert edge["leases"] == []


FUZZ = r"""
import random, socket, struct, sys
tap = sys.argv[1]
rng = random.Random(7)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, tap.encode())
s.bind(("0.0.0.0", 68))
def base(options):
    fixed = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, rng.getrandbits(32), 0,
                        0x8000, bytes(4), bytes(4), bytes(4), bytes(4),
                        bytes.fromhex("02005e0053ee").ljust(16, b"\0"), b"", b"")
    return fixed + b"\x63\x82\x53\x63" + options
cases = [
    b"\x01" * 100,                                   # shorter than the fixed part
    base(b"")[:236] + b"\x00\x00\x00\x00",           # no magic cookie
    base(b"\x35\x05\x01"),                           # message type runs past the end
    base(b"\x32"),                                   # an option with no length
    base(b"\x0c\x40abc"),                            # hostname past the end
    base(b"\xff"),                                   # no message type
    base(b"\x35\x01\x63\xff"),                       # unknown message type
]
for _ in range(40):
    body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 60)))
    cases.append(base(b"\x35\x01\x01" + body))
for case in cases:
    s.sendto(case, ("255.255.255.255", 67))
print(len(cases))
"""


def test_malformed_requests_are_dropped_and_counted(lan: Lan) -> None:
    ns = lan.ns("c")
    if ns not in lan.namespaces:
        lan.attach("c", "02:00:5e:00:53:c2")
    tap = lan.daemon.tap("c")
    before = lan.leases()["drops"]
    assert isinstance(before, dict)
    script = lan.out / "fuzz.py"
    script.write_text(textwrap.dedent(FUZZ))
    sent = int(lan.daemon.exec(ns[len(lan.daemon.prefix) :], *python(str(script), tap)).stdout)
    assert sent > 40
    deadline = time.monotonic() + 10
    drops: dict[str, int] = {}
    while time.monotonic() < deadline:
        drops = lan.leases()["drops"]  # type: ignore[assignment]
        if sum(drops.values()) - sum(before.values()) >= 7:
            break
        time.sleep(0.2)
    for reason in ("dhcp_tooshort", "dhcp_nomagic", "dhcp_badoption", "dhcp_notype",
                   "dhcp_badtype"):  # fmt: skip
        assert drops.get(reason, 0) > before.get(reason, 0), (reason, drops)
    lan.daemon.call("status")  # still serving
    assert lan.udhcpc("c").startswith("192.0.2.1")


def test_a_reload_changes_the_pools_and_keeps_the_leases(lan: Lan) -> None:
    before = {row["address"]: row["client"] for row in lan.leases()["leases"]}  # type: ignore[union-attr]
    assert before
    text = lan.daemon.config.read_text()
    old, new = '"192.0.2.138", "192.0.2.180"', '"192.0.2.150", "192.0.2.180"'
    assert old in text
    lan.daemon.config.write_text(text.replace(old, new))
    try:
        result = lan.daemon.ctl("reload", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "vnet lan: dhcp server on" in result.stdout
        after = {row["address"]: row["client"] for row in lan.leases()["leases"]}  # type: ignore[union-attr]
        assert after == before
        # A new client of that pool gets an address from the new range.
        if lan.ns("c") not in lan.namespaces:
            lan.attach("c", "02:00:5e:00:53:c9")
        lan.set_mac("c", "02:00:5e:00:53:c9")
        address = lan.udhcpc("c")
        assert 150 <= int(address.rsplit(".", 1)[1]) <= 180, address
    finally:
        lan.daemon.config.write_text(text)
