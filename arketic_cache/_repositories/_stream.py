"""STREAM keys: entries holding a model's fields (each a JSON value), async and sync twins.

Every write refreshes the schema's TTL in the same MULTI/EXEC as the data. ``range`` raises
``SerializationError`` naming the key for an entry that does not fit the model; the readers
that follow a stream (``read_after``, ``read_group``, ``claim``) count and skip it instead, so
one bad entry never stops a consumer.

Consumer groups give at-least-once delivery: ``create_group``, ``read_group`` (blocking if
asked), ``ack``, and ``claim`` for the entries of a consumer that died, with a dead-letter
stream for entries delivered too many times. ``trim`` keeps a stream bounded by length or age.
"""

from __future__ import annotations

import math
import re
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from .. import _connection
from .._codec import ModelCodec
from .._core import _cache as flows
from .._core import _repository as repo_flows
from .._core import _stream_groups as groups
from .._core._effects import Flow
from .._core._slots import key_slot
from .._exceptions import InvalidInputError
from .._keys import StreamKey
from .._shell import AsyncShell, SyncShell
from ._base import K_co, M, Repository, V_co, positive

__all__ = ["Claimed", "StreamRepository", "SyncStreamRepository", "entry_id"]

KX = TypeVar("KX", bound=StreamKey[Any])
_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


class Claimed(NamedTuple, Generic[M]):
    """What ``claim`` took over: the entries now the consumer's, and how many entries went
    to the dead-letter stream instead."""

    entries: list[tuple[str, M]]
    dead_lettered: int


def _name(value: Any, what: str) -> str:
    if type(value) is not str or not value or len(value) > 256:
        raise InvalidInputError(f"a {what} name is a non-empty str of at most 256 characters")
    return value


def entry_id(value: Any, specials: tuple[str, ...] = ()) -> str:
    if type(value) is not str or not (value in specials or _ID.fullmatch(value)):
        allowed = "".join(f", {special!r}" for special in specials)
        raise InvalidInputError(f"a stream entry id looks like '1700000000000-0'{allowed}")
    return value


def _seconds(value: Any, name: str, *, zero: bool = False) -> float:
    ok = (
        type(value) in (int, float) and math.isfinite(value) and (value >= 0 if zero else value > 0)
    )
    if not ok:
        raise InvalidInputError(f"{name} is a positive number of seconds, not {value!r}")
    return float(value)


class StreamSchema(Protocol[K_co, V_co]):
    """A ``StreamKey[M]`` subclass, seen as the key type it builds and its entry model."""

    def __call__(self, *args: Any, **kwargs: Any) -> K_co: ...
    def _stream_value(self, key: Any, /) -> V_co: ...


class _StreamBase(Repository[KX], Generic[KX, M]):
    __slots__ = ()
    kind = StreamKey
    codec_type = ModelCodec
    _codec: ModelCodec[M]

    def __init__(
        self,
        schema: StreamSchema[KX, M],
        connection: _connection.RedisConnection | None = None,
        *,
        key_prefix: str | None = None,
        strict: bool = False,
    ) -> None:
        """Bind to ``schema`` on ``connection`` (default: the ``init_redis()`` one).

        Raises:
            ConfigurationError: ``schema`` is not a concrete ``StreamKey`` schema of a model.
        """
        super().__init__(schema, connection, key_prefix=key_prefix, strict=strict)  # type: ignore[arg-type]

    def _append(
        self, key: KX, entry: M, max_length: int | None, approximate: bool
    ) -> Flow[str | None]:
        name, data = self._key(key), self._codec.encode(entry)
        limit = positive(max_length, "max_length")
        return repo_flows.stream_append(name, data, self.ttl, limit, approximate)

    def _blocking(self, block: float | None) -> groups.Blocking:
        """Chunks of a blocking read, each well inside the socket timeout."""
        if block is None:
            return None
        total = max(1, math.ceil(_seconds(block, "block") * 1000))
        chunk = min(total, max(1, int(self._bind().settings.socket_timeout * 500)))
        return math.ceil(total / chunk), chunk

    def _read_after(
        self, key: KX, last_id: str, count: int | None, block: float | None
    ) -> Flow[list[tuple[str, M]]]:
        last = entry_id(last_id, ("$",))
        name, limit, blocking = self._key(key), positive(count, "count"), self._blocking(block)
        return groups.stream_read(name, self._codec, self._stats, last, limit, blocking)

    def _create_group(self, key: KX, group: str, start: str) -> Flow[bool]:
        begin = entry_id(start, ("$", "0"))
        return groups.group_create(self._key(key), _name(group, "group"), begin, self.ttl)

    def _read_group(
        self, key: KX, group: str, consumer: str, count: int, block: float | None
    ) -> Flow[list[tuple[str, M]]]:
        names = _name(group, "group"), _name(consumer, "consumer")
        limit = positive(count, "count") or 1
        blocking = self._blocking(block)
        return groups.group_read(self._key(key), *names, self._codec, self._stats, limit, blocking)

    def _ack(self, key: KX, group: str, ids: tuple[str, ...]) -> Flow[int] | None:
        checked = tuple(entry_id(given) for given in ids)
        name = _name(group, "group")
        return groups.group_ack(self._key(key), name, checked) if checked else None

    def _claim(
        self,
        key: KX,
        group: str,
        consumer: str,
        min_idle: float,
        count: int,
        max_deliveries: int | None,
        dead_letter: KX | None,
    ) -> Flow[tuple[list[tuple[str, M]], int]]:
        if (max_deliveries is None) != (dead_letter is None):
            raise InvalidInputError("give max_deliveries and dead_letter together")
        stream = self._key(key)
        dead = None if dead_letter is None else self._key(dead_letter)
        if dead is not None and self.connection.cluster and key_slot(dead) != key_slot(stream):
            raise InvalidInputError(
                "on a Redis Cluster the dead-letter stream shares the stream's slot (one "
                "script moves entries between them): give the schema a hash_tag field both "
                "keys share"
            )
        return groups.group_claim(
            stream,
            _name(group, "group"),
            _name(consumer, "consumer"),
            self._codec,
            self._stats,
            min_idle_ms=round(_seconds(min_idle, "min_idle", zero=True) * 1000),
            count=positive(count, "count") or 1,
            max_deliveries=positive(max_deliveries, "max_deliveries"),
            dead_letter=dead,
            dead_letter_ttl=self.ttl,
        )

    def _trim(
        self, key: KX, max_length: int | None, max_age: float | None, approximate: bool
    ) -> Flow[int]:
        if (max_length is None) == (max_age is None):
            raise InvalidInputError("trim by max_length or by max_age (one of them)")
        if max_length is not None and (type(max_length) is not int or max_length < 0):
            raise InvalidInputError(f"max_length is an int >= 0, not {max_length!r}")
        age_ms = None if max_age is None else round(_seconds(max_age, "max_age") * 1000)
        return groups.stream_trim(self._key(key), max_length, age_ms, approximate)


class SyncStreamRepository(_StreamBase[KX, M], SyncShell):
    """Blocking twin of ``StreamRepository``."""

    __slots__ = ()

    def append(
        self, key: KX, entry: M, *, max_length: int | None = None, approximate: bool = True
    ) -> str | None:
        """Append ``entry``, trimming to about ``max_length``; return its id (None on failure)."""
        return self._run(self._append(key, entry, max_length, approximate), None)

    def range(
        self, key: KX, start: str = "-", end: str = "+", *, count: int | None = None
    ) -> list[tuple[str, M]]:
        """Entries with ids from ``start`` to ``end``, oldest first."""
        flow = repo_flows.stream_range(
            self._key(key), self._codec, start, end, positive(count, "count")
        )
        return self._run(flow, [])

    def latest(self, key: KX, count: int) -> list[tuple[str, M]]:
        """The last ``count`` entries, oldest first (e.g. a chat's recent history)."""
        flow = repo_flows.stream_latest(self._key(key), self._codec, positive(count, "count") or 1)
        return self._run(flow, [])

    def read_after(
        self,
        key: KX,
        last_id: str = "0-0",
        *,
        count: int | None = None,
        block: float | None = None,
    ) -> list[tuple[str, M]]:
        """Entries added after ``last_id`` (pass the last id seen to follow, or resume after
        a reconnect); waits up to ``block`` seconds for one when there is none."""
        return self._run(self._read_after(key, last_id, count, block), [])

    def create_group(self, key: KX, group: str, *, start: str = "$") -> bool:
        """Create consumer ``group`` reading from ``start`` (``"$"``: new entries only, ``"0"``:
        the whole stream), and the stream if missing; False if the group existed."""
        return self._run(self._create_group(key, group, start), False)

    def read_group(
        self, key: KX, group: str, consumer: str, *, count: int = 10, block: float | None = None
    ) -> list[tuple[str, M]]:
        """Up to ``count`` new entries for ``consumer``, waiting up to ``block`` seconds;
        each stays pending until ``ack``."""
        return self._run(self._read_group(key, group, consumer, count, block), [])

    def ack(self, key: KX, group: str, *ids: str) -> int:
        """Acknowledge processed entries; how many were pending (never more than once each)."""
        flow = self._ack(key, group, ids)
        return 0 if flow is None else self._run(flow, 0)

    def pending(self, key: KX, group: str) -> int:
        """How many entries the group's consumers hold unacknowledged."""
        return self._run(groups.group_pending(self._key(key), _name(group, "group")), 0)

    def claim(
        self,
        key: KX,
        group: str,
        consumer: str,
        *,
        min_idle: float,
        count: int = 100,
        max_deliveries: int | None = None,
        dead_letter: KX | None = None,
    ) -> Claimed[M]:
        """Take over entries pending for ``min_idle`` seconds or more (their consumer died);
        those delivered more than ``max_deliveries`` times go to ``dead_letter`` instead,
        acknowledged in the same step."""
        flow = self._claim(key, group, consumer, min_idle, count, max_deliveries, dead_letter)
        return Claimed(*self._run(flow, ([], 0)))

    def trim(
        self,
        key: KX,
        *,
        max_length: int | None = None,
        max_age: float | None = None,
        approximate: bool = True,
    ) -> int:
        """Drop the oldest entries beyond ``max_length``, or older than ``max_age`` seconds
        (by the server's clock); how many went."""
        return self._run(self._trim(key, max_length, max_age, approximate), 0)

    def length(self, key: KX) -> int:
        """Number of entries."""
        return self._run(repo_flows.read_int("XLEN", self._key(key)), 0)

    def delete(self, key: KX) -> bool:
        """Remove the stream; True if it existed."""
        return self._run(flows.delete(self._key(key)), False)


class StreamRepository(_StreamBase[KX, M], AsyncShell):
    """A stream of typed entries under one ``StreamKey`` schema (async)."""

    __slots__ = ()

    async def append(
        self, key: KX, entry: M, *, max_length: int | None = None, approximate: bool = True
    ) -> str | None:
        """Append ``entry``, trimming to about ``max_length``; return its id (None on failure)."""
        return await self._run(self._append(key, entry, max_length, approximate), None)

    async def range(
        self, key: KX, start: str = "-", end: str = "+", *, count: int | None = None
    ) -> list[tuple[str, M]]:
        """Entries with ids from ``start`` to ``end``, oldest first."""
        flow = repo_flows.stream_range(
            self._key(key), self._codec, start, end, positive(count, "count")
        )
        return await self._run(flow, [])

    async def latest(self, key: KX, count: int) -> list[tuple[str, M]]:
        """The last ``count`` entries, oldest first (e.g. a chat's recent history)."""
        flow = repo_flows.stream_latest(self._key(key), self._codec, positive(count, "count") or 1)
        return await self._run(flow, [])

    async def read_after(
        self,
        key: KX,
        last_id: str = "0-0",
        *,
        count: int | None = None,
        block: float | None = None,
    ) -> list[tuple[str, M]]:
        """Entries added after ``last_id`` (pass the last id seen to follow, or resume after
        a reconnect); waits up to ``block`` seconds for one when there is none."""
        return await self._run(self._read_after(key, last_id, count, block), [])

    async def create_group(self, key: KX, group: str, *, start: str = "$") -> bool:
        """Create consumer ``group`` reading from ``start`` (``"$"``: new entries only, ``"0"``:
        the whole stream), and the stream if missing; False if the group existed."""
        return await self._run(self._create_group(key, group, start), False)

    async def read_group(
        self, key: KX, group: str, consumer: str, *, count: int = 10, block: float | None = None
    ) -> list[tuple[str, M]]:
        """Up to ``count`` new entries for ``consumer``, waiting up to ``block`` seconds;
        each stays pending until ``ack``."""
        return await self._run(self._read_group(key, group, consumer, count, block), [])

    async def ack(self, key: KX, group: str, *ids: str) -> int:
        """Acknowledge processed entries; how many were pending (never more than once each)."""
        flow = self._ack(key, group, ids)
        return 0 if flow is None else await self._run(flow, 0)

    async def pending(self, key: KX, group: str) -> int:
        """How many entries the group's consumers hold unacknowledged."""
        return await self._run(groups.group_pending(self._key(key), _name(group, "group")), 0)

    async def claim(
        self,
        key: KX,
        group: str,
        consumer: str,
        *,
        min_idle: float,
        count: int = 100,
        max_deliveries: int | None = None,
        dead_letter: KX | None = None,
    ) -> Claimed[M]:
        """Take over entries pending for ``min_idle`` seconds or more (their consumer died);
        those delivered more than ``max_deliveries`` times go to ``dead_letter`` instead,
        acknowledged in the same step."""
        flow = self._claim(key, group, consumer, min_idle, count, max_deliveries, dead_letter)
        return Claimed(*await self._run(flow, ([], 0)))

    async def trim(
        self,
        key: KX,
        *,
        max_length: int | None = None,
        max_age: float | None = None,
        approximate: bool = True,
    ) -> int:
        """Drop the oldest entries beyond ``max_length``, or older than ``max_age`` seconds
        (by the server's clock); how many went."""
        return await self._run(self._trim(key, max_length, max_age, approximate), 0)

    async def length(self, key: KX) -> int:
        """Number of entries."""
        return await self._run(repo_flows.read_int("XLEN", self._key(key)), 0)

    async def delete(self, key: KX) -> bool:
        """Remove the stream; True if it existed."""
        return await self._run(flows.delete(self._key(key)), False)
