"""Typed repositories for LIST, SET, ZSET and STREAM keys, async and sync twins.

Members are JSON values of the schema's declared type (stream entries: a model's fields).
Every write refreshes the schema's TTL in the same MULTI/EXEC as the data. A stored member that
does not fit the declared type raises ``SerializationError`` naming the key: a collection is
not silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from . import _connection
from ._codec import ModelCodec, ValueCodec
from ._core import _cache as flows
from ._core import _repository as repo_flows
from ._core._effects import Flow
from ._exceptions import InvalidInputError
from ._keys import KeySchema, ListKey, SetKey, SortedSetKey, StreamKey
from ._repository import Repository
from ._shell import AsyncShell, SyncShell

__all__ = [
    "ListRepository",
    "SetRepository",
    "SortedSetRepository",
    "StreamRepository",
    "SyncListRepository",
    "SyncSetRepository",
    "SyncSortedSetRepository",
    "SyncStreamRepository",
]

K = TypeVar("K", bound=KeySchema)
KL = TypeVar("KL", bound=ListKey[Any])
KS = TypeVar("KS", bound=SetKey[Any])
KZ = TypeVar("KZ", bound=SortedSetKey[Any])
KX = TypeVar("KX", bound=StreamKey[Any])
V = TypeVar("V")
M = TypeVar("M", bound=BaseModel)
K_co = TypeVar("K_co", covariant=True)
V_co = TypeVar("V_co", covariant=True)

_INF = float("inf")


def _positive(value: int | None, name: str) -> int | None:
    if value is not None and (type(value) is not int or value < 1):
        raise InvalidInputError(f"{name} must be a positive int, not {value!r}")
    return value


class _MemberRepository(Repository[K], Generic[K, V]):
    """A collection of JSON members of one declared type."""

    __slots__ = ()
    codec_type = ValueCodec
    _codec: ValueCodec[V]

    def _encode(self, values: Iterable[V]) -> list[bytes]:
        encoded = [self._codec.encode(value) for value in values]
        if not encoded:
            raise InvalidInputError("give at least one member")
        return encoded


# -- LIST ---------------------------------------------------------------------------------------
class ListSchema(Protocol[K_co, V_co]):
    """A ``ListKey[V]`` subclass, seen as the key type it builds and its member type."""

    def __call__(self, *args: Any, **kwargs: Any) -> K_co: ...
    def _list_value(self, key: Any, /) -> V_co: ...


class _ListBase(_MemberRepository[KL, V]):
    __slots__ = ()
    kind = ListKey

    def __init__(
        self,
        schema: ListSchema[KL, V],
        connection: _connection.RedisConnection | None = None,
        *,
        key_prefix: str | None = None,
        strict: bool = False,
    ) -> None:
        """Bind to ``schema`` on ``connection`` (default: the ``init_redis()`` one)."""
        super().__init__(schema, connection, key_prefix=key_prefix, strict=strict)  # type: ignore[arg-type]

    def _push(
        self, key: KL, values: tuple[V, ...], max_length: int | None, front: bool
    ) -> Flow[int]:
        name, encoded = self._key(key), self._encode(values)
        limit = _positive(max_length, "max_length")
        return repo_flows.list_push(name, encoded, self.ttl, limit, front)


class SyncListRepository(_ListBase[KL, V], SyncShell):
    """Blocking twin of ``ListRepository``."""

    __slots__ = ()

    def push(self, key: KL, *values: V, max_length: int | None = None) -> int:
        """Append values, keep at most ``max_length`` newest; return the length (0 on failure)."""
        return self._run(self._push(key, values, max_length, False), 0)

    def push_front(self, key: KL, *values: V, max_length: int | None = None) -> int:
        """Prepend values, keep at most ``max_length`` from the front; return the length."""
        return self._run(self._push(key, values, max_length, True), 0)

    def pop(self, key: KL) -> V | None:
        """Remove and return the first member, or None."""
        flow = repo_flows.list_pop(self._key(key), self._codec, True)
        return self._run(flow, None)

    def pop_back(self, key: KL) -> V | None:
        """Remove and return the last member, or None."""
        flow = repo_flows.list_pop(self._key(key), self._codec, False)
        return self._run(flow, None)

    def range(self, key: KL, start: int = 0, stop: int = -1) -> list[V]:
        """Members ``start`` to ``stop`` inclusive (negative indexes count from the end)."""
        return self._run(repo_flows.list_range(self._key(key), start, stop, self._codec), [])

    def trim(self, key: KL, start: int, stop: int) -> bool:
        """Keep only members ``start`` to ``stop``; refresh the TTL."""
        return self._run(repo_flows.list_trim(self._key(key), start, stop, self.ttl), False)

    def length(self, key: KL) -> int:
        """Number of members."""
        return self._run(repo_flows.read_int("LLEN", self._key(key)), 0)

    def delete(self, key: KL) -> bool:
        """Remove the list; True if it existed."""
        return self._run(flows.delete(self._key(key)), False)


class ListRepository(_ListBase[KL, V], AsyncShell):
    """A list of typed JSON members under one ``ListKey`` schema (async)."""

    __slots__ = ()

    async def push(self, key: KL, *values: V, max_length: int | None = None) -> int:
        """Append values, keep at most ``max_length`` newest; return the length (0 on failure)."""
        return await self._run(self._push(key, values, max_length, False), 0)

    async def push_front(self, key: KL, *values: V, max_length: int | None = None) -> int:
        """Prepend values, keep at most ``max_length`` from the front; return the length."""
        return await self._run(self._push(key, values, max_length, True), 0)

    async def pop(self, key: KL) -> V | None:
        """Remove and return the first member, or None."""
        flow = repo_flows.list_pop(self._key(key), self._codec, True)
        return await self._run(flow, None)

    async def pop_back(self, key: KL) -> V | None:
        """Remove and return the last member, or None."""
        flow = repo_flows.list_pop(self._key(key), self._codec, False)
        return await self._run(flow, None)

    async def range(self, key: KL, start: int = 0, stop: int = -1) -> list[V]:
        """Members ``start`` to ``stop`` inclusive (negative indexes count from the end)."""
        return await self._run(repo_flows.list_range(self._key(key), start, stop, self._codec), [])

    async def trim(self, key: KL, start: int, stop: int) -> bool:
        """Keep only members ``start`` to ``stop``; refresh the TTL."""
        return await self._run(repo_flows.list_trim(self._key(key), start, stop, self.ttl), False)

    async def length(self, key: KL) -> int:
        """Number of members."""
        return await self._run(repo_flows.read_int("LLEN", self._key(key)), 0)

    async def delete(self, key: KL) -> bool:
        """Remove the list; True if it existed."""
        return await self._run(flows.delete(self._key(key)), False)


# -- SET ----------------------------------------------------------------------------------------
class SetSchema(Protocol[K_co, V_co]):
    """A ``SetKey[V]`` subclass, seen as the key type it builds and its member type."""

    def __call__(self, *args: Any, **kwargs: Any) -> K_co: ...
    def _set_value(self, key: Any, /) -> V_co: ...


class _SetBase(_MemberRepository[KS, V]):
    __slots__ = ()
    kind = SetKey

    def __init__(
        self,
        schema: SetSchema[KS, V],
        connection: _connection.RedisConnection | None = None,
        *,
        key_prefix: str | None = None,
        strict: bool = False,
    ) -> None:
        """Bind to ``schema`` on ``connection`` (default: the ``init_redis()`` one)."""
        super().__init__(schema, connection, key_prefix=key_prefix, strict=strict)  # type: ignore[arg-type]


class SyncSetRepository(_SetBase[KS, V], SyncShell):
    """Blocking twin of ``SetRepository``."""

    __slots__ = ()

    def add(self, key: KS, *members: V) -> int:
        """Add members and refresh the TTL; return how many were new (0 on failure)."""
        return self._run(repo_flows.set_add(self._key(key), self._encode(members), self.ttl), 0)

    def remove(self, key: KS, *members: V) -> int:
        """Remove members; return how many were there."""
        return self._run(repo_flows.read_int("SREM", self._key(key), *self._encode(members)), 0)

    def members(self, key: KS) -> list[V]:
        """Every member (in no particular order)."""
        return self._run(repo_flows.set_members(self._key(key), self._codec), [])

    def contains(self, key: KS, member: V) -> bool:
        """True if ``member`` is in the set."""
        return self._run(repo_flows.set_contains(self._key(key), self._codec.encode(member)), False)

    def size(self, key: KS) -> int:
        """Number of members."""
        return self._run(repo_flows.read_int("SCARD", self._key(key)), 0)

    def delete(self, key: KS) -> bool:
        """Remove the set; True if it existed."""
        return self._run(flows.delete(self._key(key)), False)


class SetRepository(_SetBase[KS, V], AsyncShell):
    """A set of typed JSON members under one ``SetKey`` schema (async)."""

    __slots__ = ()

    async def add(self, key: KS, *members: V) -> int:
        """Add members and refresh the TTL; return how many were new (0 on failure)."""
        return await self._run(
            repo_flows.set_add(self._key(key), self._encode(members), self.ttl), 0
        )

    async def remove(self, key: KS, *members: V) -> int:
        """Remove members; return how many were there."""
        return await self._run(
            repo_flows.read_int("SREM", self._key(key), *self._encode(members)), 0
        )

    async def members(self, key: KS) -> list[V]:
        """Every member (in no particular order)."""
        return await self._run(repo_flows.set_members(self._key(key), self._codec), [])

    async def contains(self, key: KS, member: V) -> bool:
        """True if ``member`` is in the set."""
        return await self._run(
            repo_flows.set_contains(self._key(key), self._codec.encode(member)), False
        )

    async def size(self, key: KS) -> int:
        """Number of members."""
        return await self._run(repo_flows.read_int("SCARD", self._key(key)), 0)

    async def delete(self, key: KS) -> bool:
        """Remove the set; True if it existed."""
        return await self._run(flows.delete(self._key(key)), False)


# -- ZSET ---------------------------------------------------------------------------------------
class SortedSetSchema(Protocol[K_co, V_co]):
    """A ``SortedSetKey[V]`` subclass, seen as the key type it builds and its member type."""

    def __call__(self, *args: Any, **kwargs: Any) -> K_co: ...
    def _zset_value(self, key: Any, /) -> V_co: ...


class _SortedSetBase(_MemberRepository[KZ, V]):
    __slots__ = ()
    kind = SortedSetKey

    def __init__(
        self,
        schema: SortedSetSchema[KZ, V],
        connection: _connection.RedisConnection | None = None,
        *,
        key_prefix: str | None = None,
        strict: bool = False,
    ) -> None:
        """Bind to ``schema`` on ``connection`` (default: the ``init_redis()`` one)."""
        super().__init__(schema, connection, key_prefix=key_prefix, strict=strict)  # type: ignore[arg-type]

    def _scored(self, items: Iterable[tuple[V, float]]) -> list[tuple[bytes, float]]:
        scored = [(self._codec.encode(member), _finite(score)) for member, score in items]
        if not scored:
            raise InvalidInputError("give at least one member")
        return scored


def _finite(score: Any) -> float:
    if type(score) not in (int, float) or score != score:
        raise InvalidInputError(f"a score must be an int or float, not {score!r}")
    return float(score)


class SyncSortedSetRepository(_SortedSetBase[KZ, V], SyncShell):
    """Blocking twin of ``SortedSetRepository``."""

    __slots__ = ()

    def add(self, key: KZ, member: V, score: float) -> int:
        """Add (or re-score) a member and refresh the TTL; 1 if it was new."""
        return self._run(
            repo_flows.zset_add(self._key(key), self._scored([(member, score)]), self.ttl), 0
        )

    def add_many(self, key: KZ, items: Iterable[tuple[V, float]]) -> int:
        """Add (or re-score) members in one step; return how many were new."""
        return self._run(repo_flows.zset_add(self._key(key), self._scored(items), self.ttl), 0)

    def increment(self, key: KZ, member: V, amount: float = 1.0) -> float | None:
        """Add ``amount`` to the member's score and return the new score."""
        flow = repo_flows.zset_increment(
            self._key(key), self._codec.encode(member), _finite(amount), self.ttl
        )
        return self._run(flow, None)

    def range_by_rank(
        self, key: KZ, start: int = 0, stop: int = -1, *, desc: bool = False
    ) -> list[tuple[V, float]]:
        """Members with scores from rank ``start`` to ``stop`` (lowest score first)."""
        flow = repo_flows.zset_range(
            self._key(key), self._codec, start, stop, by_score=False, desc=desc
        )
        return self._run(flow, [])

    def range_by_score(
        self,
        key: KZ,
        min_score: float = -_INF,
        max_score: float = _INF,
        *,
        desc: bool = False,
        offset: int = 0,
        count: int | None = None,
    ) -> list[tuple[V, float]]:
        """Members with ``min_score <= score <= max_score``, optionally paged."""
        limit = None if count is None else (offset, count)
        flow = repo_flows.zset_range(
            self._key(key), self._codec, min_score, max_score, by_score=True, desc=desc, limit=limit
        )
        return self._run(flow, [])

    def score(self, key: KZ, member: V) -> float | None:
        """The member's score, or None."""
        return self._run(repo_flows.zset_score(self._key(key), self._codec.encode(member)), None)

    def remove(self, key: KZ, *members: V) -> int:
        """Remove members; return how many were there."""
        return self._run(repo_flows.read_int("ZREM", self._key(key), *self._encode(members)), 0)

    def size(self, key: KZ) -> int:
        """Number of members."""
        return self._run(repo_flows.read_int("ZCARD", self._key(key)), 0)

    def delete(self, key: KZ) -> bool:
        """Remove the sorted set; True if it existed."""
        return self._run(flows.delete(self._key(key)), False)


class SortedSetRepository(_SortedSetBase[KZ, V], AsyncShell):
    """A sorted set of typed JSON members under one ``SortedSetKey`` schema (async)."""

    __slots__ = ()

    async def add(self, key: KZ, member: V, score: float) -> int:
        """Add (or re-score) a member and refresh the TTL; 1 if it was new."""
        return await self._run(
            repo_flows.zset_add(self._key(key), self._scored([(member, score)]), self.ttl), 0
        )

    async def add_many(self, key: KZ, items: Iterable[tuple[V, float]]) -> int:
        """Add (or re-score) members in one step; return how many were new."""
        return await self._run(
            repo_flows.zset_add(self._key(key), self._scored(items), self.ttl), 0
        )

    async def increment(self, key: KZ, member: V, amount: float = 1.0) -> float | None:
        """Add ``amount`` to the member's score and return the new score."""
        flow = repo_flows.zset_increment(
            self._key(key), self._codec.encode(member), _finite(amount), self.ttl
        )
        return await self._run(flow, None)

    async def range_by_rank(
        self, key: KZ, start: int = 0, stop: int = -1, *, desc: bool = False
    ) -> list[tuple[V, float]]:
        """Members with scores from rank ``start`` to ``stop`` (lowest score first)."""
        flow = repo_flows.zset_range(
            self._key(key), self._codec, start, stop, by_score=False, desc=desc
        )
        return await self._run(flow, [])

    async def range_by_score(
        self,
        key: KZ,
        min_score: float = -_INF,
        max_score: float = _INF,
        *,
        desc: bool = False,
        offset: int = 0,
        count: int | None = None,
    ) -> list[tuple[V, float]]:
        """Members with ``min_score <= score <= max_score``, optionally paged."""
        limit = None if count is None else (offset, count)
        flow = repo_flows.zset_range(
            self._key(key), self._codec, min_score, max_score, by_score=True, desc=desc, limit=limit
        )
        return await self._run(flow, [])

    async def score(self, key: KZ, member: V) -> float | None:
        """The member's score, or None."""
        return await self._run(
            repo_flows.zset_score(self._key(key), self._codec.encode(member)), None
        )

    async def remove(self, key: KZ, *members: V) -> int:
        """Remove members; return how many were there."""
        return await self._run(
            repo_flows.read_int("ZREM", self._key(key), *self._encode(members)), 0
        )

    async def size(self, key: KZ) -> int:
        """Number of members."""
        return await self._run(repo_flows.read_int("ZCARD", self._key(key)), 0)

    async def delete(self, key: KZ) -> bool:
        """Remove the sorted set; True if it existed."""
        return await self._run(flows.delete(self._key(key)), False)


# -- STREAM -------------------------------------------------------------------------------------
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
        limit = _positive(max_length, "max_length")
        return repo_flows.stream_append(name, data, self.ttl, limit, approximate)


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
            self._key(key), self._codec, start, end, _positive(count, "count")
        )
        return self._run(flow, [])

    def read_after(
        self, key: KX, last_id: str = "0-0", *, count: int | None = None
    ) -> list[tuple[str, M]]:
        """Entries added after ``last_id`` (returns at once; pass the last id seen to follow)."""
        flow = repo_flows.stream_read_after(
            self._key(key), self._codec, last_id, _positive(count, "count")
        )
        return self._run(flow, [])

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
            self._key(key), self._codec, start, end, _positive(count, "count")
        )
        return await self._run(flow, [])

    async def read_after(
        self, key: KX, last_id: str = "0-0", *, count: int | None = None
    ) -> list[tuple[str, M]]:
        """Entries added after ``last_id`` (returns at once; pass the last id seen to follow)."""
        flow = repo_flows.stream_read_after(
            self._key(key), self._codec, last_id, _positive(count, "count")
        )
        return await self._run(flow, [])

    async def length(self, key: KX) -> int:
        """Number of entries."""
        return await self._run(repo_flows.read_int("XLEN", self._key(key)), 0)

    async def delete(self, key: KX) -> bool:
        """Remove the stream; True if it existed."""
        return await self._run(flows.delete(self._key(key)), False)
