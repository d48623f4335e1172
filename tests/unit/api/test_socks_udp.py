"""The SOCKS5 UDP request header (RFC 1928 section 7)."""

from __future__ import annotations

import ipaddress

import pytest

from vrouter.api.socks_udp import build, parse

V4 = ipaddress.ip_address("198.51.100.2")
V6 = ipaddress.ip_address("2001:db8:2::2")


@pytest.mark.parametrize("address", [V4, V6])
def test_a_datagram_round_trips(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    data = build(address, 5353, b"query")
    assert data[:3] == b"\0\0\0"
    assert parse(data) == (address, 5353, b"query")


def test_an_ip_literal_given_as_a_name_is_taken() -> None:
    for text in (b"198.51.100.2", b"[2001:db8:2::2]"):
        data = b"\0\0\0\x03" + bytes([len(text)]) + text + b"\x00\x35" + b"dns"
        assert parse(data) == (ipaddress.ip_address(text.decode().strip("[]")), 53, b"dns")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\0\0\x01\x01" + V4.packed + b"\0\x35x",  # FRAG 1: fragmentation is not supported
        b"\0\x01\0\x01" + V4.packed + b"\0\x35x",  # RSV not zero
        b"\0\0\0\x01\xc6\x33",  # truncated address
        b"\0\0\0\x04" + V6.packed[:8],
        b"\0\0\0\x03\x0bexample.org\0\x35x",  # a name: vnets have no resolver
        b"\0\0\0\x03\x20short",
        b"\0\0\0\x07" + V4.packed + b"\0\x35x",  # unknown address type
    ],
)
def test_what_cannot_be_relayed_is_dropped(data: bytes) -> None:
    assert parse(data) is None
