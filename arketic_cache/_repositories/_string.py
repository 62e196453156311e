"""STRING keys: one JSON value of the schema's declared type, async and sync twins."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from .. import _connection
from .._codec import ValueCodec
from .._core import _cache as flows
from .._core._effects import Flow
from .._keys import StringKey
from .._shell import AsyncShell, SyncShell
from ._base import K_co, Repository, V, V_co

__all__ = ["StringRepository", "SyncStringRepository"]

KS = TypeVar("KS", bound=StringKey[Any])


class StringSchema(Protocol[K_co, V_co]):
    """A ``StringKey[V]`` subclass, seen as the key type it builds and its value type."""

    def __call__(self, *args: Any, **kwargs: Any) -> K_co: ...
    def _string_value(self, key: Any, /) -> V_co: ...


class _StringBase(Repository[KS], Generic[KS, V]):
    __slots__ = ()
    kind = StringKey
    codec_type = ValueCodec
    _codec: ValueCodec[V]

    def __init__(
        self,
        schema: StringSchema[KS, V],
        connection: _connection.RedisConnection | None = None,
        *,
        key_prefix: str | None = None,
        strict: bool = False,
    ) -> None:
        """Bind to ``schema`` on ``connection`` (default: the ``init_redis()`` one).

        Raises:
            ConfigurationError: ``schema`` is not a concrete ``StringKey`` schema.
        """
        super().__init__(schema, connection, key_prefix=key_prefix, strict=strict)  # type: ignore[arg-type]

    def _items(self, items: Mapping[KS, V]) -> list[tuple[str, bytes]]:
        return [(self._key(key), self._codec.encode(value)) for key, value in items.items()]


class SyncStringRepository(_StringBase[KS, V], SyncShell):
    """Blocking twin of ``StringRepository``."""

    __slots__ = ()

    def get(self, key: KS) -> V | None:
        """The value, or None on a miss (a stored value that does not fit is a miss)."""
        flow: Flow[V | None] = flows.get(self._key(key), self._stats, self._codec.decode)
        return self._run(flow, None)

    def set(self, key: KS, value: V, ttl: int | None = None) -> bool:
        """Store ``value`` with the schema's TTL (or ``ttl``); False on failure."""
        flow = flows.set_value(self._key(key), self._codec.encode(value), self._write_ttl(ttl))
        return self._run(flow, False)

    def get_many(self, keys: Iterable[KS]) -> dict[KS, V]:
        """``{key: value}`` for the keys found, in one round trip."""
        rendered, unique = self._keys(keys)
        cluster = self.connection.cluster
        return self._run(
            flows.get_many(rendered, unique, self._stats, cluster, self._codec.decode), {}
        )

    def set_many(self, items: Mapping[KS, V], ttl: int | None = None) -> bool:
        """Store every item with the TTL, in one round trip."""
        flow = flows.set_many(self._items(items), self._write_ttl(ttl), self.connection.cluster)
        return self._run(flow, False)

    def delete(self, key: KS) -> bool:
        """Remove the key; True if it existed."""
        return self._run(flows.delete(self._key(key)), False)

    def exists(self, key: KS) -> bool:
        """True if the key exists."""
        return self._run(flows.exists(self._key(key)), False)


class StringRepository(_StringBase[KS, V], AsyncShell):
    """Typed JSON values under one ``StringKey`` schema (async)."""

    __slots__ = ()

    async def get(self, key: KS) -> V | None:
        """The value, or None on a miss (a stored value that does not fit is a miss)."""
        flow: Flow[V | None] = flows.get(self._key(key), self._stats, self._codec.decode)
        return await self._run(flow, None)

    async def set(self, key: KS, value: V, ttl: int | None = None) -> bool:
        """Store ``value`` with the schema's TTL (or ``ttl``); False on failure."""
        flow = flows.set_value(self._key(key), self._codec.encode(value), self._write_ttl(ttl))
        return await self._run(flow, False)

    async def get_many(self, keys: Iterable[KS]) -> dict[KS, V]:
        """``{key: value}`` for the keys found, in one round trip."""
        rendered, unique = self._keys(keys)
        cluster = self.connection.cluster
        return await self._run(
            flows.get_many(rendered, unique, self._stats, cluster, self._codec.decode), {}
        )

    async def set_many(self, items: Mapping[KS, V], ttl: int | None = None) -> bool:
        """Store every item with the TTL, in one round trip."""
        flow = flows.set_many(self._items(items), self._write_ttl(ttl), self.connection.cluster)
        return await self._run(flow, False)

    async def delete(self, key: KS) -> bool:
        """Remove the key; True if it existed."""
        return await self._run(flows.delete(self._key(key)), False)

    async def exists(self, key: KS) -> bool:
        """True if the key exists."""
        return await self._run(flows.exists(self._key(key)), False)
