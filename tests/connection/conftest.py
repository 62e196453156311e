"""Fixtures of the connection tests: a fault rig per flavour on a server of the test's own, the
sync/async connection twin, a server with a password full of URL syntax, a clean environment."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from arketic_cache._settings import ENVIRONMENT_VARIABLES
from arketic_cache.testing import RedisServer

from ..helpers import Rig, redis_server_binary, rigs
from .helpers import SPECIAL_PASSWORD, Twin


@pytest.fixture(params=["sync", "async"])
def rig(request: pytest.FixtureRequest, fresh_server: RedisServer) -> Iterator[Rig]:
    """A sync or async (bridged) rig on this test's own server and event loop."""
    yield from rigs(Rig, request.param, fresh_server)


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
