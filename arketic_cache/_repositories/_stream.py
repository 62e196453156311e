"""STREAM keys: entries holding a model's fields (each a JSON value), async and sync twins.

Every write refreshes the schema's TTL in the same MULTI/EXEC as the data; a stored member that
does not fit the declared type raises ``SerializationError`` naming the key.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

from .. import _connection
from .._codec import ModelCodec
from .._core import _cache as flows
from .._core import _repository as repo_flows
from .._core._effects import Flow
from .._keys import StreamKey
from .._shell import AsyncShell, SyncShell
from ._base import K_co, M, Repository, V_co, positive

__all__ = ["StreamRepository", "SyncStreamRepository"]

KX = TypeVar("KX", bound=StreamKey[Any])


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

    def read_after(
        self, key: KX, last_id: str = "0-0", *, count: int | None = None
    ) -> list[tuple[str, M]]:
        """Entries added after ``last_id`` (returns at once; pass the last id seen to follow)."""
        flow = repo_flows.stream_read_after(
            self._key(key), self._codec, last_id, positive(count, "count")
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
            self._key(key), self._codec, start, end, positive(count, "count")
        )
        return await self._run(flow, [])

    async def read_after(
        self, key: KX, last_id: str = "0-0", *, count: int | None = None
    ) -> list[tuple[str, M]]:
        """Entries added after ``last_id`` (returns at once; pass the last id seen to follow)."""
        flow = repo_flows.stream_read_after(
            self._key(key), self._codec, last_id, positive(count, "count")
        )
        return await self._run(flow, [])

    async def length(self, key: KX) -> int:
        """Number of entries."""
        return await self._run(repo_flows.read_int("XLEN", self._key(key)), 0)

    async def delete(self, key: KX) -> bool:
        """Remove the stream; True if it existed."""
        return await self._run(flows.delete(self._key(key)), False)
