"""How ``vrouterctl`` lays out results: tables like the BSD tools it is named after."""

from __future__ import annotations

import datetime
import json
import os
import sys
from collections.abc import Callable
from typing import Any


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)).rstrip()
        for line in lines
    )


def show_vnets(result: Any) -> str:
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
    return table(rows, ["VNET", "PARENT", "ROLE", "IFACES", "ROUTES", "NEIGHBOURS"])


def show_ifconfig(result: Any) -> str:
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


def show_routes(result: Any) -> str:
    """netstat -r's table with each route's source and distance; held routes lack U.

    A multipath (ECMP) route (flag M, gateway ``multipath``) has its paths
    follow it on rows of their own, each with its weight and the packets it
    forwarded (the route's Use counts all of them).  Use is the count of the
    route's next hop, shared by the routes going the same way.
    """
    rows = []
    for r in result:
        gateway = r["gateway"] or ("link#" + r["interface"] if r["interface"] else "-")
        flags = "G" if r["gateway"] else ""
        if r["type"] == "blackhole":
            flags, gateway = "B", "blackhole"
        elif r["type"] == "reject":
            flags, gateway = "R", "reject"
        elif r.get("nexthops"):
            flags, gateway = "M", "multipath"
        flags += {"connected": "C", "static": "S"}.get(r["source"], "1")
        if r.get("state", "installed") == "installed":
            flags = "U" + flags
        netif = "-" if r.get("nexthops") else r["interface"] or "-"
        rows.append(
            [r["prefix"], gateway, flags, netif, r["source"], str(r["distance"]), "", str(r["use"])]
        )
        for path in r.get("nexthops", []):  # a multipath route's paths, with their own counts
            via = path["gateway"] or "link#" + path["interface"]
            flags = "G" if path["gateway"] else ""
            weight, use = str(path.get("weight", 1)), str(path.get("use", ""))
            rows.append(["", via, flags, path["interface"], "", "", weight, use])
    return table(
        rows, ["Destination", "Gateway", "Flags", "Netif", "Source", "Dist", "Weight", "Use"]
    )


def show_arp(result: Any) -> str:
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
    return table(rows, ["Address", "MAC", "Interface", "State", "Age"])


def show_leases(result: Any) -> str:
    clients = result.get("clients") or {}
    client_rows = [
        [name, c["state"], c["address"] or "-", c["router"] or "-", c["server"] or "-"]
        for name, c in clients.items()
    ]
    client_text = (
        table(client_rows, ["Client on", "State", "Address", "Router", "Server"])
        if client_rows
        else ""
    )
    if not result["serving"]:
        return client_text or "no DHCP server, relay or client in this vnet"
    if client_text:
        client_text = "\n\n" + client_text
    rows = [
        [
            e["address"],
            e["mac"],
            e["state"],
            f"{e['expires_in']}s",
            e["hostname"] or "-",
            e["pool"],
        ]
        for e in result["leases"]
    ]
    counts = ", ".join(f"{k} {v}" for k, v in sorted({**result["sent"]}.items()))
    drops = ", ".join(f"{k} {v}" for k, v in sorted(result["drops"].items())) or "none"
    summary = f"{result['active']} active; sent: {counts or 'nothing'}; drops: {drops}"
    leases = table(rows, ["Address", "MAC", "State", "Expires", "Hostname", "Pool"])
    return leases + "\n" + summary + client_text


def show_ndp(result: Any) -> str:
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
    return table(rows, ["Neighbor", "Linklayer Address", "Netif", "State", "Flags", "Age"])


def show_rtadv(result: Any) -> str:
    def left(seconds: float | None) -> str:
        return "infinity" if seconds is None else f"{seconds:.0f}s"

    mode = "on" if result["accept_rtadv"] else "off"
    if result["forwarding"]:
        mode += " (ignored: forwarding is on)"
    out = [f"accept_rtadv: {mode}", "", "Default routers:"]
    rows = [
        [r["address"], r["interface"], left(r["expires"]), "*" if r["default"] else ""]
        for r in result["routers"]
    ]
    out.append(table(rows, ["Router", "Netif", "Expires", "Default"]))
    out += ["", "Autoconfigured addresses:"]
    rows = [
        [a["address"], a["interface"], a["state"], left(a["preferred"]), left(a["expires"])]
        for a in result["addresses"]
    ]
    out.append(table(rows, ["Address", "Netif", "State", "Preferred", "Expires"]))
    out += ["", "DNS:"]
    rows = [["server", d["address"], d["interface"], left(d["expires"])] for d in result["dns"]]
    rows += [["search", d["domain"], d["interface"], left(d["expires"])] for d in result["search"]]
    out.append(table(rows, ["Kind", "Value", "Netif", "Expires"]))
    for name, mtu in sorted(result["mtu"].items()):
        out.append(f"{name}: link MTU {mtu} (advertised)")
    return "\n".join(out)


def show_bridges(result: Any) -> str:
    out = []
    for b in result:
        vlans = f" vlan_filtering pvid {b['pvid']}" if b["vlan_filtering"] else ""
        stats = b["stats"]
        out.append(
            f"{b['name']}: {'UP' if b['up'] else 'DOWN'} mac {b['mac']}{vlans} "
            f"ageing {b['ageing_time']}s fdb {b['fdb_entries']} (learned {stats['learned']}, "
            f"moved {stats['moved']}, aged {stats['aged']}, full {stats['fdb_full']}), "
            f"too_big {stats['too_big']}"
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
        out.append(table(rows, [*header, "Drops"]))
        if b.get("stp"):
            out.append(_stp(b))
    return "\n".join(out)


def _stp(b: Any) -> str:
    """The spanning tree of bridge ``b``: root, own id, timers, and per port role and state."""
    s = b["stp"]
    root = "this bridge" if s["is_root"] else f"via {s['root_port']}"
    since = s["last_topology_change"]
    lines = [
        f"  {s.get('protocol', 'stp')}: bridge id {s['bridge_id']}  root {s['root_id']} ({root}) "
        f"cost {s['root_cost']}",
        f"  hello {s['hello_time']}s max age {s['max_age']}s forward delay {s['forward_delay']}s "
        f"(in force: {s['root_hello_time']:g}/{s['root_max_age']:g}/{s['root_forward_delay']:g})",
        f"  topology changes {s['topology_changes']}"
        + (f", last {since}s ago" if since is not None else "")
        + (", change in progress" if s["topology_change"] else ""),
    ]
    rows = []
    for p in b["ports"]:
        ps = p.get("stp")
        if not ps:
            continue
        drops = ", ".join(f"{k} {v}" for k, v in ps["drops"].items()) or "-"
        rows.append([
            p["name"], ps["role"], ps["state"], ps.get("protocol", "stp"),
            "yes" if ps.get("edge") else "no", str(ps["path_cost"]), ps["port_id"],
            ps["designated_bridge"], str(ps["designated_cost"]), ps["designated_port"],
            f"{ps['bpdu_in']}/{ps['bpdu_out']}", drops,
        ])  # fmt: skip
    header = ["Port", "Role", "STP state", "Proto", "Edge", "Cost", "Port id",
              "Designated bridge", "D.cost", "D.port", "BPDU in/out", "BPDU drops"]  # fmt: skip
    lines.append(table(rows, header))
    return "\n".join(lines)


def show_port_stp(result: Any) -> str:
    s = result.get("stp")
    state = f": {s['role']} {s['state']}" if s else " (the bridge runs no STP)"
    if s and s.get("protocol") and "admin_edge" in s:
        state += f", speaks {s['protocol']}" + (", edge" if s["edge"] else "")
    edge = f" edge {'on' if result.get('edge') else 'off'}" if "edge" in result else ""
    auto = result.get("auto_edge")
    auto_text = "" if auto is None else f" auto_edge {'on' if auto else 'off'}"
    return (
        f"{result['bridge']}: {result['name']} path cost {result['path_cost']} "
        f"port priority {result['port_priority']}{edge}{auto_text}{state}"
    )


def _tunnel_gso(state: str, stats: dict[str, int], error: str, receive: str = "") -> str:
    """Say whether TCP super-frames leave (and arrive) whole (``tunnel_gso``) or why they
    do not."""
    if state.startswith("not in use"):
        return f"  tunnel_gso: {state}; TCP super-frames are segmented here, sent by the socket"
    line = (
        f"  tunnel_gso: in use through {state} (TCP super-frames leave whole, the kernel "
        f"segments them), sent whole {stats.get('whole', 0)}"
    )
    refused = stats.get("tunnel_refused", 0)
    if refused:
        line += f", refused by the kernel {refused} (sent by the socket; last: {error})"
    if receive.startswith("socket only"):
        line += f"; received on the socket ({receive})"
    elif receive:
        line += (
            f"; received whole through {state} (redirected from {receive}): super-frames "
            f"{stats.get('received_whole', 0)}, frames {stats.get('received_tunnel', 0)}"
        )
    return line


def show_vxlans(result: Any) -> str:
    out = []
    for x in result:
        where = f"group {x['group']}" if x["group"] else "head-end replication"
        stats = x["stats"]
        drops = ", ".join(f"{k} {v}" for k, v in x["drops"].items()) or "none"
        out.append(
            f"{x['name']}: {'UP' if x['up'] else 'DOWN'} vni {x['vni']} local {x['local']} "
            f"port {x['port']} over {x.get('underlay', 'host')} mtu {x['mtu']} "
            f"(underlay {x['underlay_mtu']}) {where}, "
            f"learning {'on' if x['learning'] else 'off'}; macs {x['macs']} (learned "
            f"{stats['learned']}, moved {stats['moved']}, aged {stats['aged']}, full "
            f"{stats['fdb_full']}), flooded {stats['flooded']}; drops: {drops}"
        )
        if "small_sends" in stats:
            out.append(
                f"  received: batched reads {stats['batches']}, segments joined "
                f"{stats['coalesced']}; sent: {stats['small_datagrams']} small datagrams "
                f"in {stats['small_sends']} sends"
            )
        if x.get("tunnel_gso"):
            out.append(
                _tunnel_gso(
                    x["tunnel_gso"], stats, x.get("tunnel_error", ""), x.get("tunnel_receive", "")
                )
            )
        rows = []
        for v in x["vteps"]:
            macs = v["macs"] or [{"mac": "-", "age": None}]
            for index, m in enumerate(macs):
                first = index == 0
                rows.append(
                    [
                        v["address"] if first else "",
                        ("static" if v["static"] else "learnt") if first else "",
                        str(v["rx_packets"]) if first else "",
                        str(v["tx_packets"]) if first else "",
                        m["mac"],
                        "static" if m.get("static") else (
                            "-" if m["age"] is None else f"{m['age']:.0f}s"
                        ),
                    ]
                )
        out.append(table(rows, ["VTEP", "Kind", "Rx", "Tx", "MAC", "Age"]))
    return "\n".join(out)


def show_fdb(result: Any) -> str:
    rows = [
        [
            e["bridge"],
            e["mac"],
            str(e["vlan"]) if e["vlan"] else "-",
            e["port"],
            "static" if e["static"] else f"{e['age']:.0f}s",
            e.get("dst") or "-",
        ]
        for e in result
    ]
    return table(rows, ["Bridge", "MAC", "VLAN", "Port", "Age", "VTEP"])


def show_netstat(result: Any) -> str:
    out = []
    for section, counters in result.items():
        out.append(f"{section}:")
        out.extend(f"\t{value} {name.replace('_', ' ')}" for name, value in counters.items())
    return "\n".join(out)


def show_sysctl(result: Any) -> str:
    out = []
    for k in result:
        value = int(k["value"]) if isinstance(k["value"], bool) else k["value"]
        if "description" in k:
            out.append(f"{k['name']}: {value}\t# {k['description']}")
        else:
            old = int(k["old"]) if isinstance(k["old"], bool) else k["old"]
            out.append(f"{k['name']}: {old} -> {value}")
    return "\n".join(out)


def show_firewall(result: Any) -> str:
    state = "enabled" if result["enabled"] else "disabled (net.pf.enable=0)"
    out = [f"firewall {state}, first match wins; states {result['states']}/{result['max_states']}"]
    flows = result.get("flows")
    if flows:
        out.append(
            f"flow cache: {flows['cached']} flow directions, {flows['learned']} learned, "
            f"{flows['hits']} packets passed from it"
        )
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
    out.append(table(rows, ["#", "PACKETS", "BYTES", "STATES", "RULE"]))
    if result.get("nat"):
        out.append(f"translation, first match wins; mappings {result['mappings']}")
        rows = [
            [str(n["index"]), str(n["packets"]), str(n["bytes"]), str(n["mappings"]), n["text"]]
            for n in result["nat"]
        ]
        out.append(table(rows, ["#", "PACKETS", "BYTES", "MAPPINGS", "NAT"]))
    return "\n".join(out)


def _state_row(s: dict[str, Any]) -> list[str]:
    """Return the endpoints and state of a state or a NAT mapping (pf's ``src (nat)``)."""
    kind = s.get("kind")
    if kind == "nat":
        return [s["inside"], "->", s["outside"], f"NAT {s['interface']}"]
    if kind == "rdr":
        client = s["client"] + (f" ({s['hairpin']})" if "hairpin" in s else "")
        return [client, "->", f"{s['public']} ({s['server']})", "RDR"]
    seen = s.get("translated", {})
    src = s["src"] + (f" ({seen['src']})" if "src" in seen else "")
    dst = s["dst"] + (f" ({seen['dst']})" if "dst" in seen else "")
    return [src, "<->", dst, s["state"]]


def show_states(result: Any) -> str:
    rows = [
        [
            s["proto"],
            *_state_row(s),
            f"{s['age']:.0f}s",
            f"{s['expires_in']:.0f}s",
            str(sum(s["packets"])),
            str(sum(s["bytes"])),
        ]
        for s in result
    ]
    return table(rows, ["PROTO", "SRC", "", "DST", "STATE", "AGE", "EXPIRES", "PKTS", "BYTES"])


def show_json(result: Any) -> str:
    """Return a result as indented JSON (views with no table of their own yet)."""
    return json.dumps(result, indent=2)


def show_done(result: Any) -> str:
    return ", ".join(f"{k} {v}" for k, v in result.items())


def show_sockstat(result: Any) -> str:
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
    sockets = table(rows, ["PROTO", "IPPROTO", "LOCAL", "PEER", "IFACE", "RX", "TX", "DROPPED"])
    out = [sockets, f"route sockets: {result['route_sockets']}"]
    if "tcp" in result:
        listeners = ", ".join(str(listener.get("port")) for listener in result["tcp_listeners"])
        out.append(f"tcp listening on ports: {listeners or '-'}")
        rows = [
            [
                c["local"],
                c["remote"],
                str(c["state"]),
                str(c["send_queue"]),
                str(c["recv_queue"]),
                str(c["cwnd"]),
                str(c["rto"]),
            ]
            for c in result["tcp"]
        ]
        out.append(table(rows, ["LOCAL", "REMOTE", "STATE", "SEND-Q", "RECV-Q", "CWND", "RTO"]))
    return "\n".join(out)


def show_status(result: Any) -> str:
    out = []
    for key, value in result.items():
        if key == "last_reload_success":
            continue
        if key == "reloads":
            value = ", ".join(f"{n} {r}" for r, n in sorted(value.items())) or "none"
        elif key == "last_reload":
            value = _last_reload(value)
        elif key == "busy_poll":
            value = f"{value['polls']} polls, {value['found']} found a frame"
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


def show_tree(result: Any) -> str:
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


def show_vnet(result: Any) -> str:
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
    limits = table(rows, ["KIND", "OWN", "IN FORCE", "IN USE", "REFUSED"])
    out.extend("  " + line for line in limits.splitlines())
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


def show_modules(result: Any) -> str:
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
    out = [table(rows, ["MODULE", "STATE", "DEPENDS", "NEEDED BY", "SOURCE"])]
    out.extend(f"problem: {p}" for p in result["problems"])
    return "\n".join(out)


def show_module_change(result: Any) -> str:
    verb = "loaded into" if result["loaded"] else "unloaded from"
    return f"{result['name']} {verb} {result['vnets']} vnets; loaded: {' '.join(result['modules'])}"


def show_created(result: Any) -> str:
    parent = f" (child of {result['parent']})" if result.get("parent") else ""
    return f"vnet {result['name']} created{parent}"


def show_destroyed(result: Any) -> str:
    return "destroyed: " + ", ".join(result["destroyed"])


def show_moved(result: Any) -> str:
    return f"{result['interface']}: moved from vnet {result['from']} to vnet {result['to']}"


def show_epair(result: Any) -> str:
    a, b = result["a"], result["b"]
    return f"epair {a['vnet']}:{a['interface']} <-> {b['vnet']}:{b['interface']} created"


def show_tap(result: Any) -> str:
    return f"vnet {result['vnet']}: {result['interface']} created, ether {result['mac']}"


def show_bridge_created(result: Any) -> str:
    members = ", ".join(result["members"]) or "no members"
    name, mac = result["interface"], result["mac"]
    stp = ", spanning tree on" if result.get("stp") else ""
    return f"vnet {result['vnet']}: bridge {name} created ({members}), ether {mac}{stp}"


def show_port_change(result: Any) -> str:
    verb = "joined" if result["added"] else "left"
    return f"vnet {result['vnet']}: {result['interface']} {verb} bridge {result['bridge']}"


def show_fdb_change(result: Any) -> str:
    where = f" vlan {result['vlan']}" if result["vlan"] else ""
    dst = f" dst {result['dst']}" if result["dst"] else ""
    verb = "added" if result["added"] else "removed"
    return (
        f"vnet {result['vnet']}: bridge {result['bridge']}: static {result['mac']} on "
        f"{result['port']}{where}{dst} {verb}"
    )


def show_vlan_created(result: Any) -> str:
    return (
        f"vnet {result['vnet']}: {result['interface']} created, VLAN {result['vid']} "
        f"on {result['parent']}, ether {result['mac']}"
    )


def show_vxlan_created(result: Any) -> str:
    text = (
        f"vnet {result['vnet']}: {result['interface']} created, VXLAN VNI {result['vni']}, "
        f"mtu {result['mtu']}, ether {result['mac']}"
    )
    state = result.get("tunnel_gso", "")
    if not state:
        return text
    if state.startswith("not in use"):
        return f"{text}; tunnel_gso {state}"
    return f"{text}; tunnel_gso in use through {state}"


def show_reload(result: Any) -> str:
    changes = result["changes"]
    if not changes:
        return f"{result['config']}: reloaded, no changes"
    return "\n".join([f"{result['config']}: reloaded, {len(changes)} changes", *changes])


def show_config(result: Any) -> str:
    return str(result["text"]).rstrip("\n")


def show_config_diff(result: Any) -> str:
    """Return the differences, one a line; nothing when the file and the running state agree."""
    return "\n".join(result["differences"])


Formatter = Callable[[Any], str]


def show_done_route(result: Any) -> str:
    return show_routes([result])


def stdout_gone() -> None:
    """Point stdout at /dev/null so the interpreter's final flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
