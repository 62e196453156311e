"""The in-process L1: a dict of ``call key -> (value, monotonic deadline, L2 key)``.

Deadlines come from this host's monotonic clock only: a computed value lives its TTL from
when it was computed, a value read from Redis lives what Redis reports as its remaining TTL.
No wall-clock time of another host enters the arithmetic.

Reads on the hot path take no lock (one dict lookup and a deadline check, atomic under the
GIL); writes, drops and clears take the store's lock. Entries are indexed by their L2 key, so
an invalidation drops every call shape that maps to it.

While the store is not *coherent* (its invalidation listener is not listening: not yet
subscribed, the server frozen or gone, the permission refused, a fresh fork), no entry is
kept longer than ``grace`` seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["L1Store"]

#: Keys whose last drop is remembered (for fills racing an invalidation) before the memory of
#: them is folded into one "everything before this" mark.
DROPS_REMEMBERED = 4096


class L1Store:
    """Thread-safe L1 entries of one decorated function."""

    __slots__ = (
        "__weakref__",
        "_cleared",
        "_drops",
        "_index",
        "coherent",
        "data",
        "grace",
        "lock",
        "maxsize",
        "prefix",
        "ttl",
        "version",
    )

    def __init__(
        self, maxsize: int, ttl: float, *, grace: float | None = None, prefix: str = ""
    ) -> None:
        """``grace`` None: nothing to be coherent with (no L2), always coherent."""
        self.maxsize = maxsize
        self.ttl = ttl
        self.grace = grace
        self.prefix = prefix
        self.coherent = grace is None
        self.data: dict[Any, tuple[Any, float, str]] = {}
        self._index: dict[str, set[Any]] = {}
        self.lock = threading.Lock()
        # Every drop and clear takes a new version. A value read from Redis before an
        # invalidation of its key arrived must not enter L1 after it: nothing would ever
        # announce it again. ``put`` compares the version the reader saw with these.
        self.version = 0
        self._drops: dict[str, int] = {}
        self._cleared = 0

    def get(self, call_key: Any) -> tuple[Any, float, str] | None:
        """A live entry for ``call_key`` (the hot path inlines the same two steps)."""
        entry = self.data.get(call_key)
        if entry is not None and entry[1] > time.monotonic():
            return entry
        return None

    def put(
        self, call_key: Any, l2_key: str, value: Any, lifetime: float, seen: int | None = None
    ) -> None:
        """Keep ``value`` for at most ``min(ttl, lifetime)`` seconds (``grace`` if incoherent).

        ``seen`` is ``version`` from before the value was read: if ``l2_key`` was dropped
        since, the value is not kept.
        """
        life = min(self.ttl, lifetime)
        if not self.coherent and self.grace is not None:
            life = min(life, self.grace)
        if life <= 0:
            return
        with self.lock:
            if seen is not None and (self._cleared > seen or self._drops.get(l2_key, 0) > seen):
                return
            data = self.data
            if data.pop(call_key, None) is None and len(data) >= self.maxsize:
                self._evict_oldest()
            data[call_key] = (value, time.monotonic() + life, l2_key)  # last: newest
            self._index.setdefault(l2_key, set()).add(call_key)
            if len(self._index) > 2 * self.maxsize:
                self._reindex()

    def recall(self, l2_key: str, call_key: Any) -> tuple[Any, float, str] | None:
        """A live entry stored for ``l2_key`` under any call shape, kept under ``call_key`` too.

        One critical section: an invalidation cannot slip between finding and re-keying.
        """
        now = time.monotonic()
        with self.lock:
            for known in self._index.get(l2_key, ()):
                entry = self.data.get(known)
                if entry is not None and entry[1] > now:
                    if call_key is not None and call_key not in self.data:
                        if len(self.data) >= self.maxsize:
                            self._evict_oldest()
                        self.data[call_key] = entry
                        self._index[l2_key].add(call_key)
                    return entry
            return None

    def drop(self, l2_key: str) -> int:
        """Forget every call shape stored for ``l2_key``; return how many were held."""
        with self.lock:
            self.version += 1
            self._drops[l2_key] = self.version
            if len(self._drops) > DROPS_REMEMBERED:
                self._drops.clear()
                self._cleared = self.version
            dropped = 0
            for call_key in self._index.pop(l2_key, ()):
                dropped += self.data.pop(call_key, None) is not None
            return dropped

    def clear(self) -> None:
        """Forget everything (and refuse fills read before now)."""
        with self.lock:
            self.version += 1
            self._cleared = self.version
            self._drops.clear()
            self.data.clear()
            self._index.clear()

    def degrade(self) -> None:
        """Coherence is lost: keep nothing longer than ``grace`` seconds from now."""
        if self.grace is None:
            return
        with self.lock:
            self.coherent = False
            deadline = time.monotonic() + self.grace
            data = self.data
            for call_key, (value, until, l2_key) in list(data.items()):
                if until > deadline:
                    data[call_key] = (value, deadline, l2_key)

    def restore(self) -> None:
        """Coherence is back: what L1 holds may have missed invalidations, so drop it."""
        self.clear()
        self.coherent = True

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread may have held it) and nothing kept."""
        self.lock = threading.Lock()
        self.coherent = self.grace is None
        self.clear()

    def __len__(self) -> int:
        now = time.monotonic()
        return sum(1 for entry in list(self.data.values()) if entry[1] > now)

    def _evict_oldest(self) -> None:
        call_key = next(iter(self.data))
        _, _, l2_key = self.data.pop(call_key)
        shapes = self._index.get(l2_key)
        if shapes is not None:
            shapes.discard(call_key)
            if not shapes:
                del self._index[l2_key]

    def _reindex(self) -> None:
        # Entries also leave by expiry; rebuild the index from what is still live.
        now = time.monotonic()
        live = {k: e for k, e in self.data.items() if e[1] > now}
        self.data.clear()
        self.data.update(live)
        index: dict[str, set[Any]] = {}
        for call_key, (_, _, l2_key) in live.items():
            index.setdefault(l2_key, set()).add(call_key)
        self._index = index
