"""The pure core, stepped by hand: no Redis, no event loop."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis._parsers.encoders import Encoder
from redis.connection import PythonRespSerializer
from redis.crc import key_slot as redis_key_slot

from arketic_cache import BackendResponseError, SerializationError
from arketic_cache._codec import decode, encode
from arketic_cache._core import _cache as flows
from arketic_cache._core._cached import invalidation_message, parse_invalidation
from arketic_cache._core._effects import Batch, Command, Eval, Flow
from arketic_cache._core._resp import pack, pack_all
from arketic_cache._core._slots import group_by_slot, key_slot
from arketic_cache._core._validate import escape_glob
from arketic_cache._lua import INCREMENT_WITH_TTL, UNLINK_IF_EQUAL


def step(flow: Flow[Any], replies: list[Any]) -> tuple[list[Any], Any]:
    """Run ``flow`` feeding ``replies`` in order; return the effects it yielded and its result."""
    effects: list[Any] = []
    reply: Any = None
    feed = iter(replies)
    try:
        while True:
            effects.append(flow.send(reply))
            reply = next(feed)
    except StopIteration as stop:
        return effects, stop.value


def drive(flow: Flow[Any], respond: Callable[[Any], Any]) -> Any:
    """Run ``flow`` answering each effect with ``respond(effect)``; return its result."""
    reply: Any = None
    try:
        while True:
            reply = respond(flow.send(reply))
    except StopIteration as stop:
        return stop.value


NAMES = st.sampled_from(["GET", "SET", "EVALSHA", "zadd"])  # one word: flows never send "CLIENT ID"
ARGS = st.one_of(
    st.text(),
    st.binary(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text().map(lambda t: t + "\udcff"),  # a lone surrogate, as surrogateescape decodes
)


class TestResp:
    """Our request encoder writes exactly what redis-py's packer writes for our clients."""

    ENCODER = Encoder("utf-8", "surrogateescape", True)  # type: ignore[no-untyped-call]
    PACKER = PythonRespSerializer(6000, ENCODER.encode)

    def redis_py(self, command: list[Any]) -> bytes:
        return b"".join(self.PACKER.pack(*command))  # type: ignore[no-untyped-call]

    @given(NAMES, st.lists(ARGS, max_size=8))
    def test_matches_redis_py(self, name: str, args: list[Any]) -> None:
        """A command name and any str, bytes, int or float arguments pack to redis-py's bytes."""
        assert pack([name, *args]) == self.redis_py([name, *args])

    @given(st.lists(st.tuples(NAMES, st.lists(ARGS, max_size=4)), min_size=1, max_size=4))
    def test_pipeline_is_commands_back_to_back(self, commands: list[tuple[str, list[Any]]]) -> None:
        """A pipeline is each command's encoding, in order."""
        wire = [[name, *args] for name, args in commands]
        assert pack_all(wire) == b"".join(self.redis_py(command) for command in wire)

    @pytest.mark.parametrize("odd", [True, None, bytearray(b"x"), memoryview(b"x")])
    def test_other_types_are_left_to_redis_py(self, odd: Any) -> None:
        """Types we do not encode (bool, None, buffers) make the driver use redis-py's packer."""
        assert pack(["SET", "k", odd]) is None
        assert pack_all([["PING"], ["SET", "k", odd]]) is None


class TestSlots:
    """Cluster slots match Redis' own CRC16 rule, hash tags included."""

    @given(st.text(max_size=40))
    def test_matches_redis_py(self, key: str) -> None:
        """key_slot agrees with redis-py for any key."""
        assert key_slot(key) == redis_key_slot(key.encode("utf-8", "surrogateescape"))

    @pytest.mark.parametrize(
        ("a", "b"), [("{user1}:x", "{user1}:y"), ("a{tag}b", "c{tag}d"), ("x{}", "x{}")]
    )
    def test_hash_tags(self, a: str, b: str) -> None:
        """Keys sharing a non-empty tag (or the same empty-tag key) share a slot."""
        assert key_slot(a) == key_slot(b)

    def test_empty_tag_hashes_whole_key(self) -> None:
        """An empty {} is not a tag: the whole key is hashed."""
        assert key_slot("{}a") == redis_key_slot(b"{}a")
        assert key_slot("{}a") != key_slot("{}b")

    def test_group_by_slot_keeps_positions(self) -> None:
        """Each key's position lands in its slot's group, in order."""
        keys = ["{a}1", "{b}1", "{a}2", "{b}2", "{a}3"]
        groups = group_by_slot(keys)
        assert sorted(groups.values()) == [[0, 2, 4], [1, 3]]


class TestGetFlows:
    """get and get_many: decoding, misses, corrupt entries, cluster grouping."""

    def test_hit(self) -> None:
        """A stored JSON value is decoded and counted as a hit."""
        stats = flows.CacheStats()
        effects, result = step(flows.get("k", stats), ['{"a":1}'])
        assert effects == [Command(("GET", "k"))]
        assert result == {"a": 1}
        assert (stats.hits, stats.misses) == (1, 0)

    def test_corrupt_entry_dropped_only_if_unchanged(self) -> None:
        """A corrupt value is removed with a compare-and-delete script, and is a miss."""
        stats = flows.CacheStats()
        effects, result = step(flows.get("k", stats), ["\udc80junk", 1])
        assert effects[1] == Eval(UNLINK_IF_EQUAL, ("k",), ("\udc80junk",))
        assert result is None
        assert (stats.hits, stats.misses, stats.decode_errors) == (0, 1, 1)

    def test_get_many_standalone_is_one_mget(self) -> None:
        """Without a cluster, get_many is a single MGET."""
        stats = flows.CacheStats()
        flow = flows.get_many(["p:a", "p:b"], ["a", "b"], stats, cluster=False)
        effects, result = step(flow, [["1", None]])
        assert effects == [Command(("MGET", "p:a", "p:b"))]
        assert result == {"a": 1}

    def test_get_many_cluster_groups_per_slot_in_one_batch(self) -> None:
        """On a cluster, one MGET per slot goes out in one batch and order is restored."""
        keys = ["{x}1", "{y}1", "{x}2"]
        flow = flows.get_many(keys, keys, flows.CacheStats(), cluster=True)
        batch = next(flow)
        assert isinstance(batch, Batch)
        replies = [["1", "3"] if "{x}1" in cmd.args else ["2"] for cmd in batch.commands]
        assert sorted(c.args for c in batch.commands) == [
            ("MGET", "{x}1", "{x}2"),
            ("MGET", "{y}1"),
        ]
        with pytest.raises(StopIteration) as stop:
            flow.send(replies)
        assert stop.value.value == {"{x}1": 1, "{y}1": 2, "{x}2": 3}


class TestWriteFlows:
    """Writes carry their TTL in the same command or transaction."""

    def test_set_value(self) -> None:
        """SET with EX in one command."""
        effects, result = step(flows.set_value("k", b"1", 60), [True])
        assert effects == [Command(("SET", "k", b"1", "EX", 60))]
        assert result is True

    @pytest.mark.parametrize("cluster", [False, True])
    def test_set_many_one_batch(self, cluster: bool) -> None:
        """All items go out in one batch; MULTI/EXEC unless keys may span slots."""
        effects, result = step(flows.set_many([("a", b"1"), ("b", b"2")], 9, cluster), [[1, 1]])
        (batch,) = effects
        assert batch.transaction is not cluster
        assert [c.args for c in batch.commands] == [
            ("SET", "a", b"1", "EX", 9),
            ("SET", "b", b"2", "EX", 9),
        ]
        assert result is True

    def test_increment_is_one_script(self) -> None:
        """INCRBY and the TTL of a new counter happen in one script."""
        effects, result = step(flows.increment("n", 5, 3600), [5])
        assert effects == [Eval(INCREMENT_WITH_TTL, ("n",), (5, 3600))]
        assert result == 5


class TestScanFlows:
    """SCAN pages, de-duplication and UNLINK batches."""

    def test_scan_dedupes_and_strips_prefix(self) -> None:
        """Keys SCAN reports twice appear once, sorted, without the prefix."""
        flow = flows.scan_keys("p:*", strip=2)
        effects, result = step(flow, [(7, ["p:b", "p:a"]), (0, ["p:a", "p:c"])])
        assert [e.args[1] for e in effects] == [0, 7]
        assert result == ["a", "b", "c"]

    @pytest.mark.parametrize("cluster", [False, True])
    def test_unlink_in_batches(self, cluster: bool) -> None:
        """Found keys are unlinked at most UNLINK_BATCH at a time; the count is summed."""
        pages = iter([(3, [f"k{i}" for i in range(700)]), (0, [f"k{i}" for i in range(700, 1200)])])
        unlinked: list[list[Any]] = []

        def unlink(command: Command) -> int:
            unlinked.append(list(command.args[1:]))
            return len(command.args) - 1

        def respond(effect: Any) -> Any:
            if isinstance(effect, Batch):
                return [unlink(command) for command in effect.commands]
            return next(pages) if effect.args[0] == "SCAN" else unlink(effect)

        assert drive(flows.unlink_matching("k*", cluster), respond) == 1200
        assert sorted(k for batch in unlinked for k in batch) == sorted(
            f"k{i}" for i in range(1200)
        )
        assert max(len(batch) for batch in unlinked) <= flows.UNLINK_BATCH


class TestInfo:
    """describe_info turns INFO into the spec's fields."""

    def test_unknown_server(self) -> None:
        """Without INFO every server field is None; client counters stay."""
        report = flows.describe_info(None, {"hits": 1})
        assert report["used_memory"] is None
        assert report["hit_rate"] is None
        assert report["persistence"] is None
        assert report["client"] == {"hits": 1}

    @pytest.mark.parametrize(
        ("aof", "saves", "mode"),
        [(0, 0, "none observed"), (0, 2, "rdb"), (1, 0, "aof"), (1, 3, "aof+rdb")],
    )
    def test_persistence_and_hit_rate(self, aof: int, saves: int, mode: str) -> None:
        """Persistence mode comes from INFO persistence; hit rate from keyspace counters."""
        info = {"aof_enabled": aof, "rdb_saves": saves, "keyspace_hits": 3, "keyspace_misses": 1}
        report = flows.describe_info(info, {})
        assert report["persistence"] == mode
        assert report["hit_rate"] == 0.75

    def test_refused_info(self) -> None:
        """A refused INFO (ACL, fakeredis) leaves server fields None."""
        flow = flows.server_info(dict)
        effect = next(flow)
        assert isinstance(effect, Command)
        assert effect.errors_as_reply
        with pytest.raises(StopIteration) as stop:
            flow.send(BackendResponseError("NOPERM"))
        assert stop.value.value["connected_clients"] is None


class TestCodecAndEscaping:
    """JSON encoding rules and glob escaping."""

    def test_nan_becomes_null(self) -> None:
        """NaN and infinities are stored as null, so any JSON reader accepts them."""
        assert decode(encode([math.nan, math.inf], 100)) == [None, None]

    def test_size_limit(self) -> None:
        """The size guard counts encoded bytes."""
        encode("é" * 10, 22)
        with pytest.raises(SerializationError):
            encode("é" * 10, 21)

    @given(st.text(max_size=30))
    def test_escaped_text_matches_only_itself(self, text: str) -> None:
        """An escaped string has no unescaped glob character left."""
        escaped = escape_glob(text)
        i = 0
        while i < len(escaped):
            if escaped[i] == "\\":
                assert escaped[i + 1] in "*?[]\\"
                i += 2
                continue
            assert escaped[i] not in "*?[]"
            i += 1

    def test_lua_scripts_document_their_interface(self) -> None:
        """Each script's header names its KEYS, ARGV and return value."""
        for script in (INCREMENT_WITH_TTL, UNLINK_IF_EQUAL):
            assert all(tag in script.text for tag in ("KEYS[1]", "ARGV[1]", "Returns"))
            assert len(script.sha) == 40


class TestInvalidationMessage:
    """The announcement of a changed entry is the compact JSON array of origin and key."""

    @given(st.text(), st.text())
    def test_is_compact_json_and_round_trips(self, origin: str, key: str) -> None:
        """Any origin and key (quotes, controls, non-ASCII, surrogates) survive the trip."""
        message = invalidation_message(origin, key)
        assert message == json.dumps([origin, key], separators=(",", ":"))
        assert parse_invalidation(message) == (origin, key)
