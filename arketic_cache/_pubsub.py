"""Typed pub/sub: ``PubSub`` (async) and ``SyncPubSub`` publish to and subscribe to channel
schemas (``_channels.py``).

``publish`` encodes a message once, in its versioned envelope, refuses one over the size limit
before any I/O, and answers how many subscribers received it (0 when Redis failed, unless
``strict``). ``subscribe`` returns a context-managed iterator of ``Received`` items (and
``Gap`` items where messages may have been lost, unless an ``on_gap`` callback takes them).

All subscriptions of one connection share one subscriber connection per process (sync) or per
event loop (async): a ``_Hub``, the listener of the subscription seam (``_subscribe.py``), which
reconnects with capped backoff, resubscribes, notices a frozen server within
``listener_ping_interval + listener_ping_timeout`` (2 s by default) and changes its channels in
place as subscriptions come and go. The hub only routes raw messages into each subscription's
bounded ``Mailbox`` (``_core/_mailbox.py``); the consumer decodes them, so a slow or failing
consumer never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar, cast, get_args, overload

from pydantic import BaseModel

from . import _connection
from ._channels import Channel, ChannelPattern, Gap, Received, Topic
from ._codec import MessageCodec
from ._core._mailbox import Mailbox, MessagingStats, Overflow, Queued
from ._core._repository import read_int
from ._core._subscribe import Message, Subscribed, Topics
from ._counters import counts_of
from ._exceptions import (
    BackendError,
    BackendUnavailable,
    InvalidInputError,
    SubscriptionRefused,
)
from ._shell import AsyncShell, Shell, SyncShell
from ._subscribe import SubscriberTask, SubscriberThread

__all__ = ["PubSub", "Subscription", "SyncPubSub", "SyncSubscription"]

logger = logging.getLogger("arketic_cache")

C = TypeVar("C", bound=Channel[Any])
M = TypeVar("M", bound=BaseModel)
N = TypeVar("N", bound=BaseModel)
T = TypeVar("T")

_GLOB = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis glob (for a key prefix inside a pattern)."""
    return text.translate(_GLOB)


class _Ids:
    """Message ids unique across processes: a random per-process token and a counter."""

    def __init__(self) -> None:
        self._pid = -1
        self._token = ""
        self._count = itertools.count()

    def next(self) -> str:
        if self._pid != os.getpid():  # a forked child must not repeat its parent's ids
            self._pid, self._token = os.getpid(), uuid.uuid4().hex[:16]
            self._count = itertools.count()
        return f"{self._token}-{next(self._count)}"


_ids = _Ids()
#: Message ids a subscription with overlapping topics remembers, to hand each over once.
_REMEMBERED = 4096
_codecs: dict[type[BaseModel], MessageCodec[Any]] = {}


def codec_for(model: type[N]) -> MessageCodec[N]:
    found = _codecs.get(model)
    if found is None:
        found = _codecs[model] = MessageCodec(model)
    return found


# -- one subscription's end of the hub -----------------------------------------------------------
class _End:
    """What the hub holds for one subscription: its names, its mailbox, whether it listens."""

    __slots__ = ("channels", "error", "mailbox", "patterns", "ready")

    def __init__(self, channels: frozenset[str], patterns: frozenset[str], mailbox: Mailbox):
        self.channels = channels
        self.patterns = patterns
        self.mailbox = mailbox
        self.ready = False
        self.error: str | None = None  # why the server refused it

    def deliver(self, message: Message) -> None:
        self.mailbox.put(message)

    def lost(self, reason: str) -> None:
        self.mailbox.lost(reason)

    def settled(self) -> None:
        """Subscribed, or refused: wake whoever waits in ``subscribe``."""

    def take(self) -> Queued | None:
        return self.mailbox.take()


class _SyncEnd(_End):
    __slots__ = ("cond",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.cond = threading.Condition()

    def deliver(self, message: Message) -> None:
        with self.cond:
            self.mailbox.put(message)
            self.cond.notify()

    def lost(self, reason: str) -> None:
        with self.cond:
            self.mailbox.lost(reason)
            self.cond.notify()

    def settled(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def take(self) -> Queued | None:
        with self.cond:
            return self.mailbox.take()


class _AsyncEnd(_End):
    """Woken by asyncio events: the hub runs on the subscription's own event loop."""

    __slots__ = ("arrived", "decided")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.arrived = asyncio.Event()
        self.decided = asyncio.Event()

    def deliver(self, message: Message) -> None:
        self.mailbox.put(message)
        self.arrived.set()

    def lost(self, reason: str) -> None:
        self.mailbox.lost(reason)
        self.arrived.set()

    def settled(self) -> None:
        self.decided.set()


# -- the hub: one subscriber connection shared by the subscriptions ------------------------------
class _Hub:
    """The listener of one subscriber connection: routes messages to the subscriptions' ends."""

    subscriber: SubscriberThread | SubscriberTask

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ends: set[_End] = set()
        self._channels: dict[str, set[_End]] = {}
        self._patterns: dict[str, set[_End]] = {}
        self._pending: set[_End] = set()
        self._asked: set[_End] = set()  # pending when the subscriber last read the topics
        # Generations of the topics: changed by add/remove, read by the subscriber, confirmed
        # by the server (so a removal can wait until Redis no longer sends to it).
        self._wanted = 0
        self._reading = 0
        self.confirmed = 0

    def _add(self, end: _End) -> None:
        with self.lock:
            self._wanted += 1
            self.ends.add(end)
            self._pending.add(end)
            for name in end.channels:
                self._channels.setdefault(name, set()).add(end)
            for name in end.patterns:
                self._patterns.setdefault(name, set()).add(end)

    def _drop(self, end: _End) -> int:
        """Forget ``end``; the generation of topics that no longer holds it."""
        with self.lock:
            self._forget(end)
            self._wanted += 1
            return self._wanted

    def _settled(self) -> None:
        """The server confirmed a generation of topics (the twins wake their waiters)."""

    def _forget(self, end: _End) -> None:
        self.ends.discard(end)
        self._pending.discard(end)
        for names, routes in ((end.channels, self._channels), (end.patterns, self._patterns)):
            for name in names:
                routed = routes.get(name)
                if routed is not None:
                    routed.discard(end)
                    if not routed:
                        del routes[name]

    # -- the Listener protocol (called by the subscriber) -----------------------------------------
    def topics(self) -> Topics:
        with self.lock:
            self._asked = set(self._pending)
            self._reading = self._wanted
            return Topics(frozenset(self._channels), frozenset(self._patterns))

    def on_subscribed(self, result: Subscribed, gapless: bool) -> None:
        topics = result.topics
        with self.lock:
            done = [
                end
                for end in self._pending
                if end.channels <= topics.channels and end.patterns <= topics.patterns
            ]
            self._pending.difference_update(done)
            ends = list(self.ends)
            self.confirmed = max(self.confirmed, self._reading)
        self._settled()
        for end in ends:
            end.mailbox.listening()
        for end in done:
            end.ready = True
            end.settled()

    def on_lost(self, reason: str) -> None:
        with self.lock:
            ends = list(self.ends)
        for end in ends:
            end.lost(f"connection lost: {reason}")

    def on_refused(self, reason: str) -> None:
        with self.lock:
            refused = self._asked & self._pending
            for end in refused:
                self._forget(end)
            others = list(self.ends)
        for end in refused:
            end.error = reason
            end.settled()
        if not others:
            self.subscriber.halt()  # nothing left to listen to: no retry
        elif self.subscriber.result is None:  # the connection itself was refused
            for end in others:
                end.lost(f"subscription refused: {reason}")

    def on_invalidate(self, keys: tuple[str, ...] | None) -> None:
        """Not tracking: nothing to do."""

    def on_message(self, message: Message) -> None:
        routes = self._patterns if message.pattern is not None else self._channels
        ends = routes.get(message.pattern if message.pattern is not None else message.channel)
        if ends:
            for end in tuple(ends):
                end.deliver(message)


class _SyncHub(_Hub):
    """The hub of one connection in one process, on a subscriber thread."""

    subscriber: SubscriberThread

    def __init__(self, conn: _connection.RedisConnection) -> None:
        super().__init__()
        settings = conn.settings
        ref = weakref.ref(conn)
        self.subscriber = SubscriberThread(
            lambda: _dereference(ref).subscriber_connection(),
            self,
            ping_interval=settings.listener_ping_interval,
            ping_timeout=settings.listener_ping_timeout,
            resp3=settings.protocol == 3,
        )
        self.subscriber.name = "arketic-cache-pubsub"
        self._life = threading.Lock()
        self._changes = threading.Condition()
        self.wait = settings.connect_timeout + 2 * settings.listener_ping_timeout

    def _settled(self) -> None:
        with self._changes:
            self._changes.notify_all()

    def add(self, end: _End) -> None:
        with self._life:
            self._add(end)
            if self.subscriber.running:
                self.subscriber.resubscribe()
            else:
                self.subscriber.start()

    def remove(self, end: _End) -> None:
        """Unsubscribe ``end``, waiting (boundedly) until Redis confirmed it."""
        with self._life:
            generation = self._drop(end)
            if not self.subscriber.running:
                return
            if self.subscriber.halting:
                self.subscriber.stop()
                return
            self.subscriber.resubscribe()
            with self._changes:
                self._changes.wait_for(lambda: self.confirmed >= generation, self.wait)
            if not self.ends:
                self.subscriber.stop()


class _AsyncHub(_Hub):
    """The hub of one connection on one event loop, in a subscriber task."""

    subscriber: SubscriberTask

    def __init__(self, conn: _connection.RedisConnection) -> None:
        super().__init__()
        settings = conn.settings
        ref = weakref.ref(conn)
        self.subscriber = SubscriberTask(
            lambda: _dereference(ref).async_subscriber_connection_placed(),
            self,
            ping_interval=settings.listener_ping_interval,
            ping_timeout=settings.listener_ping_timeout,
            resp3=settings.protocol == 3,
        )
        self._life = asyncio.Lock()
        self._changes = asyncio.Event()
        self.wait = settings.connect_timeout + 2 * settings.listener_ping_timeout

    def _settled(self) -> None:
        self._changes.set()

    async def add(self, end: _End) -> None:
        async with self._life:
            self._add(end)
            if self.subscriber.running:
                self.subscriber.resubscribe()
            else:
                self.subscriber.start()

    async def remove(self, end: _End) -> None:
        """Unsubscribe ``end``, waiting (boundedly) until Redis confirmed it."""
        async with self._life:
            generation = self._drop(end)
            if not self.subscriber.running:
                return
            if self.subscriber.halting:
                await self.subscriber.stop()
                return
            self.subscriber.resubscribe()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.wait):
                    while self.confirmed < generation:
                        self._changes.clear()
                        await self._changes.wait()
            if not self.ends:
                await self.subscriber.stop()


def _dereference(ref: weakref.ref[_connection.RedisConnection]) -> _connection.RedisConnection:
    conn = ref()
    if conn is None:
        raise ConnectionError("the connection was collected")
    return conn


_hubs_lock = threading.Lock()
_sync_hubs: weakref.WeakKeyDictionary[_connection.RedisConnection, tuple[int, _SyncHub]] = (
    weakref.WeakKeyDictionary()
)
_async_hubs: weakref.WeakKeyDictionary[
    _connection.RedisConnection, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncHub]
] = weakref.WeakKeyDictionary()


def sync_hub(conn: _connection.RedisConnection) -> _SyncHub:
    """The sync hub of ``conn`` in this process."""
    with _hubs_lock:
        found = _sync_hubs.get(conn)
        if found is None or found[0] != os.getpid():
            hub = _SyncHub(conn)
            _sync_hubs[conn] = (os.getpid(), hub)
            conn.on_close(hub.subscriber.stop)
            return hub
        return found[1]


def async_hub(conn: _connection.RedisConnection) -> _AsyncHub:
    """The async hub of ``conn`` on the running event loop."""
    loop = asyncio.get_running_loop()
    with _hubs_lock:
        per_loop = _async_hubs.setdefault(conn, weakref.WeakKeyDictionary())
        hub = per_loop.get(loop)
        if hub is None:
            hub = per_loop[loop] = _AsyncHub(conn)
            conn.on_close(lambda: _halt(loop, hub))
        return hub


def _halt(loop: asyncio.AbstractEventLoop, hub: _AsyncHub) -> None:
    """The connection closes: end the hub's task (from any thread)."""
    stop = hub.subscriber._stop
    if stop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(stop.set)


# -- what a subscription shares between its twins ------------------------------------------------
class _Decoder(Generic[T]):
    """Turn a subscription's raw items into ``Received`` items (or ``Gap`` ones)."""

    def __init__(
        self,
        shell: _PubSubBase,
        channels: dict[str, Channel[Any]],
        patterns: dict[str, type[Channel[Any]]],
        on_gap: Callable[[Gap], object] | None,
    ) -> None:
        self.stats = shell._stats
        self.prefix = shell._prefix
        self.channels = channels
        self.patterns = patterns
        self.on_gap = on_gap
        # A message on a channel that several of the topics match arrives once per match:
        # the ids seen last let each one through once.
        overlapping = bool(patterns) and len(channels) + len(patterns) > 1
        self.seen: dict[str, None] | None = {} if overlapping else None

    def _repeated(self, message_id: str) -> bool:
        seen = self.seen
        if seen is None:
            return False
        if message_id in seen:
            return True
        seen[message_id] = None
        if len(seen) > _REMEMBERED:
            del seen[next(iter(seen))]
        return False

    def decode(self, item: Queued) -> T | None:
        """The item to hand over, or None when it was skipped (or given to ``on_gap``)."""
        stats = self.stats
        if type(item) is Gap:
            stats.gaps += 1
            if self.on_gap is not None:
                self.on_gap(item)
                return None
            return cast(T, item)
        assert type(item) is Message
        try:
            if item.pattern is None:
                channel = self.channels[item.channel]
            else:
                schema = self.patterns[item.pattern]
                name = item.channel
                if not name.startswith(self.prefix):
                    raise InvalidInputError("outside the key prefix")
                channel = schema.parse(name[len(self.prefix) :])
            message, message_id, published_at = codec_for(channel.message_type).decode(item.data)
        except (ValueError, KeyError) as exc:
            stats.decode_errors += 1
            logger.warning(
                "skipping an undecodable message on a subscribed channel (%d bytes): %s",
                len(item.data),
                type(exc).__name__,
            )
            return None
        if self._repeated(message_id):
            return None
        stats.received += 1
        return cast(T, Received(channel, message, message_id, published_at))


def _topics(
    topics: tuple[Topic[Any, Any], ...], prefix: str
) -> tuple[dict[str, Channel[Any]], dict[str, type[Channel[Any]]]]:
    if not topics:
        raise InvalidInputError("subscribe to at least one channel or pattern")
    channels: dict[str, Channel[Any]] = {}
    patterns: dict[str, type[Channel[Any]]] = {}
    for topic in topics:
        if isinstance(topic, Channel):
            channels[prefix + topic.render()] = topic
        elif isinstance(topic, ChannelPattern):
            patterns[glob_escape(prefix) + topic.pattern] = topic.schema
        else:
            raise InvalidInputError(
                f"subscribe takes Channel schemas or Channel.every(...) patterns, "
                f"not {type(topic).__name__}"
            )
    return channels, patterns


_POLICIES = get_args(Overflow)


def _check_queue(max_queued: Any, on_overflow: Any, on_gap: Any) -> None:
    if type(max_queued) is not int or max_queued < 1:
        raise InvalidInputError(f"max_queued must be a positive int, not {max_queued!r}")
    if on_overflow not in _POLICIES:
        raise InvalidInputError(f"on_overflow is one of {_POLICIES}, not {on_overflow!r}")
    if on_gap is not None and not callable(on_gap):
        raise InvalidInputError(f"on_gap is a function or None, not {on_gap!r}")


class _SubscriptionBase(Generic[T]):
    """What both subscription twins share."""

    def __init__(
        self,
        conn: _connection.RedisConnection,
        end: _End,
        decoder: _Decoder[T],
        wait: float,
        strict: bool,
    ) -> None:
        self._conn = conn
        self._end = end
        self._decoder = decoder
        self._wait = wait
        self._strict = strict
        self._state: Literal["new", "open", "closed"] = "new"

    @property
    def channels(self) -> list[str]:
        """The channel names (key prefix applied) this subscription listens to."""
        return sorted(self._end.channels)

    @property
    def patterns(self) -> list[str]:
        """The PSUBSCRIBE patterns (key prefix applied) this subscription listens to."""
        return sorted(self._end.patterns)

    @property
    def pending(self) -> int:
        """Items waiting to be read (bounded by ``max_queued``)."""
        return len(self._end.mailbox)

    def _refusal(self) -> BackendError | None:
        """After the wait for the server's confirmation: the error to raise, if any (a
        timeout is noted as a gap, or an error when strict)."""
        end = self._end
        if end.error is not None:
            self._state = "closed"
            return SubscriptionRefused(
                f"Redis refused the subscription (check the ACL's channels): {end.error}"
            )
        if not end.ready:
            if self._strict:
                self._state = "closed"
                return BackendUnavailable(f"not subscribed within {self._wait:.1f} s")
            end.lost(f"not subscribed within {self._wait:.1f} s: Redis may be unreachable")
        return None

    def _next(self) -> tuple[bool, T | None]:
        """(whether anything was queued, the item or None if it was skipped)."""
        item = self._end.take()
        if item is None:
            return False, None
        return True, self._decoder.decode(item)


class SyncSubscription(_SubscriptionBase[T]):
    """A blocking subscription: use it in ``with``; iterate, or ``receive(timeout)``."""

    _end: _SyncEnd

    _hub: _SyncHub

    def __enter__(self) -> SyncSubscription[T]:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Subscribe and wait until Redis confirmed it (done by ``with`` and iteration).

        Raises:
            SubscriptionRefused: the ACL does not permit a channel or pattern.
        """
        if self._state != "new":
            return
        self._state = "open"
        end = self._end
        self._hub = sync_hub(self._conn)
        self._hub.add(end)
        deadline = time.monotonic() + self._wait
        with end.cond:
            while not end.ready and end.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                end.cond.wait(left)
        refused = self._refusal()
        if refused is not None:
            self._hub.remove(end)
            raise refused

    def close(self) -> None:
        """Unsubscribe (idempotent)."""
        if self._state == "open":
            self._state = "closed"
            self._hub.remove(self._end)
        self._state = "closed"

    def receive(self, timeout: float | None = None) -> T | None:
        """The next item, or None when none came within ``timeout`` seconds.

        Raises:
            SubscriptionOverflow: ``on_overflow="close"`` and the consumer fell behind.
        """
        self.open()
        deadline = None if timeout is None else time.monotonic() + timeout
        end = self._end
        while True:
            found, item = self._next()
            if item is not None:
                return item
            if found:
                continue  # skipped: look again
            with end.cond:
                if len(end.mailbox) or end.mailbox.closed:
                    continue
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                end.cond.wait(left)

    def __iter__(self) -> SyncSubscription[T]:
        self.open()
        return self

    def __next__(self) -> T:
        if self._state == "closed":
            raise StopIteration
        item = self.receive()
        assert item is not None
        return item

    def __repr__(self) -> str:
        return f"SyncSubscription({self.channels + self.patterns}, {self._state})"


class Subscription(_SubscriptionBase[T]):
    """An asyncio subscription: use it in ``async with``; iterate, or ``receive(timeout)``."""

    _end: _AsyncEnd

    _hub: _AsyncHub

    async def __aenter__(self) -> Subscription[T]:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Subscribe and wait until Redis confirmed it (done by ``async with`` and iteration).

        Raises:
            SubscriptionRefused: the ACL does not permit a channel or pattern.
        """
        if self._state != "new":
            return
        self._state = "open"
        self._hub = async_hub(self._conn)
        await self._hub.add(self._end)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._end.decided.wait(), self._wait)
        refused = self._refusal()
        if refused is not None:
            await self._hub.remove(self._end)
            raise refused

    async def close(self) -> None:
        """Unsubscribe (idempotent)."""
        if self._state == "open":
            self._state = "closed"
            await self._hub.remove(self._end)
        self._state = "closed"

    async def receive(self, timeout: float | None = None) -> T | None:  # noqa: ASYNC109 (the twins' API)
        """The next item, or None when none came within ``timeout`` seconds.

        Raises:
            SubscriptionOverflow: ``on_overflow="close"`` and the consumer fell behind.
        """
        await self.open()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        arrived = self._end.arrived
        while True:
            arrived.clear()
            found, item = self._next()
            if item is not None:
                return item
            if found:
                continue
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return None
            try:
                async with asyncio.timeout(left):  # no Task per wait, unlike wait_for on 3.11
                    await arrived.wait()
            except TimeoutError:
                return None

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        if self._state == "closed":
            raise StopAsyncIteration
        item = await self.receive()
        assert item is not None
        return item

    def __repr__(self) -> str:
        return f"Subscription({self.channels + self.patterns}, {self._state})"


# -- the shells ----------------------------------------------------------------------------------
class _PubSubBase(Shell):
    __slots__ = ()
    _family = "pubsub"
    _stats: MessagingStats
    _stats_type = MessagingStats

    def __init__(
        self,
        connection: _connection.RedisConnection | None = None,
        *,
        key_prefix: str | None = None,
        strict: bool = False,
    ) -> None:
        """Publish and subscribe on ``connection`` (default: the ``init_redis()`` one).

        ``key_prefix`` (default: the connection's) is put before every channel name.
        """
        super().__init__(connection, key_prefix=key_prefix, strict=strict)

    def _publish(self, channel: Channel[Any], message: BaseModel) -> Any:
        if not isinstance(channel, Channel):
            raise InvalidInputError(
                f"publish to a Channel schema instance, not a {type(channel).__name__}"
            )
        conn = self._bind()
        codec = codec_for(channel.message_type)
        data = codec.encode(message, _ids.next(), time.time(), conn.settings.max_value_bytes)
        return read_int("PUBLISH", self._prefix + channel.render(), data)

    def _published(self, receivers: int | None) -> int:
        if receivers is None:
            return 0
        self._stats.published += 1
        return receivers

    def _parts(
        self,
        topics: tuple[Topic[Any, Any], ...],
        max_queued: int,
        on_overflow: Overflow,
        on_gap: Callable[[Gap], object] | None,
        end_type: type[_End],
    ) -> tuple[_End, _Decoder[Any], float]:
        _check_queue(max_queued, on_overflow, on_gap)
        conn = self._bind()
        channels, patterns = _topics(topics, self._prefix)
        mailbox = Mailbox(max_queued, on_overflow, self._stats)
        end = end_type(frozenset(channels), frozenset(patterns), mailbox)
        decoder: _Decoder[Any] = _Decoder(self, channels, patterns, on_gap)
        settings = conn.settings
        wait = settings.connect_timeout + 2 * settings.listener_ping_timeout
        return end, decoder, wait

    def stats(self) -> dict[str, Any]:
        """Messages published, received, skipped as undecodable, gaps, drops; the connection's
        counters."""
        return self._report(**counts_of(self._stats))


class SyncPubSub(_PubSubBase, SyncShell):
    """Blocking twin of ``PubSub``."""

    __slots__ = ()

    def publish(self, channel: Channel[N], message: N) -> int:
        """Send ``message`` on ``channel``; return how many subscribers received it.

        Raises:
            SerializationError: ``message`` is not the channel's model, or is too large.
        """
        flow = self._publish(channel, message)
        return self._published(self._run(flow, None))

    @overload
    def subscribe(
        self,
        *topics: Topic[C, M],
        max_queued: int = ...,
        on_overflow: Overflow = ...,
        on_gap: None = None,
    ) -> SyncSubscription[Received[C, M] | Gap]: ...
    @overload
    def subscribe(
        self,
        *topics: Topic[C, M],
        max_queued: int = ...,
        on_overflow: Overflow = ...,
        on_gap: Callable[[Gap], object],
    ) -> SyncSubscription[Received[C, M]]: ...
    def subscribe(
        self,
        *topics: Topic[Any, Any],
        max_queued: int = 1000,
        on_overflow: Overflow = "drop_oldest",
        on_gap: Callable[[Gap], object] | None = None,
    ) -> SyncSubscription[Any]:
        """Listen to channels and ``Channel.every(...)`` patterns (use in ``with``).

        At most ``max_queued`` messages wait for the consumer; beyond that ``on_overflow``
        decides: ``"drop_oldest"`` (then a ``Gap`` counts the dropped) or ``"close"``.

        Raises:
            InvalidInputError: no topic, or a topic that is not a channel or pattern.
            SubscriptionRefused: (on entering) the ACL does not permit a channel.
        """
        end, decoder, wait = self._parts(topics, max_queued, on_overflow, on_gap, _SyncEnd)
        return SyncSubscription(self._bind(), end, decoder, wait, self.strict)


class PubSub(_PubSubBase, AsyncShell):
    """Typed pub/sub on channel schemas (async); ``SyncPubSub`` is the blocking twin."""

    __slots__ = ()

    async def publish(self, channel: Channel[N], message: N) -> int:
        """Send ``message`` on ``channel``; return how many subscribers received it.

        Raises:
            SerializationError: ``message`` is not the channel's model, or is too large.
        """
        flow = self._publish(channel, message)
        return self._published(await self._run(flow, None))

    @overload
    def subscribe(
        self,
        *topics: Topic[C, M],
        max_queued: int = ...,
        on_overflow: Overflow = ...,
        on_gap: None = None,
    ) -> Subscription[Received[C, M] | Gap]: ...
    @overload
    def subscribe(
        self,
        *topics: Topic[C, M],
        max_queued: int = ...,
        on_overflow: Overflow = ...,
        on_gap: Callable[[Gap], object],
    ) -> Subscription[Received[C, M]]: ...
    def subscribe(
        self,
        *topics: Topic[Any, Any],
        max_queued: int = 1000,
        on_overflow: Overflow = "drop_oldest",
        on_gap: Callable[[Gap], object] | None = None,
    ) -> Subscription[Any]:
        """Listen to channels and ``Channel.every(...)`` patterns (use in ``async with``).

        At most ``max_queued`` messages wait for the consumer; beyond that ``on_overflow``
        decides: ``"drop_oldest"`` (then a ``Gap`` counts the dropped) or ``"close"``.

        Raises:
            InvalidInputError: no topic, or a topic that is not a channel or pattern.
            SubscriptionRefused: (on entering) the ACL does not permit a channel.
        """
        end, decoder, wait = self._parts(topics, max_queued, on_overflow, on_gap, _AsyncEnd)
        return Subscription(self._bind(), end, decoder, wait, self.strict)
