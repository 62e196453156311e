"""A worker process for the cross-process rate-limit tests, run as a script by the parent.

``python tests/ratelimit_worker.py SPEC`` where SPEC is a JSON object::

    {"url": ..., "flavor": "sync" | "async", "scenario": "exact" | "slide", "key": ...,
     "limit": int, "window": float, "mode": "auto" | "log" | "buckets",
     "attempts": int (exact), "span": float (slide)}

The worker connects and makes one decision on a key of its own (so its connection is open and
the script loaded), prints ``ready``, then blocks on a line from stdin: the parent's start
signal, sent once every worker is ready. It then runs the scenario and prints one JSON report.

- ``exact``: ``attempts`` calls of ``is_allowed(key, limit)`` (window ``window``); the report
  lists the count each admitted call was given.
- ``slide``: ``check(key, Limit(limit, window, mode))`` until the Redis time of its decisions
  spans more than ``span`` seconds; the report lists the Redis time (in microseconds) of each
  admitted decision and the largest count any decision reported.

The limiter is strict: a Redis failure raises (and the worker exits non-zero) instead of
failing open, which would admit requests Redis never counted and spoil the totals.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from arketic_cache import (
    Decision,
    Limit,
    RedisConnection,
    RedisRateLimiter,
    SyncRedisRateLimiter,
)

#: Generous: four busy processes on a small machine must never fail on a slow reply.
SOCKET_TIMEOUT = 5.0
#: A bound on the slide scenario, in case Redis' clock stood still.
MAX_ATTEMPTS = 1_000_000


def connection(spec: dict[str, Any]) -> RedisConnection:
    """The worker's own connection (generous timeouts)."""
    return RedisConnection(
        url=spec["url"], socket_timeout=SOCKET_TIMEOUT, connect_timeout=SOCKET_TIMEOUT
    )


def ready() -> None:
    """Tell the parent this worker is connected, then wait for its start signal."""
    print("ready", flush=True)


def wait_for_start() -> None:
    """Block until the parent writes the start line (EOF means it gave up: stop)."""
    if sys.stdin.readline() != "go\n":
        raise SystemExit("the parent closed the start pipe")


def server_us(decision: Decision) -> int:
    """The Redis time of a decision in whole microseconds."""
    assert decision.at is not None, decision  # a strict limiter never answers degraded
    return round(decision.at * 1_000_000)


class Slide:
    """Collects what the slide scenario reports."""

    def __init__(self, span: float) -> None:
        self.span_us = round(span * 1_000_000)
        self.first_us: int | None = None
        self.admitted_us: list[int] = []
        self.max_count = 0
        self.attempts = 0

    def add(self, decision: Decision) -> bool:
        """Record one decision; True while the span is not yet covered."""
        now_us = server_us(decision)
        if self.first_us is None:
            self.first_us = now_us
        self.attempts += 1
        self.max_count = max(self.max_count, decision.count)
        if decision.allowed:
            self.admitted_us.append(now_us)
        return now_us - self.first_us <= self.span_us and self.attempts < MAX_ATTEMPTS

    def report(self) -> dict[str, Any]:
        """The JSON report."""
        return {
            "admitted_us": self.admitted_us,
            "max_count": self.max_count,
            "attempts": self.attempts,
            "first_us": self.first_us,
        }


def run_sync(spec: dict[str, Any]) -> dict[str, Any]:
    """The scenario with a ``SyncRedisRateLimiter``."""
    conn = connection(spec)
    limiter = SyncRedisRateLimiter(spec["window"], connection=conn, strict=True)
    key: str = spec["key"]
    limit: int = spec["limit"]
    try:
        limiter.check(f"{key}:warm-up:{spec['worker']}", 1)
        ready()
        wait_for_start()
        if spec["scenario"] == "exact":
            counts = []
            for _ in range(spec["attempts"]):
                allowed, count, _remaining = limiter.is_allowed(key, limit)
                if allowed:
                    counts.append(count)
            report: dict[str, Any] = {"admitted_counts": counts, "attempts": spec["attempts"]}
        else:
            slide = Slide(spec["span"])
            rule = Limit(limit, spec["window"], spec["mode"])
            while slide.add(limiter.check(key, rule)):
                pass
            report = slide.report()
        report["degraded_decisions"] = limiter.get_info()["degraded_decisions"]
        return report
    finally:
        conn.close_sync()


async def run_async(spec: dict[str, Any]) -> dict[str, Any]:
    """The scenario with a ``RedisRateLimiter`` on this process' event loop."""
    conn = connection(spec)
    limiter = RedisRateLimiter(spec["window"], connection=conn, strict=True)
    key: str = spec["key"]
    limit: int = spec["limit"]
    try:
        await limiter.check(f"{key}:warm-up:{spec['worker']}", 1)
        ready()
        await asyncio.to_thread(wait_for_start)
        if spec["scenario"] == "exact":
            counts = []
            for _ in range(spec["attempts"]):
                allowed, count, _remaining = await limiter.is_allowed(key, limit)
                if allowed:
                    counts.append(count)
            report: dict[str, Any] = {"admitted_counts": counts, "attempts": spec["attempts"]}
        else:
            slide = Slide(spec["span"])
            rule = Limit(limit, spec["window"], spec["mode"])
            while slide.add(await limiter.check(key, rule)):
                pass
            report = slide.report()
        report["degraded_decisions"] = limiter.get_info()["degraded_decisions"]
        return report
    finally:
        await conn.aclose()


def main(argv: list[str]) -> int:
    """Run the scenario of ``argv[1]`` and print its report."""
    spec: dict[str, Any] = json.loads(argv[1])
    report = run_sync(spec) if spec["flavor"] == "sync" else asyncio.run(run_async(spec))
    report["flavor"] = spec["flavor"]
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
