"""Tests for vrouter.api.connection.serve_lines: requests received together are
answered in slices, the loop turning in between."""

from __future__ import annotations

import asyncio
import socket
import time

from vrouter.api import connection
from vrouter.api.connection import Replies, serve_lines


def test_requests_received_together_are_answered_in_slices() -> None:
    count = 60
    busy = 0.002  # each answer takes this long: the whole stream 0.12 s, 24 quanta of 5 ms
    answered: list[int] = []
    turns: list[int] = []  # how many answers had been given each time the loop turned

    async def run() -> None:
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=ours)
        stopped = False

        def tick() -> None:
            turns.append(len(answered))
            if not stopped:
                asyncio.get_running_loop().call_later(0, tick)

        async def respond(line: bytes, replies: Replies) -> None:
            time.sleep(busy)
            answered.append(int(line))
            replies.write(line)

        theirs.sendall(b"".join(b"%d\n" % i for i in range(count)))
        theirs.shutdown(socket.SHUT_WR)
        tick()
        try:
            await asyncio.wait_for(serve_lines(reader, writer, respond), timeout=10)
        finally:
            stopped = True
        theirs.settimeout(10)
        got = b""
        while chunk := theirs.recv(65536):
            got += chunk
        theirs.close()
        assert got == b"".join(b"%d\n" % i for i in range(count))  # every reply, in order

    asyncio.run(run())
    assert answered == list(range(count))
    during = {n for n in turns if 0 < n < count}
    least = count * busy / connection.REQUEST_QUANTUM / 3
    assert len(during) >= least, f"the loop turned after {sorted(during)} answers only"
