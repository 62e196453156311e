"""Metrics snapshot misuses mypy must reject. Each offending line ends with ``# E: <code>``.

Checked by ``tests/test_typing.py``; excluded from the normal ``mypy`` run and from ruff.
"""

from __future__ import annotations

from arketic_cache import metrics_snapshot

snapshot = metrics_snapshot()
cache = snapshot.caches[0]
cache.misses = 0  # E: misc
hits: str = cache.l2_hits  # E: assignment
backend = snapshot.backends[0]
backend.failures["timeout"] = 0  # E: index
ratio: float = snapshot.caches  # E: assignment
snapshot.cache_list  # E: attr-defined
