"""StreamRelay: a channel-announced stream followed from a last id yields every entry once, in
order, whether the announcement arrived, was lost, or Redis went away and came back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from arketic_cache import (
    TTL,
    BackendError,
    Channel,
    ConfigurationError,
    InvalidInputError,
    RedisConnection,
    StreamKey,
    StreamRelay,
    StreamRepository,
)
from arketic_cache.testing import RedisServer


class Note(BaseModel):
    n: int


class Other(BaseModel):
    n: int


class NotesKey(StreamKey[Note]):
    template = "notes:{room}:log"
    ttl = TTL.DEFAULT
    room: str


class NotesChannel(Channel[Note]):
    template = "notes:{room}"
    room: str


KEY = NotesKey(room="r1")


async def collect(follower: AsyncIterator[Any], count: int, within: float = 10.0) -> list[Any]:
    """The next ``count`` entries (heartbeats left out), or fail after ``within`` seconds."""
    found: list[Any] = []
    async with asyncio.timeout(within):
        while len(found) < count:
            item = await anext(follower)
            if item is not None:
                found.append(item)
    return found


async def post_until_taken(relay: StreamRelay[NotesKey, Note], note: Note) -> None:
    """Post as a client would after a 503: again, until Redis takes it."""
    async with asyncio.timeout(10):
        while True:
            try:
                await relay.post(KEY, note)
                return
            except BackendError:
                await asyncio.sleep(0.05)  # a client's retry delay, not a race fix


def texts(entries: list[tuple[str, Note]]) -> list[int]:
    return [note.n for _, note in entries]


def relay_on(conn: RedisConnection, **options: Any) -> StreamRelay[NotesKey, Note]:
    return StreamRelay(NotesKey, NotesChannel, conn, **options)


def test_a_new_follower_gets_the_history_then_live_posts(backend_url: str) -> None:
    async def scenario() -> tuple[list[int], list[int], bool]:
        conn = RedisConnection(url=backend_url)
        relay = relay_on(conn, history=2)
        ids = [await relay.post(KEY, Note(n=n)) for n in range(3)]
        follower = relay.follow(KEY)
        try:
            history = await collect(follower, 2)
            await relay.post(KEY, Note(n=3))
            live = await collect(follower, 1)
        finally:
            await follower.aclose()
            await conn.aclose()
        return texts(history), texts(live), [entry for entry, _ in history] == ids[1:]

    history, live, same_ids = asyncio.run(scenario())
    assert history == [1, 2]
    assert live == [3]
    assert same_ids


def test_a_follower_resumes_after_its_last_id_once_and_in_order(backend_url: str) -> None:
    async def scenario() -> list[int]:
        conn = RedisConnection(url=backend_url)
        relay = relay_on(conn)
        ids = [await relay.post(KEY, Note(n=n)) for n in range(5)]
        follower = relay.follow(KEY, ids[1])
        try:
            caught_up = await collect(follower, 3)
            for n in range(5, 205):  # a burst larger than one read
                await relay.post(KEY, Note(n=n))
            burst = await collect(follower, 200)
        finally:
            await follower.aclose()
            await conn.aclose()
        return texts(caught_up + burst)

    assert asyncio.run(scenario()) == list(range(2, 205))


def test_an_entry_never_announced_arrives_at_the_next_heartbeat(backend_url: str) -> None:
    async def scenario() -> tuple[list[int], int]:
        conn = RedisConnection(url=backend_url)
        relay = relay_on(conn, heartbeat=0.05)
        stream = StreamRepository(NotesKey, conn)
        first = await relay.post(KEY, Note(n=0))
        follower = relay.follow(KEY, first)
        beats = 0
        try:
            assert await anext(follower) is None  # idle: a heartbeat
            await stream.append(KEY, Note(n=1))  # appended without an announcement
            while (item := await anext(follower)) is None:
                beats += 1
        finally:
            await follower.aclose()
            await conn.aclose()
        return texts([item]), beats

    found, beats = asyncio.run(scenario())
    assert found == [1]
    assert beats <= 1


def test_the_channel_carries_the_typed_message_for_other_subscribers(backend_url: str) -> None:
    from arketic_cache import PubSub, Received

    async def scenario() -> Any:
        conn = RedisConnection(url=backend_url)
        relay = relay_on(conn)
        async with PubSub(conn).subscribe(relay.channel(KEY)) as updates:
            await relay.post(KEY, Note(n=7))
            item = await updates.receive(10)
        await conn.aclose()
        return item

    item = asyncio.run(scenario())
    assert isinstance(item, Received)
    assert item.message == Note(n=7)
    assert item.channel == NotesChannel(room="r1")


def test_recent_gives_the_last_entries_oldest_first(backend_url: str) -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        conn = RedisConnection(url=backend_url)
        relay = relay_on(conn, history=3)
        for n in range(5):
            await relay.post(KEY, Note(n=n))
        found = texts(await relay.recent(KEY)), texts(await relay.recent(KEY, 1))
        await conn.aclose()
        return found

    assert asyncio.run(scenario()) == ([2, 3, 4], [4])


def test_the_stream_stays_bounded(backend_url: str) -> None:
    async def scenario() -> int:
        conn = RedisConnection(url=backend_url)
        relay = relay_on(conn, max_length=10)
        for n in range(300):
            await relay.post(KEY, Note(n=n))
        length = await StreamRepository(NotesKey, conn).length(KEY)
        await conn.aclose()
        return length

    assert 10 <= asyncio.run(scenario()) < 300


class WrongFields(Channel[Note]):
    template = "notes:{chat}"
    chat: str


class WrongModel(Channel[Other]):
    template = "notes:{room}"
    room: str


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((NotesKey, WrongFields), "same fields"),
        ((NotesKey, WrongModel), "same message model"),
        ((NotesChannel, NotesChannel), "StreamKey schema"),
        ((NotesKey, NotesKey), "Channel schema"),
    ],
)
def test_mismatched_schemas_are_refused(arguments: tuple[Any, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        StreamRelay(*arguments, RedisConnection(url="memory://relay-config"))


@pytest.mark.parametrize(
    "options",
    [{"max_length": 0}, {"history": -1}, {"history": 1.5}, {"heartbeat": 0}, {"heartbeat": "1"}],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        StreamRelay(NotesKey, NotesChannel, RedisConnection(url="memory://relay-config"), **options)


@pytest.mark.parametrize("last_id", ["latest", "1-2-3", "", "$"])
def test_a_bad_last_id_is_refused_before_any_io(last_id: str) -> None:
    async def scenario() -> None:
        relay = StreamRelay(NotesKey, NotesChannel, RedisConnection(url="memory://relay-ids"))
        await anext(relay.follow(KEY, last_id))

    with pytest.raises(InvalidInputError, match="stream entry id"):
        asyncio.run(scenario())


@pytest.mark.redis
def test_a_follower_started_while_redis_is_down_delivers_after_it_returns(
    fresh_server: RedisServer,
) -> None:
    fresh_server.kill()

    async def scenario() -> list[int]:
        conn = RedisConnection(url=fresh_server.url, socket_timeout=0.3, connect_timeout=0.3)
        relay = relay_on(conn, heartbeat=0.1)
        follower = relay.follow(KEY)
        try:
            assert await anext(follower) is None  # Redis is down: it waits, heartbeating
            fresh_server.start(fresh_server.port)
            await post_until_taken(relay, Note(n=1))
            return texts(await collect(follower, 1, within=20))
        finally:
            await follower.aclose()
            await conn.aclose()

    assert asyncio.run(scenario()) == [1]


@pytest.mark.redis
def test_a_restart_mid_follow_loses_and_repeats_nothing(durable_server: RedisServer) -> None:
    async def scenario() -> list[int]:
        conn = RedisConnection(url=durable_server.url, socket_timeout=0.3, connect_timeout=0.3)
        relay = relay_on(conn, heartbeat=0.1)
        first = await relay.post(KEY, Note(n=0))
        follower = relay.follow(KEY, first)
        try:
            await relay.post(KEY, Note(n=1))
            seen = await collect(follower, 1)
            await relay.post(KEY, Note(n=2))  # acknowledged, so it survives the SIGKILL
            durable_server.kill()
            durable_server.start(durable_server.port)
            await post_until_taken(relay, Note(n=3))  # a stale connection fails once
            seen += await collect(follower, 2, within=20)
            await relay.post(KEY, Note(n=4))
            seen += await collect(follower, 1)
        finally:
            await follower.aclose()
            await conn.aclose()
        return texts(seen)

    assert asyncio.run(scenario()) == [1, 2, 3, 4]
