"""Tests for route-socket requests (vrouter.transport.routesock): sources and their states."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest

from vrouter.core.vnet import Vnet
from vrouter.daemon.ops import Ops, interface_config
from vrouter.io.driver import Driver
from vrouter.stack import new_tree
from vrouter.transport import routesock
from vrouter.transport.routesock import RouteSocketError

PREFIX = "198.51.100.0/24"


@pytest.fixture
def ops() -> Iterator[Ops]:
    loop = asyncio.new_event_loop()
    try:
        ops = Ops(new_tree(), Driver(loop))
        ops.create_vnet("red")
        ops.create_vnet("blue")
        ops.create_epair(
            "red",
            interface_config(
                "ep0", "epair", [ipaddress.ip_interface("203.0.113.1/30")], peer=("blue", "ep0")
            ),
            "blue",
            interface_config("ep0", "epair", peer=("red", "ep0")),
        )
        ops.add_route("red", ipaddress.ip_network(PREFIX), via=ipaddress.ip_address("203.0.113.2"))
        yield ops
    finally:
        loop.close()


def ask(ops: Ops, **body: Any) -> dict[str, Any]:
    return routesock.request(ops, ops.vnet("red"), body)


def refused(ops: Ops, code: int, **body: Any) -> RouteSocketError:
    with pytest.raises(RouteSocketError) as caught:
        ask(ops, **body)
    assert caught.value.errno == code, caught.value
    return caught.value


def test_an_add_under_a_static_route_is_held_and_says_so(ops: Ops) -> None:
    reply = ask(ops, type="RTM_ADD", prefix=PREFIX, gateway="203.0.113.2", source="rip")
    assert reply["route"]["state"] == "held"
    assert (reply["route"]["source"], reply["route"]["distance"]) == ("rip", 120)
    got = ask(ops, type="RTM_GET", destination="198.51.100.9")["route"]
    assert (got["source"], got["state"]) == ("static", "installed")
    got = ask(ops, type="RTM_GET", prefix=PREFIX, source="rip")["route"]
    assert (got["source"], got["state"]) == ("rip", "held")


def test_an_add_without_a_source_is_the_route_sockets_own(ops: Ops) -> None:
    reply = ask(ops, type="RTM_ADD", prefix="192.0.2.0/24", gateway="203.0.113.2")
    assert reply["route"]["source"] == "routesock"
    assert reply["route"]["state"] == "installed"
    reply = ask(ops, type="RTM_ADD", prefix=PREFIX, gateway="203.0.113.2", source="bgp", distance=1)
    assert reply["route"]["state"] == "held"  # ties with static, which was there first


def test_a_client_cannot_delete_or_change_another_sources_route(ops: Ops) -> None:
    err = refused(ops, errno.ESRCH, type="RTM_DELETE", prefix=PREFIX, source="rip")
    assert "has no rip route to 198.51.100.0/24 (its routes there: static)" in str(err)
    refused(ops, errno.ESRCH, type="RTM_DELETE", prefix=PREFIX)  # routesock's: none
    err = refused(ops, errno.ESRCH, type="RTM_CHANGE", prefix=PREFIX, source="rip")
    assert err.fields == {"state": "refused"}
    assert ops.vnet("red").route.fib.get(ipaddress.ip_network(PREFIX)) is not None


@pytest.mark.parametrize("name", ["static", "connected"])
def test_the_daemons_sources_are_refused(ops: Ops, name: str) -> None:
    err = refused(ops, errno.EPERM, type="RTM_ADD", prefix="192.0.2.0/24", source=name)
    assert err.fields == {"state": "refused"}
    refused(ops, errno.EPERM, type="RTM_DELETE", prefix=PREFIX, source=name)


def test_refusals_say_refused(ops: Ops) -> None:
    add = {"type": "RTM_ADD", "prefix": "192.0.2.0/24", "source": "rip"}
    ask(ops, **add, gateway="203.0.113.2")
    err = refused(ops, errno.EEXIST, **add, gateway="203.0.113.2")
    assert err.fields == {"state": "refused"}
    err = refused(ops, errno.EINVAL, **{**add, "prefix": "10.0.0.0/8"}, gateway="192.0.2.77")
    assert "not on a connected network" in str(err) and err.fields == {"state": "refused"}
    refused(ops, errno.EINVAL, **{**add, "source": "Not A Name"})
    refused(ops, errno.EINVAL, **{**add, "distance": 0})
    refused(ops, errno.EINVAL, **{**add, "distance": [1]})


def test_change_and_delete_of_own_routes_and_the_events(ops: Ops) -> None:
    vnet: Vnet = ops.vnet("red")
    events: list[dict[str, Any]] = []
    vnet.listen(events.append)
    ask(ops, type="RTM_ADD", prefix=PREFIX, gateway="203.0.113.2", source="rip")
    changed = ask(ops, type="RTM_CHANGE", prefix=PREFIX, route_type="blackhole", source="rip")
    assert (changed["route"]["type"], changed["route"]["state"]) == ("blackhole", "held")
    ops.remove_route("red", ipaddress.ip_network(PREFIX))  # the static one: rip's takes over
    assert ask(ops, type="RTM_DELETE", prefix=PREFIX, source="rip")["route"]["source"] == "rip"
    seen = [(e["type"], e["route"]["source"], e["route"].get("state")) for e in events]
    assert seen == [
        ("RTM_ADD", "rip", "held"),
        ("RTM_CHANGE", "rip", "held"),
        ("RTM_DELETE", "static", None),
        ("RTM_CHANGE", "rip", "installed"),
        ("RTM_DELETE", "rip", None),
    ]


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"interface": ["x"]}, "'interface' must be an interface name"),
        ({"interface": {"a": 1}}, "'interface' must be an interface name"),
        ({"source": ["rip"]}, "'source' must be a route source's name"),
        ({"distance": [1]}, "'distance' must be a number 1..255"),
        ({"distance": True}, "'distance' must be a number 1..255"),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_by_name(
    ops: Ops, fields: dict[str, Any], said: str
) -> None:
    err = refused(ops, errno.EINVAL, type="RTM_ADD", prefix="198.51.100.0/24",
                  gateway="203.0.113.2", **fields)  # fmt: skip
    assert said in str(err)
    with pytest.raises(RouteSocketError, match="'source' must be"):
        ask(ops, type="RTM_GET", prefix="198.51.100.0/24", source=["rip"])


def test_a_link_local_prefix_is_never_routed(ops: Ops) -> None:
    err = refused(ops, errno.EINVAL, type="RTM_ADD", prefix="fe80::/64", source="rip")
    assert "link-local" in str(err)


class Later:
    """Collects what ``Session.end`` schedules; ``run()`` fires it (the grace ran out)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, Any]] = []

    def __call__(self, delay: float, callback: Any) -> None:
        self.calls.append((delay, callback))

    def run(self) -> None:
        calls, self.calls = self.calls, []
        for _, callback in calls:
            callback()


def speak(ops: Ops, session: routesock.Session, **body: Any) -> dict[str, Any]:
    return routesock.request(ops, ops.vnet("red"), body, session)


def sources_of(ops: Ops) -> dict[str, str]:
    fib = ops.vnet("red").route.fib
    return {str(r.prefix): r.source.name for r in fib if r.source.name not in ("connected",)}


def test_a_protocols_routes_go_with_its_last_route_socket(ops: Ops) -> None:
    red = ops.vnet("red")
    first, second = routesock.Session(red), routesock.Session(red)
    speak(ops, first, type="RTM_ADD", prefix="192.0.2.0/24", gateway="203.0.113.2", source="rip")
    speak(ops, second, type="RTM_ADD", prefix="198.18.0.0/15", gateway="203.0.113.2", source="rip")
    speak(ops, first, type="RTM_ADD", prefix="198.51.100.128/25", gateway="203.0.113.2")
    later = Later()
    first.end(ops, later)  # another socket still speaks for rip: nothing goes
    assert sources_of(ops)["192.0.2.0/24"] == "rip"
    second.end(ops, later)
    assert later.calls == []  # no grace by default: removed at once
    assert sources_of(ops) == {PREFIX: "static", "198.51.100.128/25": "routesock"}


def test_with_a_grace_a_restarted_daemon_refreshes_and_the_rest_goes(ops: Ops) -> None:
    red = ops.vnet("red")
    ops.set_sysctls("red", {"net.route.client_grace": 30})
    old = routesock.Session(red)
    for prefix in ("192.0.2.0/24", "198.18.0.0/15"):
        speak(ops, old, type="RTM_ADD", prefix=prefix, gateway="203.0.113.2", source="rip")
    later = Later()
    old.end(ops, later)
    assert [delay for delay, _ in later.calls] == [30]
    assert sources_of(ops)["198.18.0.0/15"] == "rip"  # stale, still forwarding
    new = routesock.Session(red)
    reply = speak(
        ops, new, type="RTM_ADD", prefix="192.0.2.0/24", gateway="203.0.113.2", source="rip"
    )
    assert reply["route"]["state"] == "installed"  # a refresh, not EEXIST
    later.run()
    assert sources_of(ops) == {PREFIX: "static", "192.0.2.0/24": "rip"}
    refused(
        ops,
        errno.EEXIST,
        type="RTM_ADD",
        prefix="192.0.2.0/24",
        gateway="203.0.113.2",
        source="rip",
    )


def test_a_grace_that_ends_after_the_vnet_went_touches_nothing(ops: Ops) -> None:
    ops.create_vnet("green")
    green = ops.vnet("green")
    ops.set_sysctls("green", {"net.route.client_grace": 5})
    later = Later()
    routesock.Session(green).end(ops, later)  # spoke for nothing
    assert later.calls == []
    session = routesock.Session(ops.vnet("red"))
    ops.set_sysctls("red", {"net.route.client_grace": 5})
    speak(ops, session, type="RTM_ADD", prefix="192.0.2.0/24", gateway="203.0.113.2", source="bgp")
    session.end(ops, later)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(ops.destroy_vnet("red"))
    finally:
        loop.close()
    later.run()  # no error: the vnet is gone
