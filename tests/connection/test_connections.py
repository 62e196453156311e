"""Connections and secrets on a real redis-server: URLs, passwords, unix sockets, RESP2/3, TLS.

Also the embedded ``memory://`` backend's sharing rules, the global ``init_redis`` API and the
promise that settings are read only when asked. Every connection a test opens is closed by it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis

import arketic_cache
from arketic_cache import (
    BackendUnavailable,
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
from arketic_cache._settings import ENVIRONMENT_VARIABLES
from arketic_cache.testing import RedisServer, free_port

from ..helpers import Bridge, redis_server_binary

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


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> Iterator[Twin]:
    """The sync or async flavour, with its own event loop."""
    with asyncio.Runner() as runner:
        made = Twin(request.param, runner)
        try:
            yield made
        finally:
            made.close()


@pytest.fixture(scope="module")
def special_server() -> Iterator[RedisServer]:
    """A real server whose password contains '/', '@', ':', '%', '?' and '#'."""
    with RedisServer(redis_server_binary()) as server:
        server.password = SPECIAL_PASSWORD
        yield server.start()


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No REDIS_* variable of the machine running the tests leaks into a test."""
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def lib_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture everything arketic_cache logs, debug included."""
    caplog.set_level(logging.DEBUG, logger="arketic_cache")
    return caplog


# --- 1. secrets never leak -------------------------------------------------------------------

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


# --- 3. unix sockets ---------------------------------------------------------------------------


#: (url, the URL without its password, display_url)
UNIX_URLS = [
    (
        "unix:///run/redis/redis.sock",
        "unix:///run/redis/redis.sock",
        "unix:///run/redis/redis.sock",
    ),
    (
        "unix://:secretpw@/run/redis/redis.sock",
        "unix:///run/redis/redis.sock",
        "unix://:***@/run/redis/redis.sock",
    ),
    (
        "unix:///run/redis/redis.sock?password=secretpw",
        "unix:///run/redis/redis.sock",
        "unix://:***@/run/redis/redis.sock",
    ),
    (
        "unix://app@/run/redis/redis.sock?db=2&password=secretpw",
        "unix://app@/run/redis/redis.sock?db=2",
        "unix://app:***@/run/redis/redis.sock?db=2",
    ),
]
UNIX_URL_IDS = ["plain", "userinfo", "query", "user-and-query"]


class TestUnixSocket:
    """unix:// URLs keep their form, hide the password and reach the server."""

    @pytest.mark.parametrize(("url", "clean", "display"), UNIX_URLS, ids=UNIX_URL_IDS)
    def test_unix_url_keeps_its_form(self, url: str, clean: str, display: str) -> None:
        """Without its password the URL is still a unix:// URL that redis-py's client accepts."""
        settings = RedisSettings.create(url=url)
        assert settings.url == clean
        parsed = redis.connection.parse_url(settings.url)  # type: ignore[no-untyped-call]
        assert parsed["path"] == "/run/redis/redis.sock"

    @pytest.mark.parametrize(("url", "clean", "display"), UNIX_URLS, ids=UNIX_URL_IDS)
    def test_unix_display_url_is_redacted(self, url: str, clean: str, display: str) -> None:
        """display_url shows the socket path and user, with any password as ``***``."""
        settings = RedisSettings.create(url=url)
        assert settings.display_url == display
        assert_hidden(visible_texts(settings), "secretpw")

    @pytest.mark.redis
    @pytest.mark.parametrize("form", ["userinfo", "query"])
    def test_unix_socket_round_trip(self, form: str, twin: Twin, redis_server: RedisServer) -> None:
        """set/get work over the server's unix socket, with the password taken from the URL."""
        path, password = redis_server.unix_socket, redis_server.password
        url = {
            "userinfo": f"unix://:{quote(password, safe='')}@{path}",
            "query": f"unix://{path}?password={quote(password, safe='')}",
        }[form]
        conn = twin.connect(url=url)
        assert conn.settings.password is not None
        assert conn.settings.password.get_secret_value() == password
        cache = twin.cache(conn, strict=True, key_prefix=f"{uuid.uuid4().hex}:")
        assert cache.set("k", [1, 2]) is True
        assert cache.get("k") == [1, 2]
        assert twin.client_info(conn)["addr"].startswith(str(path))


# --- 4. RESP2 and RESP3 --------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize("protocol", [2, 3])
def test_round_trip_on_both_protocols(protocol: int, twin: Twin, redis_server: RedisServer) -> None:
    """The cache's operations give the same answers over RESP2 and RESP3."""
    conn = twin.connect(url=redis_server.url, protocol=protocol)
    cache = twin.cache(conn, strict=True, key_prefix=f"resp{protocol}-{uuid.uuid4().hex}:")
    assert cache.set("a", {"x": [1, 2.5, None]}) is True
    assert cache.set_many({"b": 2, "c": "three"}) is True
    assert cache.get("a") == {"x": [1, 2.5, None]}
    assert cache.get("missing") is None
    assert cache.get_many(["a", "b", "c", "missing"]) == {
        "a": {"x": [1, 2.5, None]},
        "b": 2,
        "c": "three",
    }
    assert cache.increment("n") == 1
    assert cache.increment("n", 41) == 42
    assert cache.get_keys("*") == ["a", "b", "c", "n"]
    info = cache.get_info()
    assert isinstance(info["redis_version"], str)
    assert isinstance(info["used_memory"], int)
    assert info["connected_clients"] >= 1
    assert info["persistence"] == "none observed"  # the harness runs without RDB or AOF
    assert info["client"]["hits"] == 4
    assert info["client"]["misses"] == 2
    assert int(twin.client_info(conn)["resp"]) == protocol


# --- 5. TLS ------------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH: cannot make a test CA and server certificate")
    certs = tmp_path_factory.mktemp("tls")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=arketic-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=certs,
    )  # fmt: skip
    _openssl(
        "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
        cwd=certs,
    )  # fmt: skip
    (certs / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "subjectKeyIdentifier=hash\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
        cwd=certs,
    )  # fmt: skip
    return certs


class TlsRedisServer(RedisServer):
    """A RedisServer that listens only on a TLS port (its plain port is disabled)."""

    def __init__(self, executable: str, certs: Path) -> None:
        super().__init__(executable)
        self.certs = certs
        self.tls_port = 0

    def _launch(self) -> bool:
        # A fresh TLS port for every attempt, as start() does for the plain port.
        self.tls_port = free_port()
        self.extra_args = (
            "--port", "0",
            "--tls-port", str(self.tls_port),
            "--tls-cert-file", str(self.certs / "server.crt"),
            "--tls-key-file", str(self.certs / "server.key"),
            "--tls-ca-cert-file", str(self.certs / "ca.crt"),
            "--tls-auth-clients", "no",
        )  # fmt: skip
        return super()._launch()

    def tls_url(self, *, ca: bool = True) -> str:
        """``rediss://`` URL with the percent-encoded password, trusting our CA if ``ca``."""
        url = f"rediss://:{quote(self.password, safe='')}@127.0.0.1:{self.tls_port}/0"
        return f"{url}?ssl_ca_certs={self.certs / 'ca.crt'}" if ca else url


@pytest.fixture(scope="module")
def tls_server(tls_certs: Path) -> Iterator[TlsRedisServer]:
    """A TLS-only server whose password needs percent-encoding."""
    server = TlsRedisServer(redis_server_binary(), tls_certs)
    server.password = SPECIAL_PASSWORD
    with server:
        server.start()
        yield server


@pytest.mark.redis
class TestTls:
    """rediss:// verifies the server's certificate against the CA given."""

    def test_rediss_with_ca_round_trip(self, twin: Twin, tls_server: TlsRedisServer) -> None:
        """With ssl_ca_certs pointing at our CA, set/get work over TLS."""
        conn = twin.connect(url=tls_server.tls_url())
        assert conn.settings.scheme == "rediss"
        cache = twin.cache(conn, strict=True, key_prefix=f"{uuid.uuid4().hex}:")
        assert cache.set("k", {"tls": True}) is True
        assert cache.get("k") == {"tls": True}
        assert_hidden({"repr(connection)": repr(conn)}, SPECIAL_PASSWORD)

    def test_rediss_without_ca_degrades(
        self, twin: Twin, tls_server: TlsRedisServer, lib_logs: pytest.LogCaptureFixture
    ) -> None:
        """Without the CA the certificate is refused: get -> None, strict raises."""
        conn = twin.connect(url=tls_server.tls_url(ca=False), breaker_threshold=1000)
        assert twin.cache(conn).get("k") is None
        with pytest.raises(BackendUnavailable, match="CERTIFICATE_VERIFY_FAILED") as info:
            twin.cache(conn, strict=True).get("k")
        assert_hidden({**exception_texts(info.value), **log_texts(lib_logs)}, SPECIAL_PASSWORD)

    def test_plain_redis_url_on_tls_port_degrades(
        self, twin: Twin, tls_server: TlsRedisServer
    ) -> None:
        """redis:// against the TLS port fails as unavailable, not with a crash."""
        url = tls_server.tls_url(ca=False).replace("rediss://", "redis://", 1)
        conn = twin.connect(url=url, breaker_threshold=1000)
        assert twin.cache(conn).get("k") is None
        with pytest.raises(BackendUnavailable):
            twin.cache(conn, strict=True).get("k")


# --- 6. memory:// --------------------------------------------------------------------------------


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


# --- 7. the global API -------------------------------------------------------------------------


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


# --- 8. settings are read only when asked ------------------------------------------------------

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
