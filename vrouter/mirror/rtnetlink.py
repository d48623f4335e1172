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

import struct
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Path:
    """One way to a destination: a gateway (may be None: on-link) and an interface index."""

    gateway: bytes | None
    oif: int
    weight: int = 1
    """Its share of a multipath route's flows (``rtnh_hops`` or the group's weight, plus 1)."""


@dataclass(frozen=True, slots=True)
class RouteMsg:
    """An ``RTM_NEWROUTE`` or ``RTM_DELROUTE``."""

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


Message = RouteMsg | NexthopMsg | End


def _attrs(data: bytes | memoryview, start: int, end: int) -> dict[int, memoryview]:
    """Return the attributes between ``start`` and ``end`` by type (the last of a type wins)."""
    view = memoryview(data)
    found: dict[int, memoryview] = {}
    while start + 4 <= end:
        length, kind = RTATTR.unpack_from(view, start)
        if length < 4 or start + length > end:
            raise NetlinkError(f"attribute {kind} of length {length} overruns its message")
        found[kind & 0x3FFF] = view[start + 4 : start + length]
        start += (length + 3) & ~3
    return found


def _u32(value: memoryview | None) -> int:
    return U32.unpack(value[:4])[0] if value is not None and len(value) >= 4 else 0


def _multipath(value: memoryview) -> tuple[Path, ...]:
    paths = []
    at = 0
    while at + RTNEXTHOP.size <= len(value):
        length, _flags, hops, oif = RTNEXTHOP.unpack_from(value, at)
        if length < RTNEXTHOP.size or at + length > len(value):
            raise NetlinkError(f"RTA_MULTIPATH entry of length {length} overruns the attribute")
        inner = _attrs(value, at + RTNEXTHOP.size, at + length)
        gateway = inner.get(RTA_GATEWAY)
        paths.append(Path(bytes(gateway) if gateway is not None else None, oif, hops + 1))
        at += (length + 3) & ~3
    return tuple(paths)


def _route(kind: int, body: memoryview) -> RouteMsg:
    if len(body) < RTMSG.size:
        raise NetlinkError("rtmsg truncated")
    family, dst_len, _src_len, _tos, table, protocol, _scope, type_, _flags = RTMSG.unpack_from(
        body
    )
    attrs = _attrs(body, RTMSG.size, len(body))
    size = 4 if family == AF_INET else 16
    dst = attrs.get(RTA_DST)
    if RTA_TABLE in attrs:
        table = _u32(attrs[RTA_TABLE])
    gateway = attrs.get(RTA_GATEWAY)
    if gateway is None and RTA_VIA in attrs and len(attrs[RTA_VIA]) > 2:
        gateway = attrs[RTA_VIA][2:]  # struct rtvia: family, then the address
    if RTA_MULTIPATH in attrs:
        paths = _multipath(attrs[RTA_MULTIPATH])
    elif gateway is not None or RTA_OIF in attrs:
        paths = (Path(bytes(gateway) if gateway is not None else None, _u32(attrs.get(RTA_OIF))),)
    else:
        paths = ()
    return RouteMsg(
        deleted=kind == RTM_DELROUTE,
        family=family,
        dst=bytes(dst) if dst is not None else bytes(size),
        dst_len=dst_len,
        table=table,
        protocol=protocol,
        type=type_,
        priority=_u32(attrs.get(RTA_PRIORITY)),
        paths=paths,
        nh_id=_u32(attrs.get(RTA_NH_ID)),
    )


def _nexthop(kind: int, body: memoryview) -> NexthopMsg:
    if len(body) < NHMSG.size:
        raise NetlinkError("nhmsg truncated")
    family, _scope, protocol, _resvd, _flags = NHMSG.unpack_from(body)
    attrs = _attrs(body, NHMSG.size, len(body))
    members: list[tuple[int, int, int, int]] = []
    if NHA_GROUP in attrs:
        value = attrs[NHA_GROUP]
        members = [
            NH_GRP.unpack_from(value, at)
            for at in range(0, len(value) - NH_GRP.size + 1, NH_GRP.size)
        ]
    group = tuple(member[0] for member in members)
    blackhole = NHA_BLACKHOLE in attrs
    path = None
    if not group and not blackhole and (NHA_OIF in attrs or NHA_GATEWAY in attrs):
        gateway = attrs.get(NHA_GATEWAY)
        path = Path(bytes(gateway) if gateway is not None else None, _u32(attrs.get(NHA_OIF)))
    return NexthopMsg(
        deleted=kind == RTM_DELNEXTHOP,
        id=_u32(attrs.get(NHA_ID)),
        family=family,
        protocol=protocol,
        path=path,
        blackhole=blackhole,
        group=group,
        weights=tuple(member[1] + 1 for member in members),
    )


def parse(data: bytes | memoryview) -> list[Message]:
    """Return the route, nexthop and end messages in one netlink read, others skipped.

    Raises NetlinkError for a message whose length does not fit the data.
    """
    view = memoryview(data)
    found: list[Message] = []
    at = 0
    while at + NLMSGHDR.size <= len(view):
        length, kind, _flags, seq, _pid = NLMSGHDR.unpack_from(view, at)
        if length < NLMSGHDR.size or at + length > len(view):
            raise NetlinkError(f"netlink message of length {length} overruns the read")
        body = view[at + NLMSGHDR.size : at + length]
        if kind in (RTM_NEWROUTE, RTM_DELROUTE):
            found.append(_route(kind, body))
        elif kind in (RTM_NEWNEXTHOP, RTM_DELNEXTHOP):
            found.append(_nexthop(kind, body))
        elif kind == NLMSG_DONE:
            found.append(End(seq))
        elif kind == NLMSG_ERROR:
            error = struct.unpack_from("=i", body)[0] if len(body) >= 4 else -1
            found.append(End(seq, error))
        at += (length + 3) & ~3
    return found


def dump_request(kind: int, seq: int, family: int = 0) -> bytes:
    """Return a dump request: ``RTM_GETROUTE`` (of ``family``) or ``RTM_GETNEXTHOP``."""
    body = (
        NHMSG.pack(family, 0, 0, 0, 0)
        if kind == RTM_GETNEXTHOP
        else RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    )
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body
