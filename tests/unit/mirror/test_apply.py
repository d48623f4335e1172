"""vrouter.mirror.manager's route sync on an in-memory vnet: a feed of netlink bytes becomes
vnet routes, applied in slices over loop turns, through ``Ops.put_routes``."""

from __future__ import annotations

import asyncio
import errno
import gc
import ipaddress
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from vrouter.daemon.ops import Ops, interface_config
from vrouter.io.driver import Driver
from vrouter.mirror import manager
from vrouter.mirror import rtnetlink as rt
from vrouter.mirror.manager import Mirror, Mirrors
from vrouter.mirror.sync import RouteSync
from vrouter.route.source import source
from vrouter.stack import new_tree

EP0 = 5
"""The mirror's interface index of red's representor ep0."""
BASE = 0x64400000  # 100.64.0.0


def _route(n: int, *, deleted: bool = False, via: bytes = bytes([203, 0, 113, 2])) -> bytes:
    """Return the kernel's message for ``ip route add|del 100.64.x.y/32 via ... proto bgp``."""
    body = rt.RTMSG.pack(rt.AF_INET, 32, 0, 0, 254, 186, 0, rt.RTN_UNICAST, 0) + b"".join(
        struct.pack("=HH", 8, kind) + value
        for kind, value in (
            (rt.RTA_TABLE, struct.pack("=I", 254)),
            (rt.RTA_DST, (BASE + n).to_bytes(4, "big")),
            (rt.RTA_GATEWAY, via),
            (rt.RTA_OIF, struct.pack("=I", EP0)),
        )
    )
    kind = rt.RTM_DELROUTE if deleted else rt.RTM_NEWROUTE
    return rt.NLMSGHDR.pack(16 + len(body), kind, 0, 0, 0) + body


def _prefix(n: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((BASE + n, 32))


@pytest.fixture
def lab() -> Iterator[tuple[asyncio.AbstractEventLoop, Ops, Mirrors, Mirror]]:
    loop = asyncio.new_event_loop()
    ops = Ops(new_tree(), Driver(loop))
    ops.create_vnet("red")
    ops.create_vnet("blue")
    ip = ipaddress.ip_interface
    ops.create_epair(
        "red", interface_config("ep0", "epair", [ip("203.0.113.1/24")], peer=("blue", "ep0")),
        "blue", interface_config("ep0", "epair", [ip("203.0.113.2/24")], peer=("red", "ep0")),
    )  # fmt: skip
    mirrors = Mirrors(loop, ops, [], lambda: None, time.monotonic)
    mirror = Mirror(ops.vnet("red"), "unused", RouteSync(lambda i: "ep0" if i == EP0 else None))
    mirrors.mirrors["red"] = mirror
    try:
        yield loop, ops, mirrors, mirror
    finally:
        mirrors._end_burst(mirror)
        loop.close()


def _feed(loop: asyncio.AbstractEventLoop, mirrors: Mirrors, mirror: Mirror, data: bytes) -> int:
    """Hand ``data`` to the sync as one read; run the loop until it is applied; return the
    loop turns that took."""
    mirrors._take(mirror, rt.parse(data))
    mirrors._schedule(mirror)
    turns = 0

    async def settle() -> None:
        nonlocal turns
        for _ in range(100_000):
            if not mirror.pending and not mirror.applying and not mirror.reconcile:
                return
            turns += 1
            await asyncio.sleep(0)
        raise AssertionError("the sync did not settle")

    loop.run_until_complete(settle())
    return turns


def test_a_feed_becomes_bgp_routes_in_slices_over_loop_turns(lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    loop, ops, mirrors, mirror = lab
    monkeypatch.setattr(manager, "NETLINK_TURN", 0.0)  # one slice a turn
    count = 3 * manager.APPLY_SLICE + 10
    turns = _feed(loop, mirrors, mirror, b"".join(_route(n) for n in range(count)))
    assert turns >= 3  # 4 slices, the first applied before the first look
    fib = ops.vnet("red").route.fib
    assert fib.counts()["bgp"] == (count, 0)
    route = fib.get(_prefix(7))
    assert route is not None and route.source == source("bgp")
    assert route.gateway == bytes([203, 0, 113, 2]) and route.ifnet is not None
    assert route.ifnet.name == "ep0"
    assert len(mirror.applied) == count


def test_withdrawals_and_changes_follow(lab) -> None:  # type: ignore[no-untyped-def]
    loop, ops, mirrors, mirror = lab
    _feed(loop, mirrors, mirror, b"".join(_route(n) for n in range(10)))
    _feed(loop, mirrors, mirror, _route(3, deleted=True) + _route(4, via=bytes([203, 0, 113, 9])))
    fib = ops.vnet("red").route.fib
    assert fib.get(_prefix(3)) is None
    changed = fib.get(_prefix(4))
    assert changed is not None and changed.gateway == bytes([203, 0, 113, 9])
    assert fib.counts()["bgp"] == (9, 0)


def test_a_route_changed_many_times_before_its_turn_is_applied_once(lab) -> None:  # type: ignore[no-untyped-def]
    loop, ops, mirrors, mirror = lab
    told: list[dict[str, object]] = []
    ops.vnet("red").listen(told.append)  # a route monitor
    churn = b"".join(_route(1, deleted=bool(n % 2)) for n in range(9))  # ends added
    _feed(loop, mirrors, mirror, churn)
    assert [e["type"] for e in told] == ["RTM_ADD"]
    assert ops.vnet("red").route.fib.get(_prefix(1)) is not None


def test_a_config_static_route_is_not_overridden(lab) -> None:  # type: ignore[no-untyped-def]
    loop, ops, mirrors, mirror = lab
    ops.add_route("red", _prefix(2), via=ipaddress.ip_address("203.0.113.7"))
    _feed(loop, mirrors, mirror, _route(2))
    fib = ops.vnet("red").route.fib
    installed = fib.get(_prefix(2))
    assert installed is not None and installed.source.name == "static"
    assert fib.state(fib.get(_prefix(2), "bgp")) == "held"  # type: ignore[arg-type]


def test_a_route_the_vnet_refuses_is_counted_not_applied(lab) -> None:  # type: ignore[no-untyped-def]
    loop, ops, mirrors, mirror = lab
    off_link = bytes([198, 51, 100, 1])  # on no network of red
    _feed(loop, mirrors, mirror, _route(1, via=off_link) + _route(2, via=off_link) + _route(3))
    assert mirror.refused == 2
    assert set(mirror.applied) == {(rt.AF_INET, (BASE + 3).to_bytes(4, "big"), 32, 186)}
    assert ops.vnet("red").route.fib.counts()["bgp"] == (1, 0)


def test_the_route_limit_refuses_what_does_not_fit(lab) -> None:  # type: ignore[no-untyped-def]
    loop, ops, mirrors, mirror = lab
    in_use = ops.routes_in_use(ops.vnet("red"))
    ops.set_sysctl("red", "vnet.limits.routes", in_use + 5)
    _feed(loop, mirrors, mirror, b"".join(_route(n) for n in range(8)))
    assert ops.vnet("red").route.fib.counts()["bgp"] == (5, 0)
    assert mirror.refused == 3


def test_the_collector_is_held_off_during_a_burst_and_back_after(lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    loop, ops, mirrors, mirror = lab
    monkeypatch.setattr(manager, "BURST_QUIET", 0.01)
    assert gc.isenabled()
    mirrors._take(mirror, rt.parse(_route(1)))
    mirrors._schedule(mirror)
    assert not gc.isenabled()
    loop.run_until_complete(asyncio.sleep(0.2))
    assert gc.isenabled() and mirror.busy is None
    assert ops.vnet("red").route.fib.get(_prefix(1)) is not None


def test_a_resync_keeps_what_the_dump_brings_back_and_drops_the_rest(lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    loop, ops, mirrors, mirror = lab
    monkeypatch.setattr(manager, "DISCARD_SLICE", 100)
    _feed(loop, mirrors, mirror, b"".join(_route(n) for n in range(250)))
    old = mirror.sync.routes
    mirrors._resync(mirror)  # as after an overrun: the kernel lost events
    assert mirror.in_dump and len(old) == 150  # the old table goes a slice a turn
    loop.run_until_complete(asyncio.sleep(0))
    loop.run_until_complete(asyncio.sleep(0))
    assert not old
    done = rt.NLMSGHDR.pack(20, rt.NLMSG_DONE, 0, 3, 0) + bytes(4)
    dump = b"".join(_route(n) for n in range(200)) + done  # 200-249 were withdrawn meanwhile
    _feed(loop, mirrors, mirror, dump)
    fib = ops.vnet("red").route.fib
    assert fib.counts()["bgp"] == (200, 0)
    assert fib.get(_prefix(199)) is not None and fib.get(_prefix(200)) is None
    assert not mirror.in_dump


class _Overran:
    """A netlink socket that overran: ENOBUFS at the first read, then nothing to read."""

    def __init__(self) -> None:
        self.reads = 0
        self.sent: list[bytes] = []

    def recv(self, size: int) -> bytes:
        self.reads += 1
        if self.reads == 1:
            raise OSError(errno.ENOBUFS, "No buffer space available")
        raise BlockingIOError

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)


def test_an_overrun_is_counted_and_its_resync_leaves_the_routes_that_stay_alone(lab) -> None:  # type: ignore[no-untyped-def]
    loop, ops, mirrors, mirror = lab
    _feed(loop, mirrors, mirror, b"".join(_route(n) for n in range(100)))
    fib = ops.vnet("red").route.fib
    kept = fib.get(_prefix(7))
    sock = _Overran()
    mirror.netlink = sock  # type: ignore[assignment]
    mirrors._on_netlink(mirror)
    mirror.netlink = None  # (the socket is watched anew on the next turn)
    assert mirror.sync.stats.overruns == 1
    assert mirror.in_dump and len(sock.sent) == 1  # the nexthops' dump asked for
    done = b"".join(rt.NLMSGHDR.pack(20, rt.NLMSG_DONE, 0, seq, 0) + bytes(4) for seq in (1, 2, 3))
    _feed(loop, mirrors, mirror, b"".join(_route(n) for n in range(90)) + done)
    assert fib.counts()["bgp"] == (90, 0)
    assert fib.get(_prefix(7)) is kept  # not removed and added again
    assert fib.get(_prefix(90)) is None and not mirror.in_dump
    assert mirrors.describe("red")["sync"]["overruns"] == 1  # type: ignore[index]


def test_notifications_are_read_from_the_socket_and_applied(lab) -> None:  # type: ignore[no-untyped-def]
    loop, ops, mirrors, mirror = lab
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with ours, kernel:
        ours.setblocking(False)
        kernel.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        mirror.netlink = ours
        for n in range(600):  # one datagram a notification, as the kernel sends them
            kernel.send(_route(n))
        kernel.send(_route(600)[:30])  # truncated
        kernel.send(_route(601))
        for _ in range(50):
            mirrors._on_netlink(mirror)
            loop.run_until_complete(asyncio.sleep(0))
        mirror.netlink = None
    assert ops.vnet("red").route.fib.counts()["bgp"] == (601, 0)
    assert mirror.sync.stats.malformed == 1
    assert not mirror.pending



def _multipath_route(n: int) -> bytes:
    """Return ``100.64.x.y/32 proto bgp`` by 203.0.113.2 (rtnh_hops 2: weight 3) and .3."""
    hops = b"".join(
        struct.pack("=HBBi", 16, 0, extra, EP0) + struct.pack("=HH", 8, rt.RTA_GATEWAY)
        + bytes([203, 0, 113, last])
        for last, extra in ((2, 2), (3, 0))
    )  # fmt: skip
    body = (
        rt.RTMSG.pack(rt.AF_INET, 32, 0, 0, 254, 186, 0, rt.RTN_UNICAST, 0)
        + struct.pack("=HH", 8, rt.RTA_DST) + (BASE + n).to_bytes(4, "big")
        + struct.pack("=HH", 4 + len(hops), rt.RTA_MULTIPATH) + hops
    )  # fmt: skip
    return rt.NLMSGHDR.pack(16 + len(body), rt.RTM_NEWROUTE, 0, 0, 0) + body


def test_multipath_routes_keep_weights_and_share_the_next_hop_going_their_way(lab) -> None:  # type: ignore[no-untyped-def]
    loop, ops, mirrors, mirror = lab
    _feed(loop, mirrors, mirror, _multipath_route(1) + _multipath_route(2))
    fib = ops.vnet("red").route.fib
    one, two = fib.get(_prefix(1)), fib.get(_prefix(2))
    assert one is not None and two is not None
    assert [(n.gateway, n.weight) for n in one.nexthops] == [
        (bytes([203, 0, 113, 2]), 3), (bytes([203, 0, 113, 3]), 1),
    ]  # fmt: skip
    assert one.nexthops == two.nexthops
    assert one.nhop is two.nhop  # one next hop, its paths counted once for both routes
    fib.delete(_prefix(1), one.source.name)
    assert two.nexthops[0].gateway == bytes([203, 0, 113, 2]) and fib.get(_prefix(2)) is two
