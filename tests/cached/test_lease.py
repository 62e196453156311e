"""The opt-in cross-process lease: one process computes, the others are woken when it lands."""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any

import pytest
import redis

from arketic_cache.testing import RedisServer

from .lease_worker import run_callers

pytestmark = pytest.mark.redis

TIMEOUT = 30  # generous bound on waiting for worker messages; never reached when all is well


def expect(reports: Any, kind: str) -> Any:
    message_kind, value = reports.get(timeout=TIMEOUT)
    assert message_kind == kind, (message_kind, value)
    return value


def test_four_processes_eight_callers_compute_once(fresh_server: RedisServer) -> None:
    """4 processes x 8 threads on a cold key: the function runs once in all."""
    ctx = multiprocessing.get_context("spawn")
    reports: Any = ctx.Queue()
    workers = [
        ctx.Process(target=run_callers, args=(fresh_server.url, 8, 30, reports)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    admin = redis.Redis.from_url(fresh_server.url, decode_responses=True)
    seen: dict[str, int] = {}
    while seen.get("calling", 0) < 32 or seen.get("computing", 0) < 1:
        kind, _ = reports.get(timeout=TIMEOUT)
        seen[kind] = seen.get(kind, 0) + 1
    admin.rpush("release", "go")  # every caller has started; let the one computation finish
    results: list[int] = []
    while len(results) < 32:
        kind, value = reports.get(timeout=TIMEOUT)
        if kind == "result":
            results.append(value)
    for worker in workers:
        worker.join(TIMEOUT)
        assert worker.exitcode == 0
    assert results == [40] * 32
    assert admin.get("calls") == "1"
    admin.close()


def test_dead_holder_is_taken_over(fresh_server: RedisServer) -> None:
    """If the process holding the lease dies, its lease expires and a waiter computes."""
    ctx = multiprocessing.get_context("spawn")
    holder_reports: Any = ctx.Queue()
    holder = ctx.Process(target=run_callers, args=(fresh_server.url, 1, 1, holder_reports))
    holder.start()
    expect(holder_reports, "calling")
    expect(holder_reports, "computing")  # it holds the lease (1 s) and never finishes
    os.kill(holder.pid or 0, signal.SIGKILL)
    holder.join(TIMEOUT)

    waiter_reports: Any = ctx.Queue()
    waiter = ctx.Process(target=run_callers, args=(fresh_server.url, 1, 1, waiter_reports))
    admin = redis.Redis.from_url(fresh_server.url, decode_responses=True)
    admin.rpush("release", "go")  # the next computation may finish at once
    waiter.start()
    expect(waiter_reports, "calling")
    expect(waiter_reports, "computing")  # taken over once the dead holder's lease ran out
    assert expect(waiter_reports, "result") == 40
    waiter.join(TIMEOUT)
    assert waiter.exitcode == 0
    assert admin.get("calls") == "2"
    admin.close()
