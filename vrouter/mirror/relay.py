"""The netlink relay: a child process that reads a mirror's route netlink socket.

A feed of a million routes is a million notifications, one datagram each:
read and decoded in the daemon (:func:`vrouter.mirror.rtnetlink.parse`,
some 8 us a route with its ``recv``) they took a third of its time, and
while the daemon forwarded or applied, the kernel, installing routes
several times faster than the daemon took them, overran the socket
(the sync then reads the whole table again).  The relay does that reading
on the other core: it reads the socket as fast as the kernel fills it,
decodes the messages and hands them to the daemon in batches over a
``SOCK_SEQPACKET`` socket pair, one datagram a batch.  What the daemon has
not yet taken waits in the relay's memory, not in the netlink socket, so
the daemon's own pace loses nothing.

The socket is the daemon's (opened in the mirror's namespace, passed here
by descriptor): the relay enters no namespace, and a mirror's teardown,
which ends the processes inside it, does not see it.  Each datagram from
the daemon is a netlink request (a dump) the relay sends on the socket.
The relay ends when the daemon closes its end.

A batch is a pickled list (both ends are this package, over a socket pair
no one else holds): a route message as a plain tuple in
:class:`~vrouter.mirror.rtnetlink.RouteMsg`'s order (a named tuple's own
unpickling is a Python call, five times the cost), other messages as they
are; :data:`OVERRUN` alone where the kernel dropped notifications.
:func:`decode` makes it messages again.

Usage (by the daemon): ``python -m vrouter.mirror.relay NETLINK_FD PAIR_FD``.
"""

from __future__ import annotations

import collections
import errno
import pickle
import select
import socket
import sys

from vrouter.mirror import rtnetlink
from vrouter.mirror.rtnetlink import Message, RouteMsg

OVERRUN = "overrun"
"""In a batch where the kernel dropped notifications (``ENOBUFS``): the sync must dump again."""
BATCH = 256
"""Messages a batch holds at most (its pickle some 10 KiB for plain routes)."""
READ_SIZE = 1 << 15
"""Bytes read from the netlink socket at once (as the daemon's own reader)."""
PAIR_READ = 1 << 18
"""Bytes the daemon reads a batch with; a bigger batch is split until it fits."""
PAIR_BUFFER = 4 << 20
"""The socket pair's buffers: batches on their way while the relay queues the rest."""

def encode(items: list[Message]) -> list[bytes]:
    """Return ``items`` as batches of at most :data:`PAIR_READ` bytes each."""
    data = pickle.dumps(
        [tuple(m) if type(m) is RouteMsg else m for m in items], pickle.HIGHEST_PROTOCOL
    )
    if len(data) <= PAIR_READ or len(items) == 1:
        return [data]
    half = len(items) // 2
    return encode(items[:half]) + encode(items[half:])


def decode(data: bytes | memoryview) -> list[Message] | None:
    """Return the messages of one batch (None: the mark of an overrun)."""
    items = pickle.loads(data)
    if items == OVERRUN:
        return None
    new = tuple.__new__
    return [new(RouteMsg, m) if type(m) is tuple else m for m in items]


def relay(netlink: socket.socket, pair: socket.socket) -> None:
    """Read ``netlink`` and hand its messages to ``pair`` until ``pair`` is closed."""
    netlink.setblocking(False)
    pair.setblocking(False)
    shared: rtnetlink.SharedPaths = {}
    queue: collections.deque[bytes] = collections.deque()
    poller = select.poll()
    poller.register(netlink, select.POLLIN)
    poller.register(pair, select.POLLIN)
    writing = False
    while True:
        for fd, events in poller.poll():
            if fd == pair.fileno() and events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                if not _requests(pair, netlink):
                    return
            elif fd == netlink.fileno():
                queue.extend(_read(netlink, shared))
        while queue:
            try:
                pair.send(queue[0])
            except BlockingIOError:
                break
            except (BrokenPipeError, ConnectionResetError):
                return
            queue.popleft()
        if bool(queue) != writing:
            writing = bool(queue)
            poller.modify(pair, select.POLLIN | (select.POLLOUT if writing else 0))


def _requests(pair: socket.socket, netlink: socket.socket) -> bool:
    """Send the daemon's requests on; return False once the daemon is gone."""
    while True:
        try:
            request = pair.recv(READ_SIZE)
        except BlockingIOError:
            return True
        except ConnectionResetError:
            return False
        if not request:
            return False
        try:
            netlink.send(request)
        except OSError as err:
            print(f"vrouter netlink relay: send: {err}", file=sys.stderr)


def _read(netlink: socket.socket, shared: rtnetlink.SharedPaths) -> list[bytes]:
    """Read what the socket holds (up to a few batches); return it encoded."""
    items: list[Message] = []
    batches: list[bytes] = []
    while len(items) < 4 * BATCH:
        try:
            data = netlink.recv(READ_SIZE)
        except BlockingIOError:
            break
        except OSError as err:
            if err.errno != errno.ENOBUFS:
                raise
            batches.extend(_batches(items))
            items = []
            batches.append(pickle.dumps(OVERRUN))
            continue
        items.extend(rtnetlink.parse(data, shared))
    return batches + _batches(items)


def _batches(items: list[Message]) -> list[bytes]:
    return [b for at in range(0, len(items), BATCH) for b in encode(items[at : at + BATCH])]


def pair() -> tuple[socket.socket, socket.socket]:
    """Return a socket pair for the daemon (first) and the relay (second)."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for sock in (mine, theirs):
        for option, force in ((socket.SO_SNDBUF, 32), (socket.SO_RCVBUF, 33)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, PAIR_BUFFER)  # ...BUFFORCE
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, option, PAIR_BUFFER)
    mine.setblocking(False)
    return mine, theirs


def main(argv: list[str]) -> int:
    """Relay netlink descriptor ``argv[0]`` to socket pair descriptor ``argv[1]``."""
    netlink = socket.socket(fileno=int(argv[0]))
    pair_end = socket.socket(fileno=int(argv[1]))
    try:
        relay(netlink, pair_end)
    except KeyboardInterrupt:
        pass
    finally:
        pair_end.close()
        netlink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
