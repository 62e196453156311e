"""L1 coherence across OS processes on a real redis-server, on RESP2 and RESP3.

The test process plays process A (a raw client, and decorated functions of its own); process B
is a ``spawn``ed worker (``coherence_worker.py``) with the same functions on the same server and
key prefix, answering commands over a pipe. B's functions read a *backing value*, so a result
tells whether B served its L1 copy (old value) or had it evicted (new value).

Nothing sleeps: B waits for its listener's evictions on a condition, bounded by a deadline.
Delays are taken on the host's monotonic clock, which both processes share.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
import redis

from arketic_cache import RedisConnection, cached
from arketic_cache._core._cached import CallKeyer
from arketic_cache.testing import RedisServer

from ..helpers import Target, raw_client
from . import coherence_worker
from .coherence_worker import DEADLINE, SYNC_NS, backing_key

pytestmark = pytest.mark.redis

PROTOCOLS = [pytest.param(2, id="resp2"), pytest.param(3, id="resp3")]
#: Quick loss detection for the frozen-server test: PING every 0.25 s, answered within 0.25 s,
#: then entries are kept at most 0.5 s: L1 stops serving within 1 s of the freeze.
FAST = {"listener_ping_interval": 0.25, "listener_ping_timeout": 0.25, "coherence_grace": 0.5}


class ProcessB:
    """The test's handle on process B (and, after ``fork``, on B's child)."""

    def __init__(self, url: str, prefix: str, protocol: int, **settings: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.spare, spare_child = context.Pipe()
        self.process = context.Process(
            target=coherence_worker.main,
            args=(url, prefix, protocol, settings, child, spare_child),
            daemon=True,
        )
        self.process.start()
        child.close()
        spare_child.close()
        self.ready = self._reply(self.pipe)

    @staticmethod
    def _reply(pipe: Any) -> dict[str, Any]:
        assert pipe.poll(DEADLINE + 30), "process B did not answer"
        status, payload = pipe.recv()
        assert status == "ok", f"process B failed:\n{payload}"
        return payload  # type: ignore[no-any-return]

    def ask(self, command: str, arg: Any = None, *, child: bool = False) -> dict[str, Any]:
        pipe = self.spare if child else self.pipe
        pipe.send((command, arg))
        return self._reply(pipe)

    def close(self) -> None:
        try:
            for pipe in (self.spare, self.pipe):
                with suppress(OSError):
                    pipe.send(("stop", None))
            self.process.join(DEADLINE)
        finally:
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
            self.pipe.close()
            self.spare.close()


@pytest.fixture
def prefix() -> str:
    """A key prefix of the test's own: its keys and channels are private."""
    return f"coherence-{uuid.uuid4().hex[:8]}:"


@contextmanager
def process_b(url: str, prefix: str, protocol: int, **settings: Any) -> Iterator[ProcessB]:
    b = ProcessB(url, prefix, protocol, **settings)
    try:
        yield b
    finally:
        b.close()


def envelope(value: int) -> str:
    return json.dumps({"v": value, "d": 0.0})


def evicted_after(b: ProcessB, name: str, x: int, before: int, started: float) -> float:
    """Seconds from ``started`` until B's listener evicted the entry (asserted to happen)."""
    reply = b.ask("await_eviction", (name, x, before))
    assert reply["value"] is not None, "B's L1 copy was never evicted"
    return float(reply["value"]) - started


@pytest.mark.one_node  # on a cluster invalidations are announced: other clients' are not seen
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", ["f", "g"])
def test_any_clients_write_evicts_l1_in_every_process(
    real_target: Target,
    prefix: str,
    protocol: int,
    name: str,
    record_property: Any,
) -> None:
    """Another client's raw SET, DEL and FLUSHDB each evict B's L1 copy (sync f, async g), on
    a server and behind sentinels."""
    raw = raw_client(real_target.direct_url, decode_responses=True)
    with process_b(real_target.url, prefix, protocol) as b:
        assert b.ready["mode"] == "tracking"
        delays: list[float] = []

        def cached_in_b(x: int, value: int) -> dict[str, Any]:
            raw.set(backing_key(prefix, name, x), value)
            first = b.ask("call", (name, x))
            assert first["value"] == value
            raw.set(backing_key(prefix, name, x), value + 1)
            control = b.ask("call", (name, x))
            assert control["value"] == value, "control: B serves its L1 copy"
            assert control[name]["l1_hits"] == first[name]["l1_hits"] + 1
            return control

        # A raw SET of the cached key: B's next call reads the new value from L2.
        for x in range(1, 6):
            before = cached_in_b(x, 10 * x)
            started = _now()
            raw.set(_l2_key(name, x, prefix), envelope(-x), ex=60)
            delays.append(evicted_after(b, name, x, before["evictions"], started))
            after = b.ask("call", (name, x))
            assert after["value"] == -x, "B served a stale L1 copy after a raw SET"
            assert after["computed"][name] == before["computed"][name], "read from L2"

        # A raw DEL: B recomputes from the backing value.
        for x in range(6, 11):
            before = cached_in_b(x, 10 * x)
            started = _now()
            raw.delete(_l2_key(name, x, prefix))
            delays.append(evicted_after(b, name, x, before["evictions"], started))
            after = b.ask("call", (name, x))
            assert after["value"] == 10 * x + 1, "B served a stale L1 copy after a raw DEL"
            assert after["computed"][name] == before["computed"][name] + 1

        # FLUSHDB (on this test's own server): every copy goes.
        before = cached_in_b(11, 110)
        started = _now()
        raw.flushdb()
        delays.append(evicted_after(b, name, 11, before["evictions"], started))
        raw.set(backing_key(prefix, name, 11), 7)
        assert b.ask("call", (name, 11))["value"] == 7, "B served a copy after FLUSHDB"
    raw.close()
    # Reported at the end of the run (tests/conftest.py): median and worst per protocol.
    record_property(f"eviction_delays_ms[resp{protocol}]", [d * 1000 for d in delays])


def _body(x: int) -> int:
    return x


def _l2_key(name: str, x: int, prefix: str) -> str:
    """The key B's function ``name`` uses for ``x`` (the same key function as B's)."""
    namespace = SYNC_NS if name == "f" else coherence_worker.ASYNC_NS
    return prefix + CallKeyer(_body, namespace=namespace, key=None, exclude=())((x,), {})


def _now() -> float:
    return time.monotonic()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_library_writes_and_invalidations_reach_the_other_process(
    real_target: Target, prefix: str, protocol: int
) -> None:
    """A's ``invalidate`` and A's recomputed write each evict B's copy: on a server, behind
    sentinels, and on a cluster (announced there: tracking is per node)."""
    raw = raw_client(real_target.direct_url, decode_responses=True)
    conn = RedisConnection(url=real_target.url, protocol=protocol, key_prefix=prefix)

    @cached(connection=conn, namespace=SYNC_NS, ttl=600)
    def f(x: int) -> int:
        return int(raw.get(backing_key(prefix, "f", x)) or -1)

    try:
        with process_b(real_target.url, prefix, protocol) as b:
            assert b.ready["mode"] == ("announce" if conn.cluster else "tracking")
            raw.set(backing_key(prefix, "f", 1), 100)
            assert b.ask("call", ("f", 1))["value"] == 100
            raw.set(backing_key(prefix, "f", 1), 101)
            before = b.ask("call", ("f", 1))
            assert before["value"] == 100
            assert f.invalidate(1) is True
            evicted_after(b, "f", 1, before["evictions"], _now())
            assert b.ask("call", ("f", 1))["value"] == 101

            # A's write: the entry leaves L2, A recomputes and stores; B reads A's value.
            raw.set(backing_key(prefix, "f", 2), 200)
            assert b.ask("call", ("f", 2))["value"] == 200
            f.cache_clear()
            raw.set(backing_key(prefix, "f", 2), 201)
            before = b.ask("state")
            assert f.invalidate(2) is True
            assert f(2) == 201  # computed in A and stored
            evicted_after(b, "f", 2, before["evictions"], _now())
            after = b.ask("call", ("f", 2))
            assert after["value"] == 201
    finally:
        conn.close_sync()
        raw.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_skewed_writer_cannot_extend_a_readers_l1(
    redis_server: RedisServer, prefix: str, protocol: int
) -> None:
    """Entries written with an expiry stamp an hour ahead (a writer whose clock is wrong, or
    an old version that wrote one) live in a reader's L1 only as long as Redis keeps them."""
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    with process_b(redis_server.url, prefix, protocol) as b:
        key = _l2_key("f", 1, prefix)
        skewed = json.dumps({"v": 5, "x": 4102444800.0, "d": 0.0})  # the year 2100
        before = b.ask("state")
        raw.set(key, skewed, ex=30)
        # The write's own report reaches B first (else it could evict what B reads next).
        assert b.ask("await_eviction", ("f", 1, before["evictions"]))["value"] is not None
        assert b.ask("call", ("f", 1))["value"] == 5
        left = b.ask("l1_left", ("f", 1))["value"]
        assert left is not None
        assert 0 < left <= 30, f"B keeps the entry {left:.0f} s, past its 30 s in Redis"
    raw.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_preload_then_fork_is_coherent_both_ways(
    redis_server: RedisServer, prefix: str, protocol: int
) -> None:
    """B caches, then forks (gunicorn --preload, celery prefork). The child starts its own
    listener on first use (a new connection, a new origin); a write from outside evicts the
    child's copy, and the child's invalidation evicts the parent's."""
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    with process_b(redis_server.url, prefix, protocol) as b:
        raw.set(backing_key(prefix, "f", 1), 10)
        parent = b.ask("call", ("f", 1))
        assert parent["value"] == 10
        forked = b.ask("fork")
        child_pid = forked["value"]
        assert child_pid != parent["pid"]

        child = b.ask("call", ("f", 1), child=True)  # first use in the child
        assert child["pid"] == child_pid
        assert child["value"] == 10
        child = b.ask("settle", child=True)
        assert child["mode"] == "tracking"
        assert child["origin"] != parent["origin"]
        assert child["connections"] == 1, "the child opened a listener connection of its own"
        child = b.ask("call", ("f", 1), child=True)
        assert child["value"] == 10

        # Outside -> child: a raw DEL evicts the child's copy.
        raw.set(backing_key(prefix, "f", 1), 11)
        started = _now()
        raw.delete(_l2_key("f", 1, prefix))
        evicted_after_child = b.ask("await_eviction", ("f", 1, child["evictions"]), child=True)
        assert evicted_after_child["value"] is not None, "the child's copy was not evicted"
        assert evicted_after_child["value"] >= started
        assert b.ask("call", ("f", 1), child=True)["value"] == 11

        # Child -> parent: the child's invalidation evicts the parent's copy.
        parent = b.ask("call", ("f", 1))
        assert parent["value"] == 11  # the parent, too, was evicted by the raw DEL
        raw.set(backing_key(prefix, "f", 1), 12)
        assert b.ask("call", ("f", 1))["value"] == 11, "control: the parent's L1 copy"
        before = b.ask("state")
        assert b.ask("invalidate", ("f", 1), child=True)["value"] is True
        assert b.ask("await_eviction", ("f", 1, before["evictions"]))["value"] is not None
        assert b.ask("call", ("f", 1))["value"] == 12
    raw.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_frozen_server_stops_l1_within_the_bound(
    fresh_server: RedisServer, prefix: str, protocol: int
) -> None:
    """SIGSTOP: the listener's PING goes unanswered; B's L1 stops serving within
    ping interval + ping timeout + grace of the freeze. Thawed: coherent again."""
    raw = redis.Redis.from_url(fresh_server.url, decode_responses=True)
    bound = sum(FAST.values())
    with process_b(fresh_server.url, prefix, protocol, **FAST) as b:
        raw.set(backing_key(prefix, "f", 1), 10)
        assert b.ask("call", ("f", 1))["value"] == 10
        raw.close()
        fresh_server.freeze()
        try:
            served_for = b.ask("serve_until_miss", ("f", 1, _now()))["value"]
        finally:
            fresh_server.thaw()
        # The bound, plus one scheduling slice of the listener (0.2 s) and slack for a busy
        # machine; before the fix L1 served for the whole TTL (600 s).
        assert served_for <= bound + 1.0, f"L1 served {served_for:.2f} s into the freeze"
        assert b.ask("await_mode", "tracking")["value"] is True, "no resubscription after thaw"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_refused_permission_is_bounded(
    redis_server: RedisServer, protocol: int, caplog: pytest.LogCaptureFixture
) -> None:
    """An ACL user without pub/sub channels (Redis 7's default for new users) and, on RESP3,
    without CLIENT: coherence is unavailable. Over 10 s: one warning, a handful of listener
    connections (capped exponential backoff), and L1 entries kept at most the grace period."""
    user, password = f"noch-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    rules = ["reset", "on", f">{password}", "~*", "resetchannels", "+@all"]
    if protocol == 3:  # RESP3 tracking needs no channel: take tracking away too
        rules.append("-client|tracking")
    admin = redis.Redis.from_url(redis_server.url)
    admin.execute_command("ACL", "SETUSER", user, *rules)  # type: ignore[no-untyped-call]
    url = f"redis://{user}:{password}@127.0.0.1:{redis_server.port}/0"
    conn = RedisConnection(url=url, protocol=protocol, key_prefix=f"perm-{user}:")
    calls: list[int] = []

    @cached(connection=conn, ttl=600)
    def f(x: int) -> int:
        calls.append(x)
        return x

    try:
        with caplog.at_level("WARNING", logger="arketic_cache"):
            assert f(1) == 1
            state = f._state
            assert state.coherence is not None
            stats_before = _connections_received(admin)
            window = state.coherence.wait_until(lambda: False, 10.0)  # observe for 10 s
            assert window is False
            opened = state.coherence.subscriber.connections
            received = _connections_received(admin) - stats_before
        warnings = [r for r in caplog.records if "not permitted" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
        assert 2 <= opened <= 12, f"{opened} listener connections in 10 s"
        assert received <= opened + 1  # nothing else reconnects behind our back
        assert f.cache_info().coherence == "none"
        assert calls == [1]
        left = state.l1.get((1, int)) if state.l1 is not None else None
        assert left is None or left[1] - _now() <= conn.settings.coherence_grace
    finally:
        conn.close_sync()
        admin.acl_deluser(user)
        admin.close()


def _connections_received(admin: redis.Redis) -> int:
    info: dict[str, Any] = admin.info("stats")
    return int(info["total_connections_received"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_announce_mode_where_tracking_is_refused(
    redis_server: RedisServer, prefix: str, protocol: int
) -> None:
    """A user without CLIENT TRACKING but with channels: the announce channel carries the
    library's own writes and invalidations between processes."""
    user, password = f"ann-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin = redis.Redis.from_url(redis_server.url)
    rules = ["reset", "on", f">{password}", "~*", "&*", "+@all", "-client|tracking"]
    admin.execute_command("ACL", "SETUSER", user, *rules)  # type: ignore[no-untyped-call]
    url = f"redis://{user}:{password}@127.0.0.1:{redis_server.port}/0"
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    conn = RedisConnection(url=url, protocol=protocol, key_prefix=prefix)

    @cached(connection=conn, namespace=SYNC_NS, ttl=600)
    def f(x: int) -> int:
        return int(raw.get(backing_key(prefix, "f", x)) or -1)

    try:
        with process_b(url, prefix, protocol) as b:
            assert b.ready["mode"] == "announce"
            raw.set(backing_key(prefix, "f", 1), 1)
            before = b.ask("call", ("f", 1))
            assert before["value"] == 1
            raw.set(backing_key(prefix, "f", 1), 2)
            assert f.invalidate(1) is True
            evicted_after(b, "f", 1, before["evictions"], _now())
            assert b.ask("call", ("f", 1))["value"] == 2
    finally:
        conn.close_sync()
        raw.close()
        admin.acl_deluser(user)
        admin.close()
