"""Segments and options: parse and build, round trips, malformed options, dpkt agreement."""

from __future__ import annotations

import random

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrouter.transport.tcp.segment import (
    ACK,
    HEADER,
    NO_OPTIONS,
    PSH,
    RST,
    SYN,
    Options,
    Segment,
    build,
    emit,
    flag_names,
    parse,
    parse_options,
    reset_for,
    sack_option,
    syn_options,
    ts_option,
    verify,
)
from vrouter.wire.errors import IntegrityError

A = bytes([192, 0, 2, 1])
B = bytes([192, 0, 2, 2])
A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8000000000000000000000002")


def test_syn_options_use_linux_layout() -> None:
    raw = syn_options(1460, 7, True, (0x01020304, 0))
    assert raw == bytes.fromhex("020405b40402080a010203040000000001030307")
    assert syn_options(1460, 7, True, None) == bytes.fromhex("020405b40101040201030307")
    assert syn_options(536, None, False, (1, 2)) == bytes.fromhex(
        "020402180101080a0000000100000002"
    )
    assert ts_option(5, 6) == bytes.fromhex("0101080a0000000500000006")
    assert sack_option([(1, 2), (3, 4)]) == bytes.fromhex(
        "0101051200000001000000020000000300000004"
    )


options = st.builds(
    Options,
    mss=st.none() | st.integers(0, 65535),
    wscale=st.none() | st.integers(0, 14),
    sack_permitted=st.booleans(),
    sack=st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), max_size=2).map(
        tuple
    ),
    ts=st.none() | st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
)


@given(options)
def test_options_round_trip(opts: Options) -> None:
    raw = opts.emit()
    assert len(raw) % 4 == 0 and len(raw) <= 40
    assert parse_options(raw) == opts


@given(
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 255),
    st.integers(0, 65535),
    options,
    st.binary(max_size=64),
    st.booleans(),
)
def test_segment_round_trip_and_dpkt_agrees(
    sport: int,
    dport: int,
    seq_no: int,
    ack: int,
    flags: int,
    window: int,
    opts: Options,
    payload: bytes,
    v6: bool,
) -> None:
    src, dst = (A6, B6) if v6 else (A, B)
    seg = Segment(sport, dport, seq_no, ack, flags, window, opts)
    raw = emit(src, dst, seg, payload)
    assert verify(src, dst, raw)
    got, got_payload = parse(raw)
    assert got == seg and bytes(got_payload) == payload
    d = dpkt.tcp.TCP(raw)
    assert (d.sport, d.dport, d.seq, d.ack, d.flags, d.win) == (
        sport,
        dport,
        seq_no,
        ack,
        flags,
        window,
    )
    assert d.data == payload


def test_checksum_covers_the_pseudo_header() -> None:
    raw = build(A, B, 1, 2, 3, 4, ACK, 100, b"", b"data")
    assert verify(A, B, raw) and not verify(A, bytes([192, 0, 2, 3]), raw)
    bad = bytearray(raw)
    bad[-1] ^= 1
    assert not verify(A, B, bytes(bad))


def test_unknown_and_malformed_options() -> None:
    # An unknown option (kind 30, 4 bytes) is skipped; the MSS after it is kept.
    assert parse_options(bytes.fromhex("1e04aaaa020405b4")) == Options(mss=1460)
    # A zero length ends parsing and keeps what came before.
    assert parse_options(bytes.fromhex("020405b408000000")) == Options(mss=1460)
    # A length running past the header, or an option cut short, too.
    assert parse_options(bytes.fromhex("020405b4080aaaaa")) == Options(mss=1460)
    assert parse_options(bytes.fromhex("0102")) == NO_OPTIONS
    # Wrong sizes for known kinds are ignored; EOL ends the list.
    assert parse_options(bytes.fromhex("0203aa03030400020405b4")) == Options(wscale=4)
    # Window scale shifts above 14 are taken as 14 (RFC 7323 2.3).
    assert parse_options(bytes.fromhex("01030320")) == Options(wscale=14)
    # A SACK option with a bad length is ignored.
    assert parse_options(bytes.fromhex("050600000001")) == NO_OPTIONS


def test_too_many_options_are_refused() -> None:
    with pytest.raises(ValueError):
        Options(mss=1, ts=(1, 2), sack=((1, 2), (3, 4), (5, 6))).emit()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00" * 19, "tcp_tooshort"),
        (b"\x00" * 12 + b"\x40" + b"\x00" * 7, "tcp_badoff"),
        (b"\x00" * 12 + b"\x60" + b"\x00" * 7, "tcp_badoff"),
    ],
)
def test_parse_rejects(raw: bytes, reason: str) -> None:
    with pytest.raises(IntegrityError) as info:
        parse(raw)
    assert info.value.reason == reason


def test_reset_for_follows_rfc_9293() -> None:
    syn = Segment(40000, 80, 1000, 0, SYN, 100)
    rst, _ = parse(reset_for(A, B, syn, 0) or b"")
    assert (rst.seq, rst.ack, rst.flags) == (0, 1001, RST | ACK)
    data = Segment(40000, 80, 1000, 777, ACK | PSH, 100)
    rst, _ = parse(reset_for(A, B, data, 10) or b"")
    assert (rst.seq, rst.flags, rst.sport, rst.dport) == (777, RST, 80, 40000)
    assert reset_for(A, B, Segment(1, 2, 3, 4, RST, 0), 0) is None


def test_flag_names() -> None:
    assert flag_names(SYN) == "S" and flag_names(SYN | ACK) == "S."
    assert flag_names(ACK | PSH) == "P." and flag_names(ACK) == "." and flag_names(0) == "none"


def test_timestamp_only_headers_parse_as_the_general_parser_does() -> None:
    """The 32-byte ``NOP NOP TS`` header is unpacked at once; the result is the same."""
    rng = random.Random(32)
    others = (b"\x01\x01\x08\x0b" + bytes(8), b"\x01\x08\x0a" + bytes(9))
    for _ in range(500):
        opts = ts_option(rng.randrange(1 << 32), rng.randrange(1 << 32))
        opts = rng.choice((opts, opts, *others))
        payload = rng.randbytes(rng.choice((0, 5)))
        seq_no, flags = rng.randrange(1 << 32), rng.randrange(256)
        raw = bytearray(build(A, B, 1, 2, seq_no, 7, flags, 9, opts, payload))
        raw[12] |= rng.choice((0, 0, 1))  # a reserved bit: the general parser's
        seg, rest = parse(raw)
        fields = HEADER.unpack_from(raw)
        assert seg == Segment(*fields[:4], fields[5], fields[6], parse_options(raw[20:32]))
        assert bytes(rest) == payload
