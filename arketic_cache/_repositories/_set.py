"""SET keys: JSON members of the declared type, async and sync twins.

Every write refreshes the schema's TTL in the same MULTI/EXEC as the data; a stored member that
does not fit the declared type raises ``SerializationError`` naming the key.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from .. import _connection
from .._core import _cache as flows
from .._core import _repository as repo_flows
from .._keys import SetKey
from .._shell import AsyncShell, SyncShell
from ._base import K_co, MemberRepository, V, V_co

__all__ = ["SetRepository", "SyncSetRepository"]

KS = TypeVar("KS", bound=SetKey[Any])


class SetSchema(Protocol[K_co, V_co]):
    """A ``SetKey[V]`` subclass, seen as the key type it builds and its member type."""

    def __call__(self, *args: Any, **kwargs: Any) -> K_co: ...
    def _set_value(self, key: Any, /) -> V_co: ...


class _SetBase(MemberRepository[KS, V]):
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
