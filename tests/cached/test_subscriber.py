"""``SubscriberThread`` and ``SubscriberTask`` against fakeredis and a real redis-server.

Both twins run the same scenarios: the task on an event loop of its own thread, so each test
body is written once and waits on the listener's condition (never a sleep). The listener
records what the subscriber reports; the connections it opens are recorded too, with the
moment each one is closed.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
import redis

from arketic_cache import RedisConnection
from arketic_cache._core._subscribe import Message, Subscribed, Topics
from arketic_cache._subscribe import SubscriberTask, SubscriberThread
from arketic_cache.testing import RedisServer

T = TypeVar("T")
#: The longest any expected report may take (reconnects back off 0.05 s at first).
DEADLINE = 10.0
#: How far a flooding publisher may run ahead of the subscriber (messages).
WINDOW = 200
KINDS = ["thread", "task"]
PROTOCOLS = [pytest.param(2, id="resp2"), pytest.param(3, id="resp3")]

#: The seam on one server: tracking covers every key there.
pytestmark = pytest.mark.one_node


class Recorder:
    """A listener that records every report, with its monotonic time, under a condition."""

    def __init__(self, topics: Topics) -> None:
        self.current = topics
        self.events: list[tuple[Any, ...]] = []
        self.times: list[float] = []  # when each event was recorded
        self.cond = threading.Condition()
        self.messages = 0  # message events so far

    def add(self, *event: Any) -> None:
        with self.cond:
            self.messages += event[0] == "message"
            self.events.append(event)
            self.times.append(time.monotonic())
            self.cond.notify_all()

    def topics(self) -> Topics:
        return self.current

    def on_subscribed(self, result: Subscribed, gapless: bool) -> None:
        self.add("subscribed", result, gapless)

    def on_lost(self, reason: str) -> None:
        self.add("lost", reason)

    def on_refused(self, reason: str) -> None:
        self.add("refused", reason)

    def on_invalidate(self, keys: tuple[str, ...] | None) -> None:
        self.add("invalidate", keys)

    def on_message(self, message: Message) -> None:
        self.add("message", message)

    def kinds(self) -> list[str]:
        with self.cond:
            return [event[0] for event in self.events if event[0] != "closed"]

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        with self.cond:
            return [event for event in self.events if event[0] == kind]

    def wait(self, predicate: Callable[[], bool], what: str) -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, DEADLINE):
                raise AssertionError(f"no {what} within {DEADLINE} s; events: {self.events}")

    def wait_count(self, kind: str, count: int) -> None:
        self.wait(lambda: sum(e[0] == kind for e in self.events) >= count, f"{count} x {kind}")

    def closed(self) -> set[int]:
        """The connections (by index) closed so far (redis-py may disconnect one twice)."""
        return {event[1] for event in self.of("closed")}

    def wait_event(self, event: tuple[Any, ...]) -> None:
        self.wait(lambda: event in self.events, repr(event))


class Twin:
    """One subscriber of either kind, started, stopped and inspected from the test's thread."""

    def __init__(self, kind: str, conn: RedisConnection, listener: Recorder) -> None:
        self.kind = kind
        self.conn = conn
        self.listener = listener
        self.made: list[Any] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sub: SubscriberThread | SubscriberTask
        resp3 = conn.settings.protocol == 3
        if kind == "thread":
            self.sub = SubscriberThread(self._sync_connection, listener, resp3=resp3)
        else:
            self.loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
            self._thread.start()
            self.sub = SubscriberTask(self._async_connection, listener, resp3=resp3)

    # -- connections, recorded ------------------------------------------------------------------
    def _made(self, connection: Any) -> int:
        with self.listener.cond:
            self.made.append(connection)
            self.listener.cond.notify_all()
            return len(self.made) - 1

    def _sync_connection(self) -> Any:
        connection: Any = self.conn.subscriber_connection()
        index, disconnect = self._made(connection), connection.disconnect

        def recorded(*args: Any, **kwargs: Any) -> Any:
            try:
                return disconnect(*args, **kwargs)
            finally:
                self.listener.add("closed", index)

        connection.disconnect = recorded
        return connection

    def _async_connection(self) -> Any:
        connection: Any = self.conn.async_subscriber_connection()
        index, disconnect = self._made(connection), connection.disconnect

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            try:
                return await disconnect(*args, **kwargs)
            finally:
                self.listener.add("closed", index)

        connection.disconnect = recorded
        return connection

    def address(self, index: int) -> str:
        """``ip:port`` of connection ``index`` as the server sees the client."""
        connection = self.made[index]
        if self.kind == "thread":
            host, port = connection._sock.getsockname()[:2]
        else:
            host, port = connection._writer.get_extra_info("sockname")[:2]
        return f"{host}:{port}"

    # -- life -------------------------------------------------------------------------------------
    def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(DEADLINE)

    def start(self) -> None:
        if isinstance(self.sub, SubscriberThread):
            self.sub.start()
        else:
            task = self.sub

            async def start() -> None:
                task.start()

            self._on_loop(start())

    def stop(self) -> None:
        if isinstance(self.sub, SubscriberThread):
            self.sub.stop()
        else:
            self._on_loop(self.sub.stop())

    @property
    def running(self) -> bool:
        return self.sub.running

    def close(self) -> None:
        self.stop()
        if self.loop is None:
            self.conn.close_sync()
            return
        self._on_loop(self.conn.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(DEADLINE)
        self.loop.close()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def names() -> str:
    """A name of the test's own, for its channels and key prefix."""
    return f"sub-{uuid.uuid4().hex[:8]}"


def topics_for(names: str, *channels: str) -> Topics:
    return Topics(
        channels=frozenset(f"{names}:{c}" for c in channels or ("ch",)),
        patterns=frozenset({f"{names}.p.*"}),
        tracking=frozenset({f"{names}:key:"}),
        fallback=frozenset({f"{names}:announce"}),
    )


@contextmanager
def twin(kind: str, url: str, topics: Topics, protocol: int = 3) -> Iterator[Twin]:
    listener = Recorder(topics)
    made = Twin(kind, RedisConnection(url=url, protocol=protocol), listener)
    try:
        yield made
    finally:
        made.close()


def subscribed(twin: Twin, count: int = 1) -> tuple[Any, ...]:
    twin.listener.wait_count("subscribed", count)
    return twin.listener.of("subscribed")[count - 1]


# -- subscribe and deliver -----------------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_subscribes_and_delivers(
    backend_url: str, raw: redis.Redis, kind: str, protocol: int, names: str
) -> None:
    topics = topics_for(names)
    tracking = not backend_url.startswith("memory://")  # fakeredis has no CLIENT TRACKING
    with twin(kind, backend_url, topics, protocol) as sub:
        sub.start()
        assert subscribed(sub) == ("subscribed", Subscribed(tracking, topics), False)
        assert sub.sub.result == Subscribed(tracking, topics)
        assert (sub.sub.connections, sub.sub.failures) == (1, 0)
        assert sub.running

        raw.publish(f"{names}:ch", "hello")
        sub.listener.wait_event(("message", Message(f"{names}:ch", "hello")))
        raw.publish(f"{names}.p.1", "matched")
        sub.listener.wait_event(("message", Message(f"{names}.p.1", "matched", f"{names}.p.*")))
        if tracking:
            raw.set(f"{names}:elsewhere", 1)  # not under a tracked prefix: never reported
            raw.set(f"{names}:key:1", 1)
            raw.delete(f"{names}:key:1")
            sub.listener.wait_count("invalidate", 2)
            keys = [event[1] for event in sub.listener.of("invalidate")]
            assert keys == [(f"{names}:key:1",)] * 2
        else:  # the announce channel stands in
            raw.publish(f"{names}:announce", "changed")
            sub.listener.wait_event(("message", Message(f"{names}:announce", "changed")))
        assert "lost" not in sub.listener.kinds()

        sub.stop()
        assert not sub.running
        assert sub.sub.result is None
        assert sub.listener.closed() == {0}, "its connection closed on stop"


def test_start_twice_keeps_one_connection(backend_url: str, kind: str, names: str) -> None:
    with twin(kind, backend_url, topics_for(names)) as sub:
        sub.start()
        subscribed(sub)
        sub.start()
        assert sub.running
        assert sub.sub.connections == 1


# -- a topic change -------------------------------------------------------------------------------
def test_resubscribe_is_gapless(backend_url: str, raw: redis.Redis, kind: str, names: str) -> None:
    """Messages published all through a topic change all arrive: the new connection listens
    before the old one is drained and dropped."""
    before, after = topics_for(names, "a"), topics_for(names, "a", "b")
    channel = f"{names}:a"
    with twin(kind, backend_url, before) as sub:
        sub.start()
        subscribed(sub)
        done, published = threading.Event(), []

        def publish() -> None:
            """Numbered messages, back to back until told to stop, at most WINDOW ahead of
            the subscriber: unthrottled, a publisher that outpaces the subscriber (fakeredis
            in this very process) grows the old connection's backlog, and its drain, without
            bound."""
            count = 0
            cond = sub.listener.cond

            def caught_up() -> bool:
                return sub.listener.messages > count - WINDOW

            while not done.is_set():
                raw.publish(channel, str(count))
                count += 1
                with cond:
                    cond.wait_for(caught_up, DEADLINE)
            published.append(count)

        publisher = threading.Thread(target=publish)
        publisher.start()
        try:
            sub.listener.wait_event(("message", Message(channel, "0")))
            sub.listener.current = after
            sub.sub.resubscribe()
            _, result, gapless = subscribed(sub, 2)
            sub.listener.wait_event(("closed", 0))  # the old connection, drained, dropped
        finally:
            done.set()
            publisher.join(DEADLINE)
        assert gapless is True
        assert result.topics == after
        raw.publish(channel, "end")
        sub.listener.wait_event(("message", Message(channel, "end")))
        received = {
            int(event[1].data)
            for event in sub.listener.of("message")
            if event[1].channel == channel and event[1].data != "end"
        }
        missing = set(range(published[0])) - received
        assert not missing, f"{len(missing)} of {published[0]} messages lost in the swap"
        events = sub.listener.events
        assert events.index(("closed", 0)) > events.index(("subscribed", result, True))
        assert sub.listener.closed() == {0}, "the new one stays open"
        raw.publish(f"{names}:b", "new")
        sub.listener.wait_event(("message", Message(f"{names}:b", "new")))
        assert "lost" not in sub.listener.kinds()
        assert (sub.sub.connections, sub.sub.failures) == (2, 0)


# -- losing the server ----------------------------------------------------------------------------
@pytest.mark.redis
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_killed_connection_is_lost_then_subscribed_again(
    redis_server: RedisServer, kind: str, protocol: int, names: str
) -> None:
    topics = topics_for(names)
    admin = redis.Redis.from_url(redis_server.url)
    try:
        with twin(kind, redis_server.url, topics, protocol) as sub:
            sub.start()
            subscribed(sub)
            assert admin.client_kill(sub.address(0)) is True
            sub.listener.wait_count("lost", 1)
            assert subscribed(sub, 2) == ("subscribed", Subscribed(True, topics), False)
            assert sub.listener.kinds() == ["subscribed", "lost", "subscribed"]
            assert (sub.sub.connections, sub.sub.failures) == (2, 0)
            admin.publish(f"{names}:ch", "after")
            sub.listener.wait_event(("message", Message(f"{names}:ch", "after")))
    finally:
        admin.close()


@pytest.mark.redis
def test_server_restart_backs_off_then_resubscribes(
    fresh_server: RedisServer, kind: str, names: str
) -> None:
    topics = topics_for(names)
    with twin(kind, fresh_server.url, topics) as sub:
        sub.start()
        subscribed(sub)
        fresh_server.stop()
        # every attempt while it is down opens one connection and fails: at least three
        sub.listener.wait(lambda: len(sub.made) >= 4, "three reconnect attempts")
        attempts = sub.listener.of("lost")
        assert len(attempts) >= 3
        fresh_server.start(fresh_server.port)
        subscribed(sub, 2)
        kinds = sub.listener.kinds()
        assert kinds[0] == "subscribed"
        assert kinds[-1] == "subscribed"
        assert set(kinds[1:-1]) == {"lost"}
        assert sub.sub.failures == 0, "a subscription resets the backoff"
        assert sub.sub.connections == len(sub.made)
        assert sub.sub.connections == len(kinds) - 1  # one per loss, and the first


# -- refused -------------------------------------------------------------------------------------
@pytest.fixture
def no_channels(redis_server: RedisServer) -> Iterator[str]:
    """The URL of a user without channels or CLIENT TRACKING (Redis 7's default lacks channels)."""
    user, password = f"nosub-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin = redis.Redis.from_url(redis_server.url)
    rules = ["reset", "on", f">{password}", "~*", "resetchannels", "+@all", "-client|tracking"]
    admin.execute_command("ACL", "SETUSER", user, *rules)  # type: ignore[no-untyped-call]
    try:
        yield f"redis://{user}:{password}@127.0.0.1:{redis_server.port}/0"
    finally:
        admin.acl_deluser(user)
        admin.close()


@pytest.mark.redis
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_refused_channel_backs_off(no_channels: str, kind: str, protocol: int, names: str) -> None:
    """Tracking refused, then its fallback channel: each attempt opens one connection and is
    refused; the attempts are spaced by the growing backoff; nothing is reported lost."""
    topics = Topics(tracking=frozenset({f"{names}:key:"}), fallback=frozenset({f"{names}:a"}))
    with twin(kind, no_channels, topics, protocol) as sub:
        sub.start()
        sub.listener.wait_count("refused", 5)
        sub.stop()
        refusals = sub.listener.of("refused")
        assert all("NoPermissionError" in event[1] for event in refusals), refusals
        assert set(sub.listener.kinds()) == {"refused"}, "never subscribed, never lost"
        count = len(refusals)
        assert count <= sub.sub.connections <= count + 1, "one connection per attempt"
        assert sub.sub.connections == len(sub.made)
        assert sub.listener.closed() == set(range(len(sub.made))), "none left open"
        times = [
            moment
            for event, moment in zip(sub.listener.events, sub.listener.times, strict=True)
            if event[0] == "refused"
        ]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        for failures, gap in enumerate(gaps):
            # reconnect_delay(failures, draw, base=0.05) is at least half its ceiling
            assert gap >= 0.025 * 2**failures - 0.005, (failures, gaps)
        assert times[4] - times[0] >= 0.375 - 0.02, "five attempts take at least 0.375 s"


@pytest.mark.redis
def test_refused_subscribe_of_several_channels_is_a_refusal(
    no_channels: str, kind: str, names: str
) -> None:
    topics = Topics(channels=frozenset({f"{names}:a", f"{names}:b"}))
    with twin(kind, no_channels, topics) as sub:
        sub.start()
        sub.listener.wait(lambda: bool(sub.listener.kinds()), "a report")
        assert sub.listener.kinds()[0] == "refused"
