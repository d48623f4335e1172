"""RIPv2 (RFC 2453 section 4) and RIPng (RFC 2080 section 2.1) packets, and their authentication.

A packet is a 4-byte header (command, version, zero) and route entries of
20 bytes.  RIPv2 entries carry address family, route tag, address, mask,
next hop and metric; RIPng entries carry prefix, tag, prefix length and
metric, with a next-hop entry (metric 0xFF) applying to the entries after
it.  A RIPv2 packet may open with an authentication entry (AFI 0xFFFF):
type 2 carries a 16-byte plaintext password (RFC 2453 5.2); type 3 is
keyed MD5 (RFC 4822 / RFC 2082): key id, sequence number and the length
of the packet up to a trailer holding the digest.

The keyed-MD5 trailer is always 20 bytes: AFI 0xFFFF, type 0x0001 and the
16-byte digest, computed over the packet up to and with the trailer's first
4 bytes followed by the password zero padded to 16 bytes.  Its length is
written two ways in the ``Auth Data Len`` field: 16, the digest alone
(RFC 2082's figure, FRR's ``auth-length rfc``), or 20, the digest and its
4-byte header (BIRD, and FRR's default ``auth-length old-ripd``).  Both are
accepted; what is sent is :attr:`Auth.auth_length`, 20 unless configured,
which BIRD and FRR accept whatever their own setting.

``parse_v2``/``parse_ng`` check the whole packet before returning it and
raise :class:`~vrouter.wire.errors.IntegrityError` (lengths) or
:class:`~vrouter.wire.errors.SanityError` (version, command, metric,
prefix) whose ``reason`` names the drop.  ``check_auth`` raises
:class:`AuthError`; the sequence-number check needs per-neighbour memory
and is the instance's.  ``build_v2``/``build_ng`` are the inverse and
reproduce what BIRD 2 sends for the same fields.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import struct
from dataclasses import dataclass, field

from vrouter.wire.errors import IntegrityError, SanityError, WireError

HEADER = struct.Struct("!BBH")
ENTRY_V2 = struct.Struct("!HH4s4s4sI")
ENTRY_NG = struct.Struct("!16sHBB")
AFI = struct.Struct("!H")
AUTH_ENTRY = struct.Struct("!HH16s")
"""AFI 0xFFFF, authentication type, 16 bytes of type-specific data."""
MD5_AUTH = struct.Struct("!HBBI8x")
"""Keyed MD5 data: packet length (to the trailer), key id, auth data length, sequence."""
TRAILER = struct.Struct("!HH")
"""Keyed MD5 trailer: AFI 0xFFFF, 0x0001, then the digest."""
HEADER_LEN = 4
ENTRY_LEN = 20

REQUEST = 1
RESPONSE = 2
INFINITY = 16
AF_UNSPEC = 0
AF_INET = 2
AF_AUTH = 0xFFFF
AUTH_PLAIN = 2
AUTH_MD5 = 3
TRAILER_TYPE = 1
KEY_LEN = 16
MD5_LEN = 16
MD5_TRAILER_LEN = TRAILER.size + MD5_LEN
MD5_AUTH_LENGTHS = (MD5_LEN, MD5_TRAILER_LEN)
"""The two ``Auth Data Len`` values of keyed MD5: the digest alone, or with its header."""
MAX_ENTRIES = 25
PORT_V2 = 520
PORT_NG = 521
GROUP_V2 = "224.0.0.9"
GROUP_NG = "ff02::9"
NEXTHOP_METRIC = 0xFF
AUTH_KINDS = ("none", "plain", "md5")


class AuthError(WireError):
    """A packet that fails authentication; ``reason`` names the drop."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One route in a RIP packet (family-neutral)."""

    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network
    metric: int
    next_hop: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    tag: int = 0


@dataclass(frozen=True, slots=True)
class Authentication:
    """The authentication entry of a received RIPv2 packet."""

    type: int
    """2 plaintext, 3 keyed MD5 (others are refused by the parser)."""
    password: bytes = b""
    """Plaintext: the 16 password bytes as sent (zero padded)."""
    key_id: int = 0
    sequence: int = 0
    auth_length: int = 0
    """Keyed MD5: the ``Auth Data Len`` field, 16 or 20 (the trailer is 20 bytes either way)."""
    digest: bytes = b""
    """Keyed MD5: the digest the trailer carries."""
    signed: bytes = b""
    """Keyed MD5: the bytes the digest covers (up to and with the trailer's first 4)."""


@dataclass(frozen=True, slots=True)
class Auth:
    """How an instance authenticates what it sends and receives (RIPv2 only)."""

    kind: str = "none"
    """``none``, ``plain`` (RFC 2453 5.2) or ``md5`` (RFC 4822 keyed MD5)."""
    password: bytes = field(default=b"", repr=False)
    """At most 16 bytes; zero padded on the wire (kept out of reprs and logs)."""
    key_id: int = 1
    auth_length: int = MD5_TRAILER_LEN
    """Keyed MD5: the ``Auth Data Len`` sent, 20 (BIRD, FRR's default) or 16 (RFC 2082)."""

    def __post_init__(self) -> None:
        if self.kind not in AUTH_KINDS:
            raise ValueError(f"authentication {self.kind!r}: expected none, plain or md5")
        if len(self.password) > KEY_LEN:
            raise ValueError(f"a RIP password has at most {KEY_LEN} bytes")
        if self.kind != "none" and not self.password:
            raise ValueError(f"authentication {self.kind} needs a password")
        if not 0 <= self.key_id <= 255:
            raise ValueError(f"key id {self.key_id} is not 0..255")
        if self.auth_length not in MD5_AUTH_LENGTHS:
            raise ValueError(f"MD5 auth data length {self.auth_length} is not 16 or 20")

    @property
    def enabled(self) -> bool:
        """Return True when packets carry authentication."""
        return self.kind != "none"


@dataclass(frozen=True, slots=True)
class Packet:
    """A RIP packet: command, version, entries and (RIPv2) its authentication."""

    command: int
    version: int
    entries: tuple[Entry, ...]
    auth: Authentication | None = None
    ignored: int = 0
    """Entries skipped: an address family other than IPv4."""

    @property
    def whole_table_request(self) -> bool:
        """True for a request for the whole table (RFC 2453 3.9.1, RFC 2080 2.4.1)."""
        return (
            self.command == REQUEST
            and len(self.entries) == 1
            and self.entries[0].metric == INFINITY
            and self.entries[0].prefix.prefixlen == 0
        )


def _header(data: bytes, versions: tuple[int, ...]) -> tuple[int, int]:
    if len(data) < HEADER_LEN:
        raise IntegrityError("rip_short", f"{len(data)} bytes")
    command, version, _ = HEADER.unpack_from(data)
    if command not in (REQUEST, RESPONSE):
        raise SanityError("rip_badcommand", f"command {command}")
    if version not in versions:
        raise SanityError("rip_badversion", f"version {version}")
    return command, version


def _natural_mask(address: bytes) -> int:
    """Return the classful prefix length of a RIPv1 destination (RFC 1058 3.2)."""
    first = address[0]
    return 8 if first < 128 else 16 if first < 192 else 24 if first < 224 else 32


def _parse_auth(data: bytes) -> tuple[Authentication, int]:
    """Parse the authentication entry at byte 4; return it and where the entries end."""
    _, kind, body = AUTH_ENTRY.unpack_from(data, HEADER_LEN)
    if kind == AUTH_PLAIN:
        if (len(data) - HEADER_LEN) % ENTRY_LEN:
            raise IntegrityError("rip_badlen", f"{len(data)} bytes")
        return Authentication(AUTH_PLAIN, password=body), len(data)
    if kind != AUTH_MD5:
        raise AuthError("rip_auth_type", f"authentication type {kind}")
    length, key_id, auth_len, sequence = MD5_AUTH.unpack_from(body)
    if (
        length < HEADER_LEN + ENTRY_LEN
        or (length - HEADER_LEN) % ENTRY_LEN
        or auth_len not in MD5_AUTH_LENGTHS
        or length + MD5_TRAILER_LEN > len(data)
    ):
        raise IntegrityError(
            "rip_badauthlen",
            f"packet length {length}, auth data length {auth_len}, {len(data)} bytes",
        )
    afi, trailer = TRAILER.unpack_from(data, length)
    if afi != AF_AUTH or trailer != TRAILER_TYPE:
        raise IntegrityError("rip_badtrailer", f"trailer {afi:#06x} {trailer:#06x}")
    digest_at = length + TRAILER.size
    auth = Authentication(
        AUTH_MD5,
        key_id=key_id,
        sequence=sequence,
        auth_length=auth_len,
        digest=data[digest_at : digest_at + MD5_LEN],
        signed=data[:digest_at],
    )
    return auth, length


def parse_v2(data: bytes) -> Packet:
    """Parse a RIPv2 (or RIPv1) packet, authentication included; raise a WireError."""
    command, version = _header(data, (1, 2))
    end = len(data)
    auth = None
    start = HEADER_LEN
    if (
        version == 2
        and len(data) >= HEADER_LEN + ENTRY_LEN
        and AFI.unpack_from(data, HEADER_LEN)[0] == AF_AUTH
    ):
        auth, end = _parse_auth(data)
        start += ENTRY_LEN
    elif (len(data) - HEADER_LEN) % ENTRY_LEN:
        raise IntegrityError("rip_badlen", f"{len(data)} bytes")
    entries = []
    ignored = 0
    for off in range(start, end, ENTRY_LEN):
        afi, tag, address, mask, next_hop, metric = ENTRY_V2.unpack_from(data, off)
        if command == REQUEST and afi == AF_UNSPEC and metric == INFINITY:
            entries.append(Entry(ipaddress.IPv4Network("0.0.0.0/0"), INFINITY))
            continue
        if afi != AF_INET:
            ignored += 1
            continue
        if command == RESPONSE and not 1 <= metric <= INFINITY:
            raise SanityError("rip_badmetric", f"metric {metric}")
        try:
            if version == 2:
                prefix = ipaddress.IPv4Network(
                    (ipaddress.IPv4Address(address), str(ipaddress.IPv4Address(mask)))
                )
            else:
                prefix = ipaddress.IPv4Network((address, _natural_mask(address)), strict=False)
        except ValueError as err:
            raise SanityError("rip_badprefix", str(err)) from None
        hop = ipaddress.IPv4Address(next_hop)
        entries.append(
            Entry(prefix, metric, None if hop.is_unspecified else hop, tag if version == 2 else 0)
        )
    return Packet(command, version, tuple(entries), auth, ignored)


def key_bytes(password: bytes) -> bytes:
    """Return ``password`` as the 16-byte key of the wire (zero padded)."""
    return password.ljust(KEY_LEN, b"\0")[:KEY_LEN]


def md5_digest(signed: bytes, password: bytes) -> bytes:
    """Return the keyed-MD5 digest of ``signed`` (RFC 4822 3.2.1: the key follows the data)."""
    return hashlib.md5(signed + key_bytes(password)).digest()


def check_auth(pkt: Packet, auth: Auth) -> None:
    """Raise :class:`AuthError` unless ``pkt`` is authenticated as ``auth`` wants.

    RFC 2453 5.2: a router not configured for authentication discards
    authenticated packets; one configured discards packets without it or
    with the wrong password.  The MD5 sequence number is not checked here.
    """
    got = pkt.auth
    if not auth.enabled:
        if got is not None:
            raise AuthError("rip_auth_unexpected", "authenticated packet, none configured")
        return
    if got is None:
        raise AuthError("rip_auth_missing", f"{auth.kind} authentication configured")
    want = AUTH_PLAIN if auth.kind == "plain" else AUTH_MD5
    if got.type != want:
        raise AuthError("rip_auth_type", f"authentication type {got.type}, want {want}")
    if want == AUTH_PLAIN:
        if not hmac.compare_digest(got.password, key_bytes(auth.password)):
            raise AuthError("rip_auth_password", "wrong password")
        return
    if got.key_id != auth.key_id:
        raise AuthError("rip_auth_keyid", f"key id {got.key_id}, want {auth.key_id}")
    if not hmac.compare_digest(got.digest, md5_digest(got.signed, auth.password)):
        raise AuthError("rip_auth_digest", "wrong MD5 digest")


def max_entries(auth: Auth) -> int:
    """Return how many routes fit a RIPv2 packet (the authentication entry takes one)."""
    return MAX_ENTRIES - 1 if auth.enabled else MAX_ENTRIES


def build_v2(
    command: int,
    entries: list[Entry] | tuple[Entry, ...],
    auth: Auth | None = None,
    sequence: int = 0,
) -> bytes:
    """Return a RIPv2 packet, authenticated if ``auth`` says so (the caller keeps to 25)."""
    raw = bytearray(HEADER.pack(command, 2, 0))
    md5 = auth is not None and auth.kind == "md5"
    if auth is not None and auth.kind == "plain":
        raw += AUTH_ENTRY.pack(AF_AUTH, AUTH_PLAIN, key_bytes(auth.password))
    elif md5:
        assert auth is not None
        length = HEADER_LEN + ENTRY_LEN * (len(entries) + 1)
        body = MD5_AUTH.pack(length, auth.key_id, auth.auth_length, sequence & 0xFFFFFFFF)
        raw += AUTH_ENTRY.pack(AF_AUTH, AUTH_MD5, body)
    for e in entries:
        if command == REQUEST and e.prefix.prefixlen == 0 and e.metric == INFINITY:
            raw += ENTRY_V2.pack(AF_UNSPEC, 0, bytes(4), bytes(4), bytes(4), INFINITY)
            continue
        assert isinstance(e.prefix, ipaddress.IPv4Network)
        hop = e.next_hop.packed if e.next_hop is not None else bytes(4)
        raw += ENTRY_V2.pack(
            AF_INET, e.tag, e.prefix.network_address.packed, e.prefix.netmask.packed, hop, e.metric
        )
    if md5:
        assert auth is not None
        raw += TRAILER.pack(AF_AUTH, TRAILER_TYPE)
        raw += md5_digest(bytes(raw), auth.password)
    return bytes(raw)


def parse_ng(data: bytes) -> Packet:
    """Parse a RIPng packet; next-hop entries apply to the entries after them.

    RFC 2080 2.1.1: a next hop that is not link-local counts as ``::`` (the
    sender itself), which is what ``next_hop=None`` means.
    """
    command, version = _header(data, (1,))
    if (len(data) - HEADER_LEN) % ENTRY_LEN:
        raise IntegrityError("rip_badlen", f"{len(data)} bytes")
    entries = []
    next_hop: ipaddress.IPv6Address | None = None
    for off in range(HEADER_LEN, len(data), ENTRY_LEN):
        address, tag, plen, metric = ENTRY_NG.unpack_from(data, off)
        if metric == NEXTHOP_METRIC:
            hop = ipaddress.IPv6Address(address)
            next_hop = hop if hop.is_link_local else None
            continue
        if plen > 128:
            raise SanityError("rip_badprefixlen", f"prefix length {plen}")
        if command == RESPONSE and not 1 <= metric <= INFINITY:
            raise SanityError("rip_badmetric", f"metric {metric}")
        try:
            prefix = ipaddress.IPv6Network((ipaddress.IPv6Address(address), plen))
        except ValueError as err:
            raise SanityError("rip_badprefix", str(err)) from None
        entries.append(Entry(prefix, metric, next_hop, tag))
    return Packet(command, version, tuple(entries))


def build_ng(command: int, entries: list[Entry] | tuple[Entry, ...]) -> bytes:
    """Return a RIPng packet; a next hop is sent as a next-hop entry before its routes."""
    raw = bytearray(HEADER.pack(command, 1, 0))
    current: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    for e in entries:
        if e.next_hop != current:
            hop = e.next_hop.packed if e.next_hop is not None else bytes(16)
            raw += ENTRY_NG.pack(hop, 0, 0, NEXTHOP_METRIC)
            current = e.next_hop
        raw += ENTRY_NG.pack(e.prefix.network_address.packed, e.tag, e.prefix.prefixlen, e.metric)
    return bytes(raw)
