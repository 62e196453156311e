"""The cost of a health check: ``check_redis_health()`` against the two round trips it needs.

A check is a PING and one INFO (the sections it reads), then pure verdicts and a pydantic
report. The floor makes the same two calls with raw redis-py and parses nothing more than
redis-py does; the difference is what the verdicts, the report and the spec's dict cost.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from arketic_cache import check_redis_health, check_redis_health_sync, health_report_sync
from arketic_cache._core._health import _INFO_SECTIONS
from arketic_cache.testing import RedisServer

from .clients import open_clients
from .timing import Benchmark, Contender, Target, async_batch, sync_batch

__all__ = ["HEALTH_TARGET", "health_benchmarks"]

#: A check may cost at most this much more than its two bare round trips.
HEALTH_TARGET = Target(1.5, "ratio", "health check vs PING + INFO floor")


async def health_benchmarks(
    server: RedisServer, calls: int, stack: AsyncExitStack
) -> tuple[list[Benchmark], list[str]]:
    """The health-check rows; their clients are closed by ``stack``."""
    conn, raw, araw = open_clients(server.url, stack)
    report = health_report_sync(conn)
    if report.level == "critical" or report.checks["memory"].level == "unknown":
        raise RuntimeError(f"the benchmark server is not healthy: {report.as_spec()}")

    def raw_check() -> Any:
        raw.ping()
        return raw.info(*_INFO_SECTIONS)

    async def araw_check() -> Any:
        await araw.ping()
        return await araw.info(*_INFO_SECTIONS)

    def sync_check() -> Any:
        return check_redis_health_sync(conn)

    async def async_check() -> Any:
        return await check_redis_health(conn)

    benchmarks = [
        Benchmark(
            "health check (sync)",
            calls,
            [
                Contender("redis-py PING + INFO", sync_batch(raw_check), "floor"),
                Contender("check_redis_health_sync()", sync_batch(sync_check)),
            ],
            HEALTH_TARGET,
        ),
        Benchmark(
            "health check (async)",
            calls,
            [
                Contender("redis-py asyncio PING + INFO", async_batch(araw_check), "floor"),
                Contender("await check_redis_health()", async_batch(async_check)),
            ],
            HEALTH_TARGET,
        ),
    ]
    notes = [
        "health: a check is PING + INFO (server, clients, memory, persistence, stats, replication, "
        "keyspace) on a connection of its own, past the breaker; no peer library has one"
    ]
    return benchmarks, notes
