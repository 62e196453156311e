"""The repository flows stepped by hand with canned replies (no Redis, no driver): the commands
each sends, TTLs in the same transaction as the data, both RESP shapes, and stored values that
fail to decode (a hash is a miss and dropped; a collection member is an error)."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from arketic_cache import SerializationError
from arketic_cache._codec import ModelCodec, ValueCodec
from arketic_cache._core import _repository as flows
from arketic_cache._core._cache import CacheStats
from arketic_cache._core._effects import Batch, Command, Eval
from arketic_cache._lua import HASH_UPDATE

from ..helpers import step


class Point(pydantic.BaseModel):
    """A small record."""

    x: int
    y: int = 0


POINTS = ModelCodec(Point, 1000)
INTS = ValueCodec[int](int, 1000)

UNDECODABLE = [
    pytest.param({"x": '"a"'}, id="wrong-type"),
    pytest.param({"x": "{"}, id="not-json"),
    pytest.param({"y": "1"}, id="missing-field"),
]


def counts(stats: CacheStats) -> tuple[int, int, int]:
    """(hits, misses, decode_errors)."""
    return stats.hits, stats.misses, stats.decode_errors


class TestHashReads:
    """HGETALL and HGET: a record, a miss, or a record that no longer fits (dropped)."""

    def test_found(self) -> None:
        """A stored hash is rebuilt into the model and counted as a hit."""
        stats = CacheStats()
        effects, value = step(flows.hash_get("h", POINTS, stats), [{"x": "1", "y": "2"}])
        assert effects == [Command(("HGETALL", "h"))]
        assert value == Point(x=1, y=2)
        assert counts(stats) == (1, 0, 0)

    def test_missing(self) -> None:
        """An empty reply is a miss, with nothing more sent."""
        stats = CacheStats()
        effects, value = step(flows.hash_get("h", POINTS, stats), [{}])
        assert (effects, value, counts(stats)) == ([Command(("HGETALL", "h"))], None, (0, 1, 0))

    @pytest.mark.parametrize("stored", UNDECODABLE)
    def test_undecodable_is_a_miss_and_dropped(self, stored: dict[str, str]) -> None:
        """A hash that does not fit the model is unlinked, counted and read as None."""
        stats = CacheStats()
        effects, value = step(flows.hash_get("h", POINTS, stats), [stored, 1])
        assert effects == [Command(("HGETALL", "h")), Command(("UNLINK", "h"))]
        assert value is None
        assert counts(stats) == (0, 1, 1)

    def test_get_many_is_one_batch_and_drops_the_bad(self) -> None:
        """One batch of HGETALL; a bad record is dropped, a missing one left out."""
        stats = CacheStats()
        flow = flows.hash_get_many(["a", "b", "c"], [1, 2, 3], POINTS, stats)
        effects, found = step(flow, [[{"x": "1"}, {"x": "{"}, {}], 1])
        assert effects == [
            Batch(
                (Command(("HGETALL", "a")), Command(("HGETALL", "b")), Command(("HGETALL", "c")))
            ),
            Command(("UNLINK", "b")),
        ]
        assert found == {1: Point(x=1)}
        assert counts(stats) == (1, 2, 1)

    def test_get_many_of_nothing_sends_nothing(self) -> None:
        """No keys, no round trip."""
        assert step(flows.hash_get_many([], [], POINTS, CacheStats()), []) == ([], {})

    @pytest.mark.parametrize(
        ("reply", "expected", "dropped"),
        [("5", 5, False), (None, None, False), ('"five"', None, True)],
        ids=["found", "missing", "undecodable"],
    )
    def test_get_field(self, reply: Any, expected: Any, dropped: bool) -> None:
        """One field: its value, None when missing, or None and the record dropped when bad."""
        stats = CacheStats()
        effects, value = step(flows.hash_get_field("h", "x", POINTS, stats), [reply, 1])
        assert effects[0] == Command(("HGET", "h", "x"))
        assert (effects[1:] == [Command(("UNLINK", "h"))]) is dropped
        assert value == expected
        assert stats.decode_errors == int(dropped)


class TestHashWrites:
    """Whole-record replacement and partial updates carry the TTL atomically."""

    def test_set_replaces_in_one_transaction(self) -> None:
        """UNLINK, HSET and EXPIRE in one MULTI/EXEC."""
        effects, result = step(flows.hash_set("h", {"x": b"1", "y": b"2"}, 60), [[1, 2, 1]])
        assert effects == [
            Batch(
                (
                    Command(("UNLINK", "h")),
                    Command(("HSET", "h", "x", b"1", "y", b"2")),
                    Command(("EXPIRE", "h", 60)),
                ),
                transaction=True,
            )
        ]
        assert result is True

    def test_set_of_no_fields_only_clears(self) -> None:
        """With no field there is no HSET (Redis refuses an empty one)."""
        effects, _ = step(flows.hash_set("h", {}, 60), [[0, 0]])
        (batch,) = effects
        assert [c.args[0] for c in batch.commands] == ["UNLINK", "EXPIRE"]

    @pytest.mark.parametrize(("reply", "expected"), [(1, True), (0, False), (None, False)])
    def test_update_is_one_script(self, reply: Any, expected: bool) -> None:
        """Fields and TTL in one script; a missing record (0 or None) is False."""
        effects, result = step(flows.hash_update("h", {"x": b"3"}, 60), [reply])
        assert effects == [Eval(HASH_UPDATE, ("h",), (60, "x", b"3"))]
        assert result is expected

    def test_update_of_no_fields_asks_whether_it_exists(self) -> None:
        """Nothing to write: the answer is whether the record is there."""
        effects, result = step(flows.hash_update("h", {}, 60), [0])
        assert (effects, result) == ([Command(("EXISTS", "h"))], False)


class TestLists:
    """Pushes are capped and carry the TTL; members that fail to decode raise."""

    @pytest.mark.parametrize(
        ("front", "trim"),
        [(False, ("LTRIM", "l", -3, -1)), (True, ("LTRIM", "l", 0, 2))],
        ids=["tail", "front"],
    )
    def test_capped_push(self, front: bool, trim: tuple[Any, ...]) -> None:
        """Push, trim to the newest max_length and EXPIRE in one transaction."""
        effects, length = step(flows.list_push("l", [b"1"], 9, 3, front), [[5, True, 1]])
        (batch,) = effects
        assert batch.transaction
        assert [c.args for c in batch.commands][1:] == [trim, ("EXPIRE", "l", 9)]
        assert batch.commands[0].args == ("LPUSH" if front else "RPUSH", "l", b"1")
        assert length == 3  # the reply counts the push before the trim

    def test_uncapped_push(self) -> None:
        """Without a cap only push and EXPIRE go out; the length is the reply's."""
        effects, length = step(flows.list_push("l", [b"1", b"2"], 9, None, False), [[7, 1]])
        assert [c.args[0] for c in effects[0].commands] == ["RPUSH", "EXPIRE"]
        assert length == 7

    @pytest.mark.parametrize(("reply", "expected"), [("4", 4), (None, None)])
    def test_pop(self, reply: Any, expected: Any) -> None:
        """A popped member decodes; an empty list (None) is None."""
        effects, value = step(flows.list_pop("l", INTS, front=True), [reply])
        assert (effects, value) == ([Command(("LPOP", "l"))], expected)

    def test_undecodable_member_raises(self) -> None:
        """A member that is not the declared type is a SerializationError naming the key."""
        flow = flows.list_range("l", 0, -1, INTS)
        assert next(flow) == Command(("LRANGE", "l", 0, -1))
        with pytest.raises(SerializationError, match=r"^l holds"):
            flow.send(["1", '"x"'])


class TestSetsAndSortedSets:
    """Set and sorted-set commands, and both RESP shapes of scored replies."""

    def test_set_add_counts_new_members(self) -> None:
        """SADD and EXPIRE in one transaction; the answer is how many were new."""
        effects, added = step(flows.set_add("s", [b"1", b"2"], 5), [[1, 1]])
        assert [c.args for c in effects[0].commands] == [
            ("SADD", "s", b"1", b"2"),
            ("EXPIRE", "s", 5),
        ]
        assert added == 1

    def test_zset_add_scores_first(self) -> None:
        """ZADD takes score then member; infinities are spelled as Redis wants."""
        flow = flows.zset_add("z", [(b"a", 1.5), (b"b", float("inf"))], 5)
        effects, added = step(flow, [[2, 1]])
        assert effects[0].commands[0].args == ("ZADD", "z", "1.5", b"a", "+inf", b"b")
        assert added == 2

    @pytest.mark.parametrize(
        "reply",
        [["1", "1.5", "2", "3"], [["1", 1.5], ["2", 3.0]]],
        ids=["resp2-flat", "resp3-pairs"],
    )
    def test_range_reads_both_protocols(self, reply: list[Any]) -> None:
        """Members and scores come back the same from a flat or a nested reply."""
        flow = flows.zset_range("z", INTS, 0, float("inf"), by_score=True, desc=True, limit=(0, 2))
        effects, pairs = step(flow, [reply])
        assert effects == [
            Command(("ZRANGE", "z", "+inf", "0.0", "BYSCORE", "REV", "LIMIT", 0, 2, "WITHSCORES"))
        ]
        assert pairs == [(1, 1.5), (2, 3.0)]

    @pytest.mark.parametrize(("reply", "expected"), [("2.5", 2.5), (None, None)])
    def test_score(self, reply: Any, expected: float | None) -> None:
        """A member's score, or None when it is not there."""
        assert step(flows.zset_score("z", b"a"), [reply])[1] == expected


class TestStreams:
    """XADD with its cap and TTL; XREAD in both RESP shapes; undecodable entries raise."""

    def test_append_capped_approximately(self) -> None:
        """XADD with MAXLEN ~ and EXPIRE in one transaction; the answer is the entry id."""
        flow = flows.stream_append("st", {"x": b"1"}, 30, 100, approximate=True)
        effects, entry_id = step(flow, [["1-0", 1]])
        assert effects[0].commands[0].args == ("XADD", "st", "MAXLEN", "~", 100, "*", "x", b"1")
        assert entry_id == "1-0"

    def test_append_of_no_field_is_refused_before_io(self) -> None:
        """An empty entry raises before any effect."""
        with pytest.raises(SerializationError):
            next(flows.stream_append("st", {}, 30, None, approximate=False))

    def test_undecodable_entry_raises(self) -> None:
        """An entry that does not fit the model is a SerializationError naming the key."""
        flow = flows.stream_range("st", POINTS, "-", "+", None)
        assert next(flow) == Command(("XRANGE", "st", "-", "+"))
        with pytest.raises(SerializationError, match=r"^st holds an entry"):
            flow.send([("1-0", {"x": '"a"'})])
