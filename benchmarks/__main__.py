"""``python -m benchmarks``: time the cache against raw redis-py on a throwaway redis-server.

Starts its own ``redis-server`` (free loopback port, random password), runs every benchmark in
one interleaved session, prints a markdown table of medians and ratios, and stops the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
import warnings
from contextlib import AsyncExitStack
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis

from arketic_cache.testing import RedisServer, find_redis_server

from .cache_bench import Sizes, cache_benchmarks, one_kb_value
from .cached_bench import cached_benchmarks
from .cluster_bench import cluster_benchmarks
from .health_bench import health_benchmarks
from .http_bench import http_benchmarks, http_summary
from .messaging_bench import messaging_benchmarks, messaging_summary
from .observability_bench import observability_benchmarks
from .peers import peer_contenders
from .ratelimit_bench import rate_limit_benchmarks
from .report import markdown, write_json
from .repository_bench import repository_benchmarks
from .server_bench import server_notes
from .session_bench import session_benchmarks
from .timing import Benchmark, Outcome, measure
from .transfer_bench import transfer_notes

# Short batches, many rounds: the paired batches of a round run milliseconds apart, so a burst
# of noise on this small shared machine hits the floor and its contenders alike.
FULL = (
    41,
    Sizes(get_calls=200, many_calls=3, breaker_calls=5_000, repository_calls=200, l1_calls=2_000),
)
QUICK = (
    3,
    Sizes(get_calls=100, many_calls=3, breaker_calls=2_000, repository_calls=100, l1_calls=1_000),
)
#: Rounds of the HTTP rows (a batch is a 1 s wrk run), full and quick; timed after the others.
HTTP_ROUNDS = (9, 2)


#: The benchmark groups, in the order they run.
GROUPS = (
    "server",
    "cache",
    "repository",
    "cached",
    "ratelimit",
    "session",
    "health",
    "observability",
    "messaging",
    "cluster",
    "http",
    "transfer",
)


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (few rounds)")
    parser.add_argument("--rounds", type=_positive, help="override the number of rounds")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument(
        "--only",
        action="append",
        choices=GROUPS,
        help="run only this group of benchmarks (repeatable; default: all)",
    )
    return parser.parse_args(argv)


def _server_version(url: str) -> str:
    with redis.Redis.from_url(url) as client:
        return str(client.info("server").get("redis_version", "?"))


async def _run(
    server: RedisServer, rounds: int, http_rounds: int, sizes: Sizes, groups: set[str]
) -> tuple[list[Outcome], dict[str, Any], list[str]]:
    async with AsyncExitStack() as stack:
        benchmarks: list[Benchmark] = []
        notes: list[str] = []
        if "server" in groups:
            # First, on its own connection closed when done: no other group's listener then
            # tracks keys (which would make writes pay for invalidations) or pings in its stats.
            notes += server_notes(server)
        if "cache" in groups:
            peers, notes = await peer_contenders(server, one_kb_value(), stack)
            benchmarks += await cache_benchmarks(server.url, sizes, stack, peers)
        if "repository" in groups:
            benchmarks += await repository_benchmarks(server.url, sizes.repository_calls, stack)
        if "cached" in groups:
            memo_benchmarks, memo_notes = await cached_benchmarks(server, sizes, stack)
            benchmarks += memo_benchmarks
            notes += memo_notes
        if "ratelimit" in groups:
            limit_benchmarks, limit_notes = await rate_limit_benchmarks(
                server, sizes, rounds, stack
            )
            benchmarks += limit_benchmarks
            notes += limit_notes
        if "session" in groups:
            session_rows, session_notes = await session_benchmarks(server, sizes, rounds, stack)
            benchmarks += session_rows
            notes += session_notes
        if "health" in groups:
            health_rows, health_notes = await health_benchmarks(server, sizes.health_calls, stack)
            benchmarks += health_rows
            notes += health_notes
        if "observability" in groups:
            observed, observed_notes = await observability_benchmarks(
                server, sizes.get_calls, sizes.l1_calls, stack
            )
            benchmarks += observed
            notes += observed_notes
        if "messaging" in groups:
            messaging_rows, messaging_notes = await messaging_benchmarks(server, sizes, stack)
            benchmarks += messaging_rows
            notes += messaging_notes
        if "cluster" in groups:
            cluster_rows, cluster_notes = await cluster_benchmarks(server, sizes, rounds, stack)
            benchmarks += cluster_rows
            notes += cluster_notes
        started = time.perf_counter()
        outcomes = await measure(benchmarks, rounds) if benchmarks else []
        if "messaging" in groups:
            notes += messaging_summary(outcomes)  # single-message p99 and messages/s
        if "http" in groups:
            http_rows, http_notes, batches = await http_benchmarks(server, stack)
            http_outcomes = await measure(http_rows, http_rounds) if http_rows else []
            outcomes += http_outcomes
            notes += http_notes + http_summary(http_outcomes, batches)
        if "transfer" in groups:
            notes += transfer_notes(server)  # processes of their own, not interleaved
        elapsed = time.perf_counter() - started
    meta = {
        "rounds": rounds,
        "calls per batch": f"get {sizes.get_calls}, get_many {sizes.many_calls}, "
        f"breaker-open {sizes.breaker_calls}, repository {sizes.repository_calls}, "
        f"@cached L1 hit {sizes.l1_calls}, @cached L2 hit and invalidate {sizes.get_calls}, "
        f"rate-limit decision {sizes.get_calls}, session get and create {sizes.get_calls}, "
        f"health check {sizes.health_calls}, pub/sub single messages {sizes.pubsub_calls}, "
        f"pub/sub burst {sizes.pubsub_burst} messages, consumer group {sizes.group_entries} "
        f"entries read {sizes.group_chunk} at a time, cluster rows {sizes.get_calls}",
        "HTTP rounds": http_rounds,
        "timed": f"{elapsed:.1f} s",
        "python": platform.python_version(),
        "redis-py": version("redis"),
        "redis-server": _server_version(server.url),
        "cpus": os.cpu_count(),
    }
    return outcomes, meta, notes


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; return the exit status."""
    args = _parse(argv)
    # The sync rows run blocking calls on purpose, inside the (otherwise idle) event loop
    # that drives the interleaved rounds: the library's warning about that is expected here.
    warnings.filterwarnings(
        "ignore", message=r".* blocks the running event loop", category=RuntimeWarning
    )
    rounds, sizes = QUICK if args.quick else FULL
    http_rounds = HTTP_ROUNDS[1] if args.quick else HTTP_ROUNDS[0]
    rounds, http_rounds = args.rounds or rounds, args.rounds or http_rounds
    executable = find_redis_server()
    if executable is None:
        print("redis-server is not installed; `make bench` installs it as root", file=sys.stderr)
        return 2
    with RedisServer(executable) as server:
        server.start()
        groups = set(args.only or GROUPS)
        outcomes, meta, notes = asyncio.run(_run(server, rounds, http_rounds, sizes, groups))
    print(markdown(outcomes, meta, notes))
    if args.json is not None:
        write_json(args.json, outcomes, meta, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
