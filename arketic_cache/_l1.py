"""The in-process L1: a cachetools TLRU cache whose entries expire no later than their L2 copy.

Entries are found by the call's own argument tuple (cheap to build, no Redis key needed) and
indexed by their L2 key, so an invalidation of that key drops every call shape that maps to it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from cachetools import TLRUCache

__all__ = ["L1Store"]


def _expires(_key: Any, entry: tuple[Any, float, str], _now: float) -> float:
    return entry[1]


class L1Store:
    """Thread-safe L1 entries ``call key -> (value, monotonic deadline, L2 key)``."""

    __slots__ = ("__weakref__", "_index", "cache", "lock", "maxsize", "ttl", "version")

    def __init__(self, maxsize: int, ttl: float) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self.cache: TLRUCache[Any, tuple[Any, float, str]] = TLRUCache(
            maxsize, _expires, timer=time.monotonic
        )
        self.lock = threading.Lock()
        self._index: dict[str, set[Any]] = {}
        # Bumped by every drop and clear: a value read from Redis before an invalidation
        # arrived must not enter L1 after it (nothing would ever announce it again).
        self.version = 0

    def put(
        self, call_key: Any, l2_key: str, value: Any, lifetime: float, seen: int | None = None
    ) -> None:
        """Keep ``value`` for at most ``min(ttl, lifetime)`` seconds.

        ``seen`` is ``version`` from before the value was read: if anything was invalidated
        since, the value is not kept.
        """
        life = min(self.ttl, lifetime)
        if life <= 0:
            return
        with self.lock:
            if seen is not None and seen != self.version:
                return
            self.cache[call_key] = (value, time.monotonic() + life, l2_key)
            self._index.setdefault(l2_key, set()).add(call_key)
            if len(self._index) > 2 * self.maxsize:
                self._reindex()

    def recall(self, l2_key: str, call_key: Any) -> tuple[Any, float, str] | None:
        """A live entry stored for ``l2_key`` under any call shape, kept under ``call_key`` too.

        One critical section: an invalidation cannot slip between finding and re-keying.
        """
        with self.lock:
            for known in self._index.get(l2_key, ()):
                entry = self.cache.get(known)
                if entry is not None:
                    if call_key is not None:
                        self.cache[call_key] = entry
                        self._index[l2_key].add(call_key)
                    return entry
            return None

    def drop(self, l2_key: str) -> int:
        """Forget every call shape stored for ``l2_key``; return how many were held."""
        with self.lock:
            self.version += 1
            dropped = 0
            for call_key in self._index.pop(l2_key, ()):
                dropped += self.cache.pop(call_key, None) is not None
            return dropped

    def clear(self) -> None:
        """Forget everything."""
        with self.lock:
            self.version += 1
            self.cache.clear()
            self._index.clear()

    def __len__(self) -> int:
        with self.lock:
            self.cache.expire()
            return len(self.cache)

    def _reindex(self) -> None:
        # Entries also leave by expiry and eviction; rebuild the index from what remains.
        self.cache.expire()
        index: dict[str, set[Any]] = {}
        for call_key, (_, _, l2_key) in self.cache.items():
            index.setdefault(l2_key, set()).add(call_key)
        self._index = index
