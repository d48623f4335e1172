"""Spanning Tree BPDUs (IEEE 802.1D-1998 clause 9): Configuration and Topology Change
Notification, in an 802.3 frame with an LLC header.

A BPDU frame is ``dst(6) src(6) length(2)`` (an 802.3 length, not an
EtherType: at most 1500), the LLC header ``0x42 0x42 0x03`` (DSAP and SSAP
of the bridge spanning tree protocol, UI), then the BPDU.  It goes to the
bridge group address 01:80:c2:00:00:00, which no 802.1D bridge forwards.

A Configuration BPDU is 35 bytes::

    protocol id(2) = 0, version(1) = 0, type(1) = 0x00, flags(1),
    root id(8), root path cost(4), bridge id(8), port id(2),
    message age(2), max age(2), hello time(2), forward delay(2)

the four times in 1/256 s; flags 0x01 is Topology Change, 0x80 Topology
Change Acknowledgment.  A TCN BPDU is the first four bytes with type 0x80.
A bridge id is a 2-byte priority and the bridge's MAC, a port id a
priority and a port number (Linux: 6 and 10 bits); both compare as
unsigned integers, lower winning.

:func:`parse` takes what follows the Ethernet header (the LLC header on)
and checks it as 9.3.4 asks: protocol id 0, a known type, a length that
holds it, a message age below the max age.

A Rapid Spanning Tree BPDU (802.1D-2004 9.3.3, 802.1w) is 36 bytes: a
Configuration BPDU with version 2, type 0x02, every flag bit in use and a
last byte, the Version 1 length, 0.  Its flags (bit 0 lowest)::

    0 Topology Change   1 Proposal   2-3 port role (1 alternate or backup,
    2 root, 3 designated; 0 unknown)   4 Learning   5 Forwarding
    6 Agreement   7 Topology Change Acknowledgment (never set in RSTP)

It carries the same fields at the same places, so an STP bridge reads it as
a Configuration BPDU (what 802.1D-2004 17.4 asks of one).  :func:`parse`
refuses an RST BPDU of unknown port role (``bpdu_role``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vrouter.wire.errors import IntegrityError, SanityError

GROUP = bytes.fromhex("0180c2000000")
"""The bridge group address: where BPDUs go."""
LLC = b"\x42\x42\x03"
"""DSAP, SSAP (the spanning tree protocol's SAP) and control (UI)."""
TYPE_CONFIG = 0x00
TYPE_TCN = 0x80
TYPE_RST = 0x02
FLAG_TC = 0x01
"""Topology Change."""
FLAG_TCA = 0x80
"""Topology Change Acknowledgment."""
FLAG_PROPOSAL = 0x02
FLAG_LEARNING = 0x10
FLAG_FORWARDING = 0x20
FLAG_AGREEMENT = 0x40
ROLE_SHIFT = 2
ROLE_MASK = 0x0C
ROLE_UNKNOWN = 0
ROLE_ALTERNATE = 1
"""Alternate or backup."""
ROLE_ROOT = 2
ROLE_DESIGNATED = 3
CONFIG_LEN = 35
TCN_LEN = 4
RST_LEN = 36
MIN_FRAME = 60
"""Frames are padded to the Ethernet minimum (without FCS); the 802.3 length tells the BPDU's."""
_CONFIG = struct.Struct("!HBBBQIQHHHHH")
_TCN = struct.Struct("!HBB")
TICKS = 256
"""Time units of a second in a BPDU."""


@dataclass(frozen=True, slots=True)
class Bpdu:
    """One BPDU as values: a Configuration BPDU, an RST BPDU (``rst``), or a TCN
    (``tcn``; the other fields 0).

    Times are in seconds (sent in 1/256 s, rounded).  ``flags`` of a
    Configuration BPDU hold TC and TCA only; an RST BPDU's all eight bits.
    """

    tcn: bool = False
    flags: int = 0
    root: int = 0
    """Root bridge id (priority << 48 | MAC)."""
    cost: int = 0
    """Root path cost."""
    bridge: int = 0
    """Transmitting bridge's id."""
    port: int = 0
    """Transmitting port's id."""
    message_age: float = 0.0
    max_age: float = 0.0
    hello_time: float = 0.0
    forward_delay: float = 0.0
    rst: bool = False
    """A Rapid Spanning Tree BPDU (version 2, type 0x02)."""

    @property
    def tc(self) -> bool:
        """Return the Topology Change flag."""
        return bool(self.flags & FLAG_TC)

    @property
    def tca(self) -> bool:
        """Return the Topology Change Acknowledgment flag."""
        return bool(self.flags & FLAG_TCA)

    @property
    def role(self) -> int:
        """Return the port role of an RST BPDU (``ROLE_*``; a Configuration BPDU's is
        designated, what 802.1D-2004 17.21.8 takes it for)."""
        return (self.flags & ROLE_MASK) >> ROLE_SHIFT if self.rst else ROLE_DESIGNATED

    @property
    def proposal(self) -> bool:
        """Return the Proposal flag (RST BPDUs only)."""
        return self.rst and bool(self.flags & FLAG_PROPOSAL)

    @property
    def agreement(self) -> bool:
        """Return the Agreement flag (RST BPDUs only)."""
        return self.rst and bool(self.flags & FLAG_AGREEMENT)

    @property
    def learning(self) -> bool:
        """Return the Learning flag (RST BPDUs only)."""
        return self.rst and bool(self.flags & FLAG_LEARNING)

    @property
    def forwarding(self) -> bool:
        """Return the Forwarding flag (RST BPDUs only)."""
        return self.rst and bool(self.flags & FLAG_FORWARDING)

    def emit(self) -> bytes:
        """Return the BPDU's bytes (no LLC header)."""
        if self.tcn:
            return _TCN.pack(0, 0, TYPE_TCN)
        if self.rst:
            return _CONFIG.pack(
                0, 2, TYPE_RST, self.flags & 0xFF, self.root, self.cost, self.bridge,
                self.port, _ticks(self.message_age), _ticks(self.max_age),
                _ticks(self.hello_time), _ticks(self.forward_delay),
            ) + b"\x00"  # fmt: skip
        return _CONFIG.pack(
            0, 0, TYPE_CONFIG, self.flags & (FLAG_TC | FLAG_TCA), self.root, self.cost,
            self.bridge, self.port, _ticks(self.message_age), _ticks(self.max_age),
            _ticks(self.hello_time), _ticks(self.forward_delay),
        )  # fmt: skip

    def frame(self, src: bytes) -> bytes:
        """Return the whole Ethernet frame from MAC ``src`` to the group address, padded."""
        body = LLC + self.emit()
        frame = GROUP + src + len(body).to_bytes(2, "big") + body
        return frame + bytes(MIN_FRAME - len(frame)) if len(frame) < MIN_FRAME else frame


def _ticks(seconds: float) -> int:
    return max(0, min(0xFFFF, round(seconds * TICKS)))


def parse(payload: bytes | bytearray | memoryview, length: int) -> Bpdu:
    """Return the BPDU in ``payload`` (what follows the Ethernet header) of 802.3 ``length``.

    Raises IntegrityError (``bpdu_short``, ``bpdu_length``) when the bytes
    cannot hold it, SanityError (``bpdu_llc``, ``bpdu_protocol``,
    ``bpdu_type``, ``bpdu_age``, ``bpdu_role``) when it is not a BPDU an 802.1D
    bridge takes.
    """
    if length > len(payload) or length > 1500:
        raise IntegrityError("bpdu_length", f"802.3 length {length}, {len(payload)} bytes")
    if length < len(LLC) + TCN_LEN:
        raise IntegrityError("bpdu_short", f"802.3 length {length}")
    if bytes(payload[0:3]) != LLC:
        raise SanityError("bpdu_llc", bytes(payload[0:3]).hex())
    body = memoryview(payload)[3:length]
    protocol, version, kind = _TCN.unpack_from(body)
    if protocol != 0:
        raise SanityError("bpdu_protocol", f"protocol id {protocol:#06x}")
    if kind == TYPE_TCN:
        return Bpdu(tcn=True)
    if kind not in (TYPE_CONFIG, TYPE_RST) or (kind == TYPE_RST and version < 2):
        raise SanityError("bpdu_type", f"type {kind:#04x} version {version}")
    if len(body) < (CONFIG_LEN if kind == TYPE_CONFIG else RST_LEN):
        raise IntegrityError("bpdu_short", f"type {kind:#04x} in {len(body)} bytes")
    (_, _, _, flags, root, cost, bridge, port, age, max_age, hello, delay) = _CONFIG.unpack_from(
        body
    )
    if age >= max_age:
        raise SanityError("bpdu_age", f"message age {age / TICKS:g} s >= {max_age / TICKS:g} s")
    rst = kind == TYPE_RST
    if rst and not flags & ROLE_MASK:
        raise SanityError("bpdu_role", f"RST BPDU flags {flags:#04x}: port role unknown")
    return Bpdu(
        False, flags if rst else flags & (FLAG_TC | FLAG_TCA), root, cost, bridge, port,
        age / TICKS, max_age / TICKS, hello / TICKS, delay / TICKS, rst,
    )  # fmt: skip


def bridge_id(priority: int, mac: bytes) -> int:
    """Return the bridge id of ``priority`` (0..65535) and ``mac``."""
    return (priority << 48) | int.from_bytes(mac, "big")


def port_id(priority: int, number: int) -> int:
    """Return the port id of ``priority`` (0..63) and port ``number`` (1..1023), as Linux."""
    return (priority << 10) | (number & 0x3FF)


def id_to_str(ident: int) -> str:
    """Return a bridge id as Linux shows it: ``8000.02:00:00:00:00:01``."""
    mac = (ident & ((1 << 48) - 1)).to_bytes(6, "big")
    return f"{ident >> 48:04x}." + mac.hex(":")
