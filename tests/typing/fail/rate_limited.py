"""``@rate_limited`` and rate limiter misuses mypy must reject. Each offending line ends with
``# E: <code>``.

Checked by ``tests/test_typing.py``; excluded from the normal ``mypy`` run and from ruff.
"""

from __future__ import annotations

from arketic_cache import (
    ChatMessagesKey,
    Limit,
    RateLimitApiKey,
    SortedSetRepository,
    SyncRedisCache,
    UserProfileKey,
    RedisRateLimiter,
    SyncRedisRateLimiter,
    rate_limited,
)
from tests.typing.typing_fixtures import LeaderboardKey, Profile


@rate_limited(5, key=RateLimitApiKey)
def send(user_id: int, endpoint: str) -> str:
    return endpoint


@rate_limited(Limit(10, 1))
async def ask(user_id: int, prompt: str) -> list[str]:
    return [prompt]


class Uploads:
    @rate_limited(3)
    def upload(self, user_id: int, data: bytes) -> int:
        return len(data)


def calls() -> None:
    send("1", "chat")  # E: arg-type
    send(1)  # E: call-arg
    send(1, "chat", urgent=True)  # E: call-arg
    length: int = send(1, "chat")  # E: assignment
    send(1, "chat").decode()  # E: attr-defined
    Uploads().upload(1, "text")  # E: arg-type
    Uploads().upload(1, b"x", 2)  # E: call-arg


async def forgotten_await() -> None:
    answers: list[str] = ask(1, "hi")  # E: assignment
    ask(1, "hi")  # E: unused-coroutine
    await ask(1, 2)  # E: arg-type
    first: int = (await ask(1, "hi"))[0]  # E: assignment


def results(limiter: SyncRedisRateLimiter) -> None:
    allowed: str
    count: str
    allowed, count, remaining = limiter.is_allowed("k", 10)  # E: assignment
    left: str = limiter.check("k", 10).remaining  # E: assignment
    limiter.is_allowed("k", "10")  # E: arg-type
    limiter.is_allowed(Profile(name="x"), 10)  # E: arg-type
    limiter.is_allowed(UserProfileKey(user_id=1), 10)  # E: arg-type
    limiter.check(LeaderboardKey(game="g"), 10)  # E: arg-type
    limiter.quota(ChatMessagesKey(chat_id="c"), 10)  # E: arg-type
    limiter.check("k", 10, cost=1.5)  # E: arg-type
    limiter.quota("k", Limit(10))  # E: arg-type
    limiter.refund(limiter.check("k", 10), amount="all")  # E: arg-type


async def async_results(limiter: RedisRateLimiter) -> None:
    allowed, count, remaining = limiter.is_allowed("k", 10)  # E: misc
    if limiter.is_allowed("k", 10):  # E: truthy-bool
        pass
    limiter.check("k", 10).allowed  # E: attr-defined


def limits() -> None:
    Limit("10")  # E: arg-type
    Limit(10, "60")  # E: arg-type
    Limit(10, 60, mode="exact")  # E: arg-type
    SyncRedisRateLimiter(60, mode="sliding")  # E: arg-type


@rate_limited("5")  # E: arg-type
def string_limit(user_id: int) -> None:
    pass


@rate_limited(5, window="60")  # E: arg-type
def string_window(user_id: int) -> None:
    pass


@rate_limited(5, cost="2")  # E: arg-type
def string_cost(user_id: int) -> None:
    pass


@rate_limited(5, key=RateLimitApiKey(user_id=1, endpoint="chat"))  # E: arg-type
def key_instance(user_id: int) -> None:
    pass


@rate_limited(5, key=lambda user_id: 42)  # E: arg-type, return-value
def int_key(user_id: int) -> None:
    pass


@rate_limited  # E: arg-type
def no_parentheses(user_id: int) -> None:
    pass


@rate_limited(5, key=ChatMessagesKey)  # E: arg-type
def list_key(chat_id: str) -> None:
    pass


@rate_limited(5, key=lambda user_id: UserProfileKey(user_id=user_id))  # E: arg-type, return-value
def profile_key(user_id: int) -> None:
    pass


def limiter_keys_are_not_for_repositories(cache: SyncRedisCache) -> None:
    SortedSetRepository(RateLimitApiKey)  # E: type-var, arg-type
