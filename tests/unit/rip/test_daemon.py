"""Tests for vrouter.rip.daemon: its config, and what it keeps of the route socket's replies."""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from vrouter.rip.daemon import ConfigProblem, InstanceConfig, Table, apply, load_config
from vrouter.rip.instance import FibOp, Timers
from vrouter.rip.packet import Auth


def _load(tmp_path: Path, text: str) -> list[InstanceConfig]:
    path = tmp_path / "ripd.toml"
    path.write_text('socket = "/tmp/x.sock"\n' + text)
    config = load_config(str(path))
    assert config.control == "/tmp/x.sock"
    assert config.log_format == "text"
    return config.instances


def test_instances_with_timers_and_authentication(tmp_path: Path) -> None:
    red, blue, green = _load(
        tmp_path,
        """
[[instance]]
vnet = "red"
interfaces = ["ep0"]
update = 2
timeout = 6
garbage = 4
auth = "md5"
password = "rip-md5-key"
key_id = 3
auth_length = 16
[[instance]]
vnet = "blue"
family = "inet6"
interfaces = ["ep0", "tap1"]
[[instance]]
vnet = "green"
interfaces = ["ep0"]
auth = "plain"
password = "pw"
""",
    )
    assert (red.vnet, red.family, red.timers) == ("red", 4, Timers(2, 6, 4))
    assert red.auth == Auth("md5", b"rip-md5-key", 3, auth_length=16)
    assert (blue.family, blue.interfaces, blue.auth) == (6, ["ep0", "tap1"], Auth())
    assert green.auth == Auth("plain", b"pw", 1)
    assert Auth("md5", b"x").auth_length == 20  # what BIRD sends, and FRR by default
    assert "pw" not in repr(green)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('auth = "sha"\npassword = "x"', "not none, plain or md5"),
        ('auth = "md5"', "needs a password"),
        ('auth = "md5"\npassword = "seventeen-bytes!!"', "at most 16"),
        ('auth = "plain"\npassword = 7', "password: a string"),
        ('auth = "md5"\npassword = "x"\nkey_id = 256', r"0\.\.255"),
        ('auth = "md5"\npassword = "x"\nkey_id = "1"', "key_id"),
        ('family = "inet6"\nauth = "md5"\npassword = "x"', "RIPng has no authentication"),
        ('auth = "md5"\npassword = "x"\nauth_length = 12', "16 .RFC 2082. or 20"),
        ('auth = "md5"\npassword = "x"\nauth_length = "16"', "auth_length"),
        ('auth = "md5"\npassword = "x"\nauth_length = true', "auth_length"),
        ('auth = "plain"\npassword = "x"\nauth_length = 16', "only for auth = .md5."),
        ('secret = "x"', "unknown keys"),
        ("deep = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
)
def test_bad_instances_are_refused_naming_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigProblem, match=message):
        _load(tmp_path, f'[[instance]]\nvnet = "red"\ninterfaces = ["ep0"]\n{extra}\n')


# -- what the route socket says of each route ----------------------------------------------


class FakeRoutes:
    """A route socket over a dict: prefix -> (source, gateway), and a static route."""

    def __init__(self, static: Iterable[str] = (), refuse: Iterable[str] = ()) -> None:
        self.static = set(static)
        self.refuse = set(refuse)
        self.mine: dict[str, str | None] = {}
        self.calls: list[tuple[str, str]] = []

    def _route(self, prefix: str) -> dict[str, Any]:
        state = "held" if prefix in self.static else "installed"
        return {"prefix": prefix, "source": "rip", "state": state}

    def add(
        self, prefix: str, gateway: str | None = None, interface: str | None = None
    ) -> dict[str, Any]:
        self.calls.append(("add", prefix))
        if prefix in self.refuse:
            raise OSError(errno.EINVAL, "next hop is not on a connected network")
        if prefix in self.mine:
            raise OSError(errno.EEXIST, "a rip route already exists")
        self.mine[prefix] = gateway
        return self._route(prefix)

    def change(
        self, prefix: str, gateway: str | None = None, interface: str | None = None
    ) -> dict[str, Any]:
        self.calls.append(("change", prefix))
        if prefix in self.refuse:
            raise OSError(errno.EINVAL, "next hop is not on a connected network")
        if prefix not in self.mine:
            raise OSError(errno.ESRCH, "no rip route")
        self.mine[prefix] = gateway
        return self._route(prefix)

    def delete(self, prefix: str) -> dict[str, Any]:
        self.calls.append(("delete", prefix))
        if prefix not in self.mine:
            raise OSError(errno.ESRCH, "no rip route")
        del self.mine[prefix]
        return self._route(prefix)


NET_A = ipaddress.ip_network("198.51.100.0/24")
NET_B = ipaddress.ip_network("203.0.113.128/25")
GW = ipaddress.ip_address("203.0.113.2")


def test_a_held_route_is_tracked_and_withdrawn_without_touching_the_static_one() -> None:
    routes = FakeRoutes(static={str(NET_A)})
    table = Table("rip")
    apply("red/rip", routes, table, [FibOp("add", NET_A, GW, "ep0")])
    assert table.states == {NET_A: "held"}
    apply("red/rip", routes, table, [FibOp("delete", NET_A)])
    assert table.states == {} and routes.mine == {}
    assert routes.static == {str(NET_A)}


def test_a_refused_add_is_not_counted_and_its_withdrawal_sends_nothing() -> None:
    routes = FakeRoutes(refuse={str(NET_A)})
    table = Table("rip")
    apply("red/rip", routes, table, [FibOp("add", NET_A, GW, "ep0")])
    assert table.states == {}
    apply("red/rip", routes, table, [FibOp("delete", NET_A)])
    assert routes.calls == [("add", str(NET_A))]
    # A change of a route never taken is an add.
    routes.refuse.clear()
    apply("red/rip", routes, table, [FibOp("change", NET_A, GW, "ep0")])
    assert routes.calls[-1] == ("add", str(NET_A)) and table.states == {NET_A: "installed"}


def test_a_route_left_by_an_earlier_run_is_taken_over() -> None:
    routes = FakeRoutes()
    routes.mine[str(NET_B)] = "203.0.113.9"
    table = Table("rip")
    apply("red/rip", routes, table, [FibOp("add", NET_B, GW, "ep0")])
    assert routes.calls == [("add", str(NET_B)), ("change", str(NET_B))]
    assert routes.mine[str(NET_B)] == str(GW) and table.states == {NET_B: "installed"}


def test_a_refused_change_withdraws_the_old_route() -> None:
    routes = FakeRoutes()
    table = Table("rip")
    apply("red/rip", routes, table, [FibOp("add", NET_A, GW, "ep0")])
    routes.refuse.add(str(NET_A))
    apply("red/rip", routes, table, [FibOp("change", NET_A, GW, "ep1")])
    assert table.states == {} and routes.mine == {}


def test_events_keep_the_table_current() -> None:
    table = Table("rip")
    table.note({"prefix": str(NET_A), "state": "held"})
    ours = {"prefix": str(NET_A), "source": "rip"}
    assert table.event({"type": "RTM_CHANGE", "route": {**ours, "state": "installed"}}) == (
        NET_A,
        "installed",
    )
    assert table.event({"type": "RTM_CHANGE", "route": {**ours, "state": "installed"}}) is None
    static = {"type": "RTM_DELETE", "route": {"prefix": str(NET_A), "source": "static"}}
    assert table.event(static) is None
    assert table.event({"type": "RTM_NEWADDR", "interface": "ep0"}) is None
    assert table.event({"type": "RTM_DELETE", "route": ours}) == (NET_A, "gone")
    assert table.states == {}
