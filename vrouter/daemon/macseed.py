"""The installation's MAC seed: what makes derived MACs differ from one daemon to another.

An interface without a configured ``mac`` gets one derived from its vnet
and interface names (:func:`vrouter.daemon.build.derive_mac`).  Names alone
would give two daemons of one config (two machines, or two daemons of one
machine) the same MACs, which collide as soon as they share a segment (a
VXLAN overlay).  So a random seed, made once and kept in
``DATA_DIR/mac-seed`` (16 bytes, hex), is mixed in: MACs stay the same
across restarts and reloads, and differ between installations.  Daemons
(and their workers) sharing one ``data_dir`` share the seed.

If the seed cannot be kept (``data_dir`` not writable), the machine's id
(``/etc/machine-id``) is used instead, with a warning: stable, but shared
by the daemons of one machine.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger("vrouter.daemon")

FILE = "mac-seed"
SIZE = 16
"""Bytes of seed."""
MACHINE_ID = Path("/etc/machine-id")


class SeedError(Exception):
    """The seed file exists but is not a seed."""


def load(data_dir: str | Path, machine_id: Path = MACHINE_ID) -> bytes:
    """Return the seed kept in ``data_dir`` (made there on first use)."""
    path = Path(data_dir) / FILE
    try:
        return _read(path)
    except FileNotFoundError:
        try:
            return _create(path)
        except OSError as err:
            problem = err
    except OSError as err:
        problem = err
    log.warning(
        "cannot keep a MAC seed in %s (%s): derived MACs follow %s instead, the same for "
        "every daemon of this machine",
        path, problem.strerror or problem, machine_id,
    )  # fmt: skip
    try:
        return machine_id.read_text().strip().encode()
    except OSError:
        return b""


def _read(path: Path) -> bytes:
    text = path.read_text().strip()
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = b""
    if len(seed) != SIZE:
        raise SeedError(
            f"{path} is not a MAC seed ({SIZE * 2} hex digits); remove it to make a new one "
            "(derived interface MACs then change)"
        )
    return seed


def _create(path: Path) -> bytes:
    """Write a new seed; a daemon (or worker) that wrote one first wins, whose is returned."""
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = secrets.token_bytes(SIZE)
    temp = path.with_name(f".{FILE}.{os.getpid()}")
    temp.write_text(seed.hex() + "\n")
    try:
        os.link(temp, path)
    except FileExistsError:
        return _read(path)
    finally:
        temp.unlink(missing_ok=True)
    return seed
