"""The SOCKS5 gateway's handshake (RFC 1928, RFC 1929) against a real TCP client."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from vrouter.api import socks, streams
from vrouter.api.protocol import ApiError
from vrouter.daemon.config import SocksConfig

Exchange = Callable[[bytes, int], Awaitable[bytes]]


def _connect_request(atyp: int, address: bytes, port: int = 80, command: int = 1) -> bytes:
    return bytes([5, command, 0, atyp]) + address + struct.pack("!H", port)


def _run(config: SocksConfig, body: Callable[[Exchange], Awaitable[None]]) -> None:
    """Start a gateway on an ephemeral loopback port and run ``body`` against it."""

    async def main() -> None:
        gateway = socks.Gateway(None, config)  # type: ignore[arg-type]
        await gateway.start()
        assert gateway.server is not None
        port = gateway.server.sockets[0].getsockname()[1]

        async def exchange(data: bytes, want: int) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(data)
                await writer.drain()
                got = await asyncio.wait_for(reader.read(want + 64), 5)
                rest = await asyncio.wait_for(reader.read(), 5)  # the gateway closes
                return got + rest
            finally:
                writer.close()

        try:
            await asyncio.wait_for(body(exchange), 20)
        finally:
            await gateway.close()

    asyncio.run(main())


OPEN = SocksConfig("blue", ("127.0.0.1", 0))
LOCKED = SocksConfig("blue", ("127.0.0.1", 0), "ops", "secret")


def test_a_client_without_an_acceptable_method_is_told_so() -> None:
    async def body(exchange: Exchange) -> None:
        assert await exchange(b"\x05\x01\x02", 2) == b"\x05\xff"  # offers only user/pass

    _run(OPEN, body)


def test_a_wrong_version_is_closed_without_a_reply() -> None:
    async def body(exchange: Exchange) -> None:
        assert await exchange(b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00", 8) == b""

    _run(OPEN, body)


def test_unsupported_command_and_address_type_get_their_codes() -> None:
    async def body(exchange: Exchange) -> None:
        bind = _connect_request(1, socket.inet_aton("198.51.100.2"), command=2)
        got = await exchange(b"\x05\x01\x00" + bind, 12)
        assert got == b"\x05\x00" + b"\x05\x07\x00\x01" + bytes(6)
        bad_atyp = bytes([5, 1, 0, 9])
        got = await exchange(b"\x05\x01\x00" + bad_atyp, 12)
        assert got == b"\x05\x00" + b"\x05\x08\x00\x01" + bytes(6)

    _run(OPEN, body)


def test_a_name_that_is_not_an_ip_address_is_host_unreachable() -> None:
    async def body(exchange: Exchange) -> None:
        name = b"example.org"
        request = _connect_request(3, bytes([len(name)]) + name)
        got = await exchange(b"\x05\x01\x00" + request, 12)
        assert got == b"\x05\x00" + b"\x05\x04\x00\x01" + bytes(6)

    _run(OPEN, body)


def test_wrong_credentials_are_refused_and_right_ones_reach_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[dict[str, Any]] = []

    async def refused(daemon: object, args: dict[str, Any]) -> None:
        asked.append(args)
        raise ApiError("connect to port 8080: ECONNREFUSED: Connection refused", errno.ECONNREFUSED)

    monkeypatch.setattr(streams, "establish", refused)

    async def body(exchange: Exchange) -> None:
        wrong = b"\x05\x01\x02" + b"\x01\x03ops\x05wrong"
        assert await exchange(wrong, 4) == b"\x05\x02\x01\x01"
        assert asked == []
        right = b"\x05\x01\x02" + b"\x01\x03ops\x06secret"
        request = _connect_request(4, socket.inet_pton(socket.AF_INET6, "2001:db8::2"), 8080)
        got = await exchange(right + request, 14)
        assert got == b"\x05\x02\x01\x00" + b"\x05\x05\x00\x01" + bytes(6)

    _run(LOCKED, body)
    assert asked == [{"vnet": "blue", "family": "inet6", "address": "2001:db8::2", "port": 8080}]


def test_the_relay_takes_the_client_socket_and_what_was_read_past_the_handshake() -> None:
    """After CONNECT the client's socket leaves asyncio; bytes asyncio had already read
    (a client sending before the reply) are handed over, and the connection stays up."""

    async def main() -> None:
        taken: asyncio.Future[tuple[socket.socket, bytes]] = asyncio.Future()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readexactly(3)  # "the handshake"
            await asyncio.sleep(0.1)  # the optimistic bytes are in the reader by now
            taken.set_result(socks._take_socket(reader, writer))

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hs!early")
        await writer.drain()
        client, early = await asyncio.wait_for(taken, 5)
        with client:
            assert early == b"early"
            client.setblocking(True)
            client.sendall(b"reply")
            assert await asyncio.wait_for(reader.readexactly(5), 5) == b"reply"  # no FIN
            writer.write(b"more")
            await writer.drain()
            client.settimeout(5)
            assert client.recv(16) == b"more"
        writer.close()
        server.close()

    asyncio.run(main())


def test_udp_associate_ignores_a_name_given_as_the_clients_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PySocks sends its expected address as a domain name; RFC 1928 7 lets the server
    ignore it, and the association is granted (a CONNECT to a name is still refused)."""
    made: list[tuple[str, str]] = []

    class Association:
        def __init__(self, daemon: object, vnet: str, client: str, local: str) -> None:
            made.append((vnet, client))
            self.bound = (ipaddress.ip_address("127.0.0.1"), 40000)

        def close(self) -> None:
            made.append(("closed", ""))

    monkeypatch.setattr(socks.socks_udp, "Association", Association)

    async def main() -> None:
        gateway = socks.Gateway(None, OPEN)  # type: ignore[arg-type]
        await gateway.start()
        assert gateway.server is not None
        port = gateway.server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            name = b"localhost"
            request = _connect_request(3, bytes([len(name)]) + name, 0, command=3)
            writer.write(b"\x05\x01\x00" + request)
            got = await asyncio.wait_for(reader.readexactly(12), 5)
            assert got == b"\x05\x00" + b"\x05\x00\x00\x01" + bytes([127, 0, 0, 1]) + b"\x9c\x40"
            assert made == [("blue", "127.0.0.1")]
        finally:
            writer.close()
            await asyncio.sleep(0.1)
            await gateway.close()
        assert made[-1] == ("closed", "")

    asyncio.run(main())
