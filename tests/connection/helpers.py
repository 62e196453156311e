"""What the connection tests share: the password forms a leak would show, the texts a user can
see, the sync/async connection twin, and the settings cases of the secrecy tests."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from arketic_cache import RedisCache, RedisConnection, RedisSettings, SyncRedisCache

from ..helpers import Bridge

#: A password with every character that must be percent-encoded in a URL.
SPECIAL_PASSWORD = "s3cr3t/p@ss:w0rd%?#"


ENCODED_SPECIAL = quote(SPECIAL_PASSWORD, safe="")


def secret_forms(*passwords: str) -> set[str]:
    """Every spelling of ``passwords`` that would betray them: raw and percent-encoded."""
    return {form for p in passwords for form in (p, quote(p, safe=""), quote(p))}


def assert_hidden(texts: dict[str, str], *passwords: str) -> None:
    """Fail naming each text in which a spelling of a password appears."""
    leaks = [
        f"{where}: {form!r}"
        for where, text in texts.items()
        for form in secret_forms(*passwords)
        if form in text
    ]
    assert not leaks, f"secret shown in {leaks}"


def exception_texts(exc: BaseException) -> dict[str, str]:
    """The message, repr and full traceback (with its cause chain) of ``exc``."""
    return {
        "str(exc)": str(exc),
        "repr(exc)": repr(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


def log_texts(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """Everything the library logged, as formatted text and as each record's message."""
    texts = {"caplog.text": caplog.text}
    texts.update({f"record {i}": r.getMessage() for i, r in enumerate(caplog.records)})
    return texts


def visible_texts(settings: RedisSettings) -> dict[str, str]:
    """Every way the settings themselves can be shown."""
    return {
        "repr(settings)": repr(settings),
        "str(settings)": str(settings),
        "model_dump_json": settings.model_dump_json(),
        "display_url": settings.display_url,
    }


class Twin:
    """Builds a ``SyncRedisCache`` or a bridged ``RedisCache``; closes every connection made."""

    def __init__(self, name: str, runner: asyncio.Runner) -> None:
        self.name = name
        self.runner = runner
        self.connections: list[RedisConnection] = []

    def connect(self, settings: RedisSettings | None = None, **overrides: Any) -> RedisConnection:
        """A new connection, closed when the test ends."""
        conn = RedisConnection(settings, **overrides)
        self.connections.append(conn)
        return conn

    def cache(self, conn: RedisConnection, **kwargs: Any) -> Any:
        """A cache of this twin on ``conn`` (async calls bridged to plain ones)."""
        if self.name == "sync":
            return SyncRedisCache(conn, **kwargs)
        return Bridge(RedisCache(conn, **kwargs), self.runner)

    def cache_repr(self, conn: RedisConnection) -> str:
        """The repr of this twin's cache class on ``conn``."""
        cls = SyncRedisCache if self.name == "sync" else RedisCache
        return repr(cls(conn))

    def client_repr(self, conn: RedisConnection) -> str:
        """The repr of this twin's redis-py client on ``conn``."""
        return repr(conn.sync_client if self.name == "sync" else conn.client)

    def client_info(self, conn: RedisConnection) -> dict[str, Any]:
        """CLIENT INFO of this twin's own redis-py client, as the server sees it."""
        if self.name == "sync":
            return dict(conn.sync_client.client_info())

        async def info() -> dict[str, Any]:
            return dict(await conn.client.client_info())

        return self.runner.run(info())

    def close(self) -> None:
        """Close both clients of every connection, on this twin's event loop."""
        for conn in self.connections:
            self.runner.run(conn.aclose())


#: name -> (environment for a server on PORT, the passwords it holds, the effective password).
LeakCase = tuple[Callable[[int], dict[str, str]], tuple[str, ...], str]


LEAK_CASES: dict[str, LeakCase] = {
    "user-and-encoded-password": (
        lambda port: {"REDIS_URL": f"redis://user:pa%40ss%3Aw0rd@127.0.0.1:{port}/0"},
        ("pa@ss:w0rd",),
        "pa@ss:w0rd",
    ),
    "password-in-userinfo": (
        lambda port: {"REDIS_URL": f"redis://:secretpw@127.0.0.1:{port}/0"},
        ("secretpw",),
        "secretpw",
    ),
    "password-in-query": (
        lambda port: {"REDIS_URL": f"redis://127.0.0.1:{port}/0?password=secretpw"},
        ("secretpw",),
        "secretpw",
    ),
    "REDIS_PASSWORD": (
        lambda port: {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "REDIS_PASSWORD": "secretpw"},
        ("secretpw",),
        "secretpw",
    ),
    "REDIS_PASSWORD-and-url-password": (
        lambda port: {
            "REDIS_URL": f"redis://:urlsecretpw@127.0.0.1:{port}/0",
            "REDIS_PASSWORD": "envsecretpw",
        },
        ("urlsecretpw", "envsecretpw"),
        "envsecretpw",
    ),
}


#: Unencoded passwords whose leading digits urlsplit takes for a port: (url, what must not show).
LOOKS_LIKE_A_PORT = [
    ("redis://:12345/secretpw@127.0.0.1:6390/0", "12345/secretpw"),
    ("redis://admin:2024/secretpw@127.0.0.1:6390/0", "2024/secretpw"),
    ("redis://:123?secretpw@127.0.0.1:6390/0", "secretpw"),
    ("redis://:123#secretpw@127.0.0.1:6390/0", "123#secretpw"),
    ("redis://admin:2024?secretpw@127.0.0.1:6390/0", "secretpw"),
    ("redis://admin:2024#secretpw@127.0.0.1:6390/0", "2024#secretpw"),
]


LOOKS_LIKE_A_PORT_IDS = [
    "digits-slash",
    "user-digits-slash",
    "digits-question",
    "digits-hash",
    "user-digits-question",
    "user-digits-hash",
]
