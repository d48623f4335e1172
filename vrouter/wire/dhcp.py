"""DHCPv4 messages (RFC 2131) and their options (RFC 2132, RFC 3442).

A message is the fixed BOOTP part (236 bytes), the magic cookie and a list
of options.  :meth:`DhcpMessage.parse` checks every length against the
bytes it was given, so nothing read afterwards can run past the end: an
option whose length runs past the end, a missing cookie or a message shorter
than the fixed part raises :class:`IntegrityError`; a message that parses
but is not a DHCP message a server can answer (no or unknown message type,
a hardware address longer than ``chaddr``) raises :class:`SanityError`.
Options that occur more than once are concatenated (RFC 3396).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from vrouter.wire.errors import IntegrityError, SanityError

FIXED = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
FIXED_LEN = FIXED.size  # 236
MAGIC = b"\x63\x82\x53\x63"
MIN_LEN = FIXED_LEN + len(MAGIC)
BOOTP_MIN = 300
"""Replies are padded to this size: the smallest BOOTP message some clients accept."""

SERVER_PORT = 67
CLIENT_PORT = 68

BOOTREQUEST = 1
BOOTREPLY = 2
HTYPE_ETHER = 1
FLAG_BROADCAST = 0x8000

# Message types (option 53, RFC 2132 9.6)
DISCOVER = 1
OFFER = 2
REQUEST = 3
DECLINE = 4
ACK = 5
NAK = 6
RELEASE = 7
INFORM = 8
TYPE_NAMES = {
    DISCOVER: "discover",
    OFFER: "offer",
    REQUEST: "request",
    DECLINE: "decline",
    ACK: "ack",
    NAK: "nak",
    RELEASE: "release",
    INFORM: "inform",
}

# Options
OPT_PAD = 0
OPT_SUBNET_MASK = 1
OPT_ROUTER = 3
OPT_DNS = 6
OPT_HOSTNAME = 12
OPT_DOMAIN = 15
OPT_MTU = 26
OPT_BROADCAST = 28
OPT_REQUESTED_IP = 50
OPT_LEASE_TIME = 51
OPT_OVERLOAD = 52
OPT_MESSAGE_TYPE = 53
OPT_SERVER_ID = 54
OPT_PARAMS = 55
OPT_MESSAGE = 56
OPT_MAX_SIZE = 57
OPT_T1 = 58
OPT_T2 = 59
OPT_CLIENT_ID = 61
OPT_RELAY_AGENT = 82
OPT_CLASSLESS_ROUTES = 121
OPT_END = 255

ZERO = b"\x00\x00\x00\x00"


@dataclass(slots=True)
class DhcpMessage:
    """One DHCP message; addresses are 4 packed bytes, ``options`` by code."""

    op: int
    xid: int
    chaddr: bytes
    """The client's hardware address (``hlen`` bytes, 6 for Ethernet)."""
    htype: int = HTYPE_ETHER
    hops: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: bytes = ZERO
    yiaddr: bytes = ZERO
    siaddr: bytes = ZERO
    giaddr: bytes = ZERO
    options: dict[int, bytes] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    """Option codes in the order they were parsed or added (emitted in this order)."""

    @classmethod
    def parse(cls, data: bytes | memoryview) -> DhcpMessage:
        """Parse ``data`` (a UDP payload); raise IntegrityError or SanityError."""
        if len(data) < MIN_LEN:
            raise IntegrityError("dhcp_tooshort", f"{len(data)} bytes")
        (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr,
         _sname, _file) = FIXED.unpack_from(data)  # fmt: skip
        if bytes(data[FIXED_LEN:MIN_LEN]) != MAGIC:
            raise IntegrityError("dhcp_nomagic", "no DHCP magic cookie (BOOTP only)")
        if op not in (BOOTREQUEST, BOOTREPLY):
            raise SanityError("dhcp_badop", f"op {op}")
        if hlen > 16 or hlen == 0:
            raise SanityError("dhcp_badhlen", f"hlen {hlen}")
        message = cls(op, xid, chaddr[:hlen], htype, hops, secs, flags,
                      ciaddr, yiaddr, siaddr, giaddr)  # fmt: skip
        message._parse_options(data, MIN_LEN)
        kind = message.options.get(OPT_MESSAGE_TYPE)
        if kind is None:
            raise SanityError("dhcp_notype", "no message type option")
        if len(kind) != 1 or kind[0] not in TYPE_NAMES:
            raise SanityError("dhcp_badtype", f"message type {kind.hex()}")
        return message

    def _parse_options(self, data: bytes | memoryview, at: int) -> None:
        end = len(data)
        options = self.options
        while at < end:
            code = data[at]
            if code == OPT_END:
                return
            if code == OPT_PAD:
                at += 1
                continue
            if at + 2 > end:
                raise IntegrityError("dhcp_badoption", f"option {code} has no length")
            length = data[at + 1]
            if at + 2 + length > end:
                raise IntegrityError(
                    "dhcp_badoption", f"option {code} of {length} bytes runs past the end"
                )
            value = bytes(data[at + 2 : at + 2 + length])
            if code in options:
                options[code] += value  # RFC 3396: long options are split
            else:
                options[code] = value
                self.order.append(code)
            at += 2 + length

    @property
    def type(self) -> int:
        """Return the message type (option 53)."""
        return self.options[OPT_MESSAGE_TYPE][0]

    @property
    def broadcast(self) -> bool:
        """Return True if the client asked for broadcast replies (RFC 2131 4.1)."""
        return bool(self.flags & FLAG_BROADCAST)

    def address_option(self, code: int) -> bytes | None:
        """Return option ``code`` as one packed IPv4 address, None if absent or not 4 bytes."""
        value = self.options.get(code)
        return value if value is not None and len(value) == 4 else None

    def set(self, code: int, value: bytes) -> None:
        """Set option ``code`` (replacing any value)."""
        if code not in self.options:
            self.order.append(code)
        self.options[code] = value

    def emit(self, minimum: int = BOOTP_MIN) -> bytes:
        """Return the message as bytes, options in order, padded to ``minimum``."""
        chaddr = self.chaddr.ljust(16, b"\x00")
        out = bytearray(
            FIXED.pack(
                self.op, self.htype, len(self.chaddr), self.hops, self.xid, self.secs,
                self.flags, self.ciaddr, self.yiaddr, self.siaddr, self.giaddr, chaddr, b"", b"",
            )
        )
        out += MAGIC
        for code in self.order:
            value = self.options[code]
            for start in range(0, max(len(value), 1), 255):  # RFC 3396 for long values
                piece = value[start : start + 255]
                out += bytes((code, len(piece))) + piece
        out.append(OPT_END)
        if len(out) < minimum:
            out += bytes(minimum - len(out))
        return bytes(out)


def addresses(values: list[bytes] | tuple[bytes, ...]) -> bytes:
    """Return a list of packed IPv4 addresses as one option value."""
    return b"".join(values)


def classless_routes(routes: list[tuple[ipaddress.IPv4Network, bytes]]) -> bytes:
    """Encode (destination, router) pairs as option 121 (RFC 3442 section 2)."""
    out = bytearray()
    for network, router in routes:
        width = network.prefixlen
        out.append(width)
        out += network.network_address.packed[: (width + 7) // 8]
        out += router
    return bytes(out)


def parse_classless_routes(value: bytes) -> list[tuple[ipaddress.IPv4Network, bytes]]:
    """Decode option 121; raise IntegrityError if a route runs past the end or is malformed."""
    routes = []
    at = 0
    while at < len(value):
        width = value[at]
        if width > 32:
            raise IntegrityError("dhcp_badoption", f"classless route width {width}")
        significant = (width + 7) // 8
        if at + 1 + significant + 4 > len(value):
            raise IntegrityError("dhcp_badoption", "classless route runs past the end")
        dest = value[at + 1 : at + 1 + significant].ljust(4, b"\x00")
        router = value[at + 1 + significant : at + 5 + significant]
        try:
            network = ipaddress.IPv4Network((dest, width))
        except ValueError as err:
            raise IntegrityError("dhcp_badoption", f"classless route: {err}") from None
        routes.append((network, router))
        at += 5 + significant
    return routes


def mac_text(mac: bytes) -> str:
    """Return a hardware address as ``aa:bb:cc:dd:ee:ff``."""
    return ":".join(f"{b:02x}" for b in mac)
