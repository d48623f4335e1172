"""Shell completion for ``vrouterctl``: bash and zsh, from the parser and the running daemon.

``vrouterctl completion bash`` (or ``zsh``) prints a script to source; it
asks ``vrouterctl __complete INDEX WORD...`` for the candidates of the word
at INDEX, which this module computes: subcommands and options from the
argparse parser itself (so completion never falls behind the commands), and
vnet, interface and subsystem names from the daemon the command line names
(``--socket``, ``$VROUTER_SOCKET``), asked with a short timeout; a daemon
that does not answer only means no names.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator

from vrouter.api.client import DEFAULT_SOCKET, ControlClient

TIMEOUT = 1.0
"""Seconds the daemon has to answer a completion's question."""

BASH = r"""# vrouterctl completion for bash: source it, or install it as
# /usr/share/bash-completion/completions/vrouterctl
_vrouterctl() {
    local IFS=$'\n'
    COMPREPLY=($(vrouterctl __complete "$COMP_CWORD" "${COMP_WORDS[@]}" 2>/dev/null))
}
complete -o default -F _vrouterctl vrouterctl
"""

ZSH = r"""#compdef vrouterctl
# vrouterctl completion for zsh: put it on $fpath as _vrouterctl, or source it.
_vrouterctl() {
    local -a candidates
    candidates=("${(@f)$(vrouterctl __complete $((CURRENT - 1)) "${words[@]}" 2>/dev/null)}")
    compadd -a candidates
}
if [ "$funcstack[1]" = "_vrouterctl" ]; then
    _vrouterctl "$@"
else
    compdef _vrouterctl vrouterctl
fi
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH}

# What a positional argument names, by its dest: how to list the candidates.
Names = Callable[["_Daemon", list[str]], Iterator[str]]


class _Daemon:
    """The daemon a command line talks to, asked lazily and at most once per question."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    def ask(self, op: str, **args: object) -> object:
        try:
            with ControlClient(self.socket_path, timeout=TIMEOUT) as client:
                return client.call(op, **args)
        except (OSError, ValueError):
            return None

    def vnets(self) -> list[str]:
        found = self.ask("vnet.list")
        return [v["name"] for v in found] if isinstance(found, list) else []

    def interfaces(self, vnet: str) -> list[str]:
        found = self.ask("ifconfig", vnet=vnet)
        return [i["name"] for i in found] if isinstance(found, list) else []

    def modules(self) -> list[str]:
        found = self.ask("module.list")
        if not isinstance(found, dict):
            return []
        return [m["name"] for m in found.get("modules", [])]


def _vnets(daemon: _Daemon, given: list[str]) -> Iterator[str]:
    yield from daemon.vnets()


def _interfaces(daemon: _Daemon, given: list[str]) -> Iterator[str]:
    if given:
        yield from daemon.interfaces(given[0])


def _ends(daemon: _Daemon, given: list[str]) -> Iterator[str]:
    for vnet in daemon.vnets():
        yield f"{vnet}:"


def _modules(daemon: _Daemon, given: list[str]) -> Iterator[str]:
    yield from daemon.modules()


KINDS: dict[str, Names] = {
    "vnet": _vnets,
    "to": _vnets,
    "interface": _interfaces,
    "words": _interfaces,  # ifconfig VNET IFACE ...
    "a": _ends,
    "b": _ends,
}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [
        option
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for option in action.option_strings
    ]


def _takes_value(parser: argparse.ArgumentParser, word: str) -> bool:
    for action in parser._actions:
        if word in action.option_strings:
            return action.nargs != 0 and not isinstance(
                action, argparse._StoreConstAction | argparse._VersionAction | argparse._HelpAction
            )
    return False


def candidates(parser: argparse.ArgumentParser, words: list[str], index: int) -> list[str]:
    """Return the completions of ``words[index]`` (``words[0]`` is the program's name)."""
    if not 0 < index <= len(words):
        return []
    current = words[index] if index < len(words) else ""
    socket_path = os.environ.get("VROUTER_SOCKET", DEFAULT_SOCKET)
    daemon: _Daemon | None = None
    path: list[str] = []
    given: list[str] = []  # positionals given so far at the current level
    i = 1
    while i < index:
        word = words[i]
        if word == "--socket" and i + 1 < index:
            socket_path = words[i + 1]
        if word.startswith("-"):
            i += 2 if _takes_value(parser, word) and "=" not in word else 1
            continue
        positionals = [a for a in parser._actions if not a.option_strings]
        slot = positionals[len(given)] if len(given) < len(positionals) else None
        if isinstance(slot, argparse._SubParsersAction) and word in slot.choices:
            parser = _capture_parser() if word == "capture" and not path else slot.choices[word]
            path.append(word)
            given = []
        else:
            given.append(word)
        i += 1
    if current.startswith("-"):
        return sorted(o for o in _options(parser) if o.startswith(current))
    previous = words[index - 1] if index > 1 else ""
    if previous.startswith("-") and _takes_value(parser, previous):
        return []  # a value: the shell's default (files) or nothing
    positionals = [a for a in parser._actions if not a.option_strings]
    if len(given) < len(positionals):
        slot = positionals[len(given)]
    elif positionals and positionals[-1].nargs in ("*", "+"):
        slot = positionals[-1]
    else:
        return []
    if isinstance(slot, argparse._SubParsersAction):
        return sorted(n for n in slot.choices if n.startswith(current))
    if slot.choices:
        return sorted(str(c) for c in slot.choices if str(c).startswith(current))
    kind: Names | None = None
    if path[:1] == ["module"] and slot.dest == "name":
        kind = _modules
    if kind is None and slot.dest == "name" and path[:1] == ["vnet"]:
        kind = _vnets
    if kind is None:
        kind = KINDS.get(slot.dest)
    if kind is None or (slot.dest == "words" and path[:1] != ["ifconfig"]):
        return []
    if slot.dest == "words" and len(given) > 1:
        return []  # after the interface: "vnet TO" or "destroy"
    daemon = _Daemon(socket_path)
    return sorted({n for n in kind(daemon, given) if n.startswith(current)})


def _capture_parser() -> argparse.ArgumentParser:
    # The capture command parses its own words (tcpdump's order); its module
    # needs dpkt, so it is imported only to complete that command.
    from vrouter.cli import capture

    return capture.parser()
