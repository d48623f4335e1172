"""Tests for vrouter.rip.daemon's config: instances, timers and authentication."""

from __future__ import annotations

from pathlib import Path

import pytest

from vrouter.rip.daemon import ConfigProblem, InstanceConfig, load_config
from vrouter.rip.instance import Timers
from vrouter.rip.packet import Auth


def _load(tmp_path: Path, text: str) -> list[InstanceConfig]:
    path = tmp_path / "ripd.toml"
    path.write_text('socket = "/tmp/x.sock"\n' + text)
    config = load_config(str(path))
    assert config.control == "/tmp/x.sock"
    assert config.log_format == "text"
    return config.instances


def test_instances_with_timers_and_authentication(tmp_path: Path) -> None:
    red, blue, green = _load(
        tmp_path,
        """
[[instance]]
vnet = "red"
interfaces = ["ep0"]
update = 2
timeout = 6
garbage = 4
auth = "md5"
password = "rip-md5-key"
key_id = 3
auth_length = 16
[[instance]]
vnet = "blue"
family = "inet6"
interfaces = ["ep0", "tap1"]
[[instance]]
vnet = "green"
interfaces = ["ep0"]
auth = "plain"
password = "pw"
""",
    )
    assert (red.vnet, red.family, red.timers) == ("red", 4, Timers(2, 6, 4))
    assert red.auth == Auth("md5", b"rip-md5-key", 3, auth_length=16)
    assert (blue.family, blue.interfaces, blue.auth) == (6, ["ep0", "tap1"], Auth())
    assert green.auth == Auth("plain", b"pw", 1)
    assert Auth("md5", b"x").auth_length == 20  # what BIRD sends, and FRR by default
    assert "pw" not in repr(green)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('auth = "sha"\npassword = "x"', "not none, plain or md5"),
        ('auth = "md5"', "needs a password"),
        ('auth = "md5"\npassword = "seventeen-bytes!!"', "at most 16"),
        ('auth = "plain"\npassword = 7', "password: a string"),
        ('auth = "md5"\npassword = "x"\nkey_id = 256', r"0\.\.255"),
        ('auth = "md5"\npassword = "x"\nkey_id = "1"', "key_id"),
        ('family = "inet6"\nauth = "md5"\npassword = "x"', "RIPng has no authentication"),
        ('auth = "md5"\npassword = "x"\nauth_length = 12', "16 .RFC 2082. or 20"),
        ('auth = "md5"\npassword = "x"\nauth_length = "16"', "auth_length"),
        ('auth = "md5"\npassword = "x"\nauth_length = true', "auth_length"),
        ('auth = "plain"\npassword = "x"\nauth_length = 16', "only for auth = .md5."),
        ('secret = "x"', "unknown keys"),
    ],
)
def test_bad_instances_are_refused_naming_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigProblem, match=message):
        _load(tmp_path, f'[[instance]]\nvnet = "red"\ninterfaces = ["ep0"]\n{extra}\n')
