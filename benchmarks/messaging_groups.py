"""Stream consumer groups: our typed ``StreamRepository`` against raw redis.asyncio.

Every entry is a distinct ``Chat`` whose JSON is 1024 bytes (``group_chats``), stored the way
ours stores a model: a field per model field, each a JSON value (about 1 KB an entry). Every
contender has a stream and a group of its own. A batch of ``n`` entries first sets its stream
up, untimed: the stream deleted, the group created at ``$`` (ours: ``create_group``), the ``n``
entries appended in one pipeline, a garbage collection; then the timed part reads them
``chunk`` at a time, each chunk decoded and acknowledged before the next read:

- floor: redis.asyncio (``decode_responses=True``, its default RESP2) ``await
  r.xreadgroup(g, c, {k: ">"}, count=chunk)``, ``json.loads`` of every field, then ``await
  r.xack(k, g, *ids)``;
- info: the same plus ``Chat.model_validate`` of every entry, what a typed model costs on top;
- ours: ``await repo.read_group(k, g, c, count=chunk)`` (a list of ``(id, Chat)``), then
  ``await repo.ack(k, g, *ids)``.

Every read must return a full chunk and every ack acknowledge all of it, so an empty or failed
read (ours answers ``[]`` when Redis fails) fails the run instead of timing nothing. After the
clock stops each batch is checked: the ids read are the ids appended, in order, every entry
equals the one appended, and nothing is left pending. The fill is checked once against ours'
own ``append`` (the same fields, byte for byte).
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any, NamedTuple

import redis.asyncio

from arketic_cache import TTL, RedisConnection, StreamKey, StreamRepository

from .messaging_peers import JSON_BYTES, Chat, one_kb_chat
from .timing import BatchRunner, Contender

__all__ = ["GROUP", "ChatStream", "GroupRows", "group_chats", "group_rows"]

GROUP = "bench-group"
CONSUMER = "bench-consumer"

#: What one timed step read (``(id, entry)`` pairs) and how many of them it acknowledged.
Step = Callable[[], Awaitable[tuple[list[tuple[str, Any]], int]]]


class ChatStream(StreamKey[Chat]):
    """A stream of chats (one per contender)."""

    template = "bench:stream:{name}"
    ttl = TTL.DEFAULT
    name: str


def group_chats(count: int) -> list[Chat]:
    """``count`` different chats, each of ``JSON_BYTES`` of JSON."""
    filler = one_kb_chat().text
    chats = []
    for index in range(count):
        user = f"user-{index:06d}"
        spare = JSON_BYTES - len(Chat(user=user, text="").model_dump_json())
        chat = Chat(user=user, text=f"{index:06d} {filler}"[:spare])
        if len(chat.model_dump_json()) != JSON_BYTES:
            raise RuntimeError("a consumer-group entry is not 1 KB of JSON")
        chats.append(chat)
    return chats


def _fields(chat: Chat) -> dict[str, str]:
    """The entry's fields as ours stores them (checked against ``append`` by ``_probe_fill``)."""
    return {
        name: json.dumps(value, separators=(",", ":"))
        for name, value in chat.model_dump(mode="json").items()
    }


class _Row(NamedTuple):
    label: str
    key: str  # the stream's name in Redis
    reset: Callable[[], Awaitable[None]]  # delete the stream, create it and its group
    step: Step
    expected: Sequence[object]  # entry i as this contender hands it over
    pending: Callable[[], Awaitable[int]]


def _batches(
    row: _Row, filler: redis.asyncio.Redis, chats: Sequence[Chat], chunk: int
) -> BatchRunner:
    """``n`` entries appended (untimed), then read and acknowledged ``chunk`` at a time."""
    fields = [_fields(chat) for chat in chats]

    async def run(n: int) -> int:
        if n % chunk or n > len(fields):
            raise ValueError(
                f"{row.label}: {n} entries is not whole chunks of {chunk}, or over {len(fields)}"
            )
        await row.reset()
        async with filler.pipeline(transaction=False) as pipe:
            for entry in fields[:n]:
                pipe.xadd(row.key, entry)  # type: ignore[arg-type]
            ids = [str(i) for i in await pipe.execute()]
        got: list[tuple[str, Any]] = []
        gc.collect()
        start = time.perf_counter_ns()
        for _ in range(n // chunk):
            entries, acked = await row.step()
            if len(entries) != chunk or acked != chunk:
                raise RuntimeError(
                    f"{row.label}: read {len(entries)} entries and acknowledged {acked}, "
                    f"not {chunk}; the run is invalid"
                )
            got += entries
        elapsed = time.perf_counter_ns() - start
        if [entry_id for entry_id, _ in got] != ids:
            raise RuntimeError(f"{row.label}: the ids read are not the ids appended")
        if any(value != want for (_, value), want in zip(got, row.expected, strict=False)):
            raise RuntimeError(f"{row.label}: an entry read back differs from the one appended")
        if (left := await row.pending()) != 0:
            raise RuntimeError(f"{row.label}: {left} entries still pending after the batch")
        return elapsed

    return run


def _raw_rows(client: redis.asyncio.Redis, chats: Sequence[Chat], chunk: int) -> list[_Row]:
    """The floor (``json.loads``) and the info row (then ``Chat.model_validate``)."""
    payloads = [chat.model_dump() for chat in chats]
    rows = []
    for name, typed in (("raw", False), ("raw-model", True)):
        key = ChatStream(name=name).render()

        async def reset(key: str = key) -> None:
            await client.delete(key)
            await client.xgroup_create(key, GROUP, id="$", mkstream=True)

        async def step(key: str = key, typed: bool = typed) -> tuple[list[tuple[str, Any]], int]:
            reply: Any = await client.xreadgroup(GROUP, CONSUMER, {key: ">"}, count=chunk)
            if not reply:
                return [], 0
            entries: list[tuple[str, Any]] = [
                (entry_id, {f: json.loads(v) for f, v in raw.items()})
                for entry_id, raw in reply[0][1]
            ]
            if typed:
                entries = [(entry_id, Chat.model_validate(v)) for entry_id, v in entries]
            acked = await client.xack(key, GROUP, *[entry_id for entry_id, _ in entries])
            return entries, int(acked)

        async def pending(key: str = key) -> int:
            return int((await client.xpending(key, GROUP))["pending"])

        expected: Sequence[object] = chats if typed else payloads
        rows.append(_Row(f"raw redis.asyncio ({name})", key, reset, step, expected, pending))
    return rows


def _our_row(
    repo: StreamRepository[ChatStream, Chat], client: redis.asyncio.Redis, chats: Sequence[Chat],
    chunk: int,
) -> _Row:  # fmt: skip
    key = ChatStream(name="ours")

    async def reset() -> None:
        await client.delete(key.render())
        if not await repo.create_group(key, GROUP):
            raise RuntimeError("StreamRepository.create_group: the group was not created")

    async def step() -> tuple[list[tuple[str, Any]], int]:
        entries = await repo.read_group(key, GROUP, CONSUMER, count=chunk)
        if not entries:
            return [], 0
        return entries, await repo.ack(key, GROUP, *[entry_id for entry_id, _ in entries])

    async def pending() -> int:
        return await repo.pending(key, GROUP)

    return _Row("StreamRepository", key.render(), reset, step, chats, pending)


async def _probe_fill(
    repo: StreamRepository[ChatStream, Chat], client: redis.asyncio.Redis, chat: Chat
) -> None:
    """Ours' ``append`` stores exactly the fields the pipelined fill writes, and reads back."""
    key = ChatStream(name="probe")
    await client.delete(key.render())
    if not await repo.create_group(key, GROUP):
        raise RuntimeError("StreamRepository.create_group: the probe group was not created")
    entry_id = await repo.append(key, chat)
    stored = await client.xrange(key.render())
    if entry_id is None or stored != [(entry_id, _fields(chat))]:
        raise RuntimeError(f"the benchmark's fill differs from StreamRepository.append: {stored}")
    if await repo.read_group(key, GROUP, CONSUMER, count=10) != [(entry_id, chat)]:
        raise RuntimeError("StreamRepository.read_group did not return the appended entry")
    if await repo.ack(key, GROUP, entry_id) != 1 or await repo.pending(key, GROUP) != 0:
        raise RuntimeError("StreamRepository.ack did not acknowledge the entry")
    await client.delete(key.render())


class GroupRows(NamedTuple):
    """The floor, the info row and ours, in that order."""

    floor: Contender
    typed_floor: Contender
    ours: Contender


async def group_rows(url: str, entries: int, chunk: int, stack: AsyncExitStack) -> GroupRows:
    """Probe the fill, then every contender (one verified batch of ``chunk`` entries each)."""
    if entries % chunk:
        raise ValueError(f"{entries} consumer-group entries is not a whole number of {chunk}")
    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    stack.push_async_callback(client.aclose)
    conn = RedisConnection(url=url)
    stack.push_async_callback(conn.aclose)
    repo: StreamRepository[ChatStream, Chat] = StreamRepository(ChatStream, conn, key_prefix="")
    stack.push_async_callback(_check_repository, repo)
    chats = group_chats(entries)
    await _probe_fill(repo, client, chats[0])

    raw, typed = _raw_rows(client, chats, chunk)
    ours = _our_row(repo, client, chats, chunk)
    runners = [_batches(row, client, chats, chunk) for row in (raw, typed, ours)]
    for runner in runners:
        await runner(chunk)
    floor, typed_floor, ours_runner = runners
    return GroupRows(
        Contender(
            f'redis.asyncio `xreadgroup(g, c, {{k: ">"}}, count={chunk})` + `json.loads` of '
            "each field + `xack(k, g, *ids)` (floor)",
            floor,
            "floor",
        ),
        Contender("the floor + `Chat.model_validate` of each entry", typed_floor, "info"),
        Contender(
            f"`await StreamRepository.read_group(k, g, c, count={chunk})` + "
            "`await repo.ack(k, g, *ids)`",
            ours_runner,
        ),
    )


async def _check_repository(repo: StreamRepository[ChatStream, Chat]) -> None:
    """Fail loudly if a call of ours fell back or an entry did not decode during the run."""
    stats = repo.stats()
    if stats.get("errors") or stats.get("decode_errors"):
        raise RuntimeError(f"a consumer-group benchmark failed calls or entries: {stats}")
