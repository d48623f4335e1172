"""Tests for vrouter.wire.stp: BPDUs as a Linux bridge (stp_state 1) sends them, both ways."""

from __future__ import annotations

import subprocess

import dpkt
import pytest

from vrouter.wire import stp
from vrouter.wire.errors import IntegrityError, SanityError

# Captured (tcpdump -w) from a Linux 6.18 bridge, stp_state 1, forward_delay 400
# hello_time 100 max_age 600 priority 4096, MAC 02:00:00:00:00:01: the root's
# Configuration BPDU on its port 1, as the frame left veth "vA".
LINUX_CONFIG = bytes.fromhex(
    "0180c2000000" "6a5d5196f61d" "0026" "424203"
    "0000" "00" "00" "00"
    "1000020000000001" "00000000" "1000020000000001" "8001"
    "0000" "0600" "0100" "0400"
)  # fmt: skip
# The same bridge acknowledging a TCN: flags TC | TCA.
LINUX_CONFIG_TCA = LINUX_CONFIG[:21] + b"\x81" + LINUX_CONFIG[22:]
# The TCN BPDU a Linux bridge (8000.02:00:00:00:00:02) sent up its root port.
LINUX_TCN = bytes.fromhex("0180c2000000567acc47917d000742420300000080")


def parse_frame(frame: bytes) -> stp.Bpdu:
    return stp.parse(frame[14:], int.from_bytes(frame[12:14], "big"))


def test_linux_configuration_bpdu_decodes() -> None:
    bpdu = parse_frame(LINUX_CONFIG)
    assert not bpdu.tcn and not bpdu.tc and not bpdu.tca
    assert bpdu.root == bpdu.bridge == stp.bridge_id(0x1000, bytes.fromhex("020000000001"))
    assert stp.id_to_str(bpdu.root) == "1000.02:00:00:00:00:01"
    assert bpdu.cost == 0
    assert bpdu.port == stp.port_id(32, 1) == 0x8001
    assert (bpdu.message_age, bpdu.max_age, bpdu.hello_time, bpdu.forward_delay) == (0, 6, 1, 4)


def test_linux_flags_and_tcn_decode() -> None:
    bpdu = parse_frame(LINUX_CONFIG_TCA)
    assert bpdu.tc and bpdu.tca
    assert parse_frame(LINUX_TCN) == stp.Bpdu(tcn=True)


def test_encode_gives_linux_bytes_padded_to_60() -> None:
    bpdu = parse_frame(LINUX_CONFIG)
    frame = bpdu.frame(LINUX_CONFIG[6:12])
    assert len(frame) == stp.MIN_FRAME
    assert frame[: len(LINUX_CONFIG)] == LINUX_CONFIG
    assert frame[len(LINUX_CONFIG) :] == bytes(stp.MIN_FRAME - len(LINUX_CONFIG))
    assert parse_frame(LINUX_CONFIG_TCA).frame(LINUX_CONFIG[6:12])[:52] == LINUX_CONFIG_TCA
    tcn = stp.Bpdu(tcn=True).frame(LINUX_TCN[6:12])
    assert tcn[: len(LINUX_TCN)] == LINUX_TCN and len(tcn) == stp.MIN_FRAME


def test_round_trip_of_values() -> None:
    bpdu = stp.Bpdu(
        False, stp.FLAG_TC, stp.bridge_id(0, b"\x02" * 6), 300, stp.bridge_id(0x8000, b"\x04" * 6),
        stp.port_id(63, 1023), 1.5, 20, 2, 15,
    )  # fmt: skip
    assert parse_frame(bpdu.frame(b"\x02\x00\x00\x00\x00\x09")) == bpdu


def test_an_rst_bpdu_reads_as_a_configuration_bpdu() -> None:
    body = bytearray(LINUX_CONFIG[17:]) + b"\x00"  # + version 1 length
    body[2], body[3], body[4] = 2, stp.TYPE_RST, 0x0C  # role designated
    bpdu = stp.parse(stp.LLC + bytes(body), 3 + len(body))
    assert bpdu.root == parse_frame(LINUX_CONFIG).root and not bpdu.tcn and bpdu.rst


# An RST BPDU laid out by hand from 802.1D-2004 9.3.3 (Figure 9-3): bridge
# 8000.02:00:00:00:00:02, root 1000.02:00:00:00:00:01 at cost 20000, port
# 0x8002; flags: agreement, forwarding, learning, role root, TC; message age
# 1 s, max age 20 s, hello 2 s, forward delay 15 s; version 1 length 0.
RST_ROOT = bytes.fromhex(
    "0180c2000000" "020000000002" "0027" "424203"
    "0000" "02" "02"
    "79"  # 0x40 agreement | 0x20 forwarding | 0x10 learning | 0x08 root | 0x01 TC
    "1000020000000001" "00004e20" "8000020000000002" "8002"
    "0100" "1400" "0200" "0f00"
    "00"
)  # fmt: skip


def test_rst_bpdu_decodes_from_hand_built_bytes() -> None:
    bpdu = parse_frame(RST_ROOT)
    assert bpdu.rst and not bpdu.tcn
    assert bpdu.role == stp.ROLE_ROOT
    assert bpdu.agreement and bpdu.forwarding and bpdu.learning and bpdu.tc
    assert not bpdu.proposal and not bpdu.tca
    assert stp.id_to_str(bpdu.root) == "1000.02:00:00:00:00:01"
    assert stp.id_to_str(bpdu.bridge) == "8000.02:00:00:00:00:02"
    assert (bpdu.cost, bpdu.port) == (20000, 0x8002)
    assert (bpdu.message_age, bpdu.max_age, bpdu.hello_time, bpdu.forward_delay) == (1, 20, 2, 15)


def test_rst_bpdu_encodes_to_the_standard_layout() -> None:
    flags = (stp.FLAG_AGREEMENT | stp.FLAG_FORWARDING | stp.FLAG_LEARNING | stp.FLAG_TC
             | stp.ROLE_ROOT << stp.ROLE_SHIFT)  # fmt: skip
    bpdu = stp.Bpdu(
        False, flags, stp.bridge_id(0x1000, bytes.fromhex("020000000001")), 20000,
        stp.bridge_id(0x8000, bytes.fromhex("020000000002")), 0x8002, 1, 20, 2, 15, True,
    )  # fmt: skip
    frame = bpdu.frame(bytes.fromhex("020000000002"))
    assert frame[: len(RST_ROOT)] == RST_ROOT and len(frame) == stp.MIN_FRAME
    assert len(bpdu.emit()) == stp.RST_LEN
    assert parse_frame(frame) == bpdu


@pytest.mark.parametrize(
    ("role", "proposal"),
    [(stp.ROLE_DESIGNATED, True), (stp.ROLE_ALTERNATE, False), (stp.ROLE_ROOT, False)],
)
def test_rst_roles_and_proposal_round_trip(role, proposal) -> None:
    flags = role << stp.ROLE_SHIFT | (stp.FLAG_PROPOSAL if proposal else 0)
    bpdu = stp.Bpdu(False, flags, 1, 2, 3, 4, 0, 6, 1, 4, True)
    back = parse_frame(bpdu.frame(b"\x02" * 6))
    assert (back.role, back.proposal, back.agreement) == (role, proposal, False)


def test_a_configuration_bpdu_has_no_rst_flags() -> None:
    # the same bits in a Configuration BPDU: only TC and TCA count, its role is designated
    frame = bytearray(LINUX_CONFIG)
    frame[21] = 0xFF
    bpdu = parse_frame(bytes(frame))
    assert bpdu.flags == stp.FLAG_TC | stp.FLAG_TCA and not bpdu.rst
    assert bpdu.role == stp.ROLE_DESIGNATED and not bpdu.proposal and not bpdu.agreement


@pytest.mark.parametrize(
    ("payload", "length", "error", "reason"),
    [
        (LINUX_CONFIG[14:], 200, IntegrityError, "bpdu_length"),
        (LINUX_CONFIG[14:20], 6, IntegrityError, "bpdu_short"),
        (b"\xaa\xaa\x03" + LINUX_CONFIG[17:], 38, SanityError, "bpdu_llc"),
        (LINUX_CONFIG[14:17] + b"\x00\x01" + LINUX_CONFIG[19:], 38, SanityError, "bpdu_protocol"),
        (LINUX_CONFIG[14:20] + b"\x07" + LINUX_CONFIG[21:], 38, SanityError, "bpdu_type"),
        (LINUX_CONFIG[14:40], 26, IntegrityError, "bpdu_short"),
        (LINUX_CONFIG[14:45] + b"\x06\x00" + LINUX_CONFIG[47:], 38, SanityError, "bpdu_age"),
        (RST_ROOT[14:], 38, IntegrityError, "bpdu_short"),
        (RST_ROOT[14:21] + b"\x71" + RST_ROOT[22:], 39, SanityError, "bpdu_role"),
        (RST_ROOT[14:19] + b"\x01" + RST_ROOT[20:], 39, SanityError, "bpdu_type"),
    ],
)
def test_malformed_bpdus_raise_with_a_reason(payload, length, error, reason) -> None:
    with pytest.raises(error) as caught:
        stp.parse(payload, length)
    assert caught.value.reason == reason


def test_wiresharks_dissector_reads_our_bpdus_as_we_meant_them(tmp_path) -> None:
    """Our encoder checked against another's decoder: tshark (Wireshark's STP dissector)
    reads a pcap of the BPDUs we emit, and its fields match the values encoded."""
    root = stp.bridge_id(0x1000, bytes.fromhex("020000000001"))
    bridge = stp.bridge_id(0x8000, bytes.fromhex("020000000002"))
    cases = [
        # (flags, rst): a proposing designated port; a root port agreeing, learning,
        # forwarding, TC; an alternate port agreeing; a Configuration BPDU with TC and TCA
        (stp.ROLE_DESIGNATED << stp.ROLE_SHIFT | stp.FLAG_PROPOSAL, True),
        (stp.ROLE_ROOT << stp.ROLE_SHIFT | stp.FLAG_AGREEMENT | stp.FLAG_LEARNING
         | stp.FLAG_FORWARDING | stp.FLAG_TC, True),
        (stp.ROLE_ALTERNATE << stp.ROLE_SHIFT | stp.FLAG_AGREEMENT, True),
        (stp.FLAG_TC | stp.FLAG_TCA, False),
    ]
    bpdus = [
        stp.Bpdu(False, flags, root, 20000 + i, bridge, 0x8000 + i + 1, i, 20, 2, 15, rst)
        for i, (flags, rst) in enumerate(cases)
    ]
    path = tmp_path / "bpdus.pcap"
    with path.open("wb") as f:
        writer = dpkt.pcap.Writer(f)
        for i, bpdu in enumerate(bpdus):
            writer.writepkt(bpdu.frame(bytes.fromhex("020000000002")), ts=1.0 + i)
    fields = ["stp.version", "stp.type", "stp.flags.tc", "stp.flags.proposal",
              "stp.flags.port_role", "stp.flags.learning", "stp.flags.forwarding",
              "stp.flags.agreement", "stp.flags.tcack", "stp.root.prio", "stp.root.hw",
              "stp.root.cost", "stp.bridge.prio", "stp.bridge.hw", "stp.port", "stp.msg_age",
              "stp.max_age", "stp.hello", "stp.forward", "stp.version_1_length"]  # fmt: skip
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=|",
         *(a for field in fields for a in ("-e", field))],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    rows = [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines()]
    assert len(rows) == len(bpdus)
    for row, bpdu in zip(rows, bpdus, strict=True):

        def flag(bit: int, bpdu: stp.Bpdu = bpdu) -> str:
            return str(int(bool(bpdu.flags & bit)))

        assert row["stp.version"] == ("2" if bpdu.rst else "0")
        assert int(row["stp.type"], 0) == (stp.TYPE_RST if bpdu.rst else stp.TYPE_CONFIG)
        assert row["stp.flags.tc"] == flag(stp.FLAG_TC)
        assert row["stp.flags.tcack"] == flag(stp.FLAG_TCA)
        assert (row["stp.root.prio"], row["stp.root.hw"]) == ("4096", "02:00:00:00:00:01")
        assert (row["stp.bridge.prio"], row["stp.bridge.hw"]) == ("32768", "02:00:00:00:00:02")
        assert int(row["stp.root.cost"]) == bpdu.cost
        assert int(row["stp.port"], 0) == bpdu.port
        times = ("stp.msg_age", "stp.max_age", "stp.hello", "stp.forward")
        assert [float(row[f]) for f in times] == [bpdu.message_age, 20, 2, 15]
        if bpdu.rst:
            assert row["stp.flags.proposal"] == flag(stp.FLAG_PROPOSAL)
            assert row["stp.flags.learning"] == flag(stp.FLAG_LEARNING)
            assert row["stp.flags.forwarding"] == flag(stp.FLAG_FORWARDING)
            assert row["stp.flags.agreement"] == flag(stp.FLAG_AGREEMENT)
            assert int(row["stp.flags.port_role"], 0) == bpdu.role
            assert row["stp.version_1_length"] == "0"
        else:
            assert row["stp.version_1_length"] == ""
