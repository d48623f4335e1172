"""Route and nexthop messages of Linux rtnetlink: bytes to values, and dump requests.

Only what the route sync reads is decoded: ``RTM_NEWROUTE``/``RTM_DELROUTE``
(``struct rtmsg`` with ``RTA_DST``, ``RTA_OIF``, ``RTA_GATEWAY``,
``RTA_VIA``, ``RTA_PRIORITY``, ``RTA_TABLE``, ``RTA_MULTIPATH`` and
``RTA_NH_ID``), ``RTM_NEWNEXTHOP``/``RTM_DELNEXTHOP`` (``struct nhmsg`` with
``NHA_ID``, ``NHA_GROUP``, ``NHA_BLACKHOLE``, ``NHA_OIF`` and
``NHA_GATEWAY``), and the end of a dump or an error.  Everything else is
skipped.  pyroute2 (0.9) decodes neither ``RTA_NH_ID`` nor nexthop
messages, which is what FRR's zebra installs, so the format is read here
(``include/uapi/linux/rtnetlink.h``, ``nexthop.h``): fixed headers and
type-length-value attributes, a few lines of :mod:`struct`.
"""

from __future__ import annotations

import operator
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26
RTM_NEWNEXTHOP = 104
RTM_DELNEXTHOP = 105
RTM_GETNEXTHOP = 106

RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_MULTIPATH = 9
RTA_TABLE = 15
RTA_VIA = 18
RTA_NH_ID = 30

NHA_ID = 1
NHA_GROUP = 2
NHA_BLACKHOLE = 4
NHA_OIF = 5
NHA_GATEWAY = 6

RT_TABLE_MAIN = 254
RTN_UNICAST = 1
RTN_BLACKHOLE = 6
RTN_UNREACHABLE = 7
RTN_PROHIBIT = 8

RTNLGRP_IPV4_ROUTE = 7
RTNLGRP_IPV6_ROUTE = 11
RTNLGRP_NEXTHOP = 32

AF_INET = 2
AF_INET6 = 10

NLMSGHDR = struct.Struct("=IHHII")
RTMSG = struct.Struct("=BBBBBBBBI")
NHMSG = struct.Struct("=BBBBI")
RTATTR = struct.Struct("=HH")
RTNEXTHOP = struct.Struct("=HBBi")
NH_GRP = struct.Struct("=IBBH")
U32 = struct.Struct("=I")


class NetlinkError(ValueError):
    """A message that cannot be decoded (truncated, or lengths that do not add up)."""


class Path(NamedTuple):
    """One way to a destination: a gateway (may be None: on-link) and an interface index."""

    gateway: bytes | None
    oif: int
    weight: int = 1
    """Its share of a multipath route's flows (``rtnh_hops`` or the group's weight, plus 1)."""


class RouteMsg(NamedTuple):
    """An ``RTM_NEWROUTE`` or ``RTM_DELROUTE`` (a named tuple: a feed makes millions, and
    a tuple is built several times faster than a frozen dataclass)."""

    deleted: bool
    family: int
    dst: bytes
    """The destination network's address, as many bytes as the family has."""
    dst_len: int
    table: int
    protocol: int
    type: int
    priority: int
    paths: tuple[Path, ...]
    """Inline next hops (``RTA_GATEWAY``/``RTA_OIF`` or ``RTA_MULTIPATH``)."""
    nh_id: int = 0
    """The nexthop object the route uses (``RTA_NH_ID``), 0 for none."""


@dataclass(frozen=True, slots=True)
class NexthopMsg:
    """An ``RTM_NEWNEXTHOP`` or ``RTM_DELNEXTHOP``."""

    deleted: bool
    id: int
    family: int
    protocol: int
    path: Path | None
    """Its gateway and interface; None for a group or a blackhole."""
    blackhole: bool = False
    group: tuple[int, ...] = ()
    """The member nexthop ids of a group, in order."""
    weights: tuple[int, ...] = ()
    """The weight of each member of ``group`` (``struct nexthop_grp``'s, plus 1)."""


@dataclass(frozen=True, slots=True)
class End:
    """The end of a dump (``NLMSG_DONE``) or an error (``NLMSG_ERROR``, ``error`` < 0)."""

    seq: int
    error: int = 0


@dataclass(frozen=True, slots=True)
class Malformed:
    """A message that could not be decoded (truncated, or lengths that do not add up):
    dropped, and counted by the reader.  ``kind`` is its netlink type."""

    kind: int
    reason: str


Message = RouteMsg | NexthopMsg | End | Malformed

SharedPaths = dict[tuple[Path, ...], tuple[Path, ...]]
"""Paths tuples by value, for routes to share (see :func:`parse`)."""
SHARED_PATHS = 4096
"""Distinct paths kept to be shared; past that the cache starts afresh."""
LAYOUTS = 64
"""Route message layouts kept (up to 4 of a length and family); past that the cache starts
afresh."""


@dataclass(slots=True)
class Seen:
    """What a reader's messages have in common, kept from read to read (see :func:`parse`)."""

    paths: SharedPaths = field(default_factory=dict)
    layouts: dict[tuple[int, int], list[_Layout]] = field(default_factory=dict)
    """Route message layouts seen, by the message's length (after the netlink header) and
    its family."""


_SIZES = {AF_INET: 4, AF_INET6: 16}
_ROUTE_U32 = frozenset({RTA_OIF, RTA_PRIORITY, RTA_TABLE, RTA_NH_ID})


def _attrs(data: bytes, start: int, end: int) -> dict[int, bytes]:
    """Return the attributes between ``start`` and ``end`` by type (the last of a type wins)."""
    found: dict[int, bytes] = {}
    unpack = RTATTR.unpack_from
    while start + 4 <= end:
        length, kind = unpack(data, start)
        if length < 4 or start + length > end:
            raise NetlinkError(f"attribute {kind & 0x3FFF} of length {length} overruns its message")
        found[kind & 0x3FFF] = data[start + 4 : start + length]
        start += (length + 3) & ~3
    return found


def _u32(attrs: dict[int, bytes], kind: int) -> int:
    value = attrs.get(kind)
    if value is None:
        return 0
    if len(value) != 4:
        raise NetlinkError(f"attribute {kind} of {len(value)} bytes, not 4")
    return int(U32.unpack(value)[0])


def _address(value: bytes | None, family: int, what: str) -> bytes | None:
    """Return ``value`` if it is an address of ``family`` (None stays None)."""
    if value is not None and len(value) != _SIZES.get(family, len(value)):
        raise NetlinkError(f"{what} of {len(value)} bytes for address family {family}")
    return value


def _multipath(value: bytes, family: int) -> tuple[Path, ...]:
    paths = []
    at = 0
    while at + RTNEXTHOP.size <= len(value):
        length, _flags, hops, oif = RTNEXTHOP.unpack_from(value, at)
        if length < RTNEXTHOP.size or at + length > len(value):
            raise NetlinkError(f"RTA_MULTIPATH entry of length {length} overruns the attribute")
        inner = _attrs(value, at + RTNEXTHOP.size, at + length)
        gateway = _address(inner.get(RTA_GATEWAY), family, "RTA_GATEWAY")
        paths.append(Path(gateway, oif, hops + 1))
        at += (length + 3) & ~3
    return tuple(paths)


def _route(kind: int, data: bytes, start: int, end: int, seen: Seen) -> RouteMsg:
    """Decode an rtmsg and its attributes: by a :class:`_Layout` of the kernel's when one
    fits (a feed's messages all look alike: a feed's hot loop), else attribute by
    attribute (and the layout is learnt)."""
    key = (end - start, data[start])
    for layout in seen.layouts.get(key, ()):
        msg = layout.decode(kind, data, start, seen.paths)
        if msg is not None:
            return msg
    msg = _route_any(kind, data, start, end, seen.paths)
    _learn(seen.layouts, key, data, start, end)
    return msg


class _Layout:
    """The attributes of a route message in a fixed order and size, as the kernel writes
    every route of a feed: the whole message is read by one :mod:`struct` call, and its
    attribute headers compared with the layout's before the values are taken."""

    __slots__ = ("heads", "pick", "struct", "size", "has_path", "defaults", "wants")

    def __init__(self, attrs: list[tuple[int, int]], family: int) -> None:
        """``attrs``: (length, type) of each attribute, in order (none of them nested)."""
        size = _SIZES[family]
        fmt = ["=BBBBBBBBI"]
        at = 9  # the rtmsg's fields come first
        heads: list[int] = []
        where: dict[int, int] = {}
        for length, code in attrs:
            fmt.append("HH")
            heads += (at, at + 1)
            at += 2
            value = length - 4
            if code in _ROUTE_U32 and value == 4:
                fmt.append("I")
            elif code in (RTA_DST, RTA_GATEWAY) and value == size:
                fmt.append(f"{size}s")
            else:  # skipped, as the slow path skips it
                fmt.append(f"{value}x{-length % 4}x")
                continue
            where[code] = at  # the last of a type wins, as in the slow path
            at += 1
            fmt.append(f"{-length % 4}x")
        self.struct = struct.Struct("".join(fmt))
        self.size = size
        self.wants = tuple(x for pair in attrs for x in pair)
        """The attribute headers the message must have: (length, type) of each, flattened."""
        self.heads = operator.itemgetter(*heads) if len(heads) > 1 else None
        # Values a missing attribute takes, after the message's own: 0 and no address.
        self.defaults = (0, None, bytes(size))
        zero, none, nodst = at, at + 1, at + 2
        self.has_path = RTA_GATEWAY in where or RTA_OIF in where
        self.pick = operator.itemgetter(
            0, 1, where.get(RTA_TABLE, 4), 5, 7,  # family, dst_len, table, protocol, type
            where.get(RTA_PRIORITY, zero), where.get(RTA_DST, nodst),
            where.get(RTA_GATEWAY, none), where.get(RTA_OIF, zero), where.get(RTA_NH_ID, zero),
        )  # fmt: skip

    def decode(self, kind: int, data: bytes, start: int, shared: SharedPaths) -> RouteMsg | None:
        """Return the message at ``start`` (its rtmsg) if it has this layout, else None."""
        values = self.struct.unpack_from(data, start) + self.defaults
        if self.heads is not None and self.heads(values) != self.wants:
            return None
        family, dst_len, table, protocol, type_, priority, dst, gateway, oif, nh_id = self.pick(
            values
        )
        if dst_len > 8 * self.size:
            return None  # the slow path says why
        paths = _shared((_new(Path, (gateway, oif, 1)),), shared) if self.has_path else ()
        return _new(RouteMsg, (kind == RTM_DELROUTE, family, dst, dst_len, table, protocol,
                               type_, priority, paths, nh_id))  # fmt: skip


_new = tuple.__new__
"""Makes a named tuple from a tuple in C (its class's own ``__new__`` is Python code)."""


def _learn(
    layouts: dict[tuple[int, int], list[_Layout]],
    key: tuple[int, int], data: bytes, start: int, end: int,
) -> None:  # fmt: skip
    """Learn the layout of the route message at ``start`` (decoded fine by the slow path),
    unless it has nested or odd attributes: those are always read the slow way."""
    family = key[1]
    if family not in _SIZES:
        return
    attrs: list[tuple[int, int]] = []
    at = start + RTMSG.size
    while at + 4 <= end:
        length, code = RTATTR.unpack_from(data, at)
        if code & 0x3FFF in (RTA_MULTIPATH, RTA_VIA) or code & ~0x3FFF:
            return
        attrs.append((length, code))
        at += (length + 3) & ~3
    if at != end:
        return
    if len(layouts) >= LAYOUTS:
        layouts.clear()
    known = layouts.setdefault(key, [])
    if len(known) < 4:
        known.append(_Layout(attrs, family))


def _route_any(kind: int, data: bytes, start: int, end: int, shared: SharedPaths) -> RouteMsg:
    """Decode an rtmsg and its attributes, whatever they are (one pass over them)."""
    if end - start < RTMSG.size:
        raise NetlinkError("rtmsg truncated")
    family, dst_len, _src_len, _tos, table, protocol, _scope, type_, _flags = RTMSG.unpack_from(
        data, start
    )
    size = _SIZES.get(family, 16)
    if dst_len > 8 * size:
        raise NetlinkError(f"prefix length {dst_len} for address family {family}")
    dst = gateway = multipath = via = None
    oif = priority = nh_id = 0
    has_oif = False
    at = start + RTMSG.size
    unpack = RTATTR.unpack_from
    while at + 4 <= end:
        length, code = unpack(data, at)
        if length < 4 or at + length > end:
            raise NetlinkError(f"attribute {code & 0x3FFF} of length {length} overruns its message")
        code &= 0x3FFF
        if code in _ROUTE_U32:
            if length != 8:
                raise NetlinkError(f"attribute {code} of {length - 4} bytes, not 4")
            value = U32.unpack_from(data, at + 4)[0]
            if code == RTA_OIF:
                oif, has_oif = value, True
            elif code == RTA_PRIORITY:
                priority = value
            elif code == RTA_TABLE:
                table = value
            else:
                nh_id = value
        elif code == RTA_DST:
            dst = _address(data[at + 4 : at + length], family, "RTA_DST")
        elif code == RTA_GATEWAY:
            gateway = _address(data[at + 4 : at + length], family, "RTA_GATEWAY")
        elif code == RTA_VIA:
            via = data[at + 4 : at + length]
        elif code == RTA_MULTIPATH:
            multipath = data[at + 4 : at + length]
        at += (length + 3) & ~3
    if gateway is None and via is not None and len(via) > 2:  # struct rtvia: family, address
        gateway = _address(via[2:], int.from_bytes(via[:2], "little"), "RTA_VIA")
    if multipath is not None:
        paths = _multipath(multipath, family)
    elif gateway is not None or has_oif:
        paths = (Path(gateway, oif),)
    else:
        paths = ()
    return _new(RouteMsg, (kind == RTM_DELROUTE, family, dst if dst is not None else bytes(size),
                           dst_len, table, protocol, type_, priority, _shared(paths, shared),
                           nh_id))  # fmt: skip


def _shared(paths: tuple[Path, ...], shared: SharedPaths) -> tuple[Path, ...]:
    """Return the tuple of ``paths`` that routes share (see :func:`parse`)."""
    if not paths:
        return paths
    if len(shared) >= SHARED_PATHS:
        shared.clear()
    return shared.setdefault(paths, paths)


def _nexthop(kind: int, data: bytes, start: int, end: int) -> NexthopMsg:
    if end - start < NHMSG.size:
        raise NetlinkError("nhmsg truncated")
    family, _scope, protocol, _resvd, _flags = NHMSG.unpack_from(data, start)
    attrs = _attrs(data, start + NHMSG.size, end)
    members: list[tuple[int, int, int, int]] = []
    if NHA_GROUP in attrs:
        value = attrs[NHA_GROUP]
        if len(value) % NH_GRP.size:
            raise NetlinkError(f"NHA_GROUP of {len(value)} bytes")
        members = list(NH_GRP.iter_unpack(value))
    group = tuple(member[0] for member in members)
    blackhole = NHA_BLACKHOLE in attrs
    path = None
    if not group and not blackhole and (NHA_OIF in attrs or NHA_GATEWAY in attrs):
        gateway = _address(attrs.get(NHA_GATEWAY), family, "NHA_GATEWAY")
        path = Path(gateway, _u32(attrs, NHA_OIF))
    return NexthopMsg(
        deleted=kind == RTM_DELNEXTHOP,
        id=_u32(attrs, NHA_ID),
        family=family,
        protocol=protocol,
        path=path,
        blackhole=blackhole,
        group=group,
        weights=tuple(member[1] + 1 for member in members),
    )


def _error(seq: int, data: bytes, start: int, end: int) -> End:
    if end - start < 4:
        raise NetlinkError("nlmsgerr truncated")
    return End(seq, struct.unpack_from("=i", data, start)[0])


def parse(data: bytes | bytearray | memoryview, seen: Seen | None = None) -> list[Message]:
    """Return the route, nexthop and end messages in one netlink read, others skipped.

    ``seen`` is kept from read to read by a reader: routes of equal paths get
    the same tuple (a feed's million routes have a handful of next hops: a
    route then costs its paths nothing), and a route message laid out as one
    seen before is read in one go (:class:`_Layout`).

    A message that cannot be decoded becomes a :class:`Malformed` in its
    place and the next one is read; one whose length overruns the read ends
    it (where the next would start is unknown).  Nothing raises.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    if seen is None:
        seen = Seen()
    found: list[Message] = []
    at = 0
    size = len(data)
    unpack = NLMSGHDR.unpack_from
    while at + NLMSGHDR.size <= size:
        length, kind, _flags, seq, _pid = unpack(data, at)
        if length < NLMSGHDR.size or at + length > size:
            found.append(Malformed(kind, f"netlink message of length {length} overruns the read"))
            break
        start, end = at + NLMSGHDR.size, at + length
        try:
            if kind in (RTM_NEWROUTE, RTM_DELROUTE):
                found.append(_route(kind, data, start, end, seen))
            elif kind in (RTM_NEWNEXTHOP, RTM_DELNEXTHOP):
                found.append(_nexthop(kind, data, start, end))
            elif kind == NLMSG_DONE:
                found.append(End(seq))
            elif kind == NLMSG_ERROR:
                found.append(_error(seq, data, start, end))
        except NetlinkError as err:
            found.append(Malformed(kind, str(err)))
        at += (length + 3) & ~3
    if 0 < size - at < NLMSGHDR.size:
        found.append(Malformed(0, f"{size - at} bytes after the last message"))
    return found


def dump_request(kind: int, seq: int, family: int = 0) -> bytes:
    """Return a dump request: ``RTM_GETROUTE`` (of ``family``) or ``RTM_GETNEXTHOP``."""
    body = (
        NHMSG.pack(family, 0, 0, 0, 0)
        if kind == RTM_GETNEXTHOP
        else RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    )
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body
