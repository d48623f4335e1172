"""The grammar of names and addresses in a configuration file.

Responsibility: vnet and interface names, IPv4 and IPv6 interface addresses,
destination prefixes, single addresses, ``HOST:PORT`` listen addresses and
MAC addresses.  Each parser takes the text and returns the value or the
reason it is not one (a string ready for a ``ConfigProblem``); none of them
knows where in the file the text came from.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)

_VNET_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
NETNS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_WITH_PREFIX = re.compile(r"([^/]*)/([0-9]{1,3})")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_PORT = re.compile(r"[0-9]{1,5}")
_LIMITED_BROADCAST = IPv4Address("255.255.255.255")
LINK_LOCAL_NETWORK = IPv6Network("fe80::/10")
MULTICAST_NETWORK = IPv6Network("ff00::/8")


def vnet_name_error(name: str) -> str | None:
    """Return why *name* is not a valid vnet name, or None."""
    for segment in name.split("/"):
        if not _VNET_SEGMENT.fullmatch(segment):
            return (
                f"invalid vnet name {name!r}: each '/'-separated part must be 1-32 "
                "characters from [A-Za-z0-9_-], starting with a letter or digit"
            )
    return None


def ifname_error(name: str) -> str | None:
    """Return why *name* is not a valid interface name, or None."""
    if not _IFNAME.fullmatch(name) or name in (".", ".."):
        return (
            f"invalid interface name {name!r}: must be 1-15 characters "
            "from [A-Za-z0-9_.-] (Linux IFNAMSIZ)"
        )
    return None


def is_link_local(address: IPv4Address | IPv6Address) -> bool:
    """Return whether *address* is an IPv6 link-local address (fe80::/10)."""
    return isinstance(address, IPv6Address) and address.is_link_local


def _parse_ip(text: str, whole: str) -> IPv4Address | IPv6Address | str:
    """Parse the address part *text* of value *whole*, or return why not."""
    if ":" not in text:
        try:
            return IPv4Address(text)
        except ipaddress.AddressValueError as exc:
            return f"{whole!r}: invalid IPv4 address: {exc}"
    if "%" in text:
        zone = text.partition("%")[2]
        return (
            f"{whole!r} has a zone index ('%{zone}'); write the address without it "
            "(the interface gives the zone)"
        )
    try:
        return IPv6Address(text)
    except ipaddress.AddressValueError as exc:
        return f"{whole!r}: invalid IPv6 address: {exc}"


def ipv6_unicast_error(address: IPv6Address, text: str, need: str) -> str | None:
    """Return why IPv6 *address* (written *text*) is not usable unicast, or None."""
    if address.is_multicast:
        return f"{text!r} is a multicast address (ff00::/8); {need}"
    if address.is_unspecified:
        return f"{text!r} is the unspecified address; {need}"
    if address.is_loopback:
        return f"{text!r} is the loopback address; {need}"
    if address.ipv4_mapped is not None:
        return (
            f"{text!r} is an IPv4-mapped address (::ffff:0:0/96), not a real IPv6 address; {need}"
        )
    return None


def _split_prefix(
    text: str, example4: str, example6: str
) -> tuple[IPv4Address | IPv6Address, int] | str:
    """Split ``ADDRESS/PREFIXLEN`` (IPv4 or IPv6) into its parts, or return why not."""
    example = example6 if ":" in text else example4
    match = _WITH_PREFIX.fullmatch(text)
    if match is None:
        if "/" not in text:
            return f"{text!r} has no prefix length; write ADDRESS/PREFIXLEN, e.g. {example}"
        return f"{text!r} is not ADDRESS/PREFIXLEN with a decimal prefix length, e.g. {example}"
    address_text, length_text = match.groups()
    address = _parse_ip(address_text, text)
    if isinstance(address, str):
        return address
    length = int(length_text)
    if length > address.max_prefixlen:
        return f"{text!r}: prefix length {length} is out of range 0..{address.max_prefixlen}"
    return address, length


@functools.lru_cache(maxsize=1 << 14)
def parse_interface_address(text: str) -> IPv4Interface | IPv6Interface | str:
    """Parse an interface address ``A.B.C.D/LEN`` or ``X:X::X/LEN``, or return why not.

    Remembered: vnets that use the same address (tenants with the same plan,
    the two ends of lab links) share one parse and one value, which is immutable.
    """
    split = _split_prefix(text, "192.0.2.1/24", "2001:db8::1/64")
    if isinstance(split, str):
        return split
    address, length = split
    if isinstance(address, IPv6Address):
        error = ipv6_unicast_error(address, text, "an interface needs a unicast address")
        if error is not None:
            return error
        value6 = IPv6Interface((address.packed, length))  # not printed and parsed again
        if length < 127 and address == value6.network.network_address:
            return (
                f"{text!r} is the Subnet-Router anycast address of {value6.network}; "
                "an interface needs a host address"
            )
        return value6
    value = IPv4Interface((address.packed, length))
    if length < 31 and address == value.network.network_address:
        return (
            f"{text!r} is the network address of {value.network}; an interface needs a host address"
        )
    if length < 31 and address == value.network.broadcast_address:
        return (
            f"{text!r} is the broadcast address of {value.network}; "
            "an interface needs a host address"
        )
    if address.is_multicast:
        return f"{text!r} is a multicast address; an interface needs a unicast address"
    if address.is_unspecified or address == _LIMITED_BROADCAST:
        return f"{text!r} is not a usable interface address"
    return value


def parse_network(text: str) -> IPv4Network | IPv6Network | str:
    """Parse a destination prefix ``A.B.C.D/LEN`` or ``X:X::/LEN``, or return why not."""
    split = _split_prefix(
        text,
        "198.51.100.0/24 (or A.B.C.D/32 for one host)",
        "2001:db8::/32 (or ADDRESS/128 for one host)",
    )
    if isinstance(split, str):
        return split
    network = ipaddress.ip_network(split, strict=False)
    if network.network_address != split[0]:
        return f"{text!r} has host bits set; did you mean {network}?"
    return network


def parse_listen(text: str) -> tuple[str, int] | str:
    """Parse a TCP listen address ``HOST:PORT`` or ``[IPV6]:PORT``, or return why not.

    HOST is an IPv4 address or a host name; an IPv6 address goes in brackets.
    The returned host carries no brackets.
    """
    example = 'e.g. "127.0.0.1:9585" or "[::1]:9585"'
    host, sep, port_text = text.rpartition(":")
    if not sep:
        return f"{text!r} has no port; write HOST:PORT, {example}"
    if not _PORT.fullmatch(port_text):
        return f"{text!r}: port {port_text!r} is not a decimal number; write HOST:PORT, {example}"
    port = int(port_text)
    if not 1 <= port <= 65535:
        return f"{text!r}: port {port} is out of range 1..65535"
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(IPv6Address(host[1:-1])), port
        except ValueError:
            return f"{text!r}: {host[1:-1]!r} in brackets is not an IPv6 address"
    if ":" in host:
        return f'{text!r}: an IPv6 address must be in brackets, e.g. "[::1]:{port}"'
    if not host:
        return (
            f"{text!r} has no host; write 127.0.0.1:{port} for this machine only "
            f"or 0.0.0.0:{port} for every IPv4 address"
        )
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return str(IPv4Address(host)), port
        except ValueError:
            return f"{text!r}: {host!r} is not an IPv4 address"
    if not _HOSTNAME.fullmatch(host):
        return f"{text!r}: {host!r} is neither an IP address nor a host name"
    return host, port


def parse_address(text: str) -> IPv4Address | IPv6Address | str:
    """Parse a single address ``A.B.C.D`` or ``X:X::X``, or return why not."""
    if "/" in text:
        return f"{text!r} must be a single address, without a prefix length"
    return _parse_ip(text, text)


def parse_mac(text: str) -> bytes | str:
    """Parse ``xx:xx:xx:xx:xx:xx`` into 6 bytes, or return why not."""
    if not _MAC.fullmatch(text):
        return f"{text!r} is not a MAC address of the form xx:xx:xx:xx:xx:xx"
    value = bytes.fromhex(text.replace(":", ""))
    if value[0] & 0x01:
        return (
            f"{text!r} is a multicast MAC address (low bit of the first octet set); "
            "an interface needs a unicast one, e.g. 02:00:00:00:00:01"
        )
    if not any(value):
        return f"{text!r} is the all-zero MAC address"
    return value


def toml_header(name: str) -> str:
    """Return the TOML table header that declares vnet *name*."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", name):
        return f"[vnets.{name}]"
    return f'[vnets."{name}"]'


def child_vnet_hint(vnet: str) -> Callable[[str, object], str]:
    """Return the hint for an unknown key of vnet *vnet*: a table there may be meant as a child."""

    def hint(name: str, value: object) -> str:
        if not isinstance(value, dict):
            return ""
        return f"; a child vnet is declared as {toml_header(f'{vnet}/{name}')}"

    return hint
