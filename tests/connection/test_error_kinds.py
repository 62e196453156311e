"""Error replies that mean "not now" rather than "no": a demoted primary's READONLY (behind
sentinels, before the layer moved) is a transient failure, counted and fed to the breaker like
an outage, never handed to the caller as an answer."""

from __future__ import annotations

import pytest

from arketic_cache import BackendUnavailable, RedisConnection, SyncRedisCache
from arketic_cache.testing import RedisServer

from ..helpers import redis_server_binary

pytestmark = pytest.mark.redis


def test_a_replica_refusing_a_write_is_unavailable(fresh_server: RedisServer) -> None:
    executable = redis_server_binary()
    link = ("--replicaof", "127.0.0.1", str(fresh_server.port))
    with RedisServer(executable, *link, "--masterauth", fresh_server.password) as replica:
        replica.start()
        conn = RedisConnection(url=replica.url, breaker_threshold=2)
        try:
            strict = SyncRedisCache(conn, strict=True)
            with pytest.raises(BackendUnavailable, match=r"READONLY|ReadOnlyError"):
                strict.set("k", 1)
            assert SyncRedisCache(conn).set("k", 1) is False  # degraded, as for an outage
            assert conn.state.failures["unavailable"] == 2
            assert conn.state.breaker.state == "open"
        finally:
            conn.close_sync()
