"""``vrouterctl exec VNET -- CMD`` for a caller who is not root: vrouterd starts CMD.

Root enters the mirror's namespace itself (``ip netns exec``).  Anyone else
with the vnet's manage right asks vrouterd (``mirror.exec``, see
:mod:`vrouter.api.execs`), which starts CMD as the caller with the caller's
standard input, output and error, environment and working directory.
This side passes those descriptors, forwards the signals it gets (Ctrl-C
included) to CMD, and exits with CMD's status (128 + N if a signal N ended
it), as ``ssh`` and ``docker exec`` do.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from typing import Any

from vrouter.cli import reach

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2)  # fmt: skip
"""Signals passed on to the program."""


def run(socket_path: str, vnet: str, argv: list[str]) -> int:
    """Run ``argv`` in ``vnet``'s mirror through vrouterd; return its exit status."""
    _, fd = reach.ask(
        socket_path,
        lambda client: client.call_fd(
            "mirror.exec", vnet=vnet, argv=argv, env=dict(os.environ), cwd=os.getcwd()
        ),
    )
    with socket.socket(fileno=fd) as session:
        socket.send_fds(session, [b"stdio"], [0, 1, 2])

        def forward(number: int, _frame: Any) -> None:
            with contextlib.suppress(OSError):
                session.send(json.dumps({"signal": number}).encode())

        for number in FORWARDED:
            signal.signal(number, forward)
        while True:
            data = session.recv(4096)
            if not data:
                print("vrouterctl: exec: vrouterd ended the session", file=sys.stderr)
                return 1
            message = json.loads(data)
            if "exit" in message:
                return int(message["exit"])
            if "signal" in message:
                return 128 + int(message["signal"])
            if "error" in message:
                print(f"vrouterctl: exec: {message['error']}", file=sys.stderr)
                return 1
