"""Passwords never show: settings reprs, exceptions and logs hide them, a wrong password says
why without the password, and passwords full of URL syntax still authenticate.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import redis

import arketic_cache
from arketic_cache import (
    BackendUnavailable,
    ConfigurationError,
    RedisCache,
    RedisConnection,
    RedisSettings,
    SyncRedisCache,
    close_redis_sync,
    init_redis_sync,
)
from arketic_cache.testing import RedisServer

from .helpers import (
    ENCODED_SPECIAL,
    LEAK_CASES,
    LOOKS_LIKE_A_PORT,
    LOOKS_LIKE_A_PORT_IDS,
    SPECIAL_PASSWORD,
    Twin,
    assert_hidden,
    exception_texts,
    log_texts,
    visible_texts,
)


class TestSettingsHideSecrets:
    """Settings keep passwords as SecretStr and never show them."""

    @pytest.mark.parametrize("case", LEAK_CASES)
    def test_settings_hide_password(self, case: str) -> None:
        """repr, str, JSON and display_url never show the password, which is still usable."""
        env, passwords, effective = LEAK_CASES[case]
        settings = RedisSettings.from_env(env(6390))
        assert settings.password is not None
        assert settings.password.get_secret_value() == effective
        assert "***" in settings.display_url
        assert_hidden(visible_texts(settings), *passwords)

    @pytest.mark.parametrize("case", LEAK_CASES)
    def test_connection_and_cache_reprs_hide_password(self, case: str) -> None:
        """repr of a connection and of both caches show the redacted URL only."""
        env, passwords, _ = LEAK_CASES[case]
        conn = RedisConnection(RedisSettings.from_env(env(6390)))
        texts = {
            "repr(connection)": repr(conn),
            "repr(SyncRedisCache)": repr(SyncRedisCache(conn)),
            "repr(RedisCache)": repr(RedisCache(conn)),
        }
        assert all(conn.settings.display_url in text for text in texts.values())
        assert_hidden(texts, *passwords)

    @pytest.mark.parametrize(
        ("env", "field", "passwords"),
        [
            ({"REDIS_URL": "redis://:s3cr3t/pw@127.0.0.1:6390/0"}, "URL", ("s3cr3t/pw",)),
            ({"REDIS_URL": "bogus://:secretpw@127.0.0.1:6390/0"}, "scheme", ("secretpw",)),
            (
                {"REDIS_URL": "redis://:secretpw@127.0.0.1:6390/0", "RESPONSE_CACHE_TTL": "abc"},
                "default_ttl",
                ("secretpw",),
            ),
            (
                {
                    "REDIS_URL": "redis://127.0.0.1:6390/0?password=secretpw",
                    "REDIS_MAX_CONNECTIONS": "-1",
                },
                "max_connections",
                ("secretpw",),
            ),
            (
                {
                    "REDIS_URL": "redis://127.0.0.1:6390/0",
                    "REDIS_PASSWORD": "secretpw",
                    "REDIS_SOCKET_TIMEOUT": "-1",
                },
                "socket_timeout",
                ("secretpw",),
            ),
        ],
        ids=[
            "unencoded-slash",
            "unknown-scheme",
            "bad-ttl",
            "bad-max-connections",
            "bad-timeout-with-REDIS_PASSWORD",
        ],
    )
    def test_configuration_error_hides_password(
        self, env: dict[str, str], field: str, passwords: tuple[str, ...]
    ) -> None:
        """A ConfigurationError from from_env names the bad part, never the password."""
        with pytest.raises(ConfigurationError, match=field) as info:
            RedisSettings.from_env(env)
        assert_hidden(exception_texts(info.value), *passwords)

    @pytest.mark.parametrize(
        ("url", "secret"),
        [
            ("redis://:s3cr3t/pw@127.0.0.1:6390/0", "s3cr3t/pw"),
            (f"redis://:{SPECIAL_PASSWORD}@127.0.0.1:6390/0", SPECIAL_PASSWORD),
            ("redis://default:s3cr3t/pw@127.0.0.1:6390/0", "s3cr3t/pw"),
        ],
        ids=["slash", "special", "with-user"],
    )
    def test_unparseable_url_rejected_everywhere(self, url: str, secret: str) -> None:
        """create(), RedisConnection(url=) and from_env raise ConfigurationError, hiding it."""
        builders: dict[str, Callable[[], object]] = {
            "create": lambda: RedisSettings.create(url=url),
            "RedisConnection": lambda: RedisConnection(url=url),
            "from_env": lambda: RedisSettings.from_env({"REDIS_URL": url}),
        }
        for name, build in builders.items():
            with pytest.raises(ConfigurationError, match="percent-encode") as info:
                build()
            assert_hidden(
                {f"{name} {k}": v for k, v in exception_texts(info.value).items()}, secret
            )

    @pytest.mark.parametrize(("url", "secret"), LOOKS_LIKE_A_PORT, ids=LOOKS_LIKE_A_PORT_IDS)
    def test_unencoded_password_that_looks_like_a_port_is_rejected(
        self, url: str, secret: str
    ) -> None:
        """A password of digits then '/', '?' or '#' must not end up in the visible URL.

        urlsplit reads the digits as a port, so the URL "parses"; the rest of the password
        then sits in the path, query or fragment, in plain text.
        """
        with pytest.raises(ConfigurationError, match="percent-encode") as info:
            RedisSettings.create(url=url)
        assert_hidden(exception_texts(info.value), secret)

    @pytest.mark.parametrize(("url", "secret"), LOOKS_LIKE_A_PORT, ids=LOOKS_LIKE_A_PORT_IDS)
    def test_accepted_url_never_shows_password(self, url: str, secret: str) -> None:
        """Should such a URL be accepted at all, no visible text may show its password."""
        try:
            settings = RedisSettings.create(url=url)
        except ConfigurationError:
            return  # rejected: the test above checks the message
        conn = RedisConnection(settings)
        texts = {**visible_texts(settings), "repr(connection)": repr(conn)}
        assert_hidden(texts, secret)


def wrong_password_settings(case: str, port: int) -> tuple[RedisSettings, tuple[str, ...]]:
    """Settings for LEAK_CASES[case] against ``port`` (whose real password differs)."""
    env, passwords, _ = LEAK_CASES[case]
    # A high threshold keeps the breaker closed, so every call reaches the server.
    return RedisSettings.from_env(env(port), breaker_threshold=1000), passwords


@pytest.mark.redis
class TestWrongPassword:
    """A wrong password degrades, raises BackendUnavailable in strict mode, and leaks nothing."""

    @pytest.mark.parametrize("case", LEAK_CASES)
    def test_wrong_password_degrades_and_hides_secret(
        self,
        case: str,
        twin: Twin,
        redis_server: RedisServer,
        lib_logs: pytest.LogCaptureFixture,
    ) -> None:
        """get -> None, set -> False, strict -> BackendUnavailable(auth); no text shows it."""
        settings, passwords = wrong_password_settings(case, redis_server.port)
        conn = twin.connect(settings)
        cache, strict = twin.cache(conn), twin.cache(conn, strict=True)

        assert cache.get("k") is None
        assert cache.set("k", 1) is False
        assert cache.get_many(["k"]) == {}
        with pytest.raises(BackendUnavailable, match="AuthenticationError") as info:
            strict.get("k")
        assert isinstance(info.value.__cause__, redis.AuthenticationError)
        report = cache.get_info()
        assert report["redis_version"] is None
        assert report["client"]["errors"] >= 4
        assert report["client"]["url"] == settings.display_url
        assert lib_logs.records, "the failure was not logged"

        texts = {
            **visible_texts(settings),
            "repr(connection)": repr(conn),
            "repr(cache)": twin.cache_repr(conn),
            "repr(redis-py client)": twin.client_repr(conn),
            "get_info()": str(report),
            **exception_texts(info.value),
            **log_texts(lib_logs),
        }
        assert_hidden(texts, *passwords, redis_server.password)

    def test_no_password_is_refused(self, twin: Twin, redis_server: RedisServer) -> None:
        """Without any password the server refuses: strict raises BackendUnavailable."""
        conn = twin.connect(url=f"redis://127.0.0.1:{redis_server.port}/0")
        assert twin.cache(conn).get("k") is None
        with pytest.raises(BackendUnavailable, match="AuthenticationError"):
            twin.cache(conn, strict=True).get("k")

    def test_init_redis_with_wrong_password_warns_without_secret(
        self, quiet_env: None, redis_server: RedisServer, lib_logs: pytest.LogCaptureFixture
    ) -> None:
        """init_redis_sync starts anyway and logs the redacted URL, not the password."""
        url = f"redis://:secretpw@127.0.0.1:{redis_server.port}/0"
        try:
            conn = init_redis_sync(url)
            assert arketic_cache.sync_cache.get("k") is None
        finally:
            close_redis_sync()
        messages = [r.getMessage() for r in lib_logs.records]
        assert any("did not answer PING" in m and conn.settings.display_url in m for m in messages)
        assert_hidden(log_texts(lib_logs), "secretpw", redis_server.password)


SPECIAL_CASES: dict[str, Callable[[int], dict[str, str]]] = {
    "userinfo": lambda port: {"REDIS_URL": f"redis://:{ENCODED_SPECIAL}@127.0.0.1:{port}/0"},
    "default-user": lambda port: {
        "REDIS_URL": f"redis://default:{ENCODED_SPECIAL}@127.0.0.1:{port}/0"
    },
    "query": lambda port: {"REDIS_URL": f"redis://127.0.0.1:{port}/0?password={ENCODED_SPECIAL}"},
    "REDIS_PASSWORD": lambda port: {
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "REDIS_PASSWORD": SPECIAL_PASSWORD,
    },
    "REDIS_PASSWORD-wins-over-url": lambda port: {
        "REDIS_URL": f"redis://:stale-url-password@127.0.0.1:{port}/0",
        "REDIS_PASSWORD": SPECIAL_PASSWORD,
    },
}


@pytest.mark.redis
class TestRightPassword:
    """A percent-encoded password with '/', '@', ':', '%', '?' and '#' authenticates."""

    @pytest.mark.parametrize("case", SPECIAL_CASES)
    def test_percent_encoded_password_authenticates(
        self,
        case: str,
        twin: Twin,
        special_server: RedisServer,
        lib_logs: pytest.LogCaptureFixture,
    ) -> None:
        """set/get and get_info work, and nothing shows the password."""
        settings = RedisSettings.from_env(SPECIAL_CASES[case](special_server.port))
        assert settings.password is not None
        assert settings.password.get_secret_value() == SPECIAL_PASSWORD
        conn = twin.connect(settings)
        cache = twin.cache(conn, strict=True, key_prefix=f"{uuid.uuid4().hex}:")
        assert cache.set("k", {"ok": True}) is True
        assert cache.get("k") == {"ok": True}
        report = cache.get_info()
        assert report["redis_version"] is not None
        assert report["client"]["errors"] == 0
        texts = {
            **visible_texts(settings),
            "repr(connection)": repr(conn),
            "repr(cache)": twin.cache_repr(conn),
            "get_info()": str(report),
            **log_texts(lib_logs),
        }
        assert_hidden(texts, SPECIAL_PASSWORD)
