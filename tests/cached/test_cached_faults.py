"""@cached on a faulty server: timeouts, a stopped server, the breaker; each on a server of its own.

The fault tests run on a real redis-server of their own (``fresh_server``) with short socket
timeouts and a breaker on a manual clock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from arketic_cache.testing import RedisServer

from ..helpers import Flavor, ManualClock
from .helpers import l1_deadlines, make

TIMEOUT = 0.1
CONNECT_TIMEOUT = 0.2


class FaultRig:
    """A fresh server, a connection with short timeouts and a manual breaker clock, a flavour."""

    def __init__(self, name: str, server: RedisServer, runner: asyncio.Runner) -> None:
        self.name = name
        self.server = server
        self.clock = ManualClock()
        self.flavor = Flavor(name, server.url, runner)
        self.conn = self.flavor.connect(
            clock=self.clock, socket_timeout=TIMEOUT, connect_timeout=CONNECT_TIMEOUT
        )
        self.calls: list[int] = []
        self._paused = False

    def function(self, *, ready: bool = True) -> Any:
        """A cached ``triple(x) = 3x`` in this rig's flavour, recording its calls.

        ``ready``: wait for the invalidation listener first (the server must be up).
        """
        calls = self.calls

        def triple(x: int) -> int:
            calls.append(x)
            return 3 * x

        return make(self.flavor, triple, ready=ready, connection=self.conn)

    @property
    def breaker(self) -> str:
        state: str = self.conn.state.breaker.state
        return state

    def error_deltas(self, fn: Any, args: range) -> list[int]:
        """Call fn(x) for each x, checking its own result; Redis errors added by each call."""
        deltas = []
        for x in args:
            before = self.conn.state.errors
            assert fn(x) == 3 * x
            deltas.append(self.conn.state.errors - before)
        return deltas

    def admin(self) -> redis.Redis:
        """A plain client to the server (close it)."""
        return redis.Redis.from_url(self.server.url, decode_responses=True)

    def stored(self, x: int) -> bool:
        """True if Redis holds an entry of value 3x (looked up by value: keys are hashes)."""
        with self.admin() as admin:
            return any(
                json.loads(admin.get(key) or "{}").get("v") == 3 * x
                for key in admin.keys("cached:*")
            )

    def pause_writes(self) -> None:
        """CLIENT PAUSE WRITE for a minute (lifted by ``resume_writes`` or at teardown)."""
        with self.admin() as admin:
            admin.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        self._paused = True

    def resume_writes(self) -> None:
        with self.admin() as admin:
            admin.execute_command("CLIENT", "UNPAUSE")
        self._paused = False

    def recover(self) -> None:
        """Let the breaker's cool-down pass."""
        self.clock.advance(self.conn.settings.breaker_cooldown + 0.001)

    def close(self) -> None:
        """Thaw and unpause the server if it runs, close every connection, kill it."""
        if self.server.process is not None:
            self.server.thaw()
            if self._paused:
                self.resume_writes()
        self.flavor.close()
        if self.server.process is not None:
            self.server.kill()


@pytest.fixture(params=["sync", "async"])
def rig(request: pytest.FixtureRequest, fresh_server: RedisServer) -> Iterator[FaultRig]:
    """A sync or async (bridged) rig on this test's own server and event loop."""
    with asyncio.Runner() as runner:
        rig = FaultRig(request.param, fresh_server, runner)
        yield rig
        rig.close()


@pytest.mark.redis
class TestFaults:
    """Redis down, killed, frozen or refusing writes: the function's own result, always."""

    def test_down_at_start(self, rig: FaultRig) -> None:
        """One Redis attempt per call until the breaker opens, none after; then recovery."""
        rig.server.kill()
        fn = rig.function(ready=False)
        assert rig.error_deltas(fn, range(1, 4)) == [1, 1, 1]
        assert rig.breaker == "open"
        assert rig.error_deltas(fn, range(4, 8)) == [0, 0, 0, 0]
        assert rig.conn.state.short_circuits == 4
        rig.server.start(rig.server.port)
        rig.recover()
        assert fn(10) == 30
        assert rig.breaker == "closed"
        assert rig.stored(10)
        assert fn(10) == 30
        assert rig.calls.count(10) == 1

    def test_killed_degrades_and_recovers(self, rig: FaultRig) -> None:
        """Killed mid-run: own results, the breaker opens after 3 calls; restarted: caching."""
        fn = rig.function()
        assert fn(1) == 3
        assert rig.stored(1)
        rig.server.kill()
        assert rig.error_deltas(fn, range(2, 5)) == [1, 1, 1]
        assert rig.breaker == "open"
        assert rig.error_deltas(fn, range(5, 8)) == [0, 0, 0]
        errors = fn.cache_info().errors
        assert fn.invalidate(1) is False  # the entry is still in L2: not reached, not dropped
        assert fn.cache_info().errors == errors + 1
        assert rig.conn.state.errors == 3  # no Redis call: the breaker is open
        rig.server.start(rig.server.port)
        rig.recover()
        assert fn(20) == 60
        assert rig.breaker == "closed"
        assert rig.stored(20)
        assert fn(20) == 60
        assert rig.calls.count(20) == 1

    def test_killed_l1_still_serves(self, rig: FaultRig) -> None:
        """Losing Redis bounds every L1 entry to the grace period; within it the function's
        own results (old and new) still come from L1, without a Redis attempt."""
        fn = rig.function()
        assert fn(1) == 3
        coherence = fn._state.coherence
        rig.server.kill()
        assert coherence.wait_until(lambda: coherence.mode == "none", 10)  # loss noticed
        grace = rig.conn.settings.coherence_grace
        assert all(0 < left <= grace for left in l1_deadlines(fn))
        errors = rig.conn.state.errors
        assert fn(1) == 3  # from L1: no Redis attempt, no computation
        assert rig.conn.state.errors == errors
        assert fn(2) == 6  # computed (Redis is down: one failed attempt) ...
        errors = rig.conn.state.errors
        assert fn(2) == 6  # ... then from L1
        assert rig.calls == [1, 2]
        assert rig.conn.state.errors == errors
        assert all(0 < left <= grace for left in l1_deadlines(fn))

    def test_frozen(self, rig: FaultRig) -> None:
        """SIGSTOP: L1 serves, one timeout per call until the breaker opens; thawed: caching."""
        fn = rig.function()
        assert fn(1) == 3
        rig.server.freeze()
        assert fn(1) == 3  # L1: no Redis call
        assert rig.conn.state.errors == 0
        assert rig.error_deltas(fn, range(2, 5)) == [1, 1, 1]
        assert rig.breaker == "open"
        assert rig.error_deltas(fn, range(5, 8)) == [0, 0, 0]
        assert rig.calls == [1, 2, 3, 4, 5, 6, 7]
        rig.server.thaw()
        rig.recover()
        assert fn(20) == 60
        assert rig.breaker == "closed"
        assert rig.stored(20)

    def test_writes_refused_out_of_memory(self, rig: FaultRig) -> None:
        """maxmemory exceeded (noeviction): SET is refused; own results, L1 serves, no timeout."""
        fn = rig.function()
        assert fn(1) == 3
        with rig.admin() as admin:
            admin.config_set("maxmemory-policy", "noeviction")
            admin.config_set("maxmemory", "1")
        assert fn(1) == 3
        assert rig.error_deltas(fn, range(2, 5)) == [1, 1, 1]  # the refused SET of each call
        assert fn.cache_info().errors == 3
        assert not rig.stored(2)
        assert rig.breaker == "closed"  # Redis answered: the link is fine
        assert rig.calls == [1, 2, 3, 4]
        with rig.admin() as admin:
            admin.config_set("maxmemory", "0")
        assert fn(20) == 60
        assert rig.stored(20)

    def test_writes_paused_open_the_breaker(self, rig: FaultRig) -> None:
        """CLIENT PAUSE WRITE: each SET times out; after 3 such timeouts Redis is skipped."""
        fn = rig.function()
        assert fn(1) == 3
        rig.pause_writes()
        assert fn(1) == 3  # L1
        assert rig.error_deltas(fn, range(2, 5)) == [1, 1, 1]
        assert rig.breaker == "open"
        assert rig.error_deltas(fn, range(5, 8)) == [0, 0, 0]
        rig.resume_writes()
        rig.recover()
        assert fn(20) == 60
        assert rig.stored(20)
