"""Key paths, TOML type names and the typed reader shared by the config and firewall parsers."""

from __future__ import annotations

import datetime
import re
import tomllib
from pathlib import Path

import pytest

from vrouter.core import tomlkeys
from vrouter.core.tomlkeys import TomlReader, join, type_name


@pytest.mark.parametrize(
    ("key", "name", "path"),
    [
        ("", "daemon", "daemon"),
        ("vnets", "red", "vnets.red"),
        ("vnets", "lab/r1", "vnets.lab/r1"),
        ("interfaces", "eth0.100", 'interfaces."eth0.100"'),
        ("t", 'a"b', 't."a\\"b"'),
        ("t", "a\\b", 't."a\\\\b"'),
        ("t", "", 't.""'),
    ],
)
def test_join_quotes_names_that_are_not_plain(key: str, name: str, path: str) -> None:
    assert join(key, name) == path


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (True, "boolean"),
        (1, "integer"),
        (1.5, "float"),
        ("x", "string"),
        ({}, "table"),
        ([], "array"),
        (datetime.datetime(2024, 1, 1, 12, 0), "datetime"),
        (datetime.date(2024, 1, 1), "date"),
        (datetime.time(12, 0), "time"),
        (None, "NoneType"),
    ],
)
def test_type_name_is_the_toml_name(value: object, name: str) -> None:
    assert type_name(value) == name


DOC = tomllib.loads(
    """
name = "r1"
count = 3
ratio = 0.5
on = true
flag = 1
level = "loud"
sub = { a = 1 }
"""
)


def test_values_of_the_right_type_are_returned_and_nothing_is_recorded() -> None:
    reader = TomlReader()
    assert reader.string(DOC, "name", "top") == "r1"
    assert reader.integer(DOC, "count", "top") == 3
    assert reader.number(DOC, "count", "top") == 3.0
    assert reader.number(DOC, "ratio", "top") == 0.5
    assert reader.boolean(DOC, "on", "top") is True
    assert reader.table(DOC, "sub", "top") == {"a": 1}
    assert reader.choice(DOC, "name", "top", ("r1", "r2")) == "r1"
    assert reader.problems == []


def test_absent_values_are_none_and_not_a_problem() -> None:
    reader = TomlReader()
    for read in (reader.string, reader.integer, reader.number, reader.boolean, reader.table):
        assert read(DOC, "missing", "top") is None
    assert reader.choice(DOC, "missing", "top", ("a",)) is None
    assert reader.problems == []


def test_wrong_types_are_recorded_with_their_key_path_and_reading_goes_on() -> None:
    reader = TomlReader()
    assert reader.string(DOC, "count", "top") is None
    assert reader.integer(DOC, "on", "top") is None  # a boolean is not an integer
    assert reader.number(DOC, "on", "top") is None
    assert reader.boolean(DOC, "flag", "top") is None
    assert reader.table(DOC, "name", "") is None
    assert reader.choice(DOC, "level", "top", ("debug", "info")) is None
    assert reader.problems == [
        ("top.count", "expected a string, got integer"),
        ("top.on", "expected an integer, got boolean"),
        ("top.on", "expected a number, got boolean"),
        ("top.flag", "expected a boolean (true or false), got integer"),
        ("name", "expected a table, got string"),
        ("top.level", "'loud' is not one of: debug, info"),
    ]


def test_wrong_type_appends_a_hint() -> None:
    reader = TomlReader()
    reader.wrong_type("a.b", "an array of strings", "x", '; write b = ["x"]')
    assert reader.problems == [("a.b", 'expected an array of strings, got string; write b = ["x"]')]


def test_check_keys_reports_unknown_then_missing_keys() -> None:
    reader = TomlReader()
    reader.check_keys({"to": "x", "bad": 1, "odd.name": 2}, "routes[0]", ("to", "via"), ("via",))
    assert reader.problems == [
        ("routes[0].bad", "unknown key 'bad' (allowed: to, via)"),
        ('routes[0]."odd.name"', "unknown key 'odd.name' (allowed: to, via)"),
        ("routes[0].via", "missing required key 'via'"),
    ]


def test_check_keys_hint_adds_to_the_reason_of_an_unknown_key() -> None:
    reader = TomlReader()
    reader.check_keys(
        {"r1": {}, "x": 1},
        "vnets.lab",
        ("forwarding",),
        hint=lambda name, value: f"; {name} is a table" if isinstance(value, dict) else "",
    )
    assert reader.problems == [
        ("vnets.lab.r1", "unknown key 'r1' (allowed: forwarding); r1 is a table"),
        ("vnets.lab.x", "unknown key 'x' (allowed: forwarding)"),
    ]


ROOT = Path(__file__).resolve().parents[3]


def _documents() -> list[tuple[str, str]]:
    """The repository's example configs and every TOML block of its docs."""
    found = [(p.name, p.read_text()) for p in sorted((ROOT / "configs").glob("*.toml"))]
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for i, block in enumerate(re.findall(r"```toml\n(.*?)```", doc.read_text(), re.S)):
            found.append((f"{doc.name}[{i}]", block))
    return found


TYPES = """
offset = 1979-05-27T07:32:00-08:00
utc = 1979-05-27T07:32:00Z
fraction = 1979-05-27T00:32:00.999999+07:00
local = 1979-05-27T07:32:00
day = 1979-05-27
clock = 07:32:00.5
ints = [0, -17, 1_000, 0xdead_beef, 0o755, 0b1101, 9223372036854775807]
floats = [1.0, -0.01, 5e+22, 6.626e-34, 224_617.445_991, inf, -inf]
mixed = [1, 1.0, "1", true]
inline = { a = 1, b = { c = [1, 2], d = "x" }, "e.f" = 'raw\\n' }
multi = \"\"\"
one \\
  two\\tthree \\u00e9 \\U0001F600\"\"\"
literal = '''C:\\path'''
[[rules]]
to = "192.0.2.0/24"
[[rules]]
to = "2001:db8::/32"
"""


def _same(a: object, b: object) -> bool:
    """Equal values of the same types all the way down (1 is not 1.0 nor True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime.datetime) and isinstance(b, datetime.datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return a == b


FRAGMENTS = {"config.md[0]"}
"""Doc blocks that are not whole TOML 1.0 documents (config.md shows an inline table on two
lines, saying it is one line in TOML); the rest must read as tomllib reads them."""


def test_rtoml_is_installed() -> None:
    """rtoml is a dependency: the tests below read through it, not the fallback."""
    assert tomlkeys.rtoml is not None


@pytest.mark.parametrize(("name", "text"), [*_documents(), ("types", TYPES)])
def test_rtoml_reads_each_example_as_tomllib_does(name: str, text: str) -> None:
    try:
        expected = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        assert name in FRAGMENTS
        return
    assert name not in FRAGMENTS
    assert _same(tomlkeys.loads(text), expected), name


def test_rtoml_reads_toml_1_1_inline_tables_that_tomllib_refuses() -> None:
    """A known difference (tomlkeys.loads says so): rtoml reads TOML 1.1, tomllib 1.0."""
    text = 'host = { netns = "h1",\n         gateway = "192.0.2.1" }'
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(text)
    assert tomlkeys.loads(text) == {"host": {"netns": "h1", "gateway": "192.0.2.1"}}


def test_the_examples_are_found() -> None:
    names = [name for name, _ in _documents()]
    assert "demo.toml" in names and any(n.startswith("config.md[") for n in names)


@pytest.mark.parametrize(
    "text",
    ['a = 1\na = 2', 'x = [1,', "t = 1979-13-01", 'k = "\\q"', "[a]\n[a]", "n = 00", "s = 'a"],
)
def test_a_text_that_is_not_toml_gets_tomllibs_message(text: str) -> None:
    with pytest.raises(tomllib.TOMLDecodeError) as expected:
        tomllib.loads(text)
    with pytest.raises(tomllib.TOMLDecodeError) as got:
        tomlkeys.loads(text)
    assert str(got.value) == str(expected.value)


def test_without_rtoml_tomllib_reads_every_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tomlkeys, "rtoml", None)
    assert _same(tomlkeys.loads(TYPES), tomllib.loads(TYPES))
