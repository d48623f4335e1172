"""Path weights: their text, and how the flow hash shares flows by them."""

from __future__ import annotations

import pytest

from vrouter.route.weight import MAX_SLOTS, MAX_WEIGHT, parse_weight, split_weight, spread


def test_a_next_hop_is_read_with_or_without_its_weight() -> None:
    assert split_weight("198.51.100.2") == ("198.51.100.2", 1)
    assert split_weight("198.51.100.2%e0 weight 3") == ("198.51.100.2%e0", 3)
    assert parse_weight(str(MAX_WEIGHT)) == MAX_WEIGHT


@pytest.mark.parametrize(
    "text", ["198.51.100.2 weight", "198.51.100.2 weight 0", "198.51.100.2 weight 257",
             "198.51.100.2 weight -1", "198.51.100.2 heavy 3", "198.51.100.2 weight 2 x"],
)  # fmt: skip
def test_a_bad_weight_is_refused_with_what_was_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"weight|expected"):
        split_weight(text)


def test_paths_are_repeated_by_their_weights_over_the_common_divisor() -> None:
    assert spread("ab", [1, 1]) == ("a", "b")
    assert spread("ab", [7, 7]) == ("a", "b")
    assert spread("ab", [3, 1]) == ("a", "a", "a", "b")
    assert spread("abc", [4, 2, 2]) == ("a", "a", "b", "c")


def test_many_heavy_paths_are_scaled_to_a_bounded_number_of_entries() -> None:
    spread_out = spread(range(16), [256, *range(1, 16)])
    assert len(spread_out) <= MAX_SLOTS + 16
    assert set(spread_out) == set(range(16))  # every path keeps a share
    assert spread_out.count(0) > len(spread_out) // 2
