"""Tests for vrouter.daemon.logs: text, journal priorities and JSON lines."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from vrouter.daemon import logs
from vrouter.daemon.config import ConfigError, parse
from vrouter.rip.daemon import ConfigProblem, load_config


def _record(level: int, message: str, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad value")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("vrouter.test", level, __file__, 1, message, (), exc_info)
    record.created = 1_700_000_000.25
    return record


@pytest.fixture
def stderr_file(tmp_path: Path) -> Iterator[TextIO]:
    with (tmp_path / "stderr").open("w") as f:
        yield f


def _journal_of(stream: TextIO) -> dict[str, str]:
    st = os.fstat(stream.fileno())
    return {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.CRITICAL, 2),
        (logging.ERROR, 3),
        (logging.WARNING, 4),
        (logging.INFO, 6),
        (logging.DEBUG, 7),
        (logging.WARNING + 5, 4),
        (logging.INFO - 5, 7),
    ],
)
def test_priority_of_each_level(level: int, expected: int) -> None:
    assert logs.priority(level) == expected


def test_text_has_the_time_level_and_logger() -> None:
    line = logs.TextFormatter().format(_record(logging.WARNING, "disk full"))
    time = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(time + r" WARNING vrouter\.test: disk full", line)


def test_text_names_the_worker() -> None:
    line = logs.TextFormatter(" worker1").format(_record(logging.INFO, "ready"))
    assert line.endswith(" INFO worker1 vrouter.test: ready")


def test_journal_text_has_the_priority_and_no_time() -> None:
    formatter = logs.TextFormatter(journal=True)
    assert formatter.format(_record(logging.ERROR, "boom")) == "<3>ERROR vrouter.test: boom"
    assert formatter.format(_record(logging.DEBUG, "x")) == "<7>DEBUG vrouter.test: x"


def test_journal_prefixes_every_line_of_a_traceback() -> None:
    text = logs.TextFormatter(journal=True).format(_record(logging.ERROR, "two\nlines", exc=True))
    lines = text.split("\n")
    assert len(lines) > 3
    assert all(line.startswith("<3>") for line in lines), lines
    assert lines[:2] == ["<3>ERROR vrouter.test: two", "<3>lines"]
    assert lines[-1] == "<3>ValueError: bad value"


def test_json_is_one_object_per_line() -> None:
    text = logs.JsonFormatter().format(_record(logging.WARNING, "a\nb"))
    assert "\n" not in text
    assert json.loads(text) == {
        "time": "2023-11-14T22:13:20.250Z",
        "level": "warning",
        "logger": "vrouter.test",
        "message": "a\nb",
    }


def test_json_carries_the_worker_and_the_exception() -> None:
    entry = json.loads(logs.JsonFormatter(worker=2).format(_record(logging.ERROR, "x", exc=True)))
    assert entry["worker"] == 2
    assert entry["exception"].startswith("Traceback")
    assert entry["exception"].endswith("ValueError: bad value")


def test_json_for_the_journal_has_the_priority_first() -> None:
    text = logs.JsonFormatter(journal=True).format(_record(logging.ERROR, "x"))
    assert text.startswith("<3>{")
    assert json.loads(text[3:])["level"] == "error"


def test_journal_stream_is_recognised_by_device_and_inode(stderr_file: TextIO) -> None:
    assert logs.journal_stream(stderr_file, _journal_of(stderr_file))
    st = os.fstat(stderr_file.fileno())
    assert not logs.journal_stream(stderr_file, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
    assert not logs.journal_stream(stderr_file, {})
    assert not logs.journal_stream(stderr_file, {"JOURNAL_STREAM": "garbage"})


def test_formatter_follows_the_stream_and_the_format(
    stderr_file: TextIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _record(logging.WARNING, "hot")
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert logs.formatter("text", stderr_file).format(record).endswith(" WARNING vrouter.test: hot")
    assert json.loads(logs.formatter("json", stderr_file, worker=0).format(record))["worker"] == 0
    monkeypatch.setenv("JOURNAL_STREAM", _journal_of(stderr_file)["JOURNAL_STREAM"])
    assert logs.formatter("text", stderr_file, 1).format(record) == (
        "<4>WARNING worker1 vrouter.test: hot"
    )
    assert logs.formatter("json", stderr_file).format(record).startswith("<4>{")


def test_config_log_format() -> None:
    assert parse("[daemon]\n", "t.toml").daemon.log_format == "text"
    assert parse('[daemon]\nlog_format = "json"\n', "t.toml").daemon.log_format == "json"
    with pytest.raises(ConfigError) as info:
        parse('[daemon]\nlog_format = "xml"\n', "t.toml")
    assert "daemon.log_format: 'xml' is not one of: text, json" in str(info.value)


def test_ripd_config_log_format(tmp_path: Path) -> None:
    path = tmp_path / "ripd.toml"
    instance = '[[instance]]\nvnet = "red"\ninterfaces = ["ep0"]\n'
    path.write_text('log_format = "json"\n' + instance)
    assert load_config(str(path)).log_format == "json"
    path.write_text('log_format = "xml"\n' + instance)
    with pytest.raises(ConfigProblem, match="log_format: 'xml' is not one of: text, json"):
        load_config(str(path))
