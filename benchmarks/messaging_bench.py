"""Messaging: typed pub/sub against raw redis-py pub/sub and ``broadcaster``, 1 KB messages.

Every message is a ``Chat(user, text)`` whose JSON is exactly 1024 bytes; ours sends it in its
versioned envelope (id and time added, about 1.1 KB), the floors and the peer send the bare
JSON. Every contender has a channel and a subscriber connection of its own, opened (and its
subscription confirmed by Redis) before timing; publisher and subscriber are separate
connections in this one process. What is timed:

- publish→receive latency (async and sync): one message at a time; a call publishes one
  message and waits until the subscriber holds it, decoded. Every call's time is kept, for
  the median and p99 of single messages beside the table's median of batch means. Floor:
  redis.asyncio ``await r.publish(ch, json.dumps(m))`` then ``json.loads`` of
  ``await p.get_message(timeout=...)`` (sync: redis-py's twins). Ours:
  ``await PubSub.publish(channel, chat)`` then ``await sub.receive(timeout=...)``, a
  ``Received`` holding the validated ``Chat`` (sync: ``SyncPubSub``, whose subscriber is a
  thread). Peer: broadcaster's ``await broadcast.publish(channel=..., message=json.dumps(m))``
  then ``json.loads`` of the next event's message (async only).
- throughput (async): a burst of ``pubsub_burst`` messages, each publish awaited before the
  next, while a consumer task receives them all; timed from the first publish to the last
  receive, and reported per message (the table) and as messages per second (the notes).
  Same contenders. Ours subscribes with the default ``max_queued=MAX_QUEUED``; a ``Gap`` (the
  consumer fell behind) fails the run, as would a lost message (every receive has a deadline).

Every contender is probed before it is timed: the probe message must come back equal. When the
run ends our pub/subs must report no failed publish, no undecodable message and no gap:
otherwise our rows timed answers given without Redis, or lost messages.

Memory is measured once, not timed (``messaging_memory``): a subscriber that stops reading
while ``MEMORY_MESSAGES`` messages are published.

Consumer-group throughput on a stream (``consumer_group_benchmarks``, see ``messaging_groups``):
batches of ``group_entries`` 1 KB entries appended untimed, then read ``group_chunk`` at a time
and acknowledged; reported per entry (the table) and as entries per second (the notes). Floor:
redis.asyncio ``xreadgroup`` + ``json.loads`` of each field + ``xack``; ours:
``StreamRepository.read_group`` + ``ack``. Every read must be a full chunk, and every batch
reads back what it appended and leaves nothing pending, or the run fails.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import statistics
import struct
import termios
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

import redis
import redis.asyncio

from arketic_cache import Gap, PubSub, Received, RedisConnection, SyncPubSub
from arketic_cache.testing import RedisServer

from .cache_bench import Sizes
from .clients import open_clients
from .messaging_groups import group_rows
from .messaging_peers import (
    DEADLINE_SECONDS,
    JSON_BYTES,
    MEMORY_MESSAGES,
    Backlog,
    Chat,
    ChatChannel,
    backlog_cells,
    broadcaster_memory,
    broadcaster_rows,
    bursts,
    expect,
    lost,
    mib,
    new_subscriber,
    one_kb_chat,
    round_trips,
    subscriber_ids,
    unread_backlog,
    wait_until,
)
from .peers import skip_note
from .timing import BatchRunner, Benchmark, Contender, Outcome, Target

__all__ = [
    "GROUP_TARGET",
    "LATENCY_TARGET",
    "THROUGHPUT_TARGET",
    "consumer_group_benchmarks",
    "messaging_benchmarks",
    "messaging_summary",
]

LATENCY_TARGET = Target(1.2, "ratio", "pub/sub publish→receive latency vs raw redis-py")
#: ≥ 0.8x the floor's messages per second is ≤ 1.25x its time per message.
THROUGHPUT_TARGET = Target(
    1.25, "ratio", "pub/sub burst, time per message vs raw redis-py (≥ 0.8x its msgs/s)"
)
#: ≥ 0.8x the floor's entries per second, likewise.
GROUP_TARGET = Target(
    1.25, "ratio", "stream consumer group, time per entry vs raw redis-py (≥ 0.8x its entries/s)"
)
LATENCY_ASYNC = "pub/sub publish→receive 1 KB (async)"
LATENCY_SYNC = "pub/sub publish→receive 1 KB (sync)"
THROUGHPUT = "pub/sub burst throughput 1 KB (async, per message)"
GROUP_THROUGHPUT = "stream consumer group read + ack 1 KB (async, per entry)"
#: Messages a subscriber may queue (the default), in every row and the memory probe.
MAX_QUEUED = 1000


def _sync_round_trips(
    send: Callable[[], object], receive: Callable[[], object], samples: list[float]
) -> BatchRunner:
    """As ``round_trips``, blocking (the event loop is idle meanwhile)."""

    async def run(n: int) -> int:
        total = 0
        for _ in range(n):
            start = time.perf_counter_ns()
            send()
            receive()
            elapsed = time.perf_counter_ns() - start
            samples.append(elapsed)
            total += elapsed
        return total

    return run


# -- the floors: raw redis-py pub/sub --------------------------------------------------------------
async def _raw_async(
    araw: redis.asyncio.Redis, channel: str, payload: dict[str, Any], stack: AsyncExitStack
) -> tuple[Callable[[], Awaitable[object]], Callable[[], Awaitable[object]]]:
    """(send, receive) on a redis.asyncio PubSub of its own, subscription confirmed."""
    pubsub = araw.pubsub()
    stack.push_async_callback(pubsub.aclose)
    await pubsub.subscribe(channel)
    confirmed = await pubsub.get_message(timeout=DEADLINE_SECONDS)
    if confirmed is None or confirmed["type"] != "subscribe":
        raise RuntimeError(f"raw redis.asyncio: not subscribed to {channel}: {confirmed!r}")

    async def send() -> object:
        return await araw.publish(channel, json.dumps(payload, separators=(",", ":")))

    async def receive() -> object:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=DEADLINE_SECONDS)
        if message is None:
            raise lost("raw redis.asyncio", message)
        return json.loads(message["data"])

    if await send() != 1:
        raise RuntimeError(f"raw redis.asyncio: nobody listens on {channel}")
    expect("raw redis.asyncio", await receive(), payload)
    return send, receive


def _raw_sync(
    raw: redis.Redis, channel: str, payload: dict[str, Any], stack: AsyncExitStack
) -> tuple[Callable[[], object], Callable[[], object]]:
    """(send, receive) on a redis-py PubSub of its own, subscription confirmed."""
    pubsub = raw.pubsub()
    stack.callback(pubsub.close)
    pubsub.subscribe(channel)
    confirmed = pubsub.get_message(timeout=DEADLINE_SECONDS)
    if confirmed is None or confirmed["type"] != "subscribe":
        raise RuntimeError(f"raw redis-py: not subscribed to {channel}: {confirmed!r}")

    def send() -> object:
        return raw.publish(channel, json.dumps(payload, separators=(",", ":")))

    def receive() -> object:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=DEADLINE_SECONDS)
        if message is None:
            raise lost("raw redis-py", message)
        return json.loads(message["data"])

    if send() != 1:
        raise RuntimeError(f"raw redis-py: nobody listens on {channel}")
    expect("raw redis-py", receive(), payload)
    return send, receive


# -- ours ------------------------------------------------------------------------------------------
async def _check_clean(pubsubs: Sequence[PubSub | SyncPubSub]) -> None:
    """Fail loudly if a publish failed, a message did not decode, or a gap was reported."""
    for pubsub in pubsubs:
        stats = pubsub.stats()
        if stats["errors"] or stats["decode_errors"] or stats["gaps"] or stats["dropped"]:
            raise RuntimeError(f"a pub/sub benchmark lost or failed messages: {stats}")


async def _ours_async(
    pubsub: PubSub, channel: ChatChannel, chat: Chat, stack: AsyncExitStack
) -> tuple[Callable[[], Awaitable[object]], Callable[[], Awaitable[object]]]:
    """(send, receive) on a subscription of its own (``async with``, confirmed by Redis)."""
    sub = await stack.enter_async_context(pubsub.subscribe(channel, max_queued=MAX_QUEUED))

    async def send() -> object:
        return await pubsub.publish(channel, chat)

    async def receive() -> object:
        item = await sub.receive(timeout=DEADLINE_SECONDS)
        if not isinstance(item, Received):
            raise lost("PubSub", item)
        return item.message

    if await send() != 1:
        raise RuntimeError(f"PubSub: nobody listens on {channel}")
    expect("PubSub", await receive(), chat)
    return send, receive


def _ours_sync(
    pubsub: SyncPubSub, channel: ChatChannel, chat: Chat, stack: AsyncExitStack
) -> tuple[Callable[[], object], Callable[[], object]]:
    """(send, receive) on a blocking subscription of its own (confirmed by Redis)."""
    sub = stack.enter_context(pubsub.subscribe(channel, max_queued=MAX_QUEUED))

    def send() -> object:
        return pubsub.publish(channel, chat)

    def receive() -> object:
        item = sub.receive(timeout=DEADLINE_SECONDS)
        if not isinstance(item, Received):
            raise lost("SyncPubSub", item)
        return item.message

    if send() != 1:
        raise RuntimeError(f"SyncPubSub: nobody listens on {channel}")
    expect("SyncPubSub", receive(), chat)
    return send, receive


# -- memory of a subscriber that stops reading -----------------------------------------------------
async def _our_memory(server: RedisServer, raw: redis.Redis, chat: Chat) -> tuple[str, str]:
    """Ours: (the backlog's cells, what the subscription then holds and reports)."""
    conn = RedisConnection(url=server.url)
    try:
        pubsub, channel = PubSub(conn), ChatChannel(chat_id="memory")
        before = subscriber_ids(raw)
        async with pubsub.subscribe(channel, max_queued=MAX_QUEUED) as sub:
            await pubsub.publish(channel, chat)
            probe = await sub.receive(timeout=DEADLINE_SECONDS)
            if not isinstance(probe, Received) or probe.message != chat:
                raise lost("PubSub memory probe", probe)
            client_id = new_subscriber(raw, before)

            async def publish() -> object:
                return await pubsub.publish(channel, chat)

            async def settle(published: int) -> None:
                def taken() -> bool:
                    return int(pubsub.stats()["dropped"]) + sub.pending >= published

                await wait_until(taken, "PubSub")

            points = await unread_backlog(raw, client_id, publish, settle)
            pending = sub.pending
            first = await sub.receive(timeout=DEADLINE_SECONDS)
    finally:
        await conn.aclose()
    dropped = MEMORY_MESSAGES - MAX_QUEUED
    if pending != MAX_QUEUED or not isinstance(first, Gap) or first.missed != dropped:
        raise RuntimeError(f"PubSub memory: {pending} queued, then {first!r}: not bounded")
    return backlog_cells(points), (
        f"bounded: {pending:,} messages queued (`sub.pending`), the oldest {dropped:,} dropped "
        f"and the next read a `Gap(missed={first.missed:,})`; about "
        f"{points[-1].process / MAX_QUEUED:,.0f} B held per queued message"
    )


def _kernel_queue(pubsub: Any) -> int | None:
    """Bytes waiting unread in the subscriber socket's receive buffer (Linux FIONREAD)."""
    try:
        sock = pubsub.connection._writer.transport.get_extra_info("socket")
        answer = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("i", answer)[0])
    except Exception:  # not Linux, or redis-py's privates moved: the note says unknown
        return None


async def _raw_memory(
    server: RedisServer, raw: redis.Redis, payload: dict[str, Any]
) -> tuple[list[Backlog], int | None]:
    """A redis.asyncio PubSub never read: (the backlog, bytes in its socket at the end)."""
    client = redis.asyncio.Redis.from_url(server.url)
    try:
        pubsub = client.pubsub()
        channel = "bench:chat:raw-memory"
        before = subscriber_ids(raw)
        await pubsub.subscribe(channel)
        confirmed = await pubsub.get_message(timeout=DEADLINE_SECONDS)
        if confirmed is None or confirmed["type"] != "subscribe":
            raise RuntimeError(f"raw redis.asyncio memory: not subscribed: {confirmed!r}")
        client_id = new_subscriber(raw, before)
        text = json.dumps(payload, separators=(",", ":"))

        async def publish() -> object:
            return await client.publish(channel, text)

        async def settle(published: int) -> None:
            await asyncio.sleep(0.2)  # the socket fills, then asyncio pauses reading it

        points = await unread_backlog(raw, client_id, publish, settle)
        unread = _kernel_queue(pubsub)
        await pubsub.aclose()
    finally:
        await client.aclose()
    return points, unread


def _pubsub_limit(raw: redis.Redis) -> str:
    """The server's client-output-buffer-limit for pub/sub clients, in words."""
    setting = str(raw.config_get("client-output-buffer-limit")["client-output-buffer-limit"])
    words = setting.split()
    at = words.index("pubsub")
    hard, soft, seconds = (int(w) for w in words[at + 1 : at + 4])
    return f"{mib(hard)} at once or {mib(soft)} for {seconds} s"


async def _memory(server: RedisServer, chat: Chat, stack: AsyncExitStack) -> list[str]:
    raw = redis.Redis.from_url(server.url)
    stack.callback(raw.close)
    payload = chat.model_dump()
    notes = [
        f"pub/sub memory (not timed): a subscriber that stops reading while {MEMORY_MESSAGES:,} "
        f"messages of {JSON_BYTES} B are published; process = what this process allocated and "
        "still holds (tracemalloc, traced from after the subscription), server output buffer = "
        "`CLIENT LIST` omem of the subscriber connection"
    ]
    ours, bounded = await _our_memory(server, raw, chat)
    notes.append(f"memory, ours `subscribe(ch, max_queued={MAX_QUEUED})`: {ours}; {bounded}")
    floor, unread = await _raw_memory(server, raw, payload)
    socket = "unknown" if unread is None else mib(unread)
    notes.append(
        f"memory, raw redis.asyncio PubSub never read: {backlog_cells(floor)}; {socket} more "
        "waits in its socket's receive buffer (kernel); the process stays bounded (asyncio "
        "stops reading a full buffer) but the backlog grows in Redis, until the server's "
        f"pubsub limit ({_pubsub_limit(raw)}) disconnects the subscriber, every message lost"
    )
    try:
        peer = await broadcaster_memory(server, raw, payload)
    except ImportError:
        pass  # broadcaster_rows notes that it is missing
    except Exception as exc:  # a peer's incompatibility must not stop our own benchmarks
        notes.append(skip_note(exc, "broadcaster", "broadcaster memory", server))
    else:
        grown = (peer[-1].process - peer[0].process) / (peer[-1].published - peer[0].published)
        notes.append(
            f"memory, broadcaster subscriber never read: {backlog_cells(peer)}; unbounded: "
            f"its asyncio.Queue holds every message, about {grown:,.0f} B more per unread one"
        )
    return notes


# -- consumer groups (streams) ---------------------------------------------------------------------
async def consumer_group_benchmarks(
    server: RedisServer, sizes: Sizes, stack: AsyncExitStack
) -> tuple[list[Benchmark], list[str]]:
    """Consumer-group throughput on a stream: ours (``StreamRepository``'s ``create_group``,
    ``read_group``, ``ack``) against raw redis.asyncio; every contender probed first."""
    entries, chunk = sizes.group_entries, sizes.group_chunk
    rows = await group_rows(server.url, entries, chunk, stack)
    note = (
        f"stream consumer group: batches of {entries:,} distinct `Chat` entries ({JSON_BYTES} B "
        "of JSON each, stored as ours stores a model: a field per model field, each a JSON "
        "value), appended untimed in one pipeline after the stream and its group are made "
        f"again; timed: reading them {chunk} at a time, each chunk decoded and acknowledged "
        "before the next read; every read must be a full chunk, and every batch must read back "
        "the ids and entries appended and leave none pending; a stream, group and consumer per "
        "contender"
    )
    benchmark = Benchmark(GROUP_THROUGHPUT, entries, list(rows), GROUP_TARGET)
    return [benchmark], [note]


# -- the group -------------------------------------------------------------------------------------
async def messaging_benchmarks(
    server: RedisServer, sizes: Sizes, stack: AsyncExitStack
) -> tuple[list[Benchmark], list[str]]:
    """Subscribe and probe every pub/sub contender and peer; return the benchmarks and notes.

    The memory notes are measured here, before anything is timed (each of those subscribers
    is closed again right after).
    """
    chat = one_kb_chat()
    payload = chat.model_dump()
    notes = await _memory(server, chat, stack)

    rows: dict[str, list[Contender]] = {LATENCY_ASYNC: [], LATENCY_SYNC: [], THROUGHPUT: []}
    # The latency rows: a connection (and so a subscriber connection) per contender.
    conn, raw, araw = open_clients(server.url, stack)
    sync_conn = RedisConnection(url=server.url)
    stack.push_async_callback(sync_conn.aclose)
    pubsub, sync_pubsub = PubSub(conn), SyncPubSub(sync_conn)
    burst_conn, _, burst_araw = open_clients(server.url, stack)
    burst_pubsub = PubSub(burst_conn)
    stack.push_async_callback(_check_clean, (pubsub, sync_pubsub, burst_pubsub))

    floor_samples: list[float] = []
    send, receive = await _raw_async(araw, "bench:chat:raw-latency", payload, stack)
    rows[LATENCY_ASYNC].append(
        Contender(
            "redis.asyncio `publish` + `json.loads(await p.get_message(timeout=...))` (floor)",
            round_trips(send, receive, floor_samples),
            "floor",
            floor_samples,
        )
    )
    ours_samples: list[float] = []
    send, receive = await _ours_async(pubsub, ChatChannel(chat_id="latency"), chat, stack)
    rows[LATENCY_ASYNC].append(
        Contender(
            "`await PubSub.publish(ch, chat)` + `await sub.receive(timeout=...)`",
            round_trips(send, receive, ours_samples),
            "checked",
            ours_samples,
        )
    )

    sync_floor_samples: list[float] = []
    ssend, sreceive = _raw_sync(raw, "bench:chat:raw-latency-sync", payload, stack)
    rows[LATENCY_SYNC].append(
        Contender(
            "redis-py `publish` + `json.loads(p.get_message(timeout=...))` (floor)",
            _sync_round_trips(ssend, sreceive, sync_floor_samples),
            "floor",
            sync_floor_samples,
        )
    )
    sync_samples: list[float] = []
    ssend, sreceive = _ours_sync(sync_pubsub, ChatChannel(chat_id="latency-sync"), chat, stack)
    rows[LATENCY_SYNC].append(
        Contender(
            "`SyncPubSub.publish(ch, chat)` + `sub.receive(timeout=...)`",
            _sync_round_trips(ssend, sreceive, sync_samples),
            "checked",
            sync_samples,
        )
    )

    send, receive = await _raw_async(burst_araw, "bench:chat:raw-burst", payload, stack)
    rows[THROUGHPUT].append(
        Contender(
            "redis.asyncio `publish` each awaited, a task `get_message` + `json.loads` (floor)",
            bursts(send, receive),
            "floor",
        )
    )
    send, receive = await _ours_async(burst_pubsub, ChatChannel(chat_id="burst"), chat, stack)
    rows[THROUGHPUT].append(
        Contender(
            "`await PubSub.publish` each awaited, a task `await sub.receive()`",
            bursts(send, receive),
        )
    )

    try:
        peers = await broadcaster_rows(server, payload, stack)
    except Exception as exc:  # a missing or broken peer must not stop our own benchmarks
        notes.append(skip_note(exc, "broadcaster", "broadcaster pub/sub", server))
    else:
        rows[LATENCY_ASYNC].append(peers.latency)
        rows[THROUGHPUT].append(peers.burst)

    benchmarks = [
        Benchmark(LATENCY_ASYNC, sizes.pubsub_calls, rows[LATENCY_ASYNC], LATENCY_TARGET),
        Benchmark(LATENCY_SYNC, sizes.pubsub_calls, rows[LATENCY_SYNC], LATENCY_TARGET),
        Benchmark(THROUGHPUT, sizes.pubsub_burst, rows[THROUGHPUT], THROUGHPUT_TARGET),
    ]
    group_benchmarks, group_notes = await consumer_group_benchmarks(server, sizes, stack)
    benchmarks += group_benchmarks
    notes.insert(
        0,
        f"pub/sub: a `Chat` of {JSON_BYTES} B of JSON (ours adds its envelope: id, time, "
        "version); every contender on a channel and subscriber connection of its own, "
        "publisher on another connection, one process; latency rows keep every message's time; "
        f"throughput bursts of {sizes.pubsub_burst} messages, each publish awaited, a consumer "
        "task receiving them all",
    )
    notes += group_notes
    return benchmarks, notes


def _percentile(ordered: Sequence[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def messaging_summary(outcomes: Sequence[Outcome]) -> list[str]:
    """After timing: single-message latency (median, p99) and throughput (msgs/s) notes."""
    notes: list[str] = []
    floors: dict[str, tuple[float, float]] = {}
    for o in outcomes:
        samples = o.contender.samples
        if o.benchmark.name not in (LATENCY_ASYNC, LATENCY_SYNC) or not samples:
            continue
        ordered = sorted(samples)
        median, p99 = statistics.median(ordered) / 1000, _percentile(ordered, 0.99) / 1000
        if o.contender.role == "floor":
            floors[o.benchmark.name] = (median, p99)
            versus = ""
        else:
            floor = floors.get(o.benchmark.name)
            versus = ""
            if floor is not None:
                ratios = median / floor[0], p99 / floor[1]
                versus = f" ({ratios[0]:.2f}x and {ratios[1]:.2f}x the floor's"
                if o.contender.role == "checked":
                    limit = LATENCY_TARGET.limit
                    verdict = "ok" if max(ratios) <= limit else "MISSED"
                    versus += f"; both ≤ {limit:.2f}x: {verdict}"
                versus += ")"
        notes.append(
            f"{o.benchmark.name} / {o.contender.name}: single messages median {median:.1f} µs, "
            f"p99 {p99:.1f} µs{versus} over {len(ordered)} messages"
        )
    for o in outcomes:
        unit = {THROUGHPUT: "messages", GROUP_THROUGHPUT: "entries"}.get(o.benchmark.name)
        if unit is None:
            continue
        rate = 1e6 / o.median_us
        ratio = o.ratio
        versus = "" if ratio is None else f" ({1 / ratio:.2f}x the floor's rate)"
        notes.append(f"{o.benchmark.name} / {o.contender.name}: {rate:,.0f} {unit}/s{versus}")
    return notes
