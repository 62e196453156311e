"""Typed repositories against raw redis-py: get and set of a 1 KB model on STRING and HASH keys.

The value is ``Profile``, a pydantic model (a nested list of orders among its fields) whose
JSON is the same 1024 bytes as the cache benchmarks' value. Each floor is what a careful user
would write with redis-py alone, storing exactly what the repository stores:

- STRING: the model's JSON under one key (``SET ... EX 300``), read back with
  ``Profile.model_validate_json``;
- HASH: one hash field per model field, each its own JSON value (as ``ModelCodec`` stores
  them), replaced with ``UNLINK`` + ``HSET`` + ``EXPIRE`` in one MULTI/EXEC and read back with
  ``HGETALL``, ``json.loads`` per field and ``Profile.model_validate``.

The checked rows call the repository as users do, building the key object on every call
(``repo.get(ProfileKey(user_id=...))``); an info row reuses one key object, and another runs the
floor's code on the cache's own client (RESP3, decoded replies, no retries), which splits a gap
to the floor into client configuration and the repository layer itself. Floors use the rendered
key string, computed once. Every contender is checked before it is timed: reads must return the
stored model, and writes must leave the same bytes and TTL as the floor's write.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import redis
import redis.asyncio
from pydantic import BaseModel
from pydantic_core import to_json

from arketic_cache import (
    TTL,
    HashKey,
    HashRepository,
    RedisConnection,
    StringKey,
    StringRepository,
    SyncHashRepository,
    SyncStringRepository,
)

from .cache_bench import one_kb_value
from .clients import open_clients
from .timing import Benchmark, Contender, Role, Target, async_batch, sync_batch

__all__ = [
    "REPOSITORY_TARGET",
    "Order",
    "Profile",
    "ProfileHashKey",
    "ProfileKey",
    "repository_benchmarks",
]

REPOSITORY_TARGET = Target(1.15, "ratio", "typed repository vs raw floor")

#: The user ids whose keys the benchmarks use: reads and writes never touch the same key.
READ_ID, FLOOR_WRITE_ID, REPO_WRITE_ID, OWN_WRITE_ID = 1001, 1002, 1003, 1004


class Order(BaseModel):
    """One line of a profile's order history."""

    sku: str
    qty: int
    price: float


class Profile(BaseModel):
    """A user profile whose JSON is 1024 bytes (``one_kb_value``'s shape)."""

    id: int
    name: str
    email: str
    active: bool
    score: float
    roles: list[str]
    orders: list[Order]
    bio: str


class ProfileKey(StringKey[Profile]):
    """A profile stored as one JSON string."""

    template = "bench:profile:{user_id}"
    ttl = TTL.API_RESPONSE
    user_id: int


class ProfileHashKey(HashKey[Profile]):
    """A profile stored as a hash, one JSON value per field."""

    template = "bench:profile-hash:{user_id}"
    ttl = TTL.API_RESPONSE
    user_id: int


TTL_SECONDS = TTL.API_RESPONSE.seconds


# -- the floors' codecs: exactly what the repositories store --------------------------------------
def _hash_fields(profile: Profile) -> dict[str, bytes]:
    """Each field as its own JSON value, as ``ModelCodec.encode`` stores it."""
    return {name: to_json(value) for name, value in profile.model_dump(mode="json").items()}


def _from_bytes_hash(stored: Mapping[bytes, bytes]) -> Profile:
    """A RESP2 bytes client's HGETALL reply (field names are bytes) back into a Profile."""
    return Profile.model_validate({name.decode(): json.loads(raw) for name, raw in stored.items()})


def _from_str_hash(stored: Mapping[str, str]) -> Profile:
    """A decoding client's HGETALL reply back into a Profile."""
    return Profile.model_validate({name: json.loads(raw) for name, raw in stored.items()})


def _expect(label: str, got: object, want: object) -> None:
    if got != want:
        raise RuntimeError(
            f"{label} gave {got!r}, not {want!r}: the benchmark would be meaningless"
        )


# -- the contenders: one call per operation ------------------------------------------------
SyncCalls = dict[str, Callable[[], object]]
AsyncCalls = dict[str, Callable[[], Awaitable[object]]]
OPS = ("STRING get", "STRING set", "HASH get", "HASH set")


def _sync_raw(
    client: redis.Redis,
    profile: Profile,
    read: tuple[str, str],
    write: tuple[str, str],
    decoded: bool = False,
) -> SyncCalls:
    """The floors' code on ``client``; ``read`` and ``write`` are (string, hash) key pairs.

    ``decoded``: the client decodes replies to ``str`` (``decode_responses=True``).
    """
    (string_read, hash_read), (string_write, hash_write) = read, write
    from_hash: Callable[[Any], Profile] = _from_str_hash if decoded else _from_bytes_hash

    def string_get() -> Profile:
        return Profile.model_validate_json(client.get(string_read))  # type: ignore[arg-type]

    def string_set() -> object:
        return client.set(string_write, profile.model_dump_json(), ex=TTL_SECONDS)

    def hash_get() -> Profile:
        return from_hash(client.hgetall(hash_read))

    def hash_set() -> object:
        pipe = client.pipeline(transaction=True)
        pipe.unlink(hash_write)
        pipe.hset(hash_write, mapping=_hash_fields(profile))  # type: ignore[arg-type]
        pipe.expire(hash_write, TTL_SECONDS)
        return all(pipe.execute()[1:])

    return dict(zip(OPS, (string_get, string_set, hash_get, hash_set), strict=True))


def _async_raw(
    client: redis.asyncio.Redis,
    profile: Profile,
    read: tuple[str, str],
    write: tuple[str, str],
    decoded: bool = False,
) -> AsyncCalls:
    """The async twin of ``_sync_raw``."""
    (string_read, hash_read), (string_write, hash_write) = read, write
    from_hash: Callable[[Any], Profile] = _from_str_hash if decoded else _from_bytes_hash

    async def string_get() -> Profile:
        return Profile.model_validate_json(await client.get(string_read))  # type: ignore[arg-type]

    async def string_set() -> object:
        return await client.set(string_write, profile.model_dump_json(), ex=TTL_SECONDS)

    async def hash_get() -> Profile:
        return from_hash(await client.hgetall(hash_read))

    async def hash_set() -> object:
        pipe = client.pipeline(transaction=True)
        pipe.unlink(hash_write)
        pipe.hset(hash_write, mapping=_hash_fields(profile))  # type: ignore[arg-type]
        pipe.expire(hash_write, TTL_SECONDS)
        return all((await pipe.execute())[1:])

    return dict(zip(OPS, (string_get, string_set, hash_get, hash_set), strict=True))


def _sync_repo(conn: RedisConnection, profile: Profile) -> tuple[SyncCalls, SyncCalls]:
    """Repository calls building the key object per call, and the same reusing one."""
    strings = SyncStringRepository(ProfileKey, conn)
    hashes = SyncHashRepository(ProfileHashKey, conn)
    string_read, hash_read = ProfileKey(user_id=READ_ID), ProfileHashKey(user_id=READ_ID)
    string_write = ProfileKey(user_id=REPO_WRITE_ID)
    hash_write = ProfileHashKey(user_id=REPO_WRITE_ID)
    per_call: SyncCalls = {
        "STRING get": lambda: strings.get(ProfileKey(user_id=READ_ID)),
        "STRING set": lambda: strings.set(ProfileKey(user_id=REPO_WRITE_ID), profile),
        "HASH get": lambda: hashes.get(ProfileHashKey(user_id=READ_ID)),
        "HASH set": lambda: hashes.set(ProfileHashKey(user_id=REPO_WRITE_ID), profile),
    }
    reused: SyncCalls = {
        "STRING get": lambda: strings.get(string_read),
        "STRING set": lambda: strings.set(string_write, profile),
        "HASH get": lambda: hashes.get(hash_read),
        "HASH set": lambda: hashes.set(hash_write, profile),
    }
    return per_call, reused


def _async_repo(conn: RedisConnection, profile: Profile) -> tuple[AsyncCalls, AsyncCalls]:
    """The async twin of ``_sync_repo``."""
    strings = StringRepository(ProfileKey, conn)
    hashes = HashRepository(ProfileHashKey, conn)
    string_read, hash_read = ProfileKey(user_id=READ_ID), ProfileHashKey(user_id=READ_ID)
    string_write = ProfileKey(user_id=REPO_WRITE_ID)
    hash_write = ProfileHashKey(user_id=REPO_WRITE_ID)
    per_call: AsyncCalls = {
        "STRING get": lambda: strings.get(ProfileKey(user_id=READ_ID)),
        "STRING set": lambda: strings.set(ProfileKey(user_id=REPO_WRITE_ID), profile),
        "HASH get": lambda: hashes.get(ProfileHashKey(user_id=READ_ID)),
        "HASH set": lambda: hashes.set(ProfileHashKey(user_id=REPO_WRITE_ID), profile),
    }
    reused: AsyncCalls = {
        "STRING get": lambda: strings.get(string_read),
        "STRING set": lambda: strings.set(string_write, profile),
        "HASH get": lambda: hashes.get(hash_read),
        "HASH set": lambda: hashes.set(hash_write, profile),
    }
    return per_call, reused


# -- checks: a contender that read or wrote something else must not be timed -----------------------
def _rendered(user_id: int, prefix: str) -> tuple[str, str]:
    """The (string, hash) key strings the repositories use for ``user_id``."""
    return (
        prefix + ProfileKey(user_id=user_id).render(),
        prefix + ProfileHashKey(user_id=user_id).render(),
    )


def _check_writes(raw: redis.Redis, floor: tuple[str, str], other: tuple[str, str]) -> None:
    """``other``'s keys must hold the floor's bytes, with the schema's TTL."""
    _expect(f"STRING write to {other[0]}", raw.get(other[0]), raw.get(floor[0]))
    _expect(f"HASH write to {other[1]}", raw.hgetall(other[1]), raw.hgetall(floor[1]))
    for key in other:
        ttl = raw.ttl(key)
        _expect(f"TTL of {key} in (0, {TTL_SECONDS}]", 0 < ttl <= TTL_SECONDS, True)


async def _check(
    raw: redis.Redis,
    profile: Profile,
    contenders: Mapping[str, tuple[SyncCalls, AsyncCalls, tuple[str, str] | None]],
) -> None:
    """Reads must return the model; writes must succeed and store what the floor stores."""
    writes = [keys for _, _, keys in contenders.values() if keys is not None]
    for mode in ("sync", "async"):
        raw.unlink(*(key for pair in writes for key in pair))
        for which, (calls, acalls, _) in contenders.items():
            for op in OPS:
                got = calls[op]() if mode == "sync" else await acalls[op]()
                want = profile if op.endswith("get") else True
                _expect(f"{mode} {op} ({which})", got, want)
        floor, *others = writes
        for keys in others:
            _check_writes(raw, floor, keys)


# -- the benchmarks ------------------------------------------------------------------------------
_ROLES: dict[str, Role] = {"floor": "floor", "repo": "checked", "reused": "info", "own": "info"}
_FLOORS = {
    "STRING get": "`Profile.model_validate_json(r.get(k))`",
    "STRING set": "`r.set(k, p.model_dump_json(), ex=300)`",
    "HASH get": "HGETALL + json.loads per field + `Profile.model_validate`",
    "HASH set": "MULTI UNLINK + HSET (fields as JSON) + EXPIRE",
}
_REPOSITORIES = {
    ("STRING", "sync"): ("SyncStringRepository", "ProfileKey"),
    ("STRING", "async"): ("StringRepository", "ProfileKey"),
    ("HASH", "sync"): ("SyncHashRepository", "ProfileHashKey"),
    ("HASH", "async"): ("HashRepository", "ProfileHashKey"),
}


def _names(op: str, mode: str) -> dict[str, str]:
    kind, verb = op.split()
    repository, key = _REPOSITORIES[kind, mode]
    tail = ", p" if verb == "set" else ""
    return {
        "floor": f"{'redis-py' if mode == 'sync' else 'redis.asyncio'} {_FLOORS[op]}",
        "repo": f"{repository}.{verb}({key}(user_id=…){tail})",
        "reused": f"{repository}.{verb}(k{tail}), one key object reused",
        "own": "the floor's code on the cache's own client (RESP3, str)",
    }


async def repository_benchmarks(url: str, calls: int, stack: AsyncExitStack) -> list[Benchmark]:
    """Store the test data on the server at ``url`` and return the repository benchmarks.

    ``calls`` is the number of calls per batch; ``stack`` closes the clients.
    """
    profile = Profile.model_validate(one_kb_value())
    conn, raw, araw = open_clients(url, stack)

    prefix = conn.settings.key_prefix
    read = _rendered(READ_ID, prefix)
    floor_write, own_write = _rendered(FLOOR_WRITE_ID, prefix), _rendered(OWN_WRITE_ID, prefix)
    strings, hashes = (
        SyncStringRepository(ProfileKey, conn),
        SyncHashRepository(ProfileHashKey, conn),
    )
    raw.unlink(*read)
    if not (
        strings.set(ProfileKey(user_id=READ_ID), profile)
        and hashes.set(ProfileHashKey(user_id=READ_ID), profile)
    ):
        raise RuntimeError("could not store the benchmark data")

    per_call, reused = _sync_repo(conn, profile)
    aper_call, areused = _async_repo(conn, profile)
    contenders = {
        "floor": (
            _sync_raw(raw, profile, read, floor_write),
            _async_raw(araw, profile, read, floor_write),
            floor_write,
        ),
        "repo": (per_call, aper_call, _rendered(REPO_WRITE_ID, prefix)),
        "reused": (reused, areused, None),  # writes the same keys as "repo"
        "own": (
            _sync_raw(conn.sync_client, profile, read, own_write, decoded=True),
            _async_raw(conn.client, profile, read, own_write, decoded=True),
            own_write,
        ),
    }
    await _check(raw, profile, contenders)

    benchmarks = []
    for mode in ("sync", "async"):
        for op in OPS:
            names = _names(op, mode)
            rows = [
                Contender(
                    names[which],
                    sync_batch(calls_[op]) if mode == "sync" else async_batch(acalls[op]),
                    _ROLES[which],
                )
                for which, (calls_, acalls, _) in contenders.items()
            ]
            benchmarks.append(
                Benchmark(f"{op} 1 KB model ({mode})", calls, rows, REPOSITORY_TARGET)
            )
    return benchmarks
