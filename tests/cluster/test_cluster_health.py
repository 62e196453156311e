"""Health of a cluster: every node read (state, slots served, memory), one verdict for the
whole cluster, and the CLI's exit codes following it as nodes die."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque

import pytest

from arketic_cache import (
    RedisConnection,
    _counters,
    _lookups,
    check_redis_health_sync,
    health_report,
    health_report_sync,
)
from arketic_cache._cli import main
from arketic_cache.testing import ClusterTopology

from ..helpers import cluster_url, redis_server_binary

pytestmark = [pytest.mark.redis, pytest.mark.cluster]


@pytest.fixture(autouse=True)
def fresh_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hit rate counts only this test's caches (none): other tests' lookups in this
    process must not turn the verdict into a hit-rate warning."""
    monkeypatch.setattr(_counters, "_live", {})
    monkeypatch.setattr(_counters, "_retired", {})
    monkeypatch.setattr(_lookups, "_samples", deque([(time.monotonic(), 0, 0)], maxlen=64))


def test_a_healthy_cluster_reports_every_node(cluster_topology: ClusterTopology) -> None:
    conn = RedisConnection(url=cluster_url(cluster_topology))
    try:
        report = health_report_sync(conn)
        check = report.checks["cluster"]
        assert (report.level, check.level) == ("ok", "ok"), report.problems
        nodes = check.details["nodes"]
        assert sorted(node["role"] for node in nodes) == ["primary"] * 3 + ["replica"] * 3
        assert all(node["up"] and node["used_memory"] > 0 for node in nodes)
        assert sum(node["slots"] for node in nodes) == 16384
        assert check.details["cluster_state"] == "ok"
        assert report.checks["memory"].level == "ok"
        assert cluster_topology.password not in report.model_dump_json()
        assert check_redis_health_sync(conn)["status"] == "healthy"

        async def on_a_loop() -> str:
            try:
                return (await health_report(conn)).checks["cluster"].level
            finally:
                await conn.aclose()  # on the loop its connections belong to

        assert asyncio.run(on_a_loop()) == "ok"
    finally:
        conn.close_sync()


def cli_health(url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code = main(["health", "--url", url, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_dead_replica_warns_and_a_dead_primary_is_critical(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with ClusterTopology(redis_server_binary()) as cluster:
        cluster.start()
        url = cluster_url(cluster)
        assert cli_health(url, capsys)[0] == 0
        replica = cluster.nodes[cluster.primaries]  # the harness attaches replicas last
        replica.kill()
        code, report = cli_health(url, capsys)
        assert code == 1
        assert f"127.0.0.1:{replica.port}" in json.dumps(report)
        cluster.nodes[1].kill()  # a primary (the URL names the others too)
        code, report = cli_health(url, capsys)
        assert code == 2
        assert f"127.0.0.1:{cluster.nodes[1].port}" in json.dumps(report)
        assert cluster.password not in json.dumps(report)
