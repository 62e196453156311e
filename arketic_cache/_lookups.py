"""This process's cache lookups over a recent window, summed over every cache it made.

Health judges the hit rate from these (the library's own counters) rather than from the
server's ``keyspace_hits``, which also counts EXISTS, TTL and script reads of every client.
A collected cache's counts stay in the totals (``_counters.py``), so a window's difference
never goes negative.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from ._core._health import Lookups
from ._counters import totals

__all__ = ["LOOKUP_FAMILIES", "recent_lookups", "total_lookups"]

#: The counter families whose lookups the hit rate judges.
LOOKUP_FAMILIES = ("cache", "repository", "cached")

_lock = threading.Lock()
#: (monotonic time, hits, misses) at each health check, oldest first; the first is the start.
_samples: deque[tuple[float, int, int]] = deque([(time.monotonic(), 0, 0)], maxlen=4096)


def total_lookups() -> tuple[int, int]:
    """(hits at either level, misses) of every cache this process made."""
    hits = misses = 0
    for counts in totals(*LOOKUP_FAMILIES).values():
        hits += counts["hits"] + counts["l1_hits"]
        misses += counts["misses"]
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
