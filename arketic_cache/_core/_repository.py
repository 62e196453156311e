"""Flows behind the typed repositories: hashes, lists, sets, sorted sets and streams.

STRING repositories reuse the cache flows (``_core/_cache.py``) with a typed decoder. Every
write carries the schema's TTL in the same MULTI/EXEC (or script) as the data, and collection
writes refresh it. Reply shapes differ between RESP2 and RESP3; the helpers here accept both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from .._codec import ModelCodec, ValueCodec
from .._exceptions import SerializationError
from .._lua import HASH_UPDATE
from ._cache import CacheStats
from ._effects import Arg, Batch, Command, Eval, Flow

__all__ = [
    "hash_get",
    "hash_get_field",
    "hash_get_many",
    "hash_set",
    "hash_update",
    "list_pop",
    "list_push",
    "list_range",
    "list_trim",
    "read_int",
    "set_add",
    "set_contains",
    "set_members",
    "stream_append",
    "stream_range",
    "zset_add",
    "zset_increment",
    "zset_range",
    "zset_score",
]

logger = logging.getLogger("arketic_cache")

V = TypeVar("V")
M = TypeVar("M", bound=BaseModel)
N = TypeVar("N")


def read_int(*args: Arg) -> Flow[int]:
    """Run a command that answers an integer (LLEN, SCARD, SREM, ...)."""
    return int((yield Command(args)))


def _with_ttl(key: str, ttl: int, *commands: Command) -> Batch:
    return Batch((*commands, Command(("EXPIRE", key, ttl))), transaction=True)


# -- HASH ---------------------------------------------------------------------------------------
def _decode_hash(
    key: str, stored: Mapping[str, str], codec: ModelCodec[M], stats: CacheStats
) -> Flow[M | None]:
    if not stored:
        stats.misses += 1
        return None
    try:
        value = codec.decode(stored)
    except ValueError:
        stats.decode_errors += 1
        stats.misses += 1
        logger.warning("dropping a hash that does not fit %s", codec.model.__name__)
        yield Command(("UNLINK", key))
        return None
    stats.hits += 1
    return value


def hash_get(key: str, codec: ModelCodec[M], stats: CacheStats) -> Flow[M | None]:
    """The whole record; a hash that no longer fits the model is a miss and is dropped."""
    stored = yield Command(("HGETALL", key))
    return (yield from _decode_hash(key, stored, codec, stats))


def hash_get_many(
    keys: Sequence[str], names: Sequence[N], codec: ModelCodec[M], stats: CacheStats
) -> Flow[dict[N, M]]:
    """Every record found, in one round trip."""
    if not keys:
        return {}
    replies = yield Batch(tuple(Command(("HGETALL", key)) for key in keys))
    found: dict[N, M] = {}
    for key, name, stored in zip(keys, names, replies, strict=True):
        value = yield from _decode_hash(key, stored, codec, stats)
        if value is not None:
            found[name] = value
    return found


def hash_get_field(key: str, name: str, codec: ModelCodec[Any], stats: CacheStats) -> Flow[Any]:
    """One field's value, or None if the record or field is missing."""
    raw = yield Command(("HGET", key, name))
    if raw is None:
        stats.misses += 1
        return None
    try:
        value = codec.decode_field(name, raw)
    except ValueError:
        yield from _decode_hash(key, {name: raw, "\0": ""}, codec, stats)  # counts and drops
        return None
    stats.hits += 1
    return value


def hash_set(key: str, fields: Mapping[str, bytes], ttl: int) -> Flow[bool]:
    """Replace the record: old fields removed, new ones and the TTL set, atomically."""
    pairs = [item for pair in fields.items() for item in pair]
    replace = [Command(("UNLINK", key))]
    if pairs:
        replace.append(Command(("HSET", key, *pairs)))
    yield _with_ttl(key, ttl, *replace)
    return True


def hash_update(key: str, fields: Mapping[str, bytes], ttl: int) -> Flow[bool]:
    """Set some fields of an existing record and refresh its TTL; False if it is missing."""
    if not fields:
        return bool((yield Command(("EXISTS", key))))
    pairs = [item for pair in fields.items() for item in pair]
    return bool((yield Eval(HASH_UPDATE, (key,), (ttl, *pairs))))


# -- LIST ---------------------------------------------------------------------------------------
def list_push(
    key: str, members: Sequence[bytes], ttl: int, max_length: int | None, front: bool
) -> Flow[int]:
    """Push at the tail (or front), keep at most ``max_length`` newest; return the length."""
    push = Command(("LPUSH" if front else "RPUSH", key, *members))
    if max_length is None:
        replies = yield _with_ttl(key, ttl, push)
        return int(replies[0])
    trim = Command(("LTRIM", key, 0, max_length - 1) if front else ("LTRIM", key, -max_length, -1))
    replies = yield _with_ttl(key, ttl, push, trim)
    return min(int(replies[0]), max_length)


def list_pop(key: str, codec: ValueCodec[V], front: bool) -> Flow[V | None]:
    """Remove and return the first (or last) member."""
    raw = yield Command(("LPOP" if front else "RPOP", key))
    return None if raw is None else codec.decode_all((raw,), key)[0]


def list_range(key: str, start: int, stop: int, codec: ValueCodec[V]) -> Flow[list[V]]:
    """Members ``start`` to ``stop`` inclusive (negative counts from the end)."""
    return codec.decode_all((yield Command(("LRANGE", key, start, stop))), key)


def list_trim(key: str, start: int, stop: int, ttl: int) -> Flow[bool]:
    """Keep only members ``start`` to ``stop``; refresh the TTL."""
    yield _with_ttl(key, ttl, Command(("LTRIM", key, start, stop)))
    return True


# -- SET ----------------------------------------------------------------------------------------
def set_add(key: str, members: Sequence[bytes], ttl: int) -> Flow[int]:
    """Add members and refresh the TTL; return how many were new."""
    replies = yield _with_ttl(key, ttl, Command(("SADD", key, *members)))
    return int(replies[0])


def set_members(key: str, codec: ValueCodec[V]) -> Flow[list[V]]:
    """All members."""
    return codec.decode_all((yield Command(("SMEMBERS", key))), key)


def set_contains(key: str, member: bytes) -> Flow[bool]:
    """True if ``member`` is in the set."""
    return bool((yield Command(("SISMEMBER", key, member))))


# -- ZSET ---------------------------------------------------------------------------------------
def _score(value: float) -> str:
    if value == float("inf"):
        return "+inf"
    if value == float("-inf"):
        return "-inf"
    return repr(float(value))


def zset_add(key: str, members: Iterable[tuple[bytes, float]], ttl: int) -> Flow[int]:
    """Add or re-score members and refresh the TTL; return how many were new."""
    args = [item for member, score in members for item in (_score(score), member)]
    replies = yield _with_ttl(key, ttl, Command(("ZADD", key, *args)))
    return int(replies[0])


def zset_increment(key: str, member: bytes, amount: float, ttl: int) -> Flow[float]:
    """Add ``amount`` to the member's score (0 if new) and refresh the TTL."""
    replies = yield _with_ttl(key, ttl, Command(("ZINCRBY", key, _score(amount), member)))
    return float(replies[0])


def _pairs(reply: Sequence[Any]) -> list[tuple[Any, float]]:
    if reply and isinstance(reply[0], list | tuple):  # RESP3: [[member, score], ...]
        return [(member, float(score)) for member, score in reply]
    return [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]  # RESP2: flat


def zset_range(
    key: str,
    codec: ValueCodec[V],
    low: float | int,
    high: float | int,
    *,
    by_score: bool,
    desc: bool,
    limit: tuple[int, int] | None = None,
) -> Flow[list[tuple[V, float]]]:
    """Members with scores, by rank (``low``/``high`` are ranks) or by score."""
    if by_score:
        bounds = (_score(high), _score(low)) if desc else (_score(low), _score(high))
        args: list[Any] = ["ZRANGE", key, *bounds, "BYSCORE"]
    else:
        args = ["ZRANGE", key, int(low), int(high)]
    if desc:
        args.append("REV")
    if limit is not None:
        args += ["LIMIT", *limit]
    pairs = _pairs((yield Command((*args, "WITHSCORES"))))
    members = codec.decode_all((member for member, _ in pairs), key)
    return list(zip(members, (score for _, score in pairs), strict=True))


def zset_score(key: str, member: bytes) -> Flow[float | None]:
    """The member's score, or None."""
    reply = yield Command(("ZSCORE", key, member))
    return None if reply is None else float(reply)


# -- STREAM -------------------------------------------------------------------------------------
def stream_append(
    key: str, fields: Mapping[str, bytes], ttl: int, max_length: int | None, approximate: bool
) -> Flow[str]:
    """Append an entry (capped at about ``max_length``) and refresh the TTL; return its id."""
    if not fields:
        raise SerializationError("a stream entry needs at least one field")
    cap: tuple[Any, ...] = ()
    if max_length is not None:
        cap = ("MAXLEN", "~", max_length) if approximate else ("MAXLEN", max_length)
    pairs = [item for pair in fields.items() for item in pair]
    replies = yield _with_ttl(key, ttl, Command(("XADD", key, *cap, "*", *pairs)))
    return str(replies[0])


def _entries(key: str, reply: Iterable[Any], codec: ModelCodec[M]) -> list[tuple[str, M]]:
    try:
        return [(str(entry_id), codec.decode(fields)) for entry_id, fields in reply]
    except ValueError as exc:
        raise SerializationError(
            f"{key} holds an entry that is not a valid {codec.model.__name__}"
        ) from exc


def stream_range(
    key: str, codec: ModelCodec[M], start: str, end: str, count: int | None
) -> Flow[list[tuple[str, M]]]:
    """Entries with ids from ``start`` to ``end`` (``-`` and ``+`` for the ends)."""
    limit = ("COUNT", count) if count is not None else ()
    return _entries(key, (yield Command(("XRANGE", key, start, end, *limit))), codec)


def stream_latest(key: str, codec: ModelCodec[M], count: int) -> Flow[list[tuple[str, M]]]:
    """The last ``count`` entries, oldest first (a chat's recent history)."""
    newest_first = yield Command(("XREVRANGE", key, "+", "-", "COUNT", count))
    return _entries(key, reversed(newest_first), codec)
