"""The cache flows stepped by hand with canned replies (no Redis, no driver)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from arketic_cache import BackendResponseError
from arketic_cache._core import _cache as flows
from arketic_cache._core._effects import Batch, Command, Eval, Flow
from arketic_cache._lua import INCREMENT_WITH_TTL, UNLINK_IF_EQUAL

from ..helpers import drive, step


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


class TestMissesAndEdges:
    """Replies a cache flow must read as a miss, a failure or an empty answer."""

    def test_none_reply_is_a_miss_without_more_io(self) -> None:
        """GET answering None is a miss; nothing else is sent."""
        stats = flows.CacheStats()
        effects, result = step(flows.get("k", stats), [None])
        assert (effects, result) == ([Command(("GET", "k"))], None)
        assert (stats.hits, stats.misses, stats.decode_errors) == (0, 1, 0)

    @pytest.mark.parametrize("raw", ["{", "not json", '{"a":1} trailing', "\udc80"])
    def test_undecodable_value_is_a_miss_and_dropped(self, raw: str) -> None:
        """A stored value that fails to decode is dropped only if unchanged, and misses."""
        stats = flows.CacheStats()
        effects, result = step(flows.get("k", stats), [raw, 0])
        assert effects == [Command(("GET", "k")), Eval(UNLINK_IF_EQUAL, ("k",), (raw,))]
        assert result is None
        assert (stats.misses, stats.decode_errors) == (1, 1)

    def test_get_many_drops_the_corrupt_and_keeps_the_rest(self) -> None:
        """In one MGET: a hit, a miss and a corrupt entry (dropped, a miss)."""
        stats = flows.CacheStats()
        flow = flows.get_many(["p:a", "p:b", "p:c"], ["a", "b", "c"], stats, cluster=False)
        effects, result = step(flow, [["1", None, "{"], 1])
        assert effects == [
            Command(("MGET", "p:a", "p:b", "p:c")),
            Eval(UNLINK_IF_EQUAL, ("p:c",), ("{",)),
        ]
        assert result == {"a": 1}
        assert (stats.hits, stats.misses, stats.decode_errors) == (1, 2, 1)

    def test_get_many_of_nothing_sends_nothing(self) -> None:
        """No keys, no round trip."""
        assert step(flows.get_many([], [], flows.CacheStats(), cluster=False), []) == ([], {})

    @pytest.mark.parametrize(
        ("flow", "command"),
        [
            (lambda: flows.delete("k"), ("UNLINK", "k")),
            (lambda: flows.exists("k"), ("EXISTS", "k")),
            (lambda: flows.expire("k", 5), ("EXPIRE", "k", 5)),
            (lambda: flows.set_value("k", b"1", 5), ("SET", "k", b"1", "EX", 5)),
        ],
        ids=["delete", "exists", "expire", "set"],
    )
    @pytest.mark.parametrize(("reply", "expected"), [(1, True), (0, False), (None, False)])
    def test_single_command_answers(
        self, flow: Callable[[], Flow[bool]], command: tuple[Any, ...], reply: Any, expected: bool
    ) -> None:
        """One command each; 0 or None (nothing there, not set) reads as False."""
        effects, result = step(flow(), [reply])
        assert (effects, result) == ([Command(command)], expected)

    def test_info_reply(self) -> None:
        """An INFO reply fills the spec's fields and the hit rate; client counters ride along."""
        info = {"used_memory": 5, "keyspace_hits": 1, "keyspace_misses": 3, "aof_enabled": 0}
        effects, report = step(flows.server_info(lambda: {"hits": 2}), [info])
        assert effects == [Command(("INFO",), errors_as_reply=True)]
        assert (report["used_memory"], report["hit_rate"]) == (5, 0.25)
        assert (report["persistence"], report["client"]) == ("none observed", {"hits": 2})


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
