"""HASH keys: a model's fields as hash fields (each a JSON value), async and sync twins."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from .. import _connection
from .._codec import ModelCodec
from .._core import _cache as flows
from .._core import _repository as repo_flows
from .._keys import HashKey
from .._shell import AsyncShell, SyncShell
from ._base import K_co, M, Repository, V_co

__all__ = ["HashRepository", "SyncHashRepository"]

KH = TypeVar("KH", bound=HashKey[Any])


class HashSchema(Protocol[K_co, V_co]):
    """A ``HashKey[M]`` subclass, seen as the key type it builds and its model."""

    def __call__(self, *args: Any, **kwargs: Any) -> K_co: ...
    def _hash_value(self, key: Any, /) -> V_co: ...


class _HashBase(Repository[KH], Generic[KH, M]):
    __slots__ = ()
    kind = HashKey
    codec_type = ModelCodec
    _codec: ModelCodec[M]

    def __init__(
        self,
        schema: HashSchema[KH, M],
        connection: _connection.RedisConnection | None = None,
        *,
        key_prefix: str | None = None,
        strict: bool = False,
    ) -> None:
        """Bind to ``schema`` on ``connection`` (default: the ``init_redis()`` one).

        Raises:
            ConfigurationError: ``schema`` is not a concrete ``HashKey`` schema of a model.
        """
        super().__init__(schema, connection, key_prefix=key_prefix, strict=strict)  # type: ignore[arg-type]


class SyncHashRepository(_HashBase[KH, M], SyncShell):
    """Blocking twin of ``HashRepository``."""

    __slots__ = ()

    def get(self, key: KH) -> M | None:
        """The record, or None (a hash that no longer fits the model is a miss)."""
        return self._run(repo_flows.hash_get(self._key(key), self._codec, self._stats), None)

    def set(self, key: KH, value: M) -> bool:
        """Replace the record and set the schema's TTL, atomically."""
        flow = repo_flows.hash_set(self._key(key), self._codec.encode(value), self.ttl)
        return self._run(flow, False)

    def update(self, key: KH, fields: Mapping[str, Any]) -> bool:
        """Set some fields of an existing record (validated) and refresh its TTL."""
        flow = repo_flows.hash_update(self._key(key), self._codec.encode_fields(fields), self.ttl)
        return self._run(flow, False)

    def get_field(self, key: KH, field: str) -> Any:
        """One field's value, or None."""
        flow = repo_flows.hash_get_field(
            self._key(key), self._codec.check_field(field), self._codec, self._stats
        )
        return self._run(flow, None)

    def get_many(self, keys: Iterable[KH]) -> dict[KH, M]:
        """``{key: record}`` for the keys found, in one round trip."""
        rendered, unique = self._keys(keys)
        return self._run(repo_flows.hash_get_many(rendered, unique, self._codec, self._stats), {})

    def delete(self, key: KH) -> bool:
        """Remove the record; True if it existed."""
        return self._run(flows.delete(self._key(key)), False)

    def exists(self, key: KH) -> bool:
        """True if the record exists."""
        return self._run(flows.exists(self._key(key)), False)


class HashRepository(_HashBase[KH, M], AsyncShell):
    """A pydantic model stored as hash fields under one ``HashKey`` schema (async)."""

    __slots__ = ()

    async def get(self, key: KH) -> M | None:
        """The record, or None (a hash that no longer fits the model is a miss)."""
        return await self._run(repo_flows.hash_get(self._key(key), self._codec, self._stats), None)

    async def set(self, key: KH, value: M) -> bool:
        """Replace the record and set the schema's TTL, atomically."""
        flow = repo_flows.hash_set(self._key(key), self._codec.encode(value), self.ttl)
        return await self._run(flow, False)

    async def update(self, key: KH, fields: Mapping[str, Any]) -> bool:
        """Set some fields of an existing record (validated) and refresh its TTL."""
        flow = repo_flows.hash_update(self._key(key), self._codec.encode_fields(fields), self.ttl)
        return await self._run(flow, False)

    async def get_field(self, key: KH, field: str) -> Any:
        """One field's value, or None."""
        flow = repo_flows.hash_get_field(
            self._key(key), self._codec.check_field(field), self._codec, self._stats
        )
        return await self._run(flow, None)

    async def get_many(self, keys: Iterable[KH]) -> dict[KH, M]:
        """``{key: record}`` for the keys found, in one round trip."""
        rendered, unique = self._keys(keys)
        return await self._run(
            repo_flows.hash_get_many(rendered, unique, self._codec, self._stats), {}
        )

    async def delete(self, key: KH) -> bool:
        """Remove the record; True if it existed."""
        return await self._run(flows.delete(self._key(key)), False)

    async def exists(self, key: KH) -> bool:
        """True if the record exists."""
        return await self._run(flows.exists(self._key(key)), False)
