"""A config without [vnets] runs one default vnet, vnet0, through the same code."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Vrouterd

pytestmark = pytest.mark.integration

SINGLE_STACK = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"

[interfaces.{p}a]
type = "tap"
addresses = ["192.0.2.1/24"]
host = {{ netns = "{p}h1", addresses = ["192.0.2.2/24"], gateway = "192.0.2.1" }}

[interfaces.{p}b]
type = "tap"
addresses = ["198.51.100.1/24"]
host = {{ netns = "{p}h2", addresses = ["198.51.100.2/24"], gateway = "198.51.100.1" }}

[[routes]]
to = "203.0.113.0/24"
type = "reject"
"""


def test_single_stack_config_routes_in_vnet0(tmp_path: Path) -> None:
    daemon = Vrouterd(tmp_path, SINGLE_STACK)
    try:
        daemon.start()
        assert [v["name"] for v in daemon.call("vnet.list")] == ["vnet0"]
        result = daemon.exec("h1", "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.2")
        assert "2 received" in result.stdout and "ttl=63" in result.stdout
        rejected = daemon.exec("h1", "ping", "-c", "1", "-W", "2", "203.0.113.9", check=False)
        assert "Destination Host Unreachable" in rejected.stdout
        assert daemon.call("netstat", vnet="vnet0")["ip"]["reject"] == 1
        assert daemon.stop() == 0
    finally:
        daemon.cleanup()
