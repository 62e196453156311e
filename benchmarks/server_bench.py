"""Server time per call: what each hot path costs Redis itself, by ``INFO commandstats``.

Not a latency benchmark: no client time, no round trip, only the microseconds Redis spends
executing the commands (``usec`` of ``INFO commandstats``: the command's own work, reading and
parsing the request and writing the reply excluded), next to a plain ``INCR`` and an empty
script (``return 1`` by EVALSHA) on the same server. Each operation is a blocking call of the
library's public API on the benchmark's own ``RedisConnection``; an admin redis-py client runs
``CONFIG RESETSTAT`` (the run's throwaway server), then ``CALLS`` calls run, then it reads
``INFO commandstats``: the row is the median over ``REPEATS`` such runs of the server time
per library call, summed over the commands the call sends.

Redis counts a command run by a script (or queued in MULTI/EXEC) in its own ``cmdstat_``
entry as well, and its time is already inside the EVALSHA's (or EXEC's): summing every entry
would count it twice. So a ``PROBE`` of calls first runs under ``MONITOR``, which tells the
commands sent from those run inside (client ``lua``, or between MULTI and EXEC); the sum takes
only the part of each entry that was sent, and the nested commands are listed in brackets,
each with its calls and µs per library call (so a script's own overhead is its time less
theirs). A command the probe's calls did not run is left out of the sum: a branch a script seldom
takes (listed) if some script ran it under MONITOR, background such as the coherence
listener's PING every second (said so) if never nested and on fewer than ``BACKGROUND`` calls
per library call.

Every call checks its answer (a hit, an admission, a denial, a stored session), and the
limiters and session managers must report no degraded call at the end. The bucket row steps
the limiter's clock seam (epoch µs as an argument, so its script reads no ``TIME``) a 64th
of the window per call to fill every sub-window, then a window per ``CALLS`` calls, so each
run rolls every bucket once. Memory (second table) is measured once: ``MEMORY USAGE key
SAMPLES 0`` of sessions and of their user's index after a thousand creates.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import statistics
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import redis

from arketic_cache import (
    Decision,
    Limit,
    RedisConnection,
    SyncRedisCache,
    SyncRedisRateLimiter,
    SyncRedisSessionManager,
    cached,
)
from arketic_cache.testing import RedisServer

from .cache_bench import one_kb_value
from .calls import IDS
from .ratelimit_peers import FILL_LEVELS, LIMIT, cycling_over, fill, footprint, key_names
from .session_bench import OURS, USERS, session_data

__all__ = ["server_notes"]

#: Library calls per measured run, and runs per operation (the median is reported).
CALLS = 2_000
REPEATS = 3
#: Calls before measuring (scripts loaded, connections open), then calls under MONITOR.
WARMUP = 100
PROBE = 64
#: A command sent fewer times than this per library call is not the call's (see ``_run``).
BACKGROUND = 0.01
#: Every call an operation makes, warm-up and probe included.
BUDGET = WARMUP + PROBE + REPEATS * CALLS
#: Keys the exact-log row cycles over: key ``i`` starts with ``i % 64`` requests, none fills.
LOG_KEYS = 512
WINDOW_US = 60_000_000
BUCKETS = 64
PREFIX = "bench:server:"
#: Stored sessions the get and extend rows cycle over.
POOL = 512
#: Users of the memory table, apart from the timed sessions' ``USERS``.
MEMORY_USERS = 1_000
MEMORY_USER = 10**6


@dataclass(frozen=True, slots=True)
class Operation:
    """One Redis-side operation: its row's name, the script it runs, one library call."""

    name: str
    call: Callable[[], object]
    script: str = ""


@dataclass(slots=True)
class Measured:
    """An operation's server µs per call over the runs, and what its last run sent."""

    operation: Operation
    per_call_us: list[float] = field(default_factory=list)
    sends: str = ""
    background: Counter[str] = field(default_factory=Counter)

    @property
    def median_us(self) -> float:
        """Median over the runs of the server time per library call."""
        return statistics.median(self.per_call_us)


def _refuse(label: str, what: str) -> NoReturn:
    raise RuntimeError(f"{label}: {what}; the benchmark would be meaningless")


# -- measuring -------------------------------------------------------------------------------------
def _names(words: Sequence[str]) -> list[str]:
    """The commandstats names a MONITOR line may count under: ``pubsub`` and ``pubsub|numsub``."""
    head = words[0].lower()
    return [head, f"{head}|{words[1].lower()}"] if len(words) > 1 else [head]


def _nesting(admin: redis.Redis, op: Operation) -> tuple[dict[str, float], list[str]]:
    """Under MONITOR, ``PROBE`` calls: each command's share of calls run inside a script or
    MULTI/EXEC, and the commands in the order first seen."""
    marker = f"bench-server-probe-{secrets.token_hex(8)}"
    sent: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    order: list[str] = []
    in_multi: set[tuple[str, str]] = set()
    with admin.monitor() as monitor:  # type: ignore[no-untyped-call]
        for _ in range(PROBE):
            op.call()
        admin.echo(marker)
        while True:
            seen = monitor.next_command()
            words = str(seen["command"]).split()
            if not words:
                continue
            if words[0].upper() == "ECHO" and marker in words:
                break
            client = (str(seen["client_address"]), str(seen["client_port"]))
            nested = seen["client_type"] == "lua" or client in in_multi
            head = words[0].upper()
            if head == "MULTI":
                in_multi.add(client)
            elif head in ("EXEC", "DISCARD"):
                in_multi.discard(client)
            for name in _names(words):
                (inside if nested else sent)[name] += 1
                if name not in order:
                    order.append(name)
    shares = {name: inside[name] / (inside[name] + sent[name]) for name in order}
    return shares, order


def _commandstats(admin: redis.Redis) -> dict[str, tuple[int, float]]:
    """(calls, usec) of every command since the reset, the admin's INFO and CONFIG left out."""
    stats: dict[str, Any] = admin.info("commandstats")
    found = {}
    for entry, values in stats.items():
        name = entry.removeprefix("cmdstat_")
        if name.split("|")[0] not in ("info", "config"):
            found[name] = (int(values["calls"]), float(values["usec"]))
    return found


def _times(count: float) -> str:
    """`` x2`` or `` x0.062`` after a command called other than once per library call."""
    shown = f"{count:.2g}"
    return "" if shown == "1" else f" x{shown}"


@dataclass(frozen=True, slots=True)
class _Probe:
    """What MONITOR showed of an operation's calls, and which commands any script ran."""

    shares: dict[str, float]
    order: list[str]
    scripted: frozenset[str]


def _run(admin: redis.Redis, op: Operation, probe: _Probe) -> tuple[float, str, Counter[str]]:
    """One measured run: server µs per library call, what was sent, the background left out.

    A command this probe did not see is a branch of the script (listed, its time already
    the script's) if some script ran it in a probe; a command never seen nested, on fewer
    than ``BACKGROUND`` calls, is background. Neither is summed.
    """
    admin.config_resetstat()  # the run's own throwaway server
    for _ in range(CALLS):
        op.call()
    stats = _commandstats(admin)
    rank = {name: index for index, name in enumerate(probe.order)}
    total, sent, nested, background = 0.0, [], [], Counter[str]()
    for name in sorted(stats, key=lambda name: (rank.get(name, len(rank)), name)):
        calls, usec = stats[name]
        share = probe.shares.get(name)
        if share is None and name in probe.scripted:
            share = 1.0  # a branch the probe's calls missed, taken by some script
        elif (share or 0.0) == 0 and calls < BACKGROUND * CALLS:
            background[name.upper()] += calls
            continue
        share = share or 0.0
        total += usec * (1 - share)
        if share < 1:
            sent.append((name, calls * (1 - share) / CALLS, usec * (1 - share) / CALLS))
        if share > 0:
            inside = calls * share / CALLS
            nested.append(f"{name.upper()}{_times(inside)} {usec * share / CALLS:.2f}")
    parts = [
        f"{name.upper()}{_times(count)}"
        + (f" {op.script}" if name in ("evalsha", "eval") and op.script else "")
        + (f" {usec:.2f}" if len(sent) > 1 else "")
        for name, count, usec in sent
    ]
    sends = " + ".join(parts) + (f" [{', '.join(nested)}]" if nested else "")
    return total / CALLS, sends, background


def _measure(admin: redis.Redis, operations: Sequence[Operation]) -> list[Measured]:
    """Warm up and probe every operation, then ``REPEATS`` measured runs of each, in turn."""
    seen = {}
    for op in operations:
        for _ in range(WARMUP):
            op.call()
        seen[op.name] = _nesting(admin, op)
    scripted = frozenset(
        name for shares, _ in seen.values() for name, share in shares.items() if share > 0
    )
    probes = {name: _Probe(shares, order, scripted) for name, (shares, order) in seen.items()}
    measured = [Measured(op) for op in operations]
    for _ in range(REPEATS):
        for row in measured:
            per_call, row.sends, background = _run(admin, row.operation, probes[row.operation.name])
            row.per_call_us.append(per_call)
            row.background += background
    return measured


# -- operations ------------------------------------------------------------------------------------
def _floors(raw: redis.Redis) -> list[Operation]:
    trivial = raw.script_load("return 1")
    incr_key, noop_key = f"{PREFIX}incr", f"{PREFIX}noop"

    def incr() -> object:
        # r.incr() would send INCRBY
        return raw.execute_command("INCR", incr_key)  # type: ignore[no-untyped-call]

    def noop() -> object:
        return raw.evalsha(trivial, 1, noop_key)

    if noop() != 1:
        _refuse("empty script", "it did not return 1")
    return [
        Operation("redis-py `INCR k` (floor)", incr),
        Operation("redis-py `EVALSHA` of `return 1` (empty script)", noop, "`return 1`"),
    ]


def _cache(conn: RedisConnection) -> list[Operation]:
    cache, value = SyncRedisCache(conn), one_kb_value()
    key, written = f"{PREFIX}value:1k", [f"{PREFIX}set:{i}" for i in IDS]
    if not cache.set(key, value, ttl=3600):
        _refuse("SyncRedisCache.set", "the value was not stored")

    def get() -> None:
        if cache.get(key) != value:
            _refuse("SyncRedisCache.get", "no hit")

    def put(name: str) -> None:
        if not cache.set(name, value, ttl=3600):
            _refuse("SyncRedisCache.set", "the value was not stored")

    computed = Counter[str]()

    @cached(ttl=3600, l1=False, connection=conn, namespace=f"{PREFIX}l2")
    def l2_only(user_id: int) -> dict[str, Any]:
        computed["l2"] += 1
        return value

    @cached(ttl=3600, connection=conn, namespace=f"{PREFIX}miss")
    def missed(user_id: int) -> dict[str, Any]:
        computed["miss"] += 1
        return value

    for user_id in IDS:
        l2_only(user_id)

    ids = itertools.cycle(IDS)

    def l2_hit() -> None:
        before = computed["l2"]
        if l2_only(next(ids)) != value or computed["l2"] != before:
            _refuse("@cached(l1=False)", "not an L2 hit")

    fresh = itertools.count()

    def miss() -> None:
        before = computed["miss"]
        if missed(next(fresh)) != value or computed["miss"] != before + 1:
            _refuse("@cached", "not a miss")

    return [
        Operation("`SyncRedisCache.get(k)` hit, 1 KB", get),
        Operation("`SyncRedisCache.set(k, v, ttl=3600)`, 1 KB", cycling_over(put, written)),
        Operation("`@cached(l1=False)` L2 hit, 1 KB", l2_hit),
        Operation("`@cached` miss, then store, 1 KB", miss, "store_and_announce.lua"),
    ]


class _Steps:
    """The limiter's clock seam: epoch µs moving ``step`` µs per call."""

    def __init__(self, now: int, step: int) -> None:
        self.now, self.step = now, step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def _rate(
    conn: RedisConnection, admin: redis.Redis
) -> tuple[list[Operation], list[SyncRedisRateLimiter]]:
    limiter = SyncRedisRateLimiter(connection=conn)
    seconds, micros = admin.time()
    steps = _Steps(seconds * 1_000_000 + micros - WINDOW_US, WINDOW_US // BUCKETS)
    stepped = SyncRedisRateLimiter(connection=conn, clock=steps)
    logs = key_names("server-log", LOG_KEYS)
    if BUDGET / LOG_KEYS + FILL_LEVELS > LIMIT:
        _refuse("exact log", "a key would fill up")
    for index, name in enumerate(logs):
        if fill(index) and not limiter.check(name, LIMIT, cost=fill(index)).allowed:
            _refuse("exact log", "priming was refused")
    bucket_key, full_key, month_key = (f"{PREFIX}{tag}" for tag in ("buckets", "full", "month"))
    buckets, month = Limit(100_000, WINDOW_US / 1_000_000, "buckets"), Limit.monthly(5_000_000)
    for _ in range(BUCKETS):
        warmed = stepped.check(bucket_key, buckets)
    steps.step = WINDOW_US // CALLS  # a window per run from here: every bucket rolls once
    if not warmed.allowed or min(int(admin.hlen(k)) for k in warmed.keys) < BUCKETS:
        _refuse("buckets", "warming did not fill every sub-window")
    if not limiter.check(full_key, LIMIT, cost=LIMIT).allowed:
        _refuse("denied", "filling the key was refused")

    def admitted(decide: Callable[[], Decision], label: str) -> Callable[[], None]:
        def call() -> None:
            decision = decide()
            if not decision.allowed or decision.degraded:
                _refuse(label, f"not admitted: {decision}")

        return call

    def denied() -> None:
        decision = limiter.check(full_key, LIMIT)
        if decision.allowed or decision.degraded:
            _refuse("denied decision", f"not denied: {decision}")

    log_keys = itertools.cycle(logs)
    operations = [
        Operation(
            "`check(k, 100)`, exact log, admitted",
            admitted(lambda: limiter.check(next(log_keys), LIMIT), "exact log"),
            "rate_log.lua",
        ),
        Operation(
            '`check(k, Limit(100000, 60, "buckets"))`, 64 live buckets',
            admitted(lambda: stepped.check(bucket_key, buckets), "buckets"),
            "rate_bucket.lua",
        ),
        Operation("`check(k, 100)`, denied (log full)", denied, "rate_log.lua"),
        Operation(
            "`check(k, Limit.monthly(5000000))`",
            admitted(lambda: limiter.check(month_key, month), "monthly"),
            "rate_limit.lua",
        ),
    ]
    return operations, [limiter, stepped]


def _handle(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _sessions(conn: RedisConnection) -> tuple[list[Operation], SyncRedisSessionManager]:
    manager = SyncRedisSessionManager(connection=conn)
    datas = [session_data(user) for user in range(USERS)]
    pool = [secrets.token_urlsafe(32) for _ in range(POOL)]
    for session_id, data in zip(pool, datas, strict=False):
        if not manager.create_session(session_id, data):
            _refuse("create_session", "storing the pool was refused")
    fresh: Iterator[str] = iter([secrets.token_urlsafe(32) for _ in range(BUDGET)])
    users, new_users = itertools.cycle(datas), itertools.cycle(datas)

    def create() -> None:
        if not manager.create_session(next(fresh), next(users)):
            _refuse("create_session", "refused")

    def new() -> None:
        if manager.new_session(next(new_users)) is None:
            _refuse("new_session", "refused")

    def get(session_id: str) -> None:
        if manager.get_session(session_id) is None:
            _refuse("get_session", "no session")

    def extend(session_id: str) -> None:
        if not manager.extend_session(session_id):
            _refuse("extend_session", "no session")

    operations = [
        Operation("`create_session(sid, data)`, with a user id", create, "session.lua"),
        Operation("`new_session(data)`, with a user id", new, "session.lua"),
        Operation("`get_session(sid)`", cycling_over(get, pool)),
        Operation("`extend_session(sid)`", cycling_over(extend, pool), "session.lua"),
    ]
    return operations, manager


def _check_clean(
    limiters: Sequence[SyncRedisRateLimiter], manager: SyncRedisSessionManager
) -> None:
    if any(limiter.degraded_decisions for limiter in limiters):
        _refuse("rate limiter", "a decision was degraded")
    info = manager.get_info()
    if info["errors"] or info["short_circuits"] or info["corrupt_sessions"]:
        _refuse("session manager", f"a call was degraded ({info})")


# -- tables ----------------------------------------------------------------------------------------
def _time_table(measured: Sequence[Measured]) -> list[str]:
    incr, noop = measured[0].median_us, measured[1].median_us
    rows = [
        f"server time per library call (`INFO commandstats` usec; median of {REPEATS} runs of "
        f"{CALLS:,} calls); in brackets, the commands run inside the script (or EXEC), each "
        "with its µs per library call, already counted in the script's; numbers after sent "
        "commands when a call sends several:",
        "",
        "| operation | what it sends | server µs per call | vs INCR | vs empty script |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    rows += [
        f"| {m.operation.name} | {m.sends} | {m.median_us:.2f} | {m.median_us / incr:.2f}x "
        f"| {m.median_us / noop:.2f}x |"
        for m in measured
    ]
    background = Counter[str]()
    for m in measured:
        background += m.background
    if background:
        left = ", ".join(f"{name} x{calls}" for name, calls in sorted(background.items()))
        rows.append(f"left out as background (all runs, never run by a script): {left}")
    return rows


def _memory_table(conn: RedisConnection, admin: redis.Redis) -> list[str]:
    """Sessions of ``MEMORY_USERS`` users one each, one user with 10 and one with 1000."""
    manager = SyncRedisSessionManager(connection=conn)

    def create(user: int) -> str:
        session_id = manager.new_session(session_data(user))
        if session_id is None:
            _refuse("memory", "a session was refused")
        return f"{OURS}{_handle(session_id)}"

    def index(user: int) -> str:
        return f"{OURS}user:{session_data(user)['user_id']}"

    singles = [MEMORY_USER + n for n in range(MEMORY_USERS)]
    session_keys = [create(user) for user in singles]
    ten, thousand = MEMORY_USER + MEMORY_USERS, MEMORY_USER + MEMORY_USERS + 1
    for _ in range(10):
        create(ten)
    for _ in range(MEMORY_USERS):
        create(thousand)
    for user, want in ((singles[0], 1), (ten, 10), (thousand, MEMORY_USERS)):
        if admin.zcard(index(user)) != want:
            _refuse("memory", f"the index of user {user} does not hold {want} sessions")
    session = statistics.median(footprint(admin, [key])[0] for key in session_keys)
    session_kind = footprint(admin, session_keys[:1])[1]
    one = statistics.median(footprint(admin, [index(user)])[0] for user in singles)
    rows = [
        "session memory (`MEMORY USAGE key SAMPLES 0`, key name and Redis' per-key overhead "
        f"included; the spec's session data; medians over {MEMORY_USERS:,} users with one "
        "session each):",
        "",
        "| key | sessions | bytes | per session | added per entry | encoding |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        f"| session `{OURS}<sha256>` | 1 | {session:,.0f} | {session:,.0f} | - | {session_kind} |",
        f"| user index `{OURS}user:<id>` | 1 | {one:,.0f} | {one:,.0f} | - "
        f"| {footprint(admin, [index(singles[0])])[1]} |",
    ]
    for user, count in ((ten, 10), (thousand, MEMORY_USERS)):
        used, kind = footprint(admin, [index(user)])
        rows.append(
            f"| user index `{OURS}user:<id>` | {count:,} | {used:,} | {used / count:,.0f} "
            f"| {(used - one) / (count - 1):,.0f} | {kind} |"
        )
    return rows


def server_notes(server: RedisServer) -> list[str]:
    """Both tables, as note lines: server time per call, then session memory."""
    admin = redis.Redis.from_url(server.url)
    raw = redis.Redis.from_url(server.url)
    conn = RedisConnection(url=server.url)
    try:
        rate, limiters = _rate(conn, admin)
        sessions, manager = _sessions(conn)
        measured = _measure(admin, [*_floors(raw), *_cache(conn), *rate, *sessions])
        _check_clean(limiters, manager)
        return [*_time_table(measured), "", *_memory_table(conn, admin)]
    finally:
        conn.close_sync()
        raw.close()
        admin.close()
