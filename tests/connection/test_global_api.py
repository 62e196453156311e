"""The embedded ``memory://`` backend's sharing rules, the global ``init_redis`` API and the
promise that settings are read only when asked.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import arketic_cache
from arketic_cache import (
    ConfigurationError,
    NotInitializedError,
    RedisCache,
    RedisConnection,
    RedisSettings,
    SyncRedisCache,
    close_redis,
    close_redis_sync,
    get_redis,
    get_redis_sync,
    init_redis,
    init_redis_sync,
)
from arketic_cache.testing import RedisServer

from .helpers import Twin, assert_hidden, exception_texts


def memory_url() -> str:
    """A memory:// URL no other test uses."""
    return f"memory://conn-{uuid.uuid4().hex}"


class TestMemoryBackend:
    """memory:// is one in-process server per URL, shared by every client of that URL."""

    def test_same_url_shares_data(self, twin: Twin) -> None:
        """Two connections to the same memory:// URL see the same keys."""
        url = memory_url()
        first, second = twin.connect(url=url), twin.connect(url=url)
        assert first.backend == "memory"
        assert twin.cache(first).set("k", {"v": 1}) is True
        assert twin.cache(second).get("k") == {"v": 1}
        assert twin.cache(second).delete("k") is True
        assert twin.cache(first).get("k") is None

    def test_sync_and_async_clients_share_data(self) -> None:
        """A connection's sync and async clients read each other's writes."""
        conn = RedisConnection(url=memory_url())
        sync_cache = SyncRedisCache(conn)
        async_cache = RedisCache(conn)

        async def main() -> tuple[Any, bool]:
            try:
                seen = await async_cache.get("from-sync")
                return seen, await async_cache.set("from-async", [1, 2])
            finally:
                await conn.aclose()

        assert sync_cache.set("from-sync", "hello") is True
        assert asyncio.run(main()) == ("hello", True)
        assert sync_cache.get("from-async") == [1, 2]
        conn.close_sync()

    def test_different_urls_are_isolated(self, twin: Twin) -> None:
        """Different memory:// URLs are different servers."""
        one, other = twin.connect(url=memory_url()), twin.connect(url=memory_url())
        assert twin.cache(one).set("k", 1) is True
        assert twin.cache(other).get("k") is None
        assert twin.cache(other).get_keys("*") == []
        assert twin.cache(one).get_keys("*") == ["k"]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def global_url(request: pytest.FixtureRequest, quiet_env: None) -> Iterator[str]:
    """A URL for init_redis; the global connection is gone before and after the test."""
    close_redis_sync()
    if request.param == "memory":
        url = memory_url()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url
    yield url
    close_redis_sync()


def assert_not_initialized() -> None:
    """Every global entry point refuses to work without init_redis()."""
    with pytest.raises(NotInitializedError):
        arketic_cache.sync_cache.get("k")
    with pytest.raises(NotInitializedError):
        arketic_cache.sync_cache.set("k", 1)
    with pytest.raises(NotInitializedError):
        asyncio.run(arketic_cache.cache.get("k"))
    with pytest.raises(NotInitializedError):
        get_redis_sync()
    with pytest.raises(NotInitializedError):
        get_redis()


class TestGlobalApi:
    """init_redis / close_redis set up and tear down the global cache and clients."""

    def test_init_redis_sync(self, global_url: str, lib_logs: pytest.LogCaptureFixture) -> None:
        """After init_redis_sync the global sync_cache and get_redis_sync() work."""
        assert_not_initialized()
        key = f"global-{uuid.uuid4().hex}"
        conn = init_redis_sync(global_url)
        try:
            assert arketic_cache.sync_cache.connection is conn
            assert arketic_cache.sync_cache.set(key, {"a": 1}) is True
            assert arketic_cache.sync_cache.get(key) == {"a": 1}
            client = get_redis_sync()
            assert client.ping() is True
            assert client.get(key) == '{"a":1}'
            assert client.delete(key) == 1
        finally:
            close_redis_sync()
        assert not [r for r in lib_logs.records if r.levelno >= logging.WARNING]
        assert_not_initialized()

    def test_init_redis_async(self, global_url: str, lib_logs: pytest.LogCaptureFixture) -> None:
        """After await init_redis the global cache and get_redis() work."""
        assert_not_initialized()
        key = f"global-{uuid.uuid4().hex}"

        async def main() -> None:
            conn = await init_redis(global_url)
            try:
                assert arketic_cache.cache.connection is conn
                assert await arketic_cache.cache.set(key, [1, "two"]) is True
                assert await arketic_cache.cache.get(key) == [1, "two"]
                client = get_redis()
                assert await client.ping() is True
                assert await client.get(key) == '[1,"two"]'
                assert await client.delete(key) == 1
            finally:
                await close_redis()

        asyncio.run(main())
        assert not [r for r in lib_logs.records if r.levelno >= logging.WARNING]
        assert_not_initialized()

    @pytest.mark.redis
    def test_init_redis_sync_from_environment(
        self,
        quiet_env: None,
        monkeypatch: pytest.MonkeyPatch,
        redis_server: RedisServer,
    ) -> None:
        """With no argument, init_redis_sync reads REDIS_URL, REDIS_PASSWORD and the TTL."""
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{redis_server.port}/0")
        monkeypatch.setenv("REDIS_PASSWORD", redis_server.password)
        monkeypatch.setenv("RESPONSE_CACHE_TTL", "1234")
        key = f"env-{uuid.uuid4().hex}"
        try:
            init_redis_sync()
            assert arketic_cache.sync_cache.set(key, 1) is True
            assert 1200 <= get_redis_sync().ttl(key) <= 1234
            assert get_redis_sync().delete(key) == 1
        finally:
            close_redis_sync()


BOGUS_URL = "bogus://:secretpw@nowhere/0"


class TestSettingsReadWhenAsked:
    """A bad environment breaks only the calls that read it."""

    def test_bad_environment_fails_only_when_read(
        self, quiet_env: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Building caches works; from_env, RedisConnection.from_env and init_redis raise."""
        monkeypatch.setenv("REDIS_URL", BOGUS_URL)
        import arketic_cache as again

        assert again.RedisCache() is not None
        assert again.SyncRedisCache(strict=True) is not None
        for read in (RedisSettings.from_env, RedisConnection.from_env, init_redis_sync):
            with pytest.raises(ConfigurationError, match="scheme") as info:
                read()
            assert_hidden(exception_texts(info.value), "secretpw")
        with pytest.raises(NotInitializedError):
            get_redis_sync()  # the failed init_redis_sync installed nothing

    def test_fresh_import_reads_no_environment(self) -> None:
        """In a new interpreter, importing the package and building caches ignore REDIS_URL."""
        code = (
            "import arketic_cache as a\n"
            "a.RedisCache(); a.SyncRedisCache(); a.redact_url('redis://h')\n"
            "try:\n"
            "    a.RedisSettings.from_env()\n"
            "except a.ConfigurationError:\n"
            "    print('raised when asked')\n"
        )
        env = {"REDIS_URL": BOGUS_URL, "RESPONSE_CACHE_TTL": "abc", "PATH": ""}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "raised when asked"
