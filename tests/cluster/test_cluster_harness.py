"""The cluster the harness starts: three primaries and three replicas with a password on
free loopback ports (each at most 55535, its bus port free), every slot covered, and nothing
left running after it closes."""

from __future__ import annotations

import os

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from arketic_cache.testing import MAX_CLUSTER_PORT, ClusterTopology, cluster_port

from ..helpers import redis_server_binary

pytestmark = pytest.mark.redis


def test_ports_leave_room_for_the_cluster_bus() -> None:
    for _ in range(50):
        assert cluster_port() <= MAX_CLUSTER_PORT


def test_three_primaries_three_replicas_every_slot_and_a_clean_stop() -> None:
    with ClusterTopology(redis_server_binary()) as cluster:
        cluster.start()
        nodes = [ClusterNode(host, port) for host, port in cluster.seeds]  # type: ignore[no-untyped-call]
        client = RedisCluster(startup_nodes=nodes, password=cluster.password)
        try:
            info = client.cluster_info()
            assert (info["cluster_state"], int(info["cluster_slots_assigned"])) == ("ok", 16384)
            roles = [
                redis.Redis(port=p, password=cluster.password).info()["role"]
                for _, p in cluster.seeds
            ]
            assert sorted(roles) == ["master"] * 3 + ["slave"] * 3
            for n in range(300):
                client.set(f"key:{n}", n)
            assert len(list(client.scan_iter(count=1000))) == 300
            with pytest.raises(redis.AuthenticationError):
                redis.Redis(port=cluster.seeds[0][1], password="wrong").ping()
        finally:
            client.close()
        pids = [node.process.pid for node in cluster.nodes if node.process is not None]
    assert len(pids) == 6
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
