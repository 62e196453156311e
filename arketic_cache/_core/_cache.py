"""Cache-aside flows behind ``RedisCache`` and ``SyncRedisCache``.

Keys reaching these flows are already validated and prefixed; values already encoded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .._codec import decode
from .._exceptions import BackendError
from .._lua import INCREMENT_WITH_TTL, UNLINK_IF_EQUAL
from ._effects import Batch, Command, Eval, Flow
from ._slots import group_by_slot

__all__ = [
    "SCAN_COUNT",
    "UNLINK_BATCH",
    "CacheStats",
    "delete",
    "exists",
    "expire",
    "get",
    "get_many",
    "increment",
    "scan_keys",
    "server_info",
    "set_many",
    "set_value",
    "unlink_matching",
]

logger = logging.getLogger("arketic_cache")

N = TypeVar("N")

SCAN_COUNT = 1000
#: UNLINK at most this many keys per command, so one call never blocks the server long.
UNLINK_BATCH = 500


@dataclass(slots=True)
class CacheStats:
    """This client's own counters (the server's are in ``get_info()``)."""

    hits: int = 0  # found in Redis (L2)
    misses: int = 0
    decode_errors: int = 0
    l1_hits: int = 0  # ``@cached`` only: served from the in-process level
    errors: int = 0  # calls that failed on Redis (answered with the degraded default)
    invalidations: int = 0  # ``@cached`` only: invalidate() calls that reached Redis


def drop_corrupt(key: str, raw: str, stats: CacheStats) -> Flow[None]:
    stats.decode_errors += 1
    logger.warning("dropping an undecodable cache entry (%d bytes)", len(raw))
    yield Eval(UNLINK_IF_EQUAL, (key,), (raw,))


def get(key: str, stats: CacheStats, decode: Callable[[str], Any] = decode) -> Flow[Any]:
    """Return the decoded value, or None on a miss; a corrupt entry is a miss and is dropped."""
    raw = yield Command(("GET", key))
    if raw is not None:
        try:
            value = decode(raw)
        except ValueError:
            yield from drop_corrupt(key, raw, stats)
        else:
            stats.hits += 1
            return value
    stats.misses += 1
    return None


def _mget(keys: Sequence[str], cluster: bool) -> Flow[list[Any]]:
    if not cluster:
        replies: list[Any] = yield Command(("MGET", *keys))
        return replies
    groups = list(group_by_slot(keys).values())
    grouped = yield Batch(tuple(Command(("MGET", *(keys[i] for i in g))) for g in groups))
    merged: list[Any] = [None] * len(keys)
    for positions, values in zip(groups, grouped, strict=True):
        for position, value in zip(positions, values, strict=True):
            merged[position] = value
    return merged


def get_many(
    keys: Sequence[str],
    names: Sequence[N],
    stats: CacheStats,
    cluster: bool,
    decode: Callable[[str], Any] = decode,
) -> Flow[dict[N, Any]]:
    """Return ``{name: value}`` for the keys found; ``names[i]`` is how ``keys[i]`` is reported."""
    if not keys:
        return {}
    raws = yield from _mget(keys, cluster)
    found: dict[N, Any] = {}
    for key, name, raw in zip(keys, names, raws, strict=True):
        if raw is None:
            stats.misses += 1
            continue
        try:
            found[name] = decode(raw)
        except ValueError:
            stats.misses += 1
            yield from drop_corrupt(key, raw, stats)
        else:
            stats.hits += 1
    return found


def set_value(key: str, data: bytes, ttl: int) -> Flow[bool]:
    """Store ``data`` with its TTL in one command."""
    reply = yield Command(("SET", key, data, "EX", ttl))
    return bool(reply)


def set_many(items: Sequence[tuple[str, bytes]], ttl: int, cluster: bool) -> Flow[bool]:
    """Store every item with its TTL in one round trip (MULTI/EXEC where slots allow)."""
    if not items:
        return True
    commands = tuple(Command(("SET", key, data, "EX", ttl)) for key, data in items)
    replies = yield Batch(commands, transaction=not cluster)
    return all(replies)


def delete(key: str) -> Flow[bool]:
    """Remove ``key``; True if it existed."""
    return bool((yield Command(("UNLINK", key))))


def exists(key: str) -> Flow[bool]:
    """True if ``key`` exists."""
    return bool((yield Command(("EXISTS", key))))


def increment(key: str, amount: int, ttl: int) -> Flow[int]:
    """Add ``amount``; a new counter gets ``ttl`` in the same atomic step."""
    return int((yield Eval(INCREMENT_WITH_TTL, (key,), (amount, ttl))))


def expire(key: str, ttl: int) -> Flow[bool]:
    """Set the TTL of an existing key; False if the key does not exist."""
    return bool((yield Command(("EXPIRE", key, ttl))))


def scan_keys(match: str, strip: int) -> Flow[list[str]]:
    """Return the sorted, de-duplicated keys matching ``match``, minus ``strip`` leading chars.

    SCAN may report a key twice and is not a snapshot: keys written meanwhile may be missed.
    """
    found: set[str] = set()
    cursor: int | str = 0
    while True:
        cursor, keys = yield Command(("SCAN", cursor, "MATCH", match, "COUNT", SCAN_COUNT))
        found.update(keys)
        if int(cursor) == 0:
            return sorted(key[strip:] for key in found)


def _unlink(keys: Sequence[str], cluster: bool) -> Flow[int]:
    if not cluster:
        return int((yield Command(("UNLINK", *keys))))
    groups = group_by_slot(keys).values()
    replies = yield Batch(tuple(Command(("UNLINK", *(keys[i] for i in g))) for g in groups))
    return sum(int(r) for r in replies)


def unlink_matching(match: str, cluster: bool) -> Flow[int]:
    """UNLINK every key matching ``match`` in batches; return how many were removed."""
    removed = 0
    cursor: int | str = 0
    pending: list[str] = []
    while True:
        cursor, keys = yield Command(("SCAN", cursor, "MATCH", match, "COUNT", SCAN_COUNT))
        pending.extend(keys)
        done = int(cursor) == 0
        while len(pending) >= UNLINK_BATCH or (done and pending):
            batch, pending = pending[:UNLINK_BATCH], pending[UNLINK_BATCH:]
            removed += yield from _unlink(batch, cluster)
        if done:
            return removed


_INFO_FIELDS = (
    "connected_clients",
    "used_memory_human",
    "used_memory",
    "total_commands_processed",
    "keyspace_hits",
    "keyspace_misses",
    "uptime_in_seconds",
    "maxmemory",
    "maxmemory_policy",
    "redis_version",
)


def _persistence(info: Mapping[str, Any]) -> str | None:
    if "aof_enabled" not in info:
        return None
    if int(info["aof_enabled"]):
        return "aof+rdb" if int(info.get("rdb_saves", 0)) else "aof"
    return "rdb" if int(info.get("rdb_saves", 0)) else "none observed"


def describe_info(info: Mapping[str, Any] | None, client: dict[str, Any]) -> dict[str, Any]:
    """Build ``get_info()``'s dict: the spec's fields (None when unknown) plus ``client``."""
    server = info or {}
    report: dict[str, Any] = {field: server.get(field) for field in _INFO_FIELDS}
    hits, misses = report["keyspace_hits"], report["keyspace_misses"]
    looked_up = (hits or 0) + (misses or 0)
    report["hit_rate"] = hits / looked_up if looked_up else None
    report["persistence"] = _persistence(server)
    report["client"] = client
    return report


def server_info(client: Callable[[], dict[str, Any]]) -> Flow[dict[str, Any]]:
    """Read INFO; a server that refuses it (ACL, managed Redis, fakeredis) leaves fields None."""
    reply = yield Command(("INFO",), errors_as_reply=True)
    info = None if isinstance(reply, BackendError) else reply
    return describe_info(info, client())
