"""This process's cache lookups, summed over every cache and ``@cached`` function it made.

Health judges the hit rate from these (the library's own counters) rather than from the
server's ``keyspace_hits``, which also counts EXISTS, TTL and script reads of every client.
A collected cache's counts stay in the totals, so a window's difference never goes negative.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque

from ._core._cache import CacheStats
from ._core._health import Lookups

__all__ = ["recent_lookups", "total_lookups", "track"]

_lock = threading.Lock()
_live: dict[int, CacheStats] = {}
_retired = CacheStats()  # the counts of collected owners
#: (monotonic time, hits, misses) at each health check, oldest first; the first is the start.
_samples: deque[tuple[float, int, int]] = deque([(time.monotonic(), 0, 0)], maxlen=4096)


_dead: deque[int] = deque()  # owners collected since the last read (appended lock-free)


def _retire(key: int) -> None:
    # A finalizer may run inside a garbage collection triggered while ``_lock`` is held by
    # this very thread: it must not take the lock, so it only queues the key.
    _dead.append(key)


def _settle() -> None:
    """Move the counts of collected owners into the retired totals (``_lock`` held)."""
    while _dead:
        stats = _live.pop(_dead.popleft(), None)
        if stats is not None:
            _retired.hits += stats.hits + stats.l1_hits
            _retired.misses += stats.misses


def track(owner: object, stats: CacheStats) -> None:
    """Count ``stats`` (``owner``'s counters) in the process's totals, also after ``owner``
    is collected."""
    with _lock:
        _live[id(stats)] = stats
    weakref.finalize(owner, _retire, id(stats))


def total_lookups() -> tuple[int, int]:
    """(hits at either level, misses) of every cache this process made."""
    with _lock:
        _settle()
        hits, misses = _retired.hits, _retired.misses
        for stats in list(_live.values()):
            hits, misses = hits + stats.hits + stats.l1_hits, misses + stats.misses
    return hits, misses


def recent_lookups(window: float) -> Lookups:
    """The lookups since the oldest health check still inside ``window`` seconds (the process
    start, while it is); records this check as a sample."""
    now = time.monotonic()
    hits, misses = total_lookups()
    with _lock:
        while _samples and now - _samples[0][0] > window:
            _samples.popleft()
        base = _samples[0] if _samples else None
        _samples.append((now, hits, misses))
    if base is None:  # no check inside the window: the best we know is since the start
        return Lookups(hits=hits, misses=misses, seconds=None)
    return Lookups(hits=hits - base[1], misses=misses - base[2], seconds=now - base[0])
