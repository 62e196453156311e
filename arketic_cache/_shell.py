"""What every public shell shares: the connection binding, and the sync and async runners.

A shell resolves its connection on each call (the global one from ``init_redis()`` when none
was given), caches what it derives from that connection's settings, and hands each flow to the
connection's sync or async driver together with the degraded answer for that call.
"""

from __future__ import annotations

import sys
import warnings
from asyncio import _get_running_loop
from typing import Any, ClassVar, TypeVar, cast

from . import _connection
from ._core._cache import CacheStats
from ._core._effects import Flow
from ._counters import track
from ._exceptions import ConfigurationError
from ._invalidation import coherence_mode
from ._settings import redact_url

__all__ = [
    "AsyncShell",
    "Shell",
    "SyncShell",
    "check_clock",
    "check_connection",
    "check_flag",
    "misplaced_str",
]

T = TypeVar("T")
#: What a driver returns for a failed call, so that the shell can count it before degrading.
_FAILED: Any = object()
_PACKAGE = __name__.rpartition(".")[0] + "."


class Shell:
    """A connection-bound shell: ``strict`` mode, own counters, settings-derived state."""

    #: The counter family its ``_stats`` are reported under (``_counters.py``).
    _family: ClassVar[str] = "cache"
    #: The type of its ``_stats`` counter object (with at least ``errors``).
    _stats_type: ClassVar[type[Any]] = CacheStats

    __slots__ = (
        "__weakref__",
        "_bound",
        "_connection",
        "_key_prefix",
        "_prefix",
        "_stats",
        "strict",
    )

    def __init__(
        self,
        connection: _connection.RedisConnection | None,
        *,
        key_prefix: str | None,
        strict: bool,
    ) -> None:
        owner = type(self).__name__
        self._connection = check_connection(connection, owner)
        if key_prefix is not None and type(key_prefix) is not str:
            raise ConfigurationError(f"{owner}: key_prefix is a str or None, not {key_prefix!r}")
        self._key_prefix = key_prefix
        self.strict = check_flag(owner, "strict", strict)
        self._stats = self._stats_type()
        self._bound: _connection.RedisConnection | None = None
        self._prefix = ""
        self._track()

    def _track(self) -> None:
        """Register this shell's counters for the process totals (health, metrics)."""
        track(self, self._family, self._metric_name(), self._stats)

    def _metric_name(self) -> str:
        """This shell's name in the metrics: its key prefix (bounded: never a key)."""
        return self._key_prefix or "default"

    @property
    def connection(self) -> _connection.RedisConnection:
        """The connection in use.

        Raises:
            NotInitializedError: none was given and ``init_redis()`` has not run.
        """
        return self._bind()

    def _bind(self) -> _connection.RedisConnection:
        conn = self._connection or _connection.current_connection()
        if conn is not self._bound:
            prefix = self._key_prefix
            self._prefix = conn.settings.key_prefix if prefix is None else prefix
            self._bound = conn
            self._rebind(conn)
        return conn

    def _rebind(self, conn: _connection.RedisConnection) -> None:
        """Derive per-connection state (subclasses extend this)."""

    def _counters(self) -> dict[str, Any]:
        stats = self._stats
        looked_up = stats.hits + stats.misses
        return self._report(
            hits=stats.hits,
            misses=stats.misses,
            hit_rate=stats.hits / looked_up if looked_up else None,
            decode_errors=stats.decode_errors,
        )

    def _report(self, **own: Any) -> dict[str, Any]:
        """``own`` counters, the connection's failure counters, backend, URL and L1 coherence."""
        conn = self._bind()
        return {
            **own,
            **conn.state.counters(),
            "backend": conn.backend,
            "url": conn.settings.display_url,
            "coherence": coherence_mode(conn),
        }

    def __repr__(self) -> str:
        conn = self._connection
        where = conn.settings.display_url if conn else "the init_redis() connection"
        return f"{type(self).__name__}({where}, strict={self.strict})"


class SyncShell(Shell):
    """Runs flows on the blocking driver."""

    __slots__ = ()

    def _run(self, flow: Flow[T], fallback: T) -> T:
        if _get_running_loop() is not None:
            _warn_blocking(type(self).__name__)
        result = self._bind().sync_driver.run(flow, _FAILED, self.strict)
        if result is _FAILED:
            self._stats.errors += 1
            return fallback
        return cast(T, result)


def check_connection(connection: Any, owner: str) -> _connection.RedisConnection | None:
    """Return ``connection`` if it is a ``RedisConnection`` or None; name the mistake if not."""
    if connection is None or isinstance(connection, _connection.RedisConnection):
        return connection
    if isinstance(connection, str):
        also = f"{owner}.from_url(...)" if owner.endswith("RedisCache") else None
        raise misplaced_str(owner, "connection", "a RedisConnection", connection, also)
    raise ConfigurationError(
        f"{owner}: connection is a RedisConnection (or None for the init_redis() one), "
        f"not a {type(connection).__name__}"
    )


def check_flag(owner: str, name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (a truthy str such as "false" is a mistake)."""
    if type(value) is not bool:
        raise ConfigurationError(f"{owner}: {name} is True or False, not {value!r}")
    return value


def misplaced_str(
    owner: str, name: str, expected: str, value: str, also: str | None = None
) -> ConfigurationError:
    """The error for a str (often a URL) given where ``expected`` belongs; passwords masked.

    ``also`` names another form that takes the URL (e.g. ``RedisCache.from_url(...)``).
    """
    shown = redact_url(value) if "://" in value else value
    other = f", or use {also}" if also else ""
    return ConfigurationError(
        f"{owner}: {name} is {expected}, not the str {shown!r} "
        f"(a URL goes in connection=RedisConnection(url=...){other})"
    )


def check_clock(owner: str, clock: Any) -> None:
    """Refuse a ``clock`` seam that is neither None nor callable."""
    if clock is not None and not callable(clock):
        raise ConfigurationError(f"{owner}: clock is a function or None, not {clock!r}")


def _warn_blocking(cls: str) -> None:
    """Warn, at the caller's line, that a sync twin runs inside an event loop."""
    method = sys._getframe(2).f_code.co_name  # the public method that called _run
    level, frame = 4, sys._getframe(3)  # stacklevel 4: the frame above the public method
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back  # e.g. a @rate_limited wrapper: blame its caller
    warnings.warn(
        f"{cls}.{method} blocks the running event loop on every Redis call: "
        f"await {cls.removeprefix('Sync')}.{method} instead",
        RuntimeWarning,
        stacklevel=level,
    )


class AsyncShell(Shell):
    """Runs flows on the asyncio driver."""

    __slots__ = ()

    async def _run(self, flow: Flow[T], fallback: T) -> T:
        result = await self._bind().async_driver.run(flow, _FAILED, self.strict)
        if result is _FAILED:
            self._stats.errors += 1
            return fallback
        return cast(T, result)
