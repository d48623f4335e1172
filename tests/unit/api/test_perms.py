"""Tests for permissions: principals, inherited rights, and the control server's checks.

Tables first (principal parsing and matching, the rights a policy gives on
each vnet), then the rule of every control op as the server applies it to a
caller, then the pieces that touch the OS: SO_PEERCRED on a real socket pair
and the socket file's mode.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vrouter.api.connection import peer_cred
from vrouter.api.operations import TABLE
from vrouter.api.protocol import ApiError
from vrouter.api.server import ControlServer
from vrouter.core import perms
from vrouter.core.perms import Cred, Grants, Policy, Principal, PrincipalError, parse_principal
from vrouter.daemon.config import ConfigError, parse
from vrouter.daemon.ops import Ops, interface_config
from vrouter.io.driver import Driver
from vrouter.stack import new_tree

ALICE = Cred(pid=4242, uid=1000, gid=1000, groups=frozenset({100, 27}))
BOB = Cred(pid=4343, uid=1001, gid=1001)
CAROL = Cred(pid=4444, uid=1002, gid=100)
NOBODY = Cred(pid=4545, uid=65534, gid=65534)
ROOT = Cred(pid=1, uid=0, gid=0)


def uid(n: int) -> Principal:
    return Principal("uid", n, f"uid:{n}")


def gid(n: int) -> Principal:
    return Principal("gid", n, f"gid:{n}")


# -- principals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "ident"),
    [
        ("uid:1000", "uid", 1000),
        ("gid:100", "gid", 100),
        ("user:root", "uid", 0),
        ("group:root", "gid", 0),
        ("user:nobody", "uid", 65534),
        ("uid:0", "uid", 0),
    ],
)
def test_principals_parse_and_names_resolve(text: str, kind: str, ident: int) -> None:
    principal = parse_principal(text)
    assert (principal.kind, principal.id, principal.text) == (kind, ident, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1000", "is not a principal"),
        ("uid:", "is not a principal"),
        ("pid:5", "is not a principal"),
        ("uid:alice", "uid must be a number"),
        ("gid:-1", "gid must be a number"),
        ("uid:4294967296", "uid must be a number"),
        ("user:no-such-user-here", "no user named 'no-such-user-here' on this system"),
        ("group:no-such-group-here", "no group named"),
    ],
)
def test_bad_principals_say_why(text: str, message: str) -> None:
    with pytest.raises(PrincipalError, match=message):
        parse_principal(text)


@pytest.mark.parametrize(
    ("principal", "cred", "matches"),
    [
        (uid(1000), ALICE, True),
        (uid(1000), BOB, False),
        (gid(1000), ALICE, True),  # primary group
        (gid(100), ALICE, True),  # supplementary group (SO_PEERGROUPS)
        (gid(100), CAROL, True),
        (gid(100), BOB, False),
        (gid(27), CAROL, False),
    ],
)
def test_principal_matching(principal: Principal, cred: Cred, matches: bool) -> None:
    assert principal.matches(cred) is matches


# -- the policy ---------------------------------------------------------------------------

POLICY = Policy(
    admins=(uid(1001),),
    grants={
        "blue": Grants(manage=(uid(1000),)),
        "lab": Grants(manage=(gid(100),), sockets=(uid(65534),)),
        "lab/r1": Grants(manage=(uid(65534),)),
        "red": Grants(sockets=(uid(1000),)),
    },
)


@pytest.mark.parametrize(
    ("cred", "vnet", "manage", "sockets"),
    [
        # root and the daemon's own uid: everything, everywhere
        (ROOT, "red", True, True),
        (ROOT, "nowhere", True, True),
        # a grant covers the vnet and its descendants, never its parent or siblings
        (ALICE, "blue", True, True),
        (ALICE, "blue/kid", True, True),
        (ALICE, "red", False, True),
        (ALICE, "lab", True, True),  # by group 100
        (NOBODY, "lab", False, True),
        (NOBODY, "lab/r1", True, True),
        (NOBODY, "lab/r1/x", True, True),
        (NOBODY, "lab/r2", False, True),
        (NOBODY, "blue", False, False),
        (NOBODY, "red", False, False),
        # daemon admins manage every vnet
        (BOB, "red", True, True),
        (BOB, "lab/r1/x", True, True),
        (CAROL, "lab/r2", True, True),
        (CAROL, "blue", False, False),
    ],
)
def test_rights_are_the_union_up_the_tree(
    cred: Cred, vnet: str, manage: bool, sockets: bool
) -> None:
    assert POLICY.may_manage(vnet, cred) is manage
    assert POLICY.may_open_sockets(vnet, cred) is sockets


@pytest.mark.parametrize(
    ("cred", "vnet", "allowed"),
    [
        (ROOT, "blue", True),
        (BOB, "blue", True),  # admin: top-level vnets
        (ALICE, "blue", False),  # blue's manager may not change blue's own limits
        (ALICE, "blue/kid", True),  # but its children's
        (NOBODY, "lab/r1", False),
        (NOBODY, "lab/r1/x", True),
        (CAROL, "lab/r1", True),
    ],
)
def test_limits_are_set_by_whoever_manages_the_parent(cred: Cred, vnet: str, allowed: bool) -> None:
    assert POLICY.may_set_limits(vnet, cred) is allowed


def test_admins_and_non_root() -> None:
    assert POLICY.is_admin(BOB) and POLICY.is_admin(ROOT)
    assert not POLICY.is_admin(ALICE)
    assert POLICY.non_root()
    assert not Policy().non_root()
    assert not Policy(admins=(uid(0),), grants={"a": Grants(manage=(uid(0),))}).non_root()
    assert Policy(grants={"a": Grants(sockets=(gid(0),))}).non_root(), "gid 0 is not root"


def test_vnets_carry_their_rights_for_the_socket_service() -> None:
    tree = new_tree()
    lab = tree.create("lab")
    assert not perms.may_open_sockets(lab, NOBODY)
    tree.set_policy(POLICY)
    r1 = tree.create("lab/r1")
    assert perms.may_open_sockets(lab, NOBODY) and not perms.may_manage(lab, NOBODY)
    assert perms.may_manage(r1, NOBODY) and perms.may_bind_privileged(r1, NOBODY)
    assert not perms.may_bind_privileged(lab, NOBODY), "sockets alone: no port below 1024"
    assert perms.may_bind_privileged(lab, ROOT)
    tree.set_policy(Policy())
    assert not perms.may_open_sockets(r1, NOBODY)


def test_the_caller_context_defaults_to_root() -> None:
    assert perms.caller() == perms.ROOT
    token = perms.set_caller(ALICE)
    try:
        assert perms.caller() is ALICE
    finally:
        perms.reset_caller(token)
    assert perms.caller() == perms.ROOT


# -- config -------------------------------------------------------------------------------

CONFIG = """
[daemon]
control_socket = "/run/t/control.sock"
state_dir = "/run/t"
admins = ["uid:1001", "group:root"]

[vnets.blue.permissions]
manage = ["uid:1000"]
sockets = ["user:nobody", "uid:1000"]

[vnets.red]
"""


def test_config_permissions_and_admins() -> None:
    config = parse(CONFIG, "t.toml")
    assert [str(p) for p in config.daemon.admins] == ["uid:1001", "group:root"]
    blue = config.vnets[0]
    assert blue.permissions == Grants(
        manage=(uid(1000),), sockets=(Principal("uid", 65534, "user:nobody"), uid(1000))
    )
    policy = config.policy()
    assert policy.may_manage("blue", ALICE) and not policy.may_manage("red", ALICE)
    assert policy.is_admin(Cred(1, 5000, 5000, frozenset({0}))), "group:root"
    assert "red" not in policy.grants


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ('manage = ["uid:1000"]', 'manage = ["alice"]'),
            "t.toml: vnets.blue.permissions.manage[0]: 'alice' is not a principal; "
            "write uid:N, gid:N, user:NAME or group:NAME",
        ),
        (
            ('manage = ["uid:1000"]', 'manage = "uid:1000"'),
            "t.toml: vnets.blue.permissions.manage: expected an array of strings, got string; "
            'write manage = ["uid:1000"]',
        ),
        (
            ('manage = ["uid:1000"]', 'manage = ["uid:1000"]\nmonitor = ["uid:1"]'),
            "t.toml: vnets.blue.permissions.monitor: unknown key 'monitor' (allowed: manage, "
            "sockets)",
        ),
        (
            ('admins = ["uid:1001", "group:root"]', 'admins = ["user:no-such-user-here"]'),
            "t.toml: daemon.admins[0]: 'user:no-such-user-here': no user named",
        ),
    ],
)
def test_config_permission_problems(edit: tuple[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(CONFIG.replace(*edit), "t.toml")
    assert any(str(p).startswith(expected) for p in info.value.problems), info.value.problems


# -- the control server -------------------------------------------------------------------


@pytest.fixture
def loop() -> Any:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture
def server(loop: asyncio.AbstractEventLoop) -> ControlServer:
    """A control server over red, blue and blue/kid; uid 1000 may manage blue."""
    tree = new_tree()
    ops = Ops(tree, Driver(loop))
    for name in ("red", "blue", "blue/kid"):
        ops.create_vnet(name)
    ops.create_epair(
        "red",
        interface_config("x0", "epair", peer=("blue", "x0")),
        "blue",
        interface_config("x0", "epair", peer=("red", "x0")),
    )
    ops.create_epair(
        "blue",
        interface_config("e0", "epair", peer=("blue/kid", "e0")),
        "blue/kid",
        interface_config("e0", "epair", peer=("blue", "e0")),
    )
    config = parse(
        CONFIG.replace('admins = ["uid:1001", "group:root"]', 'admins = ["uid:1001"]'), "t.toml"
    )
    daemon = SimpleNamespace(tree=tree, ops=ops, driver=ops.driver, config=config)
    daemon.lock = asyncio.Lock()
    srv = ControlServer(daemon)  # type: ignore[arg-type]
    srv.follow_policy()
    return srv


# Every changing op, with arguments aimed at red (forbidden to uid 1000) and
# at blue (allowed); None: there is no "allowed" form for a non-admin.
MUTATING: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
    "vnet.create": ({"name": "red/kid"}, {"name": "blue/new"}),
    "vnet.destroy": ({"name": "red"}, {"name": "blue/kid"}),
    "tap.create": ({"vnet": "red", "interface": "t0"}, {"vnet": "blue", "interface": "t0"}),
    "epair.create": ({"a": "red:p0", "b": "blue:p0"}, {"a": "blue:p1", "b": "blue/kid:p1"}),
    "bridge.create": ({"vnet": "red", "interface": "br0"}, {"vnet": "blue", "interface": "br0"}),
    "bridge.port.add": (
        {"vnet": "red", "bridge": "br0", "interface": "x0"},
        {"vnet": "blue", "bridge": "br0", "interface": "x0"},
    ),
    "bridge.port.del": (
        {"vnet": "red", "bridge": "br0", "interface": "x0"},
        {"vnet": "blue", "bridge": "br0", "interface": "x0"},
    ),
    "bridge.fdb.add": (
        {"vnet": "red", "mac": "02:00:00:00:00:0a", "port": "x0"},
        {"vnet": "blue", "mac": "02:00:00:00:00:0a", "port": "x0"},
    ),
    "bridge.stp": (
        {"vnet": "red", "bridge": "br0", "stp": True},
        {"vnet": "blue", "bridge": "br0", "stp": True},
    ),
    "bridge.port.stp": (
        {"vnet": "red", "bridge": "br0", "interface": "x0", "path_cost": 10},
        {"vnet": "blue", "bridge": "br0", "interface": "x0", "path_cost": 10},
    ),
    "bridge.fdb.del": (
        {"vnet": "red", "mac": "02:00:00:00:00:0a", "port": "x0"},
        {"vnet": "blue", "mac": "02:00:00:00:00:0a", "port": "x0"},
    ),
    "vlan.create": (
        {"vnet": "red", "parent": "x0", "vid": 5},
        {"vnet": "blue", "parent": "x0", "vid": 5},
    ),
    "vxlan.create": (
        {"vnet": "red", "interface": "vx0", "vni": 1, "local": "127.0.0.1"},
        {"vnet": "blue", "interface": "vx0", "vni": 1, "local": "127.0.0.1"},
    ),
    "interface.move": (
        {"vnet": "blue", "interface": "x0", "to": "red"},
        {"vnet": "blue", "interface": "e0", "to": "blue/kid"},
    ),
    "interface.destroy": (
        {"vnet": "blue", "interface": "x0"},  # the other end is in red
        {"vnet": "blue", "interface": "e0"},
    ),
    "address.add": (
        {"vnet": "red", "interface": "x0", "address": "10.0.0.1/30"},
        {"vnet": "blue", "interface": "x0", "address": "10.0.0.2/30"},
    ),
    "address.del": (
        {"vnet": "red", "interface": "x0", "address": "10.0.0.1/30"},
        {"vnet": "blue", "interface": "x0", "address": "10.0.0.2/30"},
    ),
    "route.add": (
        {"vnet": "red", "prefix": "192.0.2.0/24", "type": "blackhole"},
        {"vnet": "blue", "prefix": "192.0.2.0/24", "type": "blackhole"},
    ),
    "route.del": (
        {"vnet": "red", "prefix": "192.0.2.0/24"},
        {"vnet": "blue", "prefix": "192.0.2.0/24"},
    ),
    "sysctl.set": (
        {"vnet": "red", "settings": {"net.inet.ip.ttl": 9}},
        {"vnet": "blue", "settings": {"net.inet.ip.ttl": 9}},
    ),
    "firewall.load": ({"vnet": "red", "text": ""}, {"vnet": "blue", "text": ""}),
    "firewall.flush": ({"vnet": "red"}, {"vnet": "blue"}),
    "capture": ({"vnet": "red", "interface": "x0"}, {"vnet": "blue", "interface": "x0"}),
    "socket.open": ({"vnet": "red"}, {"vnet": "blue"}),
    "mirror.exec": ({"vnet": "red", "argv": ["true"]}, {"vnet": "blue", "argv": ["true"]}),
    "tcp.listen": ({"vnet": "red", "port": 8080}, {"vnet": "blue", "port": 8080}),
    "tcp.connect": ({"vnet": "red", "port": 80}, {"vnet": "blue", "port": 80}),
    "reload": ({}, None),
    "metrics.scrape": ({}, None),
    "config.dump": ({}, None),
    "config.diff": ({}, None),
    "config.vnets": ({}, None),
    "module.load": ({"name": "firewall"}, None),
    "module.unload": ({"name": "firewall"}, None),
}


READ_ONLY = sorted(name for name, op in TABLE.items() if op.read_only)


def test_every_changing_op_is_tried_here() -> None:
    changing = {name for name, op in TABLE.items() if not op.read_only}
    assert set(MUTATING) == changing, "a changing op needs its red/blue arguments in MUTATING"
    assert "route.show" in READ_ONLY and "route.add" not in READ_ONLY


@pytest.mark.parametrize("op", list(MUTATING))
def test_a_manager_of_blue_is_refused_on_red_and_allowed_on_blue(
    server: ControlServer, op: str
) -> None:
    red, blue = MUTATING[op]
    why = server.check(op, dict(red), ALICE)
    assert why is not None and why.startswith("permission denied: uid 1000 may not "), why
    assert server.check(op, dict(red), ROOT) is None
    assert server.check(op, dict(red), BOB) is None, "a daemon admin may"
    if blue is not None:
        assert server.check(op, dict(blue), ALICE) is None
        assert server.check(op, dict(blue), Cred(9, 5000, 5000)) is not None


@pytest.mark.parametrize(
    ("op", "args", "expected"),
    [
        ("route.add", {"vnet": "red"}, "permission denied: uid 1000 may not manage vnet red"),
        ("vnet.create", {"name": "red/kid"}, "uid 1000 may not manage vnet red"),
        (
            "vnet.destroy",
            {"name": "blue"},
            "permission denied: uid 1000 may not destroy top-level vnet blue (daemon admins only)",
        ),
        (
            "vnet.create",
            {"name": "green"},
            "uid 1000 may not create top-level vnet green (daemon admins only)",
        ),
        (
            "sysctl.set",
            {"vnet": "blue", "settings": {"vnet.limits.routes": 5}},
            "permission denied: uid 1000 may not change the limits of vnet blue "
            "(only daemon admins may)",
        ),
        ("reload", {}, "uid 1000 may not reload the configuration (daemon admins only)"),
        ("module.unload", {"name": "firewall"}, "may not unload subsystem firewall"),
        ("socket.open", {"vnet": "red"}, "uid 65534 may not open sockets in vnet red"),
    ],
)
def test_refusals_say_who_may_not_do_what(
    server: ControlServer, op: str, args: dict[str, Any], expected: str
) -> None:
    cred = NOBODY if op == "socket.open" else ALICE
    why = server.check(op, args, cred)
    assert why is not None and expected in why, why


def test_a_route_socket_changes_routes_so_it_needs_manage(server: ControlServer) -> None:
    sockets_only = Cred(7, 65534, 65534)  # CONFIG: user:nobody may open sockets in blue
    assert server.check("socket.open", {"vnet": "blue", "type": "udp"}, sockets_only) is None
    why = server.check("socket.open", {"vnet": "blue", "type": "route"}, sockets_only)
    assert why == "permission denied: uid 65534 may not manage vnet blue"
    assert server.check("socket.open", {"vnet": "blue", "type": "route"}, ALICE) is None


def test_limits_of_a_child_are_set_by_its_parents_managers(server: ControlServer) -> None:
    args = {"vnet": "blue/kid", "settings": {"vnet.limits.routes": 5}}
    assert server.check("sysctl.set", args, ALICE) is None


@pytest.mark.parametrize("op", READ_ONLY)
def test_views_are_open_to_anyone_who_can_connect(server: ControlServer, op: str) -> None:
    assert server.check(op, {"vnet": "red", "name": "red"}, NOBODY) is None


def test_the_daemons_arguments_cannot_be_forged(server: ControlServer) -> None:
    args: dict[str, Any] = {"vnet": "blue", "_privileged": True, "_other": 1}
    with pytest.raises(ApiError, match="may not open sockets in vnet blue"):
        server.admit("socket.open", args, Cred(9, 5000, 5000))
    _, checked = server.admit("socket.open", args, ALICE)
    assert checked["_privileged"] is True and "_other" not in checked, "blue's manager may"
    assert args == {"vnet": "blue", "_privileged": True, "_other": 1}, "the request is not changed"
    server.daemon.tree.set_policy(  # type: ignore[union-attr]
        Policy(grants={"red": Grants(sockets=(uid(1000),))})
    )
    _, checked = server.admit("socket.open", {"vnet": "red", "_privileged": True}, ALICE)
    assert checked["_privileged"] is False
    _, checked = server.admit("socket.open", {"vnet": "red", "_privileged": True}, None)
    assert checked["_privileged"] is True, "the daemon itself may"


def test_an_unknown_op_or_argument_is_refused_before_any_rights_check(
    server: ControlServer, loop: asyncio.AbstractEventLoop
) -> None:
    for line, expected in (
        (request("made.up"), "unknown op 'made.up'; known: "),
        (request("route.add", vnet="blue", prefix="192.0.2.0/24", gateway="x"),
         "route.add takes no argument 'gateway'"),
        (request("route.add", vnet="blue"), "route.add needs 'prefix'"),
        (request("socket.open", vnet="blue", family=[4]), "'family' must be inet or inet6"),
        (request("tcp.listen", vnet="blue", port=True), "'port' must be 0..65535"),
        (request("vnet.destroy", name="blue", recursive=1), "'recursive' must be true or false"),
        (b"[" * 5000 + b"\n", "request is not JSON"),
    ):
        reply, passing = loop.run_until_complete(server.answer(line, NOBODY))
        assert passing is None
        assert reply["ok"] is False and reply["error"].startswith(expected), reply


def request(op: str, **args: Any) -> bytes:
    return json.dumps({"op": op, "args": args}).encode() + b"\n"


def test_a_refusal_changes_nothing_logs_and_the_allowed_request_works(
    server: ControlServer, loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    tree = server.daemon.tree
    assert tree is not None
    caplog.set_level("WARNING", "vrouter.api")
    reply, _ = loop.run_until_complete(
        server.answer(request("route.add", vnet="red", prefix="192.0.2.0/24"), ALICE)
    )
    assert reply == {
        "ok": False,
        "error": "permission denied: uid 1000 may not manage vnet red",
        "errno": "EACCES",
    }
    assert len(tree.get("red").route.fib) == 0
    assert "uid 1000" in caplog.text and "gid 1000 pid 4242" in caplog.text
    assert "request route.add" in caplog.text
    reply, _ = loop.run_until_complete(
        server.answer(
            request("route.add", vnet="blue", prefix="192.0.2.0/24", type="blackhole"), ALICE
        )
    )
    assert reply["ok"], reply
    assert len(tree.get("blue").route.fib) == 1
    reply, _ = loop.run_until_complete(
        server.answer(request("sysctl.set", vnet="red", settings={"net.inet.ip.ttl": 3}), ALICE)
    )
    assert not reply["ok"] and "permission denied" in reply["error"]
    assert tree.get("red").inet.ttl == 64
    reply, _ = loop.run_until_complete(server.answer(request("vnet.show", vnet="blue"), ALICE))
    assert reply["ok"]
    assert reply["result"]["caller"] == {
        "uid": 1000,
        "manage": True,
        "sockets": True,
        "limits": False,
    }
    assert reply["result"]["permissions"]["manage"] == [
        {"principal": "uid:1001", "from": "daemon admins"},
        {"principal": "uid:1000", "from": "blue"},
    ]


# -- the OS side --------------------------------------------------------------------------


def test_peer_cred_reads_the_kernels_answer() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        cred = peer_cred(a)
    assert (cred.pid, cred.uid, cred.gid) == (os.getpid(), os.getuid(), os.getgid())
    assert cred.groups == frozenset(os.getgroups())


def test_the_socket_is_world_connectable_only_with_non_root_principals(
    server: ControlServer, loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    path = tmp_path / "control.sock"
    daemon: Any = server.daemon

    async def mode_with(text: str) -> int:
        daemon.config = parse(text, "t.toml")
        await server.start(str(path))
        try:
            return stat.S_IMODE(path.stat().st_mode)
        finally:
            await server.close()

    root_only = (
        CONFIG.replace('admins = ["uid:1001", "group:root"]', 'admins = ["uid:0"]')
        .replace('manage = ["uid:1000"]', 'manage = ["user:root"]')
        .replace('sockets = ["user:nobody", "uid:1000"]', "")
    )
    assert loop.run_until_complete(mode_with(CONFIG)) == 0o666
    assert loop.run_until_complete(mode_with(root_only)) == 0o660
    assert loop.run_until_complete(mode_with(CONFIG.replace("[vnets.red]", ""))) == 0o666
