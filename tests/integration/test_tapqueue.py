"""The host side of every TAP the daemon creates gets the configured qdisc and queue length,
in a host namespace (where the move reset it) and in the daemon's own, at start and later."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import DEMO_LIKE, Vrouterd, run

from vrouter.daemon.config.model import DEFAULT_TAP_TXQUEUELEN

pytestmark = pytest.mark.integration


def _daemon(tmp_path: Path, settings: str) -> Vrouterd:
    template = DEMO_LIKE.replace('log_level = "debug"\n', f'log_level = "debug"\n{settings}\n', 1)
    return Vrouterd(tmp_path, template)


@pytest.fixture
def shaped(tmp_path: Path) -> Iterator[Vrouterd]:
    daemon = _daemon(tmp_path, 'tap_qdisc = "pfifo"\ntap_txqueuelen = 64')
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.close()


def _qdisc(ns: str | None, ifname: str) -> str:
    where = ["-n", ns] if ns is not None else []
    return run("tc", *where, "qdisc", "show", "dev", ifname).stdout


def _qlen(ns: str | None, ifname: str) -> str:
    where = ["-n", ns] if ns is not None else []
    return run("ip", *where, "-o", "link", "show", "dev", ifname).stdout


def test_a_host_side_tap_has_the_configured_qdisc_and_queue(shaped: Vrouterd) -> None:
    for host, color in (("h1", "r"), ("h2", "b")):
        ns, tap = shaped.ns(host), shaped.tap(color)
        assert "qdisc pfifo " in _qdisc(ns, tap), _qdisc(ns, tap)
        assert " qlen 64" in _qlen(ns, tap), _qlen(ns, tap)


def test_a_tap_created_later_has_them_too(shaped: Vrouterd) -> None:
    tap = f"{shaped.prefix}n"
    shaped.call("tap.create", vnet="blue", interface=tap, addresses=["192.0.2.129/25"])
    assert "qdisc pfifo " in _qdisc(None, tap), _qdisc(None, tap)
    assert " qlen 64" in _qlen(None, tap), _qlen(None, tap)
    shaped.call("interface.destroy", vnet="blue", interface=tap)


def _kernel_has(qdisc: str) -> bool:
    """Return True if the kernel offers ``qdisc`` (tried on a dummy in a scratch netns)."""
    ns = f"{Vrouterd.__name__.lower()}q{os.getpid()}"
    run("ip", "netns", "add", ns)
    try:
        run("ip", "-n", ns, "link", "add", "q0", "type", "veth", "peer", "name", "q1")
        return run("tc", "-n", ns, "qdisc", "add", "dev", "q0", "root", qdisc, check=False)\
            .returncode == 0
    finally:
        run("ip", "netns", "del", ns)


def test_the_default_is_fq_codel_where_the_kernel_has_it(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, "")
    try:
        daemon.start()
        ns, tap = daemon.ns("h1"), daemon.tap("r")
        expected = "fq_codel" if _kernel_has("fq_codel") else "pfifo_fast"
        assert f"qdisc {expected} " in _qdisc(ns, tap), _qdisc(ns, tap)
        assert f" qlen {DEFAULT_TAP_TXQUEUELEN}" in _qlen(ns, tap), _qlen(ns, tap)
    finally:
        daemon.close()


def test_a_qdisc_the_kernel_lacks_is_an_error_that_names_it(tmp_path: Path) -> None:
    qdisc = "fq" if not _kernel_has("fq") else "pfifo"
    daemon = _daemon(tmp_path, f'tap_qdisc = "{qdisc}"')
    try:
        if qdisc == "pfifo":  # this kernel has every qdisc offered: nothing to refuse
            daemon.start()
            return
        with pytest.raises(AssertionError) as failed:
            daemon.start(timeout=15)
        assert f"root {qdisc}" in str(failed.value)
    finally:
        daemon.close()


def test_a_bad_setting_names_its_key(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, 'tap_qdisc = "cake"\ntap_txqueuelen = 0')
    try:
        with pytest.raises(AssertionError) as failed:
            daemon.start(timeout=10)
        assert "daemon.tap_qdisc" in str(failed.value)
        assert "daemon.tap_txqueuelen" in str(failed.value)
    finally:
        daemon.close()
