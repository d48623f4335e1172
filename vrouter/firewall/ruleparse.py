"""Reading a ruleset from TOML: ``parse_ruleset`` and the checks behind it.

``parse_ruleset`` turns the ``firewall`` table of a vnet (already loaded
from TOML) into a :class:`~vrouter.firewall.rules.Ruleset`, or raises
``RulesetError`` with *every* problem found, each with its key path
(``rules[3].to_port``, ``tables.trusted[1]``, prefixed by ``key_prefix``
such as ``vnets.red.firewall``), the way the daemon's config reports
problems.  What the keys mean is in :mod:`vrouter.firewall.rules`.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from vrouter.core.tomlkeys import TomlReader
from vrouter.core.tomlkeys import join as _join
from vrouter.firewall.packet import PROTO_ICMP, PROTO_ICMP6, PROTO_TCP, PROTO_UDP
from vrouter.firewall.rules import (
    ACTIONS,
    DEFAULT_FLAGS,
    DEFAULTS,
    DIRECTIONS,
    FAMILIES,
    ICMP4_TYPES,
    ICMP6_TYPES,
    NAT_ACTIONS,
    NAT_FILTERING,
    PROTOCOLS,
    TCP_FLAG_LETTERS,
    AddrMatch,
    NatRule,
    Network,
    PortMatch,
    Rule,
    Ruleset,
    RulesetError,
    net_text,
    proto_text,
)

_ALL_FLAGS = 0xFF
_RULE_KEYS = (
    "action",
    "direction",
    "interface",
    "family",
    "proto",
    "from",
    "to",
    "from_port",
    "to_port",
    "icmp_type",
    "flags",
    "keep_state",
    "log",
    "label",
)
_TOP_KEYS = ("default", "tables", "rules", "nat")
_NAT_KEYS = (
    "action",
    "interface",
    "proto",
    "from",
    "to",
    "to_port",
    "address",
    "target",
    "target_port",
    "port_range",
    "filtering",
    "label",
)
_NAT_PROTOCOLS = (PROTO_TCP, PROTO_UDP, PROTO_ICMP)
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
_PORT_RANGE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")
_FLAGS = re.compile(r"([FSRPAUEW]*)(?:/([FSRPAUEW]+))?")
LABEL_MAX = 63
"""Longest label, as pf's PF_RULE_LABEL_SIZE allows."""


def _parse_prefix(text: str) -> Network | str:
    """Parse ``ADDRESS`` or ``ADDRESS/LEN`` (host bits clear), or return why not."""
    address_text, slash, length_text = text.partition("/")
    if "%" in address_text:
        return f"{text!r} has a zone index; write the address without it"
    try:
        address: IPv4Address | IPv6Address = ipaddress.ip_address(address_text)
    except ValueError:
        return (
            f"{text!r} is not an address or prefix "
            "(expected any, ADDRESS, ADDRESS/LEN, <table>, optionally after '!')"
        )
    if not slash:
        return ipaddress.ip_network(address)
    if not length_text.isdigit() or not length_text.isascii():
        return f"{text!r}: the prefix length must be a decimal number"
    length = int(length_text)
    if length > address.max_prefixlen:
        return f"{text!r}: prefix length {length} is out of range 0..{address.max_prefixlen}"
    network = ipaddress.ip_network((address, length), strict=False)
    if network.network_address != address:
        return f"{text!r} has host bits set; did you mean {network}?"
    return network


# --------------------------------------------------------------------------
# The parser: collects problems, never stops at the first
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Addr:
    """A parsed rule side and the key path of each of its prefixes."""

    match: AddrMatch
    keyed: tuple[tuple[Network, str], ...]


class _Parser(TomlReader):
    """Walks one firewall table, recording every problem it finds."""

    # -- tables ----------------------------------------------------------------

    def tables(self, value: object, key: str) -> tuple[dict[str, tuple[Network, ...]], set[str]]:
        """Return the tables that parsed and every declared name (for references)."""
        parsed: dict[str, tuple[Network, ...]] = {}
        declared: set[str] = set()
        if value is None:
            return parsed, declared
        if not isinstance(value, dict):
            self.wrong_type(key, "a table of address lists", value)
            return parsed, declared
        for name, entries in value.items():
            tkey = _join(key, name)
            declared.add(name)
            if not _TABLE_NAME.fullmatch(name):
                self.problem(
                    tkey,
                    f"invalid table name {name!r}: 1-32 characters from [A-Za-z0-9_.-], "
                    "starting with a letter, digit or '_'",
                )
                continue
            if not isinstance(entries, list):
                self.wrong_type(tkey, "an array of addresses or prefixes", entries)
                continue
            networks: list[Network] = []
            for j, entry in enumerate(entries):
                ekey = f"{tkey}[{j}]"
                if not isinstance(entry, str):
                    self.wrong_type(ekey, "a string (an address or prefix)", entry)
                    continue
                network = _parse_prefix(entry)
                if isinstance(network, str):
                    self.problem(ekey, network)
                else:
                    networks.append(network)
            parsed[name] = tuple(networks)
        return parsed, declared

    # -- rule parts ------------------------------------------------------------

    def side(
        self, rule: Mapping[str, object], name: str, key: str, tables: set[str]
    ) -> _Addr | None:
        """Parse ``from``/``to``; None if absent-or-any is not the answer because of a problem."""
        value = rule.get(name)
        skey = _join(key, name)
        if value is None:
            return _Addr(AddrMatch(), ())
        if isinstance(value, str):
            items: list[tuple[object, str]] = [(value, skey)]
        elif isinstance(value, list):
            if not value:
                self.problem(skey, 'an empty list matches nothing; omit the key (or "any")')
                return None
            items = [(v, f"{skey}[{j}]") for j, v in enumerate(value)]
        else:
            self.wrong_type(skey, "a string or an array of strings", value)
            return None
        ok = True
        negations: list[bool] = []
        networks: list[tuple[Network, str]] = []
        names: list[str] = []
        for item, ikey in items:
            if not isinstance(item, str):
                self.wrong_type(ikey, "a string", item)
                ok = False
                continue
            text = item.strip()
            negated = text.startswith("!")
            if negated:
                text = text[1:].strip()
            negations.append(negated)
            if text == "any":
                if negated:
                    self.problem(ikey, "'!any' matches nothing")
                    ok = False
                elif len(items) > 1:
                    self.problem(ikey, "'any' cannot be part of a list")
                    ok = False
                continue
            if text.startswith("<") and text.endswith(">"):
                table = text[1:-1]
                if table not in tables:
                    self.problem(ikey, f"unknown table <{table}> (declare it under [tables])")
                    ok = False
                else:
                    names.append(table)
                continue
            network = _parse_prefix(text)
            if isinstance(network, str):
                self.problem(ikey, network)
                ok = False
            else:
                networks.append((network, ikey))
        if any(negations) and not all(negations):
            self.problem(
                skey, "negation applies to the whole list: put '!' on every item or on none"
            )
            ok = False
        if not ok:
            return None
        negate = bool(negations) and all(negations)
        match = AddrMatch(tuple(n for n, _ in networks), tuple(names), negate)
        return _Addr(match, tuple(networks))

    def ports(self, rule: Mapping[str, object], name: str, key: str) -> PortMatch | None:
        value = rule.get(name)
        pkey = _join(key, name)
        if isinstance(value, list):
            if not value:
                self.problem(pkey, "an empty list matches nothing; omit the key")
                return None
            items = [(v, f"{pkey}[{j}]") for j, v in enumerate(value)]
        else:
            items = [(value, pkey)]
        ranges: list[tuple[int, int]] = []
        ok = True
        for item, ikey in items:
            parsed = self.port_range(item, ikey)
            if parsed is None:
                ok = False
            else:
                ranges.append(parsed)
        return PortMatch(tuple(ranges)) if ok else None

    def port_range(self, value: object, key: str) -> tuple[int, int] | None:
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.wrong_type(key, 'a port (0..65535), a range "LOW-HIGH" or an array of them', value)
            return None
        if isinstance(value, int):
            if not 0 <= value <= 65535:
                self.problem(key, f"port {value} is out of range 0..65535")
                return None
            return value, value
        match = _PORT_RANGE.fullmatch(value.strip())
        if match is None:
            self.problem(key, f'{value!r} is not a port or a range "LOW-HIGH"')
            return None
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        for port in (low, high):
            if port > 65535:
                self.problem(key, f"port {port} is out of range 0..65535")
                return None
        if low > high:
            self.problem(key, f"range {value!r} is empty: {low} > {high}")
            return None
        return low, high

    def proto(self, rule: Mapping[str, object], key: str) -> tuple[int | None, bool]:
        """Return the protocol number (None: any) and whether it parsed."""
        value = rule.get("proto")
        if value is None:
            return None, True
        pkey = _join(key, "proto")
        if isinstance(value, str):
            if value in PROTOCOLS:
                return PROTOCOLS[value], True
            self.problem(
                pkey, f"unknown protocol {value!r} (names: {', '.join(PROTOCOLS)}; or 0..255)"
            )
            return None, False
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(pkey, "a protocol name or number", value)
            return None, False
        if not 0 <= value <= 255:
            self.problem(pkey, f"protocol {value} is out of range 0..255")
            return None, False
        return value, True

    def icmp_types(self, rule: Mapping[str, object], key: str, proto: int) -> frozenset[int] | None:
        value = rule.get("icmp_type")
        tkey = _join(key, "icmp_type")
        names = ICMP6_TYPES if proto == PROTO_ICMP6 else ICMP4_TYPES
        if isinstance(value, list):
            if not value:
                self.problem(tkey, "an empty list matches nothing; omit the key")
                return None
            items = [(v, f"{tkey}[{j}]") for j, v in enumerate(value)]
        else:
            items = [(value, tkey)]
        types: set[int] = set()
        ok = True
        for item, ikey in items:
            if isinstance(item, str):
                if item in names:
                    types.add(names[item])
                else:
                    which = "icmp6" if proto == PROTO_ICMP6 else "icmp"
                    self.problem(
                        ikey,
                        f"unknown {which} type {item!r} (names: {', '.join(names)}; or 0..255)",
                    )
                    ok = False
            elif isinstance(item, int) and not isinstance(item, bool):
                if 0 <= item <= 255:
                    types.add(item)
                else:
                    self.problem(ikey, f"ICMP type {item} is out of range 0..255")
                    ok = False
            else:
                self.wrong_type(ikey, "an ICMP type name or number", item)
                ok = False
        return frozenset(types) if ok else None

    def flags(self, rule: Mapping[str, object], key: str) -> tuple[tuple[int, int] | None, bool]:
        """Return ``(flags, given)``; flags None for ``"any"`` or a problem."""
        value = rule.get("flags")
        if value is None:
            return None, False
        fkey = _join(key, "flags")
        if not isinstance(value, str):
            self.wrong_type(fkey, 'a string such as "S/SA" or "any"', value)
            return None, True
        if value == "any":
            return None, True
        match = _FLAGS.fullmatch(value)
        if match is None or not match.group(1):
            self.problem(
                fkey, f'{value!r} is not SET/MASK of the letters {TCP_FLAG_LETTERS}, e.g. "S/SA"'
            )
            return None, True

        def bits(letters: str) -> int:
            return sum(1 << TCP_FLAG_LETTERS.index(c) for c in set(letters))

        flag_set = bits(match.group(1))
        mask = bits(match.group(2)) if match.group(2) is not None else _ALL_FLAGS
        if flag_set & ~mask:
            self.problem(fkey, f"{value!r}: flags set outside the mask can never be tested")
            return None, True
        return (flag_set, mask), True

    # -- a whole rule ------------------------------------------------------------

    def rule(self, value: object, key: str, tables: set[str]) -> Rule | None:
        if not isinstance(value, dict):
            self.wrong_type(key, "a table (a [[rules]] entry)", value)
            return None
        before = len(self.problems)
        self.check_keys(value, key, _RULE_KEYS)
        if "action" not in value:
            self.problem(_join(key, "action"), "missing required key 'action'")
        action = self.choice(value, "action", key, ACTIONS)
        direction = self.choice(value, "direction", key, DIRECTIONS)
        interface = self.string(value, "interface", key)
        if interface is not None and (not _IFNAME.fullmatch(interface) or interface in (".", "..")):
            self.problem(
                _join(key, "interface"),
                f"invalid interface name {interface!r}: must be 1-15 characters "
                "from [A-Za-z0-9_.-] (Linux IFNAMSIZ)",
            )
        family_name = self.choice(value, "family", key, tuple(FAMILIES))
        family = FAMILIES[family_name] if family_name is not None else None
        proto, proto_ok = self.proto(value, key)
        src = self.side(value, "from", key, tables)
        dst = self.side(value, "to", key, tables)

        sport = dport = None
        for name in ("from_port", "to_port"):
            if name not in value:
                continue
            if proto_ok and proto not in (PROTO_TCP, PROTO_UDP):
                self.problem(_join(key, name), "ports need proto tcp or udp")
                continue
            ports = self.ports(value, name, key)
            if name == "from_port":
                sport = ports
            else:
                dport = ports

        icmp_types = None
        if "icmp_type" in value:
            if proto_ok and proto not in (PROTO_ICMP, PROTO_ICMP6):
                self.problem(_join(key, "icmp_type"), "icmp_type needs proto icmp or icmp6")
            elif proto is not None:
                icmp_types = self.icmp_types(value, key, proto)

        flags, flags_given = self.flags(value, key)
        if flags_given and proto_ok and proto not in (None, PROTO_TCP):
            self.problem(_join(key, "flags"), "flags need proto tcp (or no proto)")

        keep_state = self.boolean(value, "keep_state", key)
        if keep_state and action in ("block", "reject"):
            self.problem(_join(key, "keep_state"), f"a {action} rule cannot keep state")
        log = self.boolean(value, "log", key)
        label = self.string(value, "label", key)
        if label is not None and len(label) > LABEL_MAX:
            self.problem(_join(key, "label"), f"longer than {LABEL_MAX} characters")

        if proto_ok and src is not None and dst is not None:
            family = self.rule_family(key, family, family_name, proto, src, dst)
        if len(self.problems) != before or action is None:
            return None
        assert src is not None and dst is not None, "no problem means both sides parsed"
        if keep_state is None:
            keep_state = action == "pass"
        if not flags_given and action == "pass" and keep_state and proto in (None, PROTO_TCP):
            flags = DEFAULT_FLAGS
        return Rule(
            action=action,
            direction=direction,
            interface=interface,
            family=family,
            proto=proto,
            src=src.match,
            dst=dst.match,
            sport=sport,
            dport=dport,
            icmp_types=icmp_types,
            flags=flags,
            keep_state=keep_state,
            log=bool(log),
            label=label or "",
        )

    def rule_family(
        self,
        key: str,
        family: int | None,
        family_name: str | None,
        proto: int | None,
        src: _Addr,
        dst: _Addr,
    ) -> int | None:
        """Return the family the rule is restricted to, reporting contradictions."""
        implied = {PROTO_ICMP: 4, PROTO_ICMP6: 6}.get(proto) if proto is not None else None
        reason = f"family is {family_name}"
        if implied is not None:
            proto_name = proto_text(proto) if proto is not None else ""
            if family is not None and family != implied:
                other = "icmp6" if implied == 4 else "icmp"
                self.problem(
                    _join(key, "proto"),
                    f"proto {proto_name} is for {'IPv4' if implied == 4 else 'IPv6'} but "
                    f"{reason}; use {other}",
                )
                return family
            if family is None:
                family = implied
                reason = f"proto {proto_name} is {'IPv4' if implied == 4 else 'IPv6'} only"
        if family is not None:
            for network, nkey in src.keyed + dst.keyed:
                if network.version != family:
                    kind = "an IPv4" if network.version == 4 else "an IPv6"
                    self.problem(nkey, f"{net_text(network)} is {kind} address but {reason}")
            return family
        candidates = {4, 6}
        for side in (src, dst):
            if side.match.tables or not side.match.networks:
                continue
            candidates &= {n.version for n in side.match.networks}
        if not candidates:
            self.problem(
                _join(key, "to"),
                f"'to' is IPv{dst.match.networks[0].version} only and 'from' "
                f"IPv{src.match.networks[0].version} only: no packet can match",
            )
            return None
        return candidates.pop() if len(candidates) == 1 else None

    # -- a [[nat]] entry -----------------------------------------------------------

    def address4(self, entry: Mapping[str, object], name: str, key: str) -> IPv4Address | None:
        """Return the IPv4 address ``name`` of ``entry`` (a problem if it is anything else)."""
        value = self.string(entry, name, key)
        if value is None:
            return None
        try:
            return IPv4Address(value)
        except ValueError:
            self.problem(_join(key, name), f"{value!r} is not an IPv4 address")
            return None

    def prefix_of(
        self, entry: Mapping[str, object], name: str, key: str, version: int
    ) -> Network | None:
        """Return the prefix (or address) ``name`` of ``entry``, of IP ``version``."""
        value = self.string(entry, name, key)
        if value is None:
            self.problem(_join(key, name), f"missing required key {name!r}")
            return None
        network = _parse_prefix(value)
        if isinstance(network, str):
            self.problem(_join(key, name), network)
            return None
        if network.version != version:
            self.problem(_join(key, name), f"{value!r} is not an IPv{version} prefix")
            return None
        return network

    def nat_entry(self, value: object, key: str, tables: set[str]) -> NatRule | None:
        if not isinstance(value, dict):
            self.wrong_type(key, "a table (a [[nat]] entry)", value)
            return None
        before = len(self.problems)
        self.check_keys(value, key, _NAT_KEYS, required=("action", "interface"))
        action = self.choice(value, "action", key, NAT_ACTIONS)
        interface = self.string(value, "interface", key)
        if interface is not None and (not _IFNAME.fullmatch(interface) or interface in (".", "..")):
            self.problem(_join(key, "interface"), f"invalid interface name {interface!r}")
        label = self.string(value, "label", key)
        if label is not None and len(label) > LABEL_MAX:
            self.problem(_join(key, "label"), f"longer than {LABEL_MAX} characters")
        if action is None:
            return None
        allowed = {
            "nat": ("proto", "from", "to", "address", "port_range", "filtering"),
            "rdr": ("proto", "from", "to", "to_port", "target", "target_port"),
            "binat": ("from", "address"),
            "nptv6": ("from", "address"),
        }[action]
        for name in _NAT_KEYS[2:-1]:
            if name in value and name not in allowed:
                self.problem(_join(key, name), f"{action} takes no {name!r}")
        proto, proto_ok = self.proto(value, key)
        if proto_ok and proto is not None:
            protos = (PROTO_TCP, PROTO_UDP) if action == "rdr" else _NAT_PROTOCOLS
            if proto not in protos:
                names = ", ".join(proto_text(p) for p in protos)
                self.problem(_join(key, "proto"), f"{action} translates {names} only")
        entry = NatRule(action, interface or "", proto, label=label or "")
        if action in ("binat", "nptv6"):
            version = 4 if action == "binat" else 6
            inside = self.prefix_of(value, "from", key, version)
            outside = self.prefix_of(value, "address", key, version)
            if inside is not None and outside is not None:
                if inside.prefixlen != outside.prefixlen:
                    self.problem(
                        _join(key, "address"),
                        f"{net_text(outside)} and 'from' {net_text(inside)} differ in length",
                    )
                if action == "nptv6" and inside.prefixlen > 64:
                    self.problem(_join(key, "from"), "NPTv6 prefixes are /64 or shorter")
            entry = NatRule(
                action, entry.interface, label=entry.label, inside=inside, outside=outside
            )
        elif action == "nat":
            src = self.side(value, "from", key, tables)
            dst = self.side(value, "to", key, tables)
            for side, name in ((src, "from"), (dst, "to")):
                if side is not None and any(n.version != 4 for n, _ in side.keyed):
                    self.problem(_join(key, name), "nat translates IPv4 (use nptv6 for IPv6)")
            port_range = None
            if "port_range" in value:
                port_range = self.port_range(value["port_range"], _join(key, "port_range"))
                if port_range is not None and port_range[0] == 0:
                    self.problem(_join(key, "port_range"), "port 0 cannot be allocated")
            filtering = self.choice(value, "filtering", key, NAT_FILTERING) or NAT_FILTERING[0]
            entry = NatRule(
                action,
                entry.interface,
                proto,
                src.match if src is not None else AddrMatch(),
                dst.match if dst is not None else AddrMatch(),
                address=self.address4(value, "address", key),
                port_range=port_range,
                filtering=filtering,
                label=entry.label,
            )
        else:
            src = self.side(value, "from", key, tables)
            if src is not None and any(n.version != 4 for n, _ in src.keyed):
                self.problem(_join(key, "from"), "rdr translates IPv4")
            dport = self.ports(value, "to_port", key) if "to_port" in value else None
            target_port = None
            if "target_port" in value:
                if "to_port" not in value:
                    self.problem(_join(key, "target_port"), "target_port needs to_port")
                target_port = self.integer(value, "target_port", key)
                if target_port is not None and not 1 <= target_port <= 65535:
                    self.problem(
                        _join(key, "target_port"), f"port {target_port} is out of range 1..65535"
                    )
                if dport is not None and target_port is not None:
                    span = max(hi - lo for lo, hi in dport.ranges)
                    if target_port + span > 65535 or len(dport.ranges) > 1:
                        self.problem(
                            _join(key, "target_port"),
                            "a shifted port range must be one range ending at or below 65535",
                        )
            if "target" not in value:
                self.problem(_join(key, "target"), "missing required key 'target'")
            entry = NatRule(
                action,
                entry.interface,
                proto,
                src.match if src is not None else AddrMatch(),
                dport=dport,
                public=self.address4(value, "to", key),
                target=self.address4(value, "target", key),
                target_port=target_port,
                label=entry.label,
            )
        if len(self.problems) != before:
            return None
        return entry


def parse_ruleset(data: Mapping[str, object], key_prefix: str = "") -> Ruleset:
    """Parse a firewall table into a ``Ruleset``; raise ``RulesetError`` with all problems."""
    parser = _Parser()
    parser.check_keys(data, key_prefix, _TOP_KEYS)
    default = parser.choice(data, "default", key_prefix, DEFAULTS) or "pass"
    tables, declared = parser.tables(data.get("tables"), _join(key_prefix, "tables"))
    rules: list[Rule] = []
    value = data.get("rules")
    rkey = _join(key_prefix, "rules")
    if value is not None:
        if not isinstance(value, list):
            parser.wrong_type(rkey, "an array of tables ([[rules]])", value)
        else:
            for i, item in enumerate(value):
                rule = parser.rule(item, f"{rkey}[{i}]", declared)
                if rule is not None:
                    rules.append(rule)
    nat: list[NatRule] = []
    value = data.get("nat")
    nkey = _join(key_prefix, "nat")
    if value is not None:
        if not isinstance(value, list):
            parser.wrong_type(nkey, "an array of tables ([[nat]])", value)
        else:
            for i, item in enumerate(value):
                entry = parser.nat_entry(item, f"{nkey}[{i}]", declared)
                if entry is not None:
                    nat.append(entry)
    if parser.problems:
        raise RulesetError(parser.problems)
    ruleset = Ruleset(rules, default, tables, nat)
    ruleset.source = copy.deepcopy(dict(data))
    return ruleset
