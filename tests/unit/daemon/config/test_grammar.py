"""The grammar of names and addresses: each parser returns the value or the reason it is not one."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface

import pytest

from vrouter.daemon.config.grammar import (
    ifname_error,
    is_link_local,
    parse_address,
    parse_interface_address,
    parse_listen,
    parse_mac,
    parse_network,
    toml_header,
    vnet_name_error,
)


@pytest.mark.parametrize("name", ["red", "lab/r1", "a", "R_1-x", "x" * 32])
def test_valid_vnet_names(name: str) -> None:
    assert vnet_name_error(name) is None


@pytest.mark.parametrize("name", ["", "lab/", "-red", "red.1", "x" * 33, "a//b"])
def test_invalid_vnet_names_say_what_a_part_may_be(name: str) -> None:
    assert vnet_name_error(name) == (
        f"invalid vnet name {name!r}: each '/'-separated part must be 1-32 "
        "characters from [A-Za-z0-9_-], starting with a letter or digit"
    )


@pytest.mark.parametrize("name", ["eth0", "eth0.100", "vr-red0", "x" * 15])
def test_valid_interface_names(name: str) -> None:
    assert ifname_error(name) is None


@pytest.mark.parametrize("name", ["", ".", "..", "x" * 16, "eth 0", "eth/0"])
def test_invalid_interface_names_cite_ifnamsiz(name: str) -> None:
    error = ifname_error(name)
    assert error is not None and error.endswith("(Linux IFNAMSIZ)")


def test_interface_addresses_of_both_families() -> None:
    assert parse_interface_address("192.0.2.1/24") == IPv4Interface("192.0.2.1/24")
    assert parse_interface_address("2001:db8::1/64") == IPv6Interface("2001:db8::1/64")
    assert parse_interface_address("192.0.2.0/31") == IPv4Interface("192.0.2.0/31")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "192.0.2.1",
            "'192.0.2.1' has no prefix length; write ADDRESS/PREFIXLEN, e.g. 192.0.2.1/24",
        ),
        (
            "2001:db8::1",
            "'2001:db8::1' has no prefix length; write ADDRESS/PREFIXLEN, e.g. 2001:db8::1/64",
        ),
        ("192.0.2.1/33", "'192.0.2.1/33': prefix length 33 is out of range 0..32"),
        (
            "192.0.2.0/24",
            "'192.0.2.0/24' is the network address of 192.0.2.0/24; "
            "an interface needs a host address",
        ),
        (
            "192.0.2.255/24",
            "'192.0.2.255/24' is the broadcast address of 192.0.2.0/24; "
            "an interface needs a host address",
        ),
        (
            "2001:db8::/64",
            "'2001:db8::/64' is the Subnet-Router anycast address of "
            "2001:db8::/64; an interface needs a host address",
        ),
        (
            "ff02::1/64",
            "'ff02::1/64' is a multicast address (ff00::/8); an interface needs a unicast address",
        ),
        (
            "fe80::1%eth0/64",
            "'fe80::1%eth0/64' has a zone index ('%eth0'); write the address "
            "without it (the interface gives the zone)",
        ),
    ],
)
def test_interface_address_problems(text: str, reason: str) -> None:
    assert parse_interface_address(text) == reason


def test_networks_must_have_host_bits_clear() -> None:
    assert parse_network("198.51.100.0/24") == IPv4Network("198.51.100.0/24")
    assert parse_network("198.51.100.1/24") == (
        "'198.51.100.1/24' has host bits set; did you mean 198.51.100.0/24?"
    )


def test_single_addresses_take_no_prefix_length() -> None:
    assert parse_address("203.0.113.2") == IPv4Address("203.0.113.2")
    assert parse_address("fe80::1") == IPv6Address("fe80::1")
    assert parse_address("203.0.113.2/32") == (
        "'203.0.113.2/32' must be a single address, without a prefix length"
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("127.0.0.1:9585", ("127.0.0.1", 9585)),
        ("[::1]:9585", ("::1", 9585)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_listen_addresses(text: str, value: tuple[str, int]) -> None:
    assert parse_listen(text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("::1:9585", "'::1:9585': an IPv6 address must be in brackets, e.g. \"[::1]:9585\""),
        ("127.0.0.1:0", "'127.0.0.1:0': port 0 is out of range 1..65535"),
        (
            ":9585",
            "':9585' has no host; write 127.0.0.1:9585 for this machine only "
            "or 0.0.0.0:9585 for every IPv4 address",
        ),
        ("300.1.1.1:80", "'300.1.1.1:80': '300.1.1.1' is not an IPv4 address"),
    ],
)
def test_listen_address_problems(text: str, reason: str) -> None:
    assert parse_listen(text) == reason


def test_mac_addresses_must_be_unicast_and_not_zero() -> None:
    assert parse_mac("02:00:00:00:00:01") == bytes.fromhex("020000000001")
    error = parse_mac("01:00:5e:00:00:01")
    assert isinstance(error, str) and "multicast MAC address" in error
    assert parse_mac("00:00:00:00:00:00") == "'00:00:00:00:00:00' is the all-zero MAC address"
    assert parse_mac("02-00-00-00-00-01") == (
        "'02-00-00-00-00-01' is not a MAC address of the form xx:xx:xx:xx:xx:xx"
    )


def test_link_local_is_ipv6_only() -> None:
    assert is_link_local(IPv6Address("fe80::1"))
    assert not is_link_local(IPv4Address("169.254.0.1"))


def test_vnet_headers_are_quoted_when_needed() -> None:
    assert toml_header("red") == "[vnets.red]"
    assert toml_header("lab/r1") == '[vnets."lab/r1"]'
