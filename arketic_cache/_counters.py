"""Every counter object this process made, by family and name; totals outlive their owners.

A cache, repository, ``@cached`` function, rate limiter or session manager registers its
counter object (a dataclass of ints) under a family (``cache``, ``repository``, ``cached``,
``ratelimit``, ``session``) and a bounded name (a key prefix, a schema or a function, never a
key). When the owner is collected its counts move into the retired totals of its family and
name, so the totals (what health and the metrics read) never go down.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from dataclasses import fields
from typing import Any

__all__ = ["Label", "counts_of", "totals", "track"]

#: (family, name)
Label = tuple[str, str]

_lock = threading.Lock()
_live: dict[int, tuple[Label, Any]] = {}
_retired: dict[Label, dict[str, int]] = {}
_dead: deque[int] = deque()  # owners collected since the last read (appended lock-free)
_names: dict[type, tuple[str, ...]] = {}


def counts_of(counters: Any) -> dict[str, int]:
    """A counter object's fields and values."""
    names = _names.get(type(counters))
    if names is None:
        names = _names[type(counters)] = tuple(f.name for f in fields(counters))
    return {name: getattr(counters, name) for name in names}


def _retire(key: int) -> None:
    # A finalizer may run inside a garbage collection triggered while ``_lock`` is held by
    # this very thread: it must not take the lock, so it only queues the key.
    _dead.append(key)


def _settle() -> None:
    """Move the counts of collected owners into the retired totals (``_lock`` held)."""
    while _dead:
        entry = _live.pop(_dead.popleft(), None)
        if entry is not None:
            label, counters = entry
            _add(_retired.setdefault(label, {}), counts_of(counters))


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for name, value in counts.items():
        into[name] = into.get(name, 0) + value


def track(owner: object, family: str, name: str, counters: Any) -> None:
    """Count ``counters`` (``owner``'s) under ``(family, name)``, also after ``owner`` is
    collected."""
    with _lock:
        _live[id(counters)] = ((family, name), counters)
    weakref.finalize(owner, _retire, id(counters))


def totals(*families: str) -> dict[Label, dict[str, int]]:
    """The summed counts per (family, name) of every owner alive or collected (of
    ``families``, or of all)."""
    with _lock:
        _settle()
        found = {label: dict(counts) for label, counts in _retired.items()}
        live = list(_live.values())
    for label, counters in live:
        _add(found.setdefault(label, {}), counts_of(counters))
    if families:
        return {label: counts for label, counts in found.items() if label[0] in families}
    return found
