"""@cached values: models and None, TTLs and jitter, option checks, L1/L2 levels, corrupt L2."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from arketic_cache import TTL, ConfigurationError, cached
from arketic_cache._core._cached import jittered_ttl

from ..helpers import Flavor
from .helpers import Answer, envelope, identity, l1_deadlines, make, stored_value


class TestValues:
    """None caching, the condition predicate, typed values from L2."""

    def test_none_not_cached_by_default(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A None result is recomputed each time and never written."""
        calls: list[Any] = []

        def find(x: int) -> int | None:
            calls.append(x)
            return None

        fn = make(flavor, find)
        assert fn(1) is None
        assert fn(1) is None
        assert calls == [1, 1]
        assert raw.keys("*") == []
        assert fn.cache_info().l1_size == 0

    def test_none_cached_when_asked(self, flavor: Flavor, raw: redis.Redis) -> None:
        """cache_none=True: None is an L1 and an L2 hit, distinct from a miss."""
        calls: list[Any] = []

        def find(x: int) -> int | None:
            calls.append(x)
            return None

        fn = make(flavor, find, cache_none=True, namespace="find")
        assert fn(1) is None
        assert fn(1) is None
        assert len(raw.keys("cached:*")) == 1
        other = make(flavor, find, cache_none=True, namespace="find", l1=False)
        assert other(1) is None
        assert other.cache_info().l2_hits == 1
        assert calls == [1]

    def test_condition_decides_what_is_cached(self, flavor: Flavor, raw: redis.Redis) -> None:
        """condition=predicate: rejected results are recomputed, accepted ones cached."""
        calls: list[Any] = []

        def score(x: int) -> int:
            calls.append(x)
            return x

        fn = make(flavor, score, condition=lambda value: value > 0)
        assert [fn(-1), fn(-1), fn(5), fn(5)] == [-1, -1, 5, 5]
        assert calls == [-1, -1, 5]
        assert len(raw.keys("cached:*")) == 1

    def test_model_comes_back_from_l2(self, flavor: Flavor) -> None:
        """A pydantic return value is that model again from L2 (L1 dropped)."""

        def answer(question: str) -> Answer:
            return Answer(text=question.upper(), score=0.5)

        fn = make(flavor, answer)
        first = fn("hi")
        fn.cache_clear()
        again = fn("hi")
        assert isinstance(again, Answer)
        assert again == first
        assert fn.cache_info().l2_hits == 1


# -- TTL -----------------------------------------------------------------------------------------


class TestTTL:
    """ttl= an int, a TTL row or the connection's default; jitter bounds."""

    def test_int_ttl(self, flavor: Flavor, raw: redis.Redis) -> None:
        """ttl=120 → the Redis key expires in at most 120 s."""
        make(flavor, identity, ttl=120)(1)
        (key,) = raw.keys("cached:*")
        assert 110 <= raw.ttl(key) <= 120

    def test_ttl_row(self, flavor: Flavor, raw: redis.Redis) -> None:
        """ttl=TTL.SEARCH_RESULT → 900 s in Redis."""
        make(flavor, identity, ttl=TTL.SEARCH_RESULT)(1)
        (key,) = raw.keys("cached:*")
        assert 890 <= raw.ttl(key) <= 900

    def test_default_ttl_from_connection(self, flavor: Flavor, raw: redis.Redis) -> None:
        """No ttl= → the connection's default_ttl (RESPONSE_CACHE_TTL)."""
        conn = flavor.connect(default_ttl=1234)
        make(flavor, identity, connection=conn)(1)
        (key,) = raw.keys("cached:*")
        assert 1224 <= raw.ttl(key) <= 1234

    def test_jitter_stays_within_bounds(self, flavor: Flavor, raw: redis.Redis) -> None:
        """jitter=0.5, ttl=1000: every Redis TTL is in [500, 1000], and they differ."""
        fn = make(flavor, identity, ttl=1000, jitter=0.5)
        for x in range(20):
            fn(x)
        ttls = [raw.ttl(key) for key in raw.keys("cached:*")]
        assert len(ttls) == 20
        assert all(500 <= ttl <= 1000 for ttl in ttls), ttls
        assert len(set(ttls)) > 1  # 20 identical draws out of ~500 values: never

    def test_l1_lives_no_longer_than_the_ttl(self, flavor: Flavor) -> None:
        """The L1 copy of a fresh entry expires within the entry's TTL."""
        fn = make(flavor, identity, ttl=60)
        fn(1)
        (left,) = l1_deadlines(fn)
        assert 0 < left <= 60

    def test_l1_ttl_caps_l1(self, flavor: Flavor, raw: redis.Redis) -> None:
        """l1_ttl=5 keeps the L1 copy 5 s at most, while Redis keeps it for the TTL."""
        fn = make(flavor, identity, ttl=600, l1_ttl=5)
        fn(1)
        (left,) = l1_deadlines(fn)
        assert 0 < left <= 5
        (key,) = raw.keys("cached:*")
        assert raw.ttl(key) > 5


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999999])
@pytest.mark.parametrize(("ttl", "jitter"), [(1000, 0.5), (60, 0.1), (7, 0.9), (1, 0.5)])
def test_jittered_ttl_bounds(ttl: int, jitter: float, draw: float) -> None:
    """jittered_ttl keeps [ttl * (1 - jitter), ttl], never below 1 s; a 0 draw keeps ttl."""
    result = jittered_ttl(ttl, jitter, draw)
    assert max(1, ttl * (1 - jitter)) <= result <= ttl
    if draw == 0.0:
        assert result == ttl


@pytest.mark.parametrize(
    "options",
    [
        {"ttl": 0},
        {"ttl": -5},
        {"ttl": 1.5},
        {"ttl": True},
        {"jitter": 1},
        {"jitter": -0.1},
        {"l1": False, "l2": False},
        {"early_refresh": -1.0},
        {"l1_ttl": 0},
    ],
)
def test_invalid_options(options: dict[str, Any]) -> None:
    """Each invalid option is a ConfigurationError when the function is decorated."""
    decorate = cached(**options)
    with pytest.raises(ConfigurationError):
        decorate(identity)


# -- levels --------------------------------------------------------------------------------------


class TestLevels:
    """L1 only, L2 only, and an L1 copy never outliving its L2 entry."""

    def test_l1_disabled_reads_redis_every_time(self, flavor: Flavor) -> None:
        """l1=False: one miss, then every call is an L2 hit; L1 stays empty."""
        calls: list[Any] = []

        def double(x: int) -> int:
            calls.append(x)
            return 2 * x

        fn = make(flavor, double, l1=False)
        assert [fn(4) for _ in range(4)] == [8] * 4
        assert calls == [4]
        assert tuple(fn.cache_info())[:5] == (0, 3, 1, 0, 0)

    def test_l2_disabled(self, flavor: Flavor, raw: redis.Redis) -> None:
        """l2=False: nothing in Redis, L1 serves, invalidate drops the L1 entry."""
        calls: list[Any] = []

        def double(x: int) -> int:
            calls.append(x)
            return 2 * x

        fn = make(flavor, double, l2=False)
        assert [fn(4), fn(4)] == [8, 8]
        assert raw.keys("*") == []
        info = fn.cache_info()
        assert (info.l1_hits, info.l1_size) == (1, 1)
        assert fn.invalidate(4) is True
        assert fn.cache_info().l1_size == 0
        assert fn.invalidate(4) is False
        assert fn(4) == 8
        assert calls == [4, 4]
        assert raw.keys("*") == []

    def test_writer_expiry_is_not_trusted(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A writer's own expiry stamp (long past: its clock was wrong) is ignored: Redis' TTL
        decides, so the entry is served and kept in L1 for Redis' remaining TTL at most."""
        calls: list[Any] = []

        def compute(x: int) -> int:
            calls.append(x)
            return 100

        raw.set("env:1", envelope(7, expires_in=-3600), ex=60)
        fn = make(flavor, compute, key=lambda x: f"env:{x}", ttl=600)
        assert fn(1) == 7
        assert calls == []
        (left,) = l1_deadlines(fn)
        assert 0 < left <= 60

    def test_l1_copy_expires_with_its_l2_entry(self, flavor: Flavor, raw: redis.Redis) -> None:
        """An entry Redis expires in 30 s (written with TTL 3600, clock stamp far ahead) is kept
        in L1 for 30 s at most."""
        raw.set("env:1", envelope(7, expires_in=7200), ex=30)
        fn = make(flavor, identity, key=lambda x: f"env:{x}", ttl=3600)
        assert fn(1) == 7
        (left,) = l1_deadlines(fn)
        assert 0 < left <= 30
        assert fn(1) == 7
        assert fn.cache_info().l1_hits == 1


# -- corrupt L2 ----------------------------------------------------------------------------------


CORRUPT = [
    pytest.param(b"\xff\xfe\x00\x81 garbage", id="garbage-bytes"),
    pytest.param(envelope("not a number", expires_in=60), id="wrong-value-type"),
    pytest.param(json.dumps([1, 2, 3]), id="json-not-an-envelope"),
    pytest.param(json.dumps({"d": 0.5}), id="envelope-without-value"),
    pytest.param("", id="empty-string"),
]


class TestCorruptL2:
    """Whatever sits at the key, the call is a miss: the function runs, nothing is raised."""

    @pytest.mark.parametrize("data", CORRUPT)
    def test_corrupt_value_is_a_miss_and_replaced(
        self, flavor: Flavor, raw: redis.Redis, data: bytes | str
    ) -> None:
        """The function's result is returned and replaces the corrupt entry."""
        calls: list[Any] = []

        def compute(x: int) -> int:
            calls.append(x)
            return 42

        raw.set("env:1", data, ex=60)
        fn = make(flavor, compute, key=lambda x: f"env:{x}")
        assert fn(1) == 42
        assert calls == [1]
        assert fn.cache_info().misses == 1
        assert stored_value(raw, "env:1") == 42

    def test_wrong_type_key_is_a_miss(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A list at the key: the function runs, its result comes back, the error is counted."""
        calls: list[Any] = []

        def compute(x: int) -> int:
            calls.append(x)
            return 42

        raw.rpush("env:1", "a", "b")
        fn = make(flavor, compute, key=lambda x: f"env:{x}")
        assert fn(1) == 42
        assert calls == [1]
        info = fn.cache_info()
        assert (info.misses, info.errors) == (1, 1)
        assert flavor.connection.state.breaker.state == "closed"  # Redis answered

    def test_wrong_type_key_is_replaced(self, flavor: Flavor, raw: redis.Redis) -> None:
        """After a miss on a wrong-type key, the result is stored like after any miss."""

        def compute(x: int) -> int:
            return 42

        raw.rpush("env:1", "a", "b")
        assert make(flavor, compute, key=lambda x: f"env:{x}")(1) == 42
        assert raw.type("env:1") == "string"
        assert stored_value(raw, "env:1") == 42


# -- counters, cache_clear, invalidate -----------------------------------------------------------
