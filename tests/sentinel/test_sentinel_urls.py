"""Sentinel URLs (pure): hosts with default ports, the service and database, the sentinels'
own password kept secret, and every mistake refused with a message that names it."""

from __future__ import annotations

import pytest

from arketic_cache import ConfigurationError, RedisConnection
from arketic_cache._settings import RedisSettings


def test_hosts_service_and_database() -> None:
    settings = RedisSettings.create(
        url="redis+sentinel://:pw@s1:26380,s2,[::1]:26381/orders/3?sentinel_password=sp"
    )
    assert settings.sentinel == ([("s1", 26380), ("s2", 26379), ("::1", 26381)], "orders", 3)
    assert settings.endpoint == ("sentinel:orders", None, "3")
    assert settings.password is not None
    assert settings.password.get_secret_value() == "pw"
    assert settings.sentinel_password is not None
    assert settings.sentinel_password.get_secret_value() == "sp"


def test_the_database_defaults_to_zero() -> None:
    assert RedisSettings.create(url="redis+sentinel://s1/orders").sentinel == (
        [("s1", 26379)],
        "orders",
        0,
    )


def test_passwords_never_show() -> None:
    url = "rediss+sentinel://:data-secret@s1/orders?sentinel_password=sentinel-secret"
    conn = RedisConnection(url=url)
    shown = f"{conn!r} {conn.settings!r} {conn.settings.display_url}"
    assert "data-secret" not in shown
    assert "sentinel-secret" not in shown
    assert conn.state.redact("x data-secret sentinel-secret") == "x *** ***"


def test_the_environment_gives_the_sentinels_password() -> None:
    env = {"REDIS_URL": "redis+sentinel://s1/orders", "REDIS_SENTINEL_PASSWORD": "sp"}
    secret = RedisSettings.from_env(env).sentinel_password
    assert secret is not None
    assert secret.get_secret_value() == "sp"


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("redis+sentinel://s1:nope/orders", "host[:port]"),
        ("redis+sentinel://s1:99999/orders", "host[:port]"),
        ("redis+sentinel://s1,,s2/orders", "host[:port]"),
        ("redis+sentinel://s1", "/service_name[/db]"),
        ("redis+sentinel://s1/orders/zero", "/service_name[/db]"),
        ("redis+sentinel://s1/a/1/2", "/service_name[/db]"),
        ("redis+clusters://n1,n2", "unsupported Redis URL scheme"),
        ("redis+cluster://n1,,n2", "host[:port]"),
    ],
)
def test_mistakes_are_named(url: str, names: str) -> None:
    with pytest.raises(ConfigurationError, match=names.replace("[", r"\[").replace("]", r"\]")):
        RedisSettings.create(url=url)
