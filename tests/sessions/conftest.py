"""Fixtures of the session fault tests: rigs on a server of their own, a durable one, no server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from arketic_cache.testing import RedisServer, free_port

from ..helpers import Flavor, rigs
from .fault_helpers import DEAD_PASSWORD, DeadRig, SessionRig
from .helpers import Layout


@pytest.fixture(autouse=True)
def _layout(request: pytest.FixtureRequest) -> Iterator[None]:
    """The key layout the helpers compute: the cluster's in the cluster flavour."""
    callspec = getattr(request.node, "callspec", None)
    Layout.cluster = callspec is not None and callspec.params.get("backend_url") == "cluster"
    Layout.family_tags = {}
    yield
    Layout.cluster = False


@pytest.fixture(params=["sync", "async"])
def rig(request: pytest.FixtureRequest, fresh_server: RedisServer) -> Iterator[SessionRig]:
    """A sync or async rig on this test's own (non-persistent) server, of the kind the test
    module names as ``RIG`` (short timeouts by default)."""
    kind: type[SessionRig] = getattr(request.module, "RIG", SessionRig)
    yield from rigs(kind, request.param, fresh_server)


@pytest.fixture(params=["sync", "async"])
def durable(request: pytest.FixtureRequest, durable_server: RedisServer) -> Iterator[SessionRig]:
    """A sync or async rig on a persistent server."""
    yield from rigs(SessionRig, request.param, durable_server)


@pytest.fixture(params=["sync", "async"])
def dead(request: pytest.FixtureRequest) -> Iterator[DeadRig]:
    """A sync or async manager factory on a dead port (connection refused at once)."""
    url = f"redis://:{DEAD_PASSWORD}@127.0.0.1:{free_port()}/0"
    with asyncio.Runner() as runner:
        flavor = Flavor(request.param, url, runner)
        yield DeadRig(flavor)
        flavor.close()
