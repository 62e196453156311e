"""@cached control and early refresh: cache_info, cache_clear, invalidate, probabilistic refresh."""

from __future__ import annotations

from typing import Any

import redis

from arketic_cache._core._cached import early_refresh_due

from ..helpers import Flavor
from .helpers import envelope, identity, make, stored_value


class TestControl:
    """cache_info, cache_clear and invalidate."""

    def test_cache_info_counts(self, flavor: Flavor) -> None:
        """Misses, L1 hits, L2 hits after cache_clear, and the L1 size."""
        fn = make(flavor, identity)
        assert tuple(fn.cache_info())[:5] == (0, 0, 0, 0, 0)
        fn(1)
        assert tuple(fn.cache_info())[:5] == (0, 0, 1, 0, 1)
        fn(1)
        assert tuple(fn.cache_info())[:5] == (1, 0, 1, 0, 1)
        fn(2)
        assert tuple(fn.cache_info())[:5] == (1, 0, 2, 0, 2)
        fn.cache_clear()
        assert tuple(fn.cache_info())[:5] == (1, 0, 2, 0, 0)
        fn(1)
        fn(1)
        assert tuple(fn.cache_info())[:5] == (2, 1, 2, 0, 1)

    def test_coherence_mode_is_reported(self, flavor: Flavor) -> None:
        """cache_info() and the cache's get_info() name the mode: tracking on a real server,
        announce on fakeredis (no CLIENT TRACKING) and on a cluster (tracking is per node),
        none before anything listens."""
        cache = flavor.cache()
        assert cache.get_info()["client"]["coherence"] == "none"
        fn = make(flavor, identity)  # subscribed on return (see ``settle``)
        announced = flavor.backend_url.startswith(("memory://", "redis+cluster://"))
        expected = "announce" if announced else "tracking"
        assert fn.cache_info().coherence == expected
        assert cache.get_info()["client"]["coherence"] == expected

    def test_cache_info_counts_errors(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A wrong-type key and a value that does not fit its annotation are errors, not raised."""

        def mislabelled(x: int) -> int:
            return "not an int"  # type: ignore[return-value]

        fn = make(flavor, mislabelled, key=lambda x: f"err:{x}")
        assert fn(1) == "not an int"
        assert fn.cache_info().errors == 1
        assert raw.keys("err:*") == []
        raw.rpush("err:2", "a")
        assert fn(2) == "not an int"
        assert fn.cache_info().errors == 3  # the list at the key, and again the bad result

    def test_cache_clear_keeps_l2(self, flavor: Flavor, raw: redis.Redis) -> None:
        """cache_clear empties L1 only: Redis keeps the entry and serves it next."""
        calls: list[Any] = []

        def double(x: int) -> int:
            calls.append(x)
            return 2 * x

        fn = make(flavor, double)
        fn(1)
        fn.cache_clear()
        assert fn.cache_info().l1_size == 0
        assert len(raw.keys("cached:*")) == 1
        assert fn(1) == 2
        assert calls == [1]

    def test_invalidate_is_false_when_redis_is_not_reached(self, flavor: Flavor) -> None:
        """With Redis unreachable, invalidate says False (L2 may still hold the entry) and
        every failed Redis call is an error in cache_info()."""
        fn = make(flavor, identity, connection=flavor.dead_connection(), ready=False)
        assert fn(1) == 1  # the read failed: computed, kept in L1 only
        assert fn.cache_info().errors == 1
        assert fn.invalidate(1) is False
        assert fn.cache_info().errors == 2
        assert fn.cache_info().l1_size == 0  # this process's copy is gone all the same

    def test_invalidate_any_call_shape(self, flavor: Flavor, raw: redis.Redis) -> None:
        """invalidate(x=1) removes the entry written by f(1) and f(1, 2) from L1 and L2."""
        calls: list[Any] = []

        def add(x: int, y: int = 2) -> int:
            calls.append((x, y))
            return x + y

        fn = make(flavor, add)
        fn(1)
        fn(1, 2)
        fn(5)
        assert fn.invalidate(x=1) is True
        assert len(raw.keys("cached:*")) == 1
        assert fn.cache_info().l1_size == 1  # only f(5) is left
        assert fn.invalidate(1, y=2) is False
        assert fn(1) == 3
        assert fn(5) == 7
        assert calls == [(1, 2), (5, 2), (1, 2)]


# -- early refresh (XFetch) ----------------------------------------------------------------------


class TestEarlyRefresh:
    """XFetch: an entry close to expiry and slow to compute is recomputed early."""

    def test_math_with_fixed_draws(self) -> None:
        """due iff -d * beta * ln(draw) >= time left; never with beta 0 or d 0."""
        d, left = 10.0, 5.0
        assert early_refresh_due(d, 1.0, left, 0.3) is True  # 12.04 >= 5
        assert early_refresh_due(d, 1.0, left, 0.9) is False  # 1.05 < 5
        assert early_refresh_due(d, 1.0, left, 1.0) is False  # ln 1 = 0: never early
        assert early_refresh_due(d, 0.5, left, 0.5) is False  # 3.47 < 5
        assert early_refresh_due(d, 2.0, left, 0.5) is True  # 13.9 >= 5
        assert early_refresh_due(d, 0.0, left, 0.01) is False
        assert early_refresh_due(0.0, 1.0, left, 0.01) is False
        assert early_refresh_due(d, 1.0, 0.0, 1.0) is True  # at expiry: due

    def test_due_entry_is_recomputed_while_valid(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A valid entry that took ages to compute is refreshed early, and the new value stored."""
        calls: list[Any] = []

        def compute(x: int) -> int:
            calls.append(x)
            return 2

        raw.set("xf:1", envelope(1, expires_in=60, compute_seconds=1e12), ex=60)
        fn = make(flavor, compute, key=lambda x: f"xf:{x}", early_refresh=1.0, ttl=600)
        assert fn(1) == 2
        assert calls == [1]
        assert stored_value(raw, "xf:1") == 2
        assert raw.ttl("xf:1") > 60
        assert fn(1) == 2  # the fresh value, from L1
        assert calls == [1]

    def test_without_early_refresh_the_entry_is_served(
        self, flavor: Flavor, raw: redis.Redis
    ) -> None:
        """The same entry is simply served when early_refresh is off."""
        raw.set("xf:1", envelope(1, expires_in=60, compute_seconds=1e12), ex=60)
        fn = make(flavor, identity, key=lambda x: f"xf:{x}")
        assert fn(1) == 1
        assert fn.cache_info().l2_hits == 1

    def test_fast_entry_far_from_expiry_is_served(self, flavor: Flavor, raw: redis.Redis) -> None:
        """early_refresh on, but an entry that computes in no time is not refreshed."""
        raw.set("xf:1", envelope(1, expires_in=3600, compute_seconds=0.0), ex=3600)
        fn = make(flavor, identity, key=lambda x: f"xf:{x}", early_refresh=1.0)
        assert fn(1) == 1
        assert fn.cache_info().l2_hits == 1


# -- faults on a real server ---------------------------------------------------------------------

#: A read from a frozen server costs this much; a healthy local server answers far sooner.
