"""The demo behind ``make demo``: each operation of the layer, with what it returned."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from pydantic import BaseModel

from ._cache import RedisCache
from ._cached import cached
from ._catalogue import ChatMessagesKey, KBSearchKey, RateLimitApiKey, UserPermissionsKey
from ._connection import RedisConnection, close_redis, init_redis
from ._core._ratelimit import Limit, rate_limit_headers
from ._core._session import SessionData
from ._keys import HashKey, StringKey, stable_hash
from ._ratelimit import RedisRateLimiter
from ._repositories import HashRepository, ListRepository, SetRepository, StringRepository
from ._session import RedisSessionManager
from ._ttl import TTL

__all__ = ["main"]

EMBEDDED_URL = "memory://demo"


def _show(label: str, value: Any) -> None:
    print(f"  {label:<46} -> {value!r}")


async def _cache_demo() -> None:
    url = os.environ.get("REDIS_URL") or EMBEDDED_URL
    conn = await init_redis(url=url)
    if url == EMBEDDED_URL:
        print("REDIS_URL is unset: using the embedded in-process backend (memory://, fakeredis).")
    else:
        print(f"Using Redis at {conn.settings.display_url}")
    cache = RedisCache(key_prefix="demo:")
    print("\nCache (RedisCache, JSON values, a TTL on every write):")
    profile = {"name": "Ada Lovelace", "role": "admin", "tags": ["math", "engines"]}
    _show(
        "set('user:123:profile', {...}, ttl=300)",
        await cache.set("user:123:profile", profile, ttl=300),
    )
    _show("get('user:123:profile')", await cache.get("user:123:profile"))
    _show("get('user:999:profile')  (a miss)", await cache.get("user:999:profile"))
    _show("exists('user:123:profile')", await cache.exists("user:123:profile"))
    _show("increment('stats:logins')", await cache.increment("stats:logins"))
    _show("increment('stats:logins', 5)", await cache.increment("stats:logins", 5))
    _show("expire('stats:logins', 60)", await cache.expire("stats:logins", 60))
    _show("expire('nothing:here', 60)  (missing key)", await cache.expire("nothing:here", 60))
    users = {f"user:{i}:profile": {"id": i} for i in range(1, 4)}
    _show("set_many(3 profiles)", await cache.set_many(users, ttl=120))
    _show(
        "get_many(['user:1:profile', 'user:7:profile'])",
        await cache.get_many(["user:1:profile", "user:7:profile"]),
    )
    _show("get_keys('user:*:profile')", await cache.get_keys("user:*:profile"))
    _show("flush_pattern('user:*')", await cache.flush_pattern("user:*"))
    _show("get_keys('user:*')  (after the flush)", await cache.get_keys("user:*"))
    _show("delete('stats:logins')", await cache.delete("stats:logins"))
    info = await cache.get_info()
    print(
        "\nget_info():"
        + (
            "  (the embedded backend has no INFO: server fields are None)"
            if conn.backend == "memory"
            else ""
        )
    )
    for field in (
        "used_memory_human",
        "connected_clients",
        "keyspace_hits",
        "hit_rate",
        "persistence",
    ):
        _show(field, info[field])
    _show("client counters", info["client"])
    await _repository_demo()
    await _cached_demo(conn)
    await _rate_limit_demo()
    await _session_demo()
    removed = await cache.flush_pattern("*", allow_all=True)
    print(f"\nCleaned up the {removed} demo keys (prefix 'demo:').")
    await close_redis()


async def _cached_demo(conn: RedisConnection) -> None:
    print("\n@cached (L1 in process over Redis L2, one computation per key):")
    calls: list[str] = []

    @cached(ttl=TTL.AI_RESPONSE, namespace="demo:answer")
    async def answer(prompt: str, temperature: float = 0.0) -> dict[str, str]:
        calls.append(prompt)
        return {"prompt": prompt, "answer": prompt[::-1]}

    first = await asyncio.gather(*(answer("what is redis?") for _ in range(5)))
    _show("5 concurrent calls on a cold key", f"{len(calls)} computation, {first[0]}")
    await answer(prompt="what is redis?", temperature=0.0)
    _show("answer(prompt=..., temperature=0.0): same key", f"{len(calls)} computation")
    _show("answer.cache_info()", answer.cache_info())
    _show("answer.invalidate('what is redis?')", await answer.invalidate("what is redis?"))
    await answer("what is redis?")
    _show("after invalidate", f"{len(calls)} computations")
    leftovers = [key async for key in conn.client.scan_iter("cached:demo*")]
    if leftovers:
        await conn.client.unlink(*leftovers)


async def _rate_limit_demo() -> None:
    print("\nRate limiting (exact sliding window, one script on Redis' clock):")
    limiter = RedisRateLimiter(window_size=60, key_prefix="demo:")
    key = RateLimitApiKey(user_id=123, endpoint="chat")
    for _ in range(4):
        _show(f"is_allowed({key.render()!r}, limit=3)", await limiter.is_allowed(key, 3))
    tokens = await limiter.check("rate:ai:123:tokens", Limit(10, 1), Limit(50, 60), cost=8)
    _show("check(..., 10/1s and 50/60s, cost=8).remaining", tokens.remaining)
    denied = await limiter.check("rate:ai:123:tokens", Limit(10, 1), Limit(50, 60), cost=5)
    _show("the same with cost=5: allowed", denied.allowed)
    _show("  binding limit, retry_after (s)", (denied.limit, round(denied.retry_after, 2)))
    _show("  headers", rate_limit_headers(denied))
    _show(
        "refund(the first, 6), then cost=5 allowed",
        (
            await limiter.refund(tokens, 6),
            (
                await limiter.check("rate:ai:123:tokens", Limit(10, 1), Limit(50, 60), cost=5)
            ).allowed,
        ),
    )
    quota = await limiter.quota("rate:ai:org7:monthly", 1_000_000, cost=1200)
    _show("quota(org, 1_000_000/month, cost=1200)", (quota.count, quota.remaining))


async def _session_demo() -> None:
    print("\nSessions (ids drawn by the manager, stored hashed; per-user index; refresh tokens):")
    sessions = RedisSessionManager(key_prefix="demo:")
    data = {"user_id": "u-123", "email": "ada@example.com", "role": "user"}
    session_id = await sessions.new_session(data)
    assert session_id is not None
    _show("new_session({user_id, email, role})", f"{session_id[:8]}... ({len(session_id)} chars)")
    _show("get_session(id)", await sessions.get_session(session_id))
    _show(
        "update_session(id, {'role': 'admin'})",
        await sessions.update_session(session_id, {"role": "admin"}),
    )
    _show(
        "get_session_data(id).role",
        (await sessions.get_session_data(session_id) or SessionData()).role,
    )
    _show("extend_session(id)", await sessions.extend_session(session_id))
    rotated = await sessions.rotate_session(session_id)
    _show("rotate_session(id): the old id now reads", await sessions.get_session(session_id))
    assert rotated is not None
    token = await sessions.issue_refresh_token(rotated)
    assert token is not None
    fresh = await sessions.refresh_session(token)
    _show("refresh_session(token): new session + token", fresh is not None)
    _show("refresh_session(the same token again)", await sessions.refresh_session(token))
    _show(
        "  reuse revoked the family: the new session",
        await sessions.get_session(fresh[0]) if fresh else None,
    )
    for _ in range(2):
        await sessions.new_session(data)
    _show("get_user_sessions('u-123')", len(await sessions.get_user_sessions("u-123")))
    _show(
        "delete_user_sessions('u-123')  (everywhere)", await sessions.delete_user_sessions("u-123")
    )


class Profile(BaseModel):
    """A user profile, for the repository demo."""

    name: str
    plan: str = "free"
    logins: int = 0


class ProfileKey(StringKey[Profile]):
    """``user:{user_id}:profile`` holding a Profile (API responses: 5 min)."""

    template = "user:{user_id}:profile"
    ttl = TTL.API_RESPONSE
    user_id: int


class ProfileRecordKey(HashKey[Profile]):
    """``user:{user_id}:record``: the same model as hash fields."""

    template = "user:{user_id}:record"
    user_id: int


async def _repository_demo() -> None:
    print("\nKey schemas (typed, escaped, injective):")
    _show("ProfileKey(user_id=123).render()", ProfileKey(user_id=123).render())
    query = stable_hash({"q": "redis ttl", "filters": {"lang": "en"}})
    _show("KBSearchKey(kb_id=7, query_hash=...)", KBSearchKey(kb_id=7, query_hash=query).render())
    _show(
        "UserPermissionsKey(user_id='1*:x').render()", UserPermissionsKey(user_id="1*:x").render()
    )
    _show("ChatMessagesKey.pattern(chat_id='1*')", ChatMessagesKey.pattern(chat_id="1*"))

    print("\nTyped repositories (TTL from the schema, set with the data):")
    profiles = StringRepository(ProfileKey, key_prefix="demo:")
    await profiles.set(ProfileKey(user_id=123), Profile(name="Ada"))
    _show(
        "StringRepository.get(ProfileKey(user_id=123))", await profiles.get(ProfileKey(user_id=123))
    )
    _show("its TTL (TTL.API_RESPONSE)", profiles.ttl)
    records = HashRepository(ProfileRecordKey, key_prefix="demo:")
    await records.set(ProfileRecordKey(user_id=1), Profile(name="Bo"))
    await records.update(ProfileRecordKey(user_id=1), {"logins": 3})
    _show("HashRepository after update(logins=3)", await records.get(ProfileRecordKey(user_id=1)))
    chat = ListRepository(ChatMessagesKey, key_prefix="demo:")
    for i in range(5):
        await chat.push(ChatMessagesKey(chat_id=456), {"text": f"message {i}"}, max_length=3)
    _show("ListRepository: last 3 chat messages", await chat.range(ChatMessagesKey(chat_id=456)))
    permissions = SetRepository(UserPermissionsKey, key_prefix="demo:")
    await permissions.add(UserPermissionsKey(user_id=123), "read", "write")
    _show(
        "SetRepository.contains(..., 'write')",
        await permissions.contains(UserPermissionsKey(user_id=123), "write"),
    )


def main(argv: list[str]) -> int:
    """Run the demo named in ``argv`` (only ``demo`` for now)."""
    if argv != ["demo"]:
        print("usage: python -m arketic_cache demo", file=sys.stderr)
        return 2
    asyncio.run(_cache_demo())
    return 0
