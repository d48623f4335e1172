"""Neighbor Discovery messages and options (RFC 4861, RDNSS and DNSSL from RFC 8106).

Bodies are what follows the 4-byte ICMPv6 type/code/checksum.  ``parse``
applies the RFC 4861 validity checks that need only the message itself
(lengths, option lengths, target not multicast); the caller checks the hop
limit of 255 and the ICMP code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire.errors import IntegrityError, SanityError

OPT_SOURCE_LLADDR = 1
OPT_TARGET_LLADDR = 2
OPT_PREFIX_INFO = 3
OPT_REDIRECTED = 4
OPT_MTU = 5
OPT_RDNSS = 25
OPT_DNSSL = 31

NA_ROUTER = 0x80000000
NA_SOLICITED = 0x40000000
NA_OVERRIDE = 0x20000000

RA_MANAGED = 0x80
RA_OTHER = 0x40
PREFIX_ONLINK = 0x80
PREFIX_AUTONOMOUS = 0x40
INFINITY = 0xFFFFFFFF

_PREFIX = struct.Struct("!BBBBIII16s")
_RA = struct.Struct("!BBHII")


def _opt(type_: int, value: bytes) -> bytes:
    """Return one option, padded to a multiple of 8 bytes."""
    raw = bytes([type_, 0]) + value
    raw += bytes(-len(raw) % 8)
    return bytes([type_, len(raw) // 8]) + raw[2:]


def parse_options(data: bytes | memoryview) -> list[tuple[int, bytes]]:
    """Return the (type, value) options in ``data``; a zero length is invalid."""
    options = []
    i = 0
    n = len(data)
    while i < n:
        if i + 2 > n:
            raise IntegrityError("nd_badopt", "truncated option")
        length = data[i + 1] * 8
        if length == 0:
            raise IntegrityError("nd_badopt", "option length 0")
        if i + length > n:
            raise IntegrityError("nd_badopt", "option runs past the message")
        options.append((data[i], bytes(data[i + 2 : i + length])))
        i += length
    return options


def _lladdr(options: list[tuple[int, bytes]], kind: int) -> bytes | None:
    for type_, value in options:
        if type_ == kind and len(value) >= 6:
            return value[:6]
    return None


@dataclass(frozen=True, slots=True)
class PrefixInfo:
    """A Prefix Information option (RFC 4861 4.6.2)."""

    prefix: bytes
    length: int
    onlink: bool = True
    autonomous: bool = True
    valid_lifetime: int = 2592000
    preferred_lifetime: int = 604800

    def emit(self) -> bytes:
        """Return the 32-byte option."""
        flags = (PREFIX_ONLINK if self.onlink else 0) | (
            PREFIX_AUTONOMOUS if self.autonomous else 0
        )
        return _PREFIX.pack(
            OPT_PREFIX_INFO,
            4,
            self.length,
            flags,
            self.valid_lifetime,
            self.preferred_lifetime,
            0,
            self.prefix,
        )

    @classmethod
    def parse(cls, value: bytes) -> PrefixInfo:
        """Parse the option value (without type and length)."""
        if len(value) != 30:
            raise IntegrityError("nd_badopt", "prefix information length")
        _, _, length, flags, valid, preferred, _, prefix = _PREFIX.unpack(b"\0\0" + value)
        if length > 128:
            raise SanityError("nd_badopt", f"prefix length {length}")
        return cls(
            prefix,
            length,
            bool(flags & PREFIX_ONLINK),
            bool(flags & PREFIX_AUTONOMOUS),
            valid,
            preferred,
        )


def parse_rdnss(value: bytes) -> tuple[int, tuple[bytes, ...]]:
    """Return (lifetime, addresses) of an RDNSS option value (RFC 8106 5.1)."""
    if len(value) < 22 or (len(value) - 6) % 16:
        raise IntegrityError("nd_badopt", "RDNSS length")
    lifetime = struct.unpack_from("!I", value, 2)[0]
    return lifetime, tuple(value[i : i + 16] for i in range(6, len(value), 16))


def parse_dnssl(value: bytes) -> tuple[int, tuple[str, ...]]:
    """Return (lifetime, domain names) of a DNSSL option value (RFC 8106 5.2).

    The names are in DNS wire form (RFC 1035 3.1, no compression), the
    option padded with zeros to its length.
    """
    if len(value) < 14:
        raise IntegrityError("nd_badopt", "DNSSL length")
    lifetime = struct.unpack_from("!I", value, 2)[0]
    names: list[str] = []
    labels: list[str] = []
    i, n = 6, len(value)
    while i < n:
        size = value[i]
        i += 1
        if size == 0:
            if labels:
                names.append(".".join(labels))
                labels = []
            elif any(value[i:]):
                raise SanityError("nd_badopt", "DNSSL data after the padding")
            else:
                break
            continue
        if size > 63 or i + size > n:
            raise SanityError("nd_badopt", "DNSSL label")
        label = value[i : i + size]
        if not all(0x21 <= c < 0x7F for c in label):
            raise SanityError("nd_badopt", "DNSSL label characters")
        labels.append(label.decode("ascii").lower())
        i += size
    if labels or not names:
        raise SanityError("nd_badopt", "DNSSL name not terminated")
    return lifetime, tuple(names)


def dnssl_option(lifetime: int, names: tuple[str, ...]) -> bytes:
    """Return a DNSSL option (RFC 8106 5.2) carrying ``names``."""
    encoded = b"".join(
        b"".join(bytes([len(part)]) + part.encode("ascii") for part in name.split(".")) + b"\0"
        for name in names
    )
    return _opt(OPT_DNSSL, struct.pack("!HI", 0, lifetime) + encoded)


@dataclass(frozen=True, slots=True)
class RouterSolicitation:
    """RS (type 133)."""

    source_mac: bytes | None = None

    @classmethod
    def parse(cls, body: bytes | memoryview) -> RouterSolicitation:
        """Parse the body after type/code/checksum."""
        if len(body) < 4:
            raise IntegrityError("nd_tooshort", "router solicitation")
        return cls(_lladdr(parse_options(body[4:]), OPT_SOURCE_LLADDR))

    def emit_body(self) -> bytes:
        """Return the body (rest-of-header is part of it)."""
        mac = _opt(OPT_SOURCE_LLADDR, self.source_mac) if self.source_mac else b""
        return bytes(4) + mac


@dataclass(frozen=True, slots=True)
class RouterAdvertisement:
    """RA (type 134)."""

    hop_limit: int = 64
    managed: bool = False
    other: bool = False
    lifetime: int = 1800
    reachable_time: int = 0
    retrans_timer: int = 0
    source_mac: bytes | None = None
    mtu: int | None = None
    prefixes: tuple[PrefixInfo, ...] = ()
    rdnss: tuple[bytes, ...] = ()
    rdnss_lifetime: int = 0

    @classmethod
    def parse(cls, body: bytes | memoryview) -> RouterAdvertisement:
        """Parse the body after type/code/checksum."""
        if len(body) < 12:
            raise IntegrityError("nd_tooshort", "router advertisement")
        hop, flags, lifetime, reachable, retrans = _RA.unpack_from(body)
        options = parse_options(body[12:])
        mtu = None
        prefixes = []
        rdnss: list[bytes] = []
        rdnss_lifetime = 0
        for type_, value in options:
            if type_ == OPT_MTU and len(value) == 6:
                mtu = struct.unpack_from("!I", value, 2)[0]
            elif type_ == OPT_PREFIX_INFO:
                prefixes.append(PrefixInfo.parse(value))
            elif type_ == OPT_RDNSS and len(value) >= 22 and (len(value) - 6) % 16 == 0:
                rdnss_lifetime = struct.unpack_from("!I", value, 2)[0]
                rdnss.extend(value[i : i + 16] for i in range(6, len(value), 16))
        return cls(
            hop,
            bool(flags & RA_MANAGED),
            bool(flags & RA_OTHER),
            lifetime,
            reachable,
            retrans,
            _lladdr(options, OPT_SOURCE_LLADDR),
            mtu,
            tuple(prefixes),
            tuple(rdnss),
            rdnss_lifetime,
        )

    def emit_body(self) -> bytes:
        """Return the body (rest-of-header is part of it)."""
        flags = (RA_MANAGED if self.managed else 0) | (RA_OTHER if self.other else 0)
        raw = _RA.pack(
            self.hop_limit, flags, self.lifetime, self.reachable_time, self.retrans_timer
        )
        if self.source_mac:
            raw += _opt(OPT_SOURCE_LLADDR, self.source_mac)
        if self.mtu is not None:
            raw += _opt(OPT_MTU, struct.pack("!HI", 0, self.mtu))
        for prefix in self.prefixes:
            raw += prefix.emit()
        if self.rdnss:
            raw += _opt(
                OPT_RDNSS, struct.pack("!HI", 0, self.rdnss_lifetime) + b"".join(self.rdnss)
            )
        return raw


@dataclass(frozen=True, slots=True)
class NeighborSolicitation:
    """NS (type 135)."""

    target: bytes
    source_mac: bytes | None = None

    @classmethod
    def parse(cls, body: bytes | memoryview) -> NeighborSolicitation:
        """Parse the body after type/code/checksum."""
        if len(body) < 20:
            raise IntegrityError("nd_tooshort", "neighbor solicitation")
        target = bytes(body[4:20])
        if target[0] == 0xFF:
            raise SanityError("nd_badtarget", "multicast target")
        return cls(target, _lladdr(parse_options(body[20:]), OPT_SOURCE_LLADDR))

    def emit_body(self) -> bytes:
        """Return the body (rest-of-header is part of it)."""
        mac = _opt(OPT_SOURCE_LLADDR, self.source_mac) if self.source_mac else b""
        return bytes(4) + self.target + mac


@dataclass(frozen=True, slots=True)
class NeighborAdvertisement:
    """NA (type 136)."""

    target: bytes
    router: bool = False
    solicited: bool = False
    override: bool = False
    target_mac: bytes | None = None

    @classmethod
    def parse(cls, body: bytes | memoryview) -> NeighborAdvertisement:
        """Parse the body after type/code/checksum."""
        if len(body) < 20:
            raise IntegrityError("nd_tooshort", "neighbor advertisement")
        flags = struct.unpack_from("!I", body)[0]
        target = bytes(body[4:20])
        if target[0] == 0xFF:
            raise SanityError("nd_badtarget", "multicast target")
        return cls(
            target,
            bool(flags & NA_ROUTER),
            bool(flags & NA_SOLICITED),
            bool(flags & NA_OVERRIDE),
            _lladdr(parse_options(body[20:]), OPT_TARGET_LLADDR),
        )

    def emit_body(self) -> bytes:
        """Return the body (rest-of-header is part of it)."""
        flags = (
            (NA_ROUTER if self.router else 0)
            | (NA_SOLICITED if self.solicited else 0)
            | (NA_OVERRIDE if self.override else 0)
        )
        mac = _opt(OPT_TARGET_LLADDR, self.target_mac) if self.target_mac else b""
        return struct.pack("!I", flags) + self.target + mac
