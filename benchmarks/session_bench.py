"""Sessions: ``get_session`` and ``create_session`` against a raw GET and SET EX of the same JSON.

What is timed, sync and async alike, on the spec's session data (user id, email, role, login
time, IP address, user agent, last activity and device metadata: about 350 bytes of JSON),
each of ``USERS`` users having data of its own:

- session get: every contender cycles over ``POOL`` sessions stored before timing, each
  holding its user's data. Floor: redis-py ``json.loads(r.get(k))`` on string keys holding
  ``json.dumps(data)``. Ours: ``get_session(sid)``, which hashes the id (SHA-256: the id, a
  bearer secret, never reaches Redis) and sends one GET of the session's JSON envelope at
  ``session:<sha256 hex>`` (version, created, deadline, refresh family, index key, then the
  data), then ``json.loads``. Info: redis-py ``json.loads(r.get(k))["data"]`` on our session
  keys, which splits a gap to the floor into the envelope's bytes and our Python layer.
  Peer: starsessions' ``RedisStore.read`` and its ``JsonSerializer``, what its middleware
  does per request (async only: it is an ASGI store).
- session create: every call stores a session under a fresh id, drawn before timing (enough
  for the warm-up, every round and the probes, so id generation is not timed). Floor:
  redis-py ``r.set(k, json.dumps(data), ex=3600)``. Ours: ``create_session(sid, data)``, one
  EVALSHA of ``session.lua`` that stores the envelope with SET NX PX (refusing a taken id)
  and lists the session in its user's index
  ``session:user:<user_id>``. Info: ``new_session(data)``, which also draws the id, and
  redis-py ``r.evalsha`` of ``session.lua`` with the arguments ours sends (data encoded in the
  call, ids hashed beforehand), which splits a gap into the script's work in Redis and our
  Python layer. Peer: starsessions' ``JsonSerializer.serialize`` + ``RedisStore.write`` (a
  plain SET EX: it neither refuses a taken id, nor hashes it, nor indexes the user).

Keys never collide: the floors write under ``bench:session:raw:``, starsessions under
``bench:session:star:``, ours under ``session:`` (the hashes of ids of their own).

Every contender is probed before it is timed: reads must return their session's data, and a
create must store it (ours: the envelope, its TTL and the index entry, and a second create of the
same id is refused). During the run every create must succeed (a refusal is counted and fails
the run), and when it ends our managers must report no backend error, no short circuit and no
corrupt session: otherwise our rows timed degraded answers given without Redis. Memory is
measured once, not timed, and reported in a note.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import redis
import redis.asyncio

from arketic_cache import RedisConnection, RedisSessionManager, SyncRedisSessionManager
from arketic_cache._lua import SESSION
from arketic_cache.testing import RedisServer

from .cache_bench import Sizes
from .clients import open_clients
from .peers import skip_note
from .ratelimit_peers import cycling_over, footprint
from .timing import Benchmark, Contender, Target, async_batch, sync_batch

__all__ = ["session_benchmarks"]

GET_TARGET = Target(1.2, "ratio", "session get vs raw GET + json.loads")
CREATE_TARGET = Target(1.2, "ratio", "session create vs raw SET EX")
#: The spec's idle TTL, in seconds.
TTL = 3600
#: Sessions each get contender cycles over.
POOL = 512
#: Users whose data the sessions hold, in turn (so a user's index holds a few sessions).
USERS = 4096
#: Batches of each contender before timing: ``measure()`` warms each up with one.
WARMUP = 1
#: Fresh ids each create contender uses outside the timed batches (its probes).
PROBES = 2
#: Where our sessions live (the manager's default key prefix) and where the others write.
OURS = "session:"
RAW = "bench:session:raw:"
STAR = "bench:session:star:"

RowKind = Literal["get sync", "get async", "create sync", "create async"]
ROW_KINDS: tuple[RowKind, ...] = ("get sync", "get async", "create sync", "create async")
Rows = dict[RowKind, list[Contender]]


def session_data(user: int) -> dict[str, Any]:
    """The spec's session data for user number ``user`` (every user's encodes to one size)."""
    return {
        "user_id": f"user-{user:06d}",
        "email": f"user{user:06d}@example.com",
        "role": "member",
        "login_time": f"2025-01-15T09:{user % 60:02d}:00Z",
        "ip_address": f"203.0.113.{user % 200 + 10}",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "last_activity": f"2025-01-15T10:{user % 60:02d}:30Z",
        "metadata": {"device_type": "desktop", "browser": "Firefox", "os": "Linux"},
    }


def _handle(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _index(data: dict[str, Any]) -> str:
    return f"{OURS}user:{data['user_id']}"


@dataclass(slots=True)
class _Ledger:
    """Creates refused during the run (each must store a new session)."""

    refused: int = 0


def _refuse(label: str, what: str) -> NoReturn:
    raise RuntimeError(f"{label}: {what}; the benchmark would be meaningless")


async def _check_clean(
    managers: Sequence[SyncRedisSessionManager | RedisSessionManager], ledger: _Ledger
) -> None:
    """Fail loudly if a call fell back or a create was refused: then rows timed no real work."""
    if ledger.refused:
        raise RuntimeError(f"{ledger.refused} session creates were refused during the run")
    for manager in managers:
        info = manager.get_info()
        if info["errors"] or info["short_circuits"] or info["corrupt_sessions"]:
            raise RuntimeError(f"a session call was degraded during the run ({info}); rerun")


class _Fresh:
    """What the create contenders store, drawn before timing: one new session per call."""

    def __init__(self, count: int, datas: Sequence[dict[str, Any]]) -> None:
        self.count = count
        self.datas = datas

    def pairs(self) -> list[tuple[str, dict[str, Any]]]:
        """``count`` (fresh 43-character id, data) pairs, the data cycling over the users."""
        return [(secrets.token_urlsafe(32), self.datas[i % USERS]) for i in range(self.count)]


# -- floors and diagnostics --------------------------------------------------------------------
async def _raw_rows(
    raw: redis.Redis,
    araw: redis.asyncio.Redis,
    pool: Sequence[tuple[str, dict[str, Any]]],
    fresh: _Fresh,
    ledger: _Ledger,
) -> Rows:
    raw_keys = [RAW + session_id for session_id, _ in pool]
    for key, (_, data) in zip(raw_keys, pool, strict=True):
        if not raw.set(key, json.dumps(data), ex=TTL):
            _refuse("raw SET", "storing the pool failed")
    our_keys = [OURS + _handle(session_id) for session_id, _ in pool]

    def get(key: str) -> Any:
        return json.loads(raw.get(key))  # type: ignore[arg-type]

    async def aget(key: str) -> Any:
        return json.loads(await araw.get(key))  # type: ignore[arg-type]

    def get_ours(key: str) -> Any:
        return json.loads(raw.get(key))["data"]  # type: ignore[arg-type]

    async def aget_ours(key: str) -> Any:
        return json.loads(await araw.get(key))["data"]  # type: ignore[arg-type]

    for key, our_key, (_, data) in zip(raw_keys, our_keys, pool, strict=True):
        if get(key) != data or await aget(key) != data:
            _refuse("raw GET", f"{key} read back other data")
        if get_ours(our_key) != data or await aget_ours(our_key) != data:  # stored by _our_rows
            _refuse("raw GET of ours", f"{our_key} read back other data")

    script = raw.script_load(SESSION.text)

    def raw_pairs() -> Iterator[tuple[str, dict[str, Any]]]:
        return iter([(RAW + session_id, data) for session_id, data in fresh.pairs()])

    def script_args() -> Iterator[tuple[str, str, str, str, dict[str, Any]]]:
        args = []
        for session_id, data in fresh.pairs():
            handle, index = _handle(session_id), _index(data)
            args.append((OURS + handle, index, json.dumps(index), f'"{handle}"', data))
        return iter(args)

    sets, asets = raw_pairs(), raw_pairs()
    scripts, ascripts = script_args(), script_args()

    def set_ex() -> None:
        key, data = next(sets)
        if not raw.set(key, json.dumps(data), ex=TTL):
            ledger.refused += 1

    async def aset_ex() -> None:
        key, data = next(asets)
        if not await araw.set(key, json.dumps(data), ex=TTL):
            ledger.refused += 1

    # What ``create_session`` sends: op, Redis' clock, the prefix, data, index, ttl, no lifetime.
    def evalsha() -> None:
        key, index, index_json, member, data = next(scripts)
        text = json.dumps(data, separators=(",", ":"))
        args = ("create", "", OURS, text, index_json, TTL * 1000, 0, member)
        if raw.evalsha(script, 2, key, index, *args) != 1:
            ledger.refused += 1

    async def aevalsha() -> None:
        key, index, index_json, member, data = next(ascripts)
        text = json.dumps(data, separators=(",", ":"))
        args = ("create", "", OURS, text, index_json, TTL * 1000, 0, member)
        if await araw.evalsha(script, 2, key, index, *args) != 1:
            ledger.refused += 1

    for label, create in (("raw SET EX", set_ex), ("raw EVALSHA session.lua", evalsha)):
        create()
        if ledger.refused:
            _refuse(label, "the probe was refused")
    for label, acreate in (("async raw SET EX", aset_ex), ("async EVALSHA", aevalsha)):
        await acreate()
        if ledger.refused:
            _refuse(label, "the probe was refused")

    return {
        "get sync": [
            Contender(
                "redis-py `json.loads(r.get(k))` (raw GET floor)",
                sync_batch(cycling_over(get, raw_keys)),
                "floor",
            ),
            Contender(
                'redis-py `json.loads(r.get(k))["data"]` on our session keys',
                sync_batch(cycling_over(get_ours, our_keys)),
                "info",
            ),
        ],
        "get async": [
            Contender(
                "redis.asyncio `json.loads(await r.get(k))` (raw GET floor)",
                async_batch(cycling_over(aget, raw_keys)),
                "floor",
            ),
            Contender(
                'redis.asyncio `json.loads(await r.get(k))["data"]` on our session keys',
                async_batch(cycling_over(aget_ours, our_keys)),
                "info",
            ),
        ],
        "create sync": [
            Contender(
                "redis-py `r.set(k, json.dumps(data), ex=3600)` (raw SET EX floor)",
                sync_batch(set_ex),
                "floor",
            ),
            Contender(
                "redis-py `r.evalsha` of our session.lua create (same args)",
                sync_batch(evalsha),
                "info",
            ),
        ],
        "create async": [
            Contender(
                "redis.asyncio `await r.set(k, json.dumps(data), ex=3600)` (raw SET EX floor)",
                async_batch(aset_ex),
                "floor",
            ),
            Contender(
                "redis.asyncio `await r.evalsha` of our session.lua create (same args)",
                async_batch(aevalsha),
                "info",
            ),
        ],
    }


# -- ours ------------------------------------------------------------------------------------------
def _check_stored(raw: redis.Redis, label: str, session_id: str, data: dict[str, Any]) -> None:
    """The session of ``session_id`` is an envelope holding ``data``, with a TTL, indexed."""
    key, handle = OURS + _handle(session_id), _handle(session_id)
    stored = raw.get(key)
    if stored is None or json.loads(stored).get("data") != data:
        _refuse(label, f"{key} holds {stored!r}, not the session's data")
    if not 0 < raw.pttl(key) <= TTL * 1000:
        _refuse(label, f"{key} has no TTL of at most {TTL} s")
    if raw.zscore(_index(data), f'"{handle}"') is None:
        _refuse(label, f"the session is not in {_index(data)}")


async def _our_rows(
    conn: RedisConnection,
    raw: redis.Redis,
    pool: Sequence[tuple[str, dict[str, Any]]],
    fresh: _Fresh,
    ledger: _Ledger,
    stack: AsyncExitStack,
) -> Rows:
    manager = SyncRedisSessionManager(TTL, connection=conn)
    amanager = RedisSessionManager(TTL, connection=conn)
    stack.push_async_callback(_check_clean, (manager, amanager), ledger)
    for session_id, data in pool:
        if not manager.create_session(session_id, data):
            _refuse("create_session", "storing the pool was refused")
        _check_stored(raw, "create_session", session_id, data)
    by_id = dict(pool)
    pool_ids = [session_id for session_id, _ in pool]

    def get(session_id: str) -> Any:
        return manager.get_session(session_id)

    async def aget(session_id: str) -> Any:
        return await amanager.get_session(session_id)

    for session_id in pool_ids:
        if get(session_id) != by_id[session_id] or await aget(session_id) != by_id[session_id]:
            _refuse("get_session", "a pooled session read back other data")

    creates, acreates = iter(fresh.pairs()), iter(fresh.pairs())
    users, ausers = itertools.cycle(fresh.datas), itertools.cycle(fresh.datas)

    def create() -> None:
        session_id, data = next(creates)
        if not manager.create_session(session_id, data):
            ledger.refused += 1

    async def acreate() -> None:
        session_id, data = next(acreates)
        if not await amanager.create_session(session_id, data):
            ledger.refused += 1

    def new() -> None:
        if manager.new_session(next(users)) is None:
            ledger.refused += 1

    async def anew() -> None:
        if await amanager.new_session(next(ausers)) is None:
            ledger.refused += 1

    session_id, data = secrets.token_urlsafe(32), fresh.datas[0]
    if not manager.create_session(session_id, data):
        _refuse("create_session", "the probe was refused")
    _check_stored(raw, "create_session", session_id, data)
    if manager.create_session(session_id, data) or await amanager.create_session(session_id, data):
        _refuse("create_session", "a taken id was not refused")
    async_id = secrets.token_urlsafe(32)
    if not await amanager.create_session(async_id, data):
        _refuse("async create_session", "the probe was refused")
    _check_stored(raw, "async create_session", async_id, data)
    for label, made in (
        ("new_session", manager.new_session(data)),
        ("async new_session", await amanager.new_session(data)),
    ):
        if made is None:
            _refuse(label, "the probe was refused")
        _check_stored(raw, label, made, data)
    # The timed calls' own probes, one fresh id each.
    create()
    new()
    await acreate()
    await anew()
    if ledger.refused:
        _refuse("create_session / new_session", "a probe was refused")

    return {
        "get sync": [
            Contender(
                "`SyncRedisSessionManager.get_session(sid)`",
                sync_batch(cycling_over(get, pool_ids)),
            )
        ],
        "get async": [
            Contender(
                "`await RedisSessionManager.get_session(sid)`",
                async_batch(cycling_over(aget, pool_ids)),
            )
        ],
        "create sync": [
            Contender("`SyncRedisSessionManager.create_session(sid, data)`", sync_batch(create)),
            Contender(
                "`SyncRedisSessionManager.new_session(data)` (draws the id)",
                sync_batch(new),
                "info",
            ),
        ],
        "create async": [
            Contender(
                "`await RedisSessionManager.create_session(sid, data)`", async_batch(acreate)
            ),
            Contender(
                "`await RedisSessionManager.new_session(data)` (draws the id)",
                async_batch(anew),
                "info",
            ),
        ],
    }


# -- peer ------------------------------------------------------------------------------------------
async def _starsessions(
    server: RedisServer,
    pool: Sequence[tuple[str, dict[str, Any]]],
    fresh: _Fresh,
    ledger: _Ledger,
    stack: AsyncExitStack,
) -> Rows:
    """starsessions' Redis store (async only) on a redis.asyncio client of its own."""
    stores = importlib.import_module("starsessions.stores.redis")
    serializers = importlib.import_module("starsessions.serializers")
    client = redis.asyncio.Redis.from_url(server.url)
    stack.push_async_callback(client.aclose)
    store = stores.RedisStore(connection=client, prefix=STAR)
    serializer = serializers.JsonSerializer()
    for session_id, data in pool:
        await store.write(session_id, serializer.serialize(data), lifetime=TTL, ttl=TTL)

    async def read(session_id: str) -> Any:
        return serializer.deserialize(await store.read(session_id, lifetime=TTL))

    by_id = dict(pool)
    pool_ids = [session_id for session_id, _ in pool]
    for session_id in pool_ids:
        if await read(session_id) != by_id[session_id]:
            _refuse("starsessions read", "a pooled session read back other data")

    writes = iter(fresh.pairs())

    async def write() -> None:
        session_id, data = next(writes)
        if not await store.write(session_id, serializer.serialize(data), lifetime=TTL, ttl=TTL):
            ledger.refused += 1

    session_id, data = secrets.token_urlsafe(32), fresh.datas[0]
    await store.write(session_id, serializer.serialize(data), lifetime=TTL, ttl=TTL)
    if await read(session_id) != data or not 0 < await client.ttl(STAR + session_id) <= TTL:
        _refuse("starsessions write", "the probe did not store the session with its TTL")
    await write()
    if ledger.refused:
        _refuse("starsessions write", "the probe was refused")
    return {
        "get async": [
            Contender(
                "starsessions `deserialize(await RedisStore.read(sid))`",
                async_batch(_async_cycling(read, pool_ids)),
                "peer",
            )
        ],
        "create async": [
            Contender(
                "starsessions `await RedisStore.write(sid, serialize(data))`",
                async_batch(write),
                "peer",
            )
        ],
    }


def _async_cycling(
    fn: Callable[[str], Awaitable[Any]], names: Sequence[str]
) -> Callable[[], Awaitable[Any]]:
    return cycling_over(fn, names)


async def _peer_rows(
    server: RedisServer,
    pool: Sequence[tuple[str, dict[str, Any]]],
    fresh: _Fresh,
    ledger: _Ledger,
    stack: AsyncExitStack,
) -> tuple[Rows, list[str]]:
    try:
        return await _starsessions(server, pool, fresh, ledger, stack), []
    except Exception as exc:  # a missing or broken peer must not stop our own benchmarks
        return {}, [skip_note(exc, "starsessions", "starsessions", server)]


# -- memory ----------------------------------------------------------------------------------------
def _memory_note(raw: redis.Redis, session_id: str, data: dict[str, Any], peer: bool) -> str:
    ours, ours_kind = footprint(raw, [OURS + _handle(session_id)])
    floor, floor_kind = footprint(raw, [RAW + session_id])
    index, _ = footprint(raw, [_index(data)])
    members = raw.zcard(_index(data))
    cells = [
        f"ours {ours:,} B ({ours_kind}; its user's index adds ~{index / max(members, 1):.0f} B "
        f"per session, {members} sessions in it)",
        f"raw SET EX {floor:,} B ({floor_kind})",
    ]
    if peer:
        star, star_kind = footprint(raw, [STAR + session_id])
        cells.append(f"starsessions {star:,} B ({star_kind})")
    return (
        "session memory (not timed): `MEMORY USAGE key SAMPLES 0` of one stored session: "
        + "; ".join(cells)
    )


async def session_benchmarks(
    server: RedisServer, sizes: Sizes, rounds: int, stack: AsyncExitStack
) -> tuple[list[Benchmark], list[str]]:
    """Store and probe every session contender and peer; return the benchmarks and notes.

    ``rounds`` sizes the fresh ids, so that every timed create stores a new session.
    """
    conn, raw, araw = open_clients(server.url, stack)
    calls = sizes.get_calls
    datas = [session_data(user) for user in range(USERS)]
    pool = [(secrets.token_urlsafe(32), datas[i % USERS]) for i in range(POOL)]
    fresh = _Fresh((rounds + WARMUP) * calls + PROBES, datas)
    ledger = _Ledger()

    rows: Rows = {kind: [] for kind in ROW_KINDS}
    ours = await _our_rows(conn, raw, pool, fresh, ledger, stack)
    floors = await _raw_rows(raw, araw, pool, fresh, ledger)
    peers, notes = await _peer_rows(server, pool, fresh, ledger, stack)
    for part in (floors, ours, peers):
        for kind, contenders in part.items():
            rows[kind] += contenders

    size = len(json.dumps(datas[0]))
    notes.insert(
        0,
        f"sessions: the spec's session data, {size} B as `json.dumps` (ours stores it compact), "
        f"{USERS} users; gets cycle over {POOL} stored sessions, each create stores a new one "
        f"under a fresh 43-character id drawn before timing; ours use the default TTL of {TTL} s",
    )
    notes.append(_memory_note(raw, pool[0][0], pool[0][1], bool(peers)))

    specs: Sequence[tuple[RowKind, str, Target]] = (
        ("get sync", "session get (sync)", GET_TARGET),
        ("get async", "session get (async)", GET_TARGET),
        ("create sync", "session create (sync)", CREATE_TARGET),
        ("create async", "session create (async)", CREATE_TARGET),
    )
    benchmarks = [Benchmark(name, calls, rows[kind], target) for kind, name, target in specs]
    return benchmarks, notes
