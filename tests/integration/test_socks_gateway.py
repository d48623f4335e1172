"""The SOCKS5 gateway: UDP ASSOCIATE from the daemon's machine into a vnet, and its clean-up."""

from __future__ import annotations

import ipaddress
import socket
import struct
import subprocess
import textwrap
import time
from collections.abc import Iterator

import pytest
from harness import DEMO_LIKE, PYTHON, Vrouterd, running

pytestmark = pytest.mark.integration

ECHO = textwrap.dedent(
    """
    import socket, sys
    family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 7007))
    s.settimeout(30)
    print("ready", flush=True)
    for _ in range(int(sys.argv[2])):
        data, peer = s.recvfrom(2048)
        s.sendto(b"echo from " + peer[0].encode() + b": " + data, peer)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    port = _free_port()
    template = DEMO_LIKE.replace(
        'log_level = "debug"',
        f'log_level = "debug"\n[[daemon.socks]]\nvnet = "blue"\nlisten = "127.0.0.1:{port}"',
        1,
    )
    daemon = Vrouterd(tmp_path_factory.mktemp("socksudp"), template)
    daemon.socks_port = port  # type: ignore[attr-defined]
    yield from running(daemon)


def _exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the gateway closed the connection"
        data += chunk
    return data


def _associate(daemon: Vrouterd) -> tuple[socket.socket, tuple[str, int]]:
    """Open a SOCKS5 connection, ask for UDP ASSOCIATE, return it and the relay's address."""
    control = socket.create_connection(("127.0.0.1", daemon.socks_port), timeout=5)  # type: ignore[attr-defined]
    control.sendall(b"\x05\x01\x00")
    assert _exactly(control, 2) == b"\x05\x00"
    control.sendall(b"\x05\x03\x00\x01" + bytes(4) + b"\x00\x00")
    reply = _exactly(control, 10)
    assert reply[:4] == b"\x05\x00\x00\x01", reply
    relay = (str(ipaddress.IPv4Address(reply[4:8])), struct.unpack("!H", reply[8:10])[0])
    return control, relay


def _header(address: str, port: int) -> bytes:
    ip = ipaddress.ip_address(address)
    return bytes((0, 0, 0, 1 if ip.version == 4 else 4)) + ip.packed + struct.pack("!H", port)


def _echo(daemon: Vrouterd, address: str, count: int) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        ["ip", "netns", "exec", daemon.ns("h2"), PYTHON, "-c", ECHO, address, str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    return server


def _udp_sockets(daemon: Vrouterd) -> int:
    return sum(1 for s in daemon.call("sockstat", vnet="blue")["sockets"] if s["kind"] == "udp")


@pytest.mark.parametrize(
    ("target", "source"), [("198.51.100.2", "198.51.100.1"), ("2001:db8:2::2", "2001:db8:2::1")]
)
def test_datagrams_leave_from_the_vnet_and_answers_come_back(
    gateway: Vrouterd, target: str, source: str
) -> None:
    server = _echo(gateway, target, 3)
    control, relay = _associate(gateway)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(5)
    try:
        for n in range(3):
            client.sendto(_header(target, 7007) + b"hello %d" % n, relay)
            data, peer = client.recvfrom(2048)
            assert peer == relay
            expect = _header(target, 7007) + f"echo from {source}: hello {n}".encode()
            assert data == expect
        assert _udp_sockets(gateway) >= 1
    finally:
        client.close()
        control.close()
        server.wait(10)
    deadline = time.monotonic() + 10
    while _udp_sockets(gateway) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _udp_sockets(gateway) == 0  # the association ended with its TCP connection


def test_fragments_names_and_strangers_are_not_relayed(gateway: Vrouterd) -> None:
    server = _echo(gateway, "198.51.100.2", 3)  # would also answer whatever slipped through
    control, relay = _associate(gateway)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(5)
    try:
        client.sendto(b"\x00\x00\x01" + _header("198.51.100.2", 7007)[3:] + b"frag", relay)
        client.sendto(b"\x00\x00\x00\x03\x0bexample.org\x1b\x5fname", relay)
        client.sendto(_header("198.51.100.2", 7007) + b"mine", relay)  # sets the client's port
        data, _ = client.recvfrom(2048)
        assert data.endswith(b": mine"), data  # the first answer: nothing before it went out
        stranger.sendto(_header("198.51.100.2", 7007) + b"not mine", relay)
        time.sleep(0.5)
        client.sendto(_header("198.51.100.2", 7007) + b"last", relay)
        data, _ = client.recvfrom(2048)
        assert data.endswith(b": last"), data  # the stranger's never reached the server
        stranger.setblocking(False)
        with pytest.raises(BlockingIOError):
            stranger.recvfrom(2048)  # nor did an answer to it come back to the stranger
    finally:
        client.close()
        stranger.close()
        control.close()
        server.kill()
        server.wait(10)


LISTENER = textwrap.dedent(
    """
    import socket, sys, time
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.51.100.2", 7008))
    s.listen(16)
    print("ready", flush=True)
    s.settimeout(20)
    kept = []
    try:
        while True:
            kept.append(s.accept()[0])
    except OSError:
        pass
    """
)


def test_a_client_that_resets_after_connect_leaves_no_connection_behind(
    gateway: Vrouterd,
) -> None:
    server = subprocess.Popen(
        ["ip", "netns", "exec", gateway.ns("h2"), PYTHON, "-c", LISTENER],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        for _ in range(5):
            client = socket.create_connection(("127.0.0.1", gateway.socks_port), timeout=5)  # type: ignore[attr-defined]
            client.sendall(b"\x05\x01\x00")
            assert _exactly(client, 2) == b"\x05\x00"
            client.sendall(b"\x05\x01\x00\x01" + ipaddress.IPv4Address("198.51.100.2").packed
                           + struct.pack("!H", 7008))  # fmt: skip
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # RST at once, before or after the gateway's reply
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            open_ = [
                c for c in gateway.call("sockstat", vnet="blue")["tcp"] if c["state"] != "TIME_WAIT"
            ]
            if not open_:
                break
            time.sleep(0.2)
        assert open_ == []  # every connection the gateway made was reset with its client
    finally:
        server.kill()
        server.wait(10)
