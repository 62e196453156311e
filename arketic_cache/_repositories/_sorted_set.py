"""ZSET keys: JSON members of the declared type with float scores, async and sync twins.

Every write refreshes the schema's TTL in the same MULTI/EXEC as the data; a stored member that
does not fit the declared type raises ``SerializationError`` naming the key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from .. import _connection
from .._core import _cache as flows
from .._core import _repository as repo_flows
from .._exceptions import InvalidInputError
from .._keys import SortedSetKey
from .._shell import AsyncShell, SyncShell
from ._base import INF, K_co, MemberRepository, V, V_co

__all__ = ["SortedSetRepository", "SyncSortedSetRepository"]

KZ = TypeVar("KZ", bound=SortedSetKey[Any])


class SortedSetSchema(Protocol[K_co, V_co]):
    """A ``SortedSetKey[V]`` subclass, seen as the key type it builds and its member type."""

    def __call__(self, *args: Any, **kwargs: Any) -> K_co: ...
    def _zset_value(self, key: Any, /) -> V_co: ...


class _SortedSetBase(MemberRepository[KZ, V]):
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
        min_score: float = -INF,
        max_score: float = INF,
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
        min_score: float = -INF,
        max_score: float = INF,
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
