"""What the session tests share: the spec's data, ids and their hashes, the keys behind a
session, the manager's clock seam anchored at the server's time, and managers of a flavour."""

from __future__ import annotations

import hashlib
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


def well_formed(secret: object) -> bool:
    """Whether an id or token is as the manager draws them: 43 URL-safe characters (on a
    cluster after a ``tttt.`` tag)."""
    if not isinstance(secret, str):
        return False
    if Layout.cluster:
        return re.fullmatch(r"[0-9a-f]{4}\.[A-Za-z0-9_-]{43}", secret) is not None
    return URLSAFE_43.fullmatch(secret) is not None


def handle(session_id: str) -> str:
    """The handle ``get_user_sessions`` gives for a session (on a cluster after its tag)."""
    return f"{tag_of(session_id)}.{sha(session_id)}" if Layout.cluster else sha(session_id)


def new_id(user: object = None) -> str:
    """A caller-chosen session id as an application would draw it (256 bits, 43 chars); on
    a cluster a user's starts with the tag of the user's slot (``session_id_prefix``)."""
    secret = secrets.token_urlsafe(32)
    return f"{user_tag(user)}.{secret}" if Layout.cluster and user is not None else secret


def id_whose_hash(*, starts_with_zero: bool, user: object = None) -> str:
    """A fresh id (of ``user``'s) whose SHA-256 (hex) starts, or does not start, with 0."""
    while True:
        session_id = new_id(user)
        if (sha(session_id)[0] == "0") == starts_with_zero:
            return session_id


def sha(secret: str) -> str:
    """The SHA-256 (hex) of an id or token, computed by the test."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Layout:
    """Where the keys of a session live: ``session:<hash>`` on a server; on a cluster in the
    slot of a tag (``session:{tttt}:<hash>``), the user's own for a user's sessions. The
    session tests' autouse fixture sets ``cluster`` for the cluster flavour."""

    cluster = False
    #: The tag of each refresh family ``families`` found (cluster only).
    family_tags: dict[str, str] = {}  # noqa: RUF012 (the layout of one test at a time)


def sessions_at(prefix: str, tag: str | None) -> str:
    """The session prefix of a tag's slot (on a server: of every session)."""
    return f"{prefix}session:" + (f"{{{tag}}}:" if Layout.cluster and tag is not None else "")


def tag_of(secret: str) -> str:
    """The tag an id or token names: its ``tttt.`` head, else its hash's first digits."""
    head = re.match(r"[0-9a-f]{4}\.", secret)
    return secret[:4] if head else sha(secret)[:4]


def user_tag(user: object) -> str:
    """The tag of a user's sessions (the first 4 digits of the SHA-256 of the user id)."""
    return sha(str(user))[:4]


def key_of(session_id: str, prefix: str = "") -> str:
    """Where the session of ``session_id`` lives."""
    return sessions_at(prefix, tag_of(session_id)) + sha(session_id)


def index_key(user: object, prefix: str = "") -> str:
    """Where a user's index lives."""
    return sessions_at(prefix, user_tag(user)) + f"user:{user}"


def member(session_id: str) -> str:
    """The session's member in its user's index: its hash, bare."""
    return sha(session_id)


def token_key(token: str, prefix: str = "") -> str:
    """Where a refresh token's record lives."""
    return sessions_at(prefix, tag_of(token)) + f"refresh:{sha(token)}"


def families(raw: redis.Redis, prefix: str = "") -> set[str]:
    """The ids of every refresh-token family stored."""
    pattern = f"{prefix}session:{{*}}:refresh:family:*" if Layout.cluster else None
    start = f"{prefix}session:refresh:family:"
    found = set()
    for key in raw.keys(pattern or f"{start}*"):
        name = text(key)
        family = name.rpartition(":")[2]
        if Layout.cluster:
            Layout.family_tags[family] = name[len(prefix) + 9 : len(prefix) + 13]
        found.add(family)
    return found


def the_family(raw: redis.Redis, prefix: str = "") -> str:
    """The id of the only refresh-token family stored."""
    (family,) = families(raw, prefix)
    return family


def family_key(family: str, prefix: str = "") -> str:
    """Where a refresh-token family lives (on a cluster: as ``families`` found it)."""
    return sessions_at(prefix, Layout.family_tags.get(family)) + f"refresh:family:{family}"


def text(value: object) -> str:
    """A reply of the ``raw`` client (decode_responses=True) as the str it is."""
    assert isinstance(value, str), value
    return value


def index_members(raw: redis.Redis, user_id: str | int) -> set[str]:
    """Every member of the user's index, live or not."""
    return {text(m) for m in raw.zrange(index_key(user_id), 0, -1)}


def indexed_families(raw: redis.Redis, user_id: str | int) -> set[str]:
    """The refresh-token families listed in the user's index (members ``r:<id>``)."""
    return {m[2:] for m in index_members(raw, user_id) if m.startswith("r:")}


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
