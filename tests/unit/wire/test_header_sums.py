"""Headers built from a precomputed sum (a flow's fixed fields) equal those summed whole."""

from __future__ import annotations

import random

import pytest

from vrouter.wire import ipv4, tcp
from vrouter.wire.checksum import checksum, ones_sum_pieces, pseudo_header_sum


def _tcp_reference(
    src: bytes, dst: bytes, ports: tuple[int, int], seq: int, ack: int, flags: int,
    window: int, options: bytes, payload: list[bytes], partial: bool,
) -> bytes:  # fmt: skip
    """The header as RFC 9293 3.1 defines it, summed from its bytes."""
    hlen = tcp.HEADER_LEN + len(options)
    raw = bytearray(tcp.HEADER.pack(*ports, seq, ack, hlen << 2, flags, window, 0, 0)) + options
    length = hlen + sum(len(piece) for piece in payload)
    field = pseudo_header_sum(src, dst, tcp.PROTO, length)
    if not partial:
        field = checksum(raw, ones_sum_pieces(payload, field))
    raw[16:18] = field.to_bytes(2, "big")
    return bytes(raw)


@pytest.mark.parametrize("family", [4, 6])
def test_tcp_header_from_an_address_sum_is_the_header_summed_whole(family: int) -> None:
    rng = random.Random(family)
    for _ in range(2000):
        size = 4 if family == 4 else 16
        src, dst = rng.randbytes(size), rng.randbytes(size)
        if rng.random() < 0.05:
            src = dst = bytes(size)  # sums of zero
        ports = (rng.randrange(65536), rng.randrange(65536))
        seq, ack = rng.randrange(1 << 32), rng.randrange(1 << 32)
        flags, window = rng.randrange(256), rng.randrange(65536)
        options = rng.choice((b"", rng.randbytes(12), rng.randbytes(40), bytes(12)))
        payload = [
            rng.randbytes(rng.choice((0, 1, 7, 1000, 1461))) for _ in range(rng.randrange(4))
        ]
        partial = rng.random() < 0.3
        want = _tcp_reference(src, dst, ports, seq, ack, flags, window, options, payload, partial)
        got = tcp.header_from(
            tcp.addresses_sum(src, dst), *ports, seq, ack, flags, window, options, payload, partial
        )
        assert got == want
        assert (
            tcp.header(src, dst, *ports, seq, ack, flags, window, options, payload, partial) == want
        )
        if not partial:
            assert tcp.verify(src, dst, got + b"".join(payload))


def test_ipv4_header_from_a_fixed_sum_is_the_header_summed_whole() -> None:
    rng = random.Random(4)
    for _ in range(3000):
        src, dst = rng.randbytes(4), rng.randbytes(4)
        proto, ttl, tos = rng.randrange(256), rng.randrange(256), rng.randrange(256)
        df = rng.random() < 0.5
        length, ident = rng.randrange(65516), rng.randrange(65536)
        fixed = ipv4.fixed_sum(src, dst, proto, ttl=ttl, tos=tos, df=df)
        got = ipv4.header_from(fixed, src, dst, proto, length, ttl=ttl, ident=ident, tos=tos, df=df)
        want = ipv4.header(src, dst, proto, length, ttl=ttl, ident=ident, tos=tos, df=df)
        assert got == want
        assert checksum(got) == 0
