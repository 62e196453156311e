"""The demo behind ``make demo``: each operation of the layer, with what it returned and why.

Every line the demo prints is one of:

- blank;
- a heading: not indented, ending with ``:``;
- a result: two spaces, what was called, `` -> `` and the value it returned;
- a note: four spaces and prose, saying what a number means or where it came from; the
  library's own log records (the ``arketic_cache`` logger) are notes too, ``logged (level): ...``,
  printed under the call during which they were emitted.

The demo runs on the embedded backend unless ``REDIS_URL`` is set. When that Redis cannot be
reached it goes on anyway, to show the degradation: the calls return the spec's defaults, no
call raises, and the demo exits with 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel

from ._cache import RedisCache
from ._cached import cached
from ._catalogue import ChatMessagesKey, KBSearchKey, RateLimitApiKey, UserPermissionsKey
from ._connection import close_redis, current_connection, init_redis
from ._core._ratelimit import Decision, Limit, rate_limit_headers
from ._core._session import SessionData
from ._exceptions import BackendError
from ._keys import HashKey, StringKey, stable_hash
from ._ratelimit import RedisRateLimiter
from ._repositories import HashRepository, ListRepository, SetRepository, StringRepository
from ._session import RedisSessionManager
from ._ttl import TTL

__all__ = ["main"]

EMBEDDED_URL = "memory://demo"
PREFIX = "demo:"


class _Logged(logging.Handler):
    """Keeps the library's log records until the demo prints them as notes.

    Records may come from the library's threads (the invalidation listener); only the demo's
    own thread prints, so a record never lands inside another line.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._lock = threading.Lock()
        self._records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f" ({type(exc).__name__}: {exc})"
        with self._lock:
            self._records.append(f"logged ({record.levelname.lower()}): {text}")

    def take(self) -> list[str]:
        with self._lock:
            records, self._records = self._records, []
        return records


_logged = _Logged()


@contextmanager
def _narrating_logs() -> Iterator[None]:
    """Route the ``arketic_cache`` logger into the demo's notes, and restore it afterwards."""
    logger = logging.getLogger("arketic_cache")
    propagate, level = logger.propagate, logger.level
    logger.addHandler(_logged)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(_logged)
        logger.propagate, logger.level = propagate, level
        _logged.take()


def _flush_logs() -> None:
    for record in _logged.take():
        print(f"    {record}")


def _heading(text: str, before: str = "\n") -> None:
    print(f"{before}{text}:")
    _flush_logs()


def _show(label: str, value: Any, *notes: str) -> None:
    print(f"  {label:<46} -> {value!r}")
    _flush_logs()
    for note in notes:
        _note(note)


def _note(text: str) -> None:
    print(f"    {text}")


async def _demo() -> None:
    url = os.environ.get("REDIS_URL") or EMBEDDED_URL
    try:
        await init_redis(url=url, require=True)
        reachable = True
    except BackendError as exc:
        reachable = False
        failure = str(exc.__cause__ or exc)
    conn = current_connection()
    where = conn.settings.display_url
    if url == EMBEDDED_URL:
        _heading("REDIS_URL is unset, so the demo runs on the embedded in-process backend", "")
        _note("memory://demo: a fakeredis server inside this process; set REDIS_URL to use a")
        _note("real Redis")
    elif reachable:
        _heading(f"Using Redis at {where} (from REDIS_URL)", "")
        _note(f"the demo's keys go under {PREFIX!r} (and @cached's under 'cached:demo%3Aanswer:');")
        _note(f"its clean-up at the end deletes every key under {PREFIX!r} on this server")
    else:
        _heading(f"Redis at {where} (from REDIS_URL) is unreachable", "")
        _note(f"PING at start-up failed: {failure}")
        _note("The demo goes on to show the degradation: no call below raises. Cache reads")
        _note("miss (None), writes and deletes return False, counters return None, the rate")
        _note("limiter allows each request but marks it degraded (nothing is counted), and")
        _note("session reads return None. The library's warnings show up as 'logged' notes.")
        _note("Start that Redis, or unset REDIS_URL to run on the embedded backend.")
    cache = RedisCache(key_prefix=PREFIX)
    await _cache_demo(cache, reachable)
    await _info_demo(cache, conn.backend == "memory", reachable)
    _schema_demo()
    await _repository_demo()
    await _cached_demo()
    await _rate_limit_demo()
    await _session_demo()
    _heading(f"Clean-up (through the library, so it degrades too; keys under {PREFIX!r})")
    left = await cache.get_keys("*")
    _show("get_keys('*')", left, f"the {len(left)} keys the sections above left behind")
    removed = await cache.flush_pattern("*", allow_all=True)
    _show("flush_pattern('*', allow_all=True)", removed, "the number of keys deleted")
    if not reachable:
        _heading("Redis was unreachable throughout")
        _note("Every result above is the library's degraded default; nothing was stored.")
    await close_redis()
    _flush_logs()


def _either(ok: bool, yes: str, no: str) -> str:
    return yes if ok else no


async def _cache_demo(cache: RedisCache, reachable: bool) -> None:
    _heading("Cache (RedisCache, JSON values, a TTL on every write)")
    failed = "Redis failed: "
    profile = {"name": "Ada Lovelace", "role": "admin", "tags": ["math", "engines"]}
    stored = await cache.set("user:123:profile", profile, ttl=300)
    _show(
        "set('user:123:profile', {...}, ttl=300)",
        stored,
        _either(stored, "stored, expiring in 300 s", failed + "nothing stored"),
    )
    _show("get('user:123:profile')", await cache.get("user:123:profile"))
    _show("get('user:999:profile')  (a miss)", await cache.get("user:999:profile"))
    _show("exists('user:123:profile')", await cache.exists("user:123:profile"))
    count = await cache.increment("stats:logins")
    _show(
        "increment('stats:logins')",
        count,
        _either(count is not None, "a new counter starts from 0: 0 + 1", failed + "no count"),
    )
    count = await cache.increment("stats:logins", 5)
    _show("increment('stats:logins', 5)", count, _either(count is not None, "1 + 5", failed[:-2]))
    _show("expire('stats:logins', 60)", await cache.expire("stats:logins", 60))
    _show("expire('nothing:here', 60)  (missing key)", await cache.expire("nothing:here", 60))
    users = {f"user:{i}:profile": {"id": i} for i in range(1, 4)}
    _show("set_many(user:1..3:profile, ttl=120)", await cache.set_many(users, ttl=120))
    _show(
        "get_many(['user:1:profile', 'user:7:profile'])",
        await cache.get_many(["user:1:profile", "user:7:profile"]),
        _either(reachable, "only the keys found: user:7 was never set", failed + "none found"),
    )
    found = await cache.get_keys("user:*:profile")
    _show(
        "get_keys('user:*:profile')",
        found,
        _either(
            reachable,
            f"{len(found)} keys: user:123 from set() and user:1..3 from set_many()",
            failed + "none listed",
        ),
    )
    _show(
        "flush_pattern('user:*')",
        await cache.flush_pattern("user:*"),
        "the number of keys deleted: the ones listed above",
    )
    _show("get_keys('user:*')  (after the flush)", await cache.get_keys("user:*"))
    deleted = await cache.delete("stats:logins")
    _show(
        "delete('stats:logins')",
        deleted,
        _either(deleted, "True: it existed", "False: it did not exist, or Redis failed"),
    )


#: What each of the client counters in ``get_info()['client']`` counts.
_CLIENT_COUNTERS = {
    "hits": "this cache's lookups that found a value (get and get_many, per key)",
    "misses": "this cache's lookups that found nothing (failed calls count as neither)",
    "hit_rate": "hits / (hits + misses); None before any lookup",
    "decode_errors": "stored values that failed to decode, read as misses",
    "errors": "Redis calls on this connection that failed and returned the default",
    "short_circuits": "calls not sent at all while the circuit breaker was open",
    "pool_exhausted": "calls that found no free connection in time",
    "breaker": "circuit breaker: closed (calls go to Redis) or open (they skip it)",
}
#: Where the cache section's hits and misses came from, when Redis answered.
_HERE = {
    "hits": ("here: get('user:123:profile'), and user:1 in get_many",),
    "misses": ("here: get('user:999:profile'), and user:7 in get_many",),
}


async def _info_demo(cache: RedisCache, embedded: bool, reachable: bool) -> None:
    info = await cache.get_info()
    if embedded:
        _heading("get_info(): the embedded backend has no INFO, so its server fields are None")
    elif reachable:
        _heading("get_info(): the server's INFO (all of its clients), then this client's counters")
    else:
        _heading("get_info(): Redis is unreachable, so its server fields are None")
    hit_rate = info["hit_rate"]
    _show("used_memory_human", info["used_memory_human"], "memory the server uses")
    _show("connected_clients", info["connected_clients"], "clients connected, the demo included")
    _show("keyspace_hits", info["keyspace_hits"], "lookups that found a key, since it started")
    _show(
        "hit_rate",
        None if hit_rate is None else round(hit_rate, 3),
        "keyspace_hits / (keyspace_hits + keyspace_misses)",
    )
    _show("persistence", info["persistence"], "aof, rdb, or 'none observed' (no AOF, no save)")
    here = _HERE if reachable else {}
    for name, value in info["client"].items():
        if name in _CLIENT_COUNTERS:
            shown = round(value, 3) if isinstance(value, float) else value
            _show(f"client {name}", shown, _CLIENT_COUNTERS[name], *here.get(name, ()))
    if not reachable:
        settings = cache.connection.settings
        _note(
            f"the breaker opens after {settings.breaker_threshold} failed calls in a row: for the"
        )
        _note(
            f"next {settings.breaker_cooldown:g} s calls skip Redis at once (short_circuits) rather"
        )
        _note("than each waiting for its own failure; then one call tries Redis again")


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


def _schema_demo() -> None:
    _heading("Key schemas (typed, escaped, injective)")
    _show("ProfileKey(user_id=123).render()", ProfileKey(user_id=123).render())
    query = stable_hash({"q": "redis ttl", "filters": {"lang": "en"}})
    _show(
        "KBSearchKey(kb_id=7, query_hash=...)",
        KBSearchKey(kb_id=7, query_hash=query).render(),
        "query_hash: stable_hash() of the query and filters (the same query, the same key)",
    )
    _show(
        "UserPermissionsKey(user_id='1*:x').render()",
        UserPermissionsKey(user_id="1*:x").render(),
        "* and : escaped (%2A, %3A): user input cannot act as a glob or a separator",
    )
    _show("ChatMessagesKey.pattern(chat_id='1*')", ChatMessagesKey.pattern(chat_id="1*"))


async def _repository_demo() -> None:
    _heading("Typed repositories (TTL from the schema, set with the data)")
    profiles = StringRepository(ProfileKey, key_prefix=PREFIX)
    await profiles.set(ProfileKey(user_id=123), Profile(name="Ada"))
    _show(
        "StringRepository.get(ProfileKey(user_id=123))", await profiles.get(ProfileKey(user_id=123))
    )
    _show("its TTL (TTL.API_RESPONSE)", profiles.ttl, "seconds: 5 min, for API responses")
    records = HashRepository(ProfileRecordKey, key_prefix=PREFIX)
    await records.set(ProfileRecordKey(user_id=1), Profile(name="Bo"))
    await records.update(ProfileRecordKey(user_id=1), {"logins": 3})
    _show("HashRepository after update(logins=3)", await records.get(ProfileRecordKey(user_id=1)))
    chat = ListRepository(ChatMessagesKey, key_prefix=PREFIX)
    for i in range(5):
        await chat.push(ChatMessagesKey(chat_id=456), {"text": f"message {i}"}, max_length=3)
    _show(
        "ListRepository: 5 pushes with max_length=3",
        messages := await chat.range(ChatMessagesKey(chat_id=456)),
        _either(
            bool(messages),
            "the list keeps the newest 3: messages 0 and 1 were trimmed",
            "Redis failed: nothing stored, nothing read",
        ),
    )
    permissions = SetRepository(UserPermissionsKey, key_prefix=PREFIX)
    await permissions.add(UserPermissionsKey(user_id=123), "read", "write")
    _show(
        "SetRepository.contains(..., 'write')",
        await permissions.contains(UserPermissionsKey(user_id=123), "write"),
    )


async def _cached_demo() -> None:
    _heading("@cached (L1 in process over Redis L2, one computation per key)")
    calls: list[str] = []

    @cached(ttl=TTL.AI_RESPONSE, namespace="demo:answer")
    async def answer(prompt: str, temperature: float = 0.0) -> dict[str, str]:
        calls.append(prompt)
        return {"prompt": prompt, "answer": prompt[::-1]}

    first = await asyncio.gather(*(answer("what is redis?") for _ in range(5)))
    _show(
        "5 concurrent answer('what is redis?')",
        first[0],
        f"the function ran {_times(len(calls))}: the other calls got its result",
    )
    await answer(prompt="what is redis?", temperature=0.0)
    _show(
        "answer(prompt=..., temperature=0.0)",
        f"computed {_times(len(calls))} so far",
        "the same arguments bound by name: the same key, so no new computation",
    )
    info = answer.cache_info()
    _show("answer.cache_info()", info)
    _note("l1_hits: calls answered from this process's memory; l2_hits: from Redis;")
    _note("misses: calls that ran the function; errors: Redis calls that failed (the call")
    _note("still returned the value); l1_size: entries in memory, one per call shape (by")
    _note(f"position, by name); coherence: how L1 learns of writes elsewhere ({info.coherence!r}).")
    dropped = await answer.invalidate("what is redis?")
    _show(
        "answer.invalidate('what is redis?')",
        dropped,
        _either(
            dropped,
            "dropped from L1 and from Redis",
            "dropped from L1; False: no entry in Redis was deleted (Redis failed)",
        ),
    )
    await answer("what is redis?")
    _show("answer('what is redis?') again", f"computed {_times(len(calls))} so far")
    _note("the entry was gone, so the function ran once more")
    await answer.invalidate("what is redis?")  # the demo's clean-up, through the library


async def _rate_limit_demo() -> None:
    _heading("Rate limiting (exact sliding window, one script on Redis' clock)")
    limiter = RedisRateLimiter(window_size=60, key_prefix=PREFIX)
    key = RateLimitApiKey(user_id=123, endpoint="chat")
    _note("is_allowed returns (allowed, requests counted in the last 60 s, remaining);")
    _note("a denied request is not counted, and its remaining is 0")
    for n in range(1, 5):
        _show(f"is_allowed({key.render()!r}, limit=3) #{n}", await limiter.is_allowed(key, 3))
    if limiter.degraded_decisions:
        _note("degraded: each allowed without Redis, so none counted (0) and all 3 remain")
    limits = (Limit(10, 1), Limit(50, 60))
    _note("check() takes several limits at once: here 10 units/1 s and 50 units/60 s")
    tokens = await limiter.check("rate:ai:123:tokens", *limits, cost=8)
    _show("check(..., cost=8).remaining", tokens.remaining, *_explain(tokens))
    denied = await limiter.check("rate:ai:123:tokens", *limits, cost=5)
    _show("check(..., cost=5).allowed", denied.allowed, *_explain(denied))
    _show(
        "cost=5: binding limit, retry_after (s)",
        (denied.limit, round(denied.retry_after, 2)),
        "the limit that decided, and how long until this request would fit",
    )
    headers = rate_limit_headers(denied)
    if not headers:
        _show(
            "cost=5: rate_limit_headers(...)", headers, "none: a degraded decision counted nothing"
        )
    for name, value in headers.items():
        _show(f"cost=5: header {name}", value, _HEADERS.get(name, ""))
    if tokens.degraded:
        _note("refund(): skipped, a degraded decision recorded nothing to give back")
    else:
        refunded = await limiter.refund(tokens, 6)
        _show(
            "refund(the cost=8 request, 6)", refunded, "units given back: 2 of the 8 stay counted"
        )
        again = await limiter.check("rate:ai:123:tokens", *limits, cost=5)
        _show("check(..., cost=5) again: allowed", again.allowed, *_explain(again))
    quota = await limiter.quota("rate:ai:org7:monthly", 1_000_000, cost=1200)
    _show(
        "quota(org, 1_000_000/month, cost=1200)",
        (quota.count, quota.remaining),
        *(
            _explain(quota)
            if quota.degraded
            else ("(units used this calendar month, remaining): 1_000_000 - 1200",)
        ),
    )


#: What each rate-limit header says.
_HEADERS = {
    "RateLimit-Policy": "each limit: q units per w seconds",
    "RateLimit": "the binding limit: r units left, t seconds until it resets",
    "X-RateLimit-Limit": "the binding limit's size (for older clients)",
    "X-RateLimit-Remaining": "units left, 0 when denied",
    "X-RateLimit-Reset": "when the window resets, as a Unix time by Redis' clock",
    "Retry-After": "seconds to wait before trying again",
}


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _explain(decision: Decision) -> tuple[str, ...]:
    """Each limit's count against its size, worked out from the decision itself."""
    if decision.degraded:
        verdict = "allowed" if decision.allowed else "denied"
        return (
            f"degraded: {verdict} without Redis; nothing counted, so the count is 0 and"
            f" remaining is the whole {decision.limit}",
        )
    counts = "; ".join(
        f"{state.limit.tag}: {state.count} counted, {state.remaining} left"
        for state in decision.states
    )
    binding = decision.states[decision.binding].limit
    if decision.allowed:
        why = f"the {decision.cost} units counted in both; .remaining is the tighter one's"
    else:
        why = (
            f"{decision.cost} units do not fit the {binding.tag} limit's {decision.remaining} left,"
            " so none were counted"
        )
    return counts, why


async def _session_demo() -> None:
    _heading("Sessions (ids drawn by the manager, stored hashed; per-user index; refresh tokens)")
    sessions = RedisSessionManager(key_prefix=PREFIX)
    data = {"user_id": "u-123", "email": "ada@example.com", "role": "user"}
    session_id = await sessions.new_session(data)
    if session_id is None:
        _show("new_session({user_id, email, role})", None, "None: Redis failed, no session")
        _show(
            "get_session('x' * 43)",
            await sessions.get_session("x" * 43),
            "a session read answers None when Redis fails",
        )
        _show("get_user_sessions('u-123')", await sessions.get_user_sessions("u-123"))
        _note("the rest of this section needs a session, so it is skipped")
        return
    _show(
        "new_session({user_id, email, role})",
        f"{session_id[:8]}...",
        f"the id: {len(session_id)} chars, 256 random bits; Redis only sees its SHA-256",
    )
    _show("get_session(id)", await sessions.get_session(session_id))
    _show(
        "update_session(id, {'role': 'admin'})",
        await sessions.update_session(session_id, {"role": "admin"}),
    )
    _show(
        "get_session_data(id).role",
        (await sessions.get_session_data(session_id) or SessionData()).role,
    )
    _show("extend_session(id)", await sessions.extend_session(session_id), "idle TTL restarted")
    rotated = await sessions.rotate_session(session_id)
    _show("rotate_session(id): the old id now reads", await sessions.get_session(session_id))
    token = None if rotated is None else await sessions.issue_refresh_token(rotated)
    fresh = None if token is None else await sessions.refresh_session(token)
    _show(
        "refresh_session(token): new session + token",
        fresh is not None,
        "the rotated session and the token end; a new pair replaces them",
    )
    if token is not None:
        _show("refresh_session(the same token again)", await sessions.refresh_session(token))
    _show(
        "reuse revoked the family: the new session",
        await sessions.get_session(fresh[0]) if fresh else None,
    )
    left = len(await sessions.get_user_sessions("u-123"))
    _show(
        "get_user_sessions('u-123'): sessions now",
        left,
        "the first session was rotated, refreshed, then revoked with its family",
    )
    for device in ("phone", "laptop"):
        await sessions.new_session({**data, "device": device})
    _show(
        "after 2 more new_session() (phone, laptop)",
        len(await sessions.get_user_sessions("u-123")),
        "the number of live sessions of u-123: the two just created",
    )
    _show(
        "delete_user_sessions('u-123')  (everywhere)",
        await sessions.delete_user_sessions("u-123"),
        "the number of sessions it ended",
    )


def main(argv: list[str]) -> int:
    """Run the demo named in ``argv`` (only ``demo`` for now)."""
    if argv != ["demo"]:
        print("usage: python -m arketic_cache demo", file=sys.stderr)
        return 2
    with _narrating_logs():
        asyncio.run(_demo())
    return 0
