"""Where and how the daemons log: plain text, the journal's priorities, or JSON.

``vrouterd`` and ``vrouter-ripd`` both log to standard error through
:func:`setup`, in one of two formats:

- ``text`` (the default): ``TIME LEVEL LOGGER: MESSAGE``, one line each.
- ``json``: one JSON object per line (``time``, ``level``, ``logger``,
  ``message``, and ``worker`` and ``exception`` when there are), for
  container log collectors.

Under systemd, when standard error is the journal's stream (``JOURNAL_STREAM``
names its device and inode, as sd-daemon(3) describes), every line starts
with the record's syslog priority, ``<3>`` for an error to ``<7>`` for
debug, so ``journalctl -p warning`` finds warnings and errors; the text
format then leaves out the time, which the journal records itself.  A
record of several lines (a traceback) carries the prefix on each, since the
journal makes an entry of every line.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
from typing import TextIO

FORMATS = ("text", "json")
"""Values of ``log_format`` and ``--log-format``."""
DEFAULT_FORMAT = "text"

PRIORITIES = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)
"""Syslog priority of a record at or above each level; below INFO, 7 (debug)."""
DEBUG_PRIORITY = 7


def priority(levelno: int) -> int:
    """Return the syslog priority (``LOG_ERR`` = 3 …) of a record at ``levelno``."""
    for level, value in PRIORITIES:
        if levelno >= level:
            return value
    return DEBUG_PRIORITY


def journal_stream(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """Return whether ``stream`` is the journal's stream (``JOURNAL_STREAM`` is its
    ``DEVICE:INODE``), not merely a child of a service with the variable inherited."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (ValueError, OSError):
        return False


class TextFormatter(logging.Formatter):
    """``TIME LEVEL[ workerN] LOGGER: MESSAGE``; for the journal, ``<N>`` and no time."""

    def __init__(self, where: str = "", journal: bool = False) -> None:
        time = "" if journal else "%(asctime)s "
        super().__init__(f"{time}%(levelname)s{where} %(name)s: %(message)s")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return _prefixed(text, record) if self.journal else text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; for the journal, behind ``<N>``."""

    def __init__(self, worker: int | None = None, journal: bool = False) -> None:
        super().__init__()
        self.worker = worker
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, object] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.worker is not None:
            entry["worker"] = self.worker
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        text = json.dumps(entry, ensure_ascii=False)
        return _prefixed(text, record) if self.journal else text


def _prefixed(text: str, record: logging.LogRecord) -> str:
    prefix = f"<{priority(record.levelno)}>"
    return "\n".join(prefix + line for line in text.split("\n"))


def formatter(fmt: str, stream: TextIO, worker: int | None = None) -> logging.Formatter:
    """Return the formatter for ``fmt`` (``text``/``json``) writing to ``stream``."""
    journal = journal_stream(stream)
    if fmt == "json":
        return JsonFormatter(worker, journal)
    return TextFormatter(f" worker{worker}" if worker is not None else "", journal)


def setup(level: str, fmt: str = DEFAULT_FORMAT, worker: int | None = None) -> None:
    """Send every logger's records at ``level`` and above to standard error, as ``fmt``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt, sys.stderr, worker))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
