"""vrouterctl: every command builds a request the operations table accepts, and the CLI
behaves like its peers (global -j, --version, exit 2 on usage errors, quiet on a closed pipe)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fakedaemon import FakeDaemon
from harness import vrouterctl as harness_vrouterctl

from vrouter.api.operations import TABLE
from vrouter.cli import render, vrouterctl

COMMAND_LINES = [
    ["status"],
    ["reload"],
    ["vnet", "list"],
    ["vnet", "show", "red"],
    ["vnet", "tree"],
    ["vnet", "create", "red/kid"],
    ["vnet", "destroy", "-r", "red"],
    ["module", "list"],
    ["module", "load", "firewall"],
    ["module", "unload", "firewall"],
    ["ifconfig", "red"],
    ["ifconfig", "red", "eth0", "vnet", "blue"],
    ["ifconfig", "red", "eth0", "destroy"],
    ["interface", "move", "red", "eth0", "blue"],
    ["interface", "destroy", "red", "eth0"],
    ["epair", "create", "red:e0", "blue:e0", "--mtu", "9000"],
    ["tap", "create", "red", "tap9", "192.0.2.1/24"],
    ["address", "add", "red", "eth0", "192.0.2.1/24"],
    ["address", "del", "red", "eth0", "192.0.2.1/24"],
    ["route", "show", "red", "-6"],
    ["mirror", "show", "red"],
    ["dhcp", "red", "leases"],
    ["route", "show", "red", "198.18.0.0/15", "--limit", "5"],
    ["route", "add", "red", "198.51.100.0/24", "via", "192.0.2.2"],
    ["route", "add", "red", "203.0.113.0/24", "blackhole"],
    ["route", "add", "red", "198.18.0.0/24", "via", "192.0.2.2", "via", "fe80::1", "dev", "e1"],
    ["route", "del", "red", "198.51.100.0/24"],
    ["arp", "show", "red"],
    ["ndp", "show", "red"],
    ["rtadv", "show", "red"],
    ["bridge", "show", "red"],
    ["bridge", "fdb", "red", "br0"],
    ["bridge", "fdb", "red"],
    ["bridge", "fdb", "red", "add", "02:00:00:00:00:0a", "tap1"],
    ["bridge", "fdb", "red", "add", "02:00:00:00:00:0a", "vx42", "vlan", "20",
     "dst", "198.51.100.3"],
    ["bridge", "fdb", "red", "del", "02:00:00:00:00:0a", "tap1", "vlan", "20"],
    ["bridge", "create", "red", "br0", "tap1", "tap2", "--address", "192.0.2.1/24"],
    ["bridge", "create", "red", "br1", "--vlan-filtering", "--pvid", "10", "--mtu", "9000"],
    ["bridge", "create", "red", "br2", "tap1", "tap2", "--stp", "--priority", "4096",
     "--hello-time", "1", "--max-age", "6", "--forward-delay", "4"],
    ["bridge", "add", "red", "br0", "tap3", "--pvid", "0", "--tagged", "10,20"],
    ["bridge", "del", "red", "br0", "tap3"],
    ["bridge", "add", "red", "br0", "tap3", "--path-cost", "200", "--port-priority", "16"],
    ["bridge", "stp", "red", "br0", "on", "--priority", "4096", "--hello-time", "1",
     "--max-age", "6", "--forward-delay", "4"],
    ["bridge", "stp", "red", "br0", "off"],
    ["bridge", "stp", "red", "br0", "--priority", "8192"],
    ["bridge", "port-stp", "red", "br0", "tap3", "--path-cost", "10"],
    ["bridge", "stp", "red", "br0", "--protocol", "rstp"],
    ["bridge", "port-stp", "red", "br0", "tap3", "--edge", "on", "--auto-edge", "off"],
    ["bridge", "port-stp", "red", "br0", "tap3", "--mcheck"],
    ["bridge", "add", "red", "br0", "tap4", "--edge", "on"],
    ["vxlan", "show", "red"],
    ["vxlan", "show", "red", "vx42", "-j"],
    ["vxlan", "create", "red", "vx42", "--vni", "42", "--local", "198.51.100.1",
     "--remote", "198.51.100.2", "--remote", "198.51.100.3"],
    ["vxlan", "create", "red", "vx7", "--vni", "7", "--local", "2001:db8::1", "--group",
     "ff05::42", "--no-learning", "--mtu", "1400", "--port", "8472"],
    ["vxlan", "create", "red", "vx43", "--vni", "43", "--local", "198.51.100.1",
     "--remote", "198.51.100.2", "--tunnel-gso"],
    ["vlan", "create", "red", "tap1", "10", "198.51.100.1/24"],
    ["vlan", "create", "red", "br0", "20", "--name", "v20", "--mtu", "1400"],
    ["netstat", "red"],
    ["sockstat", "red"],
    ["sysctl", "red", "net.inet.ip.ttl"],
    ["sysctl", "red", "net.inet.ip.ttl=9"],
    ["firewall", "red", "show"],
    ["firewall", "red", "states"],
    ["firewall", "red", "flush"],
    ["config", "dump"],
    ["config", "diff"],
]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=" ".join)
def test_every_command_builds_a_request_its_operation_accepts(argv: list[str]) -> None:
    args = vrouterctl._parser().parse_args(argv)
    op, op_args, _ = vrouterctl._request(args)
    assert op in TABLE
    TABLE[op].check(op_args)


def test_every_command_of_the_table_is_reachable_from_a_command_line() -> None:
    reached = set()
    for argv in COMMAND_LINES:
        key = vrouterctl._parser().parse_args(argv)
        reached.add((key.command, getattr(key, "action", None)))
    assert reached == set(vrouterctl.COMMANDS) - {("firewall", "load")}


def test_firewall_load_sends_the_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('default = "pass"\n')
    args = vrouterctl._parser().parse_args(["firewall", "red", "load", str(rules)])
    op, op_args, _ = vrouterctl._request(args)
    sent = (op, op_args["text"], op_args["source"])
    assert sent == ("firewall.load", 'default = "pass"\n', str(rules))


def test_config_diff_sends_the_file_and_without_one_asks_for_the_daemons(
    tmp_path: Path,
) -> None:
    config = tmp_path / "vrouter.toml"
    config.write_text("[vnets]\n")
    args = vrouterctl._parser().parse_args(["config", "diff", str(config)])
    assert vrouterctl._request(args)[:2] == (
        "config.diff", {"text": "[vnets]\n", "source": str(config)}
    )
    args = vrouterctl._parser().parse_args(["config", "diff"])
    assert vrouterctl._request(args)[:2] == ("config.diff", {})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["route", "add", "red", "192.0.2.0/24", "gateway", "x"], "unexpected 'gateway'"),
        (["ifconfig", "red", "eth0", "up"], "ifconfig VNET"),
        (["sysctl", "red", "a=1", "b"], "either show NAMEs or set NAME=VALUEs"),
        (["epair", "create", "red:a", "blue:b", "--mtu", "x"], "invalid int value"),
        (["bridge", "add", "red", "br0", "t", "--tagged", "x"], "expected VLAN IDs like 10,20"),
        (["bogus"], "invalid choice"),
        (["bridge", "fdb", "red", "add", "02:00:00:00:00:0a"], "expected VNET [BRIDGE] or"),
        (["bridge", "fdb", "red", "del", "02:00:00:00:00:0a", "t", "dst", "x"], "expected vlan"),
        (["bridge", "fdb", "red", "add", "02:00:00:00:00:0a", "t", "vlan", "x"], "not a number"),
        (["firewall", "red", "load", "/nonexistent/rules.toml"], "No such file or directory"),
        (["config", "diff", "/nonexistent/vrouter.toml"], "No such file or directory"),
        (["config", "show"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_with_the_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        vrouterctl.main(["--socket", "/nonexistent/control.sock", *argv])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        vrouterctl.main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith("vrouterctl 0.")


@pytest.fixture
def fake(tmp_path: Path) -> Any:
    daemon = FakeDaemon(
        tmp_path / "c.sock",
        [
            {
                "name": "red",
                "parent": None,
                "forwarding": True,
                "interfaces": 2,
                "routes": 3,
                "neighbours": 0,
            }
        ],
    )
    yield daemon
    daemon.close()


@pytest.mark.parametrize("where", ["before", "after", "short"])
def test_json_is_accepted_before_and_after_the_command(
    fake: FakeDaemon, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = {
        "before": ["--json", "vnet", "list"],
        "after": ["vnet", "list", "--json"],
        "short": ["-j", "vnet", "list"],
    }[where]
    assert vrouterctl.main(["--socket", fake.path, *argv]) == 0
    assert json.loads(capsys.readouterr().out) == fake.result
    assert fake.requests[-1] == {"op": "vnet.list", "args": {}}


def test_config_diff_exits_1_when_the_file_differs_and_0_silently_when_not(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.result = {"file": "/etc/vrouter.toml", "differences": ["+ vnets.lab.forwarding = true"]}
    assert vrouterctl.main(["--socket", fake.path, "config", "diff"]) == 1
    assert capsys.readouterr().out == "+ vnets.lab.forwarding = true\n"
    fake.result = {"file": "/etc/vrouter.toml", "differences": []}
    assert vrouterctl.main(["--socket", fake.path, "config", "diff"]) == 0
    assert capsys.readouterr().out == ""
    assert vrouterctl.main(["--socket", fake.path, "config", "diff", "-j"]) == 0
    assert json.loads(capsys.readouterr().out) == fake.result
    assert fake.requests[-1] == {"op": "config.diff", "args": {}}


def test_config_dump_prints_the_file_and_its_json_with_j(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    text = '[daemon]\nlog_level = "info"\n'
    fake.result = {"config": "/etc/vrouter.toml", "document": {}, "text": text}
    assert vrouterctl.main(["--socket", fake.path, "config", "dump"]) == 0
    assert capsys.readouterr().out == text
    assert vrouterctl.main(["--socket", fake.path, "-j", "config", "dump"]) == 0
    assert json.loads(capsys.readouterr().out) == fake.result


def test_a_reply_longer_than_any_request_is_read_whole(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.result = [dict(fake.result[0], name=f"v{i}") for i in range(30000)]
    assert len(json.dumps(fake.result)) > 2 << 20
    assert vrouterctl.main(["--socket", fake.path, "vnet", "list"]) == 0
    assert capsys.readouterr().out.count("\n") == 30000 + 1  # the header


def test_a_closed_pipe_ends_the_output_quietly(fake: FakeDaemon) -> None:
    fake.result = [dict(fake.result[0], name=f"v{i}") for i in range(3000)]
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads: the first write fails with EPIPE
    env = {**os.environ, "PYTHONPATH": str(Path(vrouterctl.__file__).parents[2])}
    done = subprocess.run(
        harness_vrouterctl("--socket", fake.path, "vnet", "list"),
        stdout=writer,
        stderr=subprocess.PIPE,
        env=env,
        timeout=60,
        check=False,
    )
    os.close(writer)
    assert done.stderr == b"", done.stderr.decode()
    assert done.returncode == 0


def test_firewall_states_show_both_sides_of_each_translation() -> None:
    common = {"age": 3.0, "expires_in": 200.0, "packets": [2, 1], "bytes": [120, 60]}
    result = [
        {
            "proto": "tcp",
            "src": "192.0.2.2:45000",
            "dst": "198.51.100.2:8080",
            "state": "ESTABLISHED:ESTABLISHED",
            "translated": {"src": "203.0.113.1:1024"},
            **common,
        },
        {
            "kind": "nat",
            "proto": "udp",
            "interface": "ep0",
            "inside": "192.0.2.2:5000",
            "outside": "203.0.113.1:5000",
            **common,
        },
        {
            "kind": "rdr",
            "proto": "tcp",
            "client": "192.0.2.2:41000",
            "hairpin": "192.0.2.65:41000",
            "public": "203.0.113.1:8081",
            "server": "192.0.2.66:18081",
            **common,
        },
    ]
    text = render.show_states(result)
    assert "192.0.2.2:45000 (203.0.113.1:1024)" in text
    assert "192.0.2.2:5000" in text and "203.0.113.1:5000" in text and "NAT ep0" in text
    assert "192.0.2.2:41000 (192.0.2.65:41000)" in text
    assert "203.0.113.1:8081 (192.0.2.66:18081)" in text and "RDR" in text


def test_a_daemon_that_does_not_listen_is_unreachable_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # the file is there, nobody listens: ECONNREFUSED
    stale.close()
    for argv in (["vnet", "list"], ["capture", "red", "eth0"]):
        with pytest.raises(SystemExit) as caught:
            vrouterctl.main(["--socket", str(path), *argv])
        assert caught.value.code == 2, argv
        assert "cannot reach vrouterd at" in capsys.readouterr().err


def test_route_add_with_two_next_hops_asks_for_a_multipath_route() -> None:
    argv = ["route", "add", "red", "198.18.0.0/24", "via", "192.0.2.2", "via", "192.0.2.3",
            "dev", "e1"]  # fmt: skip
    _, op_args, _ = vrouterctl._request(vrouterctl._parser().parse_args(argv))
    assert op_args["paths"] == ["192.0.2.2", "192.0.2.3%e1"]
    assert "via" not in op_args and "interface" not in op_args


def test_bridge_create_sends_the_spanning_tree_options_given_and_says_it_runs() -> None:
    argv = ["bridge", "create", "red", "br0", "tap1", "--stp", "--priority", "4096",
            "--forward-delay", "4", "--max-age", "6"]  # fmt: skip
    op, op_args, show = vrouterctl._request(vrouterctl._parser().parse_args(argv))
    assert op == "bridge.create" and op_args["stp"] is True
    assert {k: op_args.get(k) for k in ("priority", "hello_time", "max_age", "forward_delay")} == {
        "priority": 4096, "hello_time": None, "max_age": 6, "forward_delay": 4
    }
    shown = show({"vnet": "red", "interface": "br0", "mac": "02:00:00:00:00:01",
                  "members": ["tap1"], "stp": True})  # fmt: skip
    assert shown == "vnet red: bridge br0 created (tap1), ether 02:00:00:00:00:01, spanning tree on"
    _, plain, _ = vrouterctl._request(vrouterctl._parser().parse_args(argv[:5]))
    assert plain["stp"] is False and "priority" not in plain and "max_age" not in plain


def test_route_add_takes_a_weight_after_each_next_hop() -> None:
    argv = ["route", "add", "red", "198.18.0.0/24", "via", "192.0.2.2", "weight", "3",
            "via", "192.0.2.3", "dev", "e1", "weight", "2", "via", "192.0.2.4"]  # fmt: skip
    _, op_args, _ = vrouterctl._request(vrouterctl._parser().parse_args(argv))
    assert op_args["paths"] == ["192.0.2.2 weight 3", "192.0.2.3%e1 weight 2", "192.0.2.4"]


def test_a_weight_on_a_single_next_hop_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["route", "add", "red", "198.18.0.0/24", "via", "192.0.2.2", "weight", "3"]
    with pytest.raises(SystemExit) as caught:
        vrouterctl._request(vrouterctl._parser().parse_args(argv))
    assert caught.value.code == 2
    assert "two or more via" in capsys.readouterr().err


def test_route_show_lists_each_path_with_its_weight_and_packets() -> None:
    paths = [{"gateway": "192.0.2.2", "interface": "e0", "weight": 3, "use": 31},
             {"gateway": "192.0.2.3", "interface": "e1", "weight": 1, "use": 9}]  # fmt: skip
    row = {"prefix": "198.18.0.0/24", "type": "unicast", "gateway": "192.0.2.2",
           "interface": "e0", "source": "ospf", "distance": 110, "use": 40,
           "nexthops": paths}  # fmt: skip
    lines = render.show_routes([row]).splitlines()
    assert "Weight" in lines[0]
    assert lines[1].split() == ["198.18.0.0/24", "multipath", "UM1", "-", "ospf", "110", "40"]
    assert lines[2].split() == ["192.0.2.2", "G", "e0", "3", "31"]
    assert lines[3].split() == ["192.0.2.3", "G", "e1", "1", "9"]


def test_status_shows_what_busy_polling_found() -> None:
    text = render.show_status({"version": "0.1.0", "busy_poll": {"polls": 12, "found": 5}})
    assert "busy_poll: 12 polls, 5 found a frame" in text.splitlines()


def test_vxlan_show_says_whether_tunnel_gso_is_in_use_and_why_not() -> None:
    base = {"name": "vx42", "up": True, "vni": 42, "local": "198.51.100.1", "port": 4789,
            "underlay": "host", "mtu": 1450, "underlay_mtu": 1500, "group": None,
            "learning": True, "macs": 0, "drops": {}, "vteps": [],
            "stats": {"learned": 0, "moved": 0, "aged": 0, "fdb_full": 0, "flooded": 0,
                      "whole": 7, "tunnel_refused": 0}}  # fmt: skip
    assert "tunnel_gso" not in render.show_vxlans([{**base, "tunnel_gso": ""}])
    in_use = render.show_vxlans([{**base, "tunnel_gso": "vxgso0"}])
    assert "tunnel_gso: in use through vxgso0" in in_use and "sent whole 7" in in_use
    assert "refused" not in in_use
    refused = {**base["stats"], "tunnel_refused": 2}  # type: ignore[dict-item]
    text = render.show_vxlans(
        [{**base, "tunnel_gso": "vxgso0", "stats": refused, "tunnel_error": "[Errno 105] x"}]
    )
    assert "refused by the kernel 2 (sent by the socket; last: [Errno 105] x)" in text
    off = render.show_vxlans(
        [{**base, "tunnel_gso": "not in use: net.ipv4.conf.all.rp_filter is 1 (strict)"}]
    )
    assert "tunnel_gso: not in use: net.ipv4.conf.all.rp_filter is 1 (strict); TCP " in off


def test_vxlan_show_says_where_tunnel_gso_receives() -> None:
    stats = {"learned": 0, "moved": 0, "aged": 0, "fdb_full": 0, "flooded": 0, "whole": 7,
             "tunnel_refused": 0, "received_whole": 40, "received_tunnel": 90}  # fmt: skip
    base = {"name": "vx42", "up": True, "vni": 42, "local": "198.51.100.1", "port": 4789,
            "underlay": "host", "mtu": 1450, "underlay_mtu": 1500, "group": None,
            "learning": True, "macs": 0, "drops": {}, "vteps": [], "stats": stats,
            "tunnel_gso": "vxgso0"}  # fmt: skip
    whole = render.show_vxlans([{**base, "tunnel_receive": "eth0"}])
    assert (
        "; received whole through vxgso0 (redirected from eth0): super-frames 40, frames 90"
        in whole
    ), whole
    socket_only = render.show_vxlans([{**base, "tunnel_receive": "socket only: no device"}])
    assert "; received on the socket (socket only: no device)" in socket_only, socket_only
    assert "received" not in render.show_vxlans([base])


def test_vxlan_show_counts_joined_reads_and_small_sends() -> None:
    stats = {"learned": 0, "moved": 0, "aged": 0, "fdb_full": 0, "flooded": 0, "batches": 3,
             "coalesced": 60, "small_sends": 4, "small_datagrams": 9}  # fmt: skip
    x = {"name": "vx42", "up": True, "vni": 42, "local": "198.51.100.1", "port": 4789,
         "mtu": 1450, "underlay_mtu": 1500, "group": None, "learning": True, "macs": 0,
         "drops": {}, "vteps": [], "stats": stats}  # fmt: skip
    text = render.show_vxlans([x])
    want = "received: batched reads 3, segments joined 60; sent: 9 small datagrams in 4 sends"
    assert want in text


def test_bridge_rstp_options_reach_the_operations() -> None:
    parse = vrouterctl._parser().parse_args
    _, args, _ = vrouterctl._request(parse(["bridge", "stp", "red", "br0", "--protocol", "rstp"]))
    assert args == {"vnet": "red", "bridge": "br0", "stp_protocol": "rstp"}
    argv = ["bridge", "port-stp", "red", "br0", "tap3", "--edge", "on", "--auto-edge", "off",
            "--mcheck"]  # fmt: skip
    op, args, show = vrouterctl._request(parse(argv))
    assert op == "bridge.port.stp"
    assert (args["edge"], args["auto_edge"], args["mcheck"]) == (True, False, True)
    _, args, _ = vrouterctl._request(parse(argv[:5]))
    assert "edge" not in args and "auto_edge" not in args and "mcheck" not in args
    shown = show({"bridge": "br0", "name": "tap3", "path_cost": 100, "port_priority": 32,
                  "edge": True, "auto_edge": False,
                  "stp": {"role": "designated", "state": "forwarding", "protocol": "rstp",
                          "edge": True, "admin_edge": True}})  # fmt: skip
    assert shown == ("br0: tap3 path cost 100 port priority 32 edge on auto_edge off: "
                     "designated forwarding, speaks rstp, edge")  # fmt: skip
