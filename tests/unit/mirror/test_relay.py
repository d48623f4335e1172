"""vrouter.mirror.relay: netlink messages read, decoded and handed over in batches, and
back as the sync's messages; an overrun marked; the relay ends with its socket pair."""

from __future__ import annotations

import pickle
import socket
import threading

from tests.unit.mirror.test_rtnetlink import FEED_ROUTE, _message
from vrouter.mirror import relay
from vrouter.mirror import rtnetlink as rt


def test_a_batch_decodes_to_the_messages_it_was_made_of() -> None:
    messages = rt.parse(FEED_ROUTE * 3 + _message(rt.NLMSG_DONE, bytes(4), seq=2))
    [batch] = relay.encode(messages)
    decoded = relay.decode(batch)
    assert decoded == messages
    assert decoded is not None and type(decoded[0]) is rt.RouteMsg
    assert decoded[0].dst == bytes([100, 64, 0, 1]) and decoded[3] == rt.End(2)


def test_a_batch_too_big_for_one_read_is_split() -> None:
    messages = rt.parse(FEED_ROUTE) * 20_000  # far more than PAIR_READ bytes pickled
    batches = relay.encode(messages)
    assert len(batches) > 1 and all(len(b) <= relay.PAIR_READ for b in batches)
    assert [m for b in batches for m in relay.decode(b) or []] == messages


def test_the_overrun_mark_decodes_to_none() -> None:
    assert relay.decode(pickle.dumps(relay.OVERRUN)) is None


def test_the_relay_hands_over_what_it_reads_and_sends_on_requests_until_closed() -> None:
    kernel, netlink = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)  # stands for netlink
    mine, theirs = relay.pair()
    thread = threading.Thread(target=relay.relay, args=(netlink, theirs))
    thread.start()
    try:
        for _ in range(5):
            kernel.send(FEED_ROUTE * 2)
        mine.setblocking(True)
        mine.settimeout(5)
        got: list[rt.Message] = []
        while len(got) < 10:
            got += relay.decode(mine.recv(relay.PAIR_READ)) or []
        assert got == rt.parse(FEED_ROUTE) * 10
        request = rt.dump_request(rt.RTM_GETROUTE, 2, rt.AF_INET)
        mine.send(request)
        kernel.settimeout(5)
        assert kernel.recv(4096) == request
    finally:
        mine.close()
        thread.join(5)
        kernel.close()
    assert not thread.is_alive()
