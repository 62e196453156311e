"""Connections by URL scheme: Unix sockets, both RESP protocols, TLS. Every connection a test
opens is closed by it.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis

from arketic_cache import BackendUnavailable, RedisConnection, RedisSettings
from arketic_cache.testing import RedisServer, free_port

from ..helpers import redis_server_binary
from .helpers import (
    SPECIAL_PASSWORD,
    Twin,
    assert_hidden,
    exception_texts,
    log_texts,
    visible_texts,
)

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


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0", "unix:///nonexistent.sock"]
)
@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_takes_every_option_we_pass(url: str, protocol: int) -> None:
    """The options given to redis-py's pools suit the installed redis-py: each pool's
    connection class accepts them (an option newer than it, such as maintenance notifications
    on a redis-py 7 or 8.0 asyncio connection, is a TypeError at the first call), and
    maintenance notifications are off wherever redis-py has them."""
    conn = RedisConnection(url=url, protocol=protocol)

    async def pools() -> list[Any]:
        return [conn.sync_client.connection_pool, conn.client.connection_pool]

    try:
        for pool in asyncio.run(pools()):
            made = pool.connection_class(**pool.connection_kwargs)  # built, not connected
            config = getattr(made, "maint_notifications_config", None)
            assert config is None or config.enabled is False, (pool, config)
    finally:
        asyncio.run(conn.aclose())


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
