"""LIST keys: JSON members of the declared type, async and sync twins.

Every write refreshes the schema's TTL in the same MULTI/EXEC as the data; a stored member that
does not fit the declared type raises ``SerializationError`` naming the key.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from .. import _connection
from .._core import _cache as flows
from .._core import _repository as repo_flows
from .._core._effects import Flow
from .._keys import ListKey
from .._shell import AsyncShell, SyncShell
from ._base import K_co, MemberRepository, V, V_co, positive

__all__ = ["ListRepository", "SyncListRepository"]

KL = TypeVar("KL", bound=ListKey[Any])


class ListSchema(Protocol[K_co, V_co]):
    """A ``ListKey[V]`` subclass, seen as the key type it builds and its member type."""

    def __call__(self, *args: Any, **kwargs: Any) -> K_co: ...
    def _list_value(self, key: Any, /) -> V_co: ...


class _ListBase(MemberRepository[KL, V]):
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
        limit = positive(max_length, "max_length")
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
