"""``@rate_limited`` and the rate limiters as users see them: signatures and results are kept."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, assert_type

from arketic_cache import (
    Decision,
    Limit,
    LimitState,
    RateLimitApiKey,
    RateLimitExceeded,
    RateLimitKey,
    RateLimitOrgMonthlyKey,
    RateLimitUploadKey,
    RedisRateLimiter,
    SyncRedisRateLimiter,
    rate_limit_headers,
    rate_limited,
)
from tests.typing.typing_fixtures import Profile


@rate_limited(5, window=60, key=RateLimitApiKey)
def send(user_id: int, endpoint: str, *, urgent: bool = False) -> str:
    return endpoint


@rate_limited(
    Limit(10, 1),
    Limit(100, 60),
    key=lambda user_id, prompt: f"rate:ai:{user_id}:tokens",
    cost=lambda user_id, prompt: len(prompt),
)
async def ask(user_id: int, prompt: str) -> list[str]:
    return [prompt]


@rate_limited(Limit.monthly(1000), key="rate:ai:org1:monthly", fail_closed=True)
def profile(user_id: int) -> Profile | None:
    return None


class LoginKey(RateLimitKey):
    """A rate-limit key of the application's own."""

    template = "rate:login:{email}"
    email: str


@rate_limited(5, window=900, key=LoginKey, fail_closed=True)
def login(email: str, password: str) -> bool:
    return bool(password)


class Uploads:
    @rate_limited(3, window=0.5, key=RateLimitUploadKey)
    def upload(self, user_id: int, data: bytes) -> int:
        return len(data)

    @rate_limited(Limit(1000, 3600, mode="buckets"), cost=2)
    async def download(self, user_id: int) -> bytes:
        return b""


def sync_calls(limiter: SyncRedisRateLimiter) -> None:
    sent: str = send(1, "chat")
    assert_type(send(1, endpoint="chat", urgent=True), str)
    assert_type(profile(1), Profile | None)
    size: int = Uploads().upload(1, b"data")
    assert_type(Uploads().upload(user_id=1, data=b""), int)

    allowed, count, remaining = limiter.is_allowed("rate:api:1:chat", 100)
    assert_type(allowed, bool)
    assert_type(count, int)
    assert_type(remaining, int)
    decision = limiter.check(RateLimitApiKey(user_id=1, endpoint="chat"), Limit(10, 1), 100)
    assert_type(decision, Decision)
    assert_type(decision.retry_after, float)
    assert_type(decision.states, tuple[LimitState, ...])
    assert_type(limiter.check("k", 10, cost=3), Decision)
    assert_type(limiter.check(LoginKey(email="ada@example.com"), 5), Decision)
    assert_type(limiter.quota(RateLimitOrgMonthlyKey(org_id=7), 5_000_000), Decision)
    assert_type(login("ada@example.com", "pw"), bool)
    assert_type(limiter.quota("rate:ai:org1:monthly", 5_000_000, cost=1200), Decision)
    assert_type(limiter.refund(decision), int)
    assert_type(limiter.refund(decision, 2), int)
    assert_type(rate_limit_headers(decision), dict[str, str])
    print(sent, size)


async def async_calls(limiter: RedisRateLimiter) -> None:
    pending: Coroutine[Any, Any, list[str]] = ask(1, "hi")
    answers: list[str] = await pending
    assert_type(await ask(1, prompt="x"), list[str])
    data: bytes = await Uploads().download(1)

    allowed, count, remaining = await limiter.is_allowed("rate:api:1:chat", 100)
    assert_type(allowed, bool)
    assert_type(await limiter.check("k", Limit(10, 1), Limit.monthly(5)), Decision)
    assert_type(await limiter.quota("k", 5), Decision)
    decision = await limiter.check("k", 100, cost=10)
    assert_type(await limiter.refund(decision, 4), int)
    try:
        send(1, "chat")
    except RateLimitExceeded as exc:
        assert_type(exc.decision, Decision)
        assert_type(exc.retry_after, float)
    print(answers, data, count, remaining)
