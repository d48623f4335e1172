"""Sockets in vnets, used by this test process, talking to real Linux hosts."""

from __future__ import annotations

import asyncio
import errno
import socket
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest
from harness import Vrouterd, python

from vrouter.api.protocol import ApiError
from vrouter.client import Client, VSocket, create_datagram_endpoint
from vrouter.core import limits

pytestmark = pytest.mark.integration

ASK = textwrap.dedent(
    """
    import socket, sys
    family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(sys.argv[2].encode(), (sys.argv[1], int(sys.argv[3])))
    data, peer = s.recvfrom(2048)
    print(data.decode(), peer[0])
    """
)

RAW_SEND = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 89)
    s.sendto(b"hello OSPF-shaped", (sys.argv[1], 0))
    """
)


@pytest.fixture
def client(demo: Vrouterd) -> Iterator[Client]:
    with Client(demo.socket) as c:
        yield c


def _index(demo: Vrouterd, vnet: str, ifname: str) -> int:
    return next(i["index"] for i in demo.call("ifconfig", vnet=vnet) if i["name"] == ifname)


def _echo_once(sock: VSocket, seen: list[object]) -> threading.Thread:
    def serve() -> None:
        data, peer, info = sock.recvmsg_info()
        seen.append(info)
        # Answer from the address the request was sent to, as a server using
        # IP_PKTINFO does.
        sock.sendto(b"echo:" + data, peer, source=info.dst)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("family", "bind", "address"),
    [(socket.AF_INET, "0.0.0.0", "198.51.100.1"), (socket.AF_INET6, "::", "2001:db8:2::1")],
    ids=["ipv4", "ipv6"],
)
def test_udp_echo_server_in_a_vnet_answers_a_linux_host(
    demo: Vrouterd, client: Client, family: int, bind: str, address: str
) -> None:
    with client.socket("blue", family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.bind((bind, 9999))
        seen: list[object] = []
        thread = _echo_once(sock, seen)
        result = demo.python("h2", "-c", ASK, address, "ping-from-h2", "9999")
        thread.join(10)
        reply, source = result.stdout.split()
        assert reply == "echo:ping-from-h2"
        assert source == address  # answered from the address it was sent to
        [info] = seen
        assert info.dst == address  # type: ignore[attr-defined]
        assert info.ifindex == _index(demo, "blue", demo.tap("b"))  # type: ignore[attr-defined]
        assert info.ttl == 64  # type: ignore[attr-defined]


def test_a_datagram_through_the_other_vnet_arrives_on_the_epair(
    demo: Vrouterd, client: Client
) -> None:
    with client.socket("blue", socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.bind(("0.0.0.0", 9998))
        seen: list[object] = []
        thread = _echo_once(sock, seen)
        result = demo.python("h1", "-c", ASK, "198.51.100.1", "via-red", "9998")
        thread.join(10)
        assert result.stdout.split() == ["echo:via-red", "198.51.100.1"]
        assert seen[0].ifindex == _index(demo, "blue", "ep0")  # type: ignore[attr-defined]
        assert seen[0].ttl == 63  # type: ignore[attr-defined]


def test_same_port_in_two_vnets_are_separate(demo: Vrouterd, client: Client) -> None:
    red = client.socket("red", socket.AF_INET, socket.SOCK_DGRAM)
    blue = client.socket("blue", socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for sock in (red, blue):
            sock.bind(("0.0.0.0", 5300))
            sock.settimeout(0.5)
        demo.python(
            "h1",
            "-c",
            "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.sendto(b'for red', ('192.0.2.1', 5300))",
        )
        assert red.recvfrom()[0] == b"for red"
        with pytest.raises(TimeoutError):
            blue.recvfrom()
    finally:
        red.close()
        blue.close()


def test_no_socket_means_port_unreachable(demo: Vrouterd) -> None:
    connected = textwrap.dedent(
        """
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.connect(("198.51.100.1", 9997))
        s.send(b"anyone?")
        s.recv(100)
        """
    )
    result = demo.python("h2", "-c", connected, check=False)
    assert "ConnectionRefusedError" in result.stderr


def test_raw_socket_receives_its_protocol(demo: Vrouterd, client: Client) -> None:
    with client.socket("blue", socket.AF_INET, socket.SOCK_RAW, 89) as sock:
        sock.settimeout(10)
        demo.python("h2", "-c", RAW_SEND, "198.51.100.1")
        data, (source, _), info = sock.recvmsg_info()
        assert data == b"hello OSPF-shaped"
        assert source == "198.51.100.2" and info.dst == "198.51.100.1"
        # And it can answer with a chosen source.
        sock.sendto(b"raw reply", "198.51.100.2", source="198.51.100.1")


def test_route_socket_changes_forwarding_and_reports_it(demo: Vrouterd, client: Client) -> None:
    routes = client.route_socket("red", source="lab")
    watcher = client.route_socket("red")
    try:
        route = routes.get(destination="198.51.100.2")
        assert route["prefix"] == "198.51.100.0/24" and route["gateway"] == "203.0.113.2"
        assert (route["source"], route["state"]) == ("static", "installed")
        # The config's static route is not the client's to delete.
        with pytest.raises(OSError, match=r"no lab route to 198\.51\.100\.0/24") as caught:
            routes.delete("198.51.100.0/24")
        assert caught.value.errno == errno.ESRCH
        # A route of the client's own, more specific: a blackhole, forwarding stops.
        added = routes.add("198.51.100.0/25", route_type="blackhole")
        assert (added["source"], added["state"]) == ("lab", "installed")
        lost = demo.exec("h1", "ping", "-c", "1", "-W", "1", "198.51.100.2", check=False)
        assert "0 received" in lost.stdout
        # Under the static route it is held: the reply says so, and forwarding is unchanged.
        held = routes.add("198.51.100.0/24", gateway="203.0.113.2")
        assert held["state"] == "held"
        routes.delete("198.51.100.0/25")
        back = demo.exec("h1", "ping", "-c", "1", "-W", "2", "198.51.100.2", check=False)
        assert "1 received" in back.stdout
        routes.delete("198.51.100.0/24")
        assert routes.get(prefix="198.51.100.0/24")["source"] == "static"
        events = [watcher.next_event(5) for _ in range(4)]
        assert [(e["type"], e["route"]["prefix"], e["route"].get("state")) for e in events] == [
            ("RTM_ADD", "198.51.100.0/25", "installed"),
            ("RTM_ADD", "198.51.100.0/24", "held"),
            ("RTM_DELETE", "198.51.100.0/25", None),
            ("RTM_DELETE", "198.51.100.0/24", None),
        ]
        assert any(i["name"] == "ep0" for i in routes.interfaces())
        with pytest.raises(OSError, match=r"no route to 203\.0\.113\.200/32"):
            routes.delete("203.0.113.200/32")
        with pytest.raises(OSError, match="belongs to the daemon"):
            watcher.request("RTM_ADD", prefix="192.0.2.0/24", source="static")
    finally:
        routes.close()
        watcher.close()


ROUTING_DAEMON = textwrap.dedent(
    """
    import sys, time
    from vrouter.client import Client
    client = Client(sys.argv[1])
    routes = client.route_socket("red", source=sys.argv[2])
    routes.add("198.51.100.0/25", route_type="blackhole")
    print("added", flush=True)
    time.sleep(60)
    """
)


def _lab_routes(demo: Vrouterd) -> list[str]:
    return [r["prefix"] for r in demo.call("route.show", vnet="red") if r["source"] == "lab"]


@pytest.mark.parametrize("grace", [0, 2])
def test_a_dead_routing_daemons_routes_go(demo: Vrouterd, grace: int) -> None:
    """kill -9 of a program speaking for a protocol: its routes go (after the grace)."""
    demo.call("sysctl.set", vnet="red", settings={"net.route.client_grace": grace})
    proc = subprocess.Popen(
        python("-c", ROUTING_DAEMON, str(demo.socket), "lab"), stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "added"
        assert _lab_routes(demo) == ["198.51.100.0/25"]
        lost = demo.exec("h1", "ping", "-c", "1", "-W", "1", "198.51.100.2", check=False)
        assert "0 received" in lost.stdout  # the blackhole forwards nothing
    finally:
        proc.kill()
        proc.wait(10)
    if grace:
        time.sleep(0.5)
        assert _lab_routes(demo) == ["198.51.100.0/25"]  # stale, kept for the grace
    deadline = time.monotonic() + grace + 5
    while _lab_routes(demo) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _lab_routes(demo) == []
    back = demo.exec("h1", "ping", "-c", "1", "-W", "2", "198.51.100.2", check=False)
    assert "1 received" in back.stdout


def test_asyncio_endpoint(demo: Vrouterd, client: Client) -> None:
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(data.upper(), addr)  # type: ignore[attr-defined]

    async def main() -> str:
        transport, _ = await create_datagram_endpoint(
            client, Echo, "blue", local_addr=("0.0.0.0", 9996)
        )
        try:
            result = await asyncio.to_thread(
                demo.python, "h2", "-c", ASK, "198.51.100.1", "quiet", "9996"
            )
            return result.stdout.split()[0]
        finally:
            transport.close()

    assert asyncio.run(main()) == "QUIET"


def test_closing_releases_the_port(demo: Vrouterd, client: Client) -> None:
    first = client.socket("blue", socket.AF_INET, socket.SOCK_DGRAM)
    first.bind(("0.0.0.0", 9995))
    with pytest.raises(OSError, match="in use"):
        client.socket("blue", socket.AF_INET, socket.SOCK_DGRAM).bind(("0.0.0.0", 9995))
    first.close()
    for _ in range(50):  # the daemon sees the close on its next loop turn
        try:
            client.socket("blue", socket.AF_INET, socket.SOCK_DGRAM).bind(("0.0.0.0", 9995))
            break
        except OSError:
            threading.Event().wait(0.05)
    else:
        raise AssertionError("port 9995 still held after close")


def test_sockstat_lists_the_sockets_of_a_vnet(demo: Vrouterd, client: Client) -> None:
    with client.socket("blue", socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.bind(("::", 4242))
        shown = demo.call("sockstat", vnet="blue")
        [entry] = [s for s in shown["sockets"] if s["local"] == "*:4242"]
        assert entry["kind"] == "udp" and entry["family"] == "inet6"
    assert all(s["local"] != "*:4242" for s in demo.call("sockstat", vnet="red")["sockets"])


def test_the_socket_limit_counts_tcp_and_udp_sockets_alike(demo: Vrouterd, client: Client) -> None:
    demo.call("sysctl.set", vnet="green", settings={"vnet.limits.sockets": 1})
    try:
        with (
            client.listen("green", ("0.0.0.0", 8090)),
            pytest.raises(ApiError, match="socket limit 1 reached"),
        ):
            client.socket("green", socket.AF_INET, socket.SOCK_DGRAM)
        with (
            client.socket("green", socket.AF_INET, socket.SOCK_DGRAM),
            pytest.raises(ApiError, match="socket limit 1 reached"),
        ):
            client.listen("green", ("0.0.0.0", 8091))
    finally:
        demo.call("sysctl.set", vnet="green", settings={"vnet.limits.sockets": limits.MAXIMUM})
