"""``@rate_limited`` on sync and async functions, and the global limiters."""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import arketic_cache
from arketic_cache import (
    ConfigurationError,
    InvalidInputError,
    Limit,
    NotInitializedError,
    RateLimitApiKey,
    RateLimitExceeded,
    RateLimitUploadKey,
    close_redis,
    close_redis_sync,
    init_redis,
    init_redis_sync,
    rate_limited,
)
from arketic_cache._settings import ENVIRONMENT_VARIABLES

from ..helpers import Bridge, Flavor
from .helpers import several


def limited(flavor: Flavor, *limits: Any, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``@rate_limited`` of the flavour: the function itself (sync), or an async twin of it
    decorated and bridged (async). Both keep the function's name and signature."""
    options.setdefault("connection", flavor.connection)

    def apply(fn: Callable[..., Any]) -> Any:
        if flavor.name == "sync":
            return rate_limited(*limits, **options)(fn)

        @functools.wraps(fn)
        async def twin(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return fn(*args, **kwargs)

        return Bridge(rate_limited(*limits, **options)(twin), flavor.runner)

    return apply


class TestDecorator:
    """@rate_limited on sync and async functions and methods."""

    def test_function(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Calls within the limit run; a denied call raises and its body does not run."""
        calls: list[int] = []

        @limited(flavor, 2, window=60)
        def work(n: int) -> int:
            calls.append(n)
            return n * 2

        assert (work(1), work(2)) == (2, 4)
        with pytest.raises(RateLimitExceeded) as caught:
            work(3)
        assert calls == [1, 2]
        decision = caught.value.decision
        assert (decision.allowed, decision.count, decision.limit, decision.window) == (
            False,
            2,
            2,
            60,
        )
        assert caught.value.retry_after == decision.retry_after
        assert 0 < decision.retry_after <= 60
        assert "rate limit of 2 per 60 s exceeded" in str(caught.value)
        [key] = raw.keys("ratelimit:*")  # by default, one limit for the function
        assert "work" in key
        assert raw.zcard(key) == 2

    def test_method_keyed_by_schema(self, flavor: Flavor, raw: redis.Redis) -> None:
        """key=RateLimitApiKey takes user_id and endpoint from the call (self left out)."""
        connection = flavor.connection
        sent: list[tuple[int, str]] = []

        class SyncApi:
            @rate_limited(1, key=RateLimitApiKey, connection=connection)
            def send(self, user_id: int, endpoint: str, body: str = "") -> str:
                sent.append((user_id, endpoint))
                return body

        class AsyncApi:
            @rate_limited(1, key=RateLimitApiKey, connection=connection)
            async def send(self, user_id: int, endpoint: str, body: str = "") -> str:
                sent.append((user_id, endpoint))
                return body

        send = SyncApi().send if flavor.name == "sync" else Bridge(AsyncApi().send, flavor.runner)
        assert send(1, "chat", body="hi") == "hi"
        assert send(2, endpoint="chat") == ""
        assert send(user_id=1, endpoint="upload") == ""
        with pytest.raises(RateLimitExceeded):
            send(1, "chat", "again")
        assert sent == [(1, "chat"), (2, "chat"), (1, "upload")]
        assert sorted(raw.keys("*")) == ["rate:api:1:chat", "rate:api:1:upload", "rate:api:2:chat"]

    def test_key_and_cost_functions(self, flavor: Flavor, raw: redis.Redis) -> None:
        """key= and cost= are functions of the arguments; a denied cost runs nothing."""
        calls: list[str] = []

        @limited(
            flavor,
            10,
            key=lambda user_id, prompt: f"rate:ai:{user_id}:tokens",
            cost=lambda user_id, prompt: len(prompt),
        )
        def ask(user_id: int, prompt: str) -> str:
            calls.append(prompt)
            return prompt.upper()

        assert ask(1, "abcdef") == "ABCDEF"
        with pytest.raises(RateLimitExceeded) as caught:
            ask(1, "abcde")
        assert (caught.value.decision.cost, caught.value.decision.count) == (5, 6)
        assert ask(1, "abcd") == "ABCD"
        assert ask(2, "x" * 10) == "X" * 10
        with pytest.raises(RateLimitExceeded) as too_long:
            ask(3, "x" * 11)
        assert too_long.value.retry_after == math.inf
        assert calls == ["abcdef", "abcd", "x" * 10]
        assert (raw.zcard("rate:ai:1:tokens"), raw.zcard("rate:ai:2:tokens")) == (10, 10)
        assert raw.exists("rate:ai:3:tokens") == 0

    def test_key_function_may_return_a_schema(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A key function may return a key schema instance."""

        @limited(flavor, 1, key=lambda user_id: RateLimitUploadKey(user_id=user_id))
        def upload(user_id: int) -> None:
            pass

        upload(7)
        with pytest.raises(RateLimitExceeded):
            upload(7)
        assert raw.keys("*") == ["rate:upload:7"]

    def test_several_limits(self, flavor: Flavor, raw: redis.Redis) -> None:
        """More limits are checked with the first, atomically; the binding one is reported."""
        calls: list[None] = []

        @limited(flavor, Limit(2, 600), Limit(3, 3600), key="rate:multi")
        def ping() -> None:
            calls.append(None)

        ping()
        ping()
        with pytest.raises(RateLimitExceeded) as caught:
            ping()
        assert (caught.value.decision.limit, caught.value.decision.window) == (2, 600)
        assert len(calls) == 2
        assert (
            raw.zcard(several(raw, "rate:multi", "2/600s")),
            raw.zcard(several(raw, "rate:multi", "3/3600s")),
        ) == (2, 2)

    def test_bad_cost_from_function(self, flavor: Flavor) -> None:
        """A cost function returning a non-positive int is rejected; the body does not run."""
        calls: list[int] = []

        @limited(flavor, 5, cost=lambda n: n)
        def work(n: int) -> None:
            calls.append(n)

        with pytest.raises(InvalidInputError, match="cost"):
            work(0)
        assert calls == []

    def test_metadata_kept(self) -> None:
        """functools.wraps: name, doc, module, qualname, __wrapped__, signature, and an async
        function stays a coroutine function."""

        def plain(user_id: int, endpoint: str = "chat") -> str:
            """Plain doc."""
            return endpoint

        async def coro(user_id: int) -> int:
            """Async doc."""
            return user_id

        for fn in (plain, coro):
            wrapped = rate_limited(5)(fn)  # binds no connection until called
            assert wrapped is not fn
            assert inspect.unwrap(wrapped) is fn
            for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
                assert getattr(wrapped, attribute) == getattr(fn, attribute)
            assert inspect.signature(wrapped) == inspect.signature(fn)
            assert inspect.iscoroutinefunction(wrapped) is inspect.iscoroutinefunction(fn)

    def test_configuration_errors_at_decoration(self) -> None:
        """A schema field the function lacks, a bad limit or a bad key: ConfigurationError."""

        def by_user(user_id: int) -> None:
            pass

        with pytest.raises(ConfigurationError, match="endpoint"):
            rate_limited(5, key=RateLimitApiKey)(by_user)
        with pytest.raises(ConfigurationError, match="limit"):
            rate_limited(0)
        with pytest.raises(ConfigurationError, match="window"):
            rate_limited(5, window=0)
        with pytest.raises(ConfigurationError, match="key"):
            rate_limited(5, key=42)(by_user)  # type: ignore[arg-type]


@pytest.fixture
def no_global_connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No REDIS_* variable leaks in; no global connection before or after the test."""
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NotInitializedError):
        arketic_cache.sync_rate_limiter.is_allowed("k", 1)
    yield
    close_redis_sync()
    with pytest.raises(NotInitializedError):
        arketic_cache.sync_rate_limiter.is_allowed("k", 1)


@pytest.mark.usefixtures("no_global_connection")
class TestGlobalLimiters:
    """``rate_limiter`` / ``sync_rate_limiter`` and a connection-less @rate_limited."""

    def test_sync_rate_limiter(self) -> None:
        """After init_redis_sync the blocking global limiter and decorator work."""
        try:
            init_redis_sync(f"memory://test-{uuid.uuid4().hex}")
            limiter = arketic_cache.sync_rate_limiter
            assert [limiter.is_allowed("g", 2) for _ in range(3)] == [
                (True, 1, 1),
                (True, 2, 0),
                (False, 2, 0),
            ]
            assert limiter.window_size == 60
            assert limiter.get_info()["degraded_decisions"] == 0

            @rate_limited(1, key="g:decorated")
            def once() -> str:
                return "ran"

            assert once() == "ran"
            with pytest.raises(RateLimitExceeded):
                once()
        finally:
            close_redis_sync()

    def test_async_rate_limiter(self) -> None:
        """After await init_redis the async global limiter and decorator work."""

        @rate_limited(1, key="g:decorated")
        async def once() -> str:
            return "ran"

        async def main() -> None:
            await init_redis(f"memory://test-{uuid.uuid4().hex}")
            try:
                limiter = arketic_cache.rate_limiter
                assert await limiter.is_allowed("g", 1) == (True, 1, 0)
                assert await limiter.is_allowed("g", 1) == (False, 1, 0)
                decision = await limiter.quota("g:month", 5, cost=2)
                assert (decision.allowed, decision.count, decision.degraded) == (True, 2, False)
                assert await once() == "ran"
                with pytest.raises(RateLimitExceeded):
                    await once()
            finally:
                await close_redis()

        asyncio.run(main())
