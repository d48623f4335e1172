"""vrouter.core.shards: dicts and sets in shards answer as the plain ones, and no shard
grows past its share."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrouter.core.shards import RUN, SHARDS, NetShards, ShardedDict, ShardedSet

keys = st.tuples(st.sampled_from([2, 10]), st.binary(min_size=4, max_size=4), st.integers(0, 32))
ops = st.lists(st.tuples(st.sampled_from(["set", "set", "del", "pop", "get"]), keys,
                         st.integers()), max_size=200)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(ops)
def test_a_sharded_dict_answers_as_a_dict(steps: list[tuple[str, object, int]]) -> None:
    table: ShardedDict[object, int] = ShardedDict()
    model: dict[object, int] = {}
    for op, key, value in steps:
        if op == "set":
            table[key] = model[key] = value
        elif op == "del" and key in model:
            del table[key], model[key]
        elif op == "pop":
            assert table.pop(key, -1) == model.pop(key, -1)
        assert table.get(key) == model.get(key)
        assert (key in table) == (key in model)
        assert len(table) == len(model) and bool(table) == bool(model)
    assert sorted(table.items()) == sorted(model.items())
    assert sorted(table.values()) == sorted(model.values())
    assert list(table.values()) == [table[key] for key in table]  # same order as the keys
    assert len(table.values()) == len(model)
    while table:
        key, value = table.popitem()
        assert model.pop(key) == value
    assert not model and len(table) == 0


def test_a_missing_key_is_told_as_by_a_dict() -> None:
    table: ShardedDict[str, int] = ShardedDict([("a", 1)])
    with pytest.raises(KeyError):
        table["b"]
    with pytest.raises(KeyError):
        table.pop("b")
    with pytest.raises(KeyError):
        del table["b"]
    assert table.setdefault("b", 2) == 2 and table.setdefault("b", 3) == 2
    assert len(table) == 2
    table.clear()
    assert not table and len(table) == 0
    with pytest.raises(KeyError):
        table.popitem()


@pytest.mark.parametrize(("bits", "plen"), [(32, 24), (32, 32), (128, 48), (128, 64)])
def test_a_feed_in_order_fills_one_shard_after_another(bits: int, plen: int) -> None:
    """Consecutive networks (a feed's, host bits clear, high bits all the same) share a
    shard by runs: the shards grow one at a time, not all in the same slice of the feed."""
    host = bits - plen
    base = 0xC6120000 << (bits - 32)  # 198.18.0.0, or like high bits of an IPv6 prefix
    run = 1 << RUN
    table: NetShards[int] = NetShards(host)
    for n in range(3 * run):
        table[base + (n << host)] = n
    sizes = [len(shard) for shard in table.shards if shard]
    assert len(sizes) <= 4 and max(sizes) <= run  # three runs, not necessarily aligned
    for n in range(0, 3 * run, 97):
        assert table.get(base + (n << host)) == n and base + (n << host) in table
    assert table.get(base + ((3 * run) << host)) is None and len(table) == 3 * run


@pytest.mark.parametrize(("bits", "plen"), [(32, 24), (128, 48)])
def test_networks_spread_out_spread_over_every_shard(bits: int, plen: int) -> None:
    host = bits - plen
    rng = random.Random(15)
    nets = {rng.getrandbits(plen) << host for _ in range(64 * SHARDS)}
    table: NetShards[int] = NetShards(host, ((net, 1) for net in nets))
    sizes = [len(shard) for shard in table.shards]
    assert min(sizes) > 32 and max(sizes) < 128  # 64 each on average
    assert len(table) == len(nets) and all(table.get(net) == 1 for net in nets)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), keys), max_size=200), st.integers(1, 40))
def test_a_sharded_set_hands_every_key_out_once(
    steps: list[tuple[bool, object]], count: int
) -> None:
    pending: ShardedSet[object] = ShardedSet()
    model: set[object] = set()
    for add, key in steps:
        if add:
            pending.add(key)
            model.add(key)
        else:
            pending.discard(key)
            model.discard(key)
        assert (key in pending) == (key in model)
    assert len(pending) == len(model) and bool(pending) == bool(model)
    assert set(pending) == model
    taken: list[object] = []
    while pending:
        part = pending.take(count)
        assert 0 < len(part) <= count
        assert len(part) == count or not pending  # fewer only at the end
        taken += part
    assert sorted(map(repr, taken)) == sorted(map(repr, model))
    assert pending.take(count) == []


@pytest.mark.parametrize("count", [1, 7, 300, 5000])
def test_draining_removes_as_many_as_asked_until_none_is_left(count: int) -> None:
    table: ShardedDict[tuple[int, int], int] = ShardedDict(((n, 2), n) for n in range(1000))
    keys: ShardedSet[tuple[int, int]] = ShardedSet((n, 2) for n in range(1000))
    left = 1000
    while left:
        more = table.drain(count)
        assert keys.drain(count) is more
        left = max(0, left - count)
        assert len(table) == len(keys) == left and more is (left > 0)
    assert not table and not keys and dict(table.items()) == {}
