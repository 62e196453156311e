"""``metrics_snapshot()``: every counter the library keeps, each one driven by real calls.

The snapshot covers the whole process, so each test finds its own entries by a name of its own
(a unique key prefix, schema or namespace) or by a server of its own; counts are exact.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import uuid
from typing import Any

import pytest
import redis

from arketic_cache import (
    CacheMetrics,
    RateLimitMetrics,
    RedisCache,
    RedisConnection,
    RedisRateLimiter,
    RedisSessionManager,
    RedisSettings,
    SessionMetrics,
    StringKey,
    SyncRedisCache,
    SyncRedisRateLimiter,
    SyncRedisSessionManager,
    SyncStringRepository,
    cached,
    metrics_snapshot,
)
from arketic_cache._invalidation import coherence
from arketic_cache._metrics import BackendMetrics, ListenerMetrics, server_label
from arketic_cache.testing import RedisServer, free_port

from ..cached.helpers import settle
from ..helpers import Flavor


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}:"


def cache_metrics(kind: str, name: str) -> CacheMetrics:
    found = [c for c in metrics_snapshot().caches if (c.kind, c.name) == (kind, name)]
    assert len(found) == 1, f"no single {kind} {name!r} in the snapshot"
    return found[0]


def limiter_metrics(name: str) -> RateLimitMetrics:
    (found,) = [r for r in metrics_snapshot().rate_limits if r.name == name]
    return found


def session_metrics(name: str) -> SessionMetrics:
    (found,) = [s for s in metrics_snapshot().sessions if s.name == name]
    return found


def backend_metrics(conn: RedisConnection) -> BackendMetrics:
    label = server_label(conn.settings)
    (found,) = [b for b in metrics_snapshot().backends if b.server == label]
    return found


def listener_metrics(conn: RedisConnection) -> ListenerMetrics:
    label = server_label(conn.settings)
    (found,) = [b for b in metrics_snapshot().listeners if b.server == label]
    return found


class ProfileKey(StringKey[int]):
    template = "metrics-profile:{user_id}"
    user_id: str


class TestCaches:
    def test_hits_misses_and_decode_errors_per_key_prefix(
        self, flavor: Flavor, raw: redis.Redis
    ) -> None:
        prefix = unique("snap")
        cache = flavor.cache(key_prefix=prefix)
        cache.set("a", 1)
        assert cache.get("a") == 1
        assert cache.get("missing") is None
        raw.set(prefix + "bad", b"\xff not json")
        assert cache.get("bad") is None
        found = cache_metrics("cache", prefix)
        assert (found.l2_hits, found.misses, found.decode_errors) == (1, 2, 1)
        assert (found.l1_hits, found.errors, found.l1_entries) == (0, 0, 0)

    def test_caches_of_one_prefix_are_summed_and_outlive_their_objects(
        self, flavor: Flavor
    ) -> None:
        prefix = unique("summed")
        first, second = flavor.cache(key_prefix=prefix), flavor.cache(key_prefix=prefix)
        first.set("k", 1)
        first.get("k")
        second.get("k")
        second.get("nothing")
        del first, second
        gc.collect()
        found = cache_metrics("cache", prefix)
        assert (found.l2_hits, found.misses) == (2, 1), "a collected cache's counts stay"

    def test_failed_calls_are_counted_per_cache_and_by_kind(self, flavor: Flavor) -> None:
        prefix = unique("failing")
        conn = flavor.dead_connection()
        cache = flavor.wrap(
            SyncRedisCache(conn, key_prefix=prefix), RedisCache(conn, key_prefix=prefix)
        )
        assert cache.get("k") is None
        assert cache.set("k", 1) is False
        found = cache_metrics("cache", prefix)
        assert (found.errors, found.misses, found.l2_hits) == (2, 0, 0)
        backend = backend_metrics(conn)
        assert backend.failures["unavailable"] == 2
        assert backend.connections == 1

    def test_a_repository_is_named_by_its_schema(self, backend_url: str) -> None:
        conn = RedisConnection(url=backend_url)
        try:
            before = [c for c in metrics_snapshot().caches if c.name == "ProfileKey"]
            base = before[0].l2_hits if before else 0
            repo = SyncStringRepository(ProfileKey, conn)
            repo.set(ProfileKey(user_id="u1"), 5)
            assert repo.get(ProfileKey(user_id="u1")) == 5
            assert cache_metrics("repository", "ProfileKey").l2_hits == base + 1
        finally:
            conn.close_sync()

    def test_cached_tiers_invalidations_and_l1_size(self, flavor: Flavor) -> None:
        namespace = unique("fn").rstrip(":")
        calls: list[int] = []

        def body(x: int) -> int:
            calls.append(x)
            return x * 2

        if flavor.name == "sync":
            fn: Any = cached(namespace=namespace, connection=flavor.connection)(body)
            call, invalidate = fn, fn.invalidate
        else:

            async def face(x: int) -> int:
                return body(x)

            fn = cached(namespace=namespace, connection=flavor.connection)(face)

            def call(x: int) -> Any:
                return flavor.runner.run(fn(x))

            def invalidate(x: int) -> Any:
                return flavor.runner.run(fn.invalidate(x))

        settle(fn)  # the listener's first subscription flushes L1: let it happen first
        assert call(1) == 2  # miss: computed
        assert call(1) == 2  # L1 hit
        assert call(2) == 4
        found = cache_metrics("cached", namespace)
        assert (found.misses, found.l1_hits, found.l1_entries) == (2, 1, 2)
        assert invalidate(1) is True
        found = cache_metrics("cached", namespace)
        assert (found.invalidations_sent, found.l1_entries) == (1, 1)


class TestRateLimits:
    @pytest.fixture
    def limiter(self, flavor: Flavor) -> Any:
        self.prefix = unique("limits")
        conn = flavor.connection
        return flavor.wrap(
            SyncRedisRateLimiter(60, connection=conn, key_prefix=self.prefix),
            RedisRateLimiter(60, connection=conn, key_prefix=self.prefix),
        )

    def test_allowed_and_denied_each_counted_once(self, limiter: Any) -> None:
        for _ in range(3):
            limiter.check("user:1", 2)
        limiter.check("user:1", 2, cost=5)  # more than the limit: denied without Redis
        found = limiter_metrics(self.prefix)
        assert (found.allowed, found.denied, found.degraded, found.misconfigured) == (2, 2, 0, 0)

    def test_a_key_of_another_type_is_misconfigured_not_degraded(
        self, limiter: Any, raw: redis.Redis
    ) -> None:
        limiter.check("user:2", 5)
        (key,) = [k for k in raw.scan_iter(match=self.prefix + "*")]
        raw.delete(key)
        raw.hset(key, "a", "b")  # the limiter keeps a sorted set here
        decision = limiter.check("user:2", 5)
        assert decision.degraded
        found = limiter_metrics(self.prefix)
        assert (found.allowed, found.misconfigured, found.degraded) == (1, 1, 0)
        assert limiter.get_info()["degraded_decisions"] == 1

    def test_an_outage_is_degraded(self, flavor: Flavor) -> None:
        prefix = unique("down")
        conn = flavor.dead_connection()
        limiter = flavor.wrap(
            SyncRedisRateLimiter(connection=conn, key_prefix=prefix),
            RedisRateLimiter(connection=conn, key_prefix=prefix),
        )
        assert limiter.check("k", 1).degraded
        found = limiter_metrics(prefix)
        assert (found.degraded, found.allowed, found.misconfigured) == (1, 0, 0)


class TestSessions:
    def test_every_session_event(self, flavor: Flavor) -> None:
        prefix = unique("sessions")
        conn = flavor.connection
        manager = flavor.wrap(
            SyncRedisSessionManager(connection=conn, key_prefix=prefix),
            RedisSessionManager(connection=conn, key_prefix=prefix),
        )
        first = manager.new_session({"user_id": "u1"})
        manager.new_session({"user_id": "u1"})
        rotated = manager.rotate_session(first)
        token = manager.issue_refresh_token(rotated)
        assert manager.refresh_session(token) is not None
        assert manager.refresh_session(token) is None  # reuse: its family is revoked
        ended = manager.delete_user_sessions("u1")
        found = session_metrics(prefix)
        assert (found.created, found.rotated, found.refreshed) == (2, 1, 1)
        assert found.refresh_reuse_detected == 1
        assert found.ended == ended >= 1
        assert (found.corrupt, found.update_conflicts) == (0, 0)


@pytest.mark.redis
class TestBackends:
    def test_pool_waits_are_counted(self, fresh_server: RedisServer) -> None:
        conn = RedisConnection(url=fresh_server.url, max_connections=1)
        cache = RedisCache(conn)

        async def both() -> None:
            await asyncio.gather(cache.get("a"), cache.get("b"), cache.get("c"))
            await conn.aclose()

        asyncio.run(both())
        assert backend_metrics(conn).pool_waits == 2

    def test_breaker_opens_and_short_circuits(self, fresh_server: RedisServer) -> None:
        conn = RedisConnection(url=fresh_server.url, socket_timeout=0.2, connect_timeout=0.2)
        cache = SyncRedisCache(conn)
        try:
            assert cache.set("k", 1)
            fresh_server.kill()
            for _ in range(5):
                assert cache.get("k") is None
            found = backend_metrics(conn)
            assert found.breaker == "open"
            assert (found.breaker_opens, found.short_circuits) == (1, 2)
            assert found.failures["unavailable"] == 3
        finally:
            conn.close_sync()

    def test_a_frozen_server_counts_timeouts(self, fresh_server: RedisServer) -> None:
        conn = RedisConnection(url=fresh_server.url, socket_timeout=0.1, connect_timeout=0.2)
        cache = SyncRedisCache(conn)
        try:
            assert cache.set("k", 1)
            fresh_server.freeze()
            try:
                assert cache.get("k") is None
            finally:
                fresh_server.thaw()
            assert backend_metrics(conn).failures["timeout"] == 1
        finally:
            conn.close_sync()

    def test_listener_mode_and_invalidations_received(self, fresh_server: RedisServer) -> None:
        conn = RedisConnection(url=fresh_server.url)
        namespace = unique("listened").rstrip(":")

        def same(x: int) -> int:
            return x

        fn = cached(namespace=namespace, connection=conn)(same)
        admin = redis.Redis.from_url(fresh_server.url)  # our own throwaway server
        try:
            fn._state.bind()
            co = coherence(conn)
            assert co.settle(fn._state.l1, 10)
            evicted = threading.Event()
            co.observe(lambda key: evicted.set())
            assert fn(1) == 1
            (key,) = admin.scan_iter(match=f"*{namespace}*")
            admin.set(key, "another writer")
            assert evicted.wait(10)
            found = listener_metrics(conn)
            assert found.modes == {"tracking": 1}
            assert found.invalidations_received == 1
            assert found.l1_flushes >= 1  # the first subscription flushes (nothing missed yet)
            assert found.failing == 0
        finally:
            admin.close()
            conn.close_sync()


class TestLabels:
    @pytest.mark.parametrize(
        ("url", "label"),
        [
            ("redis://:s3cret@db.internal:6380/2", "db.internal:6380/2"),
            ("rediss://user:pw@cache.example.com", "cache.example.com:6379/0"),
            ("unix:///run/redis.sock", "/run/redis.sock"),
            ("memory://", "memory"),
            ("memory://tests", "memory://tests"),
        ],
    )
    def test_servers_are_named_without_credentials(self, url: str, label: str) -> None:
        assert server_label(RedisSettings.create(url=url)) == label

    def test_the_snapshot_is_json_without_passwords(self) -> None:
        port = free_port()
        conn = RedisConnection(url=f"redis://:s3cret@127.0.0.1:{port}/0")
        try:
            assert SyncRedisCache(conn).get("k") is None  # fails: nobody listens there
            text = json.dumps(metrics_snapshot().as_dict())
        finally:
            conn.close_sync()
        assert f"127.0.0.1:{port}/0" in text
        assert "s3cret" not in text
        assert set(json.loads(text)) == {
            "caches",
            "backends",
            "listeners",
            "rate_limits",
            "sessions",
        }
