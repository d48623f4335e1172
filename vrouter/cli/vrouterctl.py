"""``vrouterctl``: look into a running vrouterd through its control socket.

Every view takes ``--json`` for the raw API result; without it the output is
laid out like the BSD tools it is named after.

``vrouterctl capture`` is tcpdump for an interface of a vnet: the daemon
passes it a socket fed by a tap (the filter runs in the kernel, see
:mod:`vrouter.link.capture`); it writes pcap (``-w FILE``, ``-w -``) or one
line per packet.  Exit status: 0 done, 1 refused, 2 daemon unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

from vrouter.api.client import DEFAULT_SOCKET, Client
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


def _show_status(result: Any) -> str:
    return "\n".join(f"{k}: {v}" for k, v in result.items())


Formatter = Callable[[Any], str]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vrouterctl", description="Inspect a running vrouterd.")
    parser.add_argument(
        "--socket",
        default=os.environ.get("VROUTER_SOCKET", DEFAULT_SOCKET),
        help=f"control socket (default $VROUTER_SOCKET or {DEFAULT_SOCKET})",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def view(name: str, help_: str, *, vnet: bool) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        if vnet:
            p.add_argument("vnet", help="vnet name")
        p.add_argument("--json", action="store_true", help="print the raw JSON result")
        return p

    vnet_p = sub.add_parser("vnet", help="vnets")
    vnet_sub = vnet_p.add_subparsers(dest="action", required=True)
    lst = vnet_sub.add_parser("list", help="list vnets")
    lst.add_argument("--json", action="store_true", help="print the raw JSON result")
    view("ifconfig", "interfaces of a vnet, with counters", vnet=True)
    for name, help_ in (
        ("route", "forwarding tables of a vnet"),
        ("arp", "ARP cache of a vnet"),
        ("ndp", "IPv6 neighbour cache of a vnet"),
    ):
        p = sub.add_parser(name, help=help_)
        s = p.add_subparsers(dest="action", required=True)
        show = s.add_parser("show", help=help_)
        show.add_argument("vnet", help="vnet name")
        show.add_argument("--json", action="store_true", help="print the raw JSON result")
        if name == "route":
            family = show.add_mutually_exclusive_group()
            family.add_argument(
                "-4", dest="family", action="store_const", const="inet", help="IPv4 only"
            )
            family.add_argument(
                "-6", dest="family", action="store_const", const="inet6", help="IPv6 only"
            )
    view("netstat", "protocol statistics of a vnet", vnet=True)
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
        p.add_argument("--json", action="store_true", help="print the raw JSON result")
    load = fw_sub.add_parser("load", help="replace the ruleset atomically from a TOML file")
    load.add_argument("file", help="TOML file with default, [tables] and [[rules]]")
    load.add_argument("--json", action="store_true", help="print the raw JSON result")
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


def _request(args: argparse.Namespace) -> tuple[str, dict[str, Any], Formatter]:
    cmd = args.command
    if cmd == "vnet":
        return "vnet.list", {}, _show_vnets
    if cmd == "ifconfig":
        return "ifconfig", {"vnet": args.vnet}, _show_ifconfig
    if cmd == "route":
        route_args: dict[str, Any] = {"vnet": args.vnet}
        if args.family:
            route_args["family"] = args.family
        return "route.show", route_args, _show_routes
    if cmd == "ndp":
        return "ndp.show", {"vnet": args.vnet}, _show_ndp
    if cmd == "arp":
        return "arp.show", {"vnet": args.vnet}, _show_arp
    if cmd == "firewall":
        fw_args: dict[str, Any] = {"vnet": args.vnet}
        if args.action == "load":
            try:
                with open(args.file, encoding="utf-8") as f:
                    fw_args.update(text=f.read(), source=args.file)
            except OSError as err:
                raise SystemExit(f"vrouterctl: {args.file}: {err.strerror}") from None
            return "firewall.load", fw_args, _show_done
        formatters: dict[str, Formatter] = {
            "show": _show_firewall,
            "states": _show_states,
            "flush": _show_done,
        }
        return f"firewall.{args.action}", fw_args, formatters[args.action]
    if cmd == "sysctl":
        assignments = [k for k in args.knobs if "=" in k]
        if assignments and len(assignments) != len(args.knobs):
            raise SystemExit("vrouterctl: sysctl: either show NAMEs or set NAME=VALUEs, not both")
        if assignments:
            settings = dict(k.split("=", 1) for k in assignments)
            return "sysctl.set", {"vnet": args.vnet, "settings": settings}, _show_sysctl
        return "sysctl.get", {"vnet": args.vnet, "names": args.knobs}, _show_sysctl
    if cmd == "netstat":
        return "netstat", {"vnet": args.vnet}, _show_netstat
    return "status", {}, _show_status


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
    except OSError as err:
        print(f"vrouterctl: cannot reach vrouterd at {args.socket}: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else formatter(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
