"""Settings: environment variables, URL secrets, validation."""

from __future__ import annotations

from typing import Any

import pytest

from arketic_cache import ConfigurationError, RedisSettings, redact_url


class TestDefaults:
    """The spec's defaults, and short timeouts."""

    def test_defaults(self) -> None:
        """REDIS_URL, RESPONSE_CACHE_TTL and the pool size default as the spec says."""
        settings = RedisSettings.from_env({})
        assert settings.url == "redis://localhost:6379/0"
        assert settings.default_ttl == 3600
        assert settings.max_connections == 20
        assert settings.connect_timeout <= 1.0
        assert settings.socket_timeout <= 1.0
        assert settings.key_prefix == ""

    def test_environment(self) -> None:
        """Every documented variable is read."""
        settings = RedisSettings.from_env(
            {
                "REDIS_URL": "redis://cache.internal:6380/2",
                "RESPONSE_CACHE_TTL": "120",
                "REDIS_MAX_CONNECTIONS": "7",
                "REDIS_CONNECT_TIMEOUT": "0.2",
                "REDIS_SOCKET_TIMEOUT": "0.3",
                "REDIS_KEY_PREFIX": "prod:",
                "REDIS_PASSWORD": "pw",
                "REDIS_PROTOCOL": "2",
                "REDIS_COHERENCE_GRACE": "0.5",
            }
        )
        assert (settings.protocol, settings.coherence_grace) == (2, 0.5)
        assert settings.url == "redis://cache.internal:6380/2"
        assert (settings.default_ttl, settings.max_connections) == (120, 7)
        assert (settings.connect_timeout, settings.socket_timeout) == (0.2, 0.3)
        assert settings.key_prefix == "prod:"
        assert settings.password is not None
        assert settings.password.get_secret_value() == "pw"

    def test_explicit_overrides_win(self) -> None:
        """Explicit arguments beat the environment."""
        settings = RedisSettings.from_env({"RESPONSE_CACHE_TTL": "120"}, default_ttl=60)
        assert settings.default_ttl == 60


class TestUrlSecrets:
    """Passwords leave the URL for a SecretStr."""

    @pytest.mark.parametrize(
        ("url", "password", "clean"),
        [
            ("redis://:s3cret@h:1/0", "s3cret", "redis://h:1/0"),
            ("redis://app:p%40ss%3Ax%2F@h:1/0", "p@ss:x/", "redis://app@h:1/0"),
            ("redis://h:1/0?password=s3cret&db=2", "s3cret", "redis://h:1/0?db=2"),
            (
                "rediss://u:pw@h:1/0?ssl_cert_reqs=required",
                "pw",
                "rediss://u@h:1/0?ssl_cert_reqs=required",
            ),
        ],
    )
    def test_extracted(self, url: str, password: str, clean: str) -> None:
        """The password is decoded into the secret and removed from the URL."""
        settings = RedisSettings(url=url)
        assert settings.password is not None
        assert settings.password.get_secret_value() == password
        assert settings.url == clean
        assert password not in repr(settings)
        assert password not in settings.display_url

    def test_redis_password_overrides_url(self) -> None:
        """REDIS_PASSWORD wins over a password in the URL."""
        settings = RedisSettings.from_env(
            {"REDIS_URL": "redis://:fromurl@h:1/0", "REDIS_PASSWORD": "fromenv"}
        )
        assert settings.password is not None
        assert settings.password.get_secret_value() == "fromenv"

    def test_redact_url(self) -> None:
        """redact_url masks userinfo and query passwords."""
        assert redact_url("redis://user:pw@h:1/0?password=x") == "redis://user:***@h:1/0"
        assert redact_url("redis://h:1/0", masked=False) == "redis://h:1/0"


class TestValidation:
    """Bad settings raise ConfigurationError naming the field, never echoing the input."""

    @pytest.mark.parametrize(
        ("env", "field"),
        [
            ({"RESPONSE_CACHE_TTL": "abc"}, "default_ttl"),
            ({"RESPONSE_CACHE_TTL": "-5"}, "default_ttl"),
            ({"REDIS_MAX_CONNECTIONS": "-1"}, "max_connections"),
            ({"REDIS_SOCKET_TIMEOUT": "never"}, "socket_timeout"),
            ({"REDIS_PROTOCOL": "4"}, "protocol"),
            ({"REDIS_COHERENCE_GRACE": "-1"}, "coherence_grace"),
        ],
    )
    def test_bad_values(self, env: dict[str, str], field: str) -> None:
        """The message names the field and not the value."""
        with pytest.raises(ConfigurationError, match=field) as info:
            RedisSettings.from_env(env)
        assert next(iter(env.values())) not in str(info.value).replace(field, "")

    @pytest.mark.parametrize("url", ["http://h:1", "redis://:pa/ss@h:1/0", "redis://h:notaport/0"])
    def test_bad_urls(self, url: str) -> None:
        """Unknown schemes and unparseable URLs are refused without echoing the URL."""
        with pytest.raises(ConfigurationError) as info:
            RedisSettings.create(url=url)
        assert "pa/ss" not in str(info.value)

    def test_unknown_argument(self) -> None:
        """A misspelt setting is an error, not silently ignored."""
        bogus: dict[str, Any] = {"sockettimeout": 1}
        with pytest.raises(ConfigurationError, match="sockettimeout"):
            RedisSettings.create(**bogus)
