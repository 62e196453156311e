"""Flows behind a stream's consumer groups, blocking reads and trimming.

At-least-once delivery: ``read_group`` hands each new entry to one consumer of the group and
keeps it pending until ``ack``; ``claim`` moves entries pending too long (their consumer died)
to another consumer, and copies those delivered more than ``max_deliveries`` times to a
dead-letter stream and acknowledges them, in one script. An entry that does not decode is
counted and skipped, and stays pending: it ends in the dead-letter stream, never in a loop.

A blocking read waits in chunks shorter than the data path's socket timeout (the shell works
out ``chunks`` and ``chunk_ms``), so one call keeps the one-timeout-per-command promise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from .._codec import ModelCodec
from .._exceptions import BackendError
from .._lua import STREAM_CLAIM
from ._cache import CacheStats
from ._effects import Arg, Command, Eval, Flow

__all__ = [
    "Blocking",
    "group_ack",
    "group_claim",
    "group_create",
    "group_pending",
    "group_read",
    "stream_read",
    "stream_trim",
]

logger = logging.getLogger("arketic_cache")

M = TypeVar("M", bound=BaseModel)

#: (how many blocking reads at most, the milliseconds each blocks), or None: no blocking.
Blocking = tuple[int, int] | None


def _fields(raw: Any) -> dict[str, str] | None:
    """An entry's fields from a reply (a dict, or a flat list from a script); None if gone."""
    if raw is None:
        return None
    if isinstance(raw, dict):
        return raw
    items = list(raw)
    return dict(zip(items[::2], items[1::2], strict=True))


def _decoded(reply: Iterable[Any], codec: ModelCodec[M], stats: CacheStats) -> list[tuple[str, M]]:
    """The entries that decode; the others are counted, logged and skipped."""
    found: list[tuple[str, M]] = []
    for entry_id, raw in reply:
        fields = _fields(raw)
        if fields is None:  # trimmed away while pending
            continue
        try:
            found.append((str(entry_id), codec.decode(fields)))
        except ValueError:
            stats.decode_errors += 1
            logger.warning("skipping a stream entry that is not a valid %s", codec.model.__name__)
    return found


def _batch(reply: Any) -> list[Any]:
    """The entries of one stream from an XREAD/XREADGROUP reply (RESP2 or RESP3)."""
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3: {key: [entries]}
        (batches,) = reply.values()
        return batches[0] if batches and isinstance(batches[0], list) else batches
    return list(reply[0][1])  # RESP2: [[key, entries]]


def _blocking(head: tuple[Arg, ...], tail: tuple[Arg, ...], blocking: Blocking) -> Flow[Any]:
    """Run ``head [BLOCK ms] tail`` until it answers entries or the chunks are used up."""
    if blocking is None:
        return (yield Command((*head, *tail)))
    chunks, chunk_ms = blocking
    reply: Any = None
    for _ in range(chunks):
        reply = yield Command((*head, "BLOCK", chunk_ms, *tail))
        if reply:
            break
    return reply


def group_create(key: str, group: str, start: str, ttl: int) -> Flow[bool]:
    """Create ``group`` at ``start`` (the stream too, with its TTL); False if it existed."""
    reply = yield Command(("XGROUP", "CREATE", key, group, start, "MKSTREAM"), errors_as_reply=True)
    if isinstance(reply, BackendError):
        if "BUSYGROUP" in str(reply):
            return False
        raise reply
    yield Command(("EXPIRE", key, ttl, "NX"))  # a stream just made by MKSTREAM has none
    return True


def group_read(
    key: str,
    group: str,
    consumer: str,
    codec: ModelCodec[M],
    stats: CacheStats,
    count: int,
    blocking: Blocking,
) -> Flow[list[tuple[str, M]]]:
    """New entries for ``consumer``, pending until acknowledged."""
    head = ("XREADGROUP", "GROUP", group, consumer, "COUNT", count)
    reply = yield from _blocking(head, ("STREAMS", key, ">"), blocking)
    return _decoded(_batch(reply), codec, stats)


def group_ack(key: str, group: str, ids: tuple[str, ...]) -> Flow[int]:
    """Acknowledge ``ids``; how many were pending (an id acknowledged twice counts once)."""
    return int((yield Command(("XACK", key, group, *ids))))


def group_pending(key: str, group: str) -> Flow[int]:
    """How many entries the group's consumers hold unacknowledged."""
    reply = yield Command(("XPENDING", key, group))
    if isinstance(reply, dict):
        return int(reply.get("pending", 0))
    return int(reply[0]) if reply else 0


def group_claim(
    key: str,
    group: str,
    consumer: str,
    codec: ModelCodec[M],
    stats: CacheStats,
    *,
    min_idle_ms: int,
    count: int,
    max_deliveries: int | None,
    dead_letter: str | None,
    dead_letter_ttl: int,
) -> Flow[tuple[list[tuple[str, M]], int]]:
    """Entries idle at least ``min_idle_ms`` now ``consumer``'s, and how many went to the
    dead-letter stream instead."""
    keys = (key, dead_letter if dead_letter is not None else key)
    args = (group, consumer, min_idle_ms, count, max_deliveries or 0, dead_letter_ttl)
    reply = yield Eval(STREAM_CLAIM, keys, args)
    dead, *entries = reply
    return _decoded(entries, codec, stats), int(dead)


def stream_read(
    key: str, codec: ModelCodec[M], stats: CacheStats, last_id: str, count: int | None,
    blocking: Blocking,
) -> Flow[list[tuple[str, M]]]:  # fmt: skip
    """Entries after ``last_id``, waiting for some when ``blocking``."""
    head = ("XREAD", "COUNT", count) if count is not None else ("XREAD",)
    reply = yield from _blocking(head, ("STREAMS", key, last_id), blocking)
    return _decoded(_batch(reply), codec, stats)


def stream_trim(
    key: str, max_length: int | None, max_age_ms: int | None, approximate: bool
) -> Flow[int]:
    """Drop the oldest entries beyond ``max_length``, or older than ``max_age_ms`` by the
    server's clock; how many went."""
    exact = ("~",) if approximate else ()
    if max_length is not None:
        return int((yield Command(("XTRIM", key, "MAXLEN", *exact, max_length))))
    assert max_age_ms is not None
    seconds, micros = yield Command(("TIME",))
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    return int((yield Command(("XTRIM", key, "MINID", *exact, max(now_ms - max_age_ms, 0)))))
