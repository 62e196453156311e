"""The rate limiter across OS processes: exact totals, and the trailing-window bound.

Four worker processes (``ratelimit_worker.py``: two with ``SyncRedisRateLimiter``, two with
``RedisRateLimiter`` on their own event loops) share one key on the harness' real server. Each
connects and loads the script, says ``ready``, then blocks on its stdin; once all four are
ready the parent writes the start line to every one, so they all hammer the key together.
Nothing sleeps. The workers are strict, so a Redis failure fails the test instead of being
admitted unrecorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from bisect import bisect_right
from pathlib import Path
from typing import Any

import pytest

from arketic_cache.testing import RedisServer

from ..helpers import Target, raw_client

pytestmark = pytest.mark.redis

WORKER = Path(__file__).with_name("ratelimit_worker.py")
#: Two of each flavour, all in one run.
FLAVORS = ("sync", "async", "sync", "async")
#: Generous bound on a worker's whole run; never reached when all is well.
TIMEOUT = 120


def run_workers(url: str, **spec: Any) -> list[dict[str, Any]]:
    """Start one worker per flavour, release them together, return their reports."""
    processes: list[subprocess.Popen[str]] = []
    try:
        for index, flavor in enumerate(FLAVORS):
            worker_spec = {"url": url, "flavor": flavor, "worker": index, **spec}
            processes.append(
                subprocess.Popen(
                    [sys.executable, str(WORKER), json.dumps(worker_spec)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()  # blocks until the worker is connected
            if line != "ready\n":
                _, err = process.communicate(timeout=TIMEOUT)
                pytest.fail(f"worker did not get ready: {line!r}\n{err}")
        for process in processes:  # every worker is ready: release them all
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=TIMEOUT)
            assert process.returncode == 0, err
            reports.append(json.loads(out))
        return reports
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def max_in_trailing_window(stamps_us: list[int], window_us: int) -> int:
    """The most stamps in any half-open interval (t - window, t].

    The maximum is reached with t at a stamp, so only those are tried.
    """
    ordered = sorted(stamps_us)
    return max(bisect_right(ordered, t) - bisect_right(ordered, t - window_us) for t in ordered)


class TestTrailingWindowHelper:
    """The checker itself, so that a pass below means something."""

    def test_half_open_interval(self) -> None:
        """A stamp exactly one window before t is outside (t - W, t]; one after is inside."""
        assert max_in_trailing_window([0, 100, 200], 100) == 1
        assert max_in_trailing_window([0, 99, 100, 199], 100) == 2
        assert max_in_trailing_window([5, 5, 5, 104], 100) == 4
        assert max_in_trailing_window([5, 5, 5, 105], 100) == 3


def test_four_processes_admit_exactly_the_limit(real_target: Target) -> None:
    """4 processes x 150 calls of is_allowed(key, 25) in one 60 s window: 25 admitted in all
    (on a server, and behind sentinels)."""
    key = f"rl:exact:{uuid.uuid4().hex}"
    reports = run_workers(
        real_target.url, scenario="exact", key=key, limit=25, window=60, mode="auto", attempts=150
    )
    assert sorted(report["flavor"] for report in reports) == sorted(FLAVORS)
    assert all(report["degraded_decisions"] == 0 for report in reports)
    counts = [count for report in reports for count in report["admitted_counts"]]
    assert len(counts) == 25
    # Each admission saw the count including itself: every value from 1 to 25 exactly once.
    assert sorted(counts) == list(range(1, 26))
    with raw_client(real_target.direct_url) as admin:
        assert admin.zcard(key) == 25


@pytest.mark.parametrize("mode", ["log", "buckets"])
def test_four_processes_never_exceed_a_trailing_window(
    redis_server: RedisServer, mode: str
) -> None:
    """Limit(20, 0.2 s) hammered for over 1 s of Redis time: <= 20 in any (t - 0.2, t]."""
    limit, window = 20, 0.2
    key = f"rl:slide:{mode}:{uuid.uuid4().hex}"
    reports = run_workers(
        redis_server.url, scenario="slide", key=key, limit=limit, window=window, mode=mode, span=1.0
    )
    assert sorted(report["flavor"] for report in reports) == sorted(FLAVORS)
    for report in reports:
        assert report["degraded_decisions"] == 0
        assert report["max_count"] <= limit
    stamps = [stamp for report in reports for stamp in report["admitted_us"]]
    assert max_in_trailing_window(stamps, round(window * 1_000_000)) == limit
    # The window slid: over five windows of hammering, well over two windows' worth got in.
    assert len(stamps) > 2 * limit
    # And every process got some: the processes really overlapped.
    assert all(report["admitted_us"] for report in reports)
