"""32-bit sequence number arithmetic across the wrap."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vrouter.transport.tcp import seq

u32 = st.integers(0, seq.MASK)
near = st.integers(-(2**31) + 1, 2**31 - 1)


def test_comparisons_across_the_wrap() -> None:
    top = seq.MASK
    assert seq.lt(top, 0) and seq.gt(0, top)
    assert seq.le(5, 5) and seq.ge(5, 5) and not seq.lt(5, 5)
    assert seq.add(top, 2) == 1 and seq.sub(1, top) == 2
    assert seq.diff(1, top) == 2 and seq.diff(top, 1) == -2
    assert seq.between(top - 1, 0, 3) and not seq.between(top - 1, 3, 3)
    assert not seq.between(10, 10, 10)  # an empty window holds nothing
    assert seq.max_(top, 1) == 1 and seq.min_(top, 1) == top


@given(u32, near)
def test_order_follows_the_signed_distance(a: int, d: int) -> None:
    b = seq.add(a, d)
    assert seq.diff(b, a) == d
    assert seq.lt(a, b) == (d > 0)
    assert seq.gt(a, b) == (d < 0)
    assert seq.le(a, b) == (d >= 0)
    assert seq.sub(b, a) == d % 2**32


@given(u32, st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))
def test_between_is_a_half_open_window(low: int, width: int, off: int) -> None:
    assert seq.between(low, seq.add(low, off), seq.add(low, width)) == (off < width)
