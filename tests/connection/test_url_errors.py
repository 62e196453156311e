"""URL mistakes fail at once with a message naming the mistake (never echoing the URL)."""

from __future__ import annotations

import logging

import pytest

from arketic_cache import ConfigurationError, RedisSettings


@pytest.mark.parametrize(
    ("url", "names", "blames_not"),
    [
        ("redis://127.0.0.1:notaport/0", "port", "password"),
        ("redis://:s3cret@cache.internal:notaport/0", "port", "password"),
        ("redis://cache.internal:99999/0", "port", "password"),
        ("redis://:pa/ss@cache.internal:6379/0", "password", "port"),
        ("redis://cache.internal:6379/zero", "database number", "password"),
        ("redis://cache.internal:6379/0/1", "database number", "password"),
    ],
)
def test_the_message_names_the_mistake(url: str, names: str, blames_not: str) -> None:
    """Each malformed URL is refused when the settings are made, for the right reason."""
    with pytest.raises(ConfigurationError, match=names) as info:
        RedisSettings.create(url=url)
    message = str(info.value)
    assert blames_not not in message
    assert "cache.internal" not in message
    assert "s3cret" not in message


@pytest.mark.parametrize("url", ["redis://h:6379", "redis://h:6379/", "redis://h:6379/15"])
def test_database_numbers_are_accepted(url: str) -> None:
    """No path, a bare slash or a number: a database."""
    assert RedisSettings.create(url=url).url == url


@pytest.mark.parametrize("value", ["none", "CERT_NONE"])
def test_turning_verification_off_is_warned(value: str, caplog: pytest.LogCaptureFixture) -> None:
    """ssl_cert_reqs=none is honoured, but never silently."""
    with caplog.at_level(logging.WARNING, "arketic_cache"):
        RedisSettings.create(url=f"rediss://:hunter2@h:6380/0?ssl_cert_reqs={value}")
    (message,) = [r.getMessage() for r in caplog.records]
    assert "certificate verification is off" in message
    assert "hunter2" not in message


def test_verified_tls_is_not_warned(caplog: pytest.LogCaptureFixture) -> None:
    """The default, and ssl_cert_reqs=required, log nothing."""
    with caplog.at_level(logging.WARNING, "arketic_cache"):
        RedisSettings.create(url="rediss://h:6380/0")
        RedisSettings.create(url="rediss://h:6380/0?ssl_cert_reqs=required")
    assert caplog.records == []
