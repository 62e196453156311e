"""Key analysis (pure): grouping by schema or inferred pattern, TTL spread, keys without a
TTL, the biggest keys."""

from __future__ import annotations

import pytest

from arketic_cache import InvalidInputError, UserProfileKey
from arketic_cache._catalogue import ChatMessagesKey
from arketic_cache._core._analysis import Grouper, KeyFacts, inferred_pattern


def test_inferred_patterns_hide_ids() -> None:
    assert inferred_pattern("user:42:profile") == "user:*:profile"
    assert inferred_pattern("cached:example.answer:" + "a" * 32) == "cached:example.answer:*"
    assert inferred_pattern("health") == "health"


def test_groups_by_schema_with_ttls_memory_and_keys_without_ttl() -> None:
    grouper = Grouper([UserProfileKey, ChatMessagesKey], "schema", key_prefix="app:", top=2)
    grouper.add(
        [
            KeyFacts("app:user:1:profile", "string", 100.0, 50),
            KeyFacts("app:user:2:profile", "string", 300.0, 70),
            KeyFacts("app:user:3:profile", "string", None, 60),
            KeyFacts("app:chat:9:messages", "list", 10.0, 500),
            KeyFacts("other:thing:7", "string", None, None),
        ]
    )
    summary = grouper.summary()
    rows = {row["group"]: row for row in summary.groups}
    profile = rows["UserProfileKey"]
    assert (profile["keys"], profile["memory_bytes"], profile["without_ttl"]) == (3, 180, 1)
    assert (profile["ttl_min_s"], profile["ttl_median_s"], profile["ttl_max_s"]) == (100, 200, 300)
    assert rows["other:thing:*"]["memory_bytes"] is None  # not measured
    assert [row["group"] for row in summary.groups][:2] == ["ChatMessagesKey", "UserProfileKey"]
    assert [fact.key for fact in summary.biggest] == ["app:chat:9:messages", "app:user:2:profile"]
    assert (summary.scanned, summary.without_ttl) == (5, 2)


def test_prefix_grouping_ignores_schemas() -> None:
    grouper = Grouper([UserProfileKey], "prefix")
    assert grouper.group_of("user:1:profile") == "user:*:profile"


def test_an_unknown_grouping_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        Grouper([], "size")
