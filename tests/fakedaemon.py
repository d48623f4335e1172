"""A stand-in for vrouterd's control socket, for client-side tests (the CLI, completion)."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any


class FakeDaemon:
    """A control socket answering every request with one result, recording the requests."""

    def __init__(self, path: Path, result: Any) -> None:
        self.path = str(path)
        self.result = result
        self.requests: list[dict[str, Any]] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen()
        self.sock.settimeout(10)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for _ in range(8):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as f:
                line = f.readline()
                if line:
                    self.requests.append(json.loads(line))
                    f.write(json.dumps({"ok": True, "result": self.result}).encode() + b"\n")
                    f.flush()

    def close(self) -> None:
        self.sock.close()
