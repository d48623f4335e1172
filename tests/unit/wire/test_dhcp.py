"""DHCP messages: parse and emit, options (RFC 2132, 3396, 3442), malformed input."""

from __future__ import annotations

import ipaddress

import pytest

from vrouter.wire import dhcp
from vrouter.wire.errors import IntegrityError, SanityError

# A DHCPDISCOVER as dhclient sends it (xid 0x3903f326, chaddr 02:00:5e:00:53:01, parameter
# request list, no broadcast flag), cut after the options.
DISCOVER = bytes.fromhex(
    "010106003903f32600000000000000000000000000000000000000000200"
    "5e00530100000000000000000000"
) + bytes(192) + bytes.fromhex("63825363" "350101" "370701031c0f061a79" "ff")


def test_parse_discover() -> None:
    message = dhcp.DhcpMessage.parse(DISCOVER)
    assert message.type == dhcp.DISCOVER and message.op == dhcp.BOOTREQUEST
    assert message.xid == 0x3903F326 and message.chaddr == bytes.fromhex("02005e005301")
    assert not message.broadcast and message.ciaddr == dhcp.ZERO
    assert message.options[dhcp.OPT_PARAMS] == bytes([1, 3, 28, 15, 6, 26, 121])
    assert message.order == [dhcp.OPT_MESSAGE_TYPE, dhcp.OPT_PARAMS]


def test_emit_round_trip_pads_to_bootp_size() -> None:
    message = dhcp.DhcpMessage.parse(DISCOVER)
    message.set(dhcp.OPT_HOSTNAME, b"h1")
    out = message.emit()
    assert len(out) == dhcp.BOOTP_MIN
    again = dhcp.DhcpMessage.parse(out)
    assert again.options == message.options and again.chaddr == message.chaddr


def test_repeated_options_are_concatenated_rfc3396() -> None:
    data = DISCOVER[:-1] + bytes.fromhex("0c0261620c026364ff")
    assert dhcp.DhcpMessage.parse(data).options[dhcp.OPT_HOSTNAME] == b"abcd"


def test_long_option_is_split_on_emit() -> None:
    message = dhcp.DhcpMessage.parse(DISCOVER)
    message.set(dhcp.OPT_CLASSLESS_ROUTES, bytes(300))
    again = dhcp.DhcpMessage.parse(message.emit())
    assert again.options[dhcp.OPT_CLASSLESS_ROUTES] == bytes(300)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (DISCOVER[:200], "dhcp_tooshort"),
        (DISCOVER[:236] + b"\x00\x00\x00\x00" + DISCOVER[240:], "dhcp_nomagic"),
        (DISCOVER[:240] + b"\x35\x05\x01", "dhcp_badoption"),
        (DISCOVER[:240] + b"\x35", "dhcp_badoption"),
    ],
)
def test_integrity_errors(data: bytes, reason: str) -> None:
    with pytest.raises(IntegrityError) as err:
        dhcp.DhcpMessage.parse(data)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (DISCOVER[:240] + b"\xff", "dhcp_notype"),
        (DISCOVER[:240] + b"\x35\x01\x09\xff", "dhcp_badtype"),
        (b"\x03" + DISCOVER[1:], "dhcp_badop"),
        (DISCOVER[:2] + b"\x11" + DISCOVER[3:], "dhcp_badhlen"),
    ],
)
def test_sanity_errors(data: bytes, reason: str) -> None:
    with pytest.raises(SanityError) as err:
        dhcp.DhcpMessage.parse(data)
    assert err.value.reason == reason


def test_classless_routes_rfc3442_examples() -> None:
    routes = [
        (ipaddress.IPv4Network("198.51.100.0/24"), bytes([192, 0, 2, 1])),
        (ipaddress.IPv4Network("0.0.0.0/0"), bytes([192, 0, 2, 1])),
        (ipaddress.IPv4Network("10.0.0.0/9"), bytes([192, 0, 2, 2])),
    ]
    value = dhcp.classless_routes(routes)
    assert value == bytes([24, 198, 51, 100, 192, 0, 2, 1, 0, 192, 0, 2, 1,
                           9, 10, 0, 192, 0, 2, 2])  # fmt: skip
    assert dhcp.parse_classless_routes(value) == routes
    with pytest.raises(IntegrityError):
        dhcp.parse_classless_routes(value[:-1])
    with pytest.raises(IntegrityError):
        dhcp.parse_classless_routes(bytes([33, 1, 2, 3, 4, 5, 6, 7, 8]))
