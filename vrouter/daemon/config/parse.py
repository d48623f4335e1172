"""Reading a configuration document: entry points, the parser and the cross-checks.

Responsibility: ``load``/``read``/``parse`` turn a file or string into a
``Config`` or raise ``ConfigError`` with every problem found.  The parser
walks the document section by section, records what parsed together with
its key path, then checks what spans sections (hierarchy, limits, peers,
connected networks, routes) before building the frozen values.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)

from vrouter.core import limits as limits_
from vrouter.core.perms import (
    NO_GRANTS,
    Grants,
    Principal,
    PrincipalError,
    parse_principal,
)
from vrouter.core.sysctl import Sysctl, SysctlError
from vrouter.core.tomlkeys import TomlReader
from vrouter.core.tomlkeys import join as _join
from vrouter.daemon.config.grammar import (
    LINK_LOCAL_NETWORK,
    MULTICAST_NETWORK,
    NETNS,
    child_vnet_hint,
    ifname_error,
    ipv6_unicast_error,
    is_link_local,
    parse_address,
    parse_interface_address,
    parse_listen,
    parse_mac,
    parse_network,
    toml_header,
    vnet_name_error,
)
from vrouter.daemon.config.model import (
    DEFAULT_CONTROL_SOCKET,
    DEFAULT_LOG_LEVEL,
    DEFAULT_MTU,
    DEFAULT_PREFERRED_LIFETIME,
    DEFAULT_RA_HOP_LIMIT,
    DEFAULT_RA_INTERVAL,
    DEFAULT_RA_MTU,
    DEFAULT_STATE_DIR,
    DEFAULT_VALID_LIFETIME,
    DEFAULT_VNET,
    INTERFACE_TYPES,
    IPV6_MTU_MIN,
    LIFETIME_INFINITY,
    LOG_LEVELS,
    MTU_MAX,
    MTU_MIN,
    RA_INTERVAL_MAX,
    RA_INTERVAL_MIN,
    RA_LIFETIME_MAX,
    ROUTE_TYPES,
    SLAAC_PREFIX_LENGTH,
    UNIX_PATH_MAX,
    Config,
    ConfigError,
    ConfigProblem,
    DaemonConfig,
    FirewallConfig,
    HostConfig,
    InterfaceConfig,
    RaConfig,
    RaPrefixConfig,
    RouteConfig,
    SocksConfig,
    VnetConfig,
)
from vrouter.firewall.rules import RulesetError, parse_ruleset

# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> Config:
    """Read and parse the configuration file at *path*."""
    return parse(read(path), os.fspath(path))


def read(path: str | os.PathLike[str]) -> str:
    """Return the text of the configuration file at *path*; ConfigError if it cannot."""
    file = os.fspath(path)
    try:
        with open(file, "rb") as f:
            data = f.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigProblem(file, "", f"cannot read file: {reason}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = ConfigProblem(file, "", f"file is not valid UTF-8: {exc}")
        raise ConfigError([problem]) from None


def parse(text: str, path: str = "<string>") -> Config:
    """Parse configuration *text*; *path* names it in problems."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(path, "", f"invalid TOML: {exc}")]) from None
    return read_document(document, path)


def _knobs() -> Sysctl:
    """Return the sysctl tree of the built-in subsystems (to check names and values)."""
    from vrouter.stack import builtin_sysctl

    return builtin_sysctl()


# --------------------------------------------------------------------------
# Intermediate results: what parsed, with key paths for cross-checks
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    value: IPv4Interface | IPv6Interface
    key: str


@dataclass(frozen=True, slots=True)
class ParsedInterface:
    key: str
    name: str
    type: str | None  # None: missing or invalid (already reported)
    addresses: tuple[ParsedAddress, ...]
    addresses_complete: bool  # False if some address failed (already reported)
    mtu: int
    mac: bytes | None
    up: bool
    host: HostConfig | None
    netns_key: str
    peer: tuple[str, str] | None
    peer_key: str
    ra: RaConfig | None
    ra_key: str
    advertises: bool  # ra = true or a table, even if it had problems
    offload: bool = True

    def config(self) -> InterfaceConfig:
        assert self.type is not None, "only built when no problem was found"
        return InterfaceConfig(
            name=self.name,
            type=self.type,
            addresses=tuple(a.value for a in self.addresses),
            mtu=self.mtu,
            mac=self.mac,
            up=self.up,
            host=self.host,
            peer=self.peer,
            ra=self.ra,
            offload=self.offload,
        )


@dataclass(frozen=True, slots=True)
class ParsedRoute:
    key: str
    prefix: IPv4Network | IPv6Network | None
    type: str | None
    via: IPv4Address | IPv6Address | None
    interface: str | None
    has_via: bool
    has_interface: bool


@dataclass(frozen=True, slots=True)
class ParsedVnet:
    key: str
    name: str
    name_ok: bool
    forwarding: bool
    interfaces: tuple[ParsedInterface, ...]
    routes: tuple[ParsedRoute, ...]
    sysctl: tuple[tuple[str, bool | int | float], ...] = ()
    firewall: FirewallConfig | None = None
    permissions: Grants = NO_GRANTS
    limits: tuple[tuple[str, int], ...] = ()
    """Own limits in file order (kind, value)."""
    limits_key: str = ""
    worker: int | None = None

    def interface(self, name: str) -> ParsedInterface | None:
        for iface in self.interfaces:
            if iface.name == name:
                return iface
        return None

    def config(self) -> VnetConfig:
        routes: list[RouteConfig] = []
        for r in self.routes:
            assert r.prefix is not None and r.type is not None, "only built when valid"
            routes.append(RouteConfig(r.prefix, r.type, r.via, r.interface))
        limits = tuple((limits_.knob_name(kind), value) for kind, value in self.limits)
        return VnetConfig(
            name=self.name,
            forwarding=self.forwarding,
            interfaces=tuple(i.config() for i in self.interfaces),
            routes=tuple(routes),
            sysctl=limits + self.sysctl,
            firewall=self.firewall,
            permissions=self.permissions,
            worker=self.worker,
        )


# --------------------------------------------------------------------------
# The parser: collects problems, never stops at the first
# --------------------------------------------------------------------------

_TOP_KEYS = (
    "daemon",
    "vnets",
    "interfaces",
    "routes",
    "forwarding",
    "sysctl",
    "firewall",
    "limits",
    "permissions",
)
_DEFAULT_VNET_KEYS = (
    "interfaces",
    "routes",
    "forwarding",
    "sysctl",
    "firewall",
    "limits",
    "permissions",
)
_DAEMON_KEYS = (
    "control_socket",
    "state_dir",
    "log_level",
    "metrics",
    "admins",
    "socks",
    "workers",
)
MAX_WORKERS = 64
"""Most forwarding processes one daemon runs."""
_SOCKS_KEYS = ("vnet", "listen", "username", "password")
_VNET_KEYS = (
    "forwarding",
    "interfaces",
    "routes",
    "sysctl",
    "firewall",
    "limits",
    "permissions",
    "worker",
)
_PERMISSION_KEYS = ("manage", "sockets")
_INTERFACE_KEYS = ("type", "addresses", "mtu", "mac", "up", "host", "peer", "ra", "offload")
_HOST_KEYS = ("netns", "addresses", "gateway", "gateway6", "slaac")
_RA_KEYS = (
    "interval",
    "lifetime",
    "hop_limit",
    "managed",
    "other",
    "mtu",
    "prefixes",
    "rdnss",
    "rdnss_lifetime",
)
_RA_PREFIX_KEYS = ("prefix", "onlink", "autonomous", "valid_lifetime", "preferred_lifetime")
_ROUTE_KEYS = ("to", "type", "via", "interface")


def read_addresses(
    r: TomlReader, parent: Mapping[str, object], key: str
) -> tuple[tuple[ParsedAddress, ...], bool]:
    """Parse an ``addresses`` array; return what parsed and whether all did."""
    value = parent.get("addresses")
    if value is None:
        return (), True
    akey = _join(key, "addresses")
    if not isinstance(value, list):
        hint = f'; write addresses = ["{value}"]' if isinstance(value, str) else ""
        r.wrong_type(akey, "an array of strings", value, hint)
        return (), False
    parsed: list[ParsedAddress] = []
    complete = True
    for index, item in enumerate(value):
        ikey = f"{akey}[{index}]"
        if not isinstance(item, str):
            r.wrong_type(ikey, "a string", item)
            complete = False
            continue
        address = parse_interface_address(item)
        if isinstance(address, str):
            r.problem(ikey, address)
            complete = False
            continue
        earlier = next((a for a in parsed if a.value.ip == address.ip), None)
        if earlier is not None:
            r.problem(ikey, f"address {address.ip} is listed twice (also {earlier.key})")
            continue
        parsed.append(ParsedAddress(address, ikey))
    return tuple(parsed), complete


def check_workers(r: TomlReader, vnets: list[ParsedVnet], workers: int) -> None:
    """A ``worker`` pin is on a top-level vnet (its subtree follows) and names a worker."""
    for vnet in vnets:
        if vnet.worker is None:
            continue
        where = _join(vnet.key, "worker")
        if "/" in vnet.name:
            r.problem(
                where,
                f"only a top-level vnet is pinned to a worker; {vnet.name} runs "
                f"where {vnet.name.partition('/')[0]} runs",
            )
        elif not 0 <= vnet.worker < workers:
            r.problem(
                where,
                f"worker {vnet.worker} does not exist: daemon.workers = {workers} "
                f"(workers 0..{workers - 1})",
            )


# -- the document --------------------------------------------------------


def read_document(doc: Mapping[str, object], file: str) -> Config:
    """Check the loaded document ``doc`` of ``file`` and build its ``Config``."""
    r = TomlReader()
    r.check_keys(doc, "", _TOP_KEYS)
    daemon = read_daemon(r, doc)
    vnets: list[ParsedVnet] = []
    if "vnets" in doc:
        for name in _DEFAULT_VNET_KEYS:
            if name in doc:
                r.problem(
                    name,
                    f"top-level {name!r} configures the default vnet {DEFAULT_VNET} "
                    "only when no [vnets] are declared; "
                    f"move it under [vnets.NAME] (e.g. [vnets.{DEFAULT_VNET}])",
                )
        table = r.table(doc, "vnets", "")
        for name, value in (table or {}).items():
            key = _join("vnets", name)
            if not isinstance(value, dict):
                r.wrong_type(key, "a table", value)
                continue
            vnets.append(read_vnet(r, name, value, key, nested=True))
    else:
        vnets.append(read_vnet(r, DEFAULT_VNET, doc, "", nested=False))

    check_hierarchy(r, vnets)
    names = {v.name for v in vnets}
    for i, gateway in enumerate(daemon.socks):
        if gateway.vnet not in names:
            r.problem(f"daemon.socks[{i}].vnet", f"no vnet named {gateway.vnet!r}")
    check_workers(r, vnets, daemon.workers)
    check_limits(r, vnets)
    check_unique_taps(r, vnets)
    check_unique_netns(r, vnets)
    check_peers(r, vnets)
    for vnet in vnets:
        check_connected(r, vnet)
        check_routes(r, vnet)

    if r.problems:
        raise ConfigError([ConfigProblem(file, key, reason) for key, reason in r.problems])
    return Config(
        path=file,
        daemon=daemon,
        vnets=tuple(v.config() for v in parents_first(vnets)),
    )


def read_daemon(r: TomlReader, doc: Mapping[str, object]) -> DaemonConfig:
    table = r.table(doc, "daemon", "") or {}
    r.check_keys(table, "daemon", _DAEMON_KEYS)
    control_socket = read_path(r, table, "control_socket") or DEFAULT_CONTROL_SOCKET
    if len(os.fsencode(control_socket)) > UNIX_PATH_MAX:
        r.problem(
            "daemon.control_socket",
            f"{control_socket!r} is {len(os.fsencode(control_socket))} bytes long; "
            f"AF_UNIX socket paths are limited to {UNIX_PATH_MAX} bytes",
        )
    state_dir = read_path(r, table, "state_dir") or DEFAULT_STATE_DIR
    log_level = r.choice(table, "log_level", "daemon", LOG_LEVELS) or DEFAULT_LOG_LEVEL
    metrics = None
    if "metrics" in table:
        value = table["metrics"]
        if not isinstance(value, str):
            r.wrong_type("daemon.metrics", "a string", value, '; write metrics = "127.0.0.1:9585"')
        else:
            parsed = parse_listen(value)
            if isinstance(parsed, str):
                r.problem("daemon.metrics", parsed)
            else:
                metrics = parsed
    admins = read_principals(r, table, "admins", "daemon")
    workers = r.integer(table, "workers", "daemon")
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        r.problem("daemon.workers", f"{workers} is out of range 1..{MAX_WORKERS}")
        workers = None
    return DaemonConfig(
        control_socket,
        state_dir,
        log_level,
        metrics,
        admins,
        read_socks(r, table),
        workers or 1,
    )


def read_socks(r: TomlReader, table: Mapping[str, object]) -> tuple[SocksConfig, ...]:
    """Parse ``[[daemon.socks]]``: vnet, listen (host:port), optional username/password."""
    value = table.get("socks")
    if value is None:
        return ()
    if not isinstance(value, list):
        r.wrong_type("daemon.socks", "an array of tables ([[daemon.socks]])", value)
        return ()
    gateways = []
    for i, item in enumerate(value):
        key = f"daemon.socks[{i}]"
        if not isinstance(item, dict):
            r.wrong_type(key, "a table", item)
            continue
        r.check_keys(item, key, _SOCKS_KEYS, required=("vnet", "listen"))
        vnet = r.string(item, "vnet", key)
        listen = r.string(item, "listen", key)
        parsed = parse_listen(listen) if listen is not None else None
        if isinstance(parsed, str):
            r.problem(_join(key, "listen"), parsed)
            parsed = None
        username = r.string(item, "username", key)
        password = r.string(item, "password", key)
        if (username is None) != (password is None):
            r.problem(key, "give both username and password, or neither")
        for name, text in (("username", username), ("password", password)):
            if text is not None and not 1 <= len(text.encode()) <= 255:
                r.problem(_join(key, name), "must be 1..255 bytes (RFC 1929)")
        if vnet is not None and parsed is not None:
            gateways.append(SocksConfig(vnet, parsed, username, password))
    return tuple(gateways)


def read_principals(
    r: TomlReader, table: Mapping[str, object], name: str, key: str
) -> tuple[Principal, ...]:
    """Parse an array of principals (``uid:N``, ``gid:N``, ``user:X``, ``group:X``)."""
    value = table.get(name)
    if value is None:
        return ()
    pkey = _join(key, name)
    if not isinstance(value, list):
        hint = f'; write {name} = ["{value}"]' if isinstance(value, str) else ""
        r.wrong_type(pkey, "an array of strings", value, hint)
        return ()
    found: list[Principal] = []
    for index, item in enumerate(value):
        ikey = f"{pkey}[{index}]"
        if not isinstance(item, str):
            r.wrong_type(ikey, "a string", item)
            continue
        try:
            principal = parse_principal(item)
        except PrincipalError as err:
            r.problem(ikey, str(err))
            continue
        if principal not in found:
            found.append(principal)
    return tuple(found)


def read_permissions(r: TomlReader, table: Mapping[str, object], key: str) -> Grants:
    """Check ``[... .permissions]``: ``manage`` and ``sockets`` arrays of principals."""
    perms = r.table(table, "permissions", key)
    if perms is None:
        return Grants()
    pkey = _join(key, "permissions")
    r.check_keys(perms, pkey, _PERMISSION_KEYS)
    return Grants(
        manage=read_principals(r, perms, "manage", pkey),
        sockets=read_principals(r, perms, "sockets", pkey),
    )


def read_limits(
    r: TomlReader, table: Mapping[str, object], key: str
) -> tuple[tuple[str, int], ...]:
    """Check ``[... .limits]``: known kinds, positive integers (omit a kind: no limit)."""
    lim = r.table(table, "limits", key)
    if lim is None:
        return ()
    lkey = _join(key, "limits")
    r.check_keys(lim, lkey, limits_.KINDS)
    found: list[tuple[str, int]] = []
    for kind in lim:
        if kind not in limits_.KINDS:
            continue
        value = r.integer(lim, kind, lkey)
        if value is None:
            continue
        if not 1 <= value <= limits_.MAXIMUM:
            r.problem(
                _join(lkey, kind),
                f"{value} is out of range 1..{limits_.MAXIMUM} "
                "(leave the key out for no limit of its own)",
            )
            continue
        found.append((kind, value))
    return tuple(found)


def read_path(r: TomlReader, table: Mapping[str, object], name: str) -> str | None:
    value = r.string(table, name, "daemon")
    if value is None:
        return None
    key = _join("daemon", name)
    if "\x00" in value:
        r.problem(key, f"{value!r} contains a NUL character")
        return None
    if not value.startswith("/"):
        r.problem(key, f"{value!r} is not an absolute path (must start with '/')")
        return None
    return value


# -- one vnet -------------------------------------------------------------


def read_vnet(
    r: TomlReader, name: str, table: Mapping[str, object], key: str, nested: bool
) -> ParsedVnet:
    name_ok = True
    if nested:
        r.check_keys(table, key, _VNET_KEYS, hint=child_vnet_hint(name))
        error = vnet_name_error(name)
        if error is not None:
            r.problem(key, error)
            name_ok = False
    forwarding = r.boolean(table, "forwarding", key)
    interfaces: list[ParsedInterface] = []
    for iname, value in (r.table(table, "interfaces", key) or {}).items():
        ikey = _join(_join(key, "interfaces"), iname)
        if not isinstance(value, dict):
            r.wrong_type(ikey, "a table", value)
            continue
        interfaces.append(read_interface(r, iname, value, ikey))
    if forwarding is False:
        for iface in interfaces:
            if iface.advertises:
                r.problem(
                    iface.ra_key,
                    f"vnet {name} has forwarding = false, and a host does not advertise "
                    "itself as a router; drop 'ra' or set forwarding = true",
                )
    routes: list[ParsedRoute] = []
    rvalue = table.get("routes")
    rkey = _join(key, "routes")
    if isinstance(rvalue, list):
        for index, item in enumerate(rvalue):
            if not isinstance(item, dict):
                r.wrong_type(f"{rkey}[{index}]", "a table", item)
                continue
            routes.append(read_route(r, item, f"{rkey}[{index}]"))
    elif rvalue is not None:
        r.wrong_type(rkey, "an array of tables ([[routes]])", rvalue)
    return ParsedVnet(
        key=key,
        name=name,
        name_ok=name_ok,
        forwarding=True if forwarding is None else forwarding,
        interfaces=tuple(interfaces),
        routes=tuple(routes),
        sysctl=read_sysctl(r, table, key),
        firewall=read_firewall(r, table, key),
        permissions=read_permissions(r, table, key),
        limits=read_limits(r, table, key),
        limits_key=_join(key, "limits"),
        worker=r.integer(table, "worker", key) if nested else None,
    )


def read_firewall(r: TomlReader, table: Mapping[str, object], key: str) -> FirewallConfig | None:
    """Check ``[... .firewall]``: enable, max_states and the ruleset itself."""
    fw = r.table(table, "firewall", key)
    if fw is None:
        return None
    fkey = _join(key, "firewall")
    enable = r.boolean(fw, "enable", fkey)
    max_states = r.integer(fw, "max_states", fkey)
    if max_states is not None and not 1 <= max_states <= 10_000_000:
        r.problem(_join(fkey, "max_states"), f"{max_states} is out of range 1..10000000")
        max_states = None
    rules_table = {k: v for k, v in fw.items() if k not in ("enable", "max_states")}
    try:
        ruleset = parse_ruleset(rules_table, fkey)
    except RulesetError as err:
        for problem_key, reason in err.problems:
            r.problem(problem_key, reason)
        return None
    return FirewallConfig(True if enable is None else enable, max_states, ruleset)


def read_sysctl(
    r: TomlReader, table: Mapping[str, object], key: str
) -> tuple[tuple[str, bool | int | float], ...]:
    """Check ``[... .sysctl]``: known knob names, values of the knob's type and range."""
    knobs = _knobs()
    settings: list[tuple[str, bool | int | float]] = []
    skey = _join(key, "sysctl")
    for name, value in (r.table(table, "sysctl", key) or {}).items():
        nkey = f'{skey}."{name}"'
        if limits_.kind_of(name) is not None:
            kind = name.removeprefix(limits_.KNOB_PREFIX)
            r.problem(nkey, f"set limits in the limits table: {_join(_join(key, 'limits'), kind)}")
            continue
        knob = knobs.knobs.get(name)
        if knob is None:
            close = [k for k in knobs.knobs if k.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]]
            hint = (
                f"; did you mean {close[0]}?"
                if close
                else " (vrouterctl sysctl VNET -a lists them)"
            )
            r.problem(nkey, f"unknown sysctl {name!r}{hint}")
            continue
        try:
            settings.append((name, knob.coerce(value)))
        except SysctlError as err:
            r.problem(nkey, str(err).removeprefix(f"{name}: "))
    return tuple(settings)


def read_interface(
    r: TomlReader, name: str, table: Mapping[str, object], key: str
) -> ParsedInterface:
    r.check_keys(table, key, _INTERFACE_KEYS, required=("type",))
    error = ifname_error(name)
    if error is not None:
        r.problem(key, error)
    itype = r.choice(table, "type", key, INTERFACE_TYPES)
    addresses, complete = read_addresses(r, table, key)
    link_local = [a for a in addresses if is_link_local(a.value.ip)]
    for extra in link_local[1:]:
        r.problem(
            extra.key,
            f"a second link-local address {extra.value} (also {link_local[0].key}); "
            "an interface has at most one, which replaces its automatic EUI-64 one",
        )

    mtu = r.integer(table, "mtu", key)
    if mtu is not None and not MTU_MIN <= mtu <= MTU_MAX:
        r.problem(_join(key, "mtu"), f"mtu {mtu} is out of range {MTU_MIN}..{MTU_MAX}")
        mtu = None

    mac: bytes | None = None
    mac_text = r.string(table, "mac", key)
    if mac_text is not None:
        parsed_mac = parse_mac(mac_text)
        if isinstance(parsed_mac, str):
            r.problem(_join(key, "mac"), parsed_mac)
        else:
            mac = parsed_mac

    up = r.boolean(table, "up", key)

    ra_key = _join(key, "ra")
    advertises = table.get("ra") is True or isinstance(table.get("ra"), dict)
    ra = read_ra(r, table, ra_key, addresses)

    host: HostConfig | None = None
    hkey = _join(key, "host")
    if "host" in table and itype == "epair":
        r.problem(hkey, "'host' is only valid on tap interfaces")
    else:
        host_table = r.table(table, "host", key)
        if host_table is not None:
            host = read_host(r, host_table, hkey, addresses, name, advertises)

    if mtu is not None and mtu < IPV6_MTU_MIN:
        carries = [a.key for a in addresses if a.value.version == 6][:1]
        if advertises:
            carries.append(ra_key)
        if host is not None and any(a.version == 6 for a in host.addresses):
            carries.append(_join(hkey, "addresses"))
        if host is not None and host.slaac:
            carries.append(_join(hkey, "slaac"))
        if carries:
            r.problem(
                _join(key, "mtu"),
                f"mtu {mtu} is below {IPV6_MTU_MIN}, the minimum MTU of a link that "
                f"carries IPv6 (RFC 8200), and this one does ({', '.join(carries)})",
            )

    peer: tuple[str, str] | None = None
    pkey = _join(key, "peer")
    if itype == "tap" and "peer" in table:
        r.problem(pkey, "'peer' is only valid on epair interfaces")
    elif itype == "epair" and "peer" not in table:
        r.problem(
            pkey,
            'an epair interface needs a peer: peer = "VNET:IFNAME" (e.g. "blue:ep0")',
        )
    else:
        peer_text = r.string(table, "peer", key)
        if peer_text is not None:
            peer = read_peer(r, peer_text, pkey)

    return ParsedInterface(
        key=key,
        name=name,
        type=itype,
        addresses=addresses,
        addresses_complete=complete,
        mtu=DEFAULT_MTU if mtu is None else mtu,
        mac=mac,
        up=True if up is None else up,
        host=host,
        netns_key=_join(hkey, "netns"),
        peer=peer,
        peer_key=pkey,
        ra=ra,
        ra_key=ra_key,
        advertises=advertises,
        offload=read_offload(r, table, key, itype),
    )


def read_offload(r: TomlReader, table: Mapping[str, object], key: str, itype: str | None) -> bool:
    value = r.boolean(table, "offload", key)
    if value is not None and itype == "epair":
        r.problem(
            _join(key, "offload"), "offload applies to tap interfaces (epairs always carry it)"
        )
    return True if value is None else value


def read_peer(r: TomlReader, text: str, key: str) -> tuple[str, str] | None:
    vnet, sep, ifname = text.rpartition(":")
    if not sep or not vnet or not ifname:
        r.problem(key, f'{text!r} is not "VNET:IFNAME" (e.g. "blue:ep0")')
        return None
    ok = True
    for error in (vnet_name_error(vnet), ifname_error(ifname)):
        if error is not None:
            r.problem(key, f"peer {text!r}: {error}")
            ok = False
    return (vnet, ifname) if ok else None


# -- router advertisements --------------------------------------------------


def read_ra(
    r: TomlReader, table: Mapping[str, object], key: str, addresses: tuple[ParsedAddress, ...]
) -> RaConfig | None:
    """Parse an interface's ``ra`` (true, false or a table) at *key*."""
    value = table.get("ra")
    if value is None or value is False:
        return None
    if value is True:
        ra: Mapping[str, object] = {}
    elif isinstance(value, dict):
        ra = value
    else:
        r.wrong_type(key, "a boolean or a table", value)
        return None
    r.check_keys(ra, key, _RA_KEYS)

    interval = DEFAULT_RA_INTERVAL
    floor = 0.0  # the lower bound lifetimes are checked against
    given = r.number(ra, "interval", key)
    if given is not None and not RA_INTERVAL_MIN <= given <= RA_INTERVAL_MAX:
        r.problem(
            _join(key, "interval"),
            f"interval {given:g} is out of range {RA_INTERVAL_MIN}..{RA_INTERVAL_MAX} "
            "seconds (MaxRtrAdvInterval, RFC 4861 section 6.2.1)",
        )
    elif given is not None:
        interval = floor = given
    elif "interval" not in ra:
        floor = interval
    three_intervals = math.ceil(3 * interval)

    lifetime = r.integer(ra, "lifetime", key)
    if lifetime is not None and lifetime != 0 and not floor <= lifetime <= RA_LIFETIME_MAX:
        r.problem(
            _join(key, "lifetime"),
            f"lifetime {lifetime} is out of range: 0 (not a default router) or "
            f"{floor:g}..{RA_LIFETIME_MAX} seconds (at least the interval)",
        )
    hop_limit = r.integer(ra, "hop_limit", key)
    if hop_limit is not None and not 0 <= hop_limit <= 255:
        r.problem(_join(key, "hop_limit"), f"hop_limit {hop_limit} is out of range 0..255")
    managed = r.boolean(ra, "managed", key)
    other = r.boolean(ra, "other", key)
    mtu = r.boolean(ra, "mtu", key)
    rdnss = read_rdnss(r, ra, key)
    rdnss_lifetime = r.integer(ra, "rdnss_lifetime", key)
    if (
        rdnss_lifetime is not None
        and rdnss_lifetime != 0
        and not floor <= rdnss_lifetime <= LIFETIME_INFINITY
    ):
        r.problem(
            _join(key, "rdnss_lifetime"),
            f"rdnss_lifetime {rdnss_lifetime} is out of range: 0 (stop using the servers) "
            f"or {floor:g}..{LIFETIME_INFINITY} seconds (at least the interval)",
        )

    prefixes: list[RaPrefixConfig] = []
    pkey = _join(key, "prefixes")
    pvalue = ra.get("prefixes")
    if pvalue is None:
        networks: list[IPv6Network] = []
        for address in addresses:
            value6 = address.value
            if (
                isinstance(value6, IPv6Interface)
                and not value6.ip.is_link_local
                and value6.network not in networks
            ):
                networks.append(value6.network)
        prefixes = [
            RaPrefixConfig(
                prefix=network,
                onlink=True,
                autonomous=network.prefixlen == SLAAC_PREFIX_LENGTH,
                valid_lifetime=DEFAULT_VALID_LIFETIME,
                preferred_lifetime=DEFAULT_PREFERRED_LIFETIME,
            )
            for network in networks
        ]
    elif not isinstance(pvalue, list):
        r.wrong_type(pkey, "an array of tables ([[...ra.prefixes]])", pvalue)
    else:
        seen: dict[IPv6Network, str] = {}
        for index, item in enumerate(pvalue):
            ikey = f"{pkey}[{index}]"
            if not isinstance(item, dict):
                r.wrong_type(ikey, "a table", item)
                continue
            prefix = read_ra_prefix(r, item, ikey)
            if prefix is None:
                continue
            if prefix.prefix in seen:
                r.problem(
                    _join(ikey, "prefix"),
                    f"duplicate prefix {prefix.prefix} (already {seen[prefix.prefix]})",
                )
                continue
            seen[prefix.prefix] = ikey
            prefixes.append(prefix)

    return RaConfig(
        interval=interval,
        lifetime=three_intervals if lifetime is None else lifetime,
        hop_limit=DEFAULT_RA_HOP_LIMIT if hop_limit is None else hop_limit,
        managed=bool(managed),
        other=bool(other),
        mtu=DEFAULT_RA_MTU if mtu is None else mtu,
        prefixes=tuple(prefixes),
        rdnss=rdnss,
        rdnss_lifetime=three_intervals if rdnss_lifetime is None else rdnss_lifetime,
    )


def read_rdnss(r: TomlReader, ra: Mapping[str, object], key: str) -> tuple[IPv6Address, ...]:
    value = ra.get("rdnss")
    if value is None:
        return ()
    rkey = _join(key, "rdnss")
    if not isinstance(value, list):
        hint = f'; write rdnss = ["{value}"]' if isinstance(value, str) else ""
        r.wrong_type(rkey, "an array of strings", value, hint)
        return ()
    servers: list[IPv6Address] = []
    keys: dict[IPv6Address, str] = {}
    for index, item in enumerate(value):
        ikey = f"{rkey}[{index}]"
        if not isinstance(item, str):
            r.wrong_type(ikey, "a string", item)
            continue
        parsed = parse_address(item)
        if isinstance(parsed, str):
            r.problem(ikey, parsed)
            continue
        if isinstance(parsed, IPv4Address):
            r.problem(ikey, f"{item!r} is IPv4; rdnss lists IPv6 DNS servers")
            continue
        error = ipv6_unicast_error(parsed, item, "a DNS server needs a unicast address")
        if error is not None:
            r.problem(ikey, error)
            continue
        if parsed in keys:
            r.problem(ikey, f"DNS server {parsed} is listed twice (also {keys[parsed]})")
            continue
        keys[parsed] = ikey
        servers.append(parsed)
    return tuple(servers)


def read_ra_prefix(r: TomlReader, table: Mapping[str, object], key: str) -> RaPrefixConfig | None:
    r.check_keys(table, key, _RA_PREFIX_KEYS, required=("prefix",))
    prefix: IPv6Network | None = None
    text = r.string(table, "prefix", key)
    if text is not None:
        pkey = _join(key, "prefix")
        parsed = parse_network(text)
        if isinstance(parsed, str):
            r.problem(pkey, parsed)
        elif isinstance(parsed, IPv4Network):
            r.problem(pkey, f"{text!r} is IPv4; router advertisements carry IPv6 prefixes")
        elif parsed.prefixlen and parsed.subnet_of(LINK_LOCAL_NETWORK):
            r.problem(pkey, f"{parsed} is link-local; hosts ignore link-local prefixes (RFC 4862)")
        elif parsed.prefixlen and parsed.subnet_of(MULTICAST_NETWORK):
            r.problem(pkey, f"{parsed} is multicast; advertise a unicast prefix")
        else:
            prefix = parsed
    onlink = r.boolean(table, "onlink", key)
    autonomous = r.boolean(table, "autonomous", key)
    if autonomous and prefix is not None and prefix.prefixlen != SLAAC_PREFIX_LENGTH:
        r.problem(
            _join(key, "autonomous"),
            f"autonomous = true needs a /{SLAAC_PREFIX_LENGTH} prefix (SLAAC forms "
            f"64-bit interface identifiers); {prefix} is /{prefix.prefixlen}, "
            "set autonomous = false",
        )
    valid = read_lifetime(r, table, "valid_lifetime", key)
    preferred = read_lifetime(r, table, "preferred_lifetime", key)
    if preferred is not None and valid is not None and preferred > valid:
        r.problem(
            _join(key, "preferred_lifetime"),
            f"preferred_lifetime {preferred} is longer than valid_lifetime {valid}",
        )
    if prefix is None:
        return None
    valid_lifetime = DEFAULT_VALID_LIFETIME if valid is None else valid
    if autonomous is None:
        autonomous = prefix.prefixlen == SLAAC_PREFIX_LENGTH
    return RaPrefixConfig(
        prefix=prefix,
        onlink=True if onlink is None else onlink,
        autonomous=autonomous,
        valid_lifetime=valid_lifetime,
        preferred_lifetime=(
            min(DEFAULT_PREFERRED_LIFETIME, valid_lifetime) if preferred is None else preferred
        ),
    )


def read_lifetime(r: TomlReader, table: Mapping[str, object], name: str, key: str) -> int | None:
    """Return a prefix lifetime (0..0xffffffff seconds) or None if absent or bad."""
    value = r.integer(table, name, key)
    if value is not None and not 0 <= value <= LIFETIME_INFINITY:
        r.problem(
            _join(key, name),
            f"{name} {value} is out of range 0..{LIFETIME_INFINITY} seconds "
            f"({LIFETIME_INFINITY} = 0xffffffff is infinity)",
        )
        return None
    return value


# -- the host side of a tap ---------------------------------------------------


def read_host(
    r: TomlReader,
    table: Mapping[str, object],
    key: str,
    tap_addresses: tuple[ParsedAddress, ...],
    ifname: str,
    advertised: bool,
) -> HostConfig:
    r.check_keys(table, key, _HOST_KEYS, required=("netns",))
    netns = r.string(table, "netns", key)
    if netns is not None and not NETNS.fullmatch(netns):
        r.problem(
            _join(key, "netns"),
            f"invalid netns name {netns!r}: must be 1-64 characters from "
            "[A-Za-z0-9_.-], starting with a letter or digit",
        )
    addresses, complete = read_addresses(r, table, key)
    for address in addresses:
        same = next((a for a in tap_addresses if a.value.ip == address.value.ip), None)
        if same is not None:
            r.problem(
                address.key,
                f"host address {address.value.ip} is also the router's address ({same.key})",
            )
    slaac = r.boolean(table, "slaac", key)
    if slaac and not advertised:
        r.problem(
            _join(key, "slaac"),
            f"slaac = true, but interface {ifname} sends no router advertisements; "
            "add ra = true to the interface",
        )
    no_addresses = (
        complete and not addresses and not slaac and (slaac is not None or "slaac" not in table)
    )
    if no_addresses:
        r.problem(_join(key, "addresses"), "host has no addresses; give addresses or slaac = true")
    gateway = read_gateway(r, table, key, "gateway", addresses, check=not no_addresses)
    gateway6 = read_gateway(r, table, key, "gateway6", addresses, check=not no_addresses)
    return HostConfig(
        netns=netns or "",
        addresses=tuple(a.value for a in addresses),
        gateway=gateway if isinstance(gateway, IPv4Address) else None,
        gateway6=gateway6 if isinstance(gateway6, IPv6Address) else None,
        slaac=bool(slaac),
    )


def read_gateway(
    r: TomlReader,
    table: Mapping[str, object],
    key: str,
    name: str,
    addresses: tuple[ParsedAddress, ...],
    check: bool,
) -> IPv4Address | IPv6Address | None:
    """Parse host ``gateway`` (IPv4) or ``gateway6`` (IPv6) *name*.

    With *check*, a gateway must be inside one of the host's address
    networks of its family; a link-local IPv6 one needs none.
    """
    text = r.string(table, name, key)
    if text is None:
        return None
    gkey = _join(key, name)
    parsed = parse_address(text)
    if isinstance(parsed, str):
        r.problem(gkey, parsed)
        return None
    version = 6 if name == "gateway6" else 4
    if parsed.version != version:
        if version == 4:
            r.problem(
                gkey,
                f"gateway {parsed} is IPv6; 'gateway' is the IPv4 default gateway, "
                f'write gateway6 = "{parsed}"',
            )
        else:
            r.problem(
                gkey,
                f"gateway6 {parsed} is IPv4; 'gateway6' is the IPv6 default gateway, "
                f'write gateway = "{parsed}"',
            )
        return None
    if any(a.value.ip == parsed for a in addresses):
        r.problem(gkey, f"{name} {parsed} is the host's own address")
        return parsed
    if not check or is_link_local(parsed):
        return parsed
    own = [
        a.value.network
        for a in addresses
        if a.value.version == version and not is_link_local(a.value.ip)
    ]
    if not any(parsed in network for network in own):
        networks = ", ".join(str(n) for n in own) or "none"
        if version == 4:
            reason = (
                f"gateway {parsed} is not inside any of the host's address networks ({networks})"
            )
        else:
            reason = (
                f"gateway6 {parsed} is not inside any of the host's IPv6 address "
                f"networks ({networks}); a link-local gateway6 (fe80::/10) needs none"
            )
        r.problem(gkey, reason)
    return parsed


def read_route(r: TomlReader, table: Mapping[str, object], key: str) -> ParsedRoute:
    r.check_keys(table, key, _ROUTE_KEYS, required=("to",))
    prefix: IPv4Network | IPv6Network | None = None
    to = r.string(table, "to", key)
    if to is not None:
        parsed = parse_network(to)
        if isinstance(parsed, str):
            r.problem(_join(key, "to"), parsed)
        else:
            prefix = parsed
    rtype = r.choice(table, "type", key, ROUTE_TYPES) if "type" in table else "unicast"
    via: IPv4Address | IPv6Address | None = None
    via_text = r.string(table, "via", key)
    if via_text is not None:
        parsed_via = parse_address(via_text)
        if isinstance(parsed_via, str):
            r.problem(_join(key, "via"), parsed_via)
        elif prefix is not None and parsed_via.version != prefix.version:
            r.problem(
                _join(key, "via"),
                f"next hop {parsed_via} is IPv{parsed_via.version} but destination "
                f"{prefix} is IPv{prefix.version}; they must be of the same family",
            )
        else:
            via = parsed_via
    interface = r.string(table, "interface", key)
    return ParsedRoute(
        key=key,
        prefix=prefix,
        type=rtype,
        via=via,
        interface=interface,
        has_via="via" in table,
        has_interface="interface" in table,
    )


# -- cross-checks ----------------------------------------------------------


def check_hierarchy(r: TomlReader, vnets: list[ParsedVnet]) -> None:
    declared = {v.name for v in vnets}
    for vnet in vnets:
        if not vnet.name_ok or "/" not in vnet.name:
            continue
        parts = vnet.name.split("/")
        ancestors = ["/".join(parts[:n]) for n in range(1, len(parts))]
        missing = [a for a in ancestors if a not in declared]
        if missing:
            names = ", ".join(repr(m) for m in missing)
            declare = " and ".join(toml_header(m) for m in missing)
            if len(missing) == 1:
                reason = f"parent vnet {names} is not declared; declare {declare}"
            else:
                reason = f"parent vnets {names} are not declared; declare {declare}"
            r.problem(vnet.key, reason)


def check_limits(r: TomlReader, vnets: list[ParsedVnet]) -> None:
    """Check limits only narrow down the tree, and each vnet's config fits its own."""
    by_name = {v.name: v for v in vnets}
    effective: dict[str, dict[str, tuple[int, str]]] = {}
    for vnet in parents_first(vnets):
        parent_name, sep, _ = vnet.name.rpartition("/")
        inherited = dict(effective.get(parent_name, {})) if sep else {}
        mine = dict(inherited)
        for kind, value in vnet.limits:
            noun = limits_.NOUNS[kind]
            above = inherited.get(kind)
            if above is not None and value > above[0]:
                where = "" if above[1] == parent_name else f", set on {above[1]}"
                r.problem(
                    _join(vnet.limits_key, kind),
                    f"{noun} limit {value} of vnet {vnet.name} is above the {noun} limit "
                    f"of its parent vnet {parent_name} ({above[0]}{where}); "
                    "a child may only narrow its parent's limits",
                )
                continue
            mine[kind] = (value, vnet.name)
        effective[vnet.name] = mine
        check_fits(r, by_name[vnet.name], mine)


def check_fits(r: TomlReader, vnet: ParsedVnet, limits: dict[str, tuple[int, str]]) -> None:
    """Report what ``vnet``'s own config declares beyond its limits."""

    def beyond(kind: str, count: int) -> str:
        limit, where = limits[kind]
        source = "" if where == vnet.name else f" (set on {where})"
        return f"{count}, above its {limits_.NOUNS[kind]} limit {limit}{source}"

    if "interfaces" in limits and len(vnet.interfaces) > limits["interfaces"][0]:
        r.problem(
            _join(vnet.key, "interfaces"),
            f"vnet {vnet.name} declares interfaces: {beyond('interfaces', len(vnet.interfaces))}",
        )
    if "routes" in limits:
        networks = {
            a.value.network
            for i in vnet.interfaces
            for a in i.addresses
            if not is_link_local(a.value.ip)
        }
        statics = {r.prefix for r in vnet.routes if r.prefix is not None}
        count = len(networks | statics)
        if count > limits["routes"][0]:
            r.problem(
                _join(vnet.key, "routes"),
                f"vnet {vnet.name} declares routes (static and connected): "
                f"{beyond('routes', count)}",
            )
    knobs: list[tuple[str, str, float]] = [
        (f'{_join(vnet.key, "sysctl")}."{name}"', name, value) for name, value in vnet.sysctl
    ]
    if vnet.firewall is not None and vnet.firewall.max_states is not None:
        knobs.append(
            (
                _join(_join(vnet.key, "firewall"), "max_states"),
                "net.pf.states_max",
                vnet.firewall.max_states,
            )
        )
    for key, name, value in knobs:
        kind = limits_.KIND_OF_KNOB.get(name)
        if kind is not None and kind in limits and value > limits[kind][0]:
            limit, where = limits[kind]
            source = "" if where == vnet.name else f" (set on {where})"
            r.problem(
                key,
                f"{name} {value:g} is above the {limits_.NOUNS[kind]} limit {limit} "
                f"of vnet {vnet.name}{source}",
            )


def check_unique_taps(r: TomlReader, vnets: list[ParsedVnet]) -> None:
    owner: dict[str, str] = {}
    for vnet in vnets:
        for iface in vnet.interfaces:
            if iface.type != "tap":
                continue
            if iface.name in owner:
                r.problem(
                    iface.key,
                    f"duplicate interface {iface.name!r} (already in vnet "
                    f"{owner[iface.name]}); TAP interfaces are kernel devices, "
                    "so their names must be unique across the daemon",
                )
            else:
                owner[iface.name] = vnet.name


def check_unique_netns(r: TomlReader, vnets: list[ParsedVnet]) -> None:
    owner: dict[str, str] = {}
    for vnet in vnets:
        for iface in vnet.interfaces:
            if iface.host is None or not iface.host.netns:
                continue
            netns = iface.host.netns
            if netns in owner:
                r.problem(
                    iface.netns_key,
                    f"netns {netns!r} is already used by the host of {owner[netns]}",
                )
            else:
                owner[netns] = f"interface {iface.name} in vnet {vnet.name}"


def check_peers(r: TomlReader, vnets: list[ParsedVnet]) -> None:
    by_name = {v.name: v for v in vnets}
    for vnet in vnets:
        for iface in vnet.interfaces:
            if iface.type != "epair" or iface.peer is None:
                continue
            me = f"{vnet.name}:{iface.name}"
            peer_vnet_name, peer_name = iface.peer
            peer_text = f"{peer_vnet_name}:{peer_name}"
            if iface.peer == (vnet.name, iface.name):
                r.problem(iface.peer_key, f"epair {me} cannot peer with itself")
                continue
            peer_vnet = by_name.get(peer_vnet_name)
            if peer_vnet is None:
                r.problem(
                    iface.peer_key,
                    f"peer {peer_text}: vnet {peer_vnet_name!r} is not declared",
                )
                continue
            peer = peer_vnet.interface(peer_name)
            if peer is None:
                r.problem(
                    iface.peer_key,
                    f"peer {peer_text}: vnet {peer_vnet_name} has no interface {peer_name!r}",
                )
                continue
            if peer.type is None:
                continue  # its type problem is already reported
            if peer.type != "epair":
                r.problem(
                    iface.peer_key,
                    f"peer {peer_text} is a {peer.type} interface, not an epair",
                )
                continue
            if peer.peer is None:
                continue  # its missing or bad peer is already reported
            if peer.peer != (vnet.name, iface.name):
                r.problem(
                    iface.peer_key,
                    f"peer {peer_text} does not point back: its peer is "
                    f"{peer.peer[0]}:{peer.peer[1]}, not {me}; "
                    "both ends of an epair must name each other",
                )


def check_connected(r: TomlReader, vnet: ParsedVnet) -> None:
    """Report an address or connected network used by two interfaces."""
    seen: list[tuple[ParsedAddress, ParsedInterface]] = []
    for iface in vnet.interfaces:
        for address in iface.addresses:
            if is_link_local(address.value.ip):
                continue  # each interface has its own link-local network
            for other, other_iface in seen:
                if other_iface is iface or other.value.version != address.value.version:
                    continue
                if other.value.ip == address.value.ip:
                    r.problem(
                        address.key,
                        f"address {address.value.ip} is already assigned to "
                        f"interface {other_iface.name} in vnet {vnet.name}",
                    )
                    break
                if other.value.network.overlaps(address.value.network):
                    r.problem(
                        address.key,
                        f"network {address.value.network} overlaps "
                        f"{other.value.network} of interface {other_iface.name} "
                        f"in vnet {vnet.name}",
                    )
                    break
            seen.append((address, iface))


def check_routes(r: TomlReader, vnet: ParsedVnet) -> None:
    seen: dict[IPv4Network | IPv6Network, str] = {}
    for route in vnet.routes:
        if route.prefix is not None:
            if route.prefix in seen:
                r.problem(
                    _join(route.key, "to"),
                    f"duplicate route to {route.prefix} (already {seen[route.prefix]})",
                )
            else:
                seen[route.prefix] = route.key
        if route.type in ("blackhole", "reject"):
            for name, present in (
                ("via", route.has_via),
                ("interface", route.has_interface),
            ):
                if present:
                    r.problem(
                        _join(route.key, name),
                        f"a {route.type} route takes no {name!r}",
                    )
            continue
        if route.type != "unicast":
            continue  # bad type already reported
        if not route.has_via and not route.has_interface:
            r.problem(route.key, "a unicast route needs 'via', 'interface' or both")
            continue
        iface: ParsedInterface | None = None
        if route.interface is not None:
            iface = vnet.interface(route.interface)
            if iface is None:
                known = ", ".join(i.name for i in vnet.interfaces) or "none"
                r.problem(
                    _join(route.key, "interface"),
                    f"unknown interface {route.interface!r} in vnet {vnet.name} "
                    f"(its interfaces: {known})",
                )
                continue
        if route.via is not None and is_link_local(route.via) and iface is None:
            if not route.has_interface:
                r.problem(
                    _join(route.key, "interface"),
                    f"a link-local next hop needs 'interface': {route.via} is only "
                    "unique on one link, so name the interface it is reached through",
                )
            continue
        if route.via is not None:
            check_next_hop(r, vnet, route, route.via, iface)


def check_next_hop(
    r: TomlReader,
    vnet: ParsedVnet,
    route: ParsedRoute,
    via: IPv4Address | IPv6Address,
    iface: ParsedInterface | None,
) -> None:
    """Check *via* is on a connected network (any link for link-local ones)."""
    candidates = vnet.interfaces if iface is None else (iface,)
    if not all(i.addresses_complete for i in candidates):
        return  # a bad address is already reported; do not guess
    key = _join(route.key, "via")
    for candidate in candidates:
        if any(a.value.ip == via for a in candidate.addresses):
            r.problem(
                key,
                f"next hop {via} is an address of vnet {vnet.name} itself "
                f"(interface {candidate.name})",
            )
            return
    if is_link_local(via):
        return  # every link has fe80::/64; the next hop is on iface's
    if any(
        via in a.value.network
        for c in candidates
        for a in c.addresses
        if a.value.version == via.version
    ):
        return
    if iface is None:
        r.problem(key, f"next hop {via} is not on a connected network of vnet {vnet.name}")
    else:
        r.problem(
            key,
            f"next hop {via} is not on a connected network of vnet {vnet.name} "
            f"via interface {iface.name}",
        )


def parents_first(vnets: list[ParsedVnet]) -> list[ParsedVnet]:
    """Order *vnets* so each parent precedes its children, else file order."""
    by_name = {v.name: v for v in vnets}
    ordered: list[ParsedVnet] = []
    placed: set[str] = set()

    def place(vnet: ParsedVnet) -> None:
        if vnet.name in placed:
            return
        placed.add(vnet.name)
        parent, sep, _ = vnet.name.rpartition("/")
        if sep and parent in by_name:
            place(by_name[parent])
        ordered.append(vnet)

    for vnet in vnets:
        place(vnet)
    return ordered
