"""vrouter.mirror.rtnetlink: route and nexthop messages decoded; malformed ones counted and
dropped, never raised."""

from __future__ import annotations

import random
import struct

import pytest

from vrouter.mirror import rtnetlink as rt
from vrouter.mirror.sync import RouteSync


def _attr(kind: int, value: bytes) -> bytes:
    padded = value + bytes(-len(value) % 4)
    return struct.pack("=HH", 4 + len(value), kind) + padded


def _message(kind: int, body: bytes, seq: int = 0) -> bytes:
    """Return a netlink message, padded to 4 bytes as the next one starts there."""
    return rt.NLMSGHDR.pack(16 + len(body), kind, 0, seq, 0) + body + bytes(-len(body) % 4)


def _route(*attrs: bytes, family: int = rt.AF_INET, dst_len: int = 32, proto: int = 186) -> bytes:
    head = rt.RTMSG.pack(family, dst_len, 0, 0, rt.RT_TABLE_MAIN, proto, 0, rt.RTN_UNICAST, 0)
    return _message(rt.RTM_NEWROUTE, head + b"".join(attrs))


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


# `ip route add 100.64.0.1/32 via 203.0.113.2 dev ep0 proto bgp`, as the kernel tells it.
FEED_ROUTE = _route(
    _u32(rt.RTA_TABLE, 254),
    _attr(rt.RTA_DST, bytes([100, 64, 0, 1])),
    _attr(rt.RTA_GATEWAY, bytes([203, 0, 113, 2])),
    _u32(rt.RTA_OIF, 5),
)


BAD_GROUP = rt.NHMSG.pack(2, 0, 11, 0, 0) + _attr(rt.NHA_GROUP, bytes(7))
"""A nexthop group of 7 bytes: not whole entries of 8."""


def test_a_feed_route_is_decoded() -> None:
    [msg] = rt.parse(FEED_ROUTE)
    assert msg == rt.RouteMsg(
        False, rt.AF_INET, bytes([100, 64, 0, 1]), 32, 254, 186, rt.RTN_UNICAST, 0,
        (rt.Path(bytes([203, 0, 113, 2]), 5),), 0,
    )  # fmt: skip


def test_many_routes_in_one_read_are_all_decoded() -> None:
    data = b"".join(
        _route(_attr(rt.RTA_DST, bytes([100, 64, n >> 8, n & 255])), _u32(rt.RTA_OIF, 5))
        for n in range(500)
    )
    messages = rt.parse(data)
    assert [m.dst[2:] for m in messages if isinstance(m, rt.RouteMsg)] == [
        bytes([n >> 8, n & 255]) for n in range(500)
    ]


def test_rta_via_and_multipath_are_decoded() -> None:
    rtvia = b"\x02\x00" + bytes([192, 0, 2, 1])  # AF_INET, then the address
    via = _route(_attr(rt.RTA_DST, bytes(4)), _attr(rt.RTA_VIA, rtvia), dst_len=0)
    nexthop = struct.pack("=HBBi", 8 + 8, 0, 0, 7) + _attr(rt.RTA_GATEWAY, bytes([192, 0, 2, 9]))
    multi = _route(_attr(rt.RTA_DST, bytes(4)), _attr(rt.RTA_MULTIPATH, nexthop * 2), dst_len=0)
    first, second = rt.parse(via + multi)
    assert isinstance(first, rt.RouteMsg) and isinstance(second, rt.RouteMsg)
    assert first.paths == (rt.Path(bytes([192, 0, 2, 1]), 0),)
    assert second.paths == (rt.Path(bytes([192, 0, 2, 9]), 7),) * 2


def test_every_truncation_is_dropped_and_counted_never_raised() -> None:
    for cut in range(1, len(FEED_ROUTE)):
        messages = rt.parse(FEED_ROUTE[:cut])
        assert all(isinstance(m, rt.Malformed) for m in messages), cut
        sync = RouteSync(lambda index: "ep0")
        assert sync.take(messages) == set()
        assert sync.stats.malformed == len(messages) == 1, cut


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (_route(_attr(rt.RTA_DST, bytes(3))), "RTA_DST of 3 bytes"),
        (_route(_attr(rt.RTA_DST, bytes(4)), _attr(rt.RTA_GATEWAY, bytes(16))), "RTA_GATEWAY"),
        (_route(_attr(rt.RTA_OIF, b"\x05\x00")), "not 4"),
        (_route(_attr(rt.RTA_DST, bytes(4)), dst_len=33), "prefix length 33"),
        (FEED_ROUTE[:28] + struct.pack("=HH", 200, rt.RTA_DST) + FEED_ROUTE[32:], "overruns"),
        (_route(_attr(rt.RTA_MULTIPATH, struct.pack("=HBBi", 64, 0, 0, 1))), "RTA_MULTIPATH"),
        (_message(rt.RTM_NEWNEXTHOP, BAD_GROUP), "NHA_GROUP"),
        (_message(rt.RTM_NEWNEXTHOP, bytes(3)), "nhmsg truncated"),
        (_message(rt.NLMSG_ERROR, bytes(2)), "nlmsgerr truncated"),
    ],
)
def test_a_malformed_message_is_dropped_and_the_next_one_read(bad: bytes, reason: str) -> None:
    messages = rt.parse(bad + FEED_ROUTE)
    assert len(messages) == 2
    assert isinstance(messages[0], rt.Malformed) and reason in messages[0].reason
    assert isinstance(messages[1], rt.RouteMsg) and messages[1].dst == bytes([100, 64, 0, 1])


def test_a_message_longer_than_the_read_ends_it() -> None:
    overrun = struct.pack("=I", 4096) + FEED_ROUTE[4:]
    messages = rt.parse(FEED_ROUTE + overrun + FEED_ROUTE)
    assert isinstance(messages[0], rt.RouteMsg)
    assert [type(m) for m in messages[1:]] == [rt.Malformed]
    too_short = struct.pack("=I", 8) + FEED_ROUTE[4:]
    assert [type(m) for m in rt.parse(too_short)] == [rt.Malformed]


def test_random_bytes_never_raise() -> None:
    rng = random.Random(15)
    sync = RouteSync(lambda index: "ep0")
    for _ in range(3000):
        data = bytearray(FEED_ROUTE * rng.randint(1, 3))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        messages = rt.parse(bytes(data))
        sync.take(messages)
        for key in sync.routes:
            sync.wanted(key)
    assert sync.stats.malformed > 0


def test_a_dump_end_and_an_error_are_told() -> None:
    done = _message(rt.NLMSG_DONE, struct.pack("=i", 0), seq=2)
    error = _message(rt.NLMSG_ERROR, struct.pack("=i", -95) + bytes(16), seq=3)
    assert rt.parse(done + error) == [rt.End(2), rt.End(3, -95)]


def _variants(rng: random.Random) -> list[bytes]:
    """Route messages of a few layouts, some alike in length and family, some malformed."""
    v6 = rt.AF_INET6
    out = []
    for _ in range(400):
        dst = bytes([100, 64, rng.randrange(256), rng.randrange(256)])
        gateway = bytes([203, 0, 113, rng.randrange(1, 4)])
        pick = rng.randrange(8)
        oif = rng.randrange(1, 9)
        if pick == 0:  # the feed's layout
            attrs = (_u32(rt.RTA_TABLE, 254), _attr(rt.RTA_DST, dst),
                     _attr(rt.RTA_GATEWAY, gateway), _u32(rt.RTA_OIF, oif))  # fmt: skip
        elif pick == 1:  # as long, a priority instead of the table
            attrs = (_u32(rt.RTA_PRIORITY, rng.randrange(5)), _attr(rt.RTA_DST, dst),
                     _attr(rt.RTA_GATEWAY, gateway), _u32(rt.RTA_OIF, 3))  # fmt: skip
        elif pick == 2:  # as long, a nexthop object and an attribute not read
            attrs = (_u32(rt.RTA_NH_ID, rng.randrange(1, 50)), _attr(rt.RTA_DST, dst),
                     _attr(20, bytes(4)), _u32(rt.RTA_TABLE, rng.choice((254, 10))))  # fmt: skip
        elif pick == 3:  # the table twice: the last one counts
            attrs = (_u32(rt.RTA_TABLE, 7), _attr(rt.RTA_DST, dst), _u32(rt.RTA_TABLE, 254))
        elif pick == 4:  # IPv6, an odd-sized attribute not read (padded)
            attrs = (_attr(rt.RTA_DST, bytes(15) + dst[3:]), _attr(12, bytes(5)),
                     _attr(rt.RTA_GATEWAY, bytes(16)), _u32(rt.RTA_OIF, 2))  # fmt: skip
            out.append(_route(*attrs, family=v6, dst_len=rng.choice((64, 128, 129))))
            continue
        elif pick == 5:  # no attributes: the default route of the main table
            attrs = ()
        elif pick == 6:  # a feed route of a length too long
            attrs = (_u32(rt.RTA_TABLE, 254), _attr(rt.RTA_DST, dst),
                     _attr(rt.RTA_GATEWAY, gateway), _u32(rt.RTA_OIF, 1))  # fmt: skip
            out.append(_route(*attrs, dst_len=33))
            continue
        else:  # the feed's layout, its gateway attribute of the wrong size
            attrs = (_u32(rt.RTA_TABLE, 254), _attr(rt.RTA_DST, dst),
                     _attr(rt.RTA_GATEWAY, gateway[:2]), _u32(rt.RTA_OIF, 1))  # fmt: skip
        out.append(_route(*attrs, dst_len=rng.choice((24, 32))))
    return out


def test_messages_read_by_a_learnt_layout_are_read_as_attribute_by_attribute() -> None:
    messages = _variants(random.Random(7))
    seen = rt.Seen()
    learnt = [m for data in messages for m in rt.parse(data, seen)]
    alone = [m for data in messages for m in rt.parse(data)]  # each read with nothing seen
    assert learnt == alone
    assert seen.layouts  # some were learnt, and read by them
    kinds = {type(m) for m in learnt}
    assert kinds == {rt.RouteMsg, rt.Malformed}
    assert {m.table for m in learnt if isinstance(m, rt.RouteMsg)} == {10, 254}


def test_a_deletion_read_by_a_learnt_layout_is_one() -> None:
    seen = rt.Seen()
    rt.parse(FEED_ROUTE, seen)
    deleted = bytearray(FEED_ROUTE)
    struct.pack_into("=H", deleted, 4, rt.RTM_DELROUTE)
    [msg] = rt.parse(bytes(deleted), seen)
    assert isinstance(msg, rt.RouteMsg) and msg.deleted and msg.dst == bytes([100, 64, 0, 1])
    [again] = rt.parse(FEED_ROUTE, seen)
    assert isinstance(again, rt.RouteMsg) and not again.deleted
    assert again.paths is msg.paths  # shared
