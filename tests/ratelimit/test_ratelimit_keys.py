"""Rate-limit keys: only ``RateLimitKey`` schemas are taken, the catalogue's types are what the
limiter stores, and a key holding another type is a misconfiguration, logged once per key."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis

from arketic_cache import (
    BackendResponseError,
    ChatMessagesKey,
    ConfigurationError,
    InvalidInputError,
    Limit,
    RateLimitAIRequestsKey,
    RateLimitAITokensKey,
    RateLimitApiGlobalKey,
    RateLimitApiKey,
    RateLimitDownloadKey,
    RateLimitIpKey,
    RateLimitKey,
    RateLimitOrgMonthlyKey,
    RateLimitUploadKey,
    RedisType,
    SessionUserKey,
    UserProfileKey,
    rate_limited,
)

from ..helpers import Flavor, messages
from .helpers import limiter

#: Each catalogue key with a call the spec's services make on it.
CATALOGUE_CALLS: list[tuple[RateLimitKey, Any]] = [
    (RateLimitApiKey(user_id=1, endpoint="chat"), lambda rl, k: rl.check(k, 100)),
    (RateLimitApiGlobalKey(endpoint="chat"), lambda rl, k: rl.check(k, 100)),
    (RateLimitIpKey(ip_address="10.0.0.1"), lambda rl, k: rl.check(k, 60)),
    (RateLimitAIRequestsKey(user_id=1), lambda rl, k: rl.check(k, Limit(20, 60))),
    (RateLimitAITokensKey(user_id=1), lambda rl, k: rl.check(k, Limit(100_000, 60), cost=1200)),
    (RateLimitOrgMonthlyKey(org_id=7), lambda rl, k: rl.quota(k, 5_000_000, cost=1200)),
    (RateLimitUploadKey(user_id=1), lambda rl, k: rl.check(k, 10)),
    (RateLimitDownloadKey(user_id=1), lambda rl, k: rl.check(k, 100)),
]


@pytest.mark.parametrize(("key", "call"), CATALOGUE_CALLS, ids=lambda v: type(v).__name__)
def test_catalogue_types_are_what_the_limiter_stores(
    flavor: Flavor, raw: redis.Redis, key: RateLimitKey, call: Any
) -> None:
    """TYPE of the key after a typical call is the schema's ``redis_type``."""
    assert call(limiter(flavor), key).allowed
    assert raw.type(key.render()) == type(key).redis_type.value


def test_every_catalogue_rate_key_is_a_rate_limit_key() -> None:
    """The catalogue's rate-limit keys derive from RateLimitKey, and no other catalogue key does."""
    assert all(isinstance(key, RateLimitKey) for key, _ in CATALOGUE_CALLS)
    assert RateLimitAITokensKey.redis_type is RedisType.HASH
    assert RateLimitOrgMonthlyKey.redis_type is RedisType.HASH
    assert not issubclass(SessionUserKey, RateLimitKey)


@pytest.mark.parametrize(
    "key",
    [UserProfileKey(user_id=1), ChatMessagesKey(chat_id="c"), SessionUserKey(user_id=1)],
    ids=lambda k: type(k).__name__,
)
def test_a_schema_of_another_service_is_refused_before_io(flavor: Flavor, key: Any) -> None:
    """A STRING, LIST or session key never reaches Redis as a rate-limit window."""
    rl = limiter(flavor, connection=flavor.dead_connection())
    with pytest.raises(InvalidInputError, match="RateLimitKey"):
        rl.check(key, 5)


def test_rate_limited_refuses_another_schema() -> None:
    """``@rate_limited(key=ChatMessagesKey)`` fails at decoration, naming the schema."""
    with pytest.raises(ConfigurationError, match=r"ChatMessagesKey.*RateLimitKey"):

        @rate_limited(5, key=ChatMessagesKey)  # type: ignore[arg-type]
        def post(chat_id: str) -> None:
            pass


def test_rate_limited_takes_an_own_rate_limit_key(flavor: Flavor, raw: redis.Redis) -> None:
    """An application's own RateLimitKey schema works like the catalogue's."""

    class LoginKey(RateLimitKey):
        template = "rate:login:{email}"
        email: str

    rl = limiter(flavor)
    assert rl.is_allowed(LoginKey(email="ada@example.com"), 2) == (True, 1, 1)
    assert raw.type("rate:login:ada@example.com") == "zset"


class TestWrongType:
    """WRONGTYPE on a limiter key is a misconfiguration: logged once per key, counted apart."""

    def test_logged_once_per_key_and_counted_apart(
        self, flavor: Flavor, raw: redis.Redis, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Calls degrade; one error line per key; ``errors`` (outages) stays 0."""
        caplog.set_level(logging.DEBUG, logger="arketic_cache")
        raw.set("rate:api:1:chat", "a string of another service")
        raw.rpush("rate:api:2:chat", "a list")
        rl = limiter(flavor, strict=False)
        for _ in range(3):
            decision = rl.check("rate:api:1:chat", 5)
            assert decision.allowed
            assert decision.degraded
        assert rl.check("rate:api:2:chat", 5).degraded
        logged = messages(caplog, logging.ERROR, "holds another data type")
        assert len(logged) == 2
        assert "rate:api:1:chat" in logged[0]
        assert "rate:api:2:chat" in logged[1]
        assert messages(caplog, logging.WARNING, "Redis call failed") == []
        info = rl.get_info()
        assert info["wrong_type_errors"] == 4
        assert info["errors"] == 0
        assert info["breaker"] == "closed"
        assert info["degraded_decisions"] == 4
        assert raw.get("rate:api:1:chat") == "a string of another service"  # left alone

    def test_fail_closed_denies(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A fail-closed limiter denies on a misconfigured key, as on an outage."""
        raw.set("rate:login:ada", "x")
        rl = limiter(flavor, strict=False, fail_closed=True)
        decision = rl.check("rate:login:ada", 5)
        assert not decision.allowed
        assert decision.degraded

    def test_strict_raises(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Strict mode raises BackendResponseError naming WRONGTYPE."""
        raw.hset("rate:api:3:chat", "f", "v")
        rl = limiter(flavor)
        with pytest.raises(BackendResponseError, match="WRONGTYPE"):
            rl.check("rate:api:3:chat", 5)

    def test_cache_reads_count_it_too(
        self, flavor: Flavor, raw: redis.Redis, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A cache GET on a hash key is the same misconfiguration: counted apart, logged once."""
        caplog.set_level(logging.DEBUG, logger="arketic_cache")
        raw.hset("user:1:profile", "name", "Ada")
        cache = flavor.cache()
        assert cache.get("user:1:profile") is None
        assert cache.get("user:1:profile") is None
        info = cache.get_info()["client"]
        assert (info["wrong_type_errors"], info["errors"]) == (2, 0)
        assert len(messages(caplog, logging.ERROR, "user:1:profile")) == 1
