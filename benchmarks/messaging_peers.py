"""The messaging rows' shared parts, and the peer ``broadcaster`` (its Redis backend).

Here: the 1 KB ``Chat`` message and its channel schema, the batch runners (single round trips,
bursts), the memory probe of a subscriber that stops reading, and broadcaster's rows.

broadcaster is optional (``pip install -e '.[bench]'``) and imported dynamically, so the harness
and its type check work without it; a missing or broken peer becomes a note, not a failure.
Its Redis backend has one redis.asyncio PubSub per ``Broadcast``, a listener task putting every
message in an unbounded ``asyncio.Queue``, and a second unbounded queue per subscriber. Its
``subscribe`` sends SUBSCRIBE without waiting for Redis to confirm it, so before timing a probe
is published until one arrives. It carries strings: our floors' ``json.dumps`` of the message,
``json.loads``-ed on receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any, NamedTuple

import redis
from pydantic import BaseModel

from arketic_cache import Channel
from arketic_cache.testing import RedisServer

from .timing import BatchRunner, Contender

__all__ = [
    "DEADLINE_SECONDS",
    "JSON_BYTES",
    "MEMORY_MESSAGES",
    "Backlog",
    "BroadcasterRows",
    "Chat",
    "ChatChannel",
    "backlog_cells",
    "broadcaster_memory",
    "broadcaster_rows",
    "bursts",
    "expect",
    "lost",
    "mib",
    "new_subscriber",
    "one_kb_chat",
    "round_trips",
    "subscriber_ids",
    "unread_backlog",
    "wait_until",
]

#: A message not received within this is lost, not slow: the run fails.
DEADLINE_SECONDS = 5.0
JSON_BYTES = 1024
#: Published to a subscriber that stopped reading; measured after half and after all of them.
MEMORY_MESSAGES = 20_000


class Chat(BaseModel):
    """The benchmarks' message: its compact JSON is ``JSON_BYTES`` long."""

    user: str
    text: str


class ChatChannel(Channel[Chat]):
    """One chat's channel."""

    template = "bench:chat:{chat_id}"
    chat_id: str


def one_kb_chat() -> Chat:
    """A ``Chat`` whose JSON (``model_dump_json()``, compact) is exactly 1024 bytes."""
    empty = len(Chat(user="ada", text="").model_dump_json())
    text = ("lorem ipsum dolor sit amet " * 40)[: JSON_BYTES - empty]
    chat = Chat(user="ada", text=text)
    if len(chat.model_dump_json()) != JSON_BYTES:
        raise RuntimeError("the benchmark message is not 1 KB of JSON")
    return chat


def lost(label: str, got: object) -> RuntimeError:
    """The error of a receive that did not get the message (the run is invalid)."""
    return RuntimeError(f"{label}: received {got!r} instead of the message; the run is invalid")


def expect(label: str, got: object, want: object) -> None:
    """Fail unless a probe received the message it sent."""
    if got != want:
        raise RuntimeError(f"{label} received a different message: {got!r}")


# -- the batch runners -----------------------------------------------------------------------------
def round_trips(
    send: Callable[[], Awaitable[object]],
    receive: Callable[[], Awaitable[object]],
    samples: list[float],
) -> BatchRunner:
    """``n`` single messages, each published then received; every one's time kept."""

    async def run(n: int) -> int:
        total = 0
        for _ in range(n):
            start = time.perf_counter_ns()
            await send()
            await receive()
            elapsed = time.perf_counter_ns() - start
            samples.append(elapsed)
            total += elapsed
        return total

    return run


def bursts(
    send: Callable[[], Awaitable[object]], receive: Callable[[], Awaitable[object]]
) -> BatchRunner:
    """``n`` messages published one after another while a consumer task receives all ``n``;
    the nanoseconds from the first publish to the last receive."""

    async def run(n: int) -> int:
        async def consume() -> None:
            for _ in range(n):
                await receive()

        start = time.perf_counter_ns()
        consumer = asyncio.create_task(consume())
        try:
            for _ in range(n):
                await send()
            await consumer
        finally:
            consumer.cancel()  # only matters when publishing failed
        return time.perf_counter_ns() - start

    return run


# -- memory of a subscriber that stops reading -----------------------------------------------------
class Backlog(NamedTuple):
    """What was held once ``published`` messages were sent to a subscriber that never read."""

    published: int
    process: int  # bytes this process allocated and still holds (tracemalloc)
    server: int  # the server's output buffer for the subscriber connection (CLIENT LIST omem)


def subscriber_ids(raw: redis.Redis) -> set[int]:
    """The ids of the server's subscribed connections."""
    return {int(c["id"]) for c in raw.client_list() if int(c.get("sub", 0)) > 0}


def new_subscriber(raw: redis.Redis, before: set[int]) -> int:
    """The id of the one subscribed connection that ``before`` did not hold."""
    new = subscriber_ids(raw) - before
    if len(new) != 1:
        raise RuntimeError(f"expected one new subscriber connection, found {sorted(new)}")
    return new.pop()


def _output_buffer(raw: redis.Redis, client_id: int) -> int:
    for client in raw.client_list(client_id=[client_id]):
        return int(client["omem"])
    raise RuntimeError(f"the subscriber connection {client_id} is gone (disconnected by Redis?)")


async def unread_backlog(
    raw: redis.Redis,
    client_id: int,
    publish: Callable[[], Awaitable[object]],
    settle: Callable[[int], Awaitable[None]],
) -> list[Backlog]:
    """Publish ``MEMORY_MESSAGES`` messages that nobody reads; measure after half and all.

    ``settle(published)`` returns once the process took in what it will of them (the
    subscriber's reader runs on this event loop meanwhile). Tracing starts after the
    subscription and its probe, so only the backlog (and the publishes' garbage) counts.
    """
    found: list[Backlog] = []
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        published = 0
        for checkpoint in (MEMORY_MESSAGES // 2, MEMORY_MESSAGES):
            while published < checkpoint:
                await publish()
                published += 1
            await settle(published)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - base
            found.append(Backlog(published, held, _output_buffer(raw, client_id)))
    finally:
        tracemalloc.stop()
    return found


async def wait_until(done: Callable[[], bool], label: str) -> None:
    """Poll ``done()`` (letting the event loop run) until true, within a deadline."""
    deadline = time.monotonic() + 10 * DEADLINE_SECONDS
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: the subscriber did not take the messages in time")
        await asyncio.sleep(0.01)


def mib(size: int) -> str:
    """``size`` bytes as MiB, two decimals."""
    return f"{size / 2**20:.2f} MiB"


def backlog_cells(points: Sequence[Backlog]) -> str:
    """``after 10,000: process +x MiB, server y MiB; after 20,000: ...``."""
    return "; ".join(
        f"after {p.published:,}: process +{mib(p.process)}, server output buffer {mib(p.server)}"
        for p in points
    )


# -- broadcaster -----------------------------------------------------------------------------------
class BroadcasterRows(NamedTuple):
    """broadcaster's latency and burst contenders."""

    latency: Contender
    burst: Contender


def _wake_listener(broadcast: Any) -> None:
    """Work around a race of broadcaster 0.3.1's Redis backend with redis-py 8.

    Its ``subscribe`` sets the backend's ``_ready`` event *before* awaiting redis-py's
    ``subscribe``, which records the channel only once SUBSCRIBE is sent. The listener task
    wakes in between, finds redis-py's ``listen()`` over at once (nothing subscribed yet),
    clears ``_ready`` and parks for good: no message ever reaches a subscriber. Setting the
    event again once subscribed is what its code intends; nothing timed changes.
    """
    ready = getattr(broadcast._backend, "_ready", None)
    if ready is not None and not ready.is_set():
        ready.set()


async def _subscribed(
    broadcast: Any, channel: str, payload: dict[str, Any], stack: AsyncExitStack
) -> tuple[Any, Callable[[], Awaitable[object]], Callable[[], Awaitable[Any]]]:
    """A broadcaster subscriber that Redis confirmed (a probe came back); (it, send, receive)."""
    subscriber = await stack.enter_async_context(broadcast.subscribe(channel=channel))
    _wake_listener(broadcast)

    async def send() -> object:
        return await broadcast.publish(
            channel=channel, message=json.dumps(payload, separators=(",", ":"))
        )

    async def receive(seconds: float = DEADLINE_SECONDS) -> Any:
        event = await asyncio.wait_for(subscriber.get(), seconds)
        return json.loads(event.message)

    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        await send()
        try:
            expect("broadcaster", await receive(0.05), payload)
            break
        except TimeoutError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"broadcaster: not subscribed to {channel}") from None
    with contextlib.suppress(TimeoutError):  # an earlier probe may still be on its way
        while True:
            await receive(0.05)
    return subscriber, send, receive


async def _broadcast(server: RedisServer, stack: AsyncExitStack) -> Any:
    broadcaster = importlib.import_module("broadcaster")
    broadcast = broadcaster.Broadcast(server.url)
    await broadcast.connect()
    stack.push_async_callback(_disconnect, broadcast)
    return broadcast


async def _disconnect(broadcast: Any) -> None:
    """``broadcast.disconnect()``, its backend's listener task ended first: closed under it,
    that task would die of a ConnectionError that nobody retrieves (a traceback at exit)."""
    listener = getattr(broadcast._backend, "_listener", None)
    if listener is not None and not listener.done():
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    await broadcast.disconnect()


async def broadcaster_rows(
    server: RedisServer, payload: dict[str, Any], stack: AsyncExitStack
) -> BroadcasterRows:
    """broadcaster's latency and burst contenders, each on a channel of its own (one
    ``Broadcast``, so one Redis connection to publish and one subscribed, per row)."""
    rows = []
    for channel in ("bench:chat:broadcaster-latency", "bench:chat:broadcaster-burst"):
        broadcast = await _broadcast(server, stack)
        _, send, receive = await _subscribed(broadcast, channel, payload, stack)
        await send()
        expect("broadcaster", await receive(), payload)
        rows.append((send, receive))
    (send, receive), (burst_send, burst_receive) = rows
    samples: list[float] = []
    return BroadcasterRows(
        Contender(
            "broadcaster `await b.publish(channel=..., message=json.dumps(m))` + "
            "`json.loads((await subscriber.get()).message)`",
            round_trips(send, receive, samples),
            "peer",
            samples,
        ),
        Contender(
            "broadcaster `await b.publish` each awaited, a task `await subscriber.get()`",
            bursts(burst_send, burst_receive),
            "peer",
        ),
    )


async def broadcaster_memory(
    server: RedisServer, raw: redis.Redis, payload: dict[str, Any]
) -> list[Backlog]:
    """broadcaster's backlog when its subscriber stops reading (its queues are unbounded)."""
    async with AsyncExitStack() as stack:
        broadcast = await _broadcast(server, stack)
        before = subscriber_ids(raw)
        channel = "bench:chat:broadcaster-memory"
        subscriber, send, _ = await _subscribed(broadcast, channel, payload, stack)
        client_id = new_subscriber(raw, before)
        queue = subscriber._queue  # its only handle on what waits

        async def settle(published: int) -> None:
            await wait_until(lambda: queue.qsize() >= published, "broadcaster")

        return await unread_backlog(raw, client_id, send, settle)
