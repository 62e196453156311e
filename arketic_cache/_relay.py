"""Relays: a typed channel backed by a stream, so a follower that reconnects misses nothing.

``post`` appends a message to the stream (the source of truth, bounded by ``max_length``) and
then announces it on the channel; ``follow`` yields ``(entry_id, message)`` after a last id.
The channel is only a wake-up: on every message or ``Gap`` it receives, and on every idle
``heartbeat``, a follower reads the stream after the last id it yielded. So a lost announcement,
a reconnect of the subscriber or a follower that comes back with its last id (an SSE client's
``Last-Event-ID``) all end in the same place: every entry once, in order::

    chat = StreamRelay(ChatHistoryKey, ChatChannel)       # same fields, same message model
    await chat.post(ChatHistoryKey(chat_id="general"), ChatMessage(user_id=1, text="Hi"))
    async for item in chat.follow(ChatHistoryKey(chat_id="general"), last_id):
        if item is not None:                               # None: idle for a heartbeat
            entry_id, message = item

While Redis is down a follower waits (it yields heartbeats) and resumes from its last id.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from . import _connection
from ._channels import Channel
from ._exceptions import BackendError, ConfigurationError, SerializationError
from ._keys import StreamKey
from ._pubsub import PubSub
from ._repositories import StreamRepository
from ._repositories._stream import StreamSchema, entry_id

__all__ = ["StreamRelay"]

logger = logging.getLogger("arketic_cache")

K = TypeVar("K", bound=StreamKey[Any])
M = TypeVar("M", bound=BaseModel)

#: Entries read from the stream per round trip while a follower catches up.
READ_BATCH = 100


class StreamRelay(Generic[K, M]):
    """A stream schema and a channel schema of the same fields and message model, relayed."""

    __slots__ = ("_channel", "_pubsub", "_stream", "heartbeat", "history", "max_length")

    def __init__(
        self,
        stream: StreamSchema[K, M],
        channel: type[Channel[M]],
        connection: _connection.RedisConnection | None = None,
        *,
        max_length: int = 10_000,
        history: int = 50,
        heartbeat: float = 15.0,
        key_prefix: str | None = None,
    ) -> None:
        """Relay ``stream`` entries announced on ``channel`` (default connection: ``init_redis()``).

        ``max_length`` bounds the stream (approximately); a follower without a last id starts
        with the last ``history`` entries; an idle follower re-reads and yields None every
        ``heartbeat`` seconds.

        Raises:
            ConfigurationError: the schemas' fields or message models differ, or a bad option.
        """
        schema: Any = stream
        if not (isinstance(schema, type) and issubclass(schema, StreamKey)):
            raise ConfigurationError(f"stream must be a StreamKey schema, not {stream!r}")
        if not (isinstance(channel, type) and issubclass(channel, Channel)):
            raise ConfigurationError(f"channel must be a Channel schema, not {channel!r}")
        if set(schema.model_fields) != set(channel.model_fields):
            raise ConfigurationError(
                f"{schema.__name__} and {channel.__name__} must have the same fields"
            )
        if schema.value_type is not channel.message_type:
            raise ConfigurationError(
                f"{schema.__name__} and {channel.__name__} must carry the same message model"
            )
        for name, value in (("max_length", max_length), ("history", history)):
            if type(value) is not int or value < (1 if name == "max_length" else 0):
                raise ConfigurationError(f"{name} must be a non-negative int, not {value!r}")
        if not (isinstance(heartbeat, int | float) and 0 < heartbeat < 3600):
            raise ConfigurationError(f"heartbeat is seconds in (0, 3600), not {heartbeat!r}")
        self._stream: StreamRepository[K, M] = StreamRepository(
            stream, connection, key_prefix=key_prefix, strict=True
        )
        self._pubsub = PubSub(connection, key_prefix=key_prefix)
        self._channel = channel
        self.max_length = max_length
        self.history = history
        self.heartbeat = float(heartbeat)

    def channel(self, key: K) -> Channel[M]:
        """The channel that announces ``key``'s entries."""
        return self._channel.model_validate(key.model_dump())

    async def post(self, key: K, message: M) -> str:
        """Append ``message`` to the stream, then announce it; return its entry id.

        Raises:
            BackendError: Redis did not take the message (nothing was announced).
            SerializationError: ``message`` is not the model, or is too large.
        """
        entry = await self._stream.append(key, message, max_length=self.max_length)
        assert entry is not None  # strict: a failure raised
        await self._pubsub.publish(self.channel(key), message)  # lost: followers re-read
        return entry

    async def recent(self, key: K, count: int | None = None) -> list[tuple[str, M]]:
        """The last ``count`` (default ``history``) entries, oldest first.

        Raises:
            BackendError: Redis did not answer.
        """
        return await self._stream.latest(key, count or self.history or 1)

    async def follow(
        self, key: K, last_id: str | None = None
    ) -> AsyncGenerator[tuple[str, M] | None]:
        """Every entry after ``last_id`` (None: the last ``history`` entries, then new ones),
        once and in order; None after each idle ``heartbeat``. Runs until the caller stops.

        Raises:
            InvalidInputError: ``last_id`` is not a stream entry id.
        """
        last = None if last_id is None else entry_id(last_id)
        async with self._pubsub.subscribe(self.channel(key)) as wakeups:
            while True:
                if last is None:  # a fresh start (again, if Redis was down at the first)
                    start = await self._start(key)
                    if start is not None:
                        last = start[-1][0] if start else "0-0"
                        for item in start if self.history else ():
                            yield item
                else:
                    async for item in self._catch_up(key, last):
                        last = item[0]
                        yield item
                if await wakeups.receive(self.heartbeat) is None:
                    yield None
                while wakeups.pending:  # announcements that arrived together: one read
                    await wakeups.receive(0)

    async def _start(self, key: K) -> list[tuple[str, M]] | None:
        """The recent history a fresh follower starts with; None while Redis is down."""
        try:
            return await self._stream.latest(key, self.history or 1)
        except SerializationError:  # an entry that no longer fits: replay, skipping it
            return []
        except BackendError:
            return None

    async def _catch_up(self, key: K, last: str) -> AsyncIterator[tuple[str, M]]:
        while True:
            try:
                entries = await self._stream.read_after(key, last, count=READ_BATCH)
            except BackendError:
                return  # Redis is down: the next wake-up or heartbeat tries again
            for item in entries:
                last = item[0]
                yield item
            if len(entries) < READ_BATCH:
                return

    def __repr__(self) -> str:
        return f"StreamRelay({self._stream.schema.__name__}, {self._channel.__name__})"
