"""``vrouterctl``: look into and change a running vrouterd through its control socket.

Every command takes ``--json`` for the raw API result; without it the output
is laid out like the BSD tools it is named after.  Changes take effect at
once and are not written to the config file: ``vrouterctl reload`` re-reads
the file and applies only what differs from the file last loaded.

The commands are :data:`COMMANDS`, each building the request of one
control operation (:mod:`vrouter.api.operations`), checked against its
schema before it is sent; :mod:`vrouter.cli.render` lays the results out.
``vrouterctl capture`` is tcpdump for an interface of a vnet
(:mod:`vrouter.cli.capture`).  Exit status: 0 done, 1 refused (for ``config
diff``: the file differs, as with diff(1)), 2 daemon unreachable (or a usage error).

vrouterd knows who runs vrouterctl (the kernel tells it the uid, gid and
groups on the control socket): views work for anyone who can connect;
changes need the rights the config grants (``permission denied: …``,
exit 1).  ``vrouterctl vnet show NAME`` shows a vnet's limits, who may
manage it, and what the caller may do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from vrouter import __version__
from vrouter.api.client import DEFAULT_SOCKET
from vrouter.api.operations import TABLE
from vrouter.api.protocol import ApiError
from vrouter.cli import completion, reach, render


def _vids(text: str) -> list[int]:
    try:
        return [int(word) for word in text.split(",") if word]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected VLAN IDs like 10,20") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vrouterctl",
        description="Inspect and change a running vrouterd.",
        epilog="Exit status: 0 done, 1 refused by vrouterd (the reason is printed) or, for "
        "'config diff', the file differs, 2 daemon unreachable or usage error.",
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
        ("rtadv", "what a host vnet learnt from router advertisements"),
    ):
        p = sub.add_parser(name, help=help_)
        s = p.add_subparsers(dest="action", required=True)
        show = s.add_parser("show", help=_ROUTE_SHOW if name == "route" else help_)
        show.add_argument("vnet", help="vnet name")
        show.add_argument("-j", "--json", action="store_true", help="print the raw JSON result")
        if name == "route":
            radd = s.add_parser(
                "add",
                help="add a static route (distance N: a floating static route; "
                "via twice or more: ECMP)",
                usage="vrouterctl route add VNET PREFIX [via ADDR [dev IF] [weight N]]... [dev IF] "
                "[blackhole|reject] [distance N] [--json]",
            )
            radd.add_argument("vnet", help="vnet name")
            radd.add_argument("prefix", help="destination ADDR/LEN")
            radd.add_argument(
                "words",
                nargs="*",
                metavar="via ADDR | dev IF | weight N | blackhole | reject | distance N",
            )
            radd.add_argument("-j", "--json", action="store_true", help="print the raw JSON result")
            rdel = s.add_parser("del", help="remove a static route")
            rdel.add_argument("vnet", help="vnet name")
            rdel.add_argument("prefix", help="destination ADDR/LEN")
            rdel.add_argument("-j", "--json", action="store_true", help="print the raw JSON result")
            show.add_argument(
                "prefix", nargs="?", metavar="PREFIX", help="only routes within ADDR/LEN"
            )
            show.add_argument("--limit", type=int, metavar="N", help="at most N routes")
            show.add_argument("--source", help="only the routes of this source (static, rip …)")
            family = show.add_mutually_exclusive_group()
            family.add_argument(
                "-4", dest="family", action="store_const", const="inet", help="IPv4 only"
            )
            family.add_argument(
                "-6", dest="family", action="store_const", const="inet6", help="IPv6 only"
            )
    bridge = sub.add_parser("bridge", help="the bridges of a vnet and their FDB")
    bridge_sub = bridge.add_subparsers(dest="action", required=True)
    bshow = json_flag(bridge_sub.add_parser("show", help="bridges, their ports, VLANs, counters"))
    bshow.add_argument("vnet", help="vnet name")
    bshow.add_argument("bridge", nargs="?", default="", help="one bridge (default: all)")
    bfdb = json_flag(
        bridge_sub.add_parser(
            "fdb",
            help="learnt and static MACs, by bridge and VLAN; add or remove static ones",
            usage="%(prog)s VNET [BRIDGE] | VNET add|del MAC PORT [vlan VID] [dst ADDR]",
        )
    )
    bfdb.add_argument("vnet", help="vnet name")
    bfdb.add_argument(
        "words", nargs="*", metavar="WORD",
        help="BRIDGE to show one bridge's; add|del MAC PORT [vlan VID] [dst ADDR] to change",
    )  # fmt: skip
    bcreate = json_flag(bridge_sub.add_parser("create", help="create a bridge over interfaces"))
    bcreate.add_argument("vnet", help="vnet name")
    bcreate.add_argument("bridge", help="the bridge's name")
    bcreate.add_argument("members", nargs="*", metavar="MEMBER", help="member interfaces")
    bcreate.add_argument(
        "--address", dest="addresses", action="append", default=[], metavar="ADDR/LEN",
        help="an address of the bridge (repeatable)",
    )  # fmt: skip
    bcreate.add_argument("--vlan-filtering", action="store_true", help="filter by VLAN")
    bcreate.add_argument("--pvid", type=int, default=1, help="the bridge's own VLAN (1)")
    bcreate.add_argument("--mtu", type=int, help="MTU (default: the smallest member's)")
    bcreate.add_argument("--stp", action="store_true", help="run the spanning tree (STP or RSTP)")
    _stp_options(bcreate)
    badd = json_flag(bridge_sub.add_parser("add", help="make an interface a member of a bridge"))
    bdel = json_flag(bridge_sub.add_parser("del", help="take a member out of a bridge"))
    for p in (badd, bdel):
        p.add_argument("vnet", help="vnet name")
        p.add_argument("bridge", help="the bridge's name")
        p.add_argument("interface", help="the member interface")
    badd.add_argument("--pvid", type=int, default=1, help="VLAN of untagged frames (1; 0: none)")
    badd.add_argument("--tagged", type=_vids, default=[], metavar="VID,...", help="tagged VLANs")
    badd.add_argument("--storm-pps", type=int, default=0, help="broadcast+multicast frames/s (0)")
    badd.add_argument("--path-cost", type=int, default=100, help="spanning tree path cost (100)")
    badd.add_argument(
        "--port-priority", type=int, default=32, help="spanning tree port priority, 0..63 (32)"
    )
    _edge_options(badd)
    bstp = json_flag(
        bridge_sub.add_parser(
            "stp",
            help="turn the spanning tree (802.1D STP or RSTP) on or off, set its protocol, "
            "priority and times",
            usage="%(prog)s VNET BRIDGE [on|off] [--protocol stp|rstp] [--priority N] "
            "[--hello-time S] [--max-age S] [--forward-delay S]",
        )
    )
    bstp.add_argument("vnet", help="vnet name")
    bstp.add_argument("bridge", help="the bridge's name")
    bstp.add_argument("state", nargs="?", choices=("on", "off"), help="on or off (default: as is)")
    _stp_options(bstp)
    bpstp = json_flag(
        bridge_sub.add_parser(
            "port-stp", help="set a member's spanning tree path cost, priority, RSTP edge; mcheck"
        )
    )
    bpstp.add_argument("vnet", help="vnet name")
    bpstp.add_argument("bridge", help="the bridge's name")
    bpstp.add_argument("interface", help="the member interface")
    bpstp.add_argument("--path-cost", type=int, help="1..65535 (100)")
    bpstp.add_argument("--port-priority", type=int, help="0..63 (32)")
    _edge_options(bpstp)
    bpstp.add_argument("--mcheck", action="store_true", help="RSTP: try RSTP again (after STP)")
    vlan = sub.add_parser("vlan", help="802.1Q VLAN interfaces")
    vlan_sub = vlan.add_subparsers(dest="action", required=True)
    vcreate = json_flag(vlan_sub.add_parser("create", help="create a VLAN interface on a parent"))
    vcreate.add_argument("vnet", help="vnet name")
    vcreate.add_argument("parent", help="the parent interface (tap, epair or bridge)")
    vcreate.add_argument("vid", type=int, help="the VLAN ID (1..4094)")
    vcreate.add_argument("addresses", nargs="*", metavar="ADDR/LEN", help="addresses")
    vcreate.add_argument("--name", help="the interface's name (default: PARENT.VID)")
    vcreate.add_argument("--mtu", type=int, help="MTU (default: the parent's)")
    vxlan = sub.add_parser("vxlan", help="VXLAN interfaces: remote VTEPs and learnt MACs")
    vxlan_sub = vxlan.add_subparsers(dest="action", required=True)
    xshow = json_flag(vxlan_sub.add_parser("show", help="remote VTEPs, their MACs and counters"))
    xshow.add_argument("vnet", help="vnet name")
    xshow.add_argument("interface", nargs="?", default="", help="one interface (default: all)")
    xcreate = json_flag(vxlan_sub.add_parser("create", help="create a VXLAN interface"))
    xcreate.add_argument("vnet", help="vnet name")
    xcreate.add_argument("interface", help="its name")
    xcreate.add_argument("--vni", type=int, required=True, help="the VNI (0..16777215)")
    xcreate.add_argument(
        "--local", required=True,
        help="the local VTEP address (the host's, or the underlay vnet's)",
    )  # fmt: skip
    xcreate.add_argument(
        "--underlay", default="", metavar="VNET",
        help="a vnet whose UDP carries the outer packets (default: the host's)",
    )  # fmt: skip
    xcreate.add_argument("--port", type=int, default=4789, help="the UDP port (4789)")
    xcreate.add_argument(
        "--remote", dest="remotes", action="append", default=[], metavar="ADDR",
        help="a remote VTEP (repeatable): BUM frames go to each",
    )  # fmt: skip
    xcreate.add_argument("--group", default="", help="a multicast group instead of remotes")
    xcreate.add_argument("--no-learning", action="store_true", help="learn no inner MACs")
    xcreate.add_argument(
        "--tunnel-gso", action="store_true",
        help="TCP super-frames leave whole through a TAP with UDP-tunnel GSO and the "
        "kernel segments them; the VTEPs' arrive whole through it, redirected from the "
        "device holding --local (Linux 6.17+; the socket alone where it cannot)",
    )  # fmt: skip
    xcreate.add_argument(
        "--address", dest="addresses", action="append", default=[], metavar="ADDR/LEN",
        help="an address of the interface (repeatable; none as a bridge member)",
    )  # fmt: skip
    xcreate.add_argument("--mtu", type=int, help="MTU (default: 1450, or 1430 over IPv6)")
    view("netstat", "protocol statistics of a vnet", vnet=True)
    view("sockstat", "sockets programs hold in a vnet", vnet=True)
    sysctl = view("sysctl", "read or set a vnet's sysctl knobs", vnet=True)
    sysctl.add_argument("-a", "--all", action="store_true", help="list every knob")
    sysctl.add_argument(
        "knobs", nargs="*", metavar="NAME[=VALUE]", help="knobs to show, or to set with NAME=VALUE"
    )
    view("status", "daemon status", vnet=False)
    config = sub.add_parser("config", help="the running configuration: dump, diff with a file")
    config_sub = config.add_subparsers(dest="action", required=True)
    json_flag(config_sub.add_parser("dump", help="print the running configuration, a config file"))
    cdiff = json_flag(
        config_sub.add_parser(
            "diff",
            help="what differs between the running state and a config file (exit 1 if any)",
            description="Compare the running state with FILE (default: the file vrouterd runs, "
            "read again): '- KEY = VALUE' is in the file only, '+ KEY = VALUE' only running "
            "(made at run time), '~ KEY = FILE -> RUNNING' differs. Exit status 0: equal, "
            "1: they differ, as diff(1).",
        )
    )
    cdiff.add_argument("file", nargs="?", help="the config file (default: the daemon's own)")
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
    dhcp = sub.add_parser("dhcp", help="a vnet's DHCP server")
    dhcp.add_argument("vnet")
    dhcp_sub = dhcp.add_subparsers(dest="action", required=True)
    json_flag(dhcp_sub.add_parser("leases", help="leases, pools and counters"))
    mirror = sub.add_parser("mirror", help="a vnet's control-plane mirror")
    mirror_sub = mirror.add_subparsers(dest="action", required=True)
    mshow = json_flag(mirror_sub.add_parser("show", help="namespace, representors, counters"))
    mshow.add_argument("vnet")
    run = sub.add_parser(
        "exec",
        help="run a program in a vnet's mirror (root only), like jexec",
        description="Run CMD in the network namespace of VNET's control-plane mirror, where "
        "it sees the vnet's interfaces and addresses. Root only for now.",
    )
    run.add_argument("vnet")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARG ...]")
    comp = sub.add_parser(
        "completion",
        help="print the shell completion script (bash, zsh)",
        description="Print a script that completes vrouterctl's commands, options and, from "
        "the running daemon, vnet and interface names. bash: "
        "'source <(vrouterctl completion bash)'; zsh: 'source <(vrouterctl completion zsh)'.",
    )
    comp.add_argument("shell", choices=sorted(completion.SCRIPTS), help="the shell")
    return parser


def _usage(message: str) -> SystemExit:
    print(f"vrouterctl: {message}", file=sys.stderr)
    return SystemExit(2)


def _stp_options(p: argparse.ArgumentParser) -> None:
    """A bridge's spanning tree priority and times (``bridge create`` and ``bridge stp``)."""
    p.add_argument("--priority", type=int, help="bridge priority 0..65535 (32768)")
    p.add_argument("--hello-time", type=int, help="seconds, 1..10 (2)")
    p.add_argument(
        "--max-age", type=int,
        help="seconds, 6..40 (20); 2 x (forward delay - 1) >= max age >= 2 x (hello time + 1)",
    )  # fmt: skip
    p.add_argument("--forward-delay", type=int, help="seconds, 2..30 (15)")
    p.add_argument(
        "--protocol", choices=("stp", "rstp"), help="stp (802.1D, the default) or rstp (802.1w)"
    )


def _edge_options(p: argparse.ArgumentParser) -> None:
    """A member's RSTP edge settings (``bridge add`` and ``bridge port-stp``)."""
    p.add_argument("--edge", choices=("on", "off"), help="RSTP: a station's port, forwards at once")
    p.add_argument("--auto-edge", choices=("on", "off"), help="RSTP: edge if no BPDU in 3 s (on)")


def _onoff(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def _given(**args: Any) -> dict[str, Any]:
    """Return ``args`` without the ones left out (None)."""
    return {key: value for key, value in args.items() if value is not None}


def _bridge_fdb(a: argparse.Namespace) -> tuple[str, dict[str, Any], Callable[[Any], str]]:
    """``bridge fdb VNET [BRIDGE]`` shows; ``bridge fdb VNET add|del MAC PORT [vlan VID]
    [dst ADDR]`` changes a static entry."""
    words: list[str] = a.words
    if len(words) <= 1:
        return "bridge.fdb", {"vnet": a.vnet, "bridge": words[0] if words else ""}, render.show_fdb
    if words[0] not in ("add", "del") or len(words) < 3:
        raise _usage("bridge fdb: expected VNET [BRIDGE] or VNET add|del MAC PORT [vlan VID] "
                     "[dst ADDR]")  # fmt: skip
    action, mac, port = words[:3]
    args: dict[str, Any] = {"vnet": a.vnet, "mac": mac, "port": port}
    rest = words[3:]
    while rest:
        if len(rest) < 2 or rest[0] not in ("vlan", "dst") or (
            rest[0] == "dst" and action == "del"
        ):
            extra = "vlan VID or dst ADDR" if action == "add" else "vlan VID"
            raise _usage(f"bridge fdb {action}: unexpected {rest[0]!r}; expected {extra}")
        if rest[0] == "vlan":
            if not rest[1].isdigit():
                raise _usage(f"bridge fdb {action}: vlan {rest[1]!r} is not a number")
            args["vlan"] = int(rest[1])
        else:
            args["dst"] = rest[1]
        rest = rest[2:]
    return f"bridge.fdb.{action}", args, render.show_fdb_change


def _path_text(hop: dict[str, str]) -> str:
    """Return route.add's text of one path: ``ADDR[%IF][ weight N]``."""
    text = "%".join(filter(None, (hop["via"], hop.get("dev"))))
    return f"{text} weight {hop['weight']}" if "weight" in hop else text


def _route_words(words: list[str]) -> dict[str, Any]:
    """Parse ``[via ADDR [dev IF] [weight N]]... [dev IF] [blackhole|reject]`` into
    route.add arguments.

    ``via`` given more than once makes a multipath (ECMP) route: each ``dev``
    and ``weight`` belongs to the ``via`` before it.
    """
    result: dict[str, Any] = {}
    hops: list[dict[str, str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "via" and i + 1 < len(words):
            hops.append({"via": words[i + 1]})
            i += 2
        elif word in ("dev", "interface") and i + 1 < len(words):
            if hops and "dev" not in hops[-1]:
                hops[-1]["dev"] = words[i + 1]
            else:
                result["interface"] = words[i + 1]
            i += 2
        elif word == "weight" and hops and "weight" not in hops[-1] and i + 1 < len(words):
            hops[-1]["weight"] = words[i + 1]
            i += 2
        elif word == "distance" and i + 1 < len(words) and words[i + 1].isdigit():
            result["distance"] = int(words[i + 1])
            i += 2
        elif word in ("blackhole", "reject", "unicast"):
            result["type"] = word
            i += 1
        else:
            raise _usage(
                f"route add: unexpected {word!r}; expected via ADDR, dev IF, weight N, "
                "blackhole, reject or distance N"
            )
    if len(hops) > 1:
        result["paths"] = [_path_text(hop) for hop in hops]
    elif hops:
        if "weight" in hops[0]:
            raise _usage("route add: a weight shares flows between two or more via")
        result["via"] = hops[0]["via"]
        if "dev" in hops[0]:
            result["interface"] = hops[0]["dev"]
    return result


Request = tuple[str, dict[str, Any], render.Formatter]
"""An operation's name, its arguments and how to print its result."""


def _ifconfig(args: argparse.Namespace) -> Request:
    words = args.words
    if not words:
        return "ifconfig", {"vnet": args.vnet}, render.show_ifconfig
    if len(words) == 3 and words[1] == "vnet":
        move = {"vnet": args.vnet, "interface": words[0], "to": words[2]}
        return "interface.move", move, render.show_moved
    if len(words) == 2 and words[1] == "destroy":
        destroy = {"vnet": args.vnet, "interface": words[0]}
        return "interface.destroy", destroy, render.show_destroyed
    raise _usage("ifconfig VNET [IFACE vnet TO | IFACE destroy]")


def _address_change(args: argparse.Namespace) -> Request:
    addr_args = {"vnet": args.vnet, "interface": args.interface, "address": args.address}
    verb = "added" if args.action == "add" else "removed"
    return (
        f"address.{args.action}",
        addr_args,
        lambda r: f"vnet {r['vnet']}: {r['interface']}: {r['address']} {verb}",
    )


_ROUTE_SHOW = (
    "the routes of a vnet; Use is the packets of the route's next hop, which the "
    "routes going the same way share (as FreeBSD 13's netstat -r shows it)"
)


def _route_show(args: argparse.Namespace) -> Request:
    route_args: dict[str, Any] = {"vnet": args.vnet}
    for key in ("family", "prefix", "limit", "source"):
        if getattr(args, key) is not None:
            route_args[key] = getattr(args, key)
    return "route.show", route_args, render.show_routes


def _firewall_load(args: argparse.Namespace) -> Request:
    try:
        with open(args.file, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise _usage(f"{args.file}: {err.strerror}") from None
    return "firewall.load", {"vnet": args.vnet, "text": text, "source": args.file}, render.show_done


def _config_diff(args: argparse.Namespace) -> Request:
    if args.file is None:
        return "config.diff", {}, render.show_config_diff
    try:
        with open(args.file, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        raise _usage(f"{args.file}: {getattr(err, 'strerror', None) or err}") from None
    return "config.diff", {"text": text, "source": args.file}, render.show_config_diff


def _sysctl(args: argparse.Namespace) -> Request:
    assignments = [k for k in args.knobs if "=" in k]
    if assignments and len(assignments) != len(args.knobs):
        raise _usage("sysctl: either show NAMEs or set NAME=VALUEs, not both")
    if assignments:
        settings = dict(k.split("=", 1) for k in assignments)
        return "sysctl.set", {"vnet": args.vnet, "settings": settings}, render.show_sysctl
    return "sysctl.get", {"vnet": args.vnet, "names": args.knobs}, render.show_sysctl


COMMANDS: dict[tuple[str, str | None], Callable[[argparse.Namespace], Request]] = {
    ("status", None): lambda a: ("status", {}, render.show_status),
    ("reload", None): lambda a: ("reload", {}, render.show_reload),
    ("config", "dump"): lambda a: ("config.dump", {}, render.show_config),
    ("config", "diff"): _config_diff,
    ("vnet", "list"): lambda a: ("vnet.list", {}, render.show_vnets),
    ("vnet", "show"): lambda a: ("vnet.show", {"vnet": a.name}, render.show_vnet),
    ("vnet", "tree"): lambda a: ("vnet.tree", {"name": a.name}, render.show_tree),
    ("vnet", "create"): lambda a: ("vnet.create", {"name": a.name}, render.show_created),
    ("vnet", "destroy"): lambda a: (
        "vnet.destroy",
        {"name": a.name, "recursive": a.recursive},
        render.show_destroyed,
    ),
    ("module", "list"): lambda a: ("module.list", {}, render.show_modules),
    ("module", "load"): lambda a: ("module.load", {"name": a.name}, render.show_module_change),
    ("module", "unload"): lambda a: ("module.unload", {"name": a.name}, render.show_module_change),
    ("ifconfig", None): _ifconfig,
    ("interface", "move"): lambda a: (
        "interface.move",
        {"vnet": a.vnet, "interface": a.interface, "to": a.to},
        render.show_moved,
    ),
    ("interface", "destroy"): lambda a: (
        "interface.destroy",
        {"vnet": a.vnet, "interface": a.interface},
        render.show_destroyed,
    ),
    ("epair", "create"): lambda a: (
        "epair.create",
        {"a": a.a, "b": a.b, "mtu": a.mtu},
        render.show_epair,
    ),
    ("tap", "create"): lambda a: (
        "tap.create",
        {"vnet": a.vnet, "interface": a.interface, "addresses": a.addresses, "mtu": a.mtu},
        render.show_tap,
    ),
    ("address", "add"): _address_change,
    ("address", "del"): _address_change,
    ("route", "show"): _route_show,
    ("route", "add"): lambda a: (
        "route.add",
        {"vnet": a.vnet, "prefix": a.prefix, **_route_words(a.words)},
        render.show_done_route,
    ),
    ("route", "del"): lambda a: (
        "route.del",
        {"vnet": a.vnet, "prefix": a.prefix},
        render.show_done_route,
    ),
    ("arp", "show"): lambda a: ("arp.show", {"vnet": a.vnet}, render.show_arp),
    ("ndp", "show"): lambda a: ("ndp.show", {"vnet": a.vnet}, render.show_ndp),
    ("rtadv", "show"): lambda a: ("rtadv.show", {"vnet": a.vnet}, render.show_rtadv),
    ("bridge", "show"): lambda a: (
        "bridge.show",
        {"vnet": a.vnet, "bridge": a.bridge},
        render.show_bridges,
    ),
    ("bridge", "create"): lambda a: (
        "bridge.create",
        {
            "vnet": a.vnet,
            "interface": a.bridge,
            "members": a.members,
            "addresses": a.addresses,
            "vlan_filtering": a.vlan_filtering,
            "pvid": a.pvid,
            "mtu": a.mtu,
            "stp": a.stp,
            **_given(priority=a.priority, hello_time=a.hello_time, max_age=a.max_age,
                     forward_delay=a.forward_delay, stp_protocol=a.protocol),
        },
        render.show_bridge_created,
    ),
    ("bridge", "add"): lambda a: (
        "bridge.port.add",
        {
            "vnet": a.vnet,
            "bridge": a.bridge,
            "interface": a.interface,
            "pvid": a.pvid,
            "tagged": a.tagged,
            "storm_pps": a.storm_pps,
            "path_cost": a.path_cost,
            "port_priority": a.port_priority,
            **_given(edge=_onoff(a.edge), auto_edge=_onoff(a.auto_edge)),
        },
        render.show_port_change,
    ),
    ("bridge", "stp"): lambda a: (
        "bridge.stp",
        _given(
            vnet=a.vnet, bridge=a.bridge, stp=None if a.state is None else a.state == "on",
            priority=a.priority, hello_time=a.hello_time, max_age=a.max_age,
            forward_delay=a.forward_delay, stp_protocol=a.protocol,
        ),
        lambda result: render.show_bridges([result]),
    ),
    ("bridge", "port-stp"): lambda a: (
        "bridge.port.stp",
        _given(
            vnet=a.vnet, bridge=a.bridge, interface=a.interface, path_cost=a.path_cost,
            port_priority=a.port_priority, edge=_onoff(a.edge), auto_edge=_onoff(a.auto_edge),
            mcheck=a.mcheck or None,
        ),
        render.show_port_stp,
    ),
    ("bridge", "del"): lambda a: (
        "bridge.port.del",
        {"vnet": a.vnet, "bridge": a.bridge, "interface": a.interface},
        render.show_port_change,
    ),
    ("vlan", "create"): lambda a: (
        "vlan.create",
        {
            "vnet": a.vnet,
            "parent": a.parent,
            "vid": a.vid,
            "interface": a.name,
            "addresses": a.addresses,
            "mtu": a.mtu,
        },
        render.show_vlan_created,
    ),
    ("vxlan", "show"): lambda a: (
        "vxlan.show",
        {"vnet": a.vnet, "interface": a.interface},
        render.show_vxlans,
    ),
    ("vxlan", "create"): lambda a: (
        "vxlan.create",
        {
            "vnet": a.vnet,
            "interface": a.interface,
            "vni": a.vni,
            "local": a.local,
            "port": a.port,
            "remotes": a.remotes,
            "group": a.group,
            "learning": not a.no_learning,
            "addresses": a.addresses,
            "mtu": a.mtu,
            "underlay": a.underlay or "",
            "tunnel_gso": a.tunnel_gso,
        },
        render.show_vxlan_created,
    ),
    ("bridge", "fdb"): _bridge_fdb,
    ("netstat", None): lambda a: ("netstat", {"vnet": a.vnet}, render.show_netstat),
    ("sockstat", None): lambda a: ("sockstat", {"vnet": a.vnet}, render.show_sockstat),
    ("sysctl", None): _sysctl,
    ("firewall", "show"): lambda a: ("firewall.show", {"vnet": a.vnet}, render.show_firewall),
    ("firewall", "states"): lambda a: ("firewall.states", {"vnet": a.vnet}, render.show_states),
    ("firewall", "flush"): lambda a: ("firewall.flush", {"vnet": a.vnet}, render.show_done),
    ("firewall", "load"): _firewall_load,
    ("mirror", "show"): lambda a: ("mirror.show", {"vnet": a.vnet}, render.show_json),
    ("dhcp", "leases"): lambda a: ("dhcp.leases", {"vnet": a.vnet}, render.show_leases),
}
"""Every command but ``capture``, by (command, action): the request it makes."""

EXIT: dict[str, Callable[[Any], int]] = {
    "config.diff": lambda result: 1 if result["differences"] else 0,
}
"""The exit status of an operation whose result decides it (others: 0): ``config diff``
exits 1 when the file and the running state differ, as diff(1) does."""


def _request(args: argparse.Namespace) -> Request:
    """Return the request ``args`` make, checked against the operation's schema."""
    op, op_args, formatter = COMMANDS[(args.command, getattr(args, "action", None))](args)
    try:
        TABLE[op].check(op_args)
    except ApiError as err:
        raise _usage(f"{args.command}: {err}") from None
    return op, op_args, formatter


def _exec(args: argparse.Namespace) -> int:
    """``exec VNET -- CMD``: root enters the mirror's namespace itself; anyone else
    asks the daemon to start CMD as them (:mod:`vrouter.cli.execute`)."""
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise _usage("exec: which program? vrouterctl exec VNET -- CMD [ARG ...]")
    if os.geteuid() != 0:
        from vrouter.cli import execute

        return execute.run(args.socket, args.vnet, cmd)
    found = reach.ask(args.socket, lambda client: client.call("mirror.show", vnet=args.vnet))
    os.execvp("ip", ["ip", "netns", "exec", str(found["netns"]), *cmd])


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vrouterctl``."""
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["__complete"]:  # the shell completion's question (vrouter.cli.completion)
        try:
            index = int(argv[1])
        except (IndexError, ValueError):
            return 2
        print("\n".join(completion.candidates(parser, argv[2:], index)))
        return 0
    args, words = parser.parse_known_args(argv)
    if args.command == "completion":
        print(completion.SCRIPTS[args.shell], end="")
        return 0
    if args.command == "capture":
        from vrouter.cli import capture  # dpkt, for this command only

        return capture.run(args.socket, words)
    if args.command == "exec":
        return _exec(args)
    if words:
        parser.error(f"unrecognized arguments: {' '.join(words)}")
    op, op_args, formatter = _request(args)
    result = reach.ask(args.socket, lambda client: client.call(op, **op_args))
    try:
        raw = getattr(args, "json", False) or args.json_first
        text = json.dumps(result, indent=2) if raw else formatter(result)
        if text or op not in EXIT:  # an empty diff prints nothing
            print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (| head, | grep -q): say nothing
        render.stdout_gone()
    return EXIT[op](result) if op in EXIT else 0


if __name__ == "__main__":
    sys.exit(main())
