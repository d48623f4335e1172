"""The socket service's message format, both ways."""

from __future__ import annotations

import pytest

from vrouter.transport.message import (
    CTRL,
    DATA,
    FROM,
    HEADER_LEN,
    REPLY,
    TO,
    Message,
    MessageError,
    control,
)

V4_A = bytes([192, 0, 2, 1])
V4_B = bytes([198, 51, 100, 2])
V6_A = bytes.fromhex("20010db8000100000000000000000001")


def test_header_is_44_bytes_and_round_trips_ipv4() -> None:
    m = Message(DATA, 4, 63, TO | FROM, 520, 521, 7, V4_A, V4_B, b"rip")
    raw = m.emit()
    assert len(raw) == HEADER_LEN + 3 == 47
    assert raw[:4] == bytes([DATA, 4, 63, TO | FROM])
    assert raw[4:8] == (520).to_bytes(2, "big") + (521).to_bytes(2, "big")
    assert raw[8:12] == (7).to_bytes(4, "big")
    assert raw[12:28] == V4_A + bytes(12)  # IPv4 in the first 4 of 16 bytes
    assert Message.parse(raw) == m


def test_ipv6_addresses_use_all_16_bytes() -> None:
    m = Message(DATA, 6, 255, 0, 0, 0, 2, V6_A, V6_A, b"")
    assert Message.parse(m.emit()) == m


def test_control_messages_carry_json() -> None:
    raw = control(CTRL, {"op": "bind", "port": 0})
    message = Message.parse(raw)
    assert message.kind == CTRL and message.json() == {"op": "bind", "port": 0}
    assert Message.parse(control(REPLY, {"ok": True})).json() == {"ok": True}


@pytest.mark.parametrize(
    ("raw", "text"),
    [(b"\x01" * 43, "shorter than the header"), (bytes([9]) + bytes(43), "unknown message kind")],
)
def test_bad_messages_are_refused(raw: bytes, text: str) -> None:
    with pytest.raises(MessageError, match=text):
        Message.parse(raw)


def test_bad_json_is_refused() -> None:
    with pytest.raises(MessageError, match="not JSON"):
        Message(CTRL, payload=b"{nope").json()
