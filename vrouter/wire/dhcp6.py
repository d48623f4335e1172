"""DHCPv6 messages and the options a stateless server uses (RFC 8415, RFC 3646).

A client/server message is a message type, a 3-byte transaction id and
options, each a 2-byte code, a 2-byte length and that many bytes.
:func:`parse` checks every option's length against the message and the
lengths of the options a stateless server reads; the caller decides what
the message may carry.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire.errors import IntegrityError, SanityError

CLIENT_PORT = 546
SERVER_PORT = 547
ALL_DHCP_RELAY_AGENTS_AND_SERVERS = bytes.fromhex("ff020000000000000000000000010002")

SOLICIT = 1
ADVERTISE = 2
REQUEST = 3
CONFIRM = 4
RENEW = 5
REBIND = 6
REPLY = 7
RELEASE = 8
DECLINE = 9
RECONFIGURE = 10
INFORMATION_REQUEST = 11
RELAY_FORW = 12
RELAY_REPL = 13

OPT_CLIENTID = 1
OPT_SERVERID = 2
OPT_IA_NA = 3
OPT_IA_TA = 4
OPT_ORO = 6
OPT_ELAPSED_TIME = 8
OPT_STATUS_CODE = 13
OPT_DNS_SERVERS = 23
OPT_DOMAIN_LIST = 24
OPT_IA_PD = 25
OPT_INFORMATION_REFRESH_TIME = 32

IA_OPTIONS = frozenset({OPT_IA_NA, OPT_IA_TA, OPT_IA_PD})
DUID_LL = 3
HWTYPE_ETHERNET = 1
MAX_DUID = 130
"""A DUID is at most 128 bytes after its 2-byte type (RFC 8415 11.1)."""

_OPTION = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class Message:
    """A client/server message: type, transaction id and its options in order."""

    type: int
    transaction: bytes
    options: tuple[tuple[int, bytes], ...] = ()

    def get(self, code: int) -> bytes | None:
        """Return the value of the first option ``code``, None if absent."""
        return next((value for c, value in self.options if c == code), None)

    def has(self, codes: frozenset[int]) -> bool:
        """Return whether any option's code is in ``codes``."""
        return any(c in codes for c, _ in self.options)

    def requested(self) -> frozenset[int] | None:
        """Return the option codes of the Option Request option, None without one."""
        oro = self.get(OPT_ORO)
        if oro is None:
            return None
        return frozenset(struct.unpack(f"!{len(oro) // 2}H", oro))

    def emit(self) -> bytes:
        """Return the message bytes."""
        out = bytearray([self.type]) + self.transaction
        for code, value in self.options:
            out += _OPTION.pack(code, len(value)) + value
        return bytes(out)


def parse(data: bytes | memoryview) -> Message:
    """Parse a client/server message (relay messages are refused as ``dhcp6_relay``)."""
    if len(data) < 4:
        raise IntegrityError("dhcp6_tooshort", f"{len(data)} bytes")
    type_ = data[0]
    if type_ in (RELAY_FORW, RELAY_REPL):
        raise SanityError("dhcp6_relay", "relay messages are not served")
    options: list[tuple[int, bytes]] = []
    i, n = 4, len(data)
    while i < n:
        if i + 4 > n:
            raise IntegrityError("dhcp6_badopt", "truncated option header")
        code, length = _OPTION.unpack_from(data, i)
        i += 4
        if i + length > n:
            raise IntegrityError("dhcp6_badopt", f"option {code} runs past the message")
        value = bytes(data[i : i + length])
        i += length
        _check(code, value)
        options.append((code, value))
    return Message(type_, bytes(data[1:4]), tuple(options))


def _check(code: int, value: bytes) -> None:
    """Check the length of an option a stateless server reads."""
    if code in (OPT_CLIENTID, OPT_SERVERID) and not 3 <= len(value) <= MAX_DUID:
        raise SanityError("dhcp6_badopt", f"DUID of {len(value)} bytes")
    if code == OPT_ORO and len(value) % 2:
        raise SanityError("dhcp6_badopt", "option request of an odd length")
    if code == OPT_ELAPSED_TIME and len(value) != 2:
        raise SanityError("dhcp6_badopt", "elapsed time length")


def duid_ll(mac: bytes) -> bytes:
    """Return the DUID-LL of an Ethernet address (RFC 8415 11.4)."""
    return struct.pack("!HH", DUID_LL, HWTYPE_ETHERNET) + mac


def domain_list(names: tuple[str, ...]) -> bytes:
    """Return domain names in DNS wire form, uncompressed (RFC 3646 4, RFC 1035 3.1)."""
    out = bytearray()
    for name in names:
        for label in name.rstrip(".").split("."):
            out += bytes([len(label)]) + label.encode("ascii")
        out += b"\0"
    return bytes(out)
