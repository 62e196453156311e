"""Start-up: init_redis pings, logs a failure by default, and raises it with require=True."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from arketic_cache import (
    BackendError,
    BackendResponseError,
    BackendUnavailable,
    RedisConnection,
    close_redis_sync,
    init_redis,
    init_redis_sync,
)
from arketic_cache._connection import current_connection
from arketic_cache.testing import RedisServer, free_port

from ..helpers import redis_server_binary


def start(flavor: str, url: str, **options: Any) -> RedisConnection:
    """``init_redis`` or ``init_redis_sync`` with ``options``."""
    if flavor == "sync":
        return init_redis_sync(url, **options)
    return asyncio.run(init_redis(url, **options))


@pytest.fixture(params=["sync", "async"])
def flavor(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which of the twins starts; the process-wide connection is closed afterwards."""
    yield request.param
    close_redis_sync()


def test_unreachable_is_logged_by_default(flavor: str, caplog: pytest.LogCaptureFixture) -> None:
    """Without require the service starts; the warning names the URL (masked) and the cause."""
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.WARNING, "arketic_cache"):
        conn = start(flavor, url)
    assert current_connection() is conn
    (message,) = [r.getMessage() for r in caplog.records if "did not answer PING" in r.getMessage()]
    assert conn.settings.display_url in message
    assert "connecting to 127.0.0.1" in message
    assert "hunter2-secret" not in message


def test_require_raises_when_unreachable(flavor: str) -> None:
    """require=True: the failure is raised, with its cause, the masked URL and no password."""
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    with pytest.raises(BackendUnavailable, match="did not answer PING at start-up") as info:
        start(flavor, url, require=True)
    assert isinstance(info.value.__cause__, BackendUnavailable)
    assert "127.0.0.1" in str(info.value)
    assert "hunter2-secret" not in str(info.value)


def test_require_passes_when_redis_answers(flavor: str) -> None:
    """require=True on a server that answers (the embedded one) just starts."""
    conn = start(flavor, "memory://startup", require=True)
    assert current_connection() is conn


def test_calling_again_reinitialises(flavor: str) -> None:
    """A second init_redis sets up a new process-wide connection (tests rely on it)."""
    first = start(flavor, "memory://startup-a")
    second = start(flavor, "memory://startup-b")
    assert first is not second
    assert current_connection() is second


@pytest.mark.redis
def test_require_names_a_wrong_password(flavor: str, redis_server: RedisServer) -> None:
    """A wrong password fails start-up with an authentication error, not a timeout."""
    url = f"redis://:not-the-password@127.0.0.1:{redis_server.port}/0"
    with pytest.raises(BackendError, match=r"(?i)auth|password") as info:
        start(flavor, url, require=True)
    assert "not-the-password" not in str(info.value)


@pytest.mark.redis
def test_require_names_a_database_out_of_range(flavor: str, redis_server: RedisServer) -> None:
    """A db index the server does not have fails start-up, saying so (not at first use)."""
    url = redis_server.url.rsplit("/", 1)[0] + "/999"
    with pytest.raises(BackendResponseError, match="DB index is out of range"):
        start(flavor, url, require=True)


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real server that also listens with TLS (a self-signed certificate) on this port."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make the TLS server's certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    request = ("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=x")
    subprocess.run(
        [openssl, *request, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    args = ("--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key))
    with RedisServer(redis_server_binary(), *args, "--tls-auth-clients", "no") as server:
        server.start()
        yield port


@pytest.mark.redis
def test_a_plain_url_on_a_tls_port_hints_at_rediss(flavor: str, tls_port: int) -> None:
    """redis:// against a TLS port fails with the reset and a hint to use rediss://."""
    with pytest.raises(BackendUnavailable, match=r"reset by peer.*use a rediss:// URL"):
        start(flavor, f"redis://127.0.0.1:{tls_port}/0", require=True)


@pytest.mark.redis
def test_no_tls_hint_for_a_refused_port(flavor: str) -> None:
    """A refused connection is not blamed on TLS."""
    with pytest.raises(BackendUnavailable) as info:
        start(flavor, f"redis://127.0.0.1:{free_port()}/0", require=True)
    assert "rediss" not in str(info.value)
