"""Key paths, TOML type names and the typed reader shared by the config and firewall parsers."""

from __future__ import annotations

import datetime
import tomllib

import pytest

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
