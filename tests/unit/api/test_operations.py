"""The operations table: every record is whole, and the server, front and CLI follow it."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from vrouter.api.operations import TABLE, Route, lookup
from vrouter.api.protocol import ApiError
from vrouter.api.schema import Arg, check
from vrouter.api.server import HANDLERS
from vrouter.daemon.front import Front


def test_every_operation_has_a_handler_that_runs_the_way_the_table_says() -> None:
    assert set(HANDLERS) == set(TABLE)
    for name, op in TABLE.items():
        handler = HANDLERS[name]
        assert list(inspect.signature(handler).parameters) == ["host", "args"], name
        assert asyncio.iscoroutinefunction(handler) == (op.runs != "call"), name


def test_front_handlers_exist_and_route_keys_are_arguments() -> None:
    for name, op in TABLE.items():
        if op.front is not None:
            assert callable(getattr(Front, op.front, None)), f"{name}: Front.{op.front}"
        declared = {arg.name for arg in op.args}
        assert set(op.route.keys) <= declared, name


def test_every_change_has_a_rule_and_only_views_are_open() -> None:
    views = {name for name, op in TABLE.items() if op.read_only}
    assert views == {
        "status", "module.list", "vnet.list", "vnet.show", "vnet.tree", "ifconfig",
        "route.show", "arp.show", "ndp.show", "netstat", "sockstat", "sysctl.get",
        "firewall.show", "firewall.states", "bridge.show", "bridge.fdb", "mirror.show",
        "vxlan.show",
        "rtadv.show",
        "dhcp.leases",
    }  # fmt: skip
    for name in views:
        assert TABLE[name].runs in ("call", "locked"), name


def test_a_change_runs_under_the_lock_unless_it_waits_for_the_network() -> None:
    for name, op in TABLE.items():
        if op.handler.startswith("manage.") and name != "reload":
            assert op.runs == "locked", name
    assert TABLE["tcp.connect"].runs == "await"


def test_lookup_names_the_known_operations() -> None:
    assert lookup("route.add") is TABLE["route.add"]
    with pytest.raises(ApiError, match=r"unknown op 'route\.ad'; known: .*route\.add"):
        lookup("route.ad")


def test_a_route_kind_and_a_front_route_must_be_consistent() -> None:
    with pytest.raises(ValueError, match="unknown route kind"):
        Route("sideways")


# -- schemas -------------------------------------------------------------------------------

SCHEMA = (
    Arg("vnet", "text", "a vnet name", required=True),
    Arg("mtu", "int", "the MTU", default=1500, low=68, high=65535),
    Arg("family", "text", "inet or inet6", default="inet", choices=("inet", "inet6")),
    Arg("names", "texts", "names", default=[]),
    Arg("vids", "ints", "VLAN IDs", low=1, high=4094),
    Arg("settings", "scalars", "name -> value"),
    Arg("timeout", "number", "seconds", low=0.5),
    Arg("flag", "bool", "a flag", default=False),
    Arg("filter", "str", "an expression", default=""),
)


def test_a_checked_request_is_a_new_dict_with_defaults() -> None:
    args = {"vnet": "red", "_privileged": True}
    checked = check("op", SCHEMA, args)
    assert checked == {
        "vnet": "red",
        "_privileged": True,
        "mtu": 1500,
        "family": "inet",
        "names": [],
        "flag": False,
        "filter": "",
    }
    assert args == {"vnet": "red", "_privileged": True}
    checked["names"].append("x")
    assert check("op", SCHEMA, {"vnet": "red"})["names"] == [], "defaults are not shared"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({}, "op needs 'vnet' (a vnet name)"),
        ({"vnet": ""}, "'vnet' must be a non-empty string"),
        ({"vnet": ["red"]}, "'vnet' must be a non-empty string"),
        ({"vnet": "r", "mtu": 1500.0}, "'mtu' must be 68..65535"),
        ({"vnet": "r", "mtu": True}, "'mtu' must be 68..65535"),
        ({"vnet": "r", "mtu": 67}, "'mtu' must be 68..65535"),
        ({"vnet": "r", "family": [4]}, "'family' must be inet or inet6"),
        ({"vnet": "r", "family": "inet4"}, "'family' must be inet or inet6"),
        ({"vnet": "r", "names": "a"}, "'names' must be a list of strings"),
        ({"vnet": "r", "names": [["a"]]}, "'names' must be a list of strings"),
        ({"vnet": "r", "vids": [1, 4095]}, "'vids' must be a list of integers in 1..4094"),
        ({"vnet": "r", "vids": [True]}, "'vids' must be a list of integers in 1..4094"),
        ({"vnet": "r", "vids": 5}, "'vids' must be a list of integers in 1..4094"),
        ({"vnet": "r", "settings": {"a": [1]}}, "'settings' must be an object of names"),
        ({"vnet": "r", "timeout": 0.1}, "'timeout' must be 0.5.."),
        ({"vnet": "r", "flag": 1}, "'flag' must be true or false"),
        ({"vnet": "r", "filter": None, "extra": 1}, "op takes no argument 'extra'"),
    ],
)
def test_a_bad_argument_is_named_with_what_it_must_be(args: dict[str, object], error: str) -> None:
    with pytest.raises(ApiError) as caught:
        check("op", SCHEMA, args)
    assert str(caught.value).startswith(error), caught.value


def test_numbers_in_range_and_empty_strings_where_allowed_pass() -> None:
    checked = check(
        "op", SCHEMA, {"vnet": "r", "mtu": 68, "timeout": 2, "filter": "", "settings": {"a": 1}}
    )
    assert (checked["mtu"], checked["timeout"], checked["settings"]) == (68, 2, {"a": 1})


def test_capture_snaplen_bound_is_the_capture_modules() -> None:
    from vrouter.link import capture

    snaplen = next(a for a in TABLE["capture"].args if a.name == "snaplen")
    assert snaplen.high == capture.SNAPLEN_MAX == snaplen.default
