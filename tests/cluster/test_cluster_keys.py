"""On the harness' cluster: multi-key calls over every primary, the slot map followed through a
moved slot, URLs of several seeds, and sessions whose keys all share their user's slot."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from arketic_cache import (
    TTL,
    BackendUnavailable,
    Claimed,
    ConfigurationError,
    InvalidInputError,
    RedisCache,
    RedisConnection,
    RedisSettings,
    StreamKey,
    SyncRedisCache,
    SyncRedisSessionManager,
    SyncStreamRepository,
)
from arketic_cache._core._slots import key_slot
from arketic_cache.testing import ClusterTopology, free_port

from ..helpers import cluster_url, flush_cluster, raw_client
from ..streams.helpers import Order

pytestmark = [pytest.mark.redis, pytest.mark.cluster]


@pytest.fixture
def url(cluster_topology: ClusterTopology) -> str:
    """The harness' cluster, every primary emptied."""
    flush_cluster(cluster_topology)
    return cluster_url(cluster_topology)


@pytest.fixture
def conn(url: str) -> Iterator[RedisConnection]:
    connection = RedisConnection(url=url)
    yield connection
    connection.close_sync()


def owners(conn: RedisConnection, keys: list[str]) -> Counter[tuple[str, int]]:
    """How many of ``keys`` each primary serves (by the layer's own slot map)."""
    smap = conn.cluster_state.map if conn.cluster_state is not None else None
    assert smap is not None
    return Counter(smap.owners[key_slot(key)] for key in keys)  # type: ignore[misc]


def test_a_thousand_keys_over_three_primaries_listed_once_and_flushed_exactly(
    conn: RedisConnection, url: str
) -> None:
    cache = SyncRedisCache(conn, strict=True)
    keys = [f"item:{n}" for n in range(1000)]
    assert cache.set_many({key: n for n, key in enumerate(keys)})
    assert cache.set("other:1", "kept")
    spread = owners(conn, keys)
    assert len(spread) == 3, spread
    assert min(spread.values()) > 250, spread
    found = cache.get_keys("item:*")
    assert found == sorted(keys)  # each once
    assert len(cache.get_many(keys)) == 1000
    assert cache.flush_pattern("item:*") == 1000
    with raw_client(url, decode_responses=True) as raw:
        assert raw.keys("*") == ["other:1"]


def test_async_scan_and_flush_cover_every_primary(conn: RedisConnection) -> None:
    async def scenario() -> tuple[int, list[str], int, list[str]]:
        cache = RedisCache(conn, strict=True)
        assert await cache.set_many({f"a:{n}": n for n in range(300)})
        listed = await cache.get_keys("a:*")
        removed = await cache.flush_pattern("a:*")
        left = await cache.get_keys("*")
        await conn.aclose()  # on the loop its connections belong to
        return len(listed), sorted(set(listed)), removed, left

    count, unique, removed, left = asyncio.run(scenario())
    assert (count, len(unique), removed, left) == (300, 300, 300, [])


def test_a_moved_slot_is_followed_and_noted(conn: RedisConnection, url: str) -> None:
    """A slot whose owner changed since the map was read: MOVED, then the new owner serves
    it, at once, with no error; the map learns it."""
    cache = SyncRedisCache(conn, strict=True)
    assert cache.set("warm", 1)
    state = conn.cluster_state
    assert state is not None
    assert state.map is not None
    slot = key_slot("moving")
    right = state.map.owners[slot]
    wrong = next(node for node in state.map.primaries if node != right)
    state.map = state.map.moved(slot, wrong)  # as if the slot had left `wrong` since
    state.stale = False
    assert cache.set("moving", "v")
    assert cache.get("moving") == "v"
    assert state.redirects >= 1
    assert state.map.owners[slot] == right


def test_urls_name_several_seeds_and_reject_what_a_cluster_is_not() -> None:
    settings = RedisSettings.create(url="redis+cluster://:pw@a:7000,b,c:7002")
    assert settings.cluster == [("a", 7000), ("b", 6379), ("c", 7002)]
    assert "pw" not in settings.display_url
    assert "pw" not in repr(settings)
    assert RedisSettings.create(url="rediss+cluster://a:7000").cluster == [("a", 7000)]
    with pytest.raises(ConfigurationError, match="one database"):
        RedisSettings.create(url="redis+cluster://a:7000/3")
    with pytest.raises(ConfigurationError, match="host\\[:port\\]"):
        RedisSettings.create(url="redis+cluster://a:70000")
    assert not RedisConnection(url="redis://localhost:1/0").cluster


def test_a_users_session_keys_share_the_users_slot(conn: RedisConnection, url: str) -> None:
    """Session, index, refresh token and family of one user: one slot, whatever the user;
    a caller-chosen id must carry the user's tag (refused at once otherwise)."""
    sessions = SyncRedisSessionManager(connection=conn, strict=True)
    for user in ("alice", 42, "b{o}b"):
        sid = sessions.new_session({"user_id": user})
        assert sid is not None
        token = sessions.issue_refresh_token(sid)
        assert token is not None
        chosen = sessions.session_id_prefix(user) + "x" * 40
        assert sessions.create_session(chosen, {"user_id": user, "device": "tv"})
        with raw_client(url, decode_responses=True) as raw:
            keys = raw.keys("*")
        assert len(keys) == 5  # two sessions, the index, the token, the family
        assert len({key_slot(key) for key in keys}) == 1, keys
        assert len(sessions.get_user_sessions(user)) == 2
        assert sessions.delete_user_sessions(user) == 2
        flush_cluster_keys(url)
    with pytest.raises(InvalidInputError, match="session_id_prefix"):
        sessions.create_session("y" * 43, {"user_id": "alice"})
    anonymous = "z" * 43  # no user: any id works, in the slot its hash names
    assert sessions.create_session(anonymous, {"cart": [1]})
    assert sessions.get_session(anonymous) == {"cart": [1]}
    assert (
        SyncRedisSessionManager(connection=RedisConnection(url="memory://x")).session_id_prefix(
            "alice"
        )
        == ""
    )


def flush_cluster_keys(url: str) -> None:
    """Remove every key (of this test's own cluster database) through redis-py."""
    with raw_client(url) as raw:
        for key in raw.keys("*"):
            raw.delete(key)


def test_users_redis_py_client_is_a_cluster_client(conn: RedisConnection) -> None:
    """``sync_client`` (``get_redis_sync()``) is redis-py's RedisCluster: any key, any node."""
    client = conn.sync_client
    for n in range(20):
        client.set(f"u:{n}", n)
    assert sorted(int(client.get(f"u:{n}") or -1) for n in range(20)) == list(range(20))
    assert isinstance(client, RedisCluster)


class LaneKey(StreamKey[Order]):
    """A stream per shop and lane; both lanes of a shop share its slot."""

    template = "lanes:{shop}:{lane}"
    hash_tag = "shop"
    ttl = TTL.DEFAULT
    shop: str
    lane: str


def test_dead_letters_of_a_stream_in_its_slot(conn: RedisConnection) -> None:
    """A claim moves a poison entry to a dead-letter stream of the same hash tag; a dead-letter
    stream in another slot is refused before any I/O."""
    lanes = SyncStreamRepository(LaneKey, conn)
    main, dead = LaneKey(shop="s1", lane="main"), LaneKey(shop="s1", lane="dead")
    assert key_slot(main.render()) == key_slot(dead.render())
    lanes.create_group(main, "billing")
    lanes.append(main, Order(order_id=666, item="x"))
    lanes.read_group(main, "billing", "c1")
    claimed = lanes.claim(main, "billing", "c2", min_idle=0, max_deliveries=1, dead_letter=dead)
    assert claimed == Claimed([], 1)
    assert [entry for _, entry in lanes.range(dead)] == [Order(order_id=666, item="x")]
    elsewhere = LaneKey(shop="s2", lane="dead")
    with pytest.raises(InvalidInputError, match="slot"):
        lanes.claim(main, "billing", "c2", min_idle=0, max_deliveries=1, dead_letter=elsewhere)


def test_a_nodes_open_breaker_skips_its_slots_only(conn: RedisConnection) -> None:
    """Three failures of one node open its breaker alone: its keys degrade at once (not
    sent), the other primaries' keys are served, and the cluster's state names it open."""
    cache = SyncRedisCache(conn)
    keys = [f"b:{n}" for n in range(30)]
    assert cache.set_many(dict.fromkeys(keys, 1))
    state = conn.cluster_state
    assert state is not None
    assert state.map is not None
    down = state.map.primaries[0]
    for _ in range(conn.settings.breaker_threshold):
        state.breakers.of(down).record_failure()
    assert conn.state.breaker.state == "open"
    before = conn.state.short_circuits
    served = {key: cache.get(key) for key in keys}
    on_down = [key for key in keys if state.map.owners[key_slot(key)] == down]
    assert on_down
    assert all(served[key] is None for key in on_down)
    assert all(served[key] == 1 for key in keys if key not in on_down)
    assert conn.state.short_circuits - before == len(on_down)


def test_no_seed_answering_degrades_and_names_why(cluster_topology: ClusterTopology) -> None:
    """Every seed dead: a call degrades (strict: BackendUnavailable naming how many were
    tried), then the whole-cluster breaker skips Redis; a wrong password is refused the same
    way and never shown."""
    dead = ",".join(f"127.0.0.1:{free_port()}" for _ in range(3))
    conn = RedisConnection(url=f"redis+cluster://:pw-not-shown@{dead}", breaker_threshold=2)
    try:
        assert SyncRedisCache(conn).get("k") is None
        with pytest.raises(BackendUnavailable, match="3 tried") as raised:
            SyncRedisCache(conn, strict=True).get("k")
        assert "pw-not-shown" not in str(raised.value)
        assert SyncRedisCache(conn).get("k") is None
        assert conn.state.short_circuits == 1
        assert conn.state.breaker.state == "open"
    finally:
        conn.close_sync()
    seeds = ",".join(f"{h}:{p}" for h, p in cluster_topology.seeds[:3])
    wrong = RedisConnection(url=f"redis+cluster://:wrong-secret@{seeds}")
    try:
        with pytest.raises(BackendUnavailable) as refused:
            SyncRedisCache(wrong, strict=True).get("k")
        assert "wrong-secret" not in str(refused.value)
    finally:
        wrong.close_sync()
