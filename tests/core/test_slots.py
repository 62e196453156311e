"""Cluster hash slots and grouping keys by slot."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot as redis_key_slot

from arketic_cache._core._slots import group_by_slot, key_slot


class TestSlots:
    """Cluster slots match Redis' own CRC16 rule, hash tags included."""

    @given(st.text(max_size=40))
    def test_matches_redis_py(self, key: str) -> None:
        """key_slot agrees with redis-py for any key."""
        assert key_slot(key) == redis_key_slot(key.encode("utf-8", "surrogateescape"))

    @pytest.mark.parametrize(
        ("a", "b"), [("{user1}:x", "{user1}:y"), ("a{tag}b", "c{tag}d"), ("x{}", "x{}")]
    )
    def test_hash_tags(self, a: str, b: str) -> None:
        """Keys sharing a non-empty tag (or the same empty-tag key) share a slot."""
        assert key_slot(a) == key_slot(b)

    def test_empty_tag_hashes_whole_key(self) -> None:
        """An empty {} is not a tag: the whole key is hashed."""
        assert key_slot("{}a") == redis_key_slot(b"{}a")
        assert key_slot("{}a") != key_slot("{}b")

    def test_group_by_slot_keeps_positions(self) -> None:
        """Each key's position lands in its slot's group, in order."""
        keys = ["{a}1", "{b}1", "{a}2", "{b}2", "{a}3"]
        groups = group_by_slot(keys)
        assert sorted(groups.values()) == [[0, 2, 4], [1, 3]]
