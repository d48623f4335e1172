"""vrouter.mirror.rtnetlink and .sync: netlink bytes to vnet routes, nexthop objects followed."""

from __future__ import annotations

import ipaddress

from vrouter.mirror import rtnetlink
from vrouter.mirror.sync import RouteSync, Want
from vrouter.route.source import source

# RTM_NEWNEXTHOP: id 12 via 198.51.100.2 dev 3 (proto zebra), as zebra installs it.
NEWNEXTHOP = bytes.fromhex(
    "30000000" "6800" "0000" "00000000" "00000000"  # nlmsghdr: 48 bytes, type 104
    "02" "00" "0b" "00" "00000000"  # nhmsg: AF_INET, scope, proto 11
    "0800" "0100" "0c000000"  # NHA_ID 12
    "0800" "0500" "03000000"  # NHA_OIF 3
    "0800" "0600" "c6336402"  # NHA_GATEWAY 198.51.100.2
)
# RTM_NEWROUTE: 192.0.2.32/28 nhid 12 proto ospf (188) metric 20, main table.
NEWROUTE = bytes.fromhex(
    "3c000000" "1800" "0000" "00000000" "00000000"  # nlmsghdr: 60 bytes, type 24
    "02" "1c" "00" "00" "fe" "bc" "00" "01" "00000000"  # rtmsg: /28, table 254, ospf, unicast
    "0800" "0f00" "fe000000"  # RTA_TABLE 254
    "0800" "0100" "c0000220"  # RTA_DST 192.0.2.32
    "0800" "0600" "14000000"  # RTA_PRIORITY 20
    "0800" "1e00" "0c000000"  # RTA_NH_ID 12
)
DELNEXTHOP = bytes.fromhex("18000000" "6900" "0000" "00000000" "00000000" "02000000" "00000000")
DELNEXTHOP = DELNEXTHOP[:24] + bytes.fromhex("0800" "0100" "0c000000")
DELNEXTHOP = b"\x20" + DELNEXTHOP[1:]
PREFIX = ipaddress.ip_network("192.0.2.32/28")
KEY = (PREFIX, source("ospf"))


def _sync() -> RouteSync:
    return RouteSync(lambda index: {3: "e0"}.get(index))


def test_parse_reads_a_nexthop_object_and_a_route_using_it() -> None:
    nh, route = rtnetlink.parse(NEWNEXTHOP + NEWROUTE)
    assert nh == rtnetlink.NexthopMsg(
        False, 12, 2, 11, rtnetlink.Path(bytes([198, 51, 100, 2]), 3)
    )
    assert isinstance(route, rtnetlink.RouteMsg)
    assert (route.dst, route.dst_len, route.table, route.protocol) == (
        bytes([192, 0, 2, 32]), 28, 254, 188,
    )  # fmt: skip
    assert (route.nh_id, route.priority, route.paths) == (12, 20, ())


def test_a_route_follows_its_nexthop_object_and_goes_with_it() -> None:
    sync = _sync()
    assert sync.feed(rtnetlink.parse(NEWROUTE)) == {KEY}
    assert sync.want(KEY) is None  # the nexthop is not known yet
    assert sync.feed(rtnetlink.parse(NEWNEXTHOP)) == {KEY}
    assert sync.want(KEY) == Want("unicast", ipaddress.ip_address("198.51.100.2"), "e0")
    assert source("ospf").distance == 110
    assert sync.feed(rtnetlink.parse(DELNEXTHOP)) == {KEY}
    assert sync.want(KEY) is None


def test_boot_routes_and_other_tables_are_not_synced() -> None:
    boot = bytearray(NEWROUTE)
    boot[16 + 5] = 3  # proto boot
    other = bytearray(NEWROUTE)
    other[16 + 4] = 100
    other[16 + 12 + 4 : 16 + 12 + 8] = (100).to_bytes(4, "little")
    sync = _sync()
    assert sync.feed(rtnetlink.parse(bytes(boot) + bytes(other))) == set()
    assert sync.stats.ignored == 2


def test_a_route_by_an_interface_that_is_no_representor_is_not_synced() -> None:
    sync = RouteSync(lambda index: None)
    sync.feed(rtnetlink.parse(NEWNEXTHOP + NEWROUTE))
    assert sync.want(KEY) is None
    assert sync.stats.foreign == 1


def test_dump_request_is_a_netlink_dump() -> None:
    request = rtnetlink.dump_request(rtnetlink.RTM_GETROUTE, 7, rtnetlink.AF_INET)
    assert request == bytes.fromhex("1c000000" "1a00" "0103" "07000000" "00000000") + bytes(
        [2] + [0] * 11
    )


# RTM_NEWNEXTHOP: group id 20 of nexthops 12 and 13, as zebra installs an ECMP route's.
NEWGROUP = bytes.fromhex(
    "34000000" "6800" "0000" "00000000" "00000000"  # nlmsghdr: 52 bytes, type 104
    "02" "00" "0b" "00" "00000000"  # nhmsg: AF_INET, scope, proto 11
    "0800" "0100" "14000000"  # NHA_ID 20
    "1400" "0200" "0c000000" "00000000" "0d000000" "00000000"  # NHA_GROUP 12, 13 (weight 1)
)


def _path(last: int, oif: int) -> rtnetlink.Path:
    return rtnetlink.Path(bytes([198, 51, 100, last]), oif)


def _ecmp_sync() -> RouteSync:
    return RouteSync(lambda index: {3: "e0", 4: "e1"}.get(index))


def _feed_group(sync: RouteSync, group: rtnetlink.Message) -> None:
    """Feed nexthops 12 (198.51.100.2 on e0) and 13 (.6 on e1), ``group`` (id 20) and an
    OSPF route to 192.0.2.32/28 by it."""
    sync.feed(
        [
            rtnetlink.NexthopMsg(False, 12, 2, 11, _path(2, 3)),
            rtnetlink.NexthopMsg(False, 13, 2, 11, _path(6, 4)),
            group,
            rtnetlink.RouteMsg(False, 2, bytes([192, 0, 2, 32]), 28, 254, 188, 1, 20, (), 20),
        ]
    )


def test_a_nexthop_group_becomes_a_multipath_route() -> None:
    sync = _ecmp_sync()
    [group] = rtnetlink.parse(NEWGROUP)
    assert isinstance(group, rtnetlink.NexthopMsg) and group.group == (12, 13)
    _feed_group(sync, group)
    first, second = ipaddress.ip_address("198.51.100.2"), ipaddress.ip_address("198.51.100.6")
    assert sync.want(KEY) == Want("unicast", first, "e0", ((first, "e0"), (second, "e1")))
    # One member gone: a route of one path.
    assert sync.feed([rtnetlink.NexthopMsg(False, 20, 2, 11, None, group=(13,))]) == {KEY}
    assert sync.want(KEY) == Want("unicast", second, "e1")


def test_an_inline_multipath_route_becomes_a_multipath_route() -> None:
    sync = _ecmp_sync()
    paths = (_path(2, 3), _path(6, 4), _path(10, 9))  # index 9: no representor
    sync.feed([rtnetlink.RouteMsg(False, 2, bytes([192, 0, 2, 32]), 28, 254, 188, 1, 20, paths)])
    first, second = ipaddress.ip_address("198.51.100.2"), ipaddress.ip_address("198.51.100.6")
    assert sync.want(KEY) == Want("unicast", first, "e0", ((first, "e0"), (second, "e1")))
    assert sync.stats.foreign == 1


# NEWGROUP with member 12 at weight 3 (the byte holds weight - 1), as `group 12,3/13`.
WEIGHTED_GROUP = NEWGROUP[:-16] + bytes.fromhex("0c000000020000000d00000000000000")


def test_a_weighted_nexthop_group_gives_the_paths_its_weights() -> None:
    sync = _ecmp_sync()
    [group] = rtnetlink.parse(WEIGHTED_GROUP)
    assert isinstance(group, rtnetlink.NexthopMsg) and group.weights == (3, 1)
    _feed_group(sync, group)
    want = sync.want(KEY)
    assert want is not None and want.weights == (3, 1)
    assert [interface for _, interface in want.paths] == ["e0", "e1"]


def _multipath_route(*hops: tuple[int, int, int]) -> bytes:
    """Return an RTM_NEWROUTE to 192.0.2.32/28 (proto ospf) by ``hops`` of
    (gateway's last byte, oif, rtnh_hops)."""
    nexthops = b"".join(
        rtnetlink.RTNEXTHOP.pack(16, 0, extra, oif)
        + rtnetlink.RTATTR.pack(8, rtnetlink.RTA_GATEWAY)
        + bytes([198, 51, 100, last])
        for last, oif, extra in hops
    )
    body = (
        rtnetlink.RTMSG.pack(2, 28, 0, 0, 254, 188, 0, 1, 0)
        + rtnetlink.RTATTR.pack(8, rtnetlink.RTA_DST)
        + bytes([192, 0, 2, 32])
        + rtnetlink.RTATTR.pack(4 + len(nexthops), rtnetlink.RTA_MULTIPATH)
        + nexthops
    )
    return rtnetlink.NLMSGHDR.pack(16 + len(body), rtnetlink.RTM_NEWROUTE, 0, 0, 0) + body


def test_an_inline_multipath_route_gives_the_paths_their_rtnh_hops_plus_1() -> None:
    [msg] = rtnetlink.parse(_multipath_route((2, 3, 4), (6, 4, 0)))
    assert isinstance(msg, rtnetlink.RouteMsg)
    assert [path.weight for path in msg.paths] == [5, 1]
    sync = _ecmp_sync()
    sync.feed([msg])
    want = sync.want(KEY)
    assert want is not None and want.weights == (5, 1)
    # Equal weights (rtnh_hops 0, or all the same): no weights at all.
    sync.feed(rtnetlink.parse(_multipath_route((2, 3, 0), (6, 4, 0))))
    want = sync.want(KEY)
    assert want is not None and want.weights == () and len(want.paths) == 2
