"""Key pattern analysis (pure): keys grouped by schema or by inferred pattern, with counts,
memory, TTL spread and the keys without a TTL that the spec's TTL rules forbid."""

from __future__ import annotations

import heapq
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import InvalidInputError
from .._keys import KeySchema

__all__ = ["Grouper", "KeyFacts", "Summary", "inferred_pattern"]

#: A name segment this long, or holding a digit, is taken for an id (``user:*:profile``).
_DYNAMIC = re.compile(r"\d|^.{25,}$")


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """One key as a scan saw it: ``ttl`` in seconds (None: no TTL), ``memory`` in bytes
    (None where the server cannot tell, e.g. the embedded backend)."""

    key: str
    type: str
    ttl: float | None
    memory: int | None


def inferred_pattern(key: str) -> str:
    """``key`` with every id-like segment replaced by ``*``: ``user:42:profile`` ->
    ``user:*:profile``."""
    return ":".join("*" if _DYNAMIC.search(part) else part for part in key.split(":"))


@dataclass(slots=True)
class _Group:
    count: int = 0
    memory: int = 0
    measured: int = 0
    no_ttl: int = 0
    ttls: list[float] = field(default_factory=list)
    types: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Summary:
    """The analysis: a row per group (largest memory, then count, first) and the biggest keys."""

    groups: list[dict[str, Any]]
    biggest: list[KeyFacts]
    scanned: int
    without_ttl: int


class Grouper:
    """Groups keys by the first schema that parses them (``by="schema"``; others by
    inferred pattern) or by inferred pattern alone (``by="prefix"``); ``key_prefix`` is the
    settings' prefix, taken off before parsing."""

    def __init__(
        self, schemas: Sequence[type[KeySchema]], by: str, key_prefix: str = "", top: int = 10
    ) -> None:
        if by not in ("schema", "prefix"):
            raise InvalidInputError(f"group by 'schema' or 'prefix', not {by!r}")
        self.by = by
        self.key_prefix = key_prefix
        self.top = top
        # A schema is tried only on keys that start with its static part.
        self._schemas = [(s.template.split("{", 1)[0], s) for s in schemas]
        self._groups: dict[str, _Group] = {}
        self._biggest: list[tuple[int, str, KeyFacts]] = []
        self.scanned = 0

    def group_of(self, key: str) -> str:
        """The group ``key`` falls in: a schema's name, or an inferred pattern."""
        body = key.removeprefix(self.key_prefix) if self.key_prefix else key
        if self.by == "schema":
            for static, schema in self._schemas:
                if body.startswith(static):
                    try:
                        schema.parse(body)
                    except InvalidInputError:
                        continue
                    return schema.__name__
        return inferred_pattern(key)

    def add(self, facts: Iterable[KeyFacts]) -> None:
        for fact in facts:
            self.scanned += 1
            group = self._groups.setdefault(self.group_of(fact.key), _Group())
            group.count += 1
            group.types[fact.type] += 1
            if fact.memory is not None:
                group.memory += fact.memory
                group.measured += 1
                entry = (fact.memory, fact.key, fact)
                if len(self._biggest) < self.top:
                    heapq.heappush(self._biggest, entry)
                elif entry > self._biggest[0]:
                    heapq.heapreplace(self._biggest, entry)
            if fact.ttl is None:
                group.no_ttl += 1
            else:
                group.ttls.append(fact.ttl)

    def summary(self) -> Summary:
        rows: list[dict[str, Any]] = []
        for name, group in self._groups.items():
            ttls = sorted(group.ttls)
            rows.append(
                {
                    "group": name,
                    "keys": group.count,
                    "types": dict(group.types),
                    "memory_bytes": group.memory if group.measured else None,
                    "ttl_min_s": round(ttls[0]) if ttls else None,
                    "ttl_median_s": round(statistics.median(ttls)) if ttls else None,
                    "ttl_max_s": round(ttls[-1]) if ttls else None,
                    "without_ttl": group.no_ttl,
                }
            )
        rows.sort(key=lambda r: (-(r["memory_bytes"] or 0), -r["keys"], r["group"]))
        biggest = [fact for _, _, fact in sorted(self._biggest, reverse=True)]
        without = sum(g.no_ttl for g in self._groups.values())
        return Summary(rows, biggest, self.scanned, without)
