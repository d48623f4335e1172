"""``vrouterctl``: look into and change a running vrouterd through its control socket.

Every command takes ``--json`` for the raw API result; without it the output
is laid out like the BSD tools it is named after.  Changes take effect at
once and are not written to the config file: ``vrouterctl reload`` re-reads
the file and applies only what differs from the file last loaded.

``vrouterctl capture`` is tcpdump for an interface of a vnet: the daemon
passes it a socket fed by a tap (the filter runs in the kernel, see
:mod:`vrouter.link.capture`); it writes pcap (``-w FILE``, ``-w -``) or one
line per packet.  Exit status: 0 done, 1 refused, 2 daemon unreachable
(or a usage error).

vrouterd knows who runs vrouterctl (the kernel tells it the uid, gid and
groups on the control socket): views work for anyone who can connect;
changes need the rights the config grants (``permission denied: …``,
exit 1).  ``vrouterctl vnet show NAME`` shows a vnet's limits, who may
manage it, and what the caller may do.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

from vrouter import __version__
from vrouter.api.client import DEFAULT_SOCKET, Client
from vrouter.api.operations import TABLE
from vrouter.api.protocol import ApiError
from vrouter.link.capture import HEADER_LEN, SNAPLEN_MAX, PcapWriter, decode_record, summarize


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)).rstrip()
        for line in lines
    )


def _show_vnets(result: Any) -> str:
    rows = [
        [
            v["name"],
            v["parent"] or "-",
            "router" if v["forwarding"] else "host",
            str(v["interfaces"]),
            str(v["routes"]),
            str(v["neighbours"]),
        ]
        for v in result
    ]
    return _table(rows, ["VNET", "PARENT", "ROLE", "IFACES", "ROUTES", "NEIGHBOURS"])


def _show_ifconfig(result: Any) -> str:
    out = []
    for i in result:
        flags = "UP" if i["up"] else "DOWN"
        out.append(f"{i['name']}: flags=<{flags}> index {i['index']} mtu {i['mtu']} ({i['kind']})")
        out.append(f"\tether {i['mac']}")
        for address in i["addresses"]:
            if ":" not in address:
                out.append(f"\tinet {address}")
        for a in i.get("inet6", []):
            flags = "" if a["state"] == "preferred" else f" {a['state']}"
            out.append(f"\tinet6 {a['address']} scope {a['scope']}{flags}")
        if i.get("ra"):
            out.append("\tsends router advertisements")
        c = i["counters"]
        out.append(
            f"\tRX packets {c['rx_packets']}  bytes {c['rx_bytes']}  errors {c['rx_errors']}"
        )
        out.append(
            f"\tTX packets {c['tx_packets']}  bytes {c['tx_bytes']}  errors {c['tx_errors']}"
        )
        for direction in ("rx_drops", "tx_drops"):
            if c[direction]:
                reasons = "  ".join(f"{k} {v}" for k, v in c[direction].items())
                out.append(f"\t{direction.replace('_', ' ').upper()}: {reasons}")
    return "\n".join(out)


def _show_routes(result: Any) -> str:
    rows = []
    for r in result:
        gateway = r["gateway"] or ("link#" + r["interface"] if r["interface"] else "-")
        flags = {"connected": "UC", "static": "UGS" if r["gateway"] else "US"}[r["origin"]]
        if r["type"] == "blackhole":
            flags, gateway = "UBS", "blackhole"
        elif r["type"] == "reject":
            flags, gateway = "URS", "reject"
        rows.append([r["prefix"], gateway, flags, r["interface"] or "-", str(r["use"])])
    return _table(rows, ["Destination", "Gateway", "Flags", "Netif", "Use"])


def _show_arp(result: Any) -> str:
    rows = [
        [
            e["address"],
            e["mac"] or "(incomplete)",
            e["interface"],
            e["state"],
            "-" if e["age"] is None else f"{e['age']:.0f}s",
        ]
        for e in result
    ]
    return _table(rows, ["Address", "MAC", "Interface", "State", "Age"])


def _show_ndp(result: Any) -> str:
    rows = [
        [
            e["address"],
            e["mac"] or "(incomplete)",
            e["interface"],
            e["state"],
            "R" if e["router"] else "",
            "-" if e["age"] is None else f"{e['age']:.0f}s",
        ]
        for e in result
    ]
    return _table(rows, ["Neighbor", "Linklayer Address", "Netif", "State", "Flags", "Age"])


def _show_bridges(result: Any) -> str:
    out = []
    for b in result:
        vlans = f" vlan_filtering pvid {b['pvid']}" if b["vlan_filtering"] else ""
        stats = b["stats"]
        out.append(
            f"{b['name']}: {'UP' if b['up'] else 'DOWN'} mac {b['mac']}{vlans} "
            f"ageing {b['ageing_time']}s fdb {b['fdb_entries']} (learned {stats['learned']}, "
            f"moved {stats['moved']}, aged {stats['aged']}, full {stats['fdb_full']})"
        )
        rows = []
        for p in b["ports"]:
            c = p["counters"]
            drops = ", ".join(f"{k} {v}" for k, v in c["drops"].items()) or "-"
            vlan = f"{p['pvid'] or '-'}/{','.join(map(str, p['tagged'])) or '-'}"
            rows.append(
                [
                    p["name"],
                    "up" if p["up"] else "down",
                    vlan if b["vlan_filtering"] else "-",
                    str(p["storm_pps"] or "-"),
                    str(c["forwarded"]),
                    str(c["flooded"]),
                    str(c["sent"]),
                    str(c["learned"]),
                    drops,
                ]
            )
        header = ["Port", "State", "PVID/Tagged", "Storm", "Fwd", "Flood", "Sent", "Learn"]
        out.append(_table(rows, [*header, "Drops"]))
    return "\n".join(out)


def _show_fdb(result: Any) -> str:
    rows = [
        [
            e["bridge"],
            e["mac"],
            str(e["vlan"]) if e["vlan"] else "-",
            e["port"],
            "static" if e["static"] else f"{e['age']:.0f}s",
        ]
        for e in result
    ]
    return _table(rows, ["Bridge", "MAC", "VLAN", "Port", "Age"])


def _show_netstat(result: Any) -> str:
    out = []
    for section, counters in result.items():
        out.append(f"{section}:")
        out.extend(f"\t{value} {name.replace('_', ' ')}" for name, value in counters.items())
    return "\n".join(out)


def _show_sysctl(result: Any) -> str:
    out = []
    for k in result:
        value = int(k["value"]) if isinstance(k["value"], bool) else k["value"]
        if "description" in k:
            out.append(f"{k['name']}: {value}\t# {k['description']}")
        else:
            old = int(k["old"]) if isinstance(k["old"], bool) else k["old"]
            out.append(f"{k['name']}: {old} -> {value}")
    return "\n".join(out)


def _show_firewall(result: Any) -> str:
    state = "enabled" if result["enabled"] else "disabled (net.pf.enable=0)"
    out = [f"firewall {state}, first match wins; states {result['states']}/{result['max_states']}"]
    rows = [
        [
            str(r["index"]) if r["index"] >= 0 else "-",
            str(r["packets"]),
            str(r["bytes"]),
            str(r["states"]),
            r["text"],
        ]
        for r in result["rules"]
    ]
    out.append(_table(rows, ["#", "PACKETS", "BYTES", "STATES", "RULE"]))
    return "\n".join(out)


def _show_states(result: Any) -> str:
    rows = [
        [
            s["proto"],
            s["src"],
            "<->",
            s["dst"],
            s["state"],
            f"{s['age']:.0f}s",
            f"{s['expires_in']:.0f}s",
            str(sum(s["packets"])),
            str(sum(s["bytes"])),
        ]
        for s in result
    ]
    return _table(rows, ["PROTO", "SRC", "", "DST", "STATE", "AGE", "EXPIRES", "PKTS", "BYTES"])


def _show_done(result: Any) -> str:
    return ", ".join(f"{k} {v}" for k, v in result.items())


def _show_sockstat(result: Any) -> str:
    rows = [
        [
            s["kind"] + ("4" if s["family"] == "inet" else "6"),
            str(s["proto"]),
            s["local"],
            s["peer"] or "*",
            s["interface"] or "*",
            str(s["rx"]),
            str(s["tx"]),
            str(s["rx_dropped"]),
        ]
        for s in result["sockets"]
    ]
    table = _table(rows, ["PROTO", "IPPROTO", "LOCAL", "PEER", "IFACE", "RX", "TX", "DROPPED"])
    out = [table, f"route sockets: {result['route_sockets']}"]
    if "tcp" in result:
        listeners = ", ".join(str(listener.get("port")) for listener in result["tcp_listeners"])
        out.append(f"tcp listening on ports: {listeners or '-'}")
        rows = [
            [c["local"], c["remote"], str(c["state"]), str(c["send_queue"]),
             str(c["recv_queue"]), str(c["cwnd"]), str(c["rto"])]
            for c in result["tcp"]
        ]
        out.append(_table(rows, ["LOCAL", "REMOTE", "STATE", "SEND-Q", "RECV-Q", "CWND", "RTO"]))
    return "\n".join(out)


def _show_status(result: Any) -> str:
    out = []
    for key, value in result.items():
        if key == "last_reload_success":
            continue
        if key == "reloads":
            value = ", ".join(f"{n} {r}" for r, n in sorted(value.items())) or "none"
        elif key == "last_reload":
            value = _last_reload(value)
        elif key == "caller":
            admin = ", daemon admin" if value["admin"] else ""
            value = f"uid {value['uid']} gid {value['gid']} pid {value['pid']}{admin}"
        elif key == "workers":
            for worker in value:
                pid = worker["pid"] if worker["pid"] is not None else "exited"
                vnets = ", ".join(worker["vnets"]) or "no vnets"
                out.append(f"worker {worker['index']}: pid {pid}: {vnets}")
            continue
        out.append(f"{key}: {value}")
    return "\n".join(out)


def _when(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _last_reload(last: Any) -> str:
    if last is None:
        return "never"
    text = f"{_when(last['time'])} {last['result']}"
    if last["result"] == "success":
        return f"{text} ({last['changes']} changes)"
    return text + "".join(f"\n  {line}" for line in str(last["error"]).splitlines())


def _show_tree(result: Any) -> str:
    out: list[str] = []

    def walk(node: Any, prefix: str, last: bool, root: bool) -> None:
        interfaces = ", ".join(node["interfaces"]) or "no interfaces"
        branch = "" if root else ("`-- " if last else "|-- ")
        out.append(f"{prefix}{branch}{node['name']}  ({interfaces})")
        inner = prefix if root else prefix + ("    " if last else "|   ")
        children = node["children"]
        for i, child in enumerate(children):
            walk(child, inner, i == len(children) - 1, False)

    for node in result:
        walk(node, "", True, True)
    return "\n".join(out)


def _limit_text(value: Any) -> str:
    return "-" if value is None else str(value)


def _show_vnet(result: Any) -> str:
    parent = f" (child of {result['parent']})" if result["parent"] else ""
    role = "router" if result["forwarding"] else "host"
    out = [f"vnet {result['name']}{parent}, {role}"]
    out.append(f"children: {', '.join(result['children']) or 'none'}")
    out.append(f"subsystems: {' '.join(result['subsystems'])}")
    out.append("limits:")
    rows = []
    for kind, info in result["limits"].items():
        in_force = _limit_text(info["effective"])
        if info["effective"] is not None and info["set_on"] != result["name"]:
            in_force += f" (from {info['set_on']})"
        rows.append(
            [
                kind,
                _limit_text(info["own"]),
                in_force,
                _limit_text(info["in_use"]),
                str(info["refused"]),
            ]
        )
    table = _table(rows, ["KIND", "OWN", "IN FORCE", "IN USE", "REFUSED"])
    out.extend("  " + line for line in table.splitlines())
    out.append("permissions (root always; inherited from the vnets named):")
    for right in ("manage", "sockets"):
        rows_ = result["permissions"][right]
        who = ", ".join(f"{r['principal']} ({r['from']})" for r in rows_) or "root only"
        out.append(f"  {right}: {who}")
    you = result["caller"]
    yes = {True: "yes", False: "no"}
    out.append(
        f"you (uid {you['uid']}): manage {yes[you['manage']]}, sockets {yes[you['sockets']]}, "
        f"change its limits {yes[you['limits']]}"
    )
    return "\n".join(out)


def _show_modules(result: Any) -> str:
    rows = []
    for m in result["modules"]:
        source = m["source"] + (", essential" if m["essential"] else "")
        rows.append(
            [
                m["name"],
                "loaded" if m["loaded"] else "available",
                ", ".join(m["depends"]) or "-",
                ", ".join(m["needed_by"]) or "-",
                source,
            ]
        )
    out = [_table(rows, ["MODULE", "STATE", "DEPENDS", "NEEDED BY", "SOURCE"])]
    out.extend(f"problem: {p}" for p in result["problems"])
    return "\n".join(out)


def _show_module_change(result: Any) -> str:
    verb = "loaded into" if result["loaded"] else "unloaded from"
    return f"{result['name']} {verb} {result['vnets']} vnets; loaded: {' '.join(result['modules'])}"


def _show_created(result: Any) -> str:
    parent = f" (child of {result['parent']})" if result.get("parent") else ""
    return f"vnet {result['name']} created{parent}"


def _show_destroyed(result: Any) -> str:
    return "destroyed: " + ", ".join(result["destroyed"])


def _show_moved(result: Any) -> str:
    return f"{result['interface']}: moved from vnet {result['from']} to vnet {result['to']}"


def _show_epair(result: Any) -> str:
    a, b = result["a"], result["b"]
    return f"epair {a['vnet']}:{a['interface']} <-> {b['vnet']}:{b['interface']} created"


def _show_tap(result: Any) -> str:
    return f"vnet {result['vnet']}: {result['interface']} created, ether {result['mac']}"


def _show_reload(result: Any) -> str:
    changes = result["changes"]
    if not changes:
        return f"{result['config']}: reloaded, no changes"
    return "\n".join([f"{result['config']}: reloaded, {len(changes)} changes", *changes])


Formatter = Callable[[Any], str]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vrouterctl",
        description="Inspect and change a running vrouterd.",
        epilog="Exit status: 0 done, 1 refused by vrouterd (the reason is printed), "
        "2 daemon unreachable or usage error.",
    )
    parser.add_argument(
        "--socket",
        default=os.environ.get("VROUTER_SOCKET", DEFAULT_SOCKET),
        help=f"control socket (default $VROUTER_SOCKET or {DEFAULT_SOCKET})",
    )
    parser.add_argument(
        "-j",
        "--json",
        dest="json_first",
        action="store_true",
        help="print the raw JSON result (also accepted after the command)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def view(name: str, help_: str, *, vnet: bool) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        if vnet:
            p.add_argument("vnet", help="vnet name")
        p.add_argument("-j", "--json", action="store_true", help="print the raw JSON result")
        return p

    def json_flag(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("-j", "--json", action="store_true", help="print the raw JSON result")
        return p

    vnet_p = sub.add_parser("vnet", help="vnets: list, show, create, destroy, tree")
    vnet_sub = vnet_p.add_subparsers(dest="action", required=True)
    json_flag(vnet_sub.add_parser("list", help="list vnets"))
    vshow = json_flag(
        vnet_sub.add_parser(
            "show",
            help="one vnet: its limits (own, in force, in use, refused), who may manage it "
            "or open sockets in it, and what you may do",
        )
    )
    vshow.add_argument("name", help="vnet name")
    create = json_flag(
        vnet_sub.add_parser(
            "create", help="create a vnet (NAME a/b: a child of a, inheriting its sysctls)"
        )
    )
    create.add_argument("name", help="vnet name, e.g. lab or lab/r1")
    destroy = json_flag(vnet_sub.add_parser("destroy", help="destroy a vnet and all it holds"))
    destroy.add_argument("name", help="vnet name")
    destroy.add_argument(
        "-r", "--recursive", action="store_true", help="destroy its child vnets too"
    )
    tree = json_flag(vnet_sub.add_parser("tree", help="show the vnet hierarchy"))
    tree.add_argument("name", nargs="?", default="", help="only this vnet's subtree")
    ifconfig = view(
        "ifconfig",
        "interfaces of a vnet; 'ifconfig VNET IFACE vnet TO' moves one, "
        "'ifconfig VNET IFACE destroy' destroys one",
        vnet=True,
    )
    ifconfig.add_argument(
        "words", nargs="*", metavar="IFACE [vnet TO | destroy]", help="interface and action"
    )
    iface = sub.add_parser("interface", help="move or destroy an interface")
    iface_sub = iface.add_subparsers(dest="action", required=True)
    move = json_flag(iface_sub.add_parser("move", help="move an interface to another vnet"))
    move.add_argument("vnet", help="vnet the interface is in")
    move.add_argument("interface", help="interface name")
    move.add_argument("to", help="vnet to move it to")
    idestroy = json_flag(
        iface_sub.add_parser("destroy", help="destroy an interface (an epair: both ends)")
    )
    idestroy.add_argument("vnet", help="vnet the interface is in")
    idestroy.add_argument("interface", help="interface name")
    epair = sub.add_parser("epair", help="create an epair between two vnets")
    epair_sub = epair.add_subparsers(dest="action", required=True)
    ecreate = json_flag(epair_sub.add_parser("create", help="create an epair, both ends up"))
    ecreate.add_argument("a", metavar="VNET_A:IF", help="one end")
    ecreate.add_argument("b", metavar="VNET_B:IF", help="the other end")
    ecreate.add_argument("--mtu", type=int, default=1500, help="MTU of both ends (1500)")
    tap = sub.add_parser("tap", help="create a TAP interface in a vnet")
    tap_sub = tap.add_subparsers(dest="action", required=True)
    tcreate = json_flag(tap_sub.add_parser("create", help="create a TAP (kernel interface)"))
    tcreate.add_argument("vnet", help="vnet name")
    tcreate.add_argument("interface", help="TAP name (a kernel interface name)")
    tcreate.add_argument("addresses", nargs="*", metavar="ADDR/LEN", help="addresses")
    tcreate.add_argument("--mtu", type=int, default=1500, help="MTU (1500)")
    address = sub.add_parser("address", help="add or remove an interface address")
    address_sub = address.add_subparsers(dest="action", required=True)
    for action, help_ in (("add", "add an address"), ("del", "remove an address")):
        p = json_flag(address_sub.add_parser(action, help=help_))
        p.add_argument("vnet", help="vnet name")
        p.add_argument("interface", help="interface name")
        p.add_argument("address", metavar="ADDR/LEN", help="address with prefix length")
    json_flag(
        sub.add_parser(
            "reload", help="re-read the config file and apply what changed (as SIGHUP does)"
        )
    )
    module = sub.add_parser(
        "module",
        help="subsystems: list, load or unload one in every vnet (daemon admins)",
        description="List the subsystems (loaded in attach order, then the loadable ones: "
        "unloaded built-ins and the vrouter.subsystems entry points), or load or unload "
        "one in every vnet. Unloading is refused while another loaded subsystem needs it; "
        "link, route, inet and inet6 stay loaded.",
    )
    module_sub = module.add_subparsers(dest="action", required=True)
    json_flag(module_sub.add_parser("list", help="subsystems and their dependencies"))
    for action, help_ in (
        ("load", "attach a subsystem to every vnet (its dependencies must be loaded)"),
        ("unload", "detach a subsystem from every vnet and forget its knobs"),
    ):
        p = json_flag(module_sub.add_parser(action, help=help_))
        p.add_argument("name", help="subsystem name, e.g. firewall")
    for name, help_ in (
        ("route", "show, add or remove the routes of a vnet"),
        ("arp", "ARP cache of a vnet"),
        ("ndp", "IPv6 neighbour cache of a vnet"),
    ):
        p = sub.add_parser(name, help=help_)
        s = p.add_subparsers(dest="action", required=True)
        show = s.add_parser("show", help=help_)
        show.add_argument("vnet", help="vnet name")
        show.add_argument("-j", "--json", action="store_true", help="print the raw JSON result")
        if name == "route":
            radd = s.add_parser(
                "add",
                help="add a static route",
                usage="vrouterctl route add VNET PREFIX [via ADDR] [dev IF] "
                "[blackhole|reject] [--json]",
            )
            radd.add_argument("vnet", help="vnet name")
            radd.add_argument("prefix", help="destination ADDR/LEN")
            radd.add_argument("words", nargs="*", metavar="via ADDR | dev IF | blackhole | reject")
            radd.add_argument("-j", "--json", action="store_true", help="print the raw JSON result")
            rdel = s.add_parser("del", help="remove a static route")
            rdel.add_argument("vnet", help="vnet name")
            rdel.add_argument("prefix", help="destination ADDR/LEN")
            rdel.add_argument("-j", "--json", action="store_true", help="print the raw JSON result")
            family = show.add_mutually_exclusive_group()
            family.add_argument(
                "-4", dest="family", action="store_const", const="inet", help="IPv4 only"
            )
            family.add_argument(
                "-6", dest="family", action="store_const", const="inet6", help="IPv6 only"
            )
    bridge = sub.add_parser("bridge", help="the bridges of a vnet and their FDB")
    bridge_sub = bridge.add_subparsers(dest="action", required=True)
    for action, help_ in (
        ("show", "bridges, their ports, VLANs and counters"),
        ("fdb", "learnt and static MACs, by bridge and VLAN"),
    ):
        p = json_flag(bridge_sub.add_parser(action, help=help_))
        p.add_argument("vnet", help="vnet name")
        p.add_argument("bridge", nargs="?", default="", help="one bridge (default: all)")
    view("netstat", "protocol statistics of a vnet", vnet=True)
    view("sockstat", "sockets programs hold in a vnet", vnet=True)
    sysctl = view("sysctl", "read or set a vnet's sysctl knobs", vnet=True)
    sysctl.add_argument("-a", "--all", action="store_true", help="list every knob")
    sysctl.add_argument(
        "knobs", nargs="*", metavar="NAME[=VALUE]", help="knobs to show, or to set with NAME=VALUE"
    )
    view("status", "daemon status", vnet=False)
    fw = sub.add_parser("firewall", help="a vnet's firewall: rules, states, ruleset reload")
    fw.add_argument("vnet", help="vnet name")
    fw_sub = fw.add_subparsers(dest="action", required=True)
    for name, help_ in (
        ("show", "rules with their counters"),
        ("states", "tracked flows"),
        ("flush", "forget every state"),
    ):
        p = fw_sub.add_parser(name, help=help_)
        p.add_argument("-j", "--json", action="store_true", help="print the raw JSON result")
    load = fw_sub.add_parser("load", help="replace the ruleset atomically from a TOML file")
    load.add_argument("file", help="TOML file with default, [tables] and [[rules]]")
    load.add_argument("-j", "--json", action="store_true", help="print the raw JSON result")
    # ``capture`` takes tcpdump's argument order (options may follow the vnet and
    # interface), which needs parse_intermixed_args: main() hands its words,
    # left unparsed here, to _capture_parser.
    sub.add_parser("capture", help="capture an interface's frames, like tcpdump", add_help=False)
    return parser


def _capture_parser() -> argparse.ArgumentParser:
    cap = argparse.ArgumentParser(
        prog="vrouterctl capture",
        description="Capture the frames of one interface of a vnet, like tcpdump.",
        epilog="Exit status: 0 done, 1 refused (vnet, interface, filter), 2 daemon unreachable.",
    )
    cap.add_argument("vnet", help="vnet name")
    cap.add_argument("interface", help="interface name in that vnet")
    cap.add_argument("-c", dest="count", type=_positive, metavar="N", help="stop after N packets")
    cap.add_argument(
        "-w", dest="write", metavar="FILE", help="write pcap to FILE ('-': standard output)"
    )
    cap.add_argument(
        "-s",
        dest="snaplen",
        type=int,
        default=0,
        metavar="SNAPLEN",
        help=f"bytes kept of each frame (default and 0: {SNAPLEN_MAX})",
    )
    cap.add_argument(
        "--direction", choices=("in", "out", "both"), default="both", help="frames to capture"
    )
    cap.add_argument("filter", nargs="*", metavar="FILTER", help="tcpdump filter expression")
    return cap


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _capture(socket_path: str, words: list[str]) -> int:
    """Run ``vrouterctl capture WORDS``; return the exit status."""
    args = _capture_parser().parse_intermixed_args(words)
    args.socket = socket_path
    snaplen = args.snaplen or SNAPLEN_MAX
    request = {
        "vnet": args.vnet,
        "interface": args.interface,
        "snaplen": snaplen,
        "direction": args.direction,
        "filter": " ".join(args.filter),
    }
    try:
        with Client(args.socket) as client:
            _, fd = client.call_fd("capture", **request)
    except KeyboardInterrupt:
        return 130
    except ApiError as err:
        print(f"vrouterctl: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"vrouterctl: cannot reach vrouterd at {args.socket}: {err}", file=sys.stderr)
        return 2
    with socket.socket(fileno=fd) as sock:
        out: BinaryIO | None = None
        if args.write == "-":
            out = sys.stdout.buffer
        elif args.write is not None:
            try:
                out = open(args.write, "wb")  # noqa: SIM115 - closed below
            except OSError as err:
                print(f"vrouterctl: {args.write}: {err.strerror}", file=sys.stderr)
                return 1
        try:
            return _receive(sock, args, snaplen, out)
        finally:
            if out is not None and out is not sys.stdout.buffer:
                out.close()


def _receive(
    sock: socket.socket, args: argparse.Namespace, snaplen: int, out: BinaryIO | None
) -> int:
    """Copy records from ``sock`` to ``out`` (pcap) or stdout (lines) until done."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # end like Ctrl-C: flush, count
    pcap: PcapWriter | None = None
    flush = out.flush if out is not None else sys.stdout.flush
    buf = bytearray(HEADER_LEN + snaplen)
    view = memoryview(buf)
    count = dropped = 0
    ended = False
    try:
        if out is not None:
            pcap = PcapWriter(out, snaplen)
            flush()
        print(
            f"vrouterctl: listening on {args.vnet} {args.interface}, "
            f"link-type EN10MB (Ethernet), snapshot length {snaplen} bytes",
            file=sys.stderr,
            flush=True,
        )
        while args.count is None or count < args.count:
            try:
                n = sock.recv_into(buf, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:  # idle: let the reader see what we have
                flush()
                n = sock.recv_into(buf)
            if n == 0:
                ended = True
                break
            record = decode_record(view[:n])
            dropped = max(dropped, record.dropped)
            if pcap is not None:
                pcap.write(record.timestamp_ns, record.frame, record.orig_len)
            else:
                print(summarize(record))
            count += 1
        flush()
    except KeyboardInterrupt:
        try:
            flush()
        except BrokenPipeError:
            _stdout_gone()
    except BrokenPipeError:  # the reader of our output went away (| head, tcpdump -c)
        _stdout_gone()
    if ended:
        print("vrouterctl: capture ended by vrouterd (interface or daemon gone)", file=sys.stderr)
    print(f"{count} packets captured", file=sys.stderr)
    if dropped:
        print(f"{dropped} packets dropped by vrouterd (reader too slow)", file=sys.stderr)
    return 0


def _stdout_gone() -> None:
    """Point stdout at /dev/null so the interpreter's final flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _usage(message: str) -> SystemExit:
    print(f"vrouterctl: {message}", file=sys.stderr)
    return SystemExit(2)


def _route_words(words: list[str]) -> dict[str, Any]:
    """Parse ``[via ADDR] [dev IF] [blackhole|reject]`` into route.add arguments."""
    result: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("via", "dev", "interface") and i + 1 < len(words):
            result["via" if word == "via" else "interface"] = words[i + 1]
            i += 2
        elif word in ("blackhole", "reject", "unicast"):
            result["type"] = word
            i += 1
        else:
            raise _usage(
                f"route add: unexpected {word!r}; expected via ADDR, dev IF, blackhole or reject"
            )
    return result


def _show_done_route(result: Any) -> str:
    return _show_routes([result])


Request = tuple[str, dict[str, Any], Formatter]
"""An operation's name, its arguments and how to print its result."""


def _ifconfig(args: argparse.Namespace) -> Request:
    words = args.words
    if not words:
        return "ifconfig", {"vnet": args.vnet}, _show_ifconfig
    if len(words) == 3 and words[1] == "vnet":
        move = {"vnet": args.vnet, "interface": words[0], "to": words[2]}
        return "interface.move", move, _show_moved
    if len(words) == 2 and words[1] == "destroy":
        return "interface.destroy", {"vnet": args.vnet, "interface": words[0]}, _show_destroyed
    raise _usage("ifconfig VNET [IFACE vnet TO | IFACE destroy]")


def _address_change(args: argparse.Namespace) -> Request:
    addr_args = {"vnet": args.vnet, "interface": args.interface, "address": args.address}
    verb = "added" if args.action == "add" else "removed"
    return (
        f"address.{args.action}",
        addr_args,
        lambda r: f"vnet {r['vnet']}: {r['interface']}: {r['address']} {verb}",
    )


def _route_show(args: argparse.Namespace) -> Request:
    route_args: dict[str, Any] = {"vnet": args.vnet}
    if args.family:
        route_args["family"] = args.family
    return "route.show", route_args, _show_routes


def _firewall_load(args: argparse.Namespace) -> Request:
    try:
        with open(args.file, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise SystemExit(f"vrouterctl: {args.file}: {err.strerror}") from None
    return "firewall.load", {"vnet": args.vnet, "text": text, "source": args.file}, _show_done


def _sysctl(args: argparse.Namespace) -> Request:
    assignments = [k for k in args.knobs if "=" in k]
    if assignments and len(assignments) != len(args.knobs):
        raise _usage("sysctl: either show NAMEs or set NAME=VALUEs, not both")
    if assignments:
        settings = dict(k.split("=", 1) for k in assignments)
        return "sysctl.set", {"vnet": args.vnet, "settings": settings}, _show_sysctl
    return "sysctl.get", {"vnet": args.vnet, "names": args.knobs}, _show_sysctl


COMMANDS: dict[tuple[str, str | None], Callable[[argparse.Namespace], Request]] = {
    ("status", None): lambda a: ("status", {}, _show_status),
    ("reload", None): lambda a: ("reload", {}, _show_reload),
    ("vnet", "list"): lambda a: ("vnet.list", {}, _show_vnets),
    ("vnet", "show"): lambda a: ("vnet.show", {"vnet": a.name}, _show_vnet),
    ("vnet", "tree"): lambda a: ("vnet.tree", {"name": a.name}, _show_tree),
    ("vnet", "create"): lambda a: ("vnet.create", {"name": a.name}, _show_created),
    ("vnet", "destroy"): lambda a: (
        "vnet.destroy",
        {"name": a.name, "recursive": a.recursive},
        _show_destroyed,
    ),
    ("module", "list"): lambda a: ("module.list", {}, _show_modules),
    ("module", "load"): lambda a: ("module.load", {"name": a.name}, _show_module_change),
    ("module", "unload"): lambda a: ("module.unload", {"name": a.name}, _show_module_change),
    ("ifconfig", None): _ifconfig,
    ("interface", "move"): lambda a: (
        "interface.move",
        {"vnet": a.vnet, "interface": a.interface, "to": a.to},
        _show_moved,
    ),
    ("interface", "destroy"): lambda a: (
        "interface.destroy",
        {"vnet": a.vnet, "interface": a.interface},
        _show_destroyed,
    ),
    ("epair", "create"): lambda a: (
        "epair.create",
        {"a": a.a, "b": a.b, "mtu": a.mtu},
        _show_epair,
    ),
    ("tap", "create"): lambda a: (
        "tap.create",
        {"vnet": a.vnet, "interface": a.interface, "addresses": a.addresses, "mtu": a.mtu},
        _show_tap,
    ),
    ("address", "add"): _address_change,
    ("address", "del"): _address_change,
    ("route", "show"): _route_show,
    ("route", "add"): lambda a: (
        "route.add",
        {"vnet": a.vnet, "prefix": a.prefix, **_route_words(a.words)},
        _show_done_route,
    ),
    ("route", "del"): lambda a: (
        "route.del",
        {"vnet": a.vnet, "prefix": a.prefix},
        _show_done_route,
    ),
    ("arp", "show"): lambda a: ("arp.show", {"vnet": a.vnet}, _show_arp),
    ("ndp", "show"): lambda a: ("ndp.show", {"vnet": a.vnet}, _show_ndp),
    ("bridge", "show"): lambda a: (
        "bridge.show",
        {"vnet": a.vnet, "bridge": a.bridge},
        _show_bridges,
    ),
    ("bridge", "fdb"): lambda a: ("bridge.fdb", {"vnet": a.vnet, "bridge": a.bridge}, _show_fdb),
    ("netstat", None): lambda a: ("netstat", {"vnet": a.vnet}, _show_netstat),
    ("sockstat", None): lambda a: ("sockstat", {"vnet": a.vnet}, _show_sockstat),
    ("sysctl", None): _sysctl,
    ("firewall", "show"): lambda a: ("firewall.show", {"vnet": a.vnet}, _show_firewall),
    ("firewall", "states"): lambda a: ("firewall.states", {"vnet": a.vnet}, _show_states),
    ("firewall", "flush"): lambda a: ("firewall.flush", {"vnet": a.vnet}, _show_done),
    ("firewall", "load"): _firewall_load,
}
"""Every command but ``capture``, by (command, action): the request it makes."""


def _request(args: argparse.Namespace) -> Request:
    """Return the request ``args`` make, checked against the operation's schema."""
    op, op_args, formatter = COMMANDS[(args.command, getattr(args, "action", None))](args)
    try:
        TABLE[op].check(op_args)
    except ApiError as err:
        raise _usage(f"{args.command}: {err}") from None
    return op, op_args, formatter


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vrouterctl``."""
    parser = _parser()
    args, words = parser.parse_known_args(argv)
    if args.command == "capture":
        return _capture(args.socket, words)
    if words:
        parser.error(f"unrecognized arguments: {' '.join(words)}")
    op, op_args, formatter = _request(args)
    try:
        with Client(args.socket) as client:
            result = client.call(op, **op_args)
    except ApiError as err:
        print(f"vrouterctl: {err}", file=sys.stderr)
        return 1
    except (ConnectionError, ValueError) as err:  # a reply cut short or not JSON
        print(f"vrouterctl: vrouterd's reply could not be read: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"vrouterctl: cannot reach vrouterd at {args.socket}: {err}", file=sys.stderr)
        return 2
    try:
        raw = getattr(args, "json", False) or args.json_first
        print(json.dumps(result, indent=2) if raw else formatter(result))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (| head, | grep -q): say nothing
        _stdout_gone()
    return 0


if __name__ == "__main__":
    sys.exit(main())
