"""RedisCache and SyncRedisCache behaviour, on fakeredis and a real server, sync and async."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
import redis

from arketic_cache import BackendResponseError, InvalidInputError, SerializationError

from ..helpers import Flavor


class Profile(pydantic.BaseModel):
    name: str
    tags: list[str]


class TestGetSet:
    """Values are stored as JSON with a TTL and come back as stored."""

    @pytest.mark.parametrize(
        "value",
        [
            {"name": "Ada", "nested": {"list": [1, 2.5, None, True]}},
            [1, "two", 3.0],
            "text with ünïcode and \x00 nul",
            "",
            0,
            -17,
            2.5,
            True,
            False,
        ],
        ids=repr,
    )
    def test_round_trip(self, cache: Any, value: Any) -> None:
        """get returns exactly what set stored."""
        assert cache.set("k", value) is True
        assert cache.get("k") == value
        assert type(cache.get("k")) is type(value)

    def test_pydantic_model_is_stored_as_json(self, cache: Any, raw: redis.Redis) -> None:
        """A model is stored as its JSON, readable by any service."""
        cache.set("user:1:profile", Profile(name="Ada", tags=["x"]))
        assert raw.get("user:1:profile") == '{"name":"Ada","tags":["x"]}'
        assert cache.get("user:1:profile") == {"name": "Ada", "tags": ["x"]}

    def test_miss_is_none(self, cache: Any) -> None:
        """A missing key reads as None and counts as a miss."""
        assert cache.get("absent") is None
        assert cache.get_info()["client"]["misses"] == 1

    def test_default_ttl_applied_atomically(self, cache: Any, raw: redis.Redis) -> None:
        """A write without a TTL gets RESPONSE_CACHE_TTL (3600 by default)."""
        cache.set("k", 1)
        assert 3590 <= raw.ttl("k") <= 3600

    def test_explicit_ttl(self, cache: Any, raw: redis.Redis) -> None:
        """An explicit TTL is the key's TTL."""
        cache.set("k", 1, ttl=42)
        assert 35 <= raw.ttl("k") <= 42

    def test_default_ttl_from_settings(self, flavor: Flavor, raw: redis.Redis) -> None:
        """The connection's default_ttl (RESPONSE_CACHE_TTL) applies; a cache may override it."""
        flavor.connect(default_ttl=1234)
        flavor.cache().set("a", 1)
        flavor.cache(default_ttl=77).set("b", 1)
        assert 1200 <= raw.ttl("a") <= 1234
        assert 70 <= raw.ttl("b") <= 77

    @pytest.mark.parametrize("ttl", [0, -1, 1.5, "10", True, float("inf")], ids=repr)
    def test_invalid_ttl_rejected_before_io(self, cache: Any, raw: redis.Redis, ttl: Any) -> None:
        """A TTL that is not a positive int raises InvalidInputError and writes nothing."""
        with pytest.raises(InvalidInputError, match="TTL"):
            cache.set("k", 1, ttl=ttl)
        with pytest.raises(InvalidInputError, match="TTL"):
            cache.set_many({"k": 1}, ttl=ttl)
        assert raw.exists("k") == 0

    @pytest.mark.parametrize("value", [object(), {1, object()}, b"\xff\xfe"], ids=repr)
    def test_unserialisable_value_rejected(self, cache: Any, raw: redis.Redis, value: Any) -> None:
        """A value that is not JSON-able raises SerializationError at set, before any I/O."""
        with pytest.raises(SerializationError, match="JSON"):
            cache.set("k", value)
        assert raw.exists("k") == 0

    def test_oversized_value_rejected(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A value over max_value_bytes raises SerializationError before any I/O."""
        flavor.connect(max_value_bytes=1000)
        cache = flavor.cache()
        assert cache.set("small", "x" * 900) is True
        with pytest.raises(SerializationError, match="limit"):
            cache.set("big", "x" * 1000)
        assert raw.exists("big") == 0

    @pytest.mark.parametrize("key", ["", 5, None, b"bytes", "k" * 2000], ids=repr)
    def test_invalid_keys_rejected(self, cache: Any, key: Any) -> None:
        """Empty, non-str and over-long keys raise InvalidInputError."""
        with pytest.raises(InvalidInputError):
            cache.get(key)
        with pytest.raises(InvalidInputError):
            cache.set(key, 1)

    def test_key_prefix(self, flavor: Flavor, raw: redis.Redis) -> None:
        """The key prefix is applied to every key and invisible to the caller."""
        cache = flavor.cache(key_prefix="app1:")
        cache.set("user:1", {"a": 1})
        assert raw.exists("app1:user:1") == 1
        assert cache.get("user:1") == {"a": 1}
        assert cache.get_keys("user:*") == ["user:1"]


class TestCorruptAndWrongType:
    """Bad stored data is a miss, never a crash and never unpickled."""

    @pytest.mark.parametrize(
        "stored",
        [
            b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x8c\x07os.path\x94.",
            b"{not json",
            b"\xff",
        ],
        ids=["pickle", "garbage", "bad-utf8"],
    )
    def test_corrupt_value_is_miss_and_dropped(
        self, cache: Any, raw: redis.Redis, stored: bytes
    ) -> None:
        """An undecodable value reads as None, is deleted and is counted."""
        raw.set("k", stored)
        assert cache.get("k") is None
        assert raw.exists("k") == 0
        client = cache.get_info()["client"]
        assert client["decode_errors"] == 1
        assert client["misses"] == 1

    def test_corrupt_value_in_get_many(self, cache: Any, raw: redis.Redis) -> None:
        """get_many skips and drops corrupt entries, keeps the good ones."""
        cache.set("good", 1)
        raw.set("bad", b"\x80garbage")
        assert cache.get_many(["good", "bad"]) == {"good": 1}
        assert raw.exists("bad") == 0

    def test_wrongtype_is_miss_and_kept(self, cache: Any, raw: redis.Redis) -> None:
        """GET on a list is a logged miss, counted apart from outages; the list is left alone."""
        raw.lpush("k", "x")
        assert cache.get("k") is None
        assert raw.lrange("k", 0, -1) == ["x"]
        client = cache.get_info()["client"]
        assert (client["wrong_type_errors"], client["errors"]) == (1, 0)

    def test_wrongtype_does_not_open_breaker(self, cache: Any, raw: redis.Redis) -> None:
        """Server-side errors are answers: the breaker stays closed."""
        raw.lpush("k", "x")
        for _ in range(10):
            assert cache.get("k") is None
        assert cache.get_info()["client"]["breaker"] == "closed"
        assert cache.set("other", 1) is True

    def test_strict_mode_raises(self, flavor: Flavor, raw: redis.Redis) -> None:
        """With strict=True a Redis error surfaces as BackendResponseError."""
        raw.lpush("k", "x")
        with pytest.raises(BackendResponseError, match="WRONGTYPE"):
            flavor.cache(strict=True).get("k")


class TestKeysAndCounters:
    """delete, exists, increment and expire."""

    def test_delete(self, cache: Any) -> None:
        """delete is True when the key existed."""
        cache.set("k", 1)
        assert cache.delete("k") is True
        assert cache.delete("k") is False
        assert cache.get("k") is None

    def test_exists(self, cache: Any) -> None:
        """exists reflects the key, including a stored null."""
        assert cache.exists("k") is False
        cache.set("k", None)
        assert cache.exists("k") is True

    def test_increment_new_counter_gets_default_ttl(self, cache: Any, raw: redis.Redis) -> None:
        """A counter created by increment gets the default TTL in the same step."""
        assert cache.increment("n") == 1
        assert cache.increment("n", 5) == 6
        assert cache.increment("n", -10) == -4
        assert 3590 <= raw.ttl("n") <= 3600

    def test_increment_keeps_existing_ttl(self, cache: Any, raw: redis.Redis) -> None:
        """An existing counter keeps the TTL it has."""
        cache.set("n", 10, ttl=100)
        assert cache.increment("n") == 11
        assert 90 <= raw.ttl("n") <= 100

    def test_increment_non_integer_value(self, flavor: Flavor) -> None:
        """Incrementing a non-integer is None (logged), or an error in strict mode."""
        cache = flavor.cache()
        cache.set("n", "abc")
        assert cache.increment("n") is None
        with pytest.raises(BackendResponseError, match="not an integer"):
            flavor.cache(strict=True).increment("n")

    @pytest.mark.parametrize("amount", [1.5, "1", True, 2**63, None], ids=repr)
    def test_increment_invalid_amount(self, cache: Any, amount: Any) -> None:
        """A non-int or out-of-range amount raises InvalidInputError."""
        with pytest.raises(InvalidInputError):
            cache.increment("n", amount)

    def test_expire(self, cache: Any, raw: redis.Redis) -> None:
        """expire sets the TTL of an existing key and is False for a missing one."""
        cache.set("k", 1)
        assert cache.expire("k", 50) is True
        assert 40 <= raw.ttl("k") <= 50
        assert cache.expire("missing", 50) is False
        with pytest.raises(InvalidInputError):
            cache.expire("k", 0)


class TestMany:
    """get_many and set_many."""

    def test_set_many_get_many(self, cache: Any, raw: redis.Redis) -> None:
        """Both directions work, with a TTL on every key."""
        data = {f"user:{i}": {"id": i} for i in range(50)}
        assert cache.set_many(data, ttl=60) is True
        assert all(0 < raw.ttl(k) <= 60 for k in data)
        found = cache.get_many([*data, "user:missing", "user:1"])
        assert found == data

    def test_empty(self, cache: Any) -> None:
        """Empty inputs need no round trip."""
        assert cache.get_many([]) == {}
        assert cache.set_many({}) is True

    def test_single_str_rejected(self, cache: Any) -> None:
        """A lone string is almost certainly a bug, not an iterable of keys."""
        with pytest.raises(InvalidInputError):
            cache.get_many("abc")

    def test_set_many_validates_everything_first(self, cache: Any, raw: redis.Redis) -> None:
        """One bad value means nothing is written."""
        with pytest.raises(SerializationError):
            cache.set_many({"a": 1, "b": object()})
        assert raw.exists("a") == 0


class TestPatterns:
    """get_keys and flush_pattern use SCAN and UNLINK, respect the prefix, refuse '*'."""

    def test_get_keys_glob(self, cache: Any) -> None:
        """Glob characters in the pattern act as the caller wrote them."""
        for key in ["user:1:profile", "user:2:profile", "user:2:prefs", "chat:1"]:
            cache.set(key, 1)
        assert cache.get_keys("user:*:profile") == ["user:1:profile", "user:2:profile"]
        assert cache.get_keys("user:[12]:prefs") == ["user:2:prefs"]
        assert cache.get_keys("user:?:*") == ["user:1:profile", "user:2:prefs", "user:2:profile"]
        assert cache.get_keys(r"user:\*") == []

    def test_many_keys_across_scan_pages(self, cache: Any) -> None:
        """More keys than one SCAN page and one UNLINK batch are all found and removed."""
        cache.set_many({f"bulk:{i}": i for i in range(1234)})
        cache.set("keep:1", 1)
        assert len(cache.get_keys("bulk:*")) == 1234
        assert cache.flush_pattern("bulk:*") == 1234
        assert cache.get_keys("bulk:*") == []
        assert cache.get_keys("keep:*") == ["keep:1"]

    def test_other_prefixes_untouched(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A prefix holding glob characters matches only itself; other tenants survive."""
        tenant = flavor.cache(key_prefix="t[1]*:")
        other = flavor.cache(key_prefix="t1:")
        tenant.set("user:1", 1)
        other.set("user:1", 2)
        assert tenant.get_keys("*") == ["user:1"]
        assert tenant.flush_pattern("user:*") == 1
        assert other.get("user:1") == 2
        assert raw.exists("t1:user:1") == 1

    @pytest.mark.parametrize("pattern", ["", "*", "**", "***"])
    def test_flush_everything_refused(self, cache: Any, pattern: str) -> None:
        """flush_pattern refuses to match every key unless told to."""
        cache.set("k", 1)
        with pytest.raises(InvalidInputError):
            cache.flush_pattern(pattern)
        assert cache.exists("k") is True

    def test_flush_all_within_prefix(self, flavor: Flavor, raw: redis.Redis) -> None:
        """allow_all=True flushes every key under the prefix, and only there."""
        mine, theirs = flavor.cache(key_prefix="mine:"), flavor.cache(key_prefix="theirs:")
        mine.set("a", 1)
        theirs.set("a", 1)
        assert mine.flush_pattern("*", allow_all=True) == 1
        assert raw.exists("theirs:a") == 1

    def test_long_pattern_refused(self, cache: Any) -> None:
        """A very long pattern is refused client-side."""
        with pytest.raises(InvalidInputError):
            cache.get_keys("a" * 10_000)


class TestInfo:
    """get_info reports the spec's fields and this client's counters."""

    SPEC_FIELDS = (
        "connected_clients",
        "used_memory_human",
        "used_memory",
        "total_commands_processed",
        "keyspace_hits",
        "keyspace_misses",
        "uptime_in_seconds",
    )

    def test_fields(self, flavor: Flavor) -> None:
        """Every field is present; a real server fills them, fakeredis leaves them None."""
        cache = flavor.cache()
        cache.set("k", 1)
        cache.get("k")
        cache.get("nope")
        info = cache.get_info()
        for field in (*self.SPEC_FIELDS, "hit_rate", "maxmemory", "maxmemory_policy"):
            assert field in info
        real = flavor.connection.backend == "redis"
        for field in self.SPEC_FIELDS:
            assert (info[field] is not None) is real
        if real:
            assert info["connected_clients"] >= 1
            assert info["persistence"] == "none observed"
            assert 0.0 <= info["hit_rate"] <= 1.0
        assert info["client"]["hits"] == 1
        assert info["client"]["misses"] == 1
        assert info["client"]["hit_rate"] == 0.5
        assert info["client"]["errors"] == 0
