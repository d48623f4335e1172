"""The installation's MAC seed: made once, kept, mixed into derived MACs."""

from __future__ import annotations

from pathlib import Path

import pytest

from vrouter.daemon import build, macseed


def test_the_seed_is_made_once_and_kept(tmp_path: Path) -> None:
    first = macseed.load(tmp_path / "data")
    assert len(first) == macseed.SIZE
    assert (tmp_path / "data" / "mac-seed").read_text() == first.hex() + "\n"
    assert macseed.load(tmp_path / "data") == first  # a restart: the same MACs
    assert macseed.load(tmp_path / "other") != first  # another installation
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["mac-seed"]


def test_a_file_that_is_no_seed_is_refused_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "mac-seed").write_text("not hex\n")
    with pytest.raises(macseed.SeedError, match=r"is not a MAC seed .* remove it"):
        macseed.load(tmp_path)
    assert (tmp_path / "mac-seed").read_text() == "not hex\n"


def test_without_a_writable_data_dir_the_machine_id_stands_in(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("0123456789abcdef0123456789abcdef\n")
    seed = macseed.load(blocker / "data", machine_id)  # a file where a directory must go
    assert seed == b"0123456789abcdef0123456789abcdef"
    assert macseed.load(blocker / "data", tmp_path / "none") == b""


def test_the_seed_changes_derived_macs_and_keeps_them_local_unicast() -> None:
    plain = build.derive_mac("lab", "br0")
    seeded = build.derive_mac("lab", "br0", bytes(16))
    other = build.derive_mac("lab", "br0", bytes(15) + b"\x01")
    assert len({plain, seeded, other}) == 3
    assert all(mac[0] == 0x02 for mac in (plain, seeded, other))
    assert build.derive_mac("lab", "br0", bytes(16)) == seeded
