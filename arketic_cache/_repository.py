"""Typed repositories for STRING and HASH keys, async and sync twins.

A repository is bound to one key schema; mypy infers the schema and its value type from the
class passed in, so a key of another schema, a value of another type, or a method the Redis
type does not have are type errors::

    profiles = StringRepository(UserProfileKey)          # StringRepository[UserProfileKey, Profile]
    await profiles.set(UserProfileKey(user_id=1), Profile(name="Ada"))
    profile = await profiles.get(UserProfileKey(user_id=1))   # Profile | None

Every write applies the schema's TTL (from the TTL strategy table) in the same step as the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel

from . import _connection
from ._codec import ModelCodec, ValueCodec
from ._core import _cache as flows
from ._core import _repository as repo_flows
from ._core._effects import Flow
from ._core._validate import check_ttl
from ._exceptions import ConfigurationError, InvalidInputError
from ._keys import HashKey, KeySchema, StringKey
from ._shell import AsyncShell, Shell, SyncShell

__all__ = [
    "HashRepository",
    "Repository",
    "StringRepository",
    "SyncHashRepository",
    "SyncStringRepository",
]

K = TypeVar("K", bound=KeySchema)
KS = TypeVar("KS", bound=StringKey[Any])
KH = TypeVar("KH", bound=HashKey[Any])
V = TypeVar("V")
M = TypeVar("M", bound=BaseModel)
K_co = TypeVar("K_co", covariant=True)
V_co = TypeVar("V_co", covariant=True)


class Repository(Shell, Generic[K]):
    """What every typed repository shares: its schema, key rendering, TTL and counters."""

    __slots__ = ("_codec", "_ttl", "schema")
    kind: ClassVar[type[KeySchema]] = KeySchema
    #: Builds the value codec from the schema's value type (ValueCodec or ModelCodec).
    codec_type: ClassVar[type[Any]] = ValueCodec

    def __init__(
        self,
        schema: type[K],
        connection: _connection.RedisConnection | None = None,
        *,
        key_prefix: str | None = None,
        strict: bool = False,
    ) -> None:
        if not (isinstance(schema, type) and issubclass(schema, self.kind)):
            raise ConfigurationError(
                f"{type(self).__name__} needs a {self.kind.__name__} schema, not {schema!r}"
            )
        if "_format" not in vars(schema) and not any("template" in vars(c) for c in schema.__mro__):
            raise ConfigurationError(f"{schema.__name__} has no template: it is not a key schema")
        super().__init__(connection, key_prefix=key_prefix, strict=strict)
        self.schema = schema
        self._ttl = 0
        try:
            self._codec = self.codec_type(schema.value_type, 1 << 20)
        except InvalidInputError as exc:  # e.g. a hash of something that is not a model
            raise ConfigurationError(str(exc)) from None

    def _rebind(self, conn: _connection.RedisConnection) -> None:
        self._ttl = self.schema.ttl.resolve(conn.settings.default_ttl)
        self._codec.max_bytes = conn.settings.max_value_bytes

    @property
    def ttl(self) -> int:
        """Seconds every write gives the key (the schema's row of the TTL table)."""
        self._bind()
        return self._ttl

    def _key(self, key: K) -> str:
        if type(key) is not self.schema and not isinstance(key, self.schema):
            raise InvalidInputError(
                f"expected a {self.schema.__name__} key, not {type(key).__name__}"
            )
        if self._bound is None or self._connection is None:
            self._bind()  # the global connection may have been replaced since
        return self._prefix + key.render()

    def _keys(self, keys: Iterable[K]) -> tuple[list[str], list[K]]:
        unique = list(dict.fromkeys(keys))
        return [self._key(key) for key in unique], unique

    def _write_ttl(self, ttl: int | None) -> int:
        return self.ttl if ttl is None else check_ttl(ttl)

    def stats(self) -> dict[str, Any]:
        """This repository's hits, misses and decode errors, and the connection's counters."""
        return self._counters()


# -- STRING -------------------------------------------------------------------------------------
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


# -- HASH ---------------------------------------------------------------------------------------
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
