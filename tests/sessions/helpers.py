"""What the session tests share: the spec's data, ids and their hashes, the keys behind a
session, the manager's clock seam anchored at the server's time, and managers of a flavour."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from typing import Any

import pytest
import redis

from arketic_cache import RedisSessionManager, SyncRedisSessionManager

from ..helpers import Flavor

SECOND = 1000  # the seam's unit: milliseconds


HOUR_MS = 3600 * SECOND


REFRESH_TTL_MS = 14 * 86400 * SECOND


#: The spec's "Session Data Structure", verbatim.
SPEC_DATA: dict[str, Any] = {
    "user_id": "uuid",
    "email": "user@example.com",
    "role": "user",
    "login_time": "2024-01-01T00:00:00Z",
    "ip_address": "192.168.1.1",
    "user_agent": "Mozilla/5.0...",
    "last_activity": "2024-01-01T00:00:00Z",
    "metadata": {"device_type": "desktop", "browser": "chrome", "os": "windows"},
}


URLSAFE_43 = re.compile(r"[A-Za-z0-9_-]{43}")


def new_id() -> str:
    """A caller-chosen session id as an application would draw it (256 bits, 43 chars)."""
    return secrets.token_urlsafe(32)


def id_whose_hash(*, starts_with_zero: bool) -> str:
    """A fresh id whose SHA-256 (hex) starts, or does not start, with 0."""
    while True:
        session_id = new_id()
        if (sha(session_id)[0] == "0") == starts_with_zero:
            return session_id


def sha(secret: str) -> str:
    """The SHA-256 (hex) of an id or token, computed by the test."""
    return hashlib.sha256(secret.encode()).hexdigest()


def key_of(session_id: str, prefix: str = "") -> str:
    """Where the session of ``session_id`` lives."""
    return f"{prefix}session:{sha(session_id)}"


def member(session_id: str) -> str:
    """The session's member in its user's index (a JSON string of its hash)."""
    return json.dumps(sha(session_id))


def token_key(token: str) -> str:
    """Where a refresh token's record lives."""
    return f"session:refresh:{sha(token)}"


def families(raw: redis.Redis, prefix: str = "") -> set[str]:
    """The ids of every refresh-token family stored."""
    start = f"{prefix}session:refresh:family:"
    return {text(k)[len(start) :] for k in raw.keys(f"{start}*")}


def the_family(raw: redis.Redis, prefix: str = "") -> str:
    """The id of the only refresh-token family stored."""
    (family,) = families(raw, prefix)
    return family


def family_key(family: str) -> str:
    """Where a refresh-token family lives."""
    return f"session:refresh:family:{family}"


def text(value: object) -> str:
    """A reply of the ``raw`` client (decode_responses=True) as the str it is."""
    assert isinstance(value, str), value
    return value


def index_members(raw: redis.Redis, user_id: str | int) -> set[str]:
    """Every member of the user's index, live or not."""
    return {text(m) for m in raw.zrange(f"session:user:{user_id}", 0, -1)}


def indexed_families(raw: redis.Redis, user_id: str | int) -> set[str]:
    """The refresh-token families listed in the user's index (members ``"r:<id>"``)."""
    return {m[3:-1] for m in index_members(raw, user_id) if m.startswith('"r:')}


def server_ms(raw: redis.Redis) -> int:
    """The server's clock in epoch milliseconds."""
    seconds, micro = raw.time()
    return int(seconds) * SECOND + int(micro) // 1000


class FakeClock:
    """The manager's clock seam: epoch milliseconds that move only when the test says so."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float = 0, *, ms: int = 0) -> None:
        """Move time forward by ``seconds`` plus ``ms`` milliseconds."""
        self.now += round(seconds * SECOND) + ms


def server_clock(raw: redis.Redis) -> FakeClock:
    """A seam clock starting at the server's own time."""
    return FakeClock(server_ms(raw))


def manager(flavor: Flavor, ttl: float = 3600, **options: Any) -> Any:
    """A strict manager of the flavour (async bridged) on its connection unless given one."""
    options.setdefault("connection", flavor.connection)
    options.setdefault("strict", True)
    return flavor.wrap(SyncRedisSessionManager(ttl, **options), RedisSessionManager(ttl, **options))


def no_io_manager(flavor: Flavor, **options: Any) -> Any:
    """A strict manager on a dead connection: any I/O would raise ``BackendError``."""
    return manager(flavor, connection=flavor.dead_connection(), **options)


def wait_until_gone(raw: redis.Redis, key: str, limit: float = 5.0) -> None:
    """Wait until Redis reports ``key`` gone, sleeping exactly the PTTL it reports."""
    give_up = time.monotonic() + limit
    while (left := raw.pttl(key)) != -2:
        assert left >= 0, f"{key} has no TTL: it would never expire"
        assert time.monotonic() < give_up, f"{key} still there after {limit} s"
        time.sleep(max(left, 1) / SECOND)


def everything_in(raw: redis.Redis) -> list[str]:
    """Every key, and every field, member and value of every key, as text."""
    texts: list[str] = []
    for key in map(text, raw.scan_iter("*")):
        texts.append(key)
        kind = text(raw.type(key))
        if kind == "string":
            texts.append(text(raw.get(key) or ""))
        elif kind == "hash":
            for field, value in raw.hgetall(key).items():
                texts += [text(field), text(value)]
        elif kind == "zset":
            texts += [text(m) for m in raw.zrange(key, 0, -1)]
        elif kind == "list":
            texts += [text(v) for v in raw.lrange(key, 0, -1)]
        elif kind == "set":
            texts += [text(v) for v in raw.smembers(key)]
        else:
            pytest.fail(f"unexpected type {kind} at {key}")
    return texts
