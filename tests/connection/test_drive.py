"""The drivers' own command path: replies decoded and parsed as redis-py would, scripts reloaded,
and a pooled connection left in step after an error reply."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import select
import socket
import threading
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from arketic_cache import (
    BackendResponseError,
    RedisCache,
    RedisConnection,
    RedisRateLimiter,
    RedisSessionManager,
)
from arketic_cache._core._effects import Batch, Command, Eval, Flow
from arketic_cache._lua import INCREMENT_WITH_TTL

from ..helpers import Flavor


def run(flavor: Flavor, flow: Flow[Any], *, strict: bool = True) -> Any:
    """Run ``flow`` on the flavour's driver."""
    conn = flavor.connection
    if flavor.name == "sync":
        return conn.sync_driver.run(flow, None, strict=strict)
    return flavor.runner.run(conn.async_driver.run(flow, None, strict=strict))


def one(*args: Any) -> Flow[Any]:
    """A flow of one command, returning its reply."""
    return (yield Command(args))


def script(key: str, amount: int) -> Flow[Any]:
    """A flow of one script call, returning its reply."""
    return (yield Eval(INCREMENT_WITH_TTL, (key,), (amount, 60)))


def flush_scripts(conn: RedisConnection) -> None:
    """Empty the server's script cache behind the library's back."""
    admin = RedisConnection(conn.settings)
    try:
        admin.sync_client.script_flush()
    finally:
        admin.close_sync()


class TestReplies:
    """Replies come back as redis-py's own parsers shape them."""

    def test_set_reply_is_parsed(self, flavor: Flavor) -> None:
        """SET answers True (redis-py's callback), not the raw OK."""
        assert run(flavor, one("SET", "k", "v")) is True
        assert run(flavor, one("GET", "k")) == "v"

    def test_hgetall_reply_is_a_dict(self, flavor: Flavor) -> None:
        """HGETALL answers a dict on RESP2 and RESP3 alike."""
        run(flavor, one("HSET", "h", "a", "1", "b", "2"))
        assert run(flavor, one("HGETALL", "h")) == {"a": "1", "b": "2"}

    def test_lowercase_command_is_parsed_too(self, flavor: Flavor) -> None:
        """Reply parsers are found whatever the command's case."""
        assert run(flavor, one("set", "k", "v")) is True


class TestScripts:
    """A script is sent by SHA and reloaded when the server has forgotten it."""

    def test_script_runs(self, flavor: Flavor) -> None:
        """The script's reply comes back unparsed."""
        assert run(flavor, script("n", 2)) == 2
        assert run(flavor, script("n", 3)) == 5

    @pytest.mark.one_node  # SCRIPT EXISTS asks any one primary of a cluster
    def test_noscript_after_script_flush(self, flavor: Flavor) -> None:
        """After SCRIPT FLUSH the next call falls back to EVAL and succeeds."""
        assert run(flavor, script("n", 1)) == 1
        flush_scripts(flavor.connection)
        assert run(flavor, one("SCRIPT", "EXISTS", INCREMENT_WITH_TTL.sha)) == [False]
        assert run(flavor, script("n", 1)) == 2
        assert run(flavor, one("SCRIPT", "EXISTS", INCREMENT_WITH_TTL.sha)) == [True]
        assert run(flavor, script("n", 1)) == 3


class TestErrorReplies:
    """An error reply is our exception, and the connection it came on stays in step."""

    def test_wrongtype_then_next_reply_is_its_own(self, flavor: Flavor) -> None:
        """After WRONGTYPE, the next command on the pool reads its own reply."""
        run(flavor, one("RPUSH", "list", "x"))
        with pytest.raises(BackendResponseError, match="WRONGTYPE"):
            run(flavor, one("GET", "list"))
        for n in range(25):  # more calls than pooled connections
            run(flavor, one("SET", f"k{n}", str(n)))
            assert run(flavor, one("GET", f"k{n}")) == str(n)

    def test_error_reply_is_not_a_breaker_failure(self, flavor: Flavor) -> None:
        """Redis answered: the breaker stays closed however many error replies come back."""
        run(flavor, one("RPUSH", "list", "x"))
        for _ in range(10):
            assert run(flavor, one("GET", "list"), strict=False) is None
        assert flavor.connection.state.breaker.is_closed
        assert run(flavor, one("SET", "k", "v")) is True


def batch(*commands: tuple[Any, ...], transaction: bool) -> Flow[Any]:
    """A flow of one pipeline, returning its replies."""
    return (yield Batch(tuple(Command(args) for args in commands), transaction=transaction))


class TestBatches:
    """Pipelines and transactions: every reply read, the first error raised."""

    def test_pipeline_replies_parsed(self, flavor: Flavor) -> None:
        """Each reply of a pipeline is parsed like a single command's."""
        replies = run(
            flavor, batch(("SET", "a", "1"), ("GET", "a"), ("EXISTS", "a"), transaction=False)
        )
        assert replies == [True, "1", 1]

    def test_transaction_replies_parsed(self, flavor: Flavor) -> None:
        """MULTI/EXEC answers the commands' parsed replies, not QUEUED."""
        replies = run(flavor, batch(("SET", "a", "1"), ("INCR", "a"), transaction=True))
        assert replies == [True, 2]

    def test_pipeline_error_raised_after_every_command_ran(self, flavor: Flavor) -> None:
        """A failing command in a pipeline raises, the others still ran, the pool is in step
        (the keys share a hash tag: one cluster slot)."""
        run(flavor, one("RPUSH", "{t}list", "x"))
        flow = batch(
            ("SET", "{t}a", "1"), ("INCR", "{t}list"), ("SET", "{t}b", "2"), transaction=False
        )
        with pytest.raises(BackendResponseError, match="WRONGTYPE"):
            run(flavor, flow)
        assert run(flavor, one("MGET", "{t}a", "{t}b")) == ["1", "2"]

    def test_transaction_runtime_error_raised(self, flavor: Flavor) -> None:
        """An error inside EXEC's replies is raised; Redis ran the other commands."""
        run(flavor, one("RPUSH", "{t}list", "x"))
        flow = batch(("SET", "{t}a", "1"), ("INCR", "{t}list"), transaction=True)
        with pytest.raises(BackendResponseError, match="WRONGTYPE"):
            run(flavor, flow)
        assert run(flavor, one("GET", "{t}a")) == "1"

    def test_transaction_refused_command_aborts_all(self, flavor: Flavor) -> None:
        """A command refused while queueing aborts the transaction: nothing runs."""
        flow = batch(("SET", "a", "1"), ("NOSUCHCOMMAND",), transaction=True)
        with pytest.raises(BackendResponseError):
            run(flavor, flow)
        assert run(flavor, one("EXISTS", "a")) == 0
        assert run(flavor, one("SET", "k", "v")) is True


class TestConnections:
    """The drivers' own connections: bounded, replaced when dead, not shared across a fork."""

    def test_sequential_calls_reuse_one_connection(self, flavor: Flavor) -> None:
        """Calls one after another keep using the connection that was used last."""
        for n in range(5):
            assert run(flavor, one("ECHO", str(n))) == str(n)
        conn = flavor.connection
        made = conn.sync_driver._made if flavor.name == "sync" else conn.async_driver._made
        assert len(made) == 1

    def test_never_more_connections_than_the_pool_size(self, flavor: Flavor) -> None:
        """Concurrent callers share at most max_connections connections."""
        conn = flavor.connect(max_connections=3, pool_timeout=5)
        callers = 12
        if flavor.name == "sync":
            barrier = threading.Barrier(callers)

            def call(n: int) -> Any:
                barrier.wait()
                return conn.sync_driver.run(one("INCR", "n"), None, strict=True)

            with ThreadPoolExecutor(callers) as pool:
                replies = list(pool.map(call, range(callers)))
            made = len(conn.sync_driver._made)
        else:

            async def calls() -> list[Any]:
                flows = [
                    conn.async_driver.run(one("INCR", "n"), None, True) for _ in range(callers)
                ]
                return list(await asyncio.gather(*flows))

            replies = flavor.runner.run(calls())
            made = len(conn.async_driver._made)
        assert sorted(replies) == list(range(1, callers + 1))
        assert 1 <= made <= 3


class TestIdleConnectionCheck:
    """Before a request, an idle connection holding anything to read is replaced (sync driver):
    otherwise that stray reply would be read as the answer to our request."""

    @staticmethod
    def idle_connection(conn: RedisConnection) -> Any:
        driver = conn.sync_driver
        assert driver.run(one("PING"), None, strict=True) is True
        (idle,) = driver._idle
        return idle

    @staticmethod
    def wait_for_bytes(idle: Any, size: int) -> None:
        """Block until ``size`` bytes wait in the socket (an event, not a sleep)."""
        sock = idle._sock
        if not isinstance(sock, socket.socket):
            return  # fakeredis answers in memory, at once
        while len(sock.recv(size, socket.MSG_PEEK)) < size:
            select.select([sock], [], [], 5)

    @pytest.mark.one_node  # reaches for the driver's one pool of connections
    def test_stray_reply_in_the_socket(self, backend_url: str) -> None:
        """A reply nobody read (the socket is readable) is never taken for ours."""
        conn = RedisConnection(url=backend_url)
        try:
            idle = self.idle_connection(conn)
            idle.send_command("ECHO", "stray")
            self.wait_for_bytes(idle, len(b"$5\r\nstray\r\n"))
            assert conn.sync_driver.run(one("ECHO", "ours"), None, strict=True) == "ours"
            assert conn.sync_driver.run(one("ECHO", "next"), None, strict=True) == "next"
        finally:
            conn.close_sync()

    @pytest.mark.parametrize(
        "backend_url", [pytest.param("redis", marks=pytest.mark.redis)], indirect=True
    )
    def test_stray_reply_already_buffered(self, backend_url: str) -> None:
        """A reply already read from the socket into the parser's buffer is caught too
        (a real socket: fakeredis keeps no such buffer)."""
        conn = RedisConnection(url=backend_url)
        try:
            idle = self.idle_connection(conn)
            idle.send_packed_command(idle.pack_commands([("ECHO", "a"), ("ECHO", "b")]))
            self.wait_for_bytes(idle, 2 * len(b"$1\r\na\r\n"))
            assert idle.read_response() == "a"  # reads both replies into the buffer
            assert idle._parser._buffer.unread_bytes() > 0
            assert conn.sync_driver.run(one("ECHO", "ours"), None, strict=True) == "ours"
        finally:
            conn.close_sync()


def test_one_connection_serves_one_event_loop_after_another(backend_url: str) -> None:
    """``asyncio.run`` twice on one connection (as scripts and per-test loops do): the second
    loop gets connections of its own instead of the first loop's, which is closed by then."""
    conn = RedisConnection(url=backend_url)
    cache = RedisCache(conn, strict=True)
    limiter = RedisRateLimiter(connection=conn, strict=True)
    sessions = RedisSessionManager(connection=conn, strict=True)

    async def round_trip(n: int) -> tuple[Any, ...]:
        assert await cache.set("k", n)
        session_id = await sessions.new_session({"user_id": n})
        assert session_id is not None
        allowed = await limiter.is_allowed("rate", 10)
        return await cache.get("k"), await sessions.get_session(session_id), allowed

    try:
        assert asyncio.run(round_trip(1)) == (1, {"user_id": 1}, (True, 1, 9))
        first = [weakref.ref(made) for made in conn.async_driver._made]
        assert first
        # The first loop's sockets can only be closed by the garbage collector now (a closed
        # loop cannot close its transports), which warns; collect them here, warnings off.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            assert asyncio.run(round_trip(2)) == (2, {"user_id": 2}, (True, 2, 8))
            gc.collect()
        assert conn.async_driver._made  # this loop's own
        if not backend_url.startswith("memory://"):
            # The first loop's were dropped. (fakeredis keeps an error reply it sent, such as
            # a NOSCRIPT, on its in-process socket; under redis-py 7 that reply's traceback
            # still reaches the connection that raised it.)
            assert all(old() is None for old in first)
        assert conn.state.errors == 0
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            asyncio.run(conn.aclose())  # a third loop: it drops the second loop's connections
            gc.collect()
        conn.close_sync()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_uses_connections_of_its_own(backend_url: str) -> None:
    """After a fork the child opens its own connections: parent and child never share a socket."""
    conn = RedisConnection(url=backend_url)
    try:
        driver = conn.sync_driver
        assert driver.run(one("SET", "k", "parent"), None, strict=True) is True
        parent_id = driver.run(one("CLIENT", "ID"), None, strict=True)
        child = in_forked_child(lambda: _child_round_trips(conn))
        assert child[:3] == ["child-0", "child-1", "child-2"]
        assert child[3] != str(parent_id)  # a socket of its own: another client on the server
        for n in range(3):
            assert driver.run(one("ECHO", f"parent-{n}"), None, strict=True) == f"parent-{n}"
        assert driver.run(one("CLIENT", "ID"), None, strict=True) == parent_id
    finally:
        conn.close_sync()


def _child_round_trips(conn: RedisConnection) -> list[str]:
    driver = conn.sync_driver
    echoes = [driver.run(one("ECHO", f"child-{n}"), None, strict=True) for n in range(3)]
    return [*echoes, str(driver.run(one("CLIENT", "ID"), None, strict=True))]


def in_forked_child(work: Callable[[], list[str]]) -> list[str]:
    """Run ``work`` in a forked child; its result comes back as JSON through a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running the parent's cleanup
        status = 0
        try:
            os.write(write_end, json.dumps(work()).encode())
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    result: list[str] = json.loads(output)
    return result
