"""The spec's cache: ``RedisCache`` (async) and its blocking twin ``SyncRedisCache``.

Both take the same arguments and hand the same flows (``_core/_cache.py``) to their driver;
only ``await`` differs. Without an explicit connection they use the process-wide one from
``init_redis()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Self

from . import _connection
from ._codec import encode
from ._core import _cache as flows
from ._core._validate import check_amount, check_key, check_pattern, check_ttl, escape_glob
from ._exceptions import ConfigurationError, InvalidInputError
from ._shell import AsyncShell, Shell, SyncShell

__all__ = ["RedisCache", "SyncRedisCache"]


class _CacheBase(Shell):
    """Argument handling shared by both twins: keys, TTLs, encoding."""

    __slots__ = ("_default_ttl",)

    def __init__(
        self,
        connection: _connection.RedisConnection | None = None,
        *,
        default_ttl: int | None = None,
        key_prefix: str | None = None,
        strict: bool = False,
    ) -> None:
        """Cache on ``connection`` (default: the one ``init_redis()`` sets up).

        ``default_ttl`` and ``key_prefix`` default to the connection's settings
        (``RESPONSE_CACHE_TTL``, ``REDIS_KEY_PREFIX``). With ``strict=True`` Redis failures
        raise ``BackendError`` instead of returning the spec's defaults.

        Raises:
            ConfigurationError: ``connection`` is not a RedisConnection (``from_url`` takes a
                URL), ``default_ttl`` is not a positive int, or another argument is invalid.
        """
        super().__init__(connection, key_prefix=key_prefix, strict=strict)
        if default_ttl is not None and (type(default_ttl) is not int or default_ttl <= 0):
            raise ConfigurationError(
                f"{type(self).__name__}: default_ttl is a positive int of seconds or None, "
                f"not {default_ttl!r}"
            )
        self._default_ttl = default_ttl

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        default_ttl: int | None = None,
        key_prefix: str | None = None,
        strict: bool = False,
        **settings: Any,
    ) -> Self:
        """A cache on a new connection to ``url``; ``settings`` go to ``RedisConnection``.

        The cache owns nothing the caller cannot reach: close the connection with
        ``cache.connection.close_sync()`` or ``await cache.connection.aclose()``.

        Raises:
            ConfigurationError: an invalid URL, setting or argument.
        """
        conn = _connection.RedisConnection(url=url, **settings)
        return cls(conn, default_ttl=default_ttl, key_prefix=key_prefix, strict=strict)

    @property
    def default_ttl(self) -> int:
        """TTL applied when a write names none."""
        return self._default_ttl or self.connection.settings.default_ttl

    def _key(self, key: str) -> str:
        conn = self.connection
        return self._prefix + check_key(key, conn.settings.max_key_bytes)

    def _ttl(self, ttl: int | None) -> int:
        return self.default_ttl if ttl is None else check_ttl(ttl)

    def _encode(self, value: Any) -> bytes:
        return encode(value, self.connection.settings.max_value_bytes)

    def _match(self, pattern: str) -> str:
        self._bind()
        return escape_glob(self._prefix) + check_pattern(pattern)

    def _flush_match(self, pattern: str, allow_all: bool) -> str:
        if not allow_all and isinstance(pattern, str) and not pattern.strip("*"):
            raise InvalidInputError("refusing to flush every key: pass allow_all=True to mean it")
        return self._match(pattern)

    def _many(self, keys: Iterable[str]) -> tuple[list[str], list[str]]:
        if isinstance(keys, str):
            raise InvalidInputError("get_many takes an iterable of keys, not one str")
        names = list(dict.fromkeys(keys))
        return [self._key(name) for name in names], names

    def _items(self, mapping: Mapping[str, Any]) -> list[tuple[str, bytes]]:
        return [(self._key(key), self._encode(value)) for key, value in mapping.items()]

    def _unknown_info(self) -> dict[str, Any]:
        return flows.describe_info(None, self._counters())

    @property
    def _cluster(self) -> bool:
        return self._bind().cluster


class SyncRedisCache(_CacheBase, SyncShell):
    """Blocking twin of ``RedisCache``: the same methods, without ``await``."""

    __slots__ = ()

    def get(self, key: str) -> Any:
        """Return the cached value, or None on a miss or a Redis failure."""
        return self._run(flows.get(self._key(key), self._stats), None)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return ``{key: value}`` for the keys found, in one round trip."""
        prefixed, names = self._many(keys)
        return self._run(flows.get_many(prefixed, names, self._stats, self._cluster), {})

    def set(self, key: str, value: Any, ttl: int | None = None) -> bool:
        """Store ``value`` as JSON with ``ttl`` seconds (default TTL if None); False on failure."""
        flow = flows.set_value(self._key(key), self._encode(value), self._ttl(ttl))
        return self._run(flow, False)

    def set_many(self, mapping: Mapping[str, Any], ttl: int | None = None) -> bool:
        """Store every item with ``ttl`` in one round trip; False on failure."""
        flow = flows.set_many(self._items(mapping), self._ttl(ttl), self._cluster)
        return self._run(flow, False)

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""
        return self._run(flows.delete(self._key(key)), False)

    def exists(self, key: str) -> bool:
        """True if ``key`` is cached."""
        return self._run(flows.exists(self._key(key)), False)

    def increment(self, key: str, amount: int = 1) -> int | None:
        """Add ``amount`` and return the new value; a new counter gets the default TTL."""
        flow = flows.increment(self._key(key), check_amount(amount), self.default_ttl)
        return self._run(flow, None)

    def expire(self, key: str, ttl: int) -> bool:
        """Set ``key`` to expire in ``ttl`` seconds; False if it does not exist."""
        return self._run(flows.expire(self._key(key), check_ttl(ttl)), False)

    def get_keys(self, pattern: str) -> list[str]:
        """Return the keys matching the glob ``pattern`` (SCAN, never KEYS), sorted."""
        return self._run(flows.scan_keys(self._match(pattern), len(self._prefix)), [])

    def flush_pattern(self, pattern: str, *, allow_all: bool = False) -> int:
        """Delete the keys matching ``pattern`` (SCAN + UNLINK in batches); return the count.

        Not atomic: keys written during the scan may survive.

        Raises:
            InvalidInputError: ``pattern`` would match every key and ``allow_all`` is False.
        """
        flow = flows.unlink_matching(self._flush_match(pattern, allow_all), self._cluster)
        return self._run(flow, 0)

    def get_info(self) -> dict[str, Any]:
        """Return the server's statistics (None where unknown) and this client's counters."""
        return self._run(flows.server_info(self._counters), None) or self._unknown_info()


class RedisCache(_CacheBase, AsyncShell):
    """The spec's async cache: JSON values, a TTL on every write, graceful degradation."""

    __slots__ = ()

    async def get(self, key: str) -> Any:
        """Return the cached value, or None on a miss or a Redis failure."""
        return await self._run(flows.get(self._key(key), self._stats), None)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return ``{key: value}`` for the keys found, in one round trip."""
        prefixed, names = self._many(keys)
        return await self._run(flows.get_many(prefixed, names, self._stats, self._cluster), {})

    async def set(self, key: str, value: Any, ttl: int | None = None) -> bool:
        """Store ``value`` as JSON with ``ttl`` seconds (default TTL if None); False on failure."""
        flow = flows.set_value(self._key(key), self._encode(value), self._ttl(ttl))
        return await self._run(flow, False)

    async def set_many(self, mapping: Mapping[str, Any], ttl: int | None = None) -> bool:
        """Store every item with ``ttl`` in one round trip; False on failure."""
        flow = flows.set_many(self._items(mapping), self._ttl(ttl), self._cluster)
        return await self._run(flow, False)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""
        return await self._run(flows.delete(self._key(key)), False)

    async def exists(self, key: str) -> bool:
        """True if ``key`` is cached."""
        return await self._run(flows.exists(self._key(key)), False)

    async def increment(self, key: str, amount: int = 1) -> int | None:
        """Add ``amount`` and return the new value; a new counter gets the default TTL."""
        flow = flows.increment(self._key(key), check_amount(amount), self.default_ttl)
        return await self._run(flow, None)

    async def expire(self, key: str, ttl: int) -> bool:
        """Set ``key`` to expire in ``ttl`` seconds; False if it does not exist."""
        return await self._run(flows.expire(self._key(key), check_ttl(ttl)), False)

    async def get_keys(self, pattern: str) -> list[str]:
        """Return the keys matching the glob ``pattern`` (SCAN, never KEYS), sorted."""
        return await self._run(flows.scan_keys(self._match(pattern), len(self._prefix)), [])

    async def flush_pattern(self, pattern: str, *, allow_all: bool = False) -> int:
        """Delete the keys matching ``pattern`` (SCAN + UNLINK in batches); return the count.

        Not atomic: keys written during the scan may survive.

        Raises:
            InvalidInputError: ``pattern`` would match every key and ``allow_all`` is False.
        """
        flow = flows.unlink_matching(self._flush_match(pattern, allow_all), self._cluster)
        return await self._run(flow, 0)

    async def get_info(self) -> dict[str, Any]:
        """Return the server's statistics (None where unknown) and this client's counters."""
        return await self._run(flows.server_info(self._counters), None) or self._unknown_info()
