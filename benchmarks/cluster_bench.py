"""Redis Cluster: a cache hit, an ``@cached`` L2 hit and a rate-limit decision on a cluster.

The group starts its own cluster (``ClusterTopology``: 3 primaries and 3 replicas on loopback,
one password), connects with a ``redis+cluster://`` URL naming the primaries, and stops the
cluster when the run ends. The floors are redis-py's own cluster clients
(``redis.cluster.RedisCluster``, ``redis.asyncio.cluster.RedisCluster``: RESP2, bytes, no
retries) on the same nodes. Rows, sync and async alike:

- get 1 KB: ``SyncRedisCache.get`` / ``RedisCache.get`` of one key against ``json.loads`` of
  a cluster client's ``GET`` of it;
- ``@cached`` L2 hit 1 KB: ``@cached(l1=False)`` against the same floor, both cycling over
  ``IDS`` (keys on every primary);
- rate-limit decision: ``check(key, 100)`` against a cluster client's raw ``INCR``, key sets
  and fill levels as in ``ratelimit_bench`` (every timed decision admits); an info row sends
  our ``rate_log.lua`` with the same arguments through the cluster client.

Every contender is checked to return the expected value before it is timed, and the run fails
if our connection counted an error or a decision was degraded while it was timed.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from arketic_cache import (
    RedisCache,
    RedisConnection,
    RedisRateLimiter,
    SyncRedisCache,
    SyncRedisRateLimiter,
    cached,
)
from arketic_cache._lua import RATE_LOG
from arketic_cache.testing import ClusterTopology, RedisServer

from .cache_bench import HIT_TARGET, Sizes, one_kb_value
from .calls import IDS, Source, cycling, expect, primed_async, primed_sync
from .ratelimit_bench import WINDOW_US, keys_per_contender
from .ratelimit_peers import FILL_LEVELS, LIMIT, cycling_over, fill, key_names
from .timing import Benchmark, Contender, Target, async_batch, sync_batch

__all__ = ["cluster_benchmarks"]

L2_TARGET = Target(1.10, "ratio", "@cached L2 hit on a cluster vs raw GET + json.loads")
#: As on one server: 1.25x sync, 1.4x async (the asyncio floor's own round trip is leaner).
DECISION_TARGET = Target(1.25, "ratio", "rate-limit decision (sync) on a cluster vs raw INCR")
ASYNC_DECISION_TARGET = Target(1.4, "ratio", "rate-limit decision (async) on a cluster vs raw INCR")
TTL_SECONDS = 3600
KEY = "bench:cluster:value:1k"
RAW_PREFIX = "bench:cluster:raw:"


def _cluster_url(topology: ClusterTopology) -> str:
    """The ``redis+cluster://`` URL of ``topology``, its primaries as the seeds."""
    seeds = ",".join(f"{host}:{port}" for host, port in topology.seeds[: topology.primaries])
    return f"redis+cluster://:{topology.password}@{seeds}"


def _floor_clients(
    topology: ClusterTopology, stack: AsyncExitStack
) -> tuple[redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster]:
    """redis-py's cluster clients of ``topology`` (no retries); ``stack`` closes them."""
    seeds = topology.seeds[: topology.primaries]
    raw = redis.cluster.RedisCluster(
        startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in seeds],  # type: ignore[no-untyped-call]
        password=topology.password,
        retry=Retry(NoBackoff(), 0),
    )
    stack.callback(raw.close)
    araw = redis.asyncio.cluster.RedisCluster(
        startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port) for host, port in seeds],
        password=topology.password,
        retry=AsyncRetry(NoBackoff(), 0),
    )
    stack.push_async_callback(araw.aclose)
    return raw, araw


async def _check_clean(
    conn: RedisConnection,
    errors: int,
    limiters: Sequence[SyncRedisRateLimiter | RedisRateLimiter],
) -> None:
    """Fail loudly if a call failed or fell back: then our rows timed something else."""
    if conn.state.errors != errors:
        raise RuntimeError("a call on the cluster failed during the run; rerun the benchmark")
    if any(limiter.degraded_decisions for limiter in limiters):
        raise RuntimeError("a rate-limit decision was degraded during the run; rerun the benchmark")


async def _get_rows(
    conn: RedisConnection,
    raw: redis.cluster.RedisCluster,
    araw: redis.asyncio.cluster.RedisCluster,
    value: dict[str, Any],
    sizes: Sizes,
) -> list[Benchmark]:
    sync_cache, async_cache = SyncRedisCache(conn), RedisCache(conn)
    if not sync_cache.set(KEY, value, ttl=TTL_SECONDS):
        raise RuntimeError("could not store the benchmark data")

    def raw_get() -> Any:
        return json.loads(raw.get(KEY))  # type: ignore[arg-type]

    async def araw_get() -> Any:
        return json.loads(await araw.get(KEY))  # type: ignore[arg-type]

    def cache_get() -> Any:
        return sync_cache.get(KEY)

    async def acache_get() -> Any:
        return await async_cache.get(KEY)

    for label, got in [
        ("cluster raw get", raw_get()),
        ("async cluster raw get", await araw_get()),
        ("SyncRedisCache.get on a cluster", cache_get()),
        ("RedisCache.get on a cluster", await acache_get()),
    ]:
        expect(label, got, value)
    return [
        Benchmark(
            "cluster: get 1 KB (sync)",
            sizes.get_calls,
            [
                Contender(
                    "redis-py `json.loads(RedisCluster.get(k))`", sync_batch(raw_get), "floor"
                ),
                Contender("SyncRedisCache.get", sync_batch(cache_get)),
            ],
            HIT_TARGET,
        ),
        Benchmark(
            "cluster: get 1 KB (async)",
            sizes.get_calls,
            [
                Contender(
                    "redis.asyncio `json.loads(await RedisCluster.get(k))`",
                    async_batch(araw_get),
                    "floor",
                ),
                Contender("RedisCache.get", async_batch(acache_get)),
            ],
            HIT_TARGET,
        ),
    ]


async def _cached_rows(
    conn: RedisConnection,
    raw: redis.cluster.RedisCluster,
    araw: redis.asyncio.cluster.RedisCluster,
    value: dict[str, Any],
    sizes: Sizes,
) -> list[Benchmark]:
    encoded = json.dumps(value, separators=(",", ":"))
    raw_keys = [f"{RAW_PREFIX}{user_id}" for user_id in IDS]
    for key in raw_keys:  # one slot each: no MSET across the primaries
        raw.set(key, encoded)

    def raw_get(user_id: int) -> Any:
        return json.loads(raw.get(raw_keys[user_id]))  # type: ignore[arg-type]

    async def araw_get(user_id: int) -> Any:
        return json.loads(await araw.get(raw_keys[user_id]))  # type: ignore[arg-type]

    for user_id in IDS:
        expect("cluster raw get", raw_get(user_id), value)
        expect("async cluster raw get", await araw_get(user_id), value)

    ours = Source(value)

    @cached(ttl=TTL_SECONDS, connection=conn, namespace="bench-cluster-l2", l1=False)
    def profile(user_id: int) -> dict[str, Any]:
        return ours(user_id)

    @cached(ttl=TTL_SECONDS, connection=conn, namespace="bench-cluster-l2-async", l1=False)
    async def aprofile(user_id: int) -> dict[str, Any]:
        return ours(user_id)

    before = [profile.cache_info().l2_hits, aprofile.cache_info().l2_hits]
    l2_hit = primed_sync("@cached(l1=False) sync on a cluster", profile, ours)
    al2_hit = await primed_async("@cached(l1=False) async on a cluster", aprofile, ours)
    for label, fn, hits in (("sync", profile, before[0]), ("async", aprofile, before[1])):
        if fn.cache_info().l2_hits - hits != len(IDS):
            raise RuntimeError(f"@cached {label} was not served from L2: {fn.cache_info()}")
    return [
        Benchmark(
            "cluster: @cached L2 hit 1 KB (sync)",
            sizes.get_calls,
            [
                Contender(
                    "redis-py `json.loads(RedisCluster.get(k))`",
                    sync_batch(cycling(raw_get)),
                    "floor",
                ),
                Contender("`@cached(l1=False)` sync, L2 hit", sync_batch(l2_hit)),
            ],
            L2_TARGET,
        ),
        Benchmark(
            "cluster: @cached L2 hit 1 KB (async)",
            sizes.get_calls,
            [
                Contender(
                    "redis.asyncio `json.loads(await RedisCluster.get(k))`",
                    async_batch(cycling(araw_get)),
                    "floor",
                ),
                Contender("`@cached(l1=False)` async, L2 hit", async_batch(al2_hit)),
            ],
            L2_TARGET,
        ),
    ]


def _primed(limiter: SyncRedisRateLimiter, names: Sequence[str]) -> None:
    for index, name in enumerate(names):
        if fill(index):
            primed = limiter.check(name, LIMIT, cost=fill(index))
            if primed.as_tuple() != (True, fill(index), LIMIT - fill(index)):
                raise RuntimeError(f"priming {name} was refused: {primed}")


async def _decision_rows(
    conn: RedisConnection,
    raw: redis.cluster.RedisCluster,
    araw: redis.asyncio.cluster.RedisCluster,
    limiters: tuple[SyncRedisRateLimiter, RedisRateLimiter],
    key_count: int,
    sizes: Sizes,
) -> list[Benchmark]:
    limiter, alimiter = limiters
    script = raw.script_load(RATE_LOG.text)  # loaded on every primary
    incr_keys = key_names("cluster-incr", key_count)
    aincr_keys = key_names("cluster-incr-aio", key_count)
    script_keys = key_names("cluster-script", key_count)
    ascript_keys = key_names("cluster-script-aio", key_count)
    check_keys = key_names("cluster-check", key_count)
    acheck_keys = key_names("cluster-check-aio", key_count)
    for names in (check_keys, acheck_keys):
        _primed(limiter, names)
    for index, (key, akey) in enumerate(zip(script_keys, ascript_keys, strict=True)):
        if fill(index):
            for name in (key, akey):
                reply = raw.evalsha(script, 1, name, fill(index), 1, "", 1, LIMIT, WINDOW_US)
                if reply.split()[0] != b"1":
                    raise RuntimeError(f"priming our script was refused: {reply!r}")

    def incr(key: str) -> Any:
        return raw.incr(key)

    async def aincr(key: str) -> Any:
        return await araw.incr(key)

    # What ``check(key, 100)`` sends: cost, a fresh request id, Redis' clock, a log of 100/60 s.
    def ours_raw(key: str) -> Any:
        return raw.evalsha(script, 1, key, 1, secrets.randbits(40), "", 1, LIMIT, WINDOW_US)

    async def aours_raw(key: str) -> Any:
        return await araw.evalsha(script, 1, key, 1, secrets.randbits(40), "", 1, LIMIT, WINDOW_US)

    def check(key: str) -> Any:
        return limiter.check(key, LIMIT)

    async def acheck(key: str) -> Any:
        return await alimiter.check(key, LIMIT)

    admitted = (True, 1, LIMIT - 1)
    probes = [
        ("cluster raw INCR", incr(incr_keys[0]), 1),
        ("async cluster raw INCR", await aincr(aincr_keys[0]), 1),
        ("our script on RedisCluster", ours_raw(script_keys[0]).split()[0], b"1"),
        ("our script on async RedisCluster", (await aours_raw(ascript_keys[0])).split()[0], b"1"),
        ("check on a cluster", check(check_keys[0]).as_tuple(), admitted),
        ("async check on a cluster", (await acheck(acheck_keys[0])).as_tuple(), admitted),
    ]
    for label, got, want in probes:
        if got != want:
            raise RuntimeError(f"{label} returned {got!r}, not {want!r}")
    return [
        Benchmark(
            "cluster: rate limit decision (sync)",
            sizes.get_calls,
            [
                Contender(
                    "redis-py `RedisCluster.incr(k)` (raw INCR floor)",
                    sync_batch(cycling_over(incr, incr_keys)),
                    "floor",
                ),
                Contender(
                    "redis-py `RedisCluster.evalsha` of our rate_log.lua (same args)",
                    sync_batch(cycling_over(ours_raw, script_keys)),
                    "info",
                ),
                Contender(
                    "`SyncRedisRateLimiter.check(k, 100)` (full Decision)",
                    sync_batch(cycling_over(check, check_keys)),
                ),
            ],
            DECISION_TARGET,
        ),
        Benchmark(
            "cluster: rate limit decision (async)",
            sizes.get_calls,
            [
                Contender(
                    "redis.asyncio `await RedisCluster.incr(k)` (raw INCR floor)",
                    async_batch(cycling_over(aincr, aincr_keys)),
                    "floor",
                ),
                Contender(
                    "redis.asyncio `await RedisCluster.evalsha` of our rate_log.lua (same args)",
                    async_batch(cycling_over(aours_raw, ascript_keys)),
                    "info",
                ),
                Contender(
                    "`await RedisRateLimiter.check(k, 100)` (full Decision)",
                    async_batch(cycling_over(acheck, acheck_keys)),
                ),
            ],
            ASYNC_DECISION_TARGET,
        ),
    ]


async def cluster_benchmarks(
    server: RedisServer, sizes: Sizes, rounds: int, stack: AsyncExitStack
) -> tuple[list[Benchmark], list[str]]:
    """Start a cluster (with ``server``'s executable), prime and check every contender on it.

    ``rounds`` sizes the rate-limit key sets, so that no key fills up during the run; ``stack``
    closes the clients, then stops the cluster.
    """
    topology = ClusterTopology(server.executable).start()
    stack.callback(topology.close)
    conn = RedisConnection(url=_cluster_url(topology))
    stack.push_async_callback(conn.aclose)
    if not conn.cluster:
        raise RuntimeError("the connection did not take the URL for a cluster")
    raw, araw = _floor_clients(topology, stack)
    value = one_kb_value()
    limiters = SyncRedisRateLimiter(connection=conn), RedisRateLimiter(connection=conn)
    key_count = keys_per_contender(rounds, sizes.get_calls)

    benchmarks = await _get_rows(conn, raw, araw, value, sizes)
    benchmarks += await _cached_rows(conn, raw, araw, value, sizes)
    benchmarks += await _decision_rows(conn, raw, araw, limiters, key_count, sizes)
    stack.push_async_callback(_check_clean, conn, conn.state.errors, limiters)
    notes = [
        f"cluster: {topology.primaries} primaries + {topology.primaries} replicas on loopback, "
        f"reached through `redis+cluster://` with the primaries as seeds; floors on redis-py's "
        f"`RedisCluster` (RESP2, bytes, no retries); rate limit {LIMIT}/min, {key_count} keys "
        f"per contender, key i starting with i % {FILL_LEVELS} admitted requests"
    ]
    return benchmarks, notes
