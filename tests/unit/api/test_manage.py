"""Changes through the control socket: bridges, their ports and VLANs, made at run time.

The requests go through the server as vrouterctl sends them: the operations
table checks the arguments, manage.py parses them and Ops changes the vnet.
"""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vrouter.api.server import ControlServer
from vrouter.core import gcpause
from vrouter.daemon.config import parse
from vrouter.daemon.ops import Ops
from vrouter.io.driver import Driver
from vrouter.stack import new_tree


async def _lab(tmp_path: Path) -> tuple[ControlServer, Ops, str]:
    """Vnet ``lab`` with epairs p1, p2, p3 to vnet ``peer``, and a control server over it."""
    tree = new_tree()
    ops = Ops(tree, Driver(asyncio.get_running_loop()))
    ops.create_vnet("lab")
    ops.create_vnet("peer")
    for n in (1, 2, 3):
        ops.create_epair_between(("lab", f"p{n}"), [], ("peer", f"p{n}"), [], 1500)
    config = parse('[daemon]\ncontrol_socket = "/run/x.sock"\n', "t.toml")
    host = SimpleNamespace(tree=tree, ops=ops, driver=ops.driver, config=config,
                           lock=asyncio.Lock(), spec=None)  # fmt: skip
    server = ControlServer(host)  # type: ignore[arg-type]
    path = str(tmp_path / "c.sock")
    await server.start(path)
    return server, ops, path


async def _ask(path: str, op: str, **args: Any) -> Any:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(json.dumps({"op": op, "args": args}).encode() + b"\n")
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return json.loads(line)


def test_a_bridge_and_its_ports_change_through_the_socket(tmp_path: Path) -> None:
    async def scenario() -> None:
        server, ops, path = await _lab(tmp_path)
        try:
            made = await _ask(path, "bridge.create", vnet="lab", interface="br0",
                              members=["p1", "p2"], addresses=["192.0.2.1/24"],
                              vlan_filtering=True, pvid=10)  # fmt: skip
            assert made["ok"], made
            assert made["result"]["members"] == ["p1", "p2"]
            added = await _ask(path, "bridge.port.add", vnet="lab", bridge="br0",
                               interface="p3", pvid=0, tagged=[20, 10])  # fmt: skip
            assert added["ok"], added
            shown = (await _ask(path, "bridge.show", vnet="lab"))["result"]
            ports = {p["name"]: (p["pvid"], p["tagged"]) for p in shown[0]["ports"]}
            assert ports == {"p1": (1, []), "p2": (1, []), "p3": (0, [10, 20])}
            assert shown[0]["pvid"] == 10
            removed = await _ask(path, "bridge.port.del", vnet="lab", bridge="br0",
                                 interface="p2")  # fmt: skip
            assert removed["ok"], removed
            assert list(ops.vnet("lab").link.bridge.bridges["br0"].ports) == ["p1", "p3"]
            sub = await _ask(path, "vlan.create", vnet="lab", parent="br0", vid=20,
                             addresses=["198.51.100.1/24"])  # fmt: skip
            assert sub["ok"], sub
            assert sub["result"]["interface"] == "br0.20"
            assert sub["result"]["mac"] == made["result"]["mac"]
            gone = await _ask(path, "interface.destroy", vnet="lab", interface="br0")
            assert gone["result"]["destroyed"] == ["lab:br0.20", "lab:br0"]
            assert not ops.vnet("lab").link.bridge.bridges and not ops.vnet("lab").link.vlans
        finally:
            await server.close()

    asyncio.run(scenario())


def test_a_bridge_created_with_stp_through_the_socket_runs_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        server, ops, path = await _lab(tmp_path)
        try:
            made = await _ask(path, "bridge.create", vnet="lab", interface="br0",
                              members=["p1", "p2"], stp=True, priority=4096, hello_time=1,
                              max_age=6, forward_delay=4)  # fmt: skip
            assert made["ok"], made
            assert made["result"]["stp"] is True
            shown = (await _ask(path, "bridge.show", vnet="lab"))["result"][0]["stp"]
            assert (shown["priority"], shown["hello_time"], shown["max_age"],
                    shown["forward_delay"]) == (4096, 1, 6, 4)  # fmt: skip
            assert shown["bridge_id"].startswith("1000.")
            plain = await _ask(path, "bridge.create", vnet="lab", interface="br1", members=["p3"])
            assert plain["ok"] and plain["result"]["stp"] is False, plain
            assert ops.vnet("lab").link.bridge.bridges["br1"].stp is None
        finally:
            await server.close()

    asyncio.run(scenario())


def test_refused_changes_say_why_and_change_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        server, ops, path = await _lab(tmp_path)
        try:
            await _ask(path, "address.add", vnet="lab", interface="p3", address="192.0.2.9/24")
            for op, args, error in [
                ("bridge.create", {"interface": "br0", "members": ["p1", "p3"]},
                 "vnet lab: br0: member p3 has addresses; remove them first"),
                ("bridge.create", {"interface": "br0", "members": ["nope"]},
                 "vnet lab: br0: no member interface 'nope'"),
                ("bridge.create", {"interface": "br0", "members": ["p1"], "priority": 4096},
                 "vnet lab: br0: priority needs stp on the bridge"),
                ("bridge.create", {"interface": "br0", "stp": True, "max_age": 41},
                 "'max_age' must be 6..40"),
                ("bridge.create", {"interface": "br0", "members": ["p1"], "stp": True,
                                   "forward_delay": 4},
                 "vnet lab: br0: max_age 20 is more than 2 x (forward_delay 4 - 1) = 6: 802.1D "
                 "asks 2 x (forward_delay - 1) >= max_age >= 2 x (hello_time + 1)"),
                ("bridge.port.add", {"bridge": "p1", "interface": "p2"},
                 "vnet lab: p1 is not a bridge"),
                ("bridge.port.add", {"bridge": "p1", "interface": "p2", "tagged": [4095]},
                 "'tagged' must be a list of integers in 1..4094"),
                ("vlan.create", {"parent": "p1", "vid": 0}, "'vid' must be 1..4094"),
                ("vlan.create", {"parent": "p1", "vid": 7, "mtu": 9000},
                 "vnet lab: p1.7: mtu 9000 is larger than p1's (1500)"),
                ("vxlan.create", {"interface": "vx1", "vni": 1, "local": "239.0.0.1"},
                 "vnet lab: vx1: local 239.0.0.1 is not a unicast address"),
                ("vxlan.create", {"interface": "vx1", "vni": 1, "local": "198.51.100.1",
                                  "remotes": ["2001:db8::2"]},
                 "vnet lab: vx1: remote 2001:db8::2 is not another unicast address of local's "
                 "family"),
                ("vxlan.create", {"interface": "vx1", "vni": 1 << 24, "local": "198.51.100.1"},
                 "'vni' must be 0..16777215"),
                ("vxlan.create", {"interface": "vx1", "vni": 1, "local": "198.51.100.1",
                                  "underlay": "lab", "tunnel_gso": True},
                 "vnet lab: vx1: tunnel_gso hands super-frames to the host's kernel; a vnet "
                 "underlay has none"),
                ("vxlan.create", {"interface": "vx1", "vni": 1, "local": "198.51.100.1",
                                  "tunnel_gso": "yes"},
                 "'tunnel_gso' must be"),
            ]:  # fmt: skip
                answer = await _ask(path, op, vnet="lab", **args)
                assert not answer["ok"] and error in answer["error"], (op, answer)
            lab = ops.vnet("lab")
            assert sorted(lab.link.interfaces) == ["p1", "p2", "p3"]
            assert not lab.link.bridge.bridges and not lab.link.vlans
        finally:
            await server.close()

    asyncio.run(scenario())


def test_requests_hold_the_collector_until_the_server_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gcpause, "BURST_IDLE", 60.0)  # the burst outlasts the test

    async def scenario() -> list[bool]:
        server, _, path = await _lab(tmp_path)
        try:
            made = await _ask(path, "vnet.create", name="burst")
            assert made == {"ok": True, "result": {"name": "burst", "parent": None}}
            held = not gc.isenabled()
        finally:
            await server.close()
        return [held, gc.isenabled()]

    assert asyncio.run(scenario()) == [True, True]
