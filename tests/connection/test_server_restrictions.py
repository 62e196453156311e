"""Servers that refuse things: an ACL user without INFO, CONFIG disabled."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from arketic_cache import RedisConnection, SyncRedisCache
from arketic_cache.testing import RedisServer

from ..helpers import redis_server_binary

pytestmark = pytest.mark.redis


@pytest.fixture
def no_config_server() -> Iterator[RedisServer]:
    """A real server with CONFIG renamed away, as managed services do."""
    with RedisServer(redis_server_binary(), "--rename-command", "CONFIG", "") as server:
        yield server.start()


def test_info_without_config(no_config_server: RedisServer) -> None:
    """get_info needs no CONFIG: every spec field is filled on such a server."""
    conn = RedisConnection(url=no_config_server.url)
    try:
        with pytest.raises(redis.ResponseError, match="unknown command"):
            conn.sync_client.config_get("maxmemory")
        info = SyncRedisCache(conn).get_info()
        assert info["used_memory"] > 0
        assert info["maxmemory_policy"] == "noeviction"
        assert info["maxmemory"] == 0
        assert info["client"]["errors"] == 0
    finally:
        conn.close_sync()


def test_least_privilege_acl_user(redis_server: RedisServer) -> None:
    """A user limited to its own keys and without @dangerous (so no INFO) can use the cache."""
    with redis.Redis.from_url(redis_server.url) as admin:
        admin.flushdb()
        rules = ["on", ">app-pw", "~app:*", "resetchannels", "+@all", "-@dangerous"]
        admin.execute_command("ACL", "SETUSER", "app", *rules)
        admin.set("other:secret", "x")
    conn = RedisConnection(url=f"redis://app:app-pw@127.0.0.1:{redis_server.port}/0")
    cache = SyncRedisCache(conn, key_prefix="app:")
    try:
        assert cache.set("user:1", {"a": 1}) is True
        assert cache.get("user:1") == {"a": 1}
        assert cache.increment("hits") == 1
        assert cache.get_keys("*") == ["hits", "user:1"]
        assert cache.flush_pattern("user:*") == 1
        info = cache.get_info()
        assert info["used_memory"] is None  # INFO is refused to this user
        assert info["client"]["errors"] == 0  # a refused optional command is not a failure
        assert info["client"]["hits"] == 1
    finally:
        conn.close_sync()
        with redis.Redis.from_url(redis_server.url) as admin:
            admin.execute_command("ACL", "DELUSER", "app")
